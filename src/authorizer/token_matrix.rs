//! Verification against keys generated here and tokens minted here: every way a token can be
//! wrong is refused, and no refused token ever reaches a policy.

use std::io::Write;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{AuthorizeError, Authorizer};
use crate::alg::Alg;
use crate::clock::ManualClock;
use crate::config::{Config, IssuerConfig, JwksSource};
use crate::mapping::StaticMappings;
use crate::policy::{evaluate, Effect, Policy};
use crate::token::mint::SigningKey;
use crate::token::{Rejection, Verifier};

const ISS: &str = "https://idp.example.com";
const NOW: u64 = 1_800_000_000;
const SEED_GET: &str = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2/dev/GET/my-resource";

struct Fixture {
    keys: Vec<SigningKey>,
    _jwks: tempfile::NamedTempFile,
    config: Config,
}

impl Fixture {
    fn new() -> Self {
        let keys = vec![
            SigningKey::generate(Alg::RS256, "rsa"),
            SigningKey::generate(Alg::ES256, "ec"),
            SigningKey::generate(Alg::EdDSA, "ed"),
        ];
        let mut jwks = tempfile::NamedTempFile::new().unwrap();
        let doc = SigningKey::jwks(&keys.iter().collect::<Vec<_>>());
        jwks.write_all(doc.to_string().as_bytes()).unwrap();
        let mut config = Config::new(vec![IssuerConfig {
            issuer: ISS.into(),
            jwks: JwksSource::File(jwks.path().to_owned()),
        }]);
        config.audiences = vec!["api://default".into()];
        Self {
            keys,
            _jwks: jwks,
            config,
        }
    }

    fn claims(&self, scope: &str) -> Value {
        json!({"iss": ISS, "sub": "user-1", "aud": "api://default", "scope": scope,
               "client_id": "app", "iat": NOW - 10, "exp": NOW + 600})
    }

    fn rsa(&self) -> &SigningKey {
        &self.keys[0]
    }

    fn verifier(&self) -> Verifier {
        Verifier::new(&self.config).unwrap()
    }

    fn authorizer(&self) -> Authorizer {
        let mappings = StaticMappings::from_config(&self.config).unwrap();
        Authorizer::new(&self.config, mappings, Arc::new(ManualClock::new(NOW))).unwrap()
    }
}

fn token_event(token: &str, arn: &str) -> Vec<u8> {
    json!({"type": "TOKEN", "authorizationToken": format!("Bearer {token}"), "methodArn": arn})
        .to_string()
        .into_bytes()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Decides through the whole authorizer; Ok(effect for the seed's GET my-resource).
fn decide(f: &Fixture, token: &str) -> Result<Effect, AuthorizeError> {
    rt().block_on(async {
        let a = f.authorizer();
        let bytes = a.handle_json(&token_event(token, SEED_GET)).await?;
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let policy: Policy = serde_json::from_value(v["policyDocument"].clone()).unwrap();
        Ok(evaluate(&policy, SEED_GET))
    })
}

fn assert_unauthorized(f: &Fixture, token: &str, what: &str) {
    match decide(f, token) {
        Err(AuthorizeError::Unauthorized(_)) => {}
        other => panic!("{what}: expected Unauthorized, got {other:?}"),
    }
}

#[test]
fn each_key_type_verifies_and_allows() {
    let f = Fixture::new();
    for key in &f.keys {
        let t = key.sign(&f.claims("email"));
        assert_eq!(decide(&f, &t).unwrap(), Effect::Allow, "{:?}", key.alg());
        let t = key.sign(&f.claims("profile"));
        assert_eq!(
            decide(&f, &t).unwrap(),
            Effect::Deny,
            "{:?} without email",
            key.alg()
        );
    }
}

#[test]
fn minted_tokens_decode_with_jsonwebtoken_too() {
    // Cross-check with an independent implementation (and proves jsonwebtoken's aws-lc backend
    // is the one compiled in: with no backend it panics on the first decode).
    let f = Fixture::new();
    for key in &f.keys {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).unwrap();
        let dk = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let alg: jsonwebtoken::Algorithm = key.alg().name().parse().unwrap();
        let mut v = jsonwebtoken::Validation::new(alg);
        v.set_audience(&["api://default"]);
        v.validate_exp = false;
        let t = key.sign(&f.claims("email"));
        let data = jsonwebtoken::decode::<Value>(&t, &dk, &v).unwrap();
        assert_eq!(data.claims["sub"], "user-1");
    }
}

#[test]
fn time_claims() {
    let f = Fixture::new();
    let v = f.verifier();
    let mut c = f.claims("email");
    c["exp"] = json!(NOW - 61);
    assert!(matches!(
        rejection(&v, &f.rsa().sign(&c)),
        Rejection::Expired
    ));
    c["exp"] = json!(NOW - 30); // within the 60 s leeway
    assert!(v.verify_sync(&f.rsa().sign(&c), NOW).is_ok());
    let mut c = f.claims("email");
    c.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        rejection(&v, &f.rsa().sign(&c)),
        Rejection::MissingExp
    ));
    let mut c = f.claims("email");
    c["nbf"] = json!(NOW + 120);
    assert!(matches!(
        rejection(&v, &f.rsa().sign(&c)),
        Rejection::NotYetValid
    ));
    let mut c = f.claims("email");
    c["iat"] = json!(NOW + 120);
    assert!(matches!(
        rejection(&v, &f.rsa().sign(&c)),
        Rejection::IssuedInFuture
    ));
}

