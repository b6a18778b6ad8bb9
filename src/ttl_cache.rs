//! The one TTL cache: a bounded map from a string key to a shared value, each entry with
//! its own expiry, in whole seconds of a [`Clock`](crate::clock::Clock) the caller reads.
//!
//! It holds the verified-token cache and the introspection cache of the authorizer, and the
//! local gateway's emulation of API Gateway's authorizer cache. The caller passes `now`, so
//! tests move time with a manual clock, never by sleeping. (A crate such as moka keeps its
//! own clock, which is exactly what these callers must not have: a token's `exp` is wall
//! time in the token, and a test must be able to step over it.)
//!
//! When full, expired entries go first, then the eighth of the entries closest to expiry:
//! one linear pass per eviction, amortised over an eighth of the capacity of inserts, so a
//! flood of distinct keys cannot grow memory or make an insert quadratic.
//!
//! A cache made [`TtlCache::admitting_on_second_sight`] keeps a key only the second time it
//! is inserted (a doorkeeper, as in TinyLFU): the first time, only a 64-bit hash of it is
//! noted. A stream of keys each seen once (a replay, a flood of distinct tokens) then costs no
//! memory and evicts nothing the cache holds; the price is one more miss per key that does
//! come back. The hash only decides admission: what is kept and looked up is the whole key,
//! so a hash collision admits a key early, never serves the wrong value.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher as _;
use std::sync::{Arc, Mutex, MutexGuard};

/// A bounded map from key to a shared value, each entry with its own expiry.
#[derive(Debug)]
pub struct TtlCache<V> {
    // std Mutex: sections are short and never held across an await.
    entries: Mutex<HashMap<Box<str>, Entry<V>, foldhash::fast::RandomState>>,
    /// The doorkeeper: hashes of keys inserted once and not yet kept, when admission is on.
    seen: Option<Mutex<HashSet<u64, foldhash::fast::RandomState>>>,
    hasher: foldhash::fast::RandomState,
    capacity: usize,
    ttl: u64,
}

#[derive(Debug)]
struct Entry<V> {
    expires: u64,
    value: Arc<V>,
}

