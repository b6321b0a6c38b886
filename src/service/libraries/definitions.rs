//! Library definitions: list, create, change (with the reindex it may need), delete.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::auth::TenantScope;
use crate::db::types::Timestamp;
use crate::db::{self, DbConnection};
use crate::domain::ids::LibraryId;
use crate::domain::library::{LibraryDefinition, lint_library, parse_library};
use crate::domain::template::{FieldSet, LintContext, is_key, parse_definition};
use crate::service::error::{ConflictKind, check_version};
use crate::service::error::{FieldError, ServiceError};
use crate::service::templates::issues_to_errors;
use crate::service::{audit, unique_or};

use super::{Library, LibraryCaller, check_templates_still_fit, find, reindex};

/// The libraries the caller may read, by key.
pub fn list(conn: &mut DbConnection, caller: &LibraryCaller) -> Result<Vec<Library>, ServiceError> {
    let reader = caller.reader();
    let mut out = Vec::new();
    for row in db::libraries::list_libraries(conn, &caller.scope)? {
        let library = Library::of(row)?;
        if library.def.access.may_read(&reader) {
            out.push(library);
        }
    }
    Ok(out)
}

/// What the library linter needs: the tenant's masters and the other libraries' fields.
fn lint_context(
    conn: &mut DbConnection,
    scope: &TenantScope,
    own_key: &str,
    own: &LibraryDefinition,
) -> Result<LintContext, ServiceError> {
    let mut ctx = crate::service::templates::lint_context(conn, scope, "")?;
    ctx.template_key = None;
    ctx.libraries.insert(own_key.to_owned(), own.field_types());
    Ok(ctx)
}

/// Parses and lints a definition; any error is 422 located under `definition`.
fn check_definition(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    value: &Value,
) -> Result<LibraryDefinition, ServiceError> {
    let def = parse_library(value)
        .map_err(|issues| ServiceError::Validation(issues_to_errors(&issues, "definition")))?;
    let report = lint_library(&def, &lint_context(conn, scope, key, &def)?);
    let mut errors = issues_to_errors(&report.errors, "definition");
    for (n, org) in def.access.partner_organizations.iter().enumerate() {
        if db::groups::find_organization(conn, scope, *org)?.is_none() {
            errors.push(FieldError::new(
                format!("definition/access/partner_organizations/{n}"),
                "unknown_reference",
                "no organization with this id",
            ));
        }
    }
    if errors.is_empty() {
        Ok(def)
    } else {
        Err(ServiceError::Validation(errors))
    }
}

/// Creates a library (tenant admins and process managers).
pub fn create(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
    definition: &Value,
    now: DateTime<Utc>,
) -> Result<Library, ServiceError> {
    caller.require_manager()?;
    if !is_key(key) {
        return Err(ServiceError::validation(
            "key",
            "invalid_key",
            "a lowercase letter, then lowercase letters, digits or underscores (at most 63)",
        ));
    }
    check_definition(conn, &caller.scope, key, definition)?;
    if db::libraries::find_library(conn, &caller.scope, key)?.is_some() {
        return Err(ServiceError::duplicate("The library key is already taken."));
    }
    let id = LibraryId::new_at(now);
    db::libraries::insert_library(conn, &caller.scope, id, key, definition, now.into())
        .map_err(|e| unique_or(e, "The library key"))?;
    audit(
        conn,
        &caller.scope,
        &caller.actor,
        "library.created",
        ("library", key),
        json!({}),
        now.into(),
    )?;
    find(conn, &caller.scope, key)
}

