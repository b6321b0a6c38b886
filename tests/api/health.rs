//! `/readyz` per dependency and the operator told of one that stays down (issue #17 point 4):
//! the database, the virus scanner, the SMTP server and the attachment disk, each `up`,
//! `degraded`, `down` or `not_configured`; a down one makes the node `degraded`, never
//! unready; after `STAGEFLOW_ALERT_AFTER_SECONDS` of failing the platform audit log (and the
//! alert mail, tested in notifications.rs) says so.

use reqwest::StatusCode;
use serde_json::Value;
use stageflow::mailer::SmtpSecurity;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::mailer::Sink;

async fn readyz(app: &TestApp) -> Value {
    let reply = app.get("/readyz", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()
}

#[actix_web::test]
async fn readyz_reports_every_dependency() {
    let app = spawn_app().await;
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let checks = &ready["checks"];
    assert_eq!(checks["database"]["state"], "up");
    assert_eq!(checks["scanner"]["state"], "not_configured");
    assert_eq!(checks["smtp"]["state"], "not_configured");
    assert_eq!(checks["disk"]["state"], "up", "{ready}");
    let free = checks["disk"]["free_bytes"].as_u64().unwrap();
    let total = checks["disk"]["total_bytes"].as_u64().unwrap();
    assert!(free > 0 && free <= total);
}

#[actix_web::test]
async fn a_reachable_smtp_server_is_up_and_a_closed_port_is_down() {
    let sink = Sink::start(&[]);
    let settings = sink.settings(SmtpSecurity::None);
    let app = spawn_app_with(move |c| c.smtp = Some(settings)).await;
    assert_eq!(readyz(&app).await["checks"]["smtp"]["state"], "up");

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut settings = sink.settings(SmtpSecurity::None);
    settings.port = closed;
    let app = spawn_app_with(move |c| c.smtp = Some(settings)).await;
    let degraded = readyz(&app).await;
    assert_eq!(degraded["status"], "degraded", "{degraded}");
    let smtp = &degraded["checks"]["smtp"];
    assert_eq!(smtp["state"], "down");
    let reason = smtp["reason"].as_str().unwrap();
    assert!(!reason.contains("127.0.0.1") && !reason.contains(&closed.to_string()));
}

#[actix_web::test]
async fn a_low_disk_is_degraded_and_a_full_one_down_yet_the_node_serves() {
    let app = spawn_app_with(|c| c.disk.low_free_bytes = u64::MAX).await;
    let low = readyz(&app).await;
    assert_eq!(low["status"], "degraded");
    assert_eq!(low["checks"]["disk"]["state"], "degraded");
    assert!(
        low["checks"]["disk"]["reason"]
            .as_str()
            .unwrap()
            .contains("warning level")
    );

    let app = spawn_app_with(|c| c.disk.min_free_bytes = u64::MAX).await;
    let full = readyz(&app).await;
    assert_eq!(full["status"], "degraded");
    assert_eq!(full["checks"]["disk"]["state"], "down");
    let reason = full["checks"]["disk"]["reason"].as_str().unwrap();
    assert!(!reason.contains('/'), "no path: {reason}");
}

#[actix_web::test]
async fn a_dependency_down_longer_than_the_wait_is_told_once_in_the_platform_log() {
    let app = spawn_app_with(|c| {
        c.disk.min_free_bytes = u64::MAX;
        c.alert_after = std::time::Duration::from_secs(300);
    })
    .await;
    let operator = app.operator_token().await;
    let check = || stageflow::api::server::check_alerts(&app.state);
    assert_eq!(check().await, 0, "down, but not for long yet");
    app.clock.advance(chrono::TimeDelta::seconds(299));
    assert_eq!(check().await, 0);
    assert!(
        app.audit_entries(&operator, "ops.dependency_down")
            .await
            .is_empty()
    );
    app.clock.advance(chrono::TimeDelta::seconds(1));
    assert_eq!(check().await, 1, "five minutes down: told");
    app.clock.advance(chrono::TimeDelta::seconds(120));
    assert_eq!(check().await, 0, "told once");
    let told = app.audit_entries(&operator, "ops.dependency_down").await;
    assert_eq!(told.len(), 1, "{told:?}");
    let entry = &told[0];
    assert_eq!(entry["target_kind"], "dependency");
    assert_eq!(entry["target_id"], "disk");
    assert_eq!(entry["actor"]["kind"], "system", "{entry}");
    assert!(
        entry["details"]["detail"]
            .as_str()
            .unwrap()
            .contains("below the")
    );
    assert_eq!(entry["details"]["node"], app.state.jobs.node_id());
}
