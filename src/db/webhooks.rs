//! Webhook subscriptions and their deliveries (the outbox rows the delivery job sends).

use diesel::prelude::*;

use super::DbConnection;
use super::events::{DeliveryFilter, Position};
use super::schema::{webhook_deliveries, webhooks};
use super::types::{Json, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{DeliveryId, EntityId, EventId, TenantId, WebhookId};

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub tenant_id: TenantId,
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    pub event_types: Json,
    pub template: Option<String>,
    pub enabled: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<Timestamp>,
    pub failing_since: Option<Timestamp>,
    pub disabled_reason: Option<String>,
    pub created_by: EntityId,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The feed position up to which events have been looked at for delivery.
    pub cursor_txid: i64,
    pub cursor_seq: i64,
}

impl WebhookRow {
    /// The events it takes (what [`WebhookRow::types`] and `template` say).
    pub fn filter(&self) -> DeliveryFilter {
        DeliveryFilter {
            types: self.types(),
            template: self.template.clone(),
        }
    }

    /// Where its delivery job goes on reading the event log.
    pub fn cursor(&self) -> Position {
        Position {
            txid: self.cursor_txid,
            seq: self.cursor_seq,
        }
    }

    /// The event types this subscription takes; empty: all.
    pub fn types(&self) -> Vec<String> {
        self.event_types
            .0
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn insert(conn: &mut DbConnection, scope: &TenantScope, row: &WebhookRow) -> QueryResult<()> {
    super::of_scope(scope, row.tenant_id)?;
    diesel::insert_into(webhooks::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: WebhookId,
) -> QueryResult<Option<WebhookRow>> {
    webhooks::table
        .filter(webhooks::tenant_id.eq(scope.tenant_id()))
        .filter(webhooks::id.eq(id))
        .first(conn)
        .optional()
}

/// The subscription row locked for a change (PostgreSQL; SQLite has one writer).
pub fn lock(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: WebhookId,
) -> QueryResult<Option<WebhookRow>> {
    match conn {
        DbConnection::Postgres(pg) => webhooks::table
            .filter(webhooks::tenant_id.eq(scope.tenant_id()))
            .filter(webhooks::id.eq(id))
            .for_update()
            .first(pg)
            .optional(),
        DbConnection::Sqlite(_) => find(conn, scope, id),
    }
}

pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<WebhookId>,
    limit: i64,
) -> QueryResult<Vec<WebhookRow>> {
    let mut query = webhooks::table
        .filter(webhooks::tenant_id.eq(scope.tenant_id()))
        .order(webhooks::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(webhooks::id.gt(after));
    }
    query.load(conn)
}

diesel::define_sql_function! {
    /// `concat(text, id)`: PostgreSQL and SQLite (3.44 and later) both have it, and both
    /// write a uuid as [`WebhookId`]'s `Display` does (SQLite stores it so).
    fn concat(prefix: diesel::sql_types::Text, id: crate::db::types::DbUuid) -> diesel::sql_types::Text;
}

/// The tenant's enabled subscriptions (the outbox consults them for every event), each with
/// whether its delivery job exists — the job whose singleton key is `job_key_prefix`
/// followed by the subscription's id. One statement for both, so that an event with a
/// subscription costs no more round trips than one without (ARCHITECTURE.md, "Ending
/// without losing a delivery", says why reading the job without a lock is safe).
pub fn enabled_with_job(
    conn: &mut DbConnection,
    scope: &TenantScope,
    job_key_prefix: &str,
) -> QueryResult<Vec<(WebhookRow, bool)>> {
    use super::schema::jobs;
    let job = diesel::dsl::exists(
        jobs::table.filter(
            jobs::singleton
                .assume_not_null()
                .eq(concat(job_key_prefix, webhooks::id)),
        ),
    );
    webhooks::table
        .filter(webhooks::tenant_id.eq(scope.tenant_id()))
        .filter(webhooks::enabled.eq(true))
        .select((webhooks::all_columns, job))
        .load(conn)
}

pub fn count(conn: &mut DbConnection, scope: &TenantScope) -> QueryResult<i64> {
    webhooks::table
        .filter(webhooks::tenant_id.eq(scope.tenant_id()))
        .count()
        .get_result(conn)
}

/// Replaces a subscription's row (its id and tenant stay).
pub fn update(conn: &mut DbConnection, scope: &TenantScope, row: &WebhookRow) -> QueryResult<()> {
    diesel::update(
        webhooks::table
            .filter(webhooks::tenant_id.eq(scope.tenant_id()))
            .filter(webhooks::id.eq(row.id)),
    )
    .set((
        webhooks::url.eq(&row.url),
        webhooks::description.eq(&row.description),
        webhooks::event_types.eq(&row.event_types),
        webhooks::template.eq(&row.template),
        webhooks::enabled.eq(row.enabled),
        webhooks::secret.eq(&row.secret),
        webhooks::previous_secret.eq(&row.previous_secret),
        webhooks::previous_secret_until.eq(row.previous_secret_until),
        webhooks::failing_since.eq(row.failing_since),
        webhooks::disabled_reason.eq(&row.disabled_reason),
        webhooks::version.eq(row.version),
        webhooks::updated_at.eq(row.updated_at),
    ))
    .execute(conn)?;
    Ok(())
}

/// Moves a subscription's cursor (its delivery job, or re-enabling it: events written while
/// it was off are not delivered).
pub fn set_cursor(
    conn: &mut DbConnection,
    (tenant, id): (TenantId, WebhookId),
    cursor: Position,
) -> QueryResult<()> {
    diesel::update(
        webhooks::table
            .filter(webhooks::tenant_id.eq(tenant))
            .filter(webhooks::id.eq(id)),
    )
    .set((
        webhooks::cursor_txid.eq(cursor.txid),
        webhooks::cursor_seq.eq(cursor.seq),
    ))
    .execute(conn)?;
    Ok(())
}

/// Adds deliveries (those a job attempted or held back for the first time).
pub fn insert_deliveries(conn: &mut DbConnection, rows: &[DeliveryRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    per_backend!(conn, |c| diesel::insert_into(webhook_deliveries::table)
        .values(rows)
        .execute(c))?;
    Ok(())
}

pub fn delete(conn: &mut DbConnection, scope: &TenantScope, id: WebhookId) -> QueryResult<bool> {
    diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::tenant_id.eq(scope.tenant_id()))
            .filter(webhook_deliveries::webhook_id.eq(id)),
    )
    .execute(conn)?;
    let n = diesel::delete(
        webhooks::table
            .filter(webhooks::tenant_id.eq(scope.tenant_id()))
            .filter(webhooks::id.eq(id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Delivery states.
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    pub tenant_id: TenantId,
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event_type: String,
    pub subject_id: Option<EntityId>,
    pub event_txid: i64,
    pub event_seq: i64,
    /// The request body of a delivery that is not an event's (a ping); empty for an event's,
    /// whose body is made from the event when it is sent.
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub response_excerpt: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
}

pub fn insert_delivery(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &DeliveryRow,
) -> QueryResult<()> {
    super::of_scope(scope, row.tenant_id)?;
    diesel::insert_into(webhook_deliveries::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_delivery(
    conn: &mut DbConnection,
    scope: &TenantScope,
    webhook: WebhookId,
    id: DeliveryId,
) -> QueryResult<Option<DeliveryRow>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::tenant_id.eq(scope.tenant_id()))
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .filter(webhook_deliveries::id.eq(id))
        .first(conn)
        .optional()
}

/// A subscription's deliveries, newest first.
pub fn deliveries(
    conn: &mut DbConnection,
    scope: &TenantScope,
    webhook: WebhookId,
    status: Option<&str>,
    before: Option<DeliveryId>,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::tenant_id.eq(scope.tenant_id()))
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(webhook_deliveries::status.eq(status.to_owned()));
    }
    if let Some(before) = before {
        query = query.filter(webhook_deliveries::id.lt(before));
    }
    query.load(conn)
}

/// Deliveries of a subscription created in `[from, to)`, oldest first, at most `limit`.
pub fn deliveries_between(
    conn: &mut DbConnection,
    scope: &TenantScope,
    webhook: WebhookId,
    (from, to): (Timestamp, Timestamp),
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::tenant_id.eq(scope.tenant_id()))
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .filter(webhook_deliveries::created_at.ge(from))
        .filter(webhook_deliveries::created_at.lt(to))
        .order(webhook_deliveries::id.asc())
        .limit(limit)
        .load(conn)
}

/// A subscription's pending deliveries due at `now`, in event order (the order they go out
/// in), at most `limit`.
pub fn due(
    conn: &mut DbConnection,
    (tenant, webhook): (TenantId, WebhookId),
    now: Timestamp,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::tenant_id.eq(tenant))
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .filter(webhook_deliveries::status.eq(PENDING))
        .filter(webhook_deliveries::next_attempt_at.le(now))
        .order((
            webhook_deliveries::event_txid,
            webhook_deliveries::event_seq,
            webhook_deliveries::id,
        ))
        .limit(limit)
        .load(conn)
}

