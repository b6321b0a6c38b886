//! Tickets: the cases that run through templates. Reads apply the caller's visibility (see
//! `domain::ticket::Audience`); a ticket the caller may not see answers 404 like a missing one.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::common::{
    Page, PageParams, bad_cursor, decode_json_cursor, encode_json_cursor, if_match, list_query,
    ok_with_etag, page_limit, query_pairs, search_query,
};
use crate::app::AppState;
use crate::auth::Principal;
use crate::db::tickets::{After, CommentRow, HistoryRow, SortKey, TicketFilter};
use crate::domain::index;
use crate::domain::template::{FieldSet, TransitionOption, TransitionPlan};
use crate::error::ApiError;
use crate::ids::{CommentId, GroupId, LinkId, OrganizationId, TicketId, UserId};
use crate::service::idempotency::{self, Replayable};
use crate::service::libraries::LibraryWrite;

pub(super) fn replay_response(r: Replayable) -> HttpResponse {
    let status =
        actix_web::http::StatusCode::from_u16(r.status).unwrap_or(actix_web::http::StatusCode::OK);
    let mut response = HttpResponse::build(status);
    response.content_type("application/json");
    if let Some(location) = r.location {
        response.insert_header((header::LOCATION, location));
    }
    if let Some(etag) = r.etag {
        response.insert_header((header::ETAG, etag));
    }
    if r.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.body(r.body)
}
use crate::service::tickets::{
    self as svc, LinkKind, LoadedTicket, NewComment, NewTicketRequest, TicketCaller, TicketPatch,
    TransitionOutcome, TransitionRequest,
};

/// A ticket as the caller may see it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-4a00-7000-8000-0000000000a1", "key": "INC-42",
    "template": "itil_incident", "template_version": 1, "title": "メールサーバ障害",
    "stage": "open", "state": "new", "closed": false,
    "requester": "019ac0d2-4a00-7000-8000-000000000003", "assignee": null, "group": null,
    "organization": null, "fields": {"title": "メールサーバ障害", "impact": "high"},
    "version": 1, "created_at": "2026-11-26T09:00:00Z", "updated_at": "2026-11-26T09:00:00Z"}))]
pub struct Ticket {
    pub id: TicketId,
    /// Human key: the template's prefix and a number unique per template.
    pub key: String,
    /// Key of the template the ticket runs through.
    pub template: String,
    /// The template version the ticket is pinned to for life.
    pub template_version: i32,
    pub title: String,
    pub stage: String,
    pub state: String,
    /// Whether the state is terminal.
    pub closed: bool,
    pub requester: Option<UserId>,
    pub assignee: Option<UserId>,
    pub group: Option<GroupId>,
    pub organization: Option<OrganizationId>,
    /// Field values; internal fields are left out for requesters and partners.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// With `?expand=references`: the library records the ticket's `library_ref` fields
    /// name, by field key (fields of libraries the caller may not read are left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<std::collections::BTreeMap<String, ReferencedRecord>>,
}

/// A library record a ticket field references.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"library": "cmdb", "id": "019ac0d2-4a00-7000-8000-0000000000c1",
    "title": "mail-01", "deleted": false}))]
pub struct ReferencedRecord {
    pub library: String,
    pub id: uuid::Uuid,
    pub title: String,
    /// The record was deleted after the ticket referenced it.
    pub deleted: bool,
}

impl Ticket {
    pub fn of(ticket: &LoadedTicket, caller: &TicketCaller) -> Self {
        let row = &ticket.row;
        Self {
            id: row.id,
            key: row.key(),
            template: ticket.template_key.clone(),
            template_version: row.template_version,
            title: row.title.clone(),
            stage: row.stage.clone(),
            state: row.state.clone(),
            closed: row.closed,
            requester: row.requester_id,
            assignee: row.assignee_id,
            group: row.group_id,
            organization: row.organization_id,
            fields: caller.audience.redact(&ticket.def, ticket.fields()),
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
            references: None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"template": "itil_incident",
    "fields": {"title": "メールサーバ障害", "description": "送信できない", "impact": "high"}}))]
pub struct CreateTicket {
    /// Key of a template with a published version.
    pub template: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Filing on someone's behalf (workers only); default: the caller.
    pub requester: Option<UserId>,
    pub assignee: Option<UserId>,
    pub group: Option<GroupId>,
    /// Default: the requester's organization.
    pub organization: Option<OrganizationId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"fields": {"impact": "low"}, "assignee": "019ac0d2-4a00-7000-8000-000000000007"}))]
