//! The S3 snapshot: one JSON document
//! `{"version": N, "generated_at": "...", "apis": {...}, "mappings": [...]}` (the [`file`](crate::mapping::file)
//! snapshot form), written by `scopegate publish` and after admin changes, read by the
//! authorizer only when DynamoDB fails.
//!
//! Publishing never rolls the snapshot back: it reads the object's version and ETag and puts
//! conditionally on that ETag (or on there being no object), retrying when another publisher
//! got in between. Reading validates the whole document; a corrupt snapshot is refused.
//!
//! A publish returns the SHA-256 of the object, which the admin then records in the version
//! record ([`crate::mapping::store::SnapshotDigest`]). A cold start that finds the digest of
//! the current version there reads this one object instead of the generation's pages, and
//! only if its bytes have that digest ([`S3Snapshots::read_verified`]).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_s3::Client;
use serde::Serialize;

use super::aws::AwsConfig;
use super::error::{Fault, StoreError};
use super::records::{Published, SnapshotDigest};
use super::sdk::service;
use super::seams::{SnapshotPublisher, SnapshotSource};
use crate::mapping::api_kinds::ApiKinds;
use crate::mapping::entry::Mapping;
use crate::mapping::file::{parse_document, Document};

/// The largest snapshot object read: 64 MiB, about 300 000 entries written compact, far
/// above what a policy size budget lets a token use.
pub const MAX_SNAPSHOT_BYTES: u64 = 64 << 20;

/// The snapshot document as written.
#[derive(Serialize)]
struct SnapshotDocument<'a> {
    version: u64,
    generated_at: String,
    #[serde(skip_serializing_if = "ApiKinds::is_empty")]
    apis: &'a ApiKinds,
    mappings: &'a [Mapping],
}

/// The snapshot object in a bucket.
#[derive(Debug, Clone)]
pub struct S3Snapshots {
    client: Client,
    bucket: String,
    key: String,
}

impl S3Snapshots {
    /// The snapshot at `s3://bucket/key`.
    pub fn new(aws: &AwsConfig, bucket: &str, key: &str) -> S3Snapshots {
        let conf = aws_sdk_s3::config::Builder::from(&aws.sdk)
            .force_path_style(aws.path_style)
            .build();
        S3Snapshots {
            client: Client::from_conf(conf),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }
    }

