//! Maintenance announcements (issue #17 point 5): the operator publishes notices with a
//! window, to every tenant or some, warned when the notice is shorter than the period;
//! tenants read theirs (others' are 404), get an event and optionally a mail to their admins;
//! during the window the API says so in `Stageflow-Maintenance`; a withdrawal ends it.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stageflow::mailer::SmtpSecurity;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::mailer::{Sink, parse};

const HEADER: &str = "stageflow-maintenance";

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn publish(app: &TestApp, operator: &str, body: Value) -> (StatusCode, Value) {
    let reply = app
        .post_json("/api/v1/announcements", Some(operator), &body)
        .await;
    (reply.status, reply.json())
}

fn window(app: &TestApp, from_now: TimeDelta, hours: i64) -> (String, String) {
    let start = app.clock_now() + from_now;
    (at(start), at(start + TimeDelta::hours(hours)))
}

async fn events_of(app: &TestApp, token: &str, kind: &str) -> Vec<Value> {
    let reply = app
        .get(
            &format!("/api/v1/events?limit=500&type={kind}"),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["items"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn a_notice_to_every_tenant_is_read_by_each_and_announced_as_an_event() {
    let app = spawn_app().await;
    let operator = app.operator_token().await;
    let (a, b) = (app.tenant("kaisha-a").await, app.tenant("kaisha-b").await);
    let (start, end) = window(&app, TimeDelta::days(40), 2);
    let (status, created) = publish(
        &app,
        &operator,
        json!({"title": "データベースの更新", "body": "2時間ほど読み取り専用になります。",
               "starts_at": start, "ends_at": end}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        created.get("warnings").is_none(),
        "40 days is notice enough"
    );
    assert_eq!(created["tenants"], Value::Null);
    assert_eq!(created["in_progress"], false);
    let id = created["id"].as_str().unwrap();

    for tenant in [&a, &b] {
        let list = app
            .get("/api/v1/announcements", Some(&tenant.admin_token))
            .await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        let items = list.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["title"], "データベースの更新");
        let one = app
            .get(
                &format!("/api/v1/announcements/{id}"),
                Some(&tenant.admin_token),
            )
            .await;
        assert_eq!(one.status, StatusCode::OK);
        assert_eq!(one.header("etag"), Some("\"1\""));
        let events = events_of(&app, &tenant.admin_token, "announcement.published").await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["subject"]["kind"], "announcement");
        assert_eq!(events[0]["data"]["announcement"]["id"], id);
    }
    // An agent reads it too (anyone signed in to the tenant).
    let agent = app.user_token(&a, "sato", &["agent"]).await;
    let list = app.get("/api/v1/announcements", Some(&agent)).await;
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 1);
    // The platform log records the publication.
    let audit = app.audit_entries(&operator, "announcement.published").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["target_id"], id);
}

