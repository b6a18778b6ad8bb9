//! The key cache of one issuer.
//!
//! Keys are fetched at cold start ([`KeyStore::hydrate`]) and parsed once. A token whose
//! `kid` is unknown causes one refetch: single-flight (concurrent requests wait for the one
//! fetch in flight instead of starting their own) and rate limited by a cooldown, so a flood
//! of made-up kids costs the identity provider one request per cooldown. A failed fetch keeps
//! the keys already held. Keys older than [`MAX_AGE`] are refreshed in the background, so a
//! key the provider withdrew stops being trusted.
//!
//! Where keys come from is configuration only (discovery, a JWKS URL, or a file); nothing in
//! a token can name a key location.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fetch::{Fetch, FetchError, MAX_DOCUMENT};
use super::keys::VerifyingKey;
use crate::alg::{Alg, AlgSet};
use crate::clock::Clock;
use crate::config::JwksSource;
use arc_swap::ArcSwap;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;

/// Keys older than this are refetched in the background on next use.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// The parsed keys of one JWKS.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    by_kid: HashMap<Box<str>, usize>,
    /// When the keys were fetched, on the injected clock's monotonic time.
    fetched_at: Option<Duration>,
}

impl KeySet {
    /// Parses a JWKS document, skipping (and logging) keys that cannot be used.
    ///
    /// # Errors
    /// A message when the document is not a JWKS at all (it becomes a
    /// [`FetchError::Body`] or a [`KeyFileError`], which name the origin).
    pub fn parse(doc: &[u8], allowed: AlgSet, origin: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc =
            serde_json::from_slice(doc).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut set = KeySet::default();
        for (i, raw) in doc.keys.into_iter().enumerate() {
            let parsed = serde_json::from_value::<Jwk>(raw)
                .map_err(|e| e.to_string())
                .and_then(|jwk| VerifyingKey::from_jwk(&jwk, allowed).map_err(|e| e.to_string()));
            match parsed {
                Ok(key) => {
                    if let Some(kid) = key.kid() {
                        if set.by_kid.contains_key(kid) {
                            tracing::warn!(
                                origin,
                                kid,
                                "JWKS has two keys with one kid; keeping the first"
                            );
                            continue;
                        }
                        set.by_kid.insert(kid.into(), set.keys.len());
                    }
                    set.keys.push(key);
                }
                Err(reason) => tracing::info!(origin, key = i, %reason, "JWKS key skipped"),
            }
        }
        Ok(set)
    }

    /// The key for `kid`. A token without `kid` is matched only when exactly one key could
    /// verify its algorithm: guessing among several would let a token pick its key.
    pub fn find(&self, kid: Option<&str>, alg: Alg) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid).map(|&i| &self.keys[i]),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.supports(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Some(k),
                    _ => None,
                }
            }
        }
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The OIDC discovery fields scopegate uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    introspection_endpoint: Option<String>,
}

/// Hears of each unknown-kid refetch: the issuer, and whether the fetch worked.
pub type RefetchListener = Arc<dyn Fn(&str, bool) + Send + Sync>;

/// What the key cache needs from outside: the network, the clock its cooldown and key age
/// are measured on, and who hears of each refetch an unknown kid causes (the authorizer
/// counts them as metrics; the cache itself knows nothing of metrics).
#[derive(Clone)]
pub struct KeyIo {
    /// Discovery and JWKS requests.
    pub fetch: Arc<dyn Fetch>,
    /// The cooldown and the key set's age.
    pub clock: Arc<dyn Clock>,
    /// Called with the issuer and whether the fetch worked, after every unknown-kid refetch.
    pub on_refetch: RefetchListener,
}

impl std::fmt::Debug for KeyIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyIo")
            .field("fetch", &self.fetch)
            .finish_non_exhaustive()
    }
}

/// A JWKS file that cannot be used: the path and why.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a JWKS, or holds no key scopegate may use.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug)]
enum Source {
    Discovery,
    Url(String),
    File,
}

/// The key cache of one issuer. Shared (`Arc`) between requests; lock-free to read.
#[derive(Debug)]
pub struct KeyStore {
    issuer: Box<str>,
    source: Source,
    allowed: AlgSet,
    io: KeyIo,
    cooldown: Duration,
    keys: ArcSwap<KeySet>,
    /// Held for the whole of a fetch: this is the single flight. Holds the (monotonic) time
    /// of the last refetch caused by an unknown kid, which the cooldown counts from.
    refresh: tokio::sync::Mutex<Option<Duration>>,
    discovered: Mutex<Option<Discovery>>,
    fetches: AtomicU64,
}

