//! The commands over the store and the snapshot: list, get, add, remove, import, export,
//! publish and history, as library functions the binary calls after parsing flags and asking
//! for confirmation.
//!
//! Every change is validated before anything is written (a refused file leaves the table as
//! it was), is conditional on the version it read (a concurrent change is re-read and
//! re-applied within the [`RetryPolicy`], else refused), records who and when in the
//! history, and is published to the S3 snapshot afterwards unless that is turned off.
//!
//! [`Admin`] is generic over the store ([`MappingWriter`]) and the snapshot
//! ([`SnapshotPublisher`]): the retry, diff, import and publish logic is unit-tested here
//! against an in-memory store, and the emulator tests check the DynamoDB and S3 adapters.

use std::collections::BTreeSet;

use serde::Serialize;

use super::error::AdminError;
use super::retry::RetryPolicy;
use crate::claim::ClaimName;
use crate::mapping::file::{check_unique, Document};
use crate::mapping::store::aws::{AwsConfig, AwsOptions, CallerIdentity};
use crate::mapping::store::{
    entry_key, ChangeNote, Diff, DynamoStore, Edit, Head, HistoryRecord, MappingWriter, Progress,
    Published, S3Snapshots, SnapshotPublisher, StoreError, MAX_TRANSACTION_EDITS,
};
use crate::mapping::{ApiKinds, Mapping, Snapshot, Stage};
use crate::policy::{ApiArn, ApiKind};

/// Where the store and the snapshot are, and who is acting.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// How to reach AWS.
    pub aws: AwsOptions,
    /// The table.
    pub table: String,
    /// The snapshot bucket, if any.
    pub bucket: Option<String>,
    /// The snapshot key.
    pub key: String,
    /// Who is acting (recorded in the history).
    pub actor: String,
    /// Publish the snapshot after every change (when a bucket is set). Defaults to true in
    /// the CLI.
    pub publish: bool,
    /// The claims entries may require (`SCOPEGATE_GRANT_CLAIMS`, as the authorizer is
    /// configured): a change adding an entry that names another is refused.
    pub grant_claims: Vec<ClaimName>,
}

/// The actor when none is given: `$USER`, else `unknown`.
pub fn default_actor() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The store, the snapshot and the actor, opened: DynamoDB and S3 in the CLI, an in-memory
/// store in unit tests.
#[derive(Debug, Clone)]
pub struct Admin<S = DynamoStore, P = S3Snapshots> {
    /// The table.
    pub store: S,
    /// The snapshot, when a bucket is configured.
    pub snapshots: Option<P>,
    /// Who is acting.
    pub actor: String,
    /// Publish after changes.
    pub publish: bool,
    /// How changes retry after a conflict.
    pub retry: RetryPolicy,
    /// The claims entries may require (see [`Target::grant_claims`]).
    pub grant_claims: Vec<ClaimName>,
}

/// What a change did.
#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    /// The version before.
    pub from_version: u64,
    /// The version after; equal to `from_version` when nothing changed.
    pub version: u64,
    /// What changed.
    pub diff: Diff,
    /// Whether nothing was written because this was a dry run.
    pub dry_run: bool,
    /// Attempts it took (1 when no one else was writing).
    pub attempts: u32,
    /// The snapshot publication after the change: `None` when not attempted.
    pub published: Option<Result<Published, String>>,
}

/// A change as a function of the current set: what is re-applied to a fresh read after
/// losing a race.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Map these targets. An identical entry already there is no change; another effect
    /// for the target is a true conflict ([`StoreError::Exists`]).
    Add(Vec<Mapping>),
    /// Unmap these targets (whatever their stored effect). A target not mapped is a true
    /// conflict ([`StoreError::NotFound`]).
    Remove(Vec<Mapping>),
    /// Merge: every entry is mapped as given afterwards (same targets replaced), the rest
    /// kept; the API kinds given are declared over the current ones.
    Merge(Vec<Mapping>, ApiKinds),
    /// Replace: exactly these entries, and these API kinds, afterwards.
    Replace(Vec<Mapping>, ApiKinds),
    /// Replace the route Allows of one API and stage: exactly these entries among them
    /// afterwards (those of `import --openapi --replace`, whose document speaks only for the
    /// API's routes on one stage). Everything else is kept: other APIs and stages, and the
    /// Denies and globs written by hand, which a document never holds and must not undo.
    ReplaceWithin {
        /// The API the entries are for.
        api: ApiArn,
        /// The stage they are for: that stage's route Allows are replaced; with `*`, those of
        /// every stage of the API.
        stage: Stage,
        /// The entries.
        entries: Vec<Mapping>,
        /// The API's kind, as the document gives it: declared for the API.
        kind: ApiKind,
    },
}

impl Change {
    /// How a bulk change (merge or replace) meets the current set; `None` for single edits.
    fn bulk(&self) -> Option<(&[Mapping], Bulk<'_>)> {
        match self {
            Change::Merge(e, apis) => Some((e, Bulk::Merge(apis))),
            Change::Replace(e, apis) => Some((e, Bulk::Replace(apis))),
            Change::ReplaceWithin {
                api,
                stage,
                entries,
                kind,
            } => Some((entries, Bulk::ReplaceWithin(api, stage, *kind))),
            Change::Add(_) | Change::Remove(_) => None,
        }
    }
}

