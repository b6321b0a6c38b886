//! Tickets: rows, numbers, their field index and search tokens (through `db::index`),
//! history and lists. What else hangs off a ticket (comments, watchers, links, attachments,
//! events, stored idempotent responses) is in `db::ticket_parts`, re-exported here.

use diesel::prelude::*;

use super::index::{self, Entries, IndexFilter, IndexScope, MAX_ROWS_PER_STATEMENT, TICKETS};
use super::schema::{templates, ticket_history, tickets};
pub use super::ticket_parts::*;
use super::types::{DbUuid, Json, Timestamp};
use super::{Backend, DbConnection};
use crate::auth::TenantScope;
use crate::domain::ids::{
    EntityId, GroupId, OrganizationId, TemplateId, TenantId, TicketId, UserId,
};
use crate::domain::ticket::Audience;

/// Search token sources; requesters and partners match only the public ones.
pub const SOURCE_FIELDS: i16 = 0;
pub const SOURCE_INTERNAL_FIELDS: i16 = 1;
pub const SOURCE_COMMENTS: i16 = 2;
pub const SOURCE_INTERNAL_COMMENTS: i16 = 3;

#[derive(Debug, Clone, Queryable)]
pub struct TicketRow {
    pub tenant_id: TenantId,
    pub id: TicketId,
    pub template_id: TemplateId,
    pub template_version: i32,
    pub key_prefix: String,
    pub number: i64,
    pub title: String,
    pub stage: String,
    pub state: String,
    pub closed: bool,
    pub requester_id: Option<UserId>,
    pub assignee_id: Option<UserId>,
    pub group_id: Option<GroupId>,
    pub organization_id: Option<OrganizationId>,
    pub fields: Json,
    pub created_by: EntityId,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the ticket entered its current state.
    pub state_entered_at: Timestamp,
}

impl TicketRow {
    /// The human key, `INC-42`.
    pub fn key(&self) -> String {
        format!("{}-{}", self.key_prefix, self.number)
    }

    pub fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        self.fields.0.as_object().cloned().unwrap_or_default()
    }
}

/// A ticket with its template key, as lists and reads return it.
pub type TicketWithTemplate = (TicketRow, String);

/// Takes the next ticket number of a template. The row stays locked until the transaction
/// ends (on SQLite the single writer already serializes), so numbers never repeat.
fn next_number(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
) -> QueryResult<i64> {
    diesel::update(
        templates::table
            .filter(templates::tenant_id.eq(scope.tenant_id()))
            .filter(templates::id.eq(template)),
    )
    .set(templates::ticket_seq.eq(templates::ticket_seq + 1))
    .returning(templates::ticket_seq)
    .get_result(conn)
}

/// The number of a ticket being created, until it takes its real one (the unique index on
/// numbers leaves it out), see [`set_number`].
pub const UNNUMBERED: i64 = 0;

/// [`next_number`] and [`set_number`] for a ticket being created: on PostgreSQL in one
/// statement (a round trip fewer per create; both rows are the tenant's, so under Citus it
/// still goes to one worker), on SQLite as the two. Returns the number.
pub fn take_number(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    ticket: TicketId,
) -> QueryResult<i64> {
    if let DbConnection::Postgres(pg) = conn {
        #[derive(QueryableByName)]
        struct Taken {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            number: i64,
        }
        let taken: Taken = diesel::sql_query(
            "WITH next AS (UPDATE templates SET ticket_seq = ticket_seq + 1 \
             WHERE tenant_id = $1 AND id = $2 RETURNING ticket_seq) \
             UPDATE tickets SET number = next.ticket_seq FROM next \
             WHERE tickets.tenant_id = $1 AND tickets.id = $3 RETURNING tickets.number",
        )
        .bind::<super::types::DbUuid, _>(scope.tenant_id())
        .bind::<super::types::DbUuid, _>(template)
        .bind::<super::types::DbUuid, _>(ticket)
        .get_result(pg)?;
        return Ok(taken.number);
    }
    let number = next_number(conn, scope, template)?;
    set_number(conn, scope, ticket, number)?;
    Ok(number)
}

