//! The permissions mapping: which token scopes grant (or deny) which API Gateway method,
//! and the scope-indexed [`Snapshot`] the authorizer decides from.
//!
//! A [`Mapping`] is one entry, validated when it is parsed so that the warm path never meets a
//! bad one. It is written in the canonical form
//! `{"api":"arn:aws:execute-api:...","stage":"dev","method":"GET","resource":"orders/*","scope":"orders:read","effect":"Allow"}`
//! and also read in the original blog post's permissions-document form
//! `{"arn":"...","resource":"my-resource","stage":"dev","httpVerb":"GET","scope":"email"}`.
//!
//! Sources: [`file`](mod@file) (JSON files, `seed-data/`, the S3 snapshot document),
//! [`store`] (DynamoDB, the source of truth at run time, and the S3 snapshot, the fallback);
//! [`cache`] is the authorizer's warm-container cache over the last two.

pub mod api_kinds;
pub mod file;
pub(crate) mod snapshot;

pub mod cache;
pub mod configured;
pub(crate) mod entry;
pub mod exact;
pub(crate) mod invalid;
pub(crate) mod pattern;
pub(crate) mod requirement;
pub mod routing;
pub(crate) mod source;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod token_policy;

pub use api_kinds::ApiKinds;
pub use entry::{
    placeholder, Mapping, MappingError, Method, ResourcePath, Scope, Stage, MAX_RESOURCE_LEN,
    MAX_SCOPE_LEN, MAX_STAGE_LEN,
};
pub use requirement::{Requirement, MAX_REQUIRED_SCOPES};
pub use snapshot::{Explanation, Snapshot};
pub use source::{Mappings, StaticMappings, Unavailable};
