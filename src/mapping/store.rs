//! The mapping store's small types and seams, free of the AWS SDK: the version record
//! ([`Head`]), a loaded generation ([`Loaded`]), edits, history records, [`StoreError`], and
//! the two traits the warm cache is generic over ([`VersionedSource`] for DynamoDB,
//! [`SnapshotSource`] for the S3 fallback), so that the cache is tested with fakes.
//!
//! # Table layout (DynamoDB, one table, string keys `pk` / `sk`)
//!
//! ```text
//! pk = META                 sk = VERSION        version, generation, previous, shards, entries, updated_at, updated_by
//! pk = G#<gen>#S#<shard>    sk = <entry key>    api, stage, method, resource, scope, effect, updated_at, updated_by
//! pk = HISTORY              sk = <version:020>  version, at, actor, action, summary, changes[]
//! pk = MIGRATION            sk = <id>           applied_at, actor, checksum, description
//! ```
//!
//! - The version record names the current generation. A reader reads it, then only that
//!   generation's items: an import writes a whole new generation (in batches, invisible to
//!   readers) and switches to it with one conditional write of the version record, so a reader
//!   sees the old set or the new one, never a mix, however large the import.
//! - A generation is spread over `shards` partitions by a stable hash of the entry key
//!   (FNV-1a), so a cold load is `shards` parallel, paginated Queries of exactly the current
//!   set. A Scan with a filter would read (and bill) every generation, the history and the
//!   migration records, and could not be parallelised without reading all of it; a partition
//!   per scope would need the list of scopes before the first read. Sharding also spreads an
//!   import's writes over several partitions.
//! - The entry key is `<scope> <api> <stage> <METHOD> /<resource>`: one item per target
//!   (an Allow and a Deny of the same target are refused as a conflict anyway); a space
//!   cannot occur in any field, so keys never collide. It starts with the scope, so a shard's
//!   items are read grouped by scope.
//! - The previous generation is kept until the next switch, so that a reader that started on it
//!   finishes; a reader re-reads the version record after its Queries and retries when its
//!   generation is neither current nor previous (it may have been deleted under it).

use std::fmt;
use std::future::Future;

use serde::{Deserialize, Serialize};

use super::entry::Mapping;
use super::file::{Document, FileError};

/// Partitions per generation for new tables (recorded in the version record, so it can
/// change without breaking readers of older generations).
pub const DEFAULT_SHARDS: u32 = 8;

/// The most entry changes one admin edit writes in a single transaction (DynamoDB allows 100
/// items per transaction; the version record and the history record take two). Larger
/// changes go through a new generation.
pub const MAX_TRANSACTION_EDITS: usize = 98;

/// The version record: which version and generation is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Bumped by every change.
    pub version: u64,
    /// The generation holding the current entries.
    pub generation: String,
    /// The generation before it, kept until the next switch; `None` at first.
    pub previous: Option<String>,
    /// Partitions of the current generation.
    pub shards: u32,
    /// Number of entries in the current generation.
    pub entries: u64,
    /// When the last change was made (RFC 3339).
    pub updated_at: String,
    /// Who made it.
    pub updated_by: String,
}

/// A generation read whole, with the version record it was read under.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The version record the entries belong to.
    pub head: Head,
    /// The entries.
    pub entries: Vec<Mapping>,
}

/// One change to the current generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Adds an entry; refused if its target (everything but the effect) is already there.
    Add(Mapping),
    /// Removes the entry with this target; refused if it is not there.
    Remove(Mapping),
}

impl Edit {
    /// The entry it adds or removes.
    pub fn mapping(&self) -> &Mapping {
        match self {
            Edit::Add(m) | Edit::Remove(m) => m,
        }
    }
}

impl fmt::Display for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edit::Add(m) => write!(f, "+ {m}"),
            Edit::Remove(m) => write!(f, "- {m}"),
        }
    }
}

/// What a change records in the history, besides its version and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNote {
    /// Who: `--actor`, else `$USER`, else the caller identity.
    pub actor: String,
    /// What kind: `add`, `remove`, `import`, `seed`, `migrate`.
    pub action: String,
    /// One line on what changed.
    pub summary: String,
    /// The changed entries as text (`+ ...`, `- ...`), at most [`MAX_HISTORY_CHANGES`].
    pub changes: Vec<String>,
}

/// How many changed entries a history record lists (a DynamoDB item is at most 400 KB); the
/// summary always has the counts.
pub const MAX_HISTORY_CHANGES: usize = 100;

/// One history record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// The version the change made.
    pub version: u64,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What kind of change.
    pub action: String,
    /// One line on what changed.
    pub summary: String,
    /// Changed entries as text (possibly truncated; see the summary for counts).
    #[serde(default)]
    pub changes: Vec<String>,
}

