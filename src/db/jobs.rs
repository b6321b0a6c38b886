//! The `jobs` table: background work shared by every node (see `crate::jobs` for the runner
//! and docs/ARCHITECTURE.md, "Jobs").
//!
//! A job is claimed under a lease: `lease_owner` (a node id) and `lease_until`. Every claim
//! increments `attempts`, so `(id, lease_owner, attempts)` names one claim exactly; finishing a
//! job matches all three, and a node whose lease was taken over (it expired and another node
//! claimed the row) finishes nothing. A platform table: `tenant_id` is optional (housekeeping
//! has no tenant), and the runner works for no caller, so no query here takes a scope.

use std::cell::Cell;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::DbConnection;
use super::schema::jobs;
use super::types::{Json, Timestamp};
use crate::domain::ids::{JobId, TenantId};

/// A stored job.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = jobs)]
pub struct JobRow {
    pub id: JobId,
    pub kind: String,
    pub tenant_id: Option<TenantId>,
    pub payload: Json,
    pub singleton: Option<String>,
    pub run_at: Timestamp,
    /// Claims so far, the running one included.
    pub attempts: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Set when the job ran out of attempts or its handler gave up; it is not run again.
    pub failed_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A job to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = jobs)]
struct NewJobRow {
    id: JobId,
    kind: String,
    tenant_id: Option<TenantId>,
    payload: Json,
    singleton: Option<String>,
    run_at: Timestamp,
    attempts: i32,
    max_attempts: i32,
    created_at: Timestamp,
}

/// What a caller asks to run: `kind` names the handler, `payload` is its input (JSON, no
/// secrets: it is stored as it is). Built with [`NewJob::new`]; the fields are public for the
/// rest (a tenant, a later `run_at`, another `max_attempts`).
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub tenant: Option<TenantId>,
    pub payload: serde_json::Value,
    pub run_at: DateTime<Utc>,
    pub max_attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Attempts of a job unless its caller says otherwise: with the default back-off the last
/// one comes about 10 minutes after the first.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;

impl NewJob {
    /// A job of `kind` due at `now`, for no tenant, with [`DEFAULT_MAX_ATTEMPTS`].
    pub fn new(kind: impl Into<String>, payload: serde_json::Value, now: DateTime<Utc>) -> Self {
        Self {
            kind: kind.into(),
            tenant: None,
            payload,
            run_at: now,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            created_at: now,
        }
    }

    fn row(&self, singleton: Option<String>) -> NewJobRow {
        NewJobRow {
            id: JobId::new_at(self.created_at),
            kind: self.kind.clone(),
            tenant_id: self.tenant,
            payload: Json(self.payload.clone()),
            singleton,
            run_at: self.run_at.into(),
            attempts: 0,
            max_attempts: self.max_attempts.max(1),
            created_at: self.created_at.into(),
        }
    }
}

thread_local! {
    /// Set when this thread enqueued a job that is due at once: the write transaction it
    /// runs in ([`super::Database::write_blocking`], always on the calling thread) wakes this
    /// node's runner when it commits, so the job does not wait for the next tick.
    static ENQUEUED_DUE: Cell<bool> = const { Cell::new(false) };
}

/// Whether a due job was enqueued on this thread since the last call; clears the mark.
pub(super) fn take_enqueued_due() -> bool {
    ENQUEUED_DUE.replace(false)
}

/// Puts back a mark taken by [`take_enqueued_due`] (an enclosing transaction's).
pub(super) fn restore_enqueued_due(marked: bool) {
    if marked {
        ENQUEUED_DUE.set(true);
    }
}

/// Adds a job in the caller's transaction; it runs only once that transaction commits. A job
/// due now wakes this node's runner at that commit (a later one waits for its tick).
pub fn enqueue(conn: &mut DbConnection, job: &NewJob) -> QueryResult<JobId> {
    let row = job.row(None);
    diesel::insert_into(jobs::table)
        .values(&row)
        .execute(conn)?;
    if job.run_at <= job.created_at {
        ENQUEUED_DUE.set(true);
    }
    Ok(row.id)
}

/// One claim of a job: who holds it and which attempt it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease<'a> {
    pub id: JobId,
    pub owner: &'a str,
    pub attempt: i32,
}

/// Adds the one row of a recurring job unless it exists already: the kind is its singleton
/// key, so however many nodes start at once, the job exists once. True when added.
pub fn ensure_singleton(conn: &mut DbConnection, job: &NewJob) -> QueryResult<bool> {
    ensure_keyed(conn, job, &job.kind)
}

/// Adds the one job under `key` unless it exists (e.g. one poller per mail channel). True
/// when added.
pub fn ensure_keyed(conn: &mut DbConnection, job: &NewJob, key: &str) -> QueryResult<bool> {
    let row = job.row(Some(key.to_owned()));
    let added = per_backend!(conn, |c| diesel::insert_into(jobs::table)
        .values(&row)
        .on_conflict(jobs::singleton)
        .do_nothing()
        .execute(c))?;
    if added > 0 && job.run_at <= job.created_at {
        ENQUEUED_DUE.set(true);
    }
    Ok(added > 0)
}

