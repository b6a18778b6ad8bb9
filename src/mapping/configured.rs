//! The mappings the configuration asks for, built from it: the composition of the sources
//! (a file or the embedded seed data, DynamoDB, the S3 snapshot) into one [`Mappings`], so
//! that both binaries and local mode pick their source the same way.

use std::sync::Arc;

use super::cache::{CacheOptions, MappingCache};
use super::snapshot::Snapshot;
use super::source::{Mappings, StaticMappings, Unavailable};
use super::store::aws::{AwsConfig, AwsOptions};
use super::store::DynamoStore;
use super::store::S3Snapshots;
use super::store::{NoSnapshot, StoreError};
use crate::clock::Clock;
use crate::config::Config;

/// The mappings the config asks for: the DynamoDB-backed cache when
/// SCOPEGATE_MAPPINGS_TABLE is set (with the S3 fallback when SCOPEGATE_SNAPSHOT_BUCKET is),
/// else the static file or embedded seed data.
pub enum ConfiguredMappings {
    /// A mappings file or the embedded seed data.
    Static(StaticMappings),
    /// DynamoDB without a snapshot bucket.
    Dynamo(MappingCache<DynamoStore, NoSnapshot>),
    /// DynamoDB with the S3 fallback.
    DynamoS3(MappingCache<DynamoStore, S3Snapshots>),
}

impl std::fmt::Debug for ConfiguredMappings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfiguredMappings::Static(s) => f.debug_tuple("Static").field(s).finish(),
            ConfiguredMappings::Dynamo(c) => f.debug_tuple("Dynamo").field(c).finish(),
            ConfiguredMappings::DynamoS3(c) => f.debug_tuple("DynamoS3").field(c).finish(),
        }
    }
}

impl ConfiguredMappings {
    /// Builds the source the config names; loads nothing yet (see [`prime`](Self::prime)).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a mappings file that cannot be loaded;
    /// [`StoreError::Setup`] for an AWS configuration that cannot be used.
    pub async fn from_config(
        config: &Config,
        aws: &AwsOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<ConfiguredMappings, StoreError> {
        let Some(table) = &config.mappings_table else {
            return Ok(ConfiguredMappings::Static(StaticMappings::from_config(
                config,
            )?));
        };
        let aws = AwsConfig::load(aws).await?;
        let store = DynamoStore::new(&aws, table);
        let options = CacheOptions::from_config(config);
        Ok(match &config.snapshot_bucket {
            Some(bucket) => ConfiguredMappings::DynamoS3(MappingCache::new(
                store,
                S3Snapshots::new(&aws, bucket, &config.snapshot_key),
                clock,
                options,
            )),
            None => {
                ConfiguredMappings::Dynamo(MappingCache::new(store, NoSnapshot, clock, options))
            }
        })
    }

    /// Where the snapshot being served came from (`file`, `dynamodb` or `s3`) and its
    /// version; `None` while cold or failed closed. For the decision log and metrics.
    pub fn status(&self) -> Option<(&'static str, u64)> {
        match self {
            ConfiguredMappings::Static(s) => Some(("file", s.0.version())),
            ConfiguredMappings::Dynamo(c) => c.status().map(|(s, v)| (s.as_str(), v)),
            ConfiguredMappings::DynamoS3(c) => c.status().map(|(s, v)| (s.as_str(), v)),
        }
    }

    /// Loads the mappings now when they come from DynamoDB (failures are logged and retried
    /// on the first invocation).
    pub async fn prime(&self) {
        match self {
            ConfiguredMappings::Static(_) => {}
            ConfiguredMappings::Dynamo(c) => c.prime().await,
            ConfiguredMappings::DynamoS3(c) => c.prime().await,
        }
    }
}

impl Mappings for ConfiguredMappings {
    async fn current(&self) -> Result<Arc<Snapshot>, Unavailable> {
        match self {
            ConfiguredMappings::Static(s) => s.current().await,
            ConfiguredMappings::Dynamo(c) => c.current().await,
            ConfiguredMappings::DynamoS3(c) => c.current().await,
        }
    }

    fn status(&self) -> Option<(&'static str, u64)> {
        ConfiguredMappings::status(self)
    }
}
