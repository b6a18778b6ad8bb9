//! Writes to the DynamoDB store: every change is conditional on the version record it read,
//! so a concurrent change fails it ([`StoreError::Conflict`]) instead of being lost. Small
//! changes are one transaction; whole sets are written as a new generation and switched to
//! with one conditional write.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use serde_dynamo::aws_sdk_dynamodb_1::to_item;

use super::diff::Diff;
use super::dynamo::DynamoStore;
use super::error::{Fault, StoreError};
use super::layout::{
    entry_key, key, n, new_generation, s, shard_of, shard_pk, EntryItem, HistoryItem, Item,
    MetaItem, MigrationItem, HISTORY_PK, MAX_TRANSACTION_EDITS, META_PK, META_SK, MIGRATION_PK,
};
use super::records::{
    ChangeNote, Edit, Head, HistoryRecord, Loaded, MigrationRecord, Progress, SnapshotDigest,
};
use super::seams::MappingWriter;
use crate::mapping::api_kinds::ApiKinds;
use crate::mapping::entry::Mapping;

/// A fresh ClientRequestToken: the SDK's own retry of a transaction whose answer was lost
/// then returns the first outcome instead of failing on the version it already moved.
fn request_token() -> String {
    new_generation(0)
}

/// The version record's update for a change that leaves `apis` declared: `set` (a `SET`
/// clause) with `apis = :apis`, or with `REMOVE apis` when nothing is declared; and the
/// value to bind to `:apis`.
fn with_apis(set: &str, apis: &ApiKinds) -> (String, Option<AttributeValue>) {
    if apis.is_empty() {
        (format!("{set} REMOVE apis"), None)
    } else {
        let value = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(apis)
            .expect("a map of strings serializes");
        (format!("{set}, apis = :apis"), Some(value))
    }
}

impl DynamoStore {
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
            snapshot_version: None,
            snapshot_sha256: None,
            apis: ApiKinds::new(),
        };
        self.put_if_absent(to_item(&meta).expect("serializable"))
            .await
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
    async fn put_if_absent(&self, item: Item) -> Result<bool, StoreError> {
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
                        Edit::Remove(m) | Edit::Change { old: m, .. } => StoreError::NotFound {
                            entry: m.to_string(),
                        },
                    };
                }
            }
        }
        StoreError::service("TransactWriteItems", Fault::Cancelled(reasons))
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
        apis: &ApiKinds,
        note: &ChangeNote,
        progress: Progress<'_>,
    ) -> Result<Head, StoreError> {
        let generation = self
            .write_generation(read, entries, &note.actor, progress)
            .await?;
        match self
            .switch_generation(read, &generation, entries.len(), apis, note)
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
            let written =
                joined.map_err(|e| StoreError::service("BatchWriteItem", Fault::Task(e)))??;
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
                    // DynamoDB's advice for unprocessed items: back off, then send them again.
                    // A throttle gives no signal of its end to wait on.
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
                }
                _ => return Ok(n),
            }
        }
        Err(StoreError::service(
            "BatchWriteItem",
            Fault::GaveUp("items still unprocessed after 10 attempts (throttled)"),
        ))
    }

    /// Writes a raw item (for fault tests: a corrupt entry). Only with the `test-util`
    /// feature.
    #[cfg(any(test, feature = "test-util"))]
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

impl MappingWriter for DynamoStore {
    async fn read_head(&self) -> Result<Head, StoreError> {
        DynamoStore::read_head(self).await
    }

    async fn load_current_with(&self, progress: Progress<'_>) -> Result<Loaded, StoreError> {
        DynamoStore::load_current_with(self, progress).await
    }

    async fn get(&self, target: &Mapping) -> Result<Option<Mapping>, StoreError> {
        DynamoStore::get(self, target).await
    }

