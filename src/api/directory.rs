//! A tenant's directory: users, groups, organizations and API keys.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::common::{Page, PageParams, created, double_option, if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::credentials::ApiKeyRow;
use crate::db::groups::{GroupRow, OrganizationRow};
use crate::db::users::{UserFilter, UserRow};
use crate::domain::credentials::{NewPassword, Username};
use crate::domain::identity::{OrganizationKind, Role, RoleSet};
use crate::ids::{ApiKeyId, GroupId, OrganizationId, UserId};
use crate::service::directory::{self as svc, UserInput, UserUpdate};

/// Who may read the directory: everyone who works inside the tenant (partners and requesters
/// do not see other users).
const DIRECTORY_READERS: &[Role] = &[
    Role::TenantAdmin,
    Role::Auditor,
    Role::ProcessManager,
    Role::Agent,
];
const ADMINS: &[Role] = &[Role::TenantAdmin];
const AUDIT_READERS: &[Role] = &[Role::TenantAdmin, Role::Auditor];

fn roles_of(names: &[Role], field: &str) -> Result<RoleSet, ApiError> {
    RoleSet::new(names.iter().copied())
        .ok_or_else(|| ApiError::validation(field, "required", "needs at least one role"))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub organization_id: Option<OrganizationId>,
    /// False once deactivated; a deactivated user keeps their history.
    pub active: bool,
    /// Set while the account is locked after repeated failed logins.
    pub locked_until: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            email: row.email,
            roles: RoleSet::from_storage(&row.roles).to_vec(),
            organization_id: row.organization_id,
            active: row.active,
            locked_until: row.locked_until.map(|t| t.0),
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "yamada", "password": "a long secret phrase",
    "display_name": "山田 太郎", "email": "yamada@example.jp", "roles": ["agent"]}))]
pub struct CreateUser {
    #[validate(length(min = 1, max = 64))]
    pub username: String,
    #[validate(length(min = 1, max = 1024))]
    pub password: String,
    #[validate(length(min = 1, max = 200))]
    pub display_name: String,
    #[validate(email, length(max = 254))]
    pub email: Option<String>,
    #[validate(length(min = 1, max = 6))]
    pub roles: Vec<Role>,
    pub organization_id: Option<OrganizationId>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"roles": ["agent", "process_manager"]}))]
