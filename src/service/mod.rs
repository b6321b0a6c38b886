//! Application services: each public function is one use case. It takes parsed input, makes the
//! domain decisions, and performs the database work in one transaction together with its audit
//! entry. Handlers call exactly one of these; these never see HTTP.

pub mod alerts;
pub mod announcements;
pub mod audit_log;
pub mod backup;
pub mod bootstrap;
pub mod definitions;
pub mod directory;
pub mod error;
pub mod events;
pub mod fields;
pub mod health;
pub mod idempotency;
pub mod imports;
pub mod libraries;
pub mod mail;
pub mod masters;
pub mod notifications;
pub mod operators;
pub mod platform;
pub mod reports;
pub mod retention;
pub mod sla;
pub mod stats;
pub mod template_items;
pub mod templates;
pub mod tenant_export;
pub mod tickets;
pub mod webhooks;

use crate::auth::TenantScope;
use crate::db::audit::{Actor, Event};
use crate::db::types::Timestamp;
use crate::db::{self, DbConnection};
use crate::service::error::ServiceError;

/// Records one audit entry inside the caller's transaction.
pub(crate) fn audit(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    action: &str,
    (target_kind, target_id): (&str, impl ToString),
    details: serde_json::Value,
    at: Timestamp,
) -> Result<(), ServiceError> {
    db::audit::record(
        conn,
        scope,
        actor,
        Event {
            action,
            target_kind,
            target_id: Some(target_id.to_string()),
            details,
        },
        at,
    )?;
    Ok(())
}

/// Maps a unique-key violation to a 409 naming what is taken.
pub(crate) fn unique_or(error: diesel::result::Error, what: &str) -> ServiceError {
    if db::is_unique_violation(&error) {
        ServiceError::duplicate(format!("{what} is already taken."))
    } else {
        error.into()
    }
}

/// Runs `run` in a savepoint and rolls it back whatever the result (dry runs: a transition's,
/// an import's).
pub(crate) fn rolled_back<T>(
    conn: &mut DbConnection,
    run: impl FnOnce(&mut DbConnection) -> Result<T, ServiceError>,
) -> Result<T, ServiceError> {
    enum Undo<T> {
        Done(Box<T>),
        Failed(ServiceError),
    }
    impl<T> From<diesel::result::Error> for Undo<T> {
        fn from(e: diesel::result::Error) -> Self {
            Undo::Failed(e.into())
        }
    }
    let result = diesel::Connection::transaction::<(), Undo<T>, _>(conn, |c| {
        Err(match run(c) {
            Ok(done) => Undo::Done(Box::new(done)),
            Err(e) => Undo::Failed(e),
        })
    });
    match result {
        Err(Undo::Done(done)) => Ok(*done),
        Err(Undo::Failed(e)) => Err(e),
        Ok(()) => Err(ServiceError::Internal("dry run committed".to_owned())),
    }
}
