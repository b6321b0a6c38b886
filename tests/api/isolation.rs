//! Tenant isolation: every tenant-scoped endpoint, called by tenant B on tenant A's objects,
//! answers exactly like a missing object (404, same body).
//!
//! To extend: add the new endpoints to `endpoints()` with `{kind}` placeholders for A's
//! objects, and create one such object in `objects_of_a()`.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// (method, path template, body) for every endpoint that names a tenant object.
fn endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/v1/users/{user}", None),
        (Method::GET, "/api/v1/announcements/{announcement}", None),
        (
            Method::PATCH,
            "/api/v1/users/{user}",
            Some(json!({"display_name": "x"})),
        ),
        (Method::DELETE, "/api/v1/users/{user}", None),
        (Method::POST, "/api/v1/users/{user}/unlock", Some(json!({}))),
        (Method::GET, "/api/v1/groups/{group}", None),
        (Method::GET, "/api/v1/groups/{group}/members", None),
        (
            Method::POST,
            "/api/v1/groups/{group}/members",
            Some(json!({"user_id": "{own_user}"})),
        ),
        (
            Method::DELETE,
            "/api/v1/groups/{group}/members/{user}",
            None,
        ),
        (Method::GET, "/api/v1/organizations/{organization}", None),
        (
            Method::PATCH,
            "/api/v1/organizations/{organization}",
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, "/api/v1/api-keys/{api_key}", None),
        (Method::GET, "/api/v1/masters/{master}", None),
        (
            Method::PATCH,
            "/api/v1/masters/{master}",
            Some(json!({"description": "x"})),
        ),
        (Method::DELETE, "/api/v1/masters/{master}", None),
        (Method::GET, "/api/v1/masters/{master}/items", None),
        (Method::GET, "/api/v1/masters/{master}/items/export", None),
        (Method::GET, "/api/v1/imports/{import}", None),
        (Method::GET, "/api/v1/imports/{import}/rows", None),
        (
            Method::GET,
            "/api/v1/imports/{import}/rows?format=csv",
            None,
        ),
        (
            Method::POST,
            "/api/v1/masters/{master}/items",
            Some(json!({"code": "new", "label": {"ja": "x", "en": "x"}})),
        ),
        (
            Method::PATCH,
            "/api/v1/masters/{master}/items/{item}",
            Some(json!({"active": false})),
        ),
        (Method::GET, "/api/v1/templates/{template}", None),
        (
            Method::PATCH,
            "/api/v1/templates/{template}",
            Some(json!({"archived": true})),
        ),
        (Method::DELETE, "/api/v1/templates/{template}", None),
        (Method::GET, "/api/v1/templates/{template}/versions", None),
        (
            Method::POST,
            "/api/v1/templates/{template}/versions",
            Some(json!({})),
        ),
        (Method::GET, "/api/v1/templates/{template}/versions/1", None),
        (
            Method::PUT,
            "/api/v1/templates/{template}/versions/1",
            Some(json!({"definition": crate::templates::incident()})),
        ),
        (
            Method::POST,
            "/api/v1/templates/{template}/versions/1/publish",
            Some(json!({})),
        ),
        (Method::GET, "/api/v1/templates/{template}/states", None),
        (
            Method::GET,
            "/api/v1/templates/{template}/versions/1/states",
            None,
        ),
        (
            Method::POST,
            "/api/v1/templates/{template}/versions/1/states",
            Some(json!({"key": "x", "stage": "open"})),
        ),
        (
            Method::GET,
            "/api/v1/templates/{template}/versions/1/states/new",
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/templates/{template}/versions/1/states/new",
            Some(json!({})),
        ),
        (
            Method::DELETE,
            "/api/v1/templates/{template}/versions/1/states/done",
            None,
        ),
        (
            Method::GET,
            "/api/v1/templates/{template}/versions/1/transitions",
            None,
        ),
        (
            Method::POST,
            "/api/v1/templates/{template}/versions/1/transitions",
            Some(json!({"key": "x"})),
        ),
        (
            Method::GET,
            "/api/v1/templates/{template}/versions/1/transitions/start",
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/templates/{template}/versions/1/transitions/start",
            Some(json!({})),
        ),
        (
            Method::DELETE,
            "/api/v1/templates/{template}/versions/1/transitions/start",
            None,
        ),
        (
            Method::GET,
            "/api/v1/templates/{template}/versions/1/fields",
            None,
        ),
        (
            Method::POST,
            "/api/v1/templates/{template}/versions/1/fields",
            Some(json!({"key": "x", "type": "text"})),
        ),
        (
            Method::GET,
            "/api/v1/templates/{template}/versions/1/fields/title",
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/templates/{template}/versions/1/fields/title",
            Some(json!({})),
        ),
        (
            Method::DELETE,
            "/api/v1/templates/{template}/versions/1/fields/impact",
            None,
        ),
        (
            Method::GET,
            "/api/v1/templates/{template}/diagram?format=dot&version=1",
            None,
        ),
        (Method::GET, "/api/v1/templates/{template}/export", None),
        (Method::GET, "/api/v1/tickets/{ticket}", None),
        (
            Method::PATCH,
            "/api/v1/tickets/{ticket}",
            Some(json!({"fields": {"title": "x"}})),
        ),
        (Method::GET, "/api/v1/tickets/{ticket}/transitions", None),
        (
            Method::GET,
            "/api/v1/tickets/{ticket}/transitions?explain=true",
            None,
        ),
        (
            Method::POST,
            "/api/v1/tickets/{ticket}/transitions",
            Some(json!({"transition": "start"})),
        ),
        (
            Method::POST,
            "/api/v1/tickets/{ticket}/transitions?dry_run=true",
            Some(json!({"transition": "start"})),
        ),
        (Method::GET, "/api/v1/tickets/{ticket}/history", None),
        (Method::GET, "/api/v1/tickets/{ticket}/comments", None),
        (
            Method::POST,
            "/api/v1/tickets/{ticket}/comments",
            Some(json!({"body": "x"})),
        ),
        (Method::GET, "/api/v1/tickets/{ticket}/watchers", None),
        (
            Method::POST,
            "/api/v1/tickets/{ticket}/watchers",
            Some(json!({"user": "{own_user}"})),
        ),
        (
            Method::DELETE,
            "/api/v1/tickets/{ticket}/watchers/{user}",
            None,
        ),
        (Method::GET, "/api/v1/tickets/{ticket}/links", None),
        (
            Method::POST,
            "/api/v1/tickets/{ticket}/links",
            Some(json!({"kind": "related", "ticket": "{ticket}"})),
        ),
        (
            Method::DELETE,
            "/api/v1/tickets/{ticket}/links/{link}",
            None,
        ),
        (Method::GET, "/api/v1/tickets/{ticket}/attachments", None),
        (
            Method::GET,
            "/api/v1/attachments/{attachment}/content",
            None,
        ),
        (Method::GET, "/api/v1/libraries/{library}", None),
        (
            Method::PATCH,
            "/api/v1/libraries/{library}",
            Some(json!({"definition": a_library()})),
        ),
        (Method::DELETE, "/api/v1/libraries/{library}", None),
        (Method::GET, "/api/v1/libraries/{library}/records", None),
        (
            Method::GET,
            "/api/v1/libraries/{library}/records/export?format=jsonl",
            None,
        ),
        (
            Method::GET,
            "/api/v1/libraries/{library}/records?q=secret&stale=true",
            None,
        ),
        (
            Method::POST,
            "/api/v1/libraries/{library}/records",
            Some(json!({"fields": {"title": "x"}})),
        ),
        (
            Method::GET,
            "/api/v1/libraries/{library}/records/{record}",
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/libraries/{library}/records/{record}",
            Some(json!({"fields": {"title": "x"}})),
        ),
        (
            Method::DELETE,
            "/api/v1/libraries/{library}/records/{record}",
            None,
        ),
        (
            Method::POST,
            "/api/v1/libraries/{library}/records/{record}/review",
            Some(json!({})),
        ),
        (
            Method::GET,
            "/api/v1/libraries/{library}/records/{record}/history",
            None,
        ),
        (
            Method::GET,
            "/api/v1/libraries/{library}/records/{record}/tickets",
            None,
        ),
        // A's record under B's own library of the same shape.
        (
            Method::GET,
            "/api/v1/libraries/{own_library}/records/{record}",
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/libraries/{own_library}/records/{record}",
            Some(json!({"fields": {"title": "x"}})),
        ),
        (
            Method::DELETE,
            "/api/v1/libraries/{own_library}/records/{record}",
            None,
        ),
        (
            Method::POST,
            "/api/v1/libraries/{own_library}/records/{record}/review",
            Some(json!({})),
        ),
        (
            Method::GET,
            "/api/v1/libraries/{own_library}/records/{record}/history",
            None,
        ),
        (
            Method::GET,
            "/api/v1/libraries/{own_library}/records/{record}/tickets",
            None,
        ),
        (Method::GET, "/api/v1/webhooks/{webhook}", None),
        (
            Method::PATCH,
            "/api/v1/webhooks/{webhook}",
            Some(json!({"enabled": false})),
        ),
        (Method::DELETE, "/api/v1/webhooks/{webhook}", None),
        (Method::POST, "/api/v1/webhooks/{webhook}/secret", None),
        (
            Method::POST,
            "/api/v1/webhooks/{webhook}/rotate-secret",
            None,
        ),
        (Method::POST, "/api/v1/webhooks/{webhook}/ping", None),
        (Method::GET, "/api/v1/webhooks/{webhook}/deliveries", None),
        (
            Method::GET,
            "/api/v1/webhooks/{webhook}/deliveries/{delivery}",
            None,
        ),
        (
            Method::POST,
            "/api/v1/webhooks/{webhook}/redeliveries",
            Some(json!({"delivery_ids": ["{delivery}"]})),
        ),
        (
            Method::POST,
            "/api/v1/webhooks/{webhook}/deliveries/{delivery}/redeliver",
            None,
        ),
        (Method::GET, "/api/v1/mail-channels/{mail_channel}", None),
        (
            Method::PATCH,
            "/api/v1/mail-channels/{mail_channel}",
            Some(json!({"enabled": false})),
        ),
        (Method::DELETE, "/api/v1/mail-channels/{mail_channel}", None),
        (
            Method::GET,
            "/api/v1/mail-channels/{mail_channel}/messages",
            None,
        ),
        (
            Method::POST,
            "/api/v1/mail-channels/{mail_channel}/messages",
            Some(json!({})),
        ),
        (Method::GET, "/api/v1/mail-messages/{mail_message}", None),
        (
            Method::GET,
            "/api/v1/notification-rules/{notification_rule}",
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/notification-rules/{notification_rule}",
            Some(json!({"enabled": false})),
        ),
        (
            Method::DELETE,
            "/api/v1/notification-rules/{notification_rule}",
            None,
        ),
        (Method::GET, "/api/v1/tickets/{ticket}/timeline", None),
        (Method::GET, "/api/v1/calendars/{calendar}", None),
        (
            Method::PATCH,
            "/api/v1/calendars/{calendar}",
            Some(json!({"japanese_holidays": false})),
        ),
        (Method::DELETE, "/api/v1/calendars/{calendar}", None),
        (Method::GET, "/api/v1/sla-policies/{sla_policy}", None),
        (
            Method::PATCH,
            "/api/v1/sla-policies/{sla_policy}",
            Some(json!({"enabled": false})),
        ),
        (Method::DELETE, "/api/v1/sla-policies/{sla_policy}", None),
        (Method::GET, "/api/v1/stats/templates/{desk}", None),
        (Method::GET, "/api/v1/templates/{desk}/migrations", None),
        (
            Method::GET,
            "/api/v1/templates/{desk}/migrations/{migration}",
            None,
        ),
        (
            Method::POST,
            "/api/v1/templates/{desk}/migrations?dry_run=true",
            Some(json!({"from_version": 1})),
        ),
    ]
}

