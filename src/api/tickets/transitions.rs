//! Transitions of one ticket: the choices with reasons, firing one, dry runs.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

mod wire;
pub use wire::{
    GuardFailedReason, MappedFields, MappedValue, MissingFieldsReason, NotPermittedReason,
    NotifyEvent, PlannedAction, PlannedAssignee, PlannedFieldChange, TransitionPlan,
    TransitionReason, UnknownTransitionReason, WrongStateReason,
};

use super::comments::Comment;
use super::{Ticket, caller};
use crate::api::common::{if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use std::collections::BTreeSet;

use crate::domain::ids::TicketId;
use crate::domain::library::LibraryOperation;
use crate::domain::master::Labels;
use crate::domain::template::{self as engine, TransitionOption};
use crate::domain::ticket::Audience;
use crate::service::libraries::{self as libs, LibraryWrite};
use crate::service::tickets::{
    self as svc, LoadedTicket, NewComment, TicketCaller, TransitionOutcome, TransitionRequest,
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainParams {
    /// Also list unavailable transitions, each with every reason it is unavailable.
    #[serde(default)]
    pub explain: bool,
}

/// A transition as the caller sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"key": "resolve", "label": {"ja": "解決", "en": "Resolve"}, "to": "resolved",
    "available": false, "required_fields": ["resolution"],
    "reasons": [{"code": "not_permitted"}]}))]
pub struct TransitionChoice {
    pub key: String,
    pub label: Labels,
    pub to: String,
    /// True when the transition can be fired now, given the `required_fields` the request
    /// must supply when they are not set yet.
    pub available: bool,
    /// Fields the transition's form asks for.
    pub required_fields: Vec<String>,
    /// With `explain`: why it is unavailable, each reason told by its `code`
    /// (`unknown_transition`, `wrong_state`, `not_permitted`, `guard_failed`,
    /// `missing_fields`); empty without `explain`, and on an available transition at most
    /// `missing_fields` (what the request must supply). Requesters and partners are never
    /// told an internal field's name: `missing_fields` lists public fields only, and a failed
    /// guard comparing an internal field reads `condition not met`.
    pub reasons: Vec<TransitionReason>,
}

impl From<TransitionOption> for TransitionChoice {
    fn from(o: TransitionOption) -> Self {
        Self {
            key: o.key,
            label: Labels {
                ja: o.label.ja,
                en: o.label.en,
            },
            to: o.to,
            available: o.available,
            required_fields: o.required_fields,
            reasons: o.reasons.into_iter().map(TransitionReason::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionList {
    /// The ticket's version the answer is about.
    pub ticket_version: i64,
    pub state: String,
    pub items: Vec<TransitionChoice>,
}

/// What the caller can do next: the available transitions with the fields each needs; with
/// `explain=true`, also the unavailable ones with the reasons.
#[utoipa::path(
    tag = "tickets", operation_id = "list_ticket_transitions", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), ExplainParams),
    responses(
        (status = 200, description = "Transitions in definition order", body = TransitionList, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/tickets/{ticket_id}/transitions")]
pub async fn list_ticket_transitions(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
    params: web::Query<ExplainParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let id = id.into_inner();
    let explain = params.explain;
    let s = state.clone();
    let (ticket, options, caller) = state
        .db
        .read(move |conn| {
            let (t, o) = svc::options(conn, &s.definitions, &caller, id, explain)?;
            Ok::<_, ApiError>((t, o, caller))
        })
        .await?;
    let body = TransitionList {
        ticket_version: ticket.row.version,
        state: ticket.row.state.clone(),
        items: options
            .into_iter()
            .map(|o| TransitionChoice::from(caller.audience.option(&ticket.def, o)))
            .collect(),
    };
    Ok(ok_with_etag(&body, ticket.row.version))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentInput {
    pub body: String,
    /// Internal comments are never shown to requesters or partners (staff only).
    #[serde(default)]
    pub internal: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"transition": "resolve", "fields": {"resolution": "再起動で復旧"},
    "comment": {"body": "復旧を確認しました", "internal": false}}))]
pub struct FireTransition {
    pub transition: String,
    /// Values for the transition's `requires` and `sets` fields.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    pub comment: Option<CommentInput>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRunParams {
    /// Check everything and report the planned changes, writing nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A library record written by a transition.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"library": "knowledge_base", "operation": "created",
    "record_id": "01938c4e-7f6a-7c3e-9d1e-3a5b7c9d1e2f", "record_version": 1,
    "title": "VPN に接続できない", "fields": {"title": "VPN に接続できない", "body": "証明書を更新"},
    "record_field": "knowledge_article"}))]
pub struct LibraryChange {
    pub library: String,
    pub operation: LibraryOperation,
    pub record_id: uuid::Uuid,
    /// The record's version after the write.
    pub record_version: i64,
    /// The record's title; omitted when the caller may not read the library.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The record fields the action wrote (staff only; omitted for requesters and partners).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Map<String, Value>>,
    /// The ticket field a created record's id was written back into (omitted for
    /// requesters and partners when that field is internal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_field: Option<String>,
}

