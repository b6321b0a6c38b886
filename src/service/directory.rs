//! A tenant's directory: users, groups, organizations and API keys.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::platform::{Cap, check_cap};
use super::{audit, unique_or};
use crate::auth::{Principal, TenantScope};
use crate::db::audit::Actor;
use crate::db::credentials::ApiKeyRow;
use crate::db::groups::{GroupRow, OrganizationRow};
use crate::db::users::{NewUser, UserChanges, UserRow};
use crate::db::{self, DbConnection};
use crate::domain::event::{EventAudience, EventType, SubjectType};
use crate::domain::identity::{OrganizationKind, RoleSet};
use crate::domain::ids::{ApiKeyId, GroupId, OrganizationId, UserId};
use crate::service::error::ServiceError;

fn account_of(
    conn: &mut DbConnection,
    scope: &TenantScope,
) -> Result<crate::domain::ids::AccountId, ServiceError> {
    Ok(db::platform::find_tenant(conn, scope.tenant_id())?
        .ok_or(ServiceError::NotFound)?
        .account_id)
}

fn check_organization(
    conn: &mut DbConnection,
    scope: &TenantScope,
    organization: Option<OrganizationId>,
) -> Result<(), ServiceError> {
    if let Some(org) = organization
        && db::groups::find_organization(conn, scope, org)?.is_none()
    {
        return Err(ServiceError::validation(
            "organization_id",
            "unknown",
            "names no organization of this tenant",
        ));
    }
    Ok(())
}

pub struct UserInput {
    pub username: String,
    pub password_hash: String,
    pub display_name: String,
    pub email: Option<String>,
    pub roles: RoleSet,
    pub organization_id: Option<OrganizationId>,
}

/// Creates a user within the account's cap on active users; the role grant is audited.
pub fn create_user(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    input: &UserInput,
    now: DateTime<Utc>,
) -> Result<UserRow, ServiceError> {
    create_user_by(conn, &principal.actor(), scope, input, now)
}

/// [`create_user`] by an actor without a principal (mail intake creating a requester).
pub(crate) fn create_user_by(
    conn: &mut DbConnection,
    actor: &Actor,
    scope: &TenantScope,
    input: &UserInput,
    now: DateTime<Utc>,
) -> Result<UserRow, ServiceError> {
    check_organization(conn, scope, input.organization_id)?;
    let account = account_of(conn, scope)?;
    db::platform::lock_account(conn, account)?;
    check_cap(conn, account, Cap::Users)?;
    if db::users::find_by_username(conn, scope, &input.username)?.is_some() {
        return Err(ServiceError::duplicate(
            "The username is already taken in this tenant.",
        ));
    }
    let user = db::users::insert(
        conn,
        scope,
        &NewUser {
            id: UserId::new_at(now),
            username: &input.username,
            password_hash: &input.password_hash,
            display_name: &input.display_name,
            email: input.email.as_deref(),
            roles: &input.roles.to_storage(),
            organization_id: input.organization_id,
            now: now.into(),
        },
    )
    .map_err(|e| unique_or(e, "The username"))?;
    audit(
        conn,
        scope,
        actor,
        "user.created",
        ("user", user.id),
        json!({"username": user.username, "roles": input.roles.names()}),
        now.into(),
    )?;
    user_event(conn, scope, actor, &user, EventType::UserCreated, now)?;
    Ok(user)
}

pub struct UserUpdate {
    pub display_name: Option<String>,
    pub email: Option<Option<String>>,
    pub roles: Option<RoleSet>,
    pub organization_id: Option<Option<OrganizationId>>,
    pub active: Option<bool>,
}

/// Edits a user. Role grants and removals, deactivation and reactivation are audited;
/// reactivation counts against the user cap again.
pub fn update_user(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    id: UserId,
    expected_version: Option<i64>,
    update: UserUpdate,
    now: DateTime<Utc>,
) -> Result<UserRow, ServiceError> {
    let current = db::users::find(conn, scope, id)?.ok_or(ServiceError::NotFound)?;
    crate::service::error::check_version(expected_version, current.version)?;
    if let Some(org) = update.organization_id {
        check_organization(conn, scope, org)?;
    }
    if update.active == Some(true) && !current.active {
        let account = account_of(conn, scope)?;
        db::platform::lock_account(conn, account)?;
        check_cap(conn, account, Cap::Users)?;
    }
    let before = RoleSet::from_storage(&current.roles);
    let changes = UserChanges {
        display_name: update.display_name,
        email: update.email,
        roles: update.roles.as_ref().map(RoleSet::to_storage),
        organization_id: update.organization_id,
        active: update.active,
    };
    let user = db::users::update(conn, scope, id, &changes, now.into())?;
    let actor = principal.actor();
    if let Some(after) = &update.roles {
        let (added, removed) = before.diff(after);
        if !added.is_empty() || !removed.is_empty() {
            audit(
                conn,
                scope,
                &actor,
                "user.roles_changed",
                ("user", id),
                json!({"added": added, "removed": removed, "roles": after.names()}),
                now.into(),
            )?;
        }
    }
    match (current.active, user.active) {
        (true, false) => deactivated(conn, scope, &actor, &user, now)?,
        (false, true) => audit(
            conn,
            scope,
            &actor,
            "user.reactivated",
            ("user", id),
            json!({}),
            now.into(),
        )?,
        _ => {}
    }
    Ok(user)
}