/// The library definition both tenants use (A's `a_kb`, B's `b_kb`).
fn a_library() -> Value {
    json!({
        "name": {"ja": "ナレッジ", "en": "Knowledge"},
        "fields": [{"key": "title", "type": "text", "required": true, "label": {"ja": "件名", "en": "Title"}}],
        "title_field": "title",
        "review_interval_days": 1
    })
}

/// One object of each kind in tenant A, by placeholder name.
async fn objects_of_a(app: &TestApp) -> HashMap<&'static str, String> {
    let a = app.tenant("tenant-a").await;
    let admin = &a.admin_token;
    let user = app.user(&a, "alice", &["agent"]).await;
    let group = app
        .create("/api/v1/groups", admin, json!({"name": "A team"}))
        .await;
    let gid = group["id"].as_str().unwrap().to_owned();
    app.create(
        &format!("/api/v1/groups/{gid}/members"),
        admin,
        json!({"user_id": user}),
    )
    .await;
    let org = app
        .create(
            "/api/v1/organizations",
            admin,
            json!({"name": "A org", "kind": "internal"}),
        )
        .await;
    let key = app
        .create(
            "/api/v1/api-keys",
            admin,
            json!({"name": "A key", "roles": ["tenant_admin"]}),
        )
        .await;
    let master = app
        .create(
            "/api/v1/masters",
            admin,
            json!({"key": "a_only_master", "name": {"ja": "A", "en": "A"},
                "items": [{"code": "a_item", "label": {"ja": "A", "en": "A"}}]}),
        )
        .await;
    let template = app
        .create(
            "/api/v1/templates",
            admin,
            json!({"key": "a_only_template", "definition": crate::templates::incident()}),
        )
        .await;
    let agent = app
        .login(Some("tenant-a"), "alice", crate::helpers::USER_PASSWORD)
        .await;
    let (ticket, link, attachment) = a_ticket(app, admin, &agent).await;
    app.create(
        "/api/v1/libraries",
        admin,
        json!({"key": "a_kb", "definition": a_library()}),
    )
    .await;
    let record = app
        .create(
            "/api/v1/libraries/a_kb/records",
            admin,
            json!({"fields": {"title": "A secret article"}}),
        )
        .await;
    let webhook = app
        .create(
            "/api/v1/webhooks",
            admin,
            json!({"url": "https://hooks.example.com/tenant-a"}),
        )
        .await;
    let wid = webhook["id"].as_str().unwrap().to_owned();
    let ping = app
        .post_json(
            &format!("/api/v1/webhooks/{wid}/ping"),
            Some(admin),
            &json!({}),
        )
        .await;
    assert_eq!(ping.status, reqwest::StatusCode::ACCEPTED, "{}", ping.text);
    let (channel, message) = a_mail(app, admin).await;
    let rule = app
        .create(
            "/api/v1/notification-rules",
            admin,
            json!({"template": "a_desk", "event": "created", "addresses": ["ops@tenant-a.example"]}),
        )
        .await;
    let calendar = app
        .create(
            "/api/v1/calendars",
            admin,
            json!({"name": "tenant-a hours"}),
        )
        .await;
    let policy = app
        .create(
            "/api/v1/sla-policies",
            admin,
            json!({"template": "a_desk", "name": "a", "calendar_id": calendar["id"],
                "resolution_minutes": 60}),
        )
        .await;
    // A second version of the desk, and a migration run to it.
    let draft = app
        .post_json("/api/v1/templates/a_desk/versions", Some(admin), &json!({}))
        .await;
    assert_eq!(draft.status, reqwest::StatusCode::CREATED, "{}", draft.text);
    let published = app
        .post_json(
            "/api/v1/templates/a_desk/versions/2/publish",
            Some(admin),
            &json!({}),
        )
        .await;
    assert_eq!(
        published.status,
        reqwest::StatusCode::OK,
        "{}",
        published.text
    );
    let migration = app
        .post_json(
            "/api/v1/templates/a_desk/migrations",
            Some(admin),
            &json!({"from_version": 1}),
        )
        .await;
    assert_eq!(
        migration.status,
        reqwest::StatusCode::OK,
        "{}",
        migration.text
    );
    let operator = app.operator_token().await;
    let start = app.clock_now() + chrono::TimeDelta::days(40);
    let announcement = app
        .create(
            "/api/v1/announcements",
            &operator,
            json!({"title": "A only", "body": "b", "tenants": [a.id],
                   "starts_at": start, "ends_at": start + chrono::TimeDelta::hours(1)}),
        )
        .await;
    let import = app
        .post_json(
            "/api/v1/imports",
            Some(admin),
            &json!({"target": "master_items", "master": master["key"], "mode": "upsert",
                    "content": "code,label_ja,label_en\na_item2,二,Two\n"}),
        )
        .await;
    assert_eq!(
        import.status,
        reqwest::StatusCode::CREATED,
        "{}",
        import.text
    );
    HashMap::from([
        ("import", import.json()["id"].as_str().unwrap().to_owned()),
        (
            "announcement",
            announcement["id"].as_str().unwrap().to_owned(),
        ),
        ("desk", "a_desk".to_owned()),
        (
            "migration",
            migration.json()["id"].as_str().unwrap().to_owned(),
        ),
        ("calendar", calendar["id"].as_str().unwrap().to_owned()),
        ("sla_policy", policy["id"].as_str().unwrap().to_owned()),
        ("notification_rule", rule["id"].as_str().unwrap().to_owned()),
        ("mail_channel", channel),
        ("mail_message", message),
        ("webhook", wid),
        ("delivery", ping.json()["id"].as_str().unwrap().to_owned()),
        ("library", "a_kb".to_owned()),
        ("record", record["id"].as_str().unwrap().to_owned()),
        ("ticket", ticket),
        ("link", link),
        ("attachment", attachment),
        (
            "template",
            template["template"]["key"].as_str().unwrap().to_owned(),
        ),
        ("master", master["key"].as_str().unwrap().to_owned()),
        ("item", "a_item".to_owned()),
        ("user", user),
        ("group", gid),
        ("organization", org["id"].as_str().unwrap().to_owned()),
        ("api_key", key["id"].as_str().unwrap().to_owned()),
    ])
}

