//! The `webhook.deliver` job: one per subscription (ADR-25). A run sends the
//! subscription's due deliveries in event order, in batches, signed per Standard Webhooks,
//! and records each batch's attempts in one transaction; it keeps looking for new ones for
//! `STAGEFLOW_WEBHOOK_LINGER_MILLIS`, and ends within half the job lease. A retryable failure
//! (5xx, 429, a timeout, no connection) holds the whole subscription back until that
//! delivery's retry is due: exponential back-off with jitter, or what `Retry-After` says. A
//! subscription failing for longer than `STAGEFLOW_WEBHOOK_DISABLE_AFTER_DAYS` is disabled
//! (with an event and an audit entry).
//!
//! `webhook.sweep` gives a subscription with due deliveries its job if it has none (a job
//! that ended just as a delivery was written, jobs of an older version).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{Job, JobContext, JobOutcome, Runner};
use crate::auth::keys::MasterKey;
use crate::config::WebhookSettings;
use crate::db::events::{EventRow, Position};
use crate::db::jobs::{self, Lease};
use crate::db::webhooks::{self as rows, Attempt, DeliveryRow, Waiting, WebhookRow};
use crate::db::{self, DbConnection, DbError};
use crate::domain::ids::{DeliveryId, EntityId, EventId, TenantId, WebhookId};
use crate::domain::webhook_signature::{WebhookSecret, sign};
use crate::outbound::{self, OutboundPolicy, OutboundRequest, OutboundResult};
use crate::service::error::ServiceError;
use crate::service::events;
use crate::service::webhooks::{self as svc, DELIVER, SWEEP};

/// Deliveries read, sent and recorded together (250 rather than 100: each batch costs a few
/// reads and a commit, and fewer of them cost creating tickets less, docs/PERFORMANCE.md
/// "Webhooks"; at most this many are sent again after a node is killed mid-batch).
const BATCH: i64 = 250;
const BATCH_LEN: usize = BATCH as usize;
/// How often a lingering run looks for new deliveries.
const POLL: Duration = Duration::from_millis(20);
/// After a batch that was not full, how long the next one gathers: fewer, larger batches
/// (each is a commit, which on SQLite holds the one writer through its sync) at the price
/// of this much more delivery lag (p99 about 0.3 s under a steady create load, against a
/// goal of 1 s; 100 ms cost PostgreSQL twice as much of its create throughput).
const GATHER: Duration = Duration::from_millis(300);
/// How long a closing job waits for the transactions running after its deletion, and how
/// often it looks whether they ended (ARCHITECTURE.md, "Ending without losing a delivery").
const SETTLE: Duration = Duration::from_secs(2);
const SETTLE_POLL: Duration = Duration::from_millis(5);
/// How often the sweep looks for subscriptions with due deliveries and no job.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Subscriptions the sweep starts at most per run.
const SWEEP_LIMIT: i64 = 1_000;
/// Back-off of failed attempts: 5 s doubling, at most an hour, with up to half of it
/// random.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(3_600);

/// Registers the delivery job and its sweep. A run lasts at most half of `lease`.
pub fn register_webhooks(
    runner: &Runner,
    settings: WebhookSettings,
    master: MasterKey,
    lease: Duration,
) {
    let budget = lease / 2;
    runner.register_long(DELIVER, move |context, job| {
        let run = Run {
            context,
            settings: &settings,
            master: &master,
            started: Instant::now(),
            budget,
        };
        run.deliver(job)
    });
    runner.recurring(SWEEP, SWEEP_EVERY, |context, _| sweep(context));
}

fn ids(job: &Job) -> Option<(TenantId, WebhookId)> {
    let tenant = job.payload.get("tenant_id")?.as_str()?.parse().ok()?;
    let webhook = job.payload.get("webhook_id")?.as_str()?.parse().ok()?;
    Some((tenant, webhook))
}

