//! Local mode over real sockets: the dev identity provider and the gateway bound to
//! `127.0.0.1:0`, driven with reqwest, stopped through their shutdown futures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::error::*;
use super::gateway;
use super::gateway::*;
use super::idp::*;

const API: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123";
const EXPLICIT: &str = "User is not authorized to access this resource with an explicit deny";
const IMPLICIT: &str = "User is not authorized to access this resource";

/// A running server: where it is, how to stop it, and its task.
struct Running {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), LocalError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let finished = tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("the server stops on shutdown");
        finished.unwrap().unwrap();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn start_idp() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = DevIdp::bind(listener)
        .unwrap()
        .with_scopes_supported(["email"]);
    let base = idp.issuer().to_owned();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(idp.serve(async move {
        let _ = stopped.await;
    }));
    Running {
        base,
        stop: Some(stop),
        task,
    }
}

async fn start_gateway<A: Authorize>(authorizer: Arc<A>, opts: GatewayOptions) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/{}", listener.local_addr().unwrap(), opts.stage);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway::serve(listener, authorizer, opts, async move {
        let _ = stopped.await;
    }));
    Running {
        base,
        stop: Some(stop),
        task,
    }
}

async fn get_json(url: &str) -> Value {
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// A fake authorizer that answers by the token's last segment and records every event.
#[derive(Default)]
struct Fake {
    events: Mutex<Vec<Value>>,
}

impl Fake {
    fn calls(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    fn last_event(&self) -> Value {
        self.events.lock().unwrap().last().cloned().unwrap()
    }
}

fn policy(effect: &str, resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]})
}

