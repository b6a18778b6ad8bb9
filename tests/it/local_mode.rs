//! `scopegate local` end to end over real sockets: the dev provider, the gateway and the real
//! authorizer between them, as a user's curl session sees them.

use std::time::Duration;

use scopegate::admin::local::{run, LocalOptions, Running};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const ORDERS: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

struct Local {
    running: Running,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
}

impl Local {
    async fn start(api: Option<&str>, stage: Option<&str>, ttl: u32) -> Local {
        Local::start_with(api, stage, ttl, None, None, false).await
    }

    async fn start_with(
        api: Option<&str>,
        stage: Option<&str>,
        ttl: u32,
        table: Option<(String, scopegate::mapping::store::aws::AwsOptions)>,
        mappings: Option<std::path::PathBuf>,
        request_authorizer: bool,
    ) -> Local {
        let (table, aws) = match table {
            Some((t, a)) => (Some(t), a),
            None => (None, Default::default()),
        };
        let idp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready) = oneshot::channel();
        let opts = LocalOptions {
            mappings,
            api: api.map(str::to_owned),
            stage: stage.map(str::to_owned),
            authorizer_ttl: ttl,
            request_authorizer,
            token_header: "Authorization".into(),
            token_regex: None,
            table,
            aws,
        };
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            run(opts, idp, gw, shutdown, move |r| {
                let _ = ready_tx.send(r.clone());
            })
            .await
            .expect("local mode runs");
        });
        let running = tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .unwrap()
            .unwrap();
        Local {
            running,
            stop: Some(stop),
            task,
            http: reqwest::Client::new(),
        }
    }

    async fn token_with(&self, scope: &str, claims: serde_json::Value) -> String {
        let serde_json::Value::Object(claims) = claims else {
            panic!("claims are an object")
        };
        scopegate::local::fetch_token_with(
            &format!("{}/token", self.running.issuer),
            scope,
            &claims,
        )
        .await
        .unwrap()
    }

    async fn token(&self, scope: &str) -> String {
        scopegate::local::fetch_token(&format!("{}/token", self.running.issuer), scope)
            .await
            .unwrap()
    }

    /// `METHOD path` through the gateway, with `auth` as the Authorization header.
    async fn send(&self, method: &str, path: &str, auth: Option<&str>) -> reqwest::Response {
        let url = format!("http://{}{path}", self.running.gateway);
        let mut req = self.http.request(method.parse().unwrap(), url);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.send().await.unwrap()
    }

    /// (status, x-scopegate-authorizer header, body)
    async fn call(&self, method: &str, path: &str, auth: Option<&str>) -> (u16, String, String) {
        let resp = self.send(method, path, auth).await;
        let status = resp.status().as_u16();
        let cache = resp
            .headers()
            .get("x-scopegate-authorizer")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, cache, resp.text().await.unwrap())
    }

    /// `GET /dev/my-resource`: (status, WWW-Authenticate, body as JSON)
    async fn answer(&self, auth: Option<&str>) -> (u16, Option<String>, serde_json::Value) {
        let resp = self.send("GET", "/dev/my-resource", auth).await;
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.bytes().await.unwrap();
        (status, challenge, serde_json::from_slice(&body).unwrap())
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn the_seeds_curl_session() {
    let local = Local::start(None, None, 300).await;
    assert!(
        local.running.banner.contains("curl"),
        "{}",
        local.running.banner
    );
    let email = local.token("email").await;
    let (status, cache, body) = local
        .call("GET", "/dev/my-resource", Some(&format!("Bearer {email}")))
        .await;
    assert_eq!((status, cache.as_str()), (200, "miss"), "{body}");
    assert!(body.contains("Hello from API Gateway!"), "{body}");
    // The seed's own first request, trailing slash and all: API Gateway serves it from the
    // my-resource resource, and the cached policy covers it.
    let (status, cache, body) = local
        .call(
            "GET",
            "/dev/my-resource/?myParam=myValue",
            Some(&format!("Bearer {email}")),
        )
        .await;
    assert_eq!((status, cache.as_str()), (200, "hit"), "{body}");

    let profile = local.token("profile").await;
    let (status, _, body) = local
        .call(
            "GET",
            "/dev/my-resource",
            Some(&format!("Bearer {profile}")),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("explicit deny"), "{body}");

    let (status, cache, body) = local
        .call("GET", "/dev/my-resource", Some("Bearer ThisIsNotAJWT"))
        .await;
    assert_eq!(
        (status, cache.as_str()),
        (401, ""),
        "rejected by the regex, authorizer not called: {body}"
    );
    let (status, _, _) = local.call("GET", "/dev/my-resource", None).await;
    assert_eq!(status, 401, "missing header");

    // A JWT-shaped token that does not verify reaches the authorizer, which says Unauthorized.
    let forged = format!("{}x", &email[..email.len() - 1]);
    let (status, cache, _) = local
        .call("GET", "/dev/my-resource", Some(&format!("Bearer {forged}")))
        .await;
    assert_eq!((status, cache.as_str()), (401, "miss"));
    local.stop().await;
}

#[tokio::test]
async fn the_cached_policy_serves_other_methods_it_grants() {
    let local = Local::start(Some(ORDERS), Some("dev"), 300).await;
    let reader = format!("Bearer {}", local.token("orders:read").await);
    let (s, c, _) = local.call("GET", "/dev/orders", Some(&reader)).await;
    assert_eq!((s, c.as_str()), (200, "miss"));
    let (s, c, _) = local.call("GET", "/dev/orders/7", Some(&reader)).await;
    assert_eq!(
        (s, c.as_str()),
        (200, "hit"),
        "the complete policy grants the next method too"
    );
    let (s, c, _) = local.call("DELETE", "/dev/orders/7", Some(&reader)).await;
    assert_eq!(
        (s, c.as_str()),
        (403, "hit"),
        "and still denies what it does not grant"
    );
    local.stop().await;
}

#[tokio::test]
async fn ttl_zero_calls_the_authorizer_every_time() {
    let local = Local::start(None, None, 0).await;
    let email = format!("Bearer {}", local.token("email").await);
    for _ in 0..3 {
        let (s, c, _) = local.call("GET", "/dev/my-resource", Some(&email)).await;
        assert_eq!((s, c.as_str()), (200, "miss"));
    }
    local.stop().await;
}

#[tokio::test]
async fn serves_the_mappings_of_a_dynamodb_table() {
    // `scopegate local --table T --endpoint-url E`: the same seed session, from the table.
    let fx = crate::store::Fixture::new().await;
    scopegate::admin::migrate::seed(&fx.admin, &crate::store::seed_dir(), false)
        .await
        .unwrap();
    let table = Some((fx.target.table.clone(), fx.target.aws.clone()));
    let seed_api = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2";
    let local = Local::start_with(Some(seed_api), Some("dev"), 300, table, None, false).await;
    let email = format!("Bearer {}", local.token("email").await);
    let (s, c, body) = local.call("GET", "/dev/my-resource", Some(&email)).await;
    assert_eq!((s, c.as_str()), (200, "miss"), "{body}");
    let profile = format!("Bearer {}", local.token("profile").await);
    let (s, _, _) = local.call("GET", "/dev/my-resource", Some(&profile)).await;
    assert_eq!(s, 403);
    local.stop().await;
    fx.cleanup().await;
}

/// Local mode with mappings that require claims (issue 21 §5): it reads the claims its
/// mappings name, and the dev provider issues them on request.
#[tokio::test]
async fn local_mode_grants_by_the_claims_the_dev_provider_issues() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("claims.json");
    std::fs::write(
        &file,
        format!(
            r#"[{{"api":"{ORDERS}","stage":"dev","method":"GET","resource":"orders","scope":"orders:read"}},
               {{"api":"{ORDERS}","stage":"dev","method":"DELETE","resource":"orders/{{id}}","scopes":[],"claims":{{"groups":["support-leads"]}}}},
               {{"api":"{ORDERS}","stage":"dev","method":"GET","resource":"tenants/${{claim:tenant_id}}/orders","scope":"orders:read"}}]"#
        ),
    )
    .unwrap();
    let local = Local::start_with(Some(ORDERS), Some("dev"), 0, None, Some(file), false).await;
    let lead = format!(
        "Bearer {}",
        local
            .token_with("", serde_json::json!({"groups": ["support-leads"]}))
            .await
    );
    let other = format!(
        "Bearer {}",
        local
            .token_with(
                "orders:read",
                serde_json::json!({"groups": ["Support-Leads"], "tenant_id": "acme"})
            )
            .await
    );
    assert_eq!(
        local.call("DELETE", "/dev/orders/7", Some(&lead)).await.0,
        200
    );
    assert_eq!(
        local.call("DELETE", "/dev/orders/7", Some(&other)).await.0,
        403
    );
    assert_eq!(local.call("GET", "/dev/orders", Some(&other)).await.0, 200);
    // A tenant-bound route: the gateway routes it as `tenants/{param}/orders`, the
    // authorizer grants the token's own tenant only.
    assert_eq!(
        local
            .call("GET", "/dev/tenants/acme/orders", Some(&other))
            .await
            .0,
        200
    );
    assert_eq!(
        local
            .call("GET", "/dev/tenants/globex/orders", Some(&other))
            .await
            .0,
        403
    );
    local.stop().await;
}

