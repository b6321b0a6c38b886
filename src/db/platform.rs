//! Plans, accounts and tenants: platform tables, managed by the platform operator.

use diesel::prelude::*;

use super::schema::{accounts, plans, tenants, users};
use super::types::Timestamp;
use super::{Backend, DbConnection};
use crate::domain::ids::{AccountId, PlanId, TenantId};

#[derive(Debug, Clone, Queryable)]
pub struct PlanRow {
    pub id: PlanId,
    pub name: String,
    pub max_tenants: i32,
    pub max_processes: i32,
    pub max_users: i32,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bytes of attachments an account may store; `None` = unlimited.
    pub max_stored_bytes: Option<i64>,
    /// Data rows of one bulk import; `None`: the server's default.
    pub max_import_rows: Option<i64>,
    /// Bytes of one bulk import's file; `None`: the server's default.
    pub max_import_bytes: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = plans)]
pub struct NewPlan<'a> {
    pub id: PlanId,
    pub name: &'a str,
    pub max_tenants: i32,
    pub max_processes: i32,
    pub max_users: i32,
    pub max_stored_bytes: Option<i64>,
    pub max_import_rows: Option<i64>,
    pub max_import_bytes: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = plans)]
pub struct PlanChanges {
    pub name: Option<String>,
    pub max_tenants: Option<i32>,
    pub max_processes: Option<i32>,
    pub max_users: Option<i32>,
    /// `Some(None)` makes storage unlimited.
    pub max_stored_bytes: Option<Option<i64>>,
    /// `Some(None)`: back to the server's default.
    pub max_import_rows: Option<Option<i64>>,
    pub max_import_bytes: Option<Option<i64>>,
}

#[derive(Debug, Clone, Queryable)]
pub struct AccountRow {
    pub id: AccountId,
    pub name: String,
    pub plan_id: PlanId,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = accounts)]
pub struct NewAccount<'a> {
    pub id: AccountId,
    pub name: &'a str,
    pub plan_id: PlanId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = accounts)]
pub struct AccountChanges {
    pub name: Option<String>,
    pub plan_id: Option<PlanId>,
}

#[derive(Debug, Clone, Queryable)]
pub struct TenantRow {
    pub id: TenantId,
    pub account_id: AccountId,
    pub slug: String,
    pub name: String,
    pub time_zone: String,
    pub active: bool,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = tenants)]
pub struct NewTenant<'a> {
    pub id: TenantId,
    pub account_id: AccountId,
    pub slug: &'a str,
    pub name: &'a str,
    pub time_zone: &'a str,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = tenants)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub time_zone: Option<String>,
}

// --- plans ------------------------------------------------------------------------------------

pub fn insert_plan(conn: &mut DbConnection, new: &NewPlan<'_>) -> QueryResult<PlanRow> {
    diesel::insert_into(plans::table)
        .values(new)
        .get_result(conn)
}

pub fn find_plan(conn: &mut DbConnection, id: PlanId) -> QueryResult<Option<PlanRow>> {
    plans::table.find(id).first(conn).optional()
}

pub fn list_plans(
    conn: &mut DbConnection,
    after: Option<PlanId>,
    limit: i64,
) -> QueryResult<Vec<PlanRow>> {
    let mut query = plans::table
        .order(plans::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(plans::id.gt(after));
    }
    query.load(conn)
}

/// Applies `changes` if the plan is still at `expected_version` (when given); returns the new
/// row, or `None` when the plan does not exist. A version mismatch is `Err(Conflict)`.
pub fn update_plan(
    conn: &mut DbConnection,
    id: PlanId,
    changes: &PlanChanges,
    now: Timestamp,
) -> QueryResult<PlanRow> {
    diesel::update(plans::table.find(id))
        .set((
            changes,
            plans::version.eq(plans::version + 1),
            plans::updated_at.eq(now),
        ))
        .get_result(conn)
}

// --- accounts ---------------------------------------------------------------------------------

pub fn insert_account(conn: &mut DbConnection, new: &NewAccount<'_>) -> QueryResult<AccountRow> {
    diesel::insert_into(accounts::table)
        .values(new)
        .get_result(conn)
}

pub fn find_account(conn: &mut DbConnection, id: AccountId) -> QueryResult<Option<AccountRow>> {
    accounts::table.find(id).first(conn).optional()
}

