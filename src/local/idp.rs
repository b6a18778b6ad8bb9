//! The dev identity provider of local mode: an OAuth 2.0 authorization server on loopback that
//! issues RFC 9068 access tokens (`typ: at+jwt`) for the `client_credentials` grant.
//!
//! It publishes what a real provider publishes, so that the authorizer trusts it the way it
//! trusts Okta, through discovery and the JWKS:
//!
//! | path | answer |
//! |---|---|
//! | `GET /.well-known/openid-configuration` | discovery: issuer, jwks_uri, token_endpoint, ... |
//! | `GET /.well-known/oauth-authorization-server` | the same document (RFC 8414 name) |
//! | `GET /jwks` | the public signing key: `kty`, `crv`, `x`, `y`, `kid`, `alg`, `use: sig` |
//! | `POST /token` | `grant_type=client_credentials`, optional `scope="a b"` |
//!
//! The signing key is an ECDSA P-256 key (`ES256`) generated at start and never written
//! anywhere: a restart invalidates every token it issued, as a key rotation at a real provider
//! would. ES256 because P-256 keys are generated instantly and every mainstream verifier
//! accepts it; its `kid` is the key's RFC 7638 thumbprint.
//!
//! # Clients
//! The one client is [`CLIENT_ID`] / [`CLIENT_SECRET`], authenticated with HTTP Basic
//! (`client_secret_basic`) or in the form (`client_secret_post`). For convenience a request
//! with no client credentials at all is served as that client too: this is a dev provider on
//! loopback, and `curl -d grant_type=client_credentials -d scope=email .../token` should just
//! work. Credentials that are present but wrong are refused (`invalid_client`, 401), as a real
//! provider would, so that a misconfigured client is noticed here rather than at Okta.
//!
//! # DPoP (RFC 9449 §5)
//! A token request that carries a `DPoP` proof (for `POST` the token endpoint, signed by the
//! client's key) gets a token bound to that key: `cnf.jkt` is the key's thumbprint and
//! `token_type` is `DPoP`. The proof is checked as the authorizer checks one (`token::dpop`),
//! less what concerns an access token; a bad one is `invalid_dpop_proof` (400). `jti`s are
//! not remembered here: this is a dev provider. `scopegate token --dpop KEYFILE` makes the
//! proof.
//!
//! # Scopes
//! Every well-formed scope asked for is granted: the provider's job here is to mint tokens
//! with the scopes a developer wants to try; what a scope allows is the mapping's business.
//! `scopes_supported` in discovery is advertised only. The scopes are put both in `scope`
//! (space-delimited, RFC 9068) and in `scp` (an array, as Okta does), so that the authorizer
//! finds them whichever claim it is configured to read.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;

use super::error::{display_addr, LocalError};
use crate::clock::{Clock, SystemClock};

/// Path of the OpenID Connect discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the same document under its RFC 8414 name.
pub const OAUTH_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// Path of the JWKS.
pub const JWKS_PATH: &str = "/jwks";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/token";

/// The dev client's id; also the `sub` and `client_id` of its tokens.
pub const CLIENT_ID: &str = "scopegate-local";
/// The dev client's secret. Not a secret: local mode only.
pub const CLIENT_SECRET: &str = "scopegate-local-secret";
/// The `aud` of issued tokens unless [`DevIdp::with_audience`] says otherwise.
pub const DEFAULT_AUDIENCE: &str = "scopegate-local";
/// Lifetime of issued tokens (`expires_in`, `exp - iat`) unless
/// [`DevIdp::with_token_lifetime`] says otherwise: one hour, a common provider default.
pub const DEFAULT_TOKEN_LIFETIME: u64 = 3600;

