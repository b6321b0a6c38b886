//! Libraries: definitions (kept by tenant admins and process managers), records (read and
//! written as each library's access says), their versions, their freshness, and the writes
//! ticket transitions make into them. Every use case runs in the caller's transaction; a
//! library the caller may not read answers exactly like a missing one (404).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::definitions::DefinitionCache;
use super::fields::{check_references, field_errors, master_items, refuse_internal};
use super::templates::issues_to_errors;
use super::{audit, unique_or};
use crate::auth::{Principal, TenantScope};
use crate::db::audit::Actor;
use crate::db::libraries::{
    LibraryRow, RecordAfter, RecordChanges, RecordFilter, RecordRow, SOURCE_FIELDS,
    SOURCE_INTERNAL_FIELDS, VersionRow,
};
use crate::db::types::{Json, Timestamp};
use crate::db::{self, DbConnection};
use crate::domain::identity::Role;
use crate::domain::index::{self, IndexedValue};
use crate::domain::library::{LibraryDefinition, Reader, lint_library, parse_library};
use crate::domain::search;
use crate::domain::template::{
    FieldSet, FieldType, LintContext, MappedValue, ValidationContext, convert_literal,
    convert_mapped, is_key, parse_definition, public_only, validate_values,
};
use crate::ids::{LibraryId, OrganizationId, RecordId, TicketId};
use crate::service::error::{ConflictKind, check_version};
use crate::service::error::{FieldError, ServiceError};

/// Version kinds in a record's history.
pub const CREATED: &str = "created";
pub const UPDATED: &str = "updated";
pub const REVIEWED: &str = "reviewed";
pub const DELETED: &str = "deleted";

/// Longest review note, in characters.
pub const MAX_NOTE_CHARS: usize = 2_000;

/// The caller of a library use case, resolved once per request.
#[derive(Debug, Clone)]
pub struct LibraryCaller {
    pub scope: TenantScope,
    pub actor: Actor,
    pub held: Vec<Role>,
    pub organization: Option<uuid::Uuid>,
}

impl LibraryCaller {
    /// Any tenant caller; 403 for the operator.
    pub fn of(principal: &Principal) -> Result<Self, ServiceError> {
        let scope = principal.require(&Role::ALL)?;
        let organization = principal
            .user()
            .ok()
            .and_then(|u| u.organization_id)
            .map(|o| o.0);
        Ok(Self {
            scope,
            actor: principal.actor(),
            held: super::tickets::held_roles(principal),
            organization,
        })
    }

    /// The same caller, as a ticket use case resolved it.
    pub fn of_ticket(caller: &super::tickets::TicketCaller) -> Self {
        Self {
            scope: caller.scope,
            actor: caller.actor.clone(),
            held: caller.held.clone(),
            organization: caller.organization.map(|o| o.0),
        }
    }

    pub fn reader(&self) -> Reader<'_> {
        Reader {
            roles: &self.held,
            organization: self.organization,
        }
    }

    fn require_manager(&self) -> Result<(), ServiceError> {
        if self.reader().is_manager() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(
                "This needs one of the roles: tenant_admin, process_manager.".to_owned(),
            ))
        }
    }
}

/// Who or what made a change to a record.
#[derive(Debug, Clone)]
pub enum Source {
    /// A user (or API key) directly.
    User,
    /// A ticket transition's `library_upsert` / `library_update` action.
    Ticket {
        id: TicketId,
        key: String,
        transition: String,
    },
}

/// Who writes a record, on whose behalf, and when: what every version row records.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub scope: &'a TenantScope,
    pub actor: &'a Actor,
    pub source: &'a Source,
    pub now: DateTime<Utc>,
}

impl<'a> Writer<'a> {
    fn user(caller: &'a LibraryCaller, now: DateTime<Utc>) -> Self {
        Self {
            scope: &caller.scope,
            actor: &caller.actor,
            source: &Source::User,
            now,
        }
    }
}

/// A library with its parsed definition.
#[derive(Debug, Clone)]
pub struct Library {
    pub row: LibraryRow,
    pub def: LibraryDefinition,
}

impl Library {
    fn of(row: LibraryRow) -> Result<Self, ServiceError> {
        let def = parse_library(&row.definition.0).map_err(|_| {
            ServiceError::internal(format!("stored library {} does not parse", row.key))
        })?;
        Ok(Self { row, def })
    }

