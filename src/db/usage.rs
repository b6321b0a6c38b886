//! Usage counters for billing, flushed from memory by the usage meter.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::DbConnection;
use super::schema::usage_counters;
use super::types::DbUuid;
use crate::domain::ids::TenantId;

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
