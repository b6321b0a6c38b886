//! Authentication: token issue and the caller's identity.

use actix_web::{get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "operator", "password": "correct horse battery staple"}))]
pub struct TokenRequest {
    /// The tenant's slug; omitted by the platform operator.
    #[validate(length(min = 1, max = 63))]
    pub tenant: Option<String>,
    #[validate(length(min = 1, max = 64))]
    pub username: String,
    #[validate(length(min = 1, max = 1024))]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9…", "token_type": "Bearer", "expires_in": 900}))]
pub struct TokenResponse {
    /// HS256 JWT to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Exchanges a username and password for an access token.
///
/// Unknown tenant, unknown user, wrong password and deactivated account all answer the same
/// 401, in the same time, so the response reveals nothing about which accounts exist.
#[utoipa::path(
    tag = "auth",
    operation_id = "create_token",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Credentials accepted", body = TokenResponse),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 413, response = super::problems::PayloadTooLarge),
        (status = 415, response = super::problems::UnsupportedMediaType),
        (status = 422, response = super::problems::Unprocessable),
        (status = 503, response = super::problems::Unavailable),
    )
)]
#[post("/auth/token")]
pub async fn create_token(
    state: web::Data<AppState>,
    body: web::Json<TokenRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let request = body.into_inner();
    request.validate()?;
    let issued = crate::auth::login(
        &state,
        request.tenant.as_deref(),
        &request.username,
        &request.password,
    )
    .await?;
    Ok(web::Json(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "kind": "operator", "id": "019ac0d2-5b1e-7c3a-9d41-2f6e8a1b3c4d", "username": "operator",
    "display_name": "Platform operator", "tenant": null, "roles": ["platform_operator"],
    "groups": [], "organization": null
}))]
pub struct Me {
    /// `operator` for the platform operator, `user` for a tenant user.
    pub kind: String,
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    /// The caller's tenant; null for the platform operator.
    pub tenant: Option<Uuid>,
    pub roles: Vec<String>,
    pub groups: Vec<Uuid>,
    pub organization: Option<Uuid>,
}

/// The authenticated caller: identity, tenant, roles, groups and organization.
#[utoipa::path(
    tag = "auth",
    operation_id = "get_me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, response = super::problems::Unauthorized),
        (status = 503, response = super::problems::Unavailable),
    )
)]
#[get("/me")]
pub async fn get_me(principal: Principal) -> web::Json<Me> {
    let roles = principal.roles();
    let me = match principal {
        Principal::Operator {
            id,
            username,
            display_name,
        } => Me {
            kind: "operator".to_owned(),
            id: id.0,
            username,
            display_name,
            tenant: None,
            roles,
            groups: Vec::new(),
            organization: None,
        },
    };
    web::Json(me)
}