/// One run of a subscription's job.
struct Run<'a> {
    context: &'a JobContext,
    settings: &'a WebhookSettings,
    master: &'a MasterKey,
    started: Instant,
    budget: Duration,
}

/// What a batch read finds.
struct Batch {
    hook: WebhookRow,
    /// Due deliveries, in event order: the stored ones (retries, redeliveries, pings, those
    /// held back), then those of the events after the cursor.
    due: Vec<DeliveryRow>,
    /// How many of `due` are new (of events after the cursor, not stored yet).
    fresh: usize,
    /// How many of `due` may go out now (the others wait behind a retry of their subject).
    sendable: usize,
    /// The cursor after this batch's events.
    cursor: Option<Position>,
    /// Deliveries waiting for a retry.
    waiting: Vec<Waiting>,
    /// The bodies of the due deliveries of events, by event id (made from the events; an
    /// event no longer kept has none).
    bodies: HashMap<EventId, String>,
}

/// Why a batch stopped before its end.
enum Stop {
    /// A retryable failure: the subscription waits this long.
    Retry(Duration),
    /// The subscription was disabled by this batch's failure.
    Disabled,
    /// Storage failed, or the signing secrets could not be opened.
    Error(ServiceError),
}

impl Run<'_> {
    /// This instant, from the node's clock (never before the run's start).
    fn now(&self) -> DateTime<Utc> {
        self.context.clock.now().max(self.context.now)
    }

    fn stopping(&self) -> bool {
        *self.context.stopping.borrow() || self.started.elapsed() >= self.budget
    }

    fn deliver(&self, job: &Job) -> JobOutcome {
        let Some(ids) = ids(job) else {
            return JobOutcome::Failed {
                reason: "malformed delivery job".to_owned(),
            };
        };
        let mut idle_since: Option<Instant> = None;
        loop {
            let now = self.now();
            let loaded_at = Instant::now();
            let batch = match self.load(ids, now) {
                // The subscription is gone (its deliveries with it).
                Ok(None) => return JobOutcome::Done,
                Ok(Some(batch)) => batch,
                Err(error) => return retry_later(&error),
            };
            let (hook, due, waiting) = (&batch.hook, &batch.due, &batch.waiting);
            if !hook.enabled {
                let attempt = refused(now, "the subscription is disabled");
                let failed = self.context.db.write_blocking(|conn| {
                    Ok::<_, ServiceError>(rows::fail_pending(conn, ids, &attempt)?)
                });
                return match failed {
                    Ok(_) => JobOutcome::Done,
                    Err(error) => retry_later(&error),
                };
            }
            if due.is_empty() {
                let idle = idle_since.get_or_insert_with(Instant::now);
                if self.stopping() || idle.elapsed() >= self.settings.linger {
                    if !waiting.is_empty() {
                        return until_next(waiting, now);
                    }
                    match self.close(job, ids) {
                        Ok(true) => return JobOutcome::Closed,
                        // Work arrived meanwhile, or events are committed that the feed's
                        // horizon still holds back (an older transaction is running): go on,
                        // and linger again before the next try rather than close in a loop.
                        Ok(false) if self.stopping() => return JobOutcome::Continue,
                        Ok(false) => {
                            idle_since = None;
                            std::thread::sleep(POLL);
                            continue;
                        }
                        Err(error) => return retry_later(&error),
                    }
                }
                std::thread::sleep(POLL);
                continue;
            }
            idle_since = None;
            match self.send(&batch) {
                // Everything due waits behind a retry of its subject (a ping or redelivery
                // started this run early): come back when the first retry is due.
                None if batch.sendable == 0 => return until_next(waiting, now),
                None => {}
                Some(Stop::Retry(wait)) => return JobOutcome::Again { after: wait },
                // The rest fails on the next run, which finds it disabled.
                Some(Stop::Disabled) => return JobOutcome::Continue,
                Some(Stop::Error(error)) => return retry_later(&error),
            }
            if self.stopping() {
                return JobOutcome::Continue;
            }
            // A batch that was not full took everything due: let the next one gather rather
            // than commit one small batch after another (each commit takes the SQLite
            // writer and a sync, which the events' own writes wait for).
            let gather = GATHER
                .min(self.settings.linger)
                .saturating_sub(loaded_at.elapsed());
            if due.len() < BATCH_LEN && !gather.is_zero() {
                std::thread::sleep(gather);
            }
        }
    }

    /// Deletes this job (under its lease) unless its subscription has a pending delivery
    /// or an event left, in one transaction. True when deleted (or the lease was lost: the
    /// job is another node's now).
    ///
    /// An event's transaction starts the job only if it finds none (one statement with the
    /// subscriptions it reads anyway: `db::webhooks::enabled_with_job`), so one that read the
    /// job just before this deletion committed started nothing, and its event may not have
    /// been visible to the check. On PostgreSQL the deletion therefore waits for the
    /// transactions running after it committed, then looks again and starts the job anew
    /// if anything is left (SQLite's one writer lets no event's transaction overlap the
    /// deletion).
    fn close(&self, job: &Job, ids: (TenantId, WebhookId)) -> Result<bool, ServiceError> {
        let lease = Lease {
            id: job.id,
            owner: &self.context.node_id,
            attempt: job.attempt,
        };
        let closed = self.context.db.write_blocking(|conn| {
            if !jobs::delete_held(conn, &lease)? {
                return Ok(false);
            }
            if work_left(conn, ids)? {
                // Undo the deletion; the run goes on.
                return Err(Kept::Pending);
            }
            Ok(true)
        });
        match closed {
            Ok(true) => {}
            Ok(false) => return Ok(true),
            Err(Kept::Pending) => return Ok(false),
            Err(Kept::Failed(error)) => return Err(error),
        }
        if self.settle(ids)? {
            self.context
                .db
                .write_blocking(|conn| svc::schedule(conn, ids, self.now(), false))?;
        }
        Ok(true)
    }

    /// After the deletion: waits (at most [`SETTLE`]) for the transactions running now to
    /// end; true when work is left for a new job — or when they did not end in time, and a
    /// new job will look again.
    fn settle(&self, ids: (TenantId, WebhookId)) -> Result<bool, ServiceError> {
        let mut conn = self.context.db.get()?;
        let Some(running) = jobs::running_transactions(&mut conn)? else {
            return Ok(false);
        };
        let deadline = Instant::now() + SETTLE;
        while jobs::any_still_running(&mut conn, &running)? {
            if Instant::now() >= deadline {
                return Ok(true);
            }
            std::thread::sleep(SETTLE_POLL);
        }
        Ok(work_left(&mut conn, ids)?)
    }

    fn load(
        &self,
        ids: (TenantId, WebhookId),
        now: DateTime<Utc>,
    ) -> Result<Option<Batch>, ServiceError> {
        let mut conn = self.context.db.get()?;
        let Some(hook) = rows::for_job(&mut conn, ids)? else {
            return Ok(None);
        };
        let scope = crate::auth::job_scope(ids.0);
        let mut due = rows::due(&mut conn, ids, now.into(), BATCH)?;
        let waiting = rows::waiting(&mut conn, ids, now.into())?;
        let of_events: Vec<EventId> = due
            .iter()
            .filter(|d| d.body.is_empty())
            .map(|d| d.event_id)
            .collect();
        let mut events = db::events::by_ids(&mut conn, &scope, &of_events)?;
        // The rest of the batch: events after the cursor (in the feed's order and below its
        // horizon, so none can appear behind the cursor later).
        let room = BATCH - i64::try_from(due.len()).unwrap_or(BATCH);
        let fresh = if room > 0 && hook.enabled {
            db::events::to_deliver(
                &mut conn,
                &scope,
                &hook.filter(),
                hook.cursor(),
                (room, true),
            )?
        } else {
            Vec::new()
        };
        let cursor = fresh.last().map(EventRow::position);
        for event in &fresh {
            due.push(svc::pending_delivery(
                ids.0,
                ids.1,
                (event.id, &event.event_type, Some(event.subject_id)),
                event.position(),
                String::new(),
                now,
            ));
        }
        let fresh_len = fresh.len();
        let sendable = lanes(&due, &waiting).iter().map(Vec::len).sum();
        events.extend(fresh);
        let mut bodies = HashMap::with_capacity(events.len());
        for event in &events {
            bodies.insert(event.id, events::delivery_body(ids.0, event)?.to_string());
        }
        Ok(Some(Batch {
            hook,
            due,
            fresh: fresh_len,
            sendable,
            cursor,
            waiting,
            bodies,
        }))
    }

    /// Sends one batch and records its attempts (one transaction); `Some` when it stopped
    /// early. Each subject's deliveries go out in event order, one at a time; different
    /// subjects go out side by side, up to `STAGEFLOW_WEBHOOK_CONCURRENCY` at once. A delivery
    /// whose subject has an earlier one waiting for a retry is skipped (it goes out after
    /// that one). A retryable failure stops the batch: what is in flight finishes, nothing
    /// more starts.
    fn send(&self, batch: &Batch) -> Option<Stop> {
        let (hook, due) = (&batch.hook, &batch.due);
        let lanes = lanes(due, &batch.waiting);
        let policy = policy(self.settings);
        let secrets = match svc::signing_secrets(self.master, hook, self.now()) {
            Ok(secrets) => secrets,
            Err(error) => return Some(Stop::Error(error)),
        };
        let next = AtomicUsize::new(0);
        let halt = AtomicBool::new(false);
        let sent: Mutex<Vec<(DeliveryId, Decision)>> = Mutex::new(Vec::with_capacity(due.len()));
        let work = || {
            while let Some(lane) = lanes.get(next.fetch_add(1, Ordering::Relaxed)) {
                for delivery in lane {
                    if halt.load(Ordering::Relaxed) {
                        return;
                    }
                    let now = self.now();
                    let body = if delivery.body.is_empty() {
                        batch.bodies.get(&delivery.event_id)
                    } else {
                        Some(&delivery.body)
                    };
                    let decision = match body {
                        Some(body) => decide(
                            &outbound::post(&request(delivery, body, hook, &secrets, now), &policy),
                            delivery.attempts + 1,
                            now,
                        ),
                        // Not the receiver's doing: no failure of the subscription.
                        None => Decision {
                            attempt: refused(
                                now,
                                "its event is no longer kept (STAGEFLOW_EVENT_RETENTION_DAYS)",
                            ),
                            retry: None,
                            failed: false,
                        },
                    };
                    let retry = decision.retry.is_some();
                    crate::metrics::webhook_attempt(match (decision.failed, retry) {
                        (false, _) if decision.attempt.status == rows::DELIVERED => {
                            crate::metrics::WebhookResult::Delivered
                        }
                        (_, true) => crate::metrics::WebhookResult::Retrying,
                        _ => crate::metrics::WebhookResult::Failed,
                    });
                    lock(&sent).push((delivery.id, decision));
                    if retry {
                        halt.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
        };
        let workers = self.settings.concurrency.min(lanes.len());
        if workers <= 1 {
            work();
        } else {
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(work);
                }
            });
        }
        let sent = sent.into_inner().unwrap_or_else(|p| p.into_inner());
        // The subscription's failure record, attempt by attempt in the order they ended; once
        // it is to be disabled, it stays so.
        let mut state: FailureState = (hook.failing_since.map(|t| t.0), None);
        let mut retry: Option<Duration> = None;
        for (_, decision) in &sent {
            if state.1.is_none() {
                state = failure_state(state.0, decision, self.settings, decision.attempt.at.0);
            }
            if let Some(wait) = decision.retry {
                retry = Some(retry.map_or(wait, |r| r.min(wait)));
            }
        }
        let disabled = state.1.is_some();
        let attempts: HashMap<DeliveryId, Attempt> =
            sent.into_iter().map(|(id, d)| (id, d.attempt)).collect();
        if let Err(error) = self.record(batch, attempts, state) {
            return Some(Stop::Error(error));
        }
        if disabled {
            return Some(Stop::Disabled);
        }
        retry.map(Stop::Retry)
    }

    /// Writes a batch in one transaction: the attempts of stored deliveries; the deliveries
    /// of the batch's events, attempted or not (held back behind a retry, or not reached
    /// after a failure), with the cursor moved past those events; and the subscription's
    /// failure record (a disabled subscription gets its event and audit entry here too).
    fn record(
        &self,
        batch: &Batch,
        mut attempts: HashMap<DeliveryId, Attempt>,
        (since, disable): FailureState,
    ) -> Result<(), ServiceError> {
        let hook = &batch.hook;
        let now = self.now();
        let stored = batch.due.len() - batch.fresh;
        let fresh: Vec<DeliveryRow> = batch.due[stored..]
            .iter()
            .map(|row| match attempts.remove(&row.id) {
                Some(attempt) => row.clone().with_attempt(&attempt),
                None => row.clone(),
            })
            .collect();
        self.context.db.write_blocking(|conn| {
            for (id, attempt) in &attempts {
                rows::record_attempt(conn, hook.tenant_id, *id, attempt)?;
            }
            rows::insert_deliveries(conn, &fresh)?;
            if let Some(cursor) = batch.cursor {
                rows::set_cursor(conn, (hook.tenant_id, hook.id), cursor)?;
            }
            if hook.failing_since.map(|t| t.0) != since || disable.is_some() {
                svc::set_failing(conn, hook, since, disable.as_deref(), now)?;
            }
            Ok(())
        })
    }
}

