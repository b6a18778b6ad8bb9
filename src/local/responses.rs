//! The answers API Gateway gives when the authorizer refuses or fails, as template.yaml's
//! gateway responses set them, and as `scopegate local` gives them: one table, which
//! tests/it/template.rs checks the template against, so the two cannot drift apart.
//!
//! RFC 6750 §3: a resource server that refuses a bearer token says so in
//! `WWW-Authenticate: Bearer`, with `error="invalid_token"` for a token that is missing its
//! validity (expired, revoked, malformed, wrongly signed: 401) and
//! `error="insufficient_scope"` for a valid token that does not grant the request (403), so a
//! client can tell "get a new token" from "ask for more". A request with no token at all gets
//! `Bearer` and no error code (§3.1: "the resource server SHOULD NOT include an error code").
//!
//! API Gateway answers a missing token and a refused one through the same `UNAUTHORIZED`
//! response, whose headers are static: the deployed API cannot tell them apart and sends
//! `error="invalid_token"` for both. `scopegate local` can, and does ([`NO_TOKEN`]).
//!
//! DPoP (RFC 9449 §7.1): a refusal of a request sent with the `DPoP` scheme names that scheme,
//! with `error="invalid_dpop_proof"` when the proof was refused and `error="invalid_token"`
//! when the token was, and the algorithms a proof may use (`algs`). Here too API Gateway's
//! static headers cannot tell them apart: a deployed API that accepts DPoP sends both
//! challenges, the DPoP one without an error code ([`UNAUTHORIZED_WITH_DPOP`]). `scopegate
//! local` tells them apart ([`DPOP_INVALID_PROOF`], [`DPOP_INVALID_TOKEN`]).
//!
//! No answer says *why* a token was refused: that is the decision log's `refusal`
//! (docs/observability.md). Telling the caller which check failed helps an attacker only.

/// One gateway response: what API Gateway sends instead of calling the integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayResponse {
    /// API Gateway's response type (`UNAUTHORIZED`, `ACCESS_DENIED`, ...).
    pub response_type: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// The `WWW-Authenticate` value, if any.
    pub www_authenticate: Option<&'static str>,
    /// The `application/json` body template: `$context.error.messageString` is API Gateway's
    /// message as a JSON string (see [`GatewayResponse::body`]); nothing else varies.
    pub body: &'static str,
}

/// The placeholder API Gateway fills with its own message, as a quoted JSON string.
pub const MESSAGE_STRING: &str = "$context.error.messageString";

impl GatewayResponse {
    /// The body for API Gateway's `message`, as the template renders it.
    pub fn body(&self, message: &str) -> String {
        let quoted = serde_json::Value::from(message).to_string();
        self.body.replace(MESSAGE_STRING, &quoted)
    }
}

