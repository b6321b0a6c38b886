//! Groups (teams) and organizations of a tenant.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{group_members, groups, organizations};
use super::types::Timestamp;
use crate::auth::TenantScope;
use crate::domain::ids::{GroupId, OrganizationId, TenantId, UserId};

#[derive(Debug, Clone, Queryable)]
pub struct GroupRow {
    pub tenant_id: TenantId,
    pub id: GroupId,
    pub name: String,
    pub description: String,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn insert_group(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: GroupId,
    name: &str,
    description: &str,
    now: Timestamp,
) -> QueryResult<GroupRow> {
    diesel::insert_into(groups::table)
        .values((
            groups::tenant_id.eq(scope.tenant_id()),
            groups::id.eq(id),
            groups::name.eq(name),
            groups::description.eq(description),
            groups::created_at.eq(now),
            groups::updated_at.eq(now),
        ))
        .get_result(conn)
}

pub fn find_group(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: GroupId,
) -> QueryResult<Option<GroupRow>> {
    groups::table
        .find((scope.tenant_id(), id))
        .first(conn)
        .optional()
}

/// Names of the given groups.
pub fn names(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ids: &[GroupId],
) -> QueryResult<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    groups::table
        .filter(groups::tenant_id.eq(scope.tenant_id()))
        .filter(groups::id.eq_any(ids))
        .select(groups::name)
        .load(conn)
}

/// A group by its name (templates name groups by key, which is the group's name).
pub fn find_group_by_name(
    conn: &mut DbConnection,
    scope: &TenantScope,
    name: &str,
) -> QueryResult<Option<GroupRow>> {
    groups::table
        .filter(groups::tenant_id.eq(scope.tenant_id()))
        .filter(groups::name.eq(name))
        .first(conn)
        .optional()
}

pub fn list_groups(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<GroupId>,
    limit: i64,
) -> QueryResult<Vec<GroupRow>> {
    let mut query = groups::table
        .filter(groups::tenant_id.eq(scope.tenant_id()))
        .order(groups::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(groups::id.gt(after));
    }
    query.load(conn)
}

/// Adds a member; `false` when the user already was one.
pub fn add_member(
    conn: &mut DbConnection,
    scope: &TenantScope,
    group: GroupId,
    user: UserId,
    now: Timestamp,
) -> QueryResult<bool> {
    let exists = group_members::table
        .find((scope.tenant_id(), group, user))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if exists {
        return Ok(false);
    }
    diesel::insert_into(group_members::table)
        .values((
            group_members::tenant_id.eq(scope.tenant_id()),
            group_members::group_id.eq(group),
            group_members::user_id.eq(user),
            group_members::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(true)
}

pub fn remove_member(
    conn: &mut DbConnection,
    scope: &TenantScope,
    group: GroupId,
    user: UserId,
) -> QueryResult<bool> {
    Ok(
        diesel::delete(group_members::table.find((scope.tenant_id(), group, user)))
            .execute(conn)?
            > 0,
    )
}

/// Members of a group in user-id order.
pub fn members(
    conn: &mut DbConnection,
    scope: &TenantScope,
    group: GroupId,
    after: Option<UserId>,
    limit: i64,
) -> QueryResult<Vec<UserId>> {
    let mut query = group_members::table
        .filter(group_members::tenant_id.eq(scope.tenant_id()))
        .filter(group_members::group_id.eq(group))
        .select(group_members::user_id)
        .order(group_members::user_id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(group_members::user_id.gt(after));
    }
    query.load(conn)
}

#[derive(Debug, Clone, Queryable)]
pub struct OrganizationRow {
    pub tenant_id: TenantId,
    pub id: OrganizationId,
    pub name: String,
    pub kind: String,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn insert_organization(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: OrganizationId,
    name: &str,
    kind: &str,
    now: Timestamp,
) -> QueryResult<OrganizationRow> {
    diesel::insert_into(organizations::table)
        .values((
            organizations::tenant_id.eq(scope.tenant_id()),
            organizations::id.eq(id),
            organizations::name.eq(name),
            organizations::kind.eq(kind),
            organizations::created_at.eq(now),
            organizations::updated_at.eq(now),
        ))
        .get_result(conn)
}

pub fn find_organization(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: OrganizationId,
) -> QueryResult<Option<OrganizationRow>> {
    organizations::table
        .find((scope.tenant_id(), id))
        .first(conn)
        .optional()
}

pub fn list_organizations(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<OrganizationId>,
    limit: i64,
) -> QueryResult<Vec<OrganizationRow>> {
    let mut query = organizations::table
        .filter(organizations::tenant_id.eq(scope.tenant_id()))
        .order(organizations::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(organizations::id.gt(after));
    }
    query.load(conn)
}

pub fn rename_organization(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: OrganizationId,
    name: &str,
    now: Timestamp,
) -> QueryResult<OrganizationRow> {
    diesel::update(organizations::table.find((scope.tenant_id(), id)))
        .set((
            organizations::name.eq(name),
            organizations::version.eq(organizations::version + 1),
            organizations::updated_at.eq(now),
        ))
        .get_result(conn)
}
