//! Login with lock-out, for tenant users and the platform operator alike.
//!
//! The password is checked outside any transaction (argon2 takes tens of milliseconds); what
//! the check means is settled afterwards in one write transaction that locks the account row
//! and reads it again: a failure is counted against the current counters (so N parallel wrong
//! passwords count N and the lock engages at exactly the threshold), and a right password is
//! refused when the account is locked or deactivated at that moment — even if it was not when
//! the check began.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::admission::HashLane;
use super::lockout::LockoutRule;
use super::session::{
    Subject, TokenPair, anonymous, issue_access, login_event, store_refresh_token,
};
use super::{AuthContext, AuthError, TenantScope};
use crate::db::audit::{Actor, Event};
use crate::db::users::LoginState;
use crate::db::{self, DbConnection, operators::OperatorRow, users::UserRow};
use crate::domain::credentials::{Password, Username};
use crate::domain::identity::RoleSet;
use crate::domain::ids::{EntityId, OperatorId, UserId};

/// The account a login names.
#[derive(Debug, Clone, Copy)]
enum AccountRef {
    Operator(OperatorId),
    User(TenantScope, UserId),
}

/// An account as read for a login.
#[derive(Debug, Clone)]
struct Account {
    reference: AccountRef,
    subject: Subject,
    name: String,
    password_hash: String,
    active: bool,
    state: LoginState,
}

impl Account {
    fn operator(row: OperatorRow) -> Self {
        Self {
            reference: AccountRef::Operator(row.id),
            subject: Subject::Operator(row.id),
            state: row.login_state(),
            name: row.username,
            password_hash: row.password_hash,
            active: row.active,
        }
    }

    fn user(scope: TenantScope, row: UserRow) -> Self {
        Self {
            reference: AccountRef::User(scope, row.id),
            subject: Subject::User {
                scope,
                id: row.id,
                roles: RoleSet::from_storage(&row.roles),
            },
            state: row.login_state(),
            name: row.username,
            password_hash: row.password_hash,
            active: row.active,
        }
    }

    fn actor(&self, client_addr: Option<String>) -> Actor {
        Actor {
            kind: match self.reference {
                AccountRef::Operator(_) => "operator",
                AccountRef::User(..) => "user",
            },
            id: Some(self.subject.id()),
            name: self.name.clone(),
            client_addr,
        }
    }
}

impl AccountRef {
    /// The account, read again after locking its row until the transaction ends.
    fn read_locked(self, conn: &mut DbConnection) -> Result<Option<Account>, AuthError> {
        Ok(match self {
            Self::Operator(id) => db::operators::find_for_login(conn, id)?.map(Account::operator),
            Self::User(scope, id) => {
                db::users::find_for_login(conn, &scope, id)?.map(|row| Account::user(scope, row))
            }
        })
    }

    fn save_state(self, conn: &mut DbConnection, state: &LoginState) -> Result<(), AuthError> {
        match self {
            Self::Operator(id) => db::operators::set_login_state(conn, id, state)?,
            Self::User(scope, id) => db::users::set_login_state(conn, &scope, id, state)?,
        };
        Ok(())
    }

    /// The audit action and target kind of the lock engaging.
    fn lock_event(self) -> (&'static str, &'static str) {
        match self {
            Self::Operator(_) => ("operator.locked", "operator"),
            Self::User(..) => ("user.locked", "user"),
        }
    }
}

/// What the password check found, to be settled in the transaction.
#[derive(Debug)]
enum Verdict {
    /// The password produced this stored hash.
    Accepted(String),
    Rejected,
    /// The account was locked or deactivated before the check: the decoy hash was checked.
    NotChecked,
}

