//! Operations and discovery endpoints; no authentication.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::db::Backend;
use crate::scanner::ScannerAddress;
use crate::service::health::{self, ScannerHealth};

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
    /// A ready node's answer (an unready one answers 503): `degraded` while its virus scanner
    /// is down, which holds incoming mail as `pending` but loses nothing.
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

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "database": "sqlite", "scanner": {"state": "up"}}))]
pub struct Readiness {
    /// `ready`: the database answers and its schema is current; `degraded`: so, but the virus
    /// scanner is down.
    pub status: ReadinessStatus,
    pub database: DatabaseBackend,
    pub scanner: ScannerReadiness,
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

/// Readiness: the database is reachable and fully migrated.
///
/// The database is reachable and every migration this binary knows is applied.
/// Load balancers should route traffic to a node only while this answers 200. The virus
/// scanner's state is reported (pinged at most every 5 seconds, 2-second deadline) but a down
/// scanner does not make the node unready: mail waits as `pending` and nothing is lost.
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
    let scanner = state
        .scanner_probe
        .check(clamd_address(&state), state.clock.now())
        .await;
    let status = match scanner {
        ScannerHealth::Down { .. } => ReadinessStatus::Degraded,
        ScannerHealth::Up | ScannerHealth::NotConfigured => ReadinessStatus::Ready,
    };
    Ok(web::Json(Readiness {
        status,
        database: match state.db.backend() {
            Backend::Postgres => DatabaseBackend::Postgres,
            Backend::Sqlite => DatabaseBackend::Sqlite,
        },
        scanner: scanner.into(),
    }))
}

fn clamd_address(state: &AppState) -> Option<&ScannerAddress> {
    state.config.clamd.as_ref().map(|c| &c.address)
}

/// Metrics in the Prometheus text format: scanner up, scans by verdict, mail pending, and
/// the newest successful backup (its time, age, size, whether it verified).
///
/// Node-wide figures only (no tenant's data); the scanner state is the cached one `/readyz`
/// shows. Scrape it like `/readyz`, from inside the deployment.
#[utoipa::path(
    tag = "operations",
    operation_id = "get_metrics",
    security(()),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String),
        (status = 503, response = super::problems::Unavailable),
    )
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let figures = health::metrics(
        &state.db,
        &state.scanner_probe,
        clamd_address(&state),
        state.clock.now(),
    )
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(prometheus_text(&figures, state.clock.now())))
}

/// The exposition text; `stageflow_scanner_up` is absent when no scanner is configured.
fn prometheus_text(m: &health::Metrics, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut text = String::new();
    let up = match m.scanner {
        ScannerHealth::Up => Some(1),
        ScannerHealth::Down { .. } => Some(0),
        ScannerHealth::NotConfigured => None,
    };
    if let Some(up) = up {
        text.push_str(
            "# HELP stageflow_scanner_up Whether the virus scanner answered the last ping.\n\
             # TYPE stageflow_scanner_up gauge\n",
        );
        text.push_str(&format!("stageflow_scanner_up {up}\n"));
    }
    text.push_str(
        "# HELP stageflow_mail_scans_total Virus scans by this process, by verdict.\n\
         # TYPE stageflow_mail_scans_total counter\n",
    );
    for (verdict, n) in [
        ("clean", m.scans.clean),
        ("infected", m.scans.infected),
        ("error", m.scans.error),
    ] {
        text.push_str(&format!(
            "stageflow_mail_scans_total{{verdict=\"{verdict}\"}} {n}\n"
        ));
    }
    text.push_str(
        "# HELP stageflow_mail_messages_pending Incoming mail waiting for a virus scan.\n\
         # TYPE stageflow_mail_messages_pending gauge\n",
    );
    text.push_str(&format!(
        "stageflow_mail_messages_pending {}\n",
        m.mail_pending
    ));
    if let Some(backup) = &m.last_backup {
        let verified = match backup.verified {
            Some(true) => 1,
            _ => 0,
        };
        for (name, kind, help, value) in [
            (
                "stageflow_backup_last_success_timestamp_seconds",
                "gauge",
                "When the newest successful backup finished (Unix time).",
                backup.finished_at.0.timestamp(),
            ),
            (
                "stageflow_backup_age_seconds",
                "gauge",
                "Seconds since the newest successful backup finished.",
                (now - backup.finished_at.0).num_seconds().max(0),
            ),
            (
                "stageflow_backup_size_bytes",
                "gauge",
                "Database copy plus attachment content of the newest successful backup.",
                backup.database_bytes + backup.attachment_bytes,
            ),
            (
                "stageflow_backup_verified",
                "gauge",
                "1 when the newest successful backup passed its restore check, else 0.",
                verified,
            ),
        ] {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
    }
    text
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
