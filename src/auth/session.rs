//! Sessions: login with lock-out, refresh-token rotation with reuse detection, logout and
//! password change.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::password::random_token;
use super::token::{IssuedToken, SubjectKind};
use super::{
    AuthContext, AuthError, Caller, PLATFORM_OPERATOR_ROLE, Principal, TenantScope, secret_hash,
};
use crate::db::audit::{Actor, Event};
use crate::db::credentials::NewRefreshToken;
use crate::db::{self, DbConnection};
use crate::domain::credentials::{NewPassword, Password, Username};
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
enum Subject {
    Operator(OperatorId),
    User {
        scope: TenantScope,
        id: UserId,
        roles: RoleSet,
    },
}

impl Subject {
    fn scope(&self) -> TenantScope {
        match self {
            Subject::Operator(_) => TenantScope::platform(),
            Subject::User { scope, .. } => *scope,
        }
    }

    fn id(&self) -> EntityId {
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

/// Stores a new refresh token of `family` for `subject` (inside the caller's transaction).
fn store_refresh_token(
    conn: &mut DbConnection,
    subject: &Subject,
    family: EntityId,
    now: DateTime<Utc>,
    ttl: TimeDelta,
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
        },
    )?;
    Ok(token)
}

fn issue_access(
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

fn anonymous(name: &str, client_addr: Option<String>) -> Actor {
    Actor {
        kind: "anonymous",
        id: None,
        name: name.to_owned(),
        client_addr,
    }
}

/// Checks a username and password and issues a token pair. Every refusal — unknown tenant,
/// unknown user, wrong password, deactivated or locked account — is the same
/// [`AuthError::Unauthorized`], reached after the same password-hashing work.
pub async fn login(
    state: &AuthContext<'_>,
    tenant: Option<&str>,
    username: &str,
    password: &str,
    client_addr: Option<String>,
) -> Result<TokenPair, AuthError> {
    let (Ok(username), Ok(password)) = (Username::parse(username), Password::parse(password))
    else {
        state.passwords.verify(password.to_owned(), None).await?;
        return Err(AuthError::Unauthorized);
    };
    match tenant {
        None => login_operator(state, username, password, client_addr).await,
        Some(slug) => {
            let slug = crate::domain::credentials::canonical_name(slug);
            login_user(state, &slug, username, password, client_addr).await
        }
    }
}

async fn login_operator(
    state: &AuthContext<'_>,
    username: Username,
    password: Password,
    client_addr: Option<String>,
) -> Result<TokenPair, AuthError> {
    let lookup = username.as_str().to_owned();
    let operator = state
        .db
        .read(move |conn| db::operators::find_by_username(conn, &lookup).map_err(AuthError::from))
        .await?
        .filter(|operator| operator.active);
    let stored = operator.as_ref().map(|o| o.password_hash.clone());
    let accepted = state
        .passwords
        .verify(password.expose().to_owned(), stored)
        .await?;
    let now = state.clock.now();
    let ttl = to_delta(state.config.refresh_token_ttl);
    let platform = TenantScope::platform();
    let operator = match operator {
        Some(operator) if accepted => operator,
        _ => {
            let actor = anonymous(username.as_str(), client_addr);
            state
                .db
                .write(move |conn| {
                    db::audit::record(
                        conn,
                        &platform,
                        &actor,
                        login_event("login.failed"),
                        now.into(),
                    )
                    .map_err(AuthError::from)
                })
                .await?;
            return Err(AuthError::Unauthorized);
        }
    };
    let subject = Subject::Operator(operator.id);
    let actor = Actor {
        kind: "operator",
        id: Some(EntityId(operator.id.0)),
        name: operator.username.clone(),
        client_addr,
    };
    let stored_subject = subject.clone();
    let refresh_token = state
        .db
        .write(move |conn| {
            db::audit::record(
                conn,
                &platform,
                &actor,
                login_event("login.succeeded"),
                now.into(),
            )?;
            store_refresh_token(conn, &stored_subject, EntityId::new_at(now), now, ttl)
        })
        .await?;
    Ok(TokenPair {
        access: issue_access(state, &subject, now)?,
        refresh_token,
    })
}

fn login_event(action: &str) -> Event<'_> {
    Event {
        action,
        target_kind: "session",
        target_id: None,
        details: json!({}),
    }
}

/// What a password check did to an account's lock-out state.
struct FailureOutcome {
    failed_logins: i32,
    window_start: DateTime<Utc>,
    locked_until: Option<DateTime<Utc>>,
}