pub struct UpdateTicket {
    /// Only the keys present change; `null` clears a field.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    #[serde(default, deserialize_with = "super::common::double_option")]
    #[schema(value_type = Option<UserId>)]
    pub assignee: Option<Option<UserId>>,
    #[serde(default, deserialize_with = "super::common::double_option")]
    #[schema(value_type = Option<GroupId>)]
    pub group: Option<Option<GroupId>>,
    #[serde(default, deserialize_with = "super::common::double_option")]
    #[schema(value_type = Option<OrganizationId>)]
    pub organization: Option<Option<OrganizationId>>,
}

fn caller(principal: &Principal) -> Result<TicketCaller, ApiError> {
    TicketCaller::of(principal)
}

fn ticket_response(ticket: &LoadedTicket, caller: &TicketCaller) -> HttpResponse {
    ok_with_etag(&Ticket::of(ticket, caller), ticket.row.version)
}

pub(super) fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::Malformed("Idempotency-Key is not valid text.".to_owned()))?
        .trim();
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::Malformed(
            "Idempotency-Key must be 1–255 characters.".to_owned(),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Files a ticket from the template's published version, in its initial state.
///
/// With `Idempotency-Key`, a repeat of the same request (same caller, key and body) within 24
/// hours replays the first response; the same key with a different body is 422.
#[utoipa::path(
    tag = "tickets", operation_id = "create_ticket", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a repeat replays the first response")),
    request_body = CreateTicket,
    responses(
        (status = 201, description = "Created", body = Ticket, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/tickets")]
pub async fn create_ticket(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: web::Json<CreateTicket>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let key = idempotency_key(&req)?;
    let body = body.into_inner();
    let fingerprint = idempotency::fingerprint(&body);
    let now = state.clock.now();
    let state2 = state.clone();
    let replay = state
        .db
        .write(move |conn| {
            idempotency::run(
                conn,
                &caller.scope,
                &caller.actor,
                key.as_deref(),
                &fingerprint,
                now,
                |conn| {
                    let request = NewTicketRequest {
                        template: body.template,
                        fields: body.fields,
                        requester: body.requester,
                        assignee: body.assignee,
                        group: body.group,
                        organization: body.organization,
                    };
                    let ticket = svc::create(conn, &state2.definitions, &caller, &request, now)?;
                    Ok(Replayable::created(
                        &Ticket::of(&ticket, &caller),
                        ticket.row.version,
                        format!("/api/v1/tickets/{}", ticket.row.id),
                    ))
                },
            )
        })
        .await?;
    Ok(replay_response(replay))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetTicketParams {
    /// `references`: add the title of every library record the ticket's `library_ref`
    /// fields name.
    pub expand: Option<String>,
}

/// One ticket, with its ETag.
#[utoipa::path(
    tag = "tickets", operation_id = "get_ticket", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), GetTicketParams),
    responses(
        (status = 200, description = "The ticket", body = Ticket, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/tickets/{ticket_id}")]
pub async fn get_ticket(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
    params: web::Query<GetTicketParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let expand = match params.expand.as_deref() {
        None | Some("") => false,
        Some("references") => true,
        Some(_) => {
            return Err(ApiError::validation(
                "expand",
                "invalid_value",
                "the only expansion is `references`",
            ));
        }
    };
    let id = id.into_inner();
    let s = state.clone();
    let (ticket, caller, references) = state
        .db
        .read(move |conn| {
            let t = svc::load(conn, &s.definitions, &caller, id)?;
            let references = if expand {
                let fields = caller.audience.redact(&t.def, t.fields());
                let found = crate::service::libraries::referenced_records(
                    conn,
                    &caller.scope,
                    &caller.reader(),
                    &*t.def,
                    &fields,
                )?;
                Some(
                    found
                        .into_iter()
                        .map(|(field, r)| {
                            let record = ReferencedRecord {
                                library: r.library,
                                id: r.id.0,
                                title: r.title,
                                deleted: r.deleted,
                            };
                            (field, record)
                        })
                        .collect(),
                )
            } else {
                None
            };
            Ok::<_, ApiError>((t, caller, references))
        })
        .await?;
    let mut body = Ticket::of(&ticket, &caller);
    body.references = references;
    Ok(ok_with_etag(&body, ticket.row.version))
}

/// Edits fields writable in the current state (per-state `read_only` and `hidden` rules
/// apply), and — for agents — the assignee, group and organization.
#[utoipa::path(
    tag = "tickets", operation_id = "update_ticket", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = UpdateTicket,
    responses(
        (status = 200, description = "Updated", body = Ticket, headers(("ETag" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[patch("/tickets/{ticket_id}")]
pub async fn update_ticket(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<TicketId>,
    body: web::Json<UpdateTicket>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let expected = if_match(&req)?;
    let body = body.into_inner();
    let patch = TicketPatch {
        fields: body.fields,
        assignee: body.assignee,
        group: body.group,
        organization: body.organization,
    };
    let id = id.into_inner();
    let now = state.clock.now();
    let s = state.clone();
    let (ticket, caller) = state
        .db
        .write(move |conn| {
            let t = svc::update(conn, &s.definitions, &caller, id, expected, &patch, now)?;
            Ok::<_, ApiError>((t, caller))
        })
        .await?;
    Ok(ticket_response(&ticket, &caller))
}

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
    #[schema(value_type = Object)]
    pub label: Value,
    pub to: String,
    /// True when the transition can be fired now, given the `required_fields` the request
    /// must supply when they are not set yet.
    pub available: bool,
    /// Fields the transition's form asks for.
    pub required_fields: Vec<String>,
    /// With `explain`: why it is unavailable (`wrong_state`, `not_permitted`,
    /// `guard_failed`, `missing_fields`).
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<Value>,
}

impl From<TransitionOption> for TransitionChoice {
    fn from(o: TransitionOption) -> Self {
        Self {
            key: o.key,
            label: serde_json::to_value(&o.label).unwrap_or(Value::Null),
            to: o.to,
            available: o.available,
            required_fields: o.required_fields,
            reasons: o
                .reasons
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
                .collect(),
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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
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
    let (ticket, options) = state
        .db
        .read(move |conn| svc::options(conn, &s.definitions, &caller, id, explain))
        .await?;
    let body = TransitionList {
        ticket_version: ticket.row.version,
        state: ticket.row.state.clone(),
        items: options.into_iter().map(TransitionChoice::from).collect(),
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
    /// `created` or `updated`.
    pub operation: String,
    pub record_id: uuid::Uuid,
    /// The record's version after the write.
    pub record_version: i64,
    pub title: String,
    /// The record fields the action wrote (staff only; omitted for requesters and partners).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Map<String, Value>>,
    /// The ticket field a created record's id was written back into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_field: Option<String>,
}

impl LibraryChange {
    fn of(write: &LibraryWrite, caller: &TicketCaller) -> Self {
        Self {
            library: write.library.clone(),
            operation: write.operation.to_owned(),
            record_id: write.record.id.0,
            record_version: write.record.version,
            title: write.record.title.clone(),
            fields: caller.audience.is_staff().then(|| write.fields.clone()),
            record_field: write.record_field.clone(),
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
    #[schema(value_type = Object)]
    pub plan: Value,
    /// Tickets created by `create_child_ticket` actions.
    pub children: Vec<Ticket>,
    /// Records written by `library_upsert` / `library_update` actions (in a dry run: as
    /// they would be written).
    pub library_changes: Vec<LibraryChange>,
    /// Events recorded for integrations by `notify` actions (in a dry run: would record).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    pub comment: Option<Comment>,
}

fn plan_json(plan: &TransitionPlan, ticket: &LoadedTicket, caller: &TicketCaller) -> Value {
    let mut value = serde_json::to_value(plan).unwrap_or(Value::Null);
    if !caller.audience.is_staff()
        && let Some(changes) = value.get_mut("field_changes").and_then(Value::as_array_mut)
    {
        changes.retain(|c| {
            c.get("field")
                .and_then(Value::as_str)
                .is_some_and(|f| ticket.def.is_public(f))
        });
    }
    value
}

fn outcome_body(
    outcome: &TransitionOutcome,
    caller: &TicketCaller,
    dry_run: bool,
) -> TransitionResult {
    TransitionResult {
        dry_run,
        ticket: Ticket::of(&outcome.ticket, caller),
        plan: plan_json(&outcome.plan, &outcome.ticket, caller),
        children: outcome
            .children
            .iter()
            .map(|c| Ticket::of(c, caller))
            .collect(),
        library_changes: outcome
            .library_writes
            .iter()
            .map(|w| LibraryChange::of(w, caller))
            .collect(),
        events: outcome.events.clone(),
        comment: outcome.comment.clone().map(Comment::from),
    }
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
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
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
    let request = transition_request(body.into_inner());
    let id = id.into_inner();
    let now = state.clock.now();
    let s = state.clone();
    let (outcome, caller) = state
        .db
        .write(move |conn| {
            let o = svc::fire(
                conn,
                &s.definitions,
                &caller,
                id,
                expected,
                &request,
                dry_run,
                now,
            )?;
            Ok::<_, ApiError>((o, caller))
        })
        .await?;
    let version = outcome.ticket.row.version;
    Ok(ok_with_etag(
        &outcome_body(&outcome, &caller, dry_run),
        version,
    ))
}

fn transition_request(body: FireTransition) -> TransitionRequest {
    TransitionRequest {
        transition: body.transition,
        fields: body.fields,
        comment: body.comment.map(|c| NewComment {
            body: c.body,
            internal: c.internal,
        }),
    }
}

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
    /// `created`, `transition`, `field_changed` or `attribute_changed` (assignee, group,
    /// organization).
    pub kind: String,
    pub transition: Option<String>,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub field: Option<String>,
    #[schema(value_type = Object)]
    pub old_value: Option<Value>,
    #[schema(value_type = Object)]
    pub new_value: Option<Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Actor {
    /// `user` or `api_key`.
    pub kind: String,
    pub id: Option<uuid::Uuid>,
    pub name: String,
}

impl From<HistoryRow> for HistoryEntry {
    fn from(r: HistoryRow) -> Self {
        Self {
            ticket_version: r.ticket_version,
            ordinal: r.ordinal,
            at: r.at.0,
            actor: Actor {
                kind: r.actor_kind,
                id: r.actor_id.map(|a| a.0),
                name: r.actor_name,
            },
            kind: r.kind,
            transition: r.transition,
            from_state: r.from_state,
            to_state: r.to_state,
            field: r.field,
            old_value: r.old_value.map(|v| v.0),
            new_value: r.new_value.map(|v| v.0),
        }
    }
}

fn encode_position(version: i64, ordinal: i32) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{version}.{ordinal}"))
}

fn decode_position(cursor: &str) -> Option<(i64, i32)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (v, o) = text.split_once('.')?;
    Some((v.parse().ok()?, o.parse().ok()?))
}

/// Every transition and field change of the ticket, oldest first (by ticket version, then
/// ordinal). Entries about internal fields are left out for requesters and partners.
#[utoipa::path(
    tag = "tickets", operation_id = "list_ticket_history", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), PageParams),
    responses(
        (status = 200, description = "A page of history entries", body = Page<HistoryEntry>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/tickets/{ticket_id}/history")]
pub async fn list_ticket_history(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<HistoryEntry>>, ApiError> {
    let caller = caller(&principal)?;
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
    Ok(web::Json(Page {
        items: rows.into_iter().map(HistoryEntry::from).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comment {
    pub id: CommentId,
    pub ticket_id: TicketId,
    pub author: Actor,
    pub body: String,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

impl From<CommentRow> for Comment {
    fn from(r: CommentRow) -> Self {
        Self {
            id: r.id,
            ticket_id: r.ticket_id,
            author: Actor {
                kind: r.author_kind,
                id: r.author_id.map(|a| a.0),
                name: r.author_name,
            },
            body: r.body,
            internal: r.internal,
            created_at: r.created_at.0,
        }
    }
}

/// Comments of a ticket, oldest first; internal ones only for staff.
#[utoipa::path(
    tag = "tickets", operation_id = "list_ticket_comments", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), PageParams),
    responses(
        (status = 200, description = "A page of comments", body = Page<Comment>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
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
    Ok(web::Json(Page::from_rows(
        rows,
        &request,
        |r| r.id.0,
        Comment::from,
    )))
}

/// Adds a comment. Requesters and partners write public comments only.
#[utoipa::path(
    tag = "tickets", operation_id = "create_ticket_comment", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a repeat replays the first response")),
    request_body = CommentInput,
    responses(
        (status = 201, description = "Created", body = Comment),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
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
    let replay = state
        .db
        .write(move |conn| {
            idempotency::run(
                conn,
                &caller.scope,
                &caller.actor,
                key.as_deref(),
                &fingerprint,
                now,
                |conn| {
                    let comment = NewComment {
                        body: body.body,
                        internal: body.internal,
                    };
                    let row = svc::add_comment(conn, &s.definitions, &caller, id, &comment, now)?;
                    let location = format!("/api/v1/tickets/{id}/comments");
                    Ok(Replayable::created(&Comment::from(row), 1, location))
                },
            )
        })
        .await?;
    Ok(replay_response(replay))
}

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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
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
    /// `parent`, `child`, `related`, `duplicate_of` (this ticket duplicates the other) or
    /// `duplicated_by`.
    pub kind: String,
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
    /// What the other ticket is to this one: `parent`, `child`, `related`, `duplicate_of`,
    /// `duplicated_by`.
    pub kind: String,
    pub ticket: TicketId,
}

/// Links of the ticket in both directions, oldest first (only tickets the caller may see).
#[utoipa::path(
    tag = "tickets", operation_id = "list_ticket_links", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path)),
    responses(
        (status = 200, description = "Links", body = Vec<Link>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
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
                kind: kind.as_str().to_owned(),
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
        (status = 201, description = "Linked", body = Link),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
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
    let kind = LinkKind::parse(&body.kind).ok_or_else(|| {
        ApiError::validation(
            "kind",
            "invalid",
            "one of parent, child, related, duplicate_of, duplicated_by",
        )
    })?;
    let (id, other) = (id.into_inner(), body.ticket);
    let now = state.clock.now();
    let s = state.clone();
    let (row, target) = state
        .db
        .write(move |conn| svc::add_link(conn, &s.definitions, &caller, id, kind, other, now))
        .await?;
    let link = Link {
        id: row.id,
        kind: kind.as_str().to_owned(),
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
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
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

/// Query of the ticket list and export. Custom fields are filtered with
/// `field.<key>=<value>` (repeatable for several fields; a multi-select matches when it
/// holds the value).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    /// Template key.
    pub template: Option<String>,
    /// Stage key.
    pub stage: Option<String>,
    /// State key; several separated by commas.
    pub state: Option<String>,
    /// `true`: only tickets in a terminal state; `false`: only open ones.
    pub closed: Option<bool>,
    pub assignee: Option<UserId>,
    pub group: Option<GroupId>,
    pub organization: Option<OrganizationId>,
    pub requester: Option<UserId>,
    /// Keywords (all must match): English words, and Japanese words of two or more
    /// characters, over the title, text fields and comments.
    pub q: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub updated_after: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
    /// Tickets whose `library_ref` fields reference this library record, deleted or not (of
    /// a library the caller may read; otherwise nothing matches).
    pub library_record: Option<uuid::Uuid>,
    /// `created` (default `-created`: newest first), `updated`, `key`; prefix `-` for
    /// descending.
    pub sort: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Reads the list query: the named parameters, and `field.<key>` filters.
fn parse_query(
    pairs: &[(String, String)],
    audience: crate::domain::ticket::Audience,
    probe_threshold: i64,
) -> Result<(TicketQuery, TicketFilter), ApiError> {
    let (query, raw_fields): (TicketQuery, _) = list_query(pairs, &["format", "bom"])?;
    let fields: Vec<(String, Vec<String>)> = raw_fields
        .into_iter()
        .map(|(field, v)| (field, index::filter_candidates(&v)))
        .collect();
    let (sort, descending) = match query.sort.as_deref().unwrap_or("-created") {
        "created" => (SortKey::Created, false),
        "-created" => (SortKey::Created, true),
        "updated" => (SortKey::Updated, false),
        "-updated" => (SortKey::Updated, true),
        "key" => (SortKey::Key, false),
        "-key" => (SortKey::Key, true),
        _ => {
            return Err(ApiError::validation(
                "sort",
                "invalid",
                "one of created, updated, key, each optionally prefixed with -",
            ));
        }
    };
    let tokens = search_query(query.q.as_deref())?
        .map(|q| q.tokens)
        .unwrap_or_default();
    let states = query.state.as_deref().map(|s| {
        s.split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
    });
    let filter = TicketFilter {
        audience,
        template: None,
        states,
        stage: query.stage.clone(),
        closed: query.closed,
        assignee: query.assignee,
        group: query.group,
        organization: query.organization,
        requester: query.requester,
        created_after: query.created_after.map(Into::into),
        created_before: query.created_before.map(Into::into),
        updated_after: query.updated_after.map(Into::into),
        updated_before: query.updated_before.map(Into::into),
        fields,
        tokens,
        references: None,
        probe_threshold,
        sort,
        descending,
    };
    Ok((query, filter))
}

#[derive(Debug, Serialize, Deserialize)]
struct ListCursor {
    /// Sort key kind: c, u, k.
    s: char,
    id: TicketId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<i64>,
}

fn encode_list_cursor(sort: SortKey, row: &crate::db::tickets::TicketRow) -> String {
    let cursor = match sort {
        SortKey::Created => ListCursor {
            s: 'c',
            id: row.id,
            at: None,
            p: None,
            n: None,
        },
        SortKey::Updated => ListCursor {
            s: 'u',
            id: row.id,
            at: Some(row.updated_at.0),
            p: None,
            n: None,
        },
        SortKey::Key => ListCursor {
            s: 'k',
            id: row.id,
            at: None,
            p: Some(row.key_prefix.clone()),
            n: Some(row.number),
        },
    };
    encode_json_cursor(&cursor)
}

fn decode_list_cursor(raw: &str, sort: SortKey) -> Result<After, ApiError> {
    let c: ListCursor = decode_json_cursor(raw)?;
    match (sort, c.s, c.at, c.p, c.n) {
        (SortKey::Created, 'c', _, _, _) => Ok(After::Created(c.id)),
        (SortKey::Updated, 'u', Some(at), _, _) => Ok(After::Updated(at.into(), c.id)),
        (SortKey::Key, 'k', _, Some(p), Some(n)) => Ok(After::Key(p, n, c.id)),
        _ => Err(bad_cursor()),
    }
}

/// Tickets the caller may see, filtered and sorted, with stable cursor pagination (ties are
/// broken by id). Every filter is index-backed, custom fields and keywords included.
///
/// Custom fields are filtered with `field.<key>=<value>` query parameters (up to 8, all must
/// match; for example `field.impact=high`). A multi-select matches when it holds the value;
/// numbers and datetimes match whatever their written form (`1.50` finds `1.5`,
/// `2026-11-26T18:00:00+09:00` finds the same instant in UTC). Requesters and partners cannot
/// filter on internal fields (nothing matches). `q` finds English words and Japanese words of
/// two or more characters in the title, text fields and comments (internal ones only for
/// staff); results keep the list's order, there is no ranking.
#[utoipa::path(
    tag = "tickets", operation_id = "list_tickets", security(("bearer" = [])),
    params(TicketQuery),
    responses(
        (status = 200, description = "A page of tickets", body = Page<Ticket>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/tickets")]
pub async fn list_tickets(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<web::Json<Page<Ticket>>, ApiError> {
    let caller = caller(&principal)?;
    let pairs = query_pairs(&req)?;
    Ok(web::Json(ticket_page(&state, caller, &pairs, None).await?))
}

/// One page of the ticket list for a query; with `record`, only tickets referencing that
/// library record (which must be readable: 404 otherwise).
pub(super) async fn ticket_page(
    state: &web::Data<AppState>,
    caller: TicketCaller,
    pairs: &[(String, String)],
    record: Option<(String, uuid::Uuid)>,
) -> Result<Page<Ticket>, ApiError> {
    let (query, mut filter) =
        parse_query(pairs, caller.audience, state.config.list_probe_threshold)?;
    let limit = page_limit(query.limit)?;
    let after = match &query.cursor {
        Some(raw) => Some(decode_list_cursor(raw, filter.sort)?),
        None => None,
    };
    let s = state.clone();
    let sort = filter.sort;
    let (rows, caller) = state
        .db
        .read(move |conn| {
            if !narrow_to_record(
                conn,
                &s.definitions,
                &caller,
                record,
                query.library_record,
                &mut filter,
            )? {
                return Ok::<_, ApiError>((Vec::new(), caller));
            }
            let scope =
                svc::narrow_to_template(conn, &caller, query.template.as_deref(), &mut filter)?;
            if matches!(scope, svc::ListScope::Nothing) {
                return Ok::<_, ApiError>((Vec::new(), caller));
            }
            let rows = svc::page(
                conn,
                &s.definitions,
                &caller,
                &filter,
                after.as_ref(),
                limit + 1,
            )?;
            Ok((rows, caller))
        })
        .await?;
    let mut rows = rows;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| rows.last().map(|t| encode_list_cursor(sort, &t.row)))
        .flatten();
    Ok(Page {
        items: rows.iter().map(|t| Ticket::of(t, &caller)).collect(),
        next_cursor,
    })
}

/// Narrows a list filter to the tickets referencing a library record: the one the record
/// endpoint names (404 unless the caller may read it), or `?library_record=`. False when
/// nothing can match (a record of a library the caller may not read, or no such record).
fn narrow_to_record(
    conn: &mut crate::db::DbConnection,
    defs: &crate::service::definitions::DefinitionCache,
    caller: &TicketCaller,
    record: Option<(String, uuid::Uuid)>,
    library_record: Option<uuid::Uuid>,
    filter: &mut TicketFilter,
) -> Result<bool, ApiError> {
    use crate::service::libraries as libs;
    let reference = match (record, library_record) {
        (Some((key, id)), _) => {
            let library = libs::LibraryCaller::of_ticket(caller);
            libs::get_record(conn, &library, &key, crate::ids::RecordId(id))?;
            Some((key, id))
        }
        (None, Some(id)) => {
            let record = crate::ids::RecordId(id);
            libs::library_of_record(conn, &caller.scope, &caller.reader(), record)?
                .map(|key| (key, id))
        }
        (None, None) => return Ok(true),
    };
    let Some((key, id)) = reference else {
        return Ok(false);
    };
    let fields = libs::referencing_fields(conn, defs, &caller.scope, &key)?;
    filter.references = Some((fields, id.to_string()));
    Ok(true)
}

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
    pub problem: Option<crate::error::Problem>,
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
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
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
        let request = TransitionRequest {
            transition: item.transition,
            fields: item.fields,
            comment: comment.clone(),
        };
        let (s, c, id, version) = (state.clone(), caller.clone(), item.ticket, item.version);
        let now = state.clock.now();
        let outcome = state
            .db
            .write(move |conn| {
                svc::fire(conn, &s.definitions, &c, id, version, &request, false, now)
            })
            .await;
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` (the only format).
    pub format: Option<String>,
    /// Start with a UTF-8 byte order mark, so that Excel (Japanese Windows) reads UTF-8.
    #[serde(default)]
    pub bom: bool,
}

/// Rows fetched per database round trip while exporting.
const EXPORT_PAGE: i64 = 500;

const EXPORT_COLUMNS: [&str; 14] = [
    "id",
    "key",
    "template",
    "template_version",
    "title",
    "stage",
    "state",
    "closed",
    "requester",
    "assignee",
    "group",
    "organization",
    "created_at",
    "updated_at",
];

fn csv_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(csv_cell).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

fn export_rows(
    tickets: &[LoadedTicket],
    caller: &TicketCaller,
    field_columns: &[String],
) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for t in tickets {
        let shown = Ticket::of(t, caller);
        let id = |v: Option<uuid::Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
        let mut record = vec![
            shown.id.to_string(),
            shown.key,
            shown.template,
            shown.template_version.to_string(),
            shown.title,
            shown.stage,
            shown.state,
            shown.closed.to_string(),
            id(shown.requester.map(|u| u.0)),
            id(shown.assignee.map(|u| u.0)),
            id(shown.group.map(|g| g.0)),
            id(shown.organization.map(|o| o.0)),
            shown
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            shown
                .updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ];
        if field_columns.is_empty() {
            record.push(Value::Object(shown.fields).to_string());
        } else {
            for key in field_columns {
                record.push(shown.fields.get(key).map(csv_cell).unwrap_or_default());
            }
        }
        out.write_record(&record)
            .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    }
    out.into_inner()
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))
}

/// The ticket list as CSV (UTF-8, optionally with a BOM), streamed.
///
/// The same filters (including `field.<key>=` and `q`) and order as `GET /tickets`, every
/// matching ticket. With `template=`, each field the caller
/// may see is a column (multi-select items joined by `;`); otherwise the fields are one JSON
/// column.
#[utoipa::path(
    tag = "tickets", operation_id = "export_tickets", security(("bearer" = [])),
    params(ExportParams, TicketQuery),
    responses(
        (status = 200, description = "CSV", content_type = "text/csv"),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/tickets/export")]
pub async fn export_tickets(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    params: web::Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    if params.format.as_deref().is_some_and(|f| f != "csv") {
        return Err(ApiError::validation("format", "invalid", "only csv"));
    }
    let pairs = query_pairs(&req)?;
    let (query, mut filter) =
        parse_query(&pairs, caller.audience, state.config.list_probe_threshold)?;
    if query.cursor.is_some() || query.limit.is_some() {
        return Err(ApiError::validation(
            "cursor",
            "invalid",
            "an export has every matching ticket; it takes no cursor or limit",
        ));
    }
    // Resolve the template (and its columns) before streaming, so errors are still problems.
    let (s, c, q) = (state.clone(), caller.clone(), query.template.clone());
    let library_record = query.library_record;
    let (filter, columns, matches) = state
        .db
        .read(move |conn| {
            let referenced =
                narrow_to_record(conn, &s.definitions, &c, None, library_record, &mut filter)?;
            let scope = svc::narrow_to_template(conn, &c, q.as_deref(), &mut filter)?;
            let mut columns = Vec::new();
            if let svc::ListScope::Template(t) = &scope
                && let Some(number) = t.published_version
            {
                let def = s.definitions.get(conn, &c.scope, t.id, number)?;
                columns = def
                    .fields
                    .iter()
                    .filter(|f| c.audience.is_staff() || !f.internal)
                    .map(|f| f.key.clone())
                    .collect();
            }
            let matches = referenced && !matches!(scope, svc::ListScope::Nothing);
            Ok::<_, ApiError>((filter, columns, matches))
        })
        .await?;
    let mut header_row: Vec<String> = EXPORT_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    if columns.is_empty() {
        header_row.push("fields".to_owned());
    } else {
        header_row.extend(columns.iter().map(|c| format!("field.{c}")));
    }
    let mut head = Vec::new();
    if params.bom {
        head.extend_from_slice("\u{feff}".as_bytes());
    }
    {
        let mut w = csv::Writer::from_writer(&mut head);
        w.write_record(&header_row)
            .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
        w.flush()
            .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    }
    struct Cursor {
        state: web::Data<AppState>,
        caller: TicketCaller,
        filter: TicketFilter,
        columns: Vec<String>,
        after: Option<After>,
        done: bool,
    }
    let start = Cursor {
        state: state.clone(),
        caller,
        filter,
        columns,
        after: None,
        done: !matches,
    };
    let pages = futures_util::stream::unfold(start, |mut cur| async move {
        if cur.done {
            return None;
        }
        let (s, c, f, after) = (
            cur.state.clone(),
            cur.caller.clone(),
            cur.filter.clone(),
            cur.after.clone(),
        );
        let page = cur
            .state
            .db
            .read(move |conn| svc::page(conn, &s.definitions, &c, &f, after.as_ref(), EXPORT_PAGE))
            .await;
        match page {
            Err(e) => {
                cur.done = true;
                Some((
                    Err(actix_web::error::ErrorInternalServerError(e.to_string())),
                    cur,
                ))
            }
            Ok(rows) => {
                if (rows.len() as i64) < EXPORT_PAGE {
                    cur.done = true;
                }
                if let Some(last) = rows.last() {
                    cur.after = Some(match cur.filter.sort {
                        SortKey::Created => After::Created(last.row.id),
                        SortKey::Updated => After::Updated(last.row.updated_at, last.row.id),
                        SortKey::Key => {
                            After::Key(last.row.key_prefix.clone(), last.row.number, last.row.id)
                        }
                    });
                } else {
                    cur.done = true;
                }
                match export_rows(&rows, &cur.caller, &cur.columns) {
                    Ok(bytes) => Some((Ok(web::Bytes::from(bytes)), cur)),
                    Err(e) => {
                        cur.done = true;
                        Some((
                            Err(actix_web::error::ErrorInternalServerError(e.to_string())),
                            cur,
                        ))
                    }
                }
            }
        }
    });
    use futures_util::StreamExt;
    let body =
        futures_util::stream::once(
            async move { Ok::<_, actix_web::Error>(web::Bytes::from(head)) },
        )
        .chain(pages);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"tickets.csv\"",
        ))
        .streaming(body))
}
