//! The traits the store's consumers are generic over, so that each is tested with an
//! in-memory fake and the emulator tests check only the adapters: the warm cache reads
//! through [`VersionedSource`] (DynamoDB) and [`SnapshotSource`] (S3); the admin commands
//! read and write through [`MappingWriter`] and publish through [`SnapshotPublisher`].

use std::future::Future;

use super::diff::Diff;
use super::error::StoreError;
use super::records::{
    ChangeNote, Edit, Head, HistoryRecord, Loaded, Progress, Published, SnapshotDigest,
};
use crate::mapping::api_kinds::ApiKinds;
use crate::mapping::entry::Mapping;
use crate::mapping::file::Document;

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

    /// The snapshot the version record vouches for: validated, and refused
    /// ([`StoreError::Corrupt`]) unless its bytes have `digest`'s SHA-256 and it holds
    /// `digest`'s version.
    fn fetch_verified(
        &self,
        digest: &SnapshotDigest,
    ) -> impl Future<Output = Result<Document, StoreError>> + Send;
}

/// No fallback: for deployments without a snapshot bucket.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSnapshot;

impl SnapshotSource for NoSnapshot {
    async fn fetch(&self) -> Result<Document, StoreError> {
        Err(StoreError::NoBucket)
    }

    async fn fetch_verified(&self, _: &SnapshotDigest) -> Result<Document, StoreError> {
        Err(StoreError::NoBucket)
    }
}

/// What the admin commands need of the source of truth: consistent reads of the current set,
/// and writes that are conditional on the version record they read, so that a concurrent
/// change makes them fail with [`StoreError::Conflict`] instead of losing it.
pub trait MappingWriter: Send + Sync {
    /// The version record, strongly consistent.
    fn read_head(&self) -> impl Future<Output = Result<Head, StoreError>> + Send;

    /// The current set, consistent with the version record returned, calling
    /// `progress(read, total)` as entries arrive.
    fn load_current_with(
        &self,
        progress: Progress<'_>,
    ) -> impl Future<Output = Result<Loaded, StoreError>> + Send;

    /// The entry with `target`'s target (its effect ignored), if mapped.
    fn get(
        &self,
        target: &Mapping,
    ) -> impl Future<Output = Result<Option<Mapping>, StoreError>> + Send;

    /// The newest `limit` history records, newest first.
    fn history(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<HistoryRecord>, StoreError>> + Send;

    /// Applies 1 to `MAX_TRANSACTION_EDITS` edits (or none, when only the API kinds change),
    /// leaves `apis` declared, bumps the version and records the history, atomically and
    /// only if `read` is still the version record.
    fn apply(
        &self,
        read: &Head,
        edits: &[Edit],
        apis: &ApiKinds,
        note: &ChangeNote,
    ) -> impl Future<Output = Result<Head, StoreError>> + Send;

    /// Writes `entries` as a new generation for the version after `read`, invisible to
    /// readers until [`switch_generation`](Self::switch_generation). Returns its id.
    fn write_generation(
        &self,
        read: &Head,
        entries: &[Mapping],
        actor: &str,
        progress: Progress<'_>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Brings an unswitched generation from the set it holds to another, by `diff`.
    fn patch_generation(
        &self,
        generation: &str,
        shards: u32,
        diff: &Diff,
        actor: &str,
        progress: Progress<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes `generation` current, with `apis` declared and the history record, only if
    /// `read` is still the version record.
    fn switch_generation(
        &self,
        read: &Head,
        generation: &str,
        entries: usize,
        apis: &ApiKinds,
        note: &ChangeNote,
    ) -> impl Future<Output = Result<Head, StoreError>> + Send;

    /// Names the S3 snapshot `digest` describes in the version record, only if its version
    /// is still current; `Ok(false)` when it is not (a newer change was made meanwhile).
    fn record_snapshot(
        &self,
        digest: &SnapshotDigest,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes a generation nobody reads; failures are logged, not returned.
    fn delete_generation_best_effort(
        &self,
        generation: &str,
        shards: u32,
    ) -> impl Future<Output = ()> + Send;
}

/// Where the admin commands publish the current set for the authorizer's fallback.
pub trait SnapshotPublisher: Send + Sync {
    /// Writes `entries`, with the API kinds `apis` declares, as the snapshot of `version`,
    /// never over a newer one.
    fn publish(
        &self,
        version: u64,
        entries: &[Mapping],
        apis: &ApiKinds,
    ) -> impl Future<Output = Result<Published, StoreError>> + Send;
}
