//! The store's records as the rest of the crate sees them, free of the AWS SDK: the version
//! record ([`Head`]), a loaded generation ([`Loaded`]), edits, history and migration records,
//! and what a publish did.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::mapping::api_kinds::ApiKinds;
use crate::mapping::entry::Mapping;

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
    /// The S3 snapshot last published, as its publisher recorded it. It names the current
    /// set only while its version is [`version`](Self::version): see
    /// [`vouched_snapshot`](Self::vouched_snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotDigest>,
    /// The declared kind of each API of the current set ([`ApiKinds`]). Kept in the version
    /// record, written in the same conditional update as the entries it comes with.
    #[serde(default, skip_serializing_if = "ApiKinds::is_empty")]
    pub apis: ApiKinds,
}

impl Head {
    /// The snapshot digest when it is of the current version: then, and only then, a reader
    /// may load the S3 object instead of the generation, after checking the object's bytes
    /// against it. DynamoDB stays the source of truth; the object is a copy it vouches for,
    /// so whoever can write the bucket cannot choose what a cold start decides from.
    pub fn vouched_snapshot(&self) -> Option<&SnapshotDigest> {
        self.snapshot.as_ref().filter(|s| s.version == self.version)
    }
}

/// What the version record says of the S3 snapshot: its version and the SHA-256 of its
/// bytes. Written by the publisher after the object, only while that version is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDigest {
    /// The version the snapshot holds.
    pub version: u64,
    /// SHA-256 of the object's bytes, lowercase hex.
    pub sha256: String,
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
    /// Changes the effect of a mapped target: one write of the item, refused unless it holds
    /// `old`. (Not a remove and an add: DynamoDB refuses a transaction that touches one item
    /// twice, and both would be the same item.)
    Change {
        /// The entry as stored.
        old: Mapping,
        /// The same target with its new effect.
        new: Mapping,
    },
}

impl Edit {
    /// The entry it adds, removes or changes to.
    pub fn mapping(&self) -> &Mapping {
        match self {
            Edit::Add(m) | Edit::Remove(m) | Edit::Change { new: m, .. } => m,
        }
    }
}

impl fmt::Display for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edit::Add(m) => write!(f, "+ {m}"),
            Edit::Remove(m) => write!(f, "- {m}"),
            Edit::Change { old, new } => write!(f, "~ {new} (was {})", old.effect.as_str()),
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

/// A progress callback of a bulk write: `(entries written, total)`.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Send + Sync);

/// What `S3Snapshots::publish` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Published {
    /// The snapshot was written.
    Written {
        /// The version written.
        version: u64,
        /// SHA-256 of the object written, lowercase hex.
        sha256: String,
    },
    /// The bucket already had this version, with the same entries.
    AlreadyCurrent {
        /// The version.
        version: u64,
        /// SHA-256 of the object there, lowercase hex.
        sha256: String,
    },
}

impl Published {
    /// The digest the version record is to name.
    pub fn digest(&self) -> SnapshotDigest {
        let (Published::Written { version, sha256 }
        | Published::AlreadyCurrent { version, sha256 }) = self;
        SnapshotDigest {
            version: *version,
            sha256: sha256.clone(),
        }
    }
}
