//! IAM policies for API Gateway: execute-api ARNs ([`arn`]), the builder that turns a
//! token's grants into one compact policy ([`build`](mod@build)), and the evaluator that
//! answers what API Gateway would answer for a request under a policy ([`eval`]), which the
//! tests use as their oracle.
//!
//! ```
//! use scopegate::policy::{build, evaluate, Effect};
//!
//! let api = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
//! let policy = build([
//!     (Effect::Allow, format!("{api}/*/GET/orders/*")),
//!     (Effect::Deny, format!("{api}/prod/GET/orders/secret")),
//! ]);
//! assert_eq!(evaluate(&policy, &format!("{api}/dev/GET/orders/7")), Effect::Allow);
//! assert_eq!(evaluate(&policy, &format!("{api}/prod/GET/orders/secret")), Effect::Deny);
//! assert_eq!(evaluate(&policy, &format!("{api}/dev/DELETE/orders/7")), Effect::Deny);
//! ```

use std::fmt;

use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

pub mod arn;
pub mod build;
pub mod eval;

pub use arn::{method_arn, ApiArn, ApiKind, ArnError, ArnProblem, MethodArn};
pub use build::{build, covers};
pub use eval::{evaluate, glob_match};

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
    /// metrics.
    pub fn grant_count(&self) -> usize {
        self.statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .map(|s| s.resources.len())
            .sum()
    }
}

impl Serialize for Statement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Statement", 3)?;
        s.serialize_field("Action", eval::INVOKE)?;
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
                OneOrMany::One(a) => eval::action_matches(a),
                OneOrMany::Many(v) => v.iter().any(|a| eval::action_matches(a)),
            })
            .map(|s| Statement {
                effect: s.effect,
                resources: s.resource.into_vec(),
            })
            .collect();
        Ok(Policy { statements })
    }
}

/// A policy built once and shared: the [`Policy`], its serialized `policyDocument` (spliced
/// into each response without serializing again), and the numbers the authorizer logs.
#[derive(Debug)]
pub struct CompiledPolicy {
    /// The policy, for evaluation and explanation.
    pub policy: Policy,
    /// The policy serialized as JSON, exactly what goes in `policyDocument`.
    pub json: Box<RawValue>,
    /// The number of Allow resource patterns (0 for the deny-all policy).
    pub grants: usize,
    /// Whether anything at all is allowed; false means the caller gets a 403 for every
    /// method.
    pub allows_anything: bool,
}

impl CompiledPolicy {
    /// Serializes `policy` once.
    pub fn new(policy: Policy) -> CompiledPolicy {
        // Serializing fixed keys and strings into a String cannot fail.
        let json = serde_json::value::to_raw_value(&policy)
            .expect("a Policy is strings and fixed keys, always serializable");
        let grants = policy.grant_count();
        CompiledPolicy {
            policy,
            json,
            grants,
            allows_anything: grants > 0,
        }
    }

    /// The compiled deny-all policy.
    pub fn deny_all() -> CompiledPolicy {
        CompiledPolicy::new(Policy::deny_all())
    }

    /// What API Gateway would answer for `method_arn` under this policy.
    pub fn evaluate(&self, method_arn: &str) -> Effect {
        evaluate(&self.policy, method_arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    #[test]
    fn serializes_exactly_as_api_gateway_expects() {
        let p = Policy {
            statements: vec![Statement {
                effect: Effect::Allow,
                resources: vec![format!("{API}/dev/GET/orders")],
            }],
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Action":"execute-api:Invoke","Effect":"Allow","Resource":["{API}/dev/GET/orders"]}}]}}"#
            )
        );
        assert_eq!(
            serde_json::to_string(&Policy::deny_all()).unwrap(),
            r#"{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Deny","Resource":["*"]}]}"#
        );
    }

    #[test]
    fn round_trips() {
        let p = build([
            (Effect::Allow, format!("{API}/dev/GET/orders")),
            (Effect::Deny, format!("{API}/dev/GET/orders/secret")),
        ]);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p);
    }

    #[test]
    fn parses_the_forms_iam_allows() {
        let json = format!(
            r#"{{"Version":"2012-10-17","Statement":[
                {{"Sid":"one","Action":"execute-api:*","Effect":"Allow","Resource":"{API}/dev/*"}},
                {{"Action":["s3:GetObject"],"Effect":"Deny","Resource":"*"}},
                {{"Action":["s3:GetObject","*"],"Effect":"Deny","Resource":["{API}/dev/DELETE/*"]}}
            ]}}"#
        );
        let p: Policy = serde_json::from_str(&json).unwrap();
        assert_eq!(p.statements.len(), 2, "the s3-only statement is irrelevant");
        assert_eq!(evaluate(&p, &format!("{API}/dev/GET/x")), Effect::Allow);
        assert_eq!(evaluate(&p, &format!("{API}/dev/DELETE/x")), Effect::Deny);

        let single = r#"{"Version":"2012-10-17","Statement":{"Action":"*","Effect":"Allow","Resource":"*"}}"#;
        let p: Policy = serde_json::from_str(single).unwrap();
        assert_eq!(p.grant_count(), 1);
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        for bad in [
            r#"{"Version":"2012-10-17","Statement":[{"Action":"*","Effect":"Allow","NotResource":"*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Action":"*","Effect":"Allow","Resource":"*","Condition":{}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Action":"*","Effect":"allow","Resource":"*"}]}"#,
            r#"{"Version":"2020-01-01","Statement":[]}"#,
        ] {
            assert!(serde_json::from_str::<Policy>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn compiled_policy_counts_and_serializes_once() {
        let c = CompiledPolicy::new(build([(Effect::Allow, format!("{API}/dev/GET/a"))]));
        assert_eq!(c.grants, 1);
        assert!(c.allows_anything);
        assert_eq!(c.json.get(), serde_json::to_string(&c.policy).unwrap());
        let d = CompiledPolicy::deny_all();
        assert_eq!(d.grants, 0);
        assert!(!d.allows_anything);
        assert_eq!(d.evaluate(&format!("{API}/dev/GET/a")), Effect::Deny);
    }

    #[test]
    fn effect_text() {
        assert_eq!(Effect::Allow.to_string(), "Allow");
        assert_eq!(serde_json::to_string(&Effect::Deny).unwrap(), "\"Deny\"");
        assert_eq!(Effect::default(), Effect::Allow);
    }
}
