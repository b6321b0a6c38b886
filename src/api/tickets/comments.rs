//! Comments on a ticket.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::history::Actor;
use super::transitions::CommentInput;
use super::{caller, idempotency_key, replay_response};
use crate::api::common::{Page, PageParams};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::tickets::CommentRow;
use crate::domain::ids::{CommentId, TicketId};
use crate::service::error::ServiceError;
use crate::service::idempotency::{self, Replayable};
use crate::service::tickets::{self as svc, NewComment};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comment {
    pub id: CommentId,
    pub ticket_id: TicketId,
    pub author: Actor,
    pub body: String,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<CommentRow> for Comment {
    type Error = ApiError;

    fn try_from(r: CommentRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: r.id,
            ticket_id: r.ticket_id,
            author: Actor::from_stored(&r.author_kind, r.author_id, r.author_name)?,
            body: r.body,
            internal: r.internal,
            created_at: r.created_at.0,
        })
    }
}

/// Comments of a ticket, oldest first; internal ones only for staff.
#[utoipa::path(
    tag = "tickets", operation_id = "list_ticket_comments", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), PageParams),
    responses(
        (status = 200, description = "A page of comments", body = Page<Comment>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/tickets/{ticket_id}/comments")]
pub async fn list_ticket_comments(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Comment>>, ApiError> {
    let caller = caller(&principal)?;
    let request = page.parse()?;
    let id = id.into_inner();
    let s = state.clone();
    let (after, limit) = (request.after.map(CommentId), request.limit + 1);
    let rows = state
        .db
        .read(move |conn| svc::comments(conn, &s.definitions, &caller, id, after, limit))
        .await?;
    Ok(web::Json(Page::try_from_rows(
        rows,
        request.limit,
        |r| r.id.0,
        Comment::try_from,
    )?))
}

/// Adds a comment. Requesters and partners write public comments only.
#[utoipa::path(
    tag = "tickets", operation_id = "create_ticket_comment", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a repeat replays the first response")),
    request_body = CommentInput,
    responses(
        (status = 201, description = "Created", body = Comment, headers(("ETag" = String), ("Location" = String), ("Idempotent-Replayed" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/tickets/{ticket_id}/comments")]
pub async fn create_ticket_comment(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<TicketId>,
    body: web::Json<CommentInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let key = idempotency_key(&req)?;
    let id = id.into_inner();
    let body = body.into_inner();
    let fingerprint = idempotency::fingerprint(&(id, &body.body, body.internal));
    let now = state.clock.now();
    let s = state.clone();
    let retention = state.config.idempotency_retention;
    let replay = state
        .db
        .write(move |conn| {
            idempotency::run(
                conn,
                &caller.scope,
                &caller.actor,
                key.as_deref(),
                &fingerprint,
                (now, retention),
                |conn| {
                    let comment = NewComment {
                        body: body.body,
                        internal: body.internal,
                    };
                    let row = svc::add_comment(conn, &s.definitions, &caller, id, &comment, now)?;
                    let location = format!("/api/v1/tickets/{id}/comments");
                    let comment = Comment::try_from(row)
                        .map_err(|e| ServiceError::internal(format!("stored comment: {e}")))?;
                    Ok(Replayable::created(&comment, 1, location))
                },
            )
        })
        .await?;
    Ok(replay_response(replay))
}
