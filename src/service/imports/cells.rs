//! From a cell to the value a field takes: translations, lenient scalars, and lookups of
//! master items by label, users by username or name, groups and organizations by name and
//! library records by title. Lookups are loaded once per run (or job turn), on first use.

use std::collections::HashMap;

use serde_json::Value;

use super::{ColumnMap, ImportSpec};
use crate::auth::TenantScope;
use crate::db::masters::ItemRow;
use crate::db::{self, DbConnection};
use crate::domain::import::{is_blank, scalar_value, split_list};
use crate::domain::template::{FieldDef, FieldType};
use crate::service::error::ServiceError;

/// Why a cell does not fit its field: `(code, message)`.
pub type CellError = (&'static str, String);

/// The run's lookups.
pub struct Lookups {
    pub zone: chrono_tz::Tz,
    users: Option<Vec<(String, String, String)>>,
    groups: Option<Vec<(String, String)>>,
    organizations: Option<Vec<(String, String)>>,
    masters: HashMap<String, Vec<ItemRow>>,
    titles: HashMap<String, Vec<(String, String)>>,
    /// For record upserts by a field: the field's value (as text) → record ids.
    pub record_index: Option<HashMap<String, Vec<crate::domain::ids::RecordId>>>,
}

const ALL: i64 = 1_000_000;

impl Lookups {
    pub fn load(
        conn: &mut DbConnection,
        scope: &TenantScope,
        _spec: &ImportSpec,
    ) -> Result<Self, ServiceError> {
        let zone = db::platform::find_tenant(conn, scope.tenant_id())?
            .and_then(|t| t.time_zone.parse::<chrono_tz::Tz>().ok())
            .unwrap_or(chrono_tz::UTC);
        Ok(Self {
            zone,
            users: None,
            groups: None,
            organizations: None,
            masters: HashMap::new(),
            titles: HashMap::new(),
            record_index: None,
        })
    }

    /// A user id from an id, a username or a display name (one user only).
    pub fn user(
        &mut self,
        conn: &mut DbConnection,
        scope: &TenantScope,
        text: &str,
    ) -> Result<Result<String, CellError>, ServiceError> {
        if self.users.is_none() {
            let rows = db::users::list(conn, scope, &Default::default(), None, ALL)?;
            self.users = Some(
                rows.into_iter()
                    .map(|u| (u.id.to_string(), u.username, u.display_name))
                    .collect(),
            );
        }
        let users = self.users.as_deref().unwrap_or_default();
        let canonical = crate::domain::credentials::canonical_name(text);
        let found = one_of(
            users
                .iter()
                .filter(|(id, username, _)| *id == text || *username == canonical),
        )
        .or_else(|| one_of(users.iter().filter(|(_, _, name)| name == text)));
        Ok(match found {
            Some((id, _, _)) => Ok(id.clone()),
            None => Err(("unknown_user", format!("no single user is {text:?}"))),
        })
    }

    pub fn group(
        &mut self,
        conn: &mut DbConnection,
        scope: &TenantScope,
        text: &str,
    ) -> Result<Result<String, CellError>, ServiceError> {
        if self.groups.is_none() {
            let rows = db::groups::list_groups(conn, scope, None, ALL)?;
            self.groups = Some(
                rows.into_iter()
                    .map(|g| (g.id.to_string(), g.name))
                    .collect(),
            );
        }
        Ok(named(self.groups.as_deref().unwrap_or_default(), text)
            .ok_or(("unknown_group", format!("no single group is {text:?}"))))
    }

    pub fn organization(
        &mut self,
        conn: &mut DbConnection,
        scope: &TenantScope,
        text: &str,
    ) -> Result<Result<String, CellError>, ServiceError> {
        if self.organizations.is_none() {
            let rows = db::groups::list_organizations(conn, scope, None, ALL)?;
            self.organizations = Some(
                rows.into_iter()
                    .map(|o| (o.id.to_string(), o.name))
                    .collect(),
            );
        }
        Ok(
            named(self.organizations.as_deref().unwrap_or_default(), text).ok_or((
                "unknown_organization",
                format!("no single organization is {text:?}"),
            )),
        )
    }

    /// An item code of `master` from a code or a label (Japanese or English).
    fn item(
        &mut self,
        conn: &mut DbConnection,
        scope: &TenantScope,
        master: &str,
        text: &str,
    ) -> Result<Result<String, CellError>, ServiceError> {
        if !self.masters.contains_key(master) {
            let items = match db::masters::find_master(conn, scope, master)? {
                Some(m) => db::masters::items(conn, scope, m.id, false)?,
                None => Vec::new(),
            };
            self.masters.insert(master.to_owned(), items);
        }
        let items = self
            .masters
            .get(master)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let by_code = items.iter().find(|i| i.code == text);
        let found = by_code.or_else(|| {
            one_of(
                items
                    .iter()
                    .filter(|i| i.label_ja == text || i.label_en.eq_ignore_ascii_case(text)),
            )
        });
        Ok(match found {
            Some(item) => Ok(item.code.clone()),
            None => Err(("unknown_item", format!("unknown item {text:?}"))),
        })
    }

    /// A record id of `library` from an id or a title.
    fn record(
        &mut self,
        conn: &mut DbConnection,
        scope: &TenantScope,
        library: &str,
        text: &str,
    ) -> Result<Result<String, CellError>, ServiceError> {
        if !self.titles.contains_key(library) {
            let records = match db::libraries::find_library(conn, scope, library)? {
                Some(l) => db::libraries::live_records(conn, scope, l.id)?,
                None => Vec::new(),
            };
            self.titles.insert(
                library.to_owned(),
                records
                    .into_iter()
                    .map(|r| (r.id.to_string(), r.title))
                    .collect(),
            );
        }
        let records = self
            .titles
            .get(library)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(named(records, text).ok_or((
            "unknown_record",
            format!("no single record of {library} is {text:?}"),
        )))
    }

    /// The value `field` takes from `cell`: the column's translation first, then by type.
    pub fn field_value(
        &mut self,
        conn: &mut DbConnection,
        scope: &TenantScope,
        field: &FieldDef,
        cell: &Value,
        map: Option<&ColumnMap>,
    ) -> Result<Result<Value, CellError>, ServiceError> {
        let cell = translated(cell, map);
        if is_blank(&cell) {
            return Ok(Ok(Value::Null));
        }
        let date_format = map.and_then(|m| m.date_format.as_deref());
        let Value::String(text) = &cell else {
            // A JSON value: items of a multi-select may still be labels.
            if let (FieldType::MultiSelect, Value::Array(items)) = (field.kind, &cell) {
                let mut codes = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => match self.select(conn, scope, field, s)? {
                            Ok(code) => codes.push(Value::String(code)),
                            Err(e) => return Ok(Err(e)),
                        },
                        other => codes.push(other.clone()),
                    }
                }
                return Ok(Ok(Value::Array(codes)));
            }
            return Ok(Ok(cell.clone()));
        };
        let text = text.as_str();
        let plain = text.trim();
        Ok(match field.kind {
            FieldType::Select => self.select(conn, scope, field, plain)?.map(Value::String),
            FieldType::MultiSelect => {
                let mut codes = Vec::new();
                for item in split_list(plain) {
                    match self.select(conn, scope, field, &item)? {
                        Ok(code) => codes.push(Value::String(code)),
                        Err(e) => return Ok(Err(e)),
                    }
                }
                Ok(Value::Array(codes))
            }
            FieldType::User => self.user(conn, scope, plain)?.map(Value::String),
            FieldType::Group => self.group(conn, scope, plain)?.map(Value::String),
            FieldType::Organization => self.organization(conn, scope, plain)?.map(Value::String),
            FieldType::LibraryRef => match &field.library {
                Some(library) => self.record(conn, scope, library, plain)?.map(Value::String),
                None => Ok(Value::String(plain.to_owned())),
            },
            FieldType::Attachment => Err((
                "not_importable",
                "attachments are not imported; leave the column empty".to_owned(),
            )),
            kind => scalar_value(kind, text, date_format, &self.zone)
                .ok_or_else(|| ("invalid_type", format!("{text:?} is not {}", shape(kind)))),
        })
    }

    fn select(
        &mut self,
        conn: &mut DbConnection,
        scope: &TenantScope,
        field: &FieldDef,
        text: &str,
    ) -> Result<Result<String, CellError>, ServiceError> {
        match &field.master {
            Some(master) => self.item(conn, scope, master, text),
            None => Ok(Ok(text.to_owned())),
        }
    }
}

