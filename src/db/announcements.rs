//! Maintenance announcements (`announcements`, `announcement_tenants`): the operator's notices
//! and the tenants each targets (none listed: every tenant).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{announcement_tenants, announcements, tenants};
use super::types::Timestamp;
use crate::auth::TenantScope;
use crate::domain::ids::{AnnouncementId, OperatorId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = announcements)]
pub struct AnnouncementRow {
    pub id: AnnouncementId,
    pub title: String,
    pub body: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub all_tenants: bool,
    pub mail_admins: bool,
    pub published_at: Timestamp,
    pub published_by: OperatorId,
    pub withdrawn_at: Option<Timestamp>,
    pub version: i32,
}

/// Writes a new announcement and its target tenants (empty with `all_tenants`).
pub fn insert(
    conn: &mut DbConnection,
    row: &AnnouncementRow,
    targets: &[TenantId],
) -> QueryResult<()> {
    diesel::insert_into(announcements::table)
        .values((
            announcements::id.eq(row.id),
            announcements::title.eq(&row.title),
            announcements::body.eq(&row.body),
            announcements::starts_at.eq(row.starts_at),
            announcements::ends_at.eq(row.ends_at),
            announcements::all_tenants.eq(row.all_tenants),
            announcements::mail_admins.eq(row.mail_admins),
            announcements::published_at.eq(row.published_at),
            announcements::published_by.eq(row.published_by),
            announcements::withdrawn_at.eq(row.withdrawn_at),
            announcements::version.eq(row.version),
        ))
        .execute(conn)?;
    for tenant in targets {
        diesel::insert_into(announcement_tenants::table)
            .values((
                announcement_tenants::tenant_id.eq(tenant),
                announcement_tenants::announcement_id.eq(row.id),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Which of `ids` are tenants that exist and are active.
pub fn existing_tenants(conn: &mut DbConnection, ids: &[TenantId]) -> QueryResult<Vec<TenantId>> {
    tenants::table
        .filter(tenants::id.eq_any(ids))
        .filter(tenants::active.eq(true))
        .select(tenants::id)
        .load(conn)
}

/// Every active tenant (an announcement to all of them).
pub fn all_active_tenants(conn: &mut DbConnection) -> QueryResult<Vec<TenantId>> {
    tenants::table
        .filter(tenants::active.eq(true))
        .order(tenants::id.asc())
        .select(tenants::id)
        .load(conn)
}

/// The tenants an announcement lists (empty for one to every tenant).
pub fn targets(conn: &mut DbConnection, id: AnnouncementId) -> QueryResult<Vec<TenantId>> {
    announcement_tenants::table
        .filter(announcement_tenants::announcement_id.eq(id))
        .order(announcement_tenants::tenant_id.asc())
        .select(announcement_tenants::tenant_id)
        .load(conn)
}

pub fn find(conn: &mut DbConnection, id: AnnouncementId) -> QueryResult<Option<AnnouncementRow>> {
    announcements::table
        .find(id)
        .select(AnnouncementRow::as_select())
        .first(conn)
        .optional()
}

/// Which announcements a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListFilter {
    /// Also those whose window has ended or that were withdrawn.
    pub include_past: bool,
    pub now: Timestamp,
}

/// Newest first (by id, i.e. publication), before the cursor: every announcement (`scope`
/// `None`, the operator) or those for one tenant.
pub fn list(
    conn: &mut DbConnection,
    scope: Option<&TenantScope>,
    filter: ListFilter,
    before: Option<AnnouncementId>,
    limit: i64,
) -> QueryResult<Vec<AnnouncementRow>> {
    let mut query = announcements::table
        .select(AnnouncementRow::as_select())
        .order(announcements::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(scope) = scope {
        let listed = announcement_tenants::table
            .filter(announcement_tenants::tenant_id.eq(scope.tenant_id()))
            .select(announcement_tenants::announcement_id);
        query = query.filter(
            announcements::all_tenants
                .eq(true)
                .or(announcements::id.eq_any(listed)),
        );
    }
    if !filter.include_past {
        query = query
            .filter(announcements::ends_at.gt(filter.now))
            .filter(announcements::withdrawn_at.is_null());
    }
    if let Some(before) = before {
        query = query.filter(announcements::id.lt(before));
    }
    query.load(conn)
}

/// Whether the tenant of `scope` is among an announcement's targets.
pub fn targets_tenant(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &AnnouncementRow,
) -> QueryResult<bool> {
    if row.all_tenants {
        return Ok(true);
    }
    diesel::select(diesel::dsl::exists(
        announcement_tenants::table
            .filter(announcement_tenants::tenant_id.eq(scope.tenant_id()))
            .filter(announcement_tenants::announcement_id.eq(row.id)),
    ))
    .get_result(conn)
}

/// Marks it withdrawn when its version is `version`; whether it was.
pub fn withdraw(
    conn: &mut DbConnection,
    id: AnnouncementId,
    version: i32,
    at: Timestamp,
) -> QueryResult<bool> {
    let changed = diesel::update(
        announcements::table
            .filter(announcements::id.eq(id))
            .filter(announcements::version.eq(version))
            .filter(announcements::withdrawn_at.is_null()),
    )
    .set((
        announcements::withdrawn_at.eq(Some(at)),
        announcements::version.eq(version + 1),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The windows not yet over and not withdrawn, with their targets: what the maintenance
/// header is served from.
pub fn open_windows(
    conn: &mut DbConnection,
    now: Timestamp,
) -> QueryResult<Vec<(AnnouncementRow, Vec<TenantId>)>> {
    let rows: Vec<AnnouncementRow> = announcements::table
        .filter(announcements::ends_at.gt(now))
        .filter(announcements::withdrawn_at.is_null())
        .order((
            announcements::starts_at.asc(),
            announcements::ends_at.asc(),
            announcements::id.asc(),
        ))
        .select(AnnouncementRow::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|row| {
            let targets = if row.all_tenants {
                Vec::new()
            } else {
                targets(conn, row.id)?
            };
            Ok((row, targets))
        })
        .collect()
}