/// The write transactions other sessions have open now, for [`any_still_running`]: on
/// PostgreSQL the in-progress list of a fresh snapshot (transaction ids, all databases of the
/// server); `None` on SQLite, whose one writer means none runs beside the caller. A job that
/// deletes its own row after checking that nothing is left for it waits for these: a
/// transaction that saw the row before the deletion committed, and so started no new job,
/// has ended by then and what it wrote can be read (the webhook delivery job).
pub fn running_transactions(conn: &mut DbConnection) -> QueryResult<Option<Vec<i64>>> {
    let DbConnection::Postgres(c) = conn else {
        return Ok(None);
    };
    let rows: Vec<Xid> = diesel::sql_query(
        "SELECT CAST(CAST(x AS text) AS bigint) AS xid \
         FROM pg_snapshot_xip(pg_current_snapshot()) AS x",
    )
    .load(c)?;
    Ok(Some(rows.into_iter().map(|r| r.xid).collect()))
}

/// Whether any of these transactions (from [`running_transactions`]) is still in progress.
pub fn any_still_running(conn: &mut DbConnection, xids: &[i64]) -> QueryResult<bool> {
    let DbConnection::Postgres(c) = conn else {
        return Ok(false);
    };
    if xids.is_empty() {
        return Ok(false);
    }
    let found = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM unnest($1) AS x \
         WHERE pg_xact_status(CAST(CAST(x AS text) AS xid8)) = 'in progress') AS found",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(xids)
    .get_result::<Found>(c)?;
    Ok(found.found)
}

#[derive(QueryableByName)]
struct Xid {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    xid: i64,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    found: bool,
}

/// Jobs due before `before` that no node holds and that have not failed (a backlog).
pub fn waiting_since(conn: &mut DbConnection, before: Timestamp) -> QueryResult<i64> {
    jobs::table
        .filter(jobs::run_at.lt(before))
        .filter(jobs::failed_at.is_null())
        .filter(jobs::lease_until.is_null().or(jobs::lease_until.lt(before)))
        .count()
        .get_result(conn)
}

/// The queue of one job kind as a scrape shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindQueue {
    pub kind: String,
    /// Due (`run_at` passed), held by no node, not failed.
    pub due: i64,
    /// When the longest-waiting due job became due.
    pub oldest_due: Option<Timestamp>,
    /// Held by a node's lease at `now`.
    pub running: i64,
    /// Failed for good, kept for inspection.
    pub failed: i64,
}

/// The queue per kind at `now` (kinds with nothing due, running or failed are absent): three
/// grouped counts over the queue table.
pub fn queue_by_kind(conn: &mut DbConnection, now: Timestamp) -> QueryResult<Vec<KindQueue>> {
    use diesel::dsl::{count_star, min};
    let due: Vec<(String, i64, Option<Timestamp>)> = jobs::table
        .filter(jobs::run_at.le(now))
        .filter(jobs::failed_at.is_null())
        .filter(jobs::lease_until.is_null().or(jobs::lease_until.lt(now)))
        .group_by(jobs::kind)
        .select((jobs::kind, count_star(), min(jobs::run_at)))
        .load(conn)?;
    let running: Vec<(String, i64)> = jobs::table
        .filter(jobs::failed_at.is_null())
        .filter(jobs::lease_until.ge(now))
        .group_by(jobs::kind)
        .select((jobs::kind, count_star()))
        .load(conn)?;
    let failed: Vec<(String, i64)> = jobs::table
        .filter(jobs::failed_at.is_not_null())
        .group_by(jobs::kind)
        .select((jobs::kind, count_star()))
        .load(conn)?;
    let mut queues = std::collections::BTreeMap::<String, KindQueue>::new();
    for (kind, n, oldest) in due {
        let q = queues
            .entry(kind.clone())
            .or_insert_with(|| KindQueue::empty(kind));
        q.due = n;
        q.oldest_due = oldest;
    }
    for (kind, n) in running {
        queues
            .entry(kind.clone())
            .or_insert_with(|| KindQueue::empty(kind))
            .running = n;
    }
    for (kind, n) in failed {
        queues
            .entry(kind.clone())
            .or_insert_with(|| KindQueue::empty(kind))
            .failed = n;
    }
    Ok(queues.into_values().collect())
}

impl KindQueue {
    fn empty(kind: String) -> Self {
        Self {
            kind,
            due: 0,
            oldest_due: None,
            running: 0,
            failed: 0,
        }
    }
}