impl KeyStore {
    /// A store for `issuer` with keys from `source`. A file source is read here, once.
    ///
    /// # Errors
    /// [`KeyFileError`] when a JWKS file cannot be read or used.
    pub fn new(
        issuer: &str,
        source: &JwksSource,
        allowed: AlgSet,
        io: KeyIo,
        cooldown: Duration,
    ) -> Result<Self, KeyFileError> {
        let (src, keys) = match source {
            JwksSource::Discovery => (Source::Discovery, KeySet::default()),
            JwksSource::Url(u) => (Source::Url(u.clone()), KeySet::default()),
            JwksSource::File(path) => {
                let mut keys = load_file(path, allowed)?;
                keys.fetched_at = Some(io.clock.monotonic());
                (Source::File, keys)
            }
        };
        Ok(Self {
            issuer: issuer.into(),
            source: src,
            allowed,
            io,
            cooldown,
            keys: ArcSwap::from_pointee(keys),
            refresh: tokio::sync::Mutex::new(None),
            discovered: Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }

    /// The issuer these keys belong to.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The current keys (lock-free).
    pub fn keys(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// How many JWKS fetches were made (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The introspection endpoint from discovery, once discovery has run.
    pub fn introspection_endpoint(&self) -> Option<String> {
        self.discovered
            .lock()
            .expect("discovery lock poisoned")
            .as_ref()
            .and_then(|d| d.introspection_endpoint.clone())
    }

    /// Fetches the keys now, whatever the cooldown: the cold-start hydration.
    ///
    /// # Errors
    /// The fetch failure; the keys held before are kept.
    pub async fn hydrate(&self) -> Result<usize, FetchError> {
        // Single flight, but not counted against the cooldown: a key rotated just after a
        // cold start must still be fetched at once.
        let _flight = self.refresh.lock().await;
        self.fetch_and_store().await
    }

    /// Called for a `kid` that is not in the set: refetches once, unless another request
    /// just did or the cooldown has not passed. Returns whether the kid is known afterwards.
    pub async fn refresh_for_unknown(&self, kid: Option<&str>, alg: Alg) -> bool {
        if matches!(self.source, Source::File) {
            return false;
        }
        let mut last = self.refresh.lock().await;
        if self.keys.load().find(kid, alg).is_some() {
            return true; // fetched by the request we waited for
        }
        // With no keys at all (a failed cold start), retry sooner: nothing can be served.
        let cooldown = if self.keys.load().is_empty() {
            self.cooldown.min(Duration::from_secs(1))
        } else {
            self.cooldown
        };
        let now = self.io.clock.monotonic();
        if last.is_some_and(|t| now.saturating_sub(t) < cooldown) {
            tracing::debug!(issuer = %self.issuer, "unknown kid; refetch rate limited");
            return false;
        }
        *last = Some(now);
        let fetched = self.fetch_and_store().await;
        (self.io.on_refetch)(&self.issuer, fetched.is_ok());
        if let Err(e) = fetched {
            tracing::warn!(issuer = %self.issuer, error = %e, "JWKS refetch failed; keeping the keys held");
        }
        self.keys.load().find(kid, alg).is_some()
    }

    /// Whether the keys are older than [`MAX_AGE`] and should be refreshed.
    pub fn is_stale(&self) -> bool {
        !matches!(self.source, Source::File)
            && self
                .keys
                .load()
                .fetched_at
                .is_none_or(|t| self.io.clock.monotonic().saturating_sub(t) > MAX_AGE)
    }

    /// Refreshes stale keys unless a fetch is already in flight; never waits for one.
    pub async fn refresh_if_stale(&self) {
        let Ok(mut last) = self.refresh.try_lock() else {
            return;
        };
        let now = self.io.clock.monotonic();
        if !self.is_stale() || last.is_some_and(|t| now.saturating_sub(t) < self.cooldown) {
            return;
        }
        *last = Some(now);
        if let Err(e) = self.fetch_and_store().await {
            tracing::warn!(issuer = %self.issuer, error = %e, "JWKS refresh failed; keeping the keys held");
        }
    }

    async fn fetch_and_store(&self) -> Result<usize, FetchError> {
        let url = self.jwks_url().await?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let body = self.io.fetch.get(&url, MAX_DOCUMENT).await?;
        let mut set =
            KeySet::parse(&body, self.allowed, &url).map_err(|reason| FetchError::Body {
                url: url.clone(),
                reason,
            })?;
        set.fetched_at = Some(self.io.clock.monotonic());
        let n = set.len();
        if n == 0 {
            // An empty answer would drop every key: treat it as a failure and keep the old.
            return Err(FetchError::Body {
                url,
                reason: "no usable key in the JWKS".to_owned(),
            });
        }
        self.keys.store(Arc::new(set));
        tracing::info!(issuer = %self.issuer, keys = n, "JWKS loaded");
        Ok(n)
    }

    async fn jwks_url(&self) -> Result<String, FetchError> {
        match &self.source {
            Source::Url(u) => Ok(u.clone()),
            Source::File => unreachable!("file keys are never fetched"),
            Source::Discovery => {
                if let Some(d) = self
                    .discovered
                    .lock()
                    .expect("discovery lock poisoned")
                    .as_ref()
                {
                    return Ok(d.jwks_uri.clone());
                }
                let d = self.discover().await?;
                let uri = d.jwks_uri.clone();
                *self.discovered.lock().expect("discovery lock poisoned") = Some(d);
                Ok(uri)
            }
        }
    }

    /// Runs OIDC discovery (falling back to RFC 8414) and checks that the document is the
    /// issuer's own (OIDC Discovery 4.3), so a misconfigured URL cannot lend another
    /// issuer's keys.
    async fn discover(&self) -> Result<Discovery, FetchError> {
        let base = self.issuer.trim_end_matches('/');
        let oidc = format!("{base}/.well-known/openid-configuration");
        let body = match self.io.fetch.get(&oidc, MAX_DOCUMENT).await {
            Ok(b) => b,
            Err(FetchError::Status { status: 404, .. }) => {
                self.io
                    .fetch
                    .get(
                        &format!("{base}/.well-known/oauth-authorization-server"),
                        MAX_DOCUMENT,
                    )
                    .await?
            }
            Err(e) => return Err(e),
        };
        let d: Discovery = serde_json::from_slice(&body).map_err(|e| FetchError::Body {
            url: oidc.clone(),
            reason: format!("not a discovery document: {e}"),
        })?;
        if d.issuer != *self.issuer {
            return Err(FetchError::Body {
                url: oidc,
                reason: format!(
                    "discovery names issuer {:?}, expected {:?}",
                    d.issuer, self.issuer
                ),
            });
        }
        Ok(d)
    }
}

fn load_file(path: &Path, allowed: AlgSet) -> Result<KeySet, KeyFileError> {
    let bytes = std::fs::read(path).map_err(|source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| KeyFileError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let set = KeySet::parse(&bytes, allowed, &path.display().to_string()).map_err(invalid)?;
    if set.is_empty() {
        return Err(invalid("no usable key".to_owned()));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::token::fake::FakeIdp;
    use crate::token::mint::SigningKey;

    const ISS: &str = "https://idp.example.com";

    struct Rig {
        idp: Arc<FakeIdp>,
        clock: Arc<ManualClock>,
        refetches: Arc<AtomicUsize>,
        store: Arc<KeyStore>,
    }

    fn rig(published: &[&SigningKey], cooldown: u64) -> Rig {
        let idp = Arc::new(FakeIdp::new(SigningKey::jwks(published)));
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let refetches = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&refetches);
        let io = KeyIo {
            fetch: Arc::clone(&idp) as Arc<dyn Fetch>,
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            on_refetch: Arc::new(move |issuer: &str, _ok: bool| {
                assert_eq!(issuer, ISS);
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        };
        let source = JwksSource::Url(format!("{ISS}/jwks"));
        let allowed = Alg::ALL.into_iter().collect();
        let store = KeyStore::new(ISS, &source, allowed, io, Duration::from_secs(cooldown));
        Rig {
            idp,
            clock,
            refetches,
            store: Arc::new(store.unwrap()),
        }
    }

    #[tokio::test]
    async fn concurrent_unknown_kids_share_one_fetch() {
        let k1 = SigningKey::generate(Alg::ES256, "k1");
        let k2 = SigningKey::generate(Alg::ES256, "k2");
        // No cooldown: only the single flight can keep the count at one refetch.
        let r = rig(&[&k1], 0);
        r.store.hydrate().await.unwrap();
        assert_eq!(r.idp.gets(), 1);

        r.idp.publish(SigningKey::jwks(&[&k1, &k2]));
        r.idp.hold.store(true, Ordering::SeqCst);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&r.store);
                tokio::spawn(async move { store.refresh_for_unknown(Some("k2"), Alg::ES256).await })
            })
            .collect();
        // One task is in the fetch; on this single-threaded runtime every other task runs to
        // the single-flight lock within a few turns of the scheduler.
        while r.idp.gets() < 2 {
            tokio::task::yield_now().await;
        }
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        r.idp.gate.add_permits(100);
        for t in tasks {
            assert!(t.await.unwrap(), "k2 is known after the one fetch");
        }
        assert_eq!(r.idp.gets(), 2, "twenty unknown kids, one fetch");
        assert_eq!(r.refetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn unknown_kid_refetches_are_rate_limited_by_the_cooldown() {
        let k1 = SigningKey::generate(Alg::RS256, "k1");
        let k2 = SigningKey::generate(Alg::RS256, "k2");
        let r = rig(&[&k1], 30);
        r.store.hydrate().await.unwrap();

        assert!(!r.store.refresh_for_unknown(Some("k2"), Alg::RS256).await);
        assert_eq!(r.idp.gets(), 2, "hydration does not start the cooldown");

        r.idp.publish(SigningKey::jwks(&[&k1, &k2]));
        r.clock.advance(29);
        assert!(!r.store.refresh_for_unknown(Some("k2"), Alg::RS256).await);
        assert_eq!(r.idp.gets(), 2, "within the cooldown: no fetch");

        r.clock.advance(1);
        assert!(r.store.refresh_for_unknown(Some("k2"), Alg::RS256).await);
        assert_eq!(r.idp.gets(), 3, "the cooldown has passed");
        assert_eq!(r.refetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn with_no_keys_at_all_the_cooldown_is_one_second() {
        let k1 = SigningKey::generate(Alg::ES256, "k1");
        let r = rig(&[&k1], 30);
        r.idp.status.store(503, Ordering::SeqCst);
        assert!(r.store.hydrate().await.is_err());
        assert!(!r.store.refresh_for_unknown(Some("k1"), Alg::ES256).await);
        assert!(!r.store.refresh_for_unknown(Some("k1"), Alg::ES256).await);
        assert_eq!(r.idp.gets(), 2, "rate limited within the second");
        r.idp.status.store(200, Ordering::SeqCst);
        r.clock.advance(1);
        assert!(r.store.refresh_for_unknown(Some("k1"), Alg::ES256).await);
        assert_eq!(r.idp.gets(), 3);
    }

    #[tokio::test]
    async fn failed_or_empty_fetches_keep_the_keys_held() {
        let k1 = SigningKey::generate(Alg::RS256, "k1");
        let r = rig(&[&k1], 0);
        r.store.hydrate().await.unwrap();

        r.idp.status.store(500, Ordering::SeqCst);
        assert!(!r.store.refresh_for_unknown(Some("k9"), Alg::RS256).await);
        assert_eq!(r.idp.gets(), 2, "it did try");
        assert!(r.store.keys().find(Some("k1"), Alg::RS256).is_some());

        r.idp.status.store(200, Ordering::SeqCst);
        r.idp.publish(json!({"keys": []}));
        assert!(!r.store.refresh_for_unknown(Some("k9"), Alg::RS256).await);
        assert!(
            r.store.keys().find(Some("k1"), Alg::RS256).is_some(),
            "an empty JWKS does not drop every key"
        );
    }

    #[tokio::test]
    async fn keys_older_than_an_hour_are_refreshed_once() {
        let k1 = SigningKey::generate(Alg::ES256, "k1");
        let r = rig(&[&k1], 30);
        r.store.hydrate().await.unwrap();
        assert!(!r.store.is_stale());
        r.clock.advance(MAX_AGE.as_secs() + 1);
        assert!(r.store.is_stale());
        r.store.refresh_if_stale().await;
        assert_eq!(r.idp.gets(), 2);
        assert!(!r.store.is_stale());
        r.store.refresh_if_stale().await;
        assert_eq!(r.idp.gets(), 2, "fresh again: no fetch");
    }
}
