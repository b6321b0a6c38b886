//! Notification rules and the kinds of notification users opted out of.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{notification_opt_outs, notification_rules};
use super::types::{Json, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{NotificationRuleId, TenantId, UserId};

#[derive(Debug, Clone, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = notification_rules, treat_none_as_null = true)]
pub struct RuleRow {
    pub tenant_id: TenantId,
    pub id: NotificationRuleId,
    pub template: String,
    pub event: String,
    pub to_state: Option<String>,
    pub recipients: Json,
    pub addresses: Json,
    pub language: String,
    pub description: String,
    pub enabled: bool,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn insert(conn: &mut DbConnection, scope: &TenantScope, row: &RuleRow) -> QueryResult<()> {
    super::of_scope(scope, row.tenant_id)?;
    diesel::insert_into(notification_rules::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: NotificationRuleId,
) -> QueryResult<Option<RuleRow>> {
    notification_rules::table
        .filter(notification_rules::tenant_id.eq(scope.tenant_id()))
        .filter(notification_rules::id.eq(id))
        .first(conn)
        .optional()
}

/// A page of the tenant's rules in id order, optionally of one template.
pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: Option<&str>,
    after: Option<NotificationRuleId>,
    limit: i64,
) -> QueryResult<Vec<RuleRow>> {
    let mut query = notification_rules::table
        .filter(notification_rules::tenant_id.eq(scope.tenant_id()))
        .order(notification_rules::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(template) = template {
        query = query.filter(notification_rules::template.eq(template.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(notification_rules::id.gt(after));
    }
    query.load(conn)
}

pub fn count(conn: &mut DbConnection, scope: &TenantScope) -> QueryResult<i64> {
    notification_rules::table
        .filter(notification_rules::tenant_id.eq(scope.tenant_id()))
        .count()
        .get_result(conn)
}

/// The enabled rules of a template for one event kind (looked up for every ticket event).
pub fn matching(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: &str,
    event: &str,
) -> QueryResult<Vec<RuleRow>> {
    notification_rules::table
        .filter(notification_rules::tenant_id.eq(scope.tenant_id()))
        .filter(notification_rules::template.eq(template))
        .filter(notification_rules::event.eq(event))
        .filter(notification_rules::enabled.eq(true))
        .order(notification_rules::id.asc())
        .load(conn)
}

/// Replaces a rule's row (its id and tenant stay).
pub fn update(conn: &mut DbConnection, scope: &TenantScope, row: &RuleRow) -> QueryResult<()> {
    diesel::update(
        notification_rules::table
            .filter(notification_rules::tenant_id.eq(scope.tenant_id()))
            .filter(notification_rules::id.eq(row.id)),
    )
    .set(row)
    .execute(conn)?;
    Ok(())
}

pub fn delete(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: NotificationRuleId,
) -> QueryResult<bool> {
    let n = diesel::delete(
        notification_rules::table
            .filter(notification_rules::tenant_id.eq(scope.tenant_id()))
            .filter(notification_rules::id.eq(id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// The kinds a user opted out of, sorted.
pub fn opt_outs(
    conn: &mut DbConnection,
    scope: &TenantScope,
    user: UserId,
) -> QueryResult<Vec<String>> {
    notification_opt_outs::table
        .filter(notification_opt_outs::tenant_id.eq(scope.tenant_id()))
        .filter(notification_opt_outs::user_id.eq(user))
        .select(notification_opt_outs::kind)
        .order(notification_opt_outs::kind.asc())
        .load(conn)
}

/// Replaces a user's opt-outs.
pub fn set_opt_outs(
    conn: &mut DbConnection,
    scope: &TenantScope,
    user: UserId,
    kinds: &[&str],
) -> QueryResult<()> {
    diesel::delete(
        notification_opt_outs::table
            .filter(notification_opt_outs::tenant_id.eq(scope.tenant_id()))
            .filter(notification_opt_outs::user_id.eq(user)),
    )
    .execute(conn)?;
    for kind in kinds {
        diesel::insert_into(notification_opt_outs::table)
            .values((
                notification_opt_outs::tenant_id.eq(scope.tenant_id()),
                notification_opt_outs::user_id.eq(user),
                notification_opt_outs::kind.eq(*kind),
            ))
            .execute(conn)?;
    }
    Ok(())
}
