//! Tickets: create, read, edit with ETags, transitions (list, explain, dry run, fire, race,
//! rollback), history, comments, watchers, links, visibility, list filters and search.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, spawn_app};

fn label(ja: &str, en: &str) -> Value {
    json!({"ja": ja, "en": en})
}

/// A child template whose `detail` field is required (the parent maps only the title, so a
/// child created by `escalate_broken` fails validation).
fn task() -> Value {
    json!({
        "name": label("作業", "Task"), "key_prefix": "TSK",
        "fields": [
            {"key": "title", "type": "text", "label": label("件名", "Title"), "required": true},
            {"key": "detail", "type": "text", "label": label("詳細", "Detail")}
        ],
        "stages": [{"key": "all", "label": label("全体", "All"), "states": [
            {"key": "open", "label": label("未着手", "Open"), "initial": true},
            {"key": "done", "label": label("完了", "Done"), "terminal": true}]}],
        "transitions": [
            {"key": "finish", "label": label("完了", "Finish"), "from": ["open"], "to": "done", "allowed": {"roles": ["agent"]}}
        ],
        "field_rules": {"done": {"detail": "required"}}
    })
}

/// The service desk process used by most tests.
pub fn desk() -> Value {
    json!({
        "name": label("サービスデスク", "Service desk"), "key_prefix": "SD",
        "fields": [
            {"key": "title", "type": "text", "label": label("件名", "Title"), "required": true, "max_length": 200},
            {"key": "description", "type": "long_text", "label": label("内容", "Description")},
            {"key": "impact", "type": "select", "master": "impact", "label": label("影響度", "Impact")},
            {"key": "note", "type": "text", "internal": true, "label": label("社内メモ", "Internal note")},
            {"key": "effort", "type": "integer", "min": 0, "label": label("工数", "Effort")},
            {"key": "resolution", "type": "long_text", "label": label("解決内容", "Resolution")}
        ],
        "stages": [
            {"key": "open", "label": label("受付", "Open"), "states": [
                {"key": "new", "label": label("新規", "New"), "initial": true},
                {"key": "in_progress", "label": label("対応中", "In progress")},
                {"key": "waiting", "label": label("子作業待ち", "Waiting")}]},
            {"key": "done", "label": label("完了", "Done"), "states": [
                {"key": "resolved", "label": label("解決済", "Resolved")},
                {"key": "closed", "label": label("クローズ", "Closed"), "terminal": true}]}
        ],
        "transitions": [
            {"key": "start", "label": label("対応開始", "Start"), "from": ["new"], "to": "in_progress",
             "allowed": {"roles": ["agent"]},
             "actions": [{"type": "set_field", "field": "effort", "value": 0}, {"type": "notify", "event": "started"}]},
            {"key": "resolve", "label": label("解決", "Resolve"), "from": ["in_progress"], "to": "resolved",
             "allowed": {"roles": ["agent"]}, "requires": ["resolution"], "sets": ["effort"],
             "guard": {"field": "impact", "op": "is_set"}},
            {"key": "delegate", "label": label("子作業を作成", "Delegate"), "from": ["in_progress"], "to": "waiting",
             "allowed": {"roles": ["agent"]},
             "actions": [{"type": "create_child_ticket", "template": "task", "mapping": {"title": "title", "detail": "=調査"}}]},
            {"key": "delegate_broken", "label": label("壊れた委任", "Broken delegate"), "from": ["in_progress"], "to": "waiting",
             "allowed": {"roles": ["agent"]},
             "actions": [{"type": "set_field", "field": "note", "value": "delegated"},
                         {"type": "create_child_ticket", "template": "task", "mapping": {"detail": "=no title"}}]},
            {"key": "children_done", "label": label("子作業完了", "Children done"), "from": ["waiting"], "to": "in_progress",
             "allowed": {"roles": ["agent"]}, "guard": {"fact": "all_children_closed"}},
            {"key": "close", "label": label("クローズ", "Close"), "from": ["resolved"], "to": "closed",
             "allowed": {"roles": ["agent"], "requester": true}}
        ],
        "field_rules": {"resolved": {"resolution": "read_only"}}
    })
}

/// A tenant with the impact master and the published `task` and `desk` templates; returns
/// the tenant and a process manager's token.
pub async fn desk_tenant(app: &TestApp, slug: &str) -> (Tenant, String) {
    let tenant = app.tenant(slug).await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    app.create(
        "/api/v1/masters",
        &pm,
        json!({"key": "impact", "name": label("影響度", "Impact"),
            "items": [{"code": "high", "label": label("高", "High")}, {"code": "low", "label": label("低", "Low")}]}),
    )
    .await;
    for (key, definition) in [("task", task()), ("desk", desk())] {
        app.create(
            "/api/v1/templates",
            &pm,
            json!({"key": key, "definition": definition}),
        )
        .await;
        let published = app
            .post_json(
                &format!("/api/v1/templates/{key}/versions/1/publish"),
                Some(&pm),
                &json!({}),
            )
            .await;
        assert_eq!(
            published.status,
            StatusCode::OK,
            "{key}: {}",
            published.text
        );
    }
    (tenant, pm)
}

async fn file(app: &TestApp, token: &str, fields: Value) -> Value {
    app.create(
        "/api/v1/tickets",
        token,
        json!({"template": "desk", "fields": fields}),
    )
    .await
}