/// Largest request body the provider reads. A token request is a few hundred bytes.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Largest token response [`fetch_token`] reads.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Most scopes one token request may ask for.
const MAX_SCOPES: usize = 64;
/// Timeout of the whole [`fetch_token`] exchange.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The dev identity provider, bound to a listener and holding its signing key.
///
/// # Example
/// ```no_run
/// # async fn run() -> Result<(), scopegate::local::LocalError> {
/// use scopegate::local::DevIdp;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let idp = DevIdp::bind(listener)?.with_scopes_supported(["email"]);
/// println!("issuer {}", idp.issuer());
/// idp.serve(async { tokio::signal::ctrl_c().await.ok(); }).await?;
/// # Ok(()) }
/// ```
pub struct DevIdp {
    listener: TcpListener,
    addr: SocketAddr,
    issuer: String,
    audience: String,
    scopes_supported: Vec<String>,
    lifetime: u64,
    clock: Arc<dyn Clock>,
    key: EncodingKey,
    kid: String,
    jwks: JwkSet,
}

impl std::fmt::Debug for DevIdp {
    // By hand: the private key stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdp")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DevIdp {
    /// Takes an opened listener and generates a fresh ES256 signing key.
    ///
    /// The issuer is `http://{listener address}`; a wildcard bind (`0.0.0.0`) is published as
    /// `127.0.0.1`, where local clients reach it.
    pub fn bind(listener: TcpListener) -> Result<Self, LocalError> {
        let addr = listener
            .local_addr()
            .map_err(|source| LocalError::LocalAddr {
                what: "identity provider",
                source,
            })?;
        let addr = display_addr(addr);
        let (key, jwk) = generate_key()?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        Ok(Self {
            listener,
            addr,
            issuer: format!("http://{addr}"),
            audience: DEFAULT_AUDIENCE.to_owned(),
            scopes_supported: Vec::new(),
            lifetime: DEFAULT_TOKEN_LIFETIME,
            clock: Arc::new(SystemClock),
            key,
            kid,
            jwks: JwkSet { keys: vec![jwk] },
        })
    }

    /// Sets the `aud` of issued tokens. Defaults to `DEFAULT_AUDIENCE`.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// Sets the `scopes_supported` advertised in discovery (advertised only: any well-formed
    /// scope is granted). Defaults to none, and then the field is left out.
    pub fn with_scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the lifetime of issued tokens, in seconds. Defaults to `DEFAULT_TOKEN_LIFETIME`.
    pub fn with_token_lifetime(mut self, seconds: u64) -> Self {
        self.lifetime = seconds;
        self
    }

    /// Sets the clock that stamps `iat`, `nbf` and `exp`. Defaults to the system clock; tests
    /// pass a [`crate::clock::ManualClock`] to mint expired or not-yet-valid tokens.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The issuer URL, `http://127.0.0.1:PORT`: the `iss` of every token and the base of
    /// discovery.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` of every token.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The address clients reach the provider at.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token endpoint's URL.
    pub fn token_endpoint(&self) -> String {
        format!("{}{TOKEN_PATH}", self.issuer)
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_PATH}", self.issuer)
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!("{}{DISCOVERY_PATH}", self.issuer)
    }

    /// The `kid` of the signing key (its RFC 7638 SHA-256 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWKS, as served at `JWKS_PATH`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Signs an access token for the dev client with `scope` (space-delimited), as the token
    /// endpoint would. For tests and tools that need a token without a round trip.
    pub fn issue_token(&self, scope: &str) -> Result<String, LocalError> {
        let scopes = parse_scope(scope).map_err(|reason| LocalError::InvalidOption {
            option: "--scope",
            value: scope.to_owned(),
            reason,
        })?;
        self.signer()
            .sign(CLIENT_ID, &scopes, &serde_json::Map::new(), None)
    }

    /// Serves discovery, the JWKS and the token endpoint until `shutdown` completes, then
    /// finishes the requests in flight and returns.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), LocalError> {
        let state = Arc::new(IdpState {
            discovery: self.discovery().to_string(),
            jwks: serde_json::to_string(&self.jwks).unwrap_or_default(),
            signer: self.signer(),
        });
        let router = Router::new()
            .route(DISCOVERY_PATH, get(discovery))
            .route(OAUTH_METADATA_PATH, get(discovery))
            .route(JWKS_PATH, get(jwks))
            .route(TOKEN_PATH, post(token))
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(state);
        tracing::info!(issuer = %self.issuer, kid = %self.kid, "dev identity provider listening");
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| LocalError::Serve {
                what: "identity provider",
                source,
            })
    }

    fn signer(&self) -> Signer {
        Signer {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            lifetime: self.lifetime,
            clock: Arc::clone(&self.clock),
            key: self.key.clone(),
            kid: self.kid.clone(),
        }
    }

    fn discovery(&self) -> serde_json::Value {
        let mut doc = json!({
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri(),
            "token_endpoint": self.token_endpoint(),
            "grant_types_supported": ["client_credentials"],
            "dpop_signing_alg_values_supported": crate::token::Alg::DEFAULT_ALLOWED
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>(),
            // No authorization endpoint: nothing here is obtained through a browser.
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "scp", "cnf"],
        });
        if !self.scopes_supported.is_empty() {
            doc["scopes_supported"] = json!(self.scopes_supported);
        }
        doc
    }
}

