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
    /// The length of its longest resource ARN: API Gateway refuses a policy with one over
    /// [`MAX_RESOURCE_ARN_LEN`].
    pub longest_resource: usize,
}

/// The longest resource ARN API Gateway takes in an authorizer's policy statement ("the
/// Resource ARN ... is currently limited to 512 characters long", AWS's Lambda authorizer
/// output documentation).
pub const MAX_RESOURCE_ARN_LEN: usize = 512;

impl CompiledPolicy {
    /// Serializes `policy` once.
    pub fn new(policy: Policy) -> CompiledPolicy {
        // Serializing fixed keys and strings into a String cannot fail.
        let json = serde_json::value::to_raw_value(&policy)
            .expect("a Policy is strings and fixed keys, always serializable");
        let grants = policy.grant_count();
        let longest_resource = policy
            .statements
            .iter()
            .flat_map(|s| &s.resources)
            .map(String::len)
            .max()
            .unwrap_or(0);
        CompiledPolicy {
            policy,
            json,
            grants,
            allows_anything: grants > 0,
            longest_resource,
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
