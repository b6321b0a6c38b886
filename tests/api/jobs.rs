//! The job runner (docs/ARCHITECTURE.md, "Jobs"): the outbox, retries with back-off, failure
//! after the last attempt, two nodes on one database, lease take-over, graceful release, and
//! the recurring housekeeping. Time moves by the test clock; nothing sleeps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::RunQueryDsl;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use stageflow::clock::Clock;
use stageflow::db::DbError;
use stageflow::domain::ids::{JobId, TenantId};
use stageflow::jobs::{JobOutcome, NewJob, Runner};

use crate::helpers::{TestApp, spawn_app_with};
use crate::tickets::desk_tenant;

/// The server's own loop stays out of the way (a tick of an hour): the test runs the passes.
async fn app() -> TestApp {
    spawn_app_with(|config| config.jobs.tick = Duration::from_secs(3_600)).await
}

/// Another node on the same database.
fn second_node(app: &TestApp, node_id: &str) -> Arc<Runner> {
    let mut settings = app.state.config.jobs.clone();
    settings.node_id = node_id.to_owned();
    settings.shutdown_grace = Duration::ZERO;
    Runner::new(app.state.db.clone(), app.clock.clone(), &settings)
}

async fn enqueue(app: &TestApp, job: NewJob) -> JobId {
    app.state
        .db
        .write(move |conn| stageflow::jobs::enqueue(conn, &job))
        .await
        .unwrap()
}

fn job(kind: &str, now: DateTime<Utc>) -> NewJob {
    NewJob::new(kind, json!({"n": 1}), now)
}

async fn stored(app: &TestApp, id: JobId) -> Option<stageflow::db::jobs::JobRow> {
    stageflow::jobs::find(&app.state.db, id).await.unwrap()
}

/// Attempts seen by a handler: (job, attempt, node).
type Seen = Arc<Mutex<Vec<(JobId, i32, String)>>>;

#[actix_web::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_never_runs() {
    let app = app().await;
    let tenant = app.tenant("acme").await;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    app.state.jobs.register("test.outbox", move |ctx, job| {
        log.lock()
            .unwrap()
            .push((job.id, job.attempt, ctx.node_id.to_string()));
        JobOutcome::Done
    });
    let now = app.clock.now();
    let mut kept = job("test.outbox", now);
    kept.tenant = Some(TenantId(tenant.id.parse().unwrap()));
    let kept = enqueue(&app, kept).await;
    let rolled_back = job("test.outbox", now);
    let lost = app
        .state
        .db
        .write(move |conn| {
            let id = stageflow::jobs::enqueue(conn, &rolled_back)?;
            Err::<JobId, DbError>(DbError::Migration(format!("abandon {id}")))
        })
        .await
        .unwrap_err();
    let lost: JobId = lost
        .to_string()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    stageflow::jobs::run_due(&app.state.jobs, now).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, kept);
    assert!(stored(&app, lost).await.is_none());
    assert!(stored(&app, kept).await.is_none(), "a done job is deleted");
}

#[actix_web::test]
async fn a_failing_job_is_retried_with_growing_delays_then_succeeds() {
    let app = app().await;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    app.state.jobs.register("test.flaky", move |_, job| {
        log.lock()
            .unwrap()
            .push((job.id, job.attempt, String::new()));
        if job.attempt <= 3 {
            JobOutcome::Retry {
                after: None,
                error: format!("attempt {} failed", job.attempt),
            }
        } else {
            JobOutcome::Done
        }
    });
    let id = enqueue(&app, job("test.flaky", app.clock.now())).await;
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        let now = app.clock.now();
        stageflow::jobs::run_due(&app.state.jobs, now).await;
        let row = stored(&app, id).await.unwrap();
        assert_eq!(row.attempts, attempt);
        assert_eq!(
            row.last_error.as_deref(),
            Some(&*format!("attempt {attempt} failed"))
        );
        assert!(row.lease_owner.is_none() && row.failed_at.is_none());
        let delay = row.run_at.0 - now;
        delays.push(delay);
        // Not due before its time: a pass a moment earlier runs nothing.
        app.clock.set(row.run_at.0 - TimeDelta::milliseconds(1));
        stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await;
        assert_eq!(seen.lock().unwrap().len(), attempt as usize);
        app.clock.set(row.run_at.0);
    }
    assert!(
        delays.windows(2).all(|pair| pair[0] < pair[1]),
        "delays grow: {delays:?}"
    );
    assert!(delays[0] >= TimeDelta::milliseconds(2_500) && delays[0] < TimeDelta::seconds(5));
    stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await;
    let attempts: Vec<i32> = seen.lock().unwrap().iter().map(|s| s.1).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    assert!(stored(&app, id).await.is_none());
}