/// Like [`ensure_keyed`], and a job under `key` that is waiting (for its turn, a retry, or
/// failed for good) is made due at `job.run_at` with its attempts counted from zero; one
/// that is running is left alone.
pub fn ensure_keyed_revived(conn: &mut DbConnection, job: &NewJob, key: &str) -> QueryResult<()> {
    if ensure_keyed(conn, job, key)? {
        return Ok(());
    }
    diesel::update(
        jobs::table.filter(jobs::singleton.eq(key)).filter(
            jobs::failed_at
                .is_not_null()
                .or(jobs::lease_owner.is_null()),
        ),
    )
    .set((
        jobs::failed_at.eq(None::<Timestamp>),
        jobs::attempts.eq(0),
        jobs::run_at.eq(Timestamp::from(job.run_at)),
        jobs::last_error.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: JobId) -> QueryResult<Option<JobRow>> {
    jobs::table
        .find(id)
        .select(JobRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_singleton(conn: &mut DbConnection, key: &str) -> QueryResult<Option<JobRow>> {
    jobs::table
        .filter(jobs::singleton.eq(key))
        .select(JobRow::as_select())
        .first(conn)
        .optional()
}

/// Claims up to `limit` due jobs of the given kinds for `owner` until `lease_until`: pending
/// (not failed), `run_at <= now`, and not leased or with an expired lease, oldest first. Run
/// it in a write transaction: on PostgreSQL the candidate rows are locked `FOR NO KEY UPDATE
/// SKIP LOCKED`, so concurrent claimers take disjoint sets without waiting; SQLite has one
/// writer.
pub fn claim(
    conn: &mut DbConnection,
    kinds: &[String],
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
    limit: i64,
) -> QueryResult<Vec<JobRow>> {
    if kinds.is_empty() || limit <= 0 {
        return Ok(Vec::new());
    }
    let due = jobs::table
        .filter(jobs::failed_at.is_null())
        .filter(jobs::run_at.le(now))
        .filter(jobs::lease_until.is_null().or(jobs::lease_until.lt(now)))
        .filter(jobs::kind.eq_any(kinds))
        .order((jobs::run_at, jobs::id))
        .limit(limit)
        .select(jobs::id);
    let ids: Vec<JobId> = match conn {
        // `FOR NO KEY UPDATE`: the claim changes no key, so the weaker row lock is enough.
        DbConnection::Postgres(c) => due.for_no_key_update().skip_locked().load(c)?,
        DbConnection::Sqlite(c) => due.load(c)?,
    };
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let row = diesel::update(jobs::table.find(id))
            .set((
                jobs::lease_owner.eq(owner),
                jobs::lease_until.eq(lease_until),
                jobs::attempts.eq(jobs::attempts + 1),
            ))
            .get_result::<JobRow>(conn)?;
        claimed.push(row);
    }
    Ok(claimed)
}

/// The job row as long as `lease` still holds it.
macro_rules! held {
    ($lease:expr) => {
        jobs::table.find($lease.id).filter(
            jobs::lease_owner
                .eq($lease.owner)
                .and(jobs::attempts.eq($lease.attempt)),
        )
    };
}

/// A finished one-off job goes. False when the lease is no longer held (taken over).
pub fn delete_held(conn: &mut DbConnection, lease: &Lease<'_>) -> QueryResult<bool> {
    Ok(diesel::delete(held!(lease)).execute(conn)? > 0)
}

/// Releases the lease and sets the next run: a retry (with its error), or a recurring job's
/// next turn (attempts start again). False when the lease is no longer held.
pub fn reschedule_held(
    conn: &mut DbConnection,
    lease: &Lease<'_>,
    run_at: Timestamp,
    reset_attempts: bool,
    last_error: Option<&str>,
) -> QueryResult<bool> {
    let attempts = if reset_attempts { 0 } else { lease.attempt };
    let changed = diesel::update(held!(lease))
        .set((
            jobs::run_at.eq(run_at),
            jobs::attempts.eq(attempts),
            jobs::lease_owner.eq(None::<String>),
            jobs::lease_until.eq(None::<Timestamp>),
            jobs::last_error.eq(last_error),
        ))
        .execute(conn)?;
    Ok(changed > 0)
}

/// Marks the job failed for good with its last error. False when the lease is no longer held.
pub fn fail_held(
    conn: &mut DbConnection,
    lease: &Lease<'_>,
    at: Timestamp,
    last_error: &str,
) -> QueryResult<bool> {
    let changed = diesel::update(held!(lease))
        .set((
            jobs::failed_at.eq(Some(at)),
            jobs::lease_owner.eq(None::<String>),
            jobs::lease_until.eq(None::<Timestamp>),
            jobs::last_error.eq(Some(last_error)),
        ))
        .execute(conn)?;
    Ok(changed > 0)
}

/// Gives back every lease `owner` holds (graceful shutdown): the jobs become due for any node
/// at once. The interrupted attempt still counts.
pub fn release_all(conn: &mut DbConnection, owner: &str) -> QueryResult<usize> {
    diesel::update(jobs::table.filter(jobs::lease_owner.eq(owner)))
        .set((
            jobs::lease_owner.eq(None::<String>),
            jobs::lease_until.eq(None::<Timestamp>),
        ))
        .execute(conn)
}