/// Gives a ticket being created its number.
fn set_number(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: TicketId,
    number: i64,
) -> QueryResult<()> {
    diesel::update(
        tickets::table
            .filter(tickets::tenant_id.eq(scope.tenant_id()))
            .filter(tickets::id.eq(id)),
    )
    .set(tickets::number.eq(number))
    .execute(conn)?;
    Ok(())
}

pub struct NewTicket<'a> {
    pub id: TicketId,
    pub template_id: TemplateId,
    pub template_version: i32,
    pub key_prefix: &'a str,
    pub number: i64,
    pub title: &'a str,
    pub stage: &'a str,
    pub state: &'a str,
    pub closed: bool,
    pub requester_id: Option<UserId>,
    pub assignee_id: Option<UserId>,
    pub group_id: Option<GroupId>,
    pub organization_id: Option<OrganizationId>,
    pub fields: &'a serde_json::Value,
    pub created_by: EntityId,
    pub now: Timestamp,
    /// When it entered its state: `now`, unless an import says otherwise.
    pub state_entered_at: Timestamp,
}

pub fn insert_ticket(
    conn: &mut DbConnection,
    scope: &TenantScope,
    new: &NewTicket<'_>,
) -> QueryResult<()> {
    diesel::insert_into(tickets::table)
        .values((
            tickets::tenant_id.eq(scope.tenant_id()),
            tickets::id.eq(new.id),
            tickets::template_id.eq(new.template_id),
            tickets::template_version.eq(new.template_version),
            tickets::key_prefix.eq(new.key_prefix),
            tickets::number.eq(new.number),
            tickets::title.eq(new.title),
            tickets::stage.eq(new.stage),
            tickets::state.eq(new.state),
            tickets::closed.eq(new.closed),
            tickets::requester_id.eq(new.requester_id),
            tickets::assignee_id.eq(new.assignee_id),
            tickets::group_id.eq(new.group_id),
            tickets::organization_id.eq(new.organization_id),
            tickets::fields.eq(Json(new.fields.clone())),
            tickets::created_by.eq(new.created_by),
            tickets::created_at.eq(new.now),
            tickets::updated_at.eq(new.now),
            tickets::state_entered_at.eq(new.state_entered_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find_ticket(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: TicketId,
) -> QueryResult<Option<TicketWithTemplate>> {
    tickets::table
        .inner_join(
            templates::table.on(templates::tenant_id
                .eq(tickets::tenant_id)
                .and(templates::id.eq(tickets::template_id))),
        )
        .filter(tickets::tenant_id.eq(scope.tenant_id()))
        .filter(tickets::id.eq(id))
        .select((tickets::all_columns, templates::key))
        .first(conn)
        .optional()
}

/// Locks a ticket row until the transaction ends, so that a read-decide-write sequence sees
/// no concurrent change. SQLite's single writer already gives that.
pub fn lock_ticket(conn: &mut DbConnection, scope: &TenantScope, id: TicketId) -> QueryResult<()> {
    if super::backend_of(conn) == Backend::Postgres {
        diesel::sql_query("SELECT 1 FROM tickets WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
            .bind::<DbUuid, _>(scope.tenant_id())
            .bind::<DbUuid, _>(id)
            .execute(conn)?;
    }
    Ok(())
}

/// The new state of a ticket after a change; `version` must be the stored one plus one.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = tickets)]
pub struct TicketChanges<'a> {
    /// The template version (changed only by a migration).
    pub template_version: i32,
    pub title: &'a str,
    pub stage: &'a str,
    pub state: &'a str,
    pub closed: bool,
    #[diesel(treat_none_as_null = true)]
    pub assignee_id: Option<UserId>,
    #[diesel(treat_none_as_null = true)]
    pub group_id: Option<GroupId>,
    #[diesel(treat_none_as_null = true)]
    pub organization_id: Option<OrganizationId>,
    pub fields: Json,
    pub version: i64,
    pub updated_at: Timestamp,
    /// Set when the change enters a state (a transition or a migration), else kept.
    pub state_entered_at: Option<Timestamp>,
}

/// Writes the changes if the ticket is still at `version - 1`; false if it moved on.
pub fn update_ticket(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: TicketId,
    changes: &TicketChanges<'_>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        tickets::table
            .filter(tickets::tenant_id.eq(scope.tenant_id()))
            .filter(tickets::id.eq(id))
            .filter(tickets::version.eq(changes.version - 1)),
    )
    .set(changes)
    .execute(conn)?;
    Ok(updated == 1)
}

/// Where [`place_in_state`] puts tickets.
pub struct StatePlacement<'a> {
    pub state: &'a str,
    pub stage: &'a str,
    pub closed: bool,
}

/// The latest state change in a ticket's history (an SQL expression over `tickets`).
const LATEST_STATE_CHANGE: &str = "(SELECT max(h.at) FROM ticket_history h \
    WHERE h.tenant_id = tickets.tenant_id AND h.ticket_id = tickets.id \
    AND h.kind IN ('created', 'transition', 'migrated'))";

/// Puts tickets in a state without a transition (version 2; the caller has written its
/// history entry, whose time becomes the ticket's `state_entered_at`): only the benchmark
/// seeder does this, to give lists filtered by state a realistic selectivity.
pub fn place_in_state(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ids: &[TicketId],
    to: &StatePlacement<'_>,
) -> QueryResult<()> {
    for chunk in ids.chunks(MAX_ROWS_PER_STATEMENT) {
        diesel::update(
            tickets::table
                .filter(tickets::tenant_id.eq(scope.tenant_id()))
                .filter(tickets::id.eq_any(chunk)),
        )
        .set((
            tickets::state.eq(to.state),
            tickets::stage.eq(to.stage),
            tickets::closed.eq(to.closed),
            tickets::version.eq(2_i64),
            tickets::state_entered_at.eq(diesel::dsl::sql::<super::types::DbTimestamp>(
                LATEST_STATE_CHANGE,
            )),
        ))
        .execute(conn)?;
    }
    Ok(())
}

fn index_scope(scope: &TenantScope) -> IndexScope {
    IndexScope {
        tenant: scope.tenant_id().0,
        partition: None,
    }
}

/// Brings a ticket's field index and tokens from its `old` entries (none for a new ticket)
/// to its `new` ones.
pub fn reindex(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    old: &Entries,
    new: &Entries,
) -> QueryResult<()> {
    index::reindex(conn, &TICKETS, index_scope(scope), ticket.0, old, new)
}

/// Adds tokens (a comment's); tokens already present are kept once.
pub fn add_tokens(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    tokens: &[(String, i16)],
) -> QueryResult<()> {
    index::insert_tokens(conn, &TICKETS, index_scope(scope), ticket.0, tokens)
}

#[derive(Debug, Clone, Queryable)]
pub struct HistoryRow {
    pub tenant_id: TenantId,
    pub ticket_id: TicketId,
    pub ticket_version: i64,
    pub ordinal: i32,
    pub at: Timestamp,
    pub actor_kind: String,
    pub actor_id: Option<EntityId>,
    pub actor_name: String,
    pub kind: String,
    pub transition: Option<String>,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub field: Option<String>,
    pub old_value: Option<Json>,
    pub new_value: Option<Json>,
    pub internal: bool,
    /// On a state change (`transition`, `migrated`): when the state it leaves was entered.
    pub state_since: Option<Timestamp>,
    /// The ticket's template.
    pub template_id: TemplateId,
    /// On a `created` entry of an imported ticket: the import and the source row.
    pub imported: Option<Json>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ticket_history)]
pub struct NewHistory {
    pub tenant_id: TenantId,
    pub ticket_id: TicketId,
    pub ticket_version: i64,
    pub ordinal: i32,
    pub at: Timestamp,
    pub actor_kind: String,
    pub actor_id: Option<EntityId>,
    pub actor_name: String,
    pub kind: String,
    pub transition: Option<String>,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub field: Option<String>,
    pub old_value: Option<Json>,
    pub new_value: Option<Json>,
    pub internal: bool,
    /// On a state change (`transition`, `migrated`): when the state it leaves was entered.
    pub state_since: Option<Timestamp>,
    /// The ticket's template.
    pub template_id: TemplateId,
    pub imported: Option<Json>,
}

pub fn insert_history(
    conn: &mut DbConnection,
    scope: &TenantScope,
    rows: &[NewHistory],
) -> QueryResult<()> {
    let rows: Vec<NewHistory> = rows
        .iter()
        .map(|row| NewHistory {
            tenant_id: scope.tenant_id(),
            ..row.clone()
        })
        .collect();
    for chunk in rows.chunks(MAX_ROWS_PER_STATEMENT) {
        per_backend!(conn, |c| diesel::insert_into(ticket_history::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// History of a ticket in order, after the `(version, ordinal)` position.
pub fn history(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    include_internal: bool,
    after: Option<(i64, i32)>,
    limit: i64,
) -> QueryResult<Vec<HistoryRow>> {
    let mut query = ticket_history::table
        .filter(ticket_history::tenant_id.eq(scope.tenant_id()))
        .filter(ticket_history::ticket_id.eq(ticket))
        .order((
            ticket_history::ticket_version.asc(),
            ticket_history::ordinal.asc(),
        ))
        .limit(limit)
        .into_boxed();
    if !include_internal {
        query = query.filter(ticket_history::internal.eq(false));
    }
    if let Some((version, ordinal)) = after {
        query = query.filter(
            ticket_history::ticket_version
                .gt(version)
                .or(ticket_history::ticket_version
                    .eq(version)
                    .and(ticket_history::ordinal.gt(ordinal))),
        );
    }
    query.load(conn)
}

/// How a ticket list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Created,
    Updated,
    Key,
}

/// Where the previous page ended, in the list's sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Created(TicketId),
    Updated(Timestamp, TicketId),
    Key(String, i64, TicketId),
}

/// A list query. Every condition is served by an index: the ticket columns by the
/// `tickets_*_idx` indexes, custom fields by `ticket_field_values`, words by `ticket_tokens`.
#[derive(Debug, Clone)]
pub struct TicketFilter {
    pub audience: Audience,
    pub template: Option<TemplateId>,
    pub states: Option<Vec<String>>,
    pub stage: Option<String>,
    pub closed: Option<bool>,
    pub assignee: Option<UserId>,
    pub group: Option<GroupId>,
    pub organization: Option<OrganizationId>,
    pub requester: Option<UserId>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub updated_after: Option<Timestamp>,
    pub updated_before: Option<Timestamp>,
    /// Field key → stored forms, any of which matches.
    pub fields: Vec<(String, Vec<String>)>,
    /// Every token must be present.
    pub tokens: Vec<String>,
    /// Tickets one of whose fields (`.0`, `library_ref` fields) holds the value `.1` (a
    /// library record id).
    pub references: Option<(Vec<String>, String)>,
    /// SQLite: matches of a condition from which it is probed per ticket rather than looked
    /// up (`STAGEFLOW_LIST_PROBE_THRESHOLD`, see `db::index::conditions`).
    pub probe_threshold: i64,
    /// Tickets with an SLA clock in this condition at the instant.
    pub sla: Option<(SlaCondition, Timestamp)>,
    pub sort: SortKey,
    pub descending: bool,
}

/// An SLA condition of the ticket list (`?sla=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaCondition {
    /// A clock past its target (open, or stopped late).
    Breached,
    /// An open clock past its at-risk share and not yet past its target.
    AtRisk,
}

type BoxedTickets<'a> = tickets::BoxedQuery<'a, super::MultiBackend>;

/// The list query with the conditions on ticket columns.
fn filtered<'a>(scope: &TenantScope, filter: &'a TicketFilter) -> BoxedTickets<'a> {
    let tenant = scope.tenant_id();
    let mut query = tickets::table
        .filter(tickets::tenant_id.eq(tenant))
        .into_boxed();
    if let Audience::Restricted { user, organization } = filter.audience {
        query = match (user, organization) {
            (Some(u), Some(o)) => query.filter(
                tickets::requester_id
                    .eq(u)
                    .or(tickets::organization_id.eq(o)),
            ),
            (Some(u), None) => query.filter(tickets::requester_id.eq(u)),
            (None, Some(o)) => query.filter(tickets::organization_id.eq(o)),
            // Sees nothing; keep the query well-formed.
            (None, None) => query.filter(tickets::id.ne(tickets::id)),
        };
    }
    if let Some(template) = filter.template {
        query = query.filter(tickets::template_id.eq(template));
    }
    // A single value is written `=`, not `= ANY(…)`: with it PostgreSQL sees the value when
    // planning and picks an ordered merge of two index scans (0.3 ms instead of 7 ms at
    // 100,000 tickets).
    match filter.states.as_deref() {
        Some([state]) => query = query.filter(tickets::state.eq(state)),
        Some(states) => query = query.filter(tickets::state.eq_any(states)),
        None => {}
    }
    if let Some(stage) = &filter.stage {
        query = query.filter(tickets::stage.eq(stage));
    }
    if let Some(closed) = filter.closed {
        query = query.filter(tickets::closed.eq(closed));
    }
    if let Some(v) = filter.assignee {
        query = query.filter(tickets::assignee_id.eq(v));
    }
    if let Some(v) = filter.group {
        query = query.filter(tickets::group_id.eq(v));
    }
    if let Some(v) = filter.organization {
        query = query.filter(tickets::organization_id.eq(v));
    }
    if let Some(v) = filter.requester {
        query = query.filter(tickets::requester_id.eq(v));
    }
    if let Some(v) = filter.created_after {
        query = query.filter(tickets::created_at.ge(v));
    }
    if let Some(v) = filter.created_before {
        query = query.filter(tickets::created_at.lt(v));
    }
    if let Some(v) = filter.updated_after {
        query = query.filter(tickets::updated_at.ge(v));
    }
    if let Some(v) = filter.updated_before {
        query = query.filter(tickets::updated_at.lt(v));
    }
    if let Some((condition, now)) = filter.sla {
        use super::schema::sla_clocks as c;
        let clocks = c::table
            .filter(c::tenant_id.eq(tickets::tenant_id))
            .filter(c::ticket_id.eq(tickets::id));
        query = match condition {
            SlaCondition::Breached => {
                query.filter(diesel::dsl::exists(clocks.filter(c::breach_at.le(now))))
            }
            SlaCondition::AtRisk => query.filter(diesel::dsl::exists(
                clocks
                    .filter(c::stopped_at.is_null())
                    .filter(c::at_risk_at.le(now))
                    .filter(c::breach_at.is_null().or(c::breach_at.gt(now))),
            )),
        };
    }
    query
}

