//! Operations and discovery endpoints; no authentication.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::db::Backend;
use crate::db::replica::ReplicaState;
use crate::scanner::ScannerAddress;
use crate::service::health::{self, Dependency, ScannerHealth};

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: HealthStatus,
}

crate::domain::closed_set::closed_set! {
    /// The only answer of a live process.
    pub enum HealthStatus {
        Ok = "ok",
    }
}

crate::domain::closed_set::closed_set! {
    /// A ready node's answer (an unready one answers 503): `degraded` while a dependency
    /// other than the database is down or degraded (a down virus scanner holds incoming mail
    /// as `pending`, a down SMTP server delays mail, a full disk refuses attachments).
    pub enum ReadinessStatus {
        Ready = "ready",
        Degraded = "degraded",
    }
}

crate::domain::closed_set::closed_set! {
    /// The virus scanner as the node's last ping found it.
    pub enum ScannerState {
        Up = "up",
        Down = "down",
        NotConfigured = "not_configured",
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"state": "down", "reason": "the virus scanner did not answer in time"}))]
pub struct ScannerReadiness {
    /// `up`; `down` (incoming mail waits as `pending` and is scanned later);
    /// `not_configured` (no `STAGEFLOW_CLAMD`).
    pub state: ScannerState,
    /// Why it is down, without addresses or paths; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<ScannerHealth> for ScannerReadiness {
    fn from(health: ScannerHealth) -> Self {
        let (state, reason) = match health {
            ScannerHealth::Up => (ScannerState::Up, None),
            ScannerHealth::NotConfigured => (ScannerState::NotConfigured, None),
            ScannerHealth::Down { reason } => (ScannerState::Down, Some(reason)),
        };
        Self { state, reason }
    }
}

crate::domain::closed_set::closed_set! {
    /// Which database backend a node runs on.
    pub enum DatabaseBackend {
        Sqlite = "sqlite",
        Postgres = "postgres",
    }
}

crate::domain::closed_set::closed_set! {
    /// One dependency's state: `degraded` works but needs attention soon (the disk is low);
    /// `down` does not work; `not_configured` is not set up on this node.
    pub enum DependencyState {
        Up = "up",
        Degraded = "degraded",
        Down = "down",
        NotConfigured = "not_configured",
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"state": "degraded", "reason": "1800 MiB free for attachments, below the 2048 MiB warning level", "free_bytes": 1_887_436_800_u64, "total_bytes": 53_687_091_200_u64}))]
pub struct DependencyReport {
    pub state: DependencyState,
    /// Why it is degraded or down, without addresses or paths; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The disk only: bytes free on the file system of `STAGEFLOW_DATA_DIR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
    /// The disk only: the size of that file system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    /// The read replica only: how far it was behind the primary at its last check, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
}

impl From<Dependency> for DependencyReport {
    fn from(dependency: Dependency) -> Self {
        let (state, reason) = match dependency {
            Dependency::Up => (DependencyState::Up, None),
            Dependency::Degraded(why) => (DependencyState::Degraded, Some(why)),
            Dependency::Down(why) => (DependencyState::Down, Some(why)),
            Dependency::NotConfigured => (DependencyState::NotConfigured, None),
        };
        Self {
            state,
            reason,
            free_bytes: None,
            total_bytes: None,
            lag_seconds: None,
        }
    }
}

impl DependencyReport {
    /// The read replica as its last check found it: `degraded` while it lags past the bound or
    /// is not checked yet, `down` when unreachable; either way reads go to the primary.
    fn replica(state: Option<ReplicaState>, max_lag: std::time::Duration) -> Self {
        let (dependency, lag) = match state {
            None => (Dependency::NotConfigured, None),
            Some(ReplicaState::Unchecked) => (
                Dependency::Degraded("not checked yet: reads go to the primary".to_owned()),
                None,
            ),
            Some(ReplicaState::Up { lag }) => (Dependency::Up, Some(lag)),
            Some(ReplicaState::Lagging { lag }) => (
                Dependency::Degraded(format!(
                    "{:.1} s behind the primary, over the {} ms bound: reads go to the primary",
                    lag.as_secs_f64(),
                    max_lag.as_millis()
                )),
                Some(lag),
            ),
            Some(ReplicaState::Down { reason }) => (
                Dependency::Down(format!("{reason}: reads go to the primary")),
                None,
            ),
        };
        Self {
            lag_seconds: lag.map(|l| l.as_secs_f64()),
            ..Self::from(dependency)
        }
    }
}

