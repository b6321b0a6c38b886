//! The event log: written in the transaction of the change it describes, read in commit
//! order.
//!
//! Order: a feed position is `(txid, seq)`. On SQLite one writer at a time (`BEGIN
//! IMMEDIATE` and the process's writer lock) numbers a tenant's rows (`seq` = last + 1) in
//! commit order, and `txid` is 0. On PostgreSQL `seq` numbers the events of one transaction
//! (1, 2, … in the order written: [`next_in_transaction`]), and a transaction that inserts
//! early and commits late would land behind a position a reader already passed. Each row
//! therefore carries its transaction id (`txid`, the column default `pg_current_xact_id()`),
//! and the feed returns only rows of transactions older than the oldest one still running
//! (`pg_snapshot_xmin`): those have all finished, so nothing can appear below the horizon
//! later. Ordered by `(txid, seq)`, pages have no gaps and no duplicates.

use std::cell::Cell;

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::DbConnection;
use super::schema::{events, tickets};
use super::types::{Json, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{EntityId, EventId, OrganizationId, TicketId, UserId};

thread_local! {
    /// How many events the write transaction open on this thread has written (PostgreSQL).
    /// A transaction runs on one thread, and only it writes rows with its transaction id, so
    /// the count numbers its events uniquely without asking the database — no sequence shared
    /// by all tenants (which Citus could not distribute) and no query per event.
    static WRITTEN_IN_TRANSACTION: Cell<i64> = const { Cell::new(0) };
}

/// Starts the numbering of a write transaction's events (`db::write_transaction`); returns
/// the count of a transaction still open around it on this thread, for
/// [`end_transaction_numbering`].
pub(super) fn begin_transaction_numbering() -> i64 {
    WRITTEN_IN_TRANSACTION.replace(0)
}

/// Gives the numbering back to the transaction around the one that ended.
pub(super) fn end_transaction_numbering(outer: i64) {
    WRITTEN_IN_TRANSACTION.set(outer);
}

/// The next event number of this thread's open transaction. Outside `write_transaction`
/// (a transaction a caller opened itself) the count only grows, which keeps the numbers of
/// that transaction unique too.
fn next_in_transaction() -> i64 {
    WRITTEN_IN_TRANSACTION.with(|count| {
        let next = count.get() + 1;
        count.set(next);
        next
    })
}

/// A position in a tenant's feed: after `(txid, seq)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub txid: i64,
    pub seq: i64,
}

/// An event as written.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub id: EventId,
    pub at: Timestamp,
    pub event_type: &'a str,
    pub actor_kind: &'a str,
    pub actor_id: Option<EntityId>,
    pub actor_name: &'a str,
    pub subject_type: &'a str,
    pub subject_id: EntityId,
    pub ticket_id: Option<TicketId>,
    pub container: Option<&'a str>,
    pub audience: &'a str,
    pub payload: serde_json::Value,
    pub restricted_payload: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Queryable)]
pub struct EventRow {
    pub seq: i64,
    pub txid: i64,
    pub id: EventId,
    pub at: Timestamp,
    pub event_type: String,
    pub actor_kind: String,
    pub actor_id: Option<EntityId>,
    pub actor_name: String,
    pub subject_type: String,
    pub subject_id: EntityId,
    pub ticket_id: Option<TicketId>,
    pub container: Option<String>,
    pub payload: Json,
    pub restricted_payload: Option<Json>,
}

impl EventRow {
    pub fn position(&self) -> Position {
        Position {
            txid: self.txid,
            seq: self.seq,
        }
    }
}

/// Writes the event; returns its feed position.
pub fn insert(
    conn: &mut DbConnection,
    scope: &TenantScope,
    event: NewEvent<'_>,
) -> QueryResult<Position> {
    let values = (
        events::tenant_id.eq(scope.tenant_id()),
        events::id.eq(event.id),
        events::at.eq(event.at),
        events::event_type.eq(event.event_type),
        events::actor_kind.eq(event.actor_kind),
        events::actor_id.eq(event.actor_id),
        events::actor_name.eq(event.actor_name),
        events::subject_type.eq(event.subject_type),
        events::subject_id.eq(event.subject_id),
        events::ticket_id.eq(event.ticket_id),
        events::container.eq(event.container),
        events::audience.eq(event.audience),
        events::payload.eq(Json(event.payload)),
        events::restricted_payload.eq(event.restricted_payload.map(Json)),
    );
    match conn {
        // The transaction id is the column default; the row is its transaction's next event
        // (a statement without SQL literals, so it stays a cached prepared statement).
        DbConnection::Postgres(pg) => {
            let (txid, seq) = diesel::insert_into(events::table)
                .values((events::seq.eq(next_in_transaction()), values))
                .returning((events::txid, events::seq))
                .get_result(pg)?;
            Ok(Position { txid, seq })
        }
        // The tenant's next number, safe under the one-writer lock the transaction holds.
        // `txid` is always 0 here; naming it makes (tenant_id, txid) an equality prefix of
        // the primary key, so `max(seq)` is one index probe instead of a scan of every event
        // of the tenant (the scan made each event cost O(events): 461 imported tickets/s at
        // 100,000 against 3,648/s at 3,000).
        DbConnection::Sqlite(lite) => {
            let last: Option<i64> = events::table
                .filter(events::tenant_id.eq(scope.tenant_id()))
                .filter(events::txid.eq(0))
                .select(diesel::dsl::max(events::seq))
                .get_result(lite)?;
            let seq = last.unwrap_or(0) + 1;
            diesel::insert_into(events::table)
                .values((events::seq.eq(seq), values))
                .execute(lite)?;
            Ok(Position { txid: 0, seq })
        }
    }
}

