//! A small in-memory cache whose entries are trusted for a fixed time, for
//! values read on every request (live generations, webhook secrets) that change
//! rarely and may be seen a moment late by other replicas.

use super::now_ms;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Cheap to clone; clones share the entries.
pub struct TtlCache<K, V> {
    ttl_ms: i64,
    entries: Arc<Mutex<HashMap<K, (V, i64)>>>,
}

impl<K, V> Clone for TtlCache<K, V> {
    fn clone(&self) -> Self {
        TtlCache { ttl_ms: self.ttl_ms, entries: self.entries.clone() }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl_ms: i64) -> Self {
        TtlCache { ttl_ms, entries: Arc::default() }
    }

    /// The value cached for `key`, unless it is older than the TTL.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (value, at) = entries.get(key)?;
        (now_ms() - at < self.ttl_ms).then(|| value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key, (value, now_ms()));
        }
    }

    /// Drops the entries `stale` selects, after a change this process made.
    pub fn forget(&self, stale: impl Fn(&K, &V) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|key, (value, _)| !stale(key, value));
        }
    }
}