/// Each dependency of the node.
#[derive(Debug, Serialize, ToSchema)]
pub struct DependencyChecks {
    /// Reachable and migrated (always `up` in a 200 answer).
    pub database: DependencyReport,
    /// The virus scanner (`STAGEFLOW_CLAMD`), pinged at most every 5 seconds.
    pub scanner: DependencyReport,
    /// The SMTP server (`STAGEFLOW_SMTP_*`): connected and greeted at most every 30 seconds.
    pub smtp: DependencyReport,
    /// Free space for attachments (`STAGEFLOW_DISK_LOW_FREE_MB`, `STAGEFLOW_DISK_MIN_FREE_MB`).
    pub disk: DependencyReport,
    /// The read replica (`DATABASE_READ_URL`), measured every `STAGEFLOW_REPLICA_CHECK_MILLIS`:
    /// `degraded` while it lags more than `STAGEFLOW_REPLICA_MAX_LAG_MS`, `down` when it cannot
    /// be reached or does not stream; either way reads go to the primary, without errors.
    pub replica: DependencyReport,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "database": "sqlite", "scanner": {"state": "up"},
    "checks": {"database": {"state": "up"}, "scanner": {"state": "up"},
               "smtp": {"state": "not_configured"},
               "disk": {"state": "up", "free_bytes": 40_000_000_000_u64, "total_bytes": 53_687_091_200_u64},
               "replica": {"state": "up", "lag_seconds": 0.02}}}))]
pub struct Readiness {
    /// `ready`: the database answers, its schema is current and every other dependency is up
    /// or not configured; `degraded`: so, but another dependency is down or degraded.
    pub status: ReadinessStatus,
    pub database: DatabaseBackend,
    /// The virus scanner (also in `checks`, kept for earlier clients).
    pub scanner: ScannerReadiness,
    pub checks: DependencyChecks,
}

/// The dependencies other than the database, as this node's probes see them now.
pub struct Checks {
    pub scanner: ScannerHealth,
    pub smtp: Dependency,
    pub disk: (Dependency, Option<health::DiskSpace>),
}

/// Looks at the scanner, the SMTP server (both cached briefly) and the disk.
pub async fn dependency_checks(state: &AppState) -> Checks {
    let now = state.clock.now();
    let scanner = state.scanner_probe.check(clamd_address(state), now).await;
    let smtp = state.smtp_probe.check(state.mailer.as_ref(), now).await;
    let (dir, limits) = (state.config.data_dir.clone(), state.config.disk);
    let disk = web::block(move || health::disk(&dir, limits))
        .await
        .unwrap_or_else(|_| {
            (
                Dependency::Down("the disk check did not finish".to_owned()),
                None,
            )
        });
    Checks {
        scanner,
        smtp,
        disk,
    }
}

/// Liveness: the process is up and serving HTTP. Does not touch the database.
#[utoipa::path(
    tag = "operations",
    operation_id = "get_health",
    security(()),
    responses((status = 200, description = "The process is alive", body = Health))
)]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: HealthStatus::Ok,
    })
}

/// Readiness: the database is reachable and fully migrated; every other dependency's state.
///
/// 200 while the database is reachable and every migration this binary knows is applied;
/// load balancers should route traffic to a node only while this answers 200. The other
/// dependencies are reported in `checks` — the virus scanner (pinged at most every 5 seconds,
/// 2-second deadline), the SMTP server (at most every 30 seconds), the attachment disk, the
/// read replica (its lag) — and one that is down or degraded makes the answer `degraded`,
/// never unready: mail waits as `pending` or in the job queue, reads meant for the replica go
/// to the primary, and nothing is lost. A dependency that stays down is told to
/// the operator (docs/operations.md, "Health and failure notification").
#[utoipa::path(
    tag = "operations",
    operation_id = "get_readiness",
    security(()),
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, response = super::problems::Unavailable),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Readiness>, ApiError> {
    let pending = state
        .db
        .read(crate::service::health::schema_pending)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    if pending {
        return Err(ApiError::Unavailable(
            "database schema is behind this binary; run `stageflow migrate`".to_owned(),
        ));
    }
    let checks = dependency_checks(&state).await;
    let scanner = ScannerReadiness::from(checks.scanner.clone());
    let mut disk = DependencyReport::from(checks.disk.0);
    if let Some(space) = checks.disk.1 {
        disk.free_bytes = Some(space.free_bytes);
        disk.total_bytes = Some(space.total_bytes);
    }
    let checks = DependencyChecks {
        database: DependencyReport::from(Dependency::Up),
        scanner: Dependency::from(&checks.scanner).into(),
        smtp: checks.smtp.into(),
        disk,
        replica: DependencyReport::replica(
            state.db.replica().map(|r| r.state()),
            state
                .db
                .replica()
                .map_or(std::time::Duration::ZERO, |r| r.settings().max_lag),
        ),
    };
    let degraded = [&checks.scanner, &checks.smtp, &checks.disk, &checks.replica]
        .iter()
        .any(|c| matches!(c.state, DependencyState::Down | DependencyState::Degraded));
    Ok(web::Json(Readiness {
        status: if degraded {
            ReadinessStatus::Degraded
        } else {
            ReadinessStatus::Ready
        },
        database: match state.db.backend() {
            Backend::Postgres => DatabaseBackend::Postgres,
            Backend::Sqlite => DatabaseBackend::Sqlite,
        },
        scanner,
        checks,
    }))
}