fn deactivated(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &db::audit::Actor,
    user: &UserRow,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    db::credentials::revoke_subject(conn, scope, user.id.into(), now.into())?;
    user_event(conn, scope, actor, user, EventType::UserDeactivated, now)?;
    audit(
        conn,
        scope,
        actor,
        "user.deactivated",
        ("user", user.id),
        json!({"username": user.username}),
        now.into(),
    )
}

/// A directory event (tenant admins and auditors read these): the user as `GET /users/{id}`
/// shows it.
fn user_event(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &db::audit::Actor,
    user: &UserRow,
    event_type: EventType,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let payload = json!({"user": {
        "id": user.id, "username": user.username, "display_name": user.display_name,
        "roles": RoleSet::from_storage(&user.roles).names(),
        "organization_id": user.organization_id, "active": user.active,
    }});
    super::events::emit(
        conn,
        scope,
        actor,
        now,
        super::events::Emit {
            event_type,
            subject_type: SubjectType::User,
            subject_id: user.id.into(),
            ticket: None,
            container: None,
            audience: EventAudience::Admin,
            payload,
            restricted: None,
        },
    )
}

/// Deactivates a user: history keeps them, their sessions end, the ID no longer counts.
pub fn deactivate_user(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    id: UserId,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let update = UserUpdate {
        display_name: None,
        email: None,
        roles: None,
        organization_id: None,
        active: Some(false),
    };
    update_user(conn, principal, scope, id, expected_version, update, now).map(|_| ())
}

/// Lifts a lock-out before it expires.
pub fn unlock_user(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    id: UserId,
    now: DateTime<Utc>,
) -> Result<UserRow, ServiceError> {
    db::users::find(conn, scope, id)?.ok_or(ServiceError::NotFound)?;
    db::users::set_login_state(conn, scope, id, &db::users::LoginState::default())?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "user.unlocked",
        ("user", id),
        json!({}),
        now.into(),
    )?;
    db::users::find(conn, scope, id)?.ok_or(ServiceError::NotFound)
}

pub fn create_group(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    name: &str,
    description: &str,
    now: DateTime<Utc>,
) -> Result<GroupRow, ServiceError> {
    let group = db::groups::insert_group(
        conn,
        scope,
        GroupId::new_at(now),
        name,
        description,
        now.into(),
    )
    .map_err(|e| unique_or(e, "The group name"))?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "group.created",
        ("group", group.id),
        json!({"name": name}),
        now.into(),
    )?;
    Ok(group)
}

pub fn add_group_member(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    group: GroupId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    db::groups::find_group(conn, scope, group)?.ok_or(ServiceError::NotFound)?;
    if db::users::find(conn, scope, user)?.is_none() {
        return Err(ServiceError::validation(
            "user_id",
            "unknown",
            "names no user of this tenant",
        ));
    }
    let added = db::groups::add_member(conn, scope, group, user, now.into())?;
    if added {
        audit(
            conn,
            scope,
            &principal.actor(),
            "group.member_added",
            ("group", group),
            json!({"user_id": user}),
            now.into(),
        )?;
    }
    Ok(added)
}

pub fn remove_group_member(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    group: GroupId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    db::groups::find_group(conn, scope, group)?.ok_or(ServiceError::NotFound)?;
    if !db::groups::remove_member(conn, scope, group, user)? {
        return Err(ServiceError::NotFound);
    }
    audit(
        conn,
        scope,
        &principal.actor(),
        "group.member_removed",
        ("group", group),
        json!({"user_id": user}),
        now.into(),
    )
}

pub fn create_organization(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    name: &str,
    kind: OrganizationKind,
    now: DateTime<Utc>,
) -> Result<OrganizationRow, ServiceError> {
    let org = db::groups::insert_organization(
        conn,
        scope,
        OrganizationId::new_at(now),
        name,
        kind.as_str(),
        now.into(),
    )
    .map_err(|e| unique_or(e, "The organization name"))?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "organization.created",
        ("organization", org.id),
        json!({"name": name, "kind": kind}),
        now.into(),
    )?;
    Ok(org)
}

pub fn rename_organization(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    id: OrganizationId,
    expected_version: Option<i64>,
    name: &str,
    now: DateTime<Utc>,
) -> Result<OrganizationRow, ServiceError> {
    let current = db::groups::find_organization(conn, scope, id)?.ok_or(ServiceError::NotFound)?;
    crate::service::error::check_version(expected_version, current.version)?;
    let org = db::groups::rename_organization(conn, scope, id, name, now.into())
        .map_err(|e| unique_or(e, "The organization name"))?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "organization.renamed",
        ("organization", id),
        json!({"name": name}),
        now.into(),
    )?;
    Ok(org)
}

