//! Directory organizations: internal departments and external partners.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{ADMINS, DIRECTORY_READERS};
use crate::api::common::{Page, PageParams, created, if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::groups::OrganizationRow;
use crate::domain::identity::OrganizationKind;
use crate::domain::ids::OrganizationId;
use crate::service::directory::{self as svc};

#[derive(Debug, Serialize, ToSchema)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub kind: OrganizationKind,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<OrganizationRow> for Organization {
    fn from(row: OrganizationRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            kind: OrganizationKind::from_storage(&row.kind),
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Partner Systems K.K.", "kind": "partner"}))]
pub struct CreateOrganization {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub kind: OrganizationKind,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
}

/// Lists the tenant's organizations in creation order.
#[utoipa::path(
    tag = "directory", operation_id = "list_organizations", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of organizations", body = Page<Organization>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/organizations")]
pub async fn list_organizations(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Organization>>, ApiError> {
    let scope = principal.require(DIRECTORY_READERS)?;
    let request = page.parse()?;
    request
        .load(
            &state.db,
            move |conn, after, limit| {
                svc::list_organizations(conn, &scope, after.map(OrganizationId), limit)
            },
            |r| r.id.0,
            Organization::from,
        )
        .await
}

/// Creates an internal department or an external partner organization.
#[utoipa::path(
    tag = "directory", operation_id = "create_organization", security(("bearer" = [])),
    request_body = CreateOrganization,
    responses(
        (status = 201, description = "Created", body = Organization, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/organizations")]
pub async fn create_organization(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateOrganization>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    body.validate()?;
    let body = body.into_inner();
    let now = state.clock.now();
    let org = state
        .db
        .write(move |conn| {
            svc::create_organization(conn, &principal, &scope, &body.name, body.kind, now)
        })
        .await?;
    let location = format!("/api/v1/organizations/{}", org.id);
    let version = org.version;
    Ok(created(&Organization::from(org), version, location))
}

/// One organization, with its ETag.
#[utoipa::path(
    tag = "directory", operation_id = "get_organization", security(("bearer" = [])),
    params(("organization_id" = OrganizationId, Path)),
    responses(
        (status = 200, description = "The organization", body = Organization, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/organizations/{organization_id}")]
pub async fn get_organization(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<OrganizationId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(DIRECTORY_READERS)?;
    let id = id.into_inner();
    let org = state
        .db
        .read(move |conn| svc::get_organization(conn, &scope, id))
        .await?;
    let version = org.version;
    Ok(ok_with_etag(&Organization::from(org), version))
}

/// Renames an organization.
#[utoipa::path(
    tag = "directory", operation_id = "update_organization", security(("bearer" = [])),
    params(("organization_id" = OrganizationId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = UpdateOrganization,
    responses(
        (status = 200, description = "Updated", body = Organization, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[patch("/organizations/{organization_id}")]
pub async fn update_organization(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<OrganizationId>,
    body: web::Json<UpdateOrganization>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    body.validate()?;
    let expected = if_match(&req)?;
    let (id, now, name) = (id.into_inner(), state.clock.now(), body.into_inner().name);
    let org = state
        .db
        .write(move |conn| {
            svc::rename_organization(conn, &principal, &scope, id, expected, &name, now)
        })
        .await?;
    let version = org.version;
    Ok(ok_with_etag(&Organization::from(org), version))
}