fn shape(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Integer => "an integer",
        FieldType::Decimal => "a number",
        FieldType::Date => "a date",
        FieldType::Datetime => "a date and time",
        FieldType::Boolean => "true or false",
        _ => "a value of this field",
    }
}

/// The cell after the column's translation table (matched on the trimmed text).
pub fn translated(cell: &Value, map: Option<&ColumnMap>) -> Value {
    if let (Some(map), Value::String(text)) = (map, cell)
        && let Some(to) = map.translate.get(text.trim())
    {
        return to.clone();
    }
    cell.clone()
}

/// The one element, if there is exactly one.
fn one_of<'a, T>(mut items: impl Iterator<Item = &'a T>) -> Option<&'a T> {
    let first = items.next()?;
    items.next().is_none().then_some(first)
}

/// An id from `(id, name)` pairs by id or by a name only one has.
fn named(pairs: &[(String, String)], text: &str) -> Option<String> {
    if let Some((id, _)) = pairs.iter().find(|(id, _)| id == text) {
        return Some(id.clone());
    }
    one_of(pairs.iter().filter(|(_, name)| name == text)).map(|(id, _)| id.clone())
}

/// A cell as plain text (a JSON scalar printed), for names that are text.
pub fn text_of(cell: &Value) -> Option<String> {
    match cell {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().to_owned()),
        other => Some(other.to_string()),
    }
}
