//! Webhook signatures as the Standard Webhooks specification defines them
//! (<https://www.standardwebhooks.com>), so receivers verify us with an existing library.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}` (the raw body bytes); the
//! `webhook-signature` header holds `v1,<base64 HMAC-SHA256>`, one per secret, space-separated:
//! during a rotation's overlap window both the old and the new secret sign, and a receiver that
//! knows either one accepts the message. Pure: the secret's random bytes and the timestamp come
//! from the caller.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the message id (our event id: stable across retries, for deduplication).
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the signing time in whole seconds since the Unix epoch.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

const PREFIX: &str = "whsec_";
/// The specification asks for secrets between 24 and 64 bytes; we generate 32.
const MIN_BYTES: usize = 24;
const MAX_BYTES: usize = 64;

/// A subscription's signing secret. Its text form `whsec_<base64>` is what the admin sees once
/// and what receivers' libraries take; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

/// Why a text is not a webhook secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with \"whsec_\"")]
    Prefix,
    #[error("a webhook secret is base64 after \"whsec_\"")]
    Encoding,
    #[error("a webhook secret holds 24 to 64 bytes")]
    Length,
}

impl WebhookSecret {
    /// A new secret from 32 random bytes drawn by the caller (the domain has no randomness).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes.to_vec())
    }

    /// A secret from its text form; anything but `whsec_` + standard base64 of 24–64 bytes is
    /// refused.
    pub fn parse(raw: &str) -> Result<Self, SecretError> {
        let encoded = raw.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::Encoding)?;
        if !(MIN_BYTES..=MAX_BYTES).contains(&bytes.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self(bytes))
    }

    /// The text form, `whsec_<base64>`.
    pub fn render(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The raw key bytes (what is sealed at rest and keys the HMAC).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// One `v1,<base64>` signature of the message.
    fn signature(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length, so this cannot fail; an empty tag would never verify.
        let tag = Hmac::<Sha256>::new_from_slice(&self.0)
            .map(|mut mac| {
                mac.update(msg_id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                mac.finalize().into_bytes().to_vec()
            })
            .unwrap_or_default();
        format!("v1,{}", STANDARD.encode(tag))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// The `webhook-signature` header value: one `v1,<base64 HMAC-SHA256>` per secret, in the
/// order given, separated by single spaces.
pub fn sign(secrets: &[&WebhookSecret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| secret.signature(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use standardwebhooks::Webhook;

    /// The vector from the specification's reference libraries (svix / standardwebhooks).
    const SPEC_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SPEC_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SPEC_TIMESTAMP: i64 = 1_649_367_553;
    const SPEC_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SPEC_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn headers(id: &str, timestamp: i64, signature: &str) -> reqwest::header::HeaderMap {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(HEADER_ID, id.parse().unwrap());
        headers.insert(HEADER_TIMESTAMP, timestamp.to_string().parse().unwrap());
        headers.insert(HEADER_SIGNATURE, signature.parse().unwrap());
        headers
    }

    #[test]
    fn the_specification_vector_is_reproduced() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            sign(&[&secret], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn secrets_round_trip_and_bad_text_is_refused() {
        let secret = WebhookSecret::from_bytes([7; 32]);
        let text = secret.render();
        assert!(text.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&text).unwrap(), secret);
        assert_eq!(secret.as_bytes(), &[7; 32]);
        assert_eq!(format!("{secret:?}"), "WebhookSecret(…)");
        assert_eq!(
            WebhookSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError::Prefix)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!"),
            Err(SecretError::Encoding)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ="),
            Err(SecretError::Length)
        );
        let too_long = format!("whsec_{}", STANDARD.encode([1u8; 65]));
        assert_eq!(WebhookSecret::parse(&too_long), Err(SecretError::Length));
    }

    #[test]
    fn the_reference_verifier_accepts_our_header_and_refuses_a_tampered_body() {
        let secret = WebhookSecret::from_bytes([42; 32]);
        let timestamp = now();
        let body = br#"{"type":"ticket.created","data":{"id":"x"}}"#;
        let signature = sign(&[&secret], "evt_1", timestamp, body);
        let verifier = Webhook::new(&secret.render()).unwrap();
        let headers = headers("evt_1", timestamp, &signature);
        verifier.verify(body, &headers).unwrap();
        let tampered = br#"{"type":"ticket.created","data":{"id":"y"}}"#;
        assert!(verifier.verify(tampered, &headers).is_err());
        let other_id = self::headers("evt_2", timestamp, &signature);
        assert!(verifier.verify(body, &other_id).is_err());
    }

    #[test]
    fn during_rotation_both_secrets_verify() {
        let old = WebhookSecret::from_bytes([1; 32]);
        let new = WebhookSecret::from_bytes([2; 32]);
        let timestamp = now();
        let body = b"{}";
        let signature = sign(&[&new, &old], "evt_9", timestamp, body);
        assert_eq!(signature.split(' ').count(), 2);
        let headers = headers("evt_9", timestamp, &signature);
        for secret in [&old, &new] {
            Webhook::new(&secret.render())
                .unwrap()
                .verify(body, &headers)
                .unwrap();
        }
        let stranger = WebhookSecret::from_bytes([3; 32]);
        assert!(
            Webhook::new(&stranger.render())
                .unwrap()
                .verify(body, &headers)
                .is_err()
        );
    }
}
