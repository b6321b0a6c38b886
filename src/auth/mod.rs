//! Credentials → [`Principal`]. This module is the only place that turns a request's credential
//! into an identity and a [`TenantScope`], the value every tenant query starts from.

pub mod password;
mod scope;
pub mod session;
pub mod token;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::db;
use crate::db::audit::Actor;
use crate::domain::identity::{PlatformRole, Role, RoleSet};
use crate::error::ApiError;
use crate::ids::{ApiKeyId, EntityId, GroupId, OperatorId, OrganizationId, TenantId, UserId};
pub use scope::TenantScope;
pub(crate) use scope::for_new_tenant;
use token::SubjectKind;

/// Role name carried by platform operator tokens.
pub const PLATFORM_OPERATOR_ROLE: &str = PlatformRole::PlatformOperator.as_str();
/// Prefix of API key secrets, so they are recognisable in logs and secret scanners.
pub const API_KEY_PREFIX: &str = "sfk_";

#[derive(Debug, Clone)]
pub struct OperatorPrincipal {
    pub id: OperatorId,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub scope: TenantScope,
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub roles: RoleSet,
    pub organization_id: Option<OrganizationId>,
    pub groups: Vec<GroupId>,
}

#[derive(Debug, Clone)]
pub struct ApiKeyPrincipal {
    pub scope: TenantScope,
    pub id: ApiKeyId,
    pub name: String,
    pub roles: RoleSet,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The platform operator: plans, accounts, tenants; belongs to no tenant.
    Operator(OperatorPrincipal),
    /// A tenant user, authenticated by an access token.
    User(UserPrincipal),
    /// An integration client of a tenant, authenticated by an API key.
    ApiKey(ApiKeyPrincipal),
}

/// The authenticated caller of a request and where the request came from.
#[derive(Debug, Clone)]
pub struct Principal {
    pub caller: Caller,
    pub client_addr: Option<String>,
}

impl Principal {
    /// The platform operator, or 403 for anyone else.
    pub fn operator(&self) -> Result<&OperatorPrincipal, ApiError> {
        match &self.caller {
            Caller::Operator(operator) => Ok(operator),
            _ => Err(ApiError::Forbidden(
                "This is a platform operator endpoint.".to_owned(),
            )),
        }
    }

    /// The tenant scope of a caller holding any of `roles`; 403 otherwise (including the
    /// platform operator, who acts in no tenant).
    pub fn require(&self, roles: &[Role]) -> Result<TenantScope, ApiError> {
        let (scope, held) = match &self.caller {
            Caller::Operator(_) => {
                return Err(ApiError::Forbidden(
                    "The platform operator acts in no tenant; use a tenant account.".to_owned(),
                ));
            }
            Caller::User(user) => (user.scope, &user.roles),
            Caller::ApiKey(key) => (key.scope, &key.roles),
        };
        if held.any(roles) {
            Ok(scope)
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::Forbidden(format!(
                "This needs one of the roles: {}.",
                names.join(", ")
            )))
        }
    }

    /// The tenant user behind the request; 403 for API keys and the operator.
    pub fn user(&self) -> Result<&UserPrincipal, ApiError> {
        match &self.caller {
            Caller::User(user) => Ok(user),
            _ => Err(ApiError::Forbidden(
                "This needs a signed-in user, not an API key.".to_owned(),
            )),
        }
    }

    /// The caller's tenant roles; none for the platform operator, who holds
    /// [`PlatformRole::PlatformOperator`] instead.
    pub fn roles(&self) -> Option<&RoleSet> {
        match &self.caller {
            Caller::Operator(_) => None,
            Caller::User(user) => Some(&user.roles),
            Caller::ApiKey(key) => Some(&key.roles),
        }
    }

    /// Where this caller's audit entries go: its tenant, or the platform log for the operator.
    pub fn audit_scope(&self) -> TenantScope {
        match &self.caller {
            Caller::Operator(_) => TenantScope::platform(),
            Caller::User(user) => user.scope,
            Caller::ApiKey(key) => key.scope,
        }
    }

    pub fn actor(&self) -> Actor {
        let (kind, id, name) = match &self.caller {
            Caller::Operator(o) => ("operator", EntityId(o.id.0), o.username.clone()),
            Caller::User(u) => ("user", EntityId(u.id.0), u.username.clone()),
            Caller::ApiKey(k) => ("api_key", EntityId(k.id.0), k.name.clone()),
        };
        Actor {
            kind,
            id: Some(id),
            name,
            client_addr: self.client_addr.clone(),
        }
    }
}

/// The bearer credential of a request, if it has one in the right form.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then(|| credential.to_owned())
}

