//! The four targets: which names their columns may fill, who may import into them, and how
//! one row is applied through the target's own use case.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::cells::{CellError, Lookups, text_of};
use super::{
    CREATED, ColumnMap, ColumnPlan, ImportSpec, RowError, RowResult, RunContext, UNCHANGED, UPDATED,
};
use crate::auth::{Principal, TenantScope};
use crate::db::masters::ItemChanges;
use crate::db::{self, DbConnection};
use crate::domain::credentials::Username;
use crate::domain::identity::{Role, RoleSet};
use crate::domain::ids::{GroupId, OrganizationId, RecordId, TicketId, UserId};
use crate::domain::import::{ImportMode, ImportTarget, SourceRow, is_blank, parse_datetime};
use crate::domain::master::{ItemCode, Labels};
use crate::domain::template::FieldDef;
use crate::service::definitions::DefinitionCache;
use crate::service::directory::{UserInput, UserUpdate};
use crate::service::error::ServiceError;
use crate::service::libraries::LibraryCaller;
use crate::service::masters::ItemInput;
use crate::service::tickets::{self, Imported, NewTicketRequest, TicketCaller, TicketPatch};

const TICKET_NAMES: &[&str] = &[
    "key",
    "id",
    "state",
    "requester",
    "assignee",
    "group",
    "organization",
    "created_at",
    "closed_at",
    "fields",
];
/// Columns of the ticket export that an import reads past (derived or assigned).
const TICKET_INFO: &[&str] = &[
    "template",
    "template_version",
    "title",
    "stage",
    "closed",
    "updated_at",
    "version",
    "requester_id",
    "sla",
];
const RECORD_NAMES: &[&str] = &["id"];
const RECORD_INFO: &[&str] = &[
    "title",
    "library",
    "version",
    "reviewed_at",
    "review_due_at",
    "stale",
    "origin",
    "created_at",
    "updated_at",
];
const USER_NAMES: &[&str] = &[
    "id",
    "username",
    "display_name",
    "email",
    "roles",
    "organization",
    "active",
];
const USER_INFO: &[&str] = &["version", "locked_until", "created_at", "updated_at"];
const ITEM_NAMES: &[&str] = &[
    "code", "label_ja", "label_en", "label", "order", "active", "parent",
];
const ITEM_INFO: &[&str] = &["version", "created_at", "updated_at"];

fn names(target: ImportTarget) -> (&'static [&'static str], &'static [&'static str]) {
    match target {
        ImportTarget::Tickets => (TICKET_NAMES, TICKET_INFO),
        ImportTarget::LibraryRecords => (RECORD_NAMES, RECORD_INFO),
        ImportTarget::Users => (USER_NAMES, USER_INFO),
        ImportTarget::MasterItems => (ITEM_NAMES, ITEM_INFO),
    }
}

/// The names that may identify an existing row, the first the default.
fn key_names(target: ImportTarget) -> &'static [&'static str] {
    match target {
        ImportTarget::Tickets => &["key", "id"],
        ImportTarget::LibraryRecords => &["id"],
        ImportTarget::Users => &["username", "id"],
        ImportTarget::MasterItems => &["code"],
    }
}

/// 403 unless the caller may write the target at all (rows still pass their use case's
/// checks).
pub fn check_caller(principal: &Principal, spec: &ImportSpec) -> Result<(), ServiceError> {
    match spec.target {
        ImportTarget::Tickets => TicketCaller::of(principal)?.require_worker(),
        ImportTarget::LibraryRecords => LibraryCaller::of(principal).map(|_| ()),
        ImportTarget::Users => principal
            .require(&[Role::TenantAdmin])
            .map(|_| ())
            .map_err(ServiceError::from),
        ImportTarget::MasterItems => principal
            .require(&[Role::TenantAdmin, Role::ProcessManager])
            .map(|_| ())
            .map_err(ServiceError::from),
    }
}

fn target_key<'a>(spec: &'a ImportSpec, what: &str) -> Result<&'a str, ServiceError> {
    spec.target_key.as_deref().ok_or_else(|| {
        ServiceError::validation(
            what,
            "required",
            format!("an import of {} names its {what}", spec.target.as_str()),
        )
    })
}

