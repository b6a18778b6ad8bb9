//! The DPoP replay check (RFC 9449 §11.1): a proof's `jti` is accepted once.
//!
//! Two layers:
//! - an in-container front, which remembers every proof this container accepted until its
//!   `iat` is too old for it to pass again. Most replays (a client retrying the same request,
//!   API Gateway's retries) reach the same warm container and cost no call;
//! - the replay table (`SCOPEGATE_DPOP_REPLAY_TABLE`), shared by every container: one
//!   conditional `PutItem` per new proof, which fails when the key is already there. The
//!   condition is atomic in DynamoDB, so of two containers sent the same proof at once,
//!   exactly one wins.
//!
//! Without the table only the front runs, so a proof replayed to another container passes;
//! the start logs a warning saying so. When the table cannot be asked the proof is refused
//! (fail closed), and `DpopReplayUnavailable` is counted, which an alarm watches.
//!
//! The key is [`Proof::replay_key`] (a hash of the key's thumbprint and the `jti`); the item
//! holds it, `expires_at` (Unix seconds, the attribute the table's TTL deletes on) and
//! `owner`, a random value per write. The condition is `attribute_not_exists(pk) OR
//! expires_at < :now OR owner = :me`: DynamoDB deletes expired items late (within days), so an
//! expired item may be overwritten, and the SDK's retry of a write whose answer was lost
//! carries the same owner, so the client's own proof is not taken for a replay.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::config::Config;
use crate::mapping::store::aws::{AwsConfig, AwsOptions, AwsSetupError};
use crate::token::dpop::Proof;
use crate::token::fetch::BoxFuture;
use crate::token::Rejection;

/// New proofs a second the front is sized for. A Lambda container answers one request at a
/// time, and a DPoP request costs about 80 µs of CPU plus the runtime's own round trip per
/// invocation, so one container cannot take 1 000 new proofs a second for long: a full front
/// means a flood. Without a table it is refused rather than forgotten; with one it only costs
/// calls (see [`ReplayGuard::first_use`]).
pub const FRONT_PROOFS_PER_SECOND: usize = 1_000;

/// The most proofs the front remembers for proofs that live `max_age` seconds (plus the
/// clock skew allowed ahead): [`FRONT_PROOFS_PER_SECOND`] for each second a proof can pass.
/// 66 000 at the default 60 s, 306 000 at the 300 s maximum (about 40 MB).
pub fn front_capacity(max_age: u64) -> usize {
    let life = max_age.saturating_add(crate::token::dpop::FUTURE_SKEW + 1);
    FRONT_PROOFS_PER_SECOND.saturating_mul(usize::try_from(life).unwrap_or(usize::MAX))
}

/// Where proofs seen by every container are recorded.
pub trait ReplayStore: Send + Sync + std::fmt::Debug + 'static {
    /// Records `key` until `keep_until`: `Ok(true)` when it was not there (the proof is
    /// new), `Ok(false)` when it was (a replay).
    ///
    /// # Errors
    /// What went wrong, in words that hold no request text.
    fn record<'a>(
        &'a self,
        key: &'a str,
        keep_until: u64,
        now: u64,
    ) -> BoxFuture<'a, Result<bool, String>>;
}

/// The replay table in DynamoDB: partition key `pk` (string), TTL on `expires_at`.
#[derive(Debug, Clone)]
pub struct DynamoReplayStore {
    client: Client,
    table: String,
}

impl DynamoReplayStore {
    /// A store over `table`.
    pub fn new(aws: &AwsConfig, table: &str) -> Self {
        Self {
            client: Client::new(&aws.sdk),
            table: table.to_owned(),
        }
    }