/// Fetches a fresh access token from a token endpoint (the dev provider's, usually) with the
/// `client_credentials` grant as the dev client, and returns the bare JWT: the body of
/// `scopegate token --scope "email"`.
///
/// `scopes` is space-delimited; empty asks for no scope (a token that grants nothing, handy
/// to see a 403). The client authenticates with HTTP Basic. The exchange is bounded: 10 s,
/// no redirects, no proxy (the endpoint is on loopback), at most 64 KiB of answer.
pub async fn fetch_token(token_endpoint: &str, scopes: &str) -> Result<String, LocalError> {
    fetch_token_with(token_endpoint, scopes, &serde_json::Map::new()).await
}

/// [`fetch_token`] for a token that also carries `claims` (groups, a tenant id: what
/// mappings may require besides scopes), sent as the dev provider's `claims` parameter:
/// `scopegate token --claim groups=support-leads`.
///
/// # Errors
/// As [`fetch_token`].
pub async fn fetch_token_with(
    token_endpoint: &str,
    scopes: &str,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, LocalError> {
    fetch(token_endpoint, scopes, claims, None).await
}

/// [`fetch_token_with`] for a DPoP-bound token (RFC 9449 §5): `proof` is a DPoP proof for
/// `POST token_endpoint`, and the answer must be a `DPoP` token: `scopegate token --dpop`.
///
/// # Errors
/// As [`fetch_token`]; [`LocalError::TokenResponse`] when the provider answers with a bearer
/// token (it does not do DPoP).
pub async fn fetch_dpop_token(
    token_endpoint: &str,
    scopes: &str,
    claims: &serde_json::Map<String, serde_json::Value>,
    proof: &str,
) -> Result<String, LocalError> {
    fetch(token_endpoint, scopes, claims, Some(proof)).await
}

async fn fetch(
    token_endpoint: &str,
    scopes: &str,
    claims: &serde_json::Map<String, serde_json::Value>,
    proof: Option<&str>,
) -> Result<String, LocalError> {
    let url = token_endpoint.to_owned();
    let request_error = |source| LocalError::TokenRequest {
        url: url.clone(),
        source,
    };
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(request_error)?;
    let scope = scopes.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut form = vec![("grant_type", "client_credentials")];
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    let claims_json = serde_json::Value::Object(claims.clone()).to_string();
    if !claims.is_empty() {
        form.push(("claims", &claims_json));
    }
    let mut request = client
        .post(token_endpoint)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&form);
    if let Some(p) = proof {
        request = request.header("DPoP", p);
    }
    let mut response = request.send().await.map_err(request_error)?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request_error)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(LocalError::TokenResponse {
                url,
                reason: format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    if !status.is_success() {
        let error = match parsed.as_ref().and_then(|v| v.get("error")?.as_str()) {
            Some(code) => match parsed
                .as_ref()
                .and_then(|v| v.get("error_description")?.as_str())
            {
                Some(desc) => format!("{code}: {desc}"),
                None => code.to_owned(),
            },
            None => String::from_utf8_lossy(&body).chars().take(200).collect(),
        };
        return Err(LocalError::TokenRefused {
            url,
            status: status.as_u16(),
            error,
        });
    }
    let Some(answer) = parsed else {
        return Err(LocalError::TokenResponse {
            url,
            reason: "the answer is not JSON".to_owned(),
        });
    };
    let token_type = answer.get("token_type").and_then(|v| v.as_str());
    let expected = if proof.is_some() { "DPoP" } else { "Bearer" };
    if !token_type.is_some_and(|t| t.eq_ignore_ascii_case(expected)) {
        return Err(LocalError::TokenResponse {
            url,
            reason: format!("token_type is {token_type:?}, expected {expected:?}"),
        });
    }
    match answer.get("access_token").and_then(|v| v.as_str()) {
        Some(token) if !token.is_empty() => Ok(token.to_owned()),
        _ => Err(LocalError::TokenResponse {
            url,
            reason: "no access_token in the answer".to_owned(),
        }),
    }
}

/// Generates the P-256 key and its public JWK (with `kid`, `alg`, `use`).
fn generate_key() -> Result<(EncodingKey, Jwk), LocalError> {
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(LocalError::KeyGeneration)?;
    let pkcs8 = pair.to_pkcs8v1().map_err(LocalError::KeyGeneration)?;
    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let jwt_error = |what| move |source| LocalError::Jwt { what, source };
    // from_encoding_key exports only the public coordinates (x, y), never `d`.
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)
        .map_err(jwt_error("export the public JWK"))?;
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(jwt_error("compute the key's thumbprint"))?;
    jwk.common.key_id = Some(kid);
    Ok((key, jwk))
}

