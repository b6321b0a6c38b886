//! Retention (#17 point 2): what is kept how long, and the batched purge that enforces it.
//! docs/operations.md, "Retention".

use chrono::{DateTime, Utc};

use super::error::ServiceError;
use crate::db::{self, Database};

/// Rows deleted per write transaction.
pub const BATCH: i64 = 5_000;

/// What a purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The audit log (every tenant's and the platform's).
    Audit,
    /// The event log.
    Events,
    /// Stored responses of `Idempotency-Key` requests.
    IdempotencyKeys,
}

/// Deletes every row of `kept` recorded before `before`, [`BATCH`] rows per write
/// transaction (other writers go between batches); returns how many.
pub fn purge(db: &Database, kept: Kept, before: DateTime<Utc>) -> Result<usize, ServiceError> {
    purge_in_batches(db, kept, before, BATCH)
}

/// [`purge`] with batches of `batch` rows (at least 1).
pub fn purge_in_batches(
    db: &Database,
    kept: Kept,
    before: DateTime<Utc>,
    batch: i64,
) -> Result<usize, ServiceError> {
    let (before, batch) = (before.into(), batch.max(1));
    let mut total = 0;
    loop {
        let (deleted, more) = db.write_blocking(|conn| -> Result<_, ServiceError> {
            Ok(match kept {
                Kept::Audit => db::retention::purge_audit(conn, before, batch),
                Kept::Events => db::retention::purge_events(conn, before, batch),
                Kept::IdempotencyKeys => db::retention::purge_idempotency_keys(conn, before, batch),
            }?)
        })?;
        total += deleted;
        if !more {
            return Ok(total);
        }
    }
}
