//! A local stand-in for an API Gateway REST API with a Lambda `TOKEN` authorizer in front of a
//! mock integration, behaving as the seed's walk-through describes.
//!
//! For a request `METHOD /{stage}/{path}`:
//!
//! 1. Routing. Another stage, or a path/method that no [`Route`] covers, gets API Gateway's
//!    `403 {"message":"Missing Authentication Token"}`; the authorizer is not called.
//! 2. Token source. The token header ([`GatewayOptions::token_header`], default
//!    `Authorization`) missing or empty gets `401 {"message":"Unauthorized"}` with
//!    `WWW-Authenticate: Bearer` (RFC 6750 3.1: no error code when no token was sent); its
//!    value not matching the token validation regex ([`GatewayOptions::token_regex`], default
//!    the seed's JWT bearer regex) gets the refused token's answer below. The authorizer is
//!    not called.
//! 3. Authorizer, through the cache. The cache is keyed by the header value and keeps the
//!    authorizer's answer for [`GatewayOptions::authorizer_ttl`] seconds (0 disables it). On a
//!    miss the authorizer gets the `TOKEN` event: `type` `TOKEN`, `authorizationToken` the
//!    whole header value, `methodArn`. Its `Unauthorized` gets
//!    `401 {"message":"Unauthorized","error":"invalid_token"}` with
//!    `WWW-Authenticate: Bearer error="invalid_token"` (not cached); any other failure, or an
//!    answer API Gateway would not accept (no `principalId`, a `policyDocument` that does not
//!    parse, an object or array in `context`), gets API Gateway's
//!    AuthorizerConfigurationException, `503 {"message":"Service Unavailable"}` (not cached).
//!    These are template.yaml's gateway responses ([`super::responses`]).
//! 4. Policy. The (possibly cached) policy is evaluated against this request's methodArn with
//!    [`crate::policy::evaluate`], the same oracle the tests use. An explicit Deny gets `403
//!    {"Message":"User is not authorized to access this resource with an explicit deny",
//!    "error":"insufficient_scope"}`, the answer the seed shows (and what a token granting
//!    nothing gets: the deny-all policy); no matching Allow gets API Gateway's implicit-deny
//!    message, `"User is not authorized to access this resource"`, so the two cases can be
//!    told apart as on AWS. Both with `WWW-Authenticate: Bearer error="insufficient_scope"`.
//! 5. Integration. Allowed requests reach a mock integration answering `200
//!    {"statusCode":200,"message":"Hello from API Gateway!","principalId":...,"context":{...},
//!    "methodArn":...}`: the context is what the authorizer put there, as a real integration
//!    would receive it.
//!
//! Every answer that went through step 3 carries [`CACHE_HEADER`] (`x-scopegate-authorizer`):
//! `miss` when the authorizer was called for it, `hit` when a cached answer was used; answers
//! decided before step 3 carry none. Errors also carry API Gateway's `x-amzn-ErrorType`.
//!
//! # methodArn
//! Built as API Gateway builds it: `{api}/{stage}/{METHOD}/{path}`, the path as requested
//! (still percent-encoded), without its leading slash. The root resource gives `.../GET/`. A
//! trailing slash is kept (`my-resource/` gives `.../GET/my-resource/`), as the seed warns:
//! "If your API call contains a trailing slash, such as my-resource/ instead of my-resource,
//! then be sure that your identity management policy follows the same syntax." Routing, on the
//! other hand, ignores one trailing slash, so `my-resource/` reaches the `my-resource` route
//! and the difference shows up where it does on AWS: in the policy.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use regex::Regex;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use super::error::{display_addr, LocalError};
use super::responses::{
    GatewayResponse, ACCESS_DENIED, AUTHORIZER_CONFIGURATION_ERROR, DPOP_INVALID_PROOF,
    DPOP_INVALID_TOKEN, NO_TOKEN, UNAUTHORIZED,
};
use crate::clock::{Clock, SystemClock};
use crate::policy::{evaluate, glob_match, method_arn, Effect, Policy};
use crate::ttl_cache::TtlCache;

