//! argon2id password hashing, run off the request threads on a small pool of its own.

use std::cell::RefCell;
use std::sync::Arc;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use tokio::sync::oneshot;

use super::AuthError;
use super::admission::{Admission, HashLane, RETRY_AFTER_SECONDS};
use crate::config::Argon2Params;

/// Hashes and verifies passwords with argon2id. Each hash costs `memory_kib` of memory and a
/// core for tens of milliseconds, so hashes run on a pool of one thread per core: a burst of
/// logins queues there instead of starving other requests. Each hashing thread keeps its
/// argon2 memory and reuses it for every hash: allocating 19 MiB per hash made the allocator
/// keep freed blocks around (1.7 GB RSS on the shared blocking pool, 230–350 MB on this pool;
/// docs/PERFORMANCE.md), while reused blocks bound it at threads × `memory_kib`. Checks that
/// anyone can cause (logins, password changes) first take a slot of a bounded, per-tenant fair
/// queue ([`Admission`]).
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    pool: Arc<rayon::ThreadPool>,
    admission: Admission,
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
            admission: Admission::new(DEFAULT_QUEUE_SIZE),
            decoy_hash: Arc::from(""),
        };
        let decoy = hasher.hash_blocking(&random_token(24))?;
        hasher.decoy_hash = Arc::from(decoy);
        Ok(hasher)
    }

    /// The same hasher with a queue of `size` slots (`STAGEFLOW_HASH_QUEUE_SIZE`).
    pub fn with_queue(mut self, size: usize) -> Self {
        self.admission = Admission::new(size);
        self
    }

    /// The admission queue, shared by every clone of this hasher.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Hashes on the calling thread; for start-up and other blocking callers. The result is a
    /// standard PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    pub fn hash_blocking(&self, password: &str) -> Result<String, String> {
        let mut salt_bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut salt_bytes);
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
        let params = self.argon2.params().clone();
        let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
            hash_with_reused_memory(&self.argon2, password.as_bytes(), &salt_bytes, out)
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .map_err(|e| e.to_string())?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` produces the hash in the PHC string `phc` (argon2id only), computed
    /// with the parameters stored in it.
    fn matches(password: &str, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
            return false;
        };
        if parsed.algorithm != Algorithm::Argon2id.ident() {
            return false;
        }
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let version = parsed
            .version
            .and_then(|v| Version::try_from(v).ok())
            .unwrap_or_default();
        let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
        let mut out = vec![0u8; expected.len()];
        if hash_with_reused_memory(&argon2, password.as_bytes(), salt_bytes, &mut out).is_err() {
            return false;
        }
        // `Output` compares in constant time.
        Output::new(&out).is_ok_and(|computed| computed == expected)
    }

    /// Runs `job` on the hashing pool and waits for it without blocking the caller's thread.
    async fn on_pool<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Self) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let (done, result) = oneshot::channel();
        let hasher = self.clone();
        self.pool.spawn(move || {
            let _ = done.send(job(&hasher));
        });
        result.await.map_err(AuthError::internal)
    }

    /// Hashes on the hashing pool. Not admitted through the queue: only administrators cause
    /// these (new users, tenants); self-service callers use [`PasswordHasher::hash_in`].
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        self.on_pool(move |hasher| hasher.hash_blocking(&password))
            .await?
            .map_err(AuthError::internal)
    }

    /// Takes a slot of the queue for `lane`, or refuses with [`AuthError::Busy`].
    fn admit(&self, lane: HashLane) -> Result<super::admission::Permit, AuthError> {
        self.admission.try_admit(lane).map_err(|refused| {
            log::warn!("password hashing queue refused {lane:?}: {refused:?}");
            AuthError::Busy {
                retry_after_seconds: RETRY_AFTER_SECONDS,
            }
        })
    }

    /// Hashes on the hashing pool, in a queue slot of `lane`.
    pub async fn hash_in(&self, lane: HashLane, password: String) -> Result<String, AuthError> {
        let _slot = self.admit(lane)?;
        self.hash(password).await
    }

    /// Verifies `password` against a stored PHC string, or against the decoy when there is no
    /// stored hash (unknown account) — the answer is then always `false`. Takes a queue slot
    /// of `lane` for the wait and the work.
    pub async fn verify(
        &self,
        lane: HashLane,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, AuthError> {
        let _slot = self.admit(lane)?;
        self.on_pool(move |hasher| {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| hasher.decoy_hash.to_string());
            let matches = Self::matches(&password, &phc);
            known && matches
        })
        .await
    }
}

/// Slots of the queue unless configured otherwise.
const DEFAULT_QUEUE_SIZE: usize = 64;

thread_local! {
    /// This thread's argon2 working memory, kept between hashes.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 into `out`, with the calling thread's reusable block memory.
fn hash_with_reused_memory(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        let needed = argon2.params().block_count();
        if blocks.len() != needed {
            blocks.resize(needed, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..])
    })
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
                .verify(
                    HashLane::Platform,
                    "correct horse".into(),
                    Some(stored.clone())
                )
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(HashLane::Platform, "wrong horse".into(), Some(stored))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(HashLane::Platform, "anything".into(), None)
                .await
                .unwrap()
        );
    }

    #[actix_web::test]
    async fn a_full_lane_is_refused_as_busy() {
        let hasher = cheap().with_queue(2);
        let held = hasher.admission().try_admit(HashLane::Platform).unwrap();
        let refused = hasher.verify(HashLane::Platform, "x".into(), None).await;
        assert!(matches!(
            refused,
            Err(AuthError::Busy {
                retry_after_seconds: 1
            })
        ));
        assert!(
            !hasher
                .verify(HashLane::Unresolved, "x".into(), None)
                .await
                .unwrap()
        );
        drop(held);
        assert_eq!(hasher.admission().taken(), 0);
    }

    #[test]
    fn hashes_verify_with_the_reference_implementation_and_back() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier};
        let hasher = cheap();
        let ours = hasher.hash_blocking("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            hasher
                .argon2
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let reference = hasher
            .argon2
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(PasswordHasher::matches("correct horse", &reference));
        assert!(!PasswordHasher::matches("wrong horse", &reference));
        assert!(!PasswordHasher::matches(
            "correct horse",
            "not a phc string"
        ));
    }

    #[test]
    fn random_tokens_differ() {
        assert_ne!(random_token(16), random_token(16));
        assert_eq!(random_token(24).len(), 32);
    }
}
