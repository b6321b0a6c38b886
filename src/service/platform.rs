//! Plans, accounts and tenants: the platform operator's use cases, with plan caps.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{audit, unique_or};
use crate::auth::{OperatorPrincipal, Principal, TenantScope, for_new_tenant};
use crate::db::platform::{
    AccountChanges, AccountRow, NewAccount, NewPlan, NewTenant, PlanChanges, PlanRow,
    TenantChanges, TenantRow,
};
use crate::db::users::NewUser;
use crate::db::{self, DbConnection};
use crate::domain::identity::{Role, RoleSet, TenantSlug, TimeZone};
use crate::domain::ids::{AccountId, PlanId, TenantId, UserId};
use crate::service::error::ServiceError;

/// Which cap of a plan.
#[derive(Debug, Clone, Copy)]
pub enum Cap {
    Tenants,
    Users,
    /// Templates with at least one published version.
    Processes,
    /// Bytes of attachments across the account's live tenants.
    StoredBytes,
}

/// Fails with `ServiceError::QuotaExceeded` when adding one more would exceed the account's cap.
/// Call inside the write transaction, after [`db::platform::lock_account`].
pub fn check_cap(
    conn: &mut DbConnection,
    account: AccountId,
    cap: Cap,
) -> Result<(), ServiceError> {
    check_cap_adding(conn, account, cap, 1)
}

/// [`check_cap`] for adding `amount` (bytes, for [`Cap::StoredBytes`]).
pub fn check_cap_adding(
    conn: &mut DbConnection,
    account: AccountId,
    cap: Cap,
    amount: i64,
) -> Result<(), ServiceError> {
    let (used, limit, name) = usage_against_cap(conn, account, cap)?;
    match limit {
        Some(limit) if used.saturating_add(amount) > limit => {
            Err(ServiceError::QuotaExceeded { cap: name, limit })
        }
        _ => Ok(()),
    }
}

/// How much more the account may add before `cap`, and the cap (`None`: the plan sets no
/// limit). Outside a locked transaction this is a hint, e.g. to refuse an upload before
/// reading it.
pub fn cap_room(
    conn: &mut DbConnection,
    account: AccountId,
    cap: Cap,
) -> Result<Option<(i64, i64)>, ServiceError> {
    let (used, limit, _) = usage_against_cap(conn, account, cap)?;
    Ok(limit.map(|limit| (limit.saturating_sub(used).max(0), limit)))
}

/// What the account uses of `cap`, the plan's limit (`None` = unlimited) and the cap's name.
fn usage_against_cap(
    conn: &mut DbConnection,
    account: AccountId,
    cap: Cap,
) -> Result<(i64, Option<i64>, &'static str), ServiceError> {
    let plan = db::platform::plan_of_account(conn, account)?
        .ok_or_else(|| ServiceError::internal(format!("account {account} has no plan")))?;
    Ok(match cap {
        Cap::Tenants => (
            db::platform::count_tenants(conn, account)?,
            Some(i64::from(plan.max_tenants)),
            "max_tenants",
        ),
        Cap::Users => (
            db::platform::count_active_users(conn, account)?,
            Some(i64::from(plan.max_users)),
            "max_users",
        ),
        Cap::Processes => (
            db::templates::count_processes(conn, account)?,
            Some(i64::from(plan.max_processes)),
            "max_processes",
        ),
        Cap::StoredBytes => (
            db::usage::account_stored_bytes(conn, account)?,
            plan.max_stored_bytes,
            "max_stored_bytes",
        ),
    })
}

pub struct PlanInput {
    pub name: String,
    pub max_tenants: i32,
    pub max_processes: i32,
    pub max_users: i32,
    /// `None`: unlimited.
    pub max_stored_bytes: Option<i64>,
    /// `None`: the server's defaults.
    pub max_import_rows: Option<i64>,
    pub max_import_bytes: Option<i64>,
}

pub fn create_plan(
    conn: &mut DbConnection,
    principal: &Principal,
    input: &PlanInput,
    now: DateTime<Utc>,
) -> Result<PlanRow, ServiceError> {
    let plan = db::platform::insert_plan(
        conn,
        &NewPlan {
            id: PlanId::new_at(now),
            name: &input.name,
            max_tenants: input.max_tenants,
            max_processes: input.max_processes,
            max_users: input.max_users,
            max_stored_bytes: input.max_stored_bytes,
            max_import_rows: input.max_import_rows,
            max_import_bytes: input.max_import_bytes,
            created_at: now.into(),
            updated_at: now.into(),
        },
    )
    .map_err(|e| unique_or(e, "The plan name"))?;
    audit(
        conn,
        &principal.audit_scope(),
        &principal.actor(),
        "plan.created",
        ("plan", plan.id),
        json!({"name": plan.name, "max_tenants": plan.max_tenants,
               "max_processes": plan.max_processes, "max_users": plan.max_users,
               "max_stored_bytes": plan.max_stored_bytes,
               "max_import_rows": plan.max_import_rows,
               "max_import_bytes": plan.max_import_bytes}),
        now.into(),
    )?;
    Ok(plan)
}

