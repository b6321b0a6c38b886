//! The IMAP poller of a mail channel (issue 15), against a real Dovecot (tests/api/dovecot.rs)
//! and a real clamd: settings and their checks, mail taken in and flagged, nothing taken in
//! twice, UIDVALIDITY changes, `delete`, a wrong password, and IDLE with the runner running.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::clamd::ClamdProcess;
use crate::dovecot::{self, Mailbox};
use crate::helpers::{TestApp, spawn_app_with};
use crate::mail::{channel_body, fixture, inquiry_tenant, mail_app};

fn imap(host: &str, port: u16, folder: &str, extra: Value) -> Value {
    let mut imap = json!({"host": host, "port": port, "security": "none",
        "username": dovecot::USER, "password": dovecot::PASSWORD, "folder": folder,
        "idle": false});
    for (k, v) in extra.as_object().unwrap() {
        imap[k] = v.clone();
    }
    imap
}

async fn create_channel(app: &TestApp, admin: &str, imap: Value) -> Value {
    let mut body = channel_body();
    body["imap"] = imap;
    app.create("/api/v1/mail-channels", admin, body).await
}

async fn messages(app: &TestApp, admin: &str, channel: &str) -> Vec<Value> {
    let listed = app
        .get(
            &format!("/api/v1/mail-channels/{channel}/messages"),
            Some(admin),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    listed.json()["items"].as_array().unwrap().clone()
}

async fn channel(app: &TestApp, admin: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/mail-channels/{id}"), Some(admin))
        .await
        .json()
}

/// The next poll: the clock moves past the poll interval and due jobs run.
async fn poll_again(app: &TestApp) {
    app.clock.advance(TimeDelta::seconds(61));
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
}

async fn poller_job(app: &TestApp, channel: &str) -> Option<stageflow::db::jobs::JobRow> {
    let key = format!("mail.imap:{channel}");
    app.state
        .db
        .read(move |conn| {
            Ok::<_, stageflow::db::DbError>(stageflow::db::jobs::find_singleton(conn, &key)?)
        })
        .await
        .unwrap()
}

#[actix_web::test]
async fn imap_settings_are_checked_and_the_password_is_never_shown() {
    // The runner's own loop stays out of the way: the test runs the passes.
    let app = spawn_app_with(|c| c.jobs.tick = Duration::from_secs(3_600)).await;
    let t = inquiry_tenant(&app, "imap-config").await;
    let admin = t.admin_token.as_str();
    let created = create_channel(
        &app,
        admin,
        json!({"host": "IMAP.example.co.jp", "username": "support", "password": "pw-秘密-1"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["imap"],
        json!({"host": "imap.example.co.jp", "port": 993, "security": "tls",
            "username": "support", "password_set": true, "folder": "INBOX",
            "after_intake": "mark_seen", "idle": true})
    );
    assert_eq!(
        created["imap_state"],
        json!({"uidvalidity": null, "last_uid": 0, "last_error": null, "polled_at": null})
    );
    assert!(
        !channel(&app, admin, id)
            .await
            .to_string()
            .contains("pw-秘密-1")
    );
    // Its poller job exists, due now.
    assert!(poller_job(&app, id).await.is_some());

    for (imap, pointer, code) in [
        (
            json!({"host": "", "username": "u", "password": "p"}),
            "imap/host",
            "invalid",
        ),
        (
            json!({"host": "imap://x", "username": "u", "password": "p"}),
            "imap/host",
            "invalid",
        ),
        (
            json!({"host": "x.jp", "port": 0, "username": "u", "password": "p"}),
            "imap/port",
            "out_of_range",
        ),
        (
            json!({"host": "x.jp", "port": 65536, "username": "u", "password": "p"}),
            "imap/port",
            "out_of_range",
        ),
        (
            json!({"host": "x.jp", "security": "none", "username": "u", "password": "p"}),
            "imap/security",
            "insecure",
        ),
        (
            json!({"host": "x.jp", "username": "", "password": "p"}),
            "imap/username",
            "invalid",
        ),
        (
            json!({"host": "x.jp", "username": "u", "password": "a\r\nb"}),
            "imap/password",
            "invalid",
        ),
        (
            json!({"host": "x.jp", "username": "u", "password": "p", "folder": ""}),
            "imap/folder",
            "invalid",
        ),
        (
            json!({"host": "x.jp", "username": "u"}),
            "imap/password",
            "required",
        ),
    ] {
        let mut body = channel_body();
        body["address"] = json!("other@example.co.jp");
        body["imap"] = imap.clone();
        let reply = app
            .post_json("/api/v1/mail-channels", Some(admin), &body)
            .await;
        let problem = reply.assert_problem(422, "/problems/validation");
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == pointer && e["code"] == code),
            "{imap}: {problem}"
        );
    }
    // `none` on a loopback host is allowed (a local server).
    let mut local = channel_body();
    local["address"] = json!("local@example.co.jp");
    local["imap"] = json!({"host": "127.0.0.1", "port": 143, "security": "none",
        "username": "u", "password": "p"});
    app.create("/api/v1/mail-channels", admin, local).await;

    // Without a password the stored one is kept for the same host and username only.
    let path = format!("/api/v1/mail-channels/{id}");
    let kept = app
        .patch_json(
            &path,
            Some(admin),
            &json!({"imap": {"host": "imap.example.co.jp", "username": "support", "idle": false}}),
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.text);
    assert_eq!(kept.json()["imap"]["password_set"], true);
    assert_eq!(kept.json()["imap"]["idle"], false);
    app.patch_json(
        &path,
        Some(admin),
        &json!({"imap": {"host": "evil.example.com", "username": "support"}}),
    )
    .await
    .assert_problem(422, "/problems/validation");
    let removed = app
        .patch_json(&path, Some(admin), &json!({"imap": null}))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    assert_eq!(removed.json()["imap"], Value::Null);
    assert_eq!(removed.json()["imap_state"], Value::Null);
    // Its job ends at its next run (the server is not even contacted).
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    assert!(poller_job(&app, id).await.is_none());
}

#[actix_web::test]
async fn mail_is_taken_in_from_the_mailbox_once_and_flagged_seen() {
    let Some((host, port)) = dovecot::server() else {
        return;
    };
    let Some(clamd) = ClamdProcess::start_private() else {
        return;
    };
    let app = mail_app(&clamd).await;
    let t = inquiry_tenant(&app, "imap-seen").await;
    let admin = t.admin_token.as_str();
    let folder = format!("seen{}", std::process::id());
    let mut mailbox = Mailbox::open(&host, port);
    mailbox.fresh_folder(&folder);
    for name in ["iso2022jp.eml", "sjis_qp.eml", "utf8_alternative.eml"] {
        mailbox.append(&folder, &fixture(name));
    }

    let created = create_channel(&app, admin, imap(&host, port, &folder, json!({}))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;

    let taken = messages(&app, admin, &id).await;
    let statuses: Vec<&str> = taken
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["filed", "filed", "filed"], "{taken:?}");
    assert_eq!(taken[0]["subject"], "件名：ネットワーク障害のご連絡");
    let tickets = app.get("/api/v1/tickets", Some(admin)).await.json();
    assert_eq!(tickets["items"].as_array().unwrap().len(), 3);
    let flags = mailbox.flags(&folder);
    assert_eq!(flags.len(), 3);
    assert!(flags.iter().all(|(_, f)| f.contains("\\Seen")), "{flags:?}");
    let state = channel(&app, admin, &id).await["imap_state"].clone();
    assert_eq!(state["last_uid"], 3);
    assert!(state["uidvalidity"].is_i64());
    assert_eq!(state["last_error"], Value::Null);
    assert!(state["polled_at"].is_string());

    // The next poll finds nothing new: nothing is taken in twice.
    poll_again(&app).await;
    assert_eq!(messages(&app, admin, &id).await.len(), 3);

    // A new message is taken in at the next poll.
    mailbox.append(&folder, &fixture("eucjp.eml"));
    poll_again(&app).await;
    let taken = messages(&app, admin, &id).await;
    assert_eq!(taken.len(), 4);
    assert_eq!(taken[3]["status"], "filed", "{}", taken[3]);

    // The folder is recreated: a new UIDVALIDITY, so polling starts over from UID 1; the copy
    // of a message already filed is recognised by its Message-ID and files nothing.
    let validity = state["uidvalidity"].clone();
    mailbox.fresh_folder(&folder);
    mailbox.append(&folder, &fixture("iso2022jp.eml"));
    mailbox.append(&folder, &fixture("html_only.eml"));
    poll_again(&app).await;
    let taken = messages(&app, admin, &id).await;
    assert_eq!(taken.len(), 6, "{taken:?}");
    assert_eq!(taken[4]["status"], "ignored", "{}", taken[4]);
    assert!(taken[4]["reason"].as_str().unwrap().contains("duplicate"));
    assert_eq!(taken[5]["status"], "filed", "{}", taken[5]);
    let state = channel(&app, admin, &id).await["imap_state"].clone();
    assert_ne!(state["uidvalidity"], validity);
    assert_eq!(state["last_uid"], 2);
    let tickets = app.get("/api/v1/tickets", Some(admin)).await.json();
    assert_eq!(tickets["items"].as_array().unwrap().len(), 5);

    // A disabled channel's poller ends.
    let path = format!("/api/v1/mail-channels/{id}");
    app.patch_json(&path, Some(admin), &json!({"enabled": false}))
        .await;
    poll_again(&app).await;
    assert!(poller_job(&app, &id).await.is_none());
}

#[actix_web::test]
async fn delete_after_intake_and_a_wrong_password_is_retried_without_showing_it() {
    let Some((host, port)) = dovecot::server() else {
        return;
    };
    let Some(clamd) = ClamdProcess::start_private() else {
        return;
    };
    let app = mail_app(&clamd).await;
    let t = inquiry_tenant(&app, "imap-delete").await;
    let admin = t.admin_token.as_str();
    let folder = format!("delete{}", std::process::id());
    let mut mailbox = Mailbox::open(&host, port);
    mailbox.fresh_folder(&folder);
    mailbox.append(&folder, &fixture("attachments.eml"));

    let wrong = "wrong-pässword-4711";
    let settings = imap(
        &host,
        port,
        &folder,
        json!({"after_intake": "delete", "password": wrong}),
    );
    let created = create_channel(&app, admin, settings).await;
    let id = created["id"].as_str().unwrap().to_owned();
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;

    // Refused LOGIN: nothing taken in, the message stays, the job is retried with back-off,
    // and the error says why without the password.
    assert!(messages(&app, admin, &id).await.is_empty());
    assert_eq!(mailbox.flags(&folder).len(), 1);
    let state = channel(&app, admin, &id).await["imap_state"].clone();
    let error = state["last_error"].as_str().unwrap().to_owned();
    assert!(error.contains("LOGIN"), "{error}");
    assert!(!error.contains(wrong), "{error}");
    let job = poller_job(&app, &id).await.unwrap();
    assert_eq!(job.attempts, 1);
    assert!(job.failed_at.is_none());
    assert!(job.run_at.0 > app.clock_now());
    assert!(!job.last_error.unwrap_or_default().contains(wrong));

    // The right password: the job is due at once; the message is filed and expunged.
    let path = format!("/api/v1/mail-channels/{id}");
    let fixed = app
        .patch_json(
            &path,
            Some(admin),
            &json!({"imap": imap(&host, port, &folder, json!({"after_intake": "delete"}))}),
        )
        .await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.text);
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let taken = messages(&app, admin, &id).await;
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0]["status"], "filed", "{}", taken[0]);
    assert!(mailbox.flags(&folder).is_empty());
    let state = channel(&app, admin, &id).await["imap_state"].clone();
    assert_eq!(state["last_error"], Value::Null);
    let job = poller_job(&app, &id).await.unwrap();
    assert_eq!(job.attempts, 0);
}