/// What the token endpoint needs to sign; cloned out of [`DevIdp`] at serve time.
struct Signer {
    issuer: String,
    audience: String,
    lifetime: u64,
    clock: Arc<dyn Clock>,
    key: EncodingKey,
    kid: String,
}

/// The claims of an issued access token (RFC 9068 section 2.2, plus Okta's `scp`).
#[derive(Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    scope: String,
    scp: &'a [String],
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    /// `{"jkt": ...}` for a DPoP-bound token.
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<serde_json::Value>,
    /// The claims the request asked for besides (never one of the above).
    #[serde(flatten)]
    extra: &'a serde_json::Map<String, serde_json::Value>,
}

impl Signer {
    fn sign(
        &self,
        client_id: &str,
        scopes: &[String],
        extra: &serde_json::Map<String, serde_json::Value>,
        jkt: Option<&str>,
    ) -> Result<String, LocalError> {
        let now = self.clock.now();
        let claims = AccessTokenClaims {
            iss: &self.issuer,
            sub: client_id,
            aud: &self.audience,
            client_id,
            scope: scopes.join(" "),
            scp: scopes,
            iat: now,
            nbf: now,
            exp: now.saturating_add(self.lifetime),
            jti: random_id()?,
            cnf: jkt.map(|k| json!({ "jkt": k })),
            extra,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|source| LocalError::Jwt {
            what: "sign a token",
            source,
        })
    }
}

/// 128 random bits, hex: a `jti`.
fn random_id() -> Result<String, LocalError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(LocalError::KeyGeneration)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

struct IdpState {
    discovery: String,
    jwks: String,
    signer: Signer,
}

