//! Event in, decision and response out: the one place that joins token verification, the
//! mappings and the policy.
//!
//! ```text
//! event (TOKEN | REQUEST | HTTP API 2.0)
//!   -> token from the token source -> bearer::extract_with_scheme (size cap first)
//!   -> token cache hit?  (skips the signature, still bounded by exp)
//!   -> Verifier / Introspector -> Claims -> Principal (principalId, context JSON, built once)
//!   -> binding::required (cnf, scheme) -> the client certificate, or dpop::verify + replay
//!   -> Snapshot::policy_for(scopes, api, stage) (built once per scope set and snapshot)
//!   -> Response: principal + policy spliced as raw JSON, no re-serialisation
//! ```
//!
//! Outcomes: a token that cannot be verified is [`AuthorizeError::Unauthorized`] (API Gateway
//! answers 401). A valid token that grants nothing for the API gets the deny-all policy (403).
//! Anything else (a broken event, no mappings) is an error that is not `Unauthorized`: API
//! Gateway answers 500 and, unlike a policy, does not cache it. There is no path to an Allow
//! that does not go through a verified token and a policy built from the mappings.

use std::borrow::Cow;
use std::sync::Arc;

use aws_lambda_events::http;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::clock::{Clock, SystemClock};
use crate::config::{BoundKinds, BoundMode, Config, IntrospectMode, ResponseMode};
use crate::mapping::{file, Mappings, StaticMappings, Unavailable};
use crate::metrics::Outcome;
use crate::policy::{ApiKind, CompiledPolicy, Effect, MethodArn};
use crate::replay::{ReplayGuard, ReplayStore};
use crate::token::binding::{self, Confirmation, Need};
use crate::token::claims::Text;
use crate::token::dpop;
use crate::token::fetch::HttpFetcher;
use crate::token::introspect::Introspector;
use crate::token::jwks::KeyIo;
use crate::token::{bearer, jws, Claims, Rejection, Verifier};
use crate::ttl_cache::TtlCache;

/// Why the authorizer did not answer with a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The token was refused: API Gateway answers 401.
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] Rejection),
    /// The event is not an authorizer event scopegate understands.
    #[error("not an API Gateway authorizer event: {0}")]
    BadEvent(String),
    /// No mapping snapshot could be had; fail closed.
    #[error("mappings unavailable: {0}")]
    MappingsUnavailable(#[from] Unavailable),
    /// The event cannot come from an API of the kind the mappings declare for its API: an
    /// HTTP API's event for an API declared REST (or declared nowhere), or a REST API's for
    /// one declared HTTP. Answered by neither kind's rules: the routing rules would be the
    /// wrong API's, so fail closed (API Gateway answers 500, which it does not cache).
    #[error("the event is from an API of kind {event}, but the mappings declare {api} of kind {declared} (rest unless declared): declare its kind (\"apis\" in the mapping file, or `scopegate mappings kind`)")]
    KindMismatch {
        /// The API ARN, as validated from the event.
        api: String,
        /// The kind the mappings declare (REST when undeclared).
        declared: ApiKind,
        /// The kind the event's shape gives.
        event: ApiKind,
    },
    /// A Deny entry requires a claim this authorizer does not read
    /// (`SCOPEGATE_GRANT_CLAIMS`): it could never apply, so the Deny would be silently lost.
    /// Fail closed until the claim is declared or the entry changed.
    #[error("a Deny entry requires claim {claim:?}, which SCOPEGATE_GRANT_CLAIMS (or, with SCOPEGATE_PROVIDERS, some issuer's grant_claims) does not declare: it would never deny that issuer's tokens; declare the claim for every issuer, or change the entry")]
    UndeclaredClaim {
        /// The claim's name (from the mappings, validated).
        claim: String,
    },
}

impl AuthorizeError {
    /// The Lambda `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthorizeError::Unauthorized(_) => "Unauthorized",
            AuthorizeError::BadEvent(_) => "BadEvent",
            AuthorizeError::MappingsUnavailable(_) => "MappingsUnavailable",
            AuthorizeError::KindMismatch { .. } => "KindMismatch",
            AuthorizeError::UndeclaredClaim { .. } => "UndeclaredClaim",
        }
    }

    /// The Lambda `errorMessage`. API Gateway answers 401 only for exactly "Unauthorized";
    /// the reason stays in the log, never in the answer.
    pub fn error_message(&self) -> String {
        match self {
            AuthorizeError::Unauthorized(_) => "Unauthorized".to_owned(),
            other => other.to_string(),
        }
    }
}

/// A fault while setting the authorizer up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The token verifier (a JWKS file).
    #[error(transparent)]
    Keys(#[from] crate::token::verify::SetupError),
    /// The mappings file.
    #[error(transparent)]
    Mappings(#[from] file::FileError),
}

/// Who the token names, with everything the response needs from it, built once per token.
#[derive(Debug)]
pub struct Principal {
    /// `principalId`.
    pub id: Box<str>,
    /// The token's scopes.
    pub scopes: Box<[Box<str>]>,
    /// The grant keys of its declared grant claims' values ([`crate::claim`]), matched
    /// beside the scopes. Never logged: they are the token's text.
    pub grants: Box<[Box<str>]>,
    /// The binding keys of its declared grant claims ([`crate::claim::binding_key`]): what
    /// `${claim:NAME}` segments read. Never logged either.
    pub bindings: Box<[Box<str>]>,
    /// The authorizer context, serialized once.
    pub context: Box<RawValue>,
    /// `usageIdentifierKey`, when configured and present.
    pub usage_key: Option<Box<str>>,
    /// The token's exp.
    pub exp: u64,
    /// What the token is bound to (`cnf`), checked against each request's client certificate.
    pub cnf: Option<Confirmation>,
    /// How many `SCOPEGATE_CONTEXT_CLAIMS` the token has but the context leaves out (not
    /// a string, or over [`MAX_CONTEXT_VALUE`] bytes).
    pub context_left_out: u16,
}

/// The longest claim value copied into the authorizer context, in bytes.
pub const MAX_CONTEXT_VALUE: usize = 256;

/// The answer, ready to serialize: shared parts spliced in as raw JSON.
#[derive(Debug, Clone)]
pub struct Response {
    /// The principal.
    pub principal: Arc<Principal>,
    /// The policy for the request's API and stage.
    pub policy: Arc<CompiledPolicy>,
    /// `Some(authorized)` for the HTTP API simple response; `None` for an IAM policy.
    pub simple: Option<bool>,
    /// The claims `${claim:NAME}` segments name that the token could not fill, and why
    /// (`tenant_id: missing`), for the decision line: never a value.
    pub unbound: Option<Box<str>>,
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = &self.principal;
        if let Some(authorized) = self.simple {
            let mut m = s.serialize_map(Some(2))?;
            m.serialize_entry("isAuthorized", &authorized)?;
            m.serialize_entry("context", &p.context)?;
            return m.end();
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("principalId", &p.id)?;
        m.serialize_entry("policyDocument", &self.policy.json)?;
        m.serialize_entry("context", &p.context)?;
        if let Some(k) = &p.usage_key {
            m.serialize_entry("usageIdentifierKey", k)?;
        }
        m.end()
    }
}

/// The bound claims (`bound`) the token's binding keys (`bindings`) leave without a value,
/// with why: `tenant_id: missing; /org/id: not a string`. `None` when all have one.
fn unbound(bound: &[Box<str>], bindings: &[Box<str>]) -> Option<Box<str>> {
    let mut out = String::new();
    for name in bound {
        let why = bindings
            .iter()
            .filter_map(|k| crate::claim::read_binding_key(k))
            .find(|(n, _)| n == &&**name)
            .map_or(Err(crate::claim::Unbound::Missing), |(_, v)| v.map(drop));
        if let Err(why) = why {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(name);
            out.push_str(": ");
            out.push_str(why.reason());
        }
    }
    (!out.is_empty()).then(|| out.into())
}

/// The bytes `response` serializes to, counted without writing them anywhere.
fn answer_size(response: &Response) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, response).expect("a Response is always serializable");
    count.0
}

/// The authorizer: config, keys, caches and mappings, built once per container.
pub struct Authorizer<M: Mappings = StaticMappings> {
    verifier: Verifier,
    introspector: Option<Introspector>,
    mappings: M,
    principals: TtlCache<Principal>,
    clock: Arc<dyn Clock>,
    token_header: http::HeaderName,
    response: ResponseMode,
    context_claims: Vec<crate::config::ContextClaim>,
    usage_key_claim: Option<String>,
    max_token_bytes: usize,
    policy_max_bytes: usize,
    /// The grant claims every issuer's tokens are read for: a Deny requiring any other claim
    /// could be escaped by some issuer's tokens, so every answer fails closed while one does.
    deny_declared: Vec<crate::claim::ClaimName>,
    /// The grant claims some issuer's tokens are read for: an Allow requiring any other claim
    /// never applies, which is warned of.
    allow_declared: Vec<crate::claim::ClaimName>,
    /// The snapshot version last checked for Allow entries on undeclared claims (a warning
    /// once per version, not per request).
    checked_version: std::sync::atomic::AtomicU64,
    /// `SCOPEGATE_BOUND_TOKENS`.
    bound_mode: BoundMode,
    /// `SCOPEGATE_BOUND_KINDS`.
    bound_kinds: BoundKinds,
    /// How DPoP proofs are checked.
    dpop_rules: dpop::Rules,
    /// `SCOPEGATE_DPOP_ORIGIN`.
    dpop_origin: Option<Box<str>>,
    /// Proofs seen: this container's, and the replay table's when there is one.
    replay: ReplayGuard,
}

impl<M: Mappings> std::fmt::Debug for Authorizer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

/// What one event asks: the token source's value, the ARN to decide for, which kind of API
/// sent it, and the answer format.
struct Request<'a> {
    token: Option<Cow<'a, str>>,
    /// The client certificate (PEM) of a mutual-TLS request, when API Gateway passed one.
    client_cert: Option<Cow<'a, str>>,
    /// The `DPoP` header.
    dpop: ProofHeader<'a>,
    /// What a DPoP proof must name: the method, the domain name and the path the client
    /// sent. None in a TOKEN event.
    method: Option<Cow<'a, str>>,
    domain: Option<Cow<'a, str>>,
    path: Option<Cow<'a, str>>,
    arn: Cow<'a, str>,
    kind: ApiKind,
    simple: bool,
}

/// Every authorizer event, read in one pass that borrows what it keeps: TOKEN
/// (`authorizationToken`, `methodArn`), REQUEST (`headers`, `methodArn`) and HTTP API 2.0
/// (`headers`, `identitySource`, `routeArn`). The fields of aws_lambda_events' types, read
/// without their `HeaderMap`: that one refuses a header value with a control byte while
/// quoting it in its error, where the answer must be a plain 401 that quotes nothing.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    version: Option<Text<'a>>,
    #[serde(rename = "authorizationToken", borrow, default)]
    authorization_token: Option<Text<'a>>,
    #[serde(rename = "methodArn", borrow, default)]
    method_arn: Option<Text<'a>>,
    #[serde(rename = "routeArn", borrow, default)]
    route_arn: Option<Text<'a>>,
    #[serde(borrow, default)]
    headers: Option<Headers<'a>>,
    #[serde(rename = "multiValueHeaders", borrow, default)]
    multi_value_headers: Option<Headers<'a, true>>,
    #[serde(rename = "identitySource", borrow, default)]
    identity_source: Option<IdentitySource<'a>>,
    #[serde(rename = "requestContext", borrow, default)]
    request_context: Option<RequestContext<'a>>,
    #[serde(rename = "httpMethod", borrow, default)]
    http_method: Option<Text<'a>>,
    #[serde(rename = "rawPath", borrow, default)]
    raw_path: Option<Text<'a>>,
    /// REST: the resource path (without the stage); HTTP API payload 1.0: the request's path,
    /// decoded, as 2.0's `rawPath` is.
    #[serde(borrow, default)]
    path: Option<Text<'a>>,
}

