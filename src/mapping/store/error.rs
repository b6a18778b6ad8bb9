//! What can go wrong in the store, typed down to the service's answer: a caller tells a
//! conflict from a missing table from a throttle by matching, never by reading text.

use super::aws::AwsSetupError;
use crate::mapping::file::FileError;

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
    Setup(#[from] AwsSetupError),
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
    #[error("{operation} failed: {fault}")]
    Service {
        /// What was called.
        operation: &'static str,
        /// What went wrong, typed.
        #[source]
        fault: Fault,
    },
}

impl StoreError {
    /// A failed call to `operation`.
    pub fn service(operation: &'static str, fault: Fault) -> StoreError {
        StoreError::Service { operation, fault }
    }

    /// The service's error code (`ThrottlingException`), when a call failed with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            StoreError::Service {
                fault: Fault::Answered { code, .. },
                ..
            } => Some(code),
            _ => None,
        }
    }

    /// Whether retrying the same command after reading again may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// What went wrong in one call to AWS (or in the store's own retries around it).
///
/// The service's error code, message and request id are kept apart, so an operator's line
/// reads `ThrottlingException: Rate exceeded (request id ...)` and a caller can match on the
/// code; a failure to reach the service keeps the SDK's error as its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// The service answered with an error.
    #[error("{code}{}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(), request_id.as_deref().map(|id| format!(" (request id {id})")).unwrap_or_default())]
    Answered {
        /// The error code, e.g. `ThrottlingException`.
        code: String,
        /// The service's message.
        message: Option<String>,
        /// The request id, for AWS support.
        request_id: Option<String>,
    },
    /// No answer within the configured timeouts.
    #[error("no answer in time")]
    TimedOut,
    /// The request did not reach the service, or its answer could not be read. The text is
    /// the causes, each once; the source keeps them typed.
    #[error("{}", crate::error_text::one_line(.0.as_ref()))]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A transaction the service cancelled for reasons other than our conditions, with
    /// each item's reason code.
    #[error("transaction cancelled: {0:?}")]
    Cancelled(Vec<Option<String>>),
    /// The store's own retries ran out (unprocessed items, a snapshot that kept changing).
    #[error("{0}")]
    GaveUp(&'static str),
    /// One of the store's parallel tasks failed.
    #[error("a parallel task failed")]
    Task(#[source] tokio::task::JoinError),
}
