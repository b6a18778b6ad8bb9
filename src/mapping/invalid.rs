//! [`MappingError`]: why a mapping entry, or one of its fields, cannot be used. Its own file
//! because every part of an entry (the requirement's scopes as much as the path) reports
//! through it.

use crate::policy::ArnError;

/// A mapping entry, or one of its fields, that cannot be used; every variant names the field
/// and carries the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// A required field is absent.
    #[error("field {field:?} is missing")]
    Missing {
        /// The field, in the canonical form's spelling (or both spellings).
        field: &'static str,
    },
    /// The same field is given in both forms (`api` and `arn`, `method` and `httpVerb`).
    #[error("fields {first:?} and {second:?} say the same thing; give one")]
    Both {
        /// The canonical spelling.
        first: &'static str,
        /// The blog post's spelling.
        second: &'static str,
    },
    /// The API ARN is not an execute-api API ARN.
    #[error("field \"api\": {0}")]
    Api(#[source] ArnError),
    /// The stage is not an API Gateway stage name.
    #[error("field \"stage\": invalid stage {value:?}: expected 1 to 128 of A-Z a-z 0-9 _ -, \"$default\" or \"*\"")]
    Stage {
        /// The value given.
        value: String,
    },
    /// The method is not an HTTP method API Gateway routes.
    #[error("field \"method\": invalid method {value:?}: expected GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY or *")]
    Method {
        /// The value given.
        value: String,
    },
    /// The resource path cannot be matched against request paths.
    #[error("field \"resource\": invalid resource {value:?}: {reason}")]
    Resource {
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The scope cannot occur in a token.
    #[error("field \"scope\": invalid scope {value:?}: {reason}")]
    Scope {
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A claim the entry requires cannot be named or matched so.
    #[error("field \"claims\": invalid claim {value:?}: {reason}")]
    Claims {
        /// The claim's name (or the value given).
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The effect is neither Allow nor Deny.
    #[error("field \"effect\": invalid effect {value:?}: expected \"Allow\" or \"Deny\"")]
    Effect {
        /// The value given.
        value: String,
    },
    /// `"nobody": true` where it means nothing: only an Allow of a route can hold that route
    /// for nobody.
    #[error("field \"nobody\": {reason}")]
    Nobody {
        /// Why it is refused.
        reason: &'static str,
    },
}

impl MappingError {
    /// The field at fault (the canonical spelling).
    pub fn field(&self) -> Option<&'static str> {
        Some(match self {
            MappingError::Missing { field } => field,
            MappingError::Both { first, .. } => first,
            MappingError::Api(_) => "api",
            MappingError::Stage { .. } => "stage",
            MappingError::Method { .. } => "method",
            MappingError::Resource { .. } => "resource",
            MappingError::Scope { .. } => "scope",
            MappingError::Claims { .. } => "claims",
            MappingError::Effect { .. } => "effect",
            MappingError::Nobody { .. } => "nobody",
        })
    }

    /// The value at fault, as given.
    pub fn value(&self) -> Option<&str> {
        match self {
            MappingError::Missing { .. }
            | MappingError::Both { .. }
            | MappingError::Nobody { .. } => None,
            MappingError::Api(e) => Some(&e.input),
            MappingError::Stage { value }
            | MappingError::Method { value }
            | MappingError::Resource { value, .. }
            | MappingError::Scope { value, .. }
            | MappingError::Claims { value, .. }
            | MappingError::Effect { value } => Some(value),
        }
    }

    /// What is wrong, without the field and the value.
    pub fn reason(&self) -> String {
        match self {
            MappingError::Missing { .. } => "missing".to_owned(),
            MappingError::Both { second, .. } => {
                format!("given together with {second:?}, which says the same thing; give one")
            }
            MappingError::Api(e) => e.problem.to_string(),
            MappingError::Stage { .. } => {
                "expected 1 to 128 of A-Z a-z 0-9 _ -, \"$default\" or \"*\"".to_owned()
            }
            MappingError::Method { .. } => {
                "expected GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY or *".to_owned()
            }
            MappingError::Resource { reason, .. }
            | MappingError::Scope { reason, .. }
            | MappingError::Claims { reason, .. }
            | MappingError::Nobody { reason } => (*reason).to_owned(),
            MappingError::Effect { .. } => "expected \"Allow\" or \"Deny\"".to_owned(),
        }
    }
}
