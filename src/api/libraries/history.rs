//! A record's version history and the tickets that reference it.

use actix_web::{HttpRequest, get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::api::common::{Page, PageParams, PageRequest, query_pairs};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::api::tickets::Ticket;
use crate::api::tickets::history::Actor;
use crate::auth::Principal;
use crate::db::libraries::VersionRow;
use crate::domain::ids::RecordId;
use crate::domain::library::RecordVersionKind;
use crate::domain::library::VersionSourceKind;
use crate::service::libraries::{self as svc, LibraryCaller, VersionView};

/// How a version came about: a user directly, or a ticket transition.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSource {
    pub kind: VersionSourceKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<uuid::Uuid>,
    /// The ticket's human key, `INC-42`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_key: Option<String>,
    /// The transition whose action wrote the version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transition: Option<String>,
}

/// One version of a record.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"version": 2, "kind": "updated", "at": "2026-11-26T10:00:00Z",
    "actor": {"kind": "user", "id": "019ac0d2-4a00-7000-8000-000000000007", "name": "agent1"},
    "source": {"kind": "ticket", "ticket_id": "019ac0d2-4a00-7000-8000-0000000000a1",
               "ticket_key": "CHG-3", "transition": "close"},
    "title": "mail-01", "fields": {"name": "mail-01", "status": "in_service"},
    "changed": ["status"], "note": null}))]
pub struct RecordVersion {
    pub version: i64,
    pub kind: RecordVersionKind,
    pub at: DateTime<Utc>,
    /// Who made the change (for a ticket source: who fired the transition).
    pub actor: Actor,
    pub source: VersionSource,
    pub title: String,
    /// The values as of this version (internal fields only for staff).
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// The field keys this version changed.
    pub changed: Vec<String>,
    /// The review note of a `reviewed` version.
    pub note: Option<String>,
}

impl TryFrom<VersionView> for RecordVersion {
    type Error = ApiError;

    fn try_from(view: VersionView) -> Result<Self, ApiError> {
        let VersionRow {
            version,
            kind,
            at,
            actor_kind,
            actor_id,
            actor_name,
            ticket_id,
            ticket_key,
            transition,
            title,
            note,
            ..
        } = view.row;
        Ok(Self {
            version,
            kind: RecordVersionKind::from_storage(&kind).map_err(ApiError::internal)?,
            at: at.0,
            actor: Actor::from_stored(&actor_kind, actor_id, actor_name)?,
            source: VersionSource {
                kind: if ticket_id.is_some() {
                    VersionSourceKind::Ticket
                } else {
                    VersionSourceKind::User
                },
                ticket_id: ticket_id.map(|t| t.0),
                ticket_key,
                transition,
            },
            title,
            fields: view.fields,
            changed: view.changed,
            note,
        })
    }
}

/// A record's versions, oldest first (a deleted record's history stays readable). Each
/// version says who made it and whether directly or through a ticket transition.
#[utoipa::path(
    tag = "libraries", operation_id = "list_library_record_history", security(("bearer" = [])),
    params(("key" = String, Path), ("record_id" = RecordId, Path), PageParams),
    responses(
        (status = 200, description = "A page of versions", body = Page<RecordVersion>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/libraries/{key}/records/{record_id}/history")]
pub async fn record_history(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, RecordId)>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<RecordVersion>>, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let PageRequest { limit, after } = page.parse_as::<i64>()?;
    let (key, id) = path.into_inner();
    let views = state
        .db
        .read(move |conn| svc::history(conn, &caller, &key, id, after, limit + 1))
        .await?;
    Ok(web::Json(Page::try_from_rows(
        views,
        limit,
        |v| v.row.version,
        RecordVersion::try_from,
    )?))
}

/// The tickets whose `library_ref` fields reference this live record, as the caller may see
/// them: the ticket list with all its filters, sorts and cursors (`GET /tickets` takes the
/// same query, and `?library_record=<id>` there gives the same list, for deleted records
/// too).
#[utoipa::path(
    tag = "libraries", operation_id = "list_library_record_tickets", security(("bearer" = [])),
    params(("key" = String, Path), ("record_id" = RecordId, Path), crate::api::tickets::list::TicketQuery, ("field" = Option<std::collections::HashMap<String, String>>, Query, style = DeepObject, explode, description = "Custom-field filters: `field[<key>]=<value>` (also written `field.<key>=<value>`), up to 8, all must match; a multi-select matches when it holds the value.")),
    responses(
        (status = 200, description = "A page of tickets", body = Page<Ticket>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/libraries/{key}/records/{record_id}/tickets")]
pub async fn record_tickets(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, RecordId)>,
) -> Result<web::Json<Page<Ticket>>, ApiError> {
    let caller = crate::service::tickets::TicketCaller::of(&principal)?;
    let pairs = query_pairs(&req)?;
    let (key, id) = path.into_inner();
    let route = crate::api::extract::read_route(&req);
    let page =
        crate::api::tickets::list::ticket_page(&state, caller, &pairs, Some((key, id)), route)
            .await?;
    Ok(web::Json(page))
}
