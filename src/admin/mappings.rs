//! `scopegate mappings add|remove|list|get`, `import`, `export`, `publish`, `validate`,
//! `history` and `explain`: the operator's commands over the DynamoDB store and the S3
//! snapshot, as library functions the binary calls after parsing flags and asking for
//! confirmation.
//!
//! Every change is validated before anything is written (a refused file leaves the table as
//! it was), is conditional on the version it read (a concurrent change makes it fail with
//! "changed since you read it, retry"), records who and when in the history, and is published
//! to the S3 snapshot afterwards unless that is turned off.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::retry::RetryPolicy;
use crate::mapping::aws::{AwsConfig, AwsOptions, CallerIdentity};
use crate::mapping::dynamo::{DynamoStore, Progress};
use crate::mapping::file::{self, check_unique, Document, FileError};
use crate::mapping::s3::{Published, S3Snapshots};
use crate::mapping::store::{
    entry_key, ChangeNote, Diff, Edit, Head, HistoryRecord, StoreError, MAX_TRANSACTION_EDITS,
};
use crate::mapping::{Mapping, Snapshot};
use crate::policy::{ArnError, Effect};

/// A command that cannot be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The store or the bucket refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A mapping file or entry that does not validate.
    #[error(transparent)]
    File(#[from] FileError),
    /// A methodArn that does not parse.
    #[error("--method-arn: {0}")]
    Arn(#[from] ArnError),
    /// A bad combination of options.
    #[error("{0}")]
    Usage(String),
    /// The change lost every race it ran, within the [`RetryPolicy`]'s bounds.
    #[error("the mappings kept changing under this change: gave up after {attempts} attempts in {seconds:.1} s; nothing of it was written")]
    Busy {
        /// Attempts made.
        attempts: u32,
        /// Seconds since the first conflict.
        seconds: f64,
    },
    /// The diff the operator confirmed is no longer what the change would do.
    #[error("the mappings changed since the plan you confirmed (now version {version}): nothing was written; run the command again to see the new plan")]
    PlanChanged {
        /// The version now.
        version: u64,
    },
    /// The operator said no at the prompt.
    #[error("cancelled: nothing was written")]
    Cancelled,
}

/// What kind of failure an error is: what the CLI's exit code says (see
/// [`exit_code`](ErrorKind::exit_code)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line or the AWS configuration (profile, region) is wrong: exit 2.
    Usage,
    /// A concurrent change that retrying cannot resolve: exit 3.
    Conflict,
    /// The input (a mapping file, an entry, an ARN) does not validate: exit 4.
    Invalid,
    /// AWS or the service failed, or the table is missing: exit 5.
    Service,
    /// The operator declined at the prompt: exit 1, nothing done.
    Cancelled,
}

impl ErrorKind {
    /// The CLI's exit code (documented in `scopegate --help` and docs/mappings.md).
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Cancelled => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Conflict => 3,
            ErrorKind::Invalid => 4,
            ErrorKind::Service => 5,
        }
    }

    /// The kind of a store error.
    pub fn of_store(e: &StoreError) -> ErrorKind {
        match e {
            StoreError::Conflict { .. }
            | StoreError::Exists { .. }
            | StoreError::NotFound { .. }
            | StoreError::SnapshotNewer { .. } => ErrorKind::Conflict,
            StoreError::Invalid(_) => ErrorKind::Invalid,
            StoreError::Setup(_) | StoreError::NoBucket => ErrorKind::Usage,
            _ => ErrorKind::Service,
        }
    }
}

impl AdminError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AdminError::Store(e) => ErrorKind::of_store(e),
            AdminError::File(_) | AdminError::Arn(_) => ErrorKind::Invalid,
            AdminError::Usage(_) => ErrorKind::Usage,
            AdminError::Busy { .. } | AdminError::PlanChanged { .. } => ErrorKind::Conflict,
            AdminError::Cancelled => ErrorKind::Cancelled,
        }
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Aligned columns with a header and a footer, for people.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
    /// Tab-separated fields, one record per line, no header or footer: for `cut`, `awk`
    /// and `while read`, like the AWS CLI's `--output text`.
    Text,
}

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
}

