//! `mail.rescan`: a message the virus scanner could not scan when it arrived is scanned again
//! (and then filed, quarantined or refused) until the scanner answers.
//! `mail.imap`: the IMAP poller of a mail channel, one job per channel that runs in turns
//! (`service::mail::imap_poll`).

use std::sync::Arc;

use crate::auth::keys::MasterKey;
use crate::domain::ids::MailChannelId;
use crate::domain::ids::MailMessageId;
use crate::jobs::{Job, JobContext, JobOutcome, Runner};
use crate::service::definitions::DefinitionCache;
use crate::service::mail::imap;
use crate::service::mail::imap_poll::{self, Poll, RunEnd};
use crate::service::mail::intake::{self, IntakeEnv, IntakeSettings, RESCAN};
use crate::storage::BlobStore;

pub fn register_mail(
    runner: &Runner,
    settings: IntakeSettings,
    blobs: Arc<dyn BlobStore>,
    master: MasterKey,
) {
    let definitions = Arc::new(DefinitionCache::default());
    let env = Arc::new((definitions, blobs, master, settings));
    let shared = env.clone();
    runner.register(RESCAN, move |context, job| {
        let (definitions, blobs, master, settings) = shared.as_ref();
        let env = IntakeEnv {
            definitions,
            blobs: blobs.as_ref(),
            master,
            scanner: settings.scanner.as_ref(),
            own_domain: &settings.own_domain,
        };
        rescan(context, job, &env)
    });
    runner.register_long(imap::KIND, move |context, job| {
        let (definitions, blobs, master, settings) = env.as_ref();
        let intake = IntakeEnv {
            definitions,
            blobs: blobs.as_ref(),
            master,
            scanner: settings.scanner.as_ref(),
            own_domain: &settings.own_domain,
        };
        poll_imap(context, job, &intake, settings)
    });
}

fn poll_imap(
    context: &JobContext,
    job: &Job,
    env: &IntakeEnv<'_>,
    settings: &IntakeSettings,
) -> JobOutcome {
    let channel = job
        .payload
        .get("channel_id")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse::<MailChannelId>().ok());
    let (Some(channel), Some(tenant)) = (channel, job.tenant) else {
        return JobOutcome::Failed {
            reason: "an IMAP job without a channel id or tenant".to_owned(),
        };
    };
    let poll = Poll {
        db: &context.db,
        env,
        settings: settings.imap,
        scope: crate::auth::job_scope(tenant),
        channel,
        now: context.now,
        stopping: context.stopping.clone(),
    };
    match imap_poll::run(&poll) {
        RunEnd::Gone => JobOutcome::Done,
        RunEnd::Again(after) => JobOutcome::Again { after },
        RunEnd::Failed(error) => JobOutcome::Retry { after: None, error },
    }
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
