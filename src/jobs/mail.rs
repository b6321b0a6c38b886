//! `mail.rescan`: a message the virus scanner could not scan when it arrived is scanned again
//! (and then filed, quarantined or refused) until the scanner answers.

use std::sync::Arc;

use crate::auth::keys::MasterKey;
use crate::domain::ids::MailMessageId;
use crate::jobs::{Job, JobContext, JobOutcome, Runner};
use crate::service::definitions::DefinitionCache;
use crate::service::mail::intake::{self, IntakeEnv, IntakeSettings, RESCAN};
use crate::storage::BlobStore;

pub fn register_mail(
    runner: &Runner,
    settings: IntakeSettings,
    blobs: Arc<dyn BlobStore>,
    master: MasterKey,
) {
    let definitions = Arc::new(DefinitionCache::default());
    runner.register(RESCAN, move |context, job| {
        let env = IntakeEnv {
            definitions: &definitions,
            blobs: blobs.as_ref(),
            master: &master,
            scanner: settings.scanner.as_ref(),
            own_domain: &settings.own_domain,
        };
        rescan(context, job, &env)
    });
}

fn rescan(context: &JobContext, job: &Job, env: &IntakeEnv<'_>) -> JobOutcome {
    let id = job
        .payload
        .get("message_id")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse::<MailMessageId>().ok());
    let (Some(id), Some(tenant)) = (id, job.tenant) else {
        return JobOutcome::Failed {
            reason: "a rescan job without a message id or tenant".to_owned(),
        };
    };
    let scope = crate::auth::job_scope(tenant);
    match intake::rescan(&context.db, env, scope, id, context.now) {
        Ok(Some(row)) if row.status == "pending" => JobOutcome::Retry {
            after: None,
            error: row
                .reason
                .unwrap_or_else(|| "the scanner is unavailable".to_owned()),
        },
        Ok(_) => JobOutcome::Done,
        Err(e) => JobOutcome::Retry {
            after: None,
            error: format!("rescan: {e}"),
        },
    }
}