/// The fields of the target (none for users and items); 422 when it does not exist.
pub fn fields_of(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    spec: &ImportSpec,
) -> Result<Vec<FieldDef>, ServiceError> {
    match spec.target {
        ImportTarget::Tickets => {
            let key = target_key(spec, "template")?;
            let template = db::templates::find_template(conn, scope, key)?.ok_or_else(|| {
                ServiceError::validation("template", "unknown", "no template with this key")
            })?;
            let number = template.published_version.ok_or_else(|| {
                ServiceError::validation(
                    "template",
                    "not_published",
                    "the template has no published version yet",
                )
            })?;
            Ok(defs.get(conn, scope, template.id, number)?.fields.clone())
        }
        ImportTarget::LibraryRecords => {
            let key = target_key(spec, "library")?;
            let row = db::libraries::find_library(conn, scope, key)?.ok_or_else(|| {
                ServiceError::validation("library", "unknown", "no library with this key")
            })?;
            let def = crate::domain::library::parse_library(&row.definition.0)
                .map_err(|_| ServiceError::internal("a stored library does not parse"))?;
            Ok(def.fields)
        }
        ImportTarget::MasterItems => {
            let key = target_key(spec, "master")?;
            db::masters::find_master(conn, scope, key)?.ok_or_else(|| {
                ServiceError::validation("master", "unknown", "no master with this key")
            })?;
            Ok(Vec::new())
        }
        ImportTarget::Users => Ok(Vec::new()),
    }
}

/// What a name (given in a mapping, a default or as a column header) fills, if anything.
fn resolve(target: ImportTarget, fields: &[FieldDef], name: &str) -> Option<String> {
    let (own, _) = names(target);
    let trimmed = name.trim();
    if own.contains(&trimmed) {
        return Some(trimmed.to_owned());
    }
    if target == ImportTarget::Users && trimmed == "organization_id" {
        return Some("organization".to_owned());
    }
    if target == ImportTarget::MasterItems && trimmed == "sort_order" {
        return Some("order".to_owned());
    }
    let key = trimmed.strip_prefix("field.").unwrap_or(trimmed);
    if let Some(f) = fields.iter().find(|f| f.key == key) {
        return Some(format!("field.{}", f.key));
    }
    fields
        .iter()
        .find(|f| f.label.ja == trimmed || f.label.en.eq_ignore_ascii_case(trimmed))
        .map(|f| format!("field.{}", f.key))
}

