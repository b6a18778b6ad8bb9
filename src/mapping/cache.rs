//! The warm-container cache of the mappings: what the authorizer decides from when the
//! mappings live in DynamoDB.
//!
//! ```text
//! cold (no snapshot)     read the version record (one GetItem), then load that version:
//!                          the S3 object, when the record names its SHA-256 for this version
//!                          (one GetObject, bytes checked), else the generation (Queries)
//!                        DynamoDB fails -> the S3 snapshot: only the object the version
//!                          record names, when it was read; as it is, when DynamoDB is down
//!                          -> else fail closed (Err), retry next call
//! warm, before the TTL   serve the snapshot (no IO)
//! warm, TTL passed       this call reads the version record (one GetItem); others keep serving
//!                          same version -> serve, next check in one TTL
//!                          new version  -> load it (as at a cold start), swap, serve it
//!                          DynamoDB down -> serve the last good snapshot while it was confirmed
//!                                           less than MAX_STALE ago; then the S3 snapshot;
//!                                           then fail closed
//! ```
//!
//! One refresh at a time: the call that finds the TTL passed takes the refresh lock with
//! `try_lock`; a concurrent call does not wait for it and serves the current snapshot. Only a
//! call that has no snapshot to serve (cold, or after failing closed) waits. Every source
//! call is bounded by a timeout, so a hung endpoint costs one call that long, not the
//! container. Every load and every fallback is logged with the source, the version and the
//! reason.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;

use super::snapshot::Snapshot;
use super::source::{Mappings, Unavailable};
use super::store::{Head, NoSnapshot, SnapshotDigest, SnapshotSource, StoreError, VersionedSource};
use crate::clock::Clock;
use crate::config::{self, Config};

/// Where the snapshot being served came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The DynamoDB table (the source of truth).
    Dynamo,
    /// The S3 snapshot (fallback).
    S3,
}

impl Source {
    /// `dynamodb` or `s3`, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Dynamo => "dynamodb",
            Source::S3 => "s3",
        }
    }
}

/// Timing of the cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheOptions {
    /// How long a snapshot is served before the version is checked. Defaults to 60 s.
    pub ttl: u64,
    /// How long the last good snapshot is served while DynamoDB fails, counted from the last
    /// time a source confirmed it. Defaults to 3600 s.
    pub max_stale: u64,
    /// Bound on one version check. Defaults to 3 s.
    pub check_timeout: Duration,
    /// Bound on one full load. Defaults to 20 s.
    pub load_timeout: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            ttl: config::MAPPING_TTL_SECONDS.number_default(),
            max_stale: config::MAPPING_MAX_STALE_SECONDS.number_default(),
            check_timeout: Duration::from_secs(3),
            load_timeout: Duration::from_secs(20),
        }
    }
}

impl CacheOptions {
    /// From the config's SCOPEGATE_MAPPING_TTL_SECONDS and SCOPEGATE_MAPPING_MAX_STALE_SECONDS.
    pub fn from_config(config: &Config) -> CacheOptions {
        CacheOptions {
            ttl: config.mapping_ttl.as_secs(),
            max_stale: config.mapping_max_stale.as_secs(),
            ..CacheOptions::default()
        }
    }
}

/// How the version DynamoDB names was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The S3 object the version record vouches for.
    Snapshot,
    /// The generation's items.
    Generation,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Snapshot => "snapshot",
            Via::Generation => "generation",
        }
    }
}

/// The snapshot being served.
#[derive(Debug)]
struct Current {
    snapshot: Arc<Snapshot>,
    source: Source,
    /// The DynamoDB generation (to notice an import that kept the version number, which
    /// cannot happen, and a re-created table, which can).
    generation: Option<String>,
    /// When a source last confirmed this snapshot as current (clock seconds).
    confirmed_at: u64,
}

/// The warm cache over a versioned source (DynamoDB) and a snapshot fallback (S3).
pub struct MappingCache<D, S = NoSnapshot> {
    dynamo: D,
    fallback: S,
    clock: Arc<dyn Clock>,
    options: CacheOptions,
    current: ArcSwapOption<Current>,
    /// Clock second at or after which the next call checks the version.
    next_check: AtomicU64,
    refresh: tokio::sync::Mutex<()>,
}

impl<D: VersionedSource, S: SnapshotSource> std::fmt::Debug for MappingCache<D, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappingCache")
            .field("options", &self.options)
            .field("current", &self.status())
            .finish_non_exhaustive()
    }
}