fn clamd_address(state: &AppState) -> Option<&ScannerAddress> {
    state.config.clamd.as_ref().map(|c| &c.address)
}

/// Metrics in the Prometheus text format: requests per route and status with latency
/// histograms, the database pool, the job queue per kind, webhook failures, mail and the
/// virus scanner, SLA breaches, logins and lock-outs, backups, and the process itself.
///
/// Node-wide figures only (no tenant's data; families are listed in docs/operations.md,
/// "Metrics"). The scanner state is the cached one `/readyz` shows. With
/// `STAGEFLOW_METRICS_TOKEN` set, a scrape must send it as a bearer token (401 otherwise);
/// without it, scrape from inside the deployment only.
#[utoipa::path(
    tag = "operations",
    operation_id = "get_metrics",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String,
            example = json!("# HELP stageflow_http_requests_total HTTP requests answered, by method, route template and status.\n# TYPE stageflow_http_requests_total counter\nstageflow_http_requests_total{method=\"GET\",route=\"/api/v1/tickets\",status=\"200\"} 42\n")),
        (status = 401, response = super::problems::Unauthorized),
        (status = 503, response = super::problems::Unavailable),
    )
)]
#[get("/metrics")]
pub async fn metrics(
    state: web::Data<AppState>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if let Some(token) = &state.config.metrics_token
        && !bearer_matches(&request, token)
    {
        return Err(ApiError::Unauthorized);
    }
    let figures = health::metrics(
        &state.db,
        &state.scanner_probe,
        clamd_address(&state),
        state.clock.now(),
    )
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let mut families = crate::metrics::gather();
    families.extend(
        scrape_families(
            &figures,
            &state.jobs.kinds(),
            state.db.replica().map(|r| r.state()).as_ref(),
            state.clock.now(),
        )
        .map_err(ApiError::internal)?,
    );
    let text = crate::metrics::encode(families).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(text))
}

/// Whether the request's `Authorization: Bearer` token is `token` (compared in constant time).
fn bearer_matches(request: &actix_web::HttpRequest, token: &str) -> bool {
    request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| {
            crate::auth::constant_time_eq(given.trim().as_bytes(), token.as_bytes())
        })
}

