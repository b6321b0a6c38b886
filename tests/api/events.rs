//! The event log: one event per change in the change's own transaction, the feed in commit
//! order under concurrent writers, long polling, Server-Sent Events with resume, visibility.

use std::collections::{BTreeSet, HashMap};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::tickets::desk_tenant;

async fn file_with(app: &TestApp, token: &str, fields: Value) -> Value {
    app.create(
        "/api/v1/tickets",
        token,
        json!({"template": "desk", "fields": fields}),
    )
    .await
}

async fn file(app: &TestApp, token: &str, title: &str) -> Value {
    file_with(app, token, json!({"title": title})).await
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Every event after `after` the token may read, following `next_cursor` to the end.
async fn drain(
    app: &TestApp,
    token: &str,
    after: Option<&str>,
    filter: &str,
) -> (Vec<Value>, String) {
    let mut cursor = after.map(str::to_owned);
    let mut events = Vec::new();
    loop {
        let mut path = format!("/api/v1/events?limit=500{filter}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&after={c}"));
        }
        let reply = app.get(&path, Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        let page = reply.json();
        let items = page["items"].as_array().unwrap().clone();
        let next = page["next_cursor"].as_str().unwrap().to_owned();
        if items.is_empty() {
            assert_eq!(cursor.as_deref().unwrap_or(next.as_str()), next);
            return (events, next);
        }
        assert_eq!(items.last().unwrap()["cursor"], next.as_str());
        events.extend(items);
        cursor = Some(next);
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[actix_web::test]
async fn every_change_writes_one_event_and_a_failed_one_writes_none() {
    let app = spawn_app().await;
    let (tenant, pm) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let (published, start) = drain(&app, &pm, None, "").await;
    assert_eq!(
        types(&published),
        ["template.published", "template.published"]
    );
    assert_eq!(published[1]["template"], "desk");
    assert_eq!(published[1]["data"]["template"]["version"], 1);

    let ticket = file_with(
        &app,
        &agent,
        json!({"title": "プリンタが動かない", "note": "社内だけ"}),
    )
    .await;
    let path = format!("/api/v1/tickets/{}", id(&ticket));
    let fire = |transition: &'static str, fields: Value| {
        let (app, agent, path) = (&app, &agent, &path);
        async move {
            app.post_json(
                &format!("{path}/transitions"),
                Some(agent),
                &json!({"transition": transition, "fields": fields}),
            )
            .await
        }
    };
    // Refused and dry-run transitions write nothing.
    assert_eq!(
        fire("resolve", json!({})).await.status,
        StatusCode::CONFLICT
    );
    let dry = app
        .post_json(
            &format!("{path}/transitions?dry_run=true"),
            Some(&agent),
            &json!({"transition": "start"}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    assert!(drain(&app, &agent, Some(&start), "").await.0.len() == 1);

    assert_eq!(fire("start", json!({})).await.status, StatusCode::OK);
    // A transition whose last action fails rolls back with everything it wrote: the event
    // of its `set_field` change included.
    let (before, _) = drain(&app, &agent, Some(&start), "").await;
    fire("delegate_broken", json!({}))
        .await
        .assert_problem(422, "/problems/validation");
    assert_eq!(drain(&app, &agent, Some(&start), "").await.0, before);
    let patched = app
        .patch_json(&path, Some(&agent), &json!({"fields": {"impact": "high"}}))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let agent_id = app.get("/api/v1/me", Some(&agent)).await.json()["id"].clone();
    let assigned = app
        .patch_json(&path, Some(&agent), &json!({"assignee": agent_id}))
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    let commented = app
        .post_json(
            &format!("{path}/comments"),
            Some(&agent),
            &json!({"body": "確認中です"}),
        )
        .await;
    assert_eq!(commented.status, StatusCode::CREATED);
    let watched = app
        .post_json(
            &format!("{path}/watchers"),
            Some(&agent),
            &json!({"user": agent_id}),
        )
        .await;
    assert!(watched.status.is_success(), "{}", watched.text);
    let other = file(&app, &agent, "関連チケット").await;
    let linked = app
        .post_json(
            &format!("{path}/links"),
            Some(&agent),
            &json!({"kind": "related", "ticket": id(&other)}),
        )
        .await;
    assert_eq!(linked.status, StatusCode::CREATED, "{}", linked.text);

    let (events, _) = drain(&app, &agent, Some(&start), "").await;
    assert_eq!(
        types(&events),
        [
            "ticket.created",
            "ticket.transitioned",
            "ticket.notify",
            "ticket.updated",
            "ticket.assigned",
            "ticket.commented",
            "ticket.watcher_added",
            "ticket.created",
            "ticket.linked",
        ]
    );
    let created = &events[0];
    assert_eq!(
        created["subject"],
        json!({"kind": "ticket", "id": id(&ticket), "key": "SD-1"})
    );
    assert_eq!(created["ticket_id"], id(&ticket).as_str());
    assert_eq!(created["template"], "desk");
    assert_eq!(created["actor"]["name"], "agent1");
    assert_eq!(created["tenant"], tenant.id.as_str());
    assert!(
        created["occurred_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(created["data"]["ticket"]["key"], "SD-1");
    assert_eq!(created["data"]["changes"][0]["kind"], "created");
    assert_eq!(
        created["data"]["changes"][0]["new_value"]["note"],
        "社内だけ"
    );
    let moved = &events[1]["data"];
    assert_eq!(moved["ticket"]["state"], "in_progress");
    assert_eq!(moved["changes"][0]["transition"], "start");
    assert_eq!(moved["changes"][1]["field"], "effort");
    assert_eq!(events[2]["data"]["notify"]["event"], "started");
    assert_eq!(events[3]["data"]["changes"][0]["new_value"], "high");
    assert_eq!(events[5]["data"]["comment"]["body"], "確認中です");
    assert_eq!(events[8]["data"]["link"]["ticket"]["key"], "SD-2");
    // Ids are unique, cursors strictly increase.
    let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len());

    // Filters: by type (several) and by subject.
    let (only, _) = drain(
        &app,
        &agent,
        Some(&start),
        "&type=ticket.created,ticket.linked",
    )
    .await;
    assert_eq!(
        types(&only),
        ["ticket.created", "ticket.created", "ticket.linked"]
    );
    let (about, _) = drain(
        &app,
        &agent,
        Some(&start),
        &format!("&subject={}", id(&other)),
    )
    .await;
    assert_eq!(types(&about), ["ticket.created"]);
}

#[actix_web::test]
async fn bad_feed_requests_are_422_and_the_operator_gets_403() {
    let app = spawn_app().await;
    let (_tenant, pm) = desk_tenant(&app, "acme").await;
    for (query, field) in [
        ("after=not-a-cursor", "after"),
        ("type=ticket.exploded", "type"),
        ("wait=61", "wait"),
        ("limit=0", "limit"),
        ("subject=42", "query"),
    ] {
        let reply = app.get(&format!("/api/v1/events?{query}"), Some(&pm)).await;
        let problem = reply.assert_problem(422, "/problems/validation");
        assert!(
            problem["errors"][0]["field"]
                .as_str()
                .unwrap()
                .contains(field),
            "{query}: {}",
            reply.text
        );
    }
    let reply = app
        .send(
            app.client
                .get(app.url("/api/v1/events/stream"))
                .bearer_auth(&pm)
                .header("Last-Event-ID", "garbage"),
        )
        .await;
    reply.assert_problem(422, "/problems/validation");
    let operator = app.operator_token().await;
    app.get("/api/v1/events", Some(&operator))
        .await
        .assert_problem(403, "/problems/forbidden");
    app.get("/api/v1/events", None)
        .await
        .assert_problem(401, "/problems/unauthorized");
}

/// 16 writers file tickets while a reader follows the feed: the reader sees every event
/// exactly once, and in the end the feed holds exactly what was committed.
#[actix_web::test]
async fn the_feed_has_no_gaps_or_duplicates_under_16_concurrent_writers() {
    const WRITERS: usize = 16;
    const EACH: usize = 8;
    let app = spawn_app().await;
    let (tenant, pm) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let (_, start) = drain(&app, &pm, None, "").await;

    let reader = async {
        let mut cursor = start.clone();
        let mut seen: Vec<String> = Vec::new();
        while seen.len() < WRITERS * EACH {
            let reply = app
                .get(
                    &format!("/api/v1/events?after={cursor}&limit=7&wait=5"),
                    Some(&agent),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            let page = reply.json();
            let items = page["items"].as_array().unwrap();
            assert!(
                !items.is_empty(),
                "the long poll timed out with {} seen",
                seen.len()
            );
            seen.extend(
                items
                    .iter()
                    .map(|e| e["subject"]["id"].as_str().unwrap().to_owned()),
            );
            cursor = page["next_cursor"].as_str().unwrap().to_owned();
        }
        seen
    };
    let writers = join_all((0..WRITERS).map(|w| {
        let (app, agent) = (&app, &agent);
        async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                ids.push(id(
                    &file(app, agent, &format!("writer {w} ticket {i}")).await
                ));
            }
            ids
        }
    }));
    let (seen, written) = tokio::join!(reader, writers);
    let written: BTreeSet<String> = written.into_iter().flatten().collect();
    assert_eq!(written.len(), WRITERS * EACH);
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an event was delivered twice");
    assert_eq!(unique, written, "the reader missed events");
    let (all, _) = drain(&app, &agent, Some(&start), "").await;
    assert_eq!(all.len(), WRITERS * EACH);
}

#[actix_web::test]
async fn a_long_poll_answers_when_an_event_commits() {
    let app = spawn_app().await;
    let (tenant, pm) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let (_, start) = drain(&app, &pm, None, "").await;
    // Nothing new: `wait=0` answers at once, with the same cursor.
    let empty = app
        .get(&format!("/api/v1/events?after={start}"), Some(&agent))
        .await
        .json();
    assert_eq!(empty, json!({"items": [], "next_cursor": start}));
    let poll = format!("/api/v1/events?after={start}&wait=30");
    let waiting = app.get(&poll, Some(&agent));
    let writing = async {
        // The poll is waiting once the server has it; the ticket commits after that.
        file(&app, &agent, "待っていた").await
    };
    let (reply, ticket) = tokio::join!(waiting, writing);
    let page = reply.json();
    assert_eq!(page["items"][0]["type"], "ticket.created");
    assert_eq!(page["items"][0]["subject"]["id"], id(&ticket).as_str());
}

/// Reads SSE frames from a response until `count` events have arrived.
async fn frames(mut response: reqwest::Response, count: usize) -> Vec<HashMap<String, String>> {
    let mut buffer = String::new();
    let mut out = Vec::new();
    while out.len() < count {
        let read = tokio::time::timeout(std::time::Duration::from_secs(20), response.chunk()).await;
        let Ok(Ok(Some(chunk))) = read else {
            panic!("the stream stalled or ended after {} events", out.len());
        };
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if frame.starts_with(':') {
                continue;
            }
            let fields = frame
                .lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            out.push(fields);
        }
    }
    out
}

#[actix_web::test]
async fn the_stream_pushes_events_and_resumes_after_last_event_id() {
    let app = spawn_app().await;
    let (tenant, pm) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let (_, start) = drain(&app, &pm, None, "").await;
    let first = file(&app, &agent, "一件目").await;

    let open = |resume: String| {
        let (app, agent) = (&app, &agent);
        async move {
            let response = app
                .client
                .get(app.url("/api/v1/events/stream?type=ticket.created"))
                .bearer_auth(agent)
                .header("Last-Event-ID", resume)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                response.headers()["content-type"].to_str().unwrap(),
                "text/event-stream"
            );
            response
        }
    };
    // From `start`: the ticket filed before the stream opened, then one filed while it is
    // open.
    let response = open(start.clone()).await;
    let second = file(&app, &agent, "二件目").await;
    let got = frames(response, 2).await;
    assert_eq!(got[0]["event"], "ticket.created");
    let data: Value = serde_json::from_str(&got[0]["data"]).unwrap();
    assert_eq!(data["subject"]["id"], id(&first).as_str());
    assert_eq!(data["cursor"], got[0]["id"].as_str());
    let data: Value = serde_json::from_str(&got[1]["data"]).unwrap();
    assert_eq!(data["subject"]["id"], id(&second).as_str());

    // Resuming after the first frame gives the second again, then a third.
    let response = open(got[0]["id"].clone()).await;
    let third = file(&app, &agent, "三件目").await;
    let again = frames(response, 2).await;
    assert_eq!(again[0]["id"], got[1]["id"]);
    let data: Value = serde_json::from_str(&again[1]["data"]).unwrap();
    assert_eq!(data["subject"]["id"], id(&third).as_str());
}

#[actix_web::test]
async fn readers_see_the_events_their_roles_allow() {
    let app = spawn_app().await;
    let (tenant, pm) = desk_tenant(&app, "acme").await;
    let admin = tenant.admin_token.clone();
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    let other = app.user_token(&tenant, "req2", &["requester"]).await;
    let (_, start) = drain(&app, &admin, None, "").await;
    app.user(&tenant, "newcomer", &["agent"]).await;
    let mine = file(&app, &requester, "自分の問い合わせ").await;
    let internal = app
        .post_json(
            &format!("/api/v1/tickets/{}/comments", id(&mine)),
            Some(&agent),
            &json!({"body": "社内コメント", "internal": true}),
        )
        .await;
    assert_eq!(internal.status, StatusCode::CREATED);
    file(&app, &agent, "別件").await;

    let (seen, _) = drain(&app, &admin, Some(&start), "").await;
    assert_eq!(
        types(&seen),
        [
            "user.created",
            "ticket.created",
            "ticket.commented",
            "ticket.created"
        ]
    );
    assert_eq!(seen[0]["data"]["user"]["username"], "newcomer");
    let (seen, _) = drain(&app, &agent, Some(&start), "").await;
    assert_eq!(
        types(&seen),
        ["ticket.created", "ticket.commented", "ticket.created"]
    );
    let (seen, _) = drain(&app, &pm, Some(&start), "").await;
    assert_eq!(
        types(&seen),
        ["ticket.created", "ticket.commented", "ticket.created"]
    );
    // The requester: their own ticket only, without the internal field or comment.
    let (seen, _) = drain(&app, &requester, Some(&start), "").await;
    assert_eq!(types(&seen), ["ticket.created"]);
    assert_eq!(seen[0]["subject"]["id"], id(&mine).as_str());
    let created = &seen[0]["data"]["changes"][0]["new_value"];
    assert_eq!(created["title"], "自分の問い合わせ");
    assert!(created.get("note").is_none(), "{created}");
    assert!(!seen[0].to_string().contains("社内"));
    let (seen, _) = drain(&app, &other, Some(&start), "").await;
    assert!(seen.is_empty(), "{seen:?}");
}

#[actix_web::test]
async fn events_older_than_the_retention_are_purged() {
    let app = spawn_app().await;
    let (tenant, pm) = desk_tenant(&app, "acme").await;
    app.user(&tenant, "agent1", &["agent"]).await;
    let (published, _) = drain(&app, &pm, None, "").await;
    assert_eq!(published.len(), 2);
    app.clock.advance(chrono::TimeDelta::days(45));
    // Tokens expire as the clock moves on: sign in again.
    let fresh = |name: &'static str| app.login(Some("acme"), name, crate::helpers::USER_PASSWORD);
    let agent = fresh("agent1").await;
    file(&app, &agent, "新しい").await;

    // 89 days after the publications: all kept.
    app.clock.advance(chrono::TimeDelta::days(44));
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let pm = fresh("pm").await;
    assert_eq!(drain(&app, &pm, None, "").await.0.len(), 3);
    // Past 90 days (the default), the publications go and the ticket's event stays.
    app.clock.advance(chrono::TimeDelta::days(2));
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let pm = fresh("pm").await;
    let (left, _) = drain(&app, &pm, None, "").await;
    assert_eq!(types(&left), ["ticket.created"]);
}
