//! `scopegate flush-cache` and `--flush-authorizer-cache`, against a recording API Gateway
//! endpoint on loopback (a real HTTP server that keeps every request line and answers as
//! API Gateway does), with the store on the emulator.

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;

use crate::store::{entry_flags, Fixture, API};
use crate::support::emulator::{ACCESS_KEY, REGION, SECRET_KEY};

const API_ID: &str = "a1b2c3d4e5";

/// A stand-in for API Gateway's control plane: records `METHOD path` of every request.
/// GetStages lists `dev` and `prod`; flushing any stage but `gone` is accepted (202).
struct Recorder {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start() -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let app = Router::new().fallback(move |method: Method, uri: Uri| {
            let log = Arc::clone(&log);
            async move {
                let path = uri.path().to_owned();
                log.lock().unwrap().push(format!("{method} {path}"));
                if method == Method::GET && path == format!("/restapis/{API_ID}/stages") {
                    let body = r#"{"item":[{"stageName":"dev"},{"stageName":"prod"}]}"#;
                    return (StatusCode::OK, [("content-type", "application/json")], body)
                        .into_response();
                }
                if method == Method::DELETE && path.ends_with("/gone/cache/authorizers") {
                    return (
                        StatusCode::NOT_FOUND,
                        [
                            ("content-type", "application/json"),
                            ("x-amzn-errortype", "NotFoundException"),
                        ],
                        r#"{"message":"Invalid stage identifier specified"}"#,
                    )
                        .into_response();
                }
                // Lambda's GetFunctionConfiguration, for --authorizer-function.
                if method == Method::GET
                    && path == "/2015-03-31/functions/scopegate-authorizer/configuration"
                {
                    let body = r#"{"FunctionName":"scopegate-authorizer","Environment":{"Variables":{"SCOPEGATE_MAPPING_TTL_SECONDS":"1","SCOPEGATE_ISSUER":"https://idp.example.com"}}}"#;
                    return (StatusCode::OK, [("content-type", "application/json")], body)
                        .into_response();
                }
                if method == Method::DELETE && path.ends_with("/cache/authorizers") {
                    return StatusCode::ACCEPTED.into_response();
                }
                StatusCode::BAD_REQUEST.into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Recorder { url, seen, server }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Runs `scopegate` with test credentials and `env`, off the async runtime (the recorder
/// answers on it meanwhile).
async fn scopegate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scopegate"));
    cmd.args(args)
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .env("USER", "flusher")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn flush_path(stage: &str) -> String {
    format!("DELETE /restapis/{API_ID}/stages/{stage}/cache/authorizers")
}

#[tokio::test]
async fn flush_cache_deletes_the_stage_cache_and_lists_stages_for_a_star() {
    let rec = Recorder::start().await;
    let out = scopegate(
        &[
            "flush-cache",
            "--api",
            API,
            "--stage",
            "dev",
            "--endpoint-url",
            &rec.url,
            // The API's own region, as every other command takes one.
            "--region",
            API.split(':').nth(3).unwrap(),
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(rec.seen(), [flush_path("dev")]);
    assert!(
        text(&out.stdout).contains("flushed the authorizer cache"),
        "{}",
        text(&out.stdout)
    );

    // `*`: the API's stages, from GetStages; a dry run lists them and flushes nothing.
    let args = |dry: bool| {
        let mut a = vec![
            "flush-cache",
            "--api",
            API,
            "--stage",
            "*",
            "--output",
            "text",
        ];
        if dry {
            a.push("--dry-run");
        }
        a
    };
    rec.seen.lock().unwrap().clear();
    let out = scopegate(&args(true), &[("AWS_ENDPOINT_URL", &rec.url)]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(rec.seen(), [format!("GET /restapis/{API_ID}/stages")]);
    assert_eq!(
        text(&out.stdout),
        format!("would_flush\t{API}\tdev\nwould_flush\t{API}\tprod\n")
    );
    rec.seen.lock().unwrap().clear();
    let out = scopegate(&args(false), &[("AWS_ENDPOINT_URL", &rec.url)]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        rec.seen(),
        [
            format!("GET /restapis/{API_ID}/stages"),
            flush_path("dev"),
            flush_path("prod")
        ]
    );
}

#[tokio::test]
async fn a_failed_flush_is_an_error_naming_the_stage_and_bad_input_is_refused_first() {
    let rec = Recorder::start().await;
    let out = scopegate(
        &["flush-cache", "--api", API, "--stage", "gone"],
        &[("AWS_ENDPOINT_URL", &rec.url)],
    )
    .await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let printed = text(&out.stdout) + &text(&out.stderr);
    assert!(
        printed.contains("gone") && printed.contains("NotFoundException"),
        "{printed}"
    );

    // A methodArn is not an API, and `de v` is not a stage: refused before any request.
    // So is a --region other than the API's own (issue 22 §5): exit 2.
    rec.seen.lock().unwrap().clear();
    let out = scopegate(
        &[
            "flush-cache",
            "--api",
            API,
            "--stage",
            "dev",
            "--region",
            "eu-west-1",
        ],
        &[("AWS_ENDPOINT_URL", &rec.url)],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("eu-west-1"),
        "{}",
        text(&out.stderr)
    );
    for (api, stage) in [
        (format!("{API}/dev/GET/x"), "dev"),
        (API.to_owned(), "de v"),
    ] {
        let out = scopegate(
            &["flush-cache", "--api", &api, "--stage", stage],
            &[("AWS_ENDPOINT_URL", &rec.url)],
        )
        .await;
        assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    }
    assert_eq!(rec.seen(), Vec::<String>::new());
}

#[tokio::test]
async fn a_change_that_takes_a_grant_away_flushes_its_stages_and_one_that_adds_does_not() {
    let fx = Fixture::new().await;
    let rec = Recorder::start().await;
    let endpoint = fx.target.aws.endpoint_url.clone().unwrap();
    let bucket = fx.target.bucket.clone().unwrap();
    // The store on the emulator, API Gateway on the recorder: the SDK's per-service endpoint.
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ENDPOINT_URL_API_GATEWAY", rec.url.as_str()),
        ("SCOPEGATE_MAPPINGS_TABLE", fx.target.table.as_str()),
        ("SCOPEGATE_SNAPSHOT_BUCKET", bucket.as_str()),
        ("SCOPEGATE_FLUSH_AUTHORIZER_CACHE", "true"),
        // The CLI's own environment says nothing about the function's TTL.
        ("SCOPEGATE_MAPPING_TTL_SECONDS", "3000"),
    ];
    let flags = entry_flags("orders:read", "orders");
    let ttl = ["--mapping-ttl", "1"];
    let out = scopegate(&[&["mappings", "add"][..], &flags, &ttl].concat(), &env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        rec.seen(),
        Vec::<String>::new(),
        "a new grant flushes nothing"
    );

    let out = scopegate(
        &[&["mappings", "remove", "--yes"][..], &flags, &ttl].concat(),
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // At once, and again once every warm container has checked the version.
    assert_eq!(rec.seen(), [flush_path("dev"), flush_path("dev")]);
    let err = text(&out.stderr);
    assert!(
        err.contains("flushed the authorizer cache")
            && err.contains("flushing again in 6 s")
            && err.contains("--mapping-ttl 1"),
        "{err}"
    );

    // The wait read from the function's configuration, not from this process's environment:
    // the function says 1 s.
    rec.seen.lock().unwrap().clear();
    let out = scopegate(&[&["mappings", "add"][..], &flags].concat(), &env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lambda_env = [&env[..], &[("AWS_ENDPOINT_URL_LAMBDA", rec.url.as_str())]].concat();
    let out = scopegate(
        &[
            &["mappings", "remove", "--yes"][..],
            &flags,
            &["--authorizer-function", "scopegate-authorizer"],
        ]
        .concat(),
        &lambda_env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("flushing again in 6 s")
            && err.contains("scopegate-authorizer's mapping TTL, 1 s"),
        "{err}"
    );
    assert_eq!(
        rec.seen(),
        [
            // The first flush waits on nothing; the TTL is read after it.
            flush_path("dev"),
            "GET /2015-03-31/functions/scopegate-authorizer/configuration".to_owned(),
            flush_path("dev")
        ]
    );

    // A dry run of an import that adds a Deny on every stage lists the API's stages.
    rec.seen.lock().unwrap().clear();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deny.json");
    std::fs::write(
        &file,
        format!(r#"[{{"api":"{API}","stage":"*","method":"GET","resource":"x","scope":"s","effect":"Deny"}}]"#),
    )
    .unwrap();
    let out = scopegate(&["import", "--dry-run", file.to_str().unwrap()], &env).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(rec.seen(), [format!("GET /restapis/{API_ID}/stages")]);
    let err = text(&out.stderr);
    assert!(
        err.contains("would flush") && err.contains("stage dev") && err.contains("stage prod"),
        "{err}"
    );

    // Flushing fails: the change stands, and the warning says what to run.
    let out = scopegate(
        &[
            "import",
            "--yes",
            "--mapping-ttl",
            "1",
            file.to_str().unwrap(),
        ],
        &[
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ENDPOINT_URL_API_GATEWAY", "http://127.0.0.1:9"),
            ("SCOPEGATE_MAPPINGS_TABLE", fx.target.table.as_str()),
            ("SCOPEGATE_FLUSH_AUTHORIZER_CACHE", "true"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("could not flush") && err.contains("scopegate flush-cache"),
        "{err}"
    );
    let listed = scopegate(&["mappings", "list", "--output", "text"], &env).await;
    assert!(
        text(&listed.stdout).contains("Deny"),
        "{}",
        text(&listed.stdout)
    );
    fx.cleanup().await;
}