/// Which events a reader gets. Staff read `full_audiences` and the library events of
/// `full_libraries` whole; a restricted reader (`restricted` set) reads only events with a
/// restricted payload: of tickets it sees and of the libraries it may read.
#[derive(Debug, Clone, Default)]
pub struct FeedVisibility {
    pub full_audiences: Vec<&'static str>,
    pub full_libraries: Vec<String>,
    pub restricted: Option<RestrictedReader>,
}

#[derive(Debug, Clone)]
pub struct RestrictedReader {
    pub user: Option<UserId>,
    pub organization: Option<OrganizationId>,
    pub libraries: Vec<String>,
}

/// Filters a client asked for.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    /// Event types (any of them); empty: all.
    pub types: Vec<&'static str>,
    pub subject: Option<EntityId>,
}

type Row = (
    (
        events::seq,
        events::txid,
        events::id,
        events::at,
        events::event_type,
        events::actor_kind,
        events::actor_id,
        events::actor_name,
        events::subject_type,
        events::subject_id,
        events::ticket_id,
    ),
    (
        events::container,
        events::payload,
        events::restricted_payload,
    ),
);

const COLUMNS: Row = (
    (
        events::seq,
        events::txid,
        events::id,
        events::at,
        events::event_type,
        events::actor_kind,
        events::actor_id,
        events::actor_name,
        events::subject_type,
        events::subject_id,
        events::ticket_id,
    ),
    (
        events::container,
        events::payload,
        events::restricted_payload,
    ),
);

type Loaded = (
    (
        i64,
        i64,
        EventId,
        Timestamp,
        String,
        String,
        Option<EntityId>,
        String,
        String,
        EntityId,
        Option<TicketId>,
    ),
    (Option<String>, Json, Option<Json>),
);

fn row((a, b): Loaded) -> EventRow {
    EventRow {
        seq: a.0,
        txid: a.1,
        id: a.2,
        at: a.3,
        event_type: a.4,
        actor_kind: a.5,
        actor_id: a.6,
        actor_name: a.7,
        subject_type: a.8,
        subject_id: a.9,
        ticket_id: a.10,
        container: b.0,
        payload: b.1,
        restricted_payload: b.2,
    }
}

/// The visibility horizon on PostgreSQL: the oldest transaction of this database still
/// running (else the next transaction id to be assigned). Transactions of other databases
/// of the cluster are left out, so they cannot hold this feed back: a transaction in the
/// snapshot's in-progress list counts only when a backend of this database holds its id
/// (`pg_stat_activity.backend_xid` is the 32-bit form, hence the modulo). One that commits
/// between the snapshot and that lookup is visible to the feed query that follows.
const PG_HORIZON: &str = "COALESCE(\
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(snap.s) AS x \
      WHERE x::text::bigint % 4294967296 IN (\
        SELECT backend_xid::text::bigint FROM pg_stat_activity \
        WHERE datname = current_database() AND backend_xid IS NOT NULL)), \
    pg_snapshot_xmax(snap.s)::text::bigint)";

/// Rows of transactions at or above the horizon are not read yet: they may still commit
/// with a lower position than rows already read. SQLite has no such thing (every committed
/// row is final).
fn horizon(conn: &mut DbConnection) -> QueryResult<i64> {
    match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(format!(
            "SELECT {PG_HORIZON} AS horizon FROM (SELECT pg_current_snapshot() AS s) AS snap"
        ))
        .get_result::<Horizon>(pg)
        .map(|h| h.horizon),
        DbConnection::Sqlite(_) => Ok(i64::MAX),
    }
}

#[derive(QueryableByName)]
struct Horizon {
    #[diesel(sql_type = BigInt)]
    horizon: i64,
}