/// One page of tickets matching `filter`, after `after`, with their template keys.
pub fn list_tickets(
    conn: &mut DbConnection,
    scope: &TenantScope,
    filter: &TicketFilter,
    after: Option<&After>,
    limit: i64,
) -> QueryResult<Vec<TicketWithTemplate>> {
    let index_filter = IndexFilter {
        fields: &filter.fields,
        references: filter
            .references
            .as_ref()
            .map(|(fields, value)| (fields.as_slice(), value.as_str())),
        tokens: &filter.tokens,
        internal: filter.audience.is_staff(),
        probe_threshold: filter.probe_threshold,
    };
    let mut query = filtered(scope, filter);
    for condition in index::conditions(conn, &TICKETS, index_scope(scope), &index_filter)? {
        query = query.filter(condition);
    }
    let desc = filter.descending;
    query = match (filter.sort, desc) {
        (SortKey::Created, false) => query.order(tickets::id.asc()),
        (SortKey::Created, true) => query.order(tickets::id.desc()),
        (SortKey::Updated, false) => query.order((tickets::updated_at.asc(), tickets::id.asc())),
        (SortKey::Updated, true) => query.order((tickets::updated_at.desc(), tickets::id.desc())),
        (SortKey::Key, false) => query.order((
            tickets::key_prefix.asc(),
            tickets::number.asc(),
            tickets::id.asc(),
        )),
        (SortKey::Key, true) => query.order((
            tickets::key_prefix.desc(),
            tickets::number.desc(),
            tickets::id.desc(),
        )),
    };
    if let Some(after) = after {
        query = match (after, desc) {
            (After::Created(id), false) => query.filter(tickets::id.gt(*id)),
            (After::Created(id), true) => query.filter(tickets::id.lt(*id)),
            (After::Updated(at, id), false) => query.filter(
                tickets::updated_at
                    .gt(*at)
                    .or(tickets::updated_at.eq(*at).and(tickets::id.gt(*id))),
            ),
            (After::Updated(at, id), true) => query.filter(
                tickets::updated_at
                    .lt(*at)
                    .or(tickets::updated_at.eq(*at).and(tickets::id.lt(*id))),
            ),
            // Two templates may share a key prefix, so (prefix, number) can repeat: the id
            // breaks the tie, as in the ORDER BY.
            (After::Key(prefix, number, id), false) => query.filter(
                tickets::key_prefix
                    .gt(prefix.clone())
                    .or(tickets::key_prefix.eq(prefix.clone()).and(
                        tickets::number
                            .gt(*number)
                            .or(tickets::number.eq(*number).and(tickets::id.gt(*id))),
                    )),
            ),
            (After::Key(prefix, number, id), true) => query.filter(
                tickets::key_prefix
                    .lt(prefix.clone())
                    .or(tickets::key_prefix.eq(prefix.clone()).and(
                        tickets::number
                            .lt(*number)
                            .or(tickets::number.eq(*number).and(tickets::id.lt(*id))),
                    )),
            ),
        };
    }
    let rows: Vec<TicketRow> = query.limit(limit).load(conn)?;
    with_template_keys(conn, scope, rows)
}

