//! SLA jobs (docs/sla.md): `sla.watch`, recurring, announces the at-risk and breached clocks
//! of every tenant exactly once across nodes; `sla.replay` replays a template's clocks after
//! a policy or calendar change.

use std::sync::Arc;
use std::time::Duration;

use super::housekeeping::retry;
use crate::db::sla::Announcement;
use crate::domain::ids::TicketId;
use crate::jobs::{Job, JobContext, JobOutcome, Runner};
use crate::service::definitions::DefinitionCache;
use crate::service::sla::{self, REPLAY, WATCH};

/// Registers both jobs; `every`: the period of `sla.watch` (`STAGEFLOW_SLA_WATCH_SECONDS`).
pub fn register_sla(runner: &Runner, every: Duration) {
    runner.recurring(WATCH, every, watch);
    let definitions = Arc::new(DefinitionCache::default());
    runner.register(REPLAY, move |context, job| {
        replay(context, job, &definitions)
    });
}

fn watch(context: &JobContext, _job: &Job) -> JobOutcome {
    for kind in [Announcement::AtRisk, Announcement::Breach] {
        loop {
            // One transaction per batch: a claim and its event commit together.
            let announced = context
                .db
                .write_blocking(|conn| sla::announce_due(conn, kind, context.now));
            if let Ok(n) = announced {
                crate::metrics::sla_announced(matches!(kind, Announcement::Breach), n);
            }
            match announced {
                Ok(n) if n < usize::try_from(sla::WATCH_BATCH).unwrap_or(usize::MAX) => break,
                Ok(_) => continue,
                Err(error) => return retry("SLA clocks not announced", &error),
            }
        }
    }
    JobOutcome::Done
}

fn replay(context: &JobContext, job: &Job, definitions: &DefinitionCache) -> JobOutcome {
    let template = job.payload["template"].as_str().map(str::to_owned);
    let (Some(tenant), Some(template)) = (job.tenant, template) else {
        return JobOutcome::Failed {
            reason: "an SLA replay without its tenant or template".to_owned(),
        };
    };
    let mut after: Option<TicketId> = None;
    loop {
        let step = context.db.write_blocking(|conn| {
            sla::replay_batch(conn, definitions, tenant, &template, after, context.now)
        });
        match step {
            Ok(Some(last)) => after = Some(last),
            Ok(None) => return JobOutcome::Done,
            Err(error) => return retry("SLA clocks not replayed", &error),
        }
    }
}
