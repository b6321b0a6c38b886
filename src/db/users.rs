//! Tenant users. Every function takes the tenant scope first.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{group_members, users};
use super::types::Timestamp;
use crate::auth::TenantScope;
use crate::domain::ids::{GroupId, OrganizationId, UserId};

#[derive(Debug, Clone, Queryable)]
pub struct UserRow {
    pub tenant_id: crate::domain::ids::TenantId,
    pub id: UserId,
    pub username: String,
    pub password_hash: String,
    pub display_name: String,
    pub email: Option<String>,
    pub roles: String,
    pub organization_id: Option<OrganizationId>,
    pub active: bool,
    pub failed_logins: i32,
    pub failure_window_at: Option<Timestamp>,
    pub locked_until: Option<Timestamp>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug)]
pub struct NewUser<'a> {
    pub id: UserId,
    pub username: &'a str,
    pub password_hash: &'a str,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub roles: &'a str,
    pub organization_id: Option<OrganizationId>,
    pub now: Timestamp,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub email: Option<Option<String>>,
    pub roles: Option<String>,
    pub organization_id: Option<Option<OrganizationId>>,
    pub active: Option<bool>,
}

pub fn insert(
    conn: &mut DbConnection,
    scope: &TenantScope,
    new: &NewUser<'_>,
) -> QueryResult<UserRow> {
    diesel::insert_into(users::table)
        .values((
            users::tenant_id.eq(scope.tenant_id()),
            users::id.eq(new.id),
            users::username.eq(new.username),
            users::password_hash.eq(new.password_hash),
            users::display_name.eq(new.display_name),
            users::email.eq(new.email),
            users::roles.eq(new.roles),
            users::organization_id.eq(new.organization_id),
            users::created_at.eq(new.now),
            users::updated_at.eq(new.now),
        ))
        .get_result(conn)
}

pub fn find(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: UserId,
) -> QueryResult<Option<UserRow>> {
    users::table
        .find((scope.tenant_id(), id))
        .first(conn)
        .optional()
}

pub fn find_by_username(
    conn: &mut DbConnection,
    scope: &TenantScope,
    username: &str,
) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::tenant_id.eq(scope.tenant_id()))
        .filter(users::username.eq(username))
        .first(conn)
        .optional()
}

/// The oldest active user whose mail address is `address` (compared lower-cased; mail
/// intake attributes a message to its sender this way).
pub fn find_active_by_email(
    conn: &mut DbConnection,
    scope: &TenantScope,
    address: &str,
) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::tenant_id.eq(scope.tenant_id()))
        .filter(users::active.eq(true))
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = ")
                .bind::<diesel::sql_types::Text, _>(address.to_lowercase()),
        )
        .order(users::id.asc())
        .first(conn)
        .optional()
}

#[derive(Debug, Default)]
pub struct UserFilter {
    pub active: Option<bool>,
    pub organization_id: Option<OrganizationId>,
    pub role: Option<String>,
}

pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    filter: &UserFilter,
    after: Option<UserId>,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut query = users::table
        .filter(users::tenant_id.eq(scope.tenant_id()))
        .order(users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(active) = filter.active {
        query = query.filter(users::active.eq(active));
    }
    if let Some(org) = filter.organization_id {
        query = query.filter(users::organization_id.eq(org));
    }
    if let Some(role) = &filter.role {
        // Roles are stored as a comma-separated list of known names without spaces.
        query = query.filter(
            users::roles
                .eq(role.clone())
                .or(users::roles.like(format!("{role},%")))
                .or(users::roles.like(format!("%,{role}")))
                .or(users::roles.like(format!("%,{role},%"))),
        );
    }
    if let Some(after) = after {
        query = query.filter(users::id.gt(after));
    }
    query.load(conn)
}

pub fn update(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: UserId,
    changes: &UserChanges,
    now: Timestamp,
) -> QueryResult<UserRow> {
    diesel::update(users::table.find((scope.tenant_id(), id)))
        .set((
            changes,
            users::version.eq(users::version + 1),
            users::updated_at.eq(now),
        ))
        .get_result(conn)
}

pub fn set_password(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: UserId,
    password_hash: &str,
    now: Timestamp,
) -> QueryResult<usize> {
    diesel::update(users::table.find((scope.tenant_id(), id)))
        .set((
            users::password_hash.eq(password_hash),
            users::version.eq(users::version + 1),
            users::updated_at.eq(now),
        ))
        .execute(conn)
}

/// An account's lock-out counters; users and operators keep the same three columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginState {
    pub failed_logins: i32,
    pub failure_window_at: Option<Timestamp>,
    pub locked_until: Option<Timestamp>,
}

impl UserRow {
    pub fn login_state(&self) -> LoginState {
        LoginState {
            failed_logins: self.failed_logins,
            failure_window_at: self.failure_window_at,
            locked_until: self.locked_until,
        }
    }
}

/// The user, read after locking its row until the transaction ends, so that concurrent
/// password checks of one account settle one after the other (SQLite's single writer already
/// serialises them).
pub fn find_for_login(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: UserId,
) -> QueryResult<Option<UserRow>> {
    if super::backend_of(conn) == super::Backend::Postgres {
        diesel::sql_query("SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
            .bind::<super::types::DbUuid, _>(scope.tenant_id())
            .bind::<super::types::DbUuid, _>(id)
            .execute(conn)?;
    }
    find(conn, scope, id)
}

/// Records the outcome of a password check for the lock-out rule.
pub fn set_login_state(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: UserId,
    state: &LoginState,
) -> QueryResult<usize> {
    diesel::update(users::table.find((scope.tenant_id(), id)))
        .set((
            users::failed_logins.eq(state.failed_logins),
            users::failure_window_at.eq(state.failure_window_at),
            users::locked_until.eq(state.locked_until),
        ))
        .execute(conn)
}

/// The groups a user belongs to.
/// What a request's credential check reads of a user, in one statement: the row (if the user
/// and its tenant exist and the tenant is active) and the user's groups in id order. A
/// request's check used to be three statements (tenant, user, groups): each a round trip on
/// PostgreSQL, on every authenticated request.
pub fn for_principal(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: UserId,
) -> QueryResult<Option<(UserRow, Vec<GroupId>)>> {
    use super::schema::tenants;
    let rows: Vec<(UserRow, Option<GroupId>)> = users::table
        .inner_join(
            tenants::table.on(tenants::id
                .eq(users::tenant_id)
                .and(tenants::active.eq(true))),
        )
        .left_join(
            group_members::table.on(group_members::tenant_id
                .eq(users::tenant_id)
                .and(group_members::user_id.eq(users::id))),
        )
        .filter(users::tenant_id.eq(scope.tenant_id()))
        .filter(users::id.eq(id))
        .select((users::all_columns, group_members::group_id.nullable()))
        .order(group_members::group_id.asc())
        .load(conn)?;
    let mut rows = rows.into_iter();
    let Some((user, first)) = rows.next() else {
        return Ok(None);
    };
    let groups = first
        .into_iter()
        .chain(rows.filter_map(|(_, g)| g))
        .collect();
    Ok(Some((user, groups)))
}

pub fn groups_of(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: UserId,
) -> QueryResult<Vec<GroupId>> {
    group_members::table
        .filter(group_members::tenant_id.eq(scope.tenant_id()))
        .filter(group_members::user_id.eq(id))
        .select(group_members::group_id)
        .order(group_members::group_id.asc())
        .load(conn)
}