/// Whether an enabled subscription has events after its cursor that it takes (committed
/// ones, below the feed's horizon or not).
/// A pending delivery, or an event after the cursor that the subscription takes.
fn work_left(conn: &mut DbConnection, ids: (TenantId, WebhookId)) -> Result<bool, DbError> {
    Ok(rows::any_pending(conn, ids)? || events_left(conn, ids)?)
}

fn events_left(conn: &mut DbConnection, ids: (TenantId, WebhookId)) -> Result<bool, DbError> {
    let Some(hook) = rows::for_job(conn, ids)? else {
        return Ok(false);
    };
    if !hook.enabled {
        return Ok(false);
    }
    let scope = crate::auth::job_scope(ids.0);
    let next = db::events::to_deliver(conn, &scope, &hook.filter(), hook.cursor(), (1, false))?;
    Ok(!next.is_empty())
}

/// Why [`Run::close`] kept its job: a pending delivery, or storage failed.
enum Kept {
    Pending,
    Failed(ServiceError),
}

impl From<DbError> for Kept {
    fn from(error: DbError) -> Self {
        Self::Failed(error.into())
    }
}

impl From<diesel::result::Error> for Kept {
    fn from(error: diesel::result::Error) -> Self {
        Self::Failed(error.into())
    }
}