#[actix_web::test]
async fn with_idle_mail_is_taken_in_as_it_arrives() {
    let Some((host, port)) = dovecot::server() else {
        return;
    };
    let Some(clamd) = ClamdProcess::start_private() else {
        return;
    };
    let address = clamd.address();
    // The runner runs on its own (woken by the channel's commit); the clock never moves.
    let app = spawn_app_with(move |c| {
        c.clamd = Some(stageflow::config::ScannerSettings {
            address,
            timeout: Duration::from_secs(10),
            max_bytes: 25 * 1024 * 1024,
        });
        c.jobs.tick = Duration::from_secs(3_600);
        c.jobs.wake_on_enqueue = true;
    })
    .await;
    let t = inquiry_tenant(&app, "imap-idle").await;
    let admin = t.admin_token.as_str();
    let folder = format!("idle{}", std::process::id());
    let mut mailbox = Mailbox::open(&host, port);
    mailbox.fresh_folder(&folder);
    mailbox.append(&folder, &fixture("iso2022jp.eml"));

    let created = create_channel(
        &app,
        admin,
        imap(&host, port, &folder, json!({"idle": true})),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    // The first poll takes the waiting message in; then the poller IDLEs.
    wait_for_messages(&app, admin, &id, 1).await;
    // A message arriving during IDLE is pushed by the server and taken in at once.
    mailbox.append(&folder, &fixture("sjis_qp.eml"));
    let taken = wait_for_messages(&app, admin, &id, 2).await;
    assert_eq!(taken[1]["status"], "filed", "{}", taken[1]);
    assert_eq!(taken[1]["sender"], "suzuki@example.jp");
    // Flagged right after intake recorded it.
    let started = Instant::now();
    loop {
        let flags = mailbox.flags(&folder);
        if flags.iter().all(|(_, f)| f.contains("\\Seen")) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{flags:?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Shutdown ends the IDLE.
    app.state.jobs.shutdown().await;
}

/// The channel's messages once there are `count` of them (polling the API, 20 s at most).
async fn wait_for_messages(app: &TestApp, admin: &str, id: &str, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let taken = messages(app, admin, id).await;
        if taken.len() >= count && taken.iter().all(|m| m["status"] != "pending") {
            return taken;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{count} messages not taken in: {taken:?}; state {}",
            channel(app, admin, id).await["imap_state"]
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}