/// A token that was sent and refused: the authorizer's `Unauthorized`, or a token source that
/// does not match the token validation regex.
pub const UNAUTHORIZED: GatewayResponse = GatewayResponse {
    response_type: "UNAUTHORIZED",
    status: 401,
    www_authenticate: Some(r#"Bearer error="invalid_token""#),
    body: r#"{"message":$context.error.messageString,"error":"invalid_token"}"#,
};

/// The algorithms a DPoP proof may use, as a challenge's `algs` names them: the default
/// `SCOPEGATE_ALGORITHMS` (a unit test keeps the two equal). A macro, so that the challenges
/// below are built from the one list at compile time.
macro_rules! dpop_algs {
    () => {
        "RS256 RS384 RS512 PS256 ES256 ES384 EdDSA"
    };
}

/// The list `dpop_algs!` writes, as a constant.
pub const DPOP_ALGS: &str = dpop_algs!();

/// [`UNAUTHORIZED`] where DPoP tokens are accepted (template.yaml's REQUEST authorizer with
/// `BoundKinds` holding `dpop`): both challenges, the DPoP one saying which algorithms a proof
/// may use, since a static header cannot say whether the token or the proof was refused.
pub const UNAUTHORIZED_WITH_DPOP: GatewayResponse = GatewayResponse {
    response_type: "UNAUTHORIZED",
    status: 401,
    www_authenticate: Some(concat!(
        r#"Bearer error="invalid_token", DPoP algs=""#,
        dpop_algs!(),
        r#"""#
    )),
    body: r#"{"message":$context.error.messageString,"error":"invalid_token"}"#,
};

/// A DPoP proof refused (missing, invalid, replayed): `scopegate local` only.
pub const DPOP_INVALID_PROOF: GatewayResponse = GatewayResponse {
    response_type: "UNAUTHORIZED",
    status: 401,
    www_authenticate: Some(concat!(
        r#"DPoP error="invalid_dpop_proof", algs=""#,
        dpop_algs!(),
        r#"""#
    )),
    body: r#"{"message":$context.error.messageString,"error":"invalid_dpop_proof"}"#,
};

/// A token sent with the `DPoP` scheme refused: `scopegate local` only.
pub const DPOP_INVALID_TOKEN: GatewayResponse = GatewayResponse {
    response_type: "UNAUTHORIZED",
    status: 401,
    www_authenticate: Some(concat!(
        r#"DPoP error="invalid_token", algs=""#,
        dpop_algs!(),
        r#"""#
    )),
    body: r#"{"message":$context.error.messageString,"error":"invalid_token"}"#,
};

/// No token at all (`scopegate local` only: see the module's text).
pub const NO_TOKEN: GatewayResponse = GatewayResponse {
    response_type: "UNAUTHORIZED",
    status: 401,
    www_authenticate: Some("Bearer"),
    body: r#"{"message":$context.error.messageString}"#,
};

/// A valid token whose policy does not allow the request: an explicit Deny, or no Allow.
pub const ACCESS_DENIED: GatewayResponse = GatewayResponse {
    response_type: "ACCESS_DENIED",
    status: 403,
    www_authenticate: Some(r#"Bearer error="insufficient_scope""#),
    body: r#"{"Message":$context.error.messageString,"error":"insufficient_scope"}"#,
};

/// The authorizer could not answer: it failed (mappings unavailable, a fault), timed out,
/// was throttled, or answered something API Gateway refuses. 503, not 500: the usual causes
/// (a dependency down, a throttle) pass, and a client may retry. The body is fixed: the
/// cause is in the authorizer's log, never in the answer.
pub const AUTHORIZER_CONFIGURATION_ERROR: GatewayResponse = GatewayResponse {
    response_type: "AUTHORIZER_CONFIGURATION_ERROR",
    status: 503,
    www_authenticate: None,
    body: r#"{"message":"Service Unavailable"}"#,
};

/// API Gateway's other authorizer failure type. A Lambda authorizer's errors arrive as
/// [`AUTHORIZER_CONFIGURATION_ERROR`]; this one is set too so that no authorizer failure
/// falls through to API Gateway's default body.
pub const AUTHORIZER_FAILURE: GatewayResponse = GatewayResponse {
    response_type: "AUTHORIZER_FAILURE",
    status: 500,
    www_authenticate: None,
    body: r#"{"message":"Internal Server Error"}"#,
};

/// Every response template.yaml sets, one per response type.
pub const DEPLOYED: [GatewayResponse; 4] = [
    UNAUTHORIZED,
    ACCESS_DENIED,
    AUTHORIZER_CONFIGURATION_ERROR,
    AUTHORIZER_FAILURE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_is_json_with_the_message_as_a_string_whatever_it_holds() {
        for r in DEPLOYED.iter().chain([
            &NO_TOKEN,
            &UNAUTHORIZED_WITH_DPOP,
            &DPOP_INVALID_PROOF,
            &DPOP_INVALID_TOKEN,
        ]) {
            for message in ["Unauthorized", "with \"quotes\" and \\ and\nnewline", ""] {
                let body: serde_json::Value = serde_json::from_str(&r.body(message))
                    .unwrap_or_else(|e| panic!("{}: {e}", r.response_type));
                if r.body.contains(MESSAGE_STRING) {
                    let key = if r.status == 403 {
                        "Message"
                    } else {
                        "message"
                    };
                    assert_eq!(body[key], message);
                }
            }
        }
    }

    #[test]
    fn each_deployed_type_is_set_once() {
        let mut types: Vec<_> = DEPLOYED.iter().map(|r| r.response_type).collect();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), DEPLOYED.len());
    }

    #[test]
    fn the_dpop_challenges_name_the_default_algorithms() {
        let algs: Vec<&str> = crate::token::Alg::DEFAULT_ALLOWED
            .iter()
            .map(|a| a.name())
            .collect();
        assert_eq!(DPOP_ALGS, algs.join(" "));
        for r in [
            &UNAUTHORIZED_WITH_DPOP,
            &DPOP_INVALID_PROOF,
            &DPOP_INVALID_TOKEN,
        ] {
            let h = r.www_authenticate.unwrap();
            assert!(h.ends_with(&format!("algs=\"{DPOP_ALGS}\"")), "{h}");
        }
    }
}
