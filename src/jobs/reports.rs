//! `reports.monthly`: stores last month's report of every tenant that lacks one, hourly, so
//! that an ended month's report exists without a read (docs/reports.md).

use std::sync::Arc;
use std::time::Duration;

use super::housekeeping::retry;
use crate::jobs::{JobOutcome, Runner};
use crate::service::definitions::DefinitionCache;
use crate::service::reports::{self, MONTHLY};

/// How often the job looks for a month to store.
const EVERY: Duration = Duration::from_secs(3_600);

pub fn register_reports(runner: &Runner) {
    let definitions = Arc::new(DefinitionCache::default());
    runner.recurring(MONTHLY, EVERY, move |context, _job| {
        let stored = context
            .db
            .write_blocking(|conn| reports::store_last_month(conn, &definitions, context.now));
        match stored {
            Ok(_) => JobOutcome::Done,
            Err(error) => retry("monthly reports not stored", &error),
        }
    });
}
