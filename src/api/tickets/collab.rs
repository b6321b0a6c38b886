//! Watchers and links of a ticket.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::domain::ids::{LinkId, TicketId, UserId};
use crate::service::tickets::{self as svc, LinkKind, LoadedTicket, TicketCaller};

#[derive(Debug, Serialize, ToSchema)]
pub struct Watcher {
    pub user: UserId,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatcherInput {
    /// Default: the caller.
    pub user: Option<UserId>,
}

/// Users watching the ticket (all of them; a ticket has few).
#[utoipa::path(
    tag = "tickets", operation_id = "list_ticket_watchers", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path)),
    responses(
        (status = 200, description = "Watchers by user id", body = Vec<Watcher>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/tickets/{ticket_id}/watchers")]
pub async fn list_ticket_watchers(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
) -> Result<web::Json<Vec<Watcher>>, ApiError> {
    let caller = caller(&principal)?;
    let id = id.into_inner();
    let s = state.clone();
    let rows = state
        .db
        .read(move |conn| svc::watchers(conn, &s.definitions, &caller, id))
        .await?;
    Ok(web::Json(
        rows.into_iter()
            .map(|(user, since)| Watcher {
                user,
                since: since.0,
            })
            .collect(),
    ))
}

/// Starts watching (agents may add anyone; others only themselves). Idempotent.
#[utoipa::path(
    tag = "tickets", operation_id = "create_ticket_watcher", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path)),
    request_body = WatcherInput,
    responses(
        (status = 204, description = "Watching"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/tickets/{ticket_id}/watchers")]
pub async fn create_ticket_watcher(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
    body: web::Json<WatcherInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let user = body
        .user
        .or(caller.user)
        .ok_or_else(|| ApiError::validation("user", "required", "an API key must name the user"))?;
    watch(state, caller, id.into_inner(), user, true).await
}

/// Stops a user watching (agents: anyone; others: themselves).
#[utoipa::path(
    tag = "tickets", operation_id = "delete_ticket_watcher", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), ("user_id" = UserId, Path)),
    responses(
        (status = 204, description = "Not watching"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[delete("/tickets/{ticket_id}/watchers/{user_id}")]
pub async fn delete_ticket_watcher(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(TicketId, UserId)>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let (id, user) = path.into_inner();
    watch(state, caller, id, user, false).await
}

async fn watch(
    state: web::Data<AppState>,
    caller: TicketCaller,
    id: TicketId,
    user: UserId,
    on: bool,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let s = state.clone();
    state
        .db
        .write(move |conn| svc::set_watching(conn, &s.definitions, &caller, id, user, on, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A link as seen from the ticket in the path.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    pub id: LinkId,
    /// What the other ticket is to this one (`duplicate_of`: this ticket duplicates the
    /// other).
    pub kind: LinkKind,
    pub ticket: LinkedTicket,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedTicket {
    pub id: TicketId,
    pub key: String,
    pub title: String,
    pub state: String,
    pub closed: bool,
}

impl LinkedTicket {
    fn of(t: &LoadedTicket) -> Self {
        Self {
            id: t.row.id,
            key: t.row.key(),
            title: t.row.title.clone(),
            state: t.row.state.clone(),
            closed: t.row.closed,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "child", "ticket": "019ac0d2-4a00-7000-8000-0000000000a2"}))]
pub struct LinkInput {
    /// What the other ticket is to this one.
    pub kind: LinkKind,
    pub ticket: TicketId,
}

/// Links of the ticket in both directions, oldest first (only tickets the caller may see).
#[utoipa::path(
    tag = "tickets", operation_id = "list_ticket_links", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path)),
    responses(
        (status = 200, description = "Links", body = Vec<Link>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/tickets/{ticket_id}/links")]
pub async fn list_ticket_links(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
) -> Result<web::Json<Vec<Link>>, ApiError> {
    let caller = caller(&principal)?;
    let id = id.into_inner();
    let s = state.clone();
    let links = state
        .db
        .read(move |conn| svc::links(conn, &s.definitions, &caller, id))
        .await?;
    Ok(web::Json(
        links
            .iter()
            .map(|(row, kind, other)| Link {
                id: row.id,
                kind: *kind,
                ticket: LinkedTicket::of(other),
                created_at: row.created_at.0,
            })
            .collect(),
    ))
}

/// Links the ticket to another one (agents). Parent/child links drive the engine's
/// `all_children_closed` condition.
#[utoipa::path(
    tag = "tickets", operation_id = "create_ticket_link", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path)),
    request_body = LinkInput,
    responses(
        (status = 201, description = "Linked", body = Link, headers(("Location" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/tickets/{ticket_id}/links")]
pub async fn create_ticket_link(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
    body: web::Json<LinkInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let kind = body.kind;
    let (id, other) = (id.into_inner(), body.ticket);
    let now = state.clock.now();
    let s = state.clone();
    let (row, target) = state
        .db
        .write(move |conn| svc::add_link(conn, &s.definitions, &caller, id, kind, other, now))
        .await?;
    let link = Link {
        id: row.id,
        kind,
        ticket: LinkedTicket::of(&target),
        created_at: row.created_at.0,
    };
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/tickets/{id}/links")))
        .json(link))
}

/// Removes a link (agents).
#[utoipa::path(
    tag = "tickets", operation_id = "delete_ticket_link", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), ("link_id" = LinkId, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[delete("/tickets/{ticket_id}/links/{link_id}")]
pub async fn delete_ticket_link(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(TicketId, LinkId)>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let (id, link) = path.into_inner();
    let s = state.clone();
    state
        .db
        .write(move |conn| svc::remove_link(conn, &s.definitions, &caller, id, link))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