/// The end of a run with nothing due but deliveries waiting for a retry: again when the
/// first of them is due.
fn until_next(waiting: &[Waiting], now: DateTime<Utc>) -> JobOutcome {
    let next = waiting.iter().filter_map(|w| w.3).min();
    JobOutcome::Again {
        after: next.map_or(Duration::ZERO, |next| {
            (next.0 - now).to_std().unwrap_or_default()
        }),
    }
}

/// A batch in lanes: each subject's due deliveries in event order (one lane per subject; a
/// delivery without a subject is a lane of its own), lanes in the order of their first
/// delivery, without the deliveries that must wait behind a retry of their subject.
fn lanes<'a>(due: &'a [DeliveryRow], waiting: &[Waiting]) -> Vec<Vec<&'a DeliveryRow>> {
    let mut lanes: Vec<Vec<&DeliveryRow>> = Vec::new();
    let mut of_subject: HashMap<EntityId, usize> = HashMap::new();
    for delivery in due {
        let Some(subject) = delivery.subject_id else {
            lanes.push(vec![delivery]);
            continue;
        };
        let behind = waiting.iter().any(|(s, txid, seq, _)| {
            *s == Some(subject) && (*txid, *seq) < (delivery.event_txid, delivery.event_seq)
        });
        if behind {
            continue;
        }
        match of_subject.get(&subject) {
            Some(&lane) => lanes[lane].push(delivery),
            None => {
                of_subject.insert(subject, lanes.len());
                lanes.push(vec![delivery]);
            }
        }
    }
    lanes
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the job of every subscription with due deliveries or events to send that has
/// none.
fn sweep(context: &JobContext) -> JobOutcome {
    let found = context
        .db
        .get()
        .map_err(ServiceError::from)
        .and_then(|mut conn| {
            let mut found = rows::with_due(&mut conn, context.now.into(), SWEEP_LIMIT)?;
            for hook in rows::all_enabled(&mut conn, SWEEP_LIMIT)? {
                let ids = (hook.tenant_id, hook.id);
                if !found.contains(&ids) && events_left(&mut conn, ids)? {
                    found.push(ids);
                }
            }
            Ok(found)
        });
    let started = found.and_then(|subscriptions| {
        context.db.write_blocking(|conn| {
            for ids in subscriptions {
                svc::schedule(conn, ids, context.now, false)?;
            }
            Ok(())
        })
    });
    match started {
        Ok(()) => JobOutcome::Done,
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
    body: &str,
    hook: &WebhookRow,
    secrets: &[WebhookSecret],
    now: DateTime<Utc>,
) -> OutboundRequest {
    let refs: Vec<_> = secrets.iter().collect();
    let msg_id = delivery.event_id.to_string();
    let timestamp = now.timestamp();
    let body = body.as_bytes().to_vec();
    let signature = sign(&refs, &msg_id, timestamp, &body);
    OutboundRequest {
        url: hook.url.clone(),
        headers: vec![
            ("webhook-id".to_owned(), msg_id),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
            ("webhook-signature".to_owned(), signature),
        ],
        body,
    }
}

/// What one attempt's result means.
struct Decision {
    attempt: Attempt,
    /// Retry after this wait (the subscription waits with it).
    retry: Option<Duration>,
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
        attempt: base(rows::PENDING, Some(error), Some(after)),
        retry: Some(after.max(Duration::from_secs(1))),
        failed: true,
    };
    match (result.status, &result.error) {
        (Some(code), _) if (200..300).contains(&code) => Decision {
            attempt: base(rows::DELIVERED, None, None),
            retry: None,
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
            retry: None,
            failed: true,
        },
        (None, Some(error @ outbound::OutboundError::Refused { .. })) => Decision {
            attempt: base(rows::FAILED, Some(error.to_string()), None),
            retry: None,
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
    failing_since: Option<DateTime<Utc>>,
    decision: &Decision,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
) -> FailureState {
    if !decision.failed {
        return (None, None);
    }
    let since = failing_since.unwrap_or(now);
    let limit = chrono::Duration::from_std(settings.disable_after).unwrap_or(chrono::Duration::MAX);
    let disable = (now - since >= limit).then(|| {
        format!(
            "deliveries failed for {} days without a success",
            settings.disable_after.as_secs() / 86_400
        )
    });
    (Some(since), disable)
}

fn retry_later(error: &dyn std::fmt::Display) -> JobOutcome {
    log::warn!("webhook delivery, will retry: {error}");
    JobOutcome::Retry {
        after: None,
        error: "storage unavailable".to_owned(),
    }
}