/// A mail channel of A and a message it took in (kept pending: no scanner is configured).
async fn a_mail(app: &TestApp, admin: &str) -> (String, String) {
    let channel = app
        .create(
            "/api/v1/mail-channels",
            admin,
            json!({"address": "desk@tenant-a.example", "template": "a_desk", "body_field": "resolution"}),
        )
        .await;
    let id = channel["id"].as_str().unwrap().to_owned();
    let posted = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/mail-channels/{id}/messages")))
                .bearer_auth(admin)
                .header("content-type", "message/rfc822")
                .body("From: a@example.com\r\nSubject: A secret mail\r\n\r\nbody\r\n"),
        )
        .await;
    assert_eq!(
        posted.status,
        reqwest::StatusCode::ACCEPTED,
        "{}",
        posted.text
    );
    (id, posted.json()["id"].as_str().unwrap().to_owned())
}

/// A published template in A with a ticket that has a comment, a link and an attachment.
async fn a_ticket(app: &TestApp, admin: &str, agent: &str) -> (String, String, String) {
    app.create(
        "/api/v1/masters",
        admin,
        json!({"key": "impact", "name": {"ja": "影響度", "en": "Impact"},
            "items": [{"code": "high", "label": {"ja": "高", "en": "High"}}]}),
    )
    .await;
    app.create(
        "/api/v1/templates",
        admin,
        json!({"key": "a_desk", "definition": crate::templates::incident()}),
    )
    .await;
    let published = app
        .post_json(
            "/api/v1/templates/a_desk/versions/1/publish",
            Some(admin),
            &json!({}),
        )
        .await;
    assert_eq!(
        published.status,
        reqwest::StatusCode::OK,
        "{}",
        published.text
    );
    let body = json!({"template": "a_desk", "fields": {"title": "A secret ticket"}});
    let ticket = app.create("/api/v1/tickets", agent, body.clone()).await;
    let other = app.create("/api/v1/tickets", agent, body).await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    app.create(
        &format!("/api/v1/tickets/{id}/comments"),
        agent,
        json!({"body": "A comment"}),
    )
    .await;
    let link = app
        .create(
            &format!("/api/v1/tickets/{id}/links"),
            agent,
            json!({"kind": "related", "ticket": other["id"]}),
        )
        .await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"A content".to_vec()).file_name("a.txt"),
    );
    let attachment = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/tickets/{id}/attachments")))
                .bearer_auth(agent)
                .multipart(form),
        )
        .await;
    assert_eq!(
        attachment.status,
        reqwest::StatusCode::CREATED,
        "{}",
        attachment.text
    );
    (
        id,
        link["id"].as_str().unwrap().to_owned(),
        attachment.json()["id"].as_str().unwrap().to_owned(),
    )
}

