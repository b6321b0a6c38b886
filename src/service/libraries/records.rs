//! Library records: read, write, review, delete, list, history, and their index upkeep.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::auth::TenantScope;
use crate::db::libraries::{
    RecordAfter, RecordChanges, RecordFilter, RecordRow, SOURCE_FIELDS, SOURCE_INTERNAL_FIELDS,
    VersionRow,
};
use crate::db::types::{Json, Timestamp};
use crate::db::{self, DbConnection};
use crate::domain::event::{EventAudience, EventType, SubjectType};
use crate::domain::ids::{EntityId, RecordId};
use crate::domain::index::{self, IndexedValue};
use crate::domain::library::RecordVersionKind;
use crate::domain::library::{LibraryDefinition, Reader};
use crate::domain::search;
use crate::domain::template::{FieldSet, ValidationContext, public_only, validate_values};
use crate::service::error::ServiceError;
use crate::service::error::check_version;
use crate::service::events;
use crate::service::fields::{check_references, field_errors, master_items, refuse_internal};

use super::{Library, LibraryCaller, MAX_NOTE_CHARS, Source, Writer, readable, writable};

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
pub(super) fn validate(
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

pub(super) fn without_nulls(fields: &Map<String, Value>) -> Map<String, Value> {
    fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Merges a partial update into stored values: `null` clears a field.
pub(super) fn merged(old: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
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
pub(super) enum Change<'a> {
    Fields(&'a Map<String, Value>),
    Review(Option<&'a str>),
    Delete,
}

fn version_row(
    w: &Writer<'_>,
    record: RecordId,
    version: i64,
    kind: RecordVersionKind,
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
        kind: kind.as_str().to_owned(),
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
pub(super) fn insert(
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
    db::libraries::insert_record(conn, scope, &record)?;
    let row = version_row(w, id, 1, RecordVersionKind::Created, &title, fields);
    db::libraries::insert_version(conn, scope, &row)?;
    reindex(conn, scope, library, id, None, (&title, fields))?;
    record_event(conn, w, library, &record, &row, EventType::RecordCreated)?;
    Ok(record)
}

/// Writes one change of a record: the row (only if it is still at the version the change was
/// decided on; 412 otherwise), its version row, and the index entries that differ.
pub(super) fn change(
    conn: &mut DbConnection,
    w: &Writer<'_>,
    library: &Library,
    record: &RecordRow,
    what: Change<'_>,
) -> Result<RecordRow, ServiceError> {
    let (scope, now) = (w.scope, w.now);
    let old = record.fields();
    let (kind, fields, deleted_at, note) = match what {
        Change::Fields(fields) => (RecordVersionKind::Updated, fields.clone(), None, None),
        Change::Review(note) => (RecordVersionKind::Reviewed, old.clone(), None, note),
        Change::Delete => (
            RecordVersionKind::Deleted,
            old.clone(),
            Some(Timestamp::from(now)),
            None,
        ),
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
    db::libraries::insert_version(conn, scope, &row)?;
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
    let record = RecordRow {
        fields: changes.fields,
        title,
        version,
        reviewed_at,
        review_due_at: due,
        deleted_at,
        updated_at,
        ..record.clone()
    };
    let event_type = match kind {
        RecordVersionKind::Reviewed => EventType::RecordReviewed,
        RecordVersionKind::Deleted => EventType::RecordDeleted,
        _ => EventType::RecordUpdated,
    };
    record_event(conn, w, library, &record, &row, event_type)?;
    Ok(record)
}

/// The event of one record version: the record as it now reads (requesters and partners who
/// may read the library get it without internal fields) and, when a workflow wrote it, the
/// ticket and transition.
fn record_event(
    conn: &mut DbConnection,
    w: &Writer<'_>,
    library: &Library,
    record: &RecordRow,
    version: &VersionRow,
    event_type: EventType,
) -> Result<(), ServiceError> {
    let source = version.ticket_id.map(|id| {
        json!({"ticket_id": id, "ticket_key": version.ticket_key, "transition": version.transition})
    });
    let payload = |fields: Map<String, Value>| {
        json!({
            "record": {
                "id": record.id,
                "library": library.row.key,
                "title": record.title,
                "version": record.version,
                "fields": fields,
                "deleted": record.deleted_at.is_some(),
            },
            "source": source,
            "note": version.note,
        })
    };
    let fields = record.fields();
    events::emit(
        conn,
        w.scope,
        w.actor,
        w.now,
        events::Emit {
            event_type,
            subject_type: SubjectType::Record,
            subject_id: EntityId(record.id.0),
            ticket: version.ticket_id,
            container: Some(&library.row.key),
            audience: EventAudience::Library,
            restricted: Some(payload(public_only(&library.def, fields.clone()))),
            payload: payload(fields),
        },
    )
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
pub(super) fn reindex(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: &Library,
    id: RecordId,
    old: Option<(&str, &Map<String, Value>)>,
    new: (&str, &Map<String, Value>),
) -> Result<(), ServiceError> {
    let def = &library.def;
    let new = index_entries(def, new.0, new.1);
    let old = match old {
        Some((title, fields)) => index_entries(def, title, fields),
        None => Default::default(),
    };
    db::libraries::reindex(conn, scope, library.row.id, id, &old, &new)?;
    Ok(())
}
