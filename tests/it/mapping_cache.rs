//! The authorizer's warm mapping cache against the emulator: cold start and warm faults
//! (DynamoDB's endpoint frozen like `kill -STOP`, through a pausable proxy), the S3 fallback,
//! failing closed, corrupt snapshots, and a CLI change reaching the authorizer's answer
//! within the TTL.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use scopegate::authorizer::Authorizer;
use scopegate::clock::{Clock, ManualClock, SystemClock};
use scopegate::config::{Config, IssuerConfig, JwksSource};
use scopegate::mapping::cache::{CacheOptions, MappingCache, Source};
use scopegate::mapping::store::aws::{AwsConfig, AwsOptions};
use scopegate::mapping::store::DynamoStore;
use scopegate::mapping::store::S3Snapshots;
use scopegate::mapping::Snapshot;
use scopegate::policy::{evaluate, Effect, Policy};
use scopegate::token::mint::SigningKey;
use scopegate::token::Alg;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::store::{aws, entry, entry_flags, seed_dir, Fixture, API};
use crate::support::emulator::{ACCESS_KEY, REGION, SECRET_KEY};

/// A TCP proxy that can freeze: while paused it accepts and reads but forwards nothing, so
/// callers hang exactly as with a SIGSTOPped server, on new and pooled connections alike.
/// It counts the bytes clients send, paused or not, so a test can tell whether a call made
/// a request at all.
struct PausableProxy {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
    sent: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PausableProxy {
    async fn start(upstream_endpoint: &str) -> PausableProxy {
        let upstream: SocketAddr = upstream_endpoint
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|e| panic!("endpoint {upstream_endpoint}: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (paused, _) = watch::channel(false);
        let rx = paused.subscribe();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let rx = rx.clone();
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, rx.clone(), Some(counter)));
                    tokio::spawn(pump(sr, cw, rx, None));
                });
            }
        });
        PausableProxy {
            addr,
            paused,
            sent,
            task,
        }
    }

    /// Bytes clients have sent so far.
    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn pause(&self) {
        self.paused.send_replace(true);
    }

    fn resume(&self) {
        self.paused.send_replace(false);
    }
}

impl Drop for PausableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
    counter: Option<Arc<AtomicU64>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(c) = &counter {
            c.fetch_add(n as u64, Ordering::SeqCst);
        }
        if paused.wait_for(|p| !*p).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The authorizer's SDK options: short timeouts, one attempt, so a frozen endpoint costs
/// about a second.
fn fast(endpoint: &str) -> AwsOptions {
    AwsOptions {
        attempt_timeout: Some(Duration::from_millis(700)),
        operation_timeout: Some(Duration::from_millis(1000)),
        max_attempts: Some(1),
        ..aws(endpoint)
    }
}

struct Rig {
    fx: Fixture,
    dynamo_proxy: PausableProxy,
    s3_proxy: PausableProxy,
    clock: Arc<ManualClock>,
}

const TTL: u64 = 60;
const MAX_STALE: u64 = 300;

impl Rig {
    async fn new() -> Rig {
        let fx = Fixture::new().await;
        scopegate::admin::migrate::seed(&fx.admin, &seed_dir(), false)
            .await
            .unwrap();
        fx.admin.publish_now().await.unwrap();
        let dynamo_proxy = PausableProxy::start(&fx.target.aws.endpoint_url.clone().unwrap()).await;
        let s3_proxy = PausableProxy::start(&fx.target.aws.endpoint_url.clone().unwrap()).await;
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        Rig {
            fx,
            dynamo_proxy,
            s3_proxy,
            clock,
        }
    }

    async fn cache(&self) -> MappingCache<DynamoStore, S3Snapshots> {
        let d = AwsConfig::load(&fast(&self.dynamo_proxy.endpoint()))
            .await
            .unwrap();
        let s = AwsConfig::load(&fast(&self.s3_proxy.endpoint()))
            .await
            .unwrap();
        MappingCache::new(
            DynamoStore::new(&d, &self.fx.target.table),
            S3Snapshots::new(
                &s,
                self.fx.target.bucket.as_deref().unwrap(),
                &self.fx.target.key,
            ),
            self.clock.clone(),
            CacheOptions {
                ttl: TTL,
                max_stale: MAX_STALE,
                check_timeout: Duration::from_secs(3),
                load_timeout: Duration::from_secs(10),
            },
        )
    }
}

