//! Token verification: from the token source's raw value to verified [`Claims`].
//!
//! - [`bearer`]: `Bearer <token>` extraction, size cap first.
//! - [`jws`]: the compact JWS split and header checks (algorithm allow-list, no key locations
//!   taken from the header).
//! - `keys`: JWKs parsed once into aws-lc-rs keys, bound to the algorithms they may verify.
//! - [`jwks`]: the per-issuer key cache: hydrated at start, one single-flight, rate-limited
//!   refetch on an unknown `kid`, old keys kept when a fetch fails.
//! - [`claims`]: one pass over the payload that keeps only what is used.
//! - `verify`: the [`Verifier`] that joins the above; its core is sans-IO.
//! - `introspect`: RFC 7662 introspection (opaque tokens, revocation).
//! - `rejection`: why a token was refused, without a byte of what the caller sent.
//! - `mint`: signing tokens with real keys, for local mode, tests and benchmarks.

pub mod bearer;
pub mod binding;
pub mod claims;
pub mod dpop;
pub mod fetch;
pub(crate) mod introspect;
pub mod jwks;
pub mod jws;
pub(crate) mod keys;
// Signing exists for tests, benchmarks and fuzzing only: the authorizer holds public keys.
#[cfg(any(test, feature = "test-util"))]
pub mod mint;
pub(crate) mod rejection;
pub(crate) mod verify;

#[cfg(test)]
pub(crate) mod fake;

pub use crate::alg::{Alg, AlgSet};
pub use claims::Claims;
pub use verify::Verifier;

pub use crate::refusal::Refusal;
pub use rejection::Rejection;