/// Which names the columns fill; 422 for a mapping or default that names nothing.
pub fn plan_columns(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    spec: &ImportSpec,
    columns: &[String],
) -> Result<ColumnPlan, ServiceError> {
    let fields = fields_of(conn, defs, scope, spec)?;
    let (_, info) = names(spec.target);
    let mut errors = Vec::new();
    for column in spec.mapping.keys() {
        if !columns.contains(column) {
            errors.push(crate::domain::error::FieldError::new(
                format!("mapping.{column}"),
                "no_such_column",
                "the file has no column with this name",
            ));
        }
    }
    let mut mapped: Vec<(String, String)> = Vec::new();
    let mut ignored = Vec::new();
    for column in columns {
        let to = match spec.mapping.get(column) {
            Some(ColumnMap { to: None, .. }) => None,
            Some(ColumnMap { to: Some(to), .. }) => match resolve(spec.target, &fields, to) {
                Some(name) => Some(name),
                None => {
                    errors.push(crate::domain::error::FieldError::new(
                        format!("mapping.{column}"),
                        "unknown_name",
                        format!("{to:?} is neither a field nor a column this target reads"),
                    ));
                    None
                }
            },
            None if info.contains(&column.trim()) => None,
            None => resolve(spec.target, &fields, column),
        };
        match to {
            Some(name) if mapped.iter().any(|(_, n)| *n == name) => {
                errors.push(crate::domain::error::FieldError::new(
                    format!("mapping.{column}"),
                    "duplicate",
                    format!("another column already fills {name}"),
                ));
            }
            Some(name) => mapped.push((column.clone(), name)),
            None => ignored.push(column.clone()),
        }
    }
    let mut defaults = BTreeMap::new();
    for (name, value) in &spec.defaults {
        match resolve(spec.target, &fields, name) {
            Some(to) => {
                defaults.insert(to, value.clone());
            }
            None => errors.push(crate::domain::error::FieldError::new(
                format!("defaults.{name}"),
                "unknown_name",
                format!("{name:?} is neither a field nor a column this target reads"),
            )),
        }
    }
    let key = match (&spec.key, spec.mode) {
        (_, ImportMode::Create) => None,
        (Some(key), _) => {
            let by_column = mapped
                .iter()
                .find(|(c, _)| c == key)
                .map(|(_, n)| n.clone());
            let name = by_column.or_else(|| resolve(spec.target, &fields, key));
            let usable = name.as_deref().is_some_and(|n| {
                key_names(spec.target).contains(&n)
                    || (spec.target == ImportTarget::LibraryRecords && n.starts_with("field."))
            });
            if !usable {
                errors.push(crate::domain::error::FieldError::new(
                    "key",
                    "invalid",
                    format!(
                        "{} rows are matched by {}",
                        spec.target.as_str(),
                        key_names(spec.target).join(", ")
                    ) + if spec.target == ImportTarget::LibraryRecords {
                        " or a field"
                    } else {
                        ""
                    },
                ));
            }
            name
        }
        (None, _) => key_names(spec.target)
            .iter()
            .find(|k| mapped.iter().any(|(_, n)| n == *k))
            .map(|k| (*k).to_owned()),
    };
    if spec.mode != ImportMode::Create {
        match &key {
            Some(k) if !mapped.iter().any(|(_, n)| n == k) => {
                errors.push(crate::domain::error::FieldError::new(
                    "key",
                    "not_mapped",
                    format!("no column fills {k}, which matches existing rows"),
                ));
            }
            None if errors.iter().all(|e| e.field != "key") => {
                errors.push(crate::domain::error::FieldError::new(
                    "key",
                    "not_mapped",
                    format!(
                        "{} and {} need a column that matches existing rows: {}",
                        ImportMode::Upsert.as_str(),
                        ImportMode::Update.as_str(),
                        key_names(spec.target).join(", ")
                    ),
                ));
            }
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors));
    }
    Ok(ColumnPlan {
        mapped,
        ignored,
        defaults,
        key,
        fields,
    })
}

/// A row's values by name, with the column each came from; cell errors collected.
struct Values<'a> {
    values: BTreeMap<String, (Option<String>, Value)>,
    errors: Vec<RowError>,
    row: &'a SourceRow,
}

impl Values<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|(_, v)| text_of(v))
    }

    fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    fn cell(&self, name: &str) -> Option<&Value> {
        self.values.get(name).map(|(_, v)| v)
    }

    /// A boolean cell (`None` when absent or empty; an error when it is not a boolean).
    fn flag(&mut self, name: &str) -> Option<bool> {
        let text = self.text(name)?;
        let flag = crate::domain::import::parse_bool(&text);
        if flag.is_none() {
            self.fail(name, ("invalid_type", "must be true or false".to_owned()));
        }
        flag
    }

    fn fail(&mut self, name: &str, (code, message): CellError) {
        let column = self.values.get(name).and_then(|(c, _)| c.clone());
        self.errors.push(RowError {
            column,
            field: api_path(name),
            code: code.to_owned(),
            message,
        });
    }
}

/// The path the API's own errors use for a name (`field.x` → `fields.x`).
fn api_path(name: &str) -> String {
    name.strip_prefix("field.")
        .map_or_else(|| name.to_owned(), |k| format!("fields.{k}"))
}

fn values_of<'a>(plan: &ColumnPlan, spec: &ImportSpec, row: &'a SourceRow) -> Values<'a> {
    let mut values = BTreeMap::new();
    for (column, name) in &plan.mapped {
        if let Some(cell) = row.get(column) {
            let cell = super::cells::translated(cell, spec.mapping.get(column));
            values.insert(name.clone(), (Some(column.clone()), cell));
        }
    }
    for (name, value) in &plan.defaults {
        let blank = values.get(name).is_none_or(|(_, v)| is_blank(v));
        if blank {
            values.insert(name.clone(), (None, value.clone()));
        }
    }
    Values {
        values,
        errors: Vec::new(),
        row,
    }
}