/// The `DPoP` header of a request (RFC 9449 §4.3 step 1: exactly one).
enum ProofHeader<'a> {
    Absent,
    One(Cow<'a, str>),
    Several,
}

impl<'a> ProofHeader<'a> {
    /// The `DPoP` header in `headers` and `multiValueHeaders`: present once in either (or the
    /// same value in both), else several. Payload 2.0 joins repeated headers with commas,
    /// which no compact JWS holds: counted as several too.
    fn find(one: Option<&Headers<'a>>, multi: Option<&Headers<'a, true>>) -> Self {
        let named = |h: &(Cow<'a, str>, Cow<'a, str>)| h.0.eq_ignore_ascii_case("dpop");
        let ones: Vec<&Cow<'a, str>> = one
            .map(|h| h.0.iter().filter(|p| named(p)).map(|p| &p.1).collect())
            .unwrap_or_default();
        let multis: Vec<&Cow<'a, str>> = multi
            .map(|h| h.0.iter().filter(|p| named(p)).map(|p| &p.1).collect())
            .unwrap_or_default();
        let value = match (ones.as_slice(), multis.as_slice()) {
            ([], []) => return ProofHeader::Absent,
            ([v], []) | ([], [v]) => *v,
            ([a], [b]) if a == b => *a,
            _ => return ProofHeader::Several,
        };
        if value.contains(',') {
            ProofHeader::Several
        } else {
            ProofHeader::One(value.clone())
        }
    }
}

/// The client certificate of a mutual-TLS custom domain: REST and HTTP payload 1.0 events
/// carry it in `requestContext.identity.clientCert`, payload 2.0 in
/// `requestContext.authentication.clientCert`. Everything else there is skipped unread.
#[derive(Deserialize)]
struct RequestContext<'a> {
    #[serde(borrow, default)]
    identity: Option<CertHolder<'a>>,
    #[serde(borrow, default)]
    authentication: Option<CertHolder<'a>>,
    #[serde(rename = "domainName", borrow, default)]
    domain_name: Option<Text<'a>>,
    /// REST and payload 1.0: the path the client sent, with a custom domain's base path (or
    /// the stage, on the execute-api domain).
    #[serde(borrow, default)]
    path: Option<Text<'a>>,
    #[serde(rename = "httpMethod", borrow, default)]
    http_method: Option<Text<'a>>,
    /// Payload 2.0: `http.method`.
    #[serde(borrow, default)]
    http: Option<HttpDescription<'a>>,
}

#[derive(Deserialize)]
struct HttpDescription<'a> {
    #[serde(borrow, default)]
    method: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct CertHolder<'a> {
    #[serde(rename = "clientCert", borrow, default)]
    client_cert: Option<ClientCert<'a>>,
}

#[derive(Deserialize)]
struct ClientCert<'a> {
    #[serde(rename = "clientCertPem", borrow, default)]
    pem: Option<Text<'a>>,
}

/// What the request context gives: the client certificate, the method, the domain name and
/// the path.
struct Described<'a> {
    client_cert: Option<Cow<'a, str>>,
    method: Option<Cow<'a, str>>,
    domain: Option<Cow<'a, str>>,
    path: Option<Cow<'a, str>>,
}

impl<'a> RequestContext<'a> {
    /// Payload 2.0's: the PEM in `authentication`, the method in `http`, the path is the
    /// event's `rawPath`. REST's and 1.0's: the PEM in `identity`, `httpMethod`, `path`.
    fn describe(ctx: Option<Self>, v2: bool, raw_path: Option<Text<'a>>) -> Described<'a> {
        let Some(c) = ctx else {
            return Described {
                client_cert: None,
                method: None,
                domain: None,
                path: raw_path.filter(|_| v2).map(|t| t.0),
            };
        };
        let pem = |h: Option<CertHolder<'a>>| h?.client_cert?.pem.map(|t| t.0);
        if v2 {
            Described {
                client_cert: pem(c.authentication),
                method: c.http.and_then(|h| h.method).map(|t| t.0),
                domain: c.domain_name.map(|t| t.0),
                path: raw_path.map(|t| t.0),
            }
        } else {
            Described {
                client_cert: pem(c.identity),
                method: c.http_method.map(|t| t.0),
                domain: c.domain_name.map(|t| t.0),
                path: c.path.map(|t| t.0),
            }
        }
    }
}

/// A header map as API Gateway writes it: `headers` maps a name to a string, and
/// `multiValueHeaders` (`MULTI`) maps it to a list of strings; null counts as absent, any
/// other shape is a bad event. Kept as a flat list of pairs, since names are compared
/// case-insensitively and a name may repeat.
struct Headers<'a, const MULTI: bool = false>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

/// `identitySource`: a list in payload 2.0, a string in HTTP APIs' payload 1.0.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdentitySource<'a> {
    One(#[serde(borrow)] Text<'a>),
    Many(#[serde(borrow)] Vec<Option<Text<'a>>>),
}

impl<'a> IdentitySource<'a> {
    fn into_values(self) -> Vec<Cow<'a, str>> {
        match self {
            IdentitySource::One(t) => vec![t.0],
            IdentitySource::Many(v) => v.into_iter().flatten().map(|t| t.0).collect(),
        }
    }
}

/// One header's value (or, with `MULTI`, values).
struct Values<'a, const MULTI: bool>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a, const MULTI: bool> Deserialize<'de> for Values<'a, MULTI> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        struct V<'a, const MULTI: bool>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a, const MULTI: bool> serde::de::Visitor<'de> for V<'a, MULTI> {
            type Value = Values<'a, MULTI>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(if MULTI {
                    "a list of strings or null"
                } else {
                    "a string or null"
                })
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
                match MULTI {
                    true => Err(E::custom("a multi-value header must be a list")),
                    false => Ok(Values(vec![Cow::Borrowed(v)])),
                }
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
                match MULTI {
                    true => Err(E::custom("a multi-value header must be a list")),
                    false => Ok(Values(vec![Cow::Owned(v.to_owned())])),
                }
            }
            fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
                Ok(Values(Vec::new()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                if !MULTI {
                    return Err(A::Error::custom("a header value must be a string"));
                }
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Option<Text<'a>>>()? {
                    out.extend(v.map(|t| t.0));
                }
                Ok(Values(out))
            }
        }
        d.deserialize_any(V::<MULTI>(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a, const MULTI: bool> Deserialize<'de> for Headers<'a, MULTI> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, const MULTI: bool>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a, const MULTI: bool> serde::de::Visitor<'de> for V<'a, MULTI> {
            type Value = Headers<'a, MULTI>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of header names")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
                while let Some((Text(k), Values(vs))) =
                    map.next_entry::<Text<'a>, Values<'a, MULTI>>()?
                {
                    out.extend(vs.into_iter().map(|v| (k.clone(), v)));
                }
                Ok(Headers(out))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Headers(Vec::new()))
            }
        }
        d.deserialize_any(V::<MULTI>(std::marker::PhantomData))
    }
}

impl<'a, const MULTI: bool> Headers<'a, MULTI> {
    /// [`Headers::get`] on a map the event may not have.
    fn find(headers: Option<&Self>, name: &str) -> Result<Option<Cow<'a, str>>, Rejection> {
        headers.map_or(Ok(None), |h| h.get(name))
    }

    /// The value of `name` (ASCII case-insensitive). Present twice with different values
    /// is [`Rejection::Ambiguous`]: which one a proxy or API Gateway acted on is unknowable.
    fn get(&self, name: &str) -> Result<Option<Cow<'a, str>>, Rejection> {
        let mut found: Option<&Cow<'a, str>> = None;
        for (k, v) in &self.0 {
            if !k.eq_ignore_ascii_case(name) {
                continue;
            }
            match found {
                Some(f) if f != v => return Err(Rejection::Ambiguous),
                Some(_) => {}
                None => found = Some(v),
            }
        }
        Ok(found.cloned())
    }
}

/// The `Host` header, for an event without `requestContext.domainName` (API Gateway routed
/// the request by it, so it is the host the client called). Given twice: none.
fn host<'a>(headers: Option<&Headers<'a>>) -> Option<Cow<'a, str>> {
    Headers::find(headers, "host").ok().flatten()
}

/// A JSON error described without the event's text: serde_json's messages can quote a value
/// ("invalid type: string \"Bearer ...\""), and no log line may hold a header value.
fn json_error(e: &serde_json::Error) -> AuthorizeError {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax => "the event is not valid JSON",
        Category::Eof => "the event is cut short",
        Category::Data => "an event field has the wrong type or is given twice",
        Category::Io => "the event could not be read",
    };
    AuthorizeError::BadEvent(format!("{what} (line {}, column {})", e.line(), e.column()))
}

impl Authorizer<StaticMappings> {
    /// An authorizer with file mappings and the system clock, as `scopegate invoke` and the
    /// Lambda without a table use.
    ///
    /// # Errors
    /// [`InitError`] for unusable keys or mappings.
    pub fn from_config(config: &Config) -> Result<Self, InitError> {
        let mappings = StaticMappings::from_config(config)?;
        Self::new(config, mappings, Arc::new(SystemClock))
    }
}

impl<M: Mappings> Authorizer<M> {
    /// Builds the authorizer. Fetches nothing: call [`Authorizer::hydrate`] at cold start.
    ///
    /// # Errors
    /// [`InitError`] for an unusable JWKS file.
    pub fn new(config: &Config, mappings: M, clock: Arc<dyn Clock>) -> Result<Self, InitError> {
        let io = KeyIo {
            fetch: Arc::new(HttpFetcher::new(config.http_timeout)),
            clock,
            on_refetch: Arc::new(crate::metrics::jwks_refetch),
        };
        Self::with_io(config, mappings, io)
    }

    /// [`Authorizer::new`] with the identity provider's network, the clock and the refetch
    /// listener given: tests pass a counted fake network and a manual clock.
    ///
    /// # Errors
    /// [`InitError`] for an unusable JWKS file.
    pub fn with_io(config: &Config, mappings: M, io: KeyIo) -> Result<Self, InitError> {
        let clock = Arc::clone(&io.clock);
        let introspector = config.introspection.clone().map(Introspector::new);
        // A cached principal must not outlive a cached introspection answer, or a revocation
        // would go unseen for the longer of the two.
        let mut ttl = config.token_cache_ttl.as_secs();
        if let Some(i) = &introspector {
            ttl = ttl.min(i.cache_ttl());
        }
        let token_header = http::HeaderName::from_bytes(config.token_header.as_bytes())
            .unwrap_or(http::header::AUTHORIZATION);
        Ok(Self {
            verifier: Verifier::with_io(config, io)?,
            introspector,
            mappings,
            // Kept on second sight: a token seen once (most, behind API Gateway's own cache)
            // costs no memory and evicts nothing (`ttl_cache`).
            principals: TtlCache::admitting_on_second_sight(config.token_cache_entries, ttl),
            clock,
            token_header,
            response: config.response,
            context_claims: config.context_claims.clone(),
            deny_declared: {
                let all: Vec<crate::config::IssuerRules> = config
                    .issuers
                    .iter()
                    .map(|i| config.rules_for(&i.issuer))
                    .collect();
                let mut names = config.grant_claims.clone();
                names.extend(all.iter().flat_map(|r| r.grant_claims.iter().cloned()));
                names.sort_unstable();
                names.dedup();
                names.retain(|n| all.iter().all(|r| r.grant_claims.contains(n)));
                names
            },
            allow_declared: {
                let mut names: Vec<crate::claim::ClaimName> = config
                    .issuers
                    .iter()
                    .flat_map(|i| config.rules_for(&i.issuer).grant_claims)
                    .collect();
                names.sort_unstable();
                names.dedup();
                names
            },
            checked_version: std::sync::atomic::AtomicU64::new(u64::MAX),
            bound_mode: config.bound_mode,
            bound_kinds: config.bound_kinds,
            dpop_rules: dpop::Rules {
                algorithms: config.algorithms.iter().copied().collect(),
                max_age: config.dpop.max_age,
            },
            dpop_origin: config.dpop.origin.as_deref().map(Into::into),
            replay: ReplayGuard::in_container(config.dpop.max_age),
            usage_key_claim: config.usage_key_claim.clone(),
            max_token_bytes: config.max_token_bytes,
            policy_max_bytes: config.policy_max_bytes,
        })
    }

