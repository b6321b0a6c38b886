//! Business calendars, SLA policies and the clocks last replayed for each ticket.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{calendars, sla_clocks, sla_policies};
use super::types::{Json, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{CalendarId, SlaPolicyId, TenantId, TicketId};

#[derive(Debug, Clone, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = calendars, treat_none_as_null = true)]
pub struct CalendarRow {
    pub tenant_id: TenantId,
    pub id: CalendarId,
    pub name: String,
    pub time_zone: String,
    pub rules: Json,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = sla_policies, treat_none_as_null = true)]
pub struct PolicyRow {
    pub tenant_id: TenantId,
    pub id: SlaPolicyId,
    pub template: String,
    pub name: String,
    pub rank: i32,
    pub condition: Option<Json>,
    pub calendar_id: Option<CalendarId>,
    pub first_response_minutes: Option<i32>,
    pub resolution_minutes: Option<i32>,
    pub at_risk_percent: i32,
    pub enabled: bool,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = sla_clocks, treat_none_as_null = true)]
pub struct ClockRow {
    pub tenant_id: TenantId,
    pub ticket_id: TicketId,
    pub target: String,
    pub policy_id: SlaPolicyId,
    pub calendar_id: Option<CalendarId>,
    pub target_seconds: i64,
    pub started_at: Timestamp,
    pub elapsed_ms: i64,
    pub as_of: Timestamp,
    pub running: bool,
    pub stopped_at: Option<Timestamp>,
    pub at_risk_at: Option<Timestamp>,
    pub breach_at: Option<Timestamp>,
    pub at_risk_notified: bool,
    pub breach_notified: bool,
}

// Calendars.

