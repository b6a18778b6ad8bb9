//! The warm path, measured against its floor in the same run.
//!
//! - `raw/*`: aws-lc-rs signature verification with a pre-parsed key: the least any
//!   verifying authorizer can cost; `raw/parse_key_ES256`, what parsing a P-256 key costs
//!   (a DPoP proof brings its own).
//! - `warm/unseen_*`: event JSON in, response JSON out, with the verified-token cache off, so
//!   every iteration is an unseen token's full path (parse, verify, claims, policy, JSON).
//! - `warm/repeated`: the same with the cache on: a token API Gateway sends again.
//! - `replay/ndjson_RS256_per_event`: `scopegate invoke`'s path, per event: an NDJSON stream of
//!   1 000 events with distinct tokens read, answered with the token cache on (each token
//!   unseen and, seen once, only noted by the cache's doorkeeper), and written, as
//!   `admin::invoke::run` does; the time is per event, so it compares with `raw/verify_RS256`
//!   and `warm/unseen_RS256` directly. `replay/ndjson_RS256_thrice_per_event`: each token three
//!   times in a row, what the doorkeeper costs a token that comes back.
//! - `reject/*`: a forged token (a real token's header and signature over a payload of the
//!   attacker's) refused: a normal one, and one of 16 KiB whose payload is 2000 distinct
//!   scopes. Nothing before the signature may be
//!   super-linear, so the large one costs about its size more, not its size squared.
//! - `policy/*`: the policy for one grant from snapshots of 100, 10k and 100k entries, cached
//!   (what a request pays) and built (what the first request per scope set pays).
//! - `dpop/*`: a DPoP request (RFC 9449): a REST REQUEST event with an RS256 access token
//!   bound to the client's ES256 key and a fresh ES256 proof for this request, through every
//!   check of §4.3 and the in-container replay check. `unseen_token`: the token cache off
//!   (both signatures verified, against `raw/verify_RS256` + `raw/verify_ES256`);
//!   `repeated_token`: the token cached, as a client calling again with a new proof.
//! - `cold/*`: a cold start's work once the snapshot's bytes are in: the document of 1 000
//!   and 10 000 route entries parsed, validated and indexed (`load_*`), then also a 16-scope
//!   token's first policy built (`start_*`); against `cold/json_*`, the same bytes parsed as
//!   untyped JSON.

use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use scopegate::authorizer::Authorizer;
use scopegate::clock::ManualClock;
use scopegate::config::{Config, IssuerConfig, JwksSource};
use scopegate::mapping::StaticMappings;
use scopegate::mapping::{Mapping, Snapshot};
use scopegate::token::mint::SigningKey;
use scopegate::token::Alg;
use serde_json::json;

const ISS: &str = "https://idp.example.com";
const NOW: u64 = 1_800_000_000;
const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/GET/orders/7";

/// Polls a future that never waits (keys and mappings are in memory) to completion without
/// an executor, so the figures are the authorizer's and not a runtime's.
fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f)
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the warm path waited on I/O"),
    }
}

fn token(key: &SigningKey) -> String {
    key.sign(&json!({
        "iss": ISS, "sub": "00u1abcd2EFGH3ijk4x7", "aud": "api://default",
        "client_id": "0oa1bcd2efGH3iJK4x7", "scope": "openid profile email orders:read",
        "iat": NOW - 60, "exp": NOW + 3600, "jti": "AT.abcdefghijklmnop"
    }))
}

/// [`token`] with the claims identity providers add for groups, roles and tenants: ten
/// groups (Okta, Cognito), Keycloak's nested realm roles, a tenant id.
fn token_with_claims(key: &SigningKey) -> String {
    let groups: Vec<String> = (0..10).map(|i| format!("group-{i}")).collect();
    key.sign(&json!({
        "iss": ISS, "sub": "00u1abcd2EFGH3ijk4x7", "aud": "api://default",
        "client_id": "0oa1bcd2efGH3iJK4x7", "scope": "openid profile email orders:read",
        "iat": NOW - 60, "exp": NOW + 3600, "jti": "AT.abcdefghijklmnop",
        "groups": groups, "realm_access": {"roles": ["admin", "user", "offline_access"]},
        "tenant_id": "acme",
    }))
}