/// One login attempt after its password check.
struct Attempt {
    scope: TenantScope,
    name: String,
    client_addr: Option<String>,
    account: Option<AccountRef>,
    verdict: Verdict,
    now: DateTime<Utc>,
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
    state.limits.check_login(tenant, username)?;
    let (Ok(username), Ok(password)) = (Username::parse(username), Password::parse(password))
    else {
        state
            .passwords
            .verify(HashLane::Unresolved, password.to_owned(), None)
            .await?;
        return Err(AuthError::Unauthorized);
    };
    let (lane, scope, found) = find_account(state, tenant, &username).await?;
    let now = state.clock.now();
    let checked = found
        .as_ref()
        .filter(|a| a.active && !LockoutRule::is_locked(&a.state, now));
    let stored = checked.map(|a| a.password_hash.clone());
    let accepted = state
        .passwords
        .verify(lane, password.expose().to_owned(), stored.clone())
        .await?;
    // An unknown tenant has no log to write to.
    let Some(scope) = scope else {
        return Err(AuthError::Unauthorized);
    };
    let verdict = match stored {
        Some(hash) if accepted => Verdict::Accepted(hash),
        Some(_) => Verdict::Rejected,
        None if found.is_some() => Verdict::NotChecked,
        None => Verdict::Rejected,
    };
    let attempt = Attempt {
        scope,
        name: username.as_str().to_owned(),
        client_addr,
        account: found.map(|a| a.reference),
        verdict,
        now,
    };
    let rule = LockoutRule::from_config(state.config);
    let ttl = TimeDelta::from_std(state.config.refresh_token_ttl).unwrap_or(TimeDelta::MAX);
    let realm = if tenant.is_some() {
        crate::metrics::Realm::Tenant
    } else {
        crate::metrics::Realm::Platform
    };
    let settled = state
        .db
        .write(move |conn| settle(conn, &rule, attempt, ttl))
        .await?;
    let Some((subject, refresh_token)) = settled else {
        crate::metrics::login_failed(realm);
        return Err(AuthError::Unauthorized);
    };
    Ok(TokenPair {
        access: issue_access(state, &subject, now)?,
        refresh_token,
    })
}

/// The hashing lane, the audit scope (none for an unknown tenant) and the account, if any.
async fn find_account(
    state: &AuthContext<'_>,
    tenant: Option<&str>,
    username: &Username,
) -> Result<(HashLane, Option<TenantScope>, Option<Account>), AuthError> {
    let lookup = username.as_str().to_owned();
    // Slugs are stored in their canonical form; `ＡＣＭＥ` signs in to `acme`.
    let Some(slug) = tenant.map(crate::domain::credentials::canonical_name) else {
        let operator = state
            .db
            .read(move |conn| {
                db::operators::find_by_username(conn, &lookup).map_err(AuthError::from)
            })
            .await?;
        return Ok((
            HashLane::Platform,
            Some(TenantScope::platform()),
            operator.map(Account::operator),
        ));
    };
    state
        .db
        .read(move |conn| {
            let Some(tenant) = db::platform::find_tenant_by_slug(conn, &slug)? else {
                return Ok((HashLane::Unresolved, None, None));
            };
            let scope = TenantScope::new(tenant.id);
            let user = db::users::find_by_username(conn, &scope, &lookup)?;
            Ok::<_, AuthError>((
                HashLane::Tenant(tenant.id),
                Some(scope),
                user.map(|row| Account::user(scope, row)),
            ))
        })
        .await
}

/// Settles a checked login inside the write transaction: the session on success, `None` on
/// any refusal (each audited; a counted failure may lock the account).
fn settle(
    conn: &mut DbConnection,
    rule: &LockoutRule,
    attempt: Attempt,
    ttl: TimeDelta,
) -> Result<Option<(Subject, String)>, AuthError> {
    let Attempt {
        scope,
        name,
        client_addr,
        account,
        verdict,
        now,
    } = attempt;
    let current = match account {
        Some(reference) => reference.read_locked(conn)?,
        None => None,
    };
    let audit = |conn: &mut DbConnection, actor: &Actor, event: Event<'_>| {
        db::audit::record(conn, &scope, actor, event, now.into())
    };
    let stranger = anonymous(&name, client_addr.clone());
    let Some(account) = current.filter(|a| a.active) else {
        audit(conn, &stranger, login_event("login.failed"))?;
        return Ok(None);
    };
    if LockoutRule::is_locked(&account.state, now) || matches!(verdict, Verdict::NotChecked) {
        audit(conn, &stranger, login_event("login.refused_locked"))?;
        return Ok(None);
    }
    if matches!(&verdict, Verdict::Accepted(hash) if *hash == account.password_hash) {
        if account.state != LoginState::default() {
            account.reference.save_state(conn, &LoginState::default())?;
        }
        let actor = account.actor(client_addr);
        audit(conn, &actor, login_event("login.succeeded"))?;
        let token =
            store_refresh_token(conn, &account.subject, EntityId::new_at(now), now, ttl, now)?;
        return Ok(Some((account.subject, token)));
    }
    // A wrong password, or a right one for a hash that changed while it was checked.
    audit(conn, &stranger, login_event("login.failed"))?;
    let next = rule.register_failure(&account.state, now);
    account.reference.save_state(conn, &next)?;
    if let Some(until) = next.locked_until {
        let (action, target_kind) = account.reference.lock_event();
        crate::metrics::account_locked(if target_kind == "operator" {
            crate::metrics::Realm::Platform
        } else {
            crate::metrics::Realm::Tenant
        });
        let event = Event {
            action,
            target_kind,
            target_id: Some(account.subject.id().to_string()),
            details: json!({ "locked_until": until }),
        };
        audit(conn, &stranger, event)?;
    }
    Ok(None)
}
