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