    /// Fetches every issuer's keys, so the first request does not wait for them. Failures
    /// are logged; keys are fetched again on demand.
    pub async fn hydrate(&self) {
        for e in self.verifier.hydrate().await {
            tracing::warn!(error = %e, "JWKS not loaded at start; will retry on demand");
        }
    }

    /// Puts `store` (the replay table) behind the in-container replay check of DPoP proofs.
    #[must_use]
    pub fn with_replay_store(mut self, store: Box<dyn ReplayStore>) -> Self {
        self.replay = ReplayGuard::with_store(store, self.dpop_rules.max_age);
        self
    }

    /// The verifier (for metrics and tests).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The mapping source.
    pub fn mappings(&self) -> &M {
        &self.mappings
    }

    /// Answers one event given as JSON, and logs the decision (never the token).
    ///
    /// # Errors
    /// [`AuthorizeError`]; `Unauthorized` for any token that is not valid.
    pub async fn handle(&self, event: &[u8]) -> Result<Response, AuthorizeError> {
        let started = crate::clock::Stopwatch::start();
        let result = self.decide(event).await;
        let micros = started.elapsed().as_micros() as u64;
        let outcome = match &result {
            Ok((_, Effect::Allow)) => Outcome::Allow,
            Ok((_, Effect::Deny)) => Outcome::Deny,
            Err(AuthorizeError::Unauthorized(why)) => Outcome::Unauthorized(why.refusal()),
            Err(_) => Outcome::Error,
        };
        crate::metrics::decision(outcome, micros, self.mappings.status());
        match &result {
            Ok((resp, effect)) => tracing::info!(
                principal = %resp.principal.id,
                decision = effect.as_str(),
                grants = resp.policy.grants,
                // How many claim values the token brought (never which: they are its text).
                claim_values = resp.principal.grants.len(),
                unbound = resp.unbound.as_deref(),
                context_left_out = resp.principal.context_left_out,
                latency_us = micros,
                "decision"
            ),
            // A 401 because the identity provider could not be asked is a fault of a
            // dependency, not a bad token: WARN, and its own metric (an alarm watches it).
            // `refusal` is one of the fixed names (graphable); `reason` says more, in words.
            Err(AuthorizeError::Unauthorized(
                reason @ (Rejection::Unavailable(_) | Rejection::ReplayUnavailable(_)),
            )) => {
                if matches!(reason, Rejection::ReplayUnavailable(_)) {
                    crate::metrics::dpop_replay_unavailable();
                } else {
                    crate::metrics::idp_unavailable();
                }
                tracing::warn!(
                    decision = "Unauthorized",
                    refusal = reason.refusal().as_str(),
                    %reason,
                    latency_us = micros,
                    "decision"
                )
            }
            Err(AuthorizeError::Unauthorized(reason)) => tracing::info!(
                decision = "Unauthorized",
                refusal = reason.refusal().as_str(),
                %reason,
                latency_us = micros,
                "decision"
            ),
            Err(e) => {
                tracing::error!(decision = "error", error = %e, latency_us = micros, "decision")
            }
        }
        result.map(|(r, _)| r)
    }

    /// [`Authorizer::handle`], serialized: exactly what the Lambda returns.
    ///
    /// # Errors
    /// As [`Authorizer::handle`].
    pub async fn handle_json(&self, event: &[u8]) -> Result<Vec<u8>, AuthorizeError> {
        let resp = self.handle(event).await?;
        Ok(serde_json::to_vec(&resp).expect("a Response is always serializable"))
    }

    async fn decide(&self, event: &[u8]) -> Result<(Response, Effect), AuthorizeError> {
        let req = self.parse_event(event)?;
        // The ARN's problem only: its path is the caller's text. An ARN API Gateway could not
        // have sent (a stage `*`, a method `get`) is a 500 that is not cached, never a policy.
        let arn = MethodArn::parse_for(&req.arn, req.kind).map_err(|e| {
            AuthorizeError::BadEvent(format!(
                "invalid {}: {}",
                match req.kind {
                    ApiKind::Rest => "methodArn",
                    ApiKind::Http => "routeArn",
                },
                e.problem
            ))
        })?;
        let raw = req.token.as_deref().ok_or(Rejection::Missing)?;
        let (scheme, token) = bearer::extract_with_scheme(raw, self.max_token_bytes)?;
        let principal = self.principal(token).await?;
        // Per request, after the token cache: the certificate and the proof are this
        // request's.
        match binding::required(
            principal.cnf.as_ref(),
            scheme,
            self.bound_mode,
            self.bound_kinds,
        )? {
            Need::Nothing => {}
            Need::Certificate(want) => {
                binding::check_certificate(want, req.client_cert.as_deref())?;
            }
            Need::Proof(jkt) => self.check_proof(&req, token, jkt).await?,
        }
        let snapshot = self
            .mappings
            .current()
            .await
            .map_err(AuthorizeError::MappingsUnavailable)?;
        let declared = snapshot.kind_of(arn.api());
        if declared != req.kind {
            return Err(AuthorizeError::KindMismatch {
                api: arn.api().to_owned(),
                declared,
                event: req.kind,
            });
        }
        if let Some(claim) = snapshot
            .deny_claims()
            .iter()
            .find(|c| !self.deny_declared.contains(c))
        {
            return Err(AuthorizeError::UndeclaredClaim {
                claim: claim.to_string(),
            });
        }
        let version = snapshot.version();
        if self
            .checked_version
            .swap(version, std::sync::atomic::Ordering::Relaxed)
            != version
        {
            for claim in snapshot
                .allow_claims()
                .iter()
                .filter(|c| !self.allow_declared.contains(c))
            {
                // Fails closed, but silently: the operator should hear of it.
                tracing::warn!(
                    %claim,
                    version,
                    "an Allow entry requires a claim that SCOPEGATE_GRANT_CLAIMS does not declare (nor any issuer's grant_claims in SCOPEGATE_PROVIDERS): it never applies"
                );
            }
        }
        let policy = snapshot.policy_for(
            principal
                .scopes
                .iter()
                .chain(&*principal.grants)
                .chain(&*principal.bindings)
                .map(|s| &**s),
            arn.api(),
            arn.stage(),
        );
        let effect = policy.evaluate(arn.as_str());
        let simple = req.simple.then_some(effect == Effect::Allow);
        let policy = match simple {
            Some(_) => policy,
            None => self.within_limit(policy, &principal, arn.as_str(), effect),
        };
        Ok((
            Response {
                unbound: unbound(snapshot.bound_claims(), &principal.bindings),
                principal,
                policy,
                simple,
            },
            effect,
        ))
    }