/// Local mode answers a refusal as template.yaml's gateway responses do (RFC 6750 §3): the
/// same status, challenge and body, rendered with API Gateway's message.
#[tokio::test]
async fn refusals_get_the_deployed_apis_rfc_6750_answers() {
    use scopegate::local::responses::{GatewayResponse, ACCESS_DENIED, NO_TOKEN, UNAUTHORIZED};
    let local = Local::start(None, None, 300).await;
    let expect = |r: &GatewayResponse, message: &str| {
        (
            r.status,
            r.www_authenticate.map(str::to_owned),
            serde_json::from_str::<serde_json::Value>(&r.body(message)).unwrap(),
        )
    };
    let email = local.token("email").await;
    let forged = format!("{}x", &email[..email.len() - 1]);
    let profile = local.token("profile").await;
    let cases = [
        (None, expect(&NO_TOKEN, "Unauthorized")),
        (
            Some("Bearer ThisIsNotAJWT".to_owned()),
            expect(&UNAUTHORIZED, "Unauthorized"),
        ),
        (
            Some(format!("Bearer {forged}")),
            expect(&UNAUTHORIZED, "Unauthorized"),
        ),
        (
            Some(format!("Bearer {profile}")),
            expect(
                &ACCESS_DENIED,
                "User is not authorized to access this resource with an explicit deny",
            ),
        ),
    ];
    for (i, (auth, want)) in cases.iter().enumerate() {
        assert_eq!(&local.answer(auth.as_deref()).await, want, "case {i}");
    }
    // RFC 6750 3.1: the refused token's challenge carries an error code, the tokenless one not.
    assert_eq!(cases[0].1 .1.as_deref(), Some("Bearer"));
    assert_eq!(
        cases[2].1 .1.as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    local.stop().await;
}

/// RFC 9449 in local mode, as a user's session goes: `scopegate token --dpop` (a token bound
/// to the client's key by the dev provider), then `scopegate dpop-proof` for each request,
/// through a REQUEST authorizer. A proof is good once; a refused proof or token is answered
/// in DPoP's terms (§7.1).
// Multi-threaded: the CLI runs as a child process the test waits on, while the servers serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_in_local_mode() {
    use scopegate::local::dpop::DpopKey;
    let local = Local::start_with(None, None, 300, None, None, true).await;
    let key_file = tempfile::NamedTempFile::new().unwrap();
    let status = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(key_file.path())
        .status()
        .expect("openssl");
    assert!(status.success());
    // The CLI as a user runs it; its output, trimmed.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let key_path = key_file.path().to_str().unwrap();
    let token = cli(&[
        "token",
        "--scope",
        "email",
        "--dpop",
        key_path,
        "--idp",
        &local.running.issuer,
    ]);
    let url = format!("http://{}/dev/my-resource", local.running.gateway);
    let proof = || {
        cli(&[
            "dpop-proof",
            "--method",
            "GET",
            "--url",
            &url,
            "--token",
            &token,
            "--key",
            key_path,
        ])
    };
    let send = |auth: String, dpop: Option<String>| {
        let mut req = local.http.get(&url).header("Authorization", auth);
        if let Some(p) = dpop {
            req = req.header("DPoP", p);
        }
        async move {
            let resp = req.send().await.unwrap();
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            (resp.status().as_u16(), challenge)
        }
    };
    let p = proof();
    assert_eq!(send(format!("DPoP {token}"), Some(p.clone())).await.0, 200);
    let (status, challenge) = send(format!("DPoP {token}"), Some(p)).await;
    assert_eq!(status, 401, "a replay");
    let challenge = challenge.unwrap();
    assert!(
        challenge.starts_with(r#"DPoP error="invalid_dpop_proof", algs=""#),
        "{challenge}"
    );
    let (status, challenge) = send(format!("DPoP {token}"), None).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("invalid_dpop_proof"));
    // As a bearer token: refused, in Bearer's terms.
    let (status, challenge) = send(format!("Bearer {token}"), Some(proof())).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    // A token the provider bound to the key is what the key signs for: cnf.jkt.
    let key = DpopKey::from_file(key_file.path()).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["cnf"]["jkt"], key.thumbprint());
    local.stop().await;
}