fn authorizer(jwks: &std::path::Path, cache_seconds: u64) -> Authorizer {
    authorizer_with(jwks, cache_seconds, &[])
}

/// [`authorizer`] reading `grant_claims` besides the scopes.
fn authorizer_with(
    jwks: &std::path::Path,
    cache_seconds: u64,
    grant_claims: &[&str],
) -> Authorizer {
    let mut config = Config::new(vec![IssuerConfig {
        issuer: ISS.into(),
        jwks: JwksSource::File(jwks.to_owned()),
    }]);
    config.grant_claims = grant_claims
        .iter()
        .map(|n| scopegate::claim::ClaimName::new(n).unwrap())
        .collect();
    config.audiences = vec!["api://default".into()];
    config.token_cache_ttl = std::time::Duration::from_secs(cache_seconds);
    let mappings = StaticMappings::from_config(&config).unwrap();
    Authorizer::new(&config, mappings, Arc::new(ManualClock::new(NOW))).unwrap()
}

/// An authorizer whose mappings grant each tenant its own orders
/// (`tenants/${claim:tenant_id}/orders/{id}`), reading the same claims as
/// [`authorizer_with`], no token cache.
fn bound_authorizer(jwks: &std::path::Path) -> Authorizer {
    let mut config = Config::new(vec![IssuerConfig {
        issuer: ISS.into(),
        jwks: JwksSource::File(jwks.to_owned()),
    }]);
    config.grant_claims = ["groups", "/realm_access/roles", "tenant_id"]
        .iter()
        .map(|n| scopegate::claim::ClaimName::new(n).unwrap())
        .collect();
    config.audiences = vec!["api://default".into()];
    config.token_cache_ttl = std::time::Duration::from_secs(0);
    let entry: Mapping = serde_json::from_value(json!({
        "api": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5", "stage": "dev",
        "method": "GET", "resource": "tenants/${claim:tenant_id}/orders/{id}",
        "scope": "orders:read"}))
    .unwrap();
    let mappings = StaticMappings(Arc::new(Snapshot::new(1, vec![entry])));
    Authorizer::new(&config, mappings, Arc::new(ManualClock::new(NOW))).unwrap()
}

fn event(token: &str) -> Vec<u8> {
    json!({"type": "TOKEN", "authorizationToken": format!("Bearer {token}"), "methodArn": ARN})
        .to_string()
        .into_bytes()
}

/// The time of `iters` events of `stream` (`events` of them) through `scopegate invoke`'s
/// path: one criterion iteration is one event, so whole streams are run, each with a fresh
/// authorizer (no token seen in an earlier stream), and their time scaled to `iters`.
fn replay_per_event(
    jwks: &std::path::Path,
    stream: &[u8],
    events: u64,
    iters: u64,
) -> std::time::Duration {
    let streams = iters.div_ceil(events);
    let mut out = Vec::with_capacity(stream.len());
    let mut total = std::time::Duration::ZERO;
    for _ in 0..streams {
        let fresh = authorizer(jwks, 300);
        out.clear();
        let started = std::time::Instant::now();
        ready(scopegate::admin::invoke::run(&fresh, stream, &mut out)).unwrap();
        total += started.elapsed();
    }
    total.mul_f64(iters as f64 / (streams * events) as f64)
}

