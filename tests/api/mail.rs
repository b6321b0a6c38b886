//! Mail: channels (configuration checked against the template), intake of raw messages over
//! HTTP (scanned by a real clamd, parsed, filed, threaded, ignored, refused, quarantined,
//! pending while the scanner is down), and the message log.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::clamd::ClamdProcess;
use crate::helpers::{Reply, Tenant, TestApp, spawn_app, spawn_app_with};

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

pub fn channel_body() -> Value {
    json!({"address": " Support@Example.CO.JP ", "description": "お問い合わせ窓口",
        "template": "inquiry", "defaults": {"channel": "mail"},
        "reply_transitions": {"waiting_customer": "customer_replied"}})
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
    // Reply transitions read as {state: transition}, whichever form was written.
    assert_eq!(
        created["reply_transitions"],
        json!({"waiting_customer": "customer_replied"})
    );
    let listed = app
        .create(
            "/api/v1/mail-channels",
            admin,
            json!({"address": "desk@example.co.jp", "template": "inquiry",
                "reply_transitions": [{"from": ["waiting_customer"], "transition": "customer_replied"}]}),
        )
        .await;
    assert_eq!(
        listed["reply_transitions"],
        json!({"waiting_customer": "customer_replied"})
    );
    let gone = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/mail-channels/{}", listed["id"].as_str().unwrap()),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
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
    assert_eq!(audit.len(), 2);
}

/// A server whose virus scanner is `clamd`, with the job runner's tick out of the way.
pub async fn mail_app(clamd: &ClamdProcess) -> TestApp {
    let address = clamd.address();
    spawn_app_with(move |c| {
        c.clamd = Some(stageflow::config::ScannerSettings {
            address,
            timeout: std::time::Duration::from_secs(10),
            max_bytes: 25 * 1024 * 1024,
        });
        c.jobs.tick = std::time::Duration::from_secs(3_600);
    })
    .await
}

async fn channel(app: &TestApp, admin: &str, extra: Value) -> String {
    let mut body = channel_body();
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let created = app.create("/api/v1/mail-channels", admin, body).await;
    created["id"].as_str().unwrap().to_owned()
}

