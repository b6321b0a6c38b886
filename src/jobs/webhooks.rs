//! The `webhook.deliver` job: sends one delivery, signed per Standard Webhooks, and records
//! the attempt. Retries (5xx, 429, timeouts, connection errors) back off exponentially with
//! jitter, or wait what `Retry-After` says; a subscription failing for longer than
//! `STAGEFLOW_WEBHOOK_DISABLE_AFTER_DAYS` is disabled (with an event and an audit entry).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Job, JobContext, JobOutcome, Runner};
use crate::auth::keys::MasterKey;
use crate::config::WebhookSettings;
use crate::db::webhooks::{self as rows, Attempt, DeliveryRow, WebhookRow};
use crate::domain::ids::{DeliveryId, TenantId};
use crate::domain::webhook_signature::sign;
use crate::outbound::{self, OutboundPolicy, OutboundRequest, OutboundResult};
use crate::service::error::ServiceError;
use crate::service::webhooks::{self as svc, DELIVER};

/// A delivery waits this long while an earlier one of its subject is still pending.
const ORDER_WAIT: Duration = Duration::from_secs(1);
/// Back-off of failed attempts: 5 s doubling, at most an hour, with up to half of it
/// random.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(3_600);

/// Registers the delivery job.
pub fn register_webhooks(runner: &Runner, settings: WebhookSettings, master: MasterKey) {
    runner.register(DELIVER, move |context, job| {
        deliver(context, job, &settings, &master)
    });
}

fn ids(job: &Job) -> Option<(TenantId, DeliveryId)> {
    let tenant = job.payload.get("tenant_id")?.as_str()?.parse().ok()?;
    let delivery = job.payload.get("delivery_id")?.as_str()?.parse().ok()?;
    Some((tenant, delivery))
}

fn deliver(
    context: &JobContext,
    job: &Job,
    settings: &WebhookSettings,
    master: &MasterKey,
) -> JobOutcome {
    let Some((tenant, id)) = ids(job) else {
        return JobOutcome::Failed {
            reason: "malformed delivery job".to_owned(),
        };
    };
    let loaded = context
        .db
        .get()
        .map_err(ServiceError::from)
        .and_then(|mut conn| {
            let found = rows::for_job(&mut conn, tenant, id)?;
            let blocked = match &found {
                Some((d, _)) => rows::earlier_pending(&mut conn, d)?,
                None => false,
            };
            Ok::<_, ServiceError>(found.map(|f| (f, blocked)))
        });
    let ((delivery, hook), blocked) = match loaded {
        // The subscription or the delivery is gone: nothing to send.
        Ok(None) => return JobOutcome::Done,
        Ok(Some(found)) => found,
        Err(error) => return retry_later(&error),
    };
    if delivery.status != rows::PENDING {
        return JobOutcome::Done;
    }
    if !hook.enabled {
        let attempt = refused(context.now, "the subscription is disabled");
        return match record(context, &delivery, &attempt, None) {
            Ok(()) => JobOutcome::Done,
            Err(error) => retry_later(&error),
        };
    }
    if blocked {
        return JobOutcome::Retry {
            after: Some(ORDER_WAIT),
            error: "waiting for an earlier delivery of the same subject".to_owned(),
        };
    }
    let result = match request(&delivery, &hook, master, context.now) {
        Ok(request) => outbound::post(&request, &policy(settings)),
        Err(error) => return retry_later(&error),
    };
    let decision = decide(&result, delivery.attempts + 1, context.now);
    let failing = failure_state(&hook, &decision, settings, context.now);
    // A retry of a subscription disabled meanwhile finds it disabled and fails then.
    match record(
        context,
        &delivery,
        &decision.attempt,
        Some((&hook, failing)),
    ) {
        Ok(()) => decision.outcome,
        Err(error) => retry_later(&error),
    }
}

fn policy(settings: &WebhookSettings) -> OutboundPolicy {
    OutboundPolicy {
        allow_private: settings.allow_private,
        timeout: settings.timeout,
        max_response_bytes: 64 * 1024,
    }
}

/// The signed request: `webhook-id` is the event id (stable across retries and
/// redeliveries), `webhook-timestamp` this attempt's time.
fn request(
    delivery: &DeliveryRow,
    hook: &WebhookRow,
    master: &MasterKey,
    now: DateTime<Utc>,
) -> Result<OutboundRequest, ServiceError> {
    let secrets = svc::signing_secrets(master, hook, now)?;
    let refs: Vec<_> = secrets.iter().collect();
    let msg_id = delivery.event_id.to_string();
    let timestamp = now.timestamp();
    let body = delivery.body.as_bytes().to_vec();
    let signature = sign(&refs, &msg_id, timestamp, &body);
    Ok(OutboundRequest {
        url: hook.url.clone(),
        headers: vec![
            ("webhook-id".to_owned(), msg_id),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
            ("webhook-signature".to_owned(), signature),
        ],
        body,
    })
}

