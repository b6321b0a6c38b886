//! Bulk transitions: one transaction and one result per item.

use actix_web::{post, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::transitions::CommentInput;
use super::{Ticket, caller};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::domain::ids::TicketId;
use crate::service::tickets::{self as svc, NewComment, TicketCaller, TransitionRequest};

/// Most items in one bulk request.
pub const MAX_BULK_ITEMS: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkItem {
    pub ticket: TicketId,
    pub transition: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// The ticket version the transition is meant for (as `If-Match` would give it).
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"items": [
    {"ticket": "019ac0d2-4a00-7000-8000-0000000000a1", "transition": "close"},
    {"ticket": "019ac0d2-4a00-7000-8000-0000000000a2", "transition": "close", "version": 4}],
    "comment": {"body": "一括クローズ"}}))]
pub struct BulkTransitions {
    /// 1–100 items, each fired in its own transaction, in order.
    pub items: Vec<BulkItem>,
    /// Written with every successful transition.
    pub comment: Option<CommentInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    pub ticket: TicketId,
    /// The HTTP status the single transition would have answered.
    pub status: u16,
    /// The ticket after the transition, when it succeeded.
    pub result: Option<Ticket>,
    /// Why it failed, when it did.
    pub problem: Option<crate::api::error::Problem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResults {
    pub succeeded: usize,
    pub failed: usize,
    pub items: Vec<BulkResult>,
}

/// Fires transitions on many tickets: each item in its own transaction, with a result per
/// item (a failure does not stop the others). The answer is 200 whatever the items' fates.
#[utoipa::path(
    tag = "tickets", operation_id = "transition_tickets", security(("bearer" = [])),
    request_body = BulkTransitions,
    responses(
        (status = 200, description = "One result per item, in order", body = BulkResults),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/tickets/bulk-transitions")]
pub async fn transition_tickets(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<BulkTransitions>,
) -> Result<web::Json<BulkResults>, ApiError> {
    let caller = caller(&principal)?;
    let body = body.into_inner();
    if body.items.is_empty() || body.items.len() > MAX_BULK_ITEMS {
        return Err(ApiError::validation(
            "items",
            "length",
            format!("between 1 and {MAX_BULK_ITEMS} items"),
        ));
    }
    let comment = body.comment.map(|c| NewComment {
        body: c.body,
        internal: c.internal,
    });
    let mut items = Vec::with_capacity(body.items.len());
    for item in body.items {
        let (id, version) = (item.ticket, item.version);
        let outcome = match TransitionRequest::parse(&item.transition, item.fields, comment.clone())
        {
            Ok(request) => fire_one(&state, &caller, id, version, request).await,
            Err(e) => Err(e.into()),
        };
        items.push(match outcome {
            Ok(o) => BulkResult {
                ticket: id,
                status: 200,
                result: Some(Ticket::of(&o.ticket, &caller)),
                problem: None,
            },
            Err(e) => BulkResult {
                ticket: id,
                status: actix_web::ResponseError::status_code(&e).as_u16(),
                result: None,
                problem: Some(e.problem()),
            },
        });
    }
    let succeeded = items.iter().filter(|i| i.status == 200).count();
    Ok(web::Json(BulkResults {
        succeeded,
        failed: items.len() - succeeded,
        items,
    }))
}

/// Fires one item's transition in its own transaction.
async fn fire_one(
    state: &web::Data<AppState>,
    caller: &TicketCaller,
    id: TicketId,
    version: Option<i64>,
    request: TransitionRequest,
) -> Result<svc::TransitionOutcome, ApiError> {
    let (s, c) = (state.clone(), caller.clone());
    let now = state.clock.now();
    state
        .db
        .write(move |conn| {
            let cx = svc::TransitionContext {
                definitions: &s.definitions,
                caller: &c,
                ticket: id,
                expected_version: version,
                now,
                mode: svc::Mode::Execute,
            };
            svc::fire(conn, &cx, &request).map_err(ApiError::from)
        })
        .await
}
