//! `/.well-known/jwks.json`: the public keys that verify access tokens (RFC 7517, with the
//! Ed25519 key type of RFC 8037), so integrations can check tokens offline. No authentication.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::state::AppState;

/// How long clients may cache the key set. A client meeting a token with an unknown `kid`
/// should fetch the set again: a rotation publishes the new key before it signs with it on
/// other nodes only within a minute, and this node publishes it at once.
const MAX_AGE_SECONDS: u32 = 300;

crate::domain::closed_set::closed_set! {
    /// The JWK key type: octet key pair (RFC 8037).
    pub enum JwkKeyType {
        Okp = "OKP",
    }
}

crate::domain::closed_set::closed_set! {
    pub enum JwkCurve {
        Ed25519 = "Ed25519",
    }
}

crate::domain::closed_set::closed_set! {
    pub enum JwkAlgorithm {
        EdDsa = "EdDSA",
    }
}

crate::domain::closed_set::closed_set! {
    pub enum JwkUse {
        /// Signature verification.
        Sig = "sig",
    }
}

/// One public signing key.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"kty": "OKP", "crv": "Ed25519",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    "kid": "019a5f1e-7c2b-7000-8000-000000000000", "alg": "EdDSA", "use": "sig"}))]
pub struct JsonWebKey {
    pub kty: JwkKeyType,
    pub crv: JwkCurve,
    /// The public key, base64url without padding.
    pub x: String,
    /// The key id that tokens signed with this key carry in their header.
    pub kid: String,
    pub alg: JwkAlgorithm,
    #[serde(rename = "use")]
    pub use_: JwkUse,
}

/// The keys that verify access tokens now: the signer, and retired keys until every token
/// they signed has expired.
#[derive(Debug, Serialize, ToSchema)]
pub struct JsonWebKeySet {
    pub keys: Vec<JsonWebKey>,
}

/// The public keys that verify access tokens (JWKS).
#[utoipa::path(
    tag = "auth",
    operation_id = "get_jwks",
    security(),
    responses((status = 200, description = "The key set; cacheable for a few minutes", body = JsonWebKeySet))
)]
#[get("/.well-known/jwks.json")]
pub async fn get_jwks(state: web::Data<AppState>) -> HttpResponse {
    let keys = state
        .tokens
        .public_keys(state.clock.now())
        .into_iter()
        .map(|key| JsonWebKey {
            kty: JwkKeyType::Okp,
            crv: JwkCurve::Ed25519,
            x: key.x,
            kid: key.kid,
            alg: JwkAlgorithm::EdDsa,
            use_: JwkUse::Sig,
        })
        .collect();
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            format!("public, max-age={MAX_AGE_SECONDS}"),
        ))
        .json(JsonWebKeySet { keys })
}