/// A pending delivery that is not due yet (it waits for a retry): its subject, event
/// position and due time.
pub type Waiting = (Option<EntityId>, i64, i64, Option<Timestamp>);

/// A subscription's pending deliveries not due at `now`: those waiting for a retry, which
/// later deliveries of their subjects must not overtake.
pub fn waiting(
    conn: &mut DbConnection,
    (tenant, webhook): (TenantId, WebhookId),
    now: Timestamp,
) -> QueryResult<Vec<Waiting>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::tenant_id.eq(tenant))
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .filter(webhook_deliveries::status.eq(PENDING))
        .filter(webhook_deliveries::next_attempt_at.gt(now))
        .select((
            webhook_deliveries::subject_id,
            webhook_deliveries::event_txid,
            webhook_deliveries::event_seq,
            webhook_deliveries::next_attempt_at,
        ))
        .load(conn)
}

/// Whether a subscription has a pending delivery (due or not).
pub fn any_pending(
    conn: &mut DbConnection,
    (tenant, webhook): (TenantId, WebhookId),
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        webhook_deliveries::table
            .filter(webhook_deliveries::tenant_id.eq(tenant))
            .filter(webhook_deliveries::webhook_id.eq(webhook))
            .filter(webhook_deliveries::status.eq(PENDING)),
    ))
    .get_result(conn)
}

