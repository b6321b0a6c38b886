//! `GET /metrics` (issue #17 point 3): requests counted per route template and status with a
//! latency histogram, the pool, the job queue per kind, logins and lock-outs, the process;
//! and the token that guards it when configured. Counters are process-wide (other tests in the
//! same process add to them), so the tests compare before and after.

use reqwest::StatusCode;

use crate::helpers::{ADMIN_PASSWORD, TestApp, spawn_app, spawn_app_with};

/// The exposition as (series with labels → value), after checking status and content type.
pub(crate) async fn scrape(app: &TestApp, token: Option<&str>) -> Vec<(String, f64)> {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut typed = std::collections::BTreeSet::new();
    let mut series = Vec::new();
    for line in reply.text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let family = name.split('{').next().unwrap();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| family.strip_suffix(s).filter(|b| typed.contains(*b)))
            .unwrap_or(family);
        assert!(typed.contains(base), "{line} before its # TYPE");
        series.push((name.to_owned(), value));
    }
    series
}

pub(crate) fn value(all: &[(String, f64)], series: &str) -> Option<f64> {
    all.iter().find(|(n, _)| n == series).map(|(_, v)| *v)
}

fn family_present(all: &[(String, f64)], family: &str) -> bool {
    all.iter()
        .any(|(n, _)| n == family || n.starts_with(&format!("{family}{{")))
}

const TICKET_404: &str = r#"stageflow_http_requests_total{method="GET",route="/api/v1/tickets/{ticket_id}",status="404"}"#;
const TICKET_404_COUNT: &str = r#"stageflow_http_request_duration_seconds_count{method="GET",route="/api/v1/tickets/{ticket_id}",status="404"}"#;
const TENANT_FAILURES: &str = r#"stageflow_login_failures_total{realm="tenant"}"#;
const TENANT_LOCKOUTS: &str = r#"stageflow_account_lockouts_total{realm="tenant"}"#;

#[actix_web::test]
async fn every_family_is_exposed_and_requests_count_by_route_template() {
    let app = spawn_app_with(|c| c.lockout_threshold = 3).await;
    let tenant = app.tenant("metrics").await;
    let before = scrape(&app, None).await;
    let missing = "/api/v1/tickets/0190b5a0-0000-7000-8000-000000000000";
    for _ in 0..2 {
        app.get(missing, Some(&tenant.admin_token))
            .await
            .assert_problem(404, "/problems/not-found");
    }
    for _ in 0..3 {
        let status = app
            .login_status(Some(&tenant.slug), "admin", "not the password at all")
            .await;
        assert_eq!(status, 401);
    }
    // Locked now: even the right password is refused, and counted.
    assert_eq!(
        app.login_status(Some(&tenant.slug), "admin", ADMIN_PASSWORD)
            .await,
        401
    );
    // Recurring jobs come due once their period has passed (the runner here only ticks when
    // told): the queue shows them with their age.
    app.clock.advance(chrono::TimeDelta::days(8));
    let after = scrape(&app, None).await;

    for family in [
        "stageflow_http_requests_total",
        "stageflow_http_request_duration_seconds_bucket",
        "stageflow_db_pool_connections",
        "stageflow_db_pool_max_connections",
        "stageflow_db_pool_wait_seconds_count",
        "stageflow_jobs_due",
        "stageflow_jobs_oldest_due_age_seconds",
        "stageflow_jobs_running",
        "stageflow_jobs_failed",
        "stageflow_webhook_attempts_total",
        "stageflow_webhook_delivery_failures_total",
        "stageflow_mail_scans_total",
        "stageflow_mail_messages_pending",
        "stageflow_sla_events_total",
        "stageflow_login_failures_total",
        "stageflow_account_lockouts_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(family_present(&after, family), "{family} missing");
    }
    let delta =
        |series: &str| value(&after, series).unwrap_or(0.0) - value(&before, series).unwrap_or(0.0);
    assert!(delta(TICKET_404) >= 2.0, "{after:?}");
    assert!(delta(TICKET_404_COUNT) >= 2.0);
    assert!(delta(TENANT_FAILURES) >= 4.0);
    assert!(delta(TENANT_LOCKOUTS) >= 1.0);
    // The route label is the template, never the raw path with its id.
    assert!(
        after.iter().all(|(n, _)| !n.contains("0190b5a0")),
        "a raw path in a label"
    );
    let in_use = value(&after, r#"stageflow_db_pool_connections{state="in_use"}"#).unwrap();
    let most = value(&after, "stageflow_db_pool_max_connections").unwrap();
    assert!(in_use <= most && most >= 1.0);
    let age = value(
        &after,
        r#"stageflow_jobs_oldest_due_age_seconds{kind="audit.purge"}"#,
    )
    .expect("a recurring kind is listed");
    assert!(age > 0.0, "the housekeeping job is overdue: {age}");
    assert!(value(&after, r#"stageflow_jobs_due{kind="audit.purge"}"#).unwrap() >= 1.0);
    assert!(value(&after, "process_resident_memory_bytes").unwrap() > 0.0);
}

#[actix_web::test]
async fn a_configured_token_guards_the_metrics() {
    let token = "a-metrics-token-of-32-characters";
    let app = spawn_app_with(|c| c.metrics_token = Some(token.to_owned())).await;
    app.get("/metrics", None)
        .await
        .assert_problem(401, "/problems/unauthorized");
    let wrong = app
        .send(
            app.client
                .get(app.url("/metrics"))
                .bearer_auth("a-metrics-token-of-32-characterz"),
        )
        .await;
    wrong.assert_problem(401, "/problems/unauthorized");
    // An operator's access token is not the metrics token.
    let operator = app.operator_token().await;
    app.get("/metrics", Some(&operator))
        .await
        .assert_problem(401, "/problems/unauthorized");
    let figures = scrape(&app, Some(token)).await;
    assert!(family_present(&figures, "stageflow_http_requests_total"));
    // Health probes stay open.
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn without_a_token_the_metrics_are_open() {
    let app = spawn_app().await;
    let figures = scrape(&app, None).await;
    assert!(family_present(&figures, "process_open_fds"));
}
