//! SLA (#16 points 1–2): business calendars with Japanese holidays, policies per template and
//! condition, clocks replayed from the history over nights, weekends and holidays, pauses, the
//! first response, a policy change replayed, the `?sla=` filter, and at-risk and breach
//! events announced exactly once — also by two nodes at the same moment. Time moves by the
//! test clock; nothing sleeps.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, spawn_app_with};

fn label(ja: &str, en: &str) -> Value {
    json!({"ja": ja, "en": en})
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// A desk whose states run, pause and stop the clock.
pub(crate) fn sla_desk() -> Value {
    let agent = json!({"roles": ["agent"]});
    let t = |key: &str, from: &str, to: &str| json!({"key": key, "label": label(key, key), "from": [from], "to": to, "allowed": agent});
    json!({
        "name": label("SLA窓口", "SLA desk"), "key_prefix": "SLA",
        "fields": [
            {"key": "title", "type": "text", "label": label("件名", "Title"), "required": true},
            {"key": "priority", "type": "select", "master": "priority", "label": label("優先度", "Priority")},
            {"key": "note", "type": "text", "internal": true, "label": label("社内メモ", "Internal note")},
            {"key": "category", "type": "text", "label": label("分類", "Category")}
        ],
        "stages": [
            {"key": "open", "label": label("対応", "Open"), "states": [
                {"key": "new", "label": label("新規", "New"), "initial": true, "sla": "running"},
                {"key": "working", "label": label("対応中", "Working"), "sla": "running"},
                {"key": "waiting", "label": label("回答待ち", "Waiting"), "sla": "paused"}]},
            {"key": "done", "label": label("完了", "Done"), "states": [
                {"key": "resolved", "label": label("解決", "Resolved"), "sla": "stopped"},
                {"key": "closed", "label": label("クローズ", "Closed"), "terminal": true, "sla": "stopped"}]}
        ],
        "transitions": [
            t("start", "new", "working"), t("hold", "working", "waiting"),
            t("resume", "waiting", "working"), t("resolve", "working", "resolved"),
            t("reopen", "resolved", "working"), t("close", "resolved", "closed")
        ]
    })
}

pub(crate) struct Desk {
    pub tenant: Tenant,
    pub pm: String,
    pub agent: String,
    pub requester: String,
}

/// The job loop stays out of the way (the test runs the passes), and tokens outlive the
/// weeks the clock moves.
pub(crate) async fn app() -> TestApp {
    spawn_app_with(|c| {
        c.jobs.tick = std::time::Duration::from_secs(3_600);
        c.access_token_ttl = std::time::Duration::from_secs(90 * 86_400);
    })
    .await
}

pub(crate) async fn desk(app: &TestApp, slug: &str) -> Desk {
    let tenant = app.tenant(slug).await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let agent = app.user_token(&tenant, "agent", &["agent"]).await;
    let requester = app.user_token(&tenant, "yamada", &["requester"]).await;
    app.create(
        "/api/v1/masters",
        &pm,
        json!({"key": "priority", "name": label("優先度", "Priority"),
            "items": [{"code": "p1", "label": label("緊急", "P1")}, {"code": "p2", "label": label("通常", "P2")}]}),
    )
    .await;
    app.create(
        "/api/v1/templates",
        &pm,
        json!({"key": "sla_desk", "definition": sla_desk()}),
    )
    .await;
    let published = app
        .post_json(
            "/api/v1/templates/sla_desk/versions/1/publish",
            Some(&pm),
            &json!({}),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);
    Desk {
        tenant,
        pm,
        agent,
        requester,
    }
}

pub(crate) async fn file(app: &TestApp, token: &str, priority: &str) -> String {
    let ticket = app
        .create(
            "/api/v1/tickets",
            token,
            json!({"template": "sla_desk", "fields": {"title": "メールが届かない", "priority": priority}}),
        )
        .await;
    ticket["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn fire(app: &TestApp, token: &str, ticket: &str, transition: &str) {
    let reply = app
        .post_json(
            &format!("/api/v1/tickets/{ticket}/transitions"),
            Some(token),
            &json!({"transition": transition}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{transition}: {}", reply.text);
}

/// The ticket's clocks by target, as staff read them.
async fn clocks(app: &TestApp, token: &str, ticket: &str) -> (Value, Value) {
    let body = app
        .get(&format!("/api/v1/tickets/{ticket}"), Some(token))
        .await
        .json();
    let sla = body["sla"].as_array().unwrap_or_else(|| panic!("{body}"));
    let of = |target: &str| {
        sla.iter()
            .find(|c| c["target"] == target)
            .cloned()
            .unwrap_or(Value::Null)
    };
    (of("first_response"), of("resolution"))
}

pub(crate) async fn run_jobs(app: &TestApp) {
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
}

/// `(type, target, ticket id)` of the tenant's SLA events, in feed order.
async fn sla_events(app: &TestApp, token: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for kind in ["ticket.sla_at_risk", "ticket.sla_breached"] {
        let page = app
            .get(
                &format!("/api/v1/events?type={kind}&limit=500"),
                Some(token),
            )
            .await
            .json();
        for e in page["items"].as_array().unwrap() {
            out.push((
                e["type"].as_str().unwrap().to_owned(),
                e["data"]["sla"]["target"].as_str().unwrap().to_owned(),
                e["data"]["ticket"]["id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// Runs the jobs until the breached tickets are `expected`: a replay that lost a race with
/// another replay of the same template is retried after the runner's back-off (seconds), so
/// the clock moves a little between passes (at most 5).
async fn replayed(app: &TestApp, token: &str, expected: &[String]) {
    let mut seen = Vec::new();
    for _ in 0..5 {
        run_jobs(app).await;
        seen = listed(app, token, "sla=breached").await;
        if seen == expected {
            return;
        }
        app.clock.advance(TimeDelta::minutes(2));
    }
    panic!("breached after the replays: {seen:?}, expected {expected:?}");
}

async fn listed(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let page = app
        .get(&format!("/api/v1/tickets?{query}"), Some(token))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn calendars_are_checked_listed_changed_and_kept_while_in_use() {
    let app = app().await;
    let d = desk(&app, "cal").await;
    let bad = app
        .post_json(
            "/api/v1/calendars",
            Some(&d.pm),
            &json!({"name": "x", "time_zone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(
        bad.assert_problem(422, "/problems/validation")["errors"][0]["field"],
        "time_zone"
    );
    let overlap = app
        .post_json(
            "/api/v1/calendars",
            Some(&d.pm),
            &json!({"name": "x", "working_hours": {"mon": [
                {"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "18:00"}]}}),
        )
        .await;
    let body = overlap.assert_problem(422, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "working_hours/mon/1");
    assert_eq!(body["errors"][0]["code"], "overlap");
    let malformed = app
        .post_json(
            "/api/v1/calendars",
            Some(&d.pm),
            &json!({"name": "x", "working_hours": {"mon": [{"start": "9時", "end": "18:00"}]}}),
        )
        .await;
    assert!(malformed.status.is_client_error(), "{}", malformed.text);
    // Agents read calendars but do not write them.
    let refused = app
        .post_json("/api/v1/calendars", Some(&d.agent), &json!({"name": "x"}))
        .await;
    refused.assert_problem(403, "/problems/forbidden");

    let calendar = app
        .create(
            "/api/v1/calendars",
            &d.pm,
            json!({"name": "東京本社", "closures": [{"from": "12-29", "to": "01-03", "name": "年末年始"}]}),
        )
        .await;
    let id = calendar["id"].as_str().unwrap();
    assert_eq!(calendar["time_zone"], "Asia/Tokyo");
    assert_eq!(calendar["japanese_holidays"], true);
    assert_eq!(
        calendar["working_hours"]["mon"],
        json!([{"start": "09:00", "end": "18:00"}])
    );
    assert_eq!(calendar["working_hours"]["sat"], json!([]));
    let duplicate = app
        .post_json(
            "/api/v1/calendars",
            Some(&d.pm),
            &json!({"name": "東京本社"}),
        )
        .await;
    duplicate.assert_problem(409, "/problems/duplicate");
    let page = app.get("/api/v1/calendars", Some(&d.agent)).await.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    let path = format!("/api/v1/calendars/{id}");
    let stale = app
        .send(
            app.client
                .patch(app.url(&path))
                .bearer_auth(&d.pm)
                .header("If-Match", "\"7\"")
                .json(&json!({"japanese_holidays": false})),
        )
        .await;
    stale.assert_problem(412, "/problems/precondition-failed");
    let changed = app
        .patch_json(
            &path,
            Some(&d.pm),
            &json!({"exceptions": [{"date": "2026-12-28", "hours": [], "name": "仕事納め"}]}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.json()["version"], 2);
    assert_eq!(changed.header("etag"), Some("\"2\""));

    app.create(
        "/api/v1/sla-policies",
        &d.pm,
        json!({"template": "sla_desk", "name": "標準", "calendar_id": id, "resolution_minutes": 480}),
    )
    .await;
    app.delete(&path, Some(&d.pm))
        .await
        .assert_problem(409, "/problems/calendar-in-use");

    // The audit log names calendars and policies.
    assert_eq!(
        app.audit_entries(&d.tenant.admin_token, "calendar.created")
            .await
            .len(),
        1
    );
    assert_eq!(
        app.audit_entries(&d.tenant.admin_token, "sla_policy.created")
            .await
            .len(),
        1
    );
    let holidays = app
        .get("/api/v1/japanese-holidays?year=2026", Some(&d.agent))
        .await
        .json();
    let may6 = holidays["holidays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["date"] == "2026-05-06")
        .cloned()
        .unwrap();
    assert!(may6["name"].as_str().unwrap().contains("振替休日"));
    app.get("/api/v1/japanese-holidays?year=1800", Some(&d.agent))
        .await
        .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn policies_check_their_template_field_calendar_and_targets() {
    let app = app().await;
    let d = desk(&app, "pol").await;
    let post = |body: Value| {
        let (app, pm) = (&app, d.pm.clone());
        async move {
            app.post_json("/api/v1/sla-policies", Some(&pm), &body)
                .await
        }
    };
    let none = post(json!({"template": "sla_desk", "name": "x"})).await;
    assert_eq!(
        none.assert_problem(422, "/problems/validation")["errors"][0]["field"],
        "resolution_minutes"
    );
    let field = post(
        json!({"template": "sla_desk", "name": "x", "resolution_minutes": 60,
        "condition": {"field": "urgency", "in": ["p1"]}}),
    )
    .await;
    assert_eq!(
        field.assert_problem(422, "/problems/validation")["errors"][0]["field"],
        "condition/field"
    );
    let calendar = post(
        json!({"template": "sla_desk", "name": "x", "resolution_minutes": 60,
        "calendar_id": "019ac0d2-7100-7000-8000-0000000000c1"}),
    )
    .await;
    assert_eq!(
        calendar.assert_problem(422, "/problems/validation")["errors"][0]["field"],
        "calendar_id"
    );
    let range = post(json!({"template": "sla_desk", "name": "x", "resolution_minutes": 60, "at_risk_percent": 100})).await;
    range.assert_problem(422, "/problems/validation");
    post(json!({"template": "nope", "name": "x", "resolution_minutes": 60}))
        .await
        .assert_problem(404, "/problems/not-found");
    let policy = app
        .create(
            "/api/v1/sla-policies",
            &d.pm,
            json!({"template": "sla_desk", "name": "P1", "rank": 10,
                "condition": {"field": "priority", "in": ["p1"]}, "first_response_minutes": 30,
                "resolution_minutes": 240}),
        )
        .await;
    assert_eq!(policy["at_risk_percent"], 80);
    assert_eq!(policy["calendar_id"], Value::Null);
    assert_eq!(policy["enabled"], true);
    let path = format!("/api/v1/sla-policies/{}", policy["id"].as_str().unwrap());
    let cleared = app
        .patch_json(&path, Some(&d.pm), &json!({"first_response_minutes": null}))
        .await
        .json();
    assert_eq!(cleared["first_response_minutes"], Value::Null);
    assert_eq!(cleared["version"], 2);
    let listed = app
        .get("/api/v1/sla-policies?template=sla_desk", Some(&d.agent))
        .await
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.delete(&path, Some(&d.pm)).await.status,
        StatusCode::NO_CONTENT
    );
    app.get(&path, Some(&d.pm))
        .await
        .assert_problem(404, "/problems/not-found");
}

#[actix_web::test]
async fn clocks_count_business_time_over_nights_weekends_and_golden_week() {
    let app = app().await;
    let d = desk(&app, "gw").await;
    let calendar = app
        .create("/api/v1/calendars", &d.pm, json!({"name": "東京"}))
        .await;
    app.create(
        "/api/v1/sla-policies",
        &d.pm,
        json!({"template": "sla_desk", "name": "標準", "calendar_id": calendar["id"],
            "first_response_minutes": 60, "resolution_minutes": 240, "at_risk_percent": 75}),
    )
    .await;
    // Friday 1 May 2026, 16:00 JST.
    app.clock.set(at("2026-05-01T07:00:00Z"));
    let ticket = file(&app, &d.requester, "p2").await;
    let (first, resolution) = clocks(&app, &d.agent, &ticket).await;
    assert_eq!(first["status"], "running");
    assert_eq!(first["due_at"], "2026-05-01T08:00:00Z");
    // Two hours on Friday; Saturday to Wednesday 6 May (Golden Week and the substitute
    // holiday) are off; the last two hours end Thursday 7 May 11:00 JST.
    assert_eq!(resolution["due_at"], "2026-05-07T02:00:00Z");
    assert_eq!(resolution["at_risk_at"], "2026-05-07T01:00:00Z");
    assert_eq!(resolution["target_seconds"], 14_400);
    assert_eq!(resolution["elapsed_seconds"], 0);

    // Friday 18:30 JST: the first response is overdue; the evening does not count.
    app.clock.set(at("2026-05-01T09:30:00Z"));
    let (first, resolution) = clocks(&app, &d.agent, &ticket).await;
    assert_eq!(first["breached"], true);
    assert_eq!(first["elapsed_seconds"], 7_200);
    assert_eq!(first["remaining_seconds"], -3_600);
    assert_eq!(resolution["elapsed_seconds"], 7_200);
    assert_eq!(resolution["breached"], false);
    run_jobs(&app).await;
    let events = sla_events(&app, &d.tenant.admin_token).await;
    assert_eq!(
        events,
        [
            (
                "ticket.sla_at_risk".into(),
                "first_response".into(),
                ticket.clone()
            ),
            (
                "ticket.sla_breached".into(),
                "first_response".into(),
                ticket.clone()
            ),
        ]
    );
    assert_eq!(
        listed(&app, &d.agent, "sla=breached").await,
        std::slice::from_ref(&ticket)
    );
    assert!(listed(&app, &d.agent, "sla=at_risk").await.is_empty());

    // The substitute holiday, Wednesday 6 May at noon: nothing more has counted.
    app.clock.set(at("2026-05-06T03:00:00Z"));
    let (_, resolution) = clocks(&app, &d.agent, &ticket).await;
    assert_eq!(resolution["elapsed_seconds"], 7_200);
    run_jobs(&app).await;
    assert_eq!(sla_events(&app, &d.tenant.admin_token).await.len(), 2);

    // Thursday 10:30 JST: three and a half hours, at risk.
    app.clock.set(at("2026-05-07T01:30:00Z"));
    let (_, resolution) = clocks(&app, &d.agent, &ticket).await;
    assert_eq!(resolution["elapsed_seconds"], 12_600);
    assert_eq!(resolution["at_risk"], true);
    assert_eq!(
        listed(&app, &d.agent, "sla=at_risk").await,
        std::slice::from_ref(&ticket)
    );
    run_jobs(&app).await;
    run_jobs(&app).await;
    let events = sla_events(&app, &d.tenant.admin_token).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.contains(&(
        "ticket.sla_at_risk".into(),
        "resolution".into(),
        ticket.clone()
    )));

    // Requesters see no clocks and may not filter by them.
    let own = app
        .get(&format!("/api/v1/tickets/{ticket}"), Some(&d.requester))
        .await
        .json();
    assert!(own.get("sla").is_none(), "{own}");
    app.get("/api/v1/tickets?sla=breached", Some(&d.requester))
        .await
        .assert_problem(403, "/problems/forbidden");
    let requester_events = app
        .get("/api/v1/events?limit=500", Some(&d.requester))
        .await
        .text;
    assert!(!requester_events.contains("ticket.sla_"));
}

#[actix_web::test]
async fn a_pause_holds_the_clock_and_a_public_reply_is_the_first_response() {
    let app = app().await;
    let d = desk(&app, "pause").await;
    app.create(
        "/api/v1/sla-policies",
        &d.pm,
        json!({"template": "sla_desk", "name": "24時間", "first_response_minutes": 60,
            "resolution_minutes": 480}),
    )
    .await;
    let t0 = app.clock_now();
    let ticket = file(&app, &d.requester, "p2").await;
    // The requester's own comment is not a response; an internal note is not either.
    app.clock.advance(TimeDelta::minutes(10));
    let own = app
        .post_json(
            &format!("/api/v1/tickets/{ticket}/comments"),
            Some(&d.requester),
            &json!({"body": "追記です"}),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
    let note = app
        .post_json(
            &format!("/api/v1/tickets/{ticket}/comments"),
            Some(&d.agent),
            &json!({"body": "調査中", "internal": true}),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
    let (first, _) = clocks(&app, &d.agent, &ticket).await;
    assert_eq!(first["status"], "running");
    app.clock.advance(TimeDelta::minutes(20));
    let reply = app
        .post_json(
            &format!("/api/v1/tickets/{ticket}/comments"),
            Some(&d.agent),
            &json!({"body": "確認しています"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let (first, _) = clocks(&app, &d.agent, &ticket).await;
    assert_eq!(first["status"], "met");
    assert_eq!(first["elapsed_seconds"], 1_800);
    assert_eq!(first["due_at"], Value::Null);

    app.clock.set(t0 + TimeDelta::hours(1));
    fire(&app, &d.agent, &ticket, "start").await;
    app.clock.set(t0 + TimeDelta::hours(2));
    fire(&app, &d.agent, &ticket, "hold").await;
    // A day on hold counts nothing.
    app.clock.set(t0 + TimeDelta::hours(26));
    let (_, resolution) = clocks(&app, &d.agent, &ticket).await;
    assert_eq!(resolution["status"], "paused");
    assert_eq!(resolution["paused"], true);
    assert_eq!(resolution["elapsed_seconds"], 7_200);
    assert_eq!(resolution["due_at"], Value::Null);
    fire(&app, &d.agent, &ticket, "resume").await;
    let (_, resolution) = clocks(&app, &d.agent, &ticket).await;
    let due = (t0 + TimeDelta::hours(32)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(resolution["due_at"], due.as_str());
    app.clock.set(t0 + TimeDelta::hours(30));
    fire(&app, &d.agent, &ticket, "resolve").await;
    app.clock.set(t0 + TimeDelta::hours(40));
    let (_, resolution) = clocks(&app, &d.agent, &ticket).await;
    assert_eq!(resolution["status"], "met");
    assert_eq!(resolution["elapsed_seconds"], 21_600);
    run_jobs(&app).await;
    assert!(sla_events(&app, &d.tenant.admin_token).await.is_empty());
}

#[actix_web::test]
async fn a_policy_change_is_replayed_and_a_condition_picks_the_policy() {
    let app = app().await;
    let d = desk(&app, "replay").await;
    let standard = app
        .create(
            "/api/v1/sla-policies",
            &d.pm,
            json!({"template": "sla_desk", "name": "標準", "resolution_minutes": 120}),
        )
        .await;
    let urgent = app
        .create(
            "/api/v1/sla-policies",
            &d.pm,
            json!({"template": "sla_desk", "name": "緊急", "rank": 10, "resolution_minutes": 30,
                "condition": {"field": "priority", "in": ["p1"]}}),
        )
        .await;
    let t0 = app.clock_now();
    let normal = file(&app, &d.requester, "p2").await;
    let critical = file(&app, &d.requester, "p1").await;
    let (_, clock) = clocks(&app, &d.agent, &critical).await;
    assert_eq!(clock["policy_id"], urgent["id"]);
    let (_, clock) = clocks(&app, &d.agent, &normal).await;
    assert_eq!(clock["policy_id"], standard["id"]);

    app.clock.set(t0 + TimeDelta::hours(3));
    let mut breached = listed(&app, &d.agent, "sla=breached").await;
    breached.sort();
    let mut both = vec![normal.clone(), critical.clone()];
    both.sort();
    assert_eq!(breached, both);

    // Ten hours for the standard policy, replayed by the job: no longer breached.
    let path = format!("/api/v1/sla-policies/{}", standard["id"].as_str().unwrap());
    let changed = app
        .patch_json(&path, Some(&d.pm), &json!({"resolution_minutes": 600}))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    replayed(&app, &d.agent, std::slice::from_ref(&critical)).await;
    let (_, clock) = clocks(&app, &d.agent, &normal).await;
    let due = (t0 + TimeDelta::hours(10)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(clock["due_at"], due.as_str());
    assert_eq!(clock["breached"], false);

    // A changed priority picks the other policy at once.
    let patched = app
        .patch_json(
            &format!("/api/v1/tickets/{normal}"),
            Some(&d.agent),
            &json!({"fields": {"priority": "p1"}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let (_, clock) = clocks(&app, &d.agent, &normal).await;
    assert_eq!(clock["policy_id"], urgent["id"]);
    assert_eq!(clock["breached"], true);

    // Without any policy, no clocks (the deleted ones go in the replay).
    for p in [&standard, &urgent] {
        let path = format!("/api/v1/sla-policies/{}", p["id"].as_str().unwrap());
        assert_eq!(
            app.delete(&path, Some(&d.pm)).await.status,
            StatusCode::NO_CONTENT
        );
    }
    replayed(&app, &d.agent, &[]).await;
    let body = app
        .get(&format!("/api/v1/tickets/{normal}"), Some(&d.agent))
        .await
        .json();
    assert!(body.get("sla").is_none(), "{body}");
}

/// Found by the two-process harness (tests/multinode): a replay job's `now` is when it
/// started, so a ticket filed after that but before the job reached it must keep its clock
/// counting from its filing, not get one stopped short of it (which never breaches).
#[actix_web::test]
async fn a_replay_that_started_before_a_ticket_was_filed_keeps_its_clock_running() {
    let app = app().await;
    let d = desk(&app, "late-replay").await;
    let t0 = app.clock_now();
    app.create(
        "/api/v1/sla-policies",
        &d.pm,
        json!({"template": "sla_desk", "name": "1h", "resolution_minutes": 60}),
    )
    .await;
    app.clock.set(t0 + TimeDelta::minutes(10));
    let ticket = file(&app, &d.requester, "p2").await;
    // The replay runs as if it had started a minute after the policy was made.
    app.clock.set(t0 + TimeDelta::minutes(1));
    run_jobs(&app).await;
    app.clock.set(t0 + TimeDelta::minutes(20));
    let (_, clock) = clocks(&app, &d.agent, &ticket).await;
    let due = (t0 + TimeDelta::minutes(70)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(clock["due_at"], due.as_str(), "{clock}");
    assert_eq!(clock["paused"], false, "{clock}");
    app.clock.set(t0 + TimeDelta::minutes(71));
    run_jobs(&app).await;
    assert_eq!(
        sla_events(&app, &d.agent)
            .await
            .iter()
            .filter(|(kind, ..)| kind == "ticket.sla_breached")
            .count(),
        1
    );
}

#[actix_web::test]
async fn a_breach_is_announced_once_when_two_nodes_look_at_the_same_moment() {
    let app = app().await;
    let d = desk(&app, "nodes").await;
    app.create(
        "/api/v1/sla-policies",
        &d.pm,
        json!({"template": "sla_desk", "name": "標準", "resolution_minutes": 60}),
    )
    .await;
    let first = file(&app, &d.requester, "p2").await;
    app.clock.advance(TimeDelta::hours(2));
    // Two nodes with the SLA jobs pass at the same instant.
    let mut settings = app.state.config.jobs.clone();
    settings.node_id = "node-b".to_owned();
    settings.shutdown_grace = std::time::Duration::ZERO;
    let other = stageflow::jobs::Runner::new(app.state.db.clone(), app.clock.clone(), &settings);
    stageflow::jobs::register_sla(&other, std::time::Duration::from_secs(30));
    let now = app.clock_now();
    futures_util::future::join(
        stageflow::jobs::run_due(&app.state.jobs, now),
        stageflow::jobs::run_due(&other, now),
    )
    .await;
    let breaches = |events: Vec<(String, String, String)>| {
        events
            .into_iter()
            .filter(|(kind, ..)| kind == "ticket.sla_breached")
            .map(|(.., ticket)| ticket)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        breaches(sla_events(&app, &d.tenant.admin_token).await),
        std::slice::from_ref(&first)
    );

    // A node that lost its lease still running the pass while another runs it too: the
    // claim is a conditional update, so one of them announces.
    let second = file(&app, &d.requester, "p2").await;
    app.clock.advance(TimeDelta::hours(2));
    let now = app.clock_now();
    let pass = |db: stageflow::db::Database| {
        actix_web::rt::task::spawn_blocking(move || {
            db.write_blocking(|conn| {
                stageflow::service::sla::announce_due(
                    conn,
                    stageflow::db::sla::Announcement::Breach,
                    now,
                )
            })
            .unwrap()
        })
    };
    let (a, b) =
        futures_util::future::join(pass(app.state.db.clone()), pass(app.state.db.clone())).await;
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(
        breaches(sla_events(&app, &d.tenant.admin_token).await),
        [first, second]
    );
}
