//! Retention (#17 point 2) on a moved clock: the purge jobs delete exactly the audit entries,
//! events and stored idempotent responses recorded before their cut-off (an entry at the very
//! cut-off stays), in batches.

use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

const DAY: i64 = 86_400;

async fn app() -> TestApp {
    spawn_app_with(|c| {
        c.jobs.tick = std::time::Duration::from_secs(3_600);
        c.access_token_ttl = std::time::Duration::from_secs(90 * DAY as u64);
        c.audit_retention = std::time::Duration::from_secs(30 * DAY as u64);
        c.event_retention = std::time::Duration::from_secs(20 * DAY as u64);
    })
    .await
}

async fn new_user(app: &TestApp, admin: &str, username: &str) {
    app.create(
        "/api/v1/users",
        admin,
        json!({"username": username, "password": "a-long-passphrase-1",
            "display_name": username, "roles": ["agent"]}),
    )
    .await;
}

/// Usernames of the `user.created` audit entries and events still kept.
async fn kept(app: &TestApp, admin: &str) -> (Vec<String>, Vec<String>) {
    let audit: Vec<String> = app
        .audit_entries(admin, "user.created")
        .await
        .iter()
        .map(|e| {
            e["details"]["username"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|name| ours(name))
        .collect();
    let events = app
        .get("/api/v1/events?type=user.created&limit=500", Some(admin))
        .await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.text);
    let events: Vec<String> = events.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["data"]["user"]["username"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|name| ours(name))
        .collect();
    (audit, events)
}

/// The users a test made (not the tenant's first admin).
fn ours(name: &str) -> bool {
    name.starts_with("day") || name.starts_with('u')
}

#[actix_web::test]
async fn retention_deletes_exactly_what_is_due() {
    let app = app().await;
    let tenant = app.tenant("retention").await;
    let t0 = app.clock_now();
    new_user(&app, &tenant.admin_token, "day0").await;
    app.clock.set(t0 + TimeDelta::days(1));
    new_user(&app, &tenant.admin_token, "day1").await;
    app.clock.set(t0 + TimeDelta::days(2));
    new_user(&app, &tenant.admin_token, "day2").await;
    let (audit, events) = kept(&app, &tenant.admin_token).await;
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert_eq!(events.len(), 3, "{events:?}");

    // Events: 20 days. At day 21, day 1's event is exactly at the cut-off and stays.
    app.clock.set(t0 + TimeDelta::days(21));
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let (audit, events) = kept(&app, &tenant.admin_token).await;
    assert_eq!(audit.len(), 3, "the audit log keeps 30 days: {audit:?}");
    let mut events = events;
    events.sort();
    assert_eq!(events, ["day1", "day2"]);

    // Audit: 30 days. At day 31, day 1's entry is exactly at the cut-off and stays.
    app.clock.set(t0 + TimeDelta::days(31));
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let (audit, events) = kept(&app, &tenant.admin_token).await;
    let mut audit = audit;
    audit.sort();
    assert_eq!(audit, ["day1", "day2"]);
    assert!(events.is_empty(), "{events:?}");
}

#[actix_web::test]
async fn an_idempotency_key_replays_for_its_retention_then_is_free_again() {
    let app = app().await;
    let tenant = app.tenant("idem-retention").await;
    let token = &tenant.admin_token;
    let t0 = app.clock_now();
    // Two stored responses, 23 hours apart (tickets need a template: use a catalog one).
    let installed = app
        .post_json(
            "/api/v1/catalog/itil_incident/install",
            Some(token),
            &json!({}),
        )
        .await;
    assert!(installed.status.is_success(), "{}", installed.text);
    let file = |key: &'static str| {
        let request = app
            .client
            .post(app.url("/api/v1/tickets"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"template": "itil_incident", "fields": {"title": key, "description": "retention"}}));
        app.send(request)
    };
    let first = file("k-old").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    app.clock.set(t0 + TimeDelta::hours(23));
    let second = file("k-new").await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);

    // At 24 h: k-old is exactly at the cut-off, still replayed.
    app.clock.set(t0 + TimeDelta::hours(24));
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let again = file("k-old").await;
    assert_eq!(
        again.header("idempotent-replayed"),
        Some("true"),
        "{}",
        again.text
    );
    assert_eq!(again.json()["id"], first.json()["id"]);

    // Past it: purged; the key files anew. k-new still replays.
    app.clock
        .set(t0 + TimeDelta::hours(24) + TimeDelta::seconds(1));
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let fresh = file("k-old").await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.text);
    assert_eq!(fresh.header("idempotent-replayed"), None);
    assert_ne!(fresh.json()["id"], first.json()["id"]);
    let replay = file("k-new").await;
    assert_eq!(replay.json()["id"], second.json()["id"]);
}

/// The purge works in batches: with a batch of 2, five due events take three transactions
/// and all go; the one at the cut-off stays.
#[actix_web::test]
async fn the_purge_deletes_in_batches_up_to_the_cut_off() {
    let app = app().await;
    let tenant = app.tenant("batches").await;
    let t0 = app.clock_now();
    for i in 0..6 {
        app.clock.set(t0 + TimeDelta::minutes(i));
        new_user(&app, &tenant.admin_token, &format!("u{i}")).await;
    }
    let before_count = kept(&app, &tenant.admin_token).await.1.len();
    assert_eq!(before_count, 6);
    let deleted = stageflow::service::retention::purge_in_batches(
        &app.state.db,
        stageflow::service::retention::Kept::Events,
        t0 + TimeDelta::minutes(5),
        2,
    )
    .unwrap();
    let (_, events): (Vec<String>, Vec<String>) = kept(&app, &tenant.admin_token).await;
    assert_eq!(events, ["u5"], "deleted {deleted}");
    assert!(deleted >= 5, "{deleted}");
}
