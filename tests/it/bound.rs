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
            c["ath"] = json!(scopegate::token::dpop::ath(t));
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

/// What a request presents besides its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cert {
    None,
    Client,
    Other,
    Garbage,
}

/// The DPoP header a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProofSent {
    None,
    /// A good proof by the key numbered (0 or 1).
    Good(usize),
    /// A proof by key 0 for another method.
    WrongMethod,
    /// A proof by key 0 for another path.
    WrongPath,
    /// A proof by key 0, 120 s old.
    Stale,
    /// A proof by key 0 for another access token.
    WrongToken,
    /// Two good proofs by key 0.
    Two,
}

/// What the token's `cnf` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cnf {
    None,
    /// `x5t#S256` of the client certificate or of the other one.
    Cert(Cert),
    /// `jkt` of the key numbered.
    Key(usize),
    Both,
    Unknown,
    Empty,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    cnf: Cnf,
    dpop_scheme: bool,
    require: bool,
    mtls: bool,
    dpop: bool,
    event: usize,
    cert: Cert,
    proof: ProofSent,
}

fn case() -> impl proptest::strategy::Strategy<Value = Case> {
    use proptest::prelude::*;
    // Weighted so that the cases where every gate but one is passed (where a fault hides)
    // come often: a bound token of an accepted kind, sent with its own scheme.
    let cnf = prop_oneof![
        2 => Just(Cnf::None),
        2 => Just(Cnf::Cert(Cert::Client)),
        1 => Just(Cnf::Cert(Cert::Other)),
        4 => Just(Cnf::Key(0)),
        1 => Just(Cnf::Key(1)),
        1 => Just(Cnf::Both),
        1 => Just(Cnf::Unknown),
        1 => Just(Cnf::Empty),
    ];
    let cert = prop_oneof![
        1 => Just(Cert::None),
        2 => Just(Cert::Client),
        1 => Just(Cert::Other),
        1 => Just(Cert::Garbage)
    ];
    let proof = prop_oneof![
        Just(ProofSent::None),
        Just(ProofSent::Good(0)),
        Just(ProofSent::Good(1)),
        Just(ProofSent::WrongMethod),
        Just(ProofSent::WrongPath),
        Just(ProofSent::Stale),
        Just(ProofSent::WrongToken),
        Just(ProofSent::Two),
    ];
    (
        cnf,
        prop::bool::weighted(0.8),
        any::<bool>(),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.8),
        0..4usize,
        cert,
        proof,
    )
        .prop_map(
            |(cnf, own_scheme, require, mtls, dpop, event, cert, proof)| Case {
                // Mostly the scheme that fits the token: DPoP for a DPoP-bound one.
                dpop_scheme: matches!(cnf, Cnf::Key(_)) == own_scheme,
                cnf,
                require,
                mtls,
                dpop,
                event,
                cert,
                proof,
            },
        )
}

/// The model, written from issue 23's text and RFC 9449 §7 rather than from src/: `Ok(())`
/// for a request that reaches the mappings (and is allowed: the token holds `email`), else
/// the refusal's name. `token_event` is a TOKEN event, which carries neither a certificate
/// nor a `DPoP` header.
fn model(c: &Case, token_event: bool) -> Result<(), &'static str> {
    let (cert, proof) = if token_event {
        (Cert::None, ProofSent::None)
    } else {
        (c.cert, c.proof)
    };
    match c.cnf {
        Cnf::Both | Cnf::Unknown | Cnf::Empty => Err("binding_unsupported"),
        Cnf::None if c.dpop_scheme => Err("wrong_scheme"),
        Cnf::None if c.require => Err("binding_required"),
        Cnf::None => Ok(()),
        Cnf::Cert(_) if !c.mtls => Err("binding_unsupported"),
        Cnf::Cert(_) if c.dpop_scheme => Err("wrong_scheme"),
        Cnf::Cert(want) => match cert {
            Cert::None => Err("binding_missing"),
            have if have == want => Ok(()),
            _ => Err("binding_mismatch"),
        },
        Cnf::Key(_) if !c.dpop => Err("binding_unsupported"),
        Cnf::Key(_) if !c.dpop_scheme => Err("wrong_scheme"),
        Cnf::Key(k) => match proof {
            ProofSent::None => Err("binding_missing"),
            ProofSent::Good(signer) if signer == k => Ok(()),
            _ => Err("dpop_proof_invalid"),
        },
    }
}