/// Pairs tickets with their templates' keys (one query for the page).
fn with_template_keys(
    conn: &mut DbConnection,
    scope: &TenantScope,
    rows: Vec<TicketRow>,
) -> QueryResult<Vec<TicketWithTemplate>> {
    let mut ids: Vec<TemplateId> = rows.iter().map(|r| r.template_id).collect();
    ids.sort();
    ids.dedup();
    let keys: Vec<(TemplateId, String)> = templates::table
        .filter(templates::tenant_id.eq(scope.tenant_id()))
        .filter(templates::id.eq_any(ids))
        .select((templates::id, templates::key))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let key = keys
                .iter()
                .find(|(id, _)| *id == row.template_id)
                .map(|(_, k)| k.clone())
                .unwrap_or_default();
            (row, key)
        })
        .collect())
}

/// Live ticket counts per state of a template.
pub fn count_by_state(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
) -> QueryResult<Vec<(String, i64)>> {
    tickets::table
        .filter(tickets::tenant_id.eq(scope.tenant_id()))
        .filter(tickets::template_id.eq(template))
        .group_by(tickets::state)
        .select((tickets::state, diesel::dsl::count_star()))
        .load(conn)
}

/// The tickets with this key (`INC-42`: prefix and number); two templates may share a
/// prefix, so there may be more than one (oldest first).
pub fn ids_by_key(
    conn: &mut DbConnection,
    scope: &TenantScope,
    prefix: &str,
    number: i64,
) -> QueryResult<Vec<TicketId>> {
    tickets::table
        .filter(tickets::tenant_id.eq(scope.tenant_id()))
        .filter(tickets::key_prefix.eq(prefix))
        .filter(tickets::number.eq(number))
        .order(tickets::id.asc())
        .select(tickets::id)
        .load(conn)
}

