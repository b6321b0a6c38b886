//! Deleting by age, in batches (#17 point 2): each call removes at most about one batch of the
//! oldest rows before a cut-off, in the caller's transaction, so a purge never holds a long
//! lock and other writers interleave between batches (docs/operations.md, "Retention").

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{audit_log, events, idempotency_keys};
use super::types::Timestamp;

/// Deletes the oldest rows of `$table` whose `$at` is before `$before`: up to the instant of
/// the `$batch`-th oldest (all rows of that instant go too, so a batch may be slightly larger),
/// or all of them when fewer remain. Returns (rows deleted, more may remain).
macro_rules! purge_batch {
    ($conn:expr, $table:ident, $at:expr, $before:expr, $batch:expr) => {{
        let conn = $conn;
        let cut: Option<Timestamp> = $table::table
            .filter($at.lt($before))
            .order($at.asc())
            .select($at)
            .offset($batch - 1)
            .first(conn)
            .optional()?;
        match cut {
            Some(cut) => Ok((
                diesel::delete($table::table.filter($at.le(cut))).execute(conn)?,
                true,
            )),
            None => Ok((
                diesel::delete($table::table.filter($at.lt($before))).execute(conn)?,
                false,
            )),
        }
    }};
}

/// One batch of audit entries (every tenant's and the platform's) recorded before `before`.
pub fn purge_audit(
    conn: &mut DbConnection,
    before: Timestamp,
    batch: i64,
) -> QueryResult<(usize, bool)> {
    purge_batch!(conn, audit_log, audit_log::at, before, batch)
}

/// One batch of events recorded before `before`.
pub fn purge_events(
    conn: &mut DbConnection,
    before: Timestamp,
    batch: i64,
) -> QueryResult<(usize, bool)> {
    purge_batch!(conn, events, events::at, before, batch)
}

/// One batch of stored idempotent responses recorded before `before`.
pub fn purge_idempotency_keys(
    conn: &mut DbConnection,
    before: Timestamp,
    batch: i64,
) -> QueryResult<(usize, bool)> {
    purge_batch!(
        conn,
        idempotency_keys,
        idempotency_keys::created_at,
        before,
        batch
    )
}