fn json_body(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn discovery(State(state): State<Arc<IdpState>>) -> Response {
    json_body(StatusCode::OK, state.discovery.clone())
}

async fn jwks(State(state): State<Arc<IdpState>>) -> Response {
    json_body(StatusCode::OK, state.jwks.clone())
}

/// An RFC 6749 section 5.2 error answer.
#[derive(Debug, PartialEq, Eq)]
struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
        }
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "error_description": self.description });
        let mut response = json_body(self.status, body.to_string());
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 section 5.2: a 401 for invalid_client carries the scheme to use.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"scopegate-local\""),
            );
        }
        response
    }
}

async fn token(
    State(state): State<Arc<IdpState>>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let result = match form {
        Ok(Form(params)) => token_request(&headers, &params),
        Err(rejection) => {
            let mut error = OAuthError::bad_request(
                "invalid_request",
                format!("expected an application/x-www-form-urlencoded body: {rejection}"),
            );
            // RFC 6749 says 400, but a body over the limit is better told as such.
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                error.status = StatusCode::PAYLOAD_TOO_LARGE;
            }
            Err(error)
        }
    };
    let request = result.and_then(|r| Ok((dpop_binding(&state.signer, &headers)?, r)));
    let (jkt, request) = match request {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(error = error.code, description = %error.description, "token request refused");
            return error.into_response();
        }
    };
    match state.signer.sign(
        &request.client_id,
        &request.scopes,
        &request.claims,
        jkt.as_deref(),
    ) {
        Ok(access_token) => {
            tracing::debug!(scope = %request.scopes.join(" "), dpop = jkt.is_some(), "token issued");
            let body = json!({
                "access_token": access_token,
                "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
                "expires_in": state.signer.lifetime,
                "scope": request.scopes.join(" "),
            });
            let mut response = json_body(StatusCode::OK, body.to_string());
            // RFC 6749 section 5.1: token responses must not be cached.
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => {
            tracing::error!(error = %error, "cannot sign a token");
            OAuthError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "server_error",
                description: "cannot sign the token".to_owned(),
            }
            .into_response()
        }
    }
}

/// RFC 9449 §5: the thumbprint of the key a token request's `DPoP` proof was signed with, or
/// `None` without a proof. A proof is checked as the authorizer checks one, for `POST` this
/// token endpoint; several `DPoP` headers, or a bad proof, are `invalid_dpop_proof`.
fn dpop_binding(signer: &Signer, headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    use crate::token::dpop::{verify_token_request, PathForm, Rules, Target};
    let bad = |why: String| OAuthError::bad_request("invalid_dpop_proof", why);
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(bad("several DPoP headers".to_owned()));
    }
    let proof = first
        .to_str()
        .map_err(|_| bad("the DPoP header is not text".to_owned()))?;
    let target = Target {
        method: "POST",
        origin: &signer.issuer,
        path: TOKEN_PATH,
        form: PathForm::Encoded,
    };
    let rules = Rules {
        algorithms: crate::token::Alg::DEFAULT_ALLOWED.into_iter().collect(),
        max_age: 60,
    };
    let (_, jkt) = verify_token_request(proof, target, signer.clock.now(), rules)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Some(jkt))
}

/// A valid token request.
#[derive(Debug, PartialEq, Eq)]
struct TokenRequest {
    client_id: String,
    scopes: Vec<String>,
    /// Claims to issue besides the standard ones (the dev provider's `claims` parameter).
    claims: serde_json::Map<String, serde_json::Value>,
}

/// The claims the dev provider sets itself: a `claims` parameter may not name them.
const ISSUED_CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "client_id",
    "scope",
    "scp",
    "iat",
    "nbf",
    "exp",
    "jti",
    "azp",
    "cnf",
];