/// The binding rules, through the whole handler with real keys and real certificates, for
/// every event shape: what the authorizer answers equals the model, and a request that
/// passed with a DPoP proof is refused as a replay when sent again.
#[test]
fn bound_tokens_are_answered_as_the_model_says() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as PtConfig, TestRunner};
    use scopegate::clock::ManualClock;
    use scopegate::config::{BoundMode, IssuerConfig, JwksSource};
    use std::io::Write as _;

    const ISS: &str = "https://idp.example.com";
    const NOW: u64 = 1_800_000_000;
    let issuer = SigningKey::generate(Alg::ES256, "idp");
    let mut jwks = tempfile::NamedTempFile::new().unwrap();
    jwks.write_all(SigningKey::jwks(&[&issuer]).to_string().as_bytes())
        .unwrap();
    let mappings = seed_with_an_http_api();
    let keys = [
        SigningKey::generate(Alg::ES256, "k0"),
        SigningKey::generate(Alg::ES256, "k1"),
    ];
    let x5t = |c: Cert| match c {
        Cert::Client => CLIENT_X5T.trim().to_owned(),
        _ => scopegate::token::binding::certificate_thumbprint(OTHER_PEM).unwrap(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(PtConfig {
        cases: crate::support::proptest_cases(),
        failure_persistence: None,
        ..PtConfig::default()
    });
    let count = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&case(), |c| {
            let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut config = Config::new(vec![IssuerConfig {
                issuer: ISS.into(),
                jwks: JwksSource::File(jwks.path().to_owned()),
            }]);
            config.mappings = MappingsSource::File(mappings.path().to_owned());
            config.bound_mode = if c.require {
                BoundMode::Require
            } else {
                BoundMode::Check
            };
            config.bound_kinds.mtls = c.mtls;
            config.bound_kinds.dpop = c.dpop;
            let a = Authorizer::new(
                &config,
                StaticMappings::from_config(&config).unwrap(),
                Arc::new(ManualClock::new(NOW)),
            )
            .unwrap();
            let cnf = match c.cnf {
                Cnf::None => Value::Null,
                Cnf::Cert(which) => json!({"x5t#S256": x5t(which)}),
                Cnf::Key(k) => json!({"jkt": keys[k].jkt()}),
                Cnf::Both => json!({"x5t#S256": x5t(Cert::Client), "jkt": keys[0].jkt()}),
                Cnf::Unknown => json!({"kid": "k"}),
                Cnf::Empty => json!({}),
            };
            let mut claims = json!({"iss": ISS, "sub": "u", "scope": "email", "iat": NOW,
                                    "exp": NOW + 600, "jti": format!("t{n}")});
            if !cnf.is_null() {
                claims["cnf"] = cnf;
            }
            let token = issuer.sign(&claims);
            let scheme = if c.dpop_scheme { "DPoP" } else { "Bearer" };
            let (name, event, arn, url) = if c.event == 3 {
                let e = json!({"type": "TOKEN", "authorizationToken": format!("{scheme} {token}"),
                               "methodArn": SEED_GET});
                ("TOKEN", e.to_string(), SEED_GET.to_owned(), String::new())
            } else {
                events(&token).swap_remove(c.event)
            };
            let mut e: Value = serde_json::from_str(&event).unwrap();
            if c.event != 3 {
                let text = e.to_string().replace("Bearer ", &format!("{scheme} "));
                e = serde_json::from_str(&text).unwrap();
                let holder = if e["version"] == "2.0" {
                    "authentication"
                } else {
                    "identity"
                };
                let pem = match c.cert {
                    Cert::None => None,
                    Cert::Client => Some(CLIENT_PEM),
                    Cert::Other => Some(OTHER_PEM),
                    Cert::Garbage => {
                        Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                    }
                };
                if let Some(pem) = pem {
                    e["requestContext"][holder]["clientCert"] = json!({"clientCertPem": pem});
                }
                let ath = scopegate::token::dpop::ath(&token);
                let sign = |k: usize, htm: &str, htu: &str, iat: u64, ath: &str, jti: &str| {
                    keys[k].dpop_proof(htm, htu, iat, jti, Some(ath))
                };
                let other_path = url.replace("my-resource", "other");
                let proofs: Vec<String> = match c.proof {
                    ProofSent::None => vec![],
                    ProofSent::Good(k) => vec![sign(k, "GET", &url, NOW, &ath, "a")],
                    ProofSent::WrongMethod => vec![sign(0, "POST", &url, NOW, &ath, "a")],
                    ProofSent::WrongPath => vec![sign(0, "GET", &other_path, NOW, &ath, "a")],
                    ProofSent::Stale => vec![sign(0, "GET", &url, NOW - 120, &ath, "a")],
                    ProofSent::WrongToken => vec![sign(0, "GET", &url, NOW, "AAAA", "a")],
                    ProofSent::Two => vec![
                        sign(0, "GET", &url, NOW, &ath, "a"),
                        sign(0, "GET", &url, NOW, &ath, "b"),
                    ],
                };
                match proofs.as_slice() {
                    [] => {}
                    [one] => e["headers"]["DPoP"] = json!(one),
                    many => {
                        if e.get("multiValueHeaders").is_some() {
                            e["headers"]["DPoP"] = json!(many[0]);
                            e["multiValueHeaders"]["DPoP"] = json!(many);
                        } else {
                            e["headers"]["DPoP"] = json!(many.join(","));
                        }
                    }
                }
            }
            let bytes = e.to_string().into_bytes();
            let ask = || -> Result<(), String> {
                match rt.block_on(a.handle_json(&bytes)) {
                    Ok(answer) => {
                        let v: Value = serde_json::from_slice(&answer).unwrap();
                        let p: Policy =
                            serde_json::from_value(v["policyDocument"].clone()).unwrap();
                        assert_eq!(evaluate(&p, &arn), Effect::Allow, "{name}: {v}");
                        Ok(())
                    }
                    Err(AuthorizeError::Unauthorized(r)) => Err(r.refusal().as_str().to_owned()),
                    Err(other) => panic!("{name}: {other}"),
                }
            };
            let want = model(&c, c.event == 3).map_err(str::to_owned);
            let got = ask();
            prop_assert_eq!(&got, &want, "{} {:?}", name, c);
            if got.is_ok() && matches!(c.cnf, Cnf::Key(_)) {
                prop_assert_eq!(ask(), Err("dpop_replayed".to_owned()), "{} {:?}", name, c);
            }
            Ok(())
        })
        .unwrap();
}