async fn bounded<T>(
    limit: Duration,
    operation: &'static str,
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Timeout {
            operation,
            millis: limit.as_millis() as u64,
        }),
    }
}

impl<D: VersionedSource, S: SnapshotSource> MappingCache<D, S> {
    /// A cold cache: the first [`current`](Mappings::current) (or [`prime`](Self::prime))
    /// loads.
    pub fn new(dynamo: D, fallback: S, clock: Arc<dyn Clock>, options: CacheOptions) -> Self {
        MappingCache {
            dynamo,
            fallback,
            clock,
            options,
            current: ArcSwapOption::empty(),
            next_check: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads now if cold (at container start, so the first request does not wait). A failure
    /// is logged and retried by the next call.
    pub async fn prime(&self) {
        let _ = self.current().await;
    }

    /// The source and version being served, `None` when cold or failed closed.
    pub fn status(&self) -> Option<(Source, u64)> {
        self.current
            .load()
            .as_ref()
            .map(|c| (c.source, c.snapshot.version()))
    }

    /// The DynamoDB source.
    pub fn source(&self) -> &D {
        &self.dynamo
    }

    async fn serve(&self) -> Result<Arc<Snapshot>, Unavailable> {
        let now = self.clock.now();
        if let Some(cur) = self.current.load_full() {
            if now < self.next_check.load(Ordering::Acquire) {
                return Ok(Arc::clone(&cur.snapshot));
            }
            let Ok(_guard) = self.refresh.try_lock() else {
                // Someone else is refreshing: no request waits on a refresh it does not need.
                return Ok(Arc::clone(&cur.snapshot));
            };
            // The refresh that held the lock may have just finished.
            if now < self.next_check.load(Ordering::Acquire) {
                if let Some(cur) = self.current.load_full() {
                    return Ok(Arc::clone(&cur.snapshot));
                }
            }
            return self.refresh_warm(cur, now).await;
        }
        let _guard = self.refresh.lock().await;
        if let Some(cur) = self.current.load_full() {
            return Ok(Arc::clone(&cur.snapshot));
        }
        self.load_cold(now).await
    }

    fn install(&self, current: Current, now: u64) -> Arc<Snapshot> {
        let snapshot = Arc::clone(&current.snapshot);
        let is_new = self
            .current
            .load()
            .as_ref()
            .is_none_or(|c| !Arc::ptr_eq(&c.snapshot, &snapshot));
        if is_new {
            crate::metrics::mapping_loaded(current.source.as_str(), snapshot.version());
        }
        self.current.store(Some(Arc::new(current)));
        self.next_check
            .store(now.saturating_add(self.options.ttl), Ordering::Release);
        snapshot
    }

    async fn load_dynamo(&self, now: u64) -> Result<Current, StoreError> {
        let loaded = bounded(
            self.options.load_timeout,
            "loading the mappings from DynamoDB",
            self.dynamo.load(),
        )
        .await?;
        Ok(Current {
            snapshot: Arc::new(
                Snapshot::new(loaded.head.version, loaded.entries).with_kinds(loaded.head.apis),
            ),
            source: Source::Dynamo,
            generation: Some(loaded.head.generation),
            confirmed_at: now,
        })
    }

    /// Loads the version `head` names. From the S3 object when the version record vouches
    /// for it (one GetObject, its bytes checked against the recorded SHA-256): at 10 000
    /// entries that is one request instead of a Query per page and shard. From the
    /// generation otherwise, and whenever the object is missing, other or corrupt.
    async fn load_version(&self, head: &Head, now: u64) -> Result<(Current, Via), StoreError> {
        if let Some(digest) = head.vouched_snapshot() {
            // The check's timeout, not the load's: a slow or oversized object must leave the
            // generation load its time within the function's timeout.
            let fetched = bounded(
                self.options.check_timeout,
                "loading the S3 snapshot the version record names",
                self.fallback.fetch_verified(digest),
            )
            .await;
            match fetched {
                Ok(doc) => {
                    let current = Current {
                        // The version record's kinds, which the object's must be anyway:
                        // the record is the source of truth.
                        snapshot: Arc::new(
                            Snapshot::new(head.version, doc.mappings).with_kinds(head.apis.clone()),
                        ),
                        source: Source::Dynamo,
                        generation: Some(head.generation.clone()),
                        confirmed_at: now,
                    };
                    return Ok((current, Via::Snapshot));
                }
                Err(StoreError::NoBucket) => {}
                Err(e) => {
                    tracing::warn!(version = head.version, reason = %e, "not loading the snapshot the version record names; reading the generation");
                }
            }
        }
        Ok((self.load_dynamo(now).await?, Via::Generation))
    }

    /// The fallback: the S3 object, when DynamoDB could not give the current set. When the
    /// version record was read and names a snapshot digest (of any version), only an object
    /// with that digest is taken: the record says what the object should be, so anything
    /// else in the bucket (written by someone who can write it but not the table) is refused
    /// and the cache fails closed. Without a record (DynamoDB down) the object is taken as
    /// it is: it is then the only source.
    async fn load_s3(
        &self,
        now: u64,
        named: Option<&SnapshotDigest>,
    ) -> Result<Current, StoreError> {
        let fetch = async {
            match named {
                Some(digest) => self.fallback.fetch_verified(digest).await,
                None => self.fallback.fetch().await,
            }
        };
        let doc = bounded(self.options.load_timeout, "loading the S3 snapshot", fetch).await?;
        Ok(Current {
            snapshot: Arc::new(Snapshot::from_document(doc)),
            source: Source::S3,
            generation: None,
            confirmed_at: now,
        })
    }

    async fn load_cold(&self, now: u64) -> Result<Arc<Snapshot>, Unavailable> {
        let head = bounded(
            self.options.check_timeout,
            "checking the mappings version",
            self.dynamo.head(),
        )
        .await;
        let (named, loaded) = match head {
            Ok(head) => (head.snapshot.clone(), self.load_version(&head, now).await),
            Err(e) => (None, Err(e)),
        };
        let dynamo_error = match loaded {
            Ok((cur, via)) => {
                tracing::info!(
                    source = "dynamodb",
                    via = via.as_str(),
                    version = cur.snapshot.version(),
                    entries = cur.snapshot.len(),
                    reason = "cold start",
                    "mappings loaded"
                );
                return Ok(self.install(cur, now));
            }
            Err(e) => e,
        };
        crate::metrics::mapping_refresh_failed(Source::Dynamo.as_str());
        match self.load_s3(now, named.as_ref()).await {
            Ok(cur) => {
                tracing::warn!(source = "s3", version = cur.snapshot.version(), entries = cur.snapshot.len(), reason = %format!("DynamoDB failed at cold start: {dynamo_error}"), "mappings loaded from the fallback");
                Ok(self.install(cur, now))
            }
            Err(s3_error) => {
                crate::metrics::mapping_refresh_failed(Source::S3.as_str());
                tracing::error!(dynamodb_error = %dynamo_error, s3_error = %s3_error, "no mappings: failing closed; retrying on the next invocation");
                Err(Unavailable {
                    dynamo: Box::new(dynamo_error),
                    s3: Box::new(s3_error),
                    stale_for: None,
                })
            }
        }
    }

    async fn refresh_warm(
        &self,
        cur: Arc<Current>,
        now: u64,
    ) -> Result<Arc<Snapshot>, Unavailable> {
        let head = bounded(
            self.options.check_timeout,
            "checking the mappings version",
            self.dynamo.head(),
        )
        .await;
        let mut named = None;
        let error = match head {
            Ok(head)
                if cur.source == Source::Dynamo
                    && head.version == cur.snapshot.version()
                    && cur.generation.as_deref() == Some(&*head.generation) =>
            {
                tracing::debug!(
                    source = "dynamodb",
                    version = head.version,
                    "mappings unchanged"
                );
                let confirmed = Current {
                    snapshot: Arc::clone(&cur.snapshot),
                    source: cur.source,
                    generation: cur.generation.clone(),
                    confirmed_at: now,
                };
                return Ok(self.install(confirmed, now));
            }
            Ok(head) => {
                let reason = if cur.source == Source::Dynamo {
                    format!(
                        "version changed from {} to {}",
                        cur.snapshot.version(),
                        head.version
                    )
                } else {
                    "DynamoDB is back; replacing the S3 snapshot".to_owned()
                };
                named = head.snapshot.clone();
                match self.load_version(&head, now).await {
                    Ok((new, via)) => {
                        tracing::info!(source = "dynamodb", via = via.as_str(), version = new.snapshot.version(), entries = new.snapshot.len(), %reason, "mappings loaded");
                        return Ok(self.install(new, now));
                    }
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        crate::metrics::mapping_refresh_failed(Source::Dynamo.as_str());
        let stale_for = now.saturating_sub(cur.confirmed_at);
        if stale_for <= self.options.max_stale {
            tracing::warn!(source = cur.source.as_str(), version = cur.snapshot.version(), stale_for, max_stale = self.options.max_stale, reason = %error, "DynamoDB failed; serving the last good snapshot");
            // Try again in one TTL; `confirmed_at` stays, so staleness keeps counting.
            self.next_check
                .store(now.saturating_add(self.options.ttl), Ordering::Release);
            return Ok(Arc::clone(&cur.snapshot));
        }
        match self.load_s3(now, named.as_ref()).await {
            Ok(new) => {
                tracing::warn!(source = "s3", version = new.snapshot.version(), entries = new.snapshot.len(), reason = %format!("DynamoDB failed ({error}) and the last good snapshot was confirmed {stale_for} s ago"), "mappings loaded from the fallback");
                Ok(self.install(new, now))
            }
            Err(s3_error) => {
                crate::metrics::mapping_refresh_failed(Source::S3.as_str());
                tracing::error!(dynamodb_error = %error, s3_error = %s3_error, stale_for, "no usable mappings: failing closed; retrying on the next invocation");
                self.current.store(None);
                Err(Unavailable {
                    dynamo: Box::new(error),
                    s3: Box::new(s3_error),
                    stale_for: Some(stale_for),
                })
            }
        }
    }
}

impl<D: VersionedSource, S: SnapshotSource> Mappings for MappingCache<D, S> {
    async fn current(&self) -> Result<Arc<Snapshot>, Unavailable> {
        self.serve().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::mapping::entry::Mapping;
    use crate::mapping::file::Document;
    use crate::mapping::store::{Loaded, SnapshotDigest};
    use crate::policy::Effect;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    fn entry(scope: &str, effect: &str) -> Mapping {
        serde_json::from_str(&format!(
            r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"orders","scope":"{scope}","effect":"{effect}"}}"#
        ))
        .unwrap()
    }

    fn head(version: u64) -> Head {
        Head {
            version,
            generation: "g".into(),
            previous: None,
            shards: 1,
            entries: 1,
            updated_at: String::new(),
            updated_by: String::new(),
            snapshot: None,
            apis: Default::default(),
        }
    }

    /// The digest the fake S3 checks: of the entries as JSON.
    fn digest(version: u64, mappings: &[Mapping]) -> SnapshotDigest {
        SnapshotDigest {
            version,
            sha256: crate::mapping::store::s3::sha256_hex(&serde_json::to_vec(mappings).unwrap()),
        }
    }

    #[derive(Default)]
    struct FakeDynamo {
        state: Mutex<(u64, Vec<Mapping>)>,
        snapshot: Mutex<Option<SnapshotDigest>>,
        down: AtomicBool,
        hang: AtomicBool,
        heads: AtomicU64,
        loads: AtomicU64,
        /// The version record answers, the generation does not.
        loads_fail: AtomicBool,
        gate: tokio::sync::Notify,
    }

    impl FakeDynamo {
        fn set(&self, version: u64, entries: Vec<Mapping>) {
            *self.state.lock().unwrap() = (version, entries);
        }
        fn fail(&self) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::service(
                    "GetItem",
                    crate::mapping::store::Fault::Unreachable(Box::new(std::io::Error::from(
                        std::io::ErrorKind::ConnectionRefused,
                    ))),
                ));
            }
            Ok(())
        }
    }

    impl VersionedSource for Arc<FakeDynamo> {
        async fn head(&self) -> Result<Head, StoreError> {
            self.heads.fetch_add(1, Ordering::SeqCst);
            if self.hang.load(Ordering::SeqCst) {
                self.gate.notified().await;
            }
            self.fail()?;
            Ok(Head {
                snapshot: self.snapshot.lock().unwrap().clone(),
                ..head(self.state.lock().unwrap().0)
            })
        }
        async fn load(&self) -> Result<Loaded, StoreError> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            self.fail()?;
            if self.loads_fail.load(Ordering::SeqCst) {
                return Err(StoreError::service(
                    "Query",
                    crate::mapping::store::Fault::TimedOut,
                ));
            }
            let (v, e) = self.state.lock().unwrap().clone();
            Ok(Loaded {
                head: head(v),
                entries: e,
            })
        }
    }

