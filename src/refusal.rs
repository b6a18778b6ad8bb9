//! [`Refusal`]: the fixed list of names a refused token is counted under.
//!
//! Below both the token checks (which map each [`crate::token::Rejection`] to one) and the
//! metrics (which carry it as a dimension), so neither depends on the other for it.

/// Why a token was refused, as one of a fixed list of names: what the decision line's
/// `refusal` field and the `Refusal` dimension of the `Unauthorized` metric carry, so that an
/// operator can count and graph refusals by cause. The names are stable (dashboards and
/// alarms are built on them); docs/observability.md lists them and a test keeps the two the
/// same. Several [`Rejection`](crate::token::Rejection)s share a name where an operator would act the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// No token in the request (RFC 6750 3.1: no error code is sent back for it).
    MissingToken,
    /// The token source is not `Bearer <token>`, or is given twice with different values.
    NotBearer,
    /// Over `SCOPEGATE_MAX_TOKEN_BYTES`.
    TooLarge,
    /// Not a well-formed compact JWS, its header or payload is not the JSON it must be, or it
    /// has no `exp`.
    Malformed,
    /// `alg` is not on the allow-list (including `none` and HMAC).
    AlgorithmNotAllowed,
    /// The header names or carries its own key (`jku`, `x5u`, `jwk`, `x5c`), or has `crit`.
    UnsafeHeader,
    /// `typ` is not `at+jwt` while `SCOPEGATE_REQUIRE_TYP=at+jwt`.
    WrongType,
    /// `iss` is missing or not a configured issuer.
    WrongIssuer,
    /// No key with the token's `kid` at its issuer, or the key cannot verify its `alg`.
    KeyUnknown,
    /// The signature does not verify.
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future.
    NotYetValid,
    /// `aud` does not contain a configured audience.
    WrongAudience,
    /// The scope claim breaks RFC 6749 3.3's grammar, or has too many values.
    ScopeGrammar,
    /// A declared grant claim breaks its caps.
    ClaimGrammar,
    /// Neither `sub` nor `client_id`.
    NoPrincipal,
    /// Introspection says the token is not active (revoked, expired, unknown).
    Inactive,
    /// The identity provider could not be asked (introspection or a key fetch failed).
    ProviderUnavailable,
    /// The token is bound to a client certificate or a DPoP key and the request presented no
    /// certificate, or no DPoP proof.
    BindingMissing,
    /// The request's client certificate is not the one the token is bound to.
    BindingMismatch,
    /// The token is bound by a method scopegate does not check, or by a kind
    /// `SCOPEGATE_BOUND_KINDS` leaves out.
    BindingUnsupported,
    /// `SCOPEGATE_BOUND_TOKENS=require` and the token is not bound to its client.
    BindingRequired,
    /// The authorization scheme does not fit the token: a DPoP-bound token sent as `Bearer`,
    /// or an unbound (or certificate-bound) token sent as `DPoP` (RFC 9449 §7).
    WrongScheme,
    /// The DPoP proof fails a check of RFC 9449 §4.3, or there are several.
    DpopProofInvalid,
    /// The DPoP proof was used before (its `jti`, for its key).
    DpopReplayed,
    /// The DPoP replay table could not be asked; fail closed (an alarm watches it).
    DpopReplayUnavailable,
}

impl Refusal {
    /// Every name, in the order docs/observability.md lists them.
    pub const ALL: [Refusal; 26] = [
        Refusal::MissingToken,
        Refusal::NotBearer,
        Refusal::TooLarge,
        Refusal::Malformed,
        Refusal::AlgorithmNotAllowed,
        Refusal::UnsafeHeader,
        Refusal::WrongType,
        Refusal::WrongIssuer,
        Refusal::KeyUnknown,
        Refusal::BadSignature,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::WrongAudience,
        Refusal::ScopeGrammar,
        Refusal::ClaimGrammar,
        Refusal::NoPrincipal,
        Refusal::Inactive,
        Refusal::ProviderUnavailable,
        Refusal::BindingMissing,
        Refusal::BindingMismatch,
        Refusal::BindingUnsupported,
        Refusal::BindingRequired,
        Refusal::WrongScheme,
        Refusal::DpopProofInvalid,
        Refusal::DpopReplayed,
        Refusal::DpopReplayUnavailable,
    ];

    /// The name, `snake_case`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::MissingToken => "missing_token",
            Refusal::NotBearer => "not_bearer",
            Refusal::TooLarge => "too_large",
            Refusal::Malformed => "malformed",
            Refusal::AlgorithmNotAllowed => "algorithm_not_allowed",
            Refusal::UnsafeHeader => "unsafe_header",
            Refusal::WrongType => "wrong_type",
            Refusal::WrongIssuer => "wrong_issuer",
            Refusal::KeyUnknown => "key_unknown",
            Refusal::BadSignature => "bad_signature",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::WrongAudience => "wrong_audience",
            Refusal::ScopeGrammar => "scope_grammar",
            Refusal::ClaimGrammar => "claim_grammar",
            Refusal::NoPrincipal => "no_principal",
            Refusal::Inactive => "inactive",
            Refusal::ProviderUnavailable => "provider_unavailable",
            Refusal::BindingMissing => "binding_missing",
            Refusal::BindingMismatch => "binding_mismatch",
            Refusal::BindingUnsupported => "binding_unsupported",
            Refusal::BindingRequired => "binding_required",
            Refusal::WrongScheme => "wrong_scheme",
            Refusal::DpopProofInvalid => "dpop_proof_invalid",
            Refusal::DpopReplayed => "dpop_replayed",
            Refusal::DpopReplayUnavailable => "dpop_replay_unavailable",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
