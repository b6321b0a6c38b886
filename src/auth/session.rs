//! Sessions: refresh-token rotation with reuse detection and an absolute family lifetime,
//! logout and password change (login with lock-out is `auth::login`).

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::admission::HashLane;
use super::lockout::LockoutRule;
use super::password::random_token;
use super::token::{IssuedToken, SubjectKind};
use super::{
    AuthContext, AuthError, Caller, PLATFORM_OPERATOR_ROLE, Principal, TenantScope, secret_hash,
};
use crate::db::audit::{Actor, Event};
use crate::db::credentials::NewRefreshToken;
use crate::db::{self, DbConnection};
use crate::domain::credentials::NewPassword;
use crate::domain::identity::RoleSet;
use crate::domain::ids::{EntityId, OperatorId, RefreshTokenId, TenantId, UserId};

/// An access token and the refresh token that renews it.
#[derive(Debug)]
pub struct TokenPair {
    pub access: IssuedToken,
    pub refresh_token: String,
}

/// The account a token pair is for.
#[derive(Debug, Clone)]
pub(super) enum Subject {
    Operator(OperatorId),
    User {
        scope: TenantScope,
        id: UserId,
        roles: RoleSet,
    },
}

impl Subject {
    pub(super) fn scope(&self) -> TenantScope {
        match self {
            Subject::Operator(_) => TenantScope::platform(),
            Subject::User { scope, .. } => *scope,
        }
    }

    pub(super) fn id(&self) -> EntityId {
        match self {
            Subject::Operator(id) => EntityId(id.0),
            Subject::User { id, .. } => EntityId(id.0),
        }
    }
}

fn to_delta(duration: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

/// A refresh token names its tenant (so it can be found in a tenant-keyed table) and carries 32
/// random bytes: `<tenant uuid>.<secret>`; the platform's nil uuid stands for the operator.
fn new_refresh_token(scope: &TenantScope) -> String {
    format!("{}.{}", scope.tenant_id().0.simple(), random_token(32))
}

fn scope_of_refresh_token(token: &str) -> Option<TenantScope> {
    let (tenant, _) = token.split_once('.')?;
    let tenant = uuid::Uuid::try_parse(tenant).ok()?;
    Some(TenantScope::new(TenantId(tenant)))
}

/// Stores a new refresh token of `family` (begun by the login at `family_started_at`) for
/// `subject`, inside the caller's transaction.
pub(super) fn store_refresh_token(
    conn: &mut DbConnection,
    subject: &Subject,
    family: EntityId,
    now: DateTime<Utc>,
    ttl: TimeDelta,
    family_started_at: DateTime<Utc>,
) -> Result<String, AuthError> {
    let scope = subject.scope();
    let token = new_refresh_token(&scope);
    db::credentials::insert_refresh_token(
        conn,
        &scope,
        &NewRefreshToken {
            id: RefreshTokenId::new_at(now),
            family_id: family,
            subject_id: subject.id(),
            token_hash: &secret_hash(&token),
            expires_at: (now + ttl).into(),
            created_at: now.into(),
            family_started_at: family_started_at.into(),
        },
    )?;
    Ok(token)
}

pub(super) fn issue_access(
    state: &AuthContext<'_>,
    subject: &Subject,
    now: DateTime<Utc>,
) -> Result<IssuedToken, AuthError> {
    let issued = match subject {
        Subject::Operator(id) => state.tokens.issue(
            SubjectKind::Operator,
            id.0,
            None,
            vec![PLATFORM_OPERATOR_ROLE.to_owned()],
            now,
        ),
        Subject::User { scope, id, roles } => state.tokens.issue(
            SubjectKind::User,
            id.0,
            Some(scope.tenant_id().0),
            roles.names(),
            now,
        ),
    };
    issued.map_err(AuthError::internal)
}

pub(super) fn login_event(action: &str) -> Event<'_> {
    Event {
        action,
        target_kind: "session",
        target_id: None,
        details: json!({}),
    }
}

pub(super) fn anonymous(name: &str, client_addr: Option<String>) -> Actor {
    Actor {
        kind: "anonymous",
        id: None,
        name: name.to_owned(),
        client_addr,
    }
}