/// The actor when none is given: `$USER`, else `unknown`.
pub fn default_actor() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The store, the snapshot and the actor, opened.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The table.
    pub store: DynamoStore,
    /// The snapshot, when a bucket is configured.
    pub snapshots: Option<S3Snapshots>,
    /// Who is acting.
    pub actor: String,
    /// Publish after changes.
    pub publish: bool,
    /// The resolved region (to create a bucket in).
    pub region: Option<String>,
    /// How changes retry after a conflict.
    pub retry: RetryPolicy,
    aws: AwsConfig,
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
    /// kept.
    Merge(Vec<Mapping>),
    /// Replace: exactly these entries afterwards.
    Replace(Vec<Mapping>),
}

/// The set after `change`, given the `current` one (for [`Change::Merge`] and
/// [`Change::Replace`]).
fn merged(current: &[Mapping], entries: &[Mapping], replace: bool) -> Vec<Mapping> {
    if replace {
        return entries.to_vec();
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
        Ok(Admin {
            store: DynamoStore::new(&aws, &target.table),
            snapshots: target
                .bucket
                .as_deref()
                .map(|b| S3Snapshots::new(&aws, b, &target.key)),
            actor: target.actor.clone(),
            publish: target.publish,
            region: aws.region(),
            retry: RetryPolicy::default(),
            aws,
        })
    }

    /// Who the credentials belong to (one STS call).
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn identity(&self) -> Result<CallerIdentity, AdminError> {
        Ok(self.aws.caller_identity().await?)
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

    /// Writes the current set to the S3 snapshot (never over a newer one).
    ///
    /// # Errors
    /// [`StoreError::NoBucket`] without a bucket; as [`S3Snapshots::publish`].
    pub async fn publish_now(&self) -> Result<Published, AdminError> {
        let snapshots = self.snapshots.as_ref().ok_or(StoreError::NoBucket)?;
        let loaded = self.store.load_current().await?;
        Ok(snapshots
            .publish(loaded.head.version, &loaded.entries)
            .await?)
    }

    /// Adds entries. An identical entry already mapped is no change; another effect for a
    /// mapped target is refused (remove it first). Retries conflicts (see [`RetryPolicy`]).
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
        self.change("remove", Change::Remove(targets), None, &|_, _| {})
            .await
    }

    /// Imports `entries` (validated already, as [`file::parse_document`] does): merged into
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
        check_unique(&entries, "the import")?;
        let change = if replace {
            Change::Replace(entries)
        } else {
            Change::Merge(entries)
        };
        if dry_run {
            return self.plan(&change).await;
        }
        self.change(action, change, None, progress).await
    }

    /// What `change` would do now: a dry run.
    ///
    /// # Errors
    /// As [`DynamoStore::load_current`].
    pub async fn plan(&self, change: &Change) -> Result<Changed, AdminError> {
        let current = self.store.load_current().await?;
        let diff = match change {
            Change::Merge(e) => {
                Diff::between(&current.entries, &merged(&current.entries, e, false))
            }
            Change::Replace(e) => Diff::between(&current.entries, e),
            Change::Add(e) => {
                let new: Vec<Mapping> = e
                    .iter()
                    .filter(|m| !current.entries.contains(m))
                    .cloned()
                    .collect();
                Diff::between(&current.entries, &merged(&current.entries, &new, false))
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
                Change::Merge(e) | Change::Replace(e) => {
                    let replace = matches!(change, Change::Replace(_));
                    self.import_once(action, e, replace, expected, &mut written, progress)
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
            Change::Merge(_) | Change::Replace(_) => unreachable!("imports go through import_once"),
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
            .apply(&head, &edits, &self.note(action, summary, &diff))
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
        replace: bool,
        expected: Option<&Diff>,
        written: &mut Option<(String, u32, Vec<Mapping>)>,
        progress: Progress<'_>,
    ) -> Result<Changed, AdminError> {
        let current = self.store.load_current().await?;
        let new_set = merged(&current.entries, entries, replace);
        let diff = Diff::between(&current.entries, &new_set);
        let head = current.head;
        if expected.is_some_and(|want| !want.same_changes(&diff)) {
            return Err(AdminError::PlanChanged {
                version: head.version,
            });
        }
        if diff.is_empty() {
            return Ok(self.unchanged(&head, diff));
        }
        let summary = format!(
            "{action}{} {}",
            if replace { " --replace" } else { "" },
            diff.summary()
        );
        let note = self.note(action, summary, &diff);
        let new = if written.is_none() && diff.edit_count() <= MAX_TRANSACTION_EDITS {
            self.store.apply(&head, &diff.edits(), &note).await?
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
                .switch_generation(&head, &generation, new_set.len(), &note)
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
        let loaded = self.store.load_current().await?;
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
        let loaded = self.store.load_current().await?;
        Ok(Snapshot::new(loaded.head.version, loaded.entries))
    }
}

/// Which entries `list` shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this scope.
    pub scope: Option<String>,
    /// Only this API (ARN or API id).
    pub api: Option<String>,
    /// Only this stage.
    pub stage: Option<String>,
}

impl Filter {
    fn matches(&self, m: &Mapping) -> bool {
        self.scope.as_deref().is_none_or(|s| m.scope.as_str() == s)
            && self
                .api
                .as_deref()
                .is_none_or(|a| m.api.as_str() == a || m.api.as_str().ends_with(&format!(":{a}")))
            && self.stage.as_deref().is_none_or(|s| m.stage.as_str() == s)
    }
}

// ----- explain ---------------------------------------------------------------------------

/// The answer of `explain`.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainReport {
    /// The snapshot version explained against.
    pub version: u64,
    /// The request.
    pub method_arn: String,
    /// The scopes considered.
    pub scopes: Vec<String>,
    /// Allow or Deny, as API Gateway would answer under the token's whole policy.
    pub decision: Effect,
    /// The entries that decided (matching Denies for a Deny, matching Allows for an Allow;
    /// none for the implicit deny).
    pub deciding: Vec<Mapping>,
    /// Matching Allows overruled by a Deny.
    pub overruled: Vec<Mapping>,
    /// Scopes no entry names.
    pub unknown_scopes: Vec<String>,
    /// Statements in the token's policy.
    pub policy_grants: usize,
    /// Size of the token's policy, in bytes.
    pub policy_bytes: usize,
}

/// Explains the decision for `scopes` on `method_arn` under `snapshot`.
///
/// # Errors
/// [`AdminError::Arn`] for a methodArn that does not parse.
pub fn explain(
    snapshot: &Snapshot,
    scopes: &[String],
    method_arn: &str,
) -> Result<ExplainReport, AdminError> {
    let e = snapshot.explain(scopes.iter().map(String::as_str), method_arn)?;
    let overruled = if e.effect == Effect::Deny && !e.denied_by.is_empty() {
        e.allowed_by.iter().map(|m| (*m).clone()).collect()
    } else {
        Vec::new()
    };
    Ok(ExplainReport {
        version: snapshot.version(),
        method_arn: method_arn.to_owned(),
        scopes: scopes.to_vec(),
        decision: e.effect,
        deciding: e.deciding().iter().map(|m| (*m).clone()).collect(),
        overruled,
        unknown_scopes: e.unknown_scopes.clone(),
        policy_grants: e.policy.grants,
        policy_bytes: e.policy.json.get().len(),
    })
}

/// The scopes of a JWT, read from its payload without verifying it (`explain` is an
/// operator's tool for a token they already hold; the authorizer always verifies). Reads
/// `scp` (array or string), else `scope`.
///
/// # Errors
/// [`AdminError::Usage`] when it is not a JWT with scopes.
pub fn token_scopes(jwt: &str) -> Result<Vec<String>, AdminError> {
    use base64::Engine as _;
    let jwt = jwt.trim();
    let jwt = jwt.strip_prefix("Bearer ").unwrap_or(jwt);
    let payload = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| AdminError::Usage("--token: not a JWT (header.payload.signature)".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| AdminError::Usage(format!("--token: payload is not base64url: {e}")))?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| AdminError::Usage(format!("--token: payload is not JSON: {e}")))?;
    let split = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    match (claims.get("scp"), claims.get("scope")) {
        (Some(serde_json::Value::Array(a)), _) => Ok(a
            .iter()
            .filter_map(|v| v.as_str())
            .map(str::to_owned)
            .collect()),
        (Some(serde_json::Value::String(s)), _) | (None, Some(serde_json::Value::String(s))) => {
            Ok(split(s))
        }
        _ => Err(AdminError::Usage(
            "--token: the token has no scp or scope claim".into(),
        )),
    }
}

