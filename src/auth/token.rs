//! Access tokens: HS256 JWTs with issuer, audience, subject, tenant and roles.
//!
//! Expiry is checked against the injected clock, not the system time, so tests move time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ISSUER: &str = "stageflow";
pub const AUDIENCE: &str = "stageflow-api";

/// What kind of account a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Operator,
    User,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub kind: SubjectKind,
    /// The tenant of a tenant user; absent for the platform operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// Signs and checks access tokens with one shared secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

/// A freshly issued access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked in `verify` against the injected clock.
        validation.validate_exp = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn issue(
        &self,
        kind: SubjectKind,
        subject: Uuid,
        tenant: Option<Uuid>,
        roles: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: subject,
            kind,
            tid: tenant,
            roles,
            iat: now.timestamp(),
            exp: now.timestamp().saturating_add(ttl),
            jti: crate::db::types::uuid_v7_at(now),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken {
            token,
            expires_in: self.ttl.as_secs(),
        })
    }

    /// The claims of a token that is well-formed, HS256-signed with our secret, for our issuer
    /// and audience, and not expired at `now`. Every other token yields `None`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.exp > now.timestamp()).then_some(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use chrono::TimeDelta;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET, Duration::from_secs(900))
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-04-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn issue(keys: &TokenKeys) -> String {
        keys.issue(SubjectKind::Operator, Uuid::nil(), None, vec![], now())
            .unwrap()
            .token
    }

    #[test]
    fn round_trip_until_expiry() {
        let keys = keys();
        let token = issue(&keys);
        let claims = keys.verify(&token, now()).unwrap();
        assert_eq!(claims.kind, SubjectKind::Operator);
        assert!(
            keys.verify(&token, now() + TimeDelta::seconds(899))
                .is_some()
        );
        assert!(
            keys.verify(&token, now() + TimeDelta::seconds(900))
                .is_none()
        );
    }

    #[test]
    fn foreign_secret_and_tampering_are_refused() {
        let token = issue(&keys());
        let other = TokenKeys::new(
            b"another-secret-another-secret-xx",
            Duration::from_secs(900),
        );
        assert!(other.verify(&token, now()).is_none());
        // Change the first signature character (the last one may carry only padding bits).
        let signature_start = token.rfind('.').unwrap() + 1;
        let mut tampered = token.clone().into_bytes();
        tampered[signature_start] = if tampered[signature_start] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(keys().verify(&tampered, now()).is_none());
    }

    #[test]
    fn alg_none_is_refused() {
        let token = issue(&keys());
        let payload = token.split('.').nth(1).unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(
            keys()
                .verify(&format!("{header}.{payload}."), now())
                .is_none()
        );
    }

    #[test]
    fn other_audience_is_refused() {
        let claims = serde_json::json!({
            "iss": ISSUER, "aud": "someone-else", "sub": Uuid::nil(), "kind": "operator",
            "iat": now().timestamp(), "exp": now().timestamp() + 60, "jti": Uuid::nil()
        });
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(keys().verify(&token, now()).is_none());
    }
}
