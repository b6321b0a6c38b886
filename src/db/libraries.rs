//! Libraries, their records, record versions, and the records' field index and search
//! tokens (the same canonical values and tokens as tickets, in tables of their own keyed by
//! library).

use diesel::prelude::*;

use super::index::{self, Entries, IndexFilter, IndexScope, MAX_ROWS_PER_STATEMENT, RECORDS};
use super::schema::{
    libraries, library_field_values, library_record_versions, library_records, library_tokens,
};
use super::types::{DbUuid, Json, Timestamp};
use super::{Backend, DbConnection};
use crate::auth::TenantScope;
use crate::domain::ids::{EntityId, LibraryId, RecordId, TenantId, TicketId};

/// Search token sources of a record; requesters and partners match only the public one.
pub const SOURCE_FIELDS: i16 = 0;
pub const SOURCE_INTERNAL_FIELDS: i16 = 1;

#[derive(Debug, Clone, Queryable)]
pub struct LibraryRow {
    pub tenant_id: TenantId,
    pub id: LibraryId,
    pub key: String,
    pub definition: Json,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn insert_library(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: LibraryId,
    key: &str,
    definition: &serde_json::Value,
    now: Timestamp,
) -> QueryResult<()> {
    diesel::insert_into(libraries::table)
        .values((
            libraries::tenant_id.eq(scope.tenant_id()),
            libraries::id.eq(id),
            libraries::key.eq(key),
            libraries::definition.eq(Json(definition.clone())),
            libraries::version.eq(1),
            libraries::created_at.eq(now),
            libraries::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find_library(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
) -> QueryResult<Option<LibraryRow>> {
    libraries::table
        .filter(libraries::tenant_id.eq(scope.tenant_id()))
        .filter(libraries::key.eq(key))
        .first(conn)
        .optional()
}

pub fn find_library_by_id(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: LibraryId,
) -> QueryResult<Option<LibraryRow>> {
    libraries::table
        .filter(libraries::tenant_id.eq(scope.tenant_id()))
        .filter(libraries::id.eq(id))
        .first(conn)
        .optional()
}

/// Every library of the tenant, by key (a tenant has tens, not thousands).
pub fn list_libraries(
    conn: &mut DbConnection,
    scope: &TenantScope,
) -> QueryResult<Vec<LibraryRow>> {
    libraries::table
        .filter(libraries::tenant_id.eq(scope.tenant_id()))
        .order(libraries::key.asc())
        .load(conn)
}

/// Replaces a definition if the library is still at `version - 1`; false if it moved on.
pub fn update_library(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: LibraryId,
    definition: &serde_json::Value,
    version: i64,
    now: Timestamp,
) -> QueryResult<bool> {
    let updated = diesel::update(
        libraries::table
            .filter(libraries::tenant_id.eq(scope.tenant_id()))
            .filter(libraries::id.eq(id))
            .filter(libraries::version.eq(version - 1)),
    )
    .set((
        libraries::definition.eq(Json(definition.clone())),
        libraries::version.eq(version),
        libraries::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Deletes a library with its records, their versions and index rows.
pub fn delete_library(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: LibraryId,
) -> QueryResult<()> {
    let tenant = scope.tenant_id();
    diesel::delete(
        library_tokens::table
            .filter(library_tokens::tenant_id.eq(tenant))
            .filter(library_tokens::library_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(
        library_field_values::table
            .filter(library_field_values::tenant_id.eq(tenant))
            .filter(library_field_values::library_id.eq(id)),
    )
    .execute(conn)?;
    let records: Vec<RecordId> = library_records::table
        .filter(library_records::tenant_id.eq(tenant))
        .filter(library_records::library_id.eq(id))
        .select(library_records::id)
        .load(conn)?;
    for chunk in records.chunks(MAX_ROWS_PER_STATEMENT) {
        diesel::delete(
            library_record_versions::table
                .filter(library_record_versions::tenant_id.eq(tenant))
                .filter(library_record_versions::record_id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    diesel::delete(
        library_records::table
            .filter(library_records::tenant_id.eq(tenant))
            .filter(library_records::library_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(
        libraries::table
            .filter(libraries::tenant_id.eq(tenant))
            .filter(libraries::id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}

/// Records of a library that are not deleted.
pub fn count_live_records(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: LibraryId,
) -> QueryResult<i64> {
    library_records::table
        .filter(library_records::tenant_id.eq(scope.tenant_id()))
        .filter(library_records::library_id.eq(library))
        .filter(library_records::deleted_at.is_null())
        .count()
        .get_result(conn)
}

/// Field keys holding a value in at least one live record (a deleted record keeps its values
/// only in its history).
pub fn fields_in_use(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: LibraryId,
) -> QueryResult<Vec<String>> {
    library_field_values::table
        .filter(library_field_values::tenant_id.eq(scope.tenant_id()))
        .filter(library_field_values::library_id.eq(library))
        .select(library_field_values::field)
        .distinct()
        .load(conn)
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = library_records)]
pub struct RecordRow {
    pub tenant_id: TenantId,
    pub id: RecordId,
    pub library_id: LibraryId,
    pub title: String,
    pub fields: Json,
    pub version: i64,
    pub reviewed_at: Timestamp,
    pub review_due_at: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
    pub origin_ticket_id: Option<TicketId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl RecordRow {
    pub fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        self.fields.0.as_object().cloned().unwrap_or_default()
    }
}

pub fn insert_record(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &RecordRow,
) -> QueryResult<()> {
    diesel::insert_into(library_records::table)
        .values(RecordRow {
            tenant_id: scope.tenant_id(),
            ..row.clone()
        })
        .execute(conn)?;
    Ok(())
}

/// A record of the tenant by id (deleted or not), in any library.
pub fn find_record(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: RecordId,
) -> QueryResult<Option<RecordRow>> {
    library_records::table
        .filter(library_records::tenant_id.eq(scope.tenant_id()))
        .filter(library_records::id.eq(id))
        .first(conn)
        .optional()
}

/// Titles and libraries of the given records (deleted ones included), for ticket reads.
pub fn record_titles(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ids: &[RecordId],
) -> QueryResult<Vec<(RecordId, LibraryId, String, bool)>> {
    let rows: Vec<(RecordId, LibraryId, String, Option<Timestamp>)> = library_records::table
        .filter(library_records::tenant_id.eq(scope.tenant_id()))
        .filter(library_records::id.eq_any(ids))
        .select((
            library_records::id,
            library_records::library_id,
            library_records::title,
            library_records::deleted_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, library, title, deleted)| (id, library, title, deleted.is_some()))
        .collect())
}

/// Locks a record row until the transaction ends (SQLite's single writer already does).
pub fn lock_record(conn: &mut DbConnection, scope: &TenantScope, id: RecordId) -> QueryResult<()> {
    if super::backend_of(conn) == Backend::Postgres {
        diesel::sql_query(
            "SELECT 1 FROM library_records WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind::<DbUuid, _>(scope.tenant_id())
        .bind::<DbUuid, _>(id)
        .execute(conn)?;
    }
    Ok(())
}

/// The live record a ticket created in a library with an upsert, if any.
pub fn find_origin_record(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: LibraryId,
    ticket: TicketId,
) -> QueryResult<Option<RecordRow>> {
    library_records::table
        .filter(library_records::tenant_id.eq(scope.tenant_id()))
        .filter(library_records::origin_ticket_id.eq(ticket))
        .filter(library_records::library_id.eq(library))
        .filter(library_records::deleted_at.is_null())
        .order(library_records::id.asc())
        .first(conn)
        .optional()
}

/// The new state of a record after a change; `version` must be the stored one plus one.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = library_records)]
pub struct RecordChanges<'a> {
    pub title: &'a str,
    pub fields: Json,
    pub version: i64,
    pub reviewed_at: Timestamp,
    #[diesel(treat_none_as_null = true)]
    pub review_due_at: Option<Timestamp>,
    #[diesel(treat_none_as_null = true)]
    pub deleted_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// Writes the changes if the record is still at `version - 1`; false if it moved on.
pub fn update_record(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: RecordId,
    changes: &RecordChanges<'_>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        library_records::table
            .filter(library_records::tenant_id.eq(scope.tenant_id()))
            .filter(library_records::id.eq(id))
            .filter(library_records::version.eq(changes.version - 1)),
    )
    .set(changes)
    .execute(conn)?;
    Ok(updated == 1)
}

/// Every live record of a library (to rebuild its index after a definition change).
pub fn live_records(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: LibraryId,
) -> QueryResult<Vec<RecordRow>> {
    library_records::table
        .filter(library_records::tenant_id.eq(scope.tenant_id()))
        .filter(library_records::library_id.eq(library))
        .filter(library_records::deleted_at.is_null())
        .order(library_records::id.asc())
        .load(conn)
}

/// Sets a record's title without a new version (its title field was redefined).
pub fn set_title(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: RecordId,
    title: &str,
) -> QueryResult<()> {
    diesel::update(
        library_records::table
            .filter(library_records::tenant_id.eq(scope.tenant_id()))
            .filter(library_records::id.eq(id)),
    )
    .set(library_records::title.eq(title))
    .execute(conn)?;
    Ok(())
}

/// Removes every field index row and token of a library.
pub fn clear_index(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: LibraryId,
) -> QueryResult<()> {
    let tenant = scope.tenant_id();
    diesel::delete(
        library_tokens::table
            .filter(library_tokens::tenant_id.eq(tenant))
            .filter(library_tokens::library_id.eq(library)),
    )
    .execute(conn)?;
    diesel::delete(
        library_field_values::table
            .filter(library_field_values::tenant_id.eq(tenant))
            .filter(library_field_values::library_id.eq(library)),
    )
    .execute(conn)?;
    Ok(())
}

/// `reviewed_at` of every record of a library, to recompute their due dates when the
/// review interval changes.
pub fn review_dates(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: LibraryId,
) -> QueryResult<Vec<(RecordId, Timestamp)>> {
    library_records::table
        .filter(library_records::tenant_id.eq(scope.tenant_id()))
        .filter(library_records::library_id.eq(library))
        .select((library_records::id, library_records::reviewed_at))
        .load(conn)
}

pub fn set_review_due(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: RecordId,
    due: Option<Timestamp>,
) -> QueryResult<()> {
    diesel::update(
        library_records::table
            .filter(library_records::tenant_id.eq(scope.tenant_id()))
            .filter(library_records::id.eq(id)),
    )
    .set(library_records::review_due_at.eq(due))
    .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = library_record_versions)]
pub struct VersionRow {
    pub tenant_id: TenantId,
    pub record_id: RecordId,
    pub version: i64,
    pub kind: String,
    pub at: Timestamp,
    pub actor_kind: String,
    pub actor_id: Option<EntityId>,
    pub actor_name: String,
    pub ticket_id: Option<TicketId>,
    pub ticket_key: Option<String>,
    pub transition: Option<String>,
    pub title: String,
    pub fields: Json,
    pub note: Option<String>,
}

pub fn insert_version(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &VersionRow,
) -> QueryResult<()> {
    diesel::insert_into(library_record_versions::table)
        .values(VersionRow {
            tenant_id: scope.tenant_id(),
            ..row.clone()
        })
        .execute(conn)?;
    Ok(())
}

/// Versions of a record in order, after version `after`.
pub fn versions(
    conn: &mut DbConnection,
    scope: &TenantScope,
    record: RecordId,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<VersionRow>> {
    let mut query = library_record_versions::table
        .filter(library_record_versions::tenant_id.eq(scope.tenant_id()))
        .filter(library_record_versions::record_id.eq(record))
        .order(library_record_versions::version.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(library_record_versions::version.gt(after));
    }
    query.load(conn)
}

/// The version just before `version` (to show what a version changed).
pub fn version_before(
    conn: &mut DbConnection,
    scope: &TenantScope,
    record: RecordId,
    version: i64,
) -> QueryResult<Option<VersionRow>> {
    library_record_versions::table
        .filter(library_record_versions::tenant_id.eq(scope.tenant_id()))
        .filter(library_record_versions::record_id.eq(record))
        .filter(library_record_versions::version.lt(version))
        .order(library_record_versions::version.desc())
        .first(conn)
        .optional()
}

fn index_scope(scope: &TenantScope, library: LibraryId) -> IndexScope {
    IndexScope {
        tenant: scope.tenant_id().0,
        partition: Some(library.0),
    }
}

/// Brings a record's field index and tokens from its `old` entries to its `new` ones.
pub fn reindex(
    conn: &mut DbConnection,
    scope: &TenantScope,
    library: LibraryId,
    record: RecordId,
    old: &Entries,
    new: &Entries,
) -> QueryResult<()> {
    let scope = index_scope(scope, library);
    index::reindex(conn, &RECORDS, scope, record.0, old, new)
}

/// How a record list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordSort {
    Created,
    Updated,
    /// By review due date (stale lists only: every record there has one).
    Due,
}

/// Where the previous page ended, in the list's sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordAfter {
    Created(RecordId),
    Updated(Timestamp, RecordId),
    Due(Timestamp, RecordId),
}

/// A record list query: live records of one library; every condition is served by an index.
#[derive(Debug, Clone)]
pub struct RecordFilter {
    pub library: LibraryId,
    /// Whether internal fields and their words may match (staff).
    pub internal: bool,
    /// Records whose review is due at or before this instant.
    pub due_by: Option<Timestamp>,
    pub updated_after: Option<Timestamp>,
    pub updated_before: Option<Timestamp>,
    /// Field key → stored forms, any of which matches.
    pub fields: Vec<(String, Vec<String>)>,
    /// Every token must be present.
    pub tokens: Vec<String>,
    /// SQLite: matches of a condition from which it is probed per record rather than looked
    /// up (the ticket list's `STAGEFLOW_LIST_PROBE_THRESHOLD`, see `db::index::conditions`).
    pub probe_threshold: i64,
    pub sort: RecordSort,
    pub descending: bool,
}

/// One page of records matching `filter`, after `after`.
pub fn list_records(
    conn: &mut DbConnection,
    scope: &TenantScope,
    filter: &RecordFilter,
    after: Option<&RecordAfter>,
    limit: i64,
) -> QueryResult<Vec<RecordRow>> {
    let tenant = scope.tenant_id();
    let mut query = library_records::table
        .filter(library_records::tenant_id.eq(tenant))
        .filter(library_records::library_id.eq(filter.library))
        .filter(library_records::deleted_at.is_null())
        .into_boxed();
    if let Some(due) = filter.due_by {
        query = query.filter(library_records::review_due_at.le(due));
    }
    if let Some(v) = filter.updated_after {
        query = query.filter(library_records::updated_at.ge(v));
    }
    if let Some(v) = filter.updated_before {
        query = query.filter(library_records::updated_at.lt(v));
    }
    let index_filter = IndexFilter {
        fields: &filter.fields,
        references: None,
        tokens: &filter.tokens,
        internal: filter.internal,
        probe_threshold: filter.probe_threshold,
    };
    let index_scope = index_scope(scope, filter.library);
    for condition in index::conditions(conn, &RECORDS, index_scope, &index_filter)? {
        query = query.filter(condition);
    }
    let desc = filter.descending;
    query = match (filter.sort, desc) {
        (RecordSort::Created, false) => query.order(library_records::id.asc()),
        (RecordSort::Created, true) => query.order(library_records::id.desc()),
        (RecordSort::Updated, false) => {
            query.order((library_records::updated_at.asc(), library_records::id.asc()))
        }
        (RecordSort::Updated, true) => query.order((
            library_records::updated_at.desc(),
            library_records::id.desc(),
        )),
        (RecordSort::Due, false) => query.order((
            library_records::review_due_at.asc(),
            library_records::id.asc(),
        )),
        (RecordSort::Due, true) => query.order((
            library_records::review_due_at.desc(),
            library_records::id.desc(),
        )),
    };
    if let Some(after) = after {
        query = match (after, desc) {
            (RecordAfter::Created(id), false) => query.filter(library_records::id.gt(*id)),
            (RecordAfter::Created(id), true) => query.filter(library_records::id.lt(*id)),
            (RecordAfter::Updated(at, id), false) => query.filter(
                library_records::updated_at
                    .gt(*at)
                    .or(library_records::updated_at
                        .eq(*at)
                        .and(library_records::id.gt(*id))),
            ),
            (RecordAfter::Updated(at, id), true) => query.filter(
                library_records::updated_at
                    .lt(*at)
                    .or(library_records::updated_at
                        .eq(*at)
                        .and(library_records::id.lt(*id))),
            ),
            (RecordAfter::Due(at, id), false) => query.filter(
                library_records::review_due_at
                    .gt(*at)
                    .or(library_records::review_due_at
                        .eq(*at)
                        .and(library_records::id.gt(*id))),
            ),
            (RecordAfter::Due(at, id), true) => query.filter(
                library_records::review_due_at
                    .lt(*at)
                    .or(library_records::review_due_at
                        .eq(*at)
                        .and(library_records::id.lt(*id))),
            ),
        };
    }
    query.limit(limit).load(conn)
}