impl<V> TtlCache<V> {
    /// A cache of at most `capacity` entries, each kept at most `ttl` seconds. A zero `ttl`
    /// turns the cache off.
    pub fn new(capacity: usize, ttl: u64) -> Self {
        Self {
            entries: Mutex::new(HashMap::default()),
            seen: None,
            hasher: foldhash::fast::RandomState::default(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// [`TtlCache::new`], keeping a key only when it is inserted a second time (see the
    /// module's text). The doorkeeper holds at most `capacity` hashes and starts afresh when
    /// full.
    pub fn admitting_on_second_sight(capacity: usize, ttl: u64) -> Self {
        Self {
            seen: Some(Mutex::new(HashSet::default())),
            ..Self::new(capacity, ttl)
        }
    }

    /// Whether the cache is on.
    pub fn is_enabled(&self) -> bool {
        self.ttl > 0
    }

    /// The value for `key` if it has not expired at `now`; an expired entry is dropped.
    pub fn get(&self, key: &str, now: u64) -> Option<Arc<V>> {
        if self.ttl == 0 {
            return None;
        }
        let mut map = self.lock();
        match map.get(key) {
            Some(e) if now < e.expires => Some(Arc::clone(&e.value)),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `key` until `min(now + ttl, not_after)`; pass `u64::MAX` as
    /// `not_after` for the TTL alone.
    pub fn insert(&self, key: &str, value: Arc<V>, now: u64, not_after: u64) {
        let expires = now.saturating_add(self.ttl).min(not_after);
        if self.ttl == 0 || expires <= now {
            return;
        }
        if let Some(seen) = &self.seen {
            let hash = self.hasher.hash_one(key);
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if !seen.remove(&hash) {
                if seen.len() >= self.capacity {
                    seen.clear();
                }
                seen.insert(hash);
                return;
            }
        }
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(key) {
            map.retain(|_, e| now < e.expires);
            if map.len() >= self.capacity {
                let evict = self.capacity / 8 + 1;
                let mut by_expiry: Vec<(u64, Box<str>)> =
                    map.iter().map(|(k, e)| (e.expires, k.clone())).collect();
                by_expiry.select_nth_unstable_by_key(evict - 1, |(expires, _)| *expires);
                for (_, k) in by_expiry.into_iter().take(evict) {
                    map.remove(&k);
                }
            }
        }
        map.insert(key.into(), Entry { expires, value });
    }

    /// Number of entries (expired ones included until they are noticed).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Entry<V>, foldhash::fast::RandomState>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_min_of_ttl_and_not_after() {
        let c = TtlCache::new(10, 300);
        c.insert("t", Arc::new(1), 1000, 1100);
        assert!(c.get("t", 1099).is_some());
        assert!(c.get("t", 1100).is_none(), "not_after bounds the entry");
        assert_eq!(c.len(), 0, "an expired entry is dropped when seen");
        c.insert("u", Arc::new(2), 1000, u64::MAX);
        assert!(c.get("u", 1299).is_some());
        assert!(c.get("u", 1300).is_none(), "ttl bounds the entry");
    }

    #[test]
    fn zero_ttl_is_off() {
        let c = TtlCache::new(10, 0);
        c.insert("t", Arc::new(1), 0, 100);
        assert!(c.get("t", 1).is_none());
        assert!(!c.is_enabled());
        assert!(c.is_empty());
    }

    #[test]
    fn bounded() {
        let c = TtlCache::new(16, 300);
        for i in 0..1000 {
            c.insert(&format!("t{i}"), Arc::new(i), i, u64::MAX);
            assert!(c.len() <= 16);
        }
        assert!(c.get("t999", 999).is_some(), "the newest entry is kept");
    }

    #[test]
    fn with_a_doorkeeper_a_key_is_kept_the_second_time_it_is_inserted() {
        let c = TtlCache::admitting_on_second_sight(4, 300);
        c.insert("a", Arc::new(1), 0, u64::MAX);
        assert!(c.get("a", 1).is_none(), "seen once: not kept");
        c.insert("a", Arc::new(2), 1, u64::MAX);
        assert_eq!(c.get("a", 2).as_deref(), Some(&2), "seen twice: kept");
        // Keys seen once neither take room nor evict what is kept.
        for i in 0..100 {
            c.insert(&format!("once-{i}"), Arc::new(i), 2, u64::MAX);
        }
        assert_eq!(c.len(), 1);
        assert!(c.get("a", 3).is_some());
        // The doorkeeper is bounded: it starts afresh when full, so a key seen once long ago
        // is a first sight again.
        assert!(c.seen.as_ref().unwrap().lock().unwrap().len() <= 4);
        // A disabled cache notes nothing.
        let off = TtlCache::admitting_on_second_sight(4, 0);
        off.insert("a", Arc::new(1), 0, u64::MAX);
        off.insert("a", Arc::new(1), 0, u64::MAX);
        assert!(off.get("a", 0).is_none());
    }

    #[test]
    fn expired_then_closest_to_expiry_go_first() {
        let c = TtlCache::new(2, 60);
        c.insert("a", Arc::new(1), 0, u64::MAX);
        c.insert("b", Arc::new(2), 1, u64::MAX);
        c.insert("c", Arc::new(3), 2, u64::MAX);
        assert_eq!(c.len(), 2);
        assert!(c.get("a", 3).is_none(), "the entry closest to expiry went");
        assert!(c.get("b", 3).is_some() && c.get("c", 3).is_some());
        // Expired entries make room before live ones are evicted.
        c.insert("d", Arc::new(4), 61, u64::MAX);
        assert!(c.get("c", 61).is_some() && c.get("d", 61).is_some());
    }
}
