//! The DynamoDB mapping store (one of the two modules that use the AWS SDK; see
//! [`store`](super::store) for the table layout and why).
//!
//! Items are read and written with serde_dynamo through item structs that add the keys and
//! the audit fields to the canonical [`Mapping`] fields. Every item read is validated (its
//! fields, and that its key is the one its fields give): a corrupt item fails the whole load,
//! because skipping it could drop a Deny.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, DeleteRequest, KeySchemaElement,
    KeyType, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus, Put, PutRequest,
    ScalarAttributeType, SseSpecification, SseStatus, TableDescription, TransactWriteItem, Update,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};

use super::aws::AwsConfig;
use super::entry::{Mapping, Method, ResourcePath, Scope, Stage};
use super::sdk::service;
use super::store::{
    entry_key, new_generation, shard_of, shard_pk, ChangeNote, Edit, Head, HistoryRecord, Loaded,
    StoreError, VersionedSource, MAX_TRANSACTION_EDITS,
};
use crate::policy::{ApiArn, Effect};

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

const META_PK: &str = "META";
const META_SK: &str = "VERSION";
const HISTORY_PK: &str = "HISTORY";
const MIGRATION_PK: &str = "MIGRATION";

/// The version record as stored.
#[derive(Debug, Serialize, Deserialize)]
struct MetaItem {
    pk: String,
    sk: String,
    version: u64,
    generation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    shards: u32,
    entries: u64,
    updated_at: String,
    updated_by: String,
}

impl From<MetaItem> for Head {
    fn from(m: MetaItem) -> Head {
        Head {
            version: m.version,
            generation: m.generation,
            previous: m.previous,
            shards: m.shards,
            entries: m.entries,
            updated_at: m.updated_at,
            updated_by: m.updated_by,
        }
    }
}

/// A mapping entry as stored: the canonical fields, typed so that reading validates them,
/// plus keys and audit fields.
#[derive(Debug, Serialize, Deserialize)]
struct EntryItem {
    pk: String,
    sk: String,
    api: ApiArn,
    stage: Stage,
    method: Method,
    resource: ResourcePath,
    scope: Scope,
    effect: Effect,
    updated_at: String,
    updated_by: String,
}

impl EntryItem {
    fn new(m: &Mapping, generation: &str, shards: u32, at: &str, by: &str) -> EntryItem {
        let sk = entry_key(m);
        EntryItem {
            pk: shard_pk(generation, shard_of(&sk, shards)),
            sk,
            api: m.api.clone(),
            stage: m.stage.clone(),
            method: m.method,
            resource: m.resource.clone(),
            scope: m.scope.clone(),
            effect: m.effect,
            updated_at: at.to_owned(),
            updated_by: by.to_owned(),
        }
    }

    fn into_mapping(self) -> Mapping {
        Mapping {
            api: self.api,
            stage: self.stage,
            method: self.method,
            resource: self.resource,
            scope: self.scope,
            effect: self.effect,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct HistoryItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    record: HistoryRecord,
}

/// A recorded migration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MigrationRecord {
    /// The migration id (its file name without `.json`).
    pub id: String,
    /// When it was applied.
    pub applied_at: String,
    /// Who applied it.
    pub actor: String,
    /// A checksum of the migration file, to notice edits after the fact.
    pub checksum: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct MigrationItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    record: MigrationRecord,
}

fn item_name(item: &Item) -> String {
    let get = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("item pk={:?} sk={:?}", get("pk"), get("sk"))
}

fn corrupt(item: &Item, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: item_name(item),
        reason: reason.to_string(),
    }
}

/// Decodes one entry item as the cold load does (see [`parse_entry`]): public for the
/// `mapping` fuzz target, which feeds it arbitrary items.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the item and what is wrong with it.
pub fn decode_entry(
    item: HashMap<String, AttributeValue>,
    generation: &str,
    shards: u32,
) -> Result<Mapping, StoreError> {
    parse_entry(item, generation, shards)
}

