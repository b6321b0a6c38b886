//! The audit log: who did what, when, from where. Append-only; there is no endpoint that
//! changes or removes an entry.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::common::{Page, PageParams};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::{Caller, Principal};
use crate::db::audit::{AuditFilter, AuditRow};
use crate::domain::audit::{AuditActorKind, AuditTargetKind};
use crate::domain::identity::Role;
use crate::domain::ids::{AuditEntryId, EntityId};

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActor {
    /// `anonymous` for a failed login.
    pub kind: AuditActorKind,
    pub id: Option<EntityId>,
    /// Username or key name (for a failed login: the name that was tried).
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-5b1e-7c3a-9d41-2f6e8a1b3c4d", "at": "2026-04-01T09:00:00.000000Z",
    "actor": {"kind": "user", "id": "019ac0d2-4a00-7000-8000-000000000002", "name": "admin"},
    "action": "user.roles_changed", "target_kind": "user", "target_id": "019ac0d2-4a00-7000-8000-000000000003",
    "details": {"added": ["tenant_admin"], "removed": [], "roles": ["agent", "tenant_admin"]},
    "client_addr": "192.0.2.10"}))]
pub struct AuditEntry {
    pub id: AuditEntryId,
    pub at: DateTime<Utc>,
    pub actor: AuditActor,
    /// What happened: `login.succeeded`, `login.failed`, `user.locked`, `user.created`,
    /// `user.roles_changed`, `user.deactivated`, `api_key.created`, `tenant.created`, ….
    pub action: String,
    pub target_kind: AuditTargetKind,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub client_addr: Option<String>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = ApiError;

    fn try_from(row: AuditRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: row.id,
            at: row.at.0,
            actor: AuditActor {
                kind: AuditActorKind::from_storage(&row.actor_kind).map_err(ApiError::internal)?,
                id: row.actor_id,
                name: row.actor_name,
            },
            action: row.action,
            target_kind: AuditTargetKind::from_storage(&row.target_kind)
                .map_err(ApiError::internal)?,
            target_id: row.target_id,
            details: row.details.0,
            client_addr: row.client_addr,
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries by this actor id.
    pub actor_id: Option<EntityId>,
    /// Only entries with this action, e.g. `login.failed`.
    pub action: Option<String>,
    /// Only entries at or after this instant (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only entries before this instant (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

/// The audit log in time order. Tenant admins and auditors read their tenant's log; the
/// platform operator reads the platform log (plans, accounts, tenants, operator logins).
#[utoipa::path(
    tag = "audit", operation_id = "list_audit_log", security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of entries", body = Page<AuditEntry>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/audit-log")]
pub async fn list_audit_log(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<AuditParams>,
) -> Result<web::Json<Page<AuditEntry>>, ApiError> {
    if !matches!(principal.caller, Caller::Operator(_)) {
        principal.require(&[Role::TenantAdmin, Role::Auditor])?;
    }
    let scope = principal.audit_scope();
    let params = params.into_inner();
    let request = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .parse()?;
    if params.action.as_ref().is_some_and(|a| a.len() > 100) {
        return Err(ApiError::validation(
            "action",
            "length",
            "must be at most 100 characters",
        ));
    }
    let filter = AuditFilter {
        actor_id: params.actor_id,
        action: params.action,
        from: params.from.map(Into::into),
        to: params.to.map(Into::into),
    };
    request
        .try_load(
            &state.db,
            move |conn, after, limit| {
                crate::service::audit_log::list(
                    conn,
                    &scope,
                    &filter,
                    after.map(AuditEntryId),
                    limit,
                )
            },
            |r| r.id.0,
            AuditEntry::try_from,
        )
        .await
}
