//! `templates.migrate`: carries a template migration run on (docs/process-guide.md, "Moving
//! tickets to a new version") — a batch of tickets per transaction from where the run
//! stands, so a restart or another node picks it up where it stopped.

use std::sync::Arc;

use super::housekeeping::retry;
use crate::domain::ids::MigrationId;
use crate::jobs::{Job, JobContext, JobOutcome, Runner};
use crate::service::definitions::DefinitionCache;
use crate::service::tickets::{MIGRATE, migration_step};

/// Batches one run of the job moves before it yields (and is due again at once).
const BATCHES_PER_RUN: usize = 10;

pub fn register_migrations(runner: &Runner) {
    let definitions = Arc::new(DefinitionCache::default());
    runner.register(MIGRATE, move |context, job| {
        migrate(context, job, &definitions)
    });
}

fn migrate(context: &JobContext, job: &Job, definitions: &DefinitionCache) -> JobOutcome {
    let id = serde_json::from_value::<MigrationId>(job.payload["migration_id"].clone());
    let (Some(tenant), Ok(id)) = (job.tenant, id) else {
        return JobOutcome::Failed {
            reason: "a migration job without its tenant or run".to_owned(),
        };
    };
    for _ in 0..BATCHES_PER_RUN {
        let step = context
            .db
            .write_blocking(|conn| migration_step(conn, definitions, tenant, id, context.now));
        match step {
            Ok(true) => return JobOutcome::Done,
            Ok(false) => {}
            Err(error) => return retry("template migration stopped", &error),
        }
    }
    JobOutcome::Continue
}