/// A ticket's state timeline for SLA clocks: the filing and every transition, in order,
/// with the state entered.
pub fn state_timeline(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
) -> QueryResult<Vec<(Timestamp, Option<String>)>> {
    ticket_history::table
        .filter(ticket_history::tenant_id.eq(scope.tenant_id()))
        .filter(ticket_history::ticket_id.eq(ticket))
        .filter(ticket_history::kind.eq_any(["created", "transition", "migrated"]))
        .order((
            ticket_history::ticket_version.asc(),
            ticket_history::ordinal.asc(),
        ))
        .select((ticket_history::at, ticket_history::to_state))
        .load(conn)
}

/// When someone other than the requester first commented publicly on a ticket.
pub fn first_public_comment_by_other(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    requester: Option<UserId>,
) -> QueryResult<Option<Timestamp>> {
    use super::schema::ticket_comments;
    let mut query = ticket_comments::table
        .filter(ticket_comments::tenant_id.eq(scope.tenant_id()))
        .filter(ticket_comments::ticket_id.eq(ticket))
        .filter(ticket_comments::internal.eq(false))
        .select(ticket_comments::created_at)
        .order(ticket_comments::created_at.asc())
        .limit(1)
        .into_boxed();
    if let Some(requester) = requester {
        query = query.filter(
            ticket_comments::author_id
                .ne(EntityId(requester.0))
                .or(ticket_comments::author_id.is_null()),
        );
    }
    query.first(conn).optional()
}

