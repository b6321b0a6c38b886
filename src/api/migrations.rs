//! Moving running tickets to another template version. docs/process-guide.md, "Moving
//! tickets to a new version".

use std::collections::BTreeMap;

use actix_web::{post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::domain::identity::Role;
use crate::domain::ids::TicketId;
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

/// What a migration did, or (dry run) would do.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"dry_run": true, "from_version": 1, "to_version": 2, "tickets": 120,
    "moved": 118, "moves": [{"from_state": "new", "to_state": "new", "count": 100},
        {"from_state": "on_hold", "to_state": "waiting", "count": 18}],
    "blocked_count": 2, "blocked": [{"ticket_id": "019ac0d2-4a00-7000-8000-0000000000a1", "key": "INC-7",
        "reason": "state `escalated` has no counterpart in version 2: map it in `states`"}],
    "fields_dropped": ["legacy_code"]}))]
pub struct MigrationResult {
    pub dry_run: bool,
    pub from_version: i32,
    pub to_version: i32,
    /// Tickets on the old version filed before the run began.
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

/// Moves running tickets from one published version of a template to another with a state
/// and field mapping (`?dry_run=true` first: counts per state, and every ticket that cannot
/// move and why). The run moves tickets in batches of 200, each batch its own transaction and
/// each ticket with a `migrated` history entry and a `ticket.updated` event; tickets filed
/// after it began are left alone. Running it again carries on where it stopped.
#[utoipa::path(
    tag = "templates", operation_id = "create_template_migration", security(("bearer" = [])),
    params(("key" = String, Path, description = "The template key"), MigrationParams),
    request_body = CreateMigration,
    responses(
        (status = 200, description = "What moved, or would move", body = MigrationResult),
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
) -> Result<web::Json<MigrationResult>, ApiError> {
    principal.require(&[Role::TenantAdmin, Role::ProcessManager])?;
    let caller = TicketCaller::of(&principal)?;
    let b = body.into_inner();
    let dry_run = params.dry_run;
    let request = MigrationRequest {
        template: key.into_inner(),
        from_version: b.from_version,
        to_version: b.to_version,
        states: b.states,
        fields: b.fields,
        dry_run,
    };
    let (now, s) = (state.clock.now(), state.clone());
    let result = actix_web::rt::task::spawn_blocking(move || {
        svc::migrate(&s.db, &s.definitions, &caller, &request, now)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(web::Json(MigrationResult {
        dry_run,
        from_version: result.from_version,
        to_version: result.to_version,
        tickets: result.tickets,
        moved: result.moved,
        moves: result
            .moves
            .into_iter()
            .map(|((from_state, to_state), count)| StateMove {
                from_state,
                to_state,
                count,
            })
            .collect(),
        blocked_count: result.blocked_count,
        blocked: result
            .blocked
            .into_iter()
            .map(|(ticket_id, key, reason)| BlockedTicket {
                ticket_id,
                key,
                reason,
            })
            .collect(),
        fields_dropped: result.fields_dropped,
    }))
}
