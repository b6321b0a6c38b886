//! The operator's view of backups (docs/operations.md): each run, whether its generation
//! verified, newest first.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{Page, PageParams};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::backup::BackupRunRow;
use crate::domain::ids::BackupRunId;
use crate::service::backup as svc;

/// How a backup run ended.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    Ok,
    Failed,
}

/// A backup run: the generation it wrote and the check of it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ad1c2-7a30-7cc2-9a61-2f1d6a0e4b11",
    "generation": "20261129T030000.000Z", "status": "ok", "error": null,
    "started_at": "2026-11-29T03:00:00Z", "finished_at": "2026-11-29T03:00:04Z",
    "database_bytes": 2609171, "row_count": 122206, "attachments": 12,
    "attachment_bytes": 480213, "copied": true, "verified_at": "2026-11-29T03:00:06Z",
    "verified": true, "verify_error": null, "made_by": "node-a"}))]
pub struct BackupRun {
    pub id: BackupRunId,
    /// The generation's name (its start instant, UTC), as `stageflow backup list` shows it
    /// and `stageflow restore` takes it; null when the run failed before writing one.
    pub generation: Option<String>,
    pub status: BackupStatus,
    /// Why the run failed.
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Size of the database copy (compressed).
    pub database_bytes: i64,
    /// Rows in every table of the copy.
    pub row_count: i64,
    /// Attachment content files the copy references (each kept once, by content hash).
    pub attachments: i64,
    pub attachment_bytes: i64,
    /// Copied to the second location (`STAGEFLOW_BACKUP_COPY_DIR`).
    pub copied: bool,
    /// When the generation was checked (restored into a scratch database); null: not yet.
    pub verified_at: Option<DateTime<Utc>>,
    /// Whether the check passed; null: not checked.
    pub verified: Option<bool>,
    pub verify_error: Option<String>,
    /// The node whose job made it, or `cli`.
    pub made_by: String,
}

impl From<BackupRunRow> for BackupRun {
    fn from(row: BackupRunRow) -> Self {
        Self {
            id: row.id,
            generation: row.generation,
            status: if row.status == "ok" {
                BackupStatus::Ok
            } else {
                BackupStatus::Failed
            },
            error: row.error,
            started_at: row.started_at.0,
            finished_at: row.finished_at.0,
            database_bytes: row.database_bytes,
            row_count: row.row_count,
            attachments: row.attachments,
            attachment_bytes: row.attachment_bytes,
            copied: row.copied,
            verified_at: row.verified_at.map(|t| t.0),
            verified: row.verified,
            verify_error: row.verify_error,
            made_by: row.made_by,
        }
    }
}

/// Lists backup runs, newest first: by the `backup.run` job (every
/// `STAGEFLOW_BACKUP_INTERVAL_HOURS`) and by `stageflow backup`. Platform operator only.
#[utoipa::path(
    tag = "platform", operation_id = "list_backups", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of backup runs, newest first", body = Page<BackupRun>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/backups")]
pub async fn list_backups(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<BackupRun>>, ApiError> {
    principal.operator()?;
    let request = page.parse()?;
    request
        .load(
            &state.db,
            move |conn, before, limit| svc::runs(conn, before.map(BackupRunId), limit),
            |r| r.id.0,
            BackupRun::from,
        )
        .await
}