/// What one attempt's result means.
struct Decision {
    attempt: Attempt,
    outcome: JobOutcome,
    /// Whether it counts as a failure of the subscription.
    failed: bool,
}

fn refused(now: DateTime<Utc>, why: &str) -> Attempt {
    Attempt {
        status: rows::FAILED,
        http_status: None,
        latency_ms: None,
        error: Some(why.to_owned()),
        excerpt: None,
        next_attempt_at: None,
        at: now.into(),
    }
}

/// The wait before attempt `attempt + 1`: 5 s doubling per attempt up to an hour, the upper
/// half of it random (jitter, so receivers coming back are not hit by every retry at once).
pub fn backoff(attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let full = FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_RETRY);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

fn decide(result: &OutboundResult, attempt: i32, now: DateTime<Utc>) -> Decision {
    let latency_ms = i32::try_from(result.latency.as_millis()).unwrap_or(i32::MAX);
    let excerpt = (!result.response_excerpt.is_empty()).then(|| result.response_excerpt.clone());
    let status = result.status.map(i32::from);
    let base = |state: &'static str, error: Option<String>, next: Option<Duration>| Attempt {
        status: state,
        http_status: status,
        latency_ms: Some(latency_ms),
        error,
        excerpt: excerpt.clone(),
        next_attempt_at: next
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| (now + d).into()),
        at: now.into(),
    };
    let retry = |error: String, after: Duration| Decision {
        attempt: base(rows::PENDING, Some(error.clone()), Some(after)),
        outcome: JobOutcome::Retry {
            after: Some(after.max(Duration::from_secs(1))),
            error,
        },
        failed: true,
    };
    match (result.status, &result.error) {
        (Some(code), _) if (200..300).contains(&code) => Decision {
            attempt: base(rows::DELIVERED, None, None),
            outcome: JobOutcome::Done,
            failed: false,
        },
        (Some(429), _) => retry(
            "429 Too Many Requests".to_owned(),
            result.retry_after.unwrap_or_else(|| backoff(attempt)),
        ),
        (Some(code), _) if code >= 500 => retry(
            format!("HTTP {code}"),
            result.retry_after.unwrap_or_else(|| backoff(attempt)),
        ),
        // Any other answer (4xx, a redirect, which is not followed) will not change by
        // itself: the delivery fails; redeliver it once the receiver is fixed.
        (Some(code), _) => Decision {
            attempt: base(rows::FAILED, Some(format!("HTTP {code}")), None),
            outcome: JobOutcome::Done,
            failed: true,
        },
        (None, Some(error @ outbound::OutboundError::Refused { .. })) => Decision {
            attempt: base(rows::FAILED, Some(error.to_string()), None),
            outcome: JobOutcome::Done,
            failed: true,
        },
        (None, error) => retry(
            error
                .as_ref()
                .map_or_else(|| "no answer".to_owned(), ToString::to_string),
            backoff(attempt),
        ),
    }
}

/// A subscription's failure record: failing since when (none: healthy), and the reason to
/// disable it now, if any.
type FailureState = (Option<DateTime<Utc>>, Option<String>);

/// The subscription's failure record after an attempt: cleared by a success, started by
/// the first failure, and a disable reason once it has failed for too long.
fn failure_state(
    hook: &WebhookRow,
    decision: &Decision,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
) -> FailureState {
    if !decision.failed {
        return (None, None);
    }
    let since = hook.failing_since.map_or(now, |t| t.0);
    let limit = chrono::Duration::from_std(settings.disable_after).unwrap_or(chrono::Duration::MAX);
    let disable = (now - since >= limit).then(|| {
        format!(
            "deliveries failed for {} days without a success",
            settings.disable_after.as_secs() / 86_400
        )
    });
    (Some(since), disable)
}

/// Writes the attempt (and the subscription's failure record) in one transaction; a
/// disabled subscription gets its event and audit entry there too.
fn record(
    context: &JobContext,
    delivery: &DeliveryRow,
    attempt: &Attempt,
    hook: Option<(&WebhookRow, FailureState)>,
) -> Result<(), ServiceError> {
    let now = context.now;
    context.db.write_blocking(|conn| {
        rows::record_attempt(conn, delivery.tenant_id, delivery.id, attempt)?;
        if let Some((hook, (since, disable))) = hook
            && (hook.failing_since.map(|t| t.0) != since || disable.is_some())
        {
            svc::set_failing(conn, hook, since, disable.as_deref(), now)?;
        }
        Ok(())
    })
}

fn retry_later(error: &dyn std::fmt::Display) -> JobOutcome {
    log::warn!("webhook delivery, will retry: {error}");
    JobOutcome::Retry {
        after: None,
        error: "storage unavailable".to_owned(),
    }
}
