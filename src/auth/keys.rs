//! Signing keys at rest: Ed25519 key pairs whose private half is sealed (XChaCha20-Poly1305,
//! the key id as associated data) under a master key that is never stored in the database.
//! A copy of the database therefore holds public keys and ciphertext only.
//!
//! The master key comes from `STAGEFLOW_MASTER_KEY` or a key file (by default
//! `<data dir>/master.key`, created with mode 0600 on the first start of an empty database).

use std::io::Write as _;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use rand::RngCore;

use super::TenantScope;
use crate::config::{MASTER_KEY_BYTES, MasterKeySource, decode_master_key};
use crate::db::audit::{Actor, Event};
use crate::db::signing_keys::{self, NewSigningKey, SigningKeyRow};
use crate::db::{DbConnection, DbError};

/// The JWS algorithm of every key made here.
pub const ALGORITHM: &str = "EdDSA";
const NONCE_BYTES: usize = 24;

/// Why the signing keys cannot be used. Every variant is a start-up or command error with one
/// line for the operator; none is shown to API clients.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key: {0}")]
    MasterKey(String),
    #[error(
        "the master key cannot decrypt signing key {kid}: it is not the key the signing keys were \
         sealed with (every node must use the same STAGEFLOW_MASTER_KEY or master key file)"
    )]
    WrongMasterKey { kid: String },
    #[error("signing key {kid} is unusable: {reason}")]
    Corrupt { kid: String, reason: String },
    #[error("no signing key is stored")]
    NoSigner,
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<diesel::result::Error> for KeyError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(error.into())
    }
}

/// The key that seals the private signing keys.
#[derive(Clone)]
pub struct MasterKey(XChaCha20Poly1305);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; MASTER_KEY_BYTES]) -> Self {
        Self(XChaCha20Poly1305::new(bytes.into()))
    }

    /// Reads the master key from its configured source. A key file that does not exist is
    /// created (mode 0600, 32 random bytes) only when `may_create` — the database holds no
    /// signing key yet — so that a missing file never silently replaces the real key.
    pub fn load(source: &MasterKeySource, may_create: bool) -> Result<Self, KeyError> {
        match source {
            MasterKeySource::Inline(bytes) => Ok(Self::from_bytes(bytes)),
            MasterKeySource::File { path, .. } if !path.exists() && may_create => {
                create_key_file(path).map(|bytes| Self::from_bytes(&bytes))
            }
            MasterKeySource::File { path, .. } => read_key_file(path).map(|b| Self::from_bytes(&b)),
        }
    }

    /// Seals `plaintext` for the key `kid`: base64 of a random nonce followed by the ciphertext.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: kid.as_bytes(),
        };
        let sealed =
            self.0
                .encrypt(&XNonce::from(nonce), payload)
                .map_err(|_| KeyError::Corrupt {
                    kid: kid.to_owned(),
                    reason: "encryption failed".to_owned(),
                })?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// Opens what [`MasterKey::seal`] made for `kid`; a wrong master key, another key's id or
    /// any changed byte is [`KeyError::WrongMasterKey`].
    pub fn open(&self, kid: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let wrong = || KeyError::WrongMasterKey {
            kid: kid.to_owned(),
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| wrong())?;
        if bytes.len() <= NONCE_BYTES {
            return Err(wrong());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce = <[u8; NONCE_BYTES]>::try_from(nonce).map_err(|_| wrong())?;
        let payload = Payload {
            msg: ciphertext,
            aad: kid.as_bytes(),
        };
        self.0
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| wrong())
    }
}

