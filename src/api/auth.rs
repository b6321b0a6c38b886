//! Authentication: tokens, refresh, logout, the caller's identity and password.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::api::error::ApiError;
use crate::api::extract::client_addr;
use crate::api::state::AppState;
use crate::auth::limits::AddressLimit;
use crate::auth::session::{self, TokenPair};
use crate::auth::{Caller, Principal};
use crate::domain::identity::{PlatformRole, PrincipalKind, Role};

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tenant": "acme", "username": "yamada", "password": "correct horse battery staple"}))]
pub struct TokenRequest {
    /// The tenant's slug; omitted by the platform operator.
    #[validate(length(min = 1, max = 63))]
    #[schema(min_length = 1, max_length = 63)]
    pub tenant: Option<String>,
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub username: String,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9…", "refresh_token": "019ac0d24a0070008000000000000001.Xk3…",
    "token_type": "Bearer", "expires_in": 900}))]
pub struct TokenResponse {
    /// HS256 JWT to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Single-use token for `POST /api/v1/auth/refresh`; rotated on every use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access.token,
            refresh_token: pair.refresh_token,
            token_type: "Bearer".to_owned(),
            expires_in: pair.access.expires_in,
        }
    }
}

/// Refuses a client address that has used up its requests of `limit` for now.
fn rate_limit(state: &AppState, req: &HttpRequest, limit: AddressLimit) -> Result<(), ApiError> {
    Ok(state
        .limits
        .check_address(limit, client_addr(req).as_deref())?)
}

/// Exchanges a username and password for an access token and a refresh token.
///
/// Unknown tenant, unknown user, wrong password, deactivated or locked account all answer the
/// same 401, in the same time, so the response reveals nothing about which accounts exist.
/// After 5 failures within 15 minutes an account is locked for 15 minutes (configurable); a
/// locked account refuses even the right password. Requests are limited per client address
/// and per account (429 with `Retry-After`); when the password-hashing queue has no room for
/// the request's tenant the answer is 503 with `Retry-After`.
#[utoipa::path(
    tag = "auth",
    operation_id = "create_token",
    security(()),
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Credentials accepted", body = TokenResponse),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 413, response = super::problems::PayloadTooLarge),
        (status = 415, response = super::problems::UnsupportedMediaType),
        (status = 422, response = super::problems::Unprocessable),
        (status = 429, response = super::problems::TooManyRequests),
        (status = 503, response = super::problems::Busy),
    )
)]
#[post("/auth/token")]
pub async fn create_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<TokenRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    rate_limit(&state, &req, AddressLimit::Login)?;
    let request = body.into_inner();
    request.validate()?;
    let pair = crate::auth::login::login(
        &state.auth(),
        request.tenant.as_deref(),
        &request.username,
        &request.password,
        client_addr(&req),
    )
    .await?;
    Ok(web::Json(pair.into()))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub refresh_token: String,
}

/// Exchanges a refresh token for a new access token and a new refresh token. Each refresh token
/// works once; presenting a spent one again revokes every token of its login (the family) —
/// someone else holds a copy. A login's tokens renew for at most 30 days from the login
/// (configurable), and not while the account is locked or deactivated. Requests are limited
/// per client address and per account (429 with `Retry-After`).
#[utoipa::path(
    tag = "auth",
    operation_id = "create_refresh",
    security(()),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 415, response = super::problems::UnsupportedMediaType),
        (status = 422, response = super::problems::Unprocessable),
        (status = 429, response = super::problems::TooManyRequests),
        (status = 503, response = super::problems::Unavailable),
    )
)]
#[post("/auth/refresh")]
pub async fn create_refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RefreshRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    rate_limit(&state, &req, AddressLimit::Session)?;
    body.validate()?;
    let pair = session::refresh(&state.auth(), &body.refresh_token, client_addr(&req)).await?;
    Ok(web::Json(pair.into()))
}

/// Ends a login: revokes the refresh token and every token rotated from it. Always 204, also
/// for a token that is unknown or already revoked. Requests are limited per client address and
/// per account (429 with `Retry-After`).
#[utoipa::path(
    tag = "auth",
    operation_id = "delete_session",
    security(()),
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Logged out"),
        (status = 400, response = super::problems::BadRequest),
        (status = 415, response = super::problems::UnsupportedMediaType),
        (status = 422, response = super::problems::Unprocessable),
        (status = 429, response = super::problems::TooManyRequests),
        (status = 503, response = super::problems::Unavailable),
    )
)]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    rate_limit(&state, &req, AddressLimit::Session)?;
    body.validate()?;
    session::logout(&state.auth(), &body.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "kind": "user", "id": "019ac0d2-5b1e-7c3a-9d41-2f6e8a1b3c4d", "username": "yamada",
    "display_name": "山田 太郎", "tenant": "019ac0d2-4a00-7000-8000-000000000001",
    "roles": ["agent"], "groups": [], "organization": null
}))]
pub struct Me {
    pub kind: PrincipalKind,
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    /// The caller's tenant; null for the platform operator.
    pub tenant: Option<Uuid>,
    pub roles: Vec<CallerRole>,
    pub groups: Vec<Uuid>,
    pub organization: Option<Uuid>,
}

/// A role the caller holds: a tenant role, or the platform operator's.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(untagged)]
pub enum CallerRole {
    Tenant(Role),
    Platform(PlatformRole),
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
    let roles = match principal.roles() {
        Some(held) => held.to_vec().into_iter().map(CallerRole::Tenant).collect(),
        None => vec![CallerRole::Platform(PlatformRole::PlatformOperator)],
    };
    let me = match principal.caller {
        Caller::Operator(o) => Me {
            kind: PrincipalKind::Operator,
            id: o.id().0,
            username: o.username().to_owned(),
            display_name: o.display_name().to_owned(),
            tenant: None,
            roles,
            groups: Vec::new(),
            organization: None,
        },
        Caller::User(u) => Me {
            kind: PrincipalKind::User,
            id: u.id.0,
            username: u.username,
            display_name: u.display_name,
            tenant: Some(u.scope.tenant_id().0),
            roles,
            groups: u.groups.iter().map(|g| g.0).collect(),
            organization: u.organization_id.map(|o| o.0),
        },
        Caller::ApiKey(k) => Me {
            kind: PrincipalKind::ApiKey,
            id: k.id.0,
            username: k.name.clone(),
            display_name: k.name,
            tenant: Some(k.scope.tenant_id().0),
            roles,
            groups: Vec::new(),
            organization: None,
        },
    };
    web::Json(me)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "old secret phrase", "new_password": "a new, longer secret phrase"}))]
pub struct ChangePassword {
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: String,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub new_password: String,
}

/// Changes the caller's own password. Needs the current password; the new one must satisfy
/// the password policy (length, not containing the username). Every refresh token of the
/// account is revoked. Requests are limited per client address and per account (429 with
/// `Retry-After`); when the password-hashing queue has no room for the caller's tenant the
/// answer is 503 with `Retry-After`.
#[utoipa::path(
    tag = "auth",
    operation_id = "update_my_password",
    security(("bearer" = [])),
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Password changed"),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 415, response = super::problems::UnsupportedMediaType),
        (status = 422, response = super::problems::Unprocessable),
        (status = 429, response = super::problems::TooManyRequests),
        (status = 503, response = super::problems::Busy),
    )
)]
#[post("/me/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: web::Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    rate_limit(&state, &req, AddressLimit::Session)?;
    body.validate()?;
    session::change_password(
        &state.auth(),
        &principal,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
