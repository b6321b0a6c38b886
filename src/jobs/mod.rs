//! The job runner: all background work of a node (docs/ARCHITECTURE.md, "Jobs"; ADR-22).
//!
//! Two kinds of work, both driven by the [`Runner`]'s loops:
//!
//! - **Jobs** are rows of `jobs`, shared by every node. Code enqueues one with [`enqueue`]
//!   inside its own transaction (an outbox: a job of a rolled-back transaction never exists),
//!   and a [`Handler`] registered for its kind runs it on the blocking pool on whichever node
//!   claims it first, under a lease. [`JobOutcome`] says what happens next: done, retry
//!   (exponential back-off with jitter unless the outcome names the wait) or failed. A
//!   recurring job is one row per kind ([`Runner::recurring`]), run by one node at a time.
//! - **Node-local tasks** ([`LocalTask`]) tend this process's memory (usage counters, the
//!   signing-key ring, rate-limit tables); every node runs its own, on a fixed period.
//!
//! Tests drive jobs without sleeping: move the injected clock, then call [`run_due`].

mod backups;
mod housekeeping;
mod imports;
mod mail;
mod migrations;
mod notify;
mod reports;
mod runner;
pub mod schedule;
mod sla;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::jobs::JobRow;
pub use crate::db::jobs::NewJob;
use crate::db::{Database, DbConnection, DbError};
use crate::domain::ids::{JobId, TenantId};
pub use backups::{register_backups, register_tenant_exports};
pub use housekeeping::register_housekeeping;
pub use imports::register_imports;
pub use mail::register_mail;
pub use migrations::register_migrations;
pub use notify::register_notify;
pub use reports::register_reports;
pub use runner::{LocalTask, Runner};
pub use sla::register_sla;
pub use webhooks::{backoff, register_webhooks};

/// What a handler sees of its job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub tenant: Option<TenantId>,
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
    /// When it was due.
    pub run_at: DateTime<Utc>,
}

impl From<&JobRow> for Job {
    fn from(row: &JobRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind.clone(),
            tenant: row.tenant_id,
            payload: row.payload.0.clone(),
            attempt: row.attempts,
            max_attempts: row.max_attempts,
            run_at: row.run_at.0,
        }
    }
}

/// What a handler may use: the database (open its own transactions with
/// [`Database::write_blocking`]), the instant of this run (from the injected clock) and the
/// node running it.
#[derive(Clone)]
pub struct JobContext {
    pub db: Database,
    pub now: DateTime<Utc>,
    /// The node's clock (the injected one), for a run that takes long enough for its own
    /// instants to matter.
    pub clock: Arc<dyn crate::clock::Clock>,
    pub node_id: Arc<str>,
    /// Becomes true when the node shuts down: a handler that waits (an IMAP IDLE) stops
    /// waiting and ends its run.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished: a one-off job is deleted, a recurring one comes back a period later.
    Done,
    /// Try again: after `after` when given (e.g. a `Retry-After`, at least one second), else
    /// after the runner's back-off. Past `max_attempts` the job fails with `error`.
    Retry {
        after: Option<Duration>,
        /// Kept as `last_error` (bounded): say what went wrong, never a secret.
        error: String,
    },
    /// Give up now; kept as failed with `reason` as `last_error` (never a secret).
    Failed { reason: String },
    /// Not finished, and nothing went wrong: run again after `after` (at least a second),
    /// with the attempts counted from zero again and no `last_error` — a long-lived job
    /// that works in turns, like the IMAP poller of a mail channel.
    Again { after: Duration },
    /// Not finished, and more work is ready now: due again at once (this node's runner
    /// passes again right away), attempts counted from zero — a job that drains a queue in
    /// runs bounded by its lease, like a webhook subscription's deliveries.
    Continue,
    /// Finished, and the handler has deleted the job's row itself (under its lease, in a
    /// transaction that checked nothing was left to do): the runner writes nothing.
    Closed,
}

/// A job kind's handler. It runs on the blocking pool; a panic counts as a retry.
pub type Handler = Arc<dyn Fn(&JobContext, &Job) -> JobOutcome + Send + Sync>;

/// The default of [`NewJob::max_attempts`].
pub const DEFAULT_MAX_ATTEMPTS: i32 = crate::db::jobs::DEFAULT_MAX_ATTEMPTS;

/// Adds a job in the caller's transaction: it exists (and runs) only if that transaction
/// commits. Use cases below the API call the same function as `db::jobs::enqueue`.
pub fn enqueue(conn: &mut DbConnection, job: &NewJob) -> Result<JobId, DbError> {
    Ok(crate::db::jobs::enqueue(conn, job)?)
}

/// A job as stored (for tests and status views); `None` once a one-off job is done.
pub async fn find(db: &Database, id: JobId) -> Result<Option<crate::db::jobs::JobRow>, DbError> {
    db.read(move |conn| Ok(crate::db::jobs::find(conn, id)?))
        .await
}

/// Runs every job due at `now` once, on this runner; returns how many ran (see
/// [`Runner::run_due`]).
pub async fn run_due(runner: &Arc<Runner>, now: DateTime<Utc>) -> usize {
    runner.run_due(now).await
}
