//! Maintenance announcements (docs/operations.md, "Maintenance announcements"): the operator
//! publishes and withdraws them; every tenant caller reads those meant for its tenant.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::common::{Page, PageParams, created, if_match, ok_with_etag};
use crate::api::error::{ApiError, FieldError, FieldErrorSchema};
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::announcements::{AnnouncementRow, ListFilter};
use crate::domain::ids::{AnnouncementId, TenantId};
use crate::service::announcements as svc;

/// A maintenance announcement.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ad5e2-1c00-7000-8000-000000000001",
    "title": "Database upgrade", "body": "The service is read-only for up to 2 hours.",
    "starts_at": "2026-12-31T16:00:00Z", "ends_at": "2026-12-31T18:00:00Z",
    "tenants": null, "mail_admins": true, "published_at": "2026-11-29T09:00:00Z",
    "withdrawn_at": null, "in_progress": false, "version": 1, "warnings": []}))]
pub struct Announcement {
    pub id: AnnouncementId,
    pub title: String,
    pub body: String,
    /// The window: from `starts_at` (inclusive) to `ends_at` (exclusive).
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The tenants it is for; `null`: every tenant. Only the operator sees the list (a
    /// tenant caller always reads `null`).
    pub tenants: Option<Vec<TenantId>>,
    /// Whether the tenants' admins were mailed.
    pub mail_admins: bool,
    pub published_at: DateTime<Utc>,
    /// When the operator withdrew it (the window is off); null while it stands.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// The window is running now (and it was not withdrawn).
    pub in_progress: bool,
    pub version: i64,
    /// What publishing warned of (only in the answer to the publication): `short_notice`
    /// when the window starts sooner than the notice period.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<FieldErrorSchema>)]
    pub warnings: Vec<FieldError>,
}

impl Announcement {
    fn of(
        row: AnnouncementRow,
        targets: Vec<TenantId>,
        operator: bool,
        now: DateTime<Utc>,
    ) -> Self {
        let in_progress =
            row.withdrawn_at.is_none() && row.starts_at.0 <= now && now < row.ends_at.0;
        Self {
            id: row.id,
            title: row.title,
            body: row.body,
            starts_at: row.starts_at.0,
            ends_at: row.ends_at.0,
            tenants: (operator && !row.all_tenants).then_some(targets),
            mail_admins: row.mail_admins,
            published_at: row.published_at.0,
            withdrawn_at: row.withdrawn_at.map(|t| t.0),
            in_progress,
            version: i64::from(row.version),
            warnings: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "Database upgrade",
    "body": "The service is read-only for up to 2 hours.",
    "starts_at": "2026-12-31T16:00:00Z", "ends_at": "2026-12-31T18:00:00Z",
    "mail_admins": true}))]