/// A page of a template's tickets (every version) in id order, locked on PostgreSQL.
pub fn tickets_of_template(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    after: Option<TicketId>,
    limit: i64,
) -> QueryResult<Vec<TicketRow>> {
    // The nil id sorts before every id on both backends.
    let after = after.unwrap_or(TicketId(uuid::Uuid::nil()));
    let query = tickets::table
        .filter(tickets::tenant_id.eq(scope.tenant_id()))
        .filter(tickets::template_id.eq(template))
        .filter(tickets::id.gt(after))
        .order(tickets::id.asc())
        .limit(limit);
    match conn {
        // Locked until the transaction ends: a change to one of them (which writes its own
        // derived rows) waits, so what is derived here from the rows read is not stale.
        DbConnection::Postgres(pg) => query.for_update().load(pg),
        DbConnection::Sqlite(_) => query.load(conn),
    }
}

/// Which tickets of a template the statistics count (`GET /stats/templates/{key}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsFilter {
    pub group: Option<GroupId>,
    pub organization: Option<OrganizationId>,
    /// `(field, stored forms)`: tickets whose field holds one of them (`ticket_field_values`).
    pub field: Option<(String, Vec<String>)>,
}

/// Tickets per `(stage, state, closed)`.
pub type StatsCount = (String, String, bool, i64);