    #[derive(Default)]
    struct FakeS3 {
        doc: Mutex<Option<Document>>,
        fetches: AtomicU64,
        verified: AtomicU64,
    }

    impl SnapshotSource for Arc<FakeS3> {
        async fn fetch(&self) -> Result<Document, StoreError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            self.doc
                .lock()
                .unwrap()
                .clone()
                .ok_or(StoreError::NoSnapshot {
                    location: "s3://b/k".into(),
                })
        }

        async fn fetch_verified(&self, want: &SnapshotDigest) -> Result<Document, StoreError> {
            self.verified.fetch_add(1, Ordering::SeqCst);
            let doc = self
                .doc
                .lock()
                .unwrap()
                .clone()
                .ok_or(StoreError::NoSnapshot {
                    location: "s3://b/k".into(),
                })?;
            if digest(doc.version.unwrap_or(0), &doc.mappings) != *want {
                return Err(StoreError::Corrupt {
                    what: "snapshot s3://b/k".into(),
                    reason: "its SHA-256 is not the one the version record names".into(),
                });
            }
            Ok(doc)
        }
    }

    fn doc(version: u64, mappings: Vec<Mapping>) -> Option<Document> {
        Some(Document {
            version: Some(version),
            mappings,
            ..Document::default()
        })
    }

    struct Rig {
        d: Arc<FakeDynamo>,
        s: Arc<FakeS3>,
        clock: Arc<ManualClock>,
        cache: Arc<MappingCache<Arc<FakeDynamo>, Arc<FakeS3>>>,
    }

    fn rig() -> Rig {
        let d = Arc::new(FakeDynamo::default());
        let s = Arc::new(FakeS3::default());
        let clock = Arc::new(ManualClock::new(1_000));
        let options = CacheOptions {
            ttl: 60,
            max_stale: 600,
            check_timeout: Duration::from_millis(200),
            load_timeout: Duration::from_millis(500),
        };
        let cache = Arc::new(MappingCache::new(
            Arc::clone(&d),
            Arc::clone(&s),
            clock.clone(),
            options,
        ));
        Rig { d, s, clock, cache }
    }

    fn allows(snapshot: &Snapshot, scope: &str) -> bool {
        snapshot
            .policy_for([scope], API, "dev")
            .evaluate(&format!("{API}/dev/GET/orders"))
            == Effect::Allow
    }

    #[tokio::test]
    async fn cold_start_loads_from_dynamodb_then_serves_without_io_until_the_ttl() {
        let r = rig();
        r.d.set(3, vec![entry("a", "Allow")]);
        let s = r.cache.current().await.unwrap();
        assert_eq!(s.version(), 3);
        assert!(allows(&s, "a"));
        assert_eq!(r.cache.status(), Some((Source::Dynamo, 3)));
        assert_eq!(r.d.heads.load(Ordering::SeqCst), 1, "the cold start's read");
        for _ in 0..10 {
            r.clock.advance(5);
            r.cache.current().await.unwrap();
        }
        assert_eq!(
            r.d.heads.load(Ordering::SeqCst),
            1,
            "no check before the TTL"
        );
        assert_eq!(r.d.loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn after_the_ttl_one_cheap_check_and_a_reload_only_on_change() {
        let r = rig();
        r.d.set(3, vec![entry("a", "Allow")]);
        r.cache.current().await.unwrap();
        r.clock.advance(60);
        assert_eq!(r.cache.current().await.unwrap().version(), 3);
        assert_eq!(
            (
                r.d.heads.load(Ordering::SeqCst),
                r.d.loads.load(Ordering::SeqCst)
            ),
            (2, 1)
        );
        r.d.set(4, vec![entry("a", "Deny")]);
        r.clock.advance(30);
        assert_eq!(
            r.cache.current().await.unwrap().version(),
            3,
            "within the TTL of the last check"
        );
        r.clock.advance(30);
        let s = r.cache.current().await.unwrap();
        assert_eq!(s.version(), 4);
        assert!(!allows(&s, "a"));
        assert_eq!(
            (
                r.d.heads.load(Ordering::SeqCst),
                r.d.loads.load(Ordering::SeqCst)
            ),
            (3, 2)
        );
    }

    #[tokio::test]
    async fn cold_start_falls_back_to_s3_then_fails_closed_and_retries() {
        let r = rig();
        r.d.down.store(true, Ordering::SeqCst);
        *r.s.doc.lock().unwrap() = doc(2, vec![entry("a", "Allow")]);
        assert_eq!(r.cache.current().await.unwrap().version(), 2);
        assert_eq!(r.cache.status(), Some((Source::S3, 2)));

        let r = rig();
        r.d.down.store(true, Ordering::SeqCst);
        let err = r.cache.current().await.unwrap_err().to_string();
        assert!(
            err.contains("connection refused") && err.contains("s3://b/k"),
            "{err}"
        );
        assert!(r.cache.current().await.is_err());
        assert_eq!(
            r.d.heads.load(Ordering::SeqCst),
            2,
            "retried on the next call"
        );
        r.d.down.store(false, Ordering::SeqCst);
        r.d.set(5, vec![]);
        assert_eq!(r.cache.current().await.unwrap().version(), 5);
    }

    #[tokio::test]
    async fn an_s3_start_switches_to_dynamodb_when_it_is_back() {
        let r = rig();
        r.d.down.store(true, Ordering::SeqCst);
        *r.s.doc.lock().unwrap() = doc(2, vec![]);
        r.cache.current().await.unwrap();
        r.d.down.store(false, Ordering::SeqCst);
        r.d.set(2, vec![entry("a", "Allow")]);
        r.clock.advance(60);
        r.cache.current().await.unwrap();
        assert_eq!(
            r.cache.status(),
            Some((Source::Dynamo, 2)),
            "same version number, but S3 is only a fallback"
        );
    }

    #[tokio::test]
    async fn warm_dynamodb_failure_serves_stale_then_s3_then_fails_closed() {
        let r = rig();
        r.d.set(3, vec![entry("a", "Allow")]);
        r.cache.current().await.unwrap();
        r.d.down.store(true, Ordering::SeqCst);
        *r.s.doc.lock().unwrap() = doc(2, vec![]);
        for _ in 0..10 {
            r.clock.advance(60);
            assert_eq!(
                r.cache.current().await.unwrap().version(),
                3,
                "stale within max_stale"
            );
        }
        assert_eq!(r.s.fetches.load(Ordering::SeqCst), 0);
        r.clock.advance(60);
        let s = r.cache.current().await.unwrap();
        assert_eq!((s.version(), r.cache.status().unwrap().0), (2, Source::S3));
        assert!(!allows(&s, "a"));
        // S3 goes too, past max_stale again: fail closed.
        *r.s.doc.lock().unwrap() = None;
        r.clock.advance(700);
        assert!(r.cache.current().await.is_err());
        assert_eq!(r.cache.status(), None);
        // DynamoDB back: the next call loads it.
        r.d.down.store(false, Ordering::SeqCst);
        assert_eq!(r.cache.current().await.unwrap().version(), 3);
    }

    #[tokio::test]
    async fn one_refresh_at_a_time_and_nobody_else_waits() {
        let r = rig();
        r.d.set(3, vec![]);
        r.cache.current().await.unwrap();
        r.clock.advance(60);
        r.d.hang.store(true, Ordering::SeqCst);
        let c = Arc::clone(&r.cache);
        let refresher = tokio::spawn(async move { c.current().await });
        while r.d.heads.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        for _ in 0..20 {
            assert_eq!(r.cache.current().await.unwrap().version(), 3);
        }
        assert_eq!(r.d.heads.load(Ordering::SeqCst), 2, "one check in flight");
        r.d.hang.store(false, Ordering::SeqCst);
        r.d.gate.notify_waiters();
        refresher.await.unwrap().unwrap();
    }

    /// Under paused time: the hung check is given up exactly at the check timeout (tokio's
    /// clock advances only through timers), not at the load's, and the stale set is served.
    #[tokio::test(start_paused = true)]
    async fn a_hung_check_times_out_and_serves_stale() {
        let r = rig();
        r.d.set(3, vec![]);
        r.cache.current().await.unwrap();
        r.clock.advance(60);
        r.d.hang.store(true, Ordering::SeqCst);
        let heads = r.d.heads.load(Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        assert_eq!(r.cache.current().await.unwrap().version(), 3);
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        assert_eq!(
            r.d.heads.load(Ordering::SeqCst),
            heads + 1,
            "the check was asked"
        );
    }

    #[tokio::test]
    async fn a_cold_start_reads_the_snapshot_the_version_record_vouches_for() {
        let r = rig();
        let set = vec![entry("a", "Allow")];
        r.d.set(5, set.clone());
        *r.s.doc.lock().unwrap() = doc(5, set.clone());
        *r.d.snapshot.lock().unwrap() = Some(digest(5, &set));
        let s = r.cache.current().await.unwrap();
        assert_eq!(s.version(), 5);
        assert!(allows(&s, "a"));
        assert_eq!(r.d.heads.load(Ordering::SeqCst), 1);
        assert_eq!(r.s.verified.load(Ordering::SeqCst), 1);
        assert_eq!(r.d.loads.load(Ordering::SeqCst), 0, "no generation read");
        assert_eq!(r.cache.status(), Some((Source::Dynamo, 5)));

        // A later version, vouched for too: the warm reload takes the same road.
        let set = vec![entry("a", "Deny")];
        r.d.set(6, set.clone());
        *r.s.doc.lock().unwrap() = doc(6, set.clone());
        *r.d.snapshot.lock().unwrap() = Some(digest(6, &set));
        r.clock.advance(61);
        let s = r.cache.current().await.unwrap();
        assert_eq!(s.version(), 6);
        assert!(!allows(&s, "a"));
        assert_eq!(r.d.loads.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_snapshot_unlike_its_digest_or_of_an_older_version_is_not_used() {
        // The bucket holds more than the version record vouches for (written by someone
        // else): the generation is read, and the extra grant never counts.
        let r = rig();
        let set = vec![entry("a", "Allow")];
        r.d.set(5, set.clone());
        *r.s.doc.lock().unwrap() = doc(5, vec![entry("a", "Allow"), entry("b", "Allow")]);
        *r.d.snapshot.lock().unwrap() = Some(digest(5, &set));
        let s = r.cache.current().await.unwrap();
        assert_eq!(s.version(), 5);
        assert!(allows(&s, "a"));
        assert!(!allows(&s, "b"), "the tampered snapshot was used");
        assert_eq!(r.s.verified.load(Ordering::SeqCst), 1);
        assert_eq!(r.d.loads.load(Ordering::SeqCst), 1);

        // The digest names version 5 and DynamoDB is at 6: the object is not even fetched.
        let r = rig();
        r.d.set(6, vec![entry("a", "Deny")]);
        *r.s.doc.lock().unwrap() = doc(5, set.clone());
        *r.d.snapshot.lock().unwrap() = Some(digest(5, &set));
        let s = r.cache.current().await.unwrap();
        assert_eq!(s.version(), 6);
        assert!(!allows(&s, "a"));
        assert_eq!(r.s.verified.load(Ordering::SeqCst), 0);
        assert_eq!(r.d.loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_fallback_takes_only_the_object_a_readable_version_record_names() {
        // The record (version 5) names version 4's object; the generation cannot be read.
        let old = vec![entry("a", "Allow")];
        let rig_with = |object: Vec<Mapping>| {
            let r = rig();
            r.d.set(5, vec![entry("a", "Deny")]);
            *r.d.snapshot.lock().unwrap() = Some(digest(4, &old));
            r.d.loads_fail.store(true, Ordering::SeqCst);
            *r.s.doc.lock().unwrap() = doc(4, object);
            r
        };
        // The object it names: served, stale, from S3.
        let r = rig_with(old.clone());
        let s = r.cache.current().await.unwrap();
        assert_eq!(r.cache.status(), Some((Source::S3, 4)));
        assert!(allows(&s, "a"));
        assert_eq!(r.s.fetches.load(Ordering::SeqCst), 0, "never unverified");

        // Another object under the same version: refused, failing closed.
        let r = rig_with(vec![entry("a", "Allow"), entry("b", "Allow")]);
        let err = r.cache.current().await.unwrap_err().to_string();
        assert!(err.contains("SHA-256"), "{err}");
        assert_eq!(r.cache.status(), None);

        // DynamoDB wholly down: no record to check against, the object is the only source.
        let r = rig_with(vec![entry("a", "Allow"), entry("b", "Allow")]);
        r.d.down.store(true, Ordering::SeqCst);
        let s = r.cache.current().await.unwrap();
        assert!(allows(&s, "b"));
        assert_eq!(r.s.fetches.load(Ordering::SeqCst), 1);
    }
}
