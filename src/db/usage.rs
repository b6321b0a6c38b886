//! Usage figures for billing: API-call counters flushed from memory by the usage meter, the
//! stored bytes kept per tenant with each attachment, and ticket counts.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::DbConnection;
use super::schema::{tenant_storage, tenants, tickets, usage_counters};
use super::types::{DbUuid, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{AccountId, TenantId};

/// Adds `calls` to a tenant's API call count for `month` (`YYYY-MM`). Portable upsert: both
/// backends support `ON CONFLICT … DO UPDATE` with `excluded`. The one insert that takes its
/// tenant as a parameter rather than from a `TenantScope`: the meter flushes every tenant's
/// counts at once, on no caller's behalf.
pub fn add_api_calls(
    conn: &mut DbConnection,
    tenant: TenantId,
    month: &str,
    calls: i64,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO usage_counters (tenant_id, month, api_calls) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, month) \
         DO UPDATE SET api_calls = usage_counters.api_calls + excluded.api_calls",
    )
    .bind::<DbUuid, _>(tenant)
    .bind::<Text, _>(month)
    .bind::<BigInt, _>(calls)
    .execute(conn)?;
    Ok(())
}

pub fn api_calls(conn: &mut DbConnection, tenant: TenantId, month: &str) -> QueryResult<i64> {
    Ok(usage_counters::table
        .find((tenant, month))
        .select(usage_counters::api_calls)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Adds `bytes` to the scope's tenant's stored bytes, in the transaction that records the
/// attachment.
pub fn add_stored_bytes(
    conn: &mut DbConnection,
    scope: &TenantScope,
    bytes: i64,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO tenant_storage (tenant_id, stored_bytes) VALUES ($1, $2) \
         ON CONFLICT (tenant_id) \
         DO UPDATE SET stored_bytes = tenant_storage.stored_bytes + excluded.stored_bytes",
    )
    .bind::<DbUuid, _>(scope.tenant_id())
    .bind::<BigInt, _>(bytes)
    .execute(conn)?;
    Ok(())
}

/// Bytes of attachments one tenant stores.
pub fn stored_bytes(conn: &mut DbConnection, tenant: TenantId) -> QueryResult<i64> {
    Ok(tenant_storage::table
        .find(tenant)
        .select(tenant_storage::stored_bytes)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Bytes of attachments the live tenants of an account store (summed here: a SQL `SUM` of a
/// `BIGINT` is `NUMERIC` on PostgreSQL, and an account has few tenants).
pub fn account_stored_bytes(conn: &mut DbConnection, account: AccountId) -> QueryResult<i64> {
    let per_tenant: Vec<i64> = tenant_storage::table
        .inner_join(tenants::table)
        .filter(tenants::account_id.eq(account))
        .filter(tenants::active.eq(true))
        .select(tenant_storage::stored_bytes)
        .load(conn)?;
    Ok(per_tenant.into_iter().fold(0i64, i64::saturating_add))
}

/// Tickets of a tenant created in `[from, to)`.
pub fn tickets_created(
    conn: &mut DbConnection,
    tenant: TenantId,
    from: Timestamp,
    to: Timestamp,
) -> QueryResult<i64> {
    tickets::table
        .filter(tickets::tenant_id.eq(tenant))
        .filter(tickets::created_at.ge(from))
        .filter(tickets::created_at.lt(to))
        .count()
        .get_result(conn)
}
