//! The per-container cache of verified results, keyed by the token itself.
//!
//! A repeated token skips the signature check, but every hit still checks the entry's expiry,
//! which is never later than the token's `exp`. The cache is bounded: when full, expired
//! entries go first, then arbitrary ones (a warm container sees few distinct tokens; the
//! bound is there so a flood of valid tokens cannot grow memory without limit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A bounded map from token to a shared value, each entry with its own expiry.
#[derive(Debug)]
pub struct TokenCache<V> {
    entries: Mutex<HashMap<Box<str>, Entry<V>, foldhash::fast::RandomState>>,
    capacity: usize,
    ttl: u64,
}

#[derive(Debug)]
struct Entry<V> {
    expires: u64,
    value: Arc<V>,
}

impl<V> TokenCache<V> {
    /// A cache of at most `capacity` entries, each kept at most `ttl` seconds. A zero `ttl`
    /// turns the cache off.
    pub fn new(capacity: usize, ttl: u64) -> Self {
        Self {
            entries: Mutex::new(HashMap::default()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// Whether the cache is on.
    pub fn is_enabled(&self) -> bool {
        self.ttl > 0
    }

    /// The value for `token` if it has not expired at `now`.
    pub fn get(&self, token: &str, now: u64) -> Option<Arc<V>> {
        if self.ttl == 0 {
            return None;
        }
        let mut map = self.entries.lock().expect("token cache lock poisoned");
        match map.get(token) {
            Some(e) if now < e.expires => Some(Arc::clone(&e.value)),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `token` until `min(now + ttl, not_after)`.
    pub fn insert(&self, token: &str, value: Arc<V>, now: u64, not_after: u64) {
        let expires = now.saturating_add(self.ttl).min(not_after);
        if self.ttl == 0 || expires <= now {
            return;
        }
        let mut map = self.entries.lock().expect("token cache lock poisoned");
        if map.len() >= self.capacity && !map.contains_key(token) {
            map.retain(|_, e| now < e.expires);
            if map.len() >= self.capacity {
                // Drop an eighth, arbitrary (hash order): cheap, and amortised over many inserts.
                let drop: Vec<Box<str>> = map.keys().take(self.capacity / 8 + 1).cloned().collect();
                for k in drop {
                    map.remove(&k);
                }
            }
        }
        map.insert(token.into(), Entry { expires, value });
    }

    /// Number of entries (expired ones included until they are noticed).
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .expect("token cache lock poisoned")
            .len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_min_of_ttl_and_exp() {
        let c = TokenCache::new(10, 300);
        c.insert("t", Arc::new(1), 1000, 1100);
        assert!(c.get("t", 1099).is_some());
        assert!(c.get("t", 1100).is_none(), "exp bounds the entry");
        c.insert("u", Arc::new(2), 1000, 9999);
        assert!(c.get("u", 1299).is_some());
        assert!(c.get("u", 1300).is_none(), "ttl bounds the entry");
    }

    #[test]
    fn zero_ttl_is_off() {
        let c = TokenCache::new(10, 0);
        c.insert("t", Arc::new(1), 0, 100);
        assert!(c.get("t", 1).is_none());
        assert!(!c.is_enabled());
    }

    #[test]
    fn bounded() {
        let c = TokenCache::new(16, 300);
        for i in 0..1000 {
            c.insert(&format!("t{i}"), Arc::new(i), 0, 100);
            assert!(c.len() <= 16);
        }
        assert!(c.get("t999", 1).is_some(), "the newest entry is kept");
    }
}
