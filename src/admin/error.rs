//! What an admin command can fail with, and what kind of failure that is: the CLI's exit
//! code.

use crate::mapping::file::FileError;
use crate::mapping::store::StoreError;
use crate::policy::ArnError;

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
    /// An OpenAPI document that cannot be read, or an operation that cannot be mapped; the
    /// message names the file and the place.
    #[error("{0}")]
    OpenApi(String),
    /// The change lost every race it ran, within the `RetryPolicy`'s bounds.
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
    /// An entry requires a claim the authorizer is not configured to read
    /// (`SCOPEGATE_GRANT_CLAIMS`): it would never apply.
    #[error("{entry}: claim {claim:?} is not one of SCOPEGATE_GRANT_CLAIMS ({declared}): the authorizer reads only the claims it declares, so this entry would never apply; declare the claim (for the authorizer and for this command), or remove it from the entry")]
    UndeclaredClaim {
        /// The entry.
        entry: String,
        /// The claim it names.
        claim: String,
        /// The claims declared, comma-separated (`none` when none).
        declared: String,
    },
    /// An entry whose item key would be over DynamoDB's limit on a sort key: the write would
    /// fail with an AWS validation error that names no entry.
    #[error("{entry}: its item key is {bytes} bytes, over DynamoDB's {max} for a sort key (the key holds the scopes, claims, API, stage, method and resource): split the entry or shorten what it names")]
    EntryKeyTooLong {
        /// The entry.
        entry: String,
        /// The key's length in bytes.
        bytes: usize,
        /// DynamoDB's limit.
        max: usize,
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
            AdminError::File(_)
            | AdminError::Arn(_)
            | AdminError::OpenApi(_)
            | AdminError::UndeclaredClaim { .. }
            | AdminError::EntryKeyTooLong { .. } => ErrorKind::Invalid,
            AdminError::Usage(_) => ErrorKind::Usage,
            AdminError::Busy { .. } | AdminError::PlanChanged { .. } => ErrorKind::Conflict,
            AdminError::Cancelled => ErrorKind::Cancelled,
        }
    }
}
