//! The event log for integrations: a pull feed (`GET /events`, with a long poll) and a
//! Server-Sent Events stream (`GET /events/stream`), both in commit order from a position.

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::common::{decode_cursor, encode_cursor, page_limit};
use super::tickets::history::Actor;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::events::Position;
use crate::domain::event::{EventType, SubjectType};
use crate::domain::ids::{EntityId, EventId, TenantId, TicketId};
use crate::service::events::{self as svc, EventRow, FeedCaller, FeedRequest};

/// Longest `wait` of a long poll, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;
/// How often a waiting feed or an idle stream looks for events committed by other nodes
/// (commits of this node wake it at once).
const POLL: Duration = Duration::from_millis(500);
/// An idle stream sends a comment this often, so proxies keep the connection.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// A stream ends after this long; the client reconnects with `Last-Event-ID` (and a fresh
/// access token).
const STREAM_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Events read per database query of a stream.
const STREAM_BATCH: i64 = 100;
/// Most event types one request may filter on.
const MAX_TYPES: usize = 20;

/// One event: what happened to which subject, who did it, and what changed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac0d2-6000-7000-8000-000000000001",
    "cursor": "eyJ0eGlkIjowLCJzZXEiOjQyfQ",
    "type": "ticket.transitioned", "occurred_at": "2026-11-26T09:05:00Z",
    "tenant": "019ac0d2-4000-7000-8000-000000000001",
    "actor": {"kind": "user", "id": "019ac0d2-4a00-7000-8000-000000000007", "name": "alice"},
    "subject": {"kind": "ticket", "id": "019ac0d2-5000-7000-8000-000000000003", "key": "INC-1"},
    "ticket_id": "019ac0d2-5000-7000-8000-000000000003", "template": "itil_incident",
    "library": null,
    "data": {"ticket": {"id": "019ac0d2-5000-7000-8000-000000000003", "key": "INC-1",
        "template": "itil_incident", "title": "メールが送信できない", "stage": "triage",
        "state": "in_triage", "closed": false, "version": 2},
        "changes": [{"ticket_version": 2, "ordinal": 0, "at": "2026-11-26T09:05:00Z",
        "actor": {"kind": "user", "id": "019ac0d2-4a00-7000-8000-000000000007", "name": "alice"},
        "kind": "transition", "transition": "start_triage", "from_state": "new",
        "to_state": "in_triage", "field": null, "old_value": null, "new_value": null}]}
}))]
pub struct Event {
    /// Stable id: the same event always has the same id (webhook deliveries use it too).
    pub id: EventId,
    /// The feed position just after this event: `after=` (or SSE `Last-Event-ID`) resumes
    /// here. Opaque.
    pub cursor: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When it happened (the commit of the change).
    pub occurred_at: DateTime<Utc>,
    /// The tenant it happened in.
    pub tenant: TenantId,
    pub actor: Actor,
    pub subject: Subject,
    /// The ticket the event is about or came from (a record written by a transition).
    pub ticket_id: Option<TicketId>,
    /// The template key of a ticket or template event.
    pub template: Option<String>,
    /// The library key of a record event.
    pub library: Option<String>,
    /// What happened, by type (docs/integration.md): ticket events carry `ticket` (the
    /// ticket's summary) and `changes` (its `HistoryEntry` items) or the added `comment`,
    /// `attachment`, `link`, `watcher` or `notify`; record events `record` and `source`;
    /// `template.published` `template`; user events `user`. Requesters and partners get it
    /// without anything internal.
    #[schema(value_type = Object, additional_properties = true)]
    pub data: Value,
}

/// What an event is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct Subject {
    pub kind: SubjectType,
    pub id: EntityId,
    /// Its human key when it has one: a ticket's key (`INC-42`), a template's key, a user's
    /// username; absent for records, webhooks and mail messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [], "next_cursor": "eyJ0eGlkIjowLCJzZXEiOjQyfQ"}))]
pub struct EventFeed {
    pub items: Vec<Event>,
    /// Where the next request continues (`after=`). Always set: when there is nothing new it
    /// is the position the request started from, so a client keeps polling with it.
    pub next_cursor: String,
}

