//! Webhooks: signed deliveries from the outbox to a real HTTP receiver, verified with the
//! Standard Webhooks library; retries with back-off and Retry-After; SSRF refusal; disabling
//! after repeated failure; redelivery; ping; secret rotation.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::TimeDelta;
use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stageflow::db::DbError;

use crate::helpers::{TestApp, spawn_app_with};
use crate::tickets::desk_tenant;

/// What the receiver got: the `webhook-*` headers and the body.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A scripted answer: a status and an optional `Retry-After`.
type Answer = (u16, Option<&'static str>);

/// A real HTTP receiver: answers each request with the next scripted status (then 200).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    url: String,
}

async fn record(req: HttpRequest, body: web::Bytes, r: web::Data<Receiver>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    r.got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, retry_after) = r.script.lock().unwrap().pop_front().unwrap_or((200, None));
    let mut answer = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if let Some(after) = retry_after {
        answer.insert_header(("Retry-After", after));
    }
    answer.body("receiver says hello")
}

fn receiver(script: &[Answer]) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut r = Receiver {
        url: format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().unwrap().port()
        ),
        ..Receiver::default()
    };
    r.script = Arc::new(Mutex::new(script.iter().copied().collect()));
    let data = web::Data::new(r.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(record))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    r
}

impl Receiver {
    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// Deliveries run only when the test calls [`deliver`] (the runner's own loop waits an hour).
async fn quiet_app(allow_private: bool) -> TestApp {
    spawn_app_with(|c| {
        c.webhooks.allow_private = allow_private;
        c.jobs.tick = std::time::Duration::from_secs(3_600);
    })
    .await
}

async fn private_app() -> TestApp {
    quiet_app(true).await
}

/// Runs the due jobs (deliveries) at the test clock's now.
async fn deliver(app: &TestApp) {
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
}

async fn subscribe(app: &TestApp, admin: &str, body: Value) -> Value {
    let reply = app.post_json("/api/v1/webhooks", Some(admin), &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json()
}

async fn file(app: &TestApp, token: &str, title: &str) -> Value {
    app.create(
        "/api/v1/tickets",
        token,
        json!({"template": "desk", "fields": {"title": title}}),
    )
    .await
}

/// Verifies a delivery with the Standard Webhooks library: its own signature of the
/// delivery must be among the ones sent. (Its `verify` also checks the timestamp against the
/// wall clock, and the test server runs on a moved test clock; the unit tests of
/// `domain::webhook_signature` use `verify` itself.)
fn verify(secret: &str, r: &Received) -> bool {
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    let timestamp: i64 = r.timestamp.parse().unwrap();
    let expected = wh.sign(&r.id, timestamp, r.body.as_bytes()).unwrap();
    r.signature.split(' ').any(|s| s == expected)
}

async fn deliveries(app: &TestApp, admin: &str, hook: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/v1/webhooks/{hook}/deliveries"), Some(admin))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["items"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn deliveries_are_signed_and_verify_with_the_standard_library() {
    let app = private_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let admin = tenant.admin_token.clone();
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let r = receiver(&[]);
    let hook = subscribe(
        &app,
        &admin,
        json!({"url": r.url, "events": ["ticket.created"], "template": "desk"}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = hook["id"].as_str().unwrap();
    // The secret is never shown again.
    let read = app
        .get(&format!("/api/v1/webhooks/{id}"), Some(&admin))
        .await;
    assert!(!read.text.contains(&secret) && read.json().get("secret").is_none());

    let ticket = file(&app, &agent, "署名付きで届く").await;
    app.post_json(
        &format!(
            "/api/v1/tickets/{}/comments",
            ticket["id"].as_str().unwrap()
        ),
        Some(&agent),
        &json!({"body": "filtered out by type"}),
    )
    .await;
    deliver(&app).await;
    let got = r.got();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(verify(&secret, &got[0]), "{got:?}");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "ticket.created");
    assert_eq!(body["id"], got[0].id.as_str());
    assert_eq!(body["tenant"], tenant.id.as_str());
    assert_eq!(body["data"]["ticket"]["id"], ticket["id"]);
    // The webhook-id is the event id of the feed.
    let feed = app
        .get("/api/v1/events?type=ticket.created", Some(&admin))
        .await
        .json();
    assert_eq!(feed["items"][0]["id"], got[0].id.as_str());
    // The body is the feed's event, without its cursor.
    let mut item = feed["items"][0].clone();
    item.as_object_mut().unwrap().remove("cursor");
    assert_eq!(body, item);
    // A tampered body does not verify.
    let mut forged = got[0].clone();
    forged.body = forged.body.replace("署名付き", "改ざん");
    assert!(!verify(&secret, &forged));

    let log = deliveries(&app, &admin, id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["last_status"], 200);
    assert_eq!(log[0]["response_excerpt"], "receiver says hello");
    assert_eq!(log[0]["event_id"], got[0].id.as_str());
}

#[actix_web::test]
async fn failures_are_retried_with_back_off_and_retry_after() {
    let app = private_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let admin = tenant.admin_token.clone();
    let r = receiver(&[(500, None), (503, None), (429, Some("30")), (200, None)]);
    let hook = subscribe(&app, &admin, json!({"url": r.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let ping = app
        .post_json(
            &format!("/api/v1/webhooks/{id}/ping"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(ping.status, StatusCode::ACCEPTED);
    let delivery = ping.json()["id"].as_str().unwrap().to_owned();
    let state = || {
        let (app, admin, id, delivery) = (&app, &admin, &id, &delivery);
        async move {
            app.get(
                &format!("/api/v1/webhooks/{id}/deliveries/{delivery}"),
                Some(admin),
            )
            .await
            .json()
        }
    };
    deliver(&app).await;
    let first = state().await;
    assert_eq!(
        (
            first["status"].as_str(),
            first["attempts"].as_i64(),
            first["last_status"].as_i64()
        ),
        (Some("pending"), Some(1), Some(500))
    );
    // The first retry waits 2.5–5 s: not yet after 2 s, done after 5.
    let due = |d: &Value| {
        d["next_attempt_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    let wait = due(&first) - app.clock_now();
    assert!(
        wait >= TimeDelta::milliseconds(2_500) && wait <= TimeDelta::seconds(5),
        "{wait}"
    );
    app.clock.advance(TimeDelta::seconds(2));
    deliver(&app).await;
    assert_eq!(r.got().len(), 1);
    app.clock.advance(TimeDelta::seconds(3));
    deliver(&app).await;
    let second = state().await;
    assert_eq!(second["last_status"], 503);
    // The second retry waits 5–10 s.
    let wait = due(&second) - app.clock_now();
    assert!(
        wait >= TimeDelta::seconds(5) && wait <= TimeDelta::seconds(10),
        "{wait}"
    );
    app.clock.advance(TimeDelta::seconds(10));
    deliver(&app).await;
    let third = state().await;
    assert_eq!(third["last_status"], 429);
    // Retry-After wins over the back-off.
    assert_eq!(due(&third) - app.clock_now(), TimeDelta::seconds(30));
    app.clock.advance(TimeDelta::seconds(29));
    deliver(&app).await;
    assert_eq!(r.got().len(), 3);
    app.clock.advance(TimeDelta::seconds(1));
    deliver(&app).await;
    let done = state().await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_i64()),
        (Some("delivered"), Some(4))
    );
    // Every attempt carried the same webhook-id.
    let got = r.got();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|g| g.id == got[0].id));
}

#[actix_web::test]
async fn private_addresses_are_refused_unless_allowed() {
    let app = quiet_app(false).await;
    let tenant = app.tenant("acme").await;
    let admin = tenant.admin_token.clone();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ] {
        let reply = app
            .post_json("/api/v1/webhooks", Some(&admin), &json!({"url": url}))
            .await;
        let problem = reply.assert_problem(422, "/problems/validation");
        assert_eq!(problem["errors"][0]["code"], "private_address", "{url}");
    }
    for url in [
        "ftp://example.com/x",
        "https://user:pw@example.com/",
        "not a url",
    ] {
        let reply = app
            .post_json("/api/v1/webhooks", Some(&admin), &json!({"url": url}))
            .await;
        reply.assert_problem(422, "/problems/validation");
    }
    assert_eq!(
        app.get("/api/v1/webhooks", Some(&admin)).await.json()["items"],
        json!([])
    );
    // A name that resolves to a private address passes creation and is refused when sent.
    let r = receiver(&[]);
    let url = r.url.replace("127.0.0.1", "localhost");
    let hook = subscribe(&app, &admin, json!({"url": url})).await;
    let id = hook["id"].as_str().unwrap();
    app.post_json(
        &format!("/api/v1/webhooks/{id}/ping"),
        Some(&admin),
        &json!({}),
    )
    .await;
    deliver(&app).await;
    let log = deliveries(&app, &admin, id).await;
    assert_eq!(log[0]["status"], "failed");
    assert!(
        log[0]["last_error"].as_str().unwrap().contains("refused"),
        "{}",
        log[0]
    );
    assert!(r.got().is_empty());
}

#[actix_web::test]
async fn a_subscription_failing_too_long_is_disabled_and_redelivery_sends_again() {
    let app = private_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let admin = tenant.admin_token.clone();
    let agent_name = "agent1";
    app.user(&tenant, agent_name, &["agent"]).await;
    let r = receiver(&[(500, None); 400]);
    let hook = subscribe(&app, &admin, json!({"url": r.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let agent = app
        .login(Some("acme"), agent_name, crate::helpers::USER_PASSWORD)
        .await;
    file(&app, &agent, "失敗し続ける").await;
    deliver(&app).await;
    let failing = app
        .get(&format!("/api/v1/webhooks/{id}"), Some(&admin))
        .await
        .json();
    assert_eq!(failing["enabled"], true);
    assert_ne!(failing["failing_since"], Value::Null, "{failing}");
    // Retries go on (at most an hour apart) for the 3 days of STAGEFLOW_WEBHOOK_DISABLE_AFTER_DAYS.
    for _ in 0..80 {
        app.clock.advance(TimeDelta::hours(1));
        deliver(&app).await;
    }
    let admin = app
        .login(Some("acme"), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let disabled = app
        .get(&format!("/api/v1/webhooks/{id}"), Some(&admin))
        .await
        .json();
    assert_eq!(disabled["enabled"], false, "{disabled}");
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("3 days")
    );
    let tries = r.got().len();
    assert!(tries > 10, "{tries}");
    let event = app
        .get("/api/v1/events?type=webhook.disabled", Some(&admin))
        .await
        .json();
    assert_eq!(event["items"][0]["subject"]["id"], id.as_str());
    assert_eq!(event["items"][0]["actor"]["kind"], "system");
    let audit = app.audit_entries(&admin, "webhook.disabled").await;
    assert_eq!(audit.len(), 1);
    // Disabled: nothing more goes out.
    app.clock.advance(TimeDelta::hours(2));
    deliver(&app).await;
    assert_eq!(r.got().len(), tries);
    let admin = app
        .login(Some("acme"), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let log = deliveries(&app, &admin, &id).await;
    assert_eq!(log[0]["status"], "failed");

    // Fixed receiver, enabled again, the failed delivery sent again with its event id.
    r.script.lock().unwrap().clear();
    let etag = app
        .get(&format!("/api/v1/webhooks/{id}"), Some(&admin))
        .await;
    let enabled = app
        .send(
            app.client
                .patch(app.url(&format!("/api/v1/webhooks/{id}")))
                .bearer_auth(&admin)
                .header("If-Match", etag.header("etag").unwrap())
                .json(&json!({"enabled": true})),
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.text);
    assert_eq!(enabled.json()["failing_since"], Value::Null);
    let again = app
        .post_json(
            &format!("/api/v1/webhooks/{id}/redeliveries"),
            Some(&admin),
            &json!({"delivery_ids": [log[0]["id"]]}),
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    assert_eq!(again.json()["items"][0]["status"], "pending");
    deliver(&app).await;
    let got = r.got();
    assert_eq!(got.len(), tries + 1);
    assert_eq!(got.last().unwrap().id, got[0].id);
    assert_eq!(
        deliveries(&app, &admin, &id).await[0]["status"],
        "delivered"
    );
    // One delivery again by its own path (the contract's form); an unknown one is a 404.
    let one = app
        .post_json(
            &format!(
                "/api/v1/webhooks/{id}/deliveries/{}/redeliver",
                log[0]["id"].as_str().unwrap()
            ),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(one.status, StatusCode::ACCEPTED, "{}", one.text);
    assert_eq!(one.json()["status"], "pending");
    assert_eq!(one.json()["id"], log[0]["id"]);
    deliver(&app).await;
    assert_eq!(r.got().len(), tries + 2);
    assert_eq!(r.got().last().unwrap().id, got[0].id);
    app.post_json(
        &format!("/api/v1/webhooks/{id}/deliveries/019ac0d2-7100-7000-8000-000000000001/redeliver"),
        Some(&admin),
        &json!({}),
    )
    .await
    .assert_problem(404, "/problems/not-found");
    // A range that is empty or inverted is refused.
    app.post_json(
        &format!("/api/v1/webhooks/{id}/redeliveries"),
        Some(&admin),
        &json!({"from": "2026-05-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}),
    )
    .await
    .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn a_rotated_secret_overlaps_with_the_previous_one() {
    let app = private_app().await;
    let tenant = app.tenant("acme").await;
    let admin = tenant.admin_token.clone();
    let r = receiver(&[]);
    let hook = subscribe(&app, &admin, json!({"url": r.url})).await;
    let (id, old) = (
        hook["id"].as_str().unwrap().to_owned(),
        hook["secret"].as_str().unwrap().to_owned(),
    );
    let rotated = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/webhooks/{id}/secret")))
                .bearer_auth(&admin)
                .header("If-Match", "\"1\""),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new = rotated.json()["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    app.post_json(
        &format!("/api/v1/webhooks/{id}/ping"),
        Some(&admin),
        &json!({}),
    )
    .await;
    deliver(&app).await;
    let got = r.got();
    assert_eq!(got[0].signature.split(' ').count(), 2, "{:?}", got[0]);
    assert!(verify(&new, &got[0]) && verify(&old, &got[0]));
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "webhook.ping");
    assert_eq!(body["subject"]["kind"], "webhook");
    assert!(body["occurred_at"].is_string());
    // Only tenant admins manage subscriptions.
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    app.get("/api/v1/webhooks", Some(&agent))
        .await
        .assert_problem(403, "/problems/forbidden");
    // After the overlap only the new secret signs.
    app.clock.advance(TimeDelta::hours(25));
    let admin = app
        .login(Some("acme"), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    app.post_json(
        &format!("/api/v1/webhooks/{id}/ping"),
        Some(&admin),
        &json!({}),
    )
    .await;
    deliver(&app).await;
    let got = r.got();
    assert_eq!(got[1].signature.split(' ').count(), 1);
    assert!(verify(&new, &got[1]) && !verify(&old, &got[1]));
    // The contract's name of the rotation does the same.
    let again = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/webhooks/{id}/rotate-secret")))
                .bearer_auth(&admin)
                .header("If-Match", "\"2\""),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let newer = again.json()["secret"].as_str().unwrap().to_owned();
    assert_ne!(newer, new);
    assert_eq!(again.header("etag"), Some("\"3\""));
}

#[actix_web::test]
async fn deliveries_of_one_subject_go_out_in_event_order() {
    let app = private_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let admin = tenant.admin_token.clone();
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let r = receiver(&[(500, None)]);
    subscribe(&app, &admin, json!({"url": r.url, "template": "desk"})).await;
    let ticket = file(&app, &agent, "順番に届く").await;
    let comment = app
        .post_json(
            &format!(
                "/api/v1/tickets/{}/comments",
                ticket["id"].as_str().unwrap()
            ),
            Some(&agent),
            &json!({"body": "二番目"}),
        )
        .await;
    assert_eq!(comment.status, StatusCode::CREATED);
    // The creation fails once; the comment waits behind it instead of overtaking it.
    deliver(&app).await;
    assert_eq!(event_types(&r), ["ticket.created"]);
    for _ in 0..4 {
        app.clock.advance(TimeDelta::seconds(5));
        deliver(&app).await;
    }
    assert_eq!(
        event_types(&r),
        ["ticket.created", "ticket.created", "ticket.commented"]
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A desk tenant whose admin subscribed a fresh receiver to `ticket.created`: the admin's
/// and an agent's tokens, the receiver and the subscription's id.
async fn subscribed_to_creations(app: &TestApp) -> (String, String, Receiver, String) {
    let (tenant, _) = desk_tenant(app, "acme").await;
    let admin = tenant.admin_token.clone();
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let r = receiver(&[]);
    let hook = subscribe(
        app,
        &admin,
        json!({"url": r.url, "events": ["ticket.created"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    (admin, agent, r, id)
}

/// The delivery job of a subscription, if it has one.
async fn delivery_job(app: &TestApp, hook: &str) -> Option<stageflow::db::jobs::JobRow> {
    let key = stageflow::service::webhooks::job_key(hook.parse().unwrap());
    app.state
        .db
        .read(move |conn| Ok::<_, DbError>(stageflow::db::jobs::find_singleton(conn, &key)?))
        .await
        .unwrap()
}

fn event_types(r: &Receiver) -> Vec<String> {
    r.got()
        .iter()
        .map(|g| {
            serde_json::from_str::<Value>(&g.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[actix_web::test]
async fn one_job_per_subscription_sends_a_burst_of_deliveries() {
    let app = private_app().await;
    let (admin, agent, r, id) = subscribed_to_creations(&app).await;
    assert!(delivery_job(&app, &id).await.is_none());
    // More than one batch (250) of deliveries, each its own subject.
    let mut tickets = Vec::new();
    for n in 0..260 {
        tickets.push(file(&app, &agent, &format!("まとめて {n}")).await["id"].clone());
    }
    // One job for all of them, not one per delivery.
    let job = delivery_job(&app, &id)
        .await
        .expect("the subscription's job");
    assert_eq!(job.kind, "webhook.deliver");
    let jobs = app
        .state
        .db
        .read(|conn| {
            diesel::sql_query("SELECT COUNT(*) AS n FROM jobs WHERE kind = 'webhook.deliver'")
                .get_result::<Count>(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(jobs.n, 1);
    deliver(&app).await;
    // Every delivery, once (different tickets go out side by side, so in any order).
    let mut sent: Vec<String> = r
        .got()
        .iter()
        .map(|g| serde_json::from_str::<Value>(&g.body).unwrap()["ticket_id"].to_string())
        .collect();
    let mut tickets: Vec<String> = tickets.iter().map(Value::to_string).collect();
    sent.sort();
    tickets.sort();
    assert_eq!(sent, tickets);
    // Nothing is pending: the job is gone until the next event.
    assert!(delivery_job(&app, &id).await.is_none());
    assert!(
        deliveries(&app, &admin, &id)
            .await
            .iter()
            .all(|d| d["status"] == "delivered")
    );
    file(&app, &agent, "次の一件").await;
    assert!(delivery_job(&app, &id).await.is_some());
    deliver(&app).await;
    assert_eq!(r.got().len(), 261);
}

#[actix_web::test]
async fn a_failing_receiver_holds_the_subscription_back_until_the_retry() {
    // One delivery in flight at a time, so that what is held back is not already on its way.
    let app = spawn_app_with(|c| {
        c.webhooks.allow_private = true;
        c.webhooks.concurrency = 1;
        c.jobs.tick = std::time::Duration::from_secs(3_600);
    })
    .await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let admin = tenant.admin_token.clone();
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let r = receiver(&[(503, Some("20"))]);
    subscribe(
        &app,
        &admin,
        json!({"url": r.url, "events": ["ticket.created"]}),
    )
    .await;
    let first = file(&app, &agent, "一件目").await;
    let second = file(&app, &agent, "二件目").await;
    // The first answer is a 503: the second ticket (another subject) is not tried against
    // a receiver that just failed.
    deliver(&app).await;
    assert_eq!(r.got().len(), 1);
    app.clock.advance(TimeDelta::seconds(19));
    deliver(&app).await;
    assert_eq!(r.got().len(), 1);
    app.clock.advance(TimeDelta::seconds(1));
    deliver(&app).await;
    let ids: Vec<Value> = r
        .got()
        .iter()
        .map(|g| serde_json::from_str::<Value>(&g.body).unwrap()["ticket_id"].clone())
        .collect();
    assert_eq!(
        ids,
        [
            first["id"].clone(),
            first["id"].clone(),
            second["id"].clone()
        ]
    );
    assert_eq!(event_types(&r), ["ticket.created"; 3]);
}

#[actix_web::test]
async fn the_sweep_starts_a_job_for_deliveries_left_without_one() {
    let app = private_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let admin = tenant.admin_token.clone();
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let r = receiver(&[]);
    let hook = subscribe(&app, &admin, json!({"url": r.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    file(&app, &agent, "取り残し").await;
    // As if the job had ended just as this delivery was written (or came from an older
    // version): the delivery is pending and the subscription has no job.
    assert!(delivery_job(&app, &id).await.is_some());
    let key = stageflow::service::webhooks::job_key(id.parse().unwrap());
    app.state
        .db
        .write(move |conn| {
            diesel::sql_query(format!("DELETE FROM jobs WHERE singleton = '{key}'"))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    deliver(&app).await;
    assert!(r.got().is_empty());
    // The sweep runs every 10 s; it starts the job, which sends at once.
    app.clock.advance(TimeDelta::seconds(10));
    deliver(&app).await;
    assert_eq!(event_types(&r), ["ticket.created"]);
    assert!(delivery_job(&app, &id).await.is_none());
}

#[actix_web::test]
async fn a_delivery_whose_event_is_no_longer_kept_fails() {
    let app = private_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let admin = tenant.admin_token.clone();
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    // The receiver asks for a pause of 100 days, longer than events are kept (90).
    let r = receiver(&[(503, Some("8640000"))]);
    let hook = subscribe(&app, &admin, json!({"url": r.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    file(&app, &agent, "忘れられる").await;
    deliver(&app).await;
    assert_eq!(r.got().len(), 1);
    app.clock.advance(TimeDelta::days(100));
    let now = app.clock_now();
    stageflow::service::retention::purge(
        &app.state.db,
        stageflow::service::retention::Kept::Events,
        now - TimeDelta::days(90),
    )
    .unwrap();
    deliver(&app).await;
    // Nothing is sent without its event; the delivery fails and says why.
    assert_eq!(r.got().len(), 1);
    let admin = app
        .login(Some("acme"), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let log = deliveries(&app, &admin, &id).await;
    assert_eq!(log[0]["status"], "failed", "{log:?}");
    assert!(
        log[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no longer kept")
    );
}

/// An event's transaction starts no job when it finds one, so a job that closes while such a
/// transaction is still open must not end blind to its event: on PostgreSQL the closing job
/// waits for the transactions running after its deletion, then looks again and starts a new
/// job for what it finds (SQLite's one writer lets no such transaction overlap the deletion).
#[actix_web::test]
async fn a_closing_job_waits_for_an_event_that_found_it_still_there() {
    let app = private_app().await;
    if app.db.backend() != stageflow::db::Backend::Postgres {
        return;
    }
    let (_, agent, r, id) = subscribed_to_creations(&app).await;
    file(&app, &agent, "一件目").await;
    assert!(delivery_job(&app, &id).await.is_some());
    // A writer that saw the job and so started none: its event is committed only once the
    // job's deletion has committed (it copies the ticket's event under a new id).
    let key = stageflow::service::webhooks::job_key(id.parse().unwrap());
    let mut held = app.state.db.get().unwrap();
    let mut watcher = app.state.db.get().unwrap();
    let (began, wait_began) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let sql = |conn: &mut stageflow::db::DbConnection, q: &str| {
            diesel::sql_query(q).execute(conn).unwrap();
        };
        sql(&mut held, "BEGIN");
        sql(
            &mut held,
            "INSERT INTO events (tenant_id, id, seq, at, event_type, actor_kind, actor_id, \
             actor_name, subject_type, subject_id, ticket_id, container, audience, payload, \
             restricted_payload) SELECT tenant_id, gen_random_uuid(), 1, at, event_type, \
             actor_kind, actor_id, actor_name, subject_type, subject_id, ticket_id, container, \
             audience, payload, restricted_payload FROM events \
             WHERE event_type = 'ticket.created' ORDER BY at DESC LIMIT 1",
        );
        began.send(()).unwrap();
        // Until the job has deleted itself (the closing job polls for this transaction).
        let gone = format!("SELECT 1 FROM jobs WHERE singleton = '{key}'");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while diesel::sql_query(&gone).execute(&mut **watcher).unwrap() > 0 {
            assert!(std::time::Instant::now() < deadline, "the job never closed");
            std::thread::yield_now();
        }
        sql(&mut held, "COMMIT");
    });
    wait_began.recv().unwrap();
    deliver(&app).await;
    writer.join().unwrap();
    // The job closed, waited for the writer, found its event and started again.
    deliver(&app).await;
    let got = r.got();
    assert_eq!(got.len(), 2, "both events delivered, the held one too");
    let bodies: Vec<Value> = got
        .iter()
        .map(|g| serde_json::from_str(&g.body).unwrap())
        .collect();
    assert_ne!(bodies[0]["id"], bodies[1]["id"]);
    assert_eq!(bodies[0]["ticket_id"], bodies[1]["ticket_id"]);
    assert!(delivery_job(&app, &id).await.is_none());
}
