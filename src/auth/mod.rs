//! Credentials → [`Principal`]. This module is the only place that turns a request's credential
//! into an identity and a [`TenantScope`], the value every tenant query starts from.

pub mod admission;
mod cache;
pub mod keys;
pub mod limits;
pub mod lockout;
pub mod login;
pub mod password;
pub mod recovery;
mod scope;
pub mod session;
pub mod token;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::config::Config;
use crate::db::audit::Actor;
use crate::db::{self, Database, DbError};
use crate::domain::error::FieldError;
use crate::domain::identity::{PlatformRole, Role, RoleSet};
use crate::domain::ids::{
    ApiKeyId, EntityId, GroupId, OperatorId, OrganizationId, TenantId, UserId,
};
pub use cache::PrincipalCache;
pub use scope::TenantScope;

/// The scope of background work acting for the tenant its job names (a job row written in
/// that tenant's own transaction; see `crate::jobs`).
pub(crate) fn job_scope(tenant: crate::domain::ids::TenantId) -> TenantScope {
    TenantScope::new(tenant)
}
pub(crate) use scope::{for_new_tenant, for_operator};

/// The scope of the platform's own log, for node-level entries no caller made (a dependency
/// that stays down): the operator reads them in `GET /api/v1/audit-log`.
pub(crate) fn platform_log_scope() -> TenantScope {
    TenantScope::platform()
}
use token::SubjectKind;

/// Why a credential or a session request was refused. The API layer maps it to a problem.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing, invalid or expired credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// Authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A session request with bad input (a new password that is too weak, …).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Too many requests from this address or for this account.
    #[error("rate limited")]
    RateLimited { retry_after_seconds: u64 },
    /// The password-hashing queue has no slot for this request now.
    #[error("busy")]
    Busy { retry_after_seconds: u64 },
    /// The text is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    pub fn internal(context: impl std::fmt::Display) -> Self {
        Self::Internal(context.to_string())
    }

    pub fn validation(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }
}

impl From<DbError> for AuthError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Pool(_) | DbError::Connect(_) | DbError::CallerChanged => {
                Self::Unavailable(error.to_string())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<diesel::result::Error> for AuthError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Internal(format!("database: {error}"))
    }
}

/// What authentication and the session use cases need from the running server: borrowed
/// from the application state by the API layer, so this module knows no web framework.
#[derive(Clone, Copy)]
pub struct AuthContext<'a> {
    pub db: &'a Database,
    pub tokens: &'a token::TokenKeys,
    pub passwords: &'a password::PasswordHasher,
    pub clock: &'a dyn Clock,
    pub config: &'a Config,
    pub limits: &'a limits::RateLimits,
    pub principals: &'a PrincipalCache,
}

/// Role name carried by platform operator tokens.
pub const PLATFORM_OPERATOR_ROLE: &str = PlatformRole::PlatformOperator.as_str();
/// Prefix of API key secrets, so they are recognisable in logs and secret scanners.
pub const API_KEY_PREFIX: &str = "sfk_";

/// The platform operator. Its fields are private: only this module makes one, from a verified
/// credential or for a command run on the server itself ([`command_line_operator`]).
#[derive(Debug, Clone)]
pub struct OperatorPrincipal {
    id: OperatorId,
    username: String,
    display_name: String,
}