#[actix_web::test]
async fn a_job_out_of_attempts_fails_with_its_last_error() {
    let app = app().await;
    app.state
        .jobs
        .register("test.broken", |_, job| JobOutcome::Retry {
            after: Some(Duration::from_secs(2)),
            error: format!("receiver answered 503 on attempt {}", job.attempt),
        });
    app.state
        .jobs
        .register("test.refused", |_, _| JobOutcome::Failed {
            reason: "gone for good".into(),
        });
    let mut broken = job("test.broken", app.clock.now());
    broken.max_attempts = 3;
    let broken = enqueue(&app, broken).await;
    let refused = enqueue(&app, job("test.refused", app.clock.now())).await;
    for _ in 0..5 {
        stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await;
        app.clock.advance(TimeDelta::seconds(2));
    }
    let row = stored(&app, broken).await.unwrap();
    assert_eq!(row.attempts, 3);
    assert!(row.failed_at.is_some());
    assert_eq!(
        row.last_error.as_deref(),
        Some("receiver answered 503 on attempt 3")
    );
    let row = stored(&app, refused).await.unwrap();
    assert_eq!(row.attempts, 1, "a refusal is not retried");
    assert_eq!(row.last_error.as_deref(), Some("gone for good"));
    assert!(row.failed_at.is_some() && row.lease_owner.is_none());
}

#[actix_web::test]
async fn two_nodes_never_run_the_same_job_at_once() {
    let app = app().await;
    let other = second_node(&app, "node-b");
    let running: Arc<Mutex<HashMap<JobId, usize>>> = Arc::default();
    let overlaps = Arc::new(Mutex::new(0));
    let seen: Seen = Arc::default();
    for runner in [&app.state.jobs, &other] {
        let (running, overlaps, seen) = (running.clone(), overlaps.clone(), seen.clone());
        runner.register("test.shared", move |ctx, job| {
            let twice = {
                let mut running = running.lock().unwrap();
                let count = running.entry(job.id).or_default();
                *count += 1;
                *count > 1
            };
            if twice {
                *overlaps.lock().unwrap() += 1;
            }
            seen.lock()
                .unwrap()
                .push((job.id, job.attempt, ctx.node_id.to_string()));
            *running.lock().unwrap().get_mut(&job.id).unwrap() -= 1;
            JobOutcome::Done
        });
    }
    let now = app.clock.now();
    let ids: Vec<JobId> = join_all((0..60).map(|_| enqueue(&app, job("test.shared", now)))).await;

    let passes = [&app.state.jobs, &other, &app.state.jobs, &other];
    let ran: usize = join_all(passes.map(|runner| stageflow::jobs::run_due(runner, now)))
        .await
        .into_iter()
        .sum();
    assert_eq!(ran, 60);
    assert_eq!(*overlaps.lock().unwrap(), 0);
    let seen = seen.lock().unwrap().clone();
    let mut ran_ids: Vec<JobId> = seen.iter().map(|s| s.0).collect();
    ran_ids.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(ran_ids, expected, "every job ran exactly once");
    assert!(seen.iter().all(|s| s.1 == 1));
}

/// A handler that, on the node named `held_by`, tells the test it started and then waits
/// for the test to let it finish (bounded), answering `Done`; elsewhere it retries in 5 min.
fn holding_handler(
    held_by: String,
    started: tokio::sync::mpsc::UnboundedSender<()>,
    release: Arc<Mutex<std::sync::mpsc::Receiver<()>>>,
) -> impl Fn(&stageflow::jobs::JobContext, &stageflow::jobs::Job) -> JobOutcome + Send + Sync {
    move |ctx, _| {
        if *ctx.node_id == *held_by {
            started.send(()).unwrap();
            let _ = release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
            JobOutcome::Done
        } else {
            JobOutcome::Retry {
                after: Some(Duration::from_secs(300)),
                error: format!("retried by {}", ctx.node_id),
            }
        }
    }
}