    async fn history(&self, limit: usize) -> Result<Vec<HistoryRecord>, StoreError> {
        DynamoStore::history(self, limit).await
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
    async fn apply(
        &self,
        read: &Head,
        edits: &[Edit],
        apis: &ApiKinds,
        note: &ChangeNote,
    ) -> Result<Head, StoreError> {
        assert!(
            (!edits.is_empty() || *apis != read.apis) && edits.len() <= MAX_TRANSACTION_EDITS,
            "1 to {MAX_TRANSACTION_EDITS} edits per transaction, or a change of the API kinds"
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
                // One put over the same item, only if it still holds the old effect.
                Edit::Change { old, .. } => TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&*self.table)
                            .set_item(Some(to_item(&item).expect("serializable")))
                            .condition_expression("attribute_exists(pk) AND effect = :old")
                            .expression_attribute_values(":old", s(old.effect.as_str()))
                            .build()
                            .expect("table and item set"),
                    )
                    .build(),
            };
            items.push(op);
        }
        let entries = (read.entries as i64 + delta).max(0) as u64;
        let (expression, apis_value) = with_apis(
            "SET version = :new, entries = :entries, updated_at = :at, updated_by = :by",
            apis,
        );
        items.push(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&*self.table)
                        .set_key(Some(key(META_PK, META_SK)))
                        .update_expression(expression)
                        .set_expression_attribute_values(
                            apis_value.map(|v| {
                                std::collections::HashMap::from([(":apis".to_owned(), v)])
                            }),
                        )
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
                apis: apis.clone(),
                ..read.clone()
            }),
            Err(e) => Err(self.transaction_error(e, read, Some(edits)).await),
        }
    }

    /// Writes `entries` as a new generation for the version after `read` (batches of 25,
    /// `write_concurrency` at a time), invisible to readers until
    /// [`switch_generation`](Self::switch_generation). Returns its id. On failure, what was
    /// written is deleted.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    async fn write_generation(
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
    async fn patch_generation(
        &self,
        generation: &str,
        shards: u32,
        diff: &Diff,
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

    /// Makes `generation` (of `entries` entries, written for `read.version + 1` with
    /// `read.shards`) current, in one transaction conditional on `read` still being the
    /// version record, with the history record. Then deletes the generation before `read`'s
    /// (readers may still be on `read`'s). On failure nothing changed and `generation` is
    /// left for the caller to patch and retry, or delete.
    ///
    /// # Errors
    /// [`StoreError::Conflict`]; [`StoreError::Service`].
    async fn switch_generation(
        &self,
        read: &Head,
        generation: &str,
        entries: usize,
        apis: &ApiKinds,
        note: &ChangeNote,
    ) -> Result<Head, StoreError> {
        let at = crate::clock::rfc3339_now();
        let new_version = read.version + 1;
        let shards = read.shards.max(1);
        let (expression, apis_value) = with_apis(
            "SET version = :new, generation = :gen, previous = :prev, shards = :shards, \
             entries = :entries, updated_at = :at, updated_by = :by",
            apis,
        );
        let flip = TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&*self.table)
                    .set_key(Some(key(META_PK, META_SK)))
                    .update_expression(expression)
                    .set_expression_attribute_values(
                        apis_value
                            .map(|v| std::collections::HashMap::from([(":apis".to_owned(), v)])),
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
            snapshot: read.snapshot.clone(),
            apis: apis.clone(),
        })
    }

    /// Names `digest` in the version record, only while its version is current: one
    /// UpdateItem conditional on the version. The attributes stay through later changes
    /// (which update the record, not replace it); a reader trusts them only while the
    /// versions agree ([`Head::vouched_snapshot`]).
    async fn record_snapshot(&self, digest: &SnapshotDigest) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key(META_PK, META_SK)))
            .update_expression("SET snapshot_version = :v, snapshot_sha256 = :d")
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(digest.version))
            .expression_attribute_values(":d", s(&digest.sha256))
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
            Err(e) => Err(self.fail("UpdateItem")(e)),
        }
    }

    /// Deletes every item of a generation; failures are logged, not returned (an orphaned
    /// generation costs storage, never correctness: readers only follow the version record).
    async fn delete_generation_best_effort(&self, generation: &str, shards: u32) {
        for shard in 0..shards {
            let pk = shard_pk(generation, shard);
            let items = match self.query_all(&pk, None, true, true, None).await {
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
}