async fn fire(
    app: &TestApp,
    token: &str,
    ticket: &Value,
    transition: &str,
    fields: Value,
) -> crate::helpers::Reply {
    app.post_json(
        &format!(
            "/api/v1/tickets/{}/transitions",
            ticket["id"].as_str().unwrap()
        ),
        Some(token),
        &json!({"transition": transition, "fields": fields}),
    )
    .await
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

async fn history(app: &TestApp, token: &str, ticket: &str) -> Vec<Value> {
    let reply = app
        .get(
            &format!("/api/v1/tickets/{ticket}/history?limit=500"),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["items"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn tickets_are_created_read_and_edited_with_etags() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;

    let reply = app
        .post_json(
            "/api/v1/tickets",
            Some(&agent),
            &json!({"template": "desk", "fields": {"title": "プリンタ故障", "impact": "high", "effort": 2}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.header("etag"), Some("\"1\""));
    let ticket = reply.json();
    assert_eq!(
        reply.header("location").unwrap(),
        format!("/api/v1/tickets/{}", id(&ticket))
    );
    assert_eq!(ticket["key"], "SD-1");
    assert_eq!(ticket["state"], "new");
    assert_eq!(ticket["stage"], "open");
    assert_eq!(ticket["title"], "プリンタ故障");
    assert_eq!(ticket["template_version"], 1);
    assert_eq!(ticket["fields"]["effort"], 2);
    assert!(ticket["requester"].is_string());

    // Field-level validation: one entry per offending field.
    let bad = app
        .post_json(
            "/api/v1/tickets",
            Some(&agent),
            &json!({"template": "desk", "fields": {"impact": "huge", "effort": -1, "colour": "red"}}),
        )
        .await;
    let problem = bad.assert_problem(422, "/problems/validation");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "fields.title",
            "fields.impact",
            "fields.effort",
            "fields.colour"
        ]
    );
    app.post_json(
        "/api/v1/tickets",
        Some(&agent),
        &json!({"template": "nope", "fields": {}}),
    )
    .await
    .assert_problem(422, "/problems/validation");

    let path = format!("/api/v1/tickets/{}", id(&ticket));
    let got = app.get(&path, Some(&agent)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("etag"), Some("\"1\""));
    assert_eq!(got.json(), ticket);

    // PATCH with a stale ETag is 412; with the current one it applies.
    let stale = app
        .send(
            app.client
                .patch(app.url(&path))
                .bearer_auth(&agent)
                .header("If-Match", "\"7\"")
                .json(&json!({"fields": {"impact": "low"}})),
        )
        .await;
    stale.assert_problem(412, "/problems/precondition-failed");
    let patched = app
        .send(
            app.client
                .patch(app.url(&path))
                .bearer_auth(&agent)
                .header("If-Match", "\"1\"")
                .json(&json!({"fields": {"impact": "low", "title": "プリンタ故障（2F）"}})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.header("etag"), Some("\"2\""));
    assert_eq!(patched.json()["title"], "プリンタ故障（2F）");
    // Agents assign; the change is recorded.
    let agent_id = app.get("/api/v1/me", Some(&agent)).await.json()["id"].clone();
    let assigned = app
        .patch_json(&path, Some(&agent), &json!({"assignee": agent_id}))
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    assert_eq!(assigned.json()["assignee"], agent_id);
    assert_eq!(assigned.json()["version"], 3);
    app.patch_json(
        &path,
        Some(&agent),
        &json!({"assignee": uuid::Uuid::now_v7()}),
    )
    .await
    .assert_problem(422, "/problems/validation");
    // Clearing a required field is refused.
    app.patch_json(&path, Some(&agent), &json!({"fields": {"title": null}}))
        .await
        .assert_problem(422, "/problems/validation");

    let entries = history(&app, &agent, id(&ticket)).await;
    let kinds: Vec<(&str, Option<&str>)> = entries
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["field"].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("created", None),
            ("field_changed", Some("title")),
            ("field_changed", Some("impact")),
            ("attribute_changed", Some("assignee")),
        ]
    );
    assert_eq!(
        entries[0]["new_value"],
        json!({"title": "プリンタ故障", "impact": "high", "effort": 2})
    );
    assert_eq!(entries[2]["old_value"], "high");
    assert_eq!(entries[2]["new_value"], "low");
    assert_eq!(entries[2]["ticket_version"], 2);
    assert_eq!(entries[2]["actor"]["name"], "agent1");
    assert_eq!(entries[3]["field"], "assignee");
    assert_eq!(entries[3]["new_value"], agent_id);

    // An auditor reads but does not file.
    let auditor = app.user_token(&tenant, "aud", &["auditor"]).await;
    assert_eq!(app.get(&path, Some(&auditor)).await.status, StatusCode::OK);
    app.post_json(
        "/api/v1/tickets",
        Some(&auditor),
        &json!({"template": "desk", "fields": {"title": "x"}}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");
}

#[actix_web::test]
async fn concurrent_creates_get_distinct_keys() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let bodies: Vec<Value> = (0..16)
        .map(|i| json!({"template": "desk", "fields": {"title": format!("t{i}")}}))
        .collect();
    let replies = join_all(
        bodies
            .iter()
            .map(|body| app.post_json("/api/v1/tickets", Some(&agent), body)),
    )
    .await;
    let mut keys: Vec<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.json()["key"].as_str().unwrap().to_owned()
        })
        .collect();
    keys.sort_by_key(|k| k[3..].parse::<u32>().unwrap());
    let expected: Vec<String> = (1..=16).map(|n| format!("SD-{n}")).collect();
    assert_eq!(keys, expected);
}

#[actix_web::test]
async fn an_idempotency_key_replays_the_first_response() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let send = |body: Value| {
        app.send(
            app.client
                .post(app.url("/api/v1/tickets"))
                .bearer_auth(&agent)
                .header("Idempotency-Key", "order-4711")
                .json(&body),
        )
    };
    let body = json!({"template": "desk", "fields": {"title": "一度だけ"}});
    let first = send(body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = send(body).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.json(), first.json());
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    send(json!({"template": "desk", "fields": {"title": "別の内容"}}))
        .await
        .assert_problem(422, "/problems/validation");
    let list = app.get("/api/v1/tickets", Some(&agent)).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // Concurrent repeats of a new key: one ticket, each answer the first's or a 409 to retry.
    let body = json!({"template": "desk", "fields": {"title": "同時"}});
    let replies = join_all((0..8).map(|_| {
        app.send(
            app.client
                .post(app.url("/api/v1/tickets"))
                .bearer_auth(&agent)
                .header("Idempotency-Key", "burst-1")
                .json(&body),
        )
    }))
    .await;
    let created: Vec<Value> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .map(|r| r.json()["id"].clone())
        .collect();
    assert!(!created.is_empty());
    assert!(created.iter().all(|id| *id == created[0]));
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        r.assert_problem(409, "/problems/idempotency-key-in-use");
    }
    let list = app.get("/api/v1/tickets", Some(&agent)).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn transitions_are_listed_explained_dry_run_and_fired() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    let ticket = file(&app, &requester, json!({"title": "VPNが繋がらない"})).await;
    let path = format!("/api/v1/tickets/{}", id(&ticket));

    let options = app.get(&format!("{path}/transitions"), Some(&agent)).await;
    assert_eq!(options.status, StatusCode::OK);
    let options = options.json();
    let keys: Vec<&str> = options["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["start"]);
    // The requester can do nothing now; explain says why.
    let mine = app
        .get(
            &format!("{path}/transitions?explain=true"),
            Some(&requester),
        )
        .await
        .json();
    let start = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "start")
        .unwrap()
        .clone();
    assert_eq!(start["available"], false);
    assert_eq!(start["reasons"][0]["code"], "not_permitted");
    fire(&app, &requester, &ticket, "start", json!({}))
        .await
        .assert_problem(403, "/problems/forbidden");

    // Wrong state: 409. Unknown transition: 422.
    fire(&app, &agent, &ticket, "close", json!({}))
        .await
        .assert_problem(409, "/problems/transition-unavailable");
    fire(&app, &agent, &ticket, "teleport", json!({}))
        .await
        .assert_problem(422, "/problems/validation");

    // A dry run reports the plan and writes nothing.
    let dry = app
        .post_json(
            &format!("{path}/transitions?dry_run=true"),
            Some(&agent),
            &json!({"transition": "start"}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    let dry = dry.json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["ticket"]["state"], "in_progress");
    assert_eq!(dry["plan"]["field_changes"][0]["field"], "effort");
    let after_dry = app.get(&path, Some(&agent)).await.json();
    assert_eq!(after_dry["state"], "new");
    assert_eq!(after_dry["version"], 1);
    assert_eq!(history(&app, &agent, id(&ticket)).await.len(), 1);

    let started = fire(&app, &agent, &ticket, "start", json!({})).await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    assert_eq!(started.header("etag"), Some("\"2\""));
    assert_eq!(started.json()["ticket"]["fields"]["effort"], 0);
    assert_eq!(started.json()["events"][0]["event"], "started");
    assert_eq!(started.json()["events"][0]["key"], "SD-1");
    assert_eq!(dry["events"][0]["event"], "started");

    // The guard needs impact; resolution is required by the transition.
    let unguarded = fire(
        &app,
        &agent,
        &ticket,
        "resolve",
        json!({"resolution": "再起動"}),
    )
    .await;
    let problem = unguarded.assert_problem(409, "/problems/transition-unavailable");
    assert!(problem["detail"].as_str().unwrap().contains("impact"));
    app.patch_json(&path, Some(&agent), &json!({"fields": {"impact": "high"}}))
        .await;
    let missing = fire(&app, &agent, &ticket, "resolve", json!({})).await;
    let problem = missing.assert_problem(422, "/problems/validation");
    assert_eq!(problem["errors"][0]["field"], "fields.resolution");
    let resolved = fire(
        &app,
        &agent,
        &ticket,
        "resolve",
        json!({"resolution": "再起動で復旧", "effort": 3}),
    )
    .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.text);
    // resolution is read-only once resolved.
    app.patch_json(&path, Some(&agent), &json!({"fields": {"resolution": "x"}}))
        .await
        .assert_problem(422, "/problems/validation");
    // The requester closes their own ticket, with a comment.
    let closed = app
        .post_json(
            &format!("{path}/transitions"),
            Some(&requester),
            &json!({"transition": "close", "comment": {"body": "ありがとうございました"}}),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
    assert_eq!(closed.json()["ticket"]["closed"], true);
    assert_eq!(closed.json()["comment"]["body"], "ありがとうございました");

    let entries = history(&app, &agent, id(&ticket)).await;
    let transitions: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "transition")
        .map(|e| e["transition"].as_str().unwrap())
        .collect();
    assert_eq!(transitions, ["start", "resolve", "close"]);
    let versions: Vec<i64> = entries
        .iter()
        .map(|e| e["ticket_version"].as_i64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] <= w[1]));
}