impl LibraryChange {
    /// The entry as the caller sees it: the audience rules decide the fields and the record
    /// field; library access (`readable`) decides the title.
    fn of(
        write: &LibraryWrite,
        ticket: &LoadedTicket,
        caller: &TicketCaller,
        readable: &BTreeSet<String>,
    ) -> Self {
        let audience = caller.audience;
        Self {
            library: write.library.clone(),
            operation: write.operation,
            record_id: write.record.id.0,
            record_version: write.record.version,
            title: (audience.sees_internal() || readable.contains(&write.library))
                .then(|| write.record.title.clone()),
            fields: audience.sees_internal().then(|| write.fields.clone()),
            record_field: write
                .record_field
                .clone()
                .filter(|f| audience.sees_field(&ticket.def, f)),
        }
    }
}

/// The result of a transition (or, with `dry_run`, what it would be).
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionResult {
    pub dry_run: bool,
    /// The ticket after the transition (in a dry run: as it would be).
    pub ticket: Ticket,
    /// The engine's plan: from, to, field changes (old and new values) and actions.
    pub plan: TransitionPlan,
    /// Tickets created by `create_child_ticket` actions.
    pub children: Vec<Ticket>,
    /// Records written by `library_upsert` / `library_update` actions (in a dry run: as
    /// they would be written).
    pub library_changes: Vec<LibraryChange>,
    /// Events recorded for integrations by `notify` actions (in a dry run: would record).
    #[schema(value_type = Vec<NotifyEvent>)]
    pub events: Vec<Value>,
    pub comment: Option<Comment>,
}

fn plan_seen(
    plan: &engine::TransitionPlan,
    ticket: &LoadedTicket,
    caller: &TicketCaller,
    readable: &BTreeSet<String>,
) -> TransitionPlan {
    TransitionPlan::from(caller.audience.plan(&ticket.def, plan.clone(), readable))
}

fn outcome_body(
    outcome: &TransitionOutcome,
    caller: &TicketCaller,
    readable: &BTreeSet<String>,
    dry_run: bool,
) -> Result<TransitionResult, ApiError> {
    Ok(TransitionResult {
        dry_run,
        ticket: Ticket::of(&outcome.ticket, caller),
        plan: plan_seen(&outcome.plan, &outcome.ticket, caller, readable),
        children: outcome
            .children
            .iter()
            .map(|c| Ticket::of(c, caller))
            .collect(),
        library_changes: outcome
            .library_writes
            .iter()
            .map(|w| LibraryChange::of(w, &outcome.ticket, caller, readable))
            .collect(),
        events: outcome.events.clone(),
        comment: outcome.comment.clone().map(Comment::try_from).transpose()?,
    })
}

/// Fires a transition: permission, state, guard, required fields and per-state rules are
/// checked; the state change, field changes, actions (set_field, assign, create_child_ticket,
/// notify) and history are written in one transaction — all or nothing. A transition not
/// available from the current state is 409; a stale `If-Match` is 412.
#[utoipa::path(
    tag = "tickets", operation_id = "transition_ticket", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), DryRunParams, ("If-Match" = Option<String>, Header, description = "ETag of the ticket version the transition is meant for")),
    request_body = FireTransition,
    responses(
        (status = 200, description = "Done (or, with dry_run, the verdict and plan)", body = TransitionResult, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/tickets/{ticket_id}/transitions")]
pub async fn transition_ticket(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<TicketId>,
    params: web::Query<DryRunParams>,
    body: web::Json<FireTransition>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let expected = if_match(&req)?;
    let dry_run = params.dry_run;
    let request = transition_request(body.into_inner())?;
    let id = id.into_inner();
    let now = state.clock.now();
    let s = state.clone();
    let (outcome, caller, readable) = state
        .db
        .write(move |conn| {
            let cx = svc::TransitionContext {
                definitions: &s.definitions,
                caller: &caller,
                ticket: id,
                expected_version: expected,
                now,
                mode: if dry_run {
                    svc::Mode::DryRun
                } else {
                    svc::Mode::Execute
                },
            };
            let o = svc::fire(conn, &cx, &request)?;
            let libraries = Audience::plan_libraries(&o.plan);
            let readable =
                libs::readable_libraries(conn, &caller.scope, &caller.reader(), libraries)?;
            Ok::<_, ApiError>((o, caller, readable))
        })
        .await?;
    let version = outcome.ticket.row.version;
    Ok(ok_with_etag(
        &outcome_body(&outcome, &caller, &readable, dry_run)?,
        version,
    ))
}

fn transition_request(body: FireTransition) -> Result<TransitionRequest, ApiError> {
    let comment = body.comment.map(|c| NewComment {
        body: c.body,
        internal: c.internal,
    });
    Ok(TransitionRequest::parse(
        &body.transition,
        body.fields,
        comment,
    )?)
}
