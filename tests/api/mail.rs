//! Mail: channels (configuration checked against the template), intake of raw messages over
//! HTTP (scanned by a real clamd, parsed, filed, threaded, ignored, refused, quarantined,
//! pending while the scanner is down), and the message log.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, spawn_app};

fn label(ja: &str, en: &str) -> Value {
    json!({"ja": ja, "en": en})
}

/// An inquiry desk: agents answer, the customer's reply in `waiting_customer` brings the
/// ticket back to `in_progress`.
fn inquiry() -> Value {
    json!({
        "name": label("お問い合わせ", "Inquiry"), "key_prefix": "INQ",
        "fields": [
            {"key": "title", "type": "text", "label": label("件名", "Title"), "required": true, "max_length": 300},
            {"key": "description", "type": "long_text", "label": label("内容", "Description")},
            {"key": "channel", "type": "text", "label": label("受付経路", "Channel")},
            {"key": "note", "type": "text", "internal": true, "label": label("社内メモ", "Internal note")}
        ],
        "stages": [
            {"key": "open", "label": label("対応中", "Open"), "states": [
                {"key": "new", "label": label("新規", "New"), "initial": true},
                {"key": "in_progress", "label": label("対応中", "In progress")},
                {"key": "waiting_customer", "label": label("お客様回答待ち", "Waiting for customer")}]},
            {"key": "done", "label": label("完了", "Done"), "states": [
                {"key": "closed", "label": label("完了", "Closed"), "terminal": true}]}
        ],
        "transitions": [
            {"key": "start", "label": label("対応開始", "Start"), "from": ["new"], "to": "in_progress",
             "allowed": {"roles": ["agent"]}},
            {"key": "ask_customer", "label": label("お客様へ確認", "Ask the customer"), "from": ["in_progress"],
             "to": "waiting_customer", "allowed": {"roles": ["agent"]}},
            {"key": "customer_replied", "label": label("お客様回答", "Customer replied"), "from": ["waiting_customer"],
             "to": "in_progress", "allowed": {"roles": ["agent"], "requester": true}},
            {"key": "close", "label": label("完了", "Close"), "from": ["in_progress"], "to": "closed",
             "allowed": {"roles": ["agent"]}}
        ]
    })
}

/// A tenant with the published `inquiry` template.
pub async fn inquiry_tenant(app: &TestApp, slug: &str) -> Tenant {
    let tenant = app.tenant(slug).await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    app.create(
        "/api/v1/templates",
        &pm,
        json!({"key": "inquiry", "definition": inquiry()}),
    )
    .await;
    let published = app
        .post_json(
            "/api/v1/templates/inquiry/versions/1/publish",
            Some(&pm),
            &json!({}),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);
    tenant
}

fn channel_body() -> Value {
    json!({"address": " Support@Example.CO.JP ", "description": "お問い合わせ窓口",
        "template": "inquiry", "defaults": {"channel": "mail"},
        "reply_transitions": [{"from": ["waiting_customer"], "transition": "customer_replied"}]})
}

#[actix_web::test]
async fn channels_are_checked_against_the_published_template() {
    let app = spawn_app().await;
    let t = inquiry_tenant(&app, "mail-config").await;
    let admin = t.admin_token.as_str();

    let created = app
        .create("/api/v1/mail-channels", admin, channel_body())
        .await;
    assert_eq!(created["address"], "support@example.co.jp");
    assert_eq!(created["subject_field"], "title");
    assert_eq!(created["body_field"], "description");
    assert_eq!(created["unknown_senders"], "create_requester");
    assert_eq!(created["max_message_bytes"], 10_485_760);
    assert_eq!(created["max_attachments"], 20);
    assert_eq!(created["enabled"], true);
    let id = created["id"].as_str().unwrap();

    // The same address again (any case) is a conflict.
    let again = app
        .post_json(
            "/api/v1/mail-channels",
            Some(admin),
            &json!({"address": "SUPPORT@example.co.jp", "template": "inquiry"}),
        )
        .await;
    again.assert_problem(409, "/problems/duplicate");

    // Every reference is checked against the template's published version.
    for (body, pointer, code) in [
        (
            json!({"address": "not-an-address", "template": "inquiry"}),
            "address",
            "invalid",
        ),
        (
            json!({"address": "a@example.com", "template": "nope"}),
            "template",
            "unknown",
        ),
        (
            json!({"address": "a@example.com", "template": "inquiry", "subject_field": "nope"}),
            "subject_field",
            "unknown",
        ),
        (
            json!({"address": "a@example.com", "template": "inquiry", "body_field": "note"}),
            "body_field",
            "unsuitable",
        ),
        (
            json!({"address": "a@example.com", "template": "inquiry", "defaults": {"note": "x"}}),
            "defaults/note",
            "internal",
        ),
        (
            json!({"address": "a@example.com", "template": "inquiry", "defaults": {"nope": "x"}}),
            "defaults/nope",
            "unknown",
        ),
        (
            json!({"address": "a@example.com", "template": "inquiry",
            "reply_transitions": [{"from": ["new"], "transition": "customer_replied"}]}),
            "reply_transitions/0/from/0",
            "not_a_source",
        ),
        (
            json!({"address": "a@example.com", "template": "inquiry",
            "reply_transitions": [{"from": ["waiting_customer"], "transition": "nope"}]}),
            "reply_transitions/0/transition",
            "unknown",
        ),
        (
            json!({"address": "a@example.com", "template": "inquiry",
            "organization_domains": [{"domain": "example.com", "organization_id": "019ac0d2-7000-7000-8000-000000000001"}]}),
            "organization_domains/0/organization_id",
            "unknown",
        ),
        (
            json!({"address": "a@example.com", "template": "inquiry", "max_message_bytes": 100}),
            "max_message_bytes",
            "out_of_range",
        ),
        (
            json!({"address": "a@example.com", "template": "inquiry", "max_attachments": 101}),
            "max_attachments",
            "out_of_range",
        ),
    ] {
        let reply = app
            .post_json("/api/v1/mail-channels", Some(admin), &body)
            .await;
        let problem = reply.assert_problem(422, "/problems/validation");
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == pointer && e["code"] == code),
            "{body}: {problem}"
        );
    }

    // Read, change with If-Match, list, delete.
    let got = app
        .get(&format!("/api/v1/mail-channels/{id}"), Some(admin))
        .await;
    assert_eq!(got.status, StatusCode::OK);
    let etag = got.header("etag").unwrap().to_owned();
    let changed = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/mail-channels/{id}"),
            Some(admin),
            Some(&json!({"enabled": false, "unknown_senders": "refuse"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.json()["enabled"], false);
    assert_eq!(changed.json()["version"], 2);
    let stale = app
        .send(
            app.client
                .patch(app.url(&format!("/api/v1/mail-channels/{id}")))
                .bearer_auth(admin)
                .header("if-match", etag)
                .json(&json!({"enabled": true})),
        )
        .await;
    stale.assert_problem(412, "/problems/precondition-failed");
    let listed = app.get("/api/v1/mail-channels", Some(admin)).await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Only tenant admins configure mail.
    let agent = app.user_token(&t, "agent", &["agent"]).await;
    app.get("/api/v1/mail-channels", Some(&agent))
        .await
        .assert_problem(403, "/problems/forbidden");

    let deleted = app
        .delete(&format!("/api/v1/mail-channels/{id}"), Some(admin))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get(&format!("/api/v1/mail-channels/{id}"), Some(admin))
        .await
        .assert_problem(404, "/problems/not-found");
    let audit = app.audit_entries(admin, "mail_channel.created").await;
    assert_eq!(audit.len(), 1);
}
