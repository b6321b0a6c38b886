//! Stored monthly reports, and the tenant-wide reads a report is made from.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{mail_messages, monthly_reports, sla_clocks, ticket_history, tickets};
use super::types::{Json, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{TemplateId, TicketId};

pub fn find(
    conn: &mut DbConnection,
    scope: &TenantScope,
    month: &str,
) -> QueryResult<Option<(Json, Timestamp)>> {
    monthly_reports::table
        .filter(monthly_reports::tenant_id.eq(scope.tenant_id()))
        .filter(monthly_reports::month.eq(month))
        .select((monthly_reports::document, monthly_reports::generated_at))
        .first(conn)
        .optional()
}

/// Stores a report unless one is stored (the first one stays); true when this one was.
pub fn insert(
    conn: &mut DbConnection,
    scope: &TenantScope,
    month: &str,
    document: &Json,
    at: Timestamp,
) -> QueryResult<bool> {
    let row = (
        monthly_reports::tenant_id.eq(scope.tenant_id()),
        monthly_reports::month.eq(month),
        monthly_reports::document.eq(document),
        monthly_reports::generated_at.eq(at),
    );
    let n = per_backend!(conn, |c| diesel::insert_into(monthly_reports::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// A ticket as a report counts it: (id, template, version, created at, fields).
pub type ReportTicket = (TicketId, TemplateId, i32, Timestamp, Json);

/// The tenant's tickets filed before `before`.
pub fn tickets_before(
    conn: &mut DbConnection,
    scope: &TenantScope,
    before: Timestamp,
) -> QueryResult<Vec<ReportTicket>> {
    tickets::table
        .filter(tickets::tenant_id.eq(scope.tenant_id()))
        .filter(tickets::created_at.lt(before))
        .select((
            tickets::id,
            tickets::template_id,
            tickets::template_version,
            tickets::created_at,
            tickets::fields,
        ))
        .load(conn)
}

/// The state timelines of the tenant's tickets up to `before`: (ticket, at, state entered),
/// each ticket's in order.
pub fn state_changes_before(
    conn: &mut DbConnection,
    scope: &TenantScope,
    before: Timestamp,
) -> QueryResult<Vec<(TicketId, Timestamp, Option<String>)>> {
    ticket_history::table
        .filter(ticket_history::tenant_id.eq(scope.tenant_id()))
        .filter(ticket_history::kind.eq_any(["created", "transition", "migrated"]))
        .filter(ticket_history::at.lt(before))
        .order((
            ticket_history::ticket_id.asc(),
            ticket_history::ticket_version.asc(),
            ticket_history::ordinal.asc(),
        ))
        .select((
            ticket_history::ticket_id,
            ticket_history::at,
            ticket_history::to_state,
        ))
        .load(conn)
}

/// Tickets a mail channel filed (not comments).
pub fn filed_by_mail(conn: &mut DbConnection, scope: &TenantScope) -> QueryResult<Vec<TicketId>> {
    mail_messages::table
        .filter(mail_messages::tenant_id.eq(scope.tenant_id()))
        .filter(mail_messages::ticket_id.is_not_null())
        .filter(mail_messages::comment_id.is_null())
        .select(mail_messages::ticket_id.assume_not_null())
        .distinct()
        .load(conn)
}

/// The tenant's SLA clocks that stopped in `[from, to)`: (target, stopped at, breach instant).
pub fn clocks_stopped(
    conn: &mut DbConnection,
    scope: &TenantScope,
    (from, to): (Timestamp, Timestamp),
) -> QueryResult<Vec<(String, Timestamp, Option<Timestamp>)>> {
    sla_clocks::table
        .filter(sla_clocks::tenant_id.eq(scope.tenant_id()))
        .filter(sla_clocks::stopped_at.ge(from))
        .filter(sla_clocks::stopped_at.lt(to))
        .select((
            sla_clocks::target,
            sla_clocks::stopped_at.assume_not_null(),
            sla_clocks::breach_at,
        ))
        .load(conn)
}
