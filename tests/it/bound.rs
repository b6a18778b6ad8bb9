//! Tokens bound to the caller, issued by a real provider (oidc-provider's DPoP and mutual-TLS
//! features) and taken through REQUEST events of every payload (REST, HTTP API 1.0 and 2.0)
//! to the answer: RFC 9449 (DPoP) and RFC 8705 §3 (certificate-bound tokens).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use scopegate::authorizer::{AuthorizeError, Authorizer};
use scopegate::clock::{Clock, SystemClock};
use scopegate::config::{Config, MappingsSource};
use scopegate::mapping::StaticMappings;
use scopegate::policy::{evaluate, Effect, Policy};
use scopegate::token::mint::SigningKey;
use scopegate::token::{Alg, Rejection};
use serde_json::{json, Value};

use crate::lambda::{fixture, http_api_id, http_fixture, seed_with_an_http_api};
use crate::oidc::{config_for, SEED_GET};
use crate::support::idp::IdpGuard;

const CLIENT_PEM: &str = include_str!("../fixtures/certs/client.pem");
const OTHER_PEM: &str = include_str!("../fixtures/certs/other.pem");
const CLIENT_X5T: &str = include_str!("../fixtures/certs/client.x5t");
const ORIGIN: &str = "https://rz8w6b1ik2.execute-api.us-east-1.amazonaws.com";

/// The three events that can carry a bound token, as `(name, event, methodArn, URL)`.
fn events(token: &str) -> Vec<(&'static str, String, String, String)> {
    let http_get = SEED_GET.replace("rz8w6b1ik2", http_api_id());
    let http_origin = ORIGIN.replace("rz8w6b1ik2", http_api_id());
    vec![
        (
            "REST REQUEST",
            fixture("request.json", token),
            SEED_GET.to_owned(),
            format!("{ORIGIN}/dev/my-resource"),
        ),
        (
            "HTTP API 1.0",
            http_fixture("http_api_v1.json", token),
            http_get.clone(),
            format!("{http_origin}/dev/my-resource"),
        ),
        (
            "HTTP API 2.0",
            http_fixture("http_api_v2.json", token),
            http_get,
            format!("{http_origin}/dev/my-resource"),
        ),
    ]
}

/// `event` with the DPoP scheme and `proof` in a `DPoP` header.
fn with_proof(event: &str, proof: &str) -> Vec<u8> {
    let mut e: Value = serde_json::from_str(&event.replace("Bearer ", "DPoP ")).unwrap();
    e["headers"]["DPoP"] = json!(proof);
    if e.get("multiValueHeaders").is_some() {
        e["multiValueHeaders"]["DPoP"] = json!([proof]);
    }
    e.to_string().into_bytes()
}

/// `event` with `pem` as its mutual-TLS client certificate.
fn with_certificate(event: &str, pem: &str) -> Vec<u8> {
    let mut e: Value = serde_json::from_str(event).unwrap();
    let holder = if e["version"] == "2.0" {
        "authentication"
    } else {
        "identity"
    };
    e["requestContext"][holder]["clientCert"] = json!({"clientCertPem": pem});
    e.to_string().into_bytes()
}

fn authorizer(idp: &IdpGuard, mappings: &tempfile::NamedTempFile) -> Authorizer {
    let mut config: Config = config_for(idp);
    config.mappings = MappingsSource::File(mappings.path().to_owned());
    Authorizer::new(
        &config,
        StaticMappings::from_config(&config).unwrap(),
        Arc::new(SystemClock),
    )
    .unwrap()
}

async fn decide(a: &Authorizer, event: &[u8], arn: &str) -> Result<Effect, AuthorizeError> {
    let answer: Value = serde_json::from_slice(&a.handle_json(event).await?).unwrap();
    let policy: Policy = serde_json::from_value(answer["policyDocument"].clone()).unwrap();
    Ok(evaluate(&policy, arn))
}

/// A DPoP client: its key, and proofs it signs (RFC 9449 §4.2).
struct Client {
    key: SigningKey,
}

impl Client {
    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.public_jwk()})
    }

    fn claims(&self, htm: &str, htu: &str, token: Option<&str>) -> Value {
        let mut c = json!({
            "jti": URL_SAFE_NO_PAD.encode(aws_lc_rs::rand::generate::<[u8; 16]>(
                &aws_lc_rs::rand::SystemRandom::new()).unwrap().expose()),
            "htm": htm, "htu": htu, "iat": SystemClock.now(),
        });
        if let Some(t) = token {
            c["ath"] = json!(URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                t.as_bytes()
            )));
        }
        c
    }

    fn proof(&self, htm: &str, htu: &str, token: Option<&str>) -> String {
        self.key
            .sign_with_header(&self.header(), &self.claims(htm, htu, token))
    }
}