// ----- validate --------------------------------------------------------------------------

/// The answer of `validate`.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    /// The file.
    pub file: String,
    /// Entries in it.
    pub entries: usize,
    /// Scopes in it.
    pub scopes: usize,
    /// Policies over the size budget: which scopes, which API and stage, how big.
    pub warnings: Vec<String>,
}

/// Validates a mapping file (every entry, duplicates, Allow/Deny that cancel out) and warns
/// when a scope set would produce a policy over `budget` bytes: each scope alone, and all of
/// an API's scopes together (the worst token), on each stage the file names.
///
/// # Errors
/// [`FileError`] naming the file, the entry and the field.
pub fn validate(path: &Path, budget: usize) -> Result<ValidateReport, AdminError> {
    let doc = file::load_document(path)?;
    Ok(validate_entries(
        &path.display().to_string(),
        doc.mappings,
        budget,
    ))
}

/// [`validate`] of entries already parsed.
pub fn validate_entries(origin: &str, entries: Vec<Mapping>, budget: usize) -> ValidateReport {
    use std::collections::BTreeMap;
    let n = entries.len();
    // API -> (stages named, scopes naming it).
    let mut apis: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for m in &entries {
        let (stages, scopes) = apis.entry(m.api.as_str().to_owned()).or_default();
        if !m.stage.is_any() {
            stages.insert(m.stage.as_str().to_owned());
        }
        scopes.insert(m.scope.as_str().to_owned());
    }
    let snapshot = Snapshot::new(0, entries);
    let mut warnings = Vec::new();
    for (api, (stages, scopes)) in &apis {
        let stages: Vec<&str> = if stages.is_empty() {
            // Only `*` entries: any stage name gives the same policy.
            vec!["any-stage"]
        } else {
            stages.iter().map(String::as_str).collect()
        };
        for stage in stages {
            let mut check = |set: Vec<&str>, label: String| {
                let p = snapshot.policy_for(set, api, stage);
                let bytes = p.json.get().len();
                if bytes > budget {
                    warnings.push(format!(
                        "{label} on {api} stage {stage}: policy of {bytes} bytes ({} statements) is over the budget of {budget} bytes",
                        p.grants
                    ));
                }
            };
            for scope in scopes {
                check(vec![scope.as_str()], format!("scope {scope}"));
            }
            if scopes.len() > 1 {
                check(
                    scopes.iter().map(String::as_str).collect(),
                    format!("all {} scopes together", scopes.len()),
                );
            }
        }
    }
    let scopes = snapshot.scopes().len();
    ValidateReport {
        file: origin.to_owned(),
        entries: n,
        scopes,
        warnings,
    }
}

