//! The tenant export records (`tenant_exports`): one per requested export, finished by the
//! `tenant.export` job.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::tenant_exports;
use super::types::Timestamp;
use crate::domain::ids::{TenantExportId, TenantId};

pub const PENDING: &str = "pending";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenant_exports)]
pub struct TenantExportRow {
    pub id: TenantExportId,
    pub exported_tenant: TenantId,
    pub slug: String,
    pub status: String,
    pub requested_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub file_name: Option<String>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub row_count: Option<i64>,
    pub attachments: Option<i64>,
    pub error: Option<String>,
}

pub fn insert(conn: &mut DbConnection, row: &TenantExportRow) -> QueryResult<()> {
    diesel::insert_into(tenant_exports::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(
    conn: &mut DbConnection,
    tenant: TenantId,
    id: TenantExportId,
) -> QueryResult<Option<TenantExportRow>> {
    tenant_exports::table
        .filter(tenant_exports::id.eq(id))
        .filter(tenant_exports::exported_tenant.eq(tenant))
        .select(TenantExportRow::as_select())
        .first(conn)
        .optional()
}

/// An export by id alone (the job).
pub fn find_by_id(
    conn: &mut DbConnection,
    id: TenantExportId,
) -> QueryResult<Option<TenantExportRow>> {
    tenant_exports::table
        .filter(tenant_exports::id.eq(id))
        .select(TenantExportRow::as_select())
        .first(conn)
        .optional()
}

/// A tenant's exports, newest first, before the cursor.
pub fn list(
    conn: &mut DbConnection,
    tenant: TenantId,
    before: Option<TenantExportId>,
    limit: i64,
) -> QueryResult<Vec<TenantExportRow>> {
    let mut query = tenant_exports::table
        .filter(tenant_exports::exported_tenant.eq(tenant))
        .select(TenantExportRow::as_select())
        .order(tenant_exports::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(tenant_exports::id.lt(before));
    }
    query.load(conn)
}

/// Whether the tenant has a finished export.
pub fn has_done(conn: &mut DbConnection, tenant: TenantId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        tenant_exports::table
            .filter(tenant_exports::exported_tenant.eq(tenant))
            .filter(tenant_exports::status.eq(DONE)),
    ))
    .get_result(conn)
}

/// Records how the job ended.
pub fn finish(conn: &mut DbConnection, row: &TenantExportRow) -> QueryResult<()> {
    diesel::update(tenant_exports::table.filter(tenant_exports::id.eq(row.id)))
        .set((
            tenant_exports::status.eq(&row.status),
            tenant_exports::finished_at.eq(row.finished_at),
            tenant_exports::file_name.eq(&row.file_name),
            tenant_exports::size_bytes.eq(row.size_bytes),
            tenant_exports::sha256.eq(&row.sha256),
            tenant_exports::row_count.eq(row.row_count),
            tenant_exports::attachments.eq(row.attachments),
            tenant_exports::error.eq(&row.error),
        ))
        .execute(conn)
        .map(|_| ())
}
