//! Issue 8, class 6: no failure path puts a token, a part of one, or a header value into the
//! answer, a log line or an error message. Every path is driven through the real
//! `scopegate invoke` binary at debug log level, and its whole output (stdout: the answers
//! and errors; stderr: the logs) is grepped for every segment of every token it was sent.

use std::io::Write;
use std::process::{Command, Stdio};

use scopegate::token::mint::SigningKey;
use scopegate::token::Alg;
use serde_json::{json, Value};

const ISS: &str = "https://idp.leaks.test";
const ARN: &str = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2/dev/GET/my-resource";

fn now() -> u64 {
    scopegate::clock::Clock::now(&scopegate::clock::SystemClock)
}

fn claims(extra: Value) -> Value {
    let mut c = json!({"iss": ISS, "sub": "user-1", "scope": "email", "aud": "api://leaks",
                       "iat": now(), "exp": now() + 300});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// Runs `scopegate invoke` on `events` (one per line) with a JWKS file trusting `key`;
/// returns stdout and stderr.
fn invoke(key: &SigningKey, events: &[Vec<u8>]) -> (String, String) {
    let mut jwks = tempfile::NamedTempFile::new().unwrap();
    jwks.write_all(SigningKey::jwks(&[key]).to_string().as_bytes())
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .arg("invoke")
        .env_clear()
        .env("SCOPEGATE_ISSUER", ISS)
        .env("SCOPEGATE_AUDIENCE", "api://leaks")
        .env("SCOPEGATE_JWKS_FILE", jwks.path())
        .env("SCOPEGATE_LOG_LEVEL", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scopegate invoke");
    let mut stdin = child.stdin.take().unwrap();
    for e in events {
        stdin.write_all(e).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn token_event(source: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"type": "TOKEN", "authorizationToken": source, "methodArn": ARN}))
        .unwrap()
}

fn request_event(source: &str, arn: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"type": "REQUEST", "methodArn": arn,
                               "headers": {"Authorization": source, "Host": "x"}}))
    .unwrap()
}

fn http_event(source: &str, arn: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"version": "2.0", "type": "REQUEST", "routeArn": arn,
                               "identitySource": [source], "headers": {"authorization": source}}),
    )
    .unwrap()
}

#[test]
fn no_failure_path_leaks_a_token_or_a_header() {
    let key = SigningKey::generate(Alg::ES256, "k1");
    let stranger = SigningKey::generate(Alg::ES256, "k1");
    let good = key.sign(&claims(json!({})));
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    let tokens: Vec<(&str, String)> =
        vec![
        ("tampered signature", tampered),
        ("expired", key.sign(&claims(json!({"exp": now() - 3600})))),
        ("another audience", key.sign(&claims(json!({"aud": "api://other api://leaks"})))),
        ("a tab in the scope", key.sign(&claims(json!({"scope": "email\tadmin"})))),
        ("an empty sub and no client", key.sign(&claims(json!({"sub": ""})))),
        ("the attacker's key", stranger.sign(&claims(json!({})))),
        (
            "an unknown kid that quotes the payload",
            key.sign_with_header(
                &json!({"alg": "ES256", "kid": "kid-eyJpc3MiOiJodHRwczovL2lkcC5sZWFrcy50ZXN0In0"}),
                &claims(json!({})),
            ),
        ),
        (
            "alg HS256",
            key.sign_with_header(&json!({"alg": "HS256", "kid": "k1"}), &claims(json!({}))),
        ),
        (
            "an alg that is not registered",
            key.sign_with_header(
                &json!({"alg": "eyJhbGciOiJub25lIn0-secret-alg", "kid": "k1"}),
                &claims(json!({})),
            ),
        ),
        (
            "jku",
            key.sign_with_header(
                &json!({"alg": "ES256", "kid": "k1", "jku": "https://evil.example/jwks"}),
                &claims(json!({})),
            ),
        ),
        ("not a JWT", "ThisIsNotAJWTButASecretOpaqueValue".to_owned()),
    ];

    let mut events = Vec::new();
    let mut sources = Vec::new();
    for (_, t) in &tokens {
        let source = format!("Bearer {t}");
        events.push(token_event(&source));
        events.push(request_event(&source, ARN));
        events.push(http_event(&source, ARN));
        // A bad ARN beside a token: a BadEvent, whose message must not quote either.
        events.push(request_event(&source, &ARN.replace("/dev/", "/d*v/")));
        sources.push(source);
    }
    // A valid token in a header with a DEL or a control byte: a bad token (401), not a 500
    // that logs the header.
    for bad in ["\u{7f}", "\u{1}", "\n", "\u{0}"] {
        let source = format!("Bearer {good}{bad}");
        events.push(request_event(&source, ARN));
        events.push(http_event(&source, ARN));
        sources.push(source);
    }
    // The token where a field of another type belongs: serde's own message would quote it.
    let source = format!("Bearer {good}");
    events.push(
        serde_json::to_vec(
            &json!({"type": "TOKEN", "authorizationToken": source, "methodArn": [source]}),
        )
        .unwrap(),
    );
    events
        .push(serde_json::to_vec(&json!({"type": source, "authorizationToken": source})).unwrap());
    events.push(
        serde_json::to_vec(
            &json!({"type": "REQUEST", "methodArn": ARN, "headers": {"authorization": [source]}}),
        )
        .unwrap(),
    );
    events.push(
        serde_json::to_vec(&json!({"version": "2.0", "routeArn": ARN, "identitySource": source}))
            .unwrap(),
    );
    let (stdout, stderr) = invoke(&key, &events);

    let answers: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert_eq!(answers.len(), events.len(), "{stdout}\n{stderr}");
    for (i, a) in answers.iter().enumerate() {
        assert!(a.get("errorType").is_some(), "event {i} was answered: {a}");
        assert!(a.get("policyDocument").is_none() && a.get("isAuthorized").is_none());
    }
    // Each token-bearing event of the header cases is a plain 401.
    let header_cases = &answers[tokens.len() * 4..tokens.len() * 4 + 8];
    for a in header_cases {
        assert_eq!(
            a,
            &json!({"errorType": "Unauthorized", "errorMessage": "Unauthorized"})
        );
    }
    assert!(
        stderr.contains(r#""message":"decision""#),
        "the decisions are logged: {stderr}"
    );

    let output = format!("{stdout}\n{stderr}");
    let mut needles: Vec<String> = Vec::new();
    for (what, t) in &tokens {
        for segment in t.split('.').filter(|s| s.len() >= 8) {
            needles.push(format!("{what}: {segment}"));
        }
    }
    needles.push(format!("good: {}", good.rsplit('.').next().unwrap()));
    needles.push("kid: kid-eyJpc3MiOiJodHRwczovL2lkcC5sZWFrcy50ZXN0In0".into());
    needles.push("alg: eyJhbGciOiJub25lIn0-secret-alg".into());
    needles.push("opaque: SecretOpaqueValue".into());
    for needle in &needles {
        let (what, text) = needle.split_once(": ").unwrap();
        assert!(
            !output.contains(text),
            "{what}: a part of the token reached the output:\n{output}"
        );
    }
    assert!(!sources.is_empty());
}