    /// The record's values as this reader may see them (no internal field unless staff).
    pub fn redact(&self, reader: &Reader<'_>, fields: Map<String, Value>) -> Map<String, Value> {
        if reader.is_staff() {
            fields
        } else {
            public_only(&self.def, fields)
        }
    }

    /// The definition as this reader may see it: internal fields and access only for staff.
    pub fn visible_definition(&self, reader: &Reader<'_>) -> Value {
        let mut value = self.row.definition.0.clone();
        if !reader.is_staff()
            && let Some(map) = value.as_object_mut()
        {
            map.remove("access");
            if let Some(Value::Array(fields)) = map.get_mut("fields") {
                fields.retain(|f| f.get("internal") != Some(&Value::Bool(true)));
            }
            let internal: BTreeSet<String> = self
                .def
                .fields
                .iter()
                .filter(|f| f.internal)
                .map(|f| f.key.clone())
                .collect();
            if let Some(Value::Array(sections)) =
                map.get_mut("layout").and_then(|l| l.get_mut("sections"))
            {
                for section in sections {
                    if let Some(Value::Array(keys)) = section.get_mut("fields") {
                        keys.retain(|k| k.as_str().is_none_or(|k| !internal.contains(k)));
                    }
                }
            }
        }
        value
    }
}

fn find(conn: &mut DbConnection, scope: &TenantScope, key: &str) -> Result<Library, ServiceError> {
    Library::of(db::libraries::find_library(conn, scope, key)?.ok_or(ServiceError::NotFound)?)
}

/// A library the caller may read; 404 otherwise.
pub fn readable(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
) -> Result<Library, ServiceError> {
    let library = find(conn, &caller.scope, key)?;
    if library.def.access.may_read(&caller.reader()) {
        Ok(library)
    } else {
        Err(ServiceError::NotFound)
    }
}