// ----- rendering -------------------------------------------------------------------------

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut first = true;
        let mut s = String::new();
        for (c, w) in cells.zip(&widths) {
            if !first {
                s.push_str("  ");
            }
            first = false;
            let _ = write!(s, "{c:<w$}");
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    for r in rows {
        line(&mut out, &mut r.iter().map(String::as_str));
    }
    out
}

/// `1 entry`, `2 entries`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// An entry's fields in table and text order: scope, effect, method, stage, resource, API.
fn entry_fields(m: &Mapping) -> [String; 6] {
    [
        m.scope.to_string(),
        m.effect.to_string(),
        m.method.to_string(),
        m.stage.to_string(),
        format!("/{}", m.resource),
        m.api.to_string(),
    ]
}

/// Tab-separated fields, one line (no field holds a tab or a newline: every field is
/// validated).
fn text_line(out: &mut String, fields: &[&str]) {
    out.push_str(&fields.join("\t"));
    out.push('\n');
}

/// An entry as one text line: `prefix` (if any), then its [`entry_fields`].
fn text_entry(out: &mut String, prefix: Option<&str>, m: &Mapping) {
    let f = entry_fields(m);
    let fields: Vec<&str> = prefix
        .into_iter()
        .chain(f.iter().map(String::as_str))
        .collect();
    text_line(out, &fields);
}

/// Entries as a table (with a footer naming the count and the version, when given), a JSON
/// array (the canonical form), or tab-separated lines.
pub fn render_mappings(entries: &[Mapping], output: Output, version: Option<u64>) -> String {
    match output {
        Output::Json => serde_json::to_string_pretty(entries).expect("serializable") + "\n",
        Output::Text => {
            let mut out = String::new();
            for m in entries {
                text_entry(&mut out, None, m);
            }
            out
        }
        Output::Table => {
            let rows: Vec<Vec<String>> = entries.iter().map(|m| entry_fields(m).to_vec()).collect();
            let mut out = table(
                &["SCOPE", "EFFECT", "METHOD", "STAGE", "RESOURCE", "API"],
                &rows,
            );
            if let Some(v) = version {
                let _ = writeln!(
                    out,
                    "{}, version {v}",
                    count(entries.len(), "entry", "entries")
                );
            }
            out
        }
    }
}

