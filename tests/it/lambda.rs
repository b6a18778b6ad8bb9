//! The real Lambda runtime path: the `authorizer` binary (lambda_runtime) polling cargo-lambda's
//! Runtime API emulator, invoked with `cargo lambda invoke` with TOKEN, REQUEST and HTTP API
//! events, against the real OIDC provider.
//!
//! cargo-lambda comes from PyPI into `.venv-lambda` (scripts/setup); `SCOPEGATE_CARGO_LAMBDA`
//! names another `cargo-lambda` binary. The emulator runs as `cargo lambda watch
//! --only-lambda-apis` and the test starts the binary that `cargo test` built itself: a plain
//! `cargo lambda watch` would run `cargo build` inside this `cargo test`, which holds the
//! target directory's lock while tests run, and wait for it forever.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use scopegate::policy::{evaluate, Effect, Policy};
use serde_json::Value;

use crate::oidc::SEED_GET;
use crate::support::idp::{IdpGuard, API_AUDIENCE};
use crate::support::{free_port, repo_root, ChildGuard, START_DEADLINE};

/// The function name the emulator routes to (`/.rt/<name>` in AWS_LAMBDA_RUNTIME_API).
const FUNCTION: &str = "authorizer";

fn cargo_lambda() -> PathBuf {
    let path = std::env::var_os("SCOPEGATE_CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-lambda/bin/cargo-lambda"));
    assert!(
        path.exists(),
        "cargo-lambda is not installed: {} is missing.\nRun `scripts/setup` in the repository root \
         (it installs cargo-lambda and ziglang from PyPI into .venv-lambda), or set \
         SCOPEGATE_CARGO_LAMBDA to a cargo-lambda binary.",
        path.display()
    );
    path
}

/// `cargo lambda watch --only-lambda-apis` and the authorizer polling it; both stopped on drop.
struct LambdaGuard {
    cargo_lambda: PathBuf,
    port: u16,
    // Dropped in this order: the function first, then the emulator it polls.
    function: ChildGuard,
    emulator: ChildGuard,
}

impl LambdaGuard {
    fn start(env: &[(&str, &str)]) -> LambdaGuard {
        let cargo_lambda = cargo_lambda();
        let port = free_port();
        let mut cmd = Command::new(&cargo_lambda);
        cmd.args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
        ])
        .arg(port.to_string())
        .current_dir(repo_root());
        let mut emulator = ChildGuard::spawn(cmd, None);
        let deadline = Instant::now() + START_DEADLINE;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if emulator.try_wait().is_some() || Instant::now() > deadline {
                panic!(
                    "cargo lambda watch did not listen on {addr}\n{}",
                    emulator.report()
                );
            }
            // The poll interval of a readiness loop with a deadline: a child process offers
            // nothing to wait on but its port.
            std::thread::sleep(Duration::from_millis(50));
        }

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authorizer"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // What cargo-lambda tells a function started by hand to set.
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt/{FUNCTION}"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_REGION", "us-east-1")
            .env("SCOPEGATE_LOG_LEVEL", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let function = ChildGuard::spawn(cmd, None);
        LambdaGuard {
            cargo_lambda,
            port,
            function,
            emulator,
        }
    }

    /// `cargo lambda invoke` with `event` as the data file.
    fn invoke(&mut self, event: &str) -> Output {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("event.json");
        std::fs::write(&file, event).unwrap();
        let out = Command::new(&self.cargo_lambda)
            .args(["lambda", "invoke", "-A", "127.0.0.1", "-P"])
            .arg(self.port.to_string())
            .arg(FUNCTION)
            .arg("--data-file")
            .arg(&file)
            .stdin(Stdio::null())
            .output()
            .expect("run cargo lambda invoke");
        if let Some(status) = self.function.try_wait() {
            panic!(
                "the authorizer exited ({status})\n{}",
                self.function.report()
            );
        }
        out
    }

    /// The function's answer to `event`, which must be a success.
    fn answer(&mut self, event: &str) -> Value {
        let out = self.invoke(event);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "cargo lambda invoke failed: {}\nstdout: {stdout}\nstderr: {}\n--- function ---\n{}\n--- emulator ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.function.report(),
            self.emulator.report()
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }

    /// The raw Invoke API answer (status, body): what API Gateway would get from Lambda.
    async fn invoke_http(&self, event: &str) -> (u16, Value) {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{FUNCTION}/invocations",
            self.port
        );
        let resp = crate::support::http_client()
            .post(&url)
            .body(event.to_owned())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }
}

pub(crate) fn fixture(name: &str, token: &str) -> String {
    let path = repo_root().join("tests/fixtures/events").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("__TOKEN__", token)
}