/// Filters and position of the feed and the stream.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// Continue after this position (an event's `cursor` or a feed's `next_cursor`); omit to
    /// start at the oldest retained event (the stream: at the newest, live only).
    pub after: Option<String>,
    /// Only these event types, comma-separated (at most 20), e.g.
    /// `ticket.created,ticket.transitioned`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub types: Option<String>,
    /// Only events about this subject (a ticket, record, template or user id).
    pub subject: Option<EntityId>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollParams {
    /// Events per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// Seconds to wait for an event when there is none yet (long poll), 0–60 (default 0:
    /// answer at once).
    #[param(minimum = 0, maximum = 60, default = 0)]
    pub wait: Option<u64>,
}

fn position(raw: &str, field: &'static str) -> Result<Position, ApiError> {
    let (txid, seq): (i64, i64) = decode_cursor(raw).map_err(|_| {
        ApiError::validation(
            field,
            "invalid",
            "is not a cursor returned by the event feed",
        )
    })?;
    Ok(Position { txid, seq })
}

fn cursor(position: Position) -> String {
    encode_cursor(&(position.txid, position.seq))
}

fn types(raw: Option<&str>) -> Result<Vec<EventType>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = raw.split(',').map(str::trim).collect();
    if names.len() > MAX_TYPES {
        return Err(ApiError::validation(
            "type",
            "too_many",
            format!("at most {MAX_TYPES} event types"),
        ));
    }
    names
        .into_iter()
        .map(|name| {
            EventType::parse(name).ok_or_else(|| {
                ApiError::validation("type", "unknown", format!("no event type '{name}'"))
            })
        })
        .collect()
}

impl Event {
    /// The event of a stored row of `tenant`'s log.
    fn of(tenant: TenantId, row: EventRow) -> Result<Self, ApiError> {
        let subject_type =
            SubjectType::from_storage(&row.subject_type).map_err(ApiError::internal)?;
        let position = row.position();
        let key = crate::service::events::subject_key(
            subject_type,
            row.container.as_deref(),
            &row.payload.0,
        );
        let (template, library) = match subject_type {
            SubjectType::Record => (None, row.container),
            SubjectType::User
            | SubjectType::Webhook
            | SubjectType::MailMessage
            | SubjectType::Announcement => (None, None),
            SubjectType::Ticket | SubjectType::Template => (row.container, None),
        };
        Ok(Self {
            cursor: cursor(position),
            id: row.id,
            event_type: EventType::from_storage(&row.event_type).map_err(ApiError::internal)?,
            occurred_at: row.at.0,
            tenant,
            actor: Actor::from_stored(&row.actor_kind, row.actor_id, row.actor_name)?,
            subject: Subject {
                kind: subject_type,
                id: row.subject_id,
                key,
            },
            ticket_id: row.ticket_id,
            template,
            library,
            data: row.payload.0,
        })
    }
}

/// One read of the feed.
async fn read(
    state: &web::Data<AppState>,
    caller: &FeedCaller,
    request: &FeedRequest,
) -> Result<Vec<EventRow>, ApiError> {
    let (caller, request) = (caller.clone(), request.clone());
    Ok(state
        .db
        .read(move |conn| svc::feed(conn, &caller, &request))
        .await?)
}

/// Waits for the next commit of this node, or `at_most`, whichever comes first.
async fn pause(state: &web::Data<AppState>, at_most: Duration) {
    let commit = state.db.next_commit();
    let _ = actix_web::rt::time::timeout(at_most, commit).await;
}

/// The tenant's events after a position, in commit order: no event is skipped or repeated
/// however many writers commit at once. With `wait`, an empty answer waits up to that many
/// seconds for the first new event (long poll). Each caller reads what it may see: staff
/// every ticket, record, template and (tenant admins, auditors) user event; requesters and
/// partners the events of their own tickets and readable libraries, without internal values.
#[utoipa::path(
    tag = "events", operation_id = "list_events", security(("bearer" = [])),
    params(FeedParams, PollParams),
    responses(
        (status = 200, description = "The next events (possibly none) and where to continue", body = EventFeed),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    principal: Principal,
    feed: web::Query<FeedParams>,
    poll: web::Query<PollParams>,
) -> Result<web::Json<EventFeed>, ApiError> {
    let caller = FeedCaller::of(&principal)?;
    let tenant = caller.scope.tenant_id();
    let limit = page_limit(poll.limit)?;
    let wait = poll.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(ApiError::validation(
            "wait",
            "range",
            format!("must be between 0 and {MAX_WAIT_SECONDS}"),
        ));
    }
    let after = match &feed.after {
        Some(raw) => position(raw, "after")?,
        None => Position::default(),
    };
    let request = FeedRequest {
        after,
        types: types(feed.types.as_deref())?,
        subject: feed.subject,
        limit,
    };
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut rows = read(&state, &caller, &request).await?;
    while rows.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        pause(&state, left.min(POLL)).await;
        rows = read(&state, &caller, &request).await?;
    }
    let next = rows.last().map_or(after, EventRow::position);
    Ok(web::Json(EventFeed {
        items: rows
            .into_iter()
            .map(|row| Event::of(tenant, row))
            .collect::<Result<_, _>>()?,
        next_cursor: cursor(next),
    }))
}