/// The lock-out rule: `threshold` failures within `window` lock the account for `duration`.
fn register_failure(
    failed_logins: i32,
    window_start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    threshold: i32,
    window: TimeDelta,
    duration: TimeDelta,
) -> FailureOutcome {
    let (count, start) = match window_start {
        Some(start) if now - start < window => (failed_logins + 1, start),
        _ => (1, now),
    };
    if count >= threshold {
        FailureOutcome {
            failed_logins: 0,
            window_start: now,
            locked_until: Some(now + duration),
        }
    } else {
        FailureOutcome {
            failed_logins: count,
            window_start: start,
            locked_until: None,
        }
    }
}

async fn login_user(
    state: &AuthContext<'_>,
    slug: &str,
    username: Username,
    password: Password,
    client_addr: Option<String>,
) -> Result<TokenPair, AuthError> {
    let slug = slug.to_owned();
    let lookup = username.as_str().to_owned();
    let found = state
        .db
        .read(move |conn| {
            let Some(tenant) = db::platform::find_tenant_by_slug(conn, &slug)? else {
                return Ok(None);
            };
            let scope = TenantScope::new(tenant.id);
            let user = db::users::find_by_username(conn, &scope, &lookup)?;
            Ok::<_, AuthError>(Some((scope, user)))
        })
        .await?;
    let now = state.clock.now();
    let Some((scope, user)) = found else {
        state
            .passwords
            .verify(password.expose().to_owned(), None)
            .await?;
        return Err(AuthError::Unauthorized);
    };
    let locked = user
        .as_ref()
        .and_then(|u| u.locked_until)
        .is_some_and(|until| until.0 > now);
    let usable = user.filter(|u| u.active && !locked);
    let stored = usable.as_ref().map(|u| u.password_hash.clone());
    let accepted = state
        .passwords
        .verify(password.expose().to_owned(), stored)
        .await?;
    let config = &state.config;
    let (threshold, window, duration) = (
        config.lockout_threshold,
        to_delta(config.lockout_window),
        to_delta(config.lockout_duration),
    );
    let ttl = to_delta(config.refresh_token_ttl);

    let Some(user) = usable.filter(|_| accepted) else {
        let name = username.as_str().to_owned();
        state
            .db
            .write(move |conn| {
                let actor = anonymous(&name, client_addr);
                let action = if locked { "login.refused_locked" } else { "login.failed" };
                db::audit::record(conn, &scope, &actor, login_event(action), now.into())?;
                // Count the failure against an existing account (re-read inside the write
                // transaction so that concurrent failures all count).
                let Some(current) = db::users::find_by_username(conn, &scope, &name)? else {
                    return Ok(());
                };
                if locked || !current.active {
                    return Ok(());
                }
                let outcome = register_failure(
                    current.failed_logins,
                    current.failure_window_at.map(|t| t.0),
                    now,
                    threshold,
                    window,
                    duration,
                );
                db::users::set_login_state(
                    conn,
                    &scope,
                    current.id,
                    outcome.failed_logins,
                    Some(outcome.window_start.into()),
                    outcome.locked_until.map(Into::into),
                )?;
                if let Some(until) = outcome.locked_until {
                    db::audit::record(
                        conn,
                        &scope,
                        &actor,
                        Event {
                            action: "user.locked",
                            target_kind: "user",
                            target_id: Some(current.id.to_string()),
                            details: json!({"locked_until": crate::db::types::Timestamp::from(until)}),
                        },
                        now.into(),
                    )?;
                }
                Ok::<_, AuthError>(())
            })
            .await?;
        return Err(AuthError::Unauthorized);
    };

    let subject = Subject::User {
        scope,
        id: user.id,
        roles: RoleSet::from_storage(&user.roles),
    };
    let actor = Actor {
        kind: "user",
        id: Some(EntityId(user.id.0)),
        name: user.username.clone(),
        client_addr,
    };
    let stored_subject = subject.clone();
    let refresh_token = state
        .db
        .write(move |conn| {
            if user.failed_logins != 0 || user.locked_until.is_some() {
                db::users::set_login_state(conn, &scope, user.id, 0, None, None)?;
            }
            db::audit::record(
                conn,
                &scope,
                &actor,
                login_event("login.succeeded"),
                now.into(),
            )?;
            store_refresh_token(conn, &stored_subject, EntityId::new_at(now), now, ttl)
        })
        .await?;
    Ok(TokenPair {
        access: issue_access(state, &subject, now)?,
        refresh_token,
    })
}

/// What a refresh attempt found.
enum Refresh {
    Renewed(Subject, String),
    /// A spent token came back: someone holds a copy. The family is revoked.
    Reused,
    Refused,
}