#[actix_web::test]
async fn racing_transitions_on_one_version_have_exactly_one_winner() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let ticket = file(&app, &agent, json!({"title": "競合"})).await;
    let path = format!("/api/v1/tickets/{}/transitions", id(&ticket));
    let replies = join_all((0..12).map(|_| {
        app.send(
            app.client
                .post(app.url(&path))
                .bearer_auth(&agent)
                .header("If-Match", "\"1\"")
                .json(&json!({"transition": "start"})),
        )
    }))
    .await;
    let won = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let lost = replies
        .iter()
        .filter(|r| r.status == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!(
        (won, lost),
        (1, 11),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let entries = history(&app, &agent, id(&ticket)).await;
    assert_eq!(
        entries.iter().filter(|e| e["kind"] == "transition").count(),
        1
    );
    assert_eq!(entries.iter().filter(|e| e["field"] == "effort").count(), 1);
    let now = app
        .get(&format!("/api/v1/tickets/{}", id(&ticket)), Some(&agent))
        .await;
    assert_eq!(now.json()["version"], 2);
}

#[actix_web::test]
async fn a_failing_action_rolls_back_the_whole_transition() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let ticket = file(&app, &agent, json!({"title": "親チケット"})).await;
    assert_eq!(
        fire(&app, &agent, &ticket, "start", json!({})).await.status,
        StatusCode::OK
    );

    let broken = fire(&app, &agent, &ticket, "delegate_broken", json!({})).await;
    let problem = broken.assert_problem(422, "/problems/validation");
    assert_eq!(
        problem["errors"][0]["field"],
        "create_child_ticket.task.fields.title"
    );
    let path = format!("/api/v1/tickets/{}", id(&ticket));
    let after = app.get(&path, Some(&agent)).await.json();
    assert_eq!(after["state"], "in_progress");
    assert_eq!(after["version"], 2);
    assert!(after["fields"].get("note").is_none());
    let all = app
        .get("/api/v1/tickets?template=task", Some(&agent))
        .await
        .json();
    assert!(all["items"].as_array().unwrap().is_empty());
    assert_eq!(history(&app, &agent, id(&ticket)).await.len(), 3);

    // The working action creates and links a child; the parent waits for it.
    let delegated = fire(&app, &agent, &ticket, "delegate", json!({})).await;
    assert_eq!(delegated.status, StatusCode::OK, "{}", delegated.text);
    let child = delegated.json()["children"][0].clone();
    assert_eq!(child["key"], "TSK-1");
    assert_eq!(
        child["fields"],
        json!({"title": "親チケット", "detail": "調査"})
    );
    let links = app.get(&format!("{path}/links"), Some(&agent)).await.json();
    assert_eq!(links[0]["kind"], "child");
    assert_eq!(links[0]["ticket"]["key"], "TSK-1");
    fire(&app, &agent, &ticket, "children_done", json!({}))
        .await
        .assert_problem(409, "/problems/transition-unavailable");
    assert_eq!(
        fire(&app, &agent, &child, "finish", json!({})).await.status,
        StatusCode::OK
    );
    let back = fire(&app, &agent, &ticket, "children_done", json!({})).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
}

async fn comment(
    app: &TestApp,
    token: &str,
    ticket: &str,
    body: &str,
    internal: bool,
) -> crate::helpers::Reply {
    app.post_json(
        &format!("/api/v1/tickets/{ticket}/comments"),
        Some(token),
        &json!({"body": body, "internal": internal}),
    )
    .await
}

#[actix_web::test]
async fn partners_see_their_organizations_tickets_and_nothing_internal() {
    partners_see_their_organizations_tickets_and_nothing_internal_on(spawn_app().await).await;
}

/// The same with every filter and word probed per ticket (SQLite's plan for common values).
#[actix_web::test]
async fn partners_see_their_organizations_tickets_and_nothing_internal_when_probed() {
    partners_see_their_organizations_tickets_and_nothing_internal_on(
        crate::helpers::spawn_app_with(|c| c.list_probe_threshold = 1).await,
    )
    .await;
}

