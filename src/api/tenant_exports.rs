//! Tenant exports (docs/operations.md, "Tenant export, import and erasure"): the operator asks
//! for one, follows it, and downloads its archive; a tenant is deleted only after one is done.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{Page, PageParams};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::tenant_exports::TenantExportRow;
use crate::domain::ids::{TenantExportId, TenantId};
use crate::service::tenant_export as svc;

crate::domain::closed_set::closed_set! {
    /// Where an export stands.
    pub enum ExportStatus {
        /// Queued or being written.
        Pending = "pending",
        /// The archive is ready.
        Done = "done",
        Failed = "failed",
    }
}

/// A tenant export.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ad5e2-1c00-7000-8000-000000000002",
    "tenant_id": "019ad5e2-1c00-7000-8000-000000000001", "slug": "acme", "status": "done",
    "requested_at": "2026-11-29T09:00:00Z", "finished_at": "2026-11-29T09:00:04Z",
    "size_bytes": 482133, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "row_count": 12873, "attachments": 41, "error": null,
    "archive": "/api/v1/tenants/019ad5e2-1c00-7000-8000-000000000001/exports/019ad5e2-1c00-7000-8000-000000000002/archive"}))]
pub struct TenantExport {
    pub id: TenantExportId,
    pub tenant_id: TenantId,
    /// The tenant's slug when it was exported.
    pub slug: String,
    pub status: ExportStatus,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The archive's size (`.tar.gz`); null until done.
    pub size_bytes: Option<i64>,
    /// SHA-256 of the archive, hex; null until done.
    pub sha256: Option<String>,
    /// Rows in the archive; null until done.
    pub row_count: Option<i64>,
    /// Attachment contents in the archive; null until done.
    pub attachments: Option<i64>,
    /// Why it failed (details in the node's log).
    pub error: Option<String>,
    /// Where to download the archive; null until done.
    pub archive: Option<String>,
}

impl From<TenantExportRow> for TenantExport {
    fn from(row: TenantExportRow) -> Self {
        let status = ExportStatus::from_storage(&row.status).unwrap_or(ExportStatus::Failed);
        let archive = (status == ExportStatus::Done).then(|| {
            format!(
                "/api/v1/tenants/{}/exports/{}/archive",
                row.exported_tenant, row.id
            )
        });
        Self {
            id: row.id,
            tenant_id: row.exported_tenant,
            slug: row.slug,
            status,
            requested_at: row.requested_at.0,
            finished_at: row.finished_at.map(|t| t.0),
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            row_count: row.row_count,
            attachments: row.attachments,
            error: row.error,
            archive,
        }
    }
}

/// Exports a tenant (platform operator only): a job writes one archive of every row and
/// attachment of the tenant from one consistent snapshot. Answers at once with the pending
/// export; follow it at its `Location`. The archive's format is in docs/operations.md.
#[utoipa::path(
    tag = "platform", operation_id = "create_tenant_export", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)),
    responses(
        (status = 202, description = "Queued", body = TenantExport, headers(("Location" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[post("/tenants/{tenant_id}/exports")]
pub async fn create_tenant_export(
    state: web::Data<AppState>,
    principal: Principal,
    tenant: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    let (tenant, now) = (tenant.into_inner(), state.clock.now());
    let row = state
        .db
        .write(move |conn| svc::request(conn, &principal, tenant, now))
        .await?;
    let location = format!("/api/v1/tenants/{tenant}/exports/{}", row.id);
    Ok(HttpResponse::Accepted()
        .insert_header((actix_web::http::header::LOCATION, location))
        .json(TenantExport::from(row)))
}

/// Lists a tenant's exports, newest first (platform operator only; kept after the tenant is
/// deleted).
#[utoipa::path(
    tag = "platform", operation_id = "list_tenant_exports", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), PageParams),
    responses(
        (status = 200, description = "A page of exports, newest first", body = Page<TenantExport>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/tenants/{tenant_id}/exports")]
pub async fn list_tenant_exports(
    state: web::Data<AppState>,
    principal: Principal,
    tenant: web::Path<TenantId>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<TenantExport>>, ApiError> {
    principal.operator()?;
    let tenant = tenant.into_inner();
    page.parse()?
        .load(
            &state.db,
            move |conn, before, limit| {
                svc::list(conn, &principal, tenant, before.map(TenantExportId), limit)
            },
            |r| r.id.0,
            TenantExport::from,
        )
        .await
}

/// One export (platform operator only).
#[utoipa::path(
    tag = "platform", operation_id = "get_tenant_export", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("export_id" = TenantExportId, Path)),
    responses(
        (status = 200, description = "The export", body = TenantExport),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/tenants/{tenant_id}/exports/{export_id}")]
pub async fn get_tenant_export(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(TenantId, TenantExportId)>,
) -> Result<web::Json<TenantExport>, ApiError> {
    let row = fetch(&state, principal, path.into_inner()).await?;
    Ok(web::Json(row.into()))
}

/// One export of a tenant, for the operator.
async fn fetch(
    state: &AppState,
    principal: Principal,
    (tenant, id): (TenantId, TenantExportId),
) -> Result<TenantExportRow, ApiError> {
    principal.operator()?;
    Ok(state
        .db
        .read(move |conn| svc::get(conn, &principal, tenant, id))
        .await?)
}

/// The archive of a finished export (a `.tar.gz` file, sent as `application/octet-stream`; platform operator
/// only): 404 until the export is done.
#[utoipa::path(
    tag = "platform", operation_id = "get_tenant_export_archive", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("export_id" = TenantExportId, Path)),
    responses(
        (status = 200, description = "The archive (a gzip-compressed tar file)", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/tenants/{tenant_id}/exports/{export_id}/archive")]
pub async fn get_tenant_export_archive(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(TenantId, TenantExportId)>,
) -> Result<HttpResponse, ApiError> {
    let row = fetch(&state, principal, path.into_inner()).await?;
    let dir = svc::export_dir(&state.config.data_dir);
    let path = svc::archive_path(&dir, &row).ok_or(ApiError::NotFound)?;
    let name = row.file_name.clone().unwrap_or_default();
    let bytes = web::block(move || std::fs::read(path))
        .await
        .map_err(ApiError::internal)?
        .map_err(|_| ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(bytes))
}
