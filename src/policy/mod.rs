//! IAM policies for API Gateway: execute-api ARNs (`arn`), the builder that turns a
//! token's grants into one compact policy (`build`), and the evaluator that
//! answers what API Gateway would answer for a request under a policy (`eval`), which the
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

pub(crate) mod arn;
pub(crate) mod build;
pub(crate) mod compiled;
pub(crate) mod document;
pub(crate) mod eval;
pub(crate) mod glob;

#[cfg(test)]
mod tests;

pub use arn::{method_arn, ApiArn, ApiKind, ArnError, ArnProblem, MethodArn};
pub use build::{build, covers};
pub use compiled::{CompiledPolicy, MAX_RESOURCE_ARN_LEN};
pub use document::{Effect, Policy, Statement, POLICY_VERSION};
pub use eval::evaluate;
pub use glob::glob_match;