async fn partners_see_their_organizations_tickets_and_nothing_internal_on(app: TestApp) {
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let admin = &tenant.admin_token;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let org = |name: &'static str| {
        app.create(
            "/api/v1/organizations",
            admin,
            json!({"name": name, "kind": "partner"}),
        )
    };
    let ours = org("Partner A").await;
    let theirs = org("Partner B").await;
    let partner = app
        .create(
            "/api/v1/users",
            admin,
            json!({"username": "pa", "password": crate::helpers::USER_PASSWORD, "display_name": "PA",
                "roles": ["partner"], "organization_id": ours["id"]}),
        )
        .await;
    let partner_token = app
        .login(Some("acme"), "pa", crate::helpers::USER_PASSWORD)
        .await;
    let shared = app
        .create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "desk", "organization": ours["id"],
                "fields": {"title": "共有障害 shared outage", "note": "内部限定メモ secretword"}}),
        )
        .await;
    let hidden = app
        .create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "desk", "organization": theirs["id"],
                "fields": {"title": "他社障害 other outage"}}),
        )
        .await;
    assert_eq!(
        comment(&app, &agent, id(&shared), "公開の返信 publicword", false)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        comment(&app, &agent, id(&shared), "社内の検討 internalword", true)
            .await
            .status,
        StatusCode::CREATED
    );
    app.patch_json(
        &format!("/api/v1/tickets/{}", id(&shared)),
        Some(&agent),
        &json!({"fields": {"note": "更新 secretword2"}}),
    )
    .await;

    // Get: no internal field; the other organization's ticket is 404 like a missing one.
    let got = app
        .get(
            &format!("/api/v1/tickets/{}", id(&shared)),
            Some(&partner_token),
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.json()["fields"].get("note").is_none());
    assert!(!got.text.contains("secretword"));
    let other = app
        .get(
            &format!("/api/v1/tickets/{}", id(&hidden)),
            Some(&partner_token),
        )
        .await;
    let missing = app
        .get(
            &format!("/api/v1/tickets/{}", uuid::Uuid::now_v7()),
            Some(&partner_token),
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.sans_instance(), missing.sans_instance());

    // List and search.
    let list = app.get("/api/v1/tickets", Some(&partner_token)).await;
    let items = list.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], shared["id"]);
    assert!(!list.text.contains("secretword"));
    for (q, visible) in [
        ("publicword", 1),
        ("secretword2", 0),
        ("internalword", 0),
        ("障害", 1),
        ("他社", 0),
    ] {
        let found = app
            .get(
                &format!("/api/v1/tickets?q={}", urlencode(q)),
                Some(&partner_token),
            )
            .await;
        assert_eq!(
            found.json()["items"].as_array().unwrap().len(),
            visible,
            "{q}"
        );
        let staff = app
            .get(&format!("/api/v1/tickets?q={}", urlencode(q)), Some(&agent))
            .await;
        assert!(
            !staff.json()["items"].as_array().unwrap().is_empty(),
            "{q} for staff"
        );
    }
    let by_note = app
        .get(
            "/api/v1/tickets?field.note=%E6%9B%B4%E6%96%B0%20secretword2",
            Some(&partner_token),
        )
        .await;
    assert!(by_note.json()["items"].as_array().unwrap().is_empty());

    let export = app
        .get("/api/v1/tickets/export", Some(&partner_token))
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.text.lines().count(), 2);
    assert!(!export.text.contains("secretword") && !export.text.contains("他社"));

    // History and comments.
    let entries = app
        .get(
            &format!("/api/v1/tickets/{}/history", id(&shared)),
            Some(&partner_token),
        )
        .await;
    assert_eq!(entries.status, StatusCode::OK);
    assert!(!entries.text.contains("secretword"));
    assert!(!entries.text.contains("\"note\""));
    let comments = app
        .get(
            &format!("/api/v1/tickets/{}/comments", id(&shared)),
            Some(&partner_token),
        )
        .await;
    assert!(comments.text.contains("publicword"));
    assert!(!comments.text.contains("internalword"));
    // Partners write public comments only, and may not set internal fields.
    comment(&app, &partner_token, id(&shared), "内部?", true)
        .await
        .assert_problem(403, "/problems/forbidden");
    assert_eq!(
        comment(&app, &partner_token, id(&shared), "確認しました", false)
            .await
            .status,
        StatusCode::CREATED
    );
    app.patch_json(
        &format!("/api/v1/tickets/{}", id(&shared)),
        Some(&partner_token),
        &json!({"fields": {"note": "x"}}),
    )
    .await
    .assert_problem(422, "/problems/validation");
    // A partner's own ticket belongs to their organization.
    let own = file(&app, &partner_token, json!({"title": "パートナー起票"})).await;
    assert_eq!(own["organization"], ours["id"]);
    assert_eq!(own["requester"], partner["id"]);
}

