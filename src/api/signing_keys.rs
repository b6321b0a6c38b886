//! Rotation of the access-token signing keys by the platform operator (the same rotation as
//! `stageflow keys rotate`). The public keys themselves are published by `well_known`.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::service::bootstrap;

/// A signing key as the operator sees it: never its private half.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKey {
    /// The key id new access tokens carry in their header.
    pub kid: String,
    /// Always `EdDSA` (Ed25519).
    pub algorithm: String,
    pub created_at: DateTime<Utc>,
}

/// Makes a new signing key the signer. Tokens signed by the earlier keys stay valid until they
/// expire; this node signs with the new key at once, other nodes within a minute.
#[utoipa::path(
    tag = "platform", operation_id = "create_signing_key", security(("bearer" = [])),
    responses(
        (status = 201, description = "The new signer", body = SigningKey),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
    )
)]
#[post("/signing-keys")]
pub async fn create_signing_key(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    let (config, now) = (state.config.clone(), state.clock.now());
    let row = state
        .db
        .write(move |conn| bootstrap::rotate_signing_key_as(conn, &config, &principal, now))
        .await?;
    crate::auth::reload_signing_keys(&state.auth()).await;
    Ok(HttpResponse::Created().json(SigningKey {
        kid: row.kid,
        algorithm: row.algorithm,
        created_at: row.created_at.0,
    }))
}