/// What a refresh attempt found.
enum Refresh {
    Renewed(Subject, String),
    /// A spent token came back: someone holds a copy. The family is revoked.
    Reused,
    Refused,
}

/// Exchanges a refresh token for a new pair. Each refresh token works once; presenting a spent
/// one revokes its whole family (every token descended from the same login). A family ends
/// `refresh_family_max_age` after its login however often it was renewed, and a locked or
/// deactivated account cannot renew.
pub async fn refresh(
    state: &AuthContext<'_>,
    token: &str,
    client_addr: Option<String>,
) -> Result<TokenPair, AuthError> {
    let scope = scope_of_refresh_token(token).ok_or(AuthError::Unauthorized)?;
    let hash = secret_hash(token);
    let now = state.clock.now();
    let ttl = to_delta(state.config.refresh_token_ttl);
    let max_age = to_delta(state.config.refresh_family_max_age);
    let renewal = Renewal {
        scope,
        hash,
        now,
        ttl,
        max_age,
        client_addr,
        limits: state.limits.clone(),
    };
    let outcome = state.db.write(move |conn| renewal.run(conn)).await?;
    match outcome {
        Refresh::Renewed(subject, refresh_token) => Ok(TokenPair {
            access: issue_access(state, &subject, now)?,
            refresh_token,
        }),
        Refresh::Reused | Refresh::Refused => Err(AuthError::Unauthorized),
    }
}

/// One refresh request, run inside its write transaction.
struct Renewal {
    scope: TenantScope,
    hash: String,
    now: DateTime<Utc>,
    ttl: TimeDelta,
    max_age: TimeDelta,
    client_addr: Option<String>,
    limits: super::limits::RateLimits,
}

impl Renewal {
    fn run(self, conn: &mut DbConnection) -> Result<Refresh, AuthError> {
        let (scope, now) = (self.scope, self.now);
        let Some(row) = db::credentials::find_refresh_token(conn, &scope, &self.hash)? else {
            return Ok(Refresh::Refused);
        };
        self.limits.check_subject(row.subject_id)?;
        if row.revoked_at.is_some()
            || row.expires_at.0 <= now
            || row.family_started_at.0 + self.max_age <= now
        {
            return Ok(Refresh::Refused);
        }
        if row.used_at.is_some() {
            return self.reused(conn, &row);
        }
        // A locked or deactivated account is refused before the token is spent, so that it
        // still works once the account is usable again.
        let Some(subject) = current_subject(conn, &scope, row.subject_id, now)? else {
            return Ok(Refresh::Refused);
        };
        if !db::credentials::spend_refresh_token(conn, &scope, row.id, now.into())? {
            return self.reused(conn, &row);
        }
        let started = row.family_started_at.0;
        let token = store_refresh_token(conn, &subject, row.family_id, now, self.ttl, started)?;
        Ok(Refresh::Renewed(subject, token))
    }

    /// A spent token came back: the family is revoked and the reuse audited.
    fn reused(
        self,
        conn: &mut DbConnection,
        row: &db::credentials::RefreshTokenRow,
    ) -> Result<Refresh, AuthError> {
        db::credentials::revoke_family(conn, &self.scope, row.family_id, self.now.into())?;
        db::audit::record(
            conn,
            &self.scope,
            &anonymous("refresh-token", self.client_addr),
            Event {
                action: "refresh_token.reused",
                target_kind: "session",
                target_id: Some(row.family_id.to_string()),
                details: json!({"subject_id": row.subject_id}),
            },
            self.now.into(),
        )?;
        Ok(Refresh::Reused)
    }
}

/// The still-active, unlocked account behind a refresh token.
fn current_subject(
    conn: &mut DbConnection,
    scope: &TenantScope,
    subject_id: EntityId,
    now: DateTime<Utc>,
) -> Result<Option<Subject>, AuthError> {
    if scope.tenant_id() == TenantId::PLATFORM {
        let id = OperatorId(subject_id.0);
        return Ok(db::operators::find_active(conn, id)?
            .filter(|o| !LockoutRule::is_locked(&o.login_state(), now))
            .map(|_| Subject::Operator(id)));
    }
    if db::platform::find_tenant(conn, scope.tenant_id())?.is_none() {
        return Ok(None);
    }
    let id = UserId(subject_id.0);
    Ok(db::users::find(conn, scope, id)?
        .filter(|u| u.active && !LockoutRule::is_locked(&u.login_state(), now))
        .map(|u| Subject::User {
            scope: *scope,
            id,
            roles: RoleSet::from_storage(&u.roles),
        }))
}