/// Parses one entry item, checking that its key is the one its fields give (an item whose
/// fields were edited by hand into another entry's key is refused).
fn parse_entry(item: Item, generation: &str, shards: u32) -> Result<Mapping, StoreError> {
    let name = item_name(&item);
    let bad = |reason: String| StoreError::Corrupt {
        what: name.clone(),
        reason,
    };
    let parsed: EntryItem = from_item(item).map_err(|e| bad(e.to_string()))?;
    let expected_sk = entry_key(&parsed.clone_mapping());
    if parsed.sk != expected_sk {
        return Err(bad(format!(
            "its key does not match its fields (expected sk {expected_sk:?})"
        )));
    }
    let expected_pk = shard_pk(generation, shard_of(&expected_sk, shards));
    if parsed.pk != expected_pk {
        return Err(bad(format!(
            "it is in the wrong partition (expected {expected_pk:?})"
        )));
    }
    Ok(parsed.into_mapping())
}

impl EntryItem {
    fn clone_mapping(&self) -> Mapping {
        Mapping {
            api: self.api.clone(),
            stage: self.stage.clone(),
            method: self.method,
            resource: self.resource.clone(),
            scope: self.scope.clone(),
            effect: self.effect,
        }
    }
}

/// A fresh ClientRequestToken: the SDK's own retry of a transaction whose answer was lost
/// then returns the first outcome instead of failing on the version it already moved.
fn request_token() -> String {
    new_generation(0)
}

/// A progress callback of a bulk write: `(entries written, total)`.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Send + Sync);

/// The DynamoDB mapping store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    /// Concurrent BatchWriteItem calls during a bulk write.
    write_concurrency: usize,
}

impl DynamoStore {
    /// A store over `table`.
    pub fn new(aws: &AwsConfig, table: &str) -> DynamoStore {
        DynamoStore {
            client: Client::new(&aws.sdk),
            table: table.into(),
            write_concurrency: 8,
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Maps an SDK error of `operation` to a [`StoreError`]: the table's
    /// ResourceNotFoundException is [`StoreError::TableNotFound`], so that every command
    /// says the same thing about a missing (or misspelt) table and none creates it.
    fn fail<E, R>(&self, operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let table = self.table.to_string();
        move |e| {
            if e.code() == Some("ResourceNotFoundException") {
                StoreError::TableNotFound {
                    table,
                    location: None,
                }
            } else {
                service(operation)(e)
            }
        }
    }

    // ----- table lifecycle -------------------------------------------------------------

    /// Whether the table exists.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn exists(&self) -> Result<bool, StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&*self.table)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(service("DescribeTable")(e)),
        }
    }