#[actix_web::test]
async fn an_expired_lease_is_taken_over_and_the_old_owners_outcome_is_refused() {
    let app = app().await;
    let slow = second_node(&app, "node-slow");
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let handler = holding_handler(
        "node-slow".into(),
        started_tx,
        Arc::new(Mutex::new(release_rx)),
    );
    let handler = Arc::new(handler);
    for runner in [&slow, &app.state.jobs] {
        let handler = handler.clone();
        runner.register("test.lease", move |ctx, job| (*handler)(ctx, job));
    }
    let id = enqueue(&app, job("test.lease", app.clock.now())).await;
    let first = {
        let slow = slow.clone();
        let now = app.clock.now();
        actix_web::rt::spawn(async move { slow.run_due(now).await })
    };
    actix_web::rt::time::timeout(Duration::from_secs(10), started.recv())
        .await
        .unwrap()
        .unwrap();
    let row = stored(&app, id).await.unwrap();
    assert_eq!(row.lease_owner.as_deref(), Some("node-slow"));

    // Within the lease nobody else takes it; past it, the other node does.
    let node = app.state.jobs.node_id().to_owned();
    app.clock.advance(TimeDelta::seconds(59));
    stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await;
    assert_eq!(stored(&app, id).await.unwrap().attempts, 1);
    app.clock.advance(TimeDelta::seconds(2));
    stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await;
    let row = stored(&app, id).await.unwrap();
    assert_eq!(row.attempts, 2);
    assert_eq!(row.last_error, Some(format!("retried by {node}")));

    // The slow node finishes late: its "done" must not delete the job the other node owns now.
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap(), 1);
    let row = stored(&app, id).await.unwrap();
    assert_eq!(row.attempts, 2);
    assert_eq!(row.last_error, Some(format!("retried by {node}")));
    assert!(row.lease_owner.is_none() && row.failed_at.is_none());
}