/// Events after `after` in feed order. On SQLite every event has `txid` 0, so the position
/// is `txid = 0 AND seq > n`: an equality prefix and a range of the primary key, which SQLite
/// reads as one index range. The general `txid > t OR (txid = t AND seq > n)` makes SQLite
/// scan the tenant's events from the first one (O(events) per page).
fn after_position(
    conn: &DbConnection,
    after: Position,
) -> Box<dyn BoxableExpression<events::table, super::MultiBackend, SqlType = diesel::sql_types::Bool>>
{
    if matches!(conn, DbConnection::Sqlite(_)) && after.txid == 0 {
        Box::new(events::txid.eq(0).and(events::seq.gt(after.seq)))
    } else {
        Box::new(
            events::txid
                .gt(after.txid)
                .or(events::txid.eq(after.txid).and(events::seq.gt(after.seq))),
        )
    }
}

/// Up to `limit` events after `after`, in feed order, that `visibility` lets the reader see
/// and `filter` asks for.
pub fn after(
    conn: &mut DbConnection,
    scope: &TenantScope,
    visibility: &FeedVisibility,
    filter: &FeedFilter,
    after: Position,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    let horizon = horizon(conn)?;
    let mut query = events::table
        .filter(events::tenant_id.eq(scope.tenant_id()))
        .filter(events::txid.lt(horizon))
        .order((events::txid.asc(), events::seq.asc()))
        .limit(limit)
        .select(COLUMNS)
        .into_boxed();
    query = query.filter(after_position(conn, after));
    if !filter.types.is_empty() {
        query = query.filter(events::event_type.eq_any(filter.types.clone()));
    }
    if let Some(subject) = filter.subject {
        query = query.filter(events::subject_id.eq(subject));
    }
    query = match &visibility.restricted {
        None => query.filter(
            events::audience
                .eq_any(visibility.full_audiences.clone())
                .or(events::audience
                    .eq("library")
                    .and(events::container.eq_any(visibility.full_libraries.clone()))),
        ),
        Some(reader) => {
            let own_tickets = tickets::table
                .filter(tickets::tenant_id.eq(scope.tenant_id()))
                .filter(
                    tickets::requester_id
                        .eq(reader.user)
                        .or(tickets::organization_id.eq(reader.organization)),
                )
                .select(tickets::id.nullable());
            query
                .filter(events::restricted_payload.is_not_null())
                .filter(
                    events::audience
                        .eq("tickets")
                        .and(events::ticket_id.eq_any(own_tickets))
                        .or(events::audience
                            .eq("library")
                            .and(events::container.eq_any(reader.libraries.clone()))),
                )
        }
    };
    Ok(query.load::<Loaded>(conn)?.into_iter().map(row).collect())
}

/// The events of `ids` that are still kept (a webhook delivery's body is made from its
/// event), in no particular order.
pub fn by_ids(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ids: &[EventId],
) -> QueryResult<Vec<EventRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(events::table
        .filter(events::tenant_id.eq(scope.tenant_id()))
        .filter(events::id.eq_any(ids))
        .select(COLUMNS)
        .load::<Loaded>(conn)?
        .into_iter()
        .map(row)
        .collect())
}

/// Which events a webhook subscription takes: of these types (empty: all) and, with a
/// template, only the ticket and template events of that template.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub types: Vec<String>,
    pub template: Option<String>,
}

/// Up to `limit` events a subscription takes after `after`, in feed order, of every
/// audience (it reads as a tenant admin). `settled`: only below the visibility horizon, as
/// the feed reads (what is sent); otherwise every committed one (whether anything is left).
pub fn to_deliver(
    conn: &mut DbConnection,
    scope: &TenantScope,
    filter: &DeliveryFilter,
    after: Position,
    (limit, settled): (i64, bool),
) -> QueryResult<Vec<EventRow>> {
    let horizon = if settled { horizon(conn)? } else { i64::MAX };
    let mut query = events::table
        .filter(events::tenant_id.eq(scope.tenant_id()))
        .filter(events::txid.lt(horizon))
        .order((events::txid.asc(), events::seq.asc()))
        .limit(limit)
        .select(COLUMNS)
        .into_boxed();
    query = query.filter(after_position(conn, after));
    if !filter.types.is_empty() {
        query = query.filter(events::event_type.eq_any(filter.types.clone()));
    }
    if let Some(template) = &filter.template {
        query = query.filter(events::container.eq(template.clone())).filter(
            events::event_type
                .like("ticket.%")
                .or(events::event_type.eq("template.published")),
        );
    }
    Ok(query.load::<Loaded>(conn)?.into_iter().map(row).collect())
}

/// The tenant's last readable position (where a live stream starts).
pub fn latest(conn: &mut DbConnection, scope: &TenantScope) -> QueryResult<Position> {
    let horizon = horizon(conn)?;
    let last: Option<(i64, i64)> = events::table
        .filter(events::tenant_id.eq(scope.tenant_id()))
        .filter(events::txid.lt(horizon))
        .order((events::txid.desc(), events::seq.desc()))
        .select((events::txid, events::seq))
        .first(conn)
        .optional()?;
    Ok(last.map_or_else(Position::default, |(txid, seq)| Position { txid, seq }))
}
