//! Moving running tickets to another template version. docs/process-guide.md, "Moving
//! tickets to a new version".

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::common::{Page, PageParams};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::domain::identity::Role;
use crate::domain::ids::{MigrationId, TicketId};
use crate::service::tickets::{self as svc, MigrationRequest, TicketCaller};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from_version": 1, "to_version": 2,
    "states": {"on_hold": "waiting"}, "fields": {"urgency": "priority"}}))]
pub struct CreateMigration {
    /// The published version the tickets are on.
    pub from_version: i32,
    /// A published version; default the template's published one.
    #[serde(default)]
    pub to_version: Option<i32>,
    /// Old state → new state; a state left out keeps its key (and must exist in the target).
    #[serde(default)]
    #[schema(additional_properties = true, value_type = Object)]
    pub states: BTreeMap<String, String>,
    /// Old field → new field; a field left out keeps its key, or its values are dropped when
    /// the target has no such field.
    #[serde(default)]
    #[schema(additional_properties = true, value_type = Object)]
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MigrationParams {
    /// Report what would move and what cannot, writing nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Tickets moved from one state to another.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateMove {
    pub from_state: String,
    pub to_state: String,
    pub count: usize,
}

/// A ticket that cannot move, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockedTicket {
    pub ticket_id: TicketId,
    pub key: String,
    pub reason: String,
}

crate::domain::closed_set::closed_set! {
    /// Whether a migration run has finished (a dry run is `done`).
    pub enum MigrationStatus {
        /// The `templates.migrate` job is moving the rest.
        Running = "running",
        Done = "done",
    }
}

/// What a migration run did so far, or (dry run) would do.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-4a00-7000-8000-0000000000c1", "status": "done",
    "started_at": "2026-06-01T09:00:00Z", "finished_at": "2026-06-01T09:00:02Z",
    "dry_run": false, "from_version": 1, "to_version": 2, "tickets": 120,
    "moved": 118, "moves": [{"from_state": "new", "to_state": "new", "count": 100},
        {"from_state": "on_hold", "to_state": "waiting", "count": 18}],
    "blocked_count": 2, "blocked": [{"ticket_id": "019ac0d2-4a00-7000-8000-0000000000a1", "key": "INC-7",
        "reason": "state `escalated` has no counterpart in version 2: map it in `states`"}],
    "fields_dropped": ["legacy_code"]}))]
pub struct MigrationResult {
    /// The run (absent for a dry run: nothing is stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<MigrationId>,
    pub status: MigrationStatus,
    pub started_at: DateTime<Utc>,
    /// Null while running.
    pub finished_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub from_version: i32,
    pub to_version: i32,
    /// Tickets on the old version filed before the run began, looked at so far.
    pub tickets: usize,
    /// Moved (dry run: would move).
    pub moved: usize,
    pub moves: Vec<StateMove>,
    pub blocked_count: usize,
    /// The first 500 tickets that cannot move (all are counted).
    pub blocked: Vec<BlockedTicket>,
    /// Fields of the old version the new one has no place for: their values are dropped.
    pub fields_dropped: Vec<String>,
}

impl From<svc::MigrationRun> for MigrationResult {
    fn from(run: svc::MigrationRun) -> Self {
        let r = run.result;
        Self {
            id: run.id,
            status: match run.status {
                svc::RunStatus::Running => MigrationStatus::Running,
                svc::RunStatus::Done => MigrationStatus::Done,
            },
            started_at: run.started_at,
            finished_at: run.finished_at,
            dry_run: run.id.is_none(),
            from_version: r.from_version,
            to_version: r.to_version,
            tickets: r.tickets,
            moved: r.moved,
            moves: r
                .moves
                .into_iter()
                .map(|((from_state, to_state), count)| StateMove {
                    from_state,
                    to_state,
                    count,
                })
                .collect(),
            blocked_count: r.blocked_count,
            blocked: r
                .blocked
                .into_iter()
                .map(|(ticket_id, key, reason)| BlockedTicket {
                    ticket_id,
                    key,
                    reason,
                })
                .collect(),
            fields_dropped: r.fields_dropped,
        }
    }
}

