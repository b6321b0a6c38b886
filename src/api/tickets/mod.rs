//! Tickets: the cases that run through templates. Reads apply the caller's visibility (see
//! `domain::ticket::Audience`); a ticket the caller may not see answers 404 like a missing one.

pub mod bulk;
pub mod collab;
pub mod comments;
pub mod export;
pub mod history;
pub mod list;
pub mod transitions;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::common::{if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::domain::ids::{GroupId, OrganizationId, TicketId, UserId};
use crate::service::idempotency::{self, Replayable};

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
    self as svc, LoadedTicket, NewTicketRequest, TicketCaller, TicketPatch,
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
    /// Staff, on `GET /tickets/{ticket_id}` only: the ticket's SLA clocks (first response,
    /// resolution) as they stand at the read; absent when no SLA policy applies. docs/sla.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla: Option<Vec<crate::service::sla::SlaClock>>,
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
            sla: None,
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

pub(super) fn caller(principal: &Principal) -> Result<TicketCaller, ApiError> {
    Ok(TicketCaller::of(principal)?)
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
        (status = 201, description = "Created", body = Ticket, headers(("Idempotent-Replayed" = String), ("ETag" = String), ("Location" = String))),
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
                    let request = NewTicketRequest {
                        template: body.template,
                        fields: body.fields,
                        requester: body.requester,
                        assignee: body.assignee,
                        group: body.group,
                        organization: body.organization,
                        imported: None,
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
    /// fields name. Empty is the same as absent; any other value is 422.
    #[param(pattern = "^(references)?$", example = "references")]
    pub expand: Option<String>,
    /// The ticket as it was at this instant (RFC 3339), rebuilt from its history: fields,
    /// state, stage, assignee, group, organization, title, `version` and `updated_at` of the
    /// last change by then, and (staff) the SLA clocks as they stood, under today's policies.
    /// Visibility is today's. 422 before the ticket was filed. docs/tickets.md, "As it was".
    #[param(example = "2026-05-01T09:00:00Z")]
    pub as_of: Option<DateTime<Utc>>,
}

/// One ticket, with its ETag; with `as_of`, as it was then (the ETag of that version).
#[utoipa::path(
    tag = "tickets", operation_id = "get_ticket", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), GetTicketParams),
    responses(
        (status = 200, description = "The ticket", body = Ticket, headers(("ETag" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
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
    let (id, now) = (id.into_inner(), state.clock.now());
    let as_of = params.as_of.filter(|at| *at < now);
    let s = state.clone();
    let (ticket, caller, references, sla) = state
        .db
        .read(move |conn| {
            let t = match as_of {
                None => svc::load(conn, &s.definitions, &caller, id)?,
                Some(at) => svc::as_of(conn, &s.definitions, &caller, id, at)?,
            };
            let sla = match (caller.audience.is_staff(), as_of) {
                (false, _) => Vec::new(),
                (true, None) => {
                    crate::service::sla::ticket_clocks(conn, &caller.scope, t.row.id, now)?
                }
                (true, Some(at)) => {
                    let fields = t.fields();
                    let input = crate::service::sla::TicketClockInput {
                        id: t.row.id,
                        template: &t.template_key,
                        def: &t.def,
                        fields: &fields,
                        requester: t.row.requester_id,
                    };
                    crate::service::sla::clocks_at(conn, &caller.scope, &input, at)?
                }
            };
            let sla = (!sla.is_empty()).then_some(sla);
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
            Ok::<_, ApiError>((t, caller, references, sla))
        })
        .await?;
    let mut body = Ticket::of(&ticket, &caller);
    body.references = references;
    body.sla = sla;
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
