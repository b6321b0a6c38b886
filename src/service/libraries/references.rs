//! References between tickets, templates, masters and library records.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::auth::TenantScope;
use crate::db::{self, DbConnection};
use crate::domain::ids::RecordId;
use crate::domain::library::{LibraryDefinition, Reader};
use crate::domain::template::{FieldSet, FieldType, parse_definition};
use crate::service::definitions::DefinitionCache;
use crate::service::error::ConflictKind;
use crate::service::error::ServiceError;

use super::{Library, referenced_libraries};

/// Ticket field keys that reference records of this library, in any published template
/// version (the index of ticket values is keyed by field).
pub fn referencing_fields(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    key: &str,
) -> Result<Vec<String>, ServiceError> {
    let mut out = BTreeSet::new();
    for template in db::templates::list_templates(conn, scope, None, i64::MAX)? {
        // Tickets run only on published versions: 1 up to the published one, read through
        // the cache of parsed published definitions.
        for number in 1..=template.published_version.unwrap_or(0) {
            let def = match defs.get(conn, scope, template.id, number) {
                Ok(def) => def,
                Err(ServiceError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            out.extend(
                def.fields
                    .iter()
                    .filter(|f| {
                        f.kind == FieldType::LibraryRef && f.library.as_deref() == Some(key)
                    })
                    .map(|f| f.key.clone()),
            );
        }
    }
    Ok(out.into_iter().collect())
}

/// A library record a ticket field references, as ticket reads expand it.
#[derive(Debug, Clone)]
pub struct Referenced {
    pub library: String,
    pub id: RecordId,
    pub title: String,
    pub deleted: bool,
}

/// The records a ticket's `library_ref` fields name, by field key, for a reader: fields of
/// libraries it may not read are left out (the ticket still shows the id).
pub fn referenced_records<D: FieldSet + ?Sized>(
    conn: &mut DbConnection,
    scope: &TenantScope,
    reader: &Reader<'_>,
    def: &D,
    fields: &Map<String, Value>,
) -> Result<BTreeMap<String, Referenced>, ServiceError> {
    let mut wanted = Vec::new();
    for field in def.field_defs() {
        if field.kind != FieldType::LibraryRef {
            continue;
        }
        if let (Some(Value::String(raw)), Some(library)) = (fields.get(&field.key), &field.library)
            && let Ok(id) = raw.parse::<RecordId>()
        {
            wanted.push((field.key.clone(), library.clone(), id));
        }
    }
    let mut out = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let ids: Vec<RecordId> = wanted.iter().map(|(_, _, id)| *id).collect();
    let found = db::libraries::record_titles(conn, scope, &ids)?;
    let mut libraries: BTreeMap<String, Option<Library>> = BTreeMap::new();
    for (field, key, id) in wanted {
        if !libraries.contains_key(&key) {
            let library = match db::libraries::find_library(conn, scope, &key)? {
                Some(row) => Some(Library::of(row)?),
                None => None,
            };
            libraries.insert(key.clone(), library);
        }
        let Some(Some(library)) = libraries.get(&key) else {
            continue;
        };
        if !library.def.access.may_read(reader) {
            continue;
        }
        if let Some((_, _, title, deleted)) = found
            .iter()
            .find(|(rid, lib, _, _)| *rid == id && *lib == library.row.id)
        {
            out.insert(
                field,
                Referenced {
                    library: key,
                    id,
                    title: title.clone(),
                    deleted: *deleted,
                },
            );
        }
    }
    Ok(out)
}

/// The key of the library holding a record (deleted or not: tickets may still reference a
/// deleted record), if the reader may read that library.
pub fn library_of_record(
    conn: &mut DbConnection,
    scope: &TenantScope,
    reader: &Reader<'_>,
    id: RecordId,
) -> Result<Option<String>, ServiceError> {
    let Some(record) = db::libraries::find_record(conn, scope, id)? else {
        return Ok(None);
    };
    let Some(row) = db::libraries::find_library_by_id(conn, scope, record.library_id)? else {
        return Ok(None);
    };
    let library = Library::of(row)?;
    Ok(library
        .def
        .access
        .may_read(reader)
        .then_some(library.row.key))
}

/// The libraries among `keys` the reader may read: a transition's result names a record's
/// title only for those (the `LibraryChange` entries).
pub fn readable_libraries<'k>(
    conn: &mut DbConnection,
    scope: &TenantScope,
    reader: &Reader<'_>,
    keys: impl IntoIterator<Item = &'k str>,
) -> Result<BTreeSet<String>, ServiceError> {
    let mut out = BTreeSet::new();
    for key in keys.into_iter().collect::<BTreeSet<_>>() {
        if let Some(row) = db::libraries::find_library(conn, scope, key)?
            && Library::of(row)?.def.access.may_read(reader)
        {
            out.insert(key.to_owned());
        }
    }
    Ok(out)
}

/// The keys of every library the reader may read.
pub fn all_readable(
    conn: &mut DbConnection,
    scope: &TenantScope,
    reader: &Reader<'_>,
) -> Result<Vec<String>, ServiceError> {
    let mut out = Vec::new();
    for row in db::libraries::list_libraries(conn, scope)? {
        let library = Library::of(row)?;
        if library.def.access.may_read(reader) {
            out.push(library.row.key);
        }
    }
    Ok(out)
}

/// The key of a library with a select field backed by `master`.
pub fn library_using_master(
    conn: &mut DbConnection,
    scope: &TenantScope,
    master: &str,
) -> Result<Option<String>, ServiceError> {
    for row in db::libraries::list_libraries(conn, scope)? {
        let library = Library::of(row)?;
        if library
            .def
            .fields
            .iter()
            .any(|f| f.master.as_deref() == Some(master))
        {
            return Ok(Some(library.row.key));
        }
    }
    Ok(None)
}

/// Refuses a definition change that would break a template using the library: each
/// template version that references it (published, or the latest) is linted against the old
/// and the new definition, and a problem only the new one has is 409
/// `ConflictKind::LibraryInUse` naming the template and where.
pub(super) fn check_templates_still_fit(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    old: &LibraryDefinition,
    new: &LibraryDefinition,
) -> Result<(), ServiceError> {
    use crate::domain::template::lint;
    // The tenant's context once (every template in it); each template is then linted with
    // itself taken out, as `templates::lint_context` would have built it.
    let tenant = crate::service::templates::lint_context(conn, scope, "")?;
    for template in db::templates::list_templates(conn, scope, None, i64::MAX)? {
        let number = template
            .published_version
            .unwrap_or(template.latest_version);
        let Some(version) = db::templates::find_version(conn, scope, template.id, number)? else {
            continue;
        };
        let Ok(def) = parse_definition(&version.definition.0) else {
            continue;
        };
        if !referenced_libraries(&def).contains(key) {
            continue;
        }
        let mut ctx = tenant.clone();
        ctx.template_key = Some(template.key.clone());
        ctx.templates.remove(&template.key);
        ctx.template_internal.remove(&template.key);
        ctx.libraries.insert(key.to_owned(), old.field_types());
        let before: BTreeSet<(String, &str)> = lint(&def, &ctx)
            .errors
            .into_iter()
            .map(|i| (i.pointer, i.code))
            .collect();
        ctx.libraries.insert(key.to_owned(), new.field_types());
        if let Some(issue) = lint(&def, &ctx)
            .errors
            .into_iter()
            .find(|i| !before.contains(&(i.pointer.clone(), i.code)))
        {
            return Err(ServiceError::Conflict {
                kind: ConflictKind::LibraryInUse,
                detail: format!(
                    "Template {} version {number} would break at {}: {}. Change the template \
                     first.",
                    template.key, issue.pointer, issue.message
                ),
            });
        }
    }
    Ok(())
}
