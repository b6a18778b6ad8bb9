//! The mapping store: DynamoDB as the source of truth, S3 as the snapshot the authorizer
//! falls back on, and the seams their consumers are generic over.
//!
//! Only this folder uses the AWS SDK. Rooms, from the table up:
//! - [`aws`]: the SDK configuration both binaries build their clients from;
//! - `layout`: the table's key scheme and item codecs;
//! - `dynamo`, `read`, `write`: the DynamoDB adapter, its table lifecycle, its reads
//!   and its conditional writes;
//! - `s3`: the snapshot;
//! - `records`, `diff`, `error`: the SDK-free types the rest of the crate sees;
//! - `seams`: the traits the warm cache and the admin commands take, so both are tested in
//!   memory and the emulator tests check only the adapters.

pub mod aws;
pub(crate) mod diff;
pub(crate) mod dynamo;
pub(crate) mod error;
pub(crate) mod layout;
#[cfg(test)]
pub(crate) mod memory;
pub(crate) mod read;
pub(crate) mod records;
pub(crate) mod s3;
pub(crate) mod sdk;
pub(crate) mod seams;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod write;

pub use diff::{Diff, KindChange};
pub use dynamo::DynamoStore;
pub use error::{Fault, StoreError};
pub use layout::{
    decode_entry, entry_key, new_generation, shard_of, shard_pk, DEFAULT_SHARDS,
    MAX_SORT_KEY_BYTES, MAX_TRANSACTION_EDITS,
};
pub use records::{
    ChangeNote, Edit, Head, HistoryRecord, Loaded, MigrationRecord, Progress, Published,
    SnapshotDigest, MAX_HISTORY_CHANGES,
};
pub use s3::S3Snapshots;
pub use seams::{MappingWriter, NoSnapshot, SnapshotPublisher, SnapshotSource, VersionedSource};
