//! `import.run`: applies a stored import (docs/import-export.md, "Large files") in batches,
//! one transaction each, from where it stands, so a restart or another node resumes it after
//! the last committed batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::housekeeping::retry;
use crate::domain::ids::ImportId;
use crate::jobs::{Job, JobContext, JobOutcome, Runner};
use crate::service::definitions::DefinitionCache;
use crate::service::imports::{RUN, Turn, run_batches};

/// How long one run of the job applies batches before it yields (and is due again at once),
/// well inside any lease.
const TURN: Duration = Duration::from_secs(5);

pub fn register_imports(runner: &Runner) {
    let definitions = Arc::new(DefinitionCache::default());
    runner.register(RUN, move |context, job| run(context, job, &definitions));
}

fn run(context: &JobContext, job: &Job, definitions: &DefinitionCache) -> JobOutcome {
    let id = serde_json::from_value::<ImportId>(job.payload["import"].clone());
    let (Some(tenant), Ok(id)) = (job.tenant, id) else {
        return JobOutcome::Failed {
            reason: "an import job without its tenant or import".to_owned(),
        };
    };
    let deadline = Instant::now() + TURN;
    match run_batches(
        &context.db,
        definitions,
        tenant,
        id,
        context.clock.as_ref(),
        deadline,
    ) {
        Ok(Turn::More) => JobOutcome::Continue,
        Ok(Turn::Finished) => JobOutcome::Done,
        Err(error) => retry("import stopped", &error),
    }
}
