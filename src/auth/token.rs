//! Access tokens: EdDSA (Ed25519) JWTs with issuer, audience, subject, tenant and roles, each
//! naming its signing key in the `kid` header.
//!
//! The key ring is the signer (the newest current key, its private half opened with the
//! master key) and every public key still allowed to verify: current keys, and retired keys
//! until no token they signed can still be valid ([`verify_window`]). Rotation happens in the
//! database (`stageflow keys rotate`); a node loads the ring again periodically and when a
//! token names a key it does not know. Expiry is checked against the injected clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::{self, KeyError, MasterKey};
use crate::db::signing_keys::SigningKeyRow;

pub const ISSUER: &str = "stageflow";
pub const AUDIENCE: &str = "stageflow-api";

/// How often a node reloads its key ring to pick up a rotation made elsewhere.
pub const RELOAD_PERIOD: TimeDelta = TimeDelta::seconds(60);
/// The shortest time between two reloads caused by unknown key ids (forged tokens must not
/// turn into a database read each).
pub const UNKNOWN_KID_RELOAD_GAP: TimeDelta = TimeDelta::seconds(5);

/// How long a retired key keeps verifying: the access-token lifetime, plus one reload period
/// (a node may sign with it that long after the rotation) and a minute of clock skew.
pub fn verify_window(ttl: Duration) -> TimeDelta {
    TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX) + RELOAD_PERIOD + TimeDelta::minutes(1)
}

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

/// A freshly issued access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
}

/// The outcome of checking a token.
#[derive(Debug)]
pub enum Verification {
    Valid(Claims),
    /// Well-formed EdDSA token naming a key this node does not know (yet): worth a reload.
    UnknownKey,
    Invalid,
}

/// A public key as published in the JWKS (`x` is base64url, RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub x: String,
}

struct Verifier {
    public: PublicKey,
    decoding: DecodingKey,
    /// `None` while the key is current.
    valid_until: Option<DateTime<Utc>>,
}

struct KeyRing {
    signer_kid: String,
    encoding: EncodingKey,
    verifiers: Vec<Verifier>,
}

/// Signs and checks access tokens with the key ring loaded from the database.
pub struct TokenKeys {
    master: MasterKey,
    validation: Validation,
    ttl: Duration,
    ring: RwLock<Arc<KeyRing>>,
    /// When the ring was last loaded (unix seconds of the injected clock).
    loaded_at: AtomicI64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("signer", &self.signer_kid())
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// The master key (it also seals webhook secrets).
    pub fn master(&self) -> &MasterKey {
        &self.master
    }
}

impl TokenKeys {
    /// The ring made from the stored keys; fails when no current key is stored or the master
    /// key cannot open the signer.
    pub fn new(
        master: MasterKey,
        ttl: Duration,
        rows: &[SigningKeyRow],
        now: DateTime<Utc>,
    ) -> Result<Self, KeyError> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked in `verify` against the injected clock.
        validation.validate_exp = false;
        let ring = build_ring(&master, ttl, rows, now)?;
        Ok(Self {
            master,
            validation,
            ttl,
            ring: RwLock::new(Arc::new(ring)),
            loaded_at: AtomicI64::new(now.timestamp()),
        })
    }

    fn ring(&self) -> Arc<KeyRing> {
        self.ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The id of the key new tokens are signed with.
    pub fn signer_kid(&self) -> String {
        self.ring().signer_kid.clone()
    }

    /// Replaces the ring with one made from `rows` (as read from the database at `now`).
    pub fn install(&self, rows: &[SigningKeyRow], now: DateTime<Utc>) -> Result<(), KeyError> {
        let ring = build_ring(&self.master, self.ttl, rows, now)?;
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
        Ok(())
    }

    /// Whether a reload is due at `now` when at least `gap` must separate two reloads; claims
    /// it, so that of concurrent callers only one reloads.
    pub fn claim_reload(&self, now: DateTime<Utc>, gap: TimeDelta) -> bool {
        let last = self.loaded_at.load(Ordering::Acquire);
        now.timestamp() - last >= gap.num_seconds()
            && self
                .loaded_at
                .compare_exchange(last, now.timestamp(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
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
        let ring = self.ring();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(ring.signer_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &ring.encoding)?;
        Ok(IssuedToken {
            token,
            expires_in: self.ttl.as_secs(),
        })
    }

    /// Checks a token: EdDSA only, signed by a key of the ring that still verifies at `now`,
    /// for our issuer and audience, and not expired at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Verification {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Verification::Invalid;
        };
        let (Algorithm::EdDSA, Some(kid)) = (header.alg, header.kid) else {
            return Verification::Invalid;
        };
        let ring = self.ring();
        let Some(verifier) = ring.verifiers.iter().find(|v| v.public.kid == kid) else {
            return Verification::UnknownKey;
        };
        if verifier.valid_until.is_some_and(|until| until <= now) {
            return Verification::Invalid;
        }
        match jsonwebtoken::decode::<Claims>(token, &verifier.decoding, &self.validation) {
            Ok(data) if data.claims.exp > now.timestamp() => Verification::Valid(data.claims),
            _ => Verification::Invalid,
        }
    }

    /// The public keys that verify at `now`, newest first (for the JWKS).
    pub fn public_keys(&self, now: DateTime<Utc>) -> Vec<PublicKey> {
        self.ring()
            .verifiers
            .iter()
            .filter(|v| v.valid_until.is_none_or(|until| until > now))
            .map(|v| v.public.clone())
            .collect()
    }
}