/// A state change as the statistics see it: (the ticket's template version, a creation?,
/// at, state left, state entered, when the state left was entered).
pub type StateChange = (
    i32,
    bool,
    Timestamp,
    Option<String>,
    Option<String>,
    Option<Timestamp>,
);

/// Narrows a boxed query whose FROM has `tickets` to the template's tickets the filter keeps.
macro_rules! stats_filtered {
    ($query:expr, $scope:expr, $template:expr, $filter:expr) => {{
        use $crate::db::schema::ticket_field_values as v;
        let mut query = $query
            .filter(tickets::tenant_id.eq($scope.tenant_id()))
            .filter(tickets::template_id.eq($template));
        if let Some(group) = $filter.group {
            query = query.filter(tickets::group_id.eq(group));
        }
        if let Some(organization) = $filter.organization {
            query = query.filter(tickets::organization_id.eq(organization));
        }
        if let Some((field, values)) = &$filter.field {
            query = query.filter(
                tickets::id.eq_any(
                    v::table
                        .filter(v::tenant_id.eq($scope.tenant_id()))
                        .filter(v::field.eq(field.as_str()))
                        .filter(v::value.eq_any(values))
                        .select(v::ticket_id),
                ),
            );
        }
        query
    }};
}

/// The template's tickets the filter keeps, counted per `(state, closed)`: a walk of
/// `tickets_stats_idx` in its order, with no sort.
pub fn stats_counts(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    filter: &StatsFilter,
) -> QueryResult<Vec<(String, bool, i64)>> {
    let grouped = tickets::table
        .group_by((tickets::state, tickets::closed))
        .select((tickets::state, tickets::closed, diesel::dsl::count_star()))
        .into_boxed();
    stats_filtered!(grouped, scope, template, filter).load(conn)
}

/// [`stats_counts`] per `(stage, state, closed)`: for a template whose versions put a state in
/// different stages.
pub fn stats_counts_by_stage(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    filter: &StatsFilter,
) -> QueryResult<Vec<StatsCount>> {
    let grouped = tickets::table
        .group_by((tickets::stage, tickets::state, tickets::closed))
        .select((
            tickets::stage,
            tickets::state,
            tickets::closed,
            diesel::dsl::count_star(),
        ))
        .into_boxed();
    stats_filtered!(grouped, scope, template, filter).load(conn)
}

/// Which end of an open state's queue to count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entered {
    /// Earliest entry first (oldest first).
    Earliest,
    /// Latest entry first (youngest first).
    Latest,
}