/// The default token source header, as in the seed.
pub const DEFAULT_TOKEN_HEADER: &str = "Authorization";
/// The token validation regex, as template.yaml's `TokenValidationRegex` defaults to: a JWS
/// in compact form after the `Bearer` scheme in any case (RFC 7235 2.1 makes the scheme
/// case-insensitive; the seed's `^(Bearer )...` turned `bearer` away).
pub const DEFAULT_TOKEN_REGEX: &str =
    r"^[Bb][Ee][Aa][Rr][Ee][Rr] +[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$";
/// API Gateway's default authorizer TTL, in seconds.
pub const DEFAULT_AUTHORIZER_TTL: u32 = 300;
/// API Gateway's largest authorizer TTL, in seconds.
pub const MAX_AUTHORIZER_TTL: u32 = 3600;
/// The response header telling whether the authorizer was called (`miss`) or its cached
/// answer used (`hit`).
pub const CACHE_HEADER: &str = "x-scopegate-authorizer";
/// How long the gateway waits for the authorizer before answering 500, like API Gateway's
/// 29-second integration limit.
const AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(29);

/// The authorizer as the gateway sees it: a Lambda function taking a `TOKEN` event.
///
/// A trait so that the gateway does not depend on the authorizer's internals, and tests can
/// put a fake behind the gateway.
pub trait Authorize: Send + Sync + 'static {
    /// Invokes the authorizer with a REST API `TOKEN` event
    /// (`{"type":"TOKEN","authorizationToken":...,"methodArn":...}`).
    ///
    /// `Ok` carries the response JSON (`principalId`, `policyDocument`, `context`, ...).
    fn authorize(&self, event: Value)
        -> impl Future<Output = Result<Value, AuthorizeError>> + Send;
}