/// Every item of a list, following `next_cursor` from `path` (which has a query string).
async fn all_pages(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let page = app.get(&page_path, Some(token)).await.json();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[actix_web::test]
async fn lists_filter_by_fields_search_japanese_and_page_stably() {
    lists_filter_by_fields_search_japanese_and_page_stably_on(spawn_app().await).await;
}

/// The same with every filter and word probed per ticket (SQLite's plan for common values).
#[actix_web::test]
async fn lists_filter_by_fields_search_japanese_and_page_stably_when_probed() {
    lists_filter_by_fields_search_japanese_and_page_stably_on(
        crate::helpers::spawn_app_with(|c| c.list_probe_threshold = 1).await,
    )
    .await;
}

async fn lists_filter_by_fields_search_japanese_and_page_stably_on(app: TestApp) {
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    let titles = [
        ("メールサーバ障害", "high"),
        ("経費精算の申請", "low"),
        ("VPN connection drops", "high"),
        ("サーバ室の空調", "low"),
        ("申請書の書き方", "high"),
    ];
    let mut ids = Vec::new();
    for (title, impact) in titles {
        let t = file(&app, &requester, json!({"title": title, "impact": impact})).await;
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let search = |q: &str| {
        let path = format!("/api/v1/tickets?q={}", urlencode(q));
        let token = agent.clone();
        let app = &app;
        async move {
            let reply = app.get(&path, Some(&token)).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            reply.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["title"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("障害").await, ["メールサーバ障害"]);
    assert_eq!(search("申請").await, ["申請書の書き方", "経費精算の申請"]);
    assert_eq!(
        search("サーバ").await,
        ["サーバ室の空調", "メールサーバ障害"]
    );
    assert_eq!(search("vpn").await, ["VPN connection drops"]);
    assert_eq!(search("ＶＰＮ DROPS").await, ["VPN connection drops"]);
    assert!(search("申請 障害").await.is_empty());
    // An edit moves the ticket in the index: the old word no longer finds it, the new one does.
    let edited = app
        .patch_json(
            &format!("/api/v1/tickets/{}", ids[0]),
            Some(&agent),
            &json!({"fields": {"title": "メールサーバ復旧", "impact": "low"}}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);
    assert!(search("障害").await.is_empty());
    assert_eq!(search("復旧").await, ["メールサーバ復旧"]);
    assert_eq!(search("メール").await, ["メールサーバ復旧"]);
    app.patch_json(
        &format!("/api/v1/tickets/{}", ids[0]),
        Some(&agent),
        &json!({"fields": {"title": "メールサーバ障害", "impact": "high"}}),
    )
    .await;
    assert_eq!(search("障害").await, ["メールサーバ障害"]);
    app.get("/api/v1/tickets?q=%20%2C", Some(&agent))
        .await
        .assert_problem(422, "/problems/validation");

    // Custom field filter with state, and sorting.
    let high = app
        .get(
            "/api/v1/tickets?field.impact=high&state=new&sort=key",
            Some(&agent),
        )
        .await
        .json();
    let keys: Vec<&str> = high["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["SD-1", "SD-3", "SD-5"]);
    // The same filter in OpenAPI `deepObject` style, as generated clients send it.
    for query in ["field[impact]=high", "field%5Bimpact%5D=high"] {
        let deep = app
            .get(
                &format!("/api/v1/tickets?{query}&state=new&sort=key"),
                Some(&agent),
            )
            .await;
        assert_eq!(deep.status, StatusCode::OK, "{}", deep.text);
        assert_eq!(deep.json()["items"], high["items"], "{query}");
    }
    app.get("/api/v1/tickets?field[bad key]=x", Some(&agent))
        .await
        .assert_problem(422, "/problems/validation");
    app.get("/api/v1/tickets?sort=colour", Some(&agent))
        .await
        .assert_problem(422, "/problems/validation");

    // Pages of 2, newest first, then by key ascending; no ticket twice, none missed.
    for (sort, expected) in [
        ("-created", ids.iter().rev().cloned().collect::<Vec<_>>()),
        ("key", ids.clone()),
        ("updated", ids.clone()),
    ] {
        let seen: Vec<String> = all_pages(
            &app,
            &agent,
            &format!("/api/v1/tickets?limit=2&sort={sort}"),
        )
        .await
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
        assert_eq!(seen, expected, "{sort}");
    }
    // The requester's list is their own tickets; another requester sees none.
    let other = app.user_token(&tenant, "req2", &["requester"]).await;
    let none = app.get("/api/v1/tickets", Some(&other)).await.json();
    assert!(none["items"].as_array().unwrap().is_empty());
    let theirs = app.get("/api/v1/tickets", Some(&requester)).await.json();
    assert_eq!(theirs["items"].as_array().unwrap().len(), 5);
}

#[actix_web::test]
async fn watchers_and_links_are_managed() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester_id = app.user(&tenant, "req1", &["requester"]).await;
    let requester = app
        .login(Some("acme"), "req1", crate::helpers::USER_PASSWORD)
        .await;
    let a = file(&app, &requester, json!({"title": "A"})).await;
    let b = file(&app, &agent, json!({"title": "B"})).await;
    let watchers = format!("/api/v1/tickets/{}/watchers", id(&a));
    for _ in 0..2 {
        let r = app.post_json(&watchers, Some(&requester), &json!({})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    let list = app.get(&watchers, Some(&agent)).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["user"], requester_id);
    let agent_id = app.get("/api/v1/me", Some(&agent)).await.json()["id"].clone();
    app.post_json(&watchers, Some(&requester), &json!({"user": agent_id}))
        .await
        .assert_problem(403, "/problems/forbidden");
    let r = app
        .request(
            Method::DELETE,
            &format!("{watchers}/{requester_id}"),
            Some(&requester),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        app.get(&watchers, Some(&agent))
            .await
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );

    let links = format!("/api/v1/tickets/{}/links", id(&a));
    let link = app
        .create(
            &links,
            &agent,
            json!({"kind": "duplicate_of", "ticket": b["id"]}),
        )
        .await;
    assert_eq!(link["kind"], "duplicate_of");
    app.post_json(
        &links,
        Some(&agent),
        &json!({"kind": "duplicate_of", "ticket": b["id"]}),
    )
    .await
    .assert_problem(409, "/problems/duplicate");
    app.post_json(
        &links,
        Some(&agent),
        &json!({"kind": "related", "ticket": a["id"]}),
    )
    .await
    .assert_problem(422, "/problems/validation");
    app.post_json(
        &links,
        Some(&requester),
        &json!({"kind": "related", "ticket": b["id"]}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");
    let from_b = app
        .get(&format!("/api/v1/tickets/{}/links", id(&b)), Some(&agent))
        .await
        .json();
    assert_eq!(from_b[0]["kind"], "duplicated_by");
    assert_eq!(from_b[0]["ticket"]["key"], "SD-1");
    // The requester cannot see B, so the link is not shown to them.
    let mine = app.get(&links, Some(&requester)).await.json();
    assert!(mine.as_array().unwrap().is_empty());
    let r = app
        .request(
            Method::DELETE,
            &format!("{links}/{}", id(&link)),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        app.get(&links, Some(&agent))
            .await
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
}

async fn upload(
    app: &TestApp,
    token: &str,
    ticket: &str,
    name: &str,
    content: Vec<u8>,
    internal: Option<&str>,
) -> crate::helpers::Reply {
    let part = reqwest::multipart::Part::bytes(content)
        .file_name(name.to_owned())
        .mime_str("text/plain")
        .unwrap();
    let mut form = reqwest::multipart::Form::new().part("file", part);
    if let Some(internal) = internal {
        form = form.text("internal", internal.to_owned());
    }
    app.send(
        app.client
            .post(app.url(&format!("/api/v1/tickets/{ticket}/attachments")))
            .bearer_auth(token)
            .multipart(form),
    )
    .await
}

#[actix_web::test]
async fn attachments_are_stored_by_hash_limited_and_visible_like_their_ticket() {
    let app = crate::helpers::spawn_app_with(|c| c.max_attachment_bytes = 1024).await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    let other = app.user_token(&tenant, "req2", &["requester"]).await;
    let ticket = file(&app, &requester, json!({"title": "添付あり"})).await;
    let tid = id(&ticket);

    let stored = upload(
        &app,
        &requester,
        tid,
        "ログ 1.txt",
        b"hello log".to_vec(),
        None,
    )
    .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
    let attachment = stored.json();
    assert_eq!(attachment["size"], 9);
    assert_eq!(attachment["file_name"], "ログ 1.txt");
    let content_url = attachment["content_url"].as_str().unwrap().to_owned();
    let download = app.get(&content_url, Some(&agent)).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.text, "hello log");
    assert_eq!(download.header("content-type"), Some("text/plain"));
    let disposition = download.header("content-disposition").unwrap().to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains("UTF-8''"), "{disposition}");

    // Over the limit: 413, and nothing recorded.
    upload(&app, &agent, tid, "big.bin", vec![7u8; 1025], None)
        .await
        .assert_problem(413, "/problems/payload-too-large");
    // Internal attachments: staff only, invisible to the requester.
    let internal = upload(
        &app,
        &agent,
        tid,
        "memo.txt",
        b"internal".to_vec(),
        Some("true"),
    )
    .await;
    assert_eq!(internal.status, StatusCode::CREATED, "{}", internal.text);
    let internal_url = internal.json()["content_url"].as_str().unwrap().to_owned();
    upload(&app, &requester, tid, "x.txt", b"x".to_vec(), Some("true"))
        .await
        .assert_problem(403, "/problems/forbidden");
    let listed = app
        .get(
            &format!("/api/v1/tickets/{tid}/attachments"),
            Some(&requester),
        )
        .await
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let staff_list = app
        .get(&format!("/api/v1/tickets/{tid}/attachments"), Some(&agent))
        .await
        .json();
    assert_eq!(staff_list["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.get(&internal_url, Some(&requester)).await.status,
        StatusCode::NOT_FOUND
    );
    // Someone who cannot see the ticket cannot download or upload.
    assert_eq!(
        app.get(&content_url, Some(&other)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        upload(&app, &other, tid, "y.txt", b"y".to_vec(), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Not a form: 4xx problem.
    let plain = app
        .post_json(
            &format!("/api/v1/tickets/{tid}/attachments"),
            Some(&agent),
            &json!({}),
        )
        .await;
    assert!(plain.status.is_client_error(), "{}", plain.status);
}

#[actix_web::test]
async fn bulk_transitions_report_each_item() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let a = file(&app, &agent, json!({"title": "A"})).await;
    let b = file(&app, &agent, json!({"title": "B"})).await;
    assert_eq!(
        fire(&app, &agent, &b, "start", json!({})).await.status,
        StatusCode::OK
    );
    let reply = app
        .post_json(
            "/api/v1/tickets/bulk-transitions",
            Some(&agent),
            &json!({"items": [
                {"ticket": a["id"], "transition": "start"},
                {"ticket": b["id"], "transition": "start"},
                {"ticket": uuid::Uuid::now_v7(), "transition": "start"},
                {"ticket": a["id"], "transition": "delegate", "version": 1}
            ], "comment": {"body": "一括"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    let statuses: Vec<u64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 409, 404, 412]);
    assert_eq!(body["succeeded"], 1);
    assert_eq!(
        body["items"][1]["problem"]["type"],
        "/problems/transition-unavailable"
    );
    let comments = app
        .get(
            &format!("/api/v1/tickets/{}/comments", id(&a)),
            Some(&agent),
        )
        .await
        .json();
    assert_eq!(comments["items"][0]["body"], "一括");
    app.post_json(
        "/api/v1/tickets/bulk-transitions",
        Some(&agent),
        &json!({"items": []}),
    )
    .await
    .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn csv_export_streams_the_list_with_an_optional_bom() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester_id = app.user(&tenant, "req1", &["requester"]).await;
    let requester = app
        .login(Some("acme"), "req1", crate::helpers::USER_PASSWORD)
        .await;
    for i in 0..3 {
        app.create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "desk", "requester": requester_id,
                "fields": {"title": format!("障害 {i}, \"quoted\""), "impact": "high", "note": "社外秘"}}),
        )
        .await;
    }
    let staff = app
        .get(
            "/api/v1/tickets/export?format=csv&bom=true&template=desk&sort=key",
            Some(&agent),
        )
        .await;
    assert_eq!(staff.status, StatusCode::OK, "{}", staff.text);
    assert_eq!(
        staff.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert!(staff.text.starts_with('\u{feff}'));
    let mut reader = csv::Reader::from_reader(staff.text.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert!(headers.iter().any(|h| h == "field.note"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][1], "SD-1");
    assert_eq!(&rows[0][4], "障害 0, \"quoted\"");
    // The requester's export has no internal column and no internal value.
    let theirs = app
        .get("/api/v1/tickets/export?template=desk", Some(&requester))
        .await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(!theirs.text.starts_with('\u{feff}'));
    assert!(!theirs.text.contains("note"));
    assert!(!theirs.text.contains("社外秘"));
    assert_eq!(theirs.text.lines().count(), 4);
    app.get("/api/v1/tickets/export?format=xlsx", Some(&agent))
        .await
        .assert_problem(422, "/problems/validation");
}

/// Cells a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, carriage return at the
/// start) are exported with a leading apostrophe; ordinary text and numbers are unchanged.
#[actix_web::test]
async fn csv_export_neutralises_formula_cells() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let hostile = [
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1,2)",
        "\tTAB",
        "\rCR",
    ];
    for (i, title) in hostile.iter().enumerate() {
        app.create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "desk", "fields": {"title": title, "description": title,
                "effort": i}}),
        )
        .await;
    }
    app.create(
        "/api/v1/tickets",
        &agent,
        json!({"template": "desk", "fields": {"title": "普通の件名 = ok", "effort": 7}}),
    )
    .await;
    for path in [
        "/api/v1/tickets/export?template=desk&sort=key",
        "/api/v1/tickets/export?sort=key",
    ] {
        let export = app.get(path, Some(&agent)).await;
        assert_eq!(export.status, StatusCode::OK, "{}", export.text);
        let mut reader = csv::Reader::from_reader(export.text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), hostile.len() + 1);
        for (row, title) in rows.iter().zip(hostile) {
            assert_eq!(&row[column("title")], format!("'{title}"), "{path}");
        }
        assert_eq!(&rows[hostile.len()][column("title")], "普通の件名 = ok");
        if path.contains("template=") {
            assert_eq!(
                &rows[0][column("field.description")],
                format!("'{}", hostile[0])
            );
            assert_eq!(&rows[2][column("field.effort")], "2");
            assert_eq!(&rows[hostile.len()][column("field.effort")], "7");
        } else {
            // The JSON column starts with `{` and is left as it is.
            assert!(rows[0][column("fields")].starts_with('{'));
        }
    }
}

/// The ITIL incident process from the catalog, walked from filing to closing by the people
/// who would do each step.
#[actix_web::test]
async fn an_itil_incident_runs_from_filing_to_closed() {
    let app = spawn_app().await;
    let tenant = app.tenant("itil").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    // Each installation brings the libraries its template references, once.
    for (key, libraries) in [
        ("itil_change", vec!["cmdb"]),
        ("itil_problem", vec!["knowledge_base"]),
        ("itil_incident", vec![]),
    ] {
        let reply = app
            .post_json(
                &format!("/api/v1/catalog/{key}/install"),
                Some(&pm),
                &json!({}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{key}: {}", reply.text);
        assert_eq!(
            reply.json()["libraries_created"],
            json!(libraries),
            "{key}: {}",
            reply.text
        );
    }
    let service_desk = app
        .create(
            "/api/v1/groups",
            &tenant.admin_token,
            json!({"name": "service_desk"}),
        )
        .await;
    let agent_id = app.user(&tenant, "sd1", &["agent"]).await;
    app.create(
        &format!("/api/v1/groups/{}/members", id(&service_desk)),
        &tenant.admin_token,
        json!({"user_id": agent_id}),
    )
    .await;
    let agent = app
        .login(Some("itil"), "sd1", crate::helpers::USER_PASSWORD)
        .await;
    let user = app.user_token(&tenant, "employee", &["requester"]).await;

    // The employee files the incident.
    let ticket = app
        .create(
            "/api/v1/tickets",
            &user,
            json!({"template": "itil_incident", "fields": {
                "title": "メールが送信できない", "description": "Outlook で送信エラー 0x800CCC0F"}}),
        )
        .await;
    assert_eq!(ticket["key"], "INC-1");
    assert_eq!(ticket["state"], "new");
    let step = |token: String, transition: &'static str, fields: Value| {
        let app = &app;
        let path = format!("/api/v1/tickets/{}/transitions", id(&ticket));
        async move {
            let reply = app
                .post_json(
                    &path,
                    Some(&token),
                    &json!({"transition": transition, "fields": fields}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{transition}: {}", reply.text);
            reply.json()
        }
    };
    // The employee cannot triage; the service desk can.
    let theirs = app
        .get(
            &format!("/api/v1/tickets/{}/transitions", id(&ticket)),
            Some(&user),
        )
        .await
        .json();
    let keys: Vec<&str> = theirs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["cancel"]);
    step(
        agent.clone(),
        "start_triage",
        json!({"source": "portal", "category": "network", "impact": "medium", "urgency": "high"}),
    )
    .await;
    // Triage needs a priority and a group before the work is assigned.
    let options = app
        .get(
            &format!("/api/v1/tickets/{}/transitions", id(&ticket)),
            Some(&agent),
        )
        .await
        .json();
    let assign = options["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "assign_work")
        .unwrap()
        .clone();
    assert!(
        assign["required_fields"]
            .as_array()
            .unwrap()
            .contains(&json!("priority"))
    );
    let assigned = step(
        agent.clone(),
        "assign_work",
        json!({"priority": "p2", "assignment_group": service_desk["id"]}),
    )
    .await;
    assert_eq!(assigned["ticket"]["state"], "in_progress");
    assert_eq!(assigned["ticket"]["group"], service_desk["id"]);
    // Waiting for the user, then back to work.
    step(
        agent.clone(),
        "hold",
        json!({"pending_reason": "awaiting_user"}),
    )
    .await;
    let resumed = step(agent.clone(), "resume", json!({})).await;
    assert!(resumed["ticket"]["fields"].get("pending_reason").is_none());
    app.patch_json(
        &format!("/api/v1/tickets/{}", id(&ticket)),
        Some(&agent),
        &json!({"fields": {"internal_notes": "送信サーバの証明書期限切れ"}}),
    )
    .await;
    let resolved = step(
        agent.clone(),
        "resolve",
        json!({"resolution_code": "config_change", "resolution": "SMTP サーバ証明書を更新"}),
    )
    .await;
    assert_eq!(resolved["ticket"]["state"], "resolved");
    // Resolving files a knowledge article and writes its id back into the incident.
    let changes = resolved["library_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{resolved}");
    let article_change = &changes[0];
    assert_eq!(article_change["library"], "knowledge_base");
    assert_eq!(article_change["operation"], "created");
    assert_eq!(article_change["record_field"], "knowledge_article");
    assert_eq!(article_change["record_version"], 1);
    assert_eq!(article_change["title"], "メールが送信できない");
    let article_id = article_change["record_id"].as_str().unwrap().to_owned();
    assert_eq!(
        resolved["ticket"]["fields"]["knowledge_article"],
        article_id.as_str()
    );
    let article = read(
        &app,
        &agent,
        &format!("/api/v1/libraries/knowledge_base/records/{article_id}"),
    )
    .await;
    assert_eq!(article["title"], "メールが送信できない");
    assert_eq!(article["fields"]["title"], "メールが送信できない");
    assert_eq!(article["fields"]["body"], "SMTP サーバ証明書を更新");
    assert_eq!(article["origin"]["ticket_id"], ticket["id"]);
    let versions = record_history(&app, &agent, "knowledge_base", &article_id).await;
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0]["kind"], "created");
    assert_eq!(versions[0]["source"]["kind"], "ticket");
    assert_eq!(versions[0]["source"]["ticket_id"], ticket["id"]);
    assert_eq!(versions[0]["source"]["ticket_key"], "INC-1");
    assert_eq!(versions[0]["source"]["transition"], "resolve");
    assert_eq!(versions[0]["actor"]["name"], "sd1");
    // The employee confirms and closes; the closed incident is read-only.
    let closed = step(user.clone(), "close", json!({})).await;
    assert_eq!(closed["ticket"]["state"], "closed");
    assert_eq!(closed["ticket"]["closed"], true);
    assert!(closed["ticket"]["fields"].get("internal_notes").is_none());
    app.patch_json(
        &format!("/api/v1/tickets/{}", id(&ticket)),
        Some(&agent),
        &json!({"fields": {"title": "変更"}}),
    )
    .await
    .assert_problem(409, "/problems/ticket-closed");

    let entries = history(&app, &agent, id(&ticket)).await;
    let walk: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "transition")
        .map(|e| e["transition"].as_str().unwrap())
        .collect();
    assert_eq!(
        walk,
        [
            "start_triage",
            "assign_work",
            "hold",
            "resume",
            "resolve",
            "close"
        ]
    );
    let own_view = history(&app, &user, id(&ticket)).await;
    assert!(own_view.iter().all(|e| e["field"] != "internal_notes"));
    assert!(entries.iter().any(|e| e["field"] == "internal_notes"));
    let states = app
        .get("/api/v1/templates/itil_incident/states", Some(&pm))
        .await;
    assert_eq!(states.status, StatusCode::OK);
    let states = states.json();
    let done = states["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["states"].as_array().unwrap().clone())
        .find(|s| s["key"] == "closed")
        .unwrap();
    assert_eq!(done["ticket_count"], 1);
    // The closed incident names its article.
    let incident = read(
        &app,
        &agent,
        &format!("/api/v1/tickets/{}?expand=references", id(&ticket)),
    )
    .await;
    assert_eq!(
        incident["references"]["knowledge_article"],
        json!({"library": "knowledge_base", "id": article_id,
            "title": "メールが送信できない", "deleted": false})
    );

    // The service desk registers the mail server in the CMDB, not yet in service.
    let ci = app
        .create(
            "/api/v1/libraries/cmdb/records",
            &agent,
            json!({"fields": {"name": "mail-01", "ci_type": "server", "status": "planned",
                "environment": "production", "support_group": service_desk["id"]}}),
        )
        .await;
    let ci_id = id(&ci).to_owned();
    assert_eq!(ci["title"], "mail-01");
    assert_eq!(ci["fields"]["status"], "planned");
    assert_eq!(ci["version"], 1);

    // A normal change on that CI goes through CAB to closure; closing puts it in service.
    let change = app
        .create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "itil_change", "fields": {
                "title": "メールサーバ mail-01 の導入",
                "description": "mail-01 を本番に投入する",
                "reason": "証明書期限切れの再発防止",
                "change_type": "normal"}}),
        )
        .await;
    assert_eq!(change["key"], "CHG-1");
    assert_eq!(change["state"], "draft");
    advance(
        &app,
        &agent,
        &change,
        "submit",
        json!({"configuration_item": ci_id, "impact": "medium", "category": "service.email"}),
    )
    .await;
    let cab = advance(
        &app,
        &agent,
        &change,
        "submit_to_cab",
        json!({"change_risk": "low", "implementation_plan": "1. 証明書を配置 2. 送信テスト",
            "rollback_plan": "旧サーバへ戻す", "planned_start": "2026-04-10T13:00:00Z",
            "planned_end": "2026-04-10T15:00:00Z", "implementation_group": service_desk["id"]}),
    )
    .await;
    assert_eq!(cab["ticket"]["state"], "cab_review");
    // Only the CAB (process manager) approves.
    fire(&app, &agent, &change, "approve", json!({}))
        .await
        .assert_problem(403, "/problems/forbidden");
    let approved = advance(
        &app,
        &pm,
        &change,
        "approve",
        json!({"decision_notes": "CAB 承認"}),
    )
    .await;
    assert_eq!(approved["ticket"]["state"], "scheduled");
    assert_eq!(approved["ticket"]["group"], service_desk["id"]);
    advance(&app, &agent, &change, "start_implementation", json!({})).await;
    // The guard reads the stored result: save it first, then complete.
    let saved = app
        .patch_json(
            &format!("/api/v1/tickets/{}", id(&change)),
            Some(&agent),
            &json!({"fields": {"implementation_result": "successful"}}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    advance(
        &app,
        &agent,
        &change,
        "complete_implementation",
        json!({"implementation_result": "successful"}),
    )
    .await;
    // Closing is the process manager's; the CI record is still planned until then.
    fire(
        &app,
        &agent,
        &change,
        "close",
        json!({"review_notes": "問題なし"}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");
    let unchanged = read(
        &app,
        &agent,
        &format!("/api/v1/libraries/cmdb/records/{ci_id}"),
    )
    .await;
    assert_eq!(unchanged["fields"]["status"], "planned");
    let closed_change = advance(
        &app,
        &pm,
        &change,
        "close",
        json!({"review_notes": "問題なし"}),
    )
    .await;
    assert_eq!(closed_change["ticket"]["state"], "closed");
    let changes = closed_change["library_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{closed_change}");
    assert_eq!(changes[0]["library"], "cmdb");
    assert_eq!(changes[0]["operation"], "updated");
    assert_eq!(changes[0]["record_id"], ci_id.as_str());
    assert_eq!(changes[0]["record_version"], 2);
    assert_eq!(changes[0]["title"], "mail-01");
    assert_eq!(changes[0]["fields"], json!({"status": "in_service"}));
    assert_eq!(
        closed_change["ticket"]["fields"]["configuration_item"],
        ci_id.as_str()
    );
    let in_service = read(
        &app,
        &agent,
        &format!("/api/v1/libraries/cmdb/records/{ci_id}"),
    )
    .await;
    assert_eq!(in_service["fields"]["status"], "in_service");
    assert_eq!(in_service["fields"]["name"], "mail-01");
    assert_eq!(in_service["fields"]["ci_type"], "server");
    assert_eq!(in_service["version"], 2);
    let versions = record_history(&app, &agent, "cmdb", &ci_id).await;
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0]["source"]["kind"], "user");
    assert_eq!(versions[0]["fields"]["status"], "planned");
    let last = versions.last().unwrap();
    assert_eq!(last["kind"], "updated");
    assert_eq!(last["changed"], json!(["status"]));
    assert_eq!(last["source"]["kind"], "ticket");
    assert_eq!(last["source"]["ticket_id"], change["id"]);
    assert_eq!(last["source"]["ticket_key"], "CHG-1");
    assert_eq!(last["source"]["transition"], "close");
    assert_eq!(last["actor"]["name"], "pm");

    // A later incident on the same server shows the CI by name.
    let second = app
        .create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "itil_incident", "fields": {
                "title": "mail-01 が応答しない", "description": "送信がタイムアウトする",
                "configuration_item": ci_id}}),
        )
        .await;
    assert_eq!(second["key"], "INC-2");
    let expanded = read(
        &app,
        &agent,
        &format!("/api/v1/tickets/{}?expand=references", id(&second)),
    )
    .await;
    assert_eq!(
        expanded["references"]["configuration_item"],
        json!({"library": "cmdb", "id": ci_id, "title": "mail-01", "deleted": false})
    );
    assert!(expanded["references"].get("knowledge_article").is_none());
    let plain = read(&app, &agent, &format!("/api/v1/tickets/{}", id(&second))).await;
    assert!(plain.get("references").is_none());
    // The CI lists every ticket that references it.
    let referencing = read(
        &app,
        &agent,
        &format!("/api/v1/libraries/cmdb/records/{ci_id}/tickets"),
    )
    .await;
    let mut keys: Vec<&str> = referencing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["CHG-1", "INC-2"]);

    // A reference to a record that does not exist is refused, located at the field.
    let bad = app
        .post_json(
            "/api/v1/tickets",
            Some(&agent),
            &json!({"template": "itil_incident", "fields": {
                "title": "存在しない CI", "description": "x",
                "configuration_item": uuid::Uuid::now_v7()}}),
        )
        .await;
    let problem = bad.assert_problem(422, "/problems/validation");
    assert!(
        problem["errors"].as_array().unwrap().iter().any(|e| {
            e["field"] == "fields.configuration_item" && e["code"] == "unknown_reference"
        }),
        "{problem}"
    );
}

/// Fires a transition that must succeed; returns the result.
async fn advance(
    app: &TestApp,
    token: &str,
    ticket: &Value,
    transition: &str,
    fields: Value,
) -> Value {
    let reply = fire(app, token, ticket, transition, fields).await;
    assert_eq!(reply.status, StatusCode::OK, "{transition}: {}", reply.text);
    reply.json()
}

/// GETs a path that must answer 200; returns the body.
async fn read(app: &TestApp, token: &str, path: &str) -> Value {
    let reply = app.get(path, Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.text);
    reply.json()
}

/// A library record's versions, oldest first.
async fn record_history(app: &TestApp, token: &str, library: &str, record: &str) -> Vec<Value> {
    let path = format!("/api/v1/libraries/{library}/records/{record}/history?limit=500");
    read(app, token, &path).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[actix_web::test]
async fn lists_filter_by_people_stage_and_time() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let admin = &tenant.admin_token;
    let agent_id = app.user(&tenant, "agent1", &["agent"]).await;
    let agent = app
        .login(Some("acme"), "agent1", crate::helpers::USER_PASSWORD)
        .await;
    let team = app
        .create("/api/v1/groups", admin, json!({"name": "team"}))
        .await;
    let org = app
        .create(
            "/api/v1/organizations",
            admin,
            json!({"name": "Dept", "kind": "internal"}),
        )
        .await;
    let early = file(&app, &agent, json!({"title": "early"})).await;
    let start = app.clock_now();
    app.clock.advance(chrono::TimeDelta::minutes(10));
    let late = app
        .create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "desk", "fields": {"title": "late"}, "assignee": agent_id,
                "group": team["id"], "organization": org["id"]}),
        )
        .await;
    assert_eq!(
        fire(&app, &agent, &late, "start", json!({})).await.status,
        StatusCode::OK
    );
    let keys = |path: String| {
        let app = &app;
        let agent = agent.clone();
        async move {
            let reply = app.get(&path, Some(&agent)).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
            reply.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["title"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let after = urlencode(&(start + chrono::TimeDelta::minutes(5)).to_rfc3339());
    assert_eq!(
        keys(format!("/api/v1/tickets?created_after={after}")).await,
        ["late"]
    );
    assert_eq!(
        keys(format!("/api/v1/tickets?created_before={after}")).await,
        ["early"]
    );
    assert_eq!(
        keys(format!("/api/v1/tickets?updated_after={after}")).await,
        ["late"]
    );
    assert_eq!(
        keys(format!("/api/v1/tickets?assignee={agent_id}")).await,
        ["late"]
    );
    assert_eq!(
        keys(format!("/api/v1/tickets?group={}", id(&team))).await,
        ["late"]
    );
    assert_eq!(
        keys(format!("/api/v1/tickets?organization={}", id(&org))).await,
        ["late"]
    );
    assert_eq!(
        keys("/api/v1/tickets?state=new,in_progress".to_owned()).await,
        ["late", "early"]
    );
    assert_eq!(
        keys("/api/v1/tickets?stage=open&state=in_progress".to_owned()).await,
        ["late"]
    );
    assert_eq!(
        keys("/api/v1/tickets?closed=false&template=desk".to_owned()).await,
        ["late", "early"]
    );
    assert!(
        keys("/api/v1/tickets?template=nope".to_owned())
            .await
            .is_empty()
    );
    assert_eq!(
        keys(format!(
            "/api/v1/tickets?requester={}",
            early["requester"].as_str().unwrap()
        ))
        .await
        .len(),
        2
    );
    app.get("/api/v1/tickets?created_after=yesterday", Some(&agent))
        .await
        .assert_problem(422, "/problems/validation");
    app.get("/api/v1/tickets?field.Bad-Key=1", Some(&agent))
        .await
        .assert_problem(422, "/problems/validation");
    app.get("/api/v1/tickets?cursor=garbage", Some(&agent))
        .await
        .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn key_order_pages_through_templates_sharing_a_prefix() {
    let app = spawn_app().await;
    let (tenant, pm) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    app.create(
        "/api/v1/templates",
        &pm,
        json!({"key": "desk2", "definition": desk()}),
    )
    .await;
    let published = app
        .post_json(
            "/api/v1/templates/desk2/versions/1/publish",
            Some(&pm),
            &json!({}),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);
    for template in ["desk", "desk2", "desk", "desk2"] {
        app.create(
            "/api/v1/tickets",
            &agent,
            json!({"template": template, "fields": {"title": template}}),
        )
        .await;
    }
    for sort in ["key", "-key"] {
        let seen: Vec<String> = all_pages(
            &app,
            &agent,
            &format!("/api/v1/tickets?limit=1&sort={sort}"),
        )
        .await
        .iter()
        .map(|t| t["key"].as_str().unwrap().to_owned())
        .collect();
        let mut expected = vec!["SD-1", "SD-1", "SD-2", "SD-2"];
        if sort == "-key" {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{sort}");
    }
}

/// The transition name is parsed as a key before the engine runs: a text that is not a key
/// is refused exactly like a key the template does not have, alone and in a bulk request.
#[actix_web::test]
async fn a_transition_name_that_is_not_a_key_is_an_unknown_transition() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let ticket = file(&app, &agent, json!({"title": "鍵"})).await;
    for name in ["Start Now", "nope"] {
        let body = fire(&app, &agent, &ticket, name, json!({}))
            .await
            .assert_problem(422, "/problems/validation");
        assert_eq!(body["errors"][0]["field"], "transition");
        assert_eq!(body["errors"][0]["code"], "unknown_transition");
        assert_eq!(
            body["errors"][0]["message"],
            format!("the template has no transition '{name}'")
        );
    }
    let reply = app
        .post_json(
            "/api/v1/tickets/bulk-transitions",
            Some(&agent),
            &json!({"items": [
                {"ticket": ticket["id"], "transition": "Start Now"},
                {"ticket": ticket["id"], "transition": "start"}
            ]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["items"][0]["status"], 422);
    assert_eq!(body["items"][0]["problem"]["type"], "/problems/validation");
    assert_eq!(body["items"][1]["status"], 200);
    // The ticket moved once, by the valid item only.
    let now = app
        .get(&format!("/api/v1/tickets/{}", id(&ticket)), Some(&agent))
        .await;
    assert_eq!(now.json()["version"], 2);
}