/// RFC 9449 end to end: the provider binds the token to the client's key when the token
/// request carries a proof; the authorizer accepts it with a fresh proof for the request, in
/// every event shape, and refuses it when any check of §4.3 fails, when the proof is
/// replayed, and when it is sent as a bearer token.
#[tokio::test]
async fn dpop_bound_tokens_from_a_real_provider() {
    let idp = IdpGuard::start().await;
    let mappings = seed_with_an_http_api();
    let a = authorizer(&idp, &mappings);
    let client = Client {
        key: SigningKey::generate(Alg::ES256, "client"),
    };
    let (status, body) = idp
        .dpop_token_response("email", &client.proof("POST", idp.token_endpoint(), None))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();

    for (name, event, arn, url) in events(&token) {
        let good = with_proof(&event, &client.proof("GET", &url, Some(&token)));
        assert_eq!(
            decide(&a, &good, &arn).await.unwrap(),
            Effect::Allow,
            "{name}"
        );
        assert!(
            matches!(
                decide(&a, &good, &arn).await,
                Err(AuthorizeError::Unauthorized(Rejection::DpopReplayed))
            ),
            "{name}: the same proof twice"
        );
        // As a bearer token, with a proof or without.
        let mut bearer: Value = serde_json::from_slice(&good).unwrap();
        let bearer_text = bearer.to_string().replace("DPoP ", "Bearer ");
        bearer = serde_json::from_str(&bearer_text).unwrap();
        assert!(matches!(
            decide(&a, bearer.to_string().as_bytes(), &arn).await,
            Err(AuthorizeError::Unauthorized(Rejection::WrongScheme(_)))
        ));
        assert!(matches!(
            decide(&a, event.replace("Bearer ", "DPoP ").as_bytes(), &arn).await,
            Err(AuthorizeError::Unauthorized(Rejection::DpopProofMissing))
        ));

        // Each check of §4.3, failing alone.
        let other = Client {
            key: SigningKey::generate(Alg::ES256, "other"),
        };
        let sign = |h: Value, c: Value| client.key.sign_with_header(&h, &c);
        let fresh = || client.claims("GET", &url, Some(&token));
        let mut cases: Vec<(&str, String)> = Vec::new();
        let mut h = client.header();
        h["typ"] = json!("JWT");
        cases.push(("typ", sign(h, fresh())));
        let mut h = client.header();
        h["alg"] = json!("ES384");
        cases.push(("alg", sign(h, fresh())));
        let mut h = client.header();
        h["jwk"]["d"] = json!("AAAA");
        cases.push(("private jwk", sign(h, fresh())));
        cases.push(("another key", other.proof("GET", &url, Some(&token))));
        let mut tampered = client.proof("GET", &url, Some(&token));
        tampered.truncate(tampered.len() - 4);
        tampered.push_str("AAAA");
        cases.push(("signature", tampered));
        for (claim, value) in [
            ("htm", json!("POST")),
            ("htu", json!(url.replace("my-resource", "other"))),
            ("htu", json!(format!("{url}?q=1"))),
            ("iat", json!(SystemClock.now() - 120)),
            ("iat", json!(SystemClock.now() + 120)),
            ("ath", json!("AAAA")),
            ("jti", Value::Null),
        ] {
            let mut c = fresh();
            if value.is_null() {
                c.as_object_mut().unwrap().remove(claim);
            } else {
                c[claim] = value;
            }
            cases.push((claim, sign(client.header(), c)));
        }
        for (what, proof) in cases {
            let got = decide(&a, &with_proof(&event, &proof), &arn).await;
            assert!(
                matches!(
                    got,
                    Err(AuthorizeError::Unauthorized(Rejection::DpopProof(_)))
                ),
                "{name}, {what}: {got:?}"
            );
        }
    }
}

/// RFC 8705 §3 end to end: the provider binds the token to the certificate the client
/// presented; the authorizer accepts it only with that certificate in the request.
#[tokio::test]
async fn certificate_bound_tokens_from_a_real_provider() {
    let idp = IdpGuard::start().await;
    let mappings = seed_with_an_http_api();
    let a = authorizer(&idp, &mappings);
    let token = idp.certificate_bound_token("email", CLIENT_PEM).await;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(
        claims["cnf"]["x5t#S256"].as_str(),
        Some(CLIENT_X5T.trim()),
        "the provider's thumbprint is RFC 8705's: {claims}"
    );
    for (name, event, arn, _) in events(&token) {
        let mine = with_certificate(&event, CLIENT_PEM);
        assert_eq!(
            decide(&a, &mine, &arn).await.unwrap(),
            Effect::Allow,
            "{name}"
        );
        assert!(matches!(
            decide(&a, &with_certificate(&event, OTHER_PEM), &arn).await,
            Err(AuthorizeError::Unauthorized(Rejection::CertificateMismatch))
        ));
        assert!(matches!(
            decide(&a, event.as_bytes(), &arn).await,
            Err(AuthorizeError::Unauthorized(Rejection::CertificateMissing))
        ));
    }
}