/// A change (or a dry run's plan) as text for people, JSON, or tab-separated lines
/// (`+`/`-`/`~`, then the entry's fields; `~` gives the new effect).
pub fn render_changed(c: &Changed, output: Output) -> String {
    let mut out = String::new();
    match output {
        Output::Json => return serde_json::to_string_pretty(c).expect("serializable") + "\n",
        Output::Text => {
            let mut line = |op: &str, m: &Mapping| text_entry(&mut out, Some(op), m);
            for m in &c.diff.added {
                line("+", m);
            }
            for m in &c.diff.removed {
                line("-", m);
            }
            for (_, new) in &c.diff.changed {
                line("~", new);
            }
            return out;
        }
        Output::Table => {}
    }
    for m in &c.diff.added {
        let _ = writeln!(out, "+ {m}");
    }
    for m in &c.diff.removed {
        let _ = writeln!(out, "- {m}");
    }
    for (old, new) in &c.diff.changed {
        let _ = writeln!(out, "~ {old}  ->  {}", new.effect);
    }
    let what = if c.dry_run {
        format!(
            "dry run, nothing written: {} at version {}",
            c.diff.summary(),
            c.from_version
        )
    } else if c.version == c.from_version {
        format!("no change (version {})", c.version)
    } else {
        format!(
            "{}: version {} -> {}{}",
            c.diff.summary(),
            c.from_version,
            c.version,
            if c.attempts > 1 {
                format!(
                    " (after {})",
                    count(c.attempts as usize - 1, "retry", "retries")
                )
            } else {
                String::new()
            }
        )
    };
    let _ = writeln!(out, "{what}");
    match &c.published {
        Some(Ok(Published::Written { version })) => {
            let _ = writeln!(out, "snapshot published (version {version})");
        }
        Some(Ok(Published::AlreadyCurrent { version })) => {
            let _ = writeln!(out, "snapshot already at version {version}");
        }
        Some(Err(e)) => {
            let _ = writeln!(
                out,
                "warning: snapshot not published: {e} (run `scopegate publish`)"
            );
        }
        None => {}
    }
    out
}

/// History records as a table, JSON or tab-separated lines.
pub fn render_history(records: &[HistoryRecord], output: Output) -> String {
    match output {
        Output::Json => serde_json::to_string_pretty(records).expect("serializable") + "\n",
        Output::Text => {
            let mut out = String::new();
            for r in records {
                let v = r.version.to_string();
                text_line(&mut out, &[&v, &r.at, &r.actor, &r.action, &r.summary]);
            }
            out
        }
        Output::Table => {
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    vec![
                        r.version.to_string(),
                        r.at.clone(),
                        r.actor.clone(),
                        r.action.clone(),
                        r.summary.clone(),
                    ]
                })
                .collect();
            let mut out = table(&["VERSION", "AT", "ACTOR", "ACTION", "SUMMARY"], &rows);
            if let Some(latest) = records.first() {
                for c in &latest.changes {
                    let _ = writeln!(out, "  v{}: {c}", latest.version);
                }
            }
            let _ = writeln!(out, "{}", count(records.len(), "change", "changes"));
            out
        }
    }
}