/// `rows` newest first, as `db::signing_keys::list` reads them.
fn build_ring(
    master: &MasterKey,
    ttl: Duration,
    rows: &[SigningKeyRow],
    now: DateTime<Utc>,
) -> Result<KeyRing, KeyError> {
    let signer = rows
        .iter()
        .filter(|r| r.retired_at.is_none())
        .max_by(|a, b| (a.created_at.0, &a.kid).cmp(&(b.created_at.0, &b.kid)))
        .ok_or(KeyError::NoSigner)?;
    let opened = keys::open_private(master, signer)?;
    let window = verify_window(ttl);
    let verifiers = rows
        .iter()
        .filter(|r| r.algorithm == keys::ALGORITHM)
        .map(|r| (r, r.retired_at.map(|at| at.0 + window)))
        .filter(|(_, until)| until.is_none_or(|until| until > now))
        .filter_map(|(r, valid_until)| {
            let decoding = DecodingKey::from_ed_components(&r.public_key).ok()?;
            Some(Verifier {
                public: PublicKey {
                    kid: r.kid.clone(),
                    x: r.public_key.clone(),
                },
                decoding,
                valid_until,
            })
        })
        .collect();
    Ok(KeyRing {
        signer_kid: opened.kid,
        encoding: EncodingKey::from_ed_der(&opened.pkcs8_der),
        verifiers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const TTL: Duration = Duration::from_secs(900);

    fn master() -> MasterKey {
        MasterKey::from_bytes(&[9; 32])
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-04-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn row(at: DateTime<Utc>) -> SigningKeyRow {
        keys::new_key_pair(&master(), at).unwrap()
    }

    fn issue(keys: &TokenKeys, at: DateTime<Utc>) -> String {
        keys.issue(SubjectKind::Operator, Uuid::nil(), None, vec![], at)
            .unwrap()
            .token
    }

    fn valid(v: Verification) -> bool {
        matches!(v, Verification::Valid(_))
    }

    #[test]
    fn round_trip_until_expiry_with_the_kid_in_the_header() {
        let first = row(now());
        let keys = TokenKeys::new(master(), TTL, std::slice::from_ref(&first), now()).unwrap();
        let token = issue(&keys, now());
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(first.kid.as_str()));
        assert!(valid(keys.verify(&token, now())));
        assert!(valid(keys.verify(&token, now() + TimeDelta::seconds(899))));
        assert!(matches!(
            keys.verify(&token, now() + TimeDelta::seconds(900)),
            Verification::Invalid
        ));
    }

    #[test]
    fn a_retired_key_verifies_for_its_window_and_is_then_dropped() {
        let old = row(now());
        let keys = TokenKeys::new(master(), TTL, std::slice::from_ref(&old), now()).unwrap();
        let token = issue(&keys, now());
        let later = now() + TimeDelta::seconds(10);
        let mut retired = old.clone();
        retired.retired_at = Some(later.into());
        let new = row(later);
        keys.install(&[new.clone(), retired.clone()], later)
            .unwrap();
        assert_eq!(keys.signer_kid(), new.kid);
        assert!(valid(keys.verify(&token, later)));
        assert_eq!(keys.public_keys(later).len(), 2);
        let gone = later + verify_window(TTL);
        assert_eq!(
            keys.public_keys(gone),
            vec![PublicKey {
                kid: new.kid.clone(),
                x: new.public_key.clone()
            }]
        );
        // A token naming a key the ring never had asks for a reload.
        let other = TokenKeys::new(master(), TTL, &[row(now())], now()).unwrap();
        assert!(matches!(
            keys.verify(&issue(&other, later), later),
            Verification::UnknownKey
        ));
    }

    #[test]
    fn another_master_key_cannot_open_the_signer() {
        let stored = row(now());
        let error =
            TokenKeys::new(MasterKey::from_bytes(&[1; 32]), TTL, &[stored], now()).unwrap_err();
        assert!(matches!(error, KeyError::WrongMasterKey { .. }));
        assert!(matches!(
            TokenKeys::new(master(), TTL, &[], now()),
            Err(KeyError::NoSigner)
        ));
    }

    #[test]
    fn hmac_none_and_tampered_tokens_are_refused() {
        let stored = row(now());
        let keys = TokenKeys::new(master(), TTL, std::slice::from_ref(&stored), now()).unwrap();
        let token = issue(&keys, now());
        let payload = token.split('.').nth(1).unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(matches!(
            keys.verify(&format!("{none}.{payload}."), now()),
            Verification::Invalid
        ));
        let claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(stored.kid.clone());
        // HS256 keyed with the public key (the classic algorithm confusion) is refused.
        let confused = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(stored.public_key.as_bytes()),
        )
        .unwrap();
        assert!(matches!(
            keys.verify(&confused, now()),
            Verification::Invalid
        ));
        let signature_start = token.rfind('.').unwrap() + 1;
        let mut tampered = token.into_bytes();
        tampered[signature_start] = if tampered[signature_start] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(
            keys.verify(&tampered, now()),
            Verification::Invalid
        ));
    }

    #[test]
    fn reloads_are_claimed_once_per_gap() {
        let keys = TokenKeys::new(master(), TTL, &[row(now())], now()).unwrap();
        assert!(!keys.claim_reload(now(), RELOAD_PERIOD));
        let later = now() + RELOAD_PERIOD;
        assert!(keys.claim_reload(later, RELOAD_PERIOD));
        assert!(!keys.claim_reload(later, RELOAD_PERIOD));
    }
}