/// Enabled subscriptions of every tenant (the sweep's view), at most `limit`.
pub fn all_enabled(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<WebhookRow>> {
    webhooks::table
        .filter(webhooks::enabled.eq(true))
        .order((webhooks::tenant_id, webhooks::id))
        .limit(limit)
        .load(conn)
}

/// Subscriptions with a pending delivery due at `now` (every tenant; the sweep's view), at
/// most `limit`.
pub fn with_due(
    conn: &mut DbConnection,
    now: Timestamp,
    limit: i64,
) -> QueryResult<Vec<(TenantId, WebhookId)>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::status.eq(PENDING))
        .filter(webhook_deliveries::next_attempt_at.le(now))
        .select((
            webhook_deliveries::tenant_id,
            webhook_deliveries::webhook_id,
        ))
        .distinct()
        .limit(limit)
        .load(conn)
}

/// Fails every pending delivery of a subscription with `attempt` (one that was disabled or
/// deleted meanwhile); returns how many.
pub fn fail_pending(
    conn: &mut DbConnection,
    (tenant, webhook): (TenantId, WebhookId),
    attempt: &Attempt,
) -> QueryResult<usize> {
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::tenant_id.eq(tenant))
            .filter(webhook_deliveries::webhook_id.eq(webhook))
            .filter(webhook_deliveries::status.eq(PENDING)),
    )
    .set((
        webhook_deliveries::status.eq(attempt.status),
        webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
        webhook_deliveries::last_error.eq(&attempt.error),
        webhook_deliveries::next_attempt_at.eq(None::<Timestamp>),
        webhook_deliveries::last_attempt_at.eq(Some(attempt.at)),
    ))
    .execute(conn)
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: &'static str,
    pub http_status: Option<i32>,
    pub latency_ms: Option<i32>,
    pub error: Option<String>,
    pub excerpt: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
    pub at: Timestamp,
}

