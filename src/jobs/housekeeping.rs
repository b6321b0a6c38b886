//! The shared housekeeping jobs: work on data every node sees (the database, the attachment
//! store), so one node at a time does it, as a recurring job.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Job, JobContext, JobOutcome, Runner};
use crate::config::Config;
use crate::service::error::ServiceError;
use crate::service::retention::{self, Kept};
use crate::storage::BlobStore;

/// Forgets stored `Idempotency-Key` responses past `STAGEFLOW_IDEMPOTENCY_RETENTION_HOURS`.
pub const PURGE_IDEMPOTENCY_KEYS: &str = "idempotency.purge";
/// Removes attachment content no row references, and uploads left behind by a crash.
pub const COLLECT_BLOBS: &str = "attachments.collect";
/// Deletes events older than `STAGEFLOW_EVENT_RETENTION_DAYS`.
pub const PURGE_EVENTS: &str = "events.purge";
/// Deletes audit entries older than `STAGEFLOW_AUDIT_RETENTION_DAYS`.
pub const PURGE_AUDIT: &str = "audit.purge";
/// How often the event and audit retention runs.
const PURGE_EVERY: Duration = Duration::from_secs(3_600);

/// Registers the housekeeping jobs with their periods from the configuration: the
/// idempotency purge at the period of the usage flush (as before the runner), the event and
/// audit retention hourly, the collector every `STAGEFLOW_BLOB_GC_SECONDS`. Every purge
/// deletes in batches (`service::retention`).
pub fn register_housekeeping(runner: &Runner, config: &Config, blobs: Arc<dyn BlobStore>) {
    for (kind, every, kept, retention) in [
        (
            PURGE_IDEMPOTENCY_KEYS,
            config.usage_flush_interval,
            Kept::IdempotencyKeys,
            config.idempotency_retention,
        ),
        (
            PURGE_EVENTS,
            PURGE_EVERY,
            Kept::Events,
            config.event_retention,
        ),
        (
            PURGE_AUDIT,
            PURGE_EVERY,
            Kept::Audit,
            config.audit_retention,
        ),
    ] {
        runner.recurring(kind, every, move |context, _job| {
            purge(context, kept, retention)
        });
    }
    let grace = config.blob_gc_grace;
    runner.recurring(
        COLLECT_BLOBS,
        config.blob_gc_interval,
        move |context, job| collect_blobs(context, job, blobs.as_ref(), grace),
    );
}

fn purge(context: &JobContext, kept: Kept, retention: Duration) -> JobOutcome {
    let before = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| context.now.checked_sub_signed(r))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    match retention::purge(&context.db, kept, before) {
        Ok(0) => JobOutcome::Done,
        Ok(n) => {
            log::info!("retention: deleted {n} rows of {kept:?} recorded before {before}");
            JobOutcome::Done
        }
        Err(error) => retry(&format!("{kept:?} past retention not purged"), &error),
    }
}

/// Content and temp uploads untouched for the grace period go. File times are wall-clock
/// times set by the filesystem, so the cut-off is too.
fn collect_blobs(
    context: &JobContext,
    _job: &Job,
    store: &dyn BlobStore,
    grace: Duration,
) -> JobOutcome {
    let Some(before) = SystemTime::now().checked_sub(grace) else {
        return JobOutcome::Done;
    };
    let collected = context
        .db
        .get()
        .map_err(ServiceError::from)
        .and_then(|mut conn| crate::service::tickets::collect_blobs(&mut conn, store, before));
    match collected {
        Ok(removed) => {
            if removed != Default::default() {
                log::info!(
                    "attachment store: removed {} unreferenced contents and {} stale uploads",
                    removed.contents,
                    removed.uploads
                );
            }
            JobOutcome::Done
        }
        Err(error) => retry("attachment store not collected", &error),
    }
}

/// A retry whose stored error says what failed; the detail (which may name tables or paths)
/// goes only to the log.
pub(super) fn retry(what: &str, error: &dyn std::fmt::Display) -> JobOutcome {
    log::warn!("{what}, will retry: {error}");
    JobOutcome::Retry {
        after: None,
        error: format!("{what}; see the node's log"),
    }
}
