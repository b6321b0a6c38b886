//! Reading the audit log (entries are written by each use case through `service::audit`).

use crate::auth::TenantScope;
use crate::db::audit::{AuditFilter, AuditRow};
use crate::db::{self, DbConnection};
use crate::domain::ids::AuditEntryId;
use crate::service::error::ServiceError;

/// One page of the audit entries of `scope` (the platform log for the operator), newest first.
pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    filter: &AuditFilter,
    after: Option<AuditEntryId>,
    limit: i64,
) -> Result<Vec<AuditRow>, ServiceError> {
    Ok(db::audit::list(conn, scope, filter, after, limit)?)
}