/// The dev provider's `claims` parameter: a JSON object of claims to issue besides the
/// standard ones (groups, a tenant id), so that local mode can try mappings that require
/// them. Never one the provider sets itself.
fn parse_claims(
    param: Option<&str>,
) -> Result<serde_json::Map<String, serde_json::Value>, OAuthError> {
    let Some(text) = param else {
        return Ok(serde_json::Map::new());
    };
    let bad = |why: String| OAuthError::bad_request("invalid_request", why);
    let serde_json::Value::Object(claims) = serde_json::from_str(text)
        .map_err(|_| bad("claims is not JSON: give a JSON object of claims".to_owned()))?
    else {
        return Err(bad("claims is not a JSON object".to_owned()));
    };
    if let Some(k) = claims.keys().find(|k| ISSUED_CLAIMS.contains(&k.as_str())) {
        return Err(bad(format!(
            "claims may not set {k:?}: the provider sets it"
        )));
    }
    Ok(claims)
}

/// Checks a token request (pure: headers and form in, request or RFC 6749 error out).
fn token_request(
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<TokenRequest, OAuthError> {
    // RFC 6749 section 3.2: parameters must not be repeated.
    for (i, (name, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(n, _)| n == name) {
            return Err(OAuthError::bad_request(
                "invalid_request",
                format!("parameter {name:?} is repeated"),
            ));
        }
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    match param("grant_type") {
        None => {
            return Err(OAuthError::bad_request(
                "invalid_request",
                "grant_type is missing",
            ))
        }
        Some("client_credentials") => {}
        Some(other) => {
            return Err(OAuthError::bad_request(
                "unsupported_grant_type",
                format!("grant type {other:?} is not supported; only client_credentials is"),
            ))
        }
    }
    let client_id = authenticate(headers, param("client_id"), param("client_secret"))?;
    let scopes = parse_scope(param("scope").unwrap_or(""))
        .map_err(|reason| OAuthError::bad_request("invalid_scope", reason))?;
    let claims = parse_claims(param("claims"))?;
    Ok(TokenRequest {
        client_id,
        scopes,
        claims,
    })
}

/// Client authentication: HTTP Basic or form credentials, which must be the dev client's, or
/// none at all (served as the dev client; see the module docs).
fn authenticate(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<String, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(parse_basic(value).ok_or_else(|| {
            OAuthError::invalid_client("the Authorization header is not valid HTTP Basic")
        })?),
    };
    let (id, secret) = match (basic, form_id, form_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            // RFC 6749 section 2.3: one authentication method per request.
            return Err(OAuthError::bad_request(
                "invalid_request",
                "client credentials are given both in the Authorization header and in the form",
            ));
        }
        (Some((id, secret)), None, None) => (id, Some(secret)),
        (None, Some(id), secret) => (id.to_owned(), secret.map(str::to_owned)),
        (None, None, Some(_)) => {
            return Err(OAuthError::bad_request(
                "invalid_request",
                "client_secret without client_id",
            ))
        }
        (None, None, None) => return Ok(CLIENT_ID.to_owned()),
    };
    let secret_ok = secret.is_some_and(|s| {
        aws_lc_rs::constant_time::verify_slices_are_equal(s.as_bytes(), CLIENT_SECRET.as_bytes())
            .is_ok()
    });
    if id == CLIENT_ID && secret_ok {
        Ok(id)
    } else {
        Err(OAuthError::invalid_client(format!(
            "unknown client or wrong secret; the dev client is {CLIENT_ID} / {CLIENT_SECRET}"
        )))
    }
}