/// The address of the client as seen by this server (not a forwarded header, which a client
/// could forge).
pub fn client_addr(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|addr| addr.ip().to_string())
}

/// SHA-256 of a high-entropy secret (refresh tokens, API keys), hex-encoded. Such secrets need no
/// slow hash: they cannot be guessed, only stolen, and the hash keeps a stolen database useless.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn authenticate(
    state: web::Data<AppState>,
    credential: Option<String>,
) -> Result<Caller, ApiError> {
    let credential = credential.ok_or(ApiError::Unauthorized)?;
    if let Some(key) = credential.strip_prefix(API_KEY_PREFIX) {
        return authenticate_api_key(&state, key).await;
    }
    let claims = state
        .tokens
        .verify(&credential, state.clock.now())
        .ok_or(ApiError::Unauthorized)?;
    // The account is read on every request so that deactivation, deletion and role changes
    // take effect at once rather than when the token expires.
    match claims.kind {
        SubjectKind::Operator => {
            let id = OperatorId(claims.sub);
            let operator = state
                .db
                .read(move |conn| db::operators::find_active(conn, id).map_err(ApiError::from))
                .await?
                .ok_or(ApiError::Unauthorized)?;
            Ok(Caller::Operator(OperatorPrincipal {
                id,
                username: operator.username,
                display_name: operator.display_name,
            }))
        }
        SubjectKind::User => {
            let tenant = TenantId(claims.tid.ok_or(ApiError::Unauthorized)?);
            let user = load_user(&state, TenantScope::new(tenant), UserId(claims.sub)).await?;
            Ok(Caller::User(user.ok_or(ApiError::Unauthorized)?))
        }
    }
}

/// An active user of a live tenant, with roles and groups.
async fn load_user(
    state: &AppState,
    scope: TenantScope,
    id: UserId,
) -> Result<Option<UserPrincipal>, ApiError> {
    state
        .db
        .read(move |conn| {
            if db::platform::find_tenant(conn, scope.tenant_id())?.is_none() {
                return Ok(None);
            }
            let Some(user) = db::users::find(conn, &scope, id)?.filter(|u| u.active) else {
                return Ok(None);
            };
            let groups = db::users::groups_of(conn, &scope, id)?;
            Ok::<_, ApiError>(Some(UserPrincipal {
                scope,
                id,
                username: user.username,
                display_name: user.display_name,
                roles: RoleSet::from_storage(&user.roles),
                organization_id: user.organization_id,
                groups,
            }))
        })
        .await
}

/// API keys look like `sfk_<tenant>_<key id>_<secret>` (ids as 32 hex digits).
async fn authenticate_api_key(state: &AppState, key: &str) -> Result<Caller, ApiError> {
    let mut parts = key.splitn(3, '_');
    let (Some(tenant), Some(id), Some(_secret)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::Unauthorized);
    };
    let (Ok(tenant), Ok(id)) = (tenant.parse::<uuid::Uuid>(), id.parse::<uuid::Uuid>()) else {
        return Err(ApiError::Unauthorized);
    };
    let scope = TenantScope::new(TenantId(tenant));
    let id = ApiKeyId(id);
    let presented = secret_hash(&format!("{API_KEY_PREFIX}{key}"));
    let now = state.clock.now();
    let key = state
        .db
        .read(move |conn| {
            if db::platform::find_tenant(conn, scope.tenant_id())?.is_none() {
                return Ok(None);
            }
            Ok::<_, ApiError>(db::credentials::find_api_key(conn, &scope, id)?)
        })
        .await?
        .filter(|row| constant_time_eq(row.secret_hash.as_bytes(), presented.as_bytes()))
        .ok_or(ApiError::Unauthorized)?;
    // `last_used_at` is kept to the minute: a write per request would cost more than it tells.
    let stale = key
        .last_used_at
        .is_none_or(|at| now - at.0 >= chrono::TimeDelta::minutes(1));
    if stale {
        state
            .db
            .write(move |conn| {
                db::credentials::touch_api_key(conn, &scope, id, now.into()).map_err(ApiError::from)
            })
            .await?;
    }
    Ok(Caller::ApiKey(ApiKeyPrincipal {
        scope,
        id,
        name: key.name,
        roles: RoleSet::from_storage(&key.roles),
    }))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let credential = bearer(req);
        let client_addr = client_addr(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let caller = authenticate(state.clone(), credential).await?;
            if let Caller::User(UserPrincipal { scope, .. })
            | Caller::ApiKey(ApiKeyPrincipal { scope, .. }) = &caller
            {
                state
                    .usage
                    .record_api_call(scope.tenant_id(), state.clock.now());
            }
            Ok(Principal {
                caller,
                client_addr,
            })
        })
    }
}
