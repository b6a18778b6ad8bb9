//! The JWKS cache over a real loopback socket: hydration, the unknown-kid refetch (once,
//! rate limited), and keeping the old keys when a fetch fails. Time is a manual clock: the
//! cooldown passes when the test says so, not after a sleep. (Single flight is proven with
//! call counts and a held fetch in src/token/jwks.rs.)

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scopegate::clock::{Clock, ManualClock};
use scopegate::token::fetch::HttpFetcher;
use scopegate::token::jwks::KeyIo;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use scopegate::config::{Config, IssuerConfig, JwksSource};
use scopegate::token::mint::SigningKey;
use scopegate::token::{Alg, Rejection, Verifier};
use serde_json::{json, Value};

const ISS: &str = "https://idp.example.com";
const NOW: u64 = 1_800_000_000;

#[derive(Default)]
struct Served {
    jwks: Mutex<Value>,
    status: AtomicU16,
    hits: AtomicUsize,
}

async fn jwks(State(s): State<Arc<Served>>) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let status = StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap();
    (status, s.jwks.lock().unwrap().to_string())
}

async fn serve(served: Arc<Served>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/jwks", get(jwks)).with_state(served);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/jwks")
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "u", "scope": "email", "exp": NOW + 600, "iat": NOW})
}

/// A verifier over real HTTP whose cooldown runs on `clock`.
fn verifier(config: &Config, clock: &Arc<ManualClock>) -> Verifier {
    let io = KeyIo {
        fetch: Arc::new(HttpFetcher::new(config.http_timeout)),
        clock: Arc::clone(clock) as Arc<dyn Clock>,
        on_refetch: Arc::new(|_: &str, _: bool| {}),
    };
    Verifier::with_io(config, io).unwrap()
}

/// A JWKS endpoint publishing `key`, and a verifier trusting it with `cooldown`.
async fn start(key: &SigningKey, cooldown: Duration) -> (Arc<Served>, Verifier, Arc<ManualClock>) {
    let served = Arc::new(Served::default());
    *served.jwks.lock().unwrap() = SigningKey::jwks(&[key]);
    served.status.store(200, Ordering::SeqCst);
    let url = serve(Arc::clone(&served)).await;
    let mut config = Config::new(vec![IssuerConfig {
        issuer: ISS.into(),
        jwks: JwksSource::Url(url),
    }]);
    config.jwks_cooldown = cooldown;
    let clock = Arc::new(ManualClock::new(NOW));
    let v = verifier(&config, &clock);
    (served, v, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refetches_once_and_is_rate_limited() {
    let k1 = SigningKey::generate(Alg::ES256, "k1");
    let k2 = SigningKey::generate(Alg::ES256, "k2");
    let (served, v, clock) = start(&k1, Duration::from_secs(30)).await;
    let v = Arc::new(v);
    assert!(v.hydrate().await.is_empty());
    assert_eq!(served.hits.load(Ordering::SeqCst), 1);

    let now = NOW;
    assert!(v.verify(&k1.sign(&claims()), now).await.is_ok());
    assert_eq!(served.hits.load(Ordering::SeqCst), 1, "known kid: no fetch");

    // Twenty concurrent tokens with an unknown kid: one fetch between them (the fetch in
    // flight, then the cooldown).
    let unknown = k2.sign(&claims());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let v = Arc::clone(&v);
            let t = unknown.clone();
            tokio::spawn(async move { v.verify(&t, now).await })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Err(Rejection::UnknownKey)));
    }
    assert_eq!(served.hits.load(Ordering::SeqCst), 2, "one refetch");

    // The provider now publishes k2, but the cooldown holds: no fetch, still refused.
    *served.jwks.lock().unwrap() = SigningKey::jwks(&[&k1, &k2]);
    assert!(v.verify(&unknown, now).await.is_err());
    assert_eq!(served.hits.load(Ordering::SeqCst), 2, "rate limited");

    // After the cooldown, the next unknown kid fetches again and k2 verifies.
    clock.advance(30);
    assert!(v.verify(&unknown, now).await.is_ok());
    assert_eq!(served.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_keys_held() {
    let k1 = SigningKey::generate(Alg::RS256, "k1");
    let (served, v, _clock) = start(&k1, Duration::ZERO).await;
    assert!(v.hydrate().await.is_empty());

    served.status.store(500, Ordering::SeqCst);
    let now = NOW;
    let stranger = SigningKey::generate(Alg::RS256, "k9").sign(&claims());
    assert!(v.verify(&stranger, now).await.is_err());
    assert_eq!(served.hits.load(Ordering::SeqCst), 2, "it did try");
    assert!(
        v.verify(&k1.sign(&claims()), now).await.is_ok(),
        "old keys kept"
    );

    // An empty JWKS is a failure too, not a reason to drop every key.
    served.status.store(200, Ordering::SeqCst);
    *served.jwks.lock().unwrap() = json!({"keys": []});
    assert!(v.verify(&stranger, now).await.is_err());
    assert!(
        v.verify(&k1.sign(&claims()), now).await.is_ok(),
        "old keys kept"
    );
}

#[tokio::test]
async fn an_unreachable_provider_fails_closed() {
    let port = crate::support::free_port();
    let config = Config::new(vec![IssuerConfig {
        issuer: ISS.into(),
        jwks: JwksSource::Url(format!("http://127.0.0.1:{port}/jwks")),
    }]);
    let v = verifier(&config, &Arc::new(ManualClock::new(NOW)));
    assert_eq!(v.hydrate().await.len(), 1);
    let now = NOW;
    let t = SigningKey::generate(Alg::RS256, "k1").sign(&claims());
    assert!(matches!(
        v.verify(&t, now).await,
        Err(Rejection::UnknownKey)
    ));
}
