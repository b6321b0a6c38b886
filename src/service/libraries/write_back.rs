//! Write-back from a transition: `library_upsert` / `library_update` actions.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::db::libraries::RecordRow;
use crate::db::{self, DbConnection};
use crate::domain::identity::Role;
use crate::domain::ids::RecordId;
use crate::domain::library::LibraryOperation;
use crate::domain::library::Reader;
use crate::domain::template::{FieldSet, MappedValue, convert_literal, convert_mapped};
use crate::service::error::ConflictKind;
use crate::service::error::{FieldError, ServiceError};

use super::{Change, Library, Source, Writer, change, insert, merged, validate, without_nulls};

/// What a transition's library action did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct LibraryWrite {
    pub library: String,
    /// `created` or `updated`.
    pub operation: LibraryOperation,
    pub record: RecordRow,
    /// The record fields the action wrote, after conversion.
    pub fields: Map<String, Value>,
    /// The ticket field the created record's id was written back into.
    pub record_field: Option<String>,
}

/// A library action of a transition, as the executor hands it over.
#[derive(Debug, Clone, Copy)]
pub enum ActionTarget {
    /// `library_upsert`: the record in the ticket's `record_field` when set, else the one
    /// this ticket created before, else a new one.
    Upsert { record: Option<RecordId> },
    /// `library_update`: exactly this record.
    Update { record: RecordId },
}

/// Runs a `library_upsert` / `library_update` action inside the transition's transaction,
/// with the workflow's authority (whoever fired the transition); `w.source` names the ticket
/// and transition. Every failure names the
/// library and the field: 422 for values the library refuses (`errors[].field` is
/// `<action>.<library>.fields.<key>`), `ConflictKind::LibraryWriteFailed` for a missing
/// library or record.
pub fn write_from_transition(
    conn: &mut DbConnection,
    w: &Writer<'_>,
    library_key: &str,
    target: ActionTarget,
    mapped: &BTreeMap<String, MappedValue>,
) -> Result<LibraryWrite, ServiceError> {
    let scope = w.scope;
    let ticket = match w.source {
        Source::Ticket { id, .. } => *id,
        Source::User => {
            return Err(ServiceError::internal(
                "a library action without its ticket",
            ));
        }
    };
    let action = match target {
        ActionTarget::Upsert { .. } => "library_upsert",
        ActionTarget::Update { .. } => "library_update",
    };
    let conflict = |detail: String| ServiceError::Conflict {
        kind: ConflictKind::LibraryWriteFailed,
        detail: format!("{action} into library '{library_key}': {detail}"),
    };
    let located = |field: &str, code: &str, message: String| {
        ServiceError::Validation(vec![FieldError::new(
            format!("{action}.{library_key}.fields.{field}"),
            code,
            message,
        )])
    };
    let library = match db::libraries::find_library(conn, scope, library_key)? {
        Some(row) => Library::of(row)?,
        None => return Err(conflict("the tenant has no such library".to_owned())),
    };
    let mut written = Map::new();
    for (target_key, value) in mapped {
        let Some(field) = library.def.field_def(target_key) else {
            return Err(located(
                target_key,
                "unknown_field",
                "the library has no such field".to_owned(),
            ));
        };
        let converted = match value {
            MappedValue::Copied { value, source_type } => {
                convert_mapped(field.kind, *source_type, value)
            }
            MappedValue::Literal { text } => convert_literal(field.kind, text),
        }
        .ok_or_else(|| {
            located(
                target_key,
                "invalid_type",
                format!("the mapped value is not a {} value", field.kind),
            )
        })?;
        written.insert(target_key.clone(), converted);
    }
    let existing = match target {
        ActionTarget::Update { record } => Some(record),
        ActionTarget::Upsert {
            record: Some(record),
        } => Some(record),
        ActionTarget::Upsert { record: None } => {
            db::libraries::find_origin_record(conn, scope, library.row.id, ticket)?.map(|r| r.id)
        }
    };
    // The workflow writes with staff authority: every field, no library access check.
    let workflow_roles = [Role::ProcessManager];
    let reader = Reader {
        roles: &workflow_roles,
        organization: None,
    };
    let prefix = |e: ServiceError| match e {
        ServiceError::Validation(errors) => ServiceError::Validation(
            errors
                .into_iter()
                .map(|mut e| {
                    e.field = format!("{action}.{library_key}.{}", e.field);
                    e
                })
                .collect(),
        ),
        other => other,
    };
    match existing {
        Some(id) => {
            db::libraries::lock_record(conn, scope, id)?;
            let record = db::libraries::find_record(conn, scope, id)?
                .filter(|r| r.library_id == library.row.id && r.deleted_at.is_none())
                .ok_or_else(|| {
                    conflict(format!("record {} does not exist (or was deleted)", id.0))
                })?;
            let old = record.fields();
            let fields = merged(&old, &written);
            validate(
                conn,
                scope,
                &library,
                &fields,
                &written,
                Some(&old),
                &reader,
            )
            .map_err(prefix)?;
            let record = if fields == old {
                record
            } else {
                change(conn, w, &library, &record, Change::Fields(&fields))?
            };
            Ok(LibraryWrite {
                library: library_key.to_owned(),
                operation: LibraryOperation::Updated,
                record,
                fields: written,
                record_field: None,
            })
        }
        None => {
            let fields = without_nulls(&written);
            validate(conn, scope, &library, &fields, &fields, None, &reader).map_err(prefix)?;
            let record = insert(conn, w, &library, &fields)?;
            Ok(LibraryWrite {
                library: library_key.to_owned(),
                operation: LibraryOperation::Created,
                record,
                fields: written,
                record_field: None,
            })
        }
    }
}