/// A library whose records the caller may change: 404 if unreadable, 403 if read-only.
fn writable(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
) -> Result<Library, ServiceError> {
    let library = readable(conn, caller, key)?;
    if library.def.access.may_write(&caller.reader()) {
        Ok(library)
    } else {
        let writers: Vec<&str> = ["tenant_admin", "process_manager"]
            .into_iter()
            .chain(library.def.access.write.iter().map(|r| r.as_str()))
            .collect();
        Err(ServiceError::Forbidden(format!(
            "The library {key} is read-only for you; its records are written by: {}.",
            writers.join(", ")
        )))
    }
}

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
    let mut ctx = super::templates::lint_context(conn, scope, "")?;
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
        if db::groups::find_organization(conn, scope, OrganizationId(*org))?.is_none() {
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

/// A record the caller may read: live, in a library it may read; 404 otherwise.
pub fn get_record(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
    id: RecordId,
) -> Result<(Library, RecordRow), ServiceError> {
    let library = readable(conn, caller, key)?;
    let record = live_record(conn, &caller.scope, &library, id)?;
    Ok((library, record))
}

fn live_record(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: &Library,
    id: RecordId,
) -> Result<RecordRow, ServiceError> {
    db::libraries::find_record(conn, scope, id)?
        .filter(|r| r.library_id == library.row.id && r.deleted_at.is_none())
        .ok_or(ServiceError::NotFound)
}

/// Record fields validated for a write; errors are located at `<prefix>fields.<key>`.
fn validate(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: &Library,
    fields: &Map<String, Value>,
    changed: &Map<String, Value>,
    previous: Option<&Map<String, Value>>,
    reader: &Reader<'_>,
) -> Result<(), ServiceError> {
    let masters = master_items(conn, scope, &library.def, changed.keys())?;
    let ctx = ValidationContext {
        state: None,
        masters: &masters,
        check_required: true,
        previous,
    };
    validate_values(&library.def, fields, ctx).map_err(field_errors)?;
    check_references(conn, scope, &library.def, changed, reader)
}

/// Creates a record.
pub fn create_record(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
    fields: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<(Library, RecordRow), ServiceError> {
    let library = writable(conn, caller, key)?;
    let reader = caller.reader();
    refuse_internal(&library.def, reader.is_staff(), fields, "library")?;
    let fields = without_nulls(fields);
    validate(
        conn,
        &caller.scope,
        &library,
        &fields,
        &fields,
        None,
        &reader,
    )?;
    let record = insert(conn, &Writer::user(caller, now), &library, &fields)?;
    Ok((library, record))
}

fn without_nulls(fields: &Map<String, Value>) -> Map<String, Value> {
    fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Merges a partial update into stored values: `null` clears a field.
fn merged(old: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
    let mut out = old.clone();
    for (k, v) in patch {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Updates a record's fields (a partial update; `null` clears). A change counts as a review:
/// whoever edits the content vouches for it. A request that changes nothing writes nothing.
pub fn update_record(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
    id: RecordId,
    patch: &Map<String, Value>,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(Library, RecordRow), ServiceError> {
    let library = writable(conn, caller, key)?;
    let scope = &caller.scope;
    db::libraries::lock_record(conn, scope, id)?;
    let record = live_record(conn, scope, &library, id)?;
    check_version(expected_version, record.version)?;
    let reader = caller.reader();
    refuse_internal(&library.def, reader.is_staff(), patch, "library")?;
    let old = record.fields();
    let fields = merged(&old, patch);
    validate(conn, scope, &library, &fields, patch, Some(&old), &reader)?;
    if fields == old {
        // Nothing changes: no version, and no review either (use `…/review` for that).
        return Ok((library, record));
    }
    let record = change(
        conn,
        &Writer::user(caller, now),
        &library,
        &record,
        Change::Fields(&fields),
    )?;
    Ok((library, record))
}

/// Records a review: the record is confirmed as still valid, its due date moves on.
pub fn review_record(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
    id: RecordId,
    note: Option<&str>,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(Library, RecordRow), ServiceError> {
    let library = writable(conn, caller, key)?;
    let scope = &caller.scope;
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(ServiceError::validation(
            "note",
            "too_long",
            format!("at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    db::libraries::lock_record(conn, scope, id)?;
    let record = live_record(conn, scope, &library, id)?;
    check_version(expected_version, record.version)?;
    let record = change(
        conn,
        &Writer::user(caller, now),
        &library,
        &record,
        Change::Review(note),
    )?;
    Ok((library, record))
}

/// Deletes a record softly: it leaves lists, searches and new references; its versions stay.
pub fn delete_record(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
    id: RecordId,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let library = writable(conn, caller, key)?;
    let scope = &caller.scope;
    db::libraries::lock_record(conn, scope, id)?;
    let record = live_record(conn, scope, &library, id)?;
    check_version(expected_version, record.version)?;
    change(
        conn,
        &Writer::user(caller, now),
        &library,
        &record,
        Change::Delete,
    )?;
    Ok(())
}

/// A record list request.
#[derive(Debug, Clone)]
pub struct RecordQuery {
    pub stale: bool,
    pub updated_after: Option<Timestamp>,
    pub updated_before: Option<Timestamp>,
    pub fields: Vec<(String, String)>,
    pub q: Option<search::SearchQuery>,
    /// See `db::libraries::RecordFilter::probe_threshold`.
    pub probe_threshold: i64,
    pub sort: db::libraries::RecordSort,
    pub descending: bool,
}

/// One page of a library's live records matching `query`.
pub fn list_records(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
    query: &RecordQuery,
    after: Option<&RecordAfter>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<(Library, Vec<RecordRow>), ServiceError> {
    let library = readable(conn, caller, key)?;
    let reader = caller.reader();
    let mut fields = Vec::new();
    for (field, raw) in &query.fields {
        // A filter on a field the caller cannot see (or that does not exist) matches nothing
        // rather than telling whether the field exists.
        let visible = library
            .def
            .field_def(field)
            .is_some_and(|f| reader.is_staff() || !f.internal);
        if !visible {
            return Ok((library, Vec::new()));
        }
        fields.push((field.clone(), index::filter_candidates(raw)));
    }
    let filter = RecordFilter {
        library: library.row.id,
        internal: reader.is_staff(),
        due_by: query.stale.then_some(now.into()),
        updated_after: query.updated_after,
        updated_before: query.updated_before,
        fields,
        tokens: query
            .q
            .as_ref()
            .map(|q| q.tokens.clone())
            .unwrap_or_default(),
        probe_threshold: query.probe_threshold,
        sort: query.sort,
        descending: query.descending,
    };
    let rows = db::libraries::list_records(conn, &caller.scope, &filter, after, limit)?;
    Ok((library, rows))
}

/// One version of a record as its history shows it.
#[derive(Debug, Clone)]
pub struct VersionView {
    pub row: VersionRow,
    /// Fields as of this version, redacted for the reader.
    pub fields: Map<String, Value>,
    /// Field keys this version changed, redacted for the reader.
    pub changed: Vec<String>,
}

/// A record's versions (deleted records included: their history stays).
pub fn history(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
    id: RecordId,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<VersionView>, ServiceError> {
    let library = readable(conn, caller, key)?;
    let scope = &caller.scope;
    db::libraries::find_record(conn, scope, id)?
        .filter(|r| r.library_id == library.row.id)
        .ok_or(ServiceError::NotFound)?;
    let rows = db::libraries::versions(conn, scope, id, after, limit)?;
    let mut previous = match rows.first() {
        Some(first) => db::libraries::version_before(conn, scope, id, first.version)?
            .map(|v| v.fields.0.as_object().cloned().unwrap_or_default()),
        None => None,
    };
    let reader = caller.reader();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let fields = row.fields.0.as_object().cloned().unwrap_or_default();
        let before = previous.take().unwrap_or_default();
        let keys: BTreeSet<&String> = fields.keys().chain(before.keys()).collect();
        let changed: Vec<String> = keys
            .into_iter()
            .filter(|k| fields.get(*k) != before.get(*k))
            .filter(|k| reader.is_staff() || library.def.is_public(k))
            .cloned()
            .collect();
        let visible = library.redact(&reader, fields.clone());
        previous = Some(fields);
        out.push(VersionView {
            row,
            fields: visible,
            changed,
        });
    }
    Ok(out)
}

/// What a change does to a record.
#[derive(Debug, Clone, Copy)]
enum Change<'a> {
    Fields(&'a Map<String, Value>),
    Review(Option<&'a str>),
    Delete,
}

fn version_row(
    w: &Writer<'_>,
    record: RecordId,
    version: i64,
    kind: &str,
    title: &str,
    fields: &Map<String, Value>,
) -> VersionRow {
    let (ticket_id, ticket_key, transition) = match w.source {
        Source::User => (None, None, None),
        Source::Ticket {
            id,
            key,
            transition,
        } => (Some(*id), Some(key.clone()), Some(transition.clone())),
    };
    VersionRow {
        tenant_id: w.scope.tenant_id(),
        record_id: record,
        version,
        kind: kind.to_owned(),
        at: w.now.into(),
        actor_kind: w.actor.kind.to_owned(),
        actor_id: w.actor.id,
        actor_name: w.actor.name.clone(),
        ticket_id,
        ticket_key,
        transition,
        title: title.to_owned(),
        fields: Json(Value::Object(fields.clone())),
        note: None,
    }
}

/// Inserts a new record (validated already) with its first version and index entries.
fn insert(
    conn: &mut DbConnection,
    w: &Writer<'_>,
    library: &Library,
    fields: &Map<String, Value>,
) -> Result<RecordRow, ServiceError> {
    let (scope, now) = (w.scope, w.now);
    let id = RecordId::new_at(now);
    let title = library.def.title_of(fields);
    let origin = match w.source {
        Source::Ticket { id, .. } => Some(*id),
        Source::User => None,
    };
    let at = Timestamp::from(now);
    let record = RecordRow {
        tenant_id: scope.tenant_id(),
        id,
        library_id: library.row.id,
        title: title.clone(),
        fields: Json(Value::Object(fields.clone())),
        version: 1,
        reviewed_at: at,
        review_due_at: library.def.review_due(now).map(Timestamp::from),
        deleted_at: None,
        origin_ticket_id: origin,
        created_at: at,
        updated_at: at,
    };
    db::libraries::insert_record(conn, &record)?;
    let row = version_row(w, id, 1, CREATED, &title, fields);
    db::libraries::insert_version(conn, &row)?;
    reindex(conn, scope, library, id, None, (&title, fields))?;
    Ok(record)
}

/// Writes one change of a record: the row (only if it is still at the version the change was
/// decided on; 412 otherwise), its version row, and the index entries that differ.
fn change(
    conn: &mut DbConnection,
    w: &Writer<'_>,
    library: &Library,
    record: &RecordRow,
    what: Change<'_>,
) -> Result<RecordRow, ServiceError> {
    let (scope, now) = (w.scope, w.now);
    let old = record.fields();
    let (kind, fields, deleted_at, note) = match what {
        Change::Fields(fields) => (UPDATED, fields.clone(), None, None),
        Change::Review(note) => (REVIEWED, old.clone(), None, note),
        Change::Delete => (DELETED, old.clone(), Some(Timestamp::from(now)), None),
    };
    let title = library.def.title_of(&fields);
    let version = record.version + 1;
    let (reviewed_at, due) = match what {
        Change::Delete => (record.reviewed_at, record.review_due_at),
        _ => (
            Timestamp::from(now),
            library.def.review_due(now).map(Timestamp::from),
        ),
    };
    let changes = RecordChanges {
        title: &title,
        fields: Json(Value::Object(fields.clone())),
        version,
        reviewed_at,
        review_due_at: due,
        deleted_at,
        updated_at: now.into(),
    };
    if !db::libraries::update_record(conn, scope, record.id, &changes)? {
        return Err(ServiceError::PreconditionFailed);
    }
    let mut row = version_row(w, record.id, version, kind, &title, &fields);
    row.note = note.map(str::to_owned);
    db::libraries::insert_version(conn, &row)?;
    // A deleted record has no index entries.
    let empty = Map::new();
    let indexed = if deleted_at.is_some() {
        ("", &empty)
    } else {
        (title.as_str(), &fields)
    };
    let old_indexed = Some((record.title.as_str(), &old));
    reindex(conn, scope, library, record.id, old_indexed, indexed)?;
    let updated_at = changes.updated_at;
    Ok(RecordRow {
        fields: changes.fields,
        title,
        version,
        reviewed_at,
        review_due_at: due,
        deleted_at,
        updated_at,
        ..record.clone()
    })
}

/// What a record's values put into the field index and the token index.
fn index_entries(
    def: &LibraryDefinition,
    title: &str,
    fields: &Map<String, Value>,
) -> (BTreeSet<IndexedValue>, BTreeSet<(String, i16)>) {
    if title.is_empty() && fields.is_empty() {
        return Default::default();
    }
    index::entries(def, title, fields, (SOURCE_FIELDS, SOURCE_INTERNAL_FIELDS))
}

/// Brings a record's index entries from its old values to its new ones (a deleted record
/// has none), touching only the entries that differ.
fn reindex(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: &Library,
    id: RecordId,
    old: Option<(&str, &Map<String, Value>)>,
    new: (&str, &Map<String, Value>),
) -> Result<(), ServiceError> {
    let def = &library.def;
    let (new_values, new_tokens) = index_entries(def, new.0, new.1);
    let (old_values, old_tokens) = match old {
        Some((title, fields)) => index_entries(def, title, fields),
        None => Default::default(),
    };
    let lib = library.row.id;
    let gone: Vec<_> = old_values.difference(&new_values).cloned().collect();
    let added: Vec<_> = new_values.difference(&old_values).cloned().collect();
    db::libraries::delete_field_index(conn, scope, lib, id, &gone)?;
    db::libraries::insert_field_index(conn, scope, lib, id, &added)?;
    let gone: Vec<_> = old_tokens.difference(&new_tokens).cloned().collect();
    let added: Vec<_> = new_tokens.difference(&old_tokens).cloned().collect();
    db::libraries::delete_tokens(conn, scope, lib, id, &gone)?;
    db::libraries::insert_tokens(conn, scope, lib, id, &added)?;
    Ok(())
}

/// What a transition's library action did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct LibraryWrite {
    pub library: String,
    /// `created` or `updated`.
    pub operation: &'static str,
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
                operation: "updated",
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
                operation: "created",
                record,
                fields: written,
                record_field: None,
            })
        }
    }
}

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
            && let Ok(id) = raw.parse::<uuid::Uuid>()
        {
            wanted.push((field.key.clone(), library.clone(), RecordId(id)));
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
fn check_templates_still_fit(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    old: &LibraryDefinition,
    new: &LibraryDefinition,
) -> Result<(), ServiceError> {
    use crate::domain::template::lint;
    // The tenant's context once (every template in it); each template is then linted with
    // itself taken out, as `templates::lint_context` would have built it.
    let tenant = super::templates::lint_context(conn, scope, "")?;
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
