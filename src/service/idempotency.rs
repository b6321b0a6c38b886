//! `Idempotency-Key` on creating requests: the first response is stored with the request's
//! fingerprint in the same transaction as the creation, and a repeat with the same key and
//! fingerprint gets it back instead of creating again. Keys are per caller; a stored
//! response replays for `STAGEFLOW_IDEMPOTENCY_RETENTION_HOURS`, then the `idempotency.purge`
//! job deletes it (`service::retention`).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::TenantScope;
use crate::db::audit::Actor;
use crate::db::tickets::IdempotentResponse;
use crate::db::{self, DbConnection};
use crate::service::error::{ConflictKind, ServiceError};

/// A response that can be stored and replayed.
#[derive(Debug, Clone)]
pub struct Replayable {
    pub status: u16,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub body: String,
    /// True when this is a replay of an earlier response.
    pub replayed: bool,
}

impl Replayable {
    /// A 201 with its ETag and Location.
    pub fn created<T: Serialize>(body: &T, version: i64, location: String) -> Self {
        Self {
            status: 201,
            location: Some(location),
            etag: Some(entity_tag(version)),
            body: serde_json::to_string(body).unwrap_or_default(),
            replayed: false,
        }
    }
}

/// The entity tag of a resource version (`"<version>"`). It lives here, with the stored
/// responses that carry it, so a replay and a fresh response hold the same header; the API's
/// ETag helpers use it too.
pub fn entity_tag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The fingerprint of a request body (its canonical JSON, hashed).
pub fn fingerprint<T: Serialize>(body: &T) -> String {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    format!("{:x}", Sha256::digest(&bytes))
}

fn principal_key(actor: &Actor) -> String {
    format!(
        "{}:{}",
        actor.kind,
        actor.id.map(|i| i.0.to_string()).unwrap_or_default()
    )
}

/// Runs `create` unless the key was used before: same fingerprint → the stored response;
/// another fingerprint → 422. Without a key, just runs `create`.
pub fn run(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    key: Option<&str>,
    fingerprint: &str,
    (now, retention): (DateTime<Utc>, std::time::Duration),
    create: impl FnOnce(&mut DbConnection) -> Result<Replayable, ServiceError>,
) -> Result<Replayable, ServiceError> {
    let Some(key) = key else {
        return create(conn);
    };
    let principal = principal_key(actor);
    let fresh_after = Duration::from_std(retention)
        .ok()
        .and_then(|r| now.checked_sub_signed(r))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    if let Some(stored) = db::tickets::find_idempotent(conn, scope, &principal, key)?
        && stored.created_at.0 >= fresh_after
    {
        if stored.request_hash != fingerprint {
            return Err(ServiceError::validation(
                "Idempotency-Key",
                "reused",
                "this key was used with a different request body",
            ));
        }
        return Ok(Replayable {
            status: u16::try_from(stored.status).unwrap_or(200),
            location: stored.location,
            etag: stored.etag,
            body: stored.body,
            replayed: true,
        });
    }
    // Only an expired response is replaced (deleting whatever is there could remove one that
    // a concurrent request has just committed).
    db::tickets::delete_idempotent(conn, scope, &principal, key, fresh_after.into())?;
    let response = create(conn)?;
    let stored = db::tickets::insert_idempotent(
        conn,
        scope,
        &IdempotentResponse {
            tenant_id: scope.tenant_id(),
            principal,
            key: key.to_owned(),
            request_hash: fingerprint.to_owned(),
            status: i32::from(response.status),
            location: response.location.clone(),
            etag: response.etag.clone(),
            body: response.body.clone(),
            created_at: now.into(),
        },
    );
    match stored {
        Ok(()) => Ok(response),
        // Another request with this key committed first (PostgreSQL: both passed the lookup
        // concurrently). This one's work is rolled back; the client retries and gets the
        // stored response.
        Err(e) if db::is_unique_violation(&e) => Err(ServiceError::Conflict {
            kind: ConflictKind::IdempotencyKeyInUse,
            detail: "A request with this Idempotency-Key was being processed at the same time; \
                     nothing was done by this one. Retry to get its response."
                .to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}
