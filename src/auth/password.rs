//! argon2id password hashing, run off the request threads and bounded in concurrency.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::config::Argon2Params;
use crate::error::ApiError;

/// Hashes and verifies passwords with argon2id. Each hash costs `memory_kib` of memory and a
/// core for tens of milliseconds, so at most one hash per core runs at a time: a burst of logins
/// queues here instead of exhausting memory or starving other requests.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    slots: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the account does not exist so
    /// that unknown and known usernames take the same time to refuse.
    decoy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(params: Argon2Params) -> Result<Self, String> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut hasher = Self {
            argon2,
            slots: Arc::new(Semaphore::new(slots)),
            decoy_hash: Arc::from(""),
        };
        let decoy = hasher.hash_blocking(&random_token(24))?;
        hasher.decoy_hash = Arc::from(decoy);
        Ok(hasher)
    }

    /// Hashes on the calling thread; for start-up and other blocking callers.
    pub fn hash_blocking(&self, password: &str) -> Result<String, String> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| e.to_string())
    }

    /// Hashes on the blocking pool.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _slot = self.slots.acquire().await.map_err(ApiError::internal)?;
        let hasher = self.clone();
        actix_web::rt::task::spawn_blocking(move || hasher.hash_blocking(&password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// Verifies `password` against a stored PHC string, or against the decoy when there is no
    /// stored hash (unknown account) — the answer is then always `false`.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let _slot = self.slots.acquire().await.map_err(ApiError::internal)?;
        let hasher = self.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| hasher.decoy_hash.to_string());
            let matches = match PasswordHash::new(&phc) {
                Ok(parsed) => hasher
                    .argon2
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => false,
            };
            known && matches
        })
        .await
        .map_err(ApiError::internal)
    }
}

/// A random URL-safe token of `bytes` random bytes (used for generated secrets and passwords).
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hashes_are_argon2id_and_salted() {
        let hasher = cheap();
        let a = hasher.hash_blocking("correct horse").unwrap();
        let b = hasher.hash_blocking("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_ne!(a, b);
    }

    #[actix_web::test]
    async fn verify_accepts_only_the_right_password() {
        let hasher = cheap();
        let stored = hasher.hash_blocking("correct horse").unwrap();
        assert!(
            hasher
                .verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), Some(stored))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn random_tokens_differ() {
        assert_ne!(random_token(16), random_token(16));
        assert_eq!(random_token(24).len(), 32);
    }
}