/// The field values of a row (`field.<key>` names and a `fields` JSON object).
fn field_values(
    conn: &mut DbConnection,
    cx: &RunContext<'_>,
    plan: &ColumnPlan,
    lookups: &mut Lookups,
    v: &mut Values<'_>,
) -> Result<Map<String, Value>, ServiceError> {
    let scope = cx.principal.audit_scope();
    let mut out = Map::new();
    if let Some(cell) = v.cell("fields").cloned() {
        let object = match cell {
            Value::Object(map) => Some(map),
            Value::String(text) if text.trim().is_empty() => Some(Map::new()),
            Value::String(text) => serde_json::from_str::<Map<String, Value>>(&text).ok(),
            _ => None,
        };
        match object {
            Some(map) => {
                for (k, value) in map {
                    let name = format!("field.{k}");
                    if !v.has(&name) {
                        v.values.insert(
                            name,
                            (v.values.get("fields").and_then(|(c, _)| c.clone()), value),
                        );
                    }
                }
            }
            None => v.fail(
                "fields",
                (
                    "invalid_type",
                    "must be a JSON object of field values".to_owned(),
                ),
            ),
        }
    }
    let names: Vec<String> = v
        .values
        .keys()
        .filter(|n| n.starts_with("field."))
        .cloned()
        .collect();
    for name in names {
        let key = name.trim_start_matches("field.");
        let Some(field) = plan.fields.iter().find(|f| f.key == key) else {
            v.fail(&name, ("unknown", "no field with this key".to_owned()));
            continue;
        };
        let (column, cell) = v.values.get(&name).cloned().unwrap_or((None, Value::Null));
        let map = column.as_deref().and_then(|c| cx.spec.mapping.get(c));
        match lookups.field_value(conn, &scope, field, &cell, map)? {
            Ok(value) => {
                out.insert(field.key.clone(), value);
            }
            Err(e) => v.fail(&name, e),
        }
    }
    Ok(out)
}

/// Applies one row; `Err` rolls back the row's savepoint (a refusal becomes row errors).
pub fn apply_row(
    conn: &mut DbConnection,
    cx: &RunContext<'_>,
    plan: &ColumnPlan,
    lookups: &mut Lookups,
    row: &SourceRow,
) -> Result<RowResult, ServiceError> {
    let mut v = values_of(plan, cx.spec, row);
    let applied = match cx.spec.target {
        ImportTarget::Tickets => ticket_row(conn, cx, plan, lookups, &mut v)?,
        ImportTarget::LibraryRecords => record_row(conn, cx, plan, lookups, &mut v)?,
        ImportTarget::Users => user_row(conn, cx, plan, lookups, &mut v)?,
        ImportTarget::MasterItems => item_row(conn, cx, &mut v)?,
    };
    // Cell errors are found before anything is written.
    let Some((outcome, id, key)) = applied.filter(|_| v.errors.is_empty()) else {
        return Ok(RowResult::failed(row, v.errors));
    };
    Ok(RowResult {
        row: v.row.number,
        line: v.row.line,
        outcome,
        id: Some(id),
        key,
        errors: Vec::new(),
    })
}