    /// Creates the table (keys `pk`/`sk`, strings; on-demand billing) unless it exists, and
    /// waits until it is active. Returns whether it was created.
    ///
    /// It gets the protections template.yaml gives it: deletion protection, server-side
    /// encryption with the AWS managed KMS key, and point-in-time recovery (35 days of
    /// restores). A table made by hand would lack them, and the mappings decide who may call
    /// what.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn create_table(&self) -> Result<bool, StoreError> {
        if self.exists().await? {
            self.wait_active().await?;
            return Ok(false);
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type set")
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("name and type set")
        };
        let created = self
            .client
            .create_table()
            .table_name(&*self.table)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .billing_mode(BillingMode::PayPerRequest)
            .deletion_protection_enabled(true)
            .sse_specification(SseSpecification::builder().enabled(true).build())
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Someone else created it meanwhile: fine.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(self.fail("CreateTable")(e)),
        }
        self.wait_active().await?;
        self.client
            .update_continuous_backups()
            .table_name(&*self.table)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .expect("enabled set"),
            )
            .send()
            .await
            .map_err(self.fail("UpdateContinuousBackups"))?;
        Ok(true)
    }

    /// The table's protections: (deletion protection, SSE, point-in-time recovery).
    ///
    /// # Errors
    /// [`StoreError::TableNotFound`]; [`StoreError::Service`].
    pub async fn protections(&self) -> Result<(bool, bool, bool), StoreError> {
        let table = self
            .client
            .describe_table()
            .table_name(&*self.table)
            .send()
            .await
            .map_err(self.fail("DescribeTable"))?
            .table
            .unwrap_or_else(|| TableDescription::builder().build());
        let backups = self
            .client
            .describe_continuous_backups()
            .table_name(&*self.table)
            .send()
            .await
            .map_err(self.fail("DescribeContinuousBackups"))?;
        let pitr = backups
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            == Some(&PointInTimeRecoveryStatus::Enabled);
        let sse = table
            .sse_description()
            .and_then(|s| s.status())
            .is_some_and(|s| *s == SseStatus::Enabled || *s == SseStatus::Enabling);
        Ok((table.deletion_protection_enabled() == Some(true), sse, pitr))
    }

    /// The SDK's TableExists waiter (the AWS CLI's `wait table-exists`): the first check is
    /// at once, then every 20 s or more, up to five minutes.
    async fn wait_active(&self) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::client::Waiters;
        const MAX_WAIT: Duration = Duration::from_secs(300);
        match self
            .client
            .wait_until_table_exists()
            .table_name(&*self.table)
            .wait(MAX_WAIT)
            .await
        {
            Ok(_) => Ok(()),
            Err(
                aws_sdk_dynamodb::waiters::table_exists::WaitUntilTableExistsError::ExceededMaxWait(
                    _,
                ),
            ) => Err(StoreError::Timeout {
                operation: "waiting for the table to be active",
                millis: MAX_WAIT.as_millis() as u64,
            }),
            Err(e) => Err(StoreError::Service {
                operation: "DescribeTable",
                code: None,
                message: crate::error_text::one_line(&e),
            }),
        }
    }

    /// Deletes the table (tests and teardown).
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn delete_table(&self) -> Result<(), StoreError> {
        self.client
            .update_table()
            .table_name(&*self.table)
            .deletion_protection_enabled(false)
            .send()
            .await
            .map_err(self.fail("UpdateTable"))?;
        self.client
            .delete_table()
            .table_name(&*self.table)
            .send()
            .await
            .map_err(self.fail("DeleteTable"))?;
        Ok(())
    }

    /// Writes the version record of an empty store (version 0) unless there is one. Returns
    /// whether it was written.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn init_version(&self, shards: u32, actor: &str) -> Result<bool, StoreError> {
        let meta = MetaItem {
            pk: META_PK.into(),
            sk: META_SK.into(),
            version: 0,
            generation: new_generation(0),
            previous: None,
            shards: shards.clamp(1, 100),
            entries: 0,
            updated_at: crate::clock::rfc3339_now(),
            updated_by: actor.to_owned(),
        };
        self.put_if_absent(to_item(&meta).expect("serializable"))
            .await
    }

    // ----- reads -----------------------------------------------------------------------

    /// The version record (strongly consistent).
    ///
    /// # Errors
    /// [`StoreError::NotInitialised`] without one; [`StoreError::Corrupt`];
    /// [`StoreError::Service`].
    pub async fn read_head(&self) -> Result<Head, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key(META_PK, META_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(self.fail("GetItem"))?;
        let item = out.item.ok_or_else(|| StoreError::NotInitialised {
            table: self.table.to_string(),
        })?;
        let meta: MetaItem = from_item(item.clone()).map_err(|e| corrupt(&item, e))?;
        if meta.shards == 0 {
            return Err(corrupt(&item, "shards is 0"));
        }
        Ok(meta.into())
    }

    async fn query_all(
        &self,
        pk: String,
        limit: Option<i32>,
        forward: bool,
        read: Option<&std::sync::atomic::AtomicUsize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&pk))
                .consistent_read(true)
                .scan_index_forward(forward)
                .set_limit(limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(self.fail("Query"))?;
            let page = out.items.unwrap_or_default();
            if let Some(read) = read {
                read.fetch_add(page.len(), std::sync::atomic::Ordering::Relaxed);
            }
            items.extend(page);
            if limit.is_some_and(|l| items.len() >= l as usize) {
                break;
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Every entry of `generation` (one Query per shard, run in parallel).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for any bad item; [`StoreError::Service`].
    pub async fn read_generation(
        &self,
        generation: &str,
        shards: u32,
    ) -> Result<Vec<Mapping>, StoreError> {
        self.read_generation_with(generation, shards, 0, &|_, _| {})
            .await
    }

    /// [`read_generation`](Self::read_generation), calling `progress(read, expected)` about
    /// every 200 ms while the Queries run.
    async fn read_generation_with(
        &self,
        generation: &str,
        shards: u32,
        expected: u64,
        progress: Progress<'_>,
    ) -> Result<Vec<Mapping>, StoreError> {
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for shard in 0..shards {
            let this = self.clone();
            let pk = shard_pk(generation, shard);
            let read = Arc::clone(&read);
            tasks.spawn(async move { this.query_all(pk, None, true, Some(&read)).await });
        }
        let expected = usize::try_from(expected).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            let joined = tokio::select! {
                joined = tasks.join_next() => joined,
                _ = tick.tick() => {
                    progress(read.load(std::sync::atomic::Ordering::Relaxed), expected);
                    continue;
                }
            };
            let Some(joined) = joined else { break };
            let part = joined.map_err(|e| StoreError::Service {
                operation: "Query",
                code: None,
                message: e.to_string(),
            })??;
            items.extend(part);
        }
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            entries.push(parse_entry(item, generation, shards)?);
        }
        // Shards come back in any order; a stable order makes exports and diffs repeatable.
        entries.sort();
        Ok(entries)
    }

    /// The current generation, consistent: re-reads the version record after the Queries
    /// and starts again if the generation was switched out and may have been deleted.
    ///
    /// # Errors
    /// As [`read_head`](Self::read_head) and [`read_generation`](Self::read_generation).
    pub async fn load_current(&self) -> Result<Loaded, StoreError> {
        self.load_current_with(&|_, _| {}).await
    }

    /// [`load_current`](Self::load_current), calling `progress(read, total)` as entries
    /// arrive (for exports of large sets).
    ///
    /// # Errors
    /// As [`load_current`](Self::load_current).
    pub async fn load_current_with(&self, progress: Progress<'_>) -> Result<Loaded, StoreError> {
        let mut attempts = 0;
        loop {
            let head = self.read_head().await?;
            let entries = self
                .read_generation_with(&head.generation, head.shards, head.entries, progress)
                .await?;
            let after = self.read_head().await?;
            let still_there = after.generation == head.generation
                || after.previous.as_deref() == Some(&*head.generation);
            if still_there || attempts >= 3 {
                if !still_there {
                    return Err(StoreError::Conflict {
                        read: head.version,
                        found: Some(after.version),
                    });
                }
                return Ok(Loaded { head, entries });
            }
            attempts += 1;
        }
    }

    /// The entry with `target`'s target (its effect ignored) in the current generation.
    ///
    /// # Errors
    /// As [`read_head`](Self::read_head).
    pub async fn get(&self, target: &Mapping) -> Result<Option<Mapping>, StoreError> {
        let head = self.read_head().await?;
        let sk = entry_key(target);
        let pk = shard_pk(&head.generation, shard_of(&sk, head.shards));
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key(&pk, &sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(self.fail("GetItem"))?;
        out.item
            .map(|item| parse_entry(item, &head.generation, head.shards))
            .transpose()
    }

    /// The newest `limit` history records, newest first.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`]; [`StoreError::Service`].
    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryRecord>, StoreError> {
        let limit = i32::try_from(limit.clamp(1, 10_000)).unwrap_or(10_000);
        let items = self
            .query_all(HISTORY_PK.to_owned(), Some(limit), false, None)
            .await?;
        items
            .into_iter()
            .take(limit as usize)
            .map(|item| {
                from_item::<HistoryItem>(item.clone())
                    .map(|h| h.record)
                    .map_err(|e| corrupt(&item, e))
            })
            .collect()
    }

    /// The migrations recorded as applied, in id order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`]; [`StoreError::Service`].
    pub async fn migrations(&self) -> Result<Vec<MigrationRecord>, StoreError> {
        let items = self
            .query_all(MIGRATION_PK.to_owned(), None, true, None)
            .await?;
        items
            .into_iter()
            .map(|item| {
                from_item::<MigrationItem>(item.clone())
                    .map(|m| m.record)
                    .map_err(|e| corrupt(&item, e))
            })
            .collect()
    }

    /// Records a migration as applied (once: a second record of the same id is ignored).
    /// Returns whether this call recorded it.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn record_migration(&self, record: &MigrationRecord) -> Result<bool, StoreError> {
        let item = MigrationItem {
            pk: MIGRATION_PK.into(),
            sk: record.id.clone(),
            record: record.clone(),
        };
        self.put_if_absent(to_item(&item).expect("serializable"))
            .await
    }

    /// Writes `item` unless an item with its key exists; `Ok(false)` when one did. What makes
    /// the version record and migration records write-once.
    async fn put_if_absent(
        &self,
        item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.fail("PutItem")(e)),
        }
    }

    // ----- writes ----------------------------------------------------------------------

    fn history_put(&self, version: u64, at: &str, note: &ChangeNote) -> TransactWriteItem {
        let item = HistoryItem {
            pk: HISTORY_PK.into(),
            sk: format!("{version:020}"),
            record: HistoryRecord {
                version,
                at: at.to_owned(),
                actor: note.actor.clone(),
                action: note.action.clone(),
                summary: note.summary.clone(),
                changes: note.changes.clone(),
            },
        };
        self.put_new_in_transaction(&item)
    }

    /// A transaction step that writes `item` unless its key exists (a history record, a new
    /// entry): the transaction fails rather than overwrite.
    fn put_new_in_transaction<T: serde::Serialize>(&self, item: &T) -> TransactWriteItem {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&*self.table)
                    .set_item(Some(to_item(item).expect("serializable")))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .expect("table and item set"),
            )
            .build()
    }

    /// Applies up to [`MAX_TRANSACTION_EDITS`] edits to the current generation, bumps the
    /// version and records the history, in one transaction conditional on `read` still being
    /// the version record. Returns the new version record.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the version moved; [`StoreError::Exists`] /
    /// [`StoreError::NotFound`] for an edit that does not apply; [`StoreError::Service`].
    ///
    /// # Panics
    /// With more than [`MAX_TRANSACTION_EDITS`] edits (use
    /// [`replace_all`](Self::replace_all)).
    pub async fn apply(
        &self,
        read: &Head,
        edits: &[Edit],
        note: &ChangeNote,
    ) -> Result<Head, StoreError> {
        assert!(
            !edits.is_empty() && edits.len() <= MAX_TRANSACTION_EDITS,
            "1 to {MAX_TRANSACTION_EDITS} edits per transaction"
        );
        let at = crate::clock::rfc3339_now();
        let new_version = read.version + 1;
        let mut items = Vec::with_capacity(edits.len() + 2);
        let mut delta: i64 = 0;
        for edit in edits {
            let item = EntryItem::new(
                edit.mapping(),
                &read.generation,
                read.shards,
                &at,
                &note.actor,
            );
            let op = match edit {
                Edit::Add(_) => {
                    delta += 1;
                    self.put_new_in_transaction(&item)
                }
                Edit::Remove(_) => {
                    delta -= 1;
                    TransactWriteItem::builder()
                        .delete(
                            Delete::builder()
                                .table_name(&*self.table)
                                .set_key(Some(key(&item.pk, &item.sk)))
                                .condition_expression("attribute_exists(pk)")
                                .build()
                                .expect("table and key set"),
                        )
                        .build()
                }
            };
            items.push(op);
        }
        let entries = (read.entries as i64 + delta).max(0) as u64;
        items.push(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&*self.table)
                        .set_key(Some(key(META_PK, META_SK)))
                        .update_expression("SET version = :new, entries = :entries, updated_at = :at, updated_by = :by")
                        .condition_expression("version = :read AND generation = :gen")
                        .expression_attribute_values(":new", n(new_version))
                        .expression_attribute_values(":read", n(read.version))
                        .expression_attribute_values(":gen", s(&read.generation))
                        .expression_attribute_values(":entries", n(entries))
                        .expression_attribute_values(":at", s(&at))
                        .expression_attribute_values(":by", s(&note.actor))
                        .build()
                        .expect("table, key and expression set"),
                )
                .build(),
        );
        items.push(self.history_put(new_version, &at, note));
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(request_token())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Head {
                version: new_version,
                entries,
                updated_at: at,
                updated_by: note.actor.clone(),
                ..read.clone()
            }),
            Err(e) => Err(self.transaction_error(e, read, Some(edits)).await),
        }
    }

    /// Maps a cancelled transaction to the reason: the version record's condition first
    /// (everything else was judged against a stale read), then the first failing edit.
    async fn transaction_error<R>(
        &self,
        e: SdkError<TransactWriteItemsError, R>,
        read: &Head,
        edits: Option<&[Edit]>,
    ) -> StoreError
    where
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let reasons: Option<Vec<Option<String>>> = match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => Some(
                c.cancellation_reasons()
                    .iter()
                    .map(|r| r.code().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        };
        let Some(reasons) = reasons else {
            return self.fail("TransactWriteItems")(e);
        };
        let failed = |code: &Option<String>| code.as_deref().is_some_and(|c| c != "None");
        let conflict = |code: &Option<String>| {
            code.as_deref()
                .is_some_and(|c| c == "TransactionConflict" || c == "ConditionalCheckFailed")
        };
        let n_edits = edits.map_or(0, <[Edit]>::len);
        // The version record is the item after the edits, the history record the one after
        // it: a history record already at the new version also means someone else made it.
        if reasons.get(n_edits).is_some_and(conflict)
            || reasons.get(n_edits + 1).is_some_and(conflict)
            || reasons
                .iter()
                .any(|c| c.as_deref() == Some("TransactionConflict"))
        {
            let found = self.read_head().await.ok().map(|h| h.version);
            return StoreError::Conflict {
                read: read.version,
                found,
            };
        }
        if let Some(edits) = edits {
            for (edit, code) in edits.iter().zip(&reasons) {
                if failed(code) {
                    return match edit {
                        Edit::Add(m) => StoreError::Exists {
                            entry: m.to_string(),
                        },
                        Edit::Remove(m) => StoreError::NotFound {
                            entry: m.to_string(),
                        },
                    };
                }
            }
        }
        StoreError::Service {
            operation: "TransactWriteItems",
            code: None,
            message: format!("transaction cancelled: {reasons:?}"),
        }
    }

    /// Replaces the whole set: [`write_generation`](Self::write_generation), then
    /// [`switch_generation`](Self::switch_generation) conditional on `read`. On any failure,
    /// the new generation is deleted and nothing changed.
    ///
    /// `progress(done, total)` is called as batches land.
    ///
    /// # Errors
    /// [`StoreError::Conflict`]; [`StoreError::Service`].
    pub async fn replace_all(
        &self,
        read: &Head,
        entries: &[Mapping],
        note: &ChangeNote,
        progress: Progress<'_>,
    ) -> Result<Head, StoreError> {
        let generation = self
            .write_generation(read, entries, &note.actor, progress)
            .await?;
        match self
            .switch_generation(read, &generation, entries.len(), note)
            .await
        {
            Ok(head) => Ok(head),
            Err(e) => {
                self.delete_generation_best_effort(&generation, read.shards.max(1))
                    .await;
                Err(e)
            }
        }
    }

    /// Writes `entries` as a new generation for the version after `read` (batches of 25,
    /// `write_concurrency` at a time), invisible to readers until
    /// [`switch_generation`](Self::switch_generation). Returns its id. On failure, what was
    /// written is deleted.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn write_generation(
        &self,
        read: &Head,
        entries: &[Mapping],
        actor: &str,
        progress: Progress<'_>,
    ) -> Result<String, StoreError> {
        let at = crate::clock::rfc3339_now();
        let generation = new_generation(read.version + 1);
        let shards = read.shards.max(1);
        let requests: Vec<WriteRequest> = entries
            .iter()
            .map(|m| self.put_request(m, &generation, shards, &at, actor))
            .collect();
        if let Err(e) = self.batch_write(requests, progress).await {
            self.delete_generation_best_effort(&generation, shards)
                .await;
            return Err(e);
        }
        Ok(generation)
    }

    /// Brings a generation written by [`write_generation`](Self::write_generation) (and not
    /// switched to) from the set it holds to another, by `diff` between the two: what a
    /// retried import does after losing a race, instead of writing every entry again.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn patch_generation(
        &self,
        generation: &str,
        shards: u32,
        diff: &super::store::Diff,
        actor: &str,
        progress: Progress<'_>,
    ) -> Result<(), StoreError> {
        let at = crate::clock::rfc3339_now();
        let shards = shards.max(1);
        let puts = diff
            .added
            .iter()
            .chain(diff.changed.iter().map(|(_, new)| new))
            .map(|m| self.put_request(m, generation, shards, &at, actor));
        let deletes = diff.removed.iter().map(|m| {
            let sk = entry_key(m);
            let pk = shard_pk(generation, shard_of(&sk, shards));
            WriteRequest::builder()
                .delete_request(
                    DeleteRequest::builder()
                        .set_key(Some(key(&pk, &sk)))
                        .build()
                        .expect("key set"),
                )
                .build()
        });
        self.batch_write(puts.chain(deletes).collect(), progress)
            .await
    }

    fn put_request(
        &self,
        m: &Mapping,
        generation: &str,
        shards: u32,
        at: &str,
        actor: &str,
    ) -> WriteRequest {
        let item = EntryItem::new(m, generation, shards, at, actor);
        WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .set_item(Some(to_item(&item).expect("serializable")))
                    .build()
                    .expect("item set"),
            )
            .build()
    }

    /// Makes `generation` (of `entries` entries, written for `read.version + 1` with
    /// `read.shards`) current, in one transaction conditional on `read` still being the
    /// version record, with the history record. Then deletes the generation before `read`'s
    /// (readers may still be on `read`'s). On failure nothing changed and `generation` is
    /// left for the caller to patch and retry, or delete.
    ///
    /// # Errors
    /// [`StoreError::Conflict`]; [`StoreError::Service`].
    pub async fn switch_generation(
        &self,
        read: &Head,
        generation: &str,
        entries: usize,
        note: &ChangeNote,
    ) -> Result<Head, StoreError> {
        let at = crate::clock::rfc3339_now();
        let new_version = read.version + 1;
        let shards = read.shards.max(1);
        let flip = TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&*self.table)
                    .set_key(Some(key(META_PK, META_SK)))
                    .update_expression(
                        "SET version = :new, generation = :gen, previous = :prev, shards = :shards, \
                         entries = :entries, updated_at = :at, updated_by = :by",
                    )
                    .condition_expression("version = :read AND generation = :readgen")
                    .expression_attribute_values(":new", n(new_version))
                    .expression_attribute_values(":gen", s(generation))
                    .expression_attribute_values(":prev", s(&read.generation))
                    .expression_attribute_values(":shards", n(u64::from(shards)))
                    .expression_attribute_values(":entries", n(entries as u64))
                    .expression_attribute_values(":at", s(&at))
                    .expression_attribute_values(":by", s(&note.actor))
                    .expression_attribute_values(":read", n(read.version))
                    .expression_attribute_values(":readgen", s(&read.generation))
                    .build()
                    .expect("table, key and expression set"),
            )
            .build();
        let result = self
            .client
            .transact_write_items()
            .transact_items(flip)
            .transact_items(self.history_put(new_version, &at, note))
            .client_request_token(request_token())
            .send()
            .await;
        if let Err(e) = result {
            return Err(self.transaction_error(e, read, None).await);
        }
        if let Some(old) = &read.previous {
            // Shards of old generations are not recorded; they were written with the
            // shard count current at the time, which only ever comes from the version record.
            self.delete_generation_best_effort(old, read.shards).await;
        }
        Ok(Head {
            version: new_version,
            generation: generation.to_owned(),
            previous: Some(read.generation.clone()),
            shards,
            entries: entries as u64,
            updated_at: at,
            updated_by: note.actor.clone(),
        })
    }

    async fn batch_write(
        &self,
        requests: Vec<WriteRequest>,
        progress: Progress<'_>,
    ) -> Result<(), StoreError> {
        let total = requests.len();
        progress(0, total);
        let mut done = 0;
        let mut chunks = requests
            .chunks(25)
            .map(<[WriteRequest]>::to_vec)
            .collect::<Vec<_>>()
            .into_iter();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.len() < self.write_concurrency {
                let Some(chunk) = chunks.next() else { break };
                let this = self.clone();
                tasks.spawn(async move { this.write_batch(chunk).await });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let written = joined.map_err(|e| StoreError::Service {
                operation: "BatchWriteItem",
                code: None,
                message: e.to_string(),
            })??;
            done += written;
            progress(done, total);
        }
        Ok(())
    }

    /// One batch of at most 25, retrying unprocessed items with back-off.
    async fn write_batch(&self, mut batch: Vec<WriteRequest>) -> Result<usize, StoreError> {
        let n = batch.len();
        for attempt in 0..10u32 {
            let out = self
                .client
                .batch_write_item()
                .request_items(&*self.table, batch)
                .send()
                .await
                .map_err(self.fail("BatchWriteItem"))?;
            match out
                .unprocessed_items
                .and_then(|mut u| u.remove(&*self.table))
            {
                Some(rest) if !rest.is_empty() => {
                    batch = rest;
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
                }
                _ => return Ok(n),
            }
        }
        Err(StoreError::Service {
            operation: "BatchWriteItem",
            code: None,
            message: "items still unprocessed after 10 attempts (throttled)".into(),
        })
    }

    /// Deletes every item of a generation; failures are logged, not returned (an orphaned
    /// generation costs storage, never correctness: readers only follow the version record).
    pub async fn delete_generation_best_effort(&self, generation: &str, shards: u32) {
        for shard in 0..shards {
            let pk = shard_pk(generation, shard);
            let items = match self.query_keys(&pk).await {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(%generation, error = %e, "could not list an old generation to delete it");
                    return;
                }
            };
            let requests = items
                .into_iter()
                .map(|k| {
                    WriteRequest::builder()
                        .delete_request(
                            DeleteRequest::builder()
                                .set_key(Some(k))
                                .build()
                                .expect("key set"),
                        )
                        .build()
                })
                .collect();
            if let Err(e) = self.batch_write(requests, &|_, _| {}).await {
                tracing::warn!(%generation, error = %e, "could not delete an old generation");
                return;
            }
        }
    }

    async fn query_keys(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let mut keys = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .projection_expression("pk, sk")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(self.fail("Query"))?;
            keys.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(keys),
            }
        }
    }

    /// Writes a raw item (for fault tests: a corrupt entry). Not for normal use.
    #[doc(hidden)]
    pub async fn put_raw_entry(
        &self,
        generation: &str,
        shard: u32,
        sk: &str,
        fields: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let mut item = key(&shard_pk(generation, shard), sk);
        for (k, v) in fields {
            item.insert((*k).to_owned(), s(*v));
        }
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(self.fail("PutItem"))?;
        Ok(())
    }
}

impl VersionedSource for DynamoStore {
    async fn head(&self) -> Result<Head, StoreError> {
        self.read_head().await
    }

    async fn load(&self) -> Result<Loaded, StoreError> {
        self.load_current().await
    }
}