/// How a bulk change meets the current set, with the API kinds it declares.
#[derive(Debug, Clone, Copy)]
enum Bulk<'a> {
    Merge(&'a ApiKinds),
    Replace(&'a ApiKinds),
    ReplaceWithin(&'a ApiArn, &'a Stage, ApiKind),
}

impl Bulk<'_> {
    /// The history's word for it.
    fn label(self) -> String {
        match self {
            Bulk::Merge(_) => String::new(),
            Bulk::Replace(_) => " --replace".to_owned(),
            Bulk::ReplaceWithin(api, stage, _) => format!(" --replace ({api} stage {stage})"),
        }
    }

    /// The API kinds declared after it, given the `current` ones: a replace declares
    /// exactly its own, a merge declares its own over the current ones, and an OpenAPI
    /// document declares its API's.
    fn kinds(self, current: &ApiKinds) -> ApiKinds {
        match self {
            Bulk::Replace(apis) => apis.clone(),
            Bulk::Merge(apis) => current.merged(apis),
            Bulk::ReplaceWithin(api, _, kind) => {
                let mut out = current.clone();
                out.declare(api.clone(), kind);
                out
            }
        }
    }
}

/// The set after a bulk change of `entries`, given the `current` one.
fn merged(current: &[Mapping], entries: &[Mapping], how: Bulk<'_>) -> Vec<Mapping> {
    match how {
        Bulk::Replace(_) => return entries.to_vec(),
        Bulk::ReplaceWithin(api, stage, _) => {
            let replaced = |m: &Mapping| {
                m.api == *api
                    && (stage.is_any() || m.stage == *stage)
                    && m.effect == crate::policy::Effect::Allow
                    && m.resource.is_route()
            };
            let mut out: Vec<Mapping> = current.iter().filter(|m| !replaced(m)).cloned().collect();
            out.extend(entries.iter().cloned());
            return out;
        }
        Bulk::Merge(_) => {}
    }
    let incoming: BTreeSet<String> = entries.iter().map(entry_key).collect();
    let mut out: Vec<Mapping> = current
        .iter()
        .filter(|m| !incoming.contains(&entry_key(m)))
        .cloned()
        .collect();
    out.extend(entries.iter().cloned());
    out
}

impl Admin {
    /// Opens the store (and the snapshot bucket) at `target`. Makes no request.
    ///
    /// # Errors
    /// [`StoreError::Setup`]: an unknown profile, no region.
    pub async fn open(target: &Target) -> Result<Admin, AdminError> {
        let aws = AwsConfig::load(&target.aws)
            .await
            .map_err(StoreError::from)?;
        Ok(Admin::with_store(
            DynamoStore::new(&aws, &target.table),
            target
                .bucket
                .as_deref()
                .map(|b| S3Snapshots::new(&aws, b, &target.key)),
            &target.actor,
            target.publish,
        )
        .with_grant_claims(target.grant_claims.clone()))
    }

    /// The resolved region (to name where the table is, to create a bucket in).
    pub fn region(&self) -> Option<String> {
        self.aws().region()
    }

    /// Who the credentials belong to (one STS call).
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn identity(&self) -> Result<CallerIdentity, AdminError> {
        Ok(self.aws().caller_identity().await?)
    }

    fn aws(&self) -> &AwsConfig {
        self.store.aws()
    }
}

impl<S: MappingWriter, P: SnapshotPublisher> Admin<S, P> {
    /// An admin over an opened store and snapshot, with the default retry policy.
    pub fn with_store(store: S, snapshots: Option<P>, actor: &str, publish: bool) -> Self {
        Admin {
            store,
            snapshots,
            actor: actor.to_owned(),
            publish,
            retry: RetryPolicy::default(),
            grant_claims: Vec::new(),
        }
    }

    /// This admin, refusing entries that require claims other than `claims`.
    #[must_use]
    pub fn with_grant_claims(mut self, claims: Vec<ClaimName>) -> Self {
        self.grant_claims = claims;
        self
    }

    /// Refuses a change that would write an entry requiring an undeclared claim (the
    /// authorizer never reads such a claim, so the entry would silently never apply), or
    /// one whose item key DynamoDB would refuse.
    fn check_entries(&self, change: &Change) -> Result<(), AdminError> {
        let entries = match change {
            Change::Add(e) | Change::Merge(e, _) | Change::Replace(e, _) => e,
            Change::ReplaceWithin { entries, .. } => entries,
            Change::Remove(_) => return Ok(()),
        };
        super::validate::check_declared(entries, &self.grant_claims)?;
        super::validate::check_storable(entries)
    }

    fn note(&self, action: &str, summary: String, diff: &Diff) -> ChangeNote {
        ChangeNote {
            actor: self.actor.clone(),
            action: action.to_owned(),
            summary,
            changes: diff.lines(),
        }
    }

    /// Publishes after a change, if configured; a failure is reported, not fatal (the change
    /// is made; `scopegate publish` can be run again).
    async fn publish_after(&self) -> Option<Result<Published, String>> {
        if !self.publish || self.snapshots.is_none() {
            return None;
        }
        Some(self.publish_now().await.map_err(|e| e.to_string()))
    }

