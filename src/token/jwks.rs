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

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use tokio::time::Instant;

use super::fetch::{FetchError, Fetcher, MAX_DOCUMENT};
use super::keys::VerifyingKey;
use super::AlgSet;
use crate::config::JwksSource;

/// Keys older than this are refetched in the background on next use.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// The parsed keys of one JWKS.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    by_kid: HashMap<Box<str>, usize>,
    fetched_at: Option<Instant>,
}

impl KeySet {
    /// Parses a JWKS document, skipping (and logging) keys that cannot be used.
    ///
    /// # Errors
    /// A message when the document is not a JWKS at all.
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
    pub fn find(&self, kid: Option<&str>, alg: super::Alg) -> Option<&VerifyingKey> {
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
    fetcher: Fetcher,
    cooldown: Duration,
    keys: ArcSwap<KeySet>,
    /// Held for the whole of a fetch: this is the single flight. Holds the time of the last
    /// refetch caused by an unknown kid, which the cooldown counts from.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    discovered: Mutex<Option<Discovery>>,
    fetches: AtomicU64,
}

impl KeyStore {
    /// A store for `issuer` with keys from `source`. A file source is read here, once.
    ///
    /// # Errors
    /// When a JWKS file cannot be read or parsed.
    pub(crate) fn new(
        issuer: &str,
        source: &JwksSource,
        allowed: AlgSet,
        fetcher: Fetcher,
        cooldown: Duration,
    ) -> Result<Self, String> {
        let (src, keys) = match source {
            JwksSource::Discovery => (Source::Discovery, KeySet::default()),
            JwksSource::Url(u) => (Source::Url(u.clone()), KeySet::default()),
            JwksSource::File(path) => (Source::File, load_file(path, allowed)?),
        };
        Ok(Self {
            issuer: issuer.into(),
            source: src,
            allowed,
            fetcher,
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
    pub async fn refresh_for_unknown(&self, kid: Option<&str>, alg: super::Alg) -> bool {
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
        if last.is_some_and(|t| t.elapsed() < cooldown) {
            tracing::debug!(issuer = %self.issuer, "unknown kid; refetch rate limited");
            return false;
        }
        *last = Some(Instant::now());
        let fetched = self.fetch_and_store().await;
        crate::metrics::jwks_refetch(&self.issuer, fetched.is_ok());
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
                .is_none_or(|t| t.elapsed() > MAX_AGE)
    }

    /// Refreshes stale keys unless a fetch is already in flight; never waits for one.
    pub async fn refresh_if_stale(&self) {
        let Ok(mut last) = self.refresh.try_lock() else {
            return;
        };
        if !self.is_stale() || last.is_some_and(|t| t.elapsed() < self.cooldown) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.fetch_and_store().await {
            tracing::warn!(issuer = %self.issuer, error = %e, "JWKS refresh failed; keeping the keys held");
        }
    }

    async fn fetch_and_store(&self) -> Result<usize, FetchError> {
        let url = self.jwks_url().await?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let body = self.fetcher.get(&url, MAX_DOCUMENT).await?;
        let mut set =
            KeySet::parse(&body, self.allowed, &url).map_err(|reason| FetchError::Body {
                url: url.clone(),
                reason,
            })?;
        set.fetched_at = Some(Instant::now());
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
        let body = match self.fetcher.get(&oidc, MAX_DOCUMENT).await {
            Ok(b) => b,
            Err(FetchError::Status { status: 404, .. }) => {
                self.fetcher
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

fn load_file(path: &Path, allowed: AlgSet) -> Result<KeySet, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let origin = path.display().to_string();
    let mut set = KeySet::parse(&bytes, allowed, &origin).map_err(|e| format!("{origin}: {e}"))?;
    if set.is_empty() {
        return Err(format!("{origin}: no usable key"));
    }
    set.fetched_at = Some(Instant::now());
    Ok(set)
}