/// `Basic base64(form-encoded id ":" form-encoded secret)` (RFC 6749 section 2.3.1).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// application/x-www-form-urlencoded decoding of one value (`+` is a space, `%XX` a byte).
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Splits a `scope` parameter into scope tokens, checking RFC 6749 section 3.3's syntax
/// (`%x21 / %x23-5B / %x5D-7E`), dropping duplicates and keeping the order asked for.
fn parse_scope(scope: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        if let Some(bad) = token
            .chars()
            .find(|&c| !matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
        {
            return Err(format!(
                "scope {token:?} contains {bad:?}, which RFC 6749 does not allow in a scope"
            ));
        }
        if !out.iter().any(|s| s == token) {
            out.push(token.to_owned());
        }
    }
    if out.len() > MAX_SCOPES {
        return Err(format!(
            "{} scopes asked for; at most {MAX_SCOPES}",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::Value;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let cred = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {cred}")).unwrap(),
        );
        headers
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn token_request_accepts_the_dev_client_or_no_credentials() {
        let form = params(&[
            ("grant_type", "client_credentials"),
            ("scope", "email  profile email"),
        ]);
        let expected = TokenRequest {
            client_id: CLIENT_ID.to_owned(),
            scopes: vec!["email".to_owned(), "profile".to_owned()],
            claims: serde_json::Map::new(),
        };
        assert_eq!(token_request(&HeaderMap::new(), &form), Ok(expected));
        let ok = token_request(&basic(CLIENT_ID, CLIENT_SECRET), &form).unwrap();
        assert_eq!(ok.client_id, CLIENT_ID);
        let mut post = form.clone();
        post.extend(params(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]));
        assert!(token_request(&HeaderMap::new(), &post).is_ok());
    }

    /// The dev provider issues claims besides the scopes when asked (local mode's way to try
    /// mappings that require groups or a tenant), never one it sets itself.
    #[test]
    fn token_request_takes_extra_claims_but_not_the_issued_ones() {
        let with = |claims: &str| {
            token_request(
                &HeaderMap::new(),
                &params(&[("grant_type", "client_credentials"), ("claims", claims)]),
            )
        };
        let ok = with(r#"{"groups":["support-leads"],"tenant_id":"acme"}"#).unwrap();
        assert_eq!(ok.claims["tenant_id"], "acme");
        for bad in [
            r#"{"sub":"admin"}"#,
            r#"{"scope":"admin"}"#,
            r#"["x"]"#,
            "{",
        ] {
            assert_eq!(with(bad).unwrap_err().code, "invalid_request", "{bad}");
        }
    }

    #[test]
    fn token_request_refusals_follow_rfc_6749() {
        let code = |headers: &HeaderMap, pairs: &[(&str, &str)]| {
            token_request(headers, &params(pairs)).unwrap_err()
        };
        let none = HeaderMap::new();
        let e = code(&none, &[("grant_type", "password")]);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "unsupported_grant_type")
        );
        assert_eq!(code(&none, &[]).code, "invalid_request");
        let repeated = [
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ];
        assert_eq!(code(&none, &repeated).code, "invalid_request");
        let e = code(
            &basic(CLIENT_ID, "nope"),
            &[("grant_type", "client_credentials")],
        );
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNAUTHORIZED, "invalid_client")
        );
        let e = code(
            &none,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "someone"),
            ],
        );
        assert_eq!(e.code, "invalid_client");
        let both = [
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
        ];
        assert_eq!(
            code(&basic(CLIENT_ID, CLIENT_SECRET), &both).code,
            "invalid_request"
        );
        let bad_scope = [("grant_type", "client_credentials"), ("scope", "a\"b")];
        assert_eq!(code(&none, &bad_scope).code, "invalid_scope");
    }

    #[test]
    fn form_decoding_of_basic_credentials() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
    }

    #[tokio::test]
    async fn issued_tokens_verify_with_the_published_key() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let clock = Arc::new(crate::clock::ManualClock::new(1_700_000_000));
        let idp = DevIdp::bind(listener).unwrap().with_clock(clock);
        let token = idp.issue_token("email profile").unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(idp.kid()));
        let jwk = idp.jwks().find(idp.kid()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.set_audience(&[DEFAULT_AUDIENCE]);
        validation.set_issuer(&[idp.issuer()]);
        let data = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims["scope"], "email profile");
        assert_eq!(data.claims["scp"], json!(["email", "profile"]));
        assert_eq!(
            data.claims["exp"],
            1_700_000_000u64 + DEFAULT_TOKEN_LIFETIME
        );
        // The published JWK is public only.
        let published = serde_json::to_value(idp.jwks()).unwrap();
        assert!(published["keys"][0].get("d").is_none());
    }
}