pub struct UpdateUser {
    #[validate(length(min = 1, max = 200))]
    pub display_name: Option<String>,
    /// `null` removes the address.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[validate(length(min = 1, max = 6))]
    pub roles: Option<Vec<Role>>,
    /// `null` removes the user from their organization.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<OrganizationId>)]
    pub organization_id: Option<Option<OrganizationId>>,
    /// `false` deactivates (like DELETE), `true` reactivates within the plan's user cap.
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// Only active (`true`) or deactivated (`false`) users.
    pub active: Option<bool>,
    /// Only users holding this role.
    pub role: Option<Role>,
    /// Only members of this organization.
    pub organization_id: Option<OrganizationId>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Lists the tenant's users in creation order.
#[utoipa::path(
    tag = "directory", operation_id = "list_users", security(("bearer" = [])),
    params(UserListParams),
    responses(
        (status = 200, description = "A page of users", body = Page<User>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<UserListParams>,
) -> Result<web::Json<Page<User>>, ApiError> {
    let scope = principal.require(DIRECTORY_READERS)?;
    let params = params.into_inner();
    let request = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .parse()?;
    let filter = UserFilter {
        active: params.active,
        organization_id: params.organization_id,
        role: params.role.map(|r| r.as_str().to_owned()),
    };
    request
        .load(
            &state.db,
            move |conn, after, limit| {
                svc::list_users(conn, &scope, &filter, after.map(UserId), limit)
            },
            |r| r.id.0,
            User::from,
        )
        .await
}

/// Creates a user. Refused with `/problems/quota-exceeded` when the account's active users
/// reach the plan's `max_users`. The role grant is audited.
#[utoipa::path(
    tag = "directory", operation_id = "create_user", security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    body.validate()?;
    let body = body.into_inner();
    let username = Username::parse(&body.username)
        .map_err(|e| ApiError::validation("username", e.code(), e.to_string()))?;
    let password = NewPassword::parse(
        &body.password,
        username.as_str(),
        state.config.password_min_chars,
    )
    .map_err(|e| ApiError::validation("password", e.code(), e.to_string()))?;
    let input = UserInput {
        username: username.to_string(),
        password_hash: state.passwords.hash(password.expose().to_owned()).await?,
        display_name: body.display_name,
        email: body.email,
        roles: roles_of(&body.roles, "roles")?,
        organization_id: body.organization_id,
    };
    let now = state.clock.now();
    let user = state
        .db
        .write(move |conn| svc::create_user(conn, &principal, &scope, &input, now))
        .await?;
    let location = format!("/api/v1/users/{}", user.id);
    let version = user.version;
    Ok(created(&User::from(user), version, location))
}

/// One user, with its ETag.
#[utoipa::path(
    tag = "directory", operation_id = "get_user", security(("bearer" = [])),
    params(("user_id" = UserId, Path)),
    responses(
        (status = 200, description = "The user", body = User, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/users/{user_id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(DIRECTORY_READERS)?;
    let id = id.into_inner();
    let user = state
        .db
        .read(move |conn| svc::get_user(conn, &scope, id))
        .await?;
    let version = user.version;
    Ok(ok_with_etag(&User::from(user), version))
}

/// Edits a user: name, e-mail, roles, organization, active. Role grants and removals are
/// audited.
#[utoipa::path(
    tag = "directory", operation_id = "update_user", security(("bearer" = [])),
    params(("user_id" = UserId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "Updated", body = User, headers(("ETag" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[patch("/users/{user_id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<UserId>,
    body: web::Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    body.validate()?;
    let expected = if_match(&req)?;
    let body = body.into_inner();
    let roles = match &body.roles {
        Some(roles) => Some(roles_of(roles, "roles")?),
        None => None,
    };
    let update = UserUpdate {
        display_name: body.display_name,
        email: body.email,
        roles,
        organization_id: body.organization_id,
        active: body.active,
    };
    let (id, now) = (id.into_inner(), state.clock.now());
    let user = state
        .db
        .write(move |conn| svc::update_user(conn, &principal, &scope, id, expected, update, now))
        .await?;
    let version = user.version;
    Ok(ok_with_etag(&User::from(user), version))
}

/// Deactivates a user: they can no longer sign in, their sessions end, their history stays,
/// and they no longer count against the plan's user cap.
#[utoipa::path(
    tag = "directory", operation_id = "delete_user", security(("bearer" = [])),
    params(("user_id" = UserId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    responses(
        (status = 204, description = "Deactivated"),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 412, response = super::problems::PreconditionFailed),
    )
)]
#[delete("/users/{user_id}")]
pub async fn delete_user(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let expected = if_match(&req)?;
    let (id, now) = (id.into_inner(), state.clock.now());
    state
        .db
        .write(move |conn| svc::deactivate_user(conn, &principal, &scope, id, expected, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lifts a lock-out (after repeated failed logins) before it expires.
#[utoipa::path(
    tag = "directory", operation_id = "update_user_unlock", security(("bearer" = [])),
    params(("user_id" = UserId, Path)),
    responses(
        (status = 200, description = "Unlocked", body = User),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[post("/users/{user_id}/unlock")]
pub async fn unlock_user(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let (id, now) = (id.into_inner(), state.clock.now());
    let user = state
        .db
        .write(move |conn| svc::unlock_user(conn, &principal, &scope, id, now))
        .await?;
    let version = user.version;
    Ok(ok_with_etag(&User::from(user), version))
}

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
    pub name: String,
    #[validate(length(max = 2000))]
    pub description: Option<String>,
}

/// Lists the tenant's groups in creation order.
#[utoipa::path(
    tag = "directory", operation_id = "list_groups", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of groups", body = Page<Group>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
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
        (status = 201, description = "Created", body = Group),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
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
        &request,
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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
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
    pub name: String,
    pub kind: OrganizationKind,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    #[validate(length(min = 1, max = 200))]
    pub name: String,
}

/// Lists the tenant's organizations in creation order.
#[utoipa::path(
    tag = "directory", operation_id = "list_organizations", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of organizations", body = Page<Organization>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
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
        (status = 201, description = "Created", body = Organization),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
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

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub roles: Vec<Role>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    /// When the key was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            roles: RoleSet::from_storage(&row.roles).to_vec(),
            created_by: row.created_by,
            created_at: row.created_at.0,
            last_used_at: row.last_used_at.map(|t| t.0),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The key to send as `Authorization: Bearer <secret>`. Shown only in this response; only
    /// its hash is stored.
    pub secret: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ESB adapter", "roles": ["agent"]}))]
pub struct CreateApiKey {
    #[validate(length(min = 1, max = 200))]
    pub name: String,
    #[validate(length(min = 1, max = 6))]
    pub roles: Vec<Role>,
}

/// Lists the tenant's active API keys (never their secrets).
#[utoipa::path(
    tag = "directory", operation_id = "list_api_keys", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of API keys", body = Page<ApiKey>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/api-keys")]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<ApiKey>>, ApiError> {
    let scope = principal.require(AUDIT_READERS)?;
    let request = page.parse()?;
    request
        .load(
            &state.db,
            move |conn, after, limit| svc::list_api_keys(conn, &scope, after.map(ApiKeyId), limit),
            |r| r.id.0,
            ApiKey::from,
        )
        .await
}

/// Creates an API key for an integration client. The response carries the secret, once.
#[utoipa::path(
    tag = "directory", operation_id = "create_api_key", security(("bearer" = [])),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; `secret` is shown only now", body = CreatedApiKey),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/api-keys")]
pub async fn create_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let created_by = principal.user()?.id;
    body.validate()?;
    let body = body.into_inner();
    let roles = roles_of(&body.roles, "roles")?;
    let now = state.clock.now();
    let (row, secret) = state
        .db
        .write(move |conn| {
            svc::create_api_key(
                conn, &principal, &scope, created_by, &body.name, &roles, now,
            )
        })
        .await?;
    let location = format!("/api/v1/api-keys/{}", row.id);
    Ok(created(
        &CreatedApiKey {
            key: ApiKey::from(row),
            secret,
        },
        1,
        location,
    ))
}

/// Revokes an API key; it stops working at once.
#[utoipa::path(
    tag = "directory", operation_id = "delete_api_key", security(("bearer" = [])),
    params(("api_key_id" = ApiKeyId, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[delete("/api-keys/{api_key_id}")]
pub async fn delete_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let (id, now) = (id.into_inner(), state.clock.now());
    state
        .db
        .write(move |conn| svc::revoke_api_key(conn, &principal, &scope, id, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