/// How far ahead an API key's expiry may be set.
pub const API_KEY_MAX_LIFETIME_DAYS: i64 = 730;

/// What a new API key is: its name, roles and optional expiry.
pub struct NewApiKeyRequest<'a> {
    pub name: &'a str,
    pub roles: &'a RoleSet,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key holds no role its creator lacks (403), and expires, if at all, in the future and at
/// most [`API_KEY_MAX_LIFETIME_DAYS`] ahead (422).
fn check_new_api_key(
    creator_roles: &RoleSet,
    roles: &RoleSet,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let lacking: Vec<&str> = roles
        .to_vec()
        .into_iter()
        .filter(|role| !creator_roles.contains(*role))
        .map(|role| role.as_str())
        .collect();
    if !lacking.is_empty() {
        return Err(ServiceError::Forbidden(format!(
            "An API key cannot hold a role its creator lacks: {}.",
            lacking.join(", ")
        )));
    }
    if let Some(at) = expires_at
        && (at <= now || at > now + chrono::TimeDelta::days(API_KEY_MAX_LIFETIME_DAYS))
    {
        return Err(ServiceError::validation(
            "expires_at",
            "out_of_range",
            format!("must lie in the future, at most {API_KEY_MAX_LIFETIME_DAYS} days ahead"),
        ));
    }
    Ok(())
}

/// Creates an API key; the caller gets the secret once and only its hash is stored. The key
/// acts for its creator (the calling user): it may hold only roles the creator holds (403
/// otherwise), and its expiry, when given, lies in the future and at most
/// [`API_KEY_MAX_LIFETIME_DAYS`] ahead (422 `expires_at` otherwise).
pub fn create_api_key(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    request: &NewApiKeyRequest<'_>,
    now: DateTime<Utc>,
) -> Result<(ApiKeyRow, String), ServiceError> {
    let NewApiKeyRequest {
        name,
        roles,
        expires_at,
    } = *request;
    let creator = principal.user()?;
    check_new_api_key(&creator.roles, roles, expires_at, now)?;
    let created_by = creator.id;
    let id = ApiKeyId::new_at(now);
    let secret = format!(
        "{}{}_{}_{}",
        crate::auth::API_KEY_PREFIX,
        scope.tenant_id().0.simple(),
        id.0.simple(),
        crate::auth::password::random_token(32)
    );
    let row = db::credentials::insert_api_key(
        conn,
        scope,
        &db::credentials::NewApiKey {
            id,
            name,
            roles: &roles.to_storage(),
            secret_hash: &crate::auth::secret_hash(&secret),
            created_by,
            created_at: now.into(),
            expires_at: expires_at.map(Into::into),
        },
    )?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "api_key.created",
        ("api_key", id),
        json!({"name": name, "roles": roles.names(), "expires_at": expires_at}),
        now.into(),
    )?;
    Ok((row, secret))
}

pub fn revoke_api_key(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    id: ApiKeyId,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    if !db::credentials::revoke_api_key(conn, scope, id, now.into())? {
        return Err(ServiceError::NotFound);
    }
    audit(
        conn,
        scope,
        &principal.actor(),
        "api_key.revoked",
        ("api_key", id),
        json!({}),
        now.into(),
    )
}

// Reads: one query each, with "not found" decided here rather than by the handler.

pub fn list_users(
    conn: &mut DbConnection,
    scope: &TenantScope,
    filter: &crate::db::users::UserFilter,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<UserRow>, ServiceError> {
    Ok(db::users::list(conn, scope, filter, after, limit)?)
}

pub fn get_user(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: UserId,
) -> Result<UserRow, ServiceError> {
    db::users::find(conn, scope, id)?.ok_or(ServiceError::NotFound)
}

pub fn list_groups(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<GroupId>,
    limit: i64,
) -> Result<Vec<GroupRow>, ServiceError> {
    Ok(db::groups::list_groups(conn, scope, after, limit)?)
}

pub fn get_group(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: GroupId,
) -> Result<GroupRow, ServiceError> {
    db::groups::find_group(conn, scope, id)?.ok_or(ServiceError::NotFound)
}

/// One page of a group's members; 404 for an unknown group.
pub fn group_members(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: GroupId,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<UserId>, ServiceError> {
    get_group(conn, scope, id)?;
    Ok(db::groups::members(conn, scope, id, after, limit)?)
}

pub fn list_organizations(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<OrganizationId>,
    limit: i64,
) -> Result<Vec<OrganizationRow>, ServiceError> {
    Ok(db::groups::list_organizations(conn, scope, after, limit)?)
}

pub fn get_organization(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: OrganizationId,
) -> Result<OrganizationRow, ServiceError> {
    db::groups::find_organization(conn, scope, id)?.ok_or(ServiceError::NotFound)
}

pub fn list_api_keys(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<ApiKeyId>,
    limit: i64,
) -> Result<Vec<ApiKeyRow>, ServiceError> {
    Ok(db::credentials::list_api_keys(conn, scope, after, limit)?)
}
