//! The gateway's authorizer cache: one answer per token value, for the authorizer TTL.
//!
//! This is the behaviour the seed warns about: while an entry lives, the authorizer is not
//! called again for that token, even if the token expires or is revoked meanwhile, and the
//! cached policy is re-evaluated against every request's methodArn. Pure: the caller passes
//! `now`, so tests move time without sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most entries kept. A token is about 1 KiB, so the cache stays around 10 MiB at worst; a
/// dev gateway sees a handful of tokens, this only stops a runaway script from growing it.
pub(crate) const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub(crate) struct AuthorizerCache<T> {
    ttl: Duration,
    max_entries: usize,
    // std Mutex: sections are short and never held across an await.
    entries: Mutex<HashMap<String, Entry<T>>>,
}

#[derive(Debug)]
struct Entry<T> {
    expires: Instant,
    value: Arc<T>,
}

impl<T> AuthorizerCache<T> {
    /// A cache keeping entries for `ttl`; a zero TTL disables caching.
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries: max_entries.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The live entry for `key`, if any; an expired one is dropped.
    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<Arc<T>> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut entries = self.lock();
        match entries.get(key) {
            Some(entry) if now < entry.expires => Some(Arc::clone(&entry.value)),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `key` until `now + ttl`. When full, expired entries go first, then
    /// the one closest to expiry.
    pub(crate) fn insert(&self, key: String, value: Arc<T>, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            entries.retain(|_, e| now < e.expires);
            if entries.len() >= self.max_entries {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                expires: now + self.ttl,
                value,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<T>>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_for_the_ttl() {
        let cache = AuthorizerCache::new(Duration::from_secs(300), 10);
        let t0 = Instant::now();
        assert!(cache.get("a", t0).is_none());
        cache.insert("a".into(), Arc::new(1), t0);
        assert_eq!(
            cache.get("a", t0 + Duration::from_secs(299)).as_deref(),
            Some(&1)
        );
        assert!(cache.get("a", t0 + Duration::from_secs(300)).is_none());
        assert_eq!(cache.len(), 0, "an expired entry is dropped when seen");
    }

    #[test]
    fn zero_ttl_caches_nothing() {
        let cache = AuthorizerCache::new(Duration::ZERO, 10);
        let t0 = Instant::now();
        cache.insert("a".into(), Arc::new(1), t0);
        assert!(cache.get("a", t0).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn size_is_bounded() {
        let cache = AuthorizerCache::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        cache.insert("a".into(), Arc::new(1), t0);
        cache.insert("b".into(), Arc::new(2), t0 + Duration::from_secs(1));
        cache.insert("c".into(), Arc::new(3), t0 + Duration::from_secs(2));
        assert_eq!(cache.len(), 2);
        let now = t0 + Duration::from_secs(3);
        assert!(
            cache.get("a", now).is_none(),
            "the entry closest to expiry went"
        );
        assert!(cache.get("b", now).is_some() && cache.get("c", now).is_some());
        // Expired entries make room before live ones are evicted.
        let later = t0 + Duration::from_secs(61);
        cache.insert("d".into(), Arc::new(4), later);
        assert!(cache.get("c", later).is_some() && cache.get("d", later).is_some());
    }
}
