//! The process's Prometheus metrics (`GET /metrics`, docs/operations.md "Metrics"), kept with
//! the `prometheus` crate: counters and histograms that code paths add to as they run (HTTP
//! requests, pool waits, webhook attempts, SLA breaches, logins) plus the process collector
//! (CPU, resident memory, open files). Figures read from the database at scrape time (job
//! queue, mail, backups) are gauges built per scrape by the API layer, and both are encoded
//! together by [`encode`].
//!
//! Process-wide, as Prometheus counters are: every server the process runs (the tests run
//! many) adds to the same families, and a scrape shows this process's totals since it started.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Latency buckets of an HTTP request, in seconds: 1 ms to 30 s.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of a pooled-connection wait, in seconds: 50 µs to 30 s (the connect timeout's range).
const POOL_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];
/// Buckets of a SQLite group commit, in request writes per transaction.
const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// The label value of a request no route matched (a 404, a refused preflight…): one series for
/// all of them, so probing clients cannot grow the label set.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The families code paths add to.
struct Families {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    pool_wait: Histogram,
    routed_reads: IntCounterVec,
    webhook_attempts: IntCounterVec,
    webhook_failures: IntCounterVec,
    sla_announced: IntCounterVec,
    login_failures: IntCounterVec,
    lockouts: IntCounterVec,
    deferred_caller_checks: IntCounterVec,
    group_commits: Histogram,
}

/// `None` only if a definition were invalid (a bug the unit tests catch); recording is then
/// skipped rather than failing requests.
static FAMILIES: LazyLock<Option<Families>> = LazyLock::new(|| {
    Families::new()
        .inspect_err(|e| log::error!("metrics unavailable: {e}"))
        .ok()
});

/// Registers `collector` with `registry` and hands it back.
pub fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> prometheus::Result<C> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}

impl Families {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let http_requests = counter(
            &registry,
            "stageflow_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            &["method", "route", "status"],
        )?;
        let http_duration = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "stageflow_http_request_duration_seconds",
                    "Time from a request's arrival to its response head, by method, route \
                     template and status.",
                )
                .buckets(HTTP_BUCKETS.to_vec()),
                &["method", "route", "status"],
            )?,
        )?;
        let pool_wait = register(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "stageflow_db_pool_wait_seconds",
                    "Time spent waiting for a pooled database connection.",
                )
                .buckets(POOL_BUCKETS.to_vec()),
            )?,
        )?;
        let routed_reads = counter(
            &registry,
            "stageflow_db_routed_reads_total",
            "Heavy reads (lists, searches, exports, statistics, reports) with a read replica \
             configured, by the server that answered (replica or primary) and why: replica, \
             fresh (Cache-Control: no-cache), own_write (the replica had not replayed the \
             caller's recent write), lagging, down or unchecked.",
            &["served_by", "reason"],
        )?;
        let webhook_attempts = counter(
            &registry,
            "stageflow_webhook_attempts_total",
            "Webhook delivery attempts, by result: delivered, retrying (5xx, 429, no answer) or \
             failed (any other answer, or a refused address).",
            &["result"],
        )?;
        let webhook_failures = counter(
            &registry,
            "stageflow_webhook_delivery_failures_total",
            "Webhook delivery attempts that did not deliver (retrying or failed).",
            &["result"],
        )?;
        let sla_announced = counter(
            &registry,
            "stageflow_sla_events_total",
            "SLA clocks announced, by kind: at_risk or breached.",
            &["kind"],
        )?;
        let login_failures = counter(
            &registry,
            "stageflow_login_failures_total",
            "Refused password logins (wrong or unknown credentials, locked or inactive accounts), \
             by realm: tenant or platform.",
            &["realm"],
        )?;
        let deferred_caller_checks = counter(
            &registry,
            "stageflow_auth_deferred_checks_total",
            "Reads whose caller this node remembered and checked in the request's own database \
             work, by verdict: passed, or changed (the request was answered again with the \
             caller read at once).",
            &["verdict"],
        )?;
        let group_commits = register(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "stageflow_db_group_commit_writes",
                    "SQLite: request writes committed together in one transaction (group \
                     commit), per transaction.",
                )
                .buckets(GROUP_BUCKETS.to_vec()),
            )?,
        )?;
        let lockouts = counter(
            &registry,
            "stageflow_account_lockouts_total",
            "Accounts locked by repeated failed logins, by realm: tenant or platform.",
            &["realm"],
        )?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            pool_wait,
            routed_reads,
            webhook_attempts,
            webhook_failures,
            sla_announced,
            login_failures,
            lockouts,
            deferred_caller_checks,
            group_commits,
        })
    }
}

/// The method label: the standard methods as they are, anything else as `other`.
fn method_label(method: &str) -> &str {
    match method {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
        _ => "other",
    }
}

