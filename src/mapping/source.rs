//! Where the authorizer gets the snapshot it decides with: the [`Mappings`] trait, the
//! fixed [`StaticMappings`] (a file or the embedded seed data), and [`Unavailable`], the
//! fail-closed answer when no snapshot can be had. The warm-container cache over DynamoDB
//! and S3 ([`super::cache`]) implements the same trait, so the authorizer is generic over
//! where mappings live and is tested with either.

use std::future::Future;
use std::sync::Arc;

use super::file::{load_document, parse_document, FileError};
use super::snapshot::Snapshot;
use super::store::StoreError;
use crate::config::{Config, MappingsSource};

/// The seed data, compiled in: the default mappings when no source is configured.
pub const EMBEDDED_MAPPINGS: &[u8] = include_bytes!("../../seed-data/mappings.json");

/// No snapshot to decide with: DynamoDB and the S3 snapshot both failed (and no cached
/// snapshot was fresh enough). The authorizer fails closed with it.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB: {dynamo}; S3 snapshot: {s3}{}", stale_note(*.stale_for))]
pub struct Unavailable {
    /// Why DynamoDB could not be read.
    #[source]
    pub dynamo: Box<StoreError>,
    /// Why the S3 snapshot could not be read.
    pub s3: Box<StoreError>,
    /// The age of the cached snapshot that was too old to serve, if there was one.
    pub stale_for: Option<u64>,
}

fn stale_note(stale_for: Option<u64>) -> String {
    stale_for
        .map(|s| format!("; the cached snapshot is {s} s old"))
        .unwrap_or_default()
}

/// Where the authorizer gets the current mapping snapshot. The warm-container cache over
/// DynamoDB and S3 implements it; so does [`StaticMappings`].
pub trait Mappings: Send + Sync + 'static {
    /// The snapshot to decide with now.
    fn current(&self) -> impl Future<Output = Result<Arc<Snapshot>, Unavailable>> + Send;

    /// Where the snapshot in use came from ("file", "dynamodb", "s3") and its version, for
    /// the decision metrics; `None` before the first load.
    fn status(&self) -> Option<(&'static str, u64)> {
        None
    }
}

/// A fixed snapshot: mappings from a file or the embedded seed data.
#[derive(Debug, Clone)]
pub struct StaticMappings(pub Arc<Snapshot>);

impl StaticMappings {
    /// Loads the file source the config names (default: the embedded seed data).
    ///
    /// # Errors
    /// [`FileError`] naming the file, entry and field.
    pub fn from_config(config: &Config) -> Result<Self, FileError> {
        let doc = match &config.mappings {
            MappingsSource::Embedded => {
                parse_document(EMBEDDED_MAPPINGS, "embedded seed-data/mappings.json")?
            }
            MappingsSource::File(p) => load_document(p)?,
        };
        Ok(Self(Arc::new(Snapshot::from_document(doc))))
    }
}

impl Mappings for StaticMappings {
    async fn current(&self) -> Result<Arc<Snapshot>, Unavailable> {
        Ok(Arc::clone(&self.0))
    }

    fn status(&self) -> Option<(&'static str, u64)> {
        Some(("file", self.0.version()))
    }
}
