//! argon2id password hashing, run off the request threads on a small pool of its own.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::oneshot;

use crate::config::Argon2Params;
use crate::error::ApiError;

/// Hashes and verifies passwords with argon2id. Each hash costs `memory_kib` of memory and a
/// core for tens of milliseconds, so hashes run on a pool of one thread per core: a burst of
/// logins queues there instead of starving other requests. The pool is dedicated (not the
/// shared blocking pool) because the allocator keeps each thread's freed 19 MiB block for that
/// thread: on hundreds of blocking threads that grew the server past 1.7 GB under a login
/// burst (docs/PERFORMANCE.md); on one thread per core it stays at cores × `memory_kib`.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    pool: Arc<rayon::ThreadPool>,
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
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("argon2-{i}"))
            .build()
            .map_err(|e| format!("cannot start the password hashing pool: {e}"))?;
        let mut hasher = Self {
            argon2,
            pool: Arc::new(pool),
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

    /// Runs `job` on the hashing pool and waits for it without blocking the caller's thread.
    async fn on_pool<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Self) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (done, result) = oneshot::channel();
        let hasher = self.clone();
        self.pool.spawn(move || {
            let _ = done.send(job(&hasher));
        });
        result.await.map_err(ApiError::internal)
    }

    /// Hashes on the hashing pool.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.on_pool(move |hasher| hasher.hash_blocking(&password))
            .await?
            .map_err(ApiError::internal)
    }

    /// Verifies `password` against a stored PHC string, or against the decoy when there is no
    /// stored hash (unknown account) — the answer is then always `false`.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        self.on_pool(move |hasher| {
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
