//! The IAM policy document: [`Effect`], [`Statement`] and [`Policy`], read and written as
//! API Gateway expects them.

use std::fmt;

use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::glob::glob_match;

/// The one action a Lambda authorizer's policy governs.
pub(crate) const INVOKE: &str = "execute-api:Invoke";

/// Whether an IAM `Action` element value covers `execute-api:Invoke` (`execute-api:Invoke`,
/// `execute-api:*`, `*`, ...). Actions, unlike resources, are case-insensitive in IAM.
pub(crate) fn action_matches(action: &str) -> bool {
    glob_match(&action.to_ascii_lowercase(), "execute-api:invoke")
}

/// The `Version` every policy scopegate writes carries (the current IAM policy language).
pub const POLICY_VERSION: &str = "2012-10-17";

/// Whether a statement allows or denies; an explicit Deny wins over any Allow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum Effect {
    /// Grants the matching resources (the default for a mapping entry).
    #[default]
    Allow,
    /// Refuses the matching resources whatever else allows them.
    Deny,
}

impl Effect {
    /// `"Allow"` or `"Deny"`, as IAM spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `execute-api:Invoke` statement: its effect on a list of resource ARN patterns.
///
/// The action is not stored: a Lambda authorizer's policy only ever governs
/// `execute-api:Invoke`, which is what it serializes as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Allow or Deny.
    pub effect: Effect,
    /// methodArn patterns (`*` and `?` wildcards, see [`glob_match`]).
    pub resources: Vec<String>,
}

/// An IAM policy document as API Gateway expects it back from an authorizer.
///
/// Serializes exactly as
/// `{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":["arn:..."]}]}`.
///
/// Deserializing (for tests and tools that read a response back) accepts `Action` and
/// `Resource` as a string or an array and ignores `Sid`. A statement none of whose actions
/// covers `execute-api:Invoke` (say `s3:GetObject`) has no bearing on an API Gateway request
/// and is dropped; `NotAction`, `NotResource`, `Condition` and other fields are refused,
/// since the evaluator could not honour them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The statements, in order (order does not change the decision).
    pub statements: Vec<Statement>,
}

impl Policy {
    /// The explicit deny-all policy a valid token that grants nothing receives (API Gateway
    /// answers 403 rather than 401): one Deny statement on resource `*`.
    pub fn deny_all() -> Policy {
        Policy {
            statements: vec![Statement {
                effect: Effect::Deny,
                resources: vec!["*".to_owned()],
            }],
        }
    }

    /// The number of Allow resource patterns: what the token was granted, for logs and
    /// metrics. A pattern's trailing-slash twin (`.../orders/` beside `.../orders`, which
    /// API Gateway serves from the same resource) is not counted again.
    pub fn grant_count(&self) -> usize {
        self.statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .map(|s| {
                let all: std::collections::HashSet<&str> =
                    s.resources.iter().map(String::as_str).collect();
                s.resources
                    .iter()
                    .filter(|r| !r.strip_suffix('/').is_some_and(|base| all.contains(base)))
                    .count()
            })
            .sum()
    }
}

impl Serialize for Statement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Statement", 3)?;
        s.serialize_field("Action", INVOKE)?;
        s.serialize_field("Effect", &self.effect)?;
        s.serialize_field("Resource", &self.resources)?;
        s.end()
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Policy", 2)?;
        s.serialize_field("Version", POLICY_VERSION)?;
        s.serialize_field("Statement", &self.statements)?;
        s.end()
    }
}

/// A JSON value that IAM allows to be a single item or an array.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(rename = "Sid", default)]
    _sid: Option<String>,
    #[serde(rename = "Action")]
    action: OneOrMany<String>,
    #[serde(rename = "Effect")]
    effect: Effect,
    #[serde(rename = "Resource")]
    resource: OneOrMany<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "Statement")]
    statement: OneOrMany<RawStatement>,
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Policy, D::Error> {
        let raw = RawPolicy::deserialize(deserializer)?;
        if raw.version != POLICY_VERSION && raw.version != "2008-10-17" {
            return Err(D::Error::custom(format_args!(
                "unsupported policy Version {:?} (expected {POLICY_VERSION:?})",
                raw.version
            )));
        }
        let statements = raw
            .statement
            .into_vec()
            .into_iter()
            .filter(|s| match &s.action {
                OneOrMany::One(a) => action_matches(a),
                OneOrMany::Many(v) => v.iter().any(|a| action_matches(a)),
            })
            .map(|s| Statement {
                effect: s.effect,
                resources: s.resource.into_vec(),
            })
            .collect();
        Ok(Policy { statements })
    }
}