/// The HTTP API the HTTP fixtures are sent as: an API apart from the seed's REST API, since
/// an API is one kind or the other (issue 20 §1).
pub(crate) const HTTP_API: &str = "arn:aws:execute-api:us-east-1:219852565112:h77pd4o3ab";

/// The seed's mappings, and its REST API's entries again for [`HTTP_API`], declared an
/// HTTP API.
pub(crate) fn seed_with_an_http_api() -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(repo_root().join("seed-data/mappings.json")).unwrap();
    let rest: Vec<Value> = serde_json::from_str(&text).unwrap();
    let http: Vec<Value> = rest
        .iter()
        .filter(|e| e.to_string().contains("rz8w6b1ik2"))
        .map(|e| serde_json::from_str(&e.to_string().replace("rz8w6b1ik2", http_api_id())))
        .collect::<Result<_, _>>()
        .unwrap();
    let doc = serde_json::json!({
        "apis": {HTTP_API: "http"},
        "mappings": rest.into_iter().chain(http).collect::<Vec<_>>(),
    });
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), doc.to_string()).unwrap();
    file
}

pub(crate) fn http_api_id() -> &'static str {
    HTTP_API.rsplit(':').next().unwrap()
}

/// An HTTP API fixture event, sent by [`HTTP_API`].
pub(crate) fn http_fixture(name: &str, token: &str) -> String {
    fixture(name, token).replace("rz8w6b1ik2", http_api_id())
}

fn token_event(token: &str) -> String {
    String::from_utf8(crate::oidc::token_event(token, SEED_GET)).unwrap()
}

fn policy(answer: &Value) -> Policy {
    serde_json::from_value(answer["policyDocument"].clone())
        .unwrap_or_else(|e| panic!("{answer}: {e}"))
}