/// Replaces a library's definition. A field that records hold values for keeps its type and
/// cannot be removed (`ConflictKind::LibraryFieldInUse`); a changed review interval moves
/// every record's due date; changed fields or title field rebuild the records' titles and
/// indexes (a field made internal stops being searchable by requesters and partners at once).
pub fn update(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
    definition: &Value,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Library, ServiceError> {
    caller.require_manager()?;
    let scope = &caller.scope;
    let library = find(conn, scope, key)?;
    check_version(expected_version, library.row.version)?;
    let def = check_definition(conn, scope, key, definition)?;
    let in_use = db::libraries::fields_in_use(conn, scope, library.row.id)?;
    let broken: Vec<String> = in_use
        .into_iter()
        .filter(|k| {
            let old = library.def.field_def(k).map(|f| f.kind);
            let new = def.field_def(k).map(|f| f.kind);
            old.is_some() && old != new
        })
        .collect();
    if !broken.is_empty() {
        return Err(ServiceError::Conflict {
            kind: ConflictKind::LibraryFieldInUse,
            detail: format!(
                "Records hold values for {}: such a field can be neither removed nor given \
                 another type.",
                broken.join(", ")
            ),
        });
    }
    check_templates_still_fit(conn, scope, key, &library.def, &def)?;
    let version = library.row.version + 1;
    if !db::libraries::update_library(conn, scope, library.row.id, definition, version, now.into())?
    {
        return Err(ServiceError::PreconditionFailed);
    }
    if def.review_interval_days != library.def.review_interval_days {
        for (record, reviewed_at) in db::libraries::review_dates(conn, scope, library.row.id)? {
            let due = def.review_due(reviewed_at.0).map(Timestamp::from);
            db::libraries::set_review_due(conn, scope, record, due)?;
        }
    }
    if def.fields != library.def.fields || def.title_field != library.def.title_field {
        // Which fields are internal, textual or the title decides what the indexes hold.
        let changed = Library {
            row: library.row.clone(),
            def,
        };
        rebuild_index(conn, scope, &changed)?;
    }
    audit(
        conn,
        scope,
        &caller.actor,
        "library.updated",
        ("library", key),
        json!({"version": version}),
        now.into(),
    )?;
    find(conn, scope, key)
}

/// Recomputes every live record's title and index entries from its values, after the
/// definition changed what they are made of (one pass over the library).
fn rebuild_index(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: &Library,
) -> Result<(), ServiceError> {
    db::libraries::clear_index(conn, scope, library.row.id)?;
    for record in db::libraries::live_records(conn, scope, library.row.id)? {
        let fields = record.fields();
        let title = library.def.title_of(&fields);
        if title != record.title {
            db::libraries::set_title(conn, scope, record.id, &title)?;
        }
        reindex(conn, scope, library, record.id, None, (&title, &fields))?;
    }
    Ok(())
}

/// Deletes a library that no record and no template uses (409 otherwise).
pub fn delete(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    caller.require_manager()?;
    let scope = &caller.scope;
    let library = find(conn, scope, key)?;
    check_version(expected_version, library.row.version)?;
    let live = db::libraries::count_live_records(conn, scope, library.row.id)?;
    if live > 0 {
        return Err(ServiceError::Conflict {
            kind: ConflictKind::LibraryInUse,
            detail: format!("The library {key} still has {live} records; delete them first."),
        });
    }
    if let Some(template) = template_using_library(conn, scope, key)? {
        return Err(ServiceError::Conflict {
            kind: ConflictKind::LibraryInUse,
            detail: format!("The template {template} references the library {key}."),
        });
    }
    db::libraries::delete_library(conn, scope, library.row.id)?;
    audit(
        conn,
        scope,
        &caller.actor,
        "library.deleted",
        ("library", key),
        json!({}),
        now.into(),
    )
}

/// The key of a template any of whose versions references the library (a `library_ref`
/// field or a library action).
fn template_using_library(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
) -> Result<Option<String>, ServiceError> {
    for template in db::templates::list_templates(conn, scope, None, i64::MAX)? {
        for version in db::templates::list_versions(conn, scope, template.id)? {
            let Ok(def) = parse_definition(&version.definition.0) else {
                continue;
            };
            if referenced_libraries(&def).contains(key) {
                return Ok(Some(template.key));
            }
        }
    }
    Ok(None)
}

/// Libraries a template definition references.
pub fn referenced_libraries(def: &crate::domain::template::TemplateDefinition) -> BTreeSet<String> {
    use crate::domain::template::Action;
    let mut out: BTreeSet<String> = def
        .fields
        .iter()
        .filter_map(|f| f.library.clone())
        .collect();
    for t in &def.transitions {
        for action in &t.actions {
            if let Action::LibraryUpsert { library, .. } | Action::LibraryUpdate { library, .. } =
                action
            {
                out.insert(library.clone());
            }
        }
    }
    out
}