/// How an authorizer invocation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The function's `Unauthorized` error: the gateway answers 401 and caches nothing.
    #[error("Unauthorized")]
    Unauthorized,
    /// The function's `Unauthorized` for a DPoP proof (missing, invalid, replayed): the
    /// gateway answers 401 with RFC 9449 §7.1's `DPoP error="invalid_dpop_proof"`. API
    /// Gateway cannot tell it from [`AuthorizeError::Unauthorized`]; local mode can.
    #[error("Unauthorized (DPoP proof)")]
    InvalidProof,
    /// Any other failure (a crash, a timeout): the gateway answers 503
    /// `{"message":"Service Unavailable"}`, API Gateway's AuthorizerConfigurationException
    /// with template.yaml's gateway response.
    #[error("the authorizer failed")]
    Fault(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A resource and method the gateway serves, as API Gateway would have them deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST`, ... or `*` for API Gateway's `ANY`.
    pub method: String,
    /// The resource path without leading or trailing slash, `""` for the root. Wildcards as in
    /// the mapping's resources and IAM ([`crate::policy::glob_match`]): `*` matches any run of
    /// characters, `/` included, `?` one character.
    pub resource: String,
}

impl Route {
    /// A route, normalised: method upper-cased (`ANY` becomes `*`), leading and trailing
    /// slashes of the resource dropped.
    pub fn new(method: &str, resource: &str) -> Self {
        let method = method.trim().to_ascii_uppercase();
        let method = if method == "ANY" {
            "*".to_owned()
        } else {
            method
        };
        Self {
            method,
            resource: resource.trim().trim_matches('/').to_owned(),
        }
    }

    /// Whether a request for `method` on `path` (without the stage and its leading slash)
    /// reaches this route. One trailing slash of the path is ignored.
    ///
    /// A resource with `{param}` segments is an API route, matched as API Gateway routes: a
    /// `{param}` is one non-empty segment, a last `{param+}` one or more, every other
    /// segment itself. Any other resource is a glob.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let path = path.strip_suffix('/').unwrap_or(path);
        (self.method == "*" || self.method == method)
            && if self.resource.contains('{') {
                template_match(&self.resource, path)
            } else {
                glob_match(&self.resource, path)
            }
    }

    /// A concrete path for this route, for examples: each `*` and `{param}` becomes
    /// `example`.
    pub fn example_path(&self) -> String {
        if self.resource.contains('{') {
            return self
                .resource
                .split('/')
                .map(|seg| if seg.starts_with('{') { "example" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
        }
        self.resource.replace('*', "example")
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = if self.method == "*" {
            "ANY"
        } else {
            &self.method
        };
        write!(f, "{method} /{}", self.resource)
    }
}

/// What the gateway is and how it authorizes.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// The token source header. Defaults to [`DEFAULT_TOKEN_HEADER`].
    pub token_header: String,
    /// The token validation regex, matched against the whole header value (`None`: no
    /// validation, as when the field is left empty on AWS). Defaults to
    /// [`DEFAULT_TOKEN_REGEX`].
    pub token_regex: Option<Regex>,
    /// Seconds the authorizer's answer is cached per token, 0 to 3600; 0 disables the cache.
    /// Defaults to [`DEFAULT_AUTHORIZER_TTL`], API Gateway's default.
    pub authorizer_ttl: u32,
    /// The API the gateway pretends to be: `arn:aws:execute-api:REGION:ACCOUNT:APIID`, the
    /// prefix of every methodArn.
    pub api: String,
    /// The one deployed stage: requests are `/{stage}/...`.
    pub stage: String,
    /// The deployed resources and methods.
    pub routes: Vec<Route>,
    /// A REQUEST authorizer (template.yaml's `AuthorizerType` REQUEST) instead of TOKEN: the
    /// authorizer gets the request's method, path, domain and headers, which tokens bound to
    /// the caller need (a DPoP proof). Nothing is cached (`authorizer_ttl` is not used): local
    /// mode's authorizer accepts bound tokens, and template.yaml turns the cache off for a
    /// REQUEST authorizer that does. The token validation regex is not applied, as in the
    /// template. Defaults to false.
    pub request_authorizer: bool,
}

impl GatewayOptions {
    /// Options for `api` and `stage` serving `routes`, everything else at its default.
    pub fn new(api: impl Into<String>, stage: impl Into<String>, routes: Vec<Route>) -> Self {
        Self {
            token_header: DEFAULT_TOKEN_HEADER.to_owned(),
            token_regex: Some(default_token_regex()),
            authorizer_ttl: DEFAULT_AUTHORIZER_TTL,
            api: api.into(),
            stage: stage.into(),
            routes,
            request_authorizer: false,
        }
    }

    /// Checks every setting against API Gateway's rules; the error names the flag and value.
    /// [`serve`] calls it too, but calling it before printing the banner gives a clean exit.
    pub fn validate(&self) -> Result<(), LocalError> {
        let invalid = |option, value: &str, reason: &str| LocalError::InvalidOption {
            option,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if self.authorizer_ttl > MAX_AUTHORIZER_TTL {
            return Err(invalid(
                "--authorizer-ttl",
                &self.authorizer_ttl.to_string(),
                "must be 0 to 3600 seconds (API Gateway's range; 0 disables caching)",
            ));
        }
        if self.token_header.is_empty()
            || HeaderName::from_bytes(self.token_header.as_bytes()).is_err()
        {
            return Err(invalid(
                "--token-header",
                &self.token_header,
                "not an HTTP header name",
            ));
        }
        let parts: Vec<&str> = self.api.split(':').collect();
        let api_ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "execute-api"
            && parts
                .iter()
                .all(|p| !p.is_empty() && !p.contains(['/', '*', ' ']));
        if !api_ok {
            return Err(invalid(
                "--api",
                &self.api,
                "expected arn:aws:execute-api:REGION:ACCOUNT:APIID",
            ));
        }
        let stage_ok = (1..=128).contains(&self.stage.len())
            && self
                .stage
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !stage_ok {
            return Err(invalid(
                "--stage",
                &self.stage,
                "a stage name is 1 to 128 letters, digits, '-' or '_'",
            ));
        }
        if self.routes.is_empty() {
            return Err(invalid(
                "--stage",
                &self.stage,
                "no routes: nothing in the mapping is on this API and stage",
            ));
        }
        for route in &self.routes {
            let method_ok = route.method == "*"
                || (!route.method.is_empty()
                    && route.method.bytes().all(|b| b.is_ascii_uppercase()));
            let resource_ok = !route
                .resource
                .contains(|c: char| c.is_whitespace() || c == '?' || c == '#');
            if !method_ok || !resource_ok {
                return Err(invalid(
                    "route",
                    &route.to_string(),
                    "expected an HTTP method (or * / ANY) and a resource path",
                ));
            }
        }
        Ok(())
    }
}

/// The seed's token validation regex, compiled.
pub fn default_token_regex() -> Regex {
    // A constant pattern known to compile.
    Regex::new(DEFAULT_TOKEN_REGEX).expect("the default token regex compiles")
}

/// Parses a `--token-regex` value: empty means no validation, anything else must compile.
pub fn parse_token_regex(pattern: &str) -> Result<Option<Regex>, LocalError> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(pattern)
        .map(Some)
        .map_err(|e| LocalError::InvalidOption {
            option: "--token-regex",
            value: pattern.to_owned(),
            reason: e.to_string(),
        })
}

/// Serves the gateway on `listener` until `shutdown` completes, then finishes the requests in
/// flight and returns. Checks `opts` first ([`GatewayOptions::validate`]).
pub async fn serve<A: Authorize>(
    listener: TcpListener,
    authorizer: Arc<A>,
    opts: GatewayOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LocalError> {
    opts.validate()?;
    let addr = listener
        .local_addr()
        .map_err(|source| LocalError::LocalAddr {
            what: "gateway",
            source,
        })?;
    let gateway = Arc::new(Gateway::new(authorizer, opts));
    let router = Router::new()
        .fallback(handle::<A>)
        .with_state(Arc::clone(&gateway));
    tracing::info!(
        url = %format!("http://{}/{}/", display_addr(addr), gateway.stage),
        authorizer_ttl = gateway.ttl_secs,
        "local gateway listening"
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| LocalError::Serve {
            what: "gateway",
            source,
        })
}

/// The authorizer's answer in the form the gateway uses it; what the cache keeps.
#[derive(Debug)]
struct Grant {
    principal_id: Value,
    policy: Policy,
    context: Map<String, Value>,
}

/// Checks an authorizer response as API Gateway does; `Err` says why it would be refused.
fn parse_grant(mut response: Value) -> Result<Grant, String> {
    let Some(object) = response.as_object_mut() else {
        return Err("the response is not a JSON object".to_owned());
    };
    let principal_id = match object.remove("principalId") {
        Some(Value::String(s)) => Value::String(s),
        Some(other) => return Err(format!("principalId is not a string: {other}")),
        None => return Err("principalId is missing".to_owned()),
    };
    let policy = match object.remove("policyDocument") {
        Some(doc) => serde_json::from_value::<Policy>(doc)
            .map_err(|e| format!("policyDocument is not a valid policy: {e}"))?,
        None => return Err("policyDocument is missing".to_owned()),
    };
    let context = match object.remove("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(format!("context is not an object: {other}")),
    };
    // API Gateway refuses objects and arrays as context values.
    if let Some((key, _)) = context
        .iter()
        .find(|(_, v)| matches!(v, Value::Object(_) | Value::Array(_)))
    {
        return Err(format!(
            "context.{key} is an object or array; only strings, numbers and booleans pass"
        ));
    }
    Ok(Grant {
        principal_id,
        policy,
        context,
    })
}

/// Most cached answers kept. A token is about 1 KiB, so the cache stays around 10 MiB at
/// worst; a dev gateway sees a handful of tokens, this only stops a runaway script.
const MAX_ENTRIES: usize = 10_000;

struct Gateway<A> {
    authorizer: Arc<A>,
    request_authorizer: bool,
    token_header: HeaderName,
    token_regex: Option<Regex>,
    api: String,
    stage: String,
    routes: Vec<Route>,
    ttl_secs: u32,
    cache: TtlCache<Grant>,
    clock: Arc<dyn Clock>,
}

/// What of the request a REQUEST event carries.
struct Incoming<'a> {
    method: &'a str,
    /// The path as requested, stage first, still percent-encoded.
    path: &'a str,
    headers: &'a HeaderMap,
    /// The `Host` the client called.
    host: Option<&'a str>,
}

/// Whether the authorizer was called for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Miss,
    Hit,
}

/// How a request ended, before it is turned into an HTTP answer.
#[derive(Debug)]
enum Outcome {
    MissingAuthenticationToken,
    /// No token at all: RFC 6750 3.1's `Bearer` without an error code.
    NoToken,
    /// A token was sent and refused (by the regex, or by the authorizer), answered with the
    /// challenge that fits (Bearer, or DPoP's for the token or the proof).
    Unauthorized(Option<Lookup>, &'static GatewayResponse),
    ConfigurationError(Lookup),
    Denied {
        lookup: Lookup,
        explicit: bool,
    },
    Allowed {
        lookup: Lookup,
        grant: Arc<Grant>,
        method_arn: String,
    },
}

impl<A: Authorize> Gateway<A> {
    fn new(authorizer: Arc<A>, opts: GatewayOptions) -> Self {
        // A REQUEST authorizer that may see bound tokens is not cached (template.yaml's
        // UncachedRequests): a cached answer would skip the proof's and the certificate's
        // checks.
        let ttl = if opts.request_authorizer {
            0
        } else {
            opts.authorizer_ttl
        };
        Self {
            authorizer,
            request_authorizer: opts.request_authorizer,
            // Checked by validate(); the fallback is never used.
            token_header: HeaderName::from_bytes(opts.token_header.as_bytes())
                .unwrap_or(axum::http::header::AUTHORIZATION),
            token_regex: opts.token_regex,
            api: opts.api,
            stage: opts.stage,
            routes: opts.routes,
            ttl_secs: ttl,
            cache: TtlCache::new(MAX_ENTRIES, ttl.into()),
            clock: Arc::new(SystemClock),
        }
    }

    /// Steps 1 and 2: the methodArn and the token, or the answer given without the
    /// authorizer.
    fn admit<'h>(
        &self,
        method: &Method,
        path: &str,
        headers: &'h HeaderMap,
    ) -> Result<(String, &'h str), Outcome> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let (stage, rest) = path.split_once('/').unwrap_or((path, ""));
        let method = method.as_str();
        if stage != self.stage || !self.routes.iter().any(|r| r.matches(method, rest)) {
            return Err(Outcome::MissingAuthenticationToken);
        }
        let method_arn = method_arn(&self.api, &self.stage, method, rest);
        // Absent or blank: no token (RFC 6750 3.1). Not text: a token, and not a valid one.
        let token = headers
            .get(&self.token_header)
            .filter(|v| !v.as_bytes().trim_ascii().is_empty())
            .ok_or(Outcome::NoToken)?
            .to_str()
            .map_err(|_| Outcome::Unauthorized(None, &UNAUTHORIZED))?;
        if let Some(regex) = self
            .token_regex
            .as_ref()
            .filter(|_| !self.request_authorizer)
        {
            if !regex.is_match(token) {
                return Err(Outcome::Unauthorized(None, &UNAUTHORIZED));
            }
        }
        Ok((method_arn, token))
    }

    /// The event API Gateway sends the authorizer: TOKEN, or REQUEST with what a REST API's
    /// REQUEST event carries (the method, the path as requested, the domain the client
    /// called, every header in `headers` and `multiValueHeaders`).
    fn event(&self, method_arn: &str, token: &str, request: &Incoming<'_>) -> Value {
        if !self.request_authorizer {
            return json!({
                "type": "TOKEN",
                "authorizationToken": token,
                "methodArn": method_arn,
            });
        }
        let mut headers = Map::new();
        let mut multi = Map::new();
        for (name, value) in request.headers {
            // Kept, however garbled: dropping a value would hide that a header came twice.
            let value = String::from_utf8_lossy(value.as_bytes());
            headers.insert(name.as_str().to_owned(), json!(value));
            match multi
                .entry(name.as_str().to_owned())
                .or_insert_with(|| json!([]))
            {
                Value::Array(values) => values.push(json!(value)),
                _ => unreachable!("only arrays are inserted"),
            }
        }
        let stage_path = request.path;
        let resource_path = stage_path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .map_or("/".to_owned(), |(_, rest)| format!("/{rest}"));
        json!({
            "type": "REQUEST",
            "methodArn": method_arn,
            "path": resource_path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": multi,
            "requestContext": {
                "path": stage_path,
                "httpMethod": request.method,
                "stage": self.stage,
                "domainName": request.host,
                "identity": {"sourceIp": "127.0.0.1"},
            },
        })
    }

    /// Steps 3 and 4.
    async fn decide(&self, method_arn: String, token: &str, request: &Incoming<'_>) -> Outcome {
        // RFC 9449 §7.1: a request sent with the DPoP scheme is refused in DPoP's terms.
        let refused = if token
            .trim_start()
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("dpop "))
        {
            &DPOP_INVALID_TOKEN
        } else {
            &UNAUTHORIZED
        };
        let (grant, lookup) = match self.cache.get(token, self.clock.now()) {
            Some(grant) => (grant, Lookup::Hit),
            None => {
                let event = self.event(&method_arn, token, request);
                let answer =
                    tokio::time::timeout(AUTHORIZER_TIMEOUT, self.authorizer.authorize(event))
                        .await;
                let response = match answer {
                    Ok(Ok(response)) => response,
                    Ok(Err(AuthorizeError::Unauthorized)) => {
                        return Outcome::Unauthorized(Some(Lookup::Miss), refused)
                    }
                    Ok(Err(AuthorizeError::InvalidProof)) => {
                        return Outcome::Unauthorized(Some(Lookup::Miss), &DPOP_INVALID_PROOF)
                    }
                    Ok(Err(AuthorizeError::Fault(error))) => {
                        tracing::error!(error = %error, "the authorizer failed");
                        return Outcome::ConfigurationError(Lookup::Miss);
                    }
                    Err(_) => {
                        tracing::error!(timeout = ?AUTHORIZER_TIMEOUT, "the authorizer timed out");
                        return Outcome::ConfigurationError(Lookup::Miss);
                    }
                };
                match parse_grant(response) {
                    Ok(grant) => {
                        let grant = Arc::new(grant);
                        let now = self.clock.now();
                        self.cache.insert(token, Arc::clone(&grant), now, u64::MAX);
                        (grant, Lookup::Miss)
                    }
                    Err(reason) => {
                        tracing::error!(%reason, "API Gateway would refuse the authorizer's answer");
                        return Outcome::ConfigurationError(Lookup::Miss);
                    }
                }
            }
        };
        match evaluate(&grant.policy, &method_arn) {
            Effect::Allow => Outcome::Allowed {
                lookup,
                grant,
                method_arn,
            },
            Effect::Deny => Outcome::Denied {
                lookup,
                explicit: explicit_deny(&grant.policy, &method_arn),
            },
        }
    }
}

/// Whether a Deny statement matches `method_arn`: the first rule of [`evaluate`], asked on
/// its own only to pick API Gateway's message once `evaluate` has said Deny.
fn explicit_deny(policy: &Policy, method_arn: &str) -> bool {
    policy
        .statements
        .iter()
        .any(|s| s.effect == Effect::Deny && s.resources.iter().any(|r| glob_match(r, method_arn)))
}

async fn handle<A: Authorize>(
    State(gateway): State<Arc<Gateway<A>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let outcome = match gateway.admit(&method, uri.path(), &headers) {
        Ok((method_arn, token)) => {
            let request = Incoming {
                method: method.as_str(),
                path: uri.path(),
                headers: &headers,
                host: headers
                    .get(axum::http::header::HOST)
                    .and_then(|h| h.to_str().ok()),
            };
            gateway.decide(method_arn, token, &request).await
        }
        Err(outcome) => outcome,
    };
    let response = outcome.into_response();
    tracing::info!(
        %method,
        path = uri.path(),
        status = response.status().as_u16(),
        authorizer = response
            .headers()
            .get(CACHE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-"),
        "request"
    );
    response
}

/// A JSON answer with API Gateway's error type header (when there is one) and the cache header.
fn answer(
    status: StatusCode,
    body: Value,
    error_type: Option<&'static str>,
    lookup: Option<Lookup>,
) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    mark(&mut response, error_type, lookup);
    response
}

/// One of the authorizer's gateway responses ([`super::responses`]), as API Gateway renders
/// it for `message`.
fn gateway_response(
    r: &GatewayResponse,
    message: &str,
    error_type: &'static str,
    lookup: Option<Lookup>,
) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r.body(message),
    )
        .into_response();
    if let Some(value) = r.www_authenticate {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(value),
        );
    }
    mark(&mut response, Some(error_type), lookup);
    response
}

fn mark(response: &mut Response, error_type: Option<&'static str>, lookup: Option<Lookup>) {
    let headers = response.headers_mut();
    if let Some(error_type) = error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    }
    if let Some(lookup) = lookup {
        let value = match lookup {
            Lookup::Miss => "miss",
            Lookup::Hit => "hit",
        };
        headers.insert(CACHE_HEADER, HeaderValue::from_static(value));
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        match self {
            Outcome::MissingAuthenticationToken => answer(
                StatusCode::FORBIDDEN,
                json!({"message": "Missing Authentication Token"}),
                Some("MissingAuthenticationTokenException"),
                None,
            ),
            Outcome::NoToken => {
                gateway_response(&NO_TOKEN, "Unauthorized", "UnauthorizedException", None)
            }
            Outcome::Unauthorized(lookup, response) => {
                gateway_response(response, "Unauthorized", "UnauthorizedException", lookup)
            }
            Outcome::ConfigurationError(lookup) => gateway_response(
                &AUTHORIZER_CONFIGURATION_ERROR,
                "null",
                "AuthorizerConfigurationException",
                Some(lookup),
            ),
            Outcome::Denied { lookup, explicit } => gateway_response(
                &ACCESS_DENIED,
                if explicit {
                    "User is not authorized to access this resource with an explicit deny"
                } else {
                    "User is not authorized to access this resource"
                },
                "AccessDeniedException",
                Some(lookup),
            ),
            Outcome::Allowed {
                lookup,
                grant,
                method_arn,
            } => answer(
                StatusCode::OK,
                json!({
                    "statusCode": 200,
                    "message": "Hello from API Gateway!",
                    "principalId": grant.principal_id,
                    "context": grant.context,
                    "methodArn": method_arn,
                }),
                None,
                Some(lookup),
            ),
        }
    }
}

/// Whether `path` is a request of the API route `resource` (see [`Route::matches`]).
fn template_match(resource: &str, path: &str) -> bool {
    let mut want = resource.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(w), Some(h)) if w.starts_with('{') && w.ends_with("+}") => {
                return !h.is_empty() && have.all(|h| !h.is_empty());
            }
            (Some(w), Some(h)) if w.starts_with('{') => {
                if h.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_normalise_and_match() {
        let any = Route::new("any", "/pets/*/");
        assert_eq!(
            any,
            Route {
                method: "*".into(),
                resource: "pets/*".into()
            }
        );
        assert_eq!(any.to_string(), "ANY /pets/*");
        assert!(any.matches("DELETE", "pets/1/toys"));
        assert!(!any.matches("DELETE", "pets"));
        let get = Route::new("get", "my-resource");
        assert!(get.matches("GET", "my-resource"));
        assert!(
            get.matches("GET", "my-resource/"),
            "one trailing slash is ignored"
        );
        assert!(!get.matches("POST", "my-resource"));
        let root = Route::new("GET", "/");
        assert!(root.matches("GET", "") && !root.matches("GET", "x"));
        assert_eq!(Route::new("GET", "pets/*").example_path(), "pets/example");
    }

    /// API routes as the mappings write them (`orders/{id}`) route as API Gateway routes
    /// them; before, they were read as globs and answered Missing Authentication Token.
    #[test]
    fn api_routes_match_by_segment() {
        let one = Route::new("GET", "orders/{id}");
        assert!(one.matches("GET", "orders/7") && one.matches("GET", "orders/7/"));
        for miss in ["orders", "orders/", "orders//", "orders/7/items", "order/7"] {
            assert!(!one.matches("GET", miss), "{miss}");
        }
        let nested = Route::new("DELETE", "tenants/{tenant}/orders/{id}");
        assert!(nested.matches("DELETE", "tenants/acme/orders/1"));
        assert!(!nested.matches("DELETE", "tenants/acme/orders"));
        assert!(!nested.matches("DELETE", "tenants//orders/1"));
        let greedy = Route::new("ANY", "files/{proxy+}");
        assert!(greedy.matches("PUT", "files/a") && greedy.matches("GET", "files/a/b/c"));
        assert!(!greedy.matches("GET", "files") && !greedy.matches("GET", "files/a//b"));
        // A literal segment is compared as it is: no glob inside a route.
        assert!(!Route::new("GET", "a*/{id}").matches("GET", "ab/1"));
        assert_eq!(nested.example_path(), "tenants/example/orders/example");
    }

    fn opts() -> GatewayOptions {
        GatewayOptions::new(
            "arn:aws:execute-api:us-east-1:123456789012:abc123",
            "dev",
            vec![Route::new("GET", "my-resource")],
        )
    }

    #[test]
    fn validation_names_the_bad_flag() {
        assert!(opts().validate().is_ok());
        let flag = |o: GatewayOptions| match o.validate() {
            Err(LocalError::InvalidOption { option, .. }) => option,
            other => panic!("expected an invalid option, got {other:?}"),
        };
        assert_eq!(
            flag(GatewayOptions {
                authorizer_ttl: 3601,
                ..opts()
            }),
            "--authorizer-ttl"
        );
        assert!(GatewayOptions {
            authorizer_ttl: 3600,
            ..opts()
        }
        .validate()
        .is_ok());
        assert_eq!(
            flag(GatewayOptions {
                token_header: "bad header".into(),
                ..opts()
            }),
            "--token-header"
        );
        assert_eq!(
            flag(GatewayOptions {
                api: "arn:aws:s3:::bucket".into(),
                ..opts()
            }),
            "--api"
        );
        assert_eq!(
            flag(GatewayOptions {
                stage: "dev/x".into(),
                ..opts()
            }),
            "--stage"
        );
        assert_eq!(
            flag(GatewayOptions {
                routes: vec![],
                ..opts()
            }),
            "--stage"
        );
        assert!(matches!(parse_token_regex(""), Ok(None)));
        assert!(parse_token_regex("(").is_err());
    }

    #[test]
    fn the_default_regex_is_the_seeds() {
        let re = default_token_regex();
        assert!(re.is_match("Bearer aaa.bbb.ccc"));
        assert!(!re.is_match("Bearer ThisIsNotAJWT"));
        assert!(!re.is_match("aaa.bbb.ccc"), "the Bearer prefix is required");
        assert!(!re.is_match("Bearer aaa.bbb.ccc "));
    }

    #[test]
    fn authorizer_answers_are_checked_as_api_gateway_does() {
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:aws:execute-api:*"}]});
        let ok = json!({"principalId": "user", "policyDocument": policy, "context": {"scope": "email", "n": 1, "b": true}});
        assert_eq!(parse_grant(ok).unwrap().context["scope"], "email");
        assert!(parse_grant(json!({"policyDocument": policy})).is_err());
        assert!(parse_grant(json!({"principalId": "user"})).is_err());
        let nested =
            json!({"principalId": "u", "policyDocument": policy, "context": {"claims": {"a": 1}}});
        assert!(parse_grant(nested).unwrap_err().contains("context.claims"));
    }
}
