//! Libraries: definitions linted with the template field machinery, records with versions
//! and history, freshness with a moved clock, search, references from tickets, writes from
//! transitions (rolled back with the transition), and who sees what.

use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, USER_PASSWORD, spawn_app, spawn_app_with};

fn label(ja: &str, en: &str) -> Value {
    json!({"ja": ja, "en": en})
}

/// A knowledge base: a required title, a body of at most 500 characters, a category from a
/// master, an internal note.
fn kb() -> Value {
    json!({
        "name": label("ナレッジ", "Knowledge"),
        "fields": [
            {"key": "title", "type": "text", "required": true, "max_length": 200, "label": label("件名", "Title")},
            {"key": "body", "type": "long_text", "max_length": 500, "label": label("本文", "Body")},
            {"key": "category", "type": "select", "master": "kb_category", "label": label("分類", "Category")},
            {"key": "secret", "type": "text", "internal": true, "label": label("社内メモ", "Internal note")}
        ],
        "title_field": "title",
        "layout": {"sections": [{"key": "main", "label": label("本文", "Main"), "fields": ["title", "body", "category", "secret"]}]},
        "review_interval_days": 180,
        "access": {"read": ["agent", "requester"], "write": ["agent"]}
    })
}

/// A service desk template that references the knowledge base and writes into it.
fn desk() -> Value {
    json!({
        "name": label("窓口", "Desk"), "key_prefix": "HD",
        "fields": [
            {"key": "title", "type": "text", "required": true, "label": label("件名", "Title")},
            {"key": "resolution", "type": "long_text", "label": label("解決内容", "Resolution")},
            {"key": "article", "type": "library_ref", "library": "kb", "label": label("記事", "Article")}
        ],
        "stages": [{"key": "all", "label": label("全体", "All"), "states": [
            {"key": "open", "label": label("対応中", "Open"), "initial": true},
            {"key": "resolved", "label": label("解決", "Resolved")},
            {"key": "closed", "label": label("完了", "Closed"), "terminal": true}]}],
        "transitions": [
            {"key": "resolve", "label": label("解決", "Resolve"), "from": ["open"], "to": "resolved",
             "allowed": {"roles": ["agent"]}, "requires": ["resolution"],
             "actions": [{"type": "library_upsert", "library": "kb", "record_field": "article",
                          "mapping": {"title": "title", "body": "resolution", "category": "=howto"}}]},
            {"key": "reopen", "label": label("再開", "Reopen"), "from": ["resolved"], "to": "open",
             "allowed": {"roles": ["agent"]}},
            {"key": "close", "label": label("完了", "Close"), "from": ["resolved"], "to": "closed",
             "allowed": {"roles": ["agent"]},
             "actions": [{"type": "library_update", "library": "kb", "record_field": "article",
                          "mapping": {"secret": "=closed by desk"}}]}
        ]
    })
}

struct Desk {
    pm: String,
    agent: String,
}