#[actix_web::test]
async fn graceful_shutdown_releases_what_it_still_holds() {
    let app = app().await;
    let leaving = second_node(&app, "node-leaving");
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let handler = Arc::new(holding_handler(
        "node-leaving".into(),
        started_tx,
        Arc::new(Mutex::new(release_rx)),
    ));
    for runner in [&leaving, &app.state.jobs] {
        let handler = handler.clone();
        runner.register("test.release", move |ctx, job| (*handler)(ctx, job));
    }
    let id = enqueue(&app, job("test.release", app.clock.now())).await;
    let pass = {
        let leaving = leaving.clone();
        let now = app.clock.now();
        actix_web::rt::spawn(async move { leaving.run_due(now).await })
    };
    actix_web::rt::time::timeout(Duration::from_secs(10), started.recv())
        .await
        .unwrap()
        .unwrap();

    // A grace of zero: the lease is given back at once, and another node runs the job
    // without waiting for the lease to expire.
    leaving.shutdown().await;
    let row = stored(&app, id).await.unwrap();
    assert!(row.lease_owner.is_none() && row.lease_until.is_none());
    assert_eq!(
        stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await,
        1
    );
    assert_eq!(stored(&app, id).await.unwrap().attempts, 2);
    release.send(()).unwrap();
    pass.await.unwrap();
    assert_eq!(stored(&app, id).await.unwrap().attempts, 2);
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn stored_responses(app: &TestApp) -> i64 {
    app.state
        .db
        .read(|conn| {
            diesel::sql_query("SELECT COUNT(*) AS n FROM idempotency_keys")
                .get_result::<Count>(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap()
        .n
}

#[actix_web::test]
async fn the_recurring_idempotency_purge_still_purges() {
    let app = app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let created = app
        .send(
            app.client
                .post(app.url("/api/v1/tickets"))
                .bearer_auth(&agent)
                .header("Idempotency-Key", "order-4711")
                .json(&json!({"template": "desk", "fields": {"title": "一度だけ"}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(stored_responses(&app).await, 1);
    let purge = |app: &TestApp| {
        let db = app.state.db.clone();
        async move {
            db.read(|conn| {
                stageflow::db::jobs::find_singleton(conn, "idempotency.purge")
                    .map_err(DbError::from)
            })
            .await
            .unwrap()
            .unwrap()
        }
    };
    let first_due = purge(&app).await.run_at.0;
    assert_eq!(first_due, app.clock.now() + TimeDelta::seconds(60));

    // Still fresh a day minus a minute later: the purge runs and keeps it.
    app.clock
        .advance(TimeDelta::hours(24) - TimeDelta::minutes(1));
    stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await;
    assert_eq!(stored_responses(&app).await, 1);
    let next = purge(&app).await;
    assert_eq!(next.run_at.0, app.clock.now() + TimeDelta::seconds(60));
    assert_eq!(next.attempts, 0);

    // Past the retention, the next turn forgets it; the job stays for its next turn.
    app.clock.advance(TimeDelta::minutes(2));
    stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await;
    assert_eq!(stored_responses(&app).await, 0);
    assert_eq!(
        purge(&app).await.run_at.0,
        app.clock.now() + TimeDelta::seconds(60)
    );
}

/// A real HTTP receiver that passes each request's `webhook-id` and body on.
fn channel_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let (sender, received) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let sender = web::Data::new(sender);
    let server = HttpServer::new(move || {
        App::new().app_data(sender.clone()).default_service(web::to(
            |req: HttpRequest,
             body: web::Bytes,
             sender: web::Data<tokio::sync::mpsc::UnboundedSender<(String, String)>>| async move {
                let id = req.headers().get("webhook-id").unwrap().to_str().unwrap();
                let _ = sender.send((id.to_owned(), String::from_utf8_lossy(&body).into()));
                HttpResponse::NoContent().finish()
            },
        ))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (url, received)
}

#[actix_web::test]
async fn a_committed_delivery_is_sent_at_once_without_waiting_for_a_tick() {
    // The loop's tick is an hour and nobody runs a pass or moves the clock: only the wake on
    // the commit that enqueued the delivery can send it.
    let app = spawn_app_with(|config| {
        config.jobs.tick = Duration::from_secs(3_600);
        config.jobs.wake_on_enqueue = true;
        config.webhooks.allow_private = true;
    })
    .await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let (url, mut received) = channel_receiver();
    let hook = app
        .post_json(
            "/api/v1/webhooks",
            Some(&tenant.admin_token),
            &json!({"url": url, "event_types": ["ticket.created"]}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
    for title in ["first", "second"] {
        let ticket = app
            .create(
                "/api/v1/tickets",
                &agent,
                json!({"template": "desk", "fields": {"title": title}}),
            )
            .await;
        let (id, body) = actix_web::rt::time::timeout(Duration::from_secs(10), received.recv())
            .await
            .expect("delivered within a bounded wait, not at the hour's tick")
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["type"], "ticket.created");
        assert_eq!(body["data"]["ticket"]["id"], ticket["id"]);
    }
    assert_eq!(app.clock.now(), crate::helpers::start_time());
}

#[actix_web::test]
async fn again_runs_a_job_later_without_counting_a_failed_attempt() {
    let app = app().await;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    app.state.jobs.register("test.again", move |ctx, job| {
        log.lock()
            .unwrap()
            .push((job.id, job.attempt, ctx.node_id.to_string()));
        JobOutcome::Again {
            after: Duration::from_secs(30),
        }
    });
    let mut once = job("test.again", app.clock.now());
    once.max_attempts = 1;
    let id = enqueue(&app, once).await;
    for turn in 1..=3 {
        stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await;
        assert_eq!(seen.lock().unwrap().len(), turn);
        // Its single attempt is never used up: each turn starts the count again.
        let row = stored(&app, id).await.unwrap();
        assert_eq!(row.attempts, 0, "turn {turn}");
        assert!(row.failed_at.is_none() && row.last_error.is_none());
        assert_eq!(row.run_at.0, app.clock.now() + TimeDelta::seconds(30));
        // Not due again before its wait is over.
        stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await;
        assert_eq!(seen.lock().unwrap().len(), turn);
        app.clock.advance(TimeDelta::seconds(30));
    }
    let attempts: Vec<i32> = seen.lock().unwrap().iter().map(|s| s.1).collect();
    assert_eq!(attempts, [1, 1, 1]);
}

#[actix_web::test]
async fn continue_runs_a_job_again_at_once_in_the_same_pass() {
    let app = app().await;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    app.state.jobs.register("test.continue", move |ctx, job| {
        let mut seen = log.lock().unwrap();
        seen.push((job.id, job.attempt, ctx.node_id.to_string()));
        if seen.len() < 3 {
            JobOutcome::Continue
        } else {
            JobOutcome::Done
        }
    });
    let id = enqueue(&app, job("test.continue", app.clock.now())).await;
    // One pass, no clock moved: the job ran three times (attempts from one each time) and
    // is done.
    stageflow::jobs::run_due(&app.state.jobs, app.clock.now()).await;
    let attempts: Vec<i32> = seen.lock().unwrap().iter().map(|s| s.1).collect();
    assert_eq!(attempts, [1, 1, 1]);
    assert!(stored(&app, id).await.is_none());
}