#[actix_web::test]
async fn a_short_notice_is_warned_and_a_targeted_notice_stays_with_its_tenants() {
    let app = spawn_app().await;
    let operator = app.operator_token().await;
    let (a, b) = (
        app.tenant("mokuteki-a").await,
        app.tenant("mokuteki-b").await,
    );
    let (start, end) = window(&app, TimeDelta::days(3), 1);
    let (status, created) = publish(
        &app,
        &operator,
        json!({"title": "Urgent patch", "body": "Restart of the API nodes.",
               "starts_at": start, "ends_at": end, "tenants": [a.id, a.id]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let warnings = created["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0]["code"], "short_notice");
    assert_eq!(warnings[0]["field"], "starts_at");
    assert!(warnings[0]["message"].as_str().unwrap().contains("30 days"));
    assert_eq!(created["tenants"], json!([a.id]), "listed once");
    let id = created["id"].as_str().unwrap();

    let seen = app.get("/api/v1/announcements", Some(&a.admin_token)).await;
    let item = &seen.json()["items"][0];
    assert_eq!(item["id"], id);
    assert_eq!(
        item["tenants"],
        Value::Null,
        "a tenant does not see the target list"
    );
    let other = app.get("/api/v1/announcements", Some(&b.admin_token)).await;
    assert_eq!(other.json()["items"], json!([]));
    app.get(&format!("/api/v1/announcements/{id}"), Some(&b.admin_token))
        .await
        .assert_problem(404, "/problems/not-found");
    assert!(
        events_of(&app, &b.admin_token, "announcement.published")
            .await
            .is_empty()
    );
    let all = app.get("/api/v1/announcements", Some(&operator)).await;
    assert_eq!(all.json()["items"][0]["tenants"], json!([a.id]));
}

#[actix_web::test]
async fn bad_announcements_are_refused_with_each_reason() {
    let app = spawn_app().await;
    let operator = app.operator_token().await;
    let a = app.tenant("kyohi").await;
    let (start, end) = window(&app, TimeDelta::days(40), 2);
    let backwards = publish(
        &app,
        &operator,
        json!({"title": "x", "body": "y", "starts_at": end, "ends_at": start}),
    )
    .await;
    assert_eq!(backwards.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(backwards.1["errors"][0]["code"], "before_start");
    let (past_start, past_end) = window(&app, TimeDelta::days(-2), 1);
    let over = publish(
        &app,
        &operator,
        json!({"title": "x", "body": "y", "starts_at": past_start, "ends_at": past_end}),
    )
    .await;
    assert_eq!(over.1["errors"][0]["code"], "in_the_past", "{}", over.1);
    let unknown = publish(
        &app,
        &operator,
        json!({"title": "x", "body": "y", "starts_at": start, "ends_at": end,
               "tenants": [a.id, "019ad5e2-1c00-7000-8000-00000000dead"]}),
    )
    .await;
    assert_eq!(unknown.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.1["errors"][0]["field"], "tenants[1]");
    assert_eq!(unknown.1["errors"][0]["code"], "unknown");
    let empty = publish(
        &app,
        &operator,
        json!({"title": "x", "body": "y", "starts_at": start, "ends_at": end, "tenants": []}),
    )
    .await;
    assert_eq!(empty.1["errors"][0]["code"], "empty");
    let untitled = publish(
        &app,
        &operator,
        json!({"title": "", "body": "y", "starts_at": start, "ends_at": end}),
    )
    .await;
    assert_eq!(untitled.0, StatusCode::UNPROCESSABLE_ENTITY);
    // Only the operator publishes.
    let by_tenant = app
        .post_json(
            "/api/v1/announcements",
            Some(&a.admin_token),
            &json!({"title": "x", "body": "y", "starts_at": start, "ends_at": end}),
        )
        .await;
    by_tenant.assert_problem(403, "/problems/forbidden");
    app.delete(
        "/api/v1/announcements/019ad5e2-1c00-7000-8000-00000000dead",
        Some(&operator),
    )
    .await
    .assert_problem(404, "/problems/not-found");
    assert_eq!(
        app.get("/api/v1/announcements", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn the_window_shows_in_a_header_for_its_tenants_until_it_ends_or_is_withdrawn() {
    let app = spawn_app().await;
    let operator = app.operator_token().await;
    let (a, b) = (app.tenant("madoa").await, app.tenant("madob").await);
    let (all_start, all_end) = window(&app, TimeDelta::hours(1), 2);
    let (_, everyone) = publish(
        &app,
        &operator,
        json!({"title": "All", "body": "b", "starts_at": all_start, "ends_at": all_end}),
    )
    .await;
    let (own_start, own_end) = window(&app, TimeDelta::hours(1), 1);
    let (_, own) = publish(
        &app,
        &operator,
        json!({"title": "A only", "body": "b", "starts_at": own_start, "ends_at": own_end,
               "tenants": [a.id]}),
    )
    .await;
    let header = |reply: &crate::helpers::Reply| reply.header(HEADER).map(str::to_owned);
    assert_eq!(header(&app.get("/healthz", None).await), None, "not yet");

    app.clock.advance(TimeDelta::hours(1));
    // Access tokens live minutes: sign in again on the moved clock.
    let a_token = app
        .login(Some(&a.slug), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let b_token = app
        .login(Some(&b.slug), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let operator = app.operator_token().await;
    // In start order, the earlier end first.
    let both = format!("{own_start}/{own_end}, {all_start}/{all_end}");
    let only_all = format!("{all_start}/{all_end}");
    assert_eq!(
        header(&app.get("/healthz", None).await),
        Some(only_all.clone())
    );
    let mine = app.get("/api/v1/me", Some(&a_token)).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(header(&mine), Some(both));
    let theirs = app.get("/api/v1/me", Some(&b_token)).await;
    assert_eq!(header(&theirs), Some(only_all.clone()));
    // Errors carry it as well.
    let missing = app
        .get(
            "/api/v1/tickets/019ad5e2-1c00-7000-8000-00000000dead",
            Some(&b_token),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(header(&missing), Some(only_all));
    let listed = app.get("/api/v1/announcements", Some(&a_token)).await;
    assert!(
        listed.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["in_progress"] == true)
    );

    // Withdrawn: the header stops at once, the tenant hears of it, a repeat is a conflict.
    let id = everyone["id"].as_str().unwrap();
    let path = format!("/api/v1/announcements/{id}");
    let stale = app
        .send(
            app.client
                .delete(app.url(&path))
                .bearer_auth(&operator)
                .header("if-match", "\"7\""),
        )
        .await;
    stale.assert_problem(412, "/problems/precondition-failed");
    assert_eq!(
        app.delete(&path, Some(&operator)).await.status,
        StatusCode::NO_CONTENT
    );
    app.delete(&path, Some(&operator))
        .await
        .assert_problem(409, "/problems/already-withdrawn");
    assert_eq!(header(&app.get("/healthz", None).await), None);
    assert_eq!(
        header(&app.get("/api/v1/me", Some(&a_token)).await),
        Some(format!("{own_start}/{own_end}"))
    );
    assert_eq!(
        events_of(&app, &b_token, "announcement.withdrawn")
            .await
            .len(),
        1
    );
    // Listed by default only while it stands; under include_past with its withdrawal.
    let current = app.get("/api/v1/announcements", Some(&b_token)).await;
    assert_eq!(current.json()["items"], json!([]));
    let past = app
        .get("/api/v1/announcements?include_past=true", Some(&b_token))
        .await;
    assert!(past.json()["items"][0]["withdrawn_at"].is_string());

    // The end of the window ends the header.
    app.clock.advance(TimeDelta::hours(1));
    let a_token = app
        .login(Some(&a.slug), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let after = app.get("/api/v1/me", Some(&a_token)).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(header(&after), None);
    assert_eq!(own["tenants"], json!([a.id]));
}

#[actix_web::test]
async fn tenant_admins_with_an_address_are_mailed_when_asked() {
    let sink = Sink::start(&[]);
    let settings = sink.settings(SmtpSecurity::None);
    let app = spawn_app_with(move |c| {
        c.smtp = Some(settings);
        c.jobs.tick = std::time::Duration::from_secs(3_600);
    })
    .await;
    let operator = app.operator_token().await;
    let a = app.tenant("meiru").await;
    for (name, roles, email) in [
        (
            "kanri",
            json!(["tenant_admin"]),
            json!("kanri@example.co.jp"),
        ),
        ("tanto", json!(["agent"]), json!("tanto@example.co.jp")),
        ("mumei", json!(["tenant_admin"]), Value::Null),
    ] {
        app.create(
            "/api/v1/users",
            &a.admin_token,
            json!({"username": name, "password": crate::helpers::USER_PASSWORD,
                   "display_name": name, "roles": roles, "email": email}),
        )
        .await;
    }
    let (start, end) = window(&app, TimeDelta::days(31), 2);
    let (status, created) = publish(
        &app,
        &operator,
        json!({"title": "年末メンテナンス", "body": "停止時間は2時間です。",
               "starts_at": start, "ends_at": end, "mail_admins": true, "tenants": [a.id]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let sent = sink.messages();
    assert_eq!(sent.len(), 1, "one mail to the tenant's admins");
    let mail = parse(&sent[0]);
    let to: Vec<&str> = mail["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[1].as_str().unwrap())
        .collect();
    assert_eq!(to, ["kanri@example.co.jp"], "admins with an address only");
    assert!(
        mail["Subject"]
            .as_str()
            .unwrap()
            .contains("年末メンテナンス")
    );
}
