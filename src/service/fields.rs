//! What tickets and library records share about field values beyond the pure validation:
//! the active master items a request's values are checked against, and references to
//! users, groups, organizations and library records that must exist in the tenant.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::auth::TenantScope;
use crate::db::{self, DbConnection};
use crate::domain::ids::{GroupId, OrganizationId, RecordId, UserId};
use crate::domain::library::{Reader, parse_library};
use crate::domain::template::{FieldSet, FieldType, FieldViolation, MasterItems};
use crate::service::error::{FieldError, ServiceError};

/// Active item codes of the masters behind the given fields (the ones a request sets: only
/// new values are checked against active items).
pub fn master_items<'k, D: FieldSet + ?Sized>(
    conn: &mut DbConnection,
    scope: &TenantScope,
    def: &D,
    fields: impl IntoIterator<Item = &'k String>,
) -> Result<MasterItems, ServiceError> {
    let keys: BTreeSet<&str> = fields
        .into_iter()
        .filter_map(|k| def.field_def(k).and_then(|f| f.master.as_deref()))
        .collect();
    let keys: Vec<&str> = keys.into_iter().collect();
    let mut out = MasterItems::new();
    for key in &keys {
        out.insert((*key).to_owned(), BTreeSet::new());
    }
    for (master, code) in db::masters::active_codes(conn, scope, &keys)? {
        out.entry(master).or_default().insert(code);
    }
    Ok(out)
}

/// Field problems of the engine as a 422 with one entry per field.
pub fn field_errors(violations: Vec<FieldViolation>) -> ServiceError {
    ServiceError::Validation(
        violations
            .into_iter()
            .map(|v| FieldError::new(v.field, v.code, v.message))
            .collect(),
    )
}

/// Refuses values for internal fields from callers who may not see them (not staff): they
/// are told the `owner` (template, library) has no such field, as for an unknown one.
pub fn refuse_internal<D: FieldSet + ?Sized>(
    def: &D,
    staff: bool,
    values: &Map<String, Value>,
    owner: &str,
) -> Result<(), ServiceError> {
    if staff {
        return Ok(());
    }
    let errors: Vec<FieldError> = values
        .keys()
        .filter(|k| def.field_def(k).is_some_and(|f| f.internal))
        .map(|k| {
            let message = format!("the {owner} has no such field");
            FieldError::new(format!("fields.{k}"), "unknown_field", message)
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Validation(errors))
    }
}

/// Checks that user, group and organization values name records of this tenant, and that
/// a `library_ref` value names a live record of the field's library that `reader` may read
/// (422 `unknown_reference` otherwise; another tenant's record is simply not found).
pub fn check_references<D: FieldSet + ?Sized>(
    conn: &mut DbConnection,
    scope: &TenantScope,
    def: &D,
    values: &Map<String, Value>,
    reader: &Reader<'_>,
) -> Result<(), ServiceError> {
    let mut errors = Vec::new();
    // Library key → (id, readable by the caller), looked up once per request.
    let mut libraries = BTreeMap::new();
    for field in def.field_defs() {
        let Some(Value::String(raw)) = values.get(&field.key) else {
            continue;
        };
        let Ok(id) = raw.parse::<uuid::Uuid>() else {
            continue;
        };
        let exists = match field.kind {
            FieldType::User => db::users::find(conn, scope, UserId(id))?.is_some_and(|u| u.active),
            FieldType::Group => db::groups::find_group(conn, scope, GroupId(id))?.is_some(),
            FieldType::Organization => {
                db::groups::find_organization(conn, scope, OrganizationId(id))?.is_some()
            }
            FieldType::LibraryRef => {
                let key = field.library.clone().unwrap_or_default();
                let library = match libraries.get(&key) {
                    Some(found) => *found,
                    None => {
                        let found = db::libraries::find_library(conn, scope, &key)?.map(|row| {
                            let readable = parse_library(&row.definition.0)
                                .is_ok_and(|d| d.access.may_read(reader));
                            (row.id, readable)
                        });
                        libraries.insert(key, found);
                        found
                    }
                };
                match library {
                    Some((library, true)) => db::libraries::find_record(conn, scope, RecordId(id))?
                        .is_some_and(|r| r.library_id == library && r.deleted_at.is_none()),
                    _ => false,
                }
            }
            _ => true,
        };
        if !exists {
            let what = match (field.kind, &field.library) {
                (FieldType::LibraryRef, Some(library)) => format!("record of library '{library}'"),
                (kind, _) => kind.to_string(),
            };
            errors.push(FieldError::new(
                format!("fields.{}", field.key),
                "unknown_reference",
                format!("no active {what} with this id"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Validation(errors))
    }
}
