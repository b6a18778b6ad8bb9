//! The DPoP replay table (RFC 9449 §11.1) on the emulators (moto, or LocalStack with
//! SCOPEGATE_TEST_AWS_ENDPOINT): the conditional write accepts a key once, and of 16
//! `scopegate invoke` processes sent one proof at once, exactly one is answered with a policy.

use std::io::Write;
use std::process::{Command, Stdio};

use scopegate::clock::{Clock, SystemClock};
use scopegate::mapping::store::aws::AwsConfig;
use scopegate::replay::{DynamoReplayStore, ReplayStore};
use scopegate::token::mint::SigningKey;
use scopegate::token::Alg;
use serde_json::{json, Value};

use crate::lambda::fixture;
use crate::store::aws;
use crate::support::emulator::{unique_name, AwsEmulator, ACCESS_KEY, REGION, SECRET_KEY};
use crate::support::idp::{IdpGuard, API_AUDIENCE};

#[tokio::test]
async fn the_replay_table_takes_a_key_once_until_it_expires() {
    let emu = AwsEmulator::start().await;
    let config = AwsConfig::load(&aws(emu.endpoint())).await.unwrap();
    let store = DynamoReplayStore::new(&config, &unique_name("dpop-replay"));
    assert_eq!(store.create_table().await, Ok(true));
    assert_eq!(store.create_table().await, Ok(false), "already there");
    let now = SystemClock.now();
    assert_eq!(store.record("a", now + 60, now).await, Ok(true));
    assert_eq!(
        store.record("a", now + 60, now).await,
        Ok(false),
        "a replay"
    );
    assert_eq!(store.record("b", now + 60, now).await, Ok(true));
    // An item past its time that TTL has not deleted yet does not refuse a key.
    assert_eq!(store.record("c", now - 1, now - 70).await, Ok(true));
    assert_eq!(store.record("c", now + 60, now).await, Ok(true));
    // The SDK retrying a write whose answer was lost: the same writer passes again, so the
    // client's own proof is not taken for a replay; any other writer is refused.
    assert_eq!(store.record_by("d", now + 60, now, "w1").await, Ok(true));
    assert_eq!(store.record_by("d", now + 60, now, "w1").await, Ok(true));
    assert_eq!(store.record_by("d", now + 60, now, "w2").await, Ok(false));
    assert_eq!(store.record("d", now + 60, now).await, Ok(false));
    // A table that is not there is an error, never a pass.
    let missing = DynamoReplayStore::new(&config, &unique_name("no-such-table"));
    let err = missing.record("a", now + 60, now).await.unwrap_err();
    assert!(err.contains("ResourceNotFound"), "{err}");
}

/// One proof, sent to 16 processes at once (16 containers): the table lets exactly one
/// through, and the others say why in their decision line.
#[tokio::test]
async fn sixteen_processes_sent_one_proof_answer_it_once() {
    let emu = AwsEmulator::start().await;
    let config = AwsConfig::load(&aws(emu.endpoint())).await.unwrap();
    let table = unique_name("dpop-replay");
    DynamoReplayStore::new(&config, &table)
        .create_table()
        .await
        .unwrap();
    let idp = IdpGuard::start().await;
    let key = SigningKey::generate(Alg::ES256, "client");
    let proof = |htm: &str, htu: &str, token: Option<&str>| {
        let now = SystemClock.now();
        let ath = token.map(scopegate::token::dpop::ath);
        key.dpop_proof(htm, htu, now, &format!("{htm}-{now}"), ath.as_deref())
    };
    let (status, body) = idp
        .dpop_token_response("email", &proof("POST", idp.token_endpoint(), None))
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let mut event: Value =
        serde_json::from_str(&fixture("request.json", &token).replace("Bearer ", "DPoP ")).unwrap();
    let url = "https://rz8w6b1ik2.execute-api.us-east-1.amazonaws.com/dev/my-resource";
    event["headers"]["DPoP"] = json!(proof("GET", url, Some(&token)));
    let line = format!("{event}\n");

    let children: Vec<_> = (0..16)
        .map(|_| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
                .arg("invoke")
                .env_clear()
                .env("SCOPEGATE_ISSUER", idp.issuer())
                .env("SCOPEGATE_AUDIENCE", API_AUDIENCE)
                .env("SCOPEGATE_DPOP_REPLAY_TABLE", &table)
                .env("AWS_ENDPOINT_URL", emu.endpoint())
                .env("AWS_REGION", REGION)
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn scopegate invoke");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(line.as_bytes())
                .unwrap();
            child
        })
        .collect();
    let mut allowed = 0;
    let mut replayed = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let answer: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{e}: {stdout} / {stderr}"));
        if answer.get("policyDocument").is_some() {
            allowed += 1;
        } else {
            assert_eq!(answer["errorType"], "Unauthorized", "{answer} / {stderr}");
            assert!(stderr.contains("dpop_replayed"), "{stderr}");
            replayed += 1;
        }
    }
    assert_eq!((allowed, replayed), (1, 15));
}
