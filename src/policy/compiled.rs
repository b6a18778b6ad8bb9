//! [`CompiledPolicy`]: a policy serialized once and shared by every answer that carries it.

use serde_json::value::RawValue;

use super::document::{Effect, Policy};
use super::eval::evaluate;

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
