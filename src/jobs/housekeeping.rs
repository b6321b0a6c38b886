//! The shared housekeeping jobs: work on data every node sees (the database, the attachment
//! store), so one node at a time does it, as a recurring job.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Job, JobContext, JobOutcome, Runner};
use crate::config::Config;
use crate::service::error::ServiceError;
use crate::storage::BlobStore;

/// Forgets stored `Idempotency-Key` responses past their retention.
pub const PURGE_IDEMPOTENCY_KEYS: &str = "idempotency.purge";
/// Removes attachment content no row references, and uploads left behind by a crash.
pub const COLLECT_BLOBS: &str = "attachments.collect";
/// Deletes events older than `STAGEFLOW_EVENT_RETENTION_DAYS`.
pub const PURGE_EVENTS: &str = "events.purge";
/// How often the event retention runs.
const EVENT_PURGE_EVERY: Duration = Duration::from_secs(3_600);

/// Registers the housekeeping jobs with their periods from the configuration: the purge at
/// the period of the usage flush (as before the runner), the event retention hourly, the
/// collector every `STAGEFLOW_BLOB_GC_SECONDS`.
pub fn register_housekeeping(runner: &Runner, config: &Config, blobs: Arc<dyn BlobStore>) {
    runner.recurring(
        PURGE_IDEMPOTENCY_KEYS,
        config.usage_flush_interval,
        purge_idempotency_keys,
    );
    let retention = config.event_retention;
    runner.recurring(PURGE_EVENTS, EVENT_PURGE_EVERY, move |context, _job| {
        purge_events(context, retention)
    });
    let grace = config.blob_gc_grace;
    runner.recurring(
        COLLECT_BLOBS,
        config.blob_gc_interval,
        move |context, job| collect_blobs(context, job, blobs.as_ref(), grace),
    );
}

fn purge_idempotency_keys(context: &JobContext, _job: &Job) -> JobOutcome {
    let before =
        context.now - chrono::Duration::hours(crate::service::idempotency::RETENTION_HOURS);
    let purged = context
        .db
        .write_blocking(|conn| crate::service::idempotency::purge(conn, before));
    match purged {
        Ok(()) => JobOutcome::Done,
        Err(error) => retry("stored idempotent responses not purged", &error),
    }
}

fn purge_events(context: &JobContext, retention: Duration) -> JobOutcome {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let purged = context
        .db
        .write_blocking(|conn| crate::service::events::purge(conn, context.now, retention));
    match purged {
        Ok(_) => JobOutcome::Done,
        Err(error) => retry("old events not purged", &error),
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
