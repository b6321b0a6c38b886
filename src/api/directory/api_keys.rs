//! API keys of integration clients.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{ADMINS, AUDIT_READERS, roles_of};
use crate::api::common::{Page, PageParams, created};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::credentials::ApiKeyRow;
use crate::domain::identity::{Role, RoleSet};
use crate::domain::ids::{ApiKeyId, UserId};
use crate::service::directory::{self as svc};

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    /// The roles the key was given. It acts with those of them its creator still holds; a
    /// deactivated or deleted creator suspends it (401).
    pub roles: Vec<Role>,
    /// The user the key acts for.
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    /// When the key was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the key stops working; `null`: it does not expire.
    pub expires_at: Option<DateTime<Utc>>,
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
            expires_at: row.expires_at.map(|t| t.0),
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
#[schema(example = json!({"name": "ESB adapter", "roles": ["agent"], "expires_at": "2027-04-01T00:00:00Z"}))]
pub struct CreateApiKey {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Only roles the creating user holds (403 otherwise).
    #[validate(length(min = 1, max = 6))]
    #[schema(min_items = 1, max_items = 6)]
    pub roles: Vec<Role>,
    /// Optional expiry: in the future and at most 730 days ahead (422 otherwise).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Lists the tenant's active API keys (never their secrets).
#[utoipa::path(
    tag = "directory", operation_id = "list_api_keys", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of API keys", body = Page<ApiKey>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
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
///
/// The key acts for the calling user: it may hold only roles that user holds, and it stops working
/// when the user is deactivated, and loses any role the user loses.
#[utoipa::path(
    tag = "directory", operation_id = "create_api_key", security(("bearer" = [])),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; `secret` is shown only now", body = CreatedApiKey, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/api-keys")]
pub async fn create_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    principal.user()?;
    body.validate()?;
    let body = body.into_inner();
    let roles = roles_of(&body.roles, "roles")?;
    let now = state.clock.now();
    let (row, secret) = state
        .db
        .write(move |conn| {
            let request = svc::NewApiKeyRequest {
                name: &body.name,
                roles: &roles,
                expires_at: body.expires_at,
            };
            svc::create_api_key(conn, &principal, &scope, &request, now)
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
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
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
