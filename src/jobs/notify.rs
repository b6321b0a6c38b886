//! `mail.notify`: the mails of one notification rule for one ticket event
//! (`service::notifications::send`), retried with the runner's back-off while the SMTP
//! server answers with a temporary failure or cannot be reached.

use std::sync::Arc;

use crate::jobs::{Job, JobContext, JobOutcome, Runner};
use crate::mailer::Mailer;
use crate::service::alerts::{ALERT, Monitor};
use crate::service::announcements;
use crate::service::definitions::DefinitionCache;
use crate::service::notifications::{self, SEND, SendFailure, SendRequest};

/// Registers the handler. Without an SMTP server (`mailer` `None`) a job ends at once: no
/// mail is sent, as documented for an unset `STAGEFLOW_SMTP_URL`/`STAGEFLOW_SMTP_HOST`.
/// `ops.alert` mails a queued operator alert the same way (ended at once without SMTP or
/// `STAGEFLOW_ALERT_EMAIL`).
pub fn register_notify(runner: &Runner, mailer: Option<Arc<Mailer>>, alerts: Arc<Monitor>) {
    let definitions = Arc::new(DefinitionCache::default());
    let announcer = mailer.clone();
    runner.register(announcements::MAIL, move |context, job| match &announcer {
        Some(mailer) => announce(context, job, mailer),
        None => JobOutcome::Done,
    });
    runner.register(SEND, move |context, job| match &mailer {
        Some(mailer) => send(context, job, mailer, &definitions),
        None => JobOutcome::Done,
    });
    runner.register(ALERT, move |_, job| {
        match alerts.send_queued(&job.payload, &job.id.to_string()) {
            Ok(()) => JobOutcome::Done,
            Err(e) if e.is_transient() => JobOutcome::Retry {
                after: None,
                error: e.to_string(),
            },
            Err(e) => JobOutcome::Failed {
                reason: e.to_string(),
            },
        }
    });
}

/// `announcement.mail`: one tenant's admins get the announcement.
fn announce(context: &JobContext, job: &Job, mailer: &Mailer) -> JobOutcome {
    let id = job.payload["announcement"]
        .as_str()
        .and_then(|s| s.parse().ok());
    let (Some(id), Some(tenant)) = (id, job.tenant) else {
        return JobOutcome::Failed {
            reason: "an announcement mail job without its announcement or tenant".to_owned(),
        };
    };
    match announcements::mail_admins(&context.db, mailer, tenant, id, context.now) {
        Ok(_) => JobOutcome::Done,
        Err(announcements::MailFailure::Transient(error)) => {
            JobOutcome::Retry { after: None, error }
        }
        Err(announcements::MailFailure::Permanent(reason)) => JobOutcome::Failed { reason },
    }
}

fn send(
    context: &JobContext,
    job: &Job,
    mailer: &Mailer,
    definitions: &DefinitionCache,
) -> JobOutcome {
    let (Some(request), Some(tenant)) = (SendRequest::of(&job.payload), job.tenant) else {
        return JobOutcome::Failed {
            reason: "a notification job without its rule, ticket, event or tenant".to_owned(),
        };
    };
    let scope = crate::auth::job_scope(tenant);
    match notifications::send(
        &context.db,
        definitions,
        mailer,
        scope,
        &request,
        context.now,
    ) {
        Ok(_) => JobOutcome::Done,
        Err(SendFailure::Transient(error)) => JobOutcome::Retry { after: None, error },
    }
}
