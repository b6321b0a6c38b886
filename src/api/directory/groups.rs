//! Directory groups (teams for assignment) and their members.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{ADMINS, DIRECTORY_READERS};
use crate::api::common::{Page, PageParams, created, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::groups::GroupRow;
use crate::domain::ids::{GroupId, UserId};
use crate::service::directory::{self as svc};

#[derive(Debug, Serialize, ToSchema)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub description: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<GroupRow> for Group {
    fn from(row: GroupRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            description: row.description,
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Service Desk", "description": "First-line support"}))]
pub struct CreateGroup {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

/// Lists the tenant's groups in creation order.
#[utoipa::path(
    tag = "directory", operation_id = "list_groups", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of groups", body = Page<Group>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/groups")]
pub async fn list_groups(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Group>>, ApiError> {
    let scope = principal.require(DIRECTORY_READERS)?;
    let request = page.parse()?;
    request
        .load(
            &state.db,
            move |conn, after, limit| svc::list_groups(conn, &scope, after.map(GroupId), limit),
            |r| r.id.0,
            Group::from,
        )
        .await
}

/// Creates a group (team) for assignment.
#[utoipa::path(
    tag = "directory", operation_id = "create_group", security(("bearer" = [])),
    request_body = CreateGroup,
    responses(
        (status = 201, description = "Created", body = Group, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/groups")]
pub async fn create_group(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateGroup>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    body.validate()?;
    let body = body.into_inner();
    let now = state.clock.now();
    let group = state
        .db
        .write(move |conn| {
            svc::create_group(
                conn,
                &principal,
                &scope,
                &body.name,
                body.description.as_deref().unwrap_or(""),
                now,
            )
        })
        .await?;
    let location = format!("/api/v1/groups/{}", group.id);
    let version = group.version;
    Ok(created(&Group::from(group), version, location))
}

/// One group, with its ETag.
#[utoipa::path(
    tag = "directory", operation_id = "get_group", security(("bearer" = [])),
    params(("group_id" = GroupId, Path)),
    responses(
        (status = 200, description = "The group", body = Group, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/groups/{group_id}")]
pub async fn get_group(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<GroupId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(DIRECTORY_READERS)?;
    let id = id.into_inner();
    let group = state
        .db
        .read(move |conn| svc::get_group(conn, &scope, id))
        .await?;
    let version = group.version;
    Ok(ok_with_etag(&Group::from(group), version))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMember {
    pub user_id: UserId,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddGroupMember {
    pub user_id: UserId,
}

/// Lists a group's members in user-id order.
#[utoipa::path(
    tag = "directory", operation_id = "list_group_members", security(("bearer" = [])),
    params(("group_id" = GroupId, Path), PageParams),
    responses(
        (status = 200, description = "A page of members", body = Page<GroupMember>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/groups/{group_id}/members")]
pub async fn list_group_members(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<GroupId>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<GroupMember>>, ApiError> {
    let scope = principal.require(DIRECTORY_READERS)?;
    let request = page.parse()?;
    let id = id.into_inner();
    let rows = state
        .db
        .read(move |conn| {
            svc::group_members(
                conn,
                &scope,
                id,
                request.after.map(UserId),
                PageParams::fetch_limit(&request),
            )
        })
        .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        request.limit,
        |u| u.0,
        |user_id| GroupMember { user_id },
    )))
}

/// Adds a user to a group. Adding a member twice is harmless (200 instead of 201).
#[utoipa::path(
    tag = "directory", operation_id = "create_group_member", security(("bearer" = [])),
    params(("group_id" = GroupId, Path)),
    request_body = AddGroupMember,
    responses(
        (status = 201, description = "Added", body = GroupMember),
        (status = 200, description = "Already a member", body = GroupMember),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/groups/{group_id}/members")]
pub async fn add_group_member(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<GroupId>,
    body: web::Json<AddGroupMember>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let (group, user, now) = (id.into_inner(), body.user_id, state.clock.now());
    let added = state
        .db
        .write(move |conn| svc::add_group_member(conn, &principal, &scope, group, user, now))
        .await?;
    let body = GroupMember { user_id: user };
    Ok(if added {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// Removes a user from a group.
#[utoipa::path(
    tag = "directory", operation_id = "delete_group_member", security(("bearer" = [])),
    params(("group_id" = GroupId, Path), ("user_id" = UserId, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[delete("/groups/{group_id}/members/{user_id}")]
pub async fn remove_group_member(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(GroupId, UserId)>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let ((group, user), now) = (path.into_inner(), state.clock.now());
    state
        .db
        .write(move |conn| svc::remove_group_member(conn, &principal, &scope, group, user, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