/// An explanation as text for people, JSON, or tab-separated lines (`decision`, then one
/// line per deciding entry, overruled entry and unknown scope).
pub fn render_explain(r: &ExplainReport, output: Output) -> String {
    let mut out = String::new();
    match output {
        Output::Json => return serde_json::to_string_pretty(r).expect("serializable") + "\n",
        Output::Text => {
            let decision = r.decision.to_string();
            text_line(&mut out, &["decision", &decision, &r.method_arn]);
            for (kind, list) in [("deciding", &r.deciding), ("overruled", &r.overruled)] {
                for m in list {
                    text_entry(&mut out, Some(kind), m);
                }
            }
            for s in &r.unknown_scopes {
                text_line(&mut out, &["unknown_scope", s]);
            }
            return out;
        }
        Output::Table => {}
    }
    let _ = writeln!(
        out,
        "{}  {}  (scopes: {}; mappings version {})",
        r.decision,
        r.method_arn,
        r.scopes.join(" "),
        r.version
    );
    if r.deciding.is_empty() {
        let _ = writeln!(out, "  no entry of these scopes matches: implicit deny");
    }
    for m in &r.deciding {
        let _ = writeln!(out, "  decided by: {m}");
    }
    for m in &r.overruled {
        let _ = writeln!(out, "  overruled:  {m}");
    }
    if !r.unknown_scopes.is_empty() {
        let _ = writeln!(
            out,
            "  scopes no entry names: {}",
            r.unknown_scopes.join(" ")
        );
    }
    let _ = writeln!(
        out,
        "  the token's policy: {} statements, {} bytes",
        r.policy_grants, r.policy_bytes
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    fn m(scope: &str, method: &str, resource: &str, effect: &str) -> Mapping {
        serde_json::from_str(&format!(
            r#"{{"api":"{API}","stage":"dev","method":"{method}","resource":"{resource}","scope":"{scope}","effect":"{effect}"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn explain_names_the_deciding_entries() {
        let s = Snapshot::new(
            7,
            vec![
                m("w", "*", "orders/*", "Allow"),
                m("w", "DELETE", "orders/*", "Deny"),
                m("r", "GET", "orders", "Allow"),
            ],
        );
        let arn = format!("{API}/dev/DELETE/orders/1");
        let r = explain(&s, &["w".into(), "x".into()], &arn).unwrap();
        assert_eq!(r.decision, Effect::Deny);
        assert_eq!(r.deciding, vec![m("w", "DELETE", "orders/*", "Deny")]);
        assert_eq!(r.overruled, vec![m("w", "*", "orders/*", "Allow")]);
        assert_eq!(r.unknown_scopes, vec!["x".to_owned()]);
        let text = render_explain(&r, Output::Table);
        assert!(
            text.starts_with("Deny") && text.contains("decided by: w: Deny"),
            "{text}"
        );
        let r = explain(&s, &["r".into()], &format!("{API}/dev/GET/orders")).unwrap();
        assert_eq!(r.decision, Effect::Allow);
        let r = explain(&s, &["r".into()], &format!("{API}/dev/GET/other")).unwrap();
        assert!(r.deciding.is_empty());
        assert!(matches!(
            explain(&s, &[], "nonsense"),
            Err(AdminError::Arn(_))
        ));
    }

    #[test]
    fn token_scopes_reads_scp_or_scope() {
        use base64::Engine as _;
        let enc = |v: serde_json::Value| {
            format!(
                "e30.{}.sig",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
            )
        };
        assert_eq!(
            token_scopes(&enc(serde_json::json!({"scope": "a b"}))).unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            token_scopes(&enc(serde_json::json!({"scp": ["c"]}))).unwrap(),
            ["c"]
        );
        assert!(token_scopes("nope").is_err());
        assert!(token_scopes(&enc(serde_json::json!({"sub": "x"}))).is_err());
    }

    #[test]
    fn validate_warns_over_the_budget() {
        let entries: Vec<Mapping> = (0..200)
            .map(|i| m("big", "GET", &format!("r{i}/x"), "Allow"))
            .chain([m("small", "GET", "a", "Allow")])
            .collect();
        let r = validate_entries("f.json", entries, 4096);
        assert_eq!((r.entries, r.scopes), (201, 2));
        assert!(
            r.warnings.iter().any(|w| w.starts_with("scope big ")),
            "{:?}",
            r.warnings
        );
        assert!(
            r.warnings.iter().any(|w| w.starts_with("all 2 scopes")),
            "{:?}",
            r.warnings
        );
        assert!(!r.warnings.iter().any(|w| w.starts_with("scope small ")));
    }

    #[test]
    fn tables_align() {
        let t = render_mappings(
            &[m("email", "GET", "my-resource", "Allow")],
            Output::Table,
            Some(3),
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("SCOPE  EFFECT  METHOD"), "{t}");
        assert!(lines[1].starts_with("email  Allow   GET"), "{t}");
        assert_eq!(
            lines[2], "1 entry, version 3",
            "footer on its own line: {t}"
        );
        let two = [m("a", "GET", "x", "Allow"), m("b", "GET", "y", "Deny")];
        let t = render_mappings(&two, Output::Table, Some(4));
        assert_eq!(t.lines().last(), Some("2 entries, version 4"), "{t}");
        let text = render_mappings(&two, Output::Text, Some(4));
        assert_eq!(
            text.lines().next(),
            Some(format!("a\tAllow\tGET\tdev\t/x\t{API}").as_str()),
            "no header, tab-separated: {text}"
        );
        assert_eq!(text.lines().count(), 2, "no footer: {text}");
        let j = render_mappings(
            &[m("email", "GET", "my-resource", "Allow")],
            Output::Json,
            None,
        );
        let back: Vec<Mapping> = serde_json::from_str(&j).unwrap();
        assert_eq!(back.len(), 1);
    }

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
}