impl OperatorPrincipal {
    pub fn id(&self) -> OperatorId {
        self.id
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn display_name(&self) -> &str {
        &self.display_name
    }
}

/// The operator principal of a command run on the server itself (`stageflow seed-tickets`):
/// whoever runs it holds the database already. The only way outside a request to act as the
/// platform operator.
pub fn command_line_operator(id: OperatorId, username: &str, display_name: &str) -> Principal {
    Principal {
        caller: Caller::Operator(OperatorPrincipal {
            id,
            username: username.to_owned(),
            display_name: display_name.to_owned(),
        }),
        client_addr: None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserPrincipal {
    pub scope: TenantScope,
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub roles: RoleSet,
    pub organization_id: Option<OrganizationId>,
    pub groups: Vec<GroupId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyPrincipal {
    pub scope: TenantScope,
    pub id: ApiKeyId,
    pub name: String,
    /// The effective roles: the key's roles that its creator still holds.
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
    pub fn operator(&self) -> Result<&OperatorPrincipal, AuthError> {
        match &self.caller {
            Caller::Operator(operator) => Ok(operator),
            _ => Err(AuthError::Forbidden(
                "This is a platform operator endpoint.".to_owned(),
            )),
        }
    }

    /// The tenant scope of a caller holding any of `roles`; 403 otherwise (including the
    /// platform operator, who acts in no tenant).
    pub fn require(&self, roles: &[Role]) -> Result<TenantScope, AuthError> {
        let (scope, held) = match &self.caller {
            Caller::Operator(_) => {
                return Err(AuthError::Forbidden(
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
            Err(AuthError::Forbidden(format!(
                "This needs one of the roles: {}.",
                names.join(", ")
            )))
        }
    }

    /// The tenant user behind the request; 403 for API keys and the operator.
    pub fn user(&self) -> Result<&UserPrincipal, AuthError> {
        match &self.caller {
            Caller::User(user) => Ok(user),
            _ => Err(AuthError::Forbidden(
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

/// SHA-256 of a high-entropy secret (refresh tokens, API keys), hex-encoded. Such secrets need no
/// slow hash: they cannot be guessed, only stolen, and the hash keeps a stolen database useless.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// When the caller behind a credential is read from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerCheck {
    /// Now, in a database trip of its own.
    Now,
    /// If this node remembers the caller: in the request's own first database call
    /// (`db::caller_check`), which fails if the caller changed. Only for requests that can be
    /// answered again (reads); a user or API key, never the operator.
    Deferred,
}

/// The caller a bearer credential (access token or API key) names, read fresh from the
/// database (or, with [`CallerCheck::Deferred`], read in the request's own database work);
/// [`AuthError::Unauthorized`] for a missing, invalid or expired one.
pub async fn authenticate(
    state: &AuthContext<'_>,
    credential: Option<String>,
    check: CallerCheck,
) -> Result<Caller, AuthError> {
    let credential = credential.ok_or(AuthError::Unauthorized)?;
    if let Some(key) = credential.strip_prefix(API_KEY_PREFIX) {
        return authenticate_api_key(state, key, check).await;
    }
    let claims = verify_token(state, &credential).await?;
    // The account is read on every request so that deactivation, deletion and role changes
    // take effect at once rather than when the token expires.
    match claims.kind {
        SubjectKind::Operator => {
            let id = OperatorId(claims.sub);
            let operator = state
                .db
                .read(move |conn| db::operators::find_active(conn, id).map_err(AuthError::from))
                .await?
                .ok_or(AuthError::Unauthorized)?;
            Ok(Caller::Operator(OperatorPrincipal {
                id,
                username: operator.username,
                display_name: operator.display_name,
            }))
        }
        SubjectKind::User => {
            let scope = TenantScope::new(TenantId(claims.tid.ok_or(AuthError::Unauthorized)?));
            let id = UserId(claims.sub);
            let key = cache::Key::User(scope.tenant_id(), id);
            if check == CallerCheck::Deferred
                && let Some(cache::Entry::User(user)) = state.principals.get(&key)
                && defer_user_check(Arc::clone(&user))
            {
                return Ok(Caller::User(UserPrincipal::clone(&user)));
            }
            let Some(user) = load_user(state, scope, id).await? else {
                state.principals.remove(&key);
                return Err(AuthError::Unauthorized);
            };
            state
                .principals
                .put(key, cache::Entry::User(Arc::new(user.clone())));
            Ok(Caller::User(user))
        }
    }
}

/// Runs a request with room for a deferred caller check ([`CallerCheck::Deferred`]); the API
/// layer wraps every request in it.
pub async fn with_caller_check<F: std::future::Future>(request: F) -> F::Output {
    db::caller_check::scope(request).await
}

/// Where the current request's deferred caller check stands; `None` if no caller of it was
/// left to check later.
pub fn deferred_check() -> Option<db::caller_check::Verdict> {
    db::caller_check::current().map(|check| check.verdict())
}

/// Forgets the current request's deferred check, before the request is answered again with
/// its caller checked at once.
pub fn forget_deferred_check() {
    db::caller_check::clear();
}

/// Leaves the check of a remembered user to the request's database work: the user read again
/// must be the one remembered. `false` when the request has no place for it.
fn defer_user_check(expected: Arc<UserPrincipal>) -> bool {
    db::caller_check::defer(db::caller_check::CallerCheck::new(Arc::new(move |conn| {
        let fresh = user_principal(conn, expected.scope, expected.id)?;
        Ok(fresh.as_ref() == Some(&*expected))
    })))
}

/// The claims of a valid access token. The key ring is reloaded when it is due
/// ([`token::RELOAD_PERIOD`]) and when the token names a key this node does not know yet (a
/// rotation made elsewhere), at most once per [`token::UNKNOWN_KID_RELOAD_GAP`].
async fn verify_token(
    state: &AuthContext<'_>,
    credential: &str,
) -> Result<token::Claims, AuthError> {
    let now = state.clock.now();
    if state.tokens.claim_reload(now, token::RELOAD_PERIOD) {
        reload_signing_keys(state).await;
    }
    match state.tokens.verify(credential, now) {
        token::Verification::Valid(claims) => Ok(claims),
        token::Verification::UnknownKey
            if state
                .tokens
                .claim_reload(now, token::UNKNOWN_KID_RELOAD_GAP) =>
        {
            reload_signing_keys(state).await;
            match state.tokens.verify(credential, now) {
                token::Verification::Valid(claims) => Ok(claims),
                _ => Err(AuthError::Unauthorized),
            }
        }
        _ => Err(AuthError::Unauthorized),
    }
}

/// Loads the key ring from the database again; a failure keeps the current ring (logged).
pub async fn reload_signing_keys(state: &AuthContext<'_>) {
    let rows = state
        .db
        .read(|conn| db::signing_keys::list(conn).map_err(AuthError::from))
        .await;
    let installed = rows.and_then(|rows| {
        state
            .tokens
            .install(&rows, state.clock.now())
            .map_err(AuthError::internal)
    });
    if let Err(error) = installed {
        log::warn!("signing keys not reloaded, keeping the current ones: {error}");
    }
}

/// An active user of a live tenant, with roles and groups.
async fn load_user(
    state: &AuthContext<'_>,
    scope: TenantScope,
    id: UserId,
) -> Result<Option<UserPrincipal>, AuthError> {
    state
        .db
        .read(move |conn| user_principal(conn, scope, id).map_err(AuthError::from))
        .await
}

fn user_principal(
    conn: &mut crate::db::DbConnection,
    scope: TenantScope,
    id: UserId,
) -> diesel::QueryResult<Option<UserPrincipal>> {
    let Some((user, groups)) = db::users::for_principal(conn, &scope, id)? else {
        return Ok(None);
    };
    if !user.active {
        return Ok(None);
    }
    Ok(Some(UserPrincipal {
        scope,
        id,
        username: user.username,
        display_name: user.display_name,
        roles: RoleSet::from_storage(&user.roles),
        organization_id: user.organization_id,
        groups,
    }))
}

/// The principal of an active user, read in the caller's transaction, for work done on the
/// user's behalf without a credential: mail intake acts as the user a message's sender
/// address matched (docs/mail.md says what that trusts). `None` for an inactive or unknown
/// user.
pub fn acting_user(
    conn: &mut crate::db::DbConnection,
    scope: &TenantScope,
    id: UserId,
) -> Result<Option<Principal>, AuthError> {
    Ok(user_principal(conn, *scope, id)?.map(|user| Principal {
        caller: Caller::User(user),
        client_addr: None,
    }))
}

/// API keys look like `sfk_<tenant>_<key id>_<secret>` (ids as 32 hex digits).
async fn authenticate_api_key(
    state: &AuthContext<'_>,
    key: &str,
    check: CallerCheck,
) -> Result<Caller, AuthError> {
    let mut parts = key.splitn(3, '_');
    let (Some(tenant), Some(id), Some(_secret)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(AuthError::Unauthorized);
    };
    let (Ok(tenant), Ok(id)) = (tenant.parse::<uuid::Uuid>(), id.parse::<uuid::Uuid>()) else {
        return Err(AuthError::Unauthorized);
    };
    let scope = TenantScope::new(TenantId(tenant));
    let id = ApiKeyId(id);
    let presented = secret_hash(&format!("{API_KEY_PREFIX}{key}"));
    let now = state.clock.now();
    let cache_key = cache::Key::ApiKey(scope.tenant_id(), id);
    if check == CallerCheck::Deferred
        && let Some(cache::Entry::ApiKey(cached)) = state.principals.get(&cache_key)
        && constant_time_eq(cached.secret_hash.as_bytes(), presented.as_bytes())
        && cached.expires_at.is_none_or(|at| at > now)
        && !last_use_is_stale(cached.last_used_at, now)
        && defer_api_key_check(Arc::clone(&cached), now)
    {
        return Ok(Caller::ApiKey(cached.principal.clone()));
    }
    let found = state
        .db
        .read(move |conn| {
            let found = db::credentials::api_key_for_principal(conn, &scope, id)?;
            Ok::<_, AuthError>(found.map(|(key, creator)| (key, creator.filter(|u| u.active))))
        })
        .await?
        .filter(|(row, _)| constant_time_eq(row.secret_hash.as_bytes(), presented.as_bytes()));
    let refuse = || {
        state.principals.remove(&cache_key);
        Err(AuthError::Unauthorized)
    };
    let Some((row, creator)) = found else {
        return refuse();
    };
    let Some(principal) = api_key_principal(&row, creator.as_ref(), now) else {
        return refuse();
    };
    let mut last_used_at = row.last_used_at.map(|at| at.0);
    // `last_used_at` is kept to the minute: a write per request would cost more than it tells.
    if last_use_is_stale(last_used_at, now) {
        state
            .db
            .write(move |conn| {
                db::credentials::touch_api_key(conn, &scope, id, now.into())
                    .map_err(AuthError::from)
            })
            .await?;
        last_used_at = Some(now);
    }
    state.principals.put(
        cache_key,
        cache::Entry::ApiKey(Arc::new(cache::CachedKey {
            principal: principal.clone(),
            secret_hash: row.secret_hash,
            expires_at: row.expires_at.map(|at| at.0),
            last_used_at,
        })),
    );
    Ok(Caller::ApiKey(principal))
}

fn last_use_is_stale(
    last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    last_used_at.is_none_or(|at| now - at >= chrono::TimeDelta::minutes(1))
}

/// The principal of a key as stored, `None` if it grants nothing now ([`effective_roles`]).
fn api_key_principal(
    row: &db::credentials::ApiKeyRow,
    creator: Option<&db::users::UserRow>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<ApiKeyPrincipal> {
    Some(ApiKeyPrincipal {
        scope: TenantScope::new(row.tenant_id),
        id: row.id,
        name: row.name.clone(),
        roles: effective_roles(row, creator, now)?,
    })
}

/// Leaves the check of a remembered key to the request's database work: the key read again
/// must still have the remembered secret and grant exactly the remembered principal.
fn defer_api_key_check(cached: Arc<cache::CachedKey>, now: chrono::DateTime<chrono::Utc>) -> bool {
    db::caller_check::defer(db::caller_check::CallerCheck::new(Arc::new(move |conn| {
        let expected = &cached.principal;
        let found = db::credentials::api_key_for_principal(conn, &expected.scope, expected.id)?;
        Ok(found.is_some_and(|(row, creator)| {
            let creator = creator.filter(|u| u.active);
            row.secret_hash == cached.secret_hash
                && api_key_principal(&row, creator.as_ref(), now).as_ref() == Some(expected)
        }))
    })))
}

/// A key acts for its creator: its roles are those of its own that the creator still holds.
/// `None` — refused — for an expired key, a key whose creator is deactivated or gone, and a key
/// left with no role.
fn effective_roles(
    key: &db::credentials::ApiKeyRow,
    creator: Option<&db::users::UserRow>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<RoleSet> {
    if key.expires_at.is_some_and(|at| at.0 <= now) {
        return None;
    }
    let creator_roles = RoleSet::from_storage(&creator?.roles);
    RoleSet::new(
        RoleSet::from_storage(&key.roles)
            .to_vec()
            .into_iter()
            .filter(|role| creator_roles.contains(*role)),
    )
}

/// Equal bytes, compared in constant time (a length difference shows, the content does not).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}