    /// Writes the current set to the S3 snapshot (never over a newer one), then names its
    /// digest in the version record, so that cold starts read that one object instead of the
    /// generation's pages. When the version moved on meanwhile, the digest is not recorded:
    /// the object is already older than the set.
    ///
    /// # Errors
    /// [`StoreError::NoBucket`] without a bucket; as [`S3Snapshots::publish`]; as
    /// [`MappingWriter::record_snapshot`].
    pub async fn publish_now(&self) -> Result<Published, AdminError> {
        let snapshots = self.snapshots.as_ref().ok_or(StoreError::NoBucket)?;
        let loaded = self.store.load_current_with(&|_, _| {}).await?;
        let published = snapshots
            .publish(loaded.head.version, &loaded.entries, &loaded.head.apis)
            .await?;
        if loaded.head.snapshot.as_ref() != Some(&published.digest()) {
            let recorded = self.store.record_snapshot(&published.digest()).await?;
            tracing::debug!(recorded, "snapshot digest");
        }
        Ok(published)
    }

    /// Adds entries. An identical entry already mapped is no change; another effect for a
    /// mapped target is refused (remove it first). Retries conflicts (see `RetryPolicy`).
    ///
    /// # Errors
    /// [`AdminError`]; [`StoreError::Exists`]; [`AdminError::Busy`].
    pub async fn add(&self, entries: Vec<Mapping>) -> Result<Changed, AdminError> {
        check_unique(&entries, "the entries given")?;
        self.change("add", Change::Add(entries), None, &|_, _| {})
            .await
    }

    /// Removes entries, by target (the effect given is ignored: the stored one is removed).
    /// Retries conflicts.
    ///
    /// # Errors
    /// [`AdminError`]; [`StoreError::NotFound`]; [`AdminError::Busy`].
    pub async fn remove(&self, targets: Vec<Mapping>) -> Result<Changed, AdminError> {
        // One delete per item: a target given twice would name an item twice in one
        // transaction, which DynamoDB refuses.
        let mut seen = BTreeSet::new();
        if let Some(twice) = targets.iter().find(|t| !seen.insert(entry_key(t))) {
            return Err(AdminError::Usage(format!(
                "{twice}: this target is given twice"
            )));
        }
        self.change("remove", Change::Remove(targets), None, &|_, _| {})
            .await
    }