    /// Creates the table as template.yaml does (on-demand, `pk` string key, TTL on
    /// `expires_at`), for the tests and benchmarks on the emulators, which create a table at
    /// once (it does not wait for ACTIVE, as DynamoDB would need). `Ok(false)` when it exists
    /// already.
    ///
    /// # Errors
    /// The SDK's error, as a line.
    #[cfg(any(test, feature = "test-util"))]
    pub async fn create_table(&self) -> Result<bool, String> {
        use crate::mapping::store::sdk::{key_element, string_attribute};
        use aws_sdk_dynamodb::types::{BillingMode, KeyType, TimeToLiveSpecification};
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attribute("pk"))
            .key_schema(key_element("pk", KeyType::Hash))
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(crate::mapping::store::sdk::fault(e).to_string()),
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(|e| crate::mapping::store::sdk::fault(e).to_string())?;
        Ok(true)
    }
}

impl DynamoReplayStore {
    /// Whether `key` is in the table (a plain GetItem): for tests and benchmarks.
    ///
    /// # Errors
    /// The SDK's error, as a line.
    #[cfg(any(test, feature = "test-util"))]
    pub async fn contains(&self, key: &str) -> Result<bool, String> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .send()
            .await
            .map_err(|e| crate::mapping::store::sdk::fault(e).to_string())?;
        Ok(got.item.is_some())
    }
}

impl ReplayStore for DynamoReplayStore {
    fn record<'a>(
        &'a self,
        key: &'a str,
        keep_until: u64,
        now: u64,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let mut owner = [0u8; 16];
            aws_lc_rs::rand::fill(&mut owner).map_err(|_| "no random bytes".to_owned())?;
            self.record_as(key, keep_until, now, &URL_SAFE_NO_PAD.encode(owner))
                .await
        })
    }
}

impl DynamoReplayStore {
    /// [`ReplayStore::record`] by the writer `owner`, a random value per call. The condition
    /// lets the same owner's write through again: when the SDK retries a PutItem whose first
    /// attempt landed but whose answer was lost, the retry must not read as a replay of the
    /// client's own proof.
    async fn record_as(
        &self,
        key: &str,
        keep_until: u64,
        now: u64,
        owner: &str,
    ) -> Result<bool, String> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item("expires_at", AttributeValue::N(keep_until.to_string()))
            .item("owner", AttributeValue::S(owner.to_owned()))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now OR #owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":me", AttributeValue::S(owner.to_owned()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(format!(
                "PutItem on {}: {}",
                self.table,
                crate::mapping::store::sdk::fault(e)
            )),
        }
    }

    /// [`DynamoReplayStore::record_as`], for the emulator tests of the retry rule.
    ///
    /// # Errors
    /// As [`ReplayStore::record`].
    #[cfg(any(test, feature = "test-util"))]
    pub async fn record_by(
        &self,
        key: &str,
        keep_until: u64,
        now: u64,
        owner: &str,
    ) -> Result<bool, String> {
        self.record_as(key, keep_until, now, owner).await
    }
}

/// The replay store `config` names (`SCOPEGATE_DPOP_REPLAY_TABLE`), if any. Without one while
/// DPoP tokens are accepted, logs the warning the start owes the operator.
///
/// # Errors
/// [`AwsSetupError`] when the AWS configuration cannot be used.
pub async fn configured(
    config: &Config,
    aws: &AwsOptions,
) -> Result<Option<Box<dyn ReplayStore>>, AwsSetupError> {
    match &config.dpop.replay_table {
        Some(table) => {
            let aws = AwsConfig::load(aws).await?;
            Ok(Some(Box::new(DynamoReplayStore::new(&aws, table))))
        }
        None => {
            if config.bound_kinds.dpop {
                tracing::warn!(
                    "SCOPEGATE_DPOP_REPLAY_TABLE is not set: a DPoP proof is refused a second time only in the container that saw it; replayed to another container, it passes until its iat is SCOPEGATE_DPOP_MAX_AGE_SECONDS old"
                );
            }
            Ok(None)
        }
    }
}