impl DeliveryRow {
    /// The row after `attempt` (what [`record_attempt`] writes to a stored one).
    pub fn with_attempt(self, attempt: &Attempt) -> Self {
        Self {
            status: attempt.status.to_owned(),
            attempts: self.attempts + 1,
            last_status: attempt.http_status,
            last_latency_ms: attempt.latency_ms,
            last_error: attempt.error.clone(),
            response_excerpt: attempt.excerpt.clone(),
            next_attempt_at: attempt.next_attempt_at,
            last_attempt_at: Some(attempt.at),
            delivered_at: (attempt.status == DELIVERED).then_some(attempt.at),
            ..self
        }
    }
}

pub fn record_attempt(
    conn: &mut DbConnection,
    tenant: TenantId,
    id: DeliveryId,
    attempt: &Attempt,
) -> QueryResult<()> {
    let delivered = (attempt.status == DELIVERED).then_some(attempt.at);
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::tenant_id.eq(tenant))
            .filter(webhook_deliveries::id.eq(id)),
    )
    .set((
        webhook_deliveries::status.eq(attempt.status),
        webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
        webhook_deliveries::last_status.eq(attempt.http_status),
        webhook_deliveries::last_latency_ms.eq(attempt.latency_ms),
        webhook_deliveries::last_error.eq(&attempt.error),
        webhook_deliveries::response_excerpt.eq(&attempt.excerpt),
        webhook_deliveries::next_attempt_at.eq(attempt.next_attempt_at),
        webhook_deliveries::last_attempt_at.eq(Some(attempt.at)),
        webhook_deliveries::delivered_at.eq(delivered),
    ))
    .execute(conn)?;
    Ok(())
}

/// Puts a delivery back to pending (a redelivery), due at `at`.
pub fn reset(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: DeliveryId,
    at: Timestamp,
) -> QueryResult<()> {
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::tenant_id.eq(scope.tenant_id()))
            .filter(webhook_deliveries::id.eq(id)),
    )
    .set((
        webhook_deliveries::status.eq(PENDING),
        webhook_deliveries::next_attempt_at.eq(Some(at)),
    ))
    .execute(conn)?;
    Ok(())
}

/// A subscription by ids only (the delivery job's view: it holds no scope).
pub fn for_job(
    conn: &mut DbConnection,
    (tenant, id): (TenantId, WebhookId),
) -> QueryResult<Option<WebhookRow>> {
    webhooks::table
        .filter(webhooks::tenant_id.eq(tenant))
        .filter(webhooks::id.eq(id))
        .first::<WebhookRow>(conn)
        .optional()
}

/// Records the subscription's failure state after an attempt (by ids: the job's view).
pub fn set_failing(
    conn: &mut DbConnection,
    tenant: TenantId,
    id: WebhookId,
    failing_since: Option<Timestamp>,
    disabled_reason: Option<&str>,
) -> QueryResult<()> {
    let target = webhooks::table
        .filter(webhooks::tenant_id.eq(tenant))
        .filter(webhooks::id.eq(id));
    match disabled_reason {
        Some(reason) => diesel::update(target)
            .set((
                webhooks::failing_since.eq(failing_since),
                webhooks::enabled.eq(false),
                webhooks::disabled_reason.eq(Some(reason)),
                webhooks::version.eq(webhooks::version + 1),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set(webhooks::failing_since.eq(failing_since))
            .execute(conn)?,
    };
    Ok(())
}
