//! [`Rejection`]: why a token was refused, one variant per check.

use crate::alg::Alg;
use crate::refusal::Refusal;

/// Why a token was refused. Every variant becomes the same `Unauthorized` for the caller (an
/// attacker learns nothing); the variant is for the log line. No variant holds or prints any
/// text taken from the token or a request header (not even a `kid` or an `alg` value): the
/// log line says which check failed, never what the caller sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No token in the token source.
    #[error("no token in the request")]
    Missing,
    /// The token source is not `Bearer <token>`.
    #[error("the token source is not \"Bearer <token>\"")]
    NotBearer,
    /// Longer than SCOPEGATE_MAX_TOKEN_BYTES; refused before any decoding.
    #[error("token of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// The token's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a well-formed compact JWS, or its JSON is broken.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not on the allow-list (or is `none` or HMAC). Holds the JOSE name when the
    /// value is a registered one (a fixed string, never the token's text), else
    /// `"(unregistered)"`.
    #[error("algorithm {0} is not allowed")]
    AlgorithmNotAllowed(&'static str),
    /// The header names a key location or carries a key (`jku`, `x5u`, `jwk`, `x5c`). Keys
    /// come only from the configured JWKS, so such a token is refused outright.
    #[error("the token header names its own key ({0}); keys come only from the configured JWKS")]
    KeyInHeader(&'static str),
    /// The header has `crit` extensions, none of which scopegate implements (RFC 7515 4.1.11).
    #[error("the token header has critical extensions scopegate does not understand")]
    Critical,
    /// `typ` is not `at+jwt` while SCOPEGATE_REQUIRE_TYP=at+jwt.
    #[error("typ is not at+jwt")]
    Typ,
    /// `iss` is missing or not a configured issuer.
    #[error("issuer is not trusted")]
    UntrustedIssuer,
    /// No key with the token's `kid`, even after a refetch (or the refetch was rate
    /// limited). The kid itself is not kept: it is the caller's text.
    #[error("no signing key for the token's kid at this issuer")]
    UnknownKey,
    /// The key exists but may not verify this algorithm (kty/crv/alg mismatch).
    #[error("key {kid:?} cannot verify {alg}")]
    KeyAlgMismatch {
        /// The key's kid.
        kid: String,
        /// The token's algorithm.
        alg: Alg,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// No `exp`.
    #[error("the token has no exp")]
    MissingExp,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// A scope value is outside RFC 6749 3.3 (whitespace other than one separating space, a
    /// control character, ...), or there are too many scopes.
    #[error("invalid scope claim: {0}")]
    Scope(#[from] crate::scope::ScopeError),
    /// A declared grant claim (`SCOPEGATE_GRANT_CLAIMS`) breaks the caps scopes have: more
    /// than 512 values, or a value over 256 characters.
    #[error("invalid grant claim: {0}")]
    Claim(crate::claim::ClaimError),
    /// The token source (the Authorization header, or the configured one) is given more
    /// than once with different values, so which one API Gateway meant is unknowable.
    #[error("the token source is given more than once")]
    Ambiguous,
    /// `aud` does not contain the configured audience.
    #[error("audience does not match")]
    Audience,
    /// Neither `sub` nor `client_id`: nobody to name as the principal.
    #[error("the token names no subject (sub) or client (client_id)")]
    NoPrincipal,
    /// Introspection answered `active: false` (revoked, expired, unknown).
    #[error("the identity provider says the token is not active")]
    Inactive,
    /// The token is bound to a client certificate (`cnf.x5t#S256`, RFC 8705) and the request
    /// presented none: a TOKEN event (which never carries one), or a REQUEST event from an API
    /// without mutual TLS.
    #[error("the token is bound to a client certificate (RFC 8705) and the request presented none (a TOKEN authorizer is never given one: use a REQUEST authorizer on a mutual-TLS domain)")]
    CertificateMissing,
    /// The request's client certificate is not the one the token is bound to, or cannot be
    /// read.
    #[error("the request's client certificate is not the one the token is bound to")]
    CertificateMismatch,
    /// The token's `cnf` binds it by a method scopegate does not check (an unknown member, or
    /// several): refused rather than accepted as a bearer token.
    #[error("the token is bound to its client by a method scopegate does not check (cnf other than x5t#S256 or jkt alone)")]
    BindingUnsupported,
    /// The token is bound by a kind `SCOPEGATE_BOUND_KINDS` does not list (`mtls`, `dpop`).
    #[error("the token is bound by {0}, which SCOPEGATE_BOUND_KINDS does not accept")]
    BindingKindOff(&'static str),
    /// `SCOPEGATE_BOUND_TOKENS=require` and the token has no `cnf`.
    #[error("the token is not bound to its client, and SCOPEGATE_BOUND_TOKENS=require")]
    BindingRequired,
    /// The scheme does not fit the token (RFC 9449 §7.1, §7.2): the text says which way.
    #[error("wrong authorization scheme: {0}")]
    WrongScheme(&'static str),
    /// The token is DPoP-bound and the request has no `DPoP` header (a TOKEN event never has
    /// one).
    #[error("the token is bound to a DPoP key (RFC 9449) and the request has no DPoP proof (a TOKEN authorizer is never given one: use a REQUEST authorizer)")]
    DpopProofMissing,
    /// The DPoP proof fails a check of RFC 9449 §4.3: the text names the check, never the
    /// proof's content.
    #[error("invalid DPoP proof: {0}")]
    DpopProof(&'static str),
    /// The DPoP proof was seen before (RFC 9449 §11.1).
    #[error("the DPoP proof was used before (replay)")]
    DpopReplayed,
    /// The replay table could not be asked: refused, since a replay could not be ruled out.
    #[error("DPoP replay table unavailable: {0}")]
    ReplayUnavailable(String),
    /// The identity provider could not be asked (JWKS or introspection fetch failed); fail
    /// closed.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
}

impl Rejection {
    /// Which of the fixed [`Refusal`] names this rejection is counted under.
    pub fn refusal(&self) -> Refusal {
        match self {
            Rejection::Missing => Refusal::MissingToken,
            Rejection::NotBearer | Rejection::Ambiguous => Refusal::NotBearer,
            Rejection::TooLarge { .. } => Refusal::TooLarge,
            Rejection::Malformed(_) | Rejection::MissingExp => Refusal::Malformed,
            Rejection::AlgorithmNotAllowed(_) => Refusal::AlgorithmNotAllowed,
            Rejection::KeyInHeader(_) | Rejection::Critical => Refusal::UnsafeHeader,
            Rejection::Typ => Refusal::WrongType,
            Rejection::UntrustedIssuer => Refusal::WrongIssuer,
            Rejection::UnknownKey | Rejection::KeyAlgMismatch { .. } => Refusal::KeyUnknown,
            Rejection::BadSignature => Refusal::BadSignature,
            Rejection::Expired => Refusal::Expired,
            Rejection::NotYetValid | Rejection::IssuedInFuture => Refusal::NotYetValid,
            Rejection::Scope(_) => Refusal::ScopeGrammar,
            Rejection::Claim(_) => Refusal::ClaimGrammar,
            Rejection::Audience => Refusal::WrongAudience,
            Rejection::NoPrincipal => Refusal::NoPrincipal,
            Rejection::Inactive => Refusal::Inactive,
            Rejection::Unavailable(_) => Refusal::ProviderUnavailable,
            Rejection::CertificateMissing => Refusal::BindingMissing,
            Rejection::CertificateMismatch => Refusal::BindingMismatch,
            Rejection::BindingUnsupported | Rejection::BindingKindOff(_) => {
                Refusal::BindingUnsupported
            }
            Rejection::BindingRequired => Refusal::BindingRequired,
            Rejection::WrongScheme(_) => Refusal::WrongScheme,
            Rejection::DpopProofMissing => Refusal::BindingMissing,
            Rejection::DpopProof(_) => Refusal::DpopProofInvalid,
            Rejection::DpopReplayed => Refusal::DpopReplayed,
            Rejection::ReplayUnavailable(_) => Refusal::DpopReplayUnavailable,
        }
    }
}