/// The proofs this container accepted, each until its `keep_until`.
#[derive(Debug)]
struct Front {
    until: HashMap<Arc<str>, u64>,
    /// The same entries in `keep_until` order, so that expiry takes the oldest first without
    /// a scan (`iat`s arrive in any order within the allowed window).
    order: BTreeSet<(u64, Arc<str>)>,
    capacity: usize,
}

impl Front {
    fn new(capacity: usize) -> Self {
        Self {
            until: HashMap::new(),
            order: BTreeSet::new(),
            capacity,
        }
    }

    fn expire(&mut self, now: u64) {
        while self.order.first().is_some_and(|(until, _)| *until < now) {
            let (until, key) = self.order.pop_first().expect("just seen");
            if self.until.get(&key) == Some(&until) {
                self.until.remove(&key);
            }
        }
    }

    fn seen(&self, key: &str, now: u64) -> bool {
        self.until.get(key).is_some_and(|u| *u >= now)
    }

    /// Remembers `key`; `false` when full.
    fn remember(&mut self, key: &str, keep_until: u64) -> bool {
        if self.until.len() >= self.capacity {
            return false;
        }
        let key: Arc<str> = key.into();
        if let Some(old) = self.until.insert(Arc::clone(&key), keep_until) {
            self.order.remove(&(old, Arc::clone(&key)));
        }
        self.order.insert((keep_until, key));
        true
    }
}

/// The replay check: the front, then the table when there is one.
#[derive(Debug)]
pub struct ReplayGuard {
    front: Mutex<Front>,
    store: Option<Box<dyn ReplayStore>>,
}

impl ReplayGuard {
    /// A guard with the in-container front alone, for proofs that live `max_age` seconds.
    pub fn in_container(max_age: u64) -> Self {
        Self {
            front: Mutex::new(Front::new(front_capacity(max_age))),
            store: None,
        }
    }

    /// A guard with the front and `store`, the authority shared by every container.
    pub fn with_store(store: Box<dyn ReplayStore>, max_age: u64) -> Self {
        Self {
            front: Mutex::new(Front::new(front_capacity(max_age))),
            store: Some(store),
        }
    }

