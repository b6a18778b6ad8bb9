//! Issue 8's token-side fault matrix, through the whole authorizer: a JWKS endpoint on a
//! loopback socket that goes down, hangs past the timeout, serves garbage or too much, and
//! an introspection endpoint that is down or slow. In every case: no Allow for a token that
//! cannot be verified, no crash, and recovery at the first request once the provider is back
//! (the cooldown is zero here, so "within one cooldown" is "at once").

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use scopegate::authorizer::{AuthorizeError, Authorizer};
use scopegate::clock::{Clock, SystemClock};
use scopegate::config::{Config, IntrospectMode, IntrospectionConfig, IssuerConfig, JwksSource};
use scopegate::policy::{evaluate, Effect, Policy};
use scopegate::token::mint::SigningKey;
use scopegate::token::Alg;
use serde_json::{json, Value};

const ISS: &str = "https://idp.faults.test";
const ARN: &str = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2/dev/GET/my-resource";

/// What the fake provider does; every knob can change between requests.
#[derive(Default)]
struct Provider {
    jwks: Mutex<Value>,
    /// When set, served instead of the JWKS.
    raw: Mutex<Option<String>>,
    status: AtomicU16,
    /// When set, requests are never answered: the client's timeout is all that ends them.
    hang: AtomicBool,
    jwks_hits: AtomicUsize,
    introspection_hits: AtomicUsize,
}

async fn jwks(State(p): State<Arc<Provider>>) -> impl IntoResponse {
    p.jwks_hits.fetch_add(1, Ordering::SeqCst);
    pause(&p).await;
    let status = StatusCode::from_u16(p.status.load(Ordering::SeqCst)).unwrap();
    let body = p
        .raw
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| p.jwks.lock().unwrap().to_string());
    (status, body)
}

async fn introspect(State(p): State<Arc<Provider>>) -> impl IntoResponse {
    p.introspection_hits.fetch_add(1, Ordering::SeqCst);
    pause(&p).await;
    let status = StatusCode::from_u16(p.status.load(Ordering::SeqCst)).unwrap();
    let now = SystemClock.now();
    (
        status,
        json!({"active": true, "iss": ISS, "sub": "opaque-user", "scope": "email",
               "exp": now + 300})
        .to_string(),
    )
}

/// A hung provider: the request is held until the client gives up (no timer here; the
/// authorizer's own timeout is what is under test).
async fn pause(p: &Provider) {
    if p.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
}

