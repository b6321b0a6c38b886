//! The virus scanner's state in `/readyz` and `/metrics` (issue #15 point 4): a real clamd up,
//! stopped (the node stays ready, degraded, and the pending mail shows), started again; the
//! ping cached so probes cannot turn into clamd load.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::clamd::ClamdProcess;
use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};
use crate::mail::inquiry_tenant;

async fn app_with(clamd: &ClamdProcess) -> TestApp {
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

async fn readyz(app: &TestApp) -> Value {
    let reply = app.get("/readyz", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()
}

/// The metrics as (name with labels → value), after checking the content type.
async fn metrics(app: &TestApp) -> Vec<(String, u64)> {
    let reply: Reply = app.get("/metrics", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    reply
        .text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse::<f64>().unwrap())
        })
        // Whole-number series only (these tests read counters and gauges).
        .filter(|(_, value)| value.fract() == 0.0)
        .map(|(name, value)| (name, value as u64))
        .collect()
}

fn metric(all: &[(String, u64)], name: &str) -> Option<u64> {
    all.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

const CLEAN: &str = r#"stageflow_mail_scans_total{verdict="clean"}"#;
const ERROR: &str = r#"stageflow_mail_scans_total{verdict="error"}"#;
const PENDING: &str = "stageflow_mail_messages_pending";
const UP: &str = "stageflow_scanner_up";

const MAIL: &str = "From: =?UTF-8?B?5bGx55Sw?= <yamada@example.co.jp>\r\n\
To: support@example.co.jp\r\n\
Subject: =?UTF-8?B?44OX44Oq44Oz44K/44GM5YuV44GN44G+44Gb44KT?=\r\n\
Message-ID: <health-{n}@example.co.jp>\r\n\
Content-Type: text/plain; charset=UTF-8\r\n\
\r\n\
\u{30d7}\u{30ea}\u{30f3}\u{30bf}\u{304c}\u{52d5}\u{304d}\u{307e}\u{305b}\u{3093}\u{3002}\r\n";

async fn post_mail(app: &TestApp, token: &str, channel: &str, n: u32) -> Reply {
    app.send(
        app.client
            .post(app.url(&format!("/api/v1/mail-channels/{channel}/messages")))
            .bearer_auth(token)
            .header("content-type", "message/rfc822")
            .body(MAIL.replace("{n}", &n.to_string())),
    )
    .await
}

#[actix_web::test]
async fn without_a_scanner_readyz_says_not_configured() {
    let app = spawn_app().await;
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["scanner"], json!({"state": "not_configured"}));
    let figures = metrics(&app).await;
    assert_eq!(metric(&figures, UP), None, "{figures:?}");
    assert_eq!(metric(&figures, PENDING), Some(0));
    assert!(metric(&figures, CLEAN).is_some());
}

#[actix_web::test]
async fn readyz_and_metrics_follow_the_scanner_down_and_up() {
    let Some(mut clamd) = ClamdProcess::start_private() else {
        return;
    };
    let app = app_with(&clamd).await;
    let t = inquiry_tenant(&app, "scanner-health").await;
    let admin = t.admin_token.as_str();
    let channel = app
        .create(
            "/api/v1/mail-channels",
            admin,
            json!({"address": "support@example.co.jp", "template": "inquiry",
                   "defaults": {"channel": "mail"}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["scanner"], json!({"state": "up"}));
    let before = metrics(&app).await;
    assert_eq!(metric(&before, UP), Some(1));
    let filed = post_mail(&app, admin, &channel, 1).await;
    assert_eq!(filed.json()["status"], "filed", "{}", filed.text);
    let after = metrics(&app).await;
    // Process-wide counters (other tests scan too): at least this one scan more.
    assert!(metric(&after, CLEAN).unwrap() > metric(&before, CLEAN).unwrap());
    assert_eq!(metric(&after, PENDING), Some(0));

    clamd.stop();
    // The last ping is reused for 5 seconds: probes do not reach clamd more often.
    assert_eq!(readyz(&app).await["scanner"]["state"], "up");
    app.clock.advance(chrono::TimeDelta::seconds(6));
    let degraded = readyz(&app).await;
    assert_eq!(degraded["status"], "degraded", "{degraded}");
    assert_eq!(degraded["scanner"]["state"], "down");
    let reason = degraded["scanner"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("the virus scanner"), "{reason}");
    assert!(
        !reason.contains('/') && !reason.contains("clamd"),
        "{reason}"
    );

    let pending = post_mail(&app, admin, &channel, 2).await;
    assert_eq!(pending.status, StatusCode::ACCEPTED, "{}", pending.text);
    let down = metrics(&app).await;
    assert_eq!(metric(&down, UP), Some(0));
    assert_eq!(metric(&down, PENDING), Some(1));
    assert!(metric(&down, ERROR).unwrap() > metric(&after, ERROR).unwrap());

    clamd.start();
    app.clock.advance(chrono::TimeDelta::seconds(6));
    let back = readyz(&app).await;
    assert_eq!(back["status"], "ready", "{back}");
    assert_eq!(metric(&metrics(&app).await, UP), Some(1));
}
