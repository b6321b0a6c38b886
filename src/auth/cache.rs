//! This node's memory of the callers it has authenticated, so that a read can start without a
//! database trip of its own for the credential. An entry is only ever a guess: every request
//! answered from it re-reads the caller in the request's own database work
//! (`db::caller_check`) and is answered again with the caller read fresh when the guess was
//! wrong. Nothing here needs invalidating for correctness; entries are replaced when a full
//! check reads something else, dropped when it finds nobody, and the whole map is emptied when
//! it is full (ADR-34).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::{ApiKeyPrincipal, UserPrincipal};
use crate::domain::ids::{ApiKeyId, TenantId, UserId};

/// The most callers one node remembers; a full map is emptied rather than managed.
const CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Key {
    User(TenantId, UserId),
    ApiKey(TenantId, ApiKeyId),
}

/// Shared, so that a read answered from the cache and its deferred check take a reference
/// rather than copies of the principal's strings and groups.
#[derive(Debug, Clone)]
pub(super) enum Entry {
    User(Arc<UserPrincipal>),
    ApiKey(Arc<CachedKey>),
}

/// An API key as last read: what it grants, and what is checked before the cache is trusted.
#[derive(Debug, Clone)]
pub(super) struct CachedKey {
    pub principal: ApiKeyPrincipal,
    pub secret_hash: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// When `last_used_at` was last stored: a use a minute later takes the full path, which
    /// stores it again.
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct PrincipalCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl PrincipalCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn get(&self, key: &Key) -> Option<Entry> {
        self.lock().get(key).cloned()
    }

    pub(super) fn put(&self, key: Key, entry: Entry) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, entry);
    }

    pub(super) fn remove(&self, key: &Key) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
