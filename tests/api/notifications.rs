//! Notification mail (#15 point 5) against a real SMTP receiver (aiosmtpd via
//! scripts/local-smtp.sh): rules per template, recipients by role and fixed addresses, what
//! each recipient may see (the internal field never reaches a requester or a fixed address),
//! ja/en text, threading headers, opt-outs, internal comments never mailed, retries after a
//! temporary failure, and a reply to a notification threading back into the ticket.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};
use stageflow::mailer::SmtpSecurity;

use crate::helpers::{TestApp, USER_PASSWORD, spawn_app_with};
use crate::mail::inquiry_tenant;
use crate::mailer::{Sink, parse};

const SENTINEL: &str = "SENTINEL-社内限り-7f3a";

async fn app_with(sink: &Sink) -> TestApp {
    let settings = sink.settings(SmtpSecurity::None);
    spawn_app_with(move |c| {
        c.smtp = Some(settings);
        c.jobs.tick = std::time::Duration::from_secs(3_600);
    })
    .await
}

async fn run_jobs(app: &TestApp) {
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
}

/// A user with an address; returns (id, token).
async fn person(
    app: &TestApp,
    tenant: &crate::helpers::Tenant,
    name: &str,
    roles: &[&str],
) -> (String, String) {
    let user = app
        .create(
            "/api/v1/users",
            &tenant.admin_token,
            json!({"username": name, "password": USER_PASSWORD, "display_name": name,
                "email": format!("{name}@example.co.jp"), "roles": roles}),
        )
        .await;
    let token = app.login(Some(&tenant.slug), name, USER_PASSWORD).await;
    (user["id"].as_str().unwrap().to_owned(), token)
}