const SEED_GET: &str = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2/dev/GET/my-resource";
const SEED_API: &str = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2";

fn email_allowed(s: &Snapshot) -> bool {
    s.policy_for(["email"], SEED_API, "dev").evaluate(SEED_GET) == Effect::Allow
}

fn email_entry() -> scopegate::mapping::Mapping {
    serde_json::from_value(json!({"arn": SEED_API, "resource": "my-resource", "stage": "dev", "httpVerb": "GET", "scope": "email"})).unwrap()
}

use scopegate::mapping::Mappings as _;

#[tokio::test]
async fn cold_start_falls_back_to_s3_then_fails_closed_then_recovers() {
    let rig = Rig::new().await;
    rig.dynamo_proxy.pause();
    let cache = rig.cache().await;
    let s = cache.current().await.unwrap();
    assert_eq!(cache.status(), Some((Source::S3, 1)));
    assert!(email_allowed(&s));

    // Both down: no snapshot, no Allow.
    rig.s3_proxy.pause();
    let cold = rig.cache().await;
    let err = cold.current().await.unwrap_err().to_string();
    assert!(err.contains("DynamoDB") && err.contains("S3"), "{err}");
    assert_eq!(cold.status(), None);
    // Retried on the next call: DynamoDB back, served from it.
    rig.dynamo_proxy.resume();
    cold.current().await.unwrap();
    assert_eq!(cold.status(), Some((Source::Dynamo, 1)));
    rig.fx.cleanup().await;
}

