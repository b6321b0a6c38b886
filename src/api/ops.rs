//! Operations and discovery endpoints; no authentication.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::db::Backend;

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
    /// The only answer of a ready node (an unready one answers 503).
    pub enum ReadinessStatus {
        Ready = "ready",
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
#[schema(example = json!({"status": "ready", "database": "sqlite"}))]
pub struct Readiness {
    /// `ready`: the database answers and its schema is current.
    pub status: ReadinessStatus,
    pub database: DatabaseBackend,
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
/// Load balancers should route traffic to a node only while this answers 200.
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
    Ok(web::Json(Readiness {
        status: ReadinessStatus::Ready,
        database: match state.db.backend() {
            Backend::Postgres => DatabaseBackend::Postgres,
            Backend::Sqlite => DatabaseBackend::Sqlite,
        },
    }))
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