    /// Imports `entries` (validated already, as `file::parse_document` does): merged into
    /// the current set (same targets replaced), or with `replace` instead of it. Small
    /// changes go through one transaction, large ones through a new generation; either way
    /// the switch is atomic. With `dry_run`, only the diff. Retries conflicts.
    ///
    /// # Errors
    /// [`AdminError::Busy`]; [`AdminError`].
    pub async fn import(
        &self,
        action: &str,
        entries: Vec<Mapping>,
        replace: bool,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> Result<Changed, AdminError> {
        let document = Document {
            mappings: entries,
            ..Document::default()
        };
        self.import_document(action, document, replace, dry_run, progress)
            .await
    }

    /// [`import`](Self::import) of a whole document: its entries and its API kinds, which a
    /// merge declares over the current ones and a replace declares instead of them.
    ///
    /// # Errors
    /// As [`import`](Self::import).
    pub async fn import_document(
        &self,
        action: &str,
        document: Document,
        replace: bool,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> Result<Changed, AdminError> {
        let (entries, apis) = (document.mappings, document.apis);
        check_unique(&entries, "the import")?;
        let change = if replace {
            Change::Replace(entries, apis)
        } else {
            Change::Merge(entries, apis)
        };
        if dry_run {
            return self.plan(&change).await;
        }
        self.change(action, change, None, progress).await
    }

    /// Declares `api` an API of `kind`: one change of the version record, in the history,
    /// published like any other. Declaring the kind it has is no change.
    ///
    /// # Errors
    /// [`AdminError::Busy`]; [`AdminError`].
    pub async fn declare(&self, api: ApiArn, kind: ApiKind) -> Result<Changed, AdminError> {
        let head = self.store.read_head().await?;
        if head.apis.kind_of(api.as_str()) == kind {
            return Ok(self.unchanged(&head, Diff::default()));
        }
        let apis = [(api, kind)].into_iter().collect();
        self.change("kind", Change::Merge(Vec::new(), apis), None, &|_, _| {})
            .await
    }

    /// The API kinds declared now.
    ///
    /// # Errors
    /// As [`MappingWriter::read_head`].
    pub async fn kinds(&self) -> Result<ApiKinds, AdminError> {
        Ok(self.store.read_head().await?.apis)
    }

    /// What `change` would do now: a dry run.
    ///
    /// # Errors
    /// As [`DynamoStore::load_current`].
    pub async fn plan(&self, change: &Change) -> Result<Changed, AdminError> {
        self.check_entries(change)?;
        let current = self.store.load_current_with(&|_, _| {}).await?;
        let diff = match change {
            Change::Merge(..) | Change::Replace(..) | Change::ReplaceWithin { .. } => {
                let (e, how) = change.bulk().expect("a bulk change");
                Diff::between(&current.entries, &merged(&current.entries, e, how))
                    .with_kinds(&current.head.apis, &how.kinds(&current.head.apis))
            }
            Change::Add(e) => {
                let new: Vec<Mapping> = e
                    .iter()
                    .filter(|m| !current.entries.contains(m))
                    .cloned()
                    .collect();
                Diff::between(
                    &current.entries,
                    &merged(&current.entries, &new, Bulk::Merge(&ApiKinds::new())),
                )
            }
            Change::Remove(targets) => {
                let keys: BTreeSet<String> = targets.iter().map(entry_key).collect();
                let kept: Vec<Mapping> = current
                    .entries
                    .iter()
                    .filter(|m| !keys.contains(&entry_key(m)))
                    .cloned()
                    .collect();
                Diff::between(&current.entries, &kept)
            }
        };
        Ok(Changed {
            from_version: current.head.version,
            version: current.head.version,
            diff,
            dry_run: true,
            attempts: 1,
            published: None,
        })
    }

    /// Applies `change`, re-reading and re-applying it after every conflict within
    /// [`Admin::retry`]. With `expected`, every attempt must come to exactly that diff (the
    /// plan an operator confirmed), else [`AdminError::PlanChanged`].
    ///
    /// # Errors
    /// A true conflict ([`StoreError::Exists`], [`StoreError::NotFound`]);
    /// [`AdminError::Busy`] when the bounds run out; [`AdminError::PlanChanged`];
    /// [`StoreError::Service`].
    pub async fn change(
        &self,
        action: &str,
        change: Change,
        expected: Option<&Diff>,
        progress: Progress<'_>,
    ) -> Result<Changed, AdminError> {
        self.check_entries(&change)?;
        let mut attempts = 0;
        let mut first_conflict: Option<crate::clock::Stopwatch> = None;
        // A generation written by a lost attempt, and the set it holds: patched, not
        // rewritten, by the next attempt.
        let mut written: Option<(String, u32, Vec<Mapping>)> = None;
        let mut change = change;
        let result = loop {
            attempts += 1;
            let outcome = match &change {
                Change::Add(_) | Change::Remove(_) => {
                    self.edit_once(action, &mut change, expected).await
                }
                Change::Merge(..) | Change::Replace(..) | Change::ReplaceWithin { .. } => {
                    let (e, how) = change.bulk().expect("a bulk change");
                    self.import_once(action, e, how, expected, &mut written, progress)
                        .await
                }
            };
            match outcome {
                Err(AdminError::Store(StoreError::Conflict { .. })) => {
                    let since = *first_conflict.get_or_insert_with(crate::clock::Stopwatch::start);
                    if attempts >= self.retry.max_attempts
                        || since.elapsed() >= self.retry.max_elapsed
                    {
                        break Err(AdminError::Busy {
                            attempts,
                            seconds: since.elapsed().as_secs_f64(),
                        });
                    }
                    let wait = self.retry.delay(attempts);
                    tracing::info!(
                        attempts,
                        wait_ms = wait.as_millis() as u64,
                        "the mappings changed meanwhile: retrying"
                    );
                    // A backoff, not a wait on a condition: the other writer gives no signal
                    // when it is done, so the jittered delay spreads the retries out.
                    tokio::time::sleep(wait).await;
                }
                Err(e) => break Err(e),
                Ok(mut changed) => {
                    changed.attempts = attempts;
                    break Ok(changed);
                }
            }
        };
        if let (Err(_), Some((generation, shards, _))) = (&result, &written) {
            self.store
                .delete_generation_best_effort(generation, *shards)
                .await;
        }
        let mut changed = result?;
        if changed.version != changed.from_version {
            changed.published = self.publish_after().await;
        }
        Ok(changed)
    }

    /// One attempt of an add or a remove: one transaction conditional on the version read.
    /// Adds found already mapped with the same effect are dropped from `change` (so a retry
    /// does not try them again).
    async fn edit_once(
        &self,
        action: &str,
        change: &mut Change,
        expected: Option<&Diff>,
    ) -> Result<Changed, AdminError> {
        let head = self.store.read_head().await?;
        let mut edits = Vec::new();
        let mut diff = Diff::default();
        match &*change {
            Change::Add(entries) => {
                for m in entries {
                    edits.push(Edit::Add(m.clone()));
                    diff.added.push(m.clone());
                }
            }
            Change::Remove(targets) => {
                for t in targets {
                    // Record the stored entry (its real effect) in the history.
                    let stored = self
                        .store
                        .get(t)
                        .await?
                        .ok_or_else(|| StoreError::NotFound {
                            entry: t.to_string(),
                        })?;
                    edits.push(Edit::Remove(stored.clone()));
                    diff.removed.push(stored);
                }
            }
            Change::Merge(..) | Change::Replace(..) | Change::ReplaceWithin { .. } => {
                unreachable!("imports go through import_once")
            }
        }
        if expected.is_some_and(|want| !want.same_changes(&diff)) {
            return Err(AdminError::PlanChanged {
                version: head.version,
            });
        }
        if edits.is_empty() {
            return Ok(self.unchanged(&head, diff));
        }
        if edits.len() > MAX_TRANSACTION_EDITS {
            return Err(AdminError::Usage(format!(
                "{} changes at once: use `scopegate import` for more than {MAX_TRANSACTION_EDITS}",
                edits.len()
            )));
        }
        let summary = format!("{action} {}", diff.summary());
        match self
            .store
            .apply(
                &head,
                &edits,
                &head.apis,
                &self.note(action, summary, &diff),
            )
            .await
        {
            Ok(new) => Ok(Changed {
                from_version: head.version,
                version: new.version,
                diff,
                dry_run: false,
                attempts: 1,
                published: None,
            }),
            Err(StoreError::Exists { entry }) => {
                // Some target is mapped already: the same entry is no change; another effect
                // is a true conflict.
                let Change::Add(entries) = change else {
                    return Err(StoreError::Exists { entry }.into());
                };
                let mut kept = Vec::with_capacity(entries.len());
                for m in entries.drain(..) {
                    match self.store.get(&m).await? {
                        Some(stored) if stored == m => {}
                        Some(stored) => {
                            return Err(StoreError::Exists {
                                entry: stored.to_string(),
                            }
                            .into())
                        }
                        None => kept.push(m),
                    }
                }
                *entries = kept;
                // Try again at once, without the adds already made: this was no race lost,
                // so no backoff and no attempt counted.
                Box::pin(self.edit_once(action, change, expected)).await
            }
            Err(e) => Err(e.into()),
        }
    }

    fn unchanged(&self, head: &Head, diff: Diff) -> Changed {
        Changed {
            from_version: head.version,
            version: head.version,
            diff,
            dry_run: false,
            attempts: 1,
            published: None,
        }
    }

    /// One attempt of an import: read the whole set, apply the delta, write the difference
    /// (one transaction when small, a new generation when large).
    async fn import_once(
        &self,
        action: &str,
        entries: &[Mapping],
        how: Bulk<'_>,
        expected: Option<&Diff>,
        written: &mut Option<(String, u32, Vec<Mapping>)>,
        progress: Progress<'_>,
    ) -> Result<Changed, AdminError> {
        let current = self.store.load_current_with(&|_, _| {}).await?;
        let new_set = merged(&current.entries, entries, how);
        let apis = how.kinds(&current.head.apis);
        let diff = Diff::between(&current.entries, &new_set).with_kinds(&current.head.apis, &apis);
        let head = current.head;
        if expected.is_some_and(|want| !want.same_changes(&diff)) {
            return Err(AdminError::PlanChanged {
                version: head.version,
            });
        }
        if diff.is_empty() {
            // Someone else made this change meanwhile: a generation an earlier attempt wrote
            // will never be switched to.
            if let Some((generation, shards, _)) = written.take() {
                self.store
                    .delete_generation_best_effort(&generation, shards)
                    .await;
            }
            return Ok(self.unchanged(&head, diff));
        }
        let summary = format!("{action}{} {}", how.label(), diff.summary());
        let note = self.note(action, summary, &diff);
        let new = if written.is_none() && diff.edit_count() <= MAX_TRANSACTION_EDITS {
            self.store.apply(&head, &diff.edits(), &apis, &note).await?
        } else {
            let generation = match written.take() {
                Some((generation, shards, held)) if shards == head.shards.max(1) => {
                    let patch = Diff::between(&held, &new_set);
                    self.store
                        .patch_generation(&generation, shards, &patch, &self.actor, progress)
                        .await?;
                    generation
                }
                stale => {
                    if let Some((generation, shards, _)) = stale {
                        self.store
                            .delete_generation_best_effort(&generation, shards)
                            .await;
                    }
                    self.store
                        .write_generation(&head, &new_set, &self.actor, progress)
                        .await?
                }
            };
            let shards = head.shards.max(1);
            match self
                .store
                .switch_generation(&head, &generation, new_set.len(), &apis, &note)
                .await
            {
                Ok(new) => new,
                Err(e) => {
                    *written = Some((generation, shards, new_set));
                    return Err(e.into());
                }
            }
        };
        Ok(Changed {
            from_version: head.version,
            version: new.version,
            diff,
            dry_run: false,
            attempts: 1,
            published: None,
        })
    }

    /// The current entries, filtered.
    ///
    /// # Errors
    /// As [`DynamoStore::load_current`].
    pub async fn list(&self, filter: &Filter) -> Result<(Head, Vec<Mapping>), AdminError> {
        let loaded = self.store.load_current_with(&|_, _| {}).await?;
        let entries = loaded
            .entries
            .into_iter()
            .filter(|m| filter.matches(m))
            .collect();
        Ok((loaded.head, entries))
    }

    /// The entry with this target, if mapped.
    ///
    /// # Errors
    /// As [`DynamoStore::get`].
    pub async fn get(&self, target: &Mapping) -> Result<Option<Mapping>, AdminError> {
        Ok(self.store.get(target).await?)
    }

    /// The current set as a snapshot document.
    ///
    /// # Errors
    /// As [`DynamoStore::load_current`].
    pub async fn export(&self) -> Result<Document, AdminError> {
        self.export_with(&|_, _| {}).await
    }

    /// [`export`](Self::export), calling `progress(read, total)` as entries arrive.
    ///
    /// # Errors
    /// As [`DynamoStore::load_current`].
    pub async fn export_with(&self, progress: Progress<'_>) -> Result<Document, AdminError> {
        let loaded = self.store.load_current_with(progress).await?;
        Ok(Document {
            version: Some(loaded.head.version),
            generated_at: Some(crate::clock::rfc3339_now()),
            apis: loaded.head.apis,
            mappings: loaded.entries,
        })
    }

    /// The newest `limit` history records.
    ///
    /// # Errors
    /// As [`DynamoStore::history`].
    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryRecord>, AdminError> {
        Ok(self.store.history(limit).await?)
    }

    /// The current set as a snapshot, for `explain`.
    ///
    /// # Errors
    /// As [`DynamoStore::load_current`].
    pub async fn snapshot(&self) -> Result<Snapshot, AdminError> {
        let loaded = self.store.load_current_with(&|_, _| {}).await?;
        Ok(Snapshot::new(loaded.head.version, loaded.entries).with_kinds(loaded.head.apis))
    }
}

/// Which entries `list` shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only entries that require this scope (alone or with others).
    pub scope: Option<String>,
    /// Only this API (ARN or API id).
    pub api: Option<String>,
    /// Only this stage.
    pub stage: Option<String>,
}

impl Filter {
    fn matches(&self, m: &Mapping) -> bool {
        self.scope.as_deref().is_none_or(|s| {
            !m.scopes.is_nobody() && m.scopes.scopes().iter().any(|x| x.as_str() == s)
        }) && self
            .api
            .as_deref()
            .is_none_or(|a| m.api.as_str() == a || m.api.as_str().ends_with(&format!(":{a}")))
            && self.stage.as_deref().is_none_or(|s| m.stage.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mapping::testing::entry as m;

    #[test]
    fn filters() {
        let f = Filter {
            api: Some("a1b2c3d4e5".into()),
            ..Filter::default()
        };
        assert!(f.matches(&m("s", "GET", "a", "Allow")));
        let f = Filter {
            scope: Some("t".into()),
            ..Filter::default()
        };
        assert!(!f.matches(&m("s", "GET", "a", "Allow")));
    }

    // ----- the change logic against an in-memory store ------------------------------------
    //
    // Paused tokio time: the retry backoff's sleeps end at once, in order, so a test that
    // loses ten races takes no wall time and no test waits on a clock.

    use std::sync::atomic::Ordering;

    use crate::mapping::store::memory::{MemorySnapshots, MemoryStore};

    type MemAdmin = Admin<MemoryStore, MemorySnapshots>;

    fn admin(entries: &[Mapping]) -> MemAdmin {
        let snaps = MemorySnapshots::default();
        Admin::with_store(MemoryStore::with(entries), Some(snaps), "tester", true)
    }

    fn published(a: &MemAdmin) -> Vec<(u64, usize)> {
        a.snapshots
            .as_ref()
            .unwrap()
            .published
            .lock()
            .unwrap()
            .clone()
    }

    fn bucket_down(a: &MemAdmin, down: bool) {
        a.snapshots
            .as_ref()
            .unwrap()
            .down
            .store(down, Ordering::SeqCst);
    }

    /// Another writer commits before each of the next `max_attempts` commits.
    fn lose_every_race(a: &MemAdmin) {
        for i in 0..a.retry.max_attempts {
            a.store.interfere(move |s| {
                s.commit_other(Edit::Add(m(&format!("o{i}"), "GET", "x", "Allow")))
            });
        }
    }

    fn many(n: usize, scope: &str) -> Vec<Mapping> {
        (0..n)
            .map(|i| m(scope, "GET", &format!("r{i}"), "Allow"))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_add_that_loses_a_race_is_reapplied_to_the_new_set() {
        let a = admin(&[m("a", "GET", "x", "Allow")]);
        a.store
            .interfere(|s| s.commit_other(Edit::Add(m("b", "GET", "y", "Allow"))));
        let c = a.add(vec![m("c", "GET", "z", "Allow")]).await.unwrap();
        assert_eq!(c.attempts, 2, "one lost race, one retry");
        assert_eq!(
            (c.from_version, c.version),
            (1, 2),
            "based on the other's version"
        );
        assert_eq!(c.diff.added, vec![m("c", "GET", "z", "Allow")]);
        let now = a.store.state(|s| s.current());
        assert_eq!(now.len(), 3, "the other writer's entry is kept: {now:?}");
        assert_eq!(published(&a), vec![(2, 3)]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_identical_add_is_no_change_and_another_effect_is_refused() {
        let a = admin(&[m("a", "GET", "x", "Allow")]);
        let c = a.add(vec![m("a", "GET", "x", "Allow")]).await.unwrap();
        assert_eq!((c.version, c.attempts), (0, 1));
        assert!(c.diff.is_empty() && c.published.is_none());
        let e = a.add(vec![m("a", "GET", "x", "Deny")]).await.unwrap_err();
        assert!(
            matches!(e, AdminError::Store(StoreError::Exists { .. })),
            "{e}"
        );
        assert_eq!(e.kind().exit_code(), 3);
        // Mixed: the identical one is dropped, the new one added, in one version.
        let c = a
            .add(vec![
                m("a", "GET", "x", "Allow"),
                m("n", "GET", "x", "Allow"),
            ])
            .await
            .unwrap();
        assert_eq!((c.version, c.diff.added.len()), (1, 1));
        assert_eq!(a.store.state(|s| s.current().len()), 2);
        assert_eq!(published(&a).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_remove_of_what_is_not_mapped_is_refused_and_writes_nothing() {
        let a = admin(&[m("a", "GET", "x", "Allow")]);
        let e = a
            .remove(vec![m("b", "GET", "x", "Allow")])
            .await
            .unwrap_err();
        assert!(
            matches!(e, AdminError::Store(StoreError::NotFound { .. })),
            "{e}"
        );
        assert_eq!(a.store.calls("apply"), 0);
        // The stored effect is what is removed and recorded, whatever the command said.
        let c = a.remove(vec![m("a", "GET", "x", "Deny")]).await.unwrap();
        assert_eq!(c.diff.removed, vec![m("a", "GET", "x", "Allow")]);
        assert!(a.store.state(|s| s.current().is_empty()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_remove_someone_else_made_first_is_a_true_conflict() {
        let a = admin(&[m("a", "GET", "x", "Allow")]);
        a.store
            .interfere(|s| s.commit_other(Edit::Remove(m("a", "GET", "x", "Allow"))));
        let e = a
            .remove(vec![m("a", "GET", "x", "Allow")])
            .await
            .unwrap_err();
        assert!(
            matches!(e, AdminError::Store(StoreError::NotFound { .. })),
            "{e}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn losing_every_race_gives_up_within_the_bound_and_writes_nothing() {
        let a = admin(&[]);
        let max = a.retry.max_attempts;
        lose_every_race(&a);
        let e = a
            .add(vec![m("mine", "GET", "x", "Allow")])
            .await
            .unwrap_err();
        match e {
            AdminError::Busy { attempts, .. } => assert_eq!(attempts, max),
            other => panic!("expected Busy, got {other}"),
        }
        let now = a.store.state(|s| s.current());
        assert!(
            !now.iter().any(|e| e.scopes.to_string() == "mine"),
            "{now:?}"
        );
        assert_eq!(
            now.len() as u32,
            max,
            "every other writer's change is there"
        );
        assert!(published(&a).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_import_that_loses_a_race_patches_its_generation_instead_of_rewriting_it() {
        let a = admin(&many(3, "old"));
        let import = many(MAX_TRANSACTION_EDITS + 50, "new");
        a.store
            .interfere(|s| s.commit_other(Edit::Add(m("other", "GET", "x", "Allow"))));
        let c = a
            .import("import", import.clone(), false, false, &|_, _| {})
            .await
            .unwrap();
        assert_eq!(c.attempts, 2);
        assert_eq!(a.store.calls("write_generation"), 1, "written once");
        assert_eq!(a.store.calls("patch_generation"), 1, "then patched");
        assert_eq!(a.store.calls("switch_generation"), 2);
        assert_eq!(a.store.calls("apply"), 0, "too large for a transaction");
        let now = a.store.state(|s| s.current());
        assert_eq!(
            now.len(),
            3 + 1 + import.len(),
            "merged over the other's change"
        );
        assert!(now.iter().any(|e| e.scopes.to_string() == "other"));
        // Only the current generation and the one before it are left.
        assert_eq!(a.store.state(|s| s.generations.len()), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_import_someone_else_made_meanwhile_leaves_no_generation_behind() {
        let a = admin(&many(3, "old"));
        let import = many(MAX_TRANSACTION_EDITS + 20, "new");
        let theirs = import.clone();
        a.store.interfere(move |s| {
            for m in theirs {
                s.commit_other(Edit::Add(m));
            }
        });
        let c = a
            .import("import", import, false, false, &|_, _| {})
            .await
            .unwrap();
        assert_eq!(
            (c.attempts, c.version, c.from_version),
            (2, c.from_version, c.from_version)
        );
        assert!(c.diff.is_empty(), "nothing left to do");
        assert_eq!(a.store.calls("delete_generation"), 1);
        assert_eq!(
            a.store.state(|s| s.generations.len()),
            1,
            "only the current one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_given_twice_is_refused_before_anything_is_read() {
        let a = admin(&[m("a", "GET", "x", "Allow")]);
        let e = a
            .remove(vec![
                m("a", "GET", "x", "Allow"),
                m("a", "GET", "x", "Deny"),
            ])
            .await
            .unwrap_err();
        assert!(matches!(e, AdminError::Usage(_)), "{e}");
        assert_eq!(e.kind().exit_code(), 2);
        assert_eq!(a.store.calls("apply"), 0);
        assert_eq!(a.store.state(|s| s.current().len()), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_import_that_gives_up_deletes_the_generation_it_wrote() {
        let a = admin(&many(3, "old"));
        lose_every_race(&a);
        let e = a
            .import("import", many(200, "new"), true, false, &|_, _| {})
            .await
            .unwrap_err();
        assert!(matches!(e, AdminError::Busy { .. }), "{e}");
        assert_eq!(a.store.calls("delete_generation"), 1);
        assert_eq!(
            a.store.state(|s| s.generations.len()),
            1,
            "only the current one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_confirmed_plan_is_applied_only_while_it_is_still_the_plan() {
        let a = admin(&[m("a", "GET", "x", "Allow")]);
        let change = Change::Replace(vec![m("b", "GET", "y", "Allow")], ApiKinds::new());
        let plan = a.plan(&change).await.unwrap();
        assert!(plan.dry_run && plan.diff.removed.len() == 1 && plan.diff.added.len() == 1);
        assert_eq!(
            a.store.calls("apply") + a.store.calls("write_generation"),
            0
        );
        // Someone adds an entry the replace would now also remove: not the plan confirmed.
        a.store
            .interfere(|s| s.commit_other(Edit::Add(m("c", "GET", "z", "Allow"))));
        let e = a
            .change("import", change.clone(), Some(&plan.diff), &|_, _| {})
            .await
            .unwrap_err();
        assert!(matches!(e, AdminError::PlanChanged { version: 1 }), "{e}");
        assert_eq!(a.store.state(|s| s.current().len()), 2, "nothing written");
        // Planned again, it applies.
        let plan = a.plan(&change).await.unwrap();
        let c = a
            .change("import", change, Some(&plan.diff), &|_, _| {})
            .await
            .unwrap();
        assert_eq!(
            a.store.state(|s| s.current()),
            vec![m("b", "GET", "y", "Allow")]
        );
        assert_eq!(c.version, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dry_run_writes_nothing() {
        let a = admin(&many(2, "old"));
        let c = a
            .import("import", many(300, "new"), true, true, &|_, _| {})
            .await
            .unwrap();
        assert!(c.dry_run);
        assert_eq!((c.diff.added.len(), c.diff.removed.len()), (300, 2));
        assert_eq!(
            a.store.calls("write_generation") + a.store.calls("apply"),
            0
        );
        assert_eq!(a.store.state(|s| s.head.version), 0);
        assert!(published(&a).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_publish_is_reported_and_the_change_stands() {
        let a = admin(&[]);
        bucket_down(&a, true);
        let c = a.add(vec![m("a", "GET", "x", "Allow")]).await.unwrap();
        let outcome = c.published.expect("publishing was attempted");
        let e = outcome.unwrap_err();
        assert!(e.contains("AccessDenied"), "{e}");
        assert_eq!(a.store.state(|s| s.head.version), 1);
        // Publishing by hand reads the current set.
        bucket_down(&a, false);
        a.publish_now().await.unwrap();
        assert_eq!(published(&a), vec![(1, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_publish_names_its_digest_in_the_version_record_of_that_version_only() {
        let a = admin(&[]);
        let c = a.add(vec![m("a", "GET", "x", "Allow")]).await.unwrap();
        let published = c.published.expect("published").unwrap();
        let head = a.store.state(|s| s.head.clone());
        assert_eq!(head.version, 1);
        assert_eq!(head.vouched_snapshot(), Some(&published.digest()));

        // The next change does not publish: the record still names version 1's object,
        // which no longer vouches for anything.
        let a = Admin {
            publish: false,
            ..a
        };
        a.add(vec![m("b", "GET", "x", "Allow")]).await.unwrap();
        let head = a.store.state(|s| s.head.clone());
        assert_eq!(head.version, 2);
        assert_eq!(head.snapshot.as_ref().map(|s| s.version), Some(1));
        assert_eq!(head.vouched_snapshot(), None);

        // A publish that loses the version to another change on the way records nothing.
        a.store.interfere(|s| s.head.version += 1);
        a.publish_now().await.unwrap();
        let head = a.store.state(|s| s.head.clone());
        assert_eq!(head.version, 3);
        assert_eq!(head.vouched_snapshot(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn merge_keeps_and_replace_drops_what_the_file_does_not_name() {
        let a = admin(&[m("keep", "GET", "x", "Allow"), m("t", "GET", "x", "Allow")]);
        let file = vec![m("t", "GET", "x", "Deny"), m("new", "GET", "x", "Allow")];
        let c = a
            .import("import", file.clone(), false, false, &|_, _| {})
            .await
            .unwrap();
        assert_eq!(c.diff.changed.len(), 1);
        assert_eq!(c.diff.added.len(), 1);
        assert_eq!(a.store.state(|s| s.current().len()), 3);
        let c = a
            .import("import", file, true, false, &|_, _| {})
            .await
            .unwrap();
        assert_eq!(c.diff.removed, vec![m("keep", "GET", "x", "Allow")]);
        assert_eq!(a.store.state(|s| s.current().len()), 2);
    }

    #[tokio::test]
    async fn replace_within_one_api_and_stage_keeps_the_rest() {
        let mut other_stage = m("s", "GET", "x", "Allow");
        other_stage.stage = Stage::new("prod").unwrap();
        let mut other_api = m("s", "GET", "x", "Allow");
        other_api.api =
            ApiArn::parse("arn:aws:execute-api:us-east-1:123456789012:zzzzzzzzzz").unwrap();
        let here = m("old", "GET", "x", "Allow");
        // Hand-written Denies and globs of the same API and stage stay too.
        let deny = m("contractor", "DELETE", "x", "Deny");
        let glob = m("readonly", "GET", "*", "Allow");
        let a = admin(&[
            here.clone(),
            other_stage.clone(),
            other_api.clone(),
            deny.clone(),
            glob.clone(),
        ]);
        let new = m("new", "GET", "{id}", "Allow");
        let change = Change::ReplaceWithin {
            api: here.api.clone(),
            stage: here.stage.clone(),
            entries: vec![new.clone()],
            kind: ApiKind::Rest,
        };
        let c = a.change("import", change, None, &|_, _| {}).await.unwrap();
        assert_eq!(c.diff.removed, vec![here.clone()]);
        assert_eq!(c.diff.added, vec![new.clone()]);
        let mut now = a.store.state(|s| s.current().to_vec());
        now.sort();
        let mut want = vec![new.clone(), other_stage.clone(), other_api, deny, glob];
        want.sort();
        assert_eq!(now, want);
        // Stage `*`: the route Allows of every stage of the API are the document's.
        let change = Change::ReplaceWithin {
            api: here.api.clone(),
            stage: Stage::new("*").unwrap(),
            entries: vec![],
            kind: ApiKind::Rest,
        };
        let c = a.change("import", change, None, &|_, _| {}).await.unwrap();
        let mut removed = c.diff.removed.clone();
        removed.sort();
        let mut both = vec![new, other_stage];
        both.sort();
        assert_eq!(removed, both);
    }
}