/// A raw entry item in shard 0 of the current generation.
async fn put_item(rig: &Rig, generation: &str, sk: &str, scope: &str, effect: &str) {
    rig.fx
        .admin
        .store
        .put_raw_entry(
            generation,
            0,
            sk,
            &[
                ("api", SEED_API),
                ("stage", "dev"),
                ("method", "GET"),
                ("resource", "my-resource"),
                ("scope", scope),
                ("effect", effect),
                ("updated_at", "now"),
                ("updated_by", "x"),
            ],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_cold_start_reads_the_snapshot_the_version_record_names_and_checks_its_bytes() {
    let rig = Rig::new().await;
    let head = rig.fx.admin.store.read_head().await.unwrap();
    let digest = head
        .vouched_snapshot()
        .expect("the publish named its digest");
    assert_eq!(digest.version, 1);

    // The generation now holds a broken item, so a load from it fails: serving version 1
    // from DynamoDB's word proves the one object was read instead.
    put_item(&rig, &head.generation, "zz broken", "zz", "Dney").await;
    let cache = rig.cache().await;
    assert!(email_allowed(&cache.current().await.unwrap()));
    assert_eq!(cache.status(), Some((Source::Dynamo, 1)));
    rig.fx.cleanup().await;
}

#[tokio::test]
async fn a_snapshot_unlike_the_digest_the_version_record_names_is_not_read() {
    let rig = Rig::new().await;
    // Someone who can write the bucket, not the table, adds a grant under the same version.
    let forged = format!(
        r#"{{"version": 1, "mappings": [{}, {}]}}"#,
        serde_json::to_string(&email_entry()).unwrap(),
        json!({"api": SEED_API, "stage": "dev", "method": "GET", "resource": "my-resource", "scope": "forged", "effect": "Allow"})
    );
    let snapshots = rig.fx.admin.snapshots.as_ref().unwrap();
    snapshots.put_raw(forged.into_bytes()).await.unwrap();
    let cache = rig.cache().await;
    let s = cache.current().await.unwrap();
    assert!(email_allowed(&s));
    assert_ne!(
        s.policy_for(["forged"], SEED_API, "dev").evaluate(SEED_GET),
        Effect::Allow,
        "the forged grant counted"
    );
    assert_eq!(cache.status(), Some((Source::Dynamo, 1)));
    rig.fx.cleanup().await;
}

#[tokio::test]
async fn a_corrupt_snapshot_is_refused_not_served() {
    let rig = Rig::new().await;
    rig.fx
        .admin
        .snapshots
        .as_ref()
        .unwrap()
        .put_raw(format!(r#"{{"version": 7, "mappings": [{{"api": "{API}", "stage": "dev", "method": "GET", "resource": "x", "scope": "s", "effect": "Alow"}}]}}"#).into_bytes())
        .await
        .unwrap();
    rig.dynamo_proxy.pause();
    let cache = rig.cache().await;
    let err = cache.current().await.unwrap_err().to_string();
    assert!(
        err.contains("corrupt snapshot") && err.contains("mappings[0]"),
        "{err}"
    );
    assert_eq!(cache.status(), None);
    rig.fx.cleanup().await;
}

#[tokio::test]
async fn warm_dynamodb_outage_serves_cached_then_s3_then_picks_up_the_new_version_within_a_ttl() {
    let rig = Rig::new().await;
    let cache = rig.cache().await;
    assert!(email_allowed(&cache.current().await.unwrap()));
    assert_eq!(cache.status(), Some((Source::Dynamo, 1)));

    // DynamoDB freezes; meanwhile an operator (who can still reach it) removes email's grant
    // and publishes.
    rig.dynamo_proxy.pause();
    rig.fx.admin.remove(vec![email_entry()]).await.unwrap();
    rig.fx.admin.publish_now().await.unwrap();

    rig.clock.advance(TTL);
    let before = rig.dynamo_proxy.sent();
    // The version check hangs behind the frozen proxy; the cache's check timeout ends it (a
    // hang here is the failure), and the last good snapshot is served.
    let s = cache.current().await.unwrap();
    assert!(
        rig.dynamo_proxy.sent() > before,
        "the version check was sent"
    );
    assert_eq!(
        (s.version(), cache.status().unwrap().0),
        (1, Source::Dynamo),
        "last good snapshot while within max stale"
    );
    // Calls before the next check make no request at all.
    let before = rig.dynamo_proxy.sent();
    cache.current().await.unwrap();
    assert_eq!(
        rig.dynamo_proxy.sent(),
        before,
        "no request before the next check"
    );

    // Past max stale: the S3 snapshot, which has the removal.
    rig.clock.advance(MAX_STALE);
    let s = cache.current().await.unwrap();
    assert_eq!(cache.status(), Some((Source::S3, 2)));
    assert!(
        !email_allowed(&s),
        "never an Allow the current mappings do not give"
    );

    // DynamoDB is back, with a newer change: picked up at the next check, one TTL later.
    rig.dynamo_proxy.resume();
    rig.fx
        .admin
        .add(vec![entry("late", "GET", "late", "Allow")])
        .await
        .unwrap();
    rig.clock.advance(TTL - 1);
    assert_eq!(cache.current().await.unwrap().version(), 2);
    rig.clock.advance(1);
    let s = cache.current().await.unwrap();
    assert_eq!(cache.status(), Some((Source::Dynamo, 3)));
    assert!(!email_allowed(&s));
    assert!(
        s.policy_for(["late"], API, "dev")
            .evaluate(&format!("{API}/dev/GET/late"))
            == Effect::Allow
    );

    // Everything down past max stale: fail closed.
    rig.dynamo_proxy.pause();
    rig.s3_proxy.pause();
    rig.clock.advance(MAX_STALE + TTL);
    assert!(cache.current().await.is_err());
    rig.fx.cleanup().await;
}

fn token(key: &SigningKey, scope: &str) -> String {
    let now = SystemClock.now();
    key.sign(&json!({"iss": ISSUER, "sub": "user-1", "iat": now, "exp": now + 600, "scope": scope}))
}

const ISSUER: &str = "https://issuer.example.com";

fn event(token: &str, arn: &str) -> Vec<u8> {
    json!({"type": "TOKEN", "authorizationToken": format!("Bearer {token}"), "methodArn": arn})
        .to_string()
        .into_bytes()
}

fn decision(answer: &[u8], arn: &str) -> Effect {
    let v: Value = serde_json::from_slice(answer).unwrap();
    let p: Policy =
        serde_json::from_value(v["policyDocument"].clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
    evaluate(&p, arn)
}

#[tokio::test]
async fn a_mapping_change_reaches_the_warm_authorizer_within_the_ttl() {
    let rig = Rig::new().await;
    let key = SigningKey::generate(Alg::RS256, "k1");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, SigningKey::jwks(&[&key]).to_string()).unwrap();
    let mut config = Config::new(vec![IssuerConfig {
        issuer: ISSUER.into(),
        jwks: JwksSource::File(jwks),
    }]);
    config.token_cache_ttl = Duration::ZERO;
    let authorizer = Authorizer::new(&config, rig.cache().await, rig.clock.clone()).unwrap();
    let arn = format!("{API}/dev/GET/reports");
    let t = token(&key, "reports:read");
    let answer = authorizer.handle_json(&event(&t, &arn)).await.unwrap();
    assert_eq!(decision(&answer, &arn), Effect::Deny);

    rig.fx
        .admin
        .add(vec![entry("reports:read", "GET", "reports", "Allow")])
        .await
        .unwrap();
    rig.clock.advance(TTL - 1);
    let answer = authorizer.handle_json(&event(&t, &arn)).await.unwrap();
    assert_eq!(
        decision(&answer, &arn),
        Effect::Deny,
        "still within the TTL"
    );
    rig.clock.advance(1);
    let answer = authorizer.handle_json(&event(&t, &arn)).await.unwrap();
    assert_eq!(
        decision(&answer, &arn),
        Effect::Allow,
        "picked up at the TTL"
    );
    rig.fx.cleanup().await;
}

/// Runs the `scopegate` binary as an operator and the Lambda's settings would: the
/// fixture's table and bucket, tokens of `jwks`; asserts success, returns (stdout, stderr).
fn scopegate_on(
    fx: &Fixture,
    jwks: &Path,
    args: &[&str],
    stdin: Option<Vec<u8>>,
) -> (String, String) {
    let endpoint = fx.target.aws.endpoint_url.clone().unwrap();
    let bucket = fx.target.bucket.clone().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scopegate"));
    cmd.args(args)
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("SCOPEGATE_MAPPINGS_TABLE", &fx.target.table)
        .env("SCOPEGATE_SNAPSHOT_BUCKET", &bucket)
        .env("SCOPEGATE_ISSUER", ISSUER)
        .env("SCOPEGATE_JWKS_FILE", jwks)
        .env("USER", "cli-tester")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        std::io::Write::write_all(&mut input, &bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "scopegate {args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

#[tokio::test]
async fn the_cli_changes_what_scopegate_invoke_answers() {
    let fx = Fixture::new().await;
    let key = SigningKey::generate(Alg::RS256, "k1");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, SigningKey::jwks(&[&key]).to_string()).unwrap();
    let scopegate = |args: &[&str], stdin: Option<Vec<u8>>| scopegate_on(&fx, &jwks, args, stdin).0;
    let arn = format!("{API}/dev/GET/reports");
    let t = token(&key, "reports:read");
    let answer = scopegate(&["invoke"], Some(event(&t, &arn)));
    assert_eq!(decision(answer.as_bytes(), &arn), Effect::Deny);

    let entry_args = entry_flags("reports:read", "reports");
    let out = scopegate(&[&["mappings", "add"][..], &entry_args].concat(), None);
    assert!(
        out.contains("version 0 -> 1") && out.contains("snapshot published (version 1)"),
        "{out}"
    );
    let answer = scopegate(&["invoke"], Some(event(&t, &arn)));
    assert_eq!(decision(answer.as_bytes(), &arn), Effect::Allow);

    let out = scopegate(&["explain", "--token", &t, "--method-arn", &arn], None);
    assert!(
        out.starts_with("Allow") && out.contains("decided by: reports:read: Allow"),
        "{out}"
    );
    let out = scopegate(&["history", "--output", "json"], None);
    let history: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(history[0]["actor"], "cli-tester");
    assert_eq!(history[0]["action"], "add");
    // Destructive without --yes and without a terminal: refused, nothing removed.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scopegate"));
    let refused = cmd
        .args([&["mappings", "remove"][..], &entry_args].concat())
        .env("SCOPEGATE_MAPPINGS_TABLE", &fx.target.table)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    let out = scopegate(
        &[&["mappings", "remove", "--yes"][..], &entry_args].concat(),
        None,
    );
    assert!(out.contains("version 1 -> 2"), "{out}");
    let answer = scopegate(&["invoke"], Some(event(&t, &arn)));
    assert_eq!(decision(answer.as_bytes(), &arn), Effect::Deny);
    let out = scopegate(&["mappings", "list", "--output", "json"], None);
    assert_eq!(out.trim(), "[]");
    // A route held for nobody, named on the command line: added, listed, removed.
    let nobody = [
        "--api",
        API,
        "--stage",
        "dev",
        "--method",
        "GET",
        "--resource",
        "reports",
        "--nobody",
    ];
    let out = scopegate(&[&["mappings", "add"][..], &nobody].concat(), None);
    assert!(out.contains("version 2 -> 3"), "{out}");
    let out = scopegate(&["mappings", "list", "--output", "json"], None);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["nobody"], true, "{out}");
    let answer = scopegate(&["invoke"], Some(event(&t, &arn)));
    assert_eq!(decision(answer.as_bytes(), &arn), Effect::Deny);
    let out = scopegate(
        &[&["mappings", "remove", "--yes"][..], &nobody].concat(),
        None,
    );
    assert!(out.contains("version 3 -> 4"), "{out}");
    fx.cleanup().await;
}

/// The issue's own walk: an OpenAPI document through `scopegate openapi` (what `validate`
/// accepts), `import --openapi` on the emulator, and `scopegate invoke`, with exact answers per
/// route: `orders:read` reads orders but not their payments, the all-of write needs both
/// scopes, any token may check health, the public route is not mapped, and the apiKey route
/// is held for nobody.
#[tokio::test]
async fn an_openapi_document_is_imported_and_decides_per_route() {
    let fx = Fixture::new().await;
    let key = SigningKey::generate(Alg::RS256, "k1");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, SigningKey::jwks(&[&key]).to_string()).unwrap();
    let doc = dir.path().join("openapi.yaml");
    std::fs::write(
        &doc,
        "openapi: 3.0.3\ninfo: {title: orders, version: '1'}\ncomponents:\n  securitySchemes:\n    idp: {type: oauth2, flows: {clientCredentials: {tokenUrl: 'https://idp/token', scopes: {}}}}\n    key: {type: apiKey, name: x-api-key, in: header}\nsecurity: [{idp: [orders:read]}]\npaths:\n  /orders:\n    get: {}\n    post: {security: [{idp: [orders:write, orders:admin]}]}\n  /orders/{id}:\n    get: {}\n  /orders/{id}/payments:\n    get: {security: [{idp: [payments:read]}]}\n  /health:\n    get: {security: [{idp: []}]}\n  /docs:\n    get: {security: []}\n  /keys:\n    get: {security: [{key: []}]}\n",
    )
    .unwrap();
    let run = |args: &[&str], stdin: Option<Vec<u8>>| scopegate_on(&fx, &jwks, args, stdin);
    let doc = doc.to_str().unwrap();
    let (printed, notes) = run(&["openapi", doc, "--api", API, "--stage", "dev"], None);
    let printed_doc: Value = serde_json::from_str(&printed).unwrap();
    // The document declares its API's kind: rest, as --kind defaults to.
    assert_eq!(printed_doc["apis"][API], "rest", "{printed}");
    let entries = printed_doc["mappings"].as_array().unwrap();
    assert_eq!(entries.len(), 6, "{printed}");
    // The apiKey-only operation is a route held for nobody, through the store as well.
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["nobody"] == true && e["resource"] == "keys")
            .count(),
        1,
        "{printed}"
    );
    assert!(notes.contains("GET /docs: public"), "{notes}");
    assert!(notes.contains("GET /keys: no OAuth requirement"), "{notes}");
    let printed_file = dir.path().join("mappings.json");
    std::fs::write(&printed_file, &printed).unwrap();
    run(&["validate", printed_file.to_str().unwrap()], None);
    let (out, _) = run(
        &[
            "import",
            "--openapi",
            doc,
            "--api",
            API,
            "--stage",
            "dev",
            "--yes",
        ],
        None,
    );
    assert!(out.contains("version 0 -> 1"), "{out}");
    let cases = [
        ("orders:read", "GET", "orders", Effect::Allow),
        ("orders:read", "GET", "orders/7", Effect::Allow),
        ("orders:read", "GET", "orders/7/", Effect::Allow),
        ("orders:read", "GET", "orders/7/payments", Effect::Deny),
        ("orders:read", "GET", "orders/7/payments/x", Effect::Deny),
        ("payments:read", "GET", "orders/7/payments", Effect::Allow),
        ("payments:read", "GET", "orders/7", Effect::Deny),
        ("orders:write", "POST", "orders", Effect::Deny),
        ("orders:write orders:admin", "POST", "orders", Effect::Allow),
        ("openid", "GET", "health", Effect::Allow),
        ("openid", "GET", "orders", Effect::Deny),
        ("orders:read", "GET", "keys", Effect::Deny),
    ];
    let input_for = |cases: &[(&str, &str, &str, Effect)]| {
        let mut input = Vec::new();
        for (scopes, method, path, _) in cases {
            input.extend(event(
                &token(&key, scopes),
                &format!("{API}/dev/{method}/{path}"),
            ));
            input.push(b'\n');
        }
        input
    };
    let (answers, stderr) = run(&["invoke"], Some(input_for(&cases)));
    let answers: Vec<&str> = answers.lines().collect();
    assert_eq!(answers.len(), cases.len(), "{stderr}");
    for ((scopes, method, path, want), answer) in cases.iter().zip(answers) {
        let arn = format!("{API}/dev/{method}/{path}");
        assert_eq!(
            decision(answer.as_bytes(), &arn),
            *want,
            "{scopes}: {method} {path}: {answer}"
        );
    }
    let (why, _) = run(
        &[
            "explain",
            "--scopes",
            "orders:read",
            "--method-arn",
            &format!("{API}/dev/GET/orders/7/payments"),
        ],
        None,
    );
    assert!(
        why.contains("route: GET /orders/{id}/payments, which requires payments:read"),
        "{why}"
    );
    assert!(
        why.contains("exactness: denied as route GET /orders/{id}/payments"),
        "{why}"
    );
    // The import declared the API's kind; `mappings kind` shows and changes it, and an
    // event of the other kind is then refused, not decided (issue 20 §1).
    let (kind, _) = run(&["mappings", "kind", "--api", API], None);
    assert_eq!(kind.trim(), format!("{API}: rest"));
    let (changed, _) = run(&["mappings", "kind", "--api", API, "http"], None);
    assert!(
        changed.contains(&format!("kind {API}: rest -> http")),
        "{changed}"
    );
    let (kind, _) = run(&["mappings", "kind", "--api", API], None);
    assert_eq!(kind.trim(), format!("{API}: http"));
    let (answers, _) = run(&["invoke"], Some(input_for(&cases[..1])));
    let answer: Value = serde_json::from_str(answers.trim()).unwrap();
    assert_eq!(answer["errorType"], "KindMismatch", "{answers}");
    assert!(answer.get("policyDocument").is_none(), "{answers}");
    fx.cleanup().await;
}

/// Runs the `scopegate` binary against the fixture's table and bucket (flags, not the
/// environment), returning (success, stdout, stderr).
fn cli(fx: &Fixture, args: &[&str]) -> (bool, String, String) {
    let endpoint = fx.target.aws.endpoint_url.clone().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .args([
            "--endpoint-url",
            &endpoint,
            "--region",
            REGION,
            "--table",
            &fx.target.table,
        ])
        .args([
            "--bucket",
            fx.target.bucket.as_deref().unwrap(),
            "--actor",
            "ops",
        ])
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_admin_cli_migrates_seeds_imports_exports_and_validates() {
    let fx = Fixture::new().await;
    let (ok, out, err) = cli(&fx, &["migrate"]);
    assert!(ok && out.contains("nothing to do"), "{out}{err}");
    let seed = seed_dir();
    let (ok, out, err) = cli(&fx, &["seed", "--dir", seed.to_str().unwrap()]);
    assert!(
        ok && out.contains("version 0 -> 1") && out.contains("snapshot published"),
        "{out}{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("export.json");
    let (ok, _, err) = cli(
        &fx,
        &[
            "export",
            "--format",
            "json",
            "--out",
            exported.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let doc = scopegate::mapping::file::load_document(&exported).unwrap();
    assert_eq!(doc.version, Some(1));

    let small = dir.path().join("small.json");
    std::fs::write(
        &small,
        serde_json::to_string(&[entry("only", "GET", "only", "Allow")]).unwrap(),
    )
    .unwrap();
    // A dry run with changes exits 1 (differences), like `diff`.
    let (ok, out, _) = cli(
        &fx,
        &["import", small.to_str().unwrap(), "--replace", "--dry-run"],
    );
    assert!(
        !ok && out.contains("+ only: Allow") && out.contains("dry run, nothing written"),
        "{out}"
    );
    // Destructive, no terminal, no --yes: refused, and nothing changed.
    let (ok, _, err) = cli(&fx, &["import", small.to_str().unwrap(), "--replace"]);
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, out, err) = cli(
        &fx,
        &["import", small.to_str().unwrap(), "--replace", "--yes"],
    );
    assert!(ok && out.contains("version 1 -> 2"), "{out}{err}");
    let (ok, out, _) = cli(&fx, &["mappings", "list", "--output", "json"]);
    assert!(ok);
    let listed: Vec<scopegate::mapping::Mapping> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed, vec![entry("only", "GET", "only", "Allow")]);
    // And back: the export restores the seeded set.
    let (ok, out, err) = cli(
        &fx,
        &[
            "import",
            exported.to_str().unwrap(),
            "--replace",
            "--yes",
            "--output",
            "json",
        ],
    );
    assert!(ok, "{out}{err}");
    let changed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(changed["version"], 3);
    let (_, out, _) = cli(&fx, &["history", "--output", "json"]);
    let history: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|h| h["actor"] == "ops"));

    // validate: the file, the entry and the field; nothing touched.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, format!(r#"[{{"api":"{API}","stage":"dev","method":"GET","resource":"orders/{{id}}/*","scope":"s"}}]"#)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["validate", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("bad.json: mappings[0]: field \"resource\""),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["validate", exported.to_str().unwrap(), "--budget", "300"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("over the limit of 300 bytes"), "{err}");
    // The largest policy any scope set checked can give (issue 20 §5).
    assert!(err.contains(": largest policy "), "{err}");
    // Routes IAM cannot separate (orders/7/items/payments is an item's, and matches the
    // payments route's orders/*/payments): exit 4, unless accepted.
    let pair = dir.path().join("pair.json");
    std::fs::write(
        &pair,
        serde_json::to_string(&json!([
            {"api": API, "stage": "dev", "method": "GET", "resource": "orders/{id}", "scope": "orders:read"},
            {"api": API, "stage": "dev", "method": "GET", "resource": "orders/{id}/items/{item}", "scope": "orders:read"},
            {"api": API, "stage": "dev", "method": "GET", "resource": "orders/{id}/payments", "scope": "payments:read"},
        ]))
        .unwrap(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["validate", pair.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("cannot be told apart") && err.contains("--accept-inseparable"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["validate", pair.to_str().unwrap(), "--accept-inseparable"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fx.cleanup().await;
}
