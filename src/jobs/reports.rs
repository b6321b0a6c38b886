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
        let due = context
            .db
            .get()
            .map_err(crate::service::error::ServiceError::from)
            .and_then(|mut conn| reports::last_months(&mut conn, context.now));
        let due = match due {
            Ok(due) => due,
            Err(error) => return retry("monthly reports not stored", &error),
        };
        // One transaction per tenant: a tenant whose report fails is retried with the job,
        // the others are stored meanwhile.
        let mut failed = None;
        for (scope, month) in due {
            let stored = context.db.write_blocking(|conn| {
                reports::store(conn, &definitions, &scope, &month, context.now)
            });
            if let Err(error) = stored {
                log::warn!(
                    "monthly report of tenant {} not stored: {error}",
                    scope.tenant_id()
                );
                failed = Some(error);
            }
        }
        match failed {
            None => JobOutcome::Done,
            Some(error) => retry("monthly reports not stored", &error),
        }
    });
}