/// Revokes the family of a refresh token. Unknown tokens are ignored: logout always succeeds.
pub async fn logout(state: &AuthContext<'_>, token: &str) -> Result<(), AuthError> {
    let Some(scope) = scope_of_refresh_token(token) else {
        return Ok(());
    };
    let hash = secret_hash(token);
    let now = state.clock.now();
    let limits = state.limits.clone();
    state
        .db
        .write(move |conn| {
            if let Some(row) = db::credentials::find_refresh_token(conn, &scope, &hash)? {
                limits.check_subject(row.subject_id)?;
                db::credentials::revoke_family(conn, &scope, row.family_id, now.into())?;
            }
            Ok::<_, AuthError>(())
        })
        .await
}

/// Changes the caller's own password after checking the current one; revokes every refresh
/// token of the account, so other sessions end when their access token expires.
pub async fn change_password(
    state: &AuthContext<'_>,
    principal: &Principal,
    current: &str,
    new: &str,
) -> Result<(), AuthError> {
    let (subject, username) = match &principal.caller {
        Caller::Operator(o) => (Subject::Operator(o.id), o.username.clone()),
        Caller::User(u) => (
            Subject::User {
                scope: u.scope,
                id: u.id,
                roles: u.roles.clone(),
            },
            u.username.clone(),
        ),
        Caller::ApiKey(_) => {
            return Err(AuthError::Forbidden(
                "API keys have no password.".to_owned(),
            ));
        }
    };
    state.limits.check_subject(subject.id())?;
    let new = NewPassword::parse(new, &username, state.config.password_min_chars)
        .map_err(|e| AuthError::validation("new_password", e.code(), e.to_string()))?;
    let lane = match &subject {
        Subject::Operator(_) => HashLane::Platform,
        Subject::User { scope, .. } => HashLane::Tenant(scope.tenant_id()),
    };
    let lookup = subject.clone();
    let stored = state
        .db
        .read(move |conn| {
            Ok::<_, AuthError>(match lookup {
                Subject::Operator(id) => {
                    db::operators::find_active(conn, id)?.map(|o| o.password_hash)
                }
                Subject::User { scope, id, .. } => {
                    db::users::find(conn, &scope, id)?.map(|u| u.password_hash)
                }
            })
        })
        .await?;
    if !state
        .passwords
        .verify(lane, current.to_owned(), stored)
        .await?
    {
        return Err(AuthError::validation(
            "current_password",
            "mismatch",
            "is not the current password",
        ));
    }
    let hash = state
        .passwords
        .hash_in(lane, new.expose().to_owned())
        .await?;
    let now = state.clock.now();
    let actor = principal.actor();
    state
        .db
        .write(move |conn| {
            let scope = subject.scope();
            match &subject {
                Subject::Operator(id) => db::operators::set_password(conn, *id, &hash, now.into())?,
                Subject::User { scope, id, .. } => {
                    db::users::set_password(conn, scope, *id, &hash, now.into())?
                }
            };
            db::credentials::revoke_subject(conn, &scope, subject.id(), now.into())?;
            db::audit::record(
                conn,
                &scope,
                &actor,
                Event {
                    action: "password.changed",
                    target_kind: actor.kind,
                    target_id: Some(subject.id().to_string()),
                    details: json!({}),
                },
                now.into(),
            )?;
            Ok::<_, AuthError>(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_name_their_tenant() {
        let scope = TenantScope::new(TenantId(uuid::Uuid::now_v7()));
        let token = new_refresh_token(&scope);
        assert_eq!(scope_of_refresh_token(&token), Some(scope));
        assert_eq!(scope_of_refresh_token("garbage"), None);
    }
}