pub struct CreateAnnouncement {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    #[validate(length(min = 1, max = 10000))]
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
    pub starts_at: DateTime<Utc>,
    /// After `starts_at` and not yet past.
    pub ends_at: DateTime<Utc>,
    /// The tenants it is for (1–1000 ids of existing tenants); absent or null: every tenant.
    #[serde(default)]
    pub tenants: Option<Vec<TenantId>>,
    /// Also mail each tenant's active admins (those with an address); needs SMTP.
    #[serde(default)]
    pub mail_admins: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnnouncementParams {
    /// Also list announcements whose window is over or that were withdrawn (default false).
    #[serde(default)]
    pub include_past: bool,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

/// Publishes a maintenance announcement to every tenant or some (platform operator only).
///
/// Each targeted tenant gets an `announcement.published` event (tenant admins; webhooks
/// subscribed to it fire) and, with `mail_admins`, a mail to its admins. A window starting
/// sooner than the notice period (`STAGEFLOW_ANNOUNCEMENT_NOTICE_DAYS`, 30 days) is published
/// with a `short_notice` warning. While the window runs, the tenants' API responses carry
/// `Stageflow-Maintenance`.
#[utoipa::path(
    tag = "platform", operation_id = "create_announcement", security(("bearer" = [])),
    request_body = CreateAnnouncement,
    responses(
        (status = 201, description = "Published", body = Announcement, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 415, response = super::problems::UnsupportedMediaType),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/announcements")]
pub async fn create_announcement(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateAnnouncement>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    body.validate()?;
    let body = body.into_inner();
    let input = svc::NewAnnouncement {
        title: body.title,
        body: body.body,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        tenants: body.tenants,
        mail_admins: body.mail_admins,
    };
    let notice = chrono::TimeDelta::days(i64::from(state.config.announcement_notice_days));
    let now = state.clock.now();
    let published = state
        .db
        .write(move |conn| svc::publish(conn, &principal, input, notice, now))
        .await?;
    reload_windows(&state).await;
    let location = format!("/api/v1/announcements/{}", published.row.id);
    let version = i64::from(published.row.version);
    let mut answer = Announcement::of(published.row, published.targets, true, now);
    answer.warnings = published.warnings;
    Ok(created(&answer, version, location))
}

/// Lists announcements, newest first: all of them for the operator, those meant for the
/// caller's tenant for anyone signed in to a tenant. Without `include_past`, only those whose
/// window is still to come or running.
#[utoipa::path(
    tag = "platform", operation_id = "list_announcements", security(("bearer" = [])),
    params(AnnouncementParams),
    responses(
        (status = 200, description = "A page of announcements, newest first", body = Page<Announcement>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/announcements")]
pub async fn list_announcements(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<AnnouncementParams>,
) -> Result<web::Json<Page<Announcement>>, ApiError> {
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor.clone(),
    }
    .parse()?;
    let now = state.clock.now();
    let filter = ListFilter {
        include_past: params.include_past,
        now: now.into(),
    };
    let operator = principal.operator().is_ok();
    page.load(
        &state.db,
        move |conn, before, limit| {
            let rows = svc::list(conn, &principal, filter, before.map(AnnouncementId), limit)?;
            Ok::<_, crate::service::error::ServiceError>(
                rows.into_iter()
                    .map(|(row, targets)| Announcement::of(row, targets, operator, now))
                    .collect(),
            )
        },
        |a| a.id.0,
        std::convert::identity,
    )
    .await
}

/// One announcement, with its ETag: any for the operator; for a tenant caller one meant for
/// its tenant (404 otherwise).
#[utoipa::path(
    tag = "platform", operation_id = "get_announcement", security(("bearer" = [])),
    params(("announcement_id" = AnnouncementId, Path)),
    responses(
        (status = 200, description = "The announcement", body = Announcement, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/announcements/{announcement_id}")]
pub async fn get_announcement(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<AnnouncementId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let operator = principal.operator().is_ok();
    let (row, targets) = state
        .db
        .read(move |conn| svc::get(conn, &principal, id))
        .await?;
    let version = i64::from(row.version);
    let now = state.clock.now();
    Ok(ok_with_etag(
        &Announcement::of(row, targets, operator, now),
        version,
    ))
}

/// Withdraws an announcement (the window is called off; platform operator only): it stays
/// listed with `withdrawn_at` under `include_past`, its tenants get `announcement.withdrawn`,
/// and the maintenance header stops.
#[utoipa::path(
    tag = "platform", operation_id = "delete_announcement", security(("bearer" = [])),
    params(("announcement_id" = AnnouncementId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being withdrawn")),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
    )
)]
#[delete("/announcements/{announcement_id}")]
pub async fn withdraw_announcement(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<AnnouncementId>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    let expected = if_match(&req)?;
    let id = id.into_inner();
    let now = state.clock.now();
    state
        .db
        .write(move |conn| svc::withdraw(conn, &principal, id, expected, now))
        .await?;
    reload_windows(&state).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Re-reads this node's maintenance windows (after a change, or on the reload tick); a
/// failure keeps the old copy and is logged.
pub async fn reload_windows(state: &AppState) {
    let windows = state.maintenance.clone();
    let now = state.clock.now();
    let loaded = state.db.read(move |conn| windows.reload(conn, now)).await;
    if let Err(error) = loaded {
        log::warn!("maintenance windows not reloaded: {error}");
    }
}