fn bench_warm(c: &mut Criterion) {
    let rsa = SigningKey::generate(Alg::RS256, "rsa");
    let ec = SigningKey::generate(Alg::ES256, "ec");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(SigningKey::jwks(&[&rsa, &ec]).to_string().as_bytes())
        .unwrap();

    let mut g = c.benchmark_group("raw");
    for key in [&rsa, &ec] {
        let t = token(key);
        let (input, sig) = t.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let jwk = key.public_jwk();
        let parsed = if key.alg() == Alg::RS256 {
            let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
            let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
            RsaPublicKeyComponents {
                n: &n[..],
                e: &e[..],
            }
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .unwrap()
        } else {
            let mut point = vec![4u8];
            point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
            point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
            ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).unwrap()
        };
        g.bench_function(format!("verify_{}", key.alg()), |b| {
            b.iter(|| parsed.verify_sig(input.as_bytes(), &sig).unwrap())
        });
    }
    // What a DPoP proof's key costs to take in before its signature: the point of its `jwk`
    // parsed and checked (every proof carries its key; the authorizer parses it per proof).
    let jwk = ec.public_jwk();
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    g.bench_function("parse_key_ES256", |b| {
        b.iter(|| ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("warm");
    let uncached = authorizer(file.path(), 0);
    for key in [&rsa, &ec] {
        let ev = event(&token(key));
        assert!(ready(uncached.handle_json(&ev)).is_ok());
        g.bench_function(format!("unseen_{}", key.alg()), |b| {
            b.iter(|| ready(uncached.handle_json(&ev)).unwrap())
        });
    }
    // The same token with groups, nested roles and a tenant, read as grant claims: what
    // reading them adds per event.
    let with_claims = authorizer_with(
        file.path(),
        0,
        &["groups", "/realm_access/roles", "tenant_id"],
    );
    let ev = event(&token_with_claims(&rsa));
    assert!(ready(with_claims.handle_json(&ev)).is_ok());
    g.bench_function("unseen_RS256_claims", |b| {
        b.iter(|| ready(with_claims.handle_json(&ev)).unwrap())
    });
    // The same token on a tenant-bound route (`${claim:tenant_id}`, issue 21 §2): its
    // binding keys, and the policy cache keyed by the bound value.
    let bound = bound_authorizer(file.path());
    let ev = json!({"type": "TOKEN",
        "authorizationToken": format!("Bearer {}", token_with_claims(&rsa)),
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/GET/tenants/acme/orders/7"})
    .to_string()
    .into_bytes();
    let answer = ready(bound.handle_json(&ev)).unwrap();
    assert!(String::from_utf8_lossy(&answer).contains("tenants/acme/orders/*"));
    g.bench_function("unseen_RS256_bound", |b| {
        b.iter(|| ready(bound.handle_json(&ev)).unwrap())
    });
    let cached = authorizer(file.path(), 300);
    let ev = event(&token(&rsa));
    assert!(ready(cached.handle_json(&ev)).is_ok());
    g.bench_function("repeated", |b| {
        b.iter(|| ready(cached.handle_json(&ev)).unwrap())
    });
    g.finish();

    // The replay path, per event: distinct tokens (each a verification, then a cache insert),
    // a fresh authorizer per batch so that no token is seen twice.
    const EVENTS: u32 = 1_000;
    let stream: Vec<u8> = (0..EVENTS)
        .flat_map(|i| {
            let t = rsa.sign(&json!({
                "iss": ISS, "sub": format!("user-{i}"), "aud": "api://default",
                "client_id": "0oa1bcd2efGH3iJK4x7", "scope": "openid profile email orders:read",
                "iat": NOW - 60, "exp": NOW + 3600, "jti": format!("AT.{i}")
            }));
            let mut line = event(&t);
            line.push(b'\n');
            line
        })
        .collect();
    let mut out = Vec::with_capacity(stream.len());
    let answered = ready(scopegate::admin::invoke::run(
        &authorizer(file.path(), 300),
        &stream[..],
        &mut out,
    ))
    .unwrap();
    assert_eq!(answered, EVENTS as usize);
    assert!(!String::from_utf8_lossy(&out).contains("errorType"));
    let mut g = c.benchmark_group("replay");
    g.bench_function("ndjson_RS256_per_event", |b| {
        b.iter_custom(|iters| replay_per_event(file.path(), &stream, EVENTS.into(), iters))
    });
    // The same path when each token comes three times in a row (333 tokens, 999 events): the
    // token cache's doorkeeper verifies the first two sights and serves the third, the price
    // of keeping nothing for tokens seen once.
    let thrice: Vec<u8> = stream
        .split_inclusive(|b| *b == b'\n')
        .take(333)
        .flat_map(|line| line.repeat(3))
        .collect();
    g.bench_function("ndjson_RS256_thrice_per_event", |b| {
        b.iter_custom(|iters| replay_per_event(file.path(), &thrice, 999, iters))
    });
    g.finish();

    let mut g = c.benchmark_group("reject");
    let real = token(&rsa);
    let (header, rest) = real.split_once('.').unwrap();
    let signature = rest.rsplit_once('.').unwrap().1;
    let forge = |claims: serde_json::Value| {
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        event(&format!("{header}.{payload}.{signature}"))
    };
    let small = forge(json!({
        "iss": ISS, "sub": "x", "aud": "api://default", "scope": "openid orders:read",
        "iat": NOW - 60, "exp": NOW + 3600,
    }));
    let scopes: Vec<String> = (0..2000).map(|i| format!("s{i}")).collect();
    let big = forge(json!({
        "iss": ISS, "sub": "x", "aud": "api://default", "scope": scopes.join(" "),
        "iat": NOW - 60, "exp": NOW + 3600,
    }));
    assert!(
        big.len() > 12 * 1024 && big.len() < 16 * 1024,
        "{}",
        big.len()
    );
    for (name, ev) in [("forged", &small), ("forged_16k_scopes", &big)] {
        assert!(ready(uncached.handle_json(ev)).is_err());
        g.bench_function(name, |b| {
            b.iter(|| ready(uncached.handle_json(ev)).unwrap_err())
        });
    }
    g.finish();
}

/// `n` entries over many scopes and APIs, among them the 4 that `orders:read` has on the
/// benchmark's API.
fn table(n: usize) -> Vec<Mapping> {
    let mut entries: Vec<Mapping> = Vec::with_capacity(n);
    for (m, r) in [
        ("GET", "orders"),
        ("GET", "orders/*"),
        ("GET", ""),
        ("HEAD", "orders"),
    ] {
        entries.push(
            serde_json::from_value(
                json!({"api": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5",
                "stage": "dev", "method": m, "resource": r, "scope": "orders:read"}),
            )
            .unwrap(),
        );
    }
    let mut i = 0;
    while entries.len() < n {
        entries.push(
            serde_json::from_value(json!({"api": format!("arn:aws:execute-api:us-east-1:123456789012:api{}", i % 50),
                "stage": "dev", "method": "GET", "resource": format!("things/{i}"), "scope": format!("scope{}", i % 997)}))
            .unwrap(),
        );
        i += 1;
    }
    entries
}

/// Times a fresh snapshot of `entries` answering its first policy for `scopes` (index, build
/// and cache insert, as after a reload).
fn first_policy(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    entries: &[Mapping],
    scopes: &[&str],
    api: &str,
) {
    g.bench_function(name, |b| {
        b.iter_batched(
            || Snapshot::new(1, entries.to_vec()),
            // The snapshot is returned so that dropping 100k entries is not timed.
            |s| {
                let p = s.policy_for(scopes.iter().copied(), api, "dev");
                (s, p)
            },
            BatchSize::PerIteration,
        )
    });
}

fn bench_policy(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy");
    g.sample_size(20);
    let scopes = ["openid", "profile", "orders:read"];
    let api = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
    for n in [100, 10_000, 100_000] {
        let entries = table(n);
        let snapshot = Snapshot::new(1, entries.clone());
        let p = snapshot.policy_for(scopes, api, "dev");
        assert_eq!(p.grants, 4);
        g.bench_function(format!("cached_{n}"), |b| {
            b.iter(|| snapshot.policy_for(scopes, api, "dev"))
        });
        first_policy(&mut g, &format!("build_{n}"), &entries, &scopes, api);
    }
    g.finish();
}

/// How [`routes`] writes the API's paths.
#[derive(Clone, Copy)]
enum Shape {
    /// Templates, as the OpenAPI document has them: exactness applies.
    Templates,
    /// Every template segment as the `*` glob: the same policy before exactness.
    Globs,
    /// Every template segment as a literal value: routes whose Allows reach no other route.
    Literals,
}

/// An API as an OpenAPI document describes it: `resources` resources of nine routes each
/// (templates, a greedy route, an `ANY` route), read, write and admin scopes per resource.
fn routes(resources: usize, shape: Shape) -> Vec<Mapping> {
    let api = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
    let mut out = Vec::new();
    for k in 0..resources {
        for (method, path, scope) in [
            ("GET", "r{k}", "read"),
            ("POST", "r{k}", "write"),
            ("GET", "r{k}/{id}", "read"),
            ("PUT", "r{k}/{id}", "write"),
            ("DELETE", "r{k}/{id}", "admin"),
            ("GET", "r{k}/{id}/items", "read"),
            ("GET", "r{k}/{id}/items/{item}", "read"),
            ("GET", "r{k}/{id}/audit", "admin"),
            ("ANY", "r{k}/{id}/files/{proxy+}", "write"),
        ] {
            let path = path.replace("{k}", &k.to_string());
            let path = path
                .split('/')
                .map(|s| match (shape, s.starts_with('{')) {
                    (Shape::Globs, true) => "*",
                    (Shape::Literals, true) => "v",
                    _ => s,
                })
                .collect::<Vec<_>>()
                .join("/");
            out.push(
                serde_json::from_value(json!({"api": api, "stage": "dev", "method": method,
                    "resource": path, "scope": format!("r{k}:{scope}")}))
                .unwrap(),
            );
        }
    }
    out
}

/// The 16 scopes of the token [`routes`]' benches ask for: read and write of 8 resources.
fn sixteen_scopes() -> Vec<String> {
    (0..8)
        .flat_map(|k| [format!("r{k}:read"), format!("r{k}:write")])
        .collect()
}

/// The cost exactness adds to a policy on an OpenAPI-like route table, at three sizes:
/// - `first_*`: a fresh snapshot's first policy, for a token of 16 scopes: the route table
///   compiled (once per snapshot, API and stage) and the policy assembled;
/// - `new_token_*`: the first policy of a new 16-scope token once the table is compiled
///   (what every further scope set pays);
/// - `globs_*` and `literals_*`: the same first policy on the same table written with globs
///   or literal paths, which need no exactness: the baselines, measured in the same run.
fn bench_routes(c: &mut Criterion) {
    let mut g = c.benchmark_group("routes");
    g.sample_size(10);
    let api = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
    let scopes = sixteen_scopes();
    let other: Vec<String> = (8..16)
        .flat_map(|k| [format!("r{k}:read"), format!("r{k}:admin")])
        .collect();
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    for n in [500, 1000, 2000] {
        let resources = n / 9 + 1;
        for (name, shape) in [
            ("first", Shape::Templates),
            ("globs", Shape::Globs),
            ("literals", Shape::Literals),
        ] {
            let entries = routes(resources, shape);
            first_policy(&mut g, &format!("{name}_{n}"), &entries, &scopes, api);
        }
        let entries = routes(resources, Shape::Templates);
        g.bench_function(format!("new_token_{n}"), |b| {
            b.iter_batched(
                || {
                    let s = Snapshot::new(1, entries.clone());
                    s.policy_for(other.iter().map(String::as_str), api, "dev");
                    s
                },
                |s| {
                    let p = s.policy_for(scopes.iter().copied(), api, "dev");
                    (s, p)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// A route table nested as deep as it is wide, the worst shape for exactness: at each of
/// `depth` levels a literal route, a template, a catch-all and a template's child, each
/// under the previous level's literal, so every template's `*` reaches every route below it.
fn nested(depth: usize) -> Vec<Mapping> {
    let api = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
    let mut out = Vec::new();
    let mut path = String::new();
    for d in 0..depth {
        let literal = format!("{path}l{d}");
        for (k, (method, resource)) in [
            ("GET", literal.clone()),
            ("GET", format!("{path}{{id}}")),
            ("GET", format!("{path}{{p+}}")),
            ("*", format!("{path}{{id}}/x")),
        ]
        .into_iter()
        .enumerate()
        {
            out.push(
                serde_json::from_value(json!({"api": api, "stage": "dev", "method": method,
                    "resource": resource, "scope": format!("s{}", (d + k) % 4)}))
                .unwrap(),
            );
        }
        path = format!("{literal}/");
    }
    out
}

/// The first policy (table compiled) on [`nested`] tables of 40, 80 and 160 routes: the
/// worst case's growth, stated in docs/mappings.md. The same table's policy for a second
/// scope set (`again_*`) is what each further token pays.
fn bench_nested(c: &mut Criterion) {
    let mut g = c.benchmark_group("nested");
    g.sample_size(10);
    let api = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
    for depth in [10, 20, 40] {
        let entries = nested(depth);
        let n = entries.len();
        first_policy(&mut g, &format!("first_{n}"), &entries, &["s0"], api);
        g.bench_function(format!("again_{n}"), |b| {
            b.iter_batched(
                || {
                    let s = Snapshot::new(1, entries.clone());
                    s.policy_for(["s0"], api, "dev");
                    s
                },
                |s| {
                    let p = s.policy_for(["s1", "s2"], api, "dev");
                    (s, p)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// The warm path as the Lambda runs it: with the JSON decision line and the EMF line written
/// (to a sink), which the `warm` group leaves out. Registered last: it installs the process's
/// metrics writer and a logging subscriber for good.
fn bench_logged(c: &mut Criterion) {
    let rsa = SigningKey::generate(Alg::RS256, "rsa");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(SigningKey::jwks(&[&rsa]).to_string().as_bytes())
        .unwrap();
    scopegate::metrics::install(scopegate::metrics::Metrics::to_writer(
        "bench",
        std::io::sink(),
    ));
    let _logs = tracing::subscriber::set_default(scopegate::logging::json_subscriber(
        "info".parse().unwrap(),
        std::io::sink,
    ));
    let mut g = c.benchmark_group("lambda");
    let uncached = authorizer(file.path(), 0);
    let ev = event(&token(&rsa));
    assert!(ready(uncached.handle_json(&ev)).is_ok());
    g.bench_function("unseen_RS256_logged", |b| {
        b.iter(|| ready(uncached.handle_json(&ev)).unwrap())
    });
    let cached = authorizer(file.path(), 300);
    assert!(ready(cached.handle_json(&ev)).is_ok());
    g.bench_function("repeated_logged", |b| {
        b.iter(|| ready(cached.handle_json(&ev)).unwrap())
    });
    g.finish();
}

/// A cold start from the snapshot document of `n` route entries (issue 20 §4: at most 50 ms
/// at 10 000), against parsing the same bytes as untyped JSON.
fn bench_cold(c: &mut Criterion) {
    let mut g = c.benchmark_group("cold");
    g.sample_size(10);
    let api = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
    let scopes = sixteen_scopes();
    for n in [1000, 10_000] {
        let mut entries = routes(n / 9 + 1, Shape::Templates);
        entries.truncate(n);
        let bytes = serde_json::to_vec(&json!({"version": 7, "apis": {api: "rest"},
            "mappings": entries}))
        .unwrap();
        g.bench_function(format!("json_{n}"), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(&bytes).unwrap())
        });
        g.bench_function(format!("load_{n}"), |b| {
            b.iter(|| {
                let doc = scopegate::mapping::file::parse_document(&bytes, "bench").unwrap();
                Snapshot::from_document(doc)
            })
        });
        g.bench_function(format!("start_{n}"), |b| {
            b.iter(|| {
                let doc = scopegate::mapping::file::parse_document(&bytes, "bench").unwrap();
                let s = Snapshot::from_document(doc);
                let p = s.policy_for(scopes.iter().map(String::as_str), api, "dev");
                (s, p)
            })
        });
    }
    g.finish();
}

/// A new tenant's first policy on a tenant-bound table (issue 21 §2), at three sizes: `n`
/// resources, each `tenants/${claim:tenant_id}/rK` and `.../rK/{id}` (GET), plus an
/// unbound `tenants/{t}/rK/{id}/audit` route the token is not granted. Every iteration is a
/// tenant value not seen before, so it pays the build: its bound walks and its Denies.
fn bench_bound(c: &mut Criterion) {
    let mut g = c.benchmark_group("bound");
    let api = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
    let name = scopegate::claim::ClaimName::new("tenant_id").unwrap();
    for n in [125usize, 250, 500] {
        let mut entries: Vec<Mapping> = Vec::new();
        for k in 0..n {
            for (resource, scope) in [
                (format!("tenants/${{claim:tenant_id}}/r{k}"), "read"),
                (format!("tenants/${{claim:tenant_id}}/r{k}/{{id}}"), "read"),
                (format!("tenants/{{t}}/r{k}/{{id}}/audit"), "audit"),
            ] {
                entries.push(
                    serde_json::from_value(json!({"api": api, "stage": "dev", "method": "GET",
                        "resource": resource, "scope": scope}))
                    .unwrap(),
                );
            }
        }
        let s = Snapshot::new(1, entries);
        let mut i = 0u64;
        g.bench_function(format!("new_tenant_{n}"), |b| {
            b.iter(|| {
                i += 1;
                let key = scopegate::claim::binding_key(&name, Some(&json!(format!("t{i}"))));
                s.policy_for(["read", key.as_str()], api, "dev")
            })
        });
    }
    g.finish();
}

/// A DPoP request per iteration, each with a proof never seen before (see the module docs).
fn bench_dpop(c: &mut Criterion) {
    let rsa = SigningKey::generate(Alg::RS256, "rsa");
    let client = SigningKey::generate(Alg::ES256, "client");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(SigningKey::jwks(&[&rsa]).to_string().as_bytes())
        .unwrap();
    let jkt = client.jkt();
    let token = rsa.sign(&json!({
        "iss": ISS, "sub": "00u1abcd2EFGH3ijk4x7", "aud": "api://default",
        "client_id": "0oa1bcd2efGH3iJK4x7", "scope": "openid profile email orders:read",
        "iat": NOW - 60, "exp": NOW + 86_400, "jti": "AT.abcdefghijklmnop", "cnf": {"jkt": jkt}
    }));
    let ath = scopegate::token::dpop::ath(&token);
    let mut g = c.benchmark_group("dpop");
    let mut n = 0u64;
    let mut next = || {
        n += 1;
        let proof = client.dpop_proof(
            "GET",
            "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev/orders/7",
            NOW,
            &format!("p{n}"),
            Some(&ath),
        );
        json!({"type": "REQUEST", "methodArn": ARN, "httpMethod": "GET",
               "headers": {"Authorization": format!("DPoP {token}"), "DPoP": proof},
               "requestContext": {"path": "/dev/orders/7", "httpMethod": "GET",
                   "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"}})
        .to_string()
        .into_bytes()
    };
    for (name, cache_seconds) in [("unseen_token", 0), ("repeated_token", 300)] {
        let fresh = || {
            let mut config = Config::new(vec![IssuerConfig {
                issuer: ISS.into(),
                jwks: JwksSource::File(file.path().to_owned()),
            }]);
            config.audiences = vec!["api://default".into()];
            config.token_cache_ttl = std::time::Duration::from_secs(cache_seconds);
            let mappings = StaticMappings::from_config(&config).unwrap();
            Authorizer::new(&config, mappings, Arc::new(ManualClock::new(NOW))).unwrap()
        };
        let a = fresh();
        let first = next();
        let answer = ready(a.handle_json(&first)).unwrap();
        assert!(String::from_utf8_lossy(&answer).contains("Allow"));
        assert!(ready(a.handle_json(&first)).is_err(), "a replay is refused");
        // Chunks of proofs signed beforehand, each chunk through a fresh authorizer (its
        // replay front holds every proof for its age, and the clock stands still here), with
        // the token seen twice first when the cache is on (it keeps a token on second sight).
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(10_000);
                    let a = fresh();
                    for _ in 0..2 {
                        ready(a.handle_json(&next())).unwrap();
                    }
                    let events: Vec<Vec<u8>> = (0..chunk).map(|_| next()).collect();
                    let started = std::time::Instant::now();
                    for ev in &events {
                        ready(a.handle_json(ev)).unwrap();
                    }
                    total += started.elapsed();
                    left -= chunk;
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_warm,
    bench_dpop,
    bench_bound,
    bench_policy,
    bench_routes,
    bench_nested,
    bench_cold,
    bench_logged
);
criterion_main!(benches);