/// The stream's state between reads.
struct Stream {
    state: web::Data<AppState>,
    caller: FeedCaller,
    request: FeedRequest,
    pending: std::collections::VecDeque<EventRow>,
    idle_since: Instant,
    ends: Instant,
}

impl Stream {
    /// The next chunk of the stream, or `None` when it ends (its lifetime is over, or a read
    /// failed: the client reconnects with `Last-Event-ID`).
    async fn next(&mut self) -> Option<web::Bytes> {
        loop {
            if let Some(row) = self.pending.pop_front() {
                self.idle_since = Instant::now();
                return sse_frame(self.caller.scope.tenant_id(), row);
            }
            let now = Instant::now();
            if now >= self.ends {
                return None;
            }
            if now.duration_since(self.idle_since) >= KEEP_ALIVE {
                self.idle_since = now;
                return Some(web::Bytes::from_static(b": keep-alive\n\n"));
            }
            match read(&self.state, &self.caller, &self.request).await {
                Ok(rows) if rows.is_empty() => pause(&self.state, POLL).await,
                Ok(rows) => {
                    if let Some(last) = rows.last() {
                        self.request.after = last.position();
                    }
                    self.pending.extend(rows);
                }
                Err(error) => {
                    log::warn!("event stream ends after a failed read: {error}");
                    return None;
                }
            }
        }
    }
}

fn sse_frame(tenant: TenantId, row: EventRow) -> Option<web::Bytes> {
    let event = Event::of(tenant, row).ok()?;
    let data = serde_json::to_string(&event).ok()?;
    Some(web::Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.cursor,
        event.event_type.as_str()
    )))
}

/// The same events as `GET /events`, pushed as Server-Sent Events (`text/event-stream`):
/// each event is `id:` (its cursor), `event:` (its type) and `data:` (the `Event` as JSON).
/// Resumes after `Last-Event-ID` (or `after`); without either it starts with the next new
/// event. An idle stream sends a `: keep-alive` comment every 15 seconds, and every stream
/// ends after 15 minutes — reconnect with `Last-Event-ID` (EventSource does so itself).
#[utoipa::path(
    tag = "events", operation_id = "get_event_stream", security(("bearer" = [])),
    params(
        FeedParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received: the stream resumes after it (wins over `after`)."),
    ),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String,
            example = json!("id: eyJ0eGlkIjowLCJzZXEiOjQyfQ\nevent: ticket.created\ndata: {\"id\": \"…\", \"type\": \"ticket.created\", …}\n\n")),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/events/stream")]
pub async fn stream_events(
    state: web::Data<AppState>,
    principal: Principal,
    http: HttpRequest,
    feed: web::Query<FeedParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = FeedCaller::of(&principal)?;
    let resume = http
        .headers()
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::validation("Last-Event-ID", "invalid", "is not a cursor"))
        })
        .transpose()?;
    let after = match (resume, &feed.after) {
        (Some(raw), _) => position(raw, "Last-Event-ID")?,
        (None, Some(raw)) => position(raw, "after")?,
        (None, None) => {
            let c = caller.clone();
            state.db.read(move |conn| svc::latest(conn, &c)).await?
        }
    };
    let request = FeedRequest {
        after,
        types: types(feed.types.as_deref())?,
        subject: feed.subject,
        limit: STREAM_BATCH,
    };
    let now = Instant::now();
    let stream = Stream {
        state,
        caller,
        request,
        pending: Default::default(),
        idle_since: now,
        ends: now + STREAM_LIFETIME,
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        s.next()
            .await
            .map(|chunk| (Ok::<_, actix_web::Error>(chunk), s))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Not compressed: a compressor would hold events back until its buffer fills.
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
