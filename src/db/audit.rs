//! The append-only audit log. Entries are only ever inserted; nothing updates or deletes them
//! (retention will remove old ones in bulk, by age).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::audit_log;
use super::types::{Json, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{AuditEntryId, EntityId, TenantId};

#[derive(Debug, Clone, Queryable)]
pub struct AuditRow {
    pub tenant_id: TenantId,
    pub id: AuditEntryId,
    pub at: Timestamp,
    pub actor_kind: String,
    pub actor_id: Option<EntityId>,
    pub actor_name: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<String>,
    pub details: Json,
    pub client_addr: Option<String>,
}

/// Who did something, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `operator`, `user`, `api_key` or `anonymous` (a failed login).
    pub kind: &'static str,
    pub id: Option<EntityId>,
    pub name: String,
    pub client_addr: Option<String>,
}

impl Actor {
    /// Stageflow itself (background work: SLA announcements, mail intake, alerts, …), named
    /// for the reader of the log.
    pub fn system(name: impl Into<String>) -> Self {
        Self {
            kind: "system",
            id: None,
            name: name.into(),
            client_addr: None,
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub action: &'a str,
    pub target_kind: &'a str,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

pub fn record(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    event: Event<'_>,
    at: Timestamp,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::tenant_id.eq(scope.tenant_id()),
            audit_log::id.eq(AuditEntryId::new_at(at.0)),
            audit_log::at.eq(at),
            audit_log::actor_kind.eq(actor.kind),
            audit_log::actor_id.eq(actor.id),
            audit_log::actor_name.eq(&actor.name),
            audit_log::action.eq(event.action),
            audit_log::target_kind.eq(event.target_kind),
            audit_log::target_id.eq(event.target_id),
            audit_log::details.eq(Json(event.details)),
            audit_log::client_addr.eq(&actor.client_addr),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Default)]
pub struct AuditFilter {
    pub actor_id: Option<EntityId>,
    pub action: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// Entries in id order (ids are time-ordered v7, so this is time order).
pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    filter: &AuditFilter,
    after: Option<AuditEntryId>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table
        .filter(audit_log::tenant_id.eq(scope.tenant_id()))
        .order(audit_log::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(actor) = filter.actor_id {
        query = query.filter(audit_log::actor_id.eq(actor));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_log::at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_log::at.lt(to));
    }
    if let Some(after) = after {
        query = query.filter(audit_log::id.gt(after));
    }
    query.load(conn)
}