/// One answered HTTP request; `route` is the route template (`/api/v1/tickets/{ticket_id}`),
/// or [`UNMATCHED_ROUTE`].
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let Some(families) = FAMILIES.as_ref() else {
        return;
    };
    let status = status.to_string();
    let labels = [method_label(method), route, status.as_str()];
    families.http_requests.with_label_values(&labels).inc();
    families
        .http_duration
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
}

/// One wait for a pooled connection (whether it got one or timed out).
pub fn pool_wait(elapsed: Duration) {
    if let Some(families) = FAMILIES.as_ref() {
        families.pool_wait.observe(elapsed.as_secs_f64());
    }
}

/// One heavy read with a replica configured: who served it, and why (`db::replica::Routed`).
pub fn routed_read(served_by: &str, reason: &str) {
    if let Some(families) = FAMILIES.as_ref() {
        families
            .routed_reads
            .with_label_values(&[served_by, reason])
            .inc();
    }
}

/// The result of one webhook delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookResult {
    Delivered,
    Retrying,
    Failed,
}

impl WebhookResult {
    fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }
}

/// One webhook delivery attempt and its result.
pub fn webhook_attempt(result: WebhookResult) {
    let Some(families) = FAMILIES.as_ref() else {
        return;
    };
    let label = result.label();
    families.webhook_attempts.with_label_values(&[label]).inc();
    if result != WebhookResult::Delivered {
        families.webhook_failures.with_label_values(&[label]).inc();
    }
}

/// `n` SLA clocks announced as at risk (`breached` false) or breached, once committed.
pub fn sla_announced(breached: bool, n: usize) {
    let kind = if breached { "breached" } else { "at_risk" };
    let Some(families) = FAMILIES.as_ref() else {
        return;
    };
    families
        .sla_announced
        .with_label_values(&[kind])
        .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
}

/// The realm of a login: a tenant's user or a platform operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    Tenant,
    Platform,
}

impl Realm {
    fn label(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Platform => "platform",
        }
    }
}

/// One refused login.
pub fn login_failed(realm: Realm) {
    if let Some(families) = FAMILIES.as_ref() {
        families
            .login_failures
            .with_label_values(&[realm.label()])
            .inc();
    }
}

/// One account locked by failed logins.
pub fn account_locked(realm: Realm) {
    if let Some(families) = FAMILIES.as_ref() {
        families.lockouts.with_label_values(&[realm.label()]).inc();
    }
}

/// One read whose remembered caller was checked in its own database work: `passed`, or
/// `changed` (answered again).
pub fn deferred_caller_check(passed: bool) {
    if let Some(families) = FAMILIES.as_ref() {
        let verdict = if passed { "passed" } else { "changed" };
        families
            .deferred_caller_checks
            .with_label_values(&[verdict])
            .inc();
    }
}

/// One SQLite group commit of `writes` request writes.
pub fn group_commit(writes: usize) {
    if let Some(families) = FAMILIES.as_ref() {
        families.group_commits.observe(writes as f64);
    }
}

/// The process's own families (counters, histograms, process figures).
pub fn gather() -> Vec<MetricFamily> {
    let Some(families) = FAMILIES.as_ref() else {
        return Vec::new();
    };
    // Label-less series and zero-valued label sets are shown from the start, so a dashboard
    // and an alert rule find every family before its first event.
    for realm in [Realm::Tenant, Realm::Platform] {
        families.login_failures.with_label_values(&[realm.label()]);
        families.lockouts.with_label_values(&[realm.label()]);
    }
    for result in [WebhookResult::Retrying, WebhookResult::Failed] {
        families
            .webhook_failures
            .with_label_values(&[result.label()]);
    }
    for result in [
        WebhookResult::Delivered,
        WebhookResult::Retrying,
        WebhookResult::Failed,
    ] {
        families
            .webhook_attempts
            .with_label_values(&[result.label()]);
    }
    for kind in ["at_risk", "breached"] {
        families.sla_announced.with_label_values(&[kind]);
    }
    families.registry.gather()
}

/// The exposition text (format 0.0.4) of the process's families and a scrape's, sorted by name.
pub fn encode(mut families: Vec<MetricFamily>) -> prometheus::Result<String> {
    families.sort_by(|a, b| a.name().cmp(b.name()));
    TextEncoder::new().encode_to_string(&families)
}

/// The content type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_shown_before_their_first_event() {
        assert!(FAMILIES.is_some(), "every definition is valid");
        let text = encode(gather()).unwrap();
        for family in [
            "stageflow_login_failures_total",
            "stageflow_account_lockouts_total",
            "stageflow_webhook_delivery_failures_total",
            "stageflow_sla_events_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} counter")),
                "{family}"
            );
        }
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("BREW"), "other");
    }
}