type Applied = Option<(&'static str, String, Option<String>)>;

fn failed_early(v: &Values<'_>) -> bool {
    !v.errors.is_empty()
}

fn id_of<T: std::str::FromStr>(
    conn: &mut DbConnection,
    scope: &TenantScope,
    lookups: &mut Lookups,
    v: &mut Values<'_>,
    name: &str,
) -> Result<Option<Option<T>>, ServiceError> {
    if !v.has(name) {
        return Ok(None);
    }
    let Some(text) = v.text(name) else {
        return Ok(Some(None));
    };
    let found = match name {
        "group" => lookups.group(conn, scope, &text)?,
        "organization" => lookups.organization(conn, scope, &text)?,
        _ => lookups.user(conn, scope, &text)?,
    };
    match found.map(|id| id.parse::<T>()) {
        Ok(Ok(id)) => Ok(Some(Some(id))),
        Ok(Err(_)) => Ok(None),
        Err(e) => {
            v.fail(name, e);
            Ok(None)
        }
    }
}

fn ticket_row(
    conn: &mut DbConnection,
    cx: &RunContext<'_>,
    plan: &ColumnPlan,
    lookups: &mut Lookups,
    v: &mut Values<'_>,
) -> Result<Applied, ServiceError> {
    let caller = TicketCaller::of(cx.principal)?;
    let scope = caller.scope;
    let fields = field_values(conn, cx, plan, lookups, v)?;
    let requester = id_of::<UserId>(conn, &scope, lookups, v, "requester")?;
    let assignee = id_of::<UserId>(conn, &scope, lookups, v, "assignee")?;
    let group = id_of::<GroupId>(conn, &scope, lookups, v, "group")?;
    let organization = id_of::<OrganizationId>(conn, &scope, lookups, v, "organization")?;
    let instant = |v: &mut Values<'_>, name: &str| -> Option<DateTime<Utc>> {
        let text = v.text(name)?;
        let format = v
            .values
            .get(name)
            .and_then(|(c, _)| c.as_deref())
            .and_then(|c| cx.spec.mapping.get(c))
            .and_then(|m| m.date_format.as_deref());
        match parse_datetime(&text, format, &lookups.zone)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        {
            Some(at) if at.with_timezone(&Utc) <= cx.now => Some(at.with_timezone(&Utc)),
            Some(_) => {
                v.fail(name, ("in_future", "must not be later than now".to_owned()));
                None
            }
            None => {
                v.fail(
                    name,
                    ("invalid_type", format!("{text:?} is not a date and time")),
                );
                None
            }
        }
    };
    let created_at = instant(v, "created_at");
    let closed_at = instant(v, "closed_at");
    let state = v.text("state");
    if let (Some(created), Some(closed)) = (created_at, closed_at)
        && closed < created
    {
        v.fail(
            "closed_at",
            (
                "before_created",
                "must not be earlier than created_at".to_owned(),
            ),
        );
    }
    if failed_early(v) {
        return Ok(None);
    }
    let template = cx.spec.target_key.clone().unwrap_or_default();
    let existing = match (cx.spec.mode, plan.key.as_deref()) {
        (ImportMode::Create, _) | (_, None) => None,
        (_, Some(name)) => find_ticket(conn, cx, &caller, &template, v.text(name))?,
    };
    match existing {
        None if cx.spec.mode == ImportMode::Update => Err(ServiceError::NotFound),
        None => {
            let request = NewTicketRequest {
                template,
                fields: fields.into_iter().filter(|(_, v)| !v.is_null()).collect(),
                requester: requester.flatten(),
                assignee: assignee.flatten(),
                group: group.flatten(),
                organization: organization.flatten(),
                imported: Some(Imported {
                    state,
                    entered_at: closed_at,
                    source: json!({
                        "import_id": cx.import,
                        "row": v.row.number,
                        "line": v.row.line,
                    }),
                }),
            };
            let now = created_at.unwrap_or(cx.now);
            let ticket = tickets::create(conn, cx.defs, &caller, &request, now)?;
            Ok(Some((
                CREATED,
                ticket.row.id.to_string(),
                Some(ticket.row.key()),
            )))
        }
        Some(current) => {
            if let Some(state) = &state
                && *state != current.row.state
            {
                return Err(ServiceError::validation(
                    "state",
                    "state_differs",
                    format!(
                        "the ticket is in {:?}; an existing ticket changes state only through a transition",
                        current.row.state
                    ),
                ));
            }
            let old = current.fields();
            let patch = TicketPatch {
                fields: fields
                    .into_iter()
                    .filter(|(k, val)| old.get(k).unwrap_or(&Value::Null) != val)
                    .collect(),
                assignee: assignee.filter(|a| *a != current.row.assignee_id),
                group: group.filter(|g| *g != current.row.group_id),
                organization: organization.filter(|o| *o != current.row.organization_id),
            };
            let id = current.row.id;
            let updated = tickets::update(conn, cx.defs, &caller, id, None, &patch, cx.now)?;
            let outcome = if updated.row.version == current.row.version {
                UNCHANGED
            } else {
                UPDATED
            };
            Ok(Some((outcome, id.to_string(), Some(updated.row.key()))))
        }
    }
}