pub fn list_accounts(
    conn: &mut DbConnection,
    after: Option<AccountId>,
    limit: i64,
) -> QueryResult<Vec<AccountRow>> {
    let mut query = accounts::table
        .order(accounts::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(accounts::id.gt(after));
    }
    query.load(conn)
}

pub fn update_account(
    conn: &mut DbConnection,
    id: AccountId,
    changes: &AccountChanges,
    now: Timestamp,
) -> QueryResult<AccountRow> {
    diesel::update(accounts::table.find(id))
        .set((
            changes,
            accounts::version.eq(accounts::version + 1),
            accounts::updated_at.eq(now),
        ))
        .get_result(conn)
}

/// Serializes writers that check an account's caps. SQLite's `BEGIN IMMEDIATE` already admits
/// one writer at a time; on PostgreSQL the account row is locked until the transaction ends, so
/// two concurrent creations cannot both pass the same cap check.
pub fn lock_account(conn: &mut DbConnection, id: AccountId) -> QueryResult<()> {
    if super::backend_of(conn) == Backend::Postgres {
        diesel::sql_query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
            .bind::<super::types::DbUuid, _>(id)
            .execute(conn)?;
    }
    Ok(())
}

/// The plan of an account.
pub fn plan_of_account(conn: &mut DbConnection, id: AccountId) -> QueryResult<Option<PlanRow>> {
    accounts::table
        .inner_join(plans::table)
        .filter(accounts::id.eq(id))
        .select(plans::all_columns)
        .first(conn)
        .optional()
}

// --- tenants ----------------------------------------------------------------------------------

pub fn insert_tenant(conn: &mut DbConnection, new: &NewTenant<'_>) -> QueryResult<TenantRow> {
    diesel::insert_into(tenants::table)
        .values(new)
        .get_result(conn)
}

/// A tenant that has not been deleted.
pub fn find_tenant(conn: &mut DbConnection, id: TenantId) -> QueryResult<Option<TenantRow>> {
    tenants::table
        .find(id)
        .filter(tenants::active.eq(true))
        .first(conn)
        .optional()
}

pub fn find_tenant_by_slug(conn: &mut DbConnection, slug: &str) -> QueryResult<Option<TenantRow>> {
    tenants::table
        .filter(tenants::slug.eq(slug))
        .filter(tenants::active.eq(true))
        .first(conn)
        .optional()
}

pub fn list_tenants(
    conn: &mut DbConnection,
    account: Option<AccountId>,
    after: Option<TenantId>,
    limit: i64,
) -> QueryResult<Vec<TenantRow>> {
    let mut query = tenants::table
        .filter(tenants::active.eq(true))
        .order(tenants::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(account) = account {
        query = query.filter(tenants::account_id.eq(account));
    }
    if let Some(after) = after {
        query = query.filter(tenants::id.gt(after));
    }
    query.load(conn)
}

pub fn update_tenant(
    conn: &mut DbConnection,
    id: TenantId,
    changes: &TenantChanges,
    now: Timestamp,
) -> QueryResult<TenantRow> {
    diesel::update(tenants::table.find(id).filter(tenants::active.eq(true)))
        .set((
            changes,
            tenants::version.eq(tenants::version + 1),
            tenants::updated_at.eq(now),
        ))
        .get_result(conn)
}

/// Live tenants of an account.
pub fn count_tenants(conn: &mut DbConnection, account: AccountId) -> QueryResult<i64> {
    tenants::table
        .filter(tenants::account_id.eq(account))
        .filter(tenants::active.eq(true))
        .count()
        .get_result(conn)
}

/// Active users (active IDs) across the live tenants of an account.
pub fn count_active_users(conn: &mut DbConnection, account: AccountId) -> QueryResult<i64> {
    users::table
        .inner_join(tenants::table.on(tenants::id.eq(users::tenant_id)))
        .filter(tenants::account_id.eq(account))
        .filter(tenants::active.eq(true))
        .filter(users::active.eq(true))
        .count()
        .get_result(conn)
}

/// Whether any tenant, live or deleted, has this slug (slugs are never reused).
pub fn slug_taken(conn: &mut DbConnection, slug: &str) -> QueryResult<bool> {
    Ok(tenants::table
        .filter(tenants::slug.eq(slug))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// Active users of one tenant.
pub fn count_active_users_of_tenant(conn: &mut DbConnection, tenant: TenantId) -> QueryResult<i64> {
    users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::active.eq(true))
        .count()
        .get_result(conn)
}
