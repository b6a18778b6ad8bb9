//! [`LocalError`], what can go wrong in local mode, and the one address helper its messages
//! and the servers share.

use std::io;

/// Everything that can go wrong starting or running local mode, or fetching a dev token.
///
/// Carries the offending input (option value, URL) so that the CLI can print it as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// A gateway or identity provider setting is out of range or malformed.
    #[error("invalid {option} {value:?}: {reason}")]
    InvalidOption {
        /// The setting, named as the CLI flag (`--authorizer-ttl`, `--stage`, ...).
        option: &'static str,
        /// The value given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// The listener's own address could not be read (needed for the issuer URL).
    #[error("cannot read the local address of the {what} listener")]
    LocalAddr {
        /// Which server: "identity provider" or "gateway".
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A server stopped on an I/O error.
    #[error("the {what} server failed")]
    Serve {
        /// Which server: "identity provider" or "gateway".
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The dev identity provider's signing key could not be generated.
    #[error("cannot generate the dev identity provider's signing key")]
    KeyGeneration(#[source] aws_lc_rs::error::Unspecified),
    /// The signing key could not be turned into a JWK, or a token could not be signed.
    #[error("cannot {what} with the dev identity provider's key")]
    Jwt {
        /// "export the JWK", "sign a token", ...
        what: &'static str,
        /// The jsonwebtoken error.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    /// A DPoP key file cannot be used.
    #[error("DPoP key {path}: {reason}")]
    DpopKey {
        /// The file.
        path: String,
        /// What is wrong, and how to make one.
        reason: String,
    },
    /// The token endpoint could not be reached (connection refused, timeout, ...).
    #[error("cannot reach the token endpoint {url}")]
    TokenRequest {
        /// The token endpoint.
        url: String,
        /// The HTTP client error.
        #[source]
        source: reqwest::Error,
    },
    /// The token endpoint refused the request (an RFC 6749 error answer).
    #[error("the token endpoint {url} answered {status}: {error}")]
    TokenRefused {
        /// The token endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// `error` and `error_description` from the answer, or the start of its body.
        error: String,
    },
    /// The token endpoint answered 2xx with something that is not a token response.
    #[error("the token endpoint {url} sent an unusable answer: {reason}")]
    TokenResponse {
        /// The token endpoint.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// The host part of a URL for a listener address: a wildcard bind (`0.0.0.0`, `::`) is shown
/// as loopback, since that is where a local client reaches it (and what the issuer must say).
pub fn display_addr(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}