async fn rule(app: &TestApp, token: &str, body: Value) -> Value {
    let reply = app
        .post_json("/api/v1/notification-rules", Some(token), &body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json()
}

/// The stored mails, parsed, with their recipients.
fn mails(sink: &Sink) -> Vec<Value> {
    let normalize = |p: &PathBuf| {
        let mut mail = parse(p);
        mail["body"] = mail["body"].as_str().unwrap().replace("\r\n", "\n").into();
        mail
    };
    sink.messages().iter().map(normalize).collect()
}

fn to(mail: &Value) -> &str {
    mail["to"][0][1].as_str().unwrap()
}

#[actix_web::test]
async fn rules_mail_each_recipient_what_they_may_see_with_threading_headers() {
    let sink = Sink::start(&[]);
    let app = app_with(&sink).await;
    let t = inquiry_tenant(&app, "notify").await;
    let admin = t.admin_token.clone();
    let (sato, agent) = person(&app, &t, "sato", &["agent"]).await;
    let (yamada, requester) = person(&app, &t, "yamada", &["requester"]).await;
    let (_suzuki, watcher) = person(&app, &t, "suzuki", &["agent"]).await;

    rule(
        &app,
        &admin,
        json!({"template": "inquiry", "event": "created",
        "recipients": ["requester", "assignee"], "addresses": ["Helpdesk@Example.CO.JP"]}),
    )
    .await;
    rule(
        &app,
        &admin,
        json!({"template": "inquiry", "event": "transitioned",
        "to_state": "closed", "recipients": ["requester"], "language": "en"}),
    )
    .await;
    rule(
        &app,
        &admin,
        json!({"template": "inquiry", "event": "commented",
        "recipients": ["requester", "watchers"]}),
    )
    .await;

    // Filed by the agent for the requester, assigned to the agent: the agent made the change
    // and is not mailed; the requester and the fixed address are, without the internal note.
    let ticket = app
        .create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "inquiry", "requester": yamada, "assignee": sato,
                "fields": {"title": "VPNに接続できません", "description": "朝から接続できません",
                    "channel": "電話", "note": SENTINEL}}),
        )
        .await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    let key = ticket["key"].as_str().unwrap().to_owned();
    assert!(
        mails(&sink).is_empty(),
        "nothing is sent before the job runs"
    );
    run_jobs(&app).await;
    let sent = mails(&sink);
    let mut recipients: Vec<&str> = sent.iter().map(to).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["helpdesk@example.co.jp", "yamada@example.co.jp"]
    );
    for mail in &sent {
        assert_eq!(
            mail["Subject"],
            format!("[{key}] VPNに接続できません (受付)"),
            "{mail}"
        );
        assert_eq!(
            mail["In-Reply-To"],
            format!("<ticket.{id}@desk.example.jp>")
        );
        assert_eq!(mail["References"], format!("<ticket.{id}@desk.example.jp>"));
        assert_eq!(mail["Auto-Submitted"], "auto-generated");
        let body = mail["body"].as_str().unwrap();
        assert!(body.contains("受付経路: 電話"), "{body}");
        assert!(!body.contains(SENTINEL), "internal value mailed: {body}");
        assert!(
            !body.contains("社内メモ"),
            "internal field name mailed: {body}"
        );
    }
    assert_eq!(
        sent[0]["to"][0][0].as_str().is_some(),
        to(&sent[0]) != "helpdesk@example.co.jp"
    );

    // The watcher opts out of comments; an internal comment mails nobody; a public one mails
    // the requester only.
    let put = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/me/notification-preferences",
            Some(&watcher),
            Some(&json!({"opted_out": ["commented"]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.json()["opted_out"], json!(["commented"]));
    let watched = app
        .post_json(
            &format!("/api/v1/tickets/{id}/watchers"),
            Some(&watcher),
            &json!({}),
        )
        .await;
    assert!(watched.status.is_success(), "{}", watched.text);
    for (body, internal) in [
        (format!("社内確認: {SENTINEL}"), true),
        ("再起動をお試しください".to_owned(), false),
    ] {
        let posted = app
            .post_json(
                &format!("/api/v1/tickets/{id}/comments"),
                Some(&agent),
                &json!({"body": body, "internal": internal}),
            )
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    }
    run_jobs(&app).await;
    let sent = mails(&sink);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(to(&sent[2]), "yamada@example.co.jp");
    let body = sent[2]["body"].as_str().unwrap();
    assert!(
        body.contains("--- コメント ---\n再起動をお試しください"),
        "{body}"
    );
    assert!(!body.contains(SENTINEL), "{body}");

    // Closing mails the requester in English.
    for transition in ["start", "close"] {
        let fired = app
            .post_json(
                &format!("/api/v1/tickets/{id}/transitions"),
                Some(&agent),
                &json!({"transition": transition}),
            )
            .await;
        assert_eq!(fired.status, StatusCode::OK, "{}", fired.text);
    }
    run_jobs(&app).await;
    let sent = mails(&sink);
    assert_eq!(sent.len(), 4, "only the rule's state notifies: {sent:?}");
    assert_eq!(
        sent[3]["Subject"],
        format!("[{key}] VPNに接続できません (now Closed)")
    );
    assert!(
        sent[3]["body"]
            .as_str()
            .unwrap()
            .contains("State: Closed\nBy: sato\n")
    );
    let prefs = app
        .get("/api/v1/me/notification-preferences", Some(&requester))
        .await;
    assert_eq!(prefs.json()["opted_out"], json!([]));
}

#[actix_web::test]
async fn rules_are_checked_and_managed_by_admins_and_process_managers() {
    let sink = Sink::start(&[]);
    let app = app_with(&sink).await;
    let t = inquiry_tenant(&app, "notify-rules").await;
    let admin = t.admin_token.clone();
    let bad = [
        (
            json!({"template": "nope", "event": "created", "recipients": ["requester"]}),
            "template",
        ),
        (
            json!({"template": "inquiry", "event": "created", "to_state": "closed",
            "recipients": ["requester"]}),
            "to_state",
        ),
        (
            json!({"template": "inquiry", "event": "transitioned", "to_state": "gone",
            "recipients": ["requester"]}),
            "to_state",
        ),
        (
            json!({"template": "inquiry", "event": "created"}),
            "recipients",
        ),
        (
            json!({"template": "inquiry", "event": "created", "addresses": ["not an address"]}),
            "addresses/0",
        ),
    ];
    for (body, field) in bad {
        let reply = app
            .post_json("/api/v1/notification-rules", Some(&admin), &body)
            .await;
        reply.assert_problem(422, "/problems/validation");
        assert_eq!(reply.json()["errors"][0]["field"], field, "{body}");
    }
    let created = rule(
        &app,
        &admin,
        json!({"template": "inquiry", "event": "assigned",
        "recipients": ["assignee", "assignee", "group"]}),
    )
    .await;
    assert_eq!(created["recipients"], json!(["assignee", "group"]));
    assert_eq!(created["language"], "ja");
    let rid = created["id"].as_str().unwrap();
    let changed = app
        .send(
            app.client
                .patch(app.url(&format!("/api/v1/notification-rules/{rid}")))
                .bearer_auth(&admin)
                .header("If-Match", "\"1\"")
                .json(&json!({"enabled": false, "language": "en"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.json()["version"], 2);
    let stale = app
        .send(
            app.client
                .patch(app.url(&format!("/api/v1/notification-rules/{rid}")))
                .bearer_auth(&admin)
                .header("If-Match", "\"1\"")
                .json(&json!({"enabled": true})),
        )
        .await;
    stale.assert_problem(412, "/problems/precondition-failed");
    let listed = app
        .get("/api/v1/notification-rules?template=inquiry", Some(&admin))
        .await
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let agent = app.user_token(&t, "agent", &["agent"]).await;
    app.get("/api/v1/notification-rules", Some(&agent))
        .await
        .assert_problem(403, "/problems/forbidden");
    let deleted = app
        .delete(&format!("/api/v1/notification-rules/{rid}"), Some(&admin))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get(&format!("/api/v1/notification-rules/{rid}"), Some(&admin))
        .await
        .assert_problem(404, "/problems/not-found");
    assert_eq!(
        app.audit_entries(&admin, "notification_rule.created")
            .await
            .len(),
        1
    );
}

#[actix_web::test]
async fn a_temporary_smtp_failure_is_retried_without_mailing_anyone_twice() {
    // The receiver answers RCPT TO:<tempfail@…> with 451 every time.
    let sink = Sink::start(&[]);
    let app = app_with(&sink).await;
    let t = inquiry_tenant(&app, "notify-retry").await;
    let admin = t.admin_token.clone();
    let (_, agent) = person(&app, &t, "sato", &["agent"]).await;
    rule(
        &app,
        &admin,
        json!({"template": "inquiry", "event": "created",
        "addresses": ["a@example.co.jp", "tempfail@example.co.jp"]}),
    )
    .await;
    app.create(
        "/api/v1/tickets",
        &agent,
        json!({"template": "inquiry", "fields": {"title": "再送の確認"}}),
    )
    .await;
    for _ in 0..3 {
        run_jobs(&app).await;
        app.clock.advance(chrono::TimeDelta::hours(2));
    }
    let got: Vec<String> = mails(&sink).iter().map(|m| to(m).to_owned()).collect();
    assert_eq!(
        got,
        ["a@example.co.jp"],
        "each retry sent only what was missing"
    );
}

#[actix_web::test]
async fn a_reply_to_a_notification_threads_back_into_its_ticket() {
    let Some(clamd) = crate::clamd::ClamdProcess::start_private() else {
        return;
    };
    let sink = Sink::start(&[]);
    let (settings, address) = (sink.settings(SmtpSecurity::None), clamd.address());
    let app = spawn_app_with(move |c| {
        c.smtp = Some(settings);
        c.clamd = Some(stageflow::config::ScannerSettings {
            address,
            timeout: std::time::Duration::from_secs(10),
            max_bytes: 25 * 1024 * 1024,
        });
        c.jobs.tick = std::time::Duration::from_secs(3_600);
    })
    .await;
    let t = inquiry_tenant(&app, "notify-reply").await;
    let admin = t.admin_token.clone();
    let (_, agent) = person(&app, &t, "sato", &["agent"]).await;
    let (yamada, _) = person(&app, &t, "yamada", &["requester"]).await;
    rule(
        &app,
        &admin,
        json!({"template": "inquiry", "event": "created",
        "recipients": ["requester"]}),
    )
    .await;
    let channel = app
        .create(
            "/api/v1/mail-channels",
            &admin,
            json!({"address": "support@example.co.jp", "template": "inquiry"}),
        )
        .await;
    let ticket = app
        .create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "inquiry", "requester": yamada,
                "fields": {"title": "請求書の再発行"}}),
        )
        .await;
    run_jobs(&app).await;
    let sent = mails(&sink);
    assert_eq!(sent.len(), 1);
    let notification_id = sent[0]["Message-ID"].as_str().unwrap();
    // The reply names the notification only in In-Reply-To (no key in its subject).
    let reply = format!(
        "From: yamada@example.co.jp\r\nTo: support@example.co.jp\r\nSubject: Re: ありがとうございます\r\n\
         Message-ID: <reply.1@example.co.jp>\r\nIn-Reply-To: {notification_id}\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n承知しました。\r\n"
    );
    let posted = app
        .send(
            app.client
                .post(app.url(&format!(
                    "/api/v1/mail-channels/{}/messages",
                    channel["id"].as_str().unwrap()
                )))
                .bearer_auth(&admin)
                .header("content-type", "message/rfc822")
                .body(reply.into_bytes()),
        )
        .await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{}", posted.text);
    assert_eq!(posted.json()["status"], "commented", "{}", posted.text);
    assert_eq!(posted.json()["ticket_id"], ticket["id"]);
}

#[actix_web::test]
async fn the_operator_is_mailed_when_a_check_fails_and_when_it_recovers() {
    let Some(mut clamd) = crate::clamd::ClamdProcess::start_private() else {
        return;
    };
    let sink = Sink::start(&[]);
    let (settings, address) = (sink.settings(SmtpSecurity::None), clamd.address());
    let app = spawn_app_with(move |c| {
        c.smtp = Some(settings);
        c.alert_to = vec!["ops@example.jp".to_owned()];
        c.clamd = Some(stageflow::config::ScannerSettings {
            address,
            timeout: std::time::Duration::from_secs(5),
            max_bytes: 25 * 1024 * 1024,
        });
        c.jobs.tick = std::time::Duration::from_secs(3_600);
        // Told at the first failing look (the wait is tested in tests/api/health.rs).
        c.alert_after = std::time::Duration::ZERO;
    })
    .await;
    let check = || stageflow::api::server::check_alerts(&app.state);
    assert_eq!(check().await, 0, "all is well: nothing to say");
    clamd.stop();
    // The scanner's last ping is reused for 5 seconds.
    app.clock.advance(chrono::TimeDelta::seconds(6));
    assert_eq!(check().await, 1);
    assert_eq!(check().await, 0, "no repeat while it stays down");
    // A job waiting more than ten minutes is a backlog.
    let now = app.clock_now();
    app.state
        .db
        .write(move |conn| {
            stageflow::jobs::enqueue(
                conn,
                &stageflow::db::jobs::NewJob::new("test.waiting", json!({}), now),
            )
        })
        .await
        .unwrap();
    app.clock.advance(chrono::TimeDelta::minutes(11));
    // The registered kinds (recurring ones included) run; the unknown kind keeps waiting.
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    assert_eq!(check().await, 1);
    clamd.start();
    app.clock.advance(chrono::TimeDelta::seconds(6));
    assert_eq!(check().await, 1, "the scanner's recovery");
    let sent = mails(&sink);
    let subjects: Vec<&str> = sent
        .iter()
        .map(|m| m["Subject"].as_str().unwrap())
        .collect();
    let node = app.state.jobs.node_id().to_owned();
    assert_eq!(
        subjects,
        [
            format!("[Stageflow] {node}: the virus scanner (clamd) is failing"),
            format!("[Stageflow] {node}: the job queue is failing"),
            format!("[Stageflow] {node}: the virus scanner (clamd) recovered"),
        ]
    );
    assert!(sent.iter().all(|m| to(m) == "ops@example.jp"));
    assert!(
        sent[1]["body"]
            .as_str()
            .unwrap()
            .contains("1 jobs have been due")
    );
    // The platform audit log holds the same story for the operator.
    let operator = app.operator_token().await;
    let down = app.audit_entries(&operator, "ops.dependency_down").await;
    let kinds: Vec<&str> = down
        .iter()
        .map(|e| e["target_id"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2, "{down:?}");
    assert!(kinds.contains(&"scanner") && kinds.contains(&"jobs"));
    let up = app
        .audit_entries(&operator, "ops.dependency_recovered")
        .await;
    assert_eq!(up.len(), 1);
    assert_eq!(up[0]["target_id"], "scanner");
    assert_eq!(up[0]["details"]["node"], node);
}

/// Notification mails per second end to end: 200 tickets each matching one rule with one
/// fixed address, then the job runner's passes send them (its batch runs concurrently over
/// the mailer's pool of 8 connections). Run by hand:
/// `cargo test --release --test api notifications::throughput -- --ignored --nocapture`.
#[actix_web::test]
#[ignore = "a measurement, run by hand (see the doc comment)"]
async fn throughput_of_notification_mail() {
    const TICKETS: usize = 200;
    let sink = Sink::start(&[]);
    let app = app_with(&sink).await;
    let t = inquiry_tenant(&app, "notify-rate").await;
    let (_, agent) = person(&app, &t, "sato", &["agent"]).await;
    rule(
        &app,
        &t.admin_token,
        json!({"template": "inquiry", "event": "created",
        "addresses": ["desk@example.co.jp"]}),
    )
    .await;
    for n in 0..TICKETS {
        app.create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "inquiry", "fields": {"title": format!("速度の確認 {n}")}}),
        )
        .await;
    }
    let started = std::time::Instant::now();
    while sink.messages().len() < TICKETS {
        run_jobs(&app).await;
    }
    let rate = TICKETS as f64 / started.elapsed().as_secs_f64();
    println!(
        "notification mail: {rate:.0} mails/s ({TICKETS} mails, job runner batches, pooled SMTP)"
    );
    assert_eq!(sink.messages().len(), TICKETS);
}
