//! Bulk imports (`imports`) and the outcome of each of their rows (`import_rows`).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{import_rows, imports};
use super::types::{Json, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{EntityId, ImportId, TenantId};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = imports)]
pub struct ImportRow {
    pub tenant_id: TenantId,
    pub id: ImportId,
    pub target: String,
    pub target_key: Option<String>,
    pub mode: String,
    pub spec: Json,
    pub format: String,
    pub encoding: String,
    pub status: String,
    pub source: String,
    pub total_rows: i64,
    pub next_row: i64,
    pub created_count: i64,
    pub updated_count: i64,
    pub unchanged_count: i64,
    pub failed_count: i64,
    pub error: Option<String>,
    pub created_by: EntityId,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// The outcome of one data row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = import_rows)]
pub struct ImportRowOutcome {
    pub tenant_id: TenantId,
    pub import_id: ImportId,
    pub row_number: i64,
    pub line: i64,
    pub outcome: String,
    pub subject_id: Option<String>,
    pub subject_key: Option<String>,
    pub errors: Json,
}

/// Counts that a batch of rows adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
}

pub fn insert(conn: &mut DbConnection, scope: &TenantScope, row: &ImportRow) -> QueryResult<()> {
    super::of_scope(scope, row.tenant_id)?;
    diesel::insert_into(imports::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ImportId,
) -> QueryResult<Option<ImportRow>> {
    imports::table
        .filter(imports::tenant_id.eq(scope.tenant_id()))
        .filter(imports::id.eq(id))
        .select(ImportRow::as_select())
        .first(conn)
        .optional()
}

/// Where the import stands, `(next_row, status)`, locked for its job's batch (PostgreSQL;
/// SQLite has one writer). The source is not read: a batch needs only the position.
pub fn lock_position(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ImportId,
) -> QueryResult<Option<(i64, String)>> {
    let query = imports::table
        .filter(imports::tenant_id.eq(scope.tenant_id()))
        .filter(imports::id.eq(id))
        .select((imports::next_row, imports::status));
    match conn {
        DbConnection::Postgres(pg) => query.for_update().first(pg).optional(),
        DbConnection::Sqlite(lite) => query.first(lite).optional(),
    }
}

/// The tenant's imports, newest first, before the cursor.
pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    before: Option<ImportId>,
    limit: i64,
) -> QueryResult<Vec<ImportRow>> {
    let mut query = imports::table
        .filter(imports::tenant_id.eq(scope.tenant_id()))
        .select(ImportRow::as_select())
        .order(imports::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(imports::id.lt(before));
    }
    query.load(conn)
}

/// Records a batch: its rows' outcomes, the counts, where the next batch starts and, when it
/// was the last, the end (the source is cleared then: nothing reads it any more).
pub fn record_batch(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ImportId,
    outcomes: &[ImportRowOutcome],
    counts: Counts,
    (next_row, finished): (i64, Option<Timestamp>),
    now: Timestamp,
) -> QueryResult<()> {
    for chunk in outcomes.chunks(500) {
        for row in chunk {
            super::of_scope(scope, row.tenant_id)?;
        }
        per_backend!(conn, |c| diesel::insert_into(import_rows::table)
            .values(chunk)
            .execute(c))?;
    }
    let target = imports::table
        .filter(imports::tenant_id.eq(scope.tenant_id()))
        .filter(imports::id.eq(id));
    diesel::update(target)
        .set((
            imports::created_count.eq(imports::created_count + counts.created),
            imports::updated_count.eq(imports::updated_count + counts.updated),
            imports::unchanged_count.eq(imports::unchanged_count + counts.unchanged),
            imports::failed_count.eq(imports::failed_count + counts.failed),
            imports::next_row.eq(next_row),
            imports::updated_at.eq(now),
        ))
        .execute(conn)?;
    if let Some(at) = finished {
        finish(conn, scope, id, DONE, None, at)?;
    }
    Ok(())
}

/// Marks the import running (its first batch).
pub fn start(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ImportId,
    now: Timestamp,
) -> QueryResult<()> {
    let target = imports::table
        .filter(imports::tenant_id.eq(scope.tenant_id()))
        .filter(imports::id.eq(id))
        .filter(imports::status.eq(QUEUED));
    diesel::update(target)
        .set((
            imports::status.eq(RUNNING),
            imports::started_at.eq(Some(now)),
            imports::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Ends the import (`done` or `failed`) and drops its source.
pub fn finish(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ImportId,
    status: &str,
    error: Option<&str>,
    now: Timestamp,
) -> QueryResult<()> {
    let target = imports::table
        .filter(imports::tenant_id.eq(scope.tenant_id()))
        .filter(imports::id.eq(id));
    diesel::update(target)
        .set((
            imports::status.eq(status),
            imports::error.eq(error),
            imports::source.eq(""),
            imports::finished_at.eq(Some(now)),
            imports::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A page of an import's row outcomes in row order, after `after`; only failed ones when
/// `failed_only`.
pub fn outcomes(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ImportId,
    after: Option<i64>,
    failed_only: bool,
    limit: i64,
) -> QueryResult<Vec<ImportRowOutcome>> {
    let mut query = import_rows::table
        .filter(import_rows::tenant_id.eq(scope.tenant_id()))
        .filter(import_rows::import_id.eq(id))
        .select(ImportRowOutcome::as_select())
        .order(import_rows::row_number.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(import_rows::row_number.gt(after));
    }
    if failed_only {
        query = query.filter(import_rows::outcome.eq("failed"));
    }
    query.load(conn)
}