#[tokio::test]
async fn the_lambda_answers_token_request_and_http_api_events() {
    let idp = IdpGuard::start().await;
    let email = idp.token("email").await;
    let profile = idp.token("profile").await;
    let mappings = seed_with_an_http_api();
    let mut lambda = LambdaGuard::start(&[
        ("SCOPEGATE_ISSUER", idp.issuer()),
        ("SCOPEGATE_AUDIENCE", API_AUDIENCE),
        ("SCOPEGATE_MAPPINGS_FILE", mappings.path().to_str().unwrap()),
    ]);
    let http_get = SEED_GET.replace("rz8w6b1ik2", http_api_id());

    // TOKEN (REST API, the seed's configuration).
    let a = lambda.answer(&token_event(&email));
    assert_eq!(evaluate(&policy(&a), SEED_GET), Effect::Allow, "{a}");
    assert_eq!(a["principalId"], "scopegate-test");
    assert_eq!(a["context"]["scope"], "email");

    // REQUEST (REST API), the token in the Authorization header.
    let a = lambda.answer(&fixture("request.json", &email));
    assert_eq!(evaluate(&policy(&a), SEED_GET), Effect::Allow, "{a}");

    // HTTP API, payload 2.0: routeArn, IAM policy answer (the default SCOPEGATE_RESPONSE).
    let a = lambda.answer(&http_fixture("http_api_v2.json", &email));
    assert_eq!(evaluate(&policy(&a), &http_get), Effect::Allow, "{a}");

    // HTTP API, payload 1.0 (REST's shape, "version": "1.0"): an IAM policy by HTTP rules,
    // which do not grant another route's `my-resource/`.
    let a = lambda.answer(&http_fixture("http_api_v1.json", &email));
    assert_eq!(evaluate(&policy(&a), &http_get), Effect::Allow, "{a}");
    assert_eq!(
        evaluate(&policy(&a), &format!("{http_get}/")),
        Effect::Deny,
        "{a}"
    );

    // An HTTP API's event for the API declared REST is refused, not decided (issue 20 §1).
    let out = lambda.invoke(&fixture("http_api_v1.json", &email));
    assert!(
        !out.status.success(),
        "a kind mismatch must not get an answer"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KindMismatch"), "{stderr}");

    // A valid token without the scope: the deny-all policy (403).
    let a = lambda.answer(&token_event(&profile));
    assert_eq!(evaluate(&policy(&a), SEED_GET), Effect::Deny, "{a}");

    // A bad token: the error Unauthorized (401), exactly, as API Gateway requires.
    let out = lambda.invoke(&token_event("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
    assert!(!out.status.success(), "a bad token must not get an answer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthorized"), "{stderr}");
    let (status, body) = lambda.invoke_http(&token_event("not-a-jwt")).await;
    assert_eq!(status, 500, "a function error: {body}");
    assert_eq!(
        body,
        serde_json::json!({"errorType": "Unauthorized", "errorMessage": "Unauthorized"})
    );

    // A fault: an event API Gateway could not have sent (no methodArn) is an error, not a 401.
    let out = lambda.invoke(r#"{"type":"TOKEN","authorizationToken":"Bearer a.b.c"}"#);
    assert!(
        !out.status.success(),
        "a broken event must not get an answer"
    );

    // The logs: JSON lines, one decision per invocation with the Lambda request id, no token.
    lambda.function.stop(Duration::from_secs(3));
    let log = lambda.function.report();
    // A 401 is an ordinary answer: logged at INFO with its reason, never at ERROR (the
    // runtime's own ERROR echo of it is filtered out), so error alarms see only faults.
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""level":"ERROR""#))
        .collect();
    assert!(
        !errors.is_empty() && errors.iter().all(|l| !l.contains("Unauthorized")),
        "ERROR lines must be the fault's alone:\n{}",
        errors.join("\n")
    );
    let refusals = log
        .lines()
        .filter(|l| l.contains(r#""decision":"Unauthorized""#) && l.contains(r#""level":"INFO""#))
        .count();
    assert_eq!(
        refusals, 2,
        "each 401 logged once at INFO with its reason:\n{log}"
    );
    let decisions: Vec<Value> = log
        .lines()
        .filter(|l| l.contains(r#""message":"decision""#))
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    assert_eq!(decisions.len(), 9, "{log}");
    for d in &decisions {
        let id = d["span"]["request_id"].as_str().unwrap_or_default();
        assert_eq!(id.len(), 36, "a request id on every decision: {d}");
    }
    for t in [&email, &profile] {
        let signature = t.rsplit('.').next().unwrap();
        assert!(
            !log.contains(signature),
            "a token leaked into the log or the metrics"
        );
    }

    // The metrics: EMF lines on stdout, one per decision (when the entry point installs
    // scopegate::metrics), counting 4 Allow, 1 Deny, 2 Unauthorized, 2 Errors (the kind
    // mismatch and the broken event).
    let emf: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{') && l.contains(r#""_aws""#) && l.contains(r#""Latency""#))
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON EMF line ({e}): {l}"))
        })
        .collect();
    {
        let count = |name: &str| emf.iter().filter_map(|d| d[name].as_u64()).sum::<u64>();
        let counts = [
            count("Allow"),
            count("Deny"),
            count("Unauthorized"),
            count("Error"),
        ];
        assert_eq!(
            counts,
            [4, 1, 2, 2],
            "Allow, Deny, Unauthorized, Error in\n{emf:#?}"
        );
        assert_eq!(emf[0]["FunctionName"], FUNCTION);
    }

    // Each refusal is named from the fixed list, the same name in the decision line and in
    // the metric's Refusal dimension: "not-a-jwt" is malformed; the unsigned-looking token
    // names no key.
    let names: Vec<&str> = scopegate::refusal::Refusal::ALL
        .iter()
        .map(|r| r.as_str())
        .collect();
    let mut logged: Vec<&str> = decisions
        .iter()
        .filter(|d| d["fields"]["decision"] == "Unauthorized")
        .map(|d| d["fields"]["refusal"].as_str().unwrap_or("(none)"))
        .collect();
    let mut counted: Vec<&str> = emf
        .iter()
        .filter(|d| d["Unauthorized"] == 1)
        .map(|d| d["Refusal"].as_str().unwrap_or("(none)"))
        .collect();
    logged.sort_unstable();
    counted.sort_unstable();
    assert_eq!(logged, counted, "{log}");
    assert!(logged.iter().all(|r| names.contains(r)), "{logged:?}");
    assert!(logged.contains(&"malformed"), "{logged:?}");
}

#[tokio::test]
async fn a_bad_setting_fails_the_start_naming_it() {
    let idp = IdpGuard::start().await;
    let mut lambda = LambdaGuard::start(&[
        ("SCOPEGATE_ISSUER", idp.issuer()),
        ("SCOPEGATE_LEEWAY_SECONDS", "9000"),
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while lambda.function.try_wait().is_none() {
        assert!(
            Instant::now() < deadline,
            "the authorizer started with a bad setting\n{}",
            lambda.function.report()
        );
        // The poll interval of a wait for the child's exit, with a deadline.
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = lambda.function.report();
    assert!(
        report.contains("SCOPEGATE_LEEWAY_SECONDS") && report.contains("9000"),
        "{report}"
    );
}