/// The ticket a key (`SD-12`) or id names, in this template.
fn find_ticket(
    conn: &mut DbConnection,
    cx: &RunContext<'_>,
    caller: &TicketCaller,
    template: &str,
    text: Option<String>,
) -> Result<Option<tickets::LoadedTicket>, ServiceError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let ids: Vec<TicketId> = match text.parse::<TicketId>() {
        Ok(id) => vec![id],
        Err(_) => match text.rsplit_once('-') {
            Some((prefix, number)) => match number.parse::<i64>() {
                Ok(n) => db::tickets::ids_by_key(conn, &caller.scope, prefix, n)?,
                Err(_) => Vec::new(),
            },
            None => Vec::new(),
        },
    };
    for id in ids {
        match tickets::load(conn, cx.defs, caller, id) {
            Ok(t) if t.template_key == template => return Ok(Some(t)),
            Ok(_) | Err(ServiceError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn record_row(
    conn: &mut DbConnection,
    cx: &RunContext<'_>,
    plan: &ColumnPlan,
    lookups: &mut Lookups,
    v: &mut Values<'_>,
) -> Result<Applied, ServiceError> {
    let caller = LibraryCaller::of(cx.principal)?;
    let library = cx.spec.target_key.clone().unwrap_or_default();
    let fields = field_values(conn, cx, plan, lookups, v)?;
    if failed_early(v) {
        return Ok(None);
    }
    let existing: Option<RecordId> = match (cx.spec.mode, plan.key.as_deref()) {
        (ImportMode::Create, _) | (_, None) => None,
        (_, Some("id")) => v.text("id").and_then(|t| t.parse().ok()),
        (_, Some(name)) => {
            let key = name.trim_start_matches("field.");
            let wanted = fields.get(key).and_then(text_of);
            match wanted {
                None => None,
                Some(wanted) => {
                    let index = record_index(conn, &caller, &library, key, lookups)?;
                    match index.get(&wanted).map(Vec::as_slice) {
                        Some([one]) => Some(*one),
                        Some([]) | None => None,
                        Some(_) => {
                            return Err(ServiceError::validation(
                                &api_path(name),
                                "ambiguous",
                                format!("more than one record has {wanted:?}"),
                            ));
                        }
                    }
                }
            }
        }
    };
    let existing = match existing {
        Some(id) => match crate::service::libraries::get_record(conn, &caller, &library, id) {
            Ok((_, row)) => Some(row),
            Err(ServiceError::NotFound) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    match existing {
        None if cx.spec.mode == ImportMode::Update => Err(ServiceError::NotFound),
        None => {
            let (_, row) =
                crate::service::libraries::create_record(conn, &caller, &library, &fields, cx.now)?;
            if let Some(index) = &mut lookups.record_index
                && let Some(key) = plan.key.as_deref().and_then(|n| n.strip_prefix("field."))
                && let Some(value) = row.fields().get(key).and_then(text_of)
            {
                index.entry(value).or_default().push(row.id);
            }
            Ok(Some((CREATED, row.id.to_string(), Some(row.title))))
        }
        Some(current) => {
            let old = current.fields();
            let patch: Map<String, Value> = fields
                .into_iter()
                .filter(|(k, val)| old.get(k).unwrap_or(&Value::Null) != val)
                .collect();
            let (_, row) = crate::service::libraries::update_record(
                conn, &caller, &library, current.id, &patch, None, cx.now,
            )?;
            let outcome = if row.version == current.version {
                UNCHANGED
            } else {
                UPDATED
            };
            Ok(Some((outcome, row.id.to_string(), Some(row.title))))
        }
    }
}

/// Live records of the library by the text of one field (built once per run).
fn record_index<'l>(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    library: &str,
    key: &str,
    lookups: &'l mut Lookups,
) -> Result<&'l std::collections::HashMap<String, Vec<RecordId>>, ServiceError> {
    if lookups.record_index.is_none() {
        let lib = crate::service::libraries::readable(conn, caller, library)?;
        let mut index: std::collections::HashMap<String, Vec<RecordId>> = Default::default();
        for record in db::libraries::live_records(conn, &caller.scope, lib.row.id)? {
            if let Some(value) = record.fields().get(key).and_then(text_of) {
                index.entry(value).or_default().push(record.id);
            }
        }
        lookups.record_index = Some(index);
    }
    Ok(lookups.record_index.get_or_insert_with(Default::default))
}

fn user_row(
    conn: &mut DbConnection,
    cx: &RunContext<'_>,
    plan: &ColumnPlan,
    lookups: &mut Lookups,
    v: &mut Values<'_>,
) -> Result<Applied, ServiceError> {
    let scope = cx.principal.audit_scope();
    let username = match v.text("username").map(|u| Username::parse(&u)) {
        Some(Ok(u)) => Some(u),
        Some(Err(e)) => {
            v.fail("username", (e.code(), e.to_string()));
            None
        }
        None => None,
    };
    let roles = match v.cell("roles").cloned().filter(|c| !is_blank(c)) {
        None => None,
        Some(cell) => {
            let names: Vec<String> = match cell {
                Value::Array(items) => items.iter().filter_map(text_of).collect(),
                other => text_of(&other)
                    .map(|t| crate::domain::import::split_list(&t))
                    .unwrap_or_default(),
            };
            let parsed: Option<Vec<Role>> = names.iter().map(|n| Role::parse(n)).collect();
            match parsed.and_then(RoleSet::new) {
                Some(set) => Some(set),
                None => {
                    v.fail(
                        "roles",
                        (
                            "invalid",
                            format!(
                                "must be role names joined by ';' ({})",
                                Role::ALL.map(|r| r.as_str()).join(", ")
                            ),
                        ),
                    );
                    None
                }
            }
        }
    };
    let email = match v.text("email") {
        Some(e) if validator::ValidateEmail::validate_email(&e) && e.len() <= 254 => Some(Some(e)),
        Some(_) => {
            v.fail("email", ("invalid", "not an e-mail address".to_owned()));
            None
        }
        None if v.has("email") => Some(None),
        None => None,
    };
    let display_name = v.text("display_name");
    if display_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 200)
    {
        v.fail(
            "display_name",
            ("too_long", "must be at most 200 characters".to_owned()),
        );
    }
    let organization = id_of::<OrganizationId>(conn, &scope, lookups, v, "organization")?;
    let active = v.flag("active");
    if failed_early(v) {
        return Ok(None);
    }
    let existing = match (cx.spec.mode, plan.key.as_deref()) {
        (ImportMode::Create, _) => None,
        (_, Some("id")) => match v.text("id").and_then(|t| t.parse::<UserId>().ok()) {
            Some(id) => db::users::find(conn, &scope, id)?,
            None => None,
        },
        _ => match &username {
            Some(u) => db::users::find_by_username(conn, &scope, u.as_str())?,
            None => None,
        },
    };
    match existing {
        None if cx.spec.mode == ImportMode::Update => Err(ServiceError::NotFound),
        None => {
            let Some(username) = username else {
                return Err(ServiceError::validation(
                    "username",
                    "required",
                    "a new user needs a username",
                ));
            };
            let Some(roles) = roles else {
                return Err(ServiceError::validation(
                    "roles",
                    "required",
                    "a new user needs at least one role",
                ));
            };
            let input = UserInput {
                display_name: display_name.unwrap_or_else(|| username.to_string()),
                username: username.to_string(),
                // No password: the user signs in after an administrator sets one (as mail
                // intake's requesters do).
                password_hash: "!".to_owned(),
                email: email.flatten(),
                roles,
                organization_id: organization.flatten(),
            };
            let user =
                crate::service::directory::create_user(conn, cx.principal, &scope, &input, cx.now)?;
            Ok(Some((CREATED, user.id.to_string(), Some(user.username))))
        }
        Some(current) => {
            let update = UserUpdate {
                display_name: display_name.filter(|n| *n != current.display_name),
                email: email.filter(|e| *e != current.email),
                roles: roles.filter(|r| r.to_storage() != current.roles),
                organization_id: organization.filter(|o| *o != current.organization_id),
                active: active.filter(|a| *a != current.active),
            };
            let unchanged = update.display_name.is_none()
                && update.email.is_none()
                && update.roles.is_none()
                && update.organization_id.is_none()
                && update.active.is_none();
            if unchanged {
                return Ok(Some((
                    UNCHANGED,
                    current.id.to_string(),
                    Some(current.username),
                )));
            }
            let user = crate::service::directory::update_user(
                conn,
                cx.principal,
                &scope,
                current.id,
                None,
                update,
                cx.now,
            )?;
            Ok(Some((UPDATED, user.id.to_string(), Some(user.username))))
        }
    }
}

fn item_row(
    conn: &mut DbConnection,
    cx: &RunContext<'_>,
    v: &mut Values<'_>,
) -> Result<Applied, ServiceError> {
    let scope = cx.principal.audit_scope();
    let master_key = cx.spec.target_key.clone().unwrap_or_default();
    let code = match v.text("code").map(|c| ItemCode::parse(&c)) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            v.fail("code", ("invalid", e.to_owned()));
            None
        }
        None => {
            v.fail("code", ("required", "every item needs a code".to_owned()));
            None
        }
    };
    let (mut ja, mut en) = (v.text("label_ja"), v.text("label_en"));
    if let Some(Value::Object(label)) = v.cell("label") {
        ja = ja.or_else(|| label.get("ja").and_then(text_of));
        en = en.or_else(|| label.get("en").and_then(text_of));
    }
    let order = match v.text("order") {
        Some(t) => match crate::domain::import::parse_number(&t, true)
            .and_then(|n| n.as_i64())
            .and_then(|n| i32::try_from(n).ok())
        {
            Some(n) => Some(n),
            None => {
                v.fail("order", ("invalid_type", "must be an integer".to_owned()));
                None
            }
        },
        None => None,
    };
    let active = v.flag("active");
    let parent = if v.has("parent") {
        match v.text("parent").map(|p| ItemCode::parse(&p)) {
            Some(Ok(p)) => Some(Some(p)),
            Some(Err(e)) => {
                v.fail("parent", ("invalid", e.to_owned()));
                None
            }
            None => Some(None),
        }
    } else {
        None
    };
    let Some(code) = code.filter(|_| !failed_early(v)) else {
        return Ok(None);
    };
    let master = crate::service::masters::find(conn, &scope, &master_key)?;
    let existing = match cx.spec.mode {
        ImportMode::Create => None,
        _ => db::masters::find_item(conn, &scope, master.id, code.as_str())?,
    };
    match existing {
        None if cx.spec.mode == ImportMode::Update => Err(ServiceError::NotFound),
        None => {
            let label = Labels {
                ja: ja.clone().or_else(|| en.clone()).unwrap_or_default(),
                en: en.or(ja).unwrap_or_default(),
            };
            if let Err((lang, message)) = label.check() {
                return Err(ServiceError::validation(
                    &format!("label_{lang}"),
                    "invalid",
                    message,
                ));
            }
            let input = ItemInput {
                code: code.clone(),
                label,
                order,
                active: active.unwrap_or(true),
                parent: parent.flatten(),
            };
            crate::service::masters::add_item(
                conn,
                cx.principal,
                &scope,
                &master_key,
                &input,
                cx.now,
            )?;
            Ok(Some((
                CREATED,
                code.as_str().to_owned(),
                Some(code.as_str().to_owned()),
            )))
        }
        Some(current) => {
            let changes = ItemChanges {
                label_ja: ja.filter(|l| *l != current.label_ja),
                label_en: en.filter(|l| *l != current.label_en),
                sort_order: order.filter(|o| *o != current.sort_order),
                active: active.filter(|a| *a != current.active),
                parent_code: parent
                    .map(|p| p.map(|c| c.as_str().to_owned()))
                    .filter(|p| *p != current.parent_code),
            };
            for (lang, label) in [("ja", &changes.label_ja), ("en", &changes.label_en)] {
                if label.as_ref().is_some_and(|l| l.chars().count() > 200) {
                    return Err(ServiceError::validation(
                        &format!("label_{lang}"),
                        "invalid",
                        "must be 1 to 200 characters",
                    ));
                }
            }
            let unchanged = changes.label_ja.is_none()
                && changes.label_en.is_none()
                && changes.sort_order.is_none()
                && changes.active.is_none()
                && changes.parent_code.is_none();
            if unchanged {
                return Ok(Some((UNCHANGED, current.code.clone(), Some(current.code))));
            }
            crate::service::masters::update_item(
                conn,
                cx.principal,
                &scope,
                &master_key,
                code.as_str(),
                None,
                changes,
                cx.now,
            )?;
            Ok(Some((
                UPDATED,
                code.as_str().to_owned(),
                Some(code.as_str().to_owned()),
            )))
        }
    }
}