async fn serve(p: Arc<Provider>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/jwks", get(jwks))
        .route("/introspect", post(introspect))
        .with_state(p);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn claims() -> Value {
    let now = SystemClock.now();
    json!({"iss": ISS, "sub": "u", "scope": "email", "exp": now + 600, "iat": now})
}

fn event(token: &str) -> Vec<u8> {
    json!({"type": "TOKEN", "authorizationToken": format!("Bearer {token}"), "methodArn": ARN})
        .to_string()
        .into_bytes()
}

struct Rig {
    provider: Arc<Provider>,
    base: String,
}

impl Rig {
    async fn start(published: &[&SigningKey]) -> Rig {
        let provider = Arc::new(Provider::default());
        *provider.jwks.lock().unwrap() = SigningKey::jwks(published);
        provider.status.store(200, Ordering::SeqCst);
        let base = serve(Arc::clone(&provider)).await;
        Rig { provider, base }
    }

    fn config(&self) -> Config {
        let mut config = Config::new(vec![IssuerConfig {
            issuer: ISS.into(),
            jwks: JwksSource::Url(format!("{}/jwks", self.base)),
        }]);
        config.jwks_cooldown = Duration::ZERO;
        config.http_timeout = Duration::from_millis(300);
        // Every request goes to the verifier: the cache would hide a recovery (or a fault).
        config.token_cache_ttl = Duration::ZERO;
        config
    }

    fn authorizer(&self, config: &Config) -> Authorizer {
        Authorizer::from_config(config).unwrap()
    }
}

/// `Ok(true)` for an Allow, `Ok(false)` for a policy that denies, `Err` for no policy.
async fn decide(a: &Authorizer, token: &str) -> Result<bool, AuthorizeError> {
    let answer = a.handle_json(&event(token)).await?;
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    let policy: Policy = serde_json::from_value(answer["policyDocument"].clone()).unwrap();
    Ok(evaluate(&policy, ARN) == Effect::Allow)
}

fn refused(r: &Result<bool, AuthorizeError>) -> bool {
    matches!(r, Err(AuthorizeError::Unauthorized(_)))
}

#[tokio::test]
async fn jwks_down_at_cold_start_fails_closed_then_recovers() {
    let key = SigningKey::generate(Alg::ES256, "k1");
    let rig = Rig::start(&[&key]).await;
    rig.provider.status.store(503, Ordering::SeqCst);
    let a = rig.authorizer(&rig.config());
    a.hydrate().await;
    let good = key.sign(&claims());
    for _ in 0..3 {
        assert!(refused(&decide(&a, &good).await));
    }
    rig.provider.status.store(200, Ordering::SeqCst);
    assert!(decide(&a, &good).await.unwrap(), "recovered");
}

#[tokio::test]
async fn jwks_down_while_warm_keeps_serving_known_keys_and_refuses_the_rest() {
    let key = SigningKey::generate(Alg::ES256, "k1");
    let rotated = SigningKey::generate(Alg::ES256, "k2");
    let rig = Rig::start(&[&key]).await;
    let a = rig.authorizer(&rig.config());
    a.hydrate().await;
    let good = key.sign(&claims());
    assert!(decide(&a, &good).await.unwrap());

    rig.provider.status.store(500, Ordering::SeqCst);
    assert!(decide(&a, &good).await.unwrap(), "known keys kept");
    let next = rotated.sign(&claims());
    assert!(
        refused(&decide(&a, &next).await),
        "an unknown kid cannot be checked"
    );

    // Rotated while down: once back, the new key verifies at the first request.
    *rig.provider.jwks.lock().unwrap() = SigningKey::jwks(&[&key, &rotated]);
    rig.provider.status.store(200, Ordering::SeqCst);
    assert!(decide(&a, &next).await.unwrap(), "recovered");
}

#[tokio::test]
async fn jwks_slower_than_the_timeout_fails_closed_then_recovers() {
    let key = SigningKey::generate(Alg::RS256, "k1");
    let rig = Rig::start(&[&key]).await;
    rig.provider.hang.store(true, Ordering::SeqCst);
    let a = rig.authorizer(&rig.config());
    a.hydrate().await;
    let good = key.sign(&claims());
    assert!(refused(&decide(&a, &good).await), "timed out: refused");
    rig.provider.hang.store(false, Ordering::SeqCst);
    assert!(decide(&a, &good).await.unwrap(), "recovered");
}

#[tokio::test]
async fn jwks_garbage_or_oversized_fails_closed_and_keeps_the_keys_held() {
    let key = SigningKey::generate(Alg::ES256, "k1");
    let stranger = SigningKey::generate(Alg::ES256, "k9");
    let rig = Rig::start(&[&key]).await;
    let a = rig.authorizer(&rig.config());
    a.hydrate().await;
    let good = key.sign(&claims());
    let unknown = stranger.sign(&claims());

    let huge = json!({"keys": [], "pad": "x".repeat(600 * 1024)}).to_string();
    for garbage in [
        "<html>not json</html>".to_owned(),
        "{\"keys\": 7}".to_owned(),
        json!({"keys": [{"kty": "RSA", "kid": "k9", "n": "!!", "e": "AQAB"}]}).to_string(),
        huge,
    ] {
        *rig.provider.raw.lock().unwrap() = Some(garbage);
        assert!(refused(&decide(&a, &unknown).await));
        assert!(decide(&a, &good).await.unwrap(), "old keys kept");
    }
    // A cold start on garbage has no keys at all: everything is refused, nothing allowed.
    let cold = rig.authorizer(&rig.config());
    cold.hydrate().await;
    assert!(refused(&decide(&cold, &good).await));
    *rig.provider.raw.lock().unwrap() = None;
    assert!(decide(&cold, &good).await.unwrap(), "recovered");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_cooldown() {
    let key = SigningKey::generate(Alg::ES256, "k1");
    let rig = Rig::start(&[&key]).await;
    let mut config = rig.config();
    config.jwks_cooldown = Duration::from_secs(3600);
    let a = rig.authorizer(&config);
    a.hydrate().await;
    let after_hydrate = rig.provider.jwks_hits.load(Ordering::SeqCst);
    for i in 0..100 {
        let forger = SigningKey::generate(Alg::ES256, &format!("flood-{i}"));
        assert!(refused(&decide(&a, &forger.sign(&claims())).await));
    }
    let fetches = rig.provider.jwks_hits.load(Ordering::SeqCst) - after_hydrate;
    assert!(
        fetches <= 1,
        "{fetches} fetches for 100 unknown kids in one cooldown"
    );
    assert!(decide(&a, &key.sign(&claims())).await.unwrap());
}

fn introspecting(rig: &Rig) -> Config {
    let mut config = rig.config();
    config.introspection = Some(IntrospectionConfig {
        mode: IntrospectMode::Opaque,
        url: Some(format!("{}/introspect", rig.base)),
        client_id: "authorizer".into(),
        client_secret: "s3cret".into(),
        cache_ttl: Duration::ZERO,
    });
    config
}

#[tokio::test]
async fn introspection_down_or_slow_fails_closed_then_recovers() {
    let key = SigningKey::generate(Alg::ES256, "k1");
    let rig = Rig::start(&[&key]).await;
    let a = rig.authorizer(&introspecting(&rig));
    let opaque = "opaque-token-value-0123456789";
    assert!(decide(&a, opaque).await.unwrap(), "up: allowed");

    rig.provider.status.store(503, Ordering::SeqCst);
    assert!(refused(&decide(&a, opaque).await), "down: refused");
    rig.provider.status.store(200, Ordering::SeqCst);
    rig.provider.hang.store(true, Ordering::SeqCst);
    assert!(refused(&decide(&a, opaque).await), "slow: refused");
    rig.provider.hang.store(false, Ordering::SeqCst);
    assert!(decide(&a, opaque).await.unwrap(), "recovered");
    assert!(rig.provider.introspection_hits.load(Ordering::SeqCst) >= 4);
}