/// Lowering a cap below current usage is allowed; it only blocks further growth.
pub fn update_plan(
    conn: &mut DbConnection,
    principal: &Principal,
    id: PlanId,
    expected_version: Option<i64>,
    changes: PlanChanges,
    now: DateTime<Utc>,
) -> Result<PlanRow, ServiceError> {
    let current = db::platform::find_plan(conn, id)?.ok_or(ServiceError::NotFound)?;
    crate::service::error::check_version(expected_version, current.version)?;
    let plan = db::platform::update_plan(conn, id, &changes, now.into())
        .map_err(|e| unique_or(e, "The plan name"))?;
    audit(
        conn,
        &principal.audit_scope(),
        &principal.actor(),
        "plan.updated",
        ("plan", id),
        json!({"name": plan.name, "max_tenants": plan.max_tenants,
               "max_processes": plan.max_processes, "max_users": plan.max_users,
               "max_stored_bytes": plan.max_stored_bytes,
               "max_import_rows": plan.max_import_rows,
               "max_import_bytes": plan.max_import_bytes}),
        now.into(),
    )?;
    Ok(plan)
}

pub fn create_account(
    conn: &mut DbConnection,
    principal: &Principal,
    name: &str,
    plan_id: PlanId,
    now: DateTime<Utc>,
) -> Result<AccountRow, ServiceError> {
    if db::platform::find_plan(conn, plan_id)?.is_none() {
        return Err(ServiceError::validation(
            "plan_id",
            "unknown",
            "names no plan",
        ));
    }
    let account = db::platform::insert_account(
        conn,
        &NewAccount {
            id: AccountId::new_at(now),
            name,
            plan_id,
            created_at: now.into(),
            updated_at: now.into(),
        },
    )
    .map_err(|e| unique_or(e, "The account name"))?;
    audit(
        conn,
        &principal.audit_scope(),
        &principal.actor(),
        "account.created",
        ("account", account.id),
        json!({"name": account.name, "plan_id": account.plan_id}),
        now.into(),
    )?;
    Ok(account)
}

pub fn update_account(
    conn: &mut DbConnection,
    principal: &Principal,
    id: AccountId,
    expected_version: Option<i64>,
    changes: AccountChanges,
    now: DateTime<Utc>,
) -> Result<AccountRow, ServiceError> {
    let current = db::platform::find_account(conn, id)?.ok_or(ServiceError::NotFound)?;
    crate::service::error::check_version(expected_version, current.version)?;
    if let Some(plan) = changes.plan_id
        && db::platform::find_plan(conn, plan)?.is_none()
    {
        return Err(ServiceError::validation(
            "plan_id",
            "unknown",
            "names no plan",
        ));
    }
    let account = db::platform::update_account(conn, id, &changes, now.into())
        .map_err(|e| unique_or(e, "The account name"))?;
    audit(
        conn,
        &principal.audit_scope(),
        &principal.actor(),
        "account.updated",
        ("account", id),
        json!({"name": account.name, "plan_id": account.plan_id,
               "previous_plan_id": current.plan_id}),
        now.into(),
    )?;
    Ok(account)
}

pub struct TenantInput {
    pub account_id: AccountId,
    pub slug: TenantSlug,
    pub name: String,
    pub time_zone: TimeZone,
    pub admin_username: String,
    /// Already hashed by the caller (off the transaction).
    pub admin_password_hash: String,
    pub admin_display_name: String,
}

/// Creates a tenant and its first tenant admin in one transaction, within the account's caps
/// on tenants and users.
pub fn create_tenant(
    conn: &mut DbConnection,
    principal: &Principal,
    operator: &OperatorPrincipal,
    input: &TenantInput,
    now: DateTime<Utc>,
) -> Result<(TenantRow, UserId), ServiceError> {
    if db::platform::find_account(conn, input.account_id)?.is_none() {
        return Err(ServiceError::validation(
            "account_id",
            "unknown",
            "names no account",
        ));
    }
    db::platform::lock_account(conn, input.account_id)?;
    check_cap(conn, input.account_id, Cap::Tenants)?;
    check_cap(conn, input.account_id, Cap::Users)?;
    if db::platform::slug_taken(conn, input.slug.as_str())? {
        return Err(ServiceError::duplicate("The tenant slug is already taken."));
    }
    let tenant = db::platform::insert_tenant(
        conn,
        &NewTenant {
            id: TenantId::new_at(now),
            account_id: input.account_id,
            slug: input.slug.as_str(),
            name: &input.name,
            time_zone: input.time_zone.name(),
            created_at: now.into(),
            updated_at: now.into(),
        },
    )
    .map_err(|e| unique_or(e, "The tenant slug"))?;
    let scope: TenantScope = for_new_tenant(operator, tenant.id);
    let admin_roles = RoleSet::new([Role::TenantAdmin])
        .ok_or_else(|| ServiceError::internal("empty role set"))?;
    let admin = db::users::insert(
        conn,
        &scope,
        &NewUser {
            id: UserId::new_at(now),
            username: &input.admin_username,
            password_hash: &input.admin_password_hash,
            display_name: &input.admin_display_name,
            email: None,
            roles: &admin_roles.to_storage(),
            organization_id: None,
            now: now.into(),
        },
    )?;
    let actor = principal.actor();
    audit(
        conn,
        &principal.audit_scope(),
        &actor,
        "tenant.created",
        ("tenant", tenant.id),
        json!({"slug": tenant.slug, "account_id": tenant.account_id, "admin": admin.username}),
        now.into(),
    )?;
    // The grant of admin rights is recorded in the tenant's own log too.
    audit(
        conn,
        &scope,
        &actor,
        "user.created",
        ("user", admin.id),
        json!({"username": admin.username, "roles": admin_roles.names()}),
        now.into(),
    )?;
    Ok((tenant, admin.id))
}

