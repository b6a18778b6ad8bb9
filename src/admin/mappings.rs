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

use crate::mapping::dynamo::{AwsConfig, AwsOptions, DynamoStore, Progress};
use crate::mapping::file::{self, check_unique, Document, FileError};
use crate::mapping::s3::{Published, S3Snapshots};
use crate::mapping::store::{
    entry_key, now_rfc3339, ChangeNote, Diff, Edit, Head, HistoryRecord, StoreError,
    MAX_TRANSACTION_EDITS,
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
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
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
    /// The snapshot publication after the change: `None` when not attempted.
    pub published: Option<Result<Published, String>>,
}

impl Admin {
    /// Opens the store (and the snapshot bucket) at `target`.
    pub async fn open(target: &Target) -> Admin {
        let aws = AwsConfig::load(&target.aws).await;
        Admin {
            store: DynamoStore::new(&aws, &target.table),
            snapshots: target
                .bucket
                .as_deref()
                .map(|b| S3Snapshots::new(&aws, b, &target.key)),
            actor: target.actor.clone(),
            publish: target.publish,
            region: aws.region(),
        }
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

    /// Applies edits (up to [`MAX_TRANSACTION_EDITS`] in one transaction), conditional on the
    /// version read first.
    async fn edit(&self, action: &str, edits: Vec<Edit>) -> Result<Changed, AdminError> {
        if edits.is_empty() {
            return Err(AdminError::Usage("nothing to change".into()));
        }
        if edits.len() > MAX_TRANSACTION_EDITS {
            return Err(AdminError::Usage(format!(
                "{} changes at once: use `scopegate import` for more than {MAX_TRANSACTION_EDITS}",
                edits.len()
            )));
        }
        let head = self.store.read_head().await?;
        let mut diff = Diff::default();
        for e in &edits {
            match e {
                Edit::Add(m) => diff.added.push(m.clone()),
                Edit::Remove(m) => diff.removed.push(m.clone()),
            }
        }
        let summary = format!("{action} {}", diff.summary());
        let new = self
            .store
            .apply(&head, &edits, &self.note(action, summary, &diff))
            .await?;
        Ok(Changed {
            from_version: head.version,
            version: new.version,
            diff,
            dry_run: false,
            published: self.publish_after().await,
        })
    }

    /// Adds entries (refused if any target is already mapped, or if they repeat or cancel
    /// each other out).
    ///
    /// # Errors
    /// [`AdminError`]; [`StoreError::Exists`]; [`StoreError::Conflict`].
    pub async fn add(&self, entries: Vec<Mapping>) -> Result<Changed, AdminError> {
        check_unique(&entries, "the entries given")?;
        self.edit("add", entries.into_iter().map(Edit::Add).collect())
            .await
    }

    /// Removes entries, by target (the effect given is ignored: the stored one is removed).
    ///
    /// # Errors
    /// [`AdminError`]; [`StoreError::NotFound`]; [`StoreError::Conflict`].
    pub async fn remove(&self, targets: Vec<Mapping>) -> Result<Changed, AdminError> {
        let mut edits = Vec::with_capacity(targets.len());
        for t in targets {
            // Record the stored entry (its real effect) in the history.
            let stored = self
                .store
                .get(&t)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    entry: t.to_string(),
                })?;
            edits.push(Edit::Remove(stored));
        }
        self.edit("remove", edits).await
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