fn read_key_file(path: &Path) -> Result<[u8; MASTER_KEY_BYTES], KeyError> {
    let shown = path.display();
    check_permissions(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeyError::MasterKey(format!("cannot read {shown}: {e}")))?;
    decode_master_key(&text).map_err(|m| KeyError::MasterKey(format!("{shown} {m}")))
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path)
        .map_err(|e| KeyError::MasterKey(format!("cannot read {}: {e}", path.display())))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::MasterKey(format!(
            "{} is readable by others (mode {mode:o}); allow its owner only: chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

fn create_key_file(path: &Path) -> Result<[u8; MASTER_KEY_BYTES], KeyError> {
    let fail =
        |e: std::io::Error| KeyError::MasterKey(format!("cannot create {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut bytes = [0u8; MASTER_KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(fail)?;
    writeln!(file, "{}", STANDARD.encode(bytes)).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    log::warn!(
        "created the master key {} — back it up: without it no stored signing key can be used",
        path.display()
    );
    Ok(bytes)
}

/// A private key opened for signing: its PKCS#8 DER form (what `jsonwebtoken` takes).
pub struct OpenedKey {
    pub kid: String,
    pub pkcs8_der: Vec<u8>,
}

/// Decrypts the private half of a stored key and checks it matches the stored public half.
pub fn open_private(master: &MasterKey, row: &SigningKeyRow) -> Result<OpenedKey, KeyError> {
    let corrupt = |reason: &str| KeyError::Corrupt {
        kid: row.kid.clone(),
        reason: reason.to_owned(),
    };
    let seed = master.open(&row.kid, &row.private_key)?;
    let seed = <[u8; 32]>::try_from(seed.as_slice()).map_err(|_| corrupt("not 32 bytes"))?;
    let signing = SigningKey::from_bytes(&seed);
    if URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()) != row.public_key {
        return Err(corrupt("the private key does not match the public key"));
    }
    let der = signing
        .to_pkcs8_der()
        .map_err(|_| corrupt("cannot encode"))?;
    Ok(OpenedKey {
        kid: row.kid.clone(),
        pkcs8_der: der.as_bytes().to_vec(),
    })
}

/// A new key pair as a row, not yet stored: the private half already sealed.
pub fn new_key_pair(master: &MasterKey, now: DateTime<Utc>) -> Result<SigningKeyRow, KeyError> {
    let kid = crate::db::types::uuid_v7_at(now).to_string();
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    Ok(SigningKeyRow {
        private_key: master.seal(&kid, &seed)?,
        kid,
        algorithm: ALGORITHM.to_owned(),
        public_key: URL_SAFE_NO_PAD.encode(public),
        created_at: now.into(),
        retired_at: None,
    })
}

/// Makes a new key pair and stores it, sealed; it becomes the signer (the newest current key).
pub fn generate(
    conn: &mut DbConnection,
    master: &MasterKey,
    now: DateTime<Utc>,
) -> Result<SigningKeyRow, KeyError> {
    let row = new_key_pair(master, now)?;
    Ok(signing_keys::insert(
        conn,
        &NewSigningKey {
            kid: &row.kid,
            algorithm: &row.algorithm,
            public_key: &row.public_key,
            private_key: &row.private_key,
            created_at: row.created_at,
        },
    )?)
}

/// Makes sure a signing key exists (first start). Returns whether one was made.
pub fn ensure_signer(
    conn: &mut DbConnection,
    master: &MasterKey,
    now: DateTime<Utc>,
) -> Result<bool, KeyError> {
    if signing_keys::list(conn)?
        .iter()
        .any(|k| k.retired_at.is_none())
    {
        return Ok(false);
    }
    generate(conn, master, now)?;
    Ok(true)
}

/// Makes a new signer and retires the others, which keep verifying for `verify_for` after
/// their retirement; keys retired longer ago than that are deleted. Recorded in the platform
/// audit log as `signing_key.rotated` by `actor`. Run in a transaction.
pub fn rotate(
    conn: &mut DbConnection,
    master: &MasterKey,
    verify_for: chrono::TimeDelta,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<SigningKeyRow, KeyError> {
    // The current signer must open under this master key, or rotating would only hide the
    // mismatch until the next start.
    if let Some(current) = signing_keys::list(conn)?
        .into_iter()
        .find(|k| k.retired_at.is_none())
    {
        open_private(master, &current)?;
    }
    let new = generate(conn, master, now)?;
    let retired = signing_keys::retire_others(conn, &new.kid, now.into())?;
    let pruned = signing_keys::prune(conn, (now - verify_for).into())?;
    let event = Event {
        action: "signing_key.rotated",
        target_kind: "signing_key",
        target_id: Some(new.kid.clone()),
        details: serde_json::json!({"retired": retired, "pruned": pruned}),
    };
    crate::db::audit::record(conn, &TenantScope::platform(), actor, event, now.into())?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; MASTER_KEY_BYTES])
    }

    #[test]
    fn sealed_keys_open_only_with_their_master_key_and_kid() {
        let sealed = master(1).seal("kid-a", b"secret seed").unwrap();
        assert!(!sealed.contains("secret"));
        assert_eq!(master(1).open("kid-a", &sealed).unwrap(), b"secret seed");
        assert!(matches!(
            master(2).open("kid-a", &sealed),
            Err(KeyError::WrongMasterKey { .. })
        ));
        // The kid is associated data: a sealed key moved to another row does not open.
        assert!(master(1).open("kid-b", &sealed).is_err());
        let mut bytes = STANDARD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(master(1).open("kid-a", &STANDARD.encode(bytes)).is_err());
        assert!(master(1).open("kid-a", "not base64!").is_err());
        assert!(master(1).open("kid-a", "AAAA").is_err());
    }

    #[test]
    fn the_same_plaintext_seals_differently_each_time() {
        let key = master(7);
        assert_ne!(key.seal("k", b"x").unwrap(), key.seal("k", b"x").unwrap());
    }

    #[test]
    fn key_files_are_created_private_and_refused_when_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("master.key");
        let source = MasterKeySource::File {
            path: path.clone(),
            default: true,
        };
        assert!(matches!(
            MasterKey::load(&source, false),
            Err(KeyError::MasterKey(_))
        ));
        let created = MasterKey::load(&source, true).unwrap();
        let sealed = created.seal("k", b"x").unwrap();
        let again = MasterKey::load(&source, true).unwrap();
        assert_eq!(again.open("k", &sealed).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = MasterKey::load(&source, false).unwrap_err().to_string();
            assert!(error.contains("readable by others"), "{error}");
        }
    }
}