/// A fault of the mapping store or the snapshot bucket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Someone changed the mappings between this command's read and its write.
    #[error("the mappings changed since you read them (you read version {read}{}): read them again and retry", match .found { Some(v) => format!(", it is now {v}"), None => String::new() })]
    Conflict {
        /// The version this change was based on.
        read: u64,
        /// The version found, when known.
        found: Option<u64>,
    },
    /// The table does not exist. `location` is `REGION/ACCOUNT` when the caller knows it.
    #[error("table {table} not found{}: run `scopegate migrate` to create it", match .location { Some(l) => format!(" in {l}"), None => String::new() })]
    TableNotFound {
        /// The table.
        table: String,
        /// Where it was looked for: `REGION/ACCOUNT`.
        location: Option<String>,
    },
    /// The AWS configuration cannot be used (profile, region).
    #[error(transparent)]
    Setup(#[from] super::aws::AwsSetupError),
    /// The table has no version record.
    #[error("table {table} has no version record: run `scopegate migrate` first")]
    NotInitialised {
        /// The table.
        table: String,
    },
    /// An added entry's target is already mapped.
    #[error("already mapped: {entry} (remove it first to change its effect)")]
    Exists {
        /// The entry.
        entry: String,
    },
    /// A removed entry is not in the mappings.
    #[error("not mapped: {entry}")]
    NotFound {
        /// The entry.
        entry: String,
    },
    /// An item or a snapshot that is not a valid mapping: refused, never served.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Which item or object.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A mapping document that does not validate.
    #[error(transparent)]
    Invalid(#[from] FileError),
    /// The snapshot object does not exist.
    #[error("no snapshot at {location}: run `scopegate publish`")]
    NoSnapshot {
        /// `s3://bucket/key`.
        location: String,
    },
    /// The bucket already holds a newer snapshot; publishing would roll it back.
    #[error("{location} holds version {theirs}, newer than {ours}: not overwritten")]
    SnapshotNewer {
        /// `s3://bucket/key`.
        location: String,
        /// The version being published.
        ours: u64,
        /// The version found.
        theirs: u64,
    },
    /// No snapshot bucket is configured.
    #[error("no snapshot bucket configured (SCOPEGATE_SNAPSHOT_BUCKET or --bucket)")]
    NoBucket,
    /// A call did not answer in time.
    #[error("{operation} timed out after {millis} ms")]
    Timeout {
        /// What was called.
        operation: &'static str,
        /// The limit.
        millis: u64,
    },
    /// The service failed or could not be reached.
    #[error("{operation} failed: {message}")]
    Service {
        /// What was called.
        operation: &'static str,
        /// The service's error code (`ThrottlingException`), when it answered with one.
        code: Option<String>,
        /// One line: the code, the service's message and the request id, or the causes.
        message: String,
    },
}

impl StoreError {
    /// Whether retrying the same command after reading again may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// The source of truth the cache loads from and checks the version of (DynamoDB).
pub trait VersionedSource: Send + Sync + 'static {
    /// The version record: the cheap read done once per TTL.
    fn head(&self) -> impl Future<Output = Result<Head, StoreError>> + Send;
    /// The current generation, whole and consistent.
    fn load(&self) -> impl Future<Output = Result<Loaded, StoreError>> + Send;
}

/// The fallback the cache loads from when the source of truth fails (the S3 snapshot).
pub trait SnapshotSource: Send + Sync + 'static {
    /// The published snapshot document (with its version), validated.
    fn fetch(&self) -> impl Future<Output = Result<Document, StoreError>> + Send;
}

/// No fallback: for deployments without a snapshot bucket.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSnapshot;

impl SnapshotSource for NoSnapshot {
    async fn fetch(&self) -> Result<Document, StoreError> {
        Err(StoreError::NoBucket)
    }
}

/// The item key of an entry within its generation (see the [module docs](self)).
pub fn entry_key(m: &Mapping) -> String {
    format!(
        "{} {} {} {} /{}",
        m.scope, m.api, m.stage, m.method, m.resource
    )
}

/// The shard of an entry key: FNV-1a, stable across versions and platforms.
pub fn shard_of(key: &str, shards: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(shards.max(1))) as u32
}

/// The partition key of a generation's shard.
pub fn shard_pk(generation: &str, shard: u32) -> String {
    format!("G#{generation}#S#{shard:03}")
}

/// A fresh generation id for the change that makes `version`: the version, for reading, and
/// random bits, so that two imports racing for the same version never share a generation.
pub fn new_generation(version: u64) -> String {
    let mut random = [0u8; 6];
    // A failing system random is not survivable anyway; fall back to the time.
    if aws_lc_rs::rand::fill(&mut random).is_err() {
        let millis = crate::clock::unix_millis() as u32;
        random[..4].copy_from_slice(&millis.to_be_bytes());
    }
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{version}-{hex}")
}

/// The difference between two sets of entries, by target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// Entries only in the new set.
    pub added: Vec<Mapping>,
    /// Entries only in the old set.
    pub removed: Vec<Mapping>,
    /// Targets whose effect changes: (old, new).
    pub changed: Vec<(Mapping, Mapping)>,
    /// Entries in both, unchanged.
    pub unchanged: usize,
}

