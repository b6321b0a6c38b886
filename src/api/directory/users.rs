//! Directory users: list, create, read, edit, deactivate, unlock.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::{ADMINS, DIRECTORY_READERS, roles_of};
use crate::api::common::{Page, PageParams, created, double_option, if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::exports::{self, EXPORT_PAGE, ExportParams, Pages, optional_cell};
use crate::api::state::AppState;
use crate::auth::{Principal, TenantScope};
use crate::db::users::{UserFilter, UserRow};
use crate::domain::credentials::{NewPassword, Username};
use crate::domain::identity::{Role, RoleSet};
use crate::domain::ids::{OrganizationId, UserId};
use crate::domain::tabular::text_cell;
use crate::service::directory::{self as svc, UserInput, UserUpdate};

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
    /// Letters, digits and `. _ - @`; stored in its canonical form (NFKC, lowercase), so
    /// `Ｓａｔｏ` is created as `sato` and is a duplicate of `SATO`.
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub username: String,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub display_name: String,
    #[validate(email, length(max = 254))]
    #[schema(max_length = 254, format = Email)]
    pub email: Option<String>,
    #[validate(length(min = 1, max = 6))]
    #[schema(min_items = 1, max_items = 6)]
    pub roles: Vec<Role>,
    pub organization_id: Option<OrganizationId>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"roles": ["agent", "process_manager"]}))]
pub struct UpdateUser {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub display_name: Option<String>,
    /// `null` removes the address.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[validate(length(min = 1, max = 6))]
    #[schema(min_items = 1, max_items = 6)]
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
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

/// Lists the tenant's users in creation order.
#[utoipa::path(
    tag = "directory", operation_id = "list_users", security(("bearer" = [])),
    params(UserListParams),
    responses(
        (status = 200, description = "A page of users", body = Page<User>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
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

#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserExportFilter {
    /// Only active (`true`) or deactivated (`false`) users.
    pub active: Option<bool>,
    /// Only users holding this role.
    pub role: Option<Role>,
    /// Only members of this organization.
    pub organization_id: Option<OrganizationId>,
}

/// The users of one export, walked a page at a time in creation order.
struct UserPages {
    state: web::Data<AppState>,
    scope: TenantScope,
    filter: UserExportFilter,
    after: Option<UserId>,
    done: bool,
}

impl Pages for UserPages {
    type Item = User;

    async fn next_page(&mut self) -> Result<Vec<User>, ApiError> {
        if self.done {
            return Ok(Vec::new());
        }
        let (scope, after, f) = (self.scope, self.after, self.filter);
        let filter = UserFilter {
            active: f.active,
            organization_id: f.organization_id,
            role: f.role.map(|r| r.as_str().to_owned()),
        };
        let rows = self
            .state
            .db
            .read(move |conn| svc::list_users(conn, &scope, &filter, after, EXPORT_PAGE))
            .await?;
        self.after = rows.last().map(|r| r.id);
        self.done = (rows.len() as i64) < EXPORT_PAGE;
        Ok(rows.into_iter().map(User::from).collect())
    }

    fn header(&self) -> Vec<String> {
        let columns = [
            "id",
            "username",
            "display_name",
            "email",
            "roles",
            "organization",
            "active",
        ];
        columns.iter().map(|c| (*c).to_owned()).collect()
    }

    fn cells(&self, user: &User) -> Vec<String> {
        let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
        vec![
            user.id.to_string(),
            text_cell(user.username.clone()),
            text_cell(user.display_name.clone()),
            optional_cell(user.email.clone(), text_cell),
            roles.join(";"),
            optional_cell(user.organization_id, |o| o.to_string()),
            user.active.to_string(),
        ]
    }
}

/// Exports the tenant's users as CSV (UTF-8 or CP932) or JSON Lines.
///
/// Tenant admins only. Every user matching the list's filters, in creation order. CSV columns: `id`, `username`, `display_name`, `email`, `roles` (role names joined by
/// `;`), `organization` (the organization's id, or empty), `active` (`true`/`false`). Text
/// cells starting with `=`, `+`, `-`, `@`, tab or carriage return get a leading `'`. JSON
/// Lines: one `User` per line, exactly as the list returns it. `encoding=cp932` refuses
/// a name CP932 cannot hold with 422 naming each (row, column).
#[utoipa::path(
    tag = "directory", operation_id = "export_users", security(("bearer" = [])),
    params(ExportParams, UserExportFilter),
    responses(
        (status = 200, description = "The users: CSV (a header row, then one row per user; `charset=utf-8` or `charset=Shift_JIS` for cp932) or JSON Lines (one `User` object per line)",
         content(
            (String = "text/csv", example = "id,username,display_name,email,roles,organization,active\n019ac0d2-4a00-7000-8000-000000000003,yamada,山田 太郎,yamada@example.jp,agent;process_manager,,true\n"),
            (String = "application/x-ndjson", example = "{\"id\":\"019ac0d2-4a00-7000-8000-000000000003\",\"username\":\"yamada\",\"display_name\":\"山田 太郎\",\"email\":\"yamada@example.jp\",\"roles\":[\"agent\",\"process_manager\"],\"organization_id\":null,\"active\":true,\"locked_until\":null,\"version\":1,\"created_at\":\"2026-04-01T09:00:00Z\",\"updated_at\":\"2026-04-01T09:00:00Z\"}\n")
         ),
         headers(("Content-Disposition" = String, description = "`attachment` with the file name `users.csv` or `users.jsonl`"))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::exports::ExportUnprocessable),
    )
)]
#[get("/users/export")]
pub async fn export_users(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<ExportParams>,
    filter: web::Query<UserExportFilter>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let shape = params.shape()?;
    let pages = UserPages {
        state: state.clone(),
        scope,
        filter: filter.into_inner(),
        after: None,
        done: false,
    };
    exports::respond(shape, "users", pages).await
}

/// Creates a user. Refused with `/problems/quota-exceeded` when the account's active users
/// reach the plan's `max_users`. The role grant is audited.
#[utoipa::path(
    tag = "directory", operation_id = "create_user", security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = User, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 422, response = crate::api::problems::Unprocessable),
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
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
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
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
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
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 412, response = crate::api::problems::PreconditionFailed),
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
        (status = 200, description = "Unlocked", body = User, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
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
