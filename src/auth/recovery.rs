//! Recovering the platform operator's access from the command line (someone with the database
//! and the configuration, not a signed-in principal): it writes the platform's own rows, so it
//! lives here, where the platform scope can be named.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::TenantScope;
use crate::db::audit::{Actor, Event};
use crate::db::{self, DbConnection, DbError};
use crate::domain::ids::{EntityId, OperatorId};

/// Sets the operator's password hash, clears its lock-out, revokes its refresh tokens and
/// records `operator.password_reset` in the platform audit log. `None` when no operator has
/// this (canonical) username. Run in a transaction.
pub fn reset_operator_password(
    conn: &mut DbConnection,
    username: &str,
    password_hash: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<OperatorId>, DbError> {
    let Some(operator) = db::operators::find_by_username(conn, username)? else {
        return Ok(None);
    };
    db::operators::reset_password(conn, operator.id, password_hash, now.into())?;
    let scope = TenantScope::platform();
    let subject = EntityId(operator.id.0);
    let revoked = db::credentials::revoke_subject(conn, &scope, subject, now.into())?;
    let event = Event {
        action: "operator.password_reset",
        target_kind: "operator",
        target_id: Some(operator.id.to_string()),
        details: json!({
            "revoked_refresh_tokens": revoked,
            "was_locked": operator.locked_until.is_some_and(|until| until.0 > now),
        }),
    };
    db::audit::record(conn, &scope, actor, event, now.into())?;
    Ok(Some(operator.id))
}