fn rejection(v: &Verifier, token: &str) -> Rejection {
    match v.verify_sync(token, NOW) {
        Err(crate::token::verify::Pending::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn every_bad_token_is_unauthorized() {
    let f = Fixture::new();
    let good = f.claims("email");
    let rsa = f.rsa();
    let attacker = SigningKey::generate(Alg::RS256, "rsa");

    let mut c = good.clone();
    c["exp"] = json!(NOW - 3600);
    assert_unauthorized(&f, &rsa.sign(&c), "expired");
    let mut c = good.clone();
    c["nbf"] = json!(NOW + 3600);
    assert_unauthorized(&f, &rsa.sign(&c), "not yet valid");
    let mut c = good.clone();
    c["iss"] = json!("https://evil.example.com");
    assert_unauthorized(&f, &rsa.sign(&c), "wrong iss");
    let mut c = good.clone();
    c["aud"] = json!(["api://other"]);
    assert_unauthorized(&f, &rsa.sign(&c), "wrong aud");
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("aud");
    assert_unauthorized(&f, &rsa.sign(&c), "no aud");

    // alg none, with and without a signature.
    let none = rsa.sign_with_header(&json!({"alg": "none", "kid": "rsa"}), &good);
    let (input, _) = none.rsplit_once('.').unwrap();
    assert_unauthorized(&f, &format!("{input}."), "alg none, empty signature");
    assert_unauthorized(&f, &none, "alg none, with signature");

    // HS256 with the RSA public key as the HMAC secret (the algorithm confusion attack).
    let public_jwk = rsa.public_jwk().to_string();
    for secret in [
        public_jwk.as_bytes(),
        rsa.public_jwk()["n"].as_str().unwrap().as_bytes(),
    ] {
        let t = jsonwebtoken::encode(
            &jsonwebtoken::Header {
                kid: Some("rsa".into()),
                ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
            },
            &good,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert_unauthorized(&f, &t, "HS256 with the public key");
    }

    // Unknown kid; the right kid with the attacker's key.
    assert_unauthorized(
        &f,
        &SigningKey::generate(Alg::RS256, "nope").sign(&good),
        "unknown kid",
    );
    assert_unauthorized(&f, &attacker.sign(&good), "attacker key under a known kid");
    // A key of the wrong type under the token's alg: the EC key's kid on an RS256 token.
    let t = attacker.sign_with_header(&json!({"alg": "RS256", "kid": "ec"}), &good);
    assert_unauthorized(&f, &t, "kid of a key of another type");

    // Tampering.
    let t = rsa.sign(&good);
    let parts: Vec<&str> = t.split('.').collect();
    let mut forged = good.clone();
    forged["scope"] = json!("email admin");
    let forged_payload = base64_url(&forged.to_string());
    assert_unauthorized(
        &f,
        &format!("{}.{}.{}", parts[0], forged_payload, parts[2]),
        "tampered payload",
    );
    let mut sig = parts[2].to_owned().into_bytes();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let sig = String::from_utf8(sig).unwrap();
    assert_unauthorized(
        &f,
        &format!("{}.{}.{}", parts[0], parts[1], sig),
        "tampered signature",
    );

    // Key locations in the header, pointing elsewhere, signed by the attacker.
    let attacker_jwk = attacker.public_jwk();
    for (field, value) in [
        ("jku", json!("https://evil.example.com/jwks.json")),
        ("x5u", json!("https://evil.example.com/cert.pem")),
        ("jwk", attacker_jwk.clone()),
        ("x5c", json!(["MIIBIjANBg"])),
    ] {
        let mut h = json!({"alg": "RS256", "kid": "rsa"});
        h[field] = value;
        assert_unauthorized(&f, &attacker.sign_with_header(&h, &good), field);
        // Refused even when the signature is the real key's.
        assert_unauthorized(&f, &rsa.sign_with_header(&h, &good), field);
    }

    // Size, base64 and JSON.
    let big = format!("{}.{}.{}", parts[0], "A".repeat(17 * 1024), parts[2]);
    assert_unauthorized(&f, &big, "oversized");
    assert_unauthorized(
        &f,
        &format!("{}.%%%.{}", parts[0], parts[2]),
        "bad base64 payload",
    );
    assert_unauthorized(
        &f,
        &format!("{}.{}.{}", base64_url("{not json"), parts[1], parts[2]),
        "bad JSON header",
    );
    assert_unauthorized(
        &f,
        &format!("{}.{}.{}", parts[0], base64_url("[1,2]"), parts[2]),
        "JSON payload not an object",
    );
    assert_unauthorized(&f, "ThisIsNotAJWT", "not a JWT");
}

#[test]
fn the_same_tokens_are_still_good() {
    // The negative test above must not pass because everything fails.
    let f = Fixture::new();
    assert_eq!(
        decide(&f, &f.rsa().sign(&f.claims("email"))).unwrap(),
        Effect::Allow
    );
}

#[test]
fn scp_array_and_named_claim() {
    let mut f = Fixture::new();
    let mut c = f.claims("");
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["email"]);
    assert_eq!(decide(&f, &f.rsa().sign(&c)).unwrap(), Effect::Allow);
    f.config.scope_claim = crate::config::ScopeClaim::Named("permissions".into());
    c["permissions"] = json!("email");
    c["scp"] = json!([]);
    assert_eq!(decide(&f, &f.rsa().sign(&c)).unwrap(), Effect::Allow);
}

#[test]
fn require_typ_at_jwt() {
    let mut f = Fixture::new();
    f.config.require_at_jwt = true;
    let rsa = f.rsa();
    assert_eq!(
        decide(&f, &rsa.sign(&f.claims("email"))).unwrap(),
        Effect::Allow
    );
    let t = rsa.sign_with_header(
        &json!({"alg": "RS256", "kid": "rsa", "typ": "JWT"}),
        &f.claims("email"),
    );
    assert_unauthorized(&f, &t, "typ JWT");
}

#[test]
fn algorithm_allow_list_is_enforced_per_key() {
    let mut f = Fixture::new();
    f.config.algorithms = vec![Alg::ES256];
    assert_unauthorized(&f, &f.rsa().sign(&f.claims("email")), "RS256 not allowed");
    assert_eq!(
        decide(&f, &f.keys[1].sign(&f.claims("email"))).unwrap(),
        Effect::Allow
    );
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
