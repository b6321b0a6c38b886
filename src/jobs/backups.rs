//! `backup.run`: every `STAGEFLOW_BACKUP_INTERVAL_HOURS`, a backup generation (copied and
//! rotated), its verification, and both recorded for the operator (docs/operations.md).

use std::sync::Arc;

use crate::config::Config;
use crate::jobs::{JobOutcome, Runner};
use crate::service::backup;

/// The kind of the recurring backup job.
pub const BACKUP: &str = "backup.run";

/// Registers the job when an interval is configured (it runs beside the job passes, since a
/// large database takes minutes). A failed run is recorded and logged, and waits for the
/// next interval: a failing backup is an operator's matter (metrics, alert rules), not one to
/// hammer the disk with retries.
pub fn register_backups(runner: &Runner, config: &Config) {
    let Some(every) = config.backup.interval else {
        return;
    };
    let config = Arc::new(config.clone());
    runner.recurring_long(
        BACKUP,
        every,
        move |context, _job| match backup::run_and_record(
            &context.db,
            &config,
            context.now,
            &context.node_id,
            &crate::progress::Progress::hidden(),
        ) {
            Ok(recorded) => {
                match (&recorded.manifest, &recorded.error) {
                    (Some(m), None) => log::info!(
                        "backup {} written and verified ({} bytes, {} rows, {} attachments)",
                        m.id,
                        m.database.bytes,
                        m.rows(),
                        m.attachments.len()
                    ),
                    (_, Some(error)) => log::error!("backup failed: {error}"),
                    (None, None) => {}
                }
                JobOutcome::Done
            }
            Err(error) => {
                log::error!("backup run not recorded: {error}");
                JobOutcome::Done
            }
        },
    );
}

/// Registers `tenant.export`: the archive of one requested tenant export, written under
/// `<data dir>/exports` (docs/operations.md, "Tenant export, import and erasure"). Runs beside
/// the job passes (a large tenant takes a while); a failure is recorded on the export.
pub fn register_tenant_exports(
    runner: &Runner,
    data_dir: &std::path::Path,
    blobs: Arc<dyn crate::storage::BlobStore>,
) {
    use crate::service::tenant_export;
    let dir = tenant_export::export_dir(data_dir);
    runner.register_long(tenant_export::EXPORT, move |context, job| {
        let Some(id) = job.payload["export"].as_str().and_then(|s| s.parse().ok()) else {
            return JobOutcome::Failed {
                reason: "a tenant export job without its export".to_owned(),
            };
        };
        match tenant_export::run(&context.db, blobs.as_ref(), &dir, id, context.now) {
            Ok(row) => {
                log::info!("tenant export {} of {}: {}", row.id, row.slug, row.status);
                JobOutcome::Done
            }
            Err(error) => JobOutcome::Retry {
                after: None,
                error: error.to_string(),
            },
        }
    });
}