pub fn insert_calendar(conn: &mut DbConnection, row: &CalendarRow) -> QueryResult<()> {
    diesel::insert_into(calendars::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_calendar(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: CalendarId,
) -> QueryResult<Option<CalendarRow>> {
    calendars::table
        .filter(calendars::tenant_id.eq(scope.tenant_id()))
        .filter(calendars::id.eq(id))
        .first(conn)
        .optional()
}

/// The calendar of this name, if any (names are unique per tenant).
pub fn calendar_named(
    conn: &mut DbConnection,
    scope: &TenantScope,
    name: &str,
) -> QueryResult<Option<CalendarId>> {
    calendars::table
        .filter(calendars::tenant_id.eq(scope.tenant_id()))
        .filter(calendars::name.eq(name))
        .select(calendars::id)
        .first(conn)
        .optional()
}

/// A page of the tenant's calendars in id order.
pub fn list_calendars(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<CalendarId>,
    limit: i64,
) -> QueryResult<Vec<CalendarRow>> {
    let mut query = calendars::table
        .filter(calendars::tenant_id.eq(scope.tenant_id()))
        .order(calendars::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(calendars::id.gt(after));
    }
    query.load(conn)
}

pub fn count_calendars(conn: &mut DbConnection, scope: &TenantScope) -> QueryResult<i64> {
    calendars::table
        .filter(calendars::tenant_id.eq(scope.tenant_id()))
        .count()
        .get_result(conn)
}

pub fn update_calendar(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &CalendarRow,
) -> QueryResult<()> {
    diesel::update(
        calendars::table
            .filter(calendars::tenant_id.eq(scope.tenant_id()))
            .filter(calendars::id.eq(row.id)),
    )
    .set(row)
    .execute(conn)?;
    Ok(())
}

pub fn delete_calendar(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: CalendarId,
) -> QueryResult<bool> {
    let n = diesel::delete(
        calendars::table
            .filter(calendars::tenant_id.eq(scope.tenant_id()))
            .filter(calendars::id.eq(id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

// Policies.

pub fn insert_policy(conn: &mut DbConnection, row: &PolicyRow) -> QueryResult<()> {
    diesel::insert_into(sla_policies::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_policy(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: SlaPolicyId,
) -> QueryResult<Option<PolicyRow>> {
    sla_policies::table
        .filter(sla_policies::tenant_id.eq(scope.tenant_id()))
        .filter(sla_policies::id.eq(id))
        .first(conn)
        .optional()
}

/// A page of the tenant's policies in id order, optionally of one template.
pub fn list_policies(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: Option<&str>,
    after: Option<SlaPolicyId>,
    limit: i64,
) -> QueryResult<Vec<PolicyRow>> {
    let mut query = sla_policies::table
        .filter(sla_policies::tenant_id.eq(scope.tenant_id()))
        .order(sla_policies::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(template) = template {
        query = query.filter(sla_policies::template.eq(template.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(sla_policies::id.gt(after));
    }
    query.load(conn)
}

pub fn count_policies(conn: &mut DbConnection, scope: &TenantScope) -> QueryResult<i64> {
    sla_policies::table
        .filter(sla_policies::tenant_id.eq(scope.tenant_id()))
        .count()
        .get_result(conn)
}

/// The enabled policies of a template in the order they are tried (looked up on every
/// write of its tickets).
pub fn policies_of(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: &str,
) -> QueryResult<Vec<PolicyRow>> {
    sla_policies::table
        .filter(sla_policies::tenant_id.eq(scope.tenant_id()))
        .filter(sla_policies::template.eq(template))
        .filter(sla_policies::enabled.eq(true))
        .order((sla_policies::rank.asc(), sla_policies::id.asc()))
        .load(conn)
}

/// Whether any policy uses the calendar.
pub fn calendar_in_use(
    conn: &mut DbConnection,
    scope: &TenantScope,
    calendar: CalendarId,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        sla_policies::table
            .filter(sla_policies::tenant_id.eq(scope.tenant_id()))
            .filter(sla_policies::calendar_id.eq(calendar)),
    ))
    .get_result(conn)
}

/// The templates whose policies use the calendar (their clocks are replayed on a change).
pub fn templates_using(
    conn: &mut DbConnection,
    scope: &TenantScope,
    calendar: CalendarId,
) -> QueryResult<Vec<String>> {
    sla_policies::table
        .filter(sla_policies::tenant_id.eq(scope.tenant_id()))
        .filter(sla_policies::calendar_id.eq(calendar))
        .select(sla_policies::template)
        .distinct()
        .load(conn)
}

pub fn update_policy(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &PolicyRow,
) -> QueryResult<()> {
    diesel::update(
        sla_policies::table
            .filter(sla_policies::tenant_id.eq(scope.tenant_id()))
            .filter(sla_policies::id.eq(row.id)),
    )
    .set(row)
    .execute(conn)?;
    Ok(())
}

pub fn delete_policy(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: SlaPolicyId,
) -> QueryResult<bool> {
    let n = diesel::delete(
        sla_policies::table
            .filter(sla_policies::tenant_id.eq(scope.tenant_id()))
            .filter(sla_policies::id.eq(id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

// Clocks.

/// A ticket's clocks, in target order (`first_response`, `resolution`).
pub fn clocks_of(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
) -> QueryResult<Vec<ClockRow>> {
    sla_clocks::table
        .filter(sla_clocks::tenant_id.eq(scope.tenant_id()))
        .filter(sla_clocks::ticket_id.eq(ticket))
        .order(sla_clocks::target.asc())
        .load(conn)
}

/// Stores a replayed clock (one upsert). An announcement already made stays made while its
/// instant is still past (decided in the statement, so a concurrent announcement is never
/// undone).
pub fn store_clock(conn: &mut DbConnection, row: &ClockRow, now: Timestamp) -> QueryResult<()> {
    use diesel::dsl::sql;
    use diesel::sql_types::Bool;
    let past = |at: Option<Timestamp>| at.is_some_and(|a| a <= now);
    // The stored row's flag (qualified: `excluded` is the proposed row on both backends).
    let keep = |column: &str, at: Option<Timestamp>| {
        if past(at) {
            sql::<Bool>(column)
        } else {
            sql::<Bool>("false")
        }
    };
    let changes = (
        sla_clocks::policy_id.eq(row.policy_id),
        sla_clocks::calendar_id.eq(row.calendar_id),
        sla_clocks::target_seconds.eq(row.target_seconds),
        sla_clocks::started_at.eq(row.started_at),
        sla_clocks::elapsed_ms.eq(row.elapsed_ms),
        sla_clocks::as_of.eq(row.as_of),
        sla_clocks::running.eq(row.running),
        sla_clocks::stopped_at.eq(row.stopped_at),
        sla_clocks::at_risk_at.eq(row.at_risk_at),
        sla_clocks::breach_at.eq(row.breach_at),
        sla_clocks::at_risk_notified.eq(keep("sla_clocks.at_risk_notified", row.at_risk_at)),
        sla_clocks::breach_notified.eq(keep("sla_clocks.breach_notified", row.breach_at)),
    );
    per_backend!(conn, |c| diesel::insert_into(sla_clocks::table)
        .values(row)
        .on_conflict((
            sla_clocks::tenant_id,
            sla_clocks::ticket_id,
            sla_clocks::target
        ))
        .do_update()
        .set(changes.clone())
        .execute(c))?;
    Ok(())
}

/// Drops a ticket's clocks but the targets named (no policy applies any more, or it has
/// fewer targets).
pub fn drop_clocks_except(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    keep: &[&str],
) -> QueryResult<()> {
    diesel::delete(
        sla_clocks::table
            .filter(sla_clocks::tenant_id.eq(scope.tenant_id()))
            .filter(sla_clocks::ticket_id.eq(ticket))
            .filter(sla_clocks::target.ne_all(keep)),
    )
    .execute(conn)?;
    Ok(())
}

/// Which announcement a clock is due for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    AtRisk,
    Breach,
}

/// Clocks (of every tenant) with an announcement due at `now`, oldest instant first.
pub fn due(
    conn: &mut DbConnection,
    kind: Announcement,
    now: Timestamp,
    limit: i64,
) -> QueryResult<Vec<ClockRow>> {
    match kind {
        Announcement::AtRisk => sla_clocks::table
            .filter(sla_clocks::at_risk_notified.eq(false))
            .filter(sla_clocks::at_risk_at.is_not_null())
            .filter(sla_clocks::at_risk_at.le(now))
            .order(sla_clocks::at_risk_at.asc())
            .limit(limit)
            .load(conn),
        Announcement::Breach => sla_clocks::table
            .filter(sla_clocks::breach_notified.eq(false))
            .filter(sla_clocks::breach_at.is_not_null())
            .filter(sla_clocks::breach_at.le(now))
            .order(sla_clocks::breach_at.asc())
            .limit(limit)
            .load(conn),
    }
}

/// Marks an announcement made, unless it already is or its instant moved past `now`: true
/// when this call made it (exactly one caller across nodes does).
pub fn claim_announcement(
    conn: &mut DbConnection,
    (tenant, ticket, target): (TenantId, TicketId, &str),
    kind: Announcement,
    now: Timestamp,
) -> QueryResult<bool> {
    let rows = sla_clocks::table
        .filter(sla_clocks::tenant_id.eq(tenant))
        .filter(sla_clocks::ticket_id.eq(ticket))
        .filter(sla_clocks::target.eq(target));
    let n = match kind {
        Announcement::AtRisk => diesel::update(
            rows.filter(sla_clocks::at_risk_notified.eq(false))
                .filter(sla_clocks::at_risk_at.le(now)),
        )
        .set(sla_clocks::at_risk_notified.eq(true))
        .execute(conn)?,
        Announcement::Breach => diesel::update(
            rows.filter(sla_clocks::breach_notified.eq(false))
                .filter(sla_clocks::breach_at.le(now)),
        )
        .set(sla_clocks::breach_notified.eq(true))
        .execute(conn)?,
    };
    Ok(n == 1)
}