async fn post_mail(app: &TestApp, admin: &str, channel: &str, raw: &[u8]) -> Reply {
    app.send(
        app.client
            .post(app.url(&format!("/api/v1/mail-channels/{channel}/messages")))
            .bearer_auth(admin)
            .header("content-type", "message/rfc822")
            .body(raw.to_vec()),
    )
    .await
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/mail/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn ticket(app: &TestApp, token: &str, id: &str) -> Value {
    let got = app.get(&format!("/api/v1/tickets/{id}"), Some(token)).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    got.json()
}

async fn fire(app: &TestApp, token: &str, id: &str, transition: &str) {
    let fired = app
        .post_json(
            &format!("/api/v1/tickets/{id}/transitions"),
            Some(token),
            &json!({"transition": transition}),
        )
        .await;
    assert_eq!(fired.status, StatusCode::OK, "{transition}: {}", fired.text);
}

#[actix_web::test]
async fn japanese_mail_is_filed_and_replies_thread_back() {
    let Some(clamd) = ClamdProcess::start_private() else {
        return;
    };
    let app = mail_app(&clamd).await;
    let t = inquiry_tenant(&app, "mail-intake").await;
    let admin = t.admin_token.as_str();
    let agent = app.user_token(&t, "agent", &["agent"]).await;
    let ch = channel(&app, admin, json!({})).await;

    // ISO-2022-JP from an unknown sender: a requester is created and the ticket filed.
    let filed = post_mail(&app, admin, &ch, &fixture("iso2022jp.eml")).await;
    assert_eq!(filed.status, StatusCode::ACCEPTED, "{}", filed.text);
    let message = filed.json();
    assert_eq!(message["status"], "filed", "{message}");
    assert_eq!(message["sender"], "yamada@example.co.jp");
    assert_eq!(message["subject"], "件名：ネットワーク障害のご連絡");
    assert_eq!(
        message["header_message_id"],
        "20261116091201.A1B2C3@example.co.jp"
    );
    assert_eq!(message["message_id"], message["id"]);
    assert_eq!(message["comment_id"], Value::Null);
    let first = message["ticket_id"].as_str().unwrap().to_owned();
    let got = ticket(&app, &agent, &first).await;
    assert_eq!(got["fields"]["title"], "件名：ネットワーク障害のご連絡");
    assert_eq!(got["fields"]["channel"], "mail");
    assert!(
        got["fields"]["description"]
            .as_str()
            .unwrap()
            .contains("大阪拠点のネットワーク")
    );
    let requester = app.get("/api/v1/users?limit=100", Some(admin)).await.json();
    let yamada = requester["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "yamada@example.co.jp")
        .expect("a requester for the sender")
        .clone();
    assert_eq!(yamada["display_name"], "山田 太郎");
    assert_eq!(yamada["roles"], json!(["requester"]));

    // Japanese attachment names (RFC 2047 and RFC 2231), and the original as .eml.
    let with_files = post_mail(&app, admin, &ch, &fixture("attachments.eml"))
        .await
        .json();
    assert_eq!(with_files["status"], "filed", "{with_files}");
    let second = with_files["ticket_id"].as_str().unwrap();
    let files = app
        .get(
            &format!("/api/v1/tickets/{second}/attachments"),
            Some(&agent),
        )
        .await
        .json();
    let mut names: Vec<&str> = files["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["file_name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["message.eml", "構成図_大阪拠点.pdf", "障害報告書.pdf"]
    );

    // A reply by In-Reply-To, while the ticket waits for the customer: a comment by the
    // requester, and the channel's reply transition brings it back to in_progress.
    fire(&app, &agent, &first, "start").await;
    fire(&app, &agent, &first, "ask_customer").await;
    let reply = "From: Yamada <yamada@example.co.jp>\r\nTo: support@example.co.jp\r\n\
        Subject: =?UTF-8?B?UmU6IOOBiuWVj+OBhOWQiOOCj+OBmw==?=\r\n\
        Message-ID: <reply.7@example.co.jp>\r\nIn-Reply-To: <20261116091201.A1B2C3@example.co.jp>\r\n\
        Content-Type: text/plain; charset=UTF-8\r\n\r\n再起動したところ復旧しました。\r\n";
    let commented = post_mail(&app, admin, &ch, reply.as_bytes()).await.json();
    assert_eq!(commented["status"], "commented", "{commented}");
    assert_eq!(commented["ticket_id"], first.as_str());
    let comment_id = commented["comment_id"].as_str().unwrap();
    let comments = app
        .get(
            &format!("/api/v1/tickets/{first}/comments"),
            Some(agent.as_str()),
        )
        .await
        .json();
    assert!(
        comments["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == comment_id),
        "{comments}"
    );
    let after = ticket(&app, &agent, &first).await;
    assert_eq!(after["state"], "in_progress");
    let comments = app
        .get(&format!("/api/v1/tickets/{first}/comments"), Some(&agent))
        .await
        .json();
    let last = comments["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["body"], "再起動したところ復旧しました。");
    assert_eq!(last["internal"], false);

    // A reply matched by the key in the subject only.
    let key = after["key"].as_str().unwrap();
    let by_key = format!(
        "From: yamada@example.co.jp\r\nSubject: Re: [{key}] follow-up\r\nMessage-ID: <reply.8@example.co.jp>\r\n\r\nもう一点あります。\r\n"
    );
    let keyed = post_mail(&app, admin, &ch, by_key.as_bytes()).await.json();
    assert_eq!(keyed["status"], "commented", "{keyed}");
    assert_eq!(keyed["ticket_id"], first.as_str());

    // Machine-sent mail is recorded and ignored.
    for name in ["auto_reply.eml", "bounce.eml"] {
        let ignored = post_mail(&app, admin, &ch, &fixture(name)).await.json();
        assert_eq!(ignored["status"], "ignored", "{name}: {ignored}");
        assert!(ignored["ticket_id"].is_null());
    }
    let log = app
        .get(&format!("/api/v1/mail-channels/{ch}/messages"), Some(admin))
        .await
        .json();
    let statuses: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "filed",
            "filed",
            "commented",
            "commented",
            "ignored",
            "ignored"
        ]
    );
    let tickets = app.get("/api/v1/tickets", Some(&agent)).await.json();
    assert_eq!(tickets["items"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn malware_is_quarantined_and_nothing_is_filed() {
    let Some(clamd) = ClamdProcess::start_private() else {
        return;
    };
    let app = mail_app(&clamd).await;
    let t = inquiry_tenant(&app, "mail-eicar").await;
    let admin = t.admin_token.as_str();
    let ch = channel(&app, admin, json!({})).await;
    let posted = post_mail(&app, admin, &ch, &fixture("eicar.eml")).await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{}", posted.text);
    let message = posted.json();
    assert_eq!(message["status"], "quarantined", "{message}");
    assert!(
        message["signature"]
            .as_str()
            .unwrap()
            .starts_with("Eicar-Test-Signature")
    );
    assert!(message["ticket_id"].is_null());
    let tickets = app.get("/api/v1/tickets", Some(admin)).await.json();
    assert_eq!(tickets["items"], json!([]));
    let users = app.get("/api/v1/users", Some(admin)).await.json();
    assert!(
        !users.to_string().contains("attacker@example.net"),
        "no requester for it"
    );
    let events = app
        .get("/api/v1/events?type=mail_message.quarantined", Some(admin))
        .await
        .json();
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
    assert_eq!(
        app.audit_entries(admin, "mail_message.quarantined")
            .await
            .len(),
        1
    );
}

#[actix_web::test]
async fn mail_waits_while_the_scanner_is_down_and_is_filed_after() {
    let Some(mut clamd) = ClamdProcess::start_private() else {
        return;
    };
    let app = mail_app(&clamd).await;
    let t = inquiry_tenant(&app, "mail-pending").await;
    let admin = t.admin_token.as_str();
    let ch = channel(&app, admin, json!({})).await;
    clamd.stop();
    let posted = post_mail(&app, admin, &ch, &fixture("sjis_qp.eml")).await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{}", posted.text);
    let message = posted.json();
    assert_eq!(message["status"], "pending");
    assert!(message["ticket_id"].is_null());
    let id = message["id"].as_str().unwrap().to_owned();

    // Still down at the first retry: still pending, nothing filed.
    app.clock.advance(chrono::TimeDelta::seconds(31));
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let admin = app
        .login(Some(&t.slug), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let still = app
        .get(&format!("/api/v1/mail-messages/{id}"), Some(&admin))
        .await
        .json();
    assert_eq!(still["status"], "pending", "{still}");
    assert_eq!(
        app.get("/api/v1/tickets", Some(&admin)).await.json()["items"],
        json!([])
    );

    clamd.start();
    app.clock.advance(chrono::TimeDelta::hours(2));
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let admin = app
        .login(Some(&t.slug), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let filed = app
        .get(&format!("/api/v1/mail-messages/{id}"), Some(&admin))
        .await
        .json();
    assert_eq!(filed["status"], "filed", "{filed}");
    assert!(filed["ticket_id"].is_string());
}

#[actix_web::test]
async fn channel_rules_refuse_what_they_must() {
    let Some(clamd) = ClamdProcess::start_private() else {
        return;
    };
    let app = mail_app(&clamd).await;
    let t = inquiry_tenant(&app, "mail-refuse").await;
    let admin = t.admin_token.as_str();
    let ch = channel(
        &app,
        admin,
        json!({"unknown_senders": "refuse", "max_message_bytes": 4096}),
    )
    .await;
    let refused = post_mail(&app, admin, &ch, &fixture("iso2022jp.eml"))
        .await
        .json();
    assert_eq!(refused["status"], "refused", "{refused}");
    assert_eq!(
        refused["reason"],
        "unknown sender (the channel refuses them)"
    );

    let big = format!(
        "From: a@example.com\r\nSubject: big\r\n\r\n{}\r\n",
        "x".repeat(5000)
    );
    post_mail(&app, admin, &ch, big.as_bytes())
        .await
        .assert_problem(413, "/problems/payload-too-large");
    let wrong_type = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/mail-channels/{ch}/messages")))
                .bearer_auth(admin)
                .header("content-type", "text/plain")
                .body("From: a@example.com\r\n\r\nhi\r\n"),
        )
        .await;
    wrong_type.assert_problem(415, "/problems/unsupported-media-type");

    let disabled = app
        .patch_json(
            &format!("/api/v1/mail-channels/{ch}"),
            Some(admin),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK);
    let off = post_mail(&app, admin, &ch, &fixture("iso2022jp.eml"))
        .await
        .json();
    assert_eq!(off["status"], "refused");
    assert_eq!(off["reason"], "the channel is disabled");
}

/// `stageflow mail deliver` on the server's own database, as a Postfix pipe runs it.
fn deliver(
    app: &TestApp,
    clamd: &ClamdProcess,
    tenant: &str,
    channel: &str,
    raw: &[u8],
) -> (i32, String, String) {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = crate::cli::stageflow(dir.path())
        .args(["mail", "deliver", "--tenant", tenant, "--channel", channel])
        .env("DATABASE_URL", app.db.url_string())
        .env("STAGEFLOW_DATA_DIR", app.db.data_dir())
        .env("STAGEFLOW_CLAMD", clamd.address().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn the_pipe_command_takes_mail_in_with_exit_codes_an_mta_understands() {
    let Some(clamd) = ClamdProcess::start_private() else {
        return;
    };
    let app = mail_app(&clamd).await;
    let t = inquiry_tenant(&app, "mail-pipe").await;
    let admin = t.admin_token.as_str();
    let ch = channel(&app, admin, json!({"max_message_bytes": 8192})).await;

    let (code, out, err) = deliver(&app, &clamd, "mail-pipe", &ch, &fixture("eucjp.eml"));
    assert_eq!(code, 0, "{err}");
    assert!(out.trim_end().ends_with(" filed"), "{out}");
    let log = app
        .get(&format!("/api/v1/mail-channels/{ch}/messages"), Some(admin))
        .await
        .json();
    let message = &log["items"][0];
    assert_eq!(message["status"], "filed");
    assert_eq!(message["sender"], "sato@example.ne.jp");
    let ticket = ticket(&app, admin, message["ticket_id"].as_str().unwrap()).await;
    assert_eq!(ticket["fields"]["title"], "パスワード再設定の依頼");

    let big = format!("From: a@example.com\r\n\r\n{}\r\n", "x".repeat(9000));
    let (code, _, err) = deliver(&app, &clamd, "mail-pipe", &ch, big.as_bytes());
    assert_eq!(code, 65, "{err}");
    let (code, _, _) = deliver(
        &app,
        &clamd,
        "no-such-tenant",
        &ch,
        b"From: a@example.com\r\n\r\nx\r\n",
    );
    assert_eq!(code, 67);
    let other = "019ac0d2-7000-7000-8000-000000000009";
    let (code, _, _) = deliver(
        &app,
        &clamd,
        "mail-pipe",
        other,
        b"From: a@example.com\r\n\r\nx\r\n",
    );
    assert_eq!(code, 67);
}
