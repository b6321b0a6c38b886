//! The history of one ticket.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::caller;
use crate::api::common::{Page, PageParams, bad_cursor, decode_cursor, encode_cursor, page_limit};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::tickets::HistoryRow;
use crate::domain::ids::{EntityId, TicketId};
use crate::domain::ticket::{ActorKind, HistoryKind};
use crate::service::tickets::{self as svc};

/// One history entry: a creation, a transition, a field change or an assignment change.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"ticket_version": 2, "ordinal": 1, "at": "2026-11-26T09:05:00Z",
    "actor": {"kind": "user", "id": "019ac0d2-4a00-7000-8000-000000000007", "name": "agent1"},
    "kind": "field_changed", "transition": null, "from_state": null, "to_state": null,
    "field": "impact", "old_value": "high", "new_value": "low"}))]
pub struct HistoryEntry {
    /// The ticket version this change produced; entries are ordered by it, then `ordinal`.
    pub ticket_version: i64,
    pub ordinal: i32,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// What changed (`attribute_changed`: assignee, group or organization).
    pub kind: HistoryKind,
    pub transition: Option<String>,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub field: Option<String>,
    /// The value before the change: any JSON value (string, number, boolean, array, object)
    /// or null.
    #[schema(value_type = Value)]
    pub old_value: Option<Value>,
    /// The value after the change: any JSON value or null.
    #[schema(value_type = Value)]
    pub new_value: Option<Value>,
    /// On the `created` entry of a ticket made by a bulk import: `{import_id, row, line}`
    /// (`import_id` is null for a dry run's check, which is never kept). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub imported: Option<Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<uuid::Uuid>,
    pub name: String,
}

impl Actor {
    /// The actor of a stored row; a kind this binary does not know is an internal error.
    pub fn from_stored(kind: &str, id: Option<EntityId>, name: String) -> Result<Self, ApiError> {
        Ok(Self {
            kind: ActorKind::from_storage(kind).map_err(ApiError::internal)?,
            id: id.map(|a| a.0),
            name,
        })
    }
}

impl TryFrom<HistoryRow> for HistoryEntry {
    type Error = ApiError;

    fn try_from(r: HistoryRow) -> Result<Self, ApiError> {
        Ok(Self {
            ticket_version: r.ticket_version,
            ordinal: r.ordinal,
            at: r.at.0,
            actor: Actor::from_stored(&r.actor_kind, r.actor_id, r.actor_name)?,
            kind: HistoryKind::from_storage(&r.kind).map_err(ApiError::internal)?,
            transition: r.transition,
            from_state: r.from_state,
            to_state: r.to_state,
            field: r.field,
            old_value: r.old_value.map(|v| v.0),
            new_value: r.new_value.map(|v| v.0),
            imported: r.imported.map(|v| v.0),
        })
    }
}

fn encode_position(version: i64, ordinal: i32) -> String {
    encode_cursor(&(version, ordinal))
}

fn decode_position(cursor: &str) -> Option<(i64, i32)> {
    decode_cursor(cursor).ok()
}

crate::domain::closed_set::closed_set! {
    /// The shape of the ticket history.
    pub enum HistoryFormat {
        /// Pages of history entries.
        Entries = "entries",
        /// The states the ticket has been in, with their times (no pages).
        Timeline = "timeline",
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// `entries` (default): pages of entries; `timeline`: 307 to the ticket's timeline.
    #[param(inline)]
    pub format: Option<HistoryFormat>,
}

/// One stay of the ticket in a state.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"state": "in_progress", "stage": "open", "entered_at": "2026-05-01T07:10:00Z",
    "left_at": "2026-05-01T09:00:00Z", "duration_seconds": 6600, "transition": "start",
    "actor": {"kind": "user", "id": "019ac0d2-4a00-7000-8000-000000000007", "name": "agent1"}}))]
pub struct Stay {
    pub state: String,
    /// The state's stage in the ticket's template version.
    pub stage: Option<String>,
    pub entered_at: DateTime<Utc>,
    /// `null`: the ticket is still in this state.
    pub left_at: Option<DateTime<Utc>>,
    /// Elapsed (wall-clock) seconds in the state, up to now for the current one.
    pub duration_seconds: i64,
    /// The transition that entered the state; `null` for the state the ticket was filed in.
    pub transition: Option<String>,
    /// Who entered it.
    pub actor: Actor,
}

/// The per-state timeline of a ticket, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    pub ticket_id: TicketId,
    pub items: Vec<Stay>,
}

/// The per-state timeline of a ticket: the states it has been in, each with when it entered
/// and left and who moved it there (not paged). Everyone who sees the ticket sees it.
#[utoipa::path(
    tag = "tickets", operation_id = "get_ticket_timeline", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path)),
    responses(
        (status = 200, description = "The timeline, oldest stay first", body = Timeline),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/tickets/{ticket_id}/timeline")]
pub async fn get_ticket_timeline(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
) -> Result<web::Json<Timeline>, ApiError> {
    let caller = caller(&principal)?;
    let (id, now, s) = (id.into_inner(), state.clock.now(), state.clone());
    let stays = state
        .db
        .read(move |conn| svc::timeline(conn, &s.definitions, &caller, id))
        .await?;
    let items = stays
        .into_iter()
        .map(|stay| {
            let (kind, actor_id, name) = stay.actor;
            Ok(Stay {
                duration_seconds: (stay.left_at.unwrap_or(now) - stay.entered_at)
                    .num_seconds()
                    .max(0),
                state: stay.state,
                stage: stay.stage,
                entered_at: stay.entered_at,
                left_at: stay.left_at,
                transition: stay.transition,
                actor: Actor::from_stored(&kind, actor_id, name)?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(web::Json(Timeline {
        ticket_id: id,
        items,
    }))
}

/// Every transition and field change of the ticket, oldest first (by ticket version, then
/// ordinal); entries about internal fields are left out for requesters and partners.
/// `format=timeline` answers 307 with the address of the ticket's timeline
/// (`GET /tickets/{ticket_id}/timeline`).
#[utoipa::path(
    tag = "tickets", operation_id = "list_ticket_history", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), HistoryQuery, PageParams),
    responses(
        (status = 200, description = "A page of history entries", body = Page<HistoryEntry>),
        (status = 307, description = "`format=timeline`: the timeline is at `Location`",
         headers(("Location" = String, description = "`/api/v1/tickets/{ticket_id}/timeline`"))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/tickets/{ticket_id}/history")]
pub async fn list_ticket_history(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
    query: web::Query<HistoryQuery>,
    page: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    if query.format == Some(HistoryFormat::Timeline) {
        return Ok(HttpResponse::TemporaryRedirect()
            .insert_header((
                actix_web::http::header::LOCATION,
                format!("/api/v1/tickets/{}/timeline", id.into_inner()),
            ))
            .finish());
    }
    let limit = page_limit(page.limit)?;
    let after = match &page.cursor {
        Some(c) => Some(decode_position(c).ok_or_else(bad_cursor)?),
        None => None,
    };
    let id = id.into_inner();
    let s = state.clone();
    let mut rows = state
        .db
        .read(move |conn| svc::history(conn, &s.definitions, &caller, id, after, limit + 1))
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|r| encode_position(r.ticket_version, r.ordinal))
        })
        .flatten();
    Ok(HttpResponse::Ok().json(Page {
        items: rows
            .into_iter()
            .map(HistoryEntry::try_from)
            .collect::<Result<Vec<_>, _>>()?,
        next_cursor,
    }))
}