pub fn update_tenant(
    conn: &mut DbConnection,
    principal: &Principal,
    id: TenantId,
    expected_version: Option<i64>,
    changes: TenantChanges,
    now: DateTime<Utc>,
) -> Result<TenantRow, ServiceError> {
    let current = db::platform::find_tenant(conn, id)?.ok_or(ServiceError::NotFound)?;
    crate::service::error::check_version(expected_version, current.version)?;
    let tenant = db::platform::update_tenant(conn, id, &changes, now.into())?;
    audit(
        conn,
        &principal.audit_scope(),
        &principal.actor(),
        "tenant.updated",
        ("tenant", id),
        json!({"name": tenant.name, "time_zone": tenant.time_zone}),
        now.into(),
    )?;
    Ok(tenant)
}

// Reads.

pub fn list_plans(
    conn: &mut DbConnection,
    after: Option<PlanId>,
    limit: i64,
) -> Result<Vec<PlanRow>, ServiceError> {
    Ok(db::platform::list_plans(conn, after, limit)?)
}

pub fn get_plan(conn: &mut DbConnection, id: PlanId) -> Result<PlanRow, ServiceError> {
    db::platform::find_plan(conn, id)?.ok_or(ServiceError::NotFound)
}

pub fn list_accounts(
    conn: &mut DbConnection,
    after: Option<AccountId>,
    limit: i64,
) -> Result<Vec<AccountRow>, ServiceError> {
    Ok(db::platform::list_accounts(conn, after, limit)?)
}

pub fn get_account(conn: &mut DbConnection, id: AccountId) -> Result<AccountRow, ServiceError> {
    db::platform::find_account(conn, id)?.ok_or(ServiceError::NotFound)
}

pub fn list_tenants(
    conn: &mut DbConnection,
    account: Option<AccountId>,
    after: Option<TenantId>,
    limit: i64,
) -> Result<Vec<TenantRow>, ServiceError> {
    Ok(db::platform::list_tenants(conn, account, after, limit)?)
}

pub fn get_tenant(conn: &mut DbConnection, id: TenantId) -> Result<TenantRow, ServiceError> {
    db::platform::find_tenant(conn, id)?.ok_or(ServiceError::NotFound)
}

/// The stored usage figures of one tenant (API calls as flushed; the caller adds what the
/// in-memory meter still holds).
#[derive(Debug, Clone, Copy, Default)]
pub struct StoredUsage {
    pub active_ids: i64,
    pub processes: i64,
    /// Tickets created in the month.
    pub tickets: i64,
    /// Bytes of attachments now (per attachment row).
    pub stored_bytes: i64,
    pub api_calls: i64,
}

/// Every tenant of an account with its stored usage in `month` (`YYYY-MM`); 404 for an unknown
/// account.
pub fn account_usage(
    conn: &mut DbConnection,
    id: AccountId,
    month: &str,
) -> Result<Vec<(TenantRow, StoredUsage)>, ServiceError> {
    get_account(conn, id)?;
    let (from, to) = crate::usage::month_bounds(month)
        .ok_or_else(|| ServiceError::validation("month", "format", "must be a month, YYYY-MM"))?;
    let mut rows = Vec::new();
    for tenant in db::platform::list_tenants(conn, Some(id), None, i64::MAX)? {
        let usage = StoredUsage {
            active_ids: db::platform::count_active_users_of_tenant(conn, tenant.id)?,
            processes: db::templates::count_processes_of_tenant(conn, tenant.id)?,
            tickets: db::usage::tickets_created(conn, tenant.id, from.into(), to.into())?,
            stored_bytes: db::usage::stored_bytes(conn, tenant.id)?,
            api_calls: db::usage::api_calls(conn, tenant.id, month)?,
        };
        rows.push((tenant, usage));
    }
    Ok(rows)
}