/// A tenant with the `kb_category` master, the `kb` library and the published `desk`.
async fn desk_tenant(app: &TestApp, slug: &str) -> Desk {
    let tenant = app.tenant(slug).await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    app.create(
        "/api/v1/masters",
        &pm,
        json!({"key": "kb_category", "name": label("分類", "Category"),
            "items": [{"code": "howto", "label": label("手順", "How-to")},
                      {"code": "known_error", "label": label("既知のエラー", "Known error")}]}),
    )
    .await;
    app.create(
        "/api/v1/libraries",
        &pm,
        json!({"key": "kb", "definition": kb()}),
    )
    .await;
    app.create(
        "/api/v1/templates",
        &pm,
        json!({"key": "desk", "definition": desk()}),
    )
    .await;
    let published = app
        .post_json(
            "/api/v1/templates/desk/versions/1/publish",
            Some(&pm),
            &json!({}),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);
    Desk { pm, agent }
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

async fn record(app: &TestApp, token: &str, fields: Value) -> Value {
    app.create(
        "/api/v1/libraries/kb/records",
        token,
        json!({"fields": fields}),
    )
    .await
}

async fn history(app: &TestApp, token: &str, record: &str) -> Vec<Value> {
    let reply = app
        .get(
            &format!("/api/v1/libraries/kb/records/{record}/history"),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["items"].as_array().unwrap().clone()
}

async fn if_match(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    etag: &str,
    body: &Value,
) -> crate::helpers::Reply {
    app.send(
        app.client
            .request(method, app.url(path))
            .bearer_auth(token)
            .header("If-Match", etag)
            .json(body),
    )
    .await
}

async fn records(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/v1/libraries/kb/records{query}"), Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["items"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn definitions_are_linted_and_guarded() {
    let app = spawn_app().await;
    let d = desk_tenant(&app, "acme").await;
    // Located lint errors, the same codes as template fields.
    let mut broken = kb();
    broken["title_field"] = json!("body");
    broken["fields"][2]["master"] = json!("nope");
    broken["access"]["read"] = json!(["partner"]);
    let reply = app
        .post_json(
            "/api/v1/libraries",
            Some(&d.pm),
            &json!({"key": "kb2", "definition": broken}),
        )
        .await;
    let problem = reply.assert_problem(422, "/problems/validation");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"definition/fields/2/master"), "{fields:?}");
    assert!(fields.contains(&"definition/title_field"), "{fields:?}");
    assert!(fields.contains(&"definition/access/read/0"), "{fields:?}");
    // Keys are unique; only managers define libraries.
    app.post_json(
        "/api/v1/libraries",
        Some(&d.pm),
        &json!({"key": "kb", "definition": kb()}),
    )
    .await
    .assert_problem(409, "/problems/duplicate");
    app.post_json(
        "/api/v1/libraries",
        Some(&d.agent),
        &json!({"key": "kb3", "definition": kb()}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");
    let got = app.get("/api/v1/libraries/kb", Some(&d.agent)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("etag"), Some("\"1\""));
    assert_eq!(got.json()["definition"]["review_interval_days"], 180);
    // A field records hold values for can be neither removed nor retyped.
    record(&app, &d.agent, json!({"title": "VPN", "secret": "x"})).await;
    let mut without_secret = kb();
    without_secret["fields"].as_array_mut().unwrap().remove(3);
    without_secret["layout"]["sections"][0]["fields"] = json!(["title", "body", "category"]);
    if_match(
        &app,
        Method::PATCH,
        "/api/v1/libraries/kb",
        &d.pm,
        "\"1\"",
        &json!({"definition": without_secret}),
    )
    .await
    .assert_problem(409, "/problems/library-field-in-use");
    // A stale ETag is 412; adding a field is fine.
    let mut more = kb();
    more["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "url", "type": "text", "label": label("URL", "URL")}));
    if_match(
        &app,
        Method::PATCH,
        "/api/v1/libraries/kb",
        &d.pm,
        "\"7\"",
        &json!({"definition": more}),
    )
    .await
    .assert_problem(412, "/problems/precondition-failed");
    let updated = if_match(
        &app,
        Method::PATCH,
        "/api/v1/libraries/kb",
        &d.pm,
        "\"1\"",
        &json!({"definition": more}),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.header("etag"), Some("\"2\""));
    // A template maps `resolution` into `body`: removing `body` would break it.
    let mut without_body = more.clone();
    without_body["fields"].as_array_mut().unwrap().remove(1);
    without_body["layout"]["sections"][0]["fields"] = json!(["title", "category", "secret"]);
    let breaking = if_match(
        &app,
        Method::PATCH,
        "/api/v1/libraries/kb",
        &d.pm,
        "\"2\"",
        &json!({"definition": without_body}),
    )
    .await;
    let problem = breaking.assert_problem(409, "/problems/library-in-use");
    assert!(
        problem["detail"].as_str().unwrap().contains("desk"),
        "{problem}"
    );
    // A master a library uses is not deletable either.
    app.delete("/api/v1/masters/kb_category", Some(&d.pm))
        .await
        .assert_problem(409, "/problems/master-in-use");
    // In use by records and by a template: not deletable.
    app.delete("/api/v1/libraries/kb", Some(&d.pm))
        .await
        .assert_problem(409, "/problems/library-in-use");
    // A template cannot reference a library that does not exist.
    let mut orphan = desk();
    orphan["fields"][2]["library"] = json!("nope");
    let lint = app
        .post_json(
            "/api/v1/templates",
            Some(&d.pm),
            &json!({"key": "orphan", "definition": orphan}),
        )
        .await;
    assert_eq!(lint.status, StatusCode::CREATED, "{}", lint.text);
    let publish = app
        .post_json(
            "/api/v1/templates/orphan/versions/1/publish",
            Some(&d.pm),
            &json!({}),
        )
        .await;
    assert!(publish.text.contains("unknown_library"), "{}", publish.text);
    // An unused library is deleted.
    let mut faq = kb();
    faq["name"] = label("FAQ", "FAQ");
    app.create(
        "/api/v1/libraries",
        &d.pm,
        json!({"key": "faq", "definition": faq}),
    )
    .await;
    assert_eq!(
        app.delete("/api/v1/libraries/faq", Some(&d.pm))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v1/libraries/faq", Some(&d.pm)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn records_keep_every_version_and_go_stale() {
    let app = spawn_app().await;
    let d = desk_tenant(&app, "acme").await;
    // Validation is the template field machinery: every offending field, located.
    let bad = app
        .post_json(
            "/api/v1/libraries/kb/records",
            Some(&d.agent),
            &json!({"fields": {"body": "x", "category": "nope", "extra": 1}}),
        )
        .await;
    let problem = bad.assert_problem(422, "/problems/validation");
    let codes: Vec<(&str, &str)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert!(codes.contains(&("fields.title", "required")), "{codes:?}");
    assert!(
        codes.contains(&("fields.category", "unknown_item")),
        "{codes:?}"
    );
    assert!(
        codes.contains(&("fields.extra", "unknown_field")),
        "{codes:?}"
    );

    // Idempotency-Key: a retried create replays the first response.
    let body = json!({"fields": {"title": "VPN 接続手順", "body": "証明書を更新する", "category": "howto"}});
    let send = |key: &'static str, body: Value| {
        app.send(
            app.client
                .post(app.url("/api/v1/libraries/kb/records"))
                .bearer_auth(&d.agent)
                .header("Idempotency-Key", key)
                .json(&body),
        )
    };
    let first = send("kb-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = send("kb-1", body.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.text, first.text);
    send("kb-1", json!({"fields": {"title": "別物"}}))
        .await
        .assert_problem(422, "/problems/validation");
    let created = first.json();
    let rid = id(&created).to_owned();
    let path = format!("/api/v1/libraries/kb/records/{rid}");
    assert_eq!(created["version"], 1);
    assert_eq!(created["title"], "VPN 接続手順");
    assert_eq!(created["stale"], false);
    let got = app.get(&path, Some(&d.agent)).await;
    assert_eq!(got.header("etag"), Some("\"1\""));

    // If-Match: stale is 412, current updates and makes version 2.
    if_match(
        &app,
        Method::PATCH,
        &path,
        &d.agent,
        "\"9\"",
        &json!({"fields": {"body": "x"}}),
    )
    .await
    .assert_problem(412, "/problems/precondition-failed");
    let updated = if_match(
        &app,
        Method::PATCH,
        &path,
        &d.agent,
        "\"1\"",
        &json!({"fields": {"body": "証明書を再発行する", "category": null}}),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json()["version"], 2);
    assert!(updated.json()["fields"].get("category").is_none());
    // A PATCH that changes nothing writes no version.
    let same = app
        .patch_json(
            &path,
            Some(&d.agent),
            &json!({"fields": {"body": "証明書を再発行する"}}),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    assert_eq!(same.header("etag"), Some("\"2\""));

    // 181 days later the record is stale; a fresh one is not.
    app.clock.advance(TimeDelta::days(181));
    let agent = app.login(Some("acme"), "agent1", USER_PASSWORD).await;
    let fresh = record(&app, &agent, json!({"title": "新しい記事"})).await;
    let stale = records(&app, &agent, "?stale=true").await;
    let stale_ids: Vec<&str> = stale.iter().map(id).collect();
    assert_eq!(
        stale_ids,
        [rid.as_str()],
        "one record, not two from the retried create"
    );
    assert_eq!(stale[0]["stale"], true);
    assert_eq!(records(&app, &agent, "").await.len(), 2);

    // Confirming it as still valid is a recorded review.
    let reviewed = if_match(
        &app,
        Method::POST,
        &format!("{path}/review"),
        &agent,
        "\"2\"",
        &json!({"note": "手順を確認、変更なし"}),
    )
    .await;
    assert_eq!(reviewed.status, StatusCode::OK, "{}", reviewed.text);
    assert_eq!(reviewed.json()["stale"], false);
    assert_eq!(reviewed.json()["version"], 3);
    assert!(records(&app, &agent, "?stale=true").await.is_empty());

    // Another 181 days on, both are stale; the stale list pages most overdue first.
    app.clock.advance(TimeDelta::days(181));
    let agent = app.login(Some("acme"), "agent1", USER_PASSWORD).await;
    let first = app
        .get(
            "/api/v1/libraries/kb/records?stale=true&limit=1",
            Some(&agent),
        )
        .await
        .json();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/api/v1/libraries/kb/records?stale=true&limit=1&cursor={cursor}"),
            Some(&agent),
        )
        .await
        .json();
    let due = |page: &Value| {
        page["items"][0]["review_due_at"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(due(&first) <= due(&second), "{first} {second}");
    let mut paged = vec![
        id(&first["items"][0]).to_owned(),
        id(&second["items"][0]).to_owned(),
    ];
    paged.sort();
    let mut expected = vec![rid.clone(), id(&fresh).to_owned()];
    expected.sort();
    assert_eq!(paged, expected);
    assert!(second["next_cursor"].is_null());

    // Soft delete: gone from reads and lists, kept in history.
    let deleted = app.delete(&path, Some(&agent)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_eq!(
        app.get(&path, Some(&agent)).await.status,
        StatusCode::NOT_FOUND
    );
    let left: Vec<Value> = records(&app, &agent, "").await;
    assert_eq!(left.iter().map(id).collect::<Vec<_>>(), [id(&fresh)]);
    let versions = history(&app, &agent, &rid).await;
    let kinds: Vec<&str> = versions
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "updated", "reviewed", "deleted"]);
    assert_eq!(versions[0]["source"]["kind"], "user");
    assert_eq!(versions[0]["actor"]["name"], "agent1");
    assert_eq!(versions[1]["changed"], json!(["body", "category"]));
    assert_eq!(versions[2]["note"], "手順を確認、変更なし");
    assert_eq!(versions[3]["fields"]["body"], "証明書を再発行する");
}

#[actix_web::test]
async fn records_are_searched_and_filtered_like_tickets() {
    records_are_searched_and_filtered_on(spawn_app().await).await;
}

/// The same with every field and word condition probed per record (SQLite's plan for
/// conditions that many records match).
#[actix_web::test]
async fn records_are_searched_and_filtered_when_probed() {
    records_are_searched_and_filtered_on(spawn_app_with(|c| c.list_probe_threshold = 1).await)
        .await;
}

async fn records_are_searched_and_filtered_on(app: TestApp) {
    let d = desk_tenant(&app, "acme").await;
    for (title, category) in [
        ("メールサーバ障害の対処", "known_error"),
        ("VPN 障害 workaround", "known_error"),
        ("申請書の書き方", "howto"),
    ] {
        record(
            &app,
            &d.agent,
            json!({"title": title, "category": category, "secret": "社外秘 hiddenword"}),
        )
        .await;
    }
    let titles = |items: Vec<Value>| -> Vec<String> {
        items
            .iter()
            .map(|r| r["title"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        titles(records(&app, &d.agent, "?q=%E9%9A%9C%E5%AE%B3&sort=created").await),
        ["メールサーバ障害の対処", "VPN 障害 workaround"]
    );
    assert_eq!(
        titles(records(&app, &d.agent, "?q=%E7%94%B3%E8%AB%8B").await),
        ["申請書の書き方"]
    );
    assert_eq!(
        titles(records(&app, &d.agent, "?field.category=howto").await),
        ["申請書の書き方"]
    );
    assert_eq!(
        records(&app, &d.agent, "?q=hiddenword").await.len(),
        3,
        "staff find internal words"
    );
    // Cursor pagination is stable.
    let first = app
        .get(
            "/api/v1/libraries/kb/records?limit=2&sort=created",
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/api/v1/libraries/kb/records?limit=2&sort=created&cursor={cursor}"),
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(
        titles(second["items"].as_array().unwrap().clone()),
        ["申請書の書き方"]
    );
    assert!(second["next_cursor"].is_null());
    for bad in ["?sort=title", "?sort=due"] {
        app.get(
            &format!("/api/v1/libraries/kb/records{bad}"),
            Some(&d.agent),
        )
        .await
        .assert_problem(422, "/problems/validation");
    }
    assert_eq!(
        titles(records(&app, &d.agent, "?q=hiddenword&field.category=known_error").await),
        ["VPN 障害 workaround", "メールサーバ障害の対処"]
    );
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
    ticket: &str,
    transition: &str,
    fields: Value,
    dry_run: bool,
) -> crate::helpers::Reply {
    app.post_json(
        &format!("/api/v1/tickets/{ticket}/transitions?dry_run={dry_run}"),
        Some(token),
        &json!({"transition": transition, "fields": fields}),
    )
    .await
}

#[actix_web::test]
async fn tickets_reference_records_and_transitions_write_them() {
    let app = spawn_app().await;
    let d = desk_tenant(&app, "acme").await;
    let other = desk_tenant(&app, "other").await;
    let foreign = record(&app, &other.agent, json!({"title": "他社の記事"})).await;

    // A reference must be a live record of the field's library in this tenant.
    for bad in [id(&foreign), "0193a0a0-0000-7000-8000-000000000000"] {
        let reply = app
            .post_json(
                "/api/v1/tickets",
                Some(&d.agent),
                &json!({"template": "desk", "fields": {"title": "t", "article": bad}}),
            )
            .await;
        let problem = reply.assert_problem(422, "/problems/validation");
        assert_eq!(problem["errors"][0]["field"], "fields.article");
        assert_eq!(problem["errors"][0]["code"], "unknown_reference");
    }
    let known = record(&app, &d.agent, json!({"title": "既知の記事"})).await;
    let referencing = file(
        &app,
        &d.agent,
        json!({"title": "参照あり", "article": id(&known)}),
    )
    .await;
    let expanded = app
        .get(
            &format!("/api/v1/tickets/{}?expand=references", id(&referencing)),
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(expanded["references"]["article"]["title"], "既知の記事");
    assert_eq!(expanded["references"]["article"]["library"], "kb");
    let listed = app
        .get(
            &format!("/api/v1/libraries/kb/records/{}/tickets", id(&known)),
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(listed["items"][0]["key"], "HD-1");
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    file(&app, &d.agent, json!({"title": "参照なし"})).await;
    let filtered = app
        .get(
            &format!("/api/v1/tickets?library_record={}", id(&known)),
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["items"][0]["key"], "HD-1");
    let csv = app
        .get(
            &format!("/api/v1/tickets/export?library_record={}", id(&known)),
            Some(&d.agent),
        )
        .await
        .text;
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("HD-1") && !csv.contains("HD-2"), "{csv}");

    // A dry run shows the planned record and writes nothing.
    let ticket = file(&app, &d.agent, json!({"title": "プリンタが印刷しない"})).await;
    let tid = id(&ticket).to_owned();
    let dry = fire(
        &app,
        &d.agent,
        &tid,
        "resolve",
        json!({"resolution": "ドライバを再インストール"}),
        true,
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    let planned = &dry.json()["library_changes"][0];
    assert_eq!(planned["operation"], "created");
    assert_eq!(planned["fields"]["body"], "ドライバを再インストール");
    assert_eq!(records(&app, &d.agent, "").await.len(), 1);

    // A library write that fails validation rolls the whole transition back and names the
    // library and the field.
    let too_long = "長".repeat(501);
    let failed = fire(
        &app,
        &d.agent,
        &tid,
        "resolve",
        json!({"resolution": too_long}),
        false,
    )
    .await;
    let problem = failed.assert_problem(422, "/problems/validation");
    assert_eq!(
        problem["errors"][0]["field"],
        "library_upsert.kb.fields.body"
    );
    let unchanged = app
        .get(&format!("/api/v1/tickets/{tid}"), Some(&d.agent))
        .await
        .json();
    assert_eq!(unchanged["version"], 1);
    assert_eq!(unchanged["state"], "open");
    assert!(unchanged["fields"].get("resolution").is_none());
    assert_eq!(records(&app, &d.agent, "").await.len(), 1);

    // The real transition creates the article and writes its id back into the ticket.
    let resolved = fire(
        &app,
        &d.agent,
        &tid,
        "resolve",
        json!({"resolution": "ドライバを再インストール"}),
        false,
    )
    .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.text);
    let change = &resolved.json()["library_changes"][0];
    assert_eq!(change["operation"], "created");
    assert_eq!(change["record_field"], "article");
    let article = change["record_id"].as_str().unwrap().to_owned();
    assert_eq!(resolved.json()["ticket"]["fields"]["article"], article);
    let versions = history(&app, &d.agent, &article).await;
    assert_eq!(versions[0]["source"]["kind"], "ticket");
    assert_eq!(versions[0]["source"]["ticket_key"], "HD-3");
    assert_eq!(versions[0]["source"]["transition"], "resolve");
    assert_eq!(versions[0]["source"]["ticket_id"], tid.as_str());
    let created = app
        .get(
            &format!("/api/v1/libraries/kb/records/{article}"),
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(created["title"], "プリンタが印刷しない");
    assert_eq!(created["fields"]["category"], "howto");
    assert_eq!(created["origin"]["ticket_id"], tid.as_str());

    // Reopened and resolved again, the same article is updated, not duplicated — also when
    // someone cleared the link meanwhile (the article is this ticket's; it is linked again).
    for clear in [false, true] {
        let reopened = fire(&app, &d.agent, &tid, "reopen", json!({}), false).await;
        assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.text);
        if clear {
            let cleared = app
                .patch_json(
                    &format!("/api/v1/tickets/{tid}"),
                    Some(&d.agent),
                    &json!({"fields": {"article": null}}),
                )
                .await;
            assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
        }
        let again = fire(
            &app,
            &d.agent,
            &tid,
            "resolve",
            json!({"resolution": "ドライバ更新で解決"}),
            false,
        )
        .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);
        let change = &again.json()["library_changes"][0];
        assert_eq!(change["operation"], "updated");
        assert_eq!(change["record_id"], article.as_str());
        assert_eq!(
            again.json()["ticket"]["fields"]["article"],
            article.as_str()
        );
    }
    assert_eq!(records(&app, &d.agent, "").await.len(), 2);

    // library_update on a deleted record: 409 naming the library, nothing changes.
    let current = app
        .get(&format!("/api/v1/tickets/{tid}"), Some(&d.agent))
        .await
        .json();
    app.delete(
        &format!("/api/v1/libraries/kb/records/{article}"),
        Some(&d.agent),
    )
    .await;
    let conflict = fire(&app, &d.agent, &tid, "close", json!({}), false).await;
    let problem = conflict.assert_problem(409, "/problems/library-write-failed");
    assert!(
        problem["detail"].as_str().unwrap().contains("'kb'"),
        "{problem}"
    );
    let after = app
        .get(&format!("/api/v1/tickets/{tid}"), Some(&d.agent))
        .await
        .json();
    assert_eq!(after["version"], current["version"]);
    assert_eq!(after["state"], "resolved");
    assert_eq!(history(&app, &d.agent, &article).await.len(), 3);
    // Tickets still referencing the deleted article are found.
    let still = app
        .get(
            &format!("/api/v1/tickets?library_record={article}"),
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(still["items"][0]["id"], tid.as_str());

    // The event log has every write of the article (one per version: the second re-resolve
    // changed nothing), the workflow's with its ticket and transition, in order; the other
    // tenant's record is not in this feed.
    let feed = app
        .get(
            &format!("/api/v1/events?limit=500&subject={article}"),
            Some(&d.agent),
        )
        .await
        .json();
    let events = feed["items"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["record.created", "record.updated", "record.deleted"]
    );
    assert_eq!(events[0]["library"], "kb");
    assert_eq!(events[0]["ticket_id"], tid.as_str());
    assert_eq!(events[0]["data"]["source"]["ticket_key"], "HD-3");
    assert_eq!(events[0]["data"]["source"]["transition"], "resolve");
    assert_eq!(events[0]["data"]["record"]["fields"]["category"], "howto");
    assert_eq!(events[2]["data"]["source"], Value::Null);
    assert_eq!(events[2]["data"]["record"]["deleted"], true);
    let foreign_events = app
        .get(
            &format!("/api/v1/events?subject={}", id(&foreign)),
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(foreign_events["items"], json!([]));
}

#[actix_web::test]
async fn partners_read_only_granted_libraries_and_never_internal_fields() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    let org = |name: &'static str| {
        app.create(
            "/api/v1/organizations",
            admin,
            json!({"name": name, "kind": "partner"}),
        )
    };
    let granted = org("Partner A").await;
    let other = org("Partner B").await;
    for (username, organization) in [("pa", &granted), ("pb", &other)] {
        app.create(
            "/api/v1/users",
            admin,
            json!({"username": username, "password": USER_PASSWORD, "display_name": username,
                "roles": ["partner"], "organization_id": organization["id"]}),
        )
        .await;
    }
    let pa = app.login(Some("acme"), "pa", USER_PASSWORD).await;
    let pb = app.login(Some("acme"), "pb", USER_PASSWORD).await;
    let mut manual = json!({
        "name": label("委託先マニュアル", "Partner manual"),
        "fields": [
            {"key": "title", "type": "text", "required": true, "label": label("件名", "Title")},
            {"key": "steps", "type": "long_text", "label": label("手順", "Steps")},
            {"key": "cost", "type": "text", "internal": true, "label": label("原価", "Cost")}
        ],
        "title_field": "title",
        "layout": {"sections": [{"key": "main", "label": label("本文", "Main"), "fields": ["title", "steps", "cost"]}]},
        "access": {"read": ["agent"], "write": ["agent"], "partner_organizations": [granted["id"]]}
    });
    app.create(
        "/api/v1/libraries",
        &pm,
        json!({"key": "manual", "definition": manual.clone()}),
    )
    .await;
    manual["access"]["partner_organizations"] = json!([]);
    app.create(
        "/api/v1/libraries",
        &pm,
        json!({"key": "internal_only", "definition": manual}),
    )
    .await;
    let rec = app
        .create(
            "/api/v1/libraries/manual/records",
            &agent,
            json!({"fields": {"title": "検品手順", "steps": "箱を開ける boxword", "cost": "秘密の原価 costword"}}),
        )
        .await;
    let rpath = format!("/api/v1/libraries/manual/records/{}", id(&rec));

    // The granted partner sees the library and its records, without internal fields.
    let libraries = app.get("/api/v1/libraries", Some(&pa)).await.json();
    let keys: Vec<&str> = libraries["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["manual"]);
    let definition = &libraries["items"][0]["definition"];
    assert!(definition.get("access").is_none());
    assert!(!definition.to_string().contains("cost"), "{definition}");
    let seen = app.get(&rpath, Some(&pa)).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(
        seen.json()["fields"],
        json!({"title": "検品手順", "steps": "箱を開ける boxword"})
    );
    let search = app
        .get("/api/v1/libraries/manual/records?q=costword", Some(&pa))
        .await
        .json();
    assert!(search["items"].as_array().unwrap().is_empty());
    let filtered = app
        .get("/api/v1/libraries/manual/records?field.cost=x", Some(&pa))
        .await
        .json();
    assert!(filtered["items"].as_array().unwrap().is_empty());
    let versions = app.get(&format!("{rpath}/history"), Some(&pa)).await.json();
    assert!(!versions.to_string().contains("costword"), "{versions}");
    // Partners never write.
    app.patch_json(&rpath, Some(&pa), &json!({"fields": {"steps": "x"}}))
        .await
        .assert_problem(403, "/problems/forbidden");

    // Another partner, a requester and the ungranted library: 404 like a missing one.
    for (token, path) in [
        (&pb, "/api/v1/libraries/manual".to_owned()),
        (&pb, rpath.clone()),
        (&pa, "/api/v1/libraries/internal_only".to_owned()),
        (&requester, rpath.clone()),
    ] {
        app.get(&path, Some(token))
            .await
            .assert_problem(404, "/problems/not-found");
    }
    assert!(
        app.get("/api/v1/libraries", Some(&pb)).await.json()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Staff see the internal field.
    let staff = app.get(&rpath, Some(&agent)).await.json();
    assert_eq!(staff["fields"]["cost"], "秘密の原価 costword");

    // Making a field internal takes effect on stored records at once: search and filters
    // stop matching it for partners.
    assert_eq!(boxword_hits(&app, &pa).await, 1);
    let mut current =
        app.get("/api/v1/libraries/manual", Some(&pm)).await.json()["definition"].clone();
    current["fields"][1]["internal"] = json!(true);
    let changed = app
        .patch_json(
            "/api/v1/libraries/manual",
            Some(&pm),
            &json!({"definition": current}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(boxword_hits(&app, &pa).await, 0);
    assert_eq!(boxword_hits(&app, &agent).await, 1);
    let seen = app.get(&rpath, Some(&pa)).await.json();
    assert_eq!(seen["fields"], json!({"title": "検品手順"}));
}

async fn boxword_hits(app: &TestApp, token: &str) -> usize {
    app.get("/api/v1/libraries/manual/records?q=boxword", Some(token))
        .await
        .json()["items"]
        .as_array()
        .unwrap()
        .len()
}