    /// The DPoP proof of `req` for `token`, bound to the key of thumbprint `jkt`: every check
    /// of RFC 9449 §4.3 ([`dpop::verify`]), then the replay check.
    async fn check_proof(
        &self,
        req: &Request<'_>,
        token: &str,
        jkt: &str,
    ) -> Result<(), Rejection> {
        let proof = match &req.dpop {
            ProofHeader::Absent => return Err(Rejection::DpopProofMissing),
            ProofHeader::Several => return Err(Rejection::DpopProof("several DPoP headers")),
            ProofHeader::One(p) => p,
        };
        let method = req
            .method
            .as_deref()
            .ok_or(Rejection::DpopProof("the event names no HTTP method"))?;
        let path = req
            .path
            .as_deref()
            .ok_or(Rejection::DpopProof("the event names no path"))?;
        let built;
        let origin = match (&self.dpop_origin, req.domain.as_deref()) {
            (Some(o), _) => &**o,
            (None, Some(domain)) => {
                // A bare host[:port] only: anything else (`?`, `/`, `@`, `#`) would move
                // where the URL's path starts. API Gateway's domainName always is one; the
                // Host header fallback is the client's.
                let host = domain.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']')
                });
                if domain.is_empty() || !host {
                    return Err(Rejection::DpopProof(
                        "the event's domain name is not a host",
                    ));
                }
                built = format!("https://{domain}");
                &built
            }
            (None, None) => {
                return Err(Rejection::DpopProof(
                    "the event names no domain: set SCOPEGATE_DPOP_ORIGIN",
                ))
            }
        };
        let now = self.clock.now();
        let target = dpop::Target {
            method,
            origin,
            path,
            // REST APIs pass the path as the client encoded it, HTTP APIs decoded.
            form: match req.kind {
                ApiKind::Rest => dpop::PathForm::Encoded,
                ApiKind::Http => dpop::PathForm::Decoded,
            },
        };
        let checked = dpop::verify(proof, token, jkt, target, now, self.dpop_rules)?;
        self.replay.first_use(&checked, now).await
    }

    /// `policy`, or when the answer carrying it would be over `policy_max_bytes`, a policy
    /// for the request alone.
    ///
    /// API Gateway's quota on a Lambda authorizer's result is 8 KB, not adjustable (AWS's
    /// quota list: "AWS Lambda authorizer result size"); past it the request fails. A token
    /// whose scopes grant more than fits gets the decision for this request, exactly: an
    /// Allow of its methodArn alone, or the deny-all policy. Never more than the mappings
    /// grant, but API Gateway caches the answer for the token, so its other routes are
    /// denied until the TTL ends; the warning says so. A methodArn holding an IAM wildcard
    /// (`*`, `?` are legal in a path) cannot be allowed alone, so it is denied. The same
    /// for a policy with a resource ARN longer than API Gateway takes (512 characters).
    fn within_limit(
        &self,
        policy: Arc<CompiledPolicy>,
        principal: &Arc<Principal>,
        arn: &str,
        effect: Effect,
    ) -> Arc<CompiledPolicy> {
        // A bound first, so that the usual answer is not serialized twice: a string may
        // grow six times when escaped (`\u001f`), and the keys and braces take under 128.
        let escaped = |s: &str| 6 * s.len();
        let bound = 128
            + policy.json.get().len()
            + principal.context.get().len()
            + escaped(&principal.id)
            + principal.usage_key.as_deref().map_or(0, escaped);
        let long = policy.longest_resource > crate::policy::MAX_RESOURCE_ARN_LEN;
        if bound <= self.policy_max_bytes && !long {
            return policy;
        }
        let bytes = answer_size(&Response {
            unbound: None,
            principal: Arc::clone(principal),
            policy: Arc::clone(&policy),
            simple: None,
        });
        if bytes <= self.policy_max_bytes && !long {
            return policy;
        }
        let narrowed = effect == Effect::Allow
            && !arn.contains(['*', '?'])
            && arn.len() <= crate::policy::MAX_RESOURCE_ARN_LEN;
        tracing::warn!(
            bytes,
            limit = self.policy_max_bytes,
            grants = policy.grants,
            narrowed_to = if narrowed { "this request" } else { "deny-all" },
            "the answer is over API Gateway's limits (its size, or a resource ARN over 512 characters): answered for this request alone, so API Gateway's cached answer denies the token's other routes until it expires"
        );
        crate::metrics::oversized();
        Arc::new(if narrowed {
            CompiledPolicy::new(crate::policy::build([(Effect::Allow, arn)]))
        } else {
            CompiledPolicy::deny_all()
        })
    }

    /// The verified principal for `token`: from the cache, or verified now and cached.
    async fn principal(&self, token: &str) -> Result<Arc<Principal>, Rejection> {
        let now = self.clock.now();
        if let Some(p) = self.principals.get(token, now) {
            return Ok(p);
        }
        let claims = match &self.introspector {
            // Without introspection every token must be a JWT; the verifier says if it is not,
            // so the token is not scanned an extra time.
            None => self.verifier.verify(token, now).await?,
            Some(i) if !jws::looks_like_jwt(token) => {
                i.introspect(&self.verifier, token, now).await?
            }
            Some(i) => {
                let mut claims = self.verifier.verify(token, now).await?;
                if i.mode() == IntrospectMode::Always {
                    let answer = i.introspect(&self.verifier, token, now).await?;
                    // RFC 8705 §3.2: the provider may state the binding in its answer only.
                    claims.cnf = binding::merge(claims.cnf.take(), answer.cnf)?;
                }
                claims
            }
        };
        let principal = Arc::new(self.build_principal(claims)?);
        self.principals
            .insert(token, Arc::clone(&principal), now, principal.exp);
        Ok(principal)
    }

    fn build_principal(&self, claims: Claims) -> Result<Principal, Rejection> {
        let c = &claims;
        let id: Box<str> = c.principal().ok_or(Rejection::NoPrincipal)?.into();
        let mut extra: Vec<(&str, &str)> = Vec::with_capacity(self.context_claims.len());
        let mut left_out: u16 = 0;
        for cc in &self.context_claims {
            let value = c
                .extra(cc.claim.top_level())
                .and_then(|top| cc.claim.within(top));
            match value {
                None => {}
                Some(Value::String(v)) if !v.is_empty() && v.len() <= MAX_CONTEXT_VALUE => {
                    extra.push((&cc.key, v));
                }
                // Left out whole, never cut: a cut tenant id can name another tenant.
                Some(_) => left_out = left_out.saturating_add(1),
            }
        }
        let context = Context {
            claims: c,
            scope: c.scopes.join(" "),
            extra: &extra,
        };
        let usage_key = self
            .usage_key_claim
            .as_deref()
            .and_then(|k| c.extra(k))
            .and_then(|v| v.as_str())
            .map(Into::into);
        Ok(Principal {
            id,
            context: serde_json::value::to_raw_value(&context)
                .expect("the context is strings, numbers and booleans"),
            usage_key,
            exp: c.exp.unwrap_or(0),
            cnf: claims.cnf,
            scopes: claims.scopes.into_boxed_slice(),
            grants: claims.grants.into_boxed_slice(),
            bindings: claims.bindings.into_boxed_slice(),
            context_left_out: left_out,
        })
    }

    fn parse_event<'e>(&self, event: &'e [u8]) -> Result<Request<'e>, AuthorizeError> {
        let e: Event<'e> = serde_json::from_slice(event).map_err(|e| json_error(&e))?;
        let name = self.token_header.as_str();
        let text = |t: Option<Text<'e>>| t.map(|t| t.0);
        if e.version.as_ref().map(|v| &*v.0) == Some("2.0") {
            // API Gateway caches the answer under the identity sources, so the token checked
            // must be one of them: the configured header when it is among them (or when the
            // event names none), else the first identity source (a query string or context
            // value the route names). A header that is not among them is refused: an answer
            // for it would be cached under a value that was never checked.
            let sources = match e.identity_source {
                None => Vec::new(),
                Some(s @ IdentitySource::Many(_)) => s.into_values(),
                Some(IdentitySource::One(_)) => {
                    return Err(AuthorizeError::BadEvent(
                        "identitySource of a payload 2.0 event must be a list".into(),
                    ))
                }
            };
            let token = match Headers::find(e.headers.as_ref(), name)? {
                Some(h) if sources.is_empty() || sources.contains(&h) => Some(h),
                Some(_) => return Err(Rejection::Ambiguous.into()),
                None => sources.into_iter().next(),
            };
            let arn = text(e.route_arn).ok_or_else(|| {
                AuthorizeError::BadEvent("HTTP API event without routeArn".into())
            })?;
            let mut d = RequestContext::describe(e.request_context, true, e.raw_path);
            d.domain = d.domain.or_else(|| host(e.headers.as_ref()));
            return Ok(Request {
                token,
                client_cert: d.client_cert,
                dpop: ProofHeader::find(e.headers.as_ref(), None),
                method: d.method,
                domain: d.domain,
                path: d.path,
                arn,
                kind: ApiKind::Http,
                simple: self.response == ResponseMode::Simple,
            });
        }
        // REST APIs send no `version`; an HTTP API sends `1.0` when its authorizer is set to
        // that payload format ("for compatibility with REST APIs"), in REST's shape. Its
        // requests are still an HTTP API's (an `ANY` route, `x/` routed on its own), so the
        // HTTP rules apply: reading it as REST granted the REST slash twins and lost the HTTP
        // slash Denies.
        let kind = match e.version.as_ref().map(|v| &*v.0) {
            None => ApiKind::Rest,
            Some("1.0") if e.kind.as_ref().map(|k| &*k.0) == Some("REQUEST") => ApiKind::Http,
            Some("1.0") => {
                return Err(AuthorizeError::BadEvent(
                    "a payload 1.0 event is an HTTP API's, which sends only REQUEST events".into(),
                ))
            }
            Some(_) => {
                return Err(AuthorizeError::BadEvent(
                    "unknown payload version; expected none (REST), 1.0 or 2.0 (HTTP API)".into(),
                ))
            }
        };
        let (token, what) = match e.kind.as_ref().map(|k| &*k.0) {
            Some("TOKEN") => (text(e.authorization_token), "TOKEN event without methodArn"),
            Some("REQUEST") => {
                // `headers` keeps one value per name; `multiValueHeaders` keeps them all. Two
                // different token headers in one request are refused, not picked from.
                let one = Headers::find(e.headers.as_ref(), name)?;
                let token = match (one, Headers::find(e.multi_value_headers.as_ref(), name)?) {
                    (Some(one), Some(all)) if one != all => return Err(Rejection::Ambiguous.into()),
                    (one, all) => one.or(all),
                };
                // An HTTP API caches the answer under its identity sources (payload 1.0 joins
                // their values with commas): as for 2.0, a token header that is not among them
                // is refused, since the answer would be cached under a value never checked.
                if kind == ApiKind::Http {
                    match (&token, &e.identity_source) {
                        (_, Some(IdentitySource::Many(_))) => {
                            return Err(AuthorizeError::BadEvent(
                                "identitySource of a payload 1.0 event must be a string".into(),
                            ))
                        }
                        (Some(t), Some(IdentitySource::One(sources)))
                            if !sources.0.split(',').any(|s| s == t) =>
                        {
                            return Err(Rejection::Ambiguous.into());
                        }
                        _ => {}
                    }
                }
                (token, "REQUEST event without methodArn")
            }
            _ => {
                return Err(AuthorizeError::BadEvent(
                    "unknown event type; expected TOKEN, REQUEST or an HTTP API 2.0 event".into(),
                ))
            }
        };
        let dpop = ProofHeader::find(e.headers.as_ref(), e.multi_value_headers.as_ref());
        let mut d = RequestContext::describe(e.request_context, false, None);
        // REST events give the method at the top too; the request context's is preferred
        // (it is what payload 1.0 has), the top one taken when it is all there is.
        d.method = d.method.or(text(e.http_method));
        d.domain = d.domain.or_else(|| host(e.headers.as_ref()));
        // Payload 1.0's path is the top-level one, decoded by API Gateway as 2.0's rawPath is
        // (REST's is the resource path; its request context holds the one the client sent).
        if kind == ApiKind::Http {
            d.path = text(e.path);
        }
        Ok(Request {
            token,
            client_cert: d.client_cert,
            dpop,
            method: d.method,
            domain: d.domain,
            path: d.path,
            arn: text(e.method_arn).ok_or_else(|| AuthorizeError::BadEvent(what.into()))?,
            kind,
            // Simple responses are payload 2.0's only: a 1.0 event is answered with a policy.
            simple: false,
        })
    }
}

/// The authorizer context: `sub`, `scope` (space-joined), `client_id`, then the configured
/// claims; serialized once per verified token, straight from the claims.
struct Context<'a> {
    claims: &'a Claims,
    scope: String,
    /// `SCOPEGATE_CONTEXT_CLAIMS` keys and the token's values, checked: distinct keys, none
    /// of the fixed ones (config refuses both).
    extra: &'a [(&'a str, &'a str)],
}

impl Serialize for Context<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.claims;
        let mut m = s.serialize_map(None)?;
        if let Some(sub) = &c.sub {
            m.serialize_entry("sub", sub)?;
        }
        m.serialize_entry("scope", &self.scope)?;
        if let Some(cid) = &c.client_id {
            m.serialize_entry("client_id", cid)?;
        }
        for (key, value) in self.extra {
            m.serialize_entry(key, value)?;
        }
        m.end()
    }
}

impl From<AuthorizeError> for lambda_runtime::Diagnostic {
    fn from(e: AuthorizeError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.error_message(),
        }
    }
}

/// The JSON line `scopegate invoke` writes for an error: what the Lambda runtime reports.
pub fn error_json(e: &AuthorizeError) -> String {
    serde_json::json!({ "errorType": e.error_type(), "errorMessage": e.error_message() })
        .to_string()
}