    /// Accepts `proof` if it was not seen before, and remembers it.
    ///
    /// # Errors
    /// [`Rejection::DpopReplayed`]; [`Rejection::ReplayUnavailable`] when the table cannot be
    /// asked, or (without a table) when the front is full of live proofs.
    pub async fn first_use(&self, proof: &Proof, now: u64) -> Result<(), Rejection> {
        let key = proof.replay_key.as_str();
        {
            let mut front = self.front.lock().unwrap_or_else(|p| p.into_inner());
            front.expire(now);
            if front.seen(key, now) {
                return Err(Rejection::DpopReplayed);
            }
            if self.store.is_none() {
                // Checked and remembered under one lock: of two requests with the same proof
                // in this container, one passes.
                return if front.remember(key, proof.keep_until) {
                    Ok(())
                } else {
                    Err(Rejection::ReplayUnavailable(
                        "no replay table, and this container's replay set is full of live proofs (a flood of new proofs)".into(),
                    ))
                };
            }
        }
        let store = self.store.as_deref().expect("checked above");
        let new = store
            .record(key, proof.keep_until, now)
            .await
            .map_err(Rejection::ReplayUnavailable)?;
        // Remembered either way, so the next replay here costs no call. A full front only
        // means more calls: the table is the authority.
        let mut front = self.front.lock().unwrap_or_else(|p| p.into_inner());
        front.remember(key, proof.keep_until);
        if new {
            Ok(())
        } else {
            Err(Rejection::DpopReplayed)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// An in-memory table with a call count: the subject here is the guard's logic.
    #[derive(Debug, Default)]
    struct Table {
        items: Mutex<HashMap<String, u64>>,
        calls: AtomicUsize,
        down: std::sync::atomic::AtomicBool,
    }

    impl ReplayStore for Arc<Table> {
        fn record<'a>(
            &'a self,
            key: &'a str,
            keep_until: u64,
            now: u64,
        ) -> BoxFuture<'a, Result<bool, String>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if self.down.load(Ordering::SeqCst) {
                    return Err("unreachable".into());
                }
                let mut items = self.items.lock().unwrap();
                match items.get(key) {
                    Some(u) if *u >= now => Ok(false),
                    _ => {
                        items.insert(key.to_owned(), keep_until);
                        Ok(true)
                    }
                }
            })
        }
    }

    fn proof(key: &str, keep_until: u64) -> Proof {
        Proof {
            replay_key: key.into(),
            keep_until,
        }
    }

    #[tokio::test]
    async fn a_proof_passes_once_in_a_container() {
        let g = ReplayGuard::in_container(60);
        assert_eq!(g.first_use(&proof("a", 160), 100).await, Ok(()));
        assert_eq!(
            g.first_use(&proof("a", 160), 101).await,
            Err(Rejection::DpopReplayed)
        );
        assert_eq!(g.first_use(&proof("b", 160), 101).await, Ok(()));
        // Past its time the key is forgotten; the proof's iat refuses it by then anyway.
        assert_eq!(g.first_use(&proof("a", 200), 161).await, Ok(()));
    }

    #[tokio::test]
    async fn the_table_decides_and_the_front_saves_calls() {
        let table = Arc::new(Table::default());
        let one = ReplayGuard::with_store(Box::new(Arc::clone(&table)), 60);
        let other = ReplayGuard::with_store(Box::new(Arc::clone(&table)), 60);
        assert_eq!(one.first_use(&proof("a", 160), 100).await, Ok(()));
        assert_eq!(table.calls.load(Ordering::SeqCst), 1);
        // Replayed to the same container: refused without a call.
        assert_eq!(
            one.first_use(&proof("a", 160), 100).await,
            Err(Rejection::DpopReplayed)
        );
        assert_eq!(table.calls.load(Ordering::SeqCst), 1);
        // Replayed to another container: the table refuses it.
        assert_eq!(
            other.first_use(&proof("a", 160), 100).await,
            Err(Rejection::DpopReplayed)
        );
        assert_eq!(table.calls.load(Ordering::SeqCst), 2);
        // And that container now refuses it without a call too.
        assert_eq!(
            other.first_use(&proof("a", 160), 101).await,
            Err(Rejection::DpopReplayed)
        );
        assert_eq!(table.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_table_that_cannot_be_asked_refuses_the_proof() {
        let table = Arc::new(Table::default());
        table.down.store(true, Ordering::SeqCst);
        let g = ReplayGuard::with_store(Box::new(Arc::clone(&table)), 60);
        assert!(matches!(
            g.first_use(&proof("a", 160), 100).await,
            Err(Rejection::ReplayUnavailable(_))
        ));
        // Nothing was remembered: once the table is back the proof is judged by it.
        table.down.store(false, Ordering::SeqCst);
        assert_eq!(g.first_use(&proof("a", 160), 100).await, Ok(()));
    }

    #[test]
    fn a_full_front_refuses_without_a_table_rather_than_forget() {
        let mut f = Front::new(1_000);
        for i in 0..1_000u64 {
            // keep_until out of insertion order, as iats within the window are.
            assert!(f.remember(&i.to_string(), 1000 + (i * 7919) % 300));
        }
        assert!(!f.remember("x", 1000));
        // Expiry takes exactly the entries past their time, whatever their order.
        f.expire(1150);
        let left = f.until.len();
        assert_eq!(
            left,
            (0..1_000u64)
                .filter(|i| 1000 + (i * 7919) % 300 >= 1150)
                .count()
        );
        assert_eq!(f.order.len(), left);
        assert!(f.remember("x", 1200));
        f.expire(1300);
        assert!(f.until.is_empty() && f.order.is_empty());
        assert_eq!(front_capacity(60), 66_000);
    }
}
