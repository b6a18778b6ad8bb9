//! scopegate: an Amazon API Gateway Lambda authorizer for APIs whose users sign in with a
//! third-party OAuth 2.0 / OpenID Connect identity provider.
//!
//! A bearer JWT is verified against the provider (JWKS, discovery, optionally RFC 7662
//! introspection); the token's scopes are mapped to API resources through a permissions
//! mapping; the answer is a complete IAM policy that API Gateway can cache for every method
//! of the API, not just the one that was called.
//!
//! # Layout
//! The floor plan, with what each room may import, is docs/architecture.md (kept true by
//! tests/it/architecture.rs).
//!
//! - [`config`]: every setting, read from the environment once and validated at start.
//! - [`alg`]: the JWS algorithms scopegate verifies and allow-lists of them.
//! - [`clock`]: the one source of "now", passed in so tests control time.
//! - [`scope`]: RFC 6749 3.3 scope syntax, shared by tokens and mappings.
//! - [`refusal`]: the fixed names refused tokens are counted under, in logs and metrics.
//! - [`token`]: bearer extraction, JWKS cache, JWT verification, introspection, token cache.
//! - [`mapping`]: mapping entries, the scope-indexed [`mapping::Snapshot`], and its sources.
//! - [`policy`]: execute-api ARNs, the policy builder, and the policy evaluator (the oracle
//!   tests assert through).
//! - [`authorizer`]: event in, decision and response out; the one place that joins the above.
//! - `admin`: the `scopegate` CLI's commands, so that the binary stays thin (feature `cli`).
//! - [`ttl_cache`]: the one bounded TTL cache (verified tokens, introspection answers, the
//!   local gateway's authorizer cache).
//! - [`logging`]: JSON logs, never a token.
//! - [`metrics`]: CloudWatch Embedded Metric Format lines per decision, mapping load and JWKS
//!   refetch; nothing secret.
//! - `local`: the local gateway and the dev identity provider behind `scopegate local`
//!   (feature `cli`).
#![deny(missing_docs)]

#[cfg(feature = "cli")]
pub mod admin;
pub mod alg;
pub mod authorizer;
pub mod claim;
pub mod clock;
pub mod config;
pub mod error_text;
#[cfg(feature = "cli")]
pub mod local;
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod policy;
pub mod refusal;
pub mod replay;
pub mod scope;
pub mod token;
pub mod ttl_cache;