const ROLES: [Role; 2] = [Role::TenantAdmin, Role::ProcessManager];

/// Moves running tickets from one published version of a template to another with a state
/// and field mapping (`?dry_run=true` first: counts per state, and every ticket that cannot
/// move and why). A run is stored and moves tickets in batches of 200, each batch its own
/// transaction and each ticket with a `migrated` history entry and a `ticket.updated` event;
/// tickets filed after it began are left alone. The request works on the run itself for a
/// few seconds (`STAGEFLOW_MIGRATION_INLINE_SECONDS`): a run finished by then answers 200;
/// otherwise 202 with `status: running`, and the `templates.migrate` job carries it on (also
/// after a restart) — follow it at `Location`.
#[utoipa::path(
    tag = "templates", operation_id = "create_template_migration", security(("bearer" = [])),
    params(("key" = String, Path, description = "The template key"), MigrationParams),
    request_body = CreateMigration,
    responses(
        (status = 200, description = "What moved (the run is done), or would move", body = MigrationResult),
        (status = 202, description = "The run goes on in the background: `GET` its `Location` for progress", body = MigrationResult, headers(("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/templates/{key}/migrations")]
pub async fn create_template_migration(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
    params: web::Query<MigrationParams>,
    body: web::Json<CreateMigration>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&ROLES)?;
    let caller = TicketCaller::of(&principal)?;
    let b = body.into_inner();
    let key = key.into_inner();
    let request = MigrationRequest {
        template: key.clone(),
        from_version: b.from_version,
        to_version: b.to_version,
        states: b.states,
        fields: b.fields,
        dry_run: params.dry_run,
    };
    let (now, s) = (state.clock.now(), state.clone());
    let inline = state.config.migration_inline;
    let run = actix_web::rt::task::spawn_blocking(move || {
        svc::migrate(&s.db, &s.definitions, &caller, &request, now, inline)
    })
    .await
    .map_err(ApiError::internal)??;
    let body = MigrationResult::from(run);
    Ok(match (body.status, body.id) {
        (MigrationStatus::Running, Some(id)) => HttpResponse::Accepted()
            .insert_header((
                header::LOCATION,
                format!("/api/v1/templates/{key}/migrations/{id}"),
            ))
            .json(body),
        _ => HttpResponse::Ok().json(body),
    })
}

/// One migration run of a template: its progress while running, its result once done.
#[utoipa::path(
    tag = "templates", operation_id = "get_template_migration", security(("bearer" = [])),
    params(("key" = String, Path, description = "The template key"),
           ("id" = MigrationId, Path, description = "The run")),
    responses(
        (status = 200, description = "The run", body = MigrationResult),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/templates/{key}/migrations/{id}")]
pub async fn get_template_migration(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, MigrationId)>,
) -> Result<web::Json<MigrationResult>, ApiError> {
    let scope = principal.require(&ROLES)?;
    let (key, id) = path.into_inner();
    let run = state
        .db
        .read(move |conn| svc::find_run(conn, &scope, &key, id))
        .await?;
    Ok(web::Json(run.into()))
}

/// The migration runs of a template, newest first.
#[utoipa::path(
    tag = "templates", operation_id = "list_template_migrations", security(("bearer" = [])),
    params(("key" = String, Path, description = "The template key"), PageParams),
    responses(
        (status = 200, description = "A page of runs", body = Page<MigrationResult>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/templates/{key}/migrations")]
pub async fn list_template_migrations(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<MigrationResult>>, ApiError> {
    let scope = principal.require(&ROLES)?;
    let key = key.into_inner();
    page.parse()?
        .load(
            &state.db,
            move |conn, before, limit| {
                svc::list_runs(conn, &scope, &key, before.map(MigrationId), limit)
            },
            |run| run.id.map_or_else(uuid::Uuid::nil, |id| id.0),
            MigrationResult::from,
        )
        .await
}