impl Diff {
    /// `old` -> `new`, matched by [`entry_key`].
    pub fn between(old: &[Mapping], new: &[Mapping]) -> Diff {
        use std::collections::HashMap;
        let old_by_key: HashMap<String, &Mapping> = old.iter().map(|m| (entry_key(m), m)).collect();
        let mut seen = std::collections::HashSet::with_capacity(new.len());
        let mut diff = Diff::default();
        for m in new {
            let key = entry_key(m);
            match old_by_key.get(&key) {
                Some(o) if *o == m => diff.unchanged += 1,
                Some(o) => diff.changed.push(((*o).clone(), m.clone())),
                None => diff.added.push(m.clone()),
            }
            seen.insert(key);
        }
        for m in old {
            if !seen.contains(&entry_key(m)) {
                diff.removed.push(m.clone());
            }
        }
        diff
    }

    /// Whether both make the same changes (the count of entries left alone may differ: an
    /// entry someone else added meanwhile does not change a merge's plan).
    pub fn same_changes(&self, other: &Diff) -> bool {
        self.added == other.added && self.removed == other.removed && self.changed == other.changed
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// The edits that apply it to the old set (a changed effect is a remove and an add).
    pub fn edits(&self) -> Vec<Edit> {
        let mut out =
            Vec::with_capacity(self.added.len() + self.removed.len() + 2 * self.changed.len());
        out.extend(self.removed.iter().cloned().map(Edit::Remove));
        for (old, new) in &self.changed {
            out.push(Edit::Remove(old.clone()));
            out.push(Edit::Add(new.clone()));
        }
        out.extend(self.added.iter().cloned().map(Edit::Add));
        out
    }

    /// Number of edits ([`edits`](Diff::edits)) it takes.
    pub fn edit_count(&self) -> usize {
        self.added.len() + self.removed.len() + 2 * self.changed.len()
    }

    /// `+3 -1 ~2 (=10 unchanged)`.
    pub fn summary(&self) -> String {
        format!(
            "+{} -{} ~{} (={} unchanged)",
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.unchanged
        )
    }

    /// Changed entries as text, for the history (at most [`MAX_HISTORY_CHANGES`]).
    pub fn lines(&self) -> Vec<String> {
        self.edits()
            .iter()
            .take(MAX_HISTORY_CHANGES)
            .map(ToString::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(scope: &str, resource: &str, effect: &str) -> Mapping {
        serde_json::from_str(&format!(
            r#"{{"api":"arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5","stage":"dev","method":"GET","resource":"{resource}","scope":"{scope}","effect":"{effect}"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn entry_keys_are_unambiguous_and_shards_stable() {
        let a = m("a#b", "c", "Allow");
        assert_eq!(
            entry_key(&a),
            "a#b arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5 dev GET /c"
        );
        assert_ne!(entry_key(&m("a", "b#c", "Allow")), entry_key(&a));
        assert_eq!(entry_key(&m("s", "/", "Allow")).chars().last(), Some('/'));
        // Pinned: a reader and a writer built from different versions must agree.
        assert_eq!(shard_of("", 8), (0xcbf2_9ce4_8422_2325u64 % 8) as u32);
        assert_eq!(shard_of("abc", 1), 0);
        let spread: std::collections::HashSet<u32> =
            (0..200).map(|i| shard_of(&format!("k{i}"), 8)).collect();
        assert_eq!(spread.len(), 8);
        assert_eq!(shard_pk("7-ab", 3), "G#7-ab#S#003");
    }

    #[test]
    fn generations_are_unique() {
        let a = new_generation(5);
        assert!(a.starts_with("5-") && a.len() == 14, "{a}");
        assert_ne!(a, new_generation(5));
    }

    #[test]
    fn diffs_by_target() {
        let old = vec![
            m("a", "x", "Allow"),
            m("b", "y", "Allow"),
            m("c", "z", "Allow"),
        ];
        let new = vec![
            m("a", "x", "Allow"),
            m("b", "y", "Deny"),
            m("d", "w", "Allow"),
        ];
        let d = Diff::between(&old, &new);
        assert_eq!(d.added, vec![m("d", "w", "Allow")]);
        assert_eq!(d.removed, vec![m("c", "z", "Allow")]);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.edit_count(), 4);
        assert_eq!(d.edits().len(), 4);
        assert_eq!(d.summary(), "+1 -1 ~1 (=1 unchanged)");
        assert!(Diff::between(&old, &old).is_empty());
        let mut more = new.clone();
        more.push(m("e", "v", "Allow"));
        let grown = Diff::between(&[old.clone(), vec![m("e", "v", "Allow")]].concat(), &more);
        assert!(
            grown.same_changes(&d) && grown != d,
            "only the unchanged count differs"
        );
    }
}