/// The `state_entered_at` of the open ticket `offset` places from one end of a state's
/// queue (index `tickets_stats_idx` walks it in order): a rank of the open tickets' ages.
pub fn stats_open_entered(
    conn: &mut DbConnection,
    scope: &TenantScope,
    (template, state): (TemplateId, &str),
    filter: &StatsFilter,
    from: Entered,
    offset: i64,
) -> QueryResult<Option<Timestamp>> {
    let query = stats_filtered!(tickets::table.into_boxed(), scope, template, filter)
        .filter(tickets::state.eq(state))
        .filter(tickets::closed.eq(false));
    let query = match from {
        Entered::Earliest => query.order(tickets::state_entered_at.asc()),
        Entered::Latest => query.order(tickets::state_entered_at.desc()),
    };
    query
        .select(tickets::state_entered_at)
        .offset(offset)
        .limit(1)
        .first(conn)
        .optional()
}

/// The state changes of those tickets at or after `since` (index
/// `ticket_history_template_at_idx`), with each ticket's template version, in no particular
/// order.
pub fn stats_state_changes_since(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    filter: &StatsFilter,
    since: Timestamp,
) -> QueryResult<Vec<StateChange>> {
    let joined = ticket_history::table
        .inner_join(
            tickets::table.on(tickets::tenant_id
                .eq(ticket_history::tenant_id)
                .and(tickets::id.eq(ticket_history::ticket_id))),
        )
        .into_boxed();
    stats_filtered!(joined, scope, template, filter)
        .filter(ticket_history::tenant_id.eq(scope.tenant_id()))
        .filter(ticket_history::template_id.eq(template))
        .filter(ticket_history::at.ge(since))
        .filter(ticket_history::kind.eq_any(["created", "transition", "migrated"]))
        .select((
            tickets::template_version,
            ticket_history::kind.eq("created"),
            ticket_history::at,
            ticket_history::from_state,
            ticket_history::to_state,
            ticket_history::state_since,
        ))
        .load(conn)
}

/// [`stats_state_changes_since`] of every ticket of the template, from the history alone
/// (no filter, so no ticket is read): the version in each row is 0.
pub fn template_state_changes_since(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    since: Timestamp,
) -> QueryResult<Vec<StateChange>> {
    ticket_history::table
        .filter(ticket_history::tenant_id.eq(scope.tenant_id()))
        .filter(ticket_history::template_id.eq(template))
        .filter(ticket_history::at.ge(since))
        .filter(ticket_history::kind.eq_any(["created", "transition", "migrated"]))
        .select((
            0_i32.into_sql::<diesel::sql_types::Integer>(),
            ticket_history::kind.eq("created"),
            ticket_history::at,
            ticket_history::from_state,
            ticket_history::to_state,
            ticket_history::state_since,
        ))
        .load(conn)
}

/// The SLA clocks of those tickets that stopped in `[from, to)`: (target, stopped at, breach
/// instant).
pub fn stats_stopped_clocks(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    filter: &StatsFilter,
    (from, to): (Timestamp, Timestamp),
) -> QueryResult<Vec<(String, Timestamp, Option<Timestamp>)>> {
    use super::schema::sla_clocks as c;
    let joined = c::table
        .inner_join(
            tickets::table.on(tickets::tenant_id
                .eq(c::tenant_id)
                .and(tickets::id.eq(c::ticket_id))),
        )
        .into_boxed();
    stats_filtered!(joined, scope, template, filter)
        .filter(c::tenant_id.eq(scope.tenant_id()))
        .filter(c::stopped_at.ge(from))
        .filter(c::stopped_at.lt(to))
        .select((c::target, c::stopped_at.assume_not_null(), c::breach_at))
        .load(conn)
}

/// A page of the tickets on one template version filed at or before `filed_by`, in id order
/// (a migration's batches).
pub fn tickets_on_version(
    conn: &mut DbConnection,
    scope: &TenantScope,
    (template, version): (TemplateId, i32),
    filed_by: Timestamp,
    after: Option<TicketId>,
    limit: i64,
) -> QueryResult<Vec<TicketRow>> {
    let mut query = tickets::table
        .filter(tickets::tenant_id.eq(scope.tenant_id()))
        .filter(tickets::template_id.eq(template))
        .filter(tickets::template_version.eq(version))
        .filter(tickets::created_at.le(filed_by))
        .order(tickets::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(tickets::id.gt(after));
    }
    query.load(conn)
}