    /// `s3://bucket/key`.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// The current object's bytes and ETag, `None` when there is none. An object over
    /// [`MAX_SNAPSHOT_BYTES`] is refused before its body is read: whoever can write the
    /// bucket must not be able to exhaust a cold start's memory.
    async fn get(&self) -> Result<Option<(Vec<u8>, Option<String>)>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(service("GetObject")(e)),
        };
        if out
            .content_length
            .is_some_and(|n| u64::try_from(n).map_or(true, |n| n > MAX_SNAPSHOT_BYTES))
        {
            return Err(StoreError::Corrupt {
                what: format!("snapshot {}", self.location()),
                reason: format!(
                    "it is {} bytes, over the {MAX_SNAPSHOT_BYTES} a snapshot may have",
                    out.content_length.unwrap_or_default()
                ),
            });
        }
        let etag = out.e_tag.clone();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::service("GetObject", Fault::Unreachable(Box::new(e))))?;
        Ok(Some((bytes.into_bytes().to_vec(), etag)))
    }

    /// Reads and validates the snapshot.
    ///
    /// # Errors
    /// [`StoreError::NoSnapshot`]; [`StoreError::Corrupt`] when it does not parse, has a bad
    /// entry or has no version; [`StoreError::Service`].
    pub async fn read(&self) -> Result<Document, StoreError> {
        let (bytes, _) = self.get().await?.ok_or_else(|| StoreError::NoSnapshot {
            location: self.location(),
        })?;
        self.parse(&bytes)
    }

    /// Reads the snapshot `digest` names: refused as [`StoreError::Corrupt`] unless its bytes
    /// have that SHA-256 and it holds that version.
    ///
    /// # Errors
    /// [`StoreError::NoSnapshot`]; [`StoreError::Corrupt`]; [`StoreError::Service`].
    pub async fn read_verified(&self, digest: &SnapshotDigest) -> Result<Document, StoreError> {
        let (bytes, _) = self.get().await?.ok_or_else(|| StoreError::NoSnapshot {
            location: self.location(),
        })?;
        if sha256_hex(&bytes) != digest.sha256 {
            return Err(StoreError::Corrupt {
                what: format!("snapshot {}", self.location()),
                reason: format!(
                    "its SHA-256 is not the one the version record names for version {}",
                    digest.version
                ),
            });
        }
        let doc = self.parse(&bytes)?;
        if doc.version != Some(digest.version) {
            return Err(StoreError::Corrupt {
                what: format!("snapshot {}", self.location()),
                reason: format!(
                    "it holds version {:?}, not version {}",
                    doc.version, digest.version
                ),
            });
        }
        Ok(doc)
    }

    fn parse(&self, bytes: &[u8]) -> Result<Document, StoreError> {
        let location = self.location();
        let doc = parse_document(bytes, &location).map_err(|e| StoreError::Corrupt {
            what: format!("snapshot {location}"),
            reason: e.to_string(),
        })?;
        if doc.version.is_none() {
            return Err(StoreError::Corrupt {
                what: format!("snapshot {location}"),
                reason: "it has no version".into(),
            });
        }
        Ok(doc)
    }

    /// Writes `mappings` as snapshot `version`, unless the bucket holds a newer version, or
    /// this version with the same entries. Conditional on the ETag read, retried when another
    /// publisher wins a race. An object of this version with other entries (a table made
    /// again from scratch counts its versions again) is replaced.
    ///
    /// # Errors
    /// [`StoreError::SnapshotNewer`]; [`StoreError::Service`].
    pub async fn publish(
        &self,
        version: u64,
        mappings: &[Mapping],
        apis: &ApiKinds,
    ) -> Result<Published, StoreError> {
        // Compact: a cold start downloads and parses it.
        let body = serde_json::to_vec(&SnapshotDocument {
            version,
            generated_at: crate::clock::rfc3339_now(),
            apis,
            mappings,
        })
        .expect("a snapshot is serializable");
        for _ in 0..5 {
            let existing = self.get().await?;
            let etag = match &existing {
                None => None,
                Some((bytes, etag)) => {
                    match self.parse(bytes) {
                        Ok(doc) => {
                            let theirs = doc.version.unwrap_or(0);
                            if theirs > version {
                                return Err(StoreError::SnapshotNewer {
                                    location: self.location(),
                                    ours: version,
                                    theirs,
                                });
                            }
                            if theirs == version
                                && same_entries(&doc.mappings, mappings)
                                && doc.apis == *apis
                            {
                                return Ok(Published::AlreadyCurrent {
                                    version,
                                    sha256: sha256_hex(bytes),
                                });
                            }
                            if theirs == version {
                                tracing::warn!(
                                    version,
                                    "the snapshot of this version holds other entries; replacing it"
                                );
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "replacing a corrupt snapshot"),
                    }
                    etag.clone()
                }
            };
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type("application/json")
                .body(ByteStream::from(body.clone()));
            let put = match &etag {
                Some(etag) => put.if_match(etag),
                None => put.if_none_match("*"),
            };
            match put.send().await {
                Ok(_) => {
                    return Ok(Published::Written {
                        version,
                        sha256: sha256_hex(&body),
                    })
                }
                Err(e)
                    if matches!(
                        e.raw_response().map(|r| r.status().as_u16()),
                        Some(409 | 412)
                    ) =>
                {
                    tracing::debug!("snapshot changed while publishing; reading it again");
                }
                Err(e) => return Err(service("PutObject")(e)),
            }
        }
        Err(StoreError::service(
            "PutObject",
            Fault::GaveUp("the snapshot kept changing while publishing (5 attempts)"),
        ))
    }

    /// Overwrites the object with raw bytes (fault tests: a corrupt snapshot). Only with
    /// the `test-util` feature.
    #[cfg(any(test, feature = "test-util"))]
    pub async fn put_raw(&self, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(service("PutObject"))?;
        Ok(())
    }

    /// Creates the bucket unless it exists (development and tests; production buckets come
    /// from the template).
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn create_bucket(&self, region: Option<&str>) -> Result<(), StoreError> {
        let mut req = self.client.create_bucket().bucket(&self.bucket);
        if let Some(r) = region.filter(|r| *r != "us-east-1") {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(r))
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|e| {
                    e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(service("CreateBucket")(e)),
        }
    }

    /// Deletes every object and the bucket (test teardown). Only with the `test-util`
    /// feature.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    #[cfg(any(test, feature = "test-util"))]
    pub async fn delete_bucket(&self) -> Result<(), StoreError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(service("ListObjectsV2"))?;
        let ids: Vec<ObjectIdentifier> = listed
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        if !ids.is_empty() {
            self.client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(
                    Delete::builder()
                        .set_objects(Some(ids))
                        .build()
                        .expect("objects set"),
                )
                .send()
                .await
                .map_err(service("DeleteObjects"))?;
        }
        self.client
            .delete_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(service("DeleteBucket"))?;
        Ok(())
    }
}

impl SnapshotSource for S3Snapshots {
    async fn fetch(&self) -> Result<Document, StoreError> {
        self.read().await
    }

    async fn fetch_verified(&self, digest: &SnapshotDigest) -> Result<Document, StoreError> {
        self.read_verified(digest).await
    }
}

/// SHA-256 of `bytes`, lowercase hex: the digest a snapshot is named by.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// Whether two lists hold the same entries, in any order.
fn same_entries(a: &[Mapping], b: &[Mapping]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a: Vec<&Mapping> = a.iter().collect();
    let mut b: Vec<&Mapping> = b.iter().collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

impl SnapshotPublisher for S3Snapshots {
    async fn publish(
        &self,
        version: u64,
        entries: &[Mapping],
        apis: &ApiKinds,
    ) -> Result<Published, StoreError> {
        S3Snapshots::publish(self, version, entries, apis).await
    }
}