impl Authorize for Fake {
    fn authorize(
        &self,
        event: Value,
    ) -> impl std::future::Future<Output = Result<Value, AuthorizeError>> + Send {
        self.events.lock().unwrap().push(event.clone());
        let token = event["authorizationToken"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        async move {
            match token.rsplit('.').next().unwrap_or("") {
                "allow" => Ok(json!({
                    "principalId": "user",
                    "policyDocument": policy("Allow", &format!("{API}/dev/GET/my-resource")),
                    "context": {"scope": "email", "client_id": "scopegate-local"},
                })),
                "denyall" => {
                    Ok(json!({"principalId": "user", "policyDocument": policy("Deny", "*")}))
                }
                "root" => Ok(
                    json!({"principalId": "user", "policyDocument": policy("Allow", &format!("{API}/dev/GET/"))}),
                ),
                "nested" => Ok(json!({
                    "principalId": "user",
                    "policyDocument": policy("Allow", "*"),
                    "context": {"claims": {"sub": "x"}},
                })),
                "fault" => Err(AuthorizeError::Fault("boom".into())),
                _ => Err(AuthorizeError::Unauthorized),
            }
        }
    }
}

fn options(ttl: u32) -> GatewayOptions {
    GatewayOptions {
        authorizer_ttl: ttl,
        ..GatewayOptions::new(
            API,
            "dev",
            vec![
                Route::new("GET", "my-resource"),
                Route::new("POST", "my-resource"),
                Route::new("GET", ""),
            ],
        )
    }
}

struct Answer {
    status: u16,
    cache: Option<String>,
    error_type: Option<String>,
    www_authenticate: Option<String>,
    body: Value,
}

async fn call(method: reqwest::Method, url: &str, token: Option<&str>) -> Answer {
    let mut request = client().request(method, url);
    if let Some(token) = token {
        request = request.header("Authorization", token);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (cache, error_type) = (header(CACHE_HEADER), header("x-amzn-errortype"));
    let www_authenticate = header("www-authenticate");
    let status = response.status().as_u16();
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    Answer {
        status,
        cache,
        error_type,
        www_authenticate,
        body,
    }
}

async fn get(url: &str, token: Option<&str>) -> Answer {
    call(reqwest::Method::GET, url, token).await
}

#[tokio::test]
async fn the_gateway_rejects_before_the_authorizer_like_api_gateway() {
    let fake = Arc::new(Fake::default());
    let gw = start_gateway(Arc::clone(&fake), options(DEFAULT_AUTHORIZER_TTL)).await;
    let url = format!("{}/my-resource", gw.base);

    // No token source header: 401 without calling the authorizer, and (RFC 6750 3.1) a
    // challenge without an error code: the client sent nothing to be wrong.
    let a = get(&url, None).await;
    assert_eq!(
        (a.status, &a.body),
        (401, &json!({"message": "Unauthorized"}))
    );
    assert_eq!(a.www_authenticate.as_deref(), Some("Bearer"));
    assert_eq!(a.cache, None);
    // A token that fails the validation regex (the seed's third curl).
    let a = get(&url, Some("Bearer ThisIsNotAJWT")).await;
    assert_eq!(
        (a.status, &a.body),
        (
            401,
            &json!({"message": "Unauthorized", "error": "invalid_token"})
        )
    );
    assert_eq!(a.error_type.as_deref(), Some("UnauthorizedException"));
    assert_eq!(
        a.www_authenticate.as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    let a = get(&url, Some("aaa.bbb.allow")).await;
    assert_eq!(a.status, 401, "the default regex wants the Bearer prefix");
    // Unknown path, unknown method on a known path, another stage: Missing Authentication Token.
    let mat = json!({"message": "Missing Authentication Token"});
    for (method, url) in [
        (reqwest::Method::GET, format!("{}/other", gw.base)),
        (reqwest::Method::DELETE, url.clone()),
        (reqwest::Method::GET, url.replace("/dev/", "/prod/")),
    ] {
        let a = call(method, &url, Some("Bearer aaa.bbb.allow")).await;
        assert_eq!((a.status, &a.body), (403, &mat), "{url}");
    }
    assert_eq!(fake.calls(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn the_cached_policy_is_re_evaluated_for_each_method_arn() {
    let fake = Arc::new(Fake::default());
    let gw = start_gateway(Arc::clone(&fake), options(DEFAULT_AUTHORIZER_TTL)).await;
    let url = format!("{}/my-resource", gw.base);
    let token = "Bearer aaa.bbb.allow";

    let a = get(&url, Some(token)).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.cache.as_deref(), Some("miss"));
    assert_eq!(a.body["statusCode"], 200);
    assert_eq!(a.body["message"], "Hello from API Gateway!");
    assert_eq!(a.body["principalId"], "user");
    assert_eq!(
        a.body["context"],
        json!({"scope": "email", "client_id": "scopegate-local"})
    );
    assert_eq!(
        fake.last_event(),
        json!({"type": "TOKEN", "authorizationToken": token, "methodArn": format!("{API}/dev/GET/my-resource")})
    );

    // Same token, a method the policy does not allow: the cached answer, implicit deny.
    let a = call(reqwest::Method::POST, &url, Some(token)).await;
    assert_eq!(
        (a.status, &a.body),
        (
            403,
            &json!({"Message": IMPLICIT, "error": "insufficient_scope"})
        )
    );
    assert_eq!(
        a.www_authenticate.as_deref(),
        Some(r#"Bearer error="insufficient_scope""#)
    );
    assert_eq!(a.cache.as_deref(), Some("hit"));
    // A trailing slash is part of the methodArn, so the policy for my-resource does not cover it.
    let a = get(&format!("{url}/"), Some(token)).await;
    assert_eq!((a.status, a.cache.as_deref()), (403, Some("hit")));
    let a = get(&url, Some(token)).await;
    assert_eq!((a.status, a.cache.as_deref()), (200, Some("hit")));
    assert_eq!(fake.calls(), 1, "one authorizer call for the whole TTL");

    // An explicit deny.
    let a = get(&url, Some("Bearer aaa.bbb.denyall")).await;
    assert_eq!(
        (a.status, &a.body),
        (
            403,
            &json!({"Message": EXPLICIT, "error": "insufficient_scope"})
        )
    );
    assert_eq!(a.error_type.as_deref(), Some("AccessDeniedException"));
    assert_eq!(a.cache.as_deref(), Some("miss"));

    // Unauthorized from the authorizer: 401, not cached.
    for _ in 0..2 {
        let a = get(&url, Some("Bearer aaa.bbb.expired")).await;
        assert_eq!(
            (a.status, &a.body),
            (
                401,
                &json!({"message": "Unauthorized", "error": "invalid_token"})
            )
        );
        assert_eq!(
            a.www_authenticate.as_deref(),
            Some(r#"Bearer error="invalid_token""#)
        );
        assert_eq!(a.cache.as_deref(), Some("miss"));
    }
    // A fault, or an answer API Gateway would refuse: template.yaml's 503, no detail.
    for token in ["Bearer aaa.bbb.fault", "Bearer aaa.bbb.nested"] {
        let a = get(&url, Some(token)).await;
        assert_eq!(
            (a.status, &a.body),
            (503, &json!({"message": "Service Unavailable"})),
            "{token}"
        );
        assert_eq!(a.www_authenticate, None);
        assert_eq!(
            a.error_type.as_deref(),
            Some("AuthorizerConfigurationException")
        );
    }
    assert_eq!(fake.calls(), 6);
    gw.stop().await;
}

#[tokio::test]
async fn ttl_zero_calls_the_authorizer_every_time() {
    let fake = Arc::new(Fake::default());
    let gw = start_gateway(Arc::clone(&fake), options(0)).await;
    let url = format!("{}/my-resource", gw.base);
    for n in 1..=3 {
        let a = get(&url, Some("Bearer aaa.bbb.allow")).await;
        assert_eq!((a.status, a.cache.as_deref()), (200, Some("miss")));
        assert_eq!(fake.calls(), n);
    }
    gw.stop().await;
}

#[tokio::test]
async fn the_root_resource_method_arn_ends_in_a_slash() {
    let fake = Arc::new(Fake::default());
    let gw = start_gateway(Arc::clone(&fake), options(0)).await;
    for url in [gw.base.clone(), format!("{}/", gw.base)] {
        let a = get(&url, Some("Bearer aaa.bbb.root")).await;
        assert_eq!(a.status, 200, "{url}");
        assert_eq!(fake.last_event()["methodArn"], format!("{API}/dev/GET/"));
    }
    gw.stop().await;
}

#[tokio::test]
async fn bad_options_are_refused_before_serving() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = GatewayOptions {
        authorizer_ttl: 3601,
        ..options(0)
    };
    let err = gateway::serve(listener, Arc::new(Fake::default()), opts, async {})
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid --authorizer-ttl \"3601\": must be 0 to 3600 seconds (API Gateway's range; 0 disables caching)"
    );
}

#[tokio::test]
async fn the_dev_idp_serves_discovery_jwks_and_verifiable_tokens() {
    let idp = start_idp().await;
    let discovery = get_json(&format!("{}/.well-known/openid-configuration", idp.base)).await;
    assert_eq!(discovery["issuer"], idp.base.as_str());
    assert_eq!(
        discovery["grant_types_supported"],
        json!(["client_credentials"])
    );
    assert_eq!(discovery["scopes_supported"], json!(["email"]));
    let token_endpoint = discovery["token_endpoint"].as_str().unwrap().to_owned();
    let jwks: JwkSet =
        serde_json::from_value(get_json(discovery["jwks_uri"].as_str().unwrap()).await).unwrap();
    let raw_jwks = serde_json::to_value(&jwks).unwrap();
    assert_eq!(raw_jwks["keys"][0]["use"], "sig");
    assert_eq!(raw_jwks["keys"][0]["alg"], "ES256");
    assert!(raw_jwks["keys"][0].get("d").is_none(), "public key only");

    let token = fetch_token(&token_endpoint, "email  profile")
        .await
        .unwrap();
    // A real signature check, with the key found by kid in the published JWKS.
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[DEFAULT_AUDIENCE]);
    validation.set_issuer(&[idp.base.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
    let claims =
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap()
            .claims;
    assert_eq!(claims["scope"], "email profile");
    assert_eq!(claims["sub"], CLIENT_ID);
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 32));

    // The raw token response, without credentials (served as the dev client).
    let response = client()
        .post(&token_endpoint)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "");
    idp.stop().await;
}

#[tokio::test]
async fn the_dev_idp_refuses_with_rfc_6749_errors() {
    let idp = start_idp().await;
    let token_endpoint = format!("{}/token", idp.base);
    let response = client()
        .post(&token_endpoint)
        .form(&[("grant_type", "password"), ("username", "u")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");

    let response = client()
        .post(&token_endpoint)
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));

    let response = client()
        .post(&token_endpoint)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413, "request bodies are bounded");

    match fetch_token(&token_endpoint, "bad\"scope").await {
        Err(LocalError::TokenRefused { status, error, .. }) => {
            assert_eq!(status, 400);
            assert!(error.starts_with("invalid_scope"), "{error}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    idp.stop().await;
    // Nothing listens any more.
    assert!(matches!(
        fetch_token(&token_endpoint, "email").await,
        Err(LocalError::TokenRequest { .. })
    ));
}

/// An authorizer that trusts the dev provider the way the real one trusts Okta: discovery,
/// then the JWKS, then a signature, issuer and audience check; scope `email` grants GET
/// my-resource, anything else gets the deny-all policy.
struct JwksAuthorizer {
    issuer: String,
    jwks: JwkSet,
    calls: AtomicUsize,
}

impl JwksAuthorizer {
    async fn discover(issuer: &str) -> Self {
        let discovery = get_json(&format!("{issuer}/.well-known/openid-configuration")).await;
        let jwks = get_json(discovery["jwks_uri"].as_str().unwrap()).await;
        Self {
            issuer: discovery["issuer"].as_str().unwrap().to_owned(),
            jwks: serde_json::from_value(jwks).unwrap(),
            calls: AtomicUsize::new(0),
        }
    }

    fn decide(&self, event: &Value) -> Result<Value, AuthorizeError> {
        let token = event["authorizationToken"].as_str().unwrap_or("");
        let token = token
            .strip_prefix("Bearer ")
            .ok_or(AuthorizeError::Unauthorized)?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthorizeError::Unauthorized)?;
        let jwk = header
            .kid
            .as_deref()
            .and_then(|kid| self.jwks.find(kid))
            .ok_or(AuthorizeError::Unauthorized)?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| AuthorizeError::Unauthorized)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[DEFAULT_AUDIENCE]);
        validation.set_issuer(&[&self.issuer]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|_| AuthorizeError::Unauthorized)?
            .claims;
        let scopes = claims["scope"].as_str().unwrap_or("");
        let document = if scopes.split(' ').any(|s| s == "email") {
            policy("Allow", &format!("{API}/dev/GET/my-resource"))
        } else {
            policy("Deny", "*")
        };
        Ok(
            json!({"principalId": claims["sub"], "policyDocument": document, "context": {"scope": scopes}}),
        )
    }
}

impl Authorize for JwksAuthorizer {
    fn authorize(
        &self,
        event: Value,
    ) -> impl std::future::Future<Output = Result<Value, AuthorizeError>> + Send {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let decision = self.decide(&event);
        async move { decision }
    }
}

#[tokio::test]
async fn the_seeds_three_curl_cases_end_to_end() {
    let idp = start_idp().await;
    let authorizer = Arc::new(JwksAuthorizer::discover(&idp.base).await);
    let gw = start_gateway(Arc::clone(&authorizer), options(DEFAULT_AUTHORIZER_TTL)).await;
    let url = format!("{}/my-resource", gw.base);
    let token_endpoint = format!("{}/token", idp.base);

    let email = fetch_token(&token_endpoint, "email").await.unwrap();
    let a = get(&url, Some(&format!("Bearer {email}"))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["context"]["scope"], "email");

    let none = fetch_token(&token_endpoint, "").await.unwrap();
    let a = get(&url, Some(&format!("Bearer {none}"))).await;
    assert_eq!(
        (a.status, &a.body),
        (
            403,
            &json!({"Message": EXPLICIT, "error": "insufficient_scope"})
        )
    );

    let a = get(&url, Some("Bearer ThisIsNotAJWT")).await;
    assert_eq!(a.status, 401);
    assert_eq!(authorizer.calls.load(Ordering::SeqCst), 2);

    gw.stop().await;
    idp.stop().await;
}