/// Exchanges a refresh token for a new pair. Each refresh token works once; presenting a spent
/// one revokes its whole family (every token descended from the same login).
pub async fn refresh(
    state: &AuthContext<'_>,
    token: &str,
    client_addr: Option<String>,
) -> Result<TokenPair, AuthError> {
    let scope = scope_of_refresh_token(token).ok_or(AuthError::Unauthorized)?;
    let hash = secret_hash(token);
    let now = state.clock.now();
    let ttl = to_delta(state.config.refresh_token_ttl);
    let outcome = state
        .db
        .write(move |conn| {
            let Some(row) = db::credentials::find_refresh_token(conn, &scope, &hash)? else {
                return Ok(Refresh::Refused);
            };
            if row.revoked_at.is_some() || row.expires_at.0 <= now {
                return Ok(Refresh::Refused);
            }
            if row.used_at.is_some()
                || !db::credentials::spend_refresh_token(conn, &scope, row.id, now.into())?
            {
                db::credentials::revoke_family(conn, &scope, row.family_id, now.into())?;
                db::audit::record(
                    conn,
                    &scope,
                    &anonymous("refresh-token", client_addr),
                    Event {
                        action: "refresh_token.reused",
                        target_kind: "session",
                        target_id: Some(row.family_id.to_string()),
                        details: json!({"subject_id": row.subject_id}),
                    },
                    now.into(),
                )?;
                return Ok(Refresh::Reused);
            }
            let Some(subject) = current_subject(conn, &scope, row.subject_id)? else {
                return Ok(Refresh::Refused);
            };
            let token = store_refresh_token(conn, &subject, row.family_id, now, ttl)?;
            Ok::<_, AuthError>(Refresh::Renewed(subject, token))
        })
        .await?;
    match outcome {
        Refresh::Renewed(subject, refresh_token) => Ok(TokenPair {
            access: issue_access(state, &subject, now)?,
            refresh_token,
        }),
        Refresh::Reused | Refresh::Refused => Err(AuthError::Unauthorized),
    }
}

/// The still-active account behind a refresh token.
fn current_subject(
    conn: &mut DbConnection,
    scope: &TenantScope,
    subject_id: EntityId,
) -> Result<Option<Subject>, AuthError> {
    if scope.tenant_id() == TenantId::PLATFORM {
        let id = OperatorId(subject_id.0);
        return Ok(db::operators::find_active(conn, id)?.map(|_| Subject::Operator(id)));
    }
    if db::platform::find_tenant(conn, scope.tenant_id())?.is_none() {
        return Ok(None);
    }
    let id = UserId(subject_id.0);
    Ok(db::users::find(conn, scope, id)?
        .filter(|u| u.active)
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
    state
        .db
        .write(move |conn| {
            if let Some(row) = db::credentials::find_refresh_token(conn, &scope, &hash)? {
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
    let new = NewPassword::parse(new, &username, state.config.password_min_chars)
        .map_err(|e| AuthError::validation("new_password", e.code(), e.to_string()))?;
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
    if !state.passwords.verify(current.to_owned(), stored).await? {
        return Err(AuthError::validation(
            "current_password",
            "mismatch",
            "is not the current password",
        ));
    }
    let hash = state.passwords.hash(new.expose().to_owned()).await?;
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

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(minutes)
    }

    #[test]
    fn five_failures_in_the_window_lock() {
        let (window, duration) = (TimeDelta::minutes(15), TimeDelta::minutes(15));
        let mut count = 0;
        let mut start = None;
        for minute in 0..4 {
            let outcome = register_failure(count, start, at(minute), 5, window, duration);
            assert!(outcome.locked_until.is_none());
            count = outcome.failed_logins;
            start = Some(outcome.window_start);
        }
        assert_eq!(count, 4);
        let outcome = register_failure(count, start, at(5), 5, window, duration);
        assert_eq!(outcome.locked_until, Some(at(20)));
        assert_eq!(outcome.failed_logins, 0);
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let outcome = register_failure(
            4,
            Some(at(0)),
            at(15),
            5,
            TimeDelta::minutes(15),
            TimeDelta::minutes(15),
        );
        assert_eq!(outcome.failed_logins, 1);
        assert!(outcome.locked_until.is_none());
    }

    #[test]
    fn refresh_tokens_name_their_tenant() {
        let scope = TenantScope::new(TenantId(uuid::Uuid::now_v7()));
        let token = new_refresh_token(&scope);
        assert_eq!(scope_of_refresh_token(&token), Some(scope));
        assert_eq!(scope_of_refresh_token("garbage"), None);
    }
}
