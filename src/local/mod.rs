//! Local mode: API Gateway in front of the authorizer, with a dev identity provider; no AWS
//! and no Docker. This is the library half of `scopegate local` and `scopegate token`.
//!
//! - `idp`: [`DevIdp`], a dev OAuth 2.0 / OpenID Connect provider on loopback (discovery,
//!   JWKS, a `client_credentials` token endpoint) signing with a key made at start. The
//!   authorizer trusts it the way it trusts Okta: through discovery and the JWKS, with no
//!   shortcut, so local mode exercises the real verification path.
//! - [`gateway`]: an emulation of an API Gateway REST API with a Lambda `TOKEN` authorizer in
//!   front of a mock integration: token source and validation regex, 401/403 answers, the
//!   per-token authorizer cache re-evaluated against each request's methodArn, stage and
//!   routes. The authorizer is reached through the [`Authorize`] trait, so this module does not
//!   depend on the authorizer's internals.
//! - [`dpop`]: a client's DPoP key and proofs (`scopegate token --dpop`, `dpop-proof`).
//! - [`startup_banner`]: the text `scopegate local` prints at start (URLs and ready-to-paste
//!   curl lines for an allowed, a denied and a malformed request).
//!
//! Both servers take an opened [`tokio::net::TcpListener`] and a shutdown future (Ctrl-C in
//! the binary), so tests bind `127.0.0.1:0` and stop them at will.

mod banner;
pub mod dpop;
pub(crate) mod error;
pub mod gateway;
pub(crate) mod idp;
pub mod responses;
#[cfg(test)]
mod tests;

pub use banner::{startup_banner, Banner, CurlExample};
pub use error::{display_addr, LocalError};
pub use gateway::{serve, Authorize, AuthorizeError, GatewayOptions, Route};
pub use idp::{fetch_dpop_token, fetch_token, fetch_token_with, DevIdp};
