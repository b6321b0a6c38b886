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

/// The longest turn: a turn reads the stored file again, so it should be long enough for
/// that to stay small next to the rows it applies.
const LONGEST_TURN: Duration = Duration::from_secs(20);

/// Registers `import.run`. A run applies batches for a quarter of the lease (at most
/// [`LONGEST_TURN`]) and yields, due again at once: well inside its lease, and a node that
/// shuts down stops after the batch in hand.
pub fn register_imports(runner: &Runner, lease: Duration) {
    let definitions = Arc::new(DefinitionCache::default());
    let turn = (lease / 4).min(LONGEST_TURN);
    runner.register(RUN, move |context, job| {
        run(context, job, &definitions, turn)
    });
}

fn run(
    context: &JobContext,
    job: &Job,
    definitions: &DefinitionCache,
    turn: Duration,
) -> JobOutcome {
    let id = serde_json::from_value::<ImportId>(job.payload["import"].clone());
    let (Some(tenant), Ok(id)) = (job.tenant, id) else {
        return JobOutcome::Failed {
            reason: "an import job without its tenant or import".to_owned(),
        };
    };
    let deadline = Instant::now() + turn;
    let keep_going = || Instant::now() < deadline && !*context.stopping.borrow();
    match run_batches(
        &context.db,
        definitions,
        tenant,
        id,
        context.clock.as_ref(),
        &keep_going,
    ) {
        Ok(Turn::More) => JobOutcome::Continue,
        Ok(Turn::Finished) => JobOutcome::Done,
        Err(error) => retry("import stopped", &error),
    }
}