fn fill(template: &str, values: &HashMap<&'static str, String>) -> String {
    values.iter().fold(template.to_owned(), |s, (k, v)| {
        s.replace(&format!("{{{k}}}"), v)
    })
}

#[actix_web::test]
async fn tenant_b_cannot_tell_tenant_a_objects_from_missing_ones() {
    let app = spawn_app().await;
    let mut a = objects_of_a(&app).await;
    let b = app.tenant("tenant-b").await;
    let own_user = app.user(&b, "bob", &["agent"]).await;
    a.insert("own_user", own_user.clone());
    app.create(
        "/api/v1/libraries",
        &b.admin_token,
        json!({"key": "b_kb", "definition": a_library()}),
    )
    .await;
    a.insert("own_library", "b_kb".to_owned());
    // Missing objects: random ids, and keys/codes that exist nowhere.
    let mut missing: HashMap<&'static str, String> = a
        .keys()
        .map(|k| (*k, uuid::Uuid::now_v7().to_string()))
        .collect();
    missing.insert("master", "no_such_master".to_owned());
    missing.insert("template", "no_such_template".to_owned());
    missing.insert("desk", "no_such_template".to_owned());
    missing.insert("item", "no_such_item".to_owned());
    missing.insert("own_user", own_user);
    missing.insert("library", "no_such_library".to_owned());
    missing.insert("own_library", "b_kb".to_owned());

    for (method, template, body) in endpoints() {
        let body_a = body
            .as_ref()
            .map(|b| serde_json::from_str(&fill(&b.to_string(), &a)).unwrap());
        let body_missing = body
            .as_ref()
            .map(|b| serde_json::from_str(&fill(&b.to_string(), &missing)).unwrap());
        let on_a = app
            .request(
                method.clone(),
                &fill(template, &a),
                Some(&b.admin_token),
                body_a.as_ref(),
            )
            .await;
        let on_missing = app
            .request(
                method.clone(),
                &fill(template, &missing),
                Some(&b.admin_token),
                body_missing.as_ref(),
            )
            .await;
        on_a.assert_problem(404, "/problems/not-found");
        assert_eq!(
            on_a.sans_instance(),
            on_missing.sans_instance(),
            "{method} {template}"
        );
        assert_eq!(on_a.status, on_missing.status, "{method} {template}");
    }

    // Uploading to A's ticket is 404 like uploading to a missing one.
    let upload = |ticket: String| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"B".to_vec()).file_name("b.txt"),
        );
        app.send(
            app.client
                .post(app.url(&format!("/api/v1/tickets/{ticket}/attachments")))
                .bearer_auth(&b.admin_token)
                .multipart(form),
        )
    };
    let on_a = upload(a["ticket"].clone()).await;
    let on_missing = upload(missing["ticket"].clone()).await;
    on_a.assert_problem(404, "/problems/not-found");
    assert_eq!(on_a.sans_instance(), on_missing.sans_instance());

    // Lists of B show nothing of A, and A's objects are untouched.
    let users = app.get("/api/v1/users", Some(&b.admin_token)).await.text;
    assert!(!users.contains(&a["user"]) && !users.contains("alice"));
    for path in [
        "/api/v1/groups",
        "/api/v1/organizations",
        "/api/v1/api-keys",
        "/api/v1/audit-log",
        "/api/v1/masters",
        "/api/v1/templates",
        "/api/v1/tickets",
        "/api/v1/tickets?q=secret",
        "/api/v1/tickets/export",
        "/api/v1/tickets/export?format=jsonl",
        "/api/v1/users/export",
        "/api/v1/libraries",
        "/api/v1/libraries/b_kb/records",
        "/api/v1/libraries/b_kb/records?q=secret",
        "/api/v1/events?limit=500",
        "/api/v1/webhooks",
        "/api/v1/mail-channels",
        "/api/v1/notification-rules",
        "/api/v1/calendars",
        "/api/v1/sla-policies",
    ] {
        let listed = app.get(path, Some(&b.admin_token)).await.text;
        for id in a
            .values()
            .filter(|id| **id != a["own_user"] && **id != a["own_library"])
        {
            assert!(!listed.contains(id.as_str()), "{path} leaks {id}");
        }
    }
    let a_admin = app
        .login(Some("tenant-a"), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let alice = app
        .get(&format!("/api/v1/users/{}", a["user"]), Some(&a_admin))
        .await
        .json();
    assert_eq!(alice["display_name"], "alice");
    assert_eq!(alice["active"], true);
}

#[actix_web::test]
async fn a_token_cannot_be_pointed_at_another_tenant() {
    let app = spawn_app().await;
    let a = app.tenant("tenant-a").await;
    let b = app.tenant("tenant-b").await;
    // Credentials of A do not work under B's slug.
    assert_eq!(app.login_status(Some(&b.slug), "admin", "wrong").await, 401);
    let a_me = app.get("/api/v1/me", Some(&a.admin_token)).await.json();
    assert_eq!(a_me["tenant"], a.id.as_str());
    // An API key whose tenant part is rewritten to B's id is refused.
    let key = app
        .create(
            "/api/v1/api-keys",
            &a.admin_token,
            json!({"name": "k", "roles": ["tenant_admin"]}),
        )
        .await;
    let secret = key["secret"].as_str().unwrap();
    let a_simple = a.id.replace('-', "");
    let b_simple = b.id.replace('-', "");
    let forged = secret.replace(&a_simple, &b_simple);
    app.get("/api/v1/me", Some(&forged))
        .await
        .assert_problem(401, "/problems/unauthorized");
}