    /// Imports `entries` (validated already, as [`file::parse_document`] does): merged into
    /// the current set (same targets replaced), or with `replace` instead of it. Small
    /// changes go through one transaction, large ones through a new generation; either way
    /// the switch is atomic. With `dry_run`, only the diff.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when someone changed the mappings meanwhile; [`AdminError`].
    pub async fn import(
        &self,
        action: &str,
        entries: Vec<Mapping>,
        replace: bool,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> Result<Changed, AdminError> {
        self.import_at(None, action, entries, replace, dry_run, progress)
            .await
    }

    /// [`import`](Self::import), refused with [`StoreError::Conflict`] unless the current
    /// version is `expected`: applies exactly the diff a dry run at `expected` showed.
    ///
    /// # Errors
    /// As [`import`](Self::import).
    pub async fn import_at(
        &self,
        expected: Option<u64>,
        action: &str,
        entries: Vec<Mapping>,
        replace: bool,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> Result<Changed, AdminError> {
        check_unique(&entries, "the import")?;
        let current = self.store.load_current().await?;
        if let Some(read) = expected.filter(|v| *v != current.head.version) {
            return Err(StoreError::Conflict {
                read,
                found: Some(current.head.version),
            }
            .into());
        }
        let new_set = if replace {
            entries
        } else {
            let incoming: BTreeSet<String> = entries.iter().map(entry_key).collect();
            let mut merged: Vec<Mapping> = current
                .entries
                .iter()
                .filter(|m| !incoming.contains(&entry_key(m)))
                .cloned()
                .collect();
            merged.extend(entries);
            merged
        };
        let diff = Diff::between(&current.entries, &new_set);
        let head = current.head;
        if dry_run || diff.is_empty() {
            return Ok(Changed {
                from_version: head.version,
                version: head.version,
                diff,
                dry_run,
                published: None,
            });
        }
        let summary = format!(
            "{action}{} {}",
            if replace { " --replace" } else { "" },
            diff.summary()
        );
        let note = self.note(action, summary, &diff);
        let new = if diff.edit_count() <= MAX_TRANSACTION_EDITS {
            self.store.apply(&head, &diff.edits(), &note).await?
        } else {
            self.store
                .replace_all(&head, &new_set, &note, progress)
                .await?
        };
        Ok(Changed {
            from_version: head.version,
            version: new.version,
            diff,
            dry_run: false,
            published: self.publish_after().await,
        })
    }

    /// The current set as a snapshot document.
    ///
    /// # Errors
    /// As [`DynamoStore::load_current`].
    pub async fn export(&self) -> Result<Document, AdminError> {
        let loaded = self.store.load_current().await?;
        Ok(Document {
            version: Some(loaded.head.version),
            generated_at: Some(now_rfc3339()),
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

/// Entries as a table or a JSON array (the canonical form).
pub fn render_mappings(entries: &[Mapping], output: Output) -> String {
    match output {
        Output::Json => serde_json::to_string_pretty(entries).expect("serializable") + "\n",
        Output::Table => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|m| {
                    vec![
                        m.scope.to_string(),
                        m.effect.to_string(),
                        m.method.to_string(),
                        m.stage.to_string(),
                        format!("/{}", m.resource),
                        m.api.to_string(),
                    ]
                })
                .collect();
            table(
                &["SCOPE", "EFFECT", "METHOD", "STAGE", "RESOURCE", "API"],
                &rows,
            )
        }
    }
}

/// A change (or a dry run's plan) as text or JSON.
pub fn render_changed(c: &Changed, output: Output) -> String {
    if output == Output::Json {
        return serde_json::to_string_pretty(c).expect("serializable") + "\n";
    }
    let mut out = String::new();
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
            "{}: version {} -> {}",
            c.diff.summary(),
            c.from_version,
            c.version
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

/// History records as a table or JSON.
pub fn render_history(records: &[HistoryRecord], output: Output) -> String {
    if output == Output::Json {
        return serde_json::to_string_pretty(records).expect("serializable") + "\n";
    }
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
    out
}

/// An explanation as text or JSON.
pub fn render_explain(r: &ExplainReport, output: Output) -> String {
    if output == Output::Json {
        return serde_json::to_string_pretty(r).expect("serializable") + "\n";
    }
    let mut out = String::new();
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
        let t = render_mappings(&[m("email", "GET", "my-resource", "Allow")], Output::Table);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("SCOPE  EFFECT  METHOD"), "{t}");
        assert!(lines[1].starts_with("email  Allow   GET"), "{t}");
        let j = render_mappings(&[m("email", "GET", "my-resource", "Allow")], Output::Json);
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