/// One scrape's gauges, read from the database and the node's state.
fn scrape_families(
    m: &health::Metrics,
    kinds: &[String],
    replica: Option<&ReplicaState>,
    now: chrono::DateTime<chrono::Utc>,
) -> prometheus::Result<Vec<prometheus::proto::MetricFamily>> {
    use crate::metrics::register;
    use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts};
    let registry = prometheus::Registry::new();
    let gauge = |name: &str, help: &str, value: i64| {
        register(&registry, IntGauge::new(name, help)?).map(|g| g.set(value))
    };
    let gauges = |name: &str, help: &str, label: &str| {
        register(
            &registry,
            IntGaugeVec::new(Opts::new(name, help), &[label])?,
        )
    };
    if let Some(up) = match m.scanner {
        ScannerHealth::Up => Some(1),
        ScannerHealth::Down { .. } => Some(0),
        ScannerHealth::NotConfigured => None,
    } {
        gauge(
            "stageflow_scanner_up",
            "Whether the virus scanner answered the last ping (absent: none configured).",
            up,
        )?;
    }
    let scans = register(
        &registry,
        IntCounterVec::new(
            Opts::new(
                "stageflow_mail_scans_total",
                "Virus scans by this process, by verdict.",
            ),
            &["verdict"],
        )?,
    )?;
    for (verdict, n) in [
        ("clean", m.scans.clean),
        ("infected", m.scans.infected),
        ("error", m.scans.error),
    ] {
        scans.with_label_values(&[verdict]).inc_by(n);
    }
    gauge(
        "stageflow_mail_messages_pending",
        "Incoming mail waiting for a virus scan.",
        m.mail_pending,
    )?;
    let (open, idle, most) = m.pool;
    let pool = gauges(
        "stageflow_db_pool_connections",
        "Database connections of this node's pool, by state: idle or in_use.",
        "state",
    )?;
    pool.with_label_values(&["idle"]).set(i64::from(idle));
    pool.with_label_values(&["in_use"])
        .set(i64::from(open.saturating_sub(idle)));
    gauge(
        "stageflow_db_pool_max_connections",
        "The most connections this node's pool opens (STAGEFLOW_DB_POOL_SIZE).",
        i64::from(most),
    )?;
    if let Some(replica) = replica {
        let (up, lag) = match replica {
            ReplicaState::Up { lag } => (1, Some(lag)),
            ReplicaState::Lagging { lag } => (0, Some(lag)),
            ReplicaState::Down { .. } | ReplicaState::Unchecked => (0, None),
        };
        gauge(
            "stageflow_db_replica_up",
            "Whether the read replica serves reads: reachable, streaming and within \
             STAGEFLOW_REPLICA_MAX_LAG_MS (absent: no DATABASE_READ_URL).",
            up,
        )?;
        if let Some(lag) = lag {
            register(
                &registry,
                prometheus::Gauge::new(
                    "stageflow_db_replica_lag_seconds",
                    "How far the read replica was behind the primary at its last check \
                     (absent while it is down).",
                )?,
            )?
            .set(lag.as_secs_f64());
        }
    }
    let due = gauges(
        "stageflow_jobs_due",
        "Jobs due and waiting for a node, by kind.",
        "kind",
    )?;
    let oldest = gauges(
        "stageflow_jobs_oldest_due_age_seconds",
        "How long the longest-waiting due job of a kind has been due.",
        "kind",
    )?;
    let running = gauges(
        "stageflow_jobs_running",
        "Jobs held by a node's lease, by kind.",
        "kind",
    )?;
    let failed = gauges(
        "stageflow_jobs_failed",
        "Jobs that failed for good and are kept for inspection, by kind.",
        "kind",
    )?;
    // Every kind this node runs shows, idle ones at 0, so a rule sees the series before a
    // backlog.
    for kind in kinds {
        let kind = [kind.as_str()];
        due.with_label_values(&kind).set(0);
        oldest.with_label_values(&kind).set(0);
        running.with_label_values(&kind).set(0);
        failed.with_label_values(&kind).set(0);
    }
    for queue in &m.jobs {
        let kind = [queue.kind.as_str()];
        due.with_label_values(&kind).set(queue.due);
        let age = queue
            .oldest_due
            .map_or(0, |at| (now - at.0).num_seconds().max(0));
        oldest.with_label_values(&kind).set(age);
        running.with_label_values(&kind).set(queue.running);
        failed.with_label_values(&kind).set(queue.failed);
    }
    if let Some(backup) = &m.last_backup {
        gauge(
            "stageflow_backup_last_success_timestamp_seconds",
            "When the newest successful backup finished (Unix time).",
            backup.finished_at.0.timestamp(),
        )?;
        gauge(
            "stageflow_backup_age_seconds",
            "Seconds since the newest successful backup finished.",
            (now - backup.finished_at.0).num_seconds().max(0),
        )?;
        gauge(
            "stageflow_backup_size_bytes",
            "Database copy plus attachment content of the newest successful backup.",
            backup.database_bytes + backup.attachment_bytes,
        )?;
        gauge(
            "stageflow_backup_verified",
            "1 when the newest successful backup passed its restore check, else 0.",
            i64::from(backup.verified == Some(true)),
        )?;
    }
    Ok(registry.gather())
}

/// This OpenAPI 3.1 document, generated from the route table.
#[utoipa::path(
    tag = "operations",
    operation_id = "get_openapi",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
#[get("/openapi.json")]
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.clone())
}