#[cfg(test)]
mod token_matrix;

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::{IssuerConfig, JwksSource};
    use crate::mapping::Snapshot;
    use crate::policy::{evaluate, Policy};
    use crate::token::mint::SigningKey;
    use crate::token::Alg;

    const ISS: &str = "https://idp.example.com";
    const NOW: u64 = 1_800_000_000;
    const ARN: &str = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2/dev/GET/my-resource";
    const TOKEN: &[u8] = include_bytes!("../../tests/fixtures/events/token.json");
    const REQUEST: &[u8] = include_bytes!("../../tests/fixtures/events/request.json");
    const HTTP_V2: &[u8] = include_bytes!("../../tests/fixtures/events/http_api_v2.json");
    const HTTP_V1: &[u8] = include_bytes!("../../tests/fixtures/events/http_api_v1.json");

    struct Fixture {
        key: SigningKey,
        _file: tempfile::NamedTempFile,
        config: Config,
    }

    fn fixture() -> Fixture {
        let key = SigningKey::generate(Alg::ES256, "k1");
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(SigningKey::jwks(&[&key]).to_string().as_bytes())
            .unwrap();
        let config = Config::new(vec![IssuerConfig {
            issuer: ISS.into(),
            jwks: JwksSource::File(file.path().to_owned()),
        }]);
        Fixture {
            key,
            _file: file,
            config,
        }
    }

    impl Fixture {
        fn token(&self, extra: Value) -> String {
            let mut c = json!({"iss": ISS, "sub": "user-1", "client_id": "app", "scope": "email",
                               "iat": NOW, "exp": NOW + 300});
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            self.key.sign(&c)
        }

        /// The answer to `event` from the seed mappings, with the seed's API declared the
        /// kind of API the event's shape says (an HTTP API's events carry a `version`).
        fn answer(&self, event: &[u8], token: &str) -> Result<Value, AuthorizeError> {
            let http = serde_json::from_slice::<Value>(event)
                .ok()
                .is_some_and(|e| e.get("version").is_some());
            let kind = if http { ApiKind::Http } else { ApiKind::Rest };
            self.answer_as(event, token, kind)
        }

        /// An authorizer over the seed mappings, their API declared `kind`.
        fn authorizer(&self, kind: ApiKind) -> Authorizer {
            let seed = StaticMappings::from_config(&self.config).unwrap().0;
            let api = crate::policy::ApiArn::parse(&ARN[..ARN.find('/').unwrap()]).unwrap();
            let snapshot = Snapshot::new(seed.version(), seed.entries().to_vec())
                .with_kinds([(api, kind)].into_iter().collect());
            Authorizer::new(
                &self.config,
                StaticMappings(Arc::new(snapshot)),
                Arc::new(ManualClock::new(NOW)),
            )
            .unwrap()
        }

        /// The answer of `a` to `event`.
        fn answer_with(a: &Authorizer, event: &[u8]) -> Result<Value, AuthorizeError> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let bytes = rt.block_on(a.handle_json(event))?;
            Ok(serde_json::from_slice(&bytes).unwrap())
        }

        /// The answer to `event` from the seed mappings, their API declared `kind`.
        fn answer_as(
            &self,
            event: &[u8],
            token: &str,
            kind: ApiKind,
        ) -> Result<Value, AuthorizeError> {
            let event = String::from_utf8(event.to_vec())
                .unwrap()
                .replace("__TOKEN__", token);
            Self::answer_with(&self.authorizer(kind), event.as_bytes())
        }
    }

    fn allows(answer: &Value) -> bool {
        let p: Policy = serde_json::from_value(answer["policyDocument"].clone()).unwrap();
        evaluate(&p, ARN) == Effect::Allow
    }

    /// The verified-token cache keeps a token the second time it is verified, and serves it
    /// from then on: a token seen once costs the cache nothing (ttl_cache's doorkeeper).
    #[tokio::test]
    async fn a_token_is_cached_on_its_second_sight_and_served_after() {
        let f = fixture();
        let seed = StaticMappings::from_config(&f.config).unwrap();
        let a = Authorizer::new(&f.config, seed, Arc::new(ManualClock::new(NOW))).unwrap();
        let t = f.token(json!({}));
        let first = a.principal(&t).await.unwrap();
        let second = a.principal(&t).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &second), "seen once: verified again");
        let third = a.principal(&t).await.unwrap();
        assert!(
            Arc::ptr_eq(&second, &third),
            "seen twice: served from the cache"
        );
        // Distinct tokens seen once do not push it out.
        for i in 0..100 {
            a.principal(&f.token(json!({"jti": i}))).await.unwrap();
        }
        assert!(Arc::ptr_eq(&third, &a.principal(&t).await.unwrap()));
    }

    /// `event` with its token sent with the `DPoP` scheme (or kept `Bearer`), and `proof` in a
    /// `DPoP` header (in `multiValueHeaders` too, where the event has them).
    fn with_dpop(event: &[u8], proof: Option<&str>, dpop_scheme: bool) -> Vec<u8> {
        let text = String::from_utf8(event.to_vec()).unwrap();
        let text = if dpop_scheme {
            text.replace("Bearer __TOKEN__", "DPoP __TOKEN__")
        } else {
            text
        };
        let mut e: Value = serde_json::from_str(&text).unwrap();
        if let Some(p) = proof {
            e["headers"]["DPoP"] = json!(p);
            if e.get("multiValueHeaders").is_some() {
                e["multiValueHeaders"]["DPoP"] = json!([p]);
            }
        }
        serde_json::to_vec(&e).unwrap()
    }

    /// `event` with two `DPoP` headers, as each payload carries them: a list in
    /// `multiValueHeaders`, two names differing in case in `headers`, or (payload 2.0) the
    /// values joined with a comma.
    fn with_two_dpop(event: &[u8], a: &str, b: &str) -> Vec<u8> {
        let mut e: Value = serde_json::from_slice(&with_dpop(event, Some(a), true)).unwrap();
        if e.get("multiValueHeaders").is_some() {
            e["multiValueHeaders"]["DPoP"] = json!([a, b]);
        } else if e.get("version") == Some(&json!("2.0")) {
            e["headers"]["DPoP"] = json!(format!("{a},{b}"));
        } else {
            e["headers"]["dpop"] = json!(b);
        }
        serde_json::to_vec(&e).unwrap()
    }

    /// `event` with `pem` as the client certificate where API Gateway puts it: under
    /// `requestContext.authentication` in payload 2.0, `requestContext.identity` otherwise.
    fn with_client_cert(event: &[u8], pem: &str) -> Vec<u8> {
        let mut e: Value = serde_json::from_slice(event).unwrap();
        let holder = if e.get("version") == Some(&json!("2.0")) {
            "authentication"
        } else {
            "identity"
        };
        e["requestContext"][holder]["clientCert"] = json!({
            "clientCertPem": pem, "subjectDN": "CN=scopegate-test-client",
            "issuerDN": "CN=scopegate-test-client", "serialNumber": "01",
            "validity": {"notBefore": "Jan 1 00:00:00 2026 GMT", "notAfter": "Jan 1 00:00:00 2126 GMT"}
        });
        serde_json::to_vec(&e).unwrap()
    }

    /// RFC 8705 §3: a certificate-bound token is good only with its certificate, which a
    /// REQUEST or HTTP API event carries and a TOKEN event never does; a binding scopegate
    /// cannot check (an unknown cnf member) is refused, never taken as a bearer token.
    #[test]
    fn a_certificate_bound_token_needs_its_certificate_in_the_request() {
        const CLIENT: &str = include_str!("../../tests/fixtures/certs/client.pem");
        const OTHER: &str = include_str!("../../tests/fixtures/certs/other.pem");
        let x5t = include_str!("../../tests/fixtures/certs/client.x5t").trim();
        let f = fixture();
        let bound = f.token(json!({"cnf": {"x5t#S256": x5t}}));
        let plain = f.token(json!({}));
        for event in [REQUEST, HTTP_V2, HTTP_V1] {
            let mine = with_client_cert(event, CLIENT);
            assert!(allows(&f.answer(&mine, &bound).unwrap()));
            assert!(
                allows(&f.answer(&mine, &plain).unwrap()),
                "unbound: any request"
            );
            let theirs = with_client_cert(event, OTHER);
            assert!(matches!(
                f.answer(&theirs, &bound),
                Err(AuthorizeError::Unauthorized(Rejection::CertificateMismatch))
            ));
            assert!(matches!(
                f.answer(&with_client_cert(event, "garbage"), &bound),
                Err(AuthorizeError::Unauthorized(Rejection::CertificateMismatch))
            ));
            assert!(matches!(
                f.answer(event, &bound),
                Err(AuthorizeError::Unauthorized(Rejection::CertificateMissing))
            ));
        }
        // A certificate in the wrong place for the payload is no certificate.
        let misplaced = {
            let mut e: Value = serde_json::from_slice(HTTP_V2).unwrap();
            e["requestContext"]["identity"]["clientCert"] = json!({"clientCertPem": CLIENT});
            serde_json::to_vec(&e).unwrap()
        };
        assert!(matches!(
            f.answer(&misplaced, &bound),
            Err(AuthorizeError::Unauthorized(Rejection::CertificateMissing))
        ));
        assert!(matches!(
            f.answer(TOKEN, &bound),
            Err(AuthorizeError::Unauthorized(Rejection::CertificateMissing))
        ));
        let unknown = f.token(json!({"cnf": {"kid": "k1"}}));
        assert!(matches!(
            f.answer(&with_client_cert(REQUEST, CLIENT), &unknown),
            Err(AuthorizeError::Unauthorized(Rejection::BindingUnsupported))
        ));
    }

    /// RFC 9449: a DPoP-bound token is good only with the `DPoP` scheme and a proof for this
    /// request, once; every event shape that can carry the header (REST REQUEST, HTTP API
    /// payload 1.0 and 2.0) is read for it, a TOKEN event never.
    #[test]
    fn a_dpop_bound_token_needs_a_fresh_proof_for_its_request() {
        let f = fixture();
        let client = SigningKey::generate(Alg::ES256, "client");
        let bound = f.token(json!({"cnf": {"jkt": client.jkt()}}));
        let plain = f.token(json!({}));
        let proof = |jti: &str, htu: &str, token: &str| {
            client.dpop_proof("GET", htu, NOW, jti, Some(&dpop::ath(token)))
        };
        let url = "https://rz8w6b1ik2.execute-api.us-east-1.amazonaws.com/dev/my-resource";
        for event in [REQUEST, HTTP_V2, HTTP_V1] {
            let dpop = |p: &str| with_dpop(event, Some(p), true);
            let a = f.authorizer(if event == REQUEST {
                ApiKind::Rest
            } else {
                ApiKind::Http
            });
            let ask = |e: Vec<u8>, t: &str| {
                let e = String::from_utf8(e).unwrap().replace("__TOKEN__", t);
                Fixture::answer_with(&a, e.as_bytes())
            };
            assert!(allows(
                &ask(dpop(&proof("1", url, &bound)), &bound).unwrap()
            ));
            // The same proof again: a replay.
            assert!(matches!(
                ask(dpop(&proof("1", url, &bound)), &bound),
                Err(AuthorizeError::Unauthorized(Rejection::DpopReplayed))
            ));
            // A fresh proof passes; a proof for another URL or token does not.
            assert!(allows(
                &ask(dpop(&proof("2", url, &bound)), &bound).unwrap()
            ));
            for wrong in [
                proof("3", &url.replace("my-resource", "other"), &bound),
                proof("4", url, &plain),
            ] {
                assert!(matches!(
                    ask(dpop(&wrong), &bound),
                    Err(AuthorizeError::Unauthorized(Rejection::DpopProof(_)))
                ));
            }
            // No proof; two proofs; the Bearer scheme for a bound token, DPoP for a plain one.
            assert!(matches!(
                ask(with_dpop(event, None, true), &bound),
                Err(AuthorizeError::Unauthorized(Rejection::DpopProofMissing))
            ));
            let two = with_two_dpop(event, &proof("5", url, &bound), &proof("6", url, &bound));
            assert!(matches!(
                ask(two, &bound),
                Err(AuthorizeError::Unauthorized(Rejection::DpopProof(_)))
            ));
            assert!(matches!(
                ask(
                    with_dpop(event, Some(&proof("7", url, &bound)), false),
                    &bound
                ),
                Err(AuthorizeError::Unauthorized(Rejection::WrongScheme(_)))
            ));
            assert!(matches!(
                ask(dpop(&proof("8", url, &plain)), &plain),
                Err(AuthorizeError::Unauthorized(Rejection::WrongScheme(_)))
            ));
            // A plain bearer token is still a bearer token beside a DPoP header.
            let beside = with_dpop(event, Some(&proof("9", url, &plain)), false);
            assert!(allows(&ask(beside, &plain).unwrap()));
        }
        // REST events without domainName fall back to the Host header, which must then be a
        // bare host: `api.example.com?` would turn the whole path into a query, so that a
        // proof for `/` passed for every path.
        let mut e: Value = serde_json::from_slice(&with_dpop(
            REQUEST,
            Some(&proof("h", "https://api.example.com/", &bound)),
            true,
        ))
        .unwrap();
        e["headers"]["Host"] = json!("api.example.com?");
        let e = e.to_string().replace("__TOKEN__", &bound);
        assert!(matches!(
            Fixture::answer_with(&f.authorizer(ApiKind::Rest), e.as_bytes()),
            Err(AuthorizeError::Unauthorized(Rejection::DpopProof(_)))
        ));
        assert!(matches!(
            f.answer(TOKEN, &bound),
            Err(AuthorizeError::Unauthorized(Rejection::WrongScheme(_)))
        ));
        let dpop_token = String::from_utf8(TOKEN.to_vec())
            .unwrap()
            .replace("Bearer", "DPoP");
        assert!(matches!(
            f.answer(dpop_token.as_bytes(), &bound),
            Err(AuthorizeError::Unauthorized(Rejection::DpopProofMissing))
        ));
    }

    /// RFC 8705 §3.2: with `SCOPEGATE_INTROSPECT=always`, a JWT that does not bind itself is
    /// bound by the introspection answer's `cnf`, and one that binds itself to something
    /// else than the answer says is refused.
    #[test]
    fn an_introspection_answer_binds_the_jwt_it_describes() {
        use crate::config::{IntrospectMode, IntrospectionConfig};
        use crate::token::fake::FakeIdp;
        const CLIENT: &str = include_str!("../../tests/fixtures/certs/client.pem");
        let x5t = include_str!("../../tests/fixtures/certs/client.x5t").trim();
        let f = fixture();
        let idp = Arc::new(FakeIdp::new(SigningKey::jwks(&[&f.key])));
        let mut config = Config::new(vec![IssuerConfig {
            issuer: ISS.into(),
            jwks: JwksSource::Url("https://idp.example.com/jwks".into()),
        }]);
        config.introspection = Some(IntrospectionConfig {
            mode: IntrospectMode::Always,
            url: Some("https://idp.example.com/introspect".into()),
            client_id: "c".into(),
            client_secret: "s".into(),
            cache_ttl: std::time::Duration::from_secs(30),
        });
        let authorizer = || {
            let io = KeyIo {
                fetch: Arc::clone(&idp) as Arc<dyn crate::token::fetch::Fetch>,
                clock: Arc::new(ManualClock::new(NOW)),
                on_refetch: Arc::new(|_: &str, _: bool| {}),
            };
            Authorizer::with_io(&config, StaticMappings::from_config(&config).unwrap(), io).unwrap()
        };
        *idp.form_answer.lock().unwrap() = json!({"active": true, "iss": ISS, "sub": "user-1",
            "scope": "email", "exp": NOW + 300, "cnf": {"x5t#S256": x5t}})
        .to_string()
        .into_bytes();
        let plain = f.token(json!({}));
        let ask = |event: &[u8], token: &str| {
            let event = String::from_utf8(event.to_vec())
                .unwrap()
                .replace("__TOKEN__", token);
            Fixture::answer_with(&authorizer(), event.as_bytes())
        };
        assert!(allows(
            &ask(&with_client_cert(REQUEST, CLIENT), &plain).unwrap()
        ));
        assert!(matches!(
            ask(REQUEST, &plain),
            Err(AuthorizeError::Unauthorized(Rejection::CertificateMissing))
        ));
        let elsewhere = f.token(json!({"cnf": {"x5t#S256": "another"}}));
        assert!(matches!(
            ask(&with_client_cert(REQUEST, CLIENT), &elsewhere),
            Err(AuthorizeError::Unauthorized(Rejection::BindingUnsupported))
        ));
    }

    /// REST passes the path the client sent still encoded (`requestContext.path`), HTTP APIs
    /// decoded (payload 1.0's `path`, 2.0's `rawPath`): a proof for `/dev/a%3Fb` names the
    /// request in each, and one for `/dev/a` (what `?b` would cut the path to) in none.
    #[test]
    fn a_proof_names_the_path_in_the_form_each_payload_gives_it() {
        let f = fixture();
        let client = SigningKey::generate(Alg::ES256, "client");
        let token = f.token(json!({"cnf": {"jkt": client.jkt()}}));
        let ath = dpop::ath(&token);
        let origin = "https://rz8w6b1ik2.execute-api.us-east-1.amazonaws.com";
        let cases: [(&[u8], &[&str], &str); 3] = [
            (REQUEST, &["requestContext", "path"], "/dev/a%3Fb"),
            (HTTP_V1, &["path"], "/dev/a?b"),
            (HTTP_V2, &["rawPath"], "/dev/a?b"),
        ];
        for (i, (event, at, path)) in cases.into_iter().enumerate() {
            let a = f.authorizer(if event == REQUEST {
                ApiKind::Rest
            } else {
                ApiKind::Http
            });
            for (j, (htu, passes)) in [("/dev/a%3Fb", true), ("/dev/a", false)]
                .into_iter()
                .enumerate()
            {
                let proof = client.dpop_proof(
                    "GET",
                    &format!("{origin}{htu}"),
                    NOW,
                    &format!("{i}-{j}"),
                    Some(&ath),
                );
                let mut e: Value =
                    serde_json::from_slice(&with_dpop(event, Some(&proof), true)).unwrap();
                let mut slot = &mut e;
                for key in at {
                    slot = &mut slot[*key];
                }
                *slot = json!(path);
                let e = e.to_string().replace("__TOKEN__", &token);
                let got = Fixture::answer_with(&a, e.as_bytes());
                assert_eq!(
                    got.is_ok(),
                    passes,
                    "{path} in {at:?}, proof for {htu}: {got:?}"
                );
            }
        }
    }

    /// With `SCOPEGATE_BOUND_TOKENS=require` an unbound token is refused; a kind left out of
    /// `SCOPEGATE_BOUND_KINDS` refuses the tokens bound by it.
    #[test]
    fn the_bound_settings_require_and_leave_out() {
        const CLIENT: &str = include_str!("../../tests/fixtures/certs/client.pem");
        let x5t = include_str!("../../tests/fixtures/certs/client.x5t").trim();
        let mut f = fixture();
        let bound = f.token(json!({"cnf": {"x5t#S256": x5t}}));
        let plain = f.token(json!({}));
        let mine = with_client_cert(REQUEST, CLIENT);
        f.config.bound_mode = BoundMode::Require;
        assert!(allows(&f.answer(&mine, &bound).unwrap()));
        assert!(matches!(
            f.answer(&mine, &plain),
            Err(AuthorizeError::Unauthorized(Rejection::BindingRequired))
        ));
        f.config.bound_kinds.mtls = false;
        assert!(matches!(
            f.answer(&mine, &bound),
            Err(AuthorizeError::Unauthorized(Rejection::BindingKindOff(_)))
        ));
    }

    #[test]
    fn token_request_and_http_api_events() {
        let f = fixture();
        let t = f.token(json!({}));
        for event in [TOKEN, REQUEST, HTTP_V2, HTTP_V1] {
            let a = f.answer(event, &t).unwrap();
            assert!(allows(&a), "{a}");
            assert_eq!(a["principalId"], "user-1");
            assert_eq!(
                a["context"],
                json!({"sub": "user-1", "scope": "email", "client_id": "app"})
            );
        }
    }

    /// Issue 20 §5: API Gateway takes an authorizer's result up to 8 KB. A token granted
    /// more gets the decision for its request alone, never a larger answer and never more
    /// than the mappings grant.
    #[test]
    fn an_answer_over_the_size_limit_is_narrowed_to_the_request() {
        let f = fixture();
        let api = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2";
        let mut entries: Vec<crate::mapping::Mapping> = (0..300)
            .map(|i| {
                serde_json::from_value(json!({"api": api, "stage": "dev", "method": "GET",
                    "resource": format!("reports/quarterly-{i:04}/summary"), "scope": "email"}))
                .unwrap()
            })
            .collect();
        entries.push(
            serde_json::from_value(json!({"api": api, "stage": "dev", "method": "GET",
                "resource": "small", "scope": "profile"}))
            .unwrap(),
        );
        entries.push(
            serde_json::from_value(json!({"api": api, "stage": "dev", "method": "GET",
                "resource": "archive/*", "scope": "email"}))
            .unwrap(),
        );
        for (resource, scope) in [
            ("small".to_owned(), "phone"),
            (format!("long/{}", "x".repeat(480)), "phone"),
        ] {
            entries.push(
                serde_json::from_value(json!({"api": api, "stage": "dev", "method": "GET",
                    "resource": resource, "scope": scope}))
                .unwrap(),
            );
        }
        let a = Authorizer::new(
            &f.config,
            StaticMappings(Arc::new(Snapshot::new(1, entries))),
            Arc::new(ManualClock::new(NOW)),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ask = |scope: &str, path: &str| {
            let arn = format!("{api}/dev/GET/{path}");
            let event = json!({"type": "TOKEN", "methodArn": arn,
                "authorizationToken": format!("Bearer {}", f.token(json!({"scope": scope})))});
            let bytes = rt
                .block_on(a.handle_json(event.to_string().as_bytes()))
                .unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            let p: Policy = serde_json::from_value(v["policyDocument"].clone()).unwrap();
            (bytes.len(), p)
        };
        let (bytes, p) = ask("email", "reports/quarterly-0007/summary");
        assert!(bytes <= 8192, "{bytes} bytes");
        let arn = |path: &str| format!("{api}/dev/GET/{path}");
        assert_eq!(
            evaluate(&p, &arn("reports/quarterly-0007/summary")),
            Effect::Allow
        );
        // Narrowed: the token's other routes are not in this answer.
        assert_eq!(
            evaluate(&p, &arn("reports/quarterly-0008/summary")),
            Effect::Deny
        );
        assert_eq!(p.grant_count(), 1);
        // Not granted: the deny-all policy, however much else the token holds.
        let (_, p) = ask("email", "small");
        assert_eq!(p.grant_count(), 0);
        // A path holding an IAM wildcard cannot be allowed alone, though `archive/*`
        // grants it: denied (an Allow of it would reach every `archive/` path).
        let (_, p) = ask("email", "archive/a*");
        assert_eq!(p.grant_count(), 0);
        let (_, p) = ask("email", "archive/a");
        assert_eq!(evaluate(&p, &arn("archive/a")), Effect::Allow);
        // A resource ARN over 512 characters is refused by API Gateway: the policy holding
        // one is narrowed too, and the long route itself cannot be allowed alone.
        let long = format!("long/{}", "x".repeat(480));
        let (_, p) = ask("phone", "small");
        assert_eq!(evaluate(&p, &arn("small")), Effect::Allow);
        assert_eq!(p.grant_count(), 1, "narrowed: the long ARN is left out");
        let (_, p) = ask("phone", &long);
        assert_eq!(p.grant_count(), 0);
        // A policy that fits is the whole policy, as before.
        let (_, p) = ask("profile", "small");
        assert_eq!(evaluate(&p, &arn("small")), Effect::Allow);
        let (_, p) = ask("profile", "reports/quarterly-0007/summary");
        assert_eq!(
            evaluate(&p, &arn("small")),
            Effect::Allow,
            "the full policy"
        );
    }

    /// Issue 20 §1: the kind of API is declared with the mappings, and an event that cannot
    /// come from an API of that kind is refused (a 500 API Gateway does not cache), never
    /// decided by either kind's rules: an HTTP API's payload 1.0 looks like a REST event.
    #[test]
    fn an_event_of_the_other_kind_than_declared_is_refused() {
        let f = fixture();
        let t = f.token(json!({}));
        for (event, declared) in [
            (TOKEN, ApiKind::Http),
            (REQUEST, ApiKind::Http),
            (HTTP_V2, ApiKind::Rest),
            (HTTP_V1, ApiKind::Rest),
        ] {
            let err = f.answer_as(event, &t, declared).unwrap_err();
            assert!(
                matches!(err, AuthorizeError::KindMismatch { declared: d, .. } if d == declared),
                "{err:?}"
            );
            assert_eq!(err.error_type(), "KindMismatch");
            assert_ne!(err.error_message(), "Unauthorized");
            assert!(err.error_message().contains("rz8w6b1ik2"), "{err}");
        }
        // A bad token is still a 401 first: the refusal tells the caller nothing.
        let err = f.answer_as(HTTP_V2, "x.y.z", ApiKind::Rest).unwrap_err();
        assert!(matches!(err, AuthorizeError::Unauthorized(_)), "{err:?}");
    }

    /// Issue 21 §4: two issuers, each with its own audience, scope claim and grant claims
    /// (Okta's `groups` and `scope`; Entra ID's `roles` and `scp`): a token is read by its
    /// own issuer's rules only, and a Deny on a claim one issuer does not read fails closed.
    #[test]
    fn each_issuer_reads_its_tokens_by_its_own_rules() {
        const ENTRA: &str = "https://login.microsoftonline.com/t/v2.0";
        let f = fixture();
        let entra_key = SigningKey::generate(Alg::RS256, "e1");
        let mut entra_file = tempfile::NamedTempFile::new().unwrap();
        entra_file
            .write_all(SigningKey::jwks(&[&entra_key]).to_string().as_bytes())
            .unwrap();
        let mut config = Config::new(vec![
            IssuerConfig {
                issuer: ISS.into(),
                jwks: JwksSource::File(f._file.path().to_owned()),
            },
            IssuerConfig {
                issuer: ENTRA.into(),
                jwks: JwksSource::File(entra_file.path().to_owned()),
            },
        ]);
        config.audiences = vec!["api://default".into()];
        config.grant_claims = vec![crate::claim::ClaimName::new("groups").unwrap()];
        config.providers = crate::config::providers(
            Some(&format!(
                r#"[{{"issuer": "{ENTRA}", "audiences": ["api://orders"], "scope_claim": "scp",
                     "grant_claims": ["roles"]}}]"#
            )),
            &config.issuers,
        )
        .unwrap();
        let api = &ARN[..ARN.find('/').unwrap()];
        let path = &ARN[ARN.find("/GET/").unwrap() + 5..];
        let entries: Vec<crate::mapping::Mapping> = serde_json::from_value(json!([
            {"api": api, "stage": "*", "method": "GET", "resource": path, "scopes": [],
             "claims": {"groups": ["staff"]}},
            {"api": api, "stage": "*", "method": "GET", "resource": path, "scopes": [],
             "claims": {"roles": ["Orders.Read"]}},
            {"api": api, "stage": "*", "method": "GET", "resource": path, "scope": "orders:read"},
        ]))
        .unwrap();
        let a = Authorizer::new(
            &config,
            StaticMappings(Arc::new(Snapshot::new(1, entries.clone()))),
            Arc::new(ManualClock::new(NOW)),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let decide = |token: &str| -> Result<bool, AuthorizeError> {
            let event = String::from_utf8(TOKEN.to_vec())
                .unwrap()
                .replace("__TOKEN__", token);
            let answer = rt.block_on(a.handle_json(event.as_bytes()))?;
            Ok(allows(&serde_json::from_slice(&answer).unwrap()))
        };
        let okta = |extra: Value| {
            let mut c = json!({"iss": ISS, "sub": "u", "aud": "api://default", "iat": NOW,
                               "exp": NOW + 300});
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            f.key.sign(&c)
        };
        let entra = |extra: Value| {
            let mut c = json!({"iss": ENTRA, "sub": "u", "aud": "api://orders", "iat": NOW,
                               "exp": NOW + 300});
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            entra_key.sign(&c)
        };
        // Each issuer's grant claim, read from its own tokens only.
        assert!(decide(&okta(json!({"groups": ["staff"]}))).unwrap());
        assert!(!decide(&okta(json!({"roles": ["Orders.Read"]}))).unwrap());
        assert!(decide(&entra(json!({"roles": ["Orders.Read"]}))).unwrap());
        assert!(!decide(&entra(json!({"groups": ["staff"]}))).unwrap());
        // Each issuer's scope claim: Entra's `scp`; Okta's standard reading.
        assert!(decide(&entra(json!({"scp": "orders:read"}))).unwrap());
        assert!(!decide(&entra(json!({"scope": "orders:read"}))).unwrap());
        assert!(decide(&okta(json!({"scope": "orders:read"}))).unwrap());
        // Each issuer's audience: the other's is refused.
        let wrong = entra(json!({"aud": "api://default", "roles": ["Orders.Read"]}));
        assert!(matches!(
            decide(&wrong),
            Err(AuthorizeError::Unauthorized(Rejection::Audience))
        ));
        let wrong = okta(json!({"aud": "api://orders", "groups": ["staff"]}));
        assert!(matches!(
            decide(&wrong),
            Err(AuthorizeError::Unauthorized(Rejection::Audience))
        ));
        // A Deny on `groups`, which Entra's tokens are not read for: they would escape it,
        // so every answer fails closed.
        let mut with_deny = entries;
        with_deny.push(
            serde_json::from_value(json!({"api": api, "stage": "*", "method": "GET",
                "resource": path, "scopes": [], "claims": {"groups": ["contractors"]},
                "effect": "Deny"}))
            .unwrap(),
        );
        let a = Authorizer::new(
            &config,
            StaticMappings(Arc::new(Snapshot::new(2, with_deny))),
            Arc::new(ManualClock::new(NOW)),
        )
        .unwrap();
        let event = String::from_utf8(TOKEN.to_vec())
            .unwrap()
            .replace("__TOKEN__", &okta(json!({"groups": ["staff"]})));
        let err = rt.block_on(a.handle_json(event.as_bytes())).unwrap_err();
        assert_eq!(err.error_type(), "UndeclaredClaim", "{err}");
    }

    /// Found by review: a Deny that requires a claim this authorizer does not read would
    /// never apply. Until the claim is declared, every answer fails closed (a 500, never
    /// cached); once declared, the Deny applies to the tokens that carry the value.
    #[test]
    fn a_deny_on_an_undeclared_claim_fails_closed() {
        let mut f = fixture();
        let api = &ARN[..ARN.find('/').unwrap()];
        let path = &ARN[ARN.find("/GET/").unwrap() + 5..];
        let entries: Vec<crate::mapping::Mapping> = serde_json::from_value(json!([
            {"api": api, "stage": "*", "method": "*", "resource": path, "scope": "email"},
            {"api": api, "stage": "*", "method": "*", "resource": path, "scopes": [],
             "claims": {"groups": ["contractors"]}, "effect": "Deny"},
        ]))
        .unwrap();
        let answer = |config: &Config, token: &str| {
            let a = Authorizer::new(
                config,
                StaticMappings(Arc::new(Snapshot::new(1, entries.clone()))),
                Arc::new(ManualClock::new(NOW)),
            )
            .unwrap();
            let event = String::from_utf8(TOKEN.to_vec())
                .unwrap()
                .replace("__TOKEN__", token);
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(a.handle_json(event.as_bytes()))
                .map(|b| serde_json::from_slice::<Value>(&b).unwrap())
        };
        let contractor = f.token(json!({"groups": ["contractors"]}));
        let err = answer(&f.config, &contractor).unwrap_err();
        assert_eq!(err.error_type(), "UndeclaredClaim", "{err}");
        assert!(err.to_string().contains("\"groups\""), "{err}");
        f.config.grant_claims = vec![crate::claim::ClaimName::new("groups").unwrap()];
        assert!(!allows(&answer(&f.config, &contractor).unwrap()));
        assert!(allows(&answer(&f.config, &f.token(json!({}))).unwrap()));
    }

    /// An Allow on a claim the authorizer does not read never applies: closed, but silent
    /// unless the authorizer says so, once per snapshot version.
    #[test]
    fn an_allow_on_an_undeclared_claim_is_warned_of_once() {
        use tracing_subscriber::layer::SubscriberExt;
        let f = fixture();
        let api = &ARN[..ARN.find('/').unwrap()];
        let path = &ARN[ARN.find("/GET/").unwrap() + 5..];
        let entries: Vec<crate::mapping::Mapping> = serde_json::from_value(json!([
            {"api": api, "stage": "*", "method": "*", "resource": path, "scopes": [],
             "claims": {"/org/roles": ["admin"]}},
        ]))
        .unwrap();
        let a = Authorizer::new(
            &f.config,
            StaticMappings(Arc::new(Snapshot::new(1, entries))),
            Arc::new(ManualClock::new(NOW)),
        )
        .unwrap();
        let event = String::from_utf8(TOKEN.to_vec())
            .unwrap()
            .replace("__TOKEN__", &f.token(json!({"org": {"roles": ["admin"]}})));
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let out = Arc::new(std::fs::File::create(&log).unwrap());
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(out.clone()),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                let answer = rt.block_on(a.handle_json(event.as_bytes())).unwrap();
                assert!(!allows(&serde_json::from_slice(&answer).unwrap()));
            }
        });
        let text = std::fs::read_to_string(&log).unwrap();
        let warned: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("does not declare"))
            .collect();
        assert_eq!(warned.len(), 1, "{text}");
        assert!(warned[0].contains("/org/roles"), "{text}");
    }

    #[test]
    fn token_events_read_as_aws_lambda_events_reads_them() {
        // The warm path reads TOKEN events in its probe; it must agree with the crate's type.
        let e: aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequest =
            serde_json::from_slice(TOKEN).unwrap();
        assert_eq!(e.method_arn.as_deref(), Some(ARN));
        assert_eq!(e.authorization_token.as_deref(), Some("Bearer __TOKEN__"));
        let f = fixture();
        assert!(allows(&f.answer(TOKEN, &f.token(json!({}))).unwrap()));
    }

    #[test]
    fn request_events_read_the_configured_header_case_insensitively() {
        let mut f = fixture();
        let t = f.token(json!({}));
        let event = String::from_utf8(REQUEST.to_vec())
            .unwrap()
            .replace(
                "\"authorization\": \"Bearer __TOKEN__\"",
                "\"X-Api-Token\": \"Bearer __TOKEN__\"",
            )
            .replace(
                "\"authorization\": [\"Bearer __TOKEN__\"]",
                "\"X-Api-Token\": [\"Bearer __TOKEN__\"]",
            );
        assert!(matches!(
            f.answer(event.as_bytes(), &t),
            Err(AuthorizeError::Unauthorized(Rejection::Missing))
        ));
        f.config.token_header = "x-api-token".into();
        assert!(allows(&f.answer(event.as_bytes(), &t).unwrap()));
    }

    #[test]
    fn http_api_simple_response() {
        let mut f = fixture();
        f.config.response = ResponseMode::Simple;
        let a = f.answer(HTTP_V2, &f.token(json!({}))).unwrap();
        assert_eq!(a["isAuthorized"], true, "{a}");
        assert_eq!(a["context"]["sub"], "user-1");
        assert!(a.get("policyDocument").is_none());
        let a = f
            .answer(HTTP_V2, &f.token(json!({"scope": "profile"})))
            .unwrap();
        assert_eq!(a["isAuthorized"], false);
    }

    #[test]
    fn context_claims_and_usage_key() {
        let mut f = fixture();
        f.config.context_claims = crate::config::context_claims(Some(
            "email,groups,tenant,nested,org=/org/id,long,edge,absent",
        ))
        .unwrap();
        f.config.usage_key_claim = Some("plan_key".into());
        let t = f.token(json!({
            "email": "a@example.com", "groups": ["admins", "ops"], "tenant": 42,
            "nested": {"x": 1}, "org": {"id": "acme"}, "plan_key": "key-123",
            "long": "x".repeat(MAX_CONTEXT_VALUE + 1), "edge": "y".repeat(MAX_CONTEXT_VALUE),
        }));
        let a = f.answer(TOKEN, &t).unwrap();
        // Strings only, whole: an array, a number, an object and a string one byte too long
        // are left out, never joined, converted or cut.
        assert_eq!(
            a["context"],
            json!({"sub": "user-1", "scope": "email", "client_id": "app", "email": "a@example.com",
                   "org": "acme", "edge": "y".repeat(MAX_CONTEXT_VALUE)})
        );
        assert_eq!(a["usageIdentifierKey"], "key-123");
        let authorizer = Authorizer::new(
            &f.config,
            StaticMappings(Arc::new(Snapshot::new(1, Vec::new()))),
            Arc::new(ManualClock::new(NOW)),
        )
        .unwrap();
        let principal = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(authorizer.principal(&t))
            .unwrap();
        assert_eq!(principal.context_left_out, 4);
    }

    #[test]
    fn client_credentials_tokens_without_sub_use_client_id() {
        let f = fixture();
        let key = &f.key;
        let t =
            key.sign(&json!({"iss": ISS, "client_id": "svc", "scope": "email", "exp": NOW + 60}));
        let a = f.answer(TOKEN, &t).unwrap();
        assert_eq!(a["principalId"], "svc");
        let t = key.sign(&json!({"iss": ISS, "scope": "email", "exp": NOW + 60}));
        assert!(matches!(
            f.answer(TOKEN, &t),
            Err(AuthorizeError::Unauthorized(Rejection::NoPrincipal))
        ));
    }

    #[test]
    fn bad_events_are_errors_not_unauthorized() {
        let f = fixture();
        let t = f.token(json!({}));
        for e in [
            &b"{}"[..],
            b"[]",
            b"{\"type\":\"TOKEN\",\"authorizationToken\":\"Bearer x\"}",
        ] {
            let err = f.answer(e, &t).unwrap_err();
            assert!(matches!(err, AuthorizeError::BadEvent(_)), "{err:?}");
            assert_ne!(err.error_message(), "Unauthorized");
        }
    }

    /// Issue 8, classes 3, 4 and 6 at the handler: an `ANY` route or an odd verb on a path
    /// a Deny on every method covers is never allowed, a stage or verb API Gateway never
    /// sends is a bad event, and a control byte in the header is a plain 401.
    #[test]
    fn request_text_never_widens_an_allow() {
        let f = fixture();
        let entries: Vec<crate::mapping::Mapping> = serde_json::from_value(json!([
            {"api": "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2", "stage": "*",
             "method": "*", "resource": "*", "scope": "email"},
            {"api": "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2", "stage": "*",
             "method": "*", "resource": "admin", "scope": "email", "effect": "Deny"},
            {"api": "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2", "stage": "prod",
             "method": "GET", "resource": "reports", "scope": "email", "effect": "Deny"},
        ]))
        .unwrap();
        let mut simple_config = f.config.clone();
        simple_config.response = ResponseMode::Simple;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let token = f.token(json!({}));
        let api = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2";
        for config in [&f.config, &simple_config] {
            // One authorizer per kind of API, the same entries: events with a `version` are
            // an HTTP API's.
            let authorizer = |kind: ApiKind| {
                let api = crate::policy::ApiArn::parse(api).unwrap();
                let s = Snapshot::new(1, entries.clone())
                    .with_kinds([(api, kind)].into_iter().collect());
                Authorizer::new(
                    config,
                    StaticMappings(Arc::new(s)),
                    Arc::new(ManualClock::new(NOW)),
                )
                .unwrap()
            };
            let (http_api, rest_api) = (authorizer(ApiKind::Http), authorizer(ApiKind::Rest));
            let v2 = |arn: &str, source: &str| {
                json!({"version": "2.0", "type": "REQUEST", "routeArn": arn,
                       "headers": {"authorization": source}})
                .to_string()
            };
            let rest = |arn: &str| {
                json!({"type": "TOKEN", "authorizationToken": format!("Bearer {token}"),
                       "methodArn": arn})
                .to_string()
            };
            let allowed = |answer: &Value, arn: &str| match answer.get("isAuthorized") {
                Some(v) => v.as_bool().unwrap(),
                None => {
                    let p: Policy =
                        serde_json::from_value(answer["policyDocument"].clone()).unwrap();
                    evaluate(&p, arn) == Effect::Allow
                }
            };
            let bearer = format!("Bearer {token}");
            let answer = |event: String| {
                let a = match event.contains("\"version\"") {
                    true => &http_api,
                    false => &rest_api,
                };
                rt.block_on(a.handle_json(event.as_bytes()))
                    .map(|b| serde_json::from_slice::<Value>(&b).unwrap())
            };
            // Class 4: the Deny on every method covers the ANY route too; so does a Deny on
            // one method, since an ANY route's request may use it.
            let any_admin = format!("{api}/dev/ANY/admin");
            assert!(!allowed(
                &answer(v2(&any_admin, &bearer)).unwrap(),
                &any_admin
            ));
            let any_reports = format!("{api}/prod/ANY/reports");
            assert!(!allowed(
                &answer(v2(&any_reports, &bearer)).unwrap(),
                &any_reports
            ));
            let any_reports_dev = format!("{api}/dev/ANY/reports");
            assert!(allowed(
                &answer(v2(&any_reports_dev, &bearer)).unwrap(),
                &any_reports_dev
            ));
            let get_other = format!("{api}/dev/GET/other");
            assert!(allowed(
                &answer(v2(&get_other, &bearer)).unwrap(),
                &get_other
            ));
            // Class 3: what API Gateway never sends is a bad event, not a decision.
            for arn in [
                format!("{api}/dev/get/admin"),
                format!("{api}/dev/TRACE/admin"),
                format!("{api}/*/GET/reports"),
                format!("{api}/pro?/GET/reports"),
                format!("{api}/dev/*/admin"),
            ] {
                assert!(
                    matches!(answer(v2(&arn, &bearer)), Err(AuthorizeError::BadEvent(_))),
                    "{arn}"
                );
                assert!(
                    matches!(answer(rest(&arn)), Err(AuthorizeError::BadEvent(_))),
                    "{arn}"
                );
            }
            assert!(matches!(
                answer(rest(&any_admin)),
                Err(AuthorizeError::BadEvent(_))
            ));
            // Class 6: a DEL or control byte in the header is a bad token.
            for bad in ["\u{7f}", "\u{1}", "\r\n"] {
                assert!(matches!(
                    answer(v2(&get_other, &format!("{bearer}{bad}"))),
                    Err(AuthorizeError::Unauthorized(Rejection::NotBearer))
                ));
            }
            // The same header twice with different values is refused, not guessed.
            for twice in [
                json!({"type": "REQUEST", "methodArn": get_other,
                    "headers": {"Authorization": bearer, "authorization": "Bearer other"}}),
                json!({"type": "REQUEST", "methodArn": get_other,
                    "headers": {"Authorization": bearer},
                    "multiValueHeaders": {"Authorization": [bearer, "Bearer other"]}}),
                json!({"type": "REQUEST", "methodArn": get_other,
                    "headers": {"Authorization": bearer},
                    "multiValueHeaders": {"authorization": ["Bearer other"]}}),
            ] {
                assert!(
                    matches!(
                        answer(twice.to_string()),
                        Err(AuthorizeError::Unauthorized(Rejection::Ambiguous))
                    ),
                    "{twice}"
                );
            }
            let same = json!({"type": "REQUEST", "methodArn": get_other,
                "headers": {"Authorization": bearer},
                "multiValueHeaders": {"Authorization": [bearer]}});
            assert!(allowed(&answer(same.to_string()).unwrap(), &get_other));
            // HTTP API: the token checked is one API Gateway caches the answer under.
            let with_sources = |sources: Value, header: Option<&str>| {
                let mut e = json!({"version": "2.0", "type": "REQUEST", "routeArn": get_other,
                                   "identitySource": sources});
                if let Some(h) = header {
                    e["headers"] = json!({"authorization": h});
                }
                answer(e.to_string())
            };
            assert!(allowed(
                &with_sources(json!([bearer]), Some(&bearer)).unwrap(),
                &get_other
            ));
            assert!(allowed(
                &with_sources(json!([bearer]), None).unwrap(),
                &get_other
            ));
            assert!(matches!(
                with_sources(json!(["token-from-the-query"]), Some(&bearer)),
                Err(AuthorizeError::Unauthorized(Rejection::Ambiguous))
            ));
            // HTTP APIs' payload 1.0 writes identitySource as a string.
            let v1 = json!({"version": "1.0", "type": "REQUEST", "methodArn": get_other,
                            "identitySource": bearer, "headers": {"Authorization": bearer}});
            assert!(allowed(&answer(v1.to_string()).unwrap(), &get_other));
            // ... and its token header must be among them, as in 2.0.
            let v1 = json!({"version": "1.0", "type": "REQUEST", "methodArn": get_other,
                            "identitySource": "user-from-the-query",
                            "headers": {"Authorization": bearer}});
            assert!(matches!(
                answer(v1.to_string()),
                Err(AuthorizeError::Unauthorized(Rejection::Ambiguous))
            ));
            // Payload 1.0 is an HTTP API's: REQUEST only, and an `ANY` route's ARN is good.
            let v1_list = json!({"version": "1.0", "type": "REQUEST", "methodArn": get_other,
                                 "identitySource": [bearer], "headers": {"Authorization": bearer}});
            assert!(matches!(
                answer(v1_list.to_string()),
                Err(AuthorizeError::BadEvent(_))
            ));
            let v1_token = json!({"version": "1.0", "type": "TOKEN", "methodArn": get_other,
                                  "authorizationToken": bearer});
            assert!(matches!(
                answer(v1_token.to_string()),
                Err(AuthorizeError::BadEvent(_))
            ));
            let any = get_other.replace("/GET/", "/ANY/");
            let v1 = json!({"version": "1.0", "type": "REQUEST", "methodArn": any,
                            "headers": {"Authorization": bearer}});
            assert!(answer(v1.to_string()).is_ok());
            let rest = json!({"type": "REQUEST", "methodArn": any,
                              "headers": {"Authorization": bearer}});
            assert!(matches!(
                answer(rest.to_string()),
                Err(AuthorizeError::BadEvent(_))
            ));
            // A shape API Gateway never writes is a bad event, not a token to use.
            for odd in [
                json!({"type": "REQUEST", "methodArn": get_other,
                    "headers": {"Authorization": [bearer]}}),
                json!({"type": "REQUEST", "methodArn": get_other,
                    "headers": {"Authorization": bearer},
                    "multiValueHeaders": {"Authorization": bearer}}),
            ] {
                assert!(
                    matches!(answer(odd.to_string()), Err(AuthorizeError::BadEvent(_))),
                    "{odd}"
                );
            }
        }
    }

    #[test]
    fn the_lambda_error_for_a_bad_token_is_exactly_unauthorized() {
        let e = AuthorizeError::Unauthorized(Rejection::Expired);
        let d = lambda_runtime::Diagnostic::from(e);
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("Unauthorized", "Unauthorized")
        );
    }
}
