//! Reads of the DynamoDB store: the version record, a generation (one Query per shard, in
//! parallel), the current set read consistently, one entry, the history and the migration
//! records.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_dynamo::aws_sdk_dynamodb_1::from_item;

use super::dynamo::DynamoStore;
use super::error::{Fault, StoreError};
use super::layout::{
    corrupt, entry_key, key, parse_entry, s, shard_of, shard_pk, HistoryItem, Item, MetaItem,
    MigrationItem, HISTORY_PK, META_PK, META_SK, MIGRATION_PK,
};
use super::records::{Head, HistoryRecord, Loaded, MigrationRecord, Progress};
use super::seams::VersionedSource;
use crate::mapping::entry::Mapping;

impl DynamoStore {
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

    /// Every item of partition `pk` (or the first `limit`), oldest sort key first when
    /// `forward`; with `keys_only`, only `pk` and `sk` (to delete them). Counts the items
    /// into `read` as pages arrive.
    pub(super) async fn query_all(
        &self,
        pk: &str,
        limit: Option<i32>,
        forward: bool,
        keys_only: bool,
        read: Option<&AtomicUsize>,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_each(pk, limit, forward, keys_only, read, Ok)
            .await
    }

    /// [`query_all`](Self::query_all), turning each item into a `T` as its page arrives, so
    /// that no more than a page of raw items (at most 1 MB) is held at a time: a cold start
    /// of 10 000 entries then holds the entries, not the entries and all their items.
    pub(super) async fn query_each<T>(
        &self,
        pk: &str,
        limit: Option<i32>,
        forward: bool,
        keys_only: bool,
        read: Option<&AtomicUsize>,
        mut each: impl FnMut(Item) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .set_projection_expression(keys_only.then(|| "pk, sk".to_owned()))
                .consistent_read(true)
                .scan_index_forward(forward)
                .set_limit(limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(self.fail("Query"))?;
            let page = out.items.unwrap_or_default();
            if let Some(read) = read {
                read.fetch_add(page.len(), Ordering::Relaxed);
            }
            for item in page {
                items.push(each(item)?);
            }
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
        let read = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for shard in 0..shards {
            let this = self.clone();
            let pk = shard_pk(generation, shard);
            let read = Arc::clone(&read);
            let generation = generation.to_owned();
            tasks.spawn(async move {
                this.query_each(&pk, None, true, false, Some(&read), |item| {
                    parse_entry(item, &generation, shards)
                })
                .await
            });
        }
        let expected = usize::try_from(expected).unwrap_or(usize::MAX);
        let mut entries = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            let joined = tokio::select! {
                joined = tasks.join_next() => joined,
                _ = tick.tick() => {
                    progress(read.load(Ordering::Relaxed), expected);
                    continue;
                }
            };
            let Some(joined) = joined else { break };
            let part = joined.map_err(|e| StoreError::service("Query", Fault::Task(e)))??;
            entries.extend(part);
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
            .query_all(HISTORY_PK, Some(limit), false, false, None)
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
            .query_all(MIGRATION_PK, None, true, false, None)
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
}

impl VersionedSource for DynamoStore {
    async fn head(&self) -> Result<Head, StoreError> {
        self.read_head().await
    }

    async fn load(&self) -> Result<Loaded, StoreError> {
        self.load_current().await
    }
}
