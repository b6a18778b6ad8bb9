//! The seed's three cases, replayed through the real `scopegate invoke` binary with the same
//! settings a Lambda would have, against the real OIDC provider.

use std::io::Write;
use std::process::{Command, Stdio};

use scopegate::policy::{evaluate, Effect, Policy};
use serde_json::Value;

use crate::oidc::{token_event, SEED_GET};
use crate::support::idp::{IdpGuard, API_AUDIENCE};

fn invoke(idp: &IdpGuard, extra_env: &[(&str, &str)], input: &[u8]) -> (Vec<Value>, String, bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scopegate"));
    cmd.arg("invoke")
        .env_clear()
        .env("SCOPEGATE_ISSUER", idp.issuer())
        .env("SCOPEGATE_AUDIENCE", API_AUDIENCE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn scopegate invoke");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    (
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

fn policy(answer: &Value) -> Policy {
    serde_json::from_value(answer["policyDocument"].clone())
        .unwrap_or_else(|e| panic!("{answer}: {e}"))
}

#[tokio::test]
async fn the_seeds_three_cases() {
    let idp = IdpGuard::start().await;
    let with_email = idp.token("email").await;
    let without = idp.token("profile").await;
    let mut input = Vec::new();
    for t in [&*with_email, &*without, "ThisIsNotAJWT"] {
        input.extend_from_slice(&token_event(t, SEED_GET));
        input.push(b'\n');
    }
    let (answers, stderr, ok) = invoke(&idp, &[], &input);
    assert!(ok, "{stderr}");
    assert_eq!(answers.len(), 3, "{stderr}");

    assert_eq!(
        evaluate(&policy(&answers[0]), SEED_GET),
        Effect::Allow,
        "{}",
        answers[0]
    );
    assert_eq!(answers[0]["principalId"], "scopegate-test");
    assert_eq!(answers[0]["context"]["scope"], "email");

    let deny = policy(&answers[1]);
    assert_eq!(evaluate(&deny, SEED_GET), Effect::Deny);
    assert!(
        deny.statements.iter().all(|s| s.effect == Effect::Deny),
        "deny-all: {}",
        answers[1]
    );

    assert_eq!(
        answers[2],
        serde_json::json!({"errorType": "Unauthorized", "errorMessage": "Unauthorized"})
    );

    // One decision line per event in the log, and never a token.
    assert_eq!(
        stderr.matches(r#""message":"decision""#).count(),
        3,
        "{stderr}"
    );
    for t in [&with_email, &without] {
        let signature = t.rsplit('.').next().unwrap();
        assert!(!stderr.contains(signature), "a token leaked into the log");
    }
}

/// Answers and decision lines are buffered: a run that ends on a broken event still writes
/// every answer before it, and its decision lines come before the error that ended it.
#[tokio::test]
async fn a_broken_event_ends_the_run_after_every_answer_before_it_is_written() {
    let idp = IdpGuard::start().await;
    let with_email = idp.token("email").await;
    let mut input = Vec::new();
    for _ in 0..2 {
        input.extend_from_slice(&token_event(&with_email, SEED_GET));
        input.push(b'\n');
    }
    input.extend_from_slice(br#"{"type": "TOKEN", "#);
    let (answers, stderr, ok) = invoke(&idp, &[], &input);
    assert!(!ok, "{stderr}");
    assert_eq!(answers.len(), 2, "{stderr}");
    assert!(answers.iter().all(|a| a["principalId"] == "scopegate-test"));
    let last_decision = stderr
        .rfind(r#""message":"decision""#)
        .expect("decision lines");
    let error = stderr
        .find("error: event 3")
        .expect("the error names the event");
    assert!(last_decision < error, "{stderr}");
    assert_eq!(stderr.matches(r#""message":"decision""#).count(), 2);
}

#[tokio::test]
async fn config_errors_name_the_setting() {
    let idp = IdpGuard::start().await;
    let (answers, stderr, ok) = invoke(&idp, &[("SCOPEGATE_LEEWAY_SECONDS", "9000")], b"");
    assert!(!ok);
    assert!(answers.is_empty());
    assert!(
        stderr.contains("SCOPEGATE_LEEWAY_SECONDS") && stderr.contains("9000"),
        "{stderr}"
    );
}
