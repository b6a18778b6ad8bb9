//! Whole authorizer events (TOKEN, REQUEST, HTTP API 2.0) through the real handler, with the
//! seed mappings and a real issuer key the fuzzer does not hold. No token it can write
//! verifies, so every answer must be an error: never a policy, never an Allow. An error's
//! message must not quote the token source.
#![no_main]

use std::io::Write;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use scopegate::authorizer::Authorizer;
use scopegate::clock::ManualClock;
use scopegate::config::{Config, IssuerConfig, JwksSource, ResponseMode};
use scopegate::mapping::StaticMappings;
use scopegate::token::mint::SigningKey;
use scopegate::token::Alg;
use serde_json::Value;

struct World {
    rt: tokio::runtime::Runtime,
    iam: Authorizer<StaticMappings>,
    simple: Authorizer<StaticMappings>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let key = SigningKey::generate(Alg::ES256, "k1");
        let mut jwks = tempfile::NamedTempFile::new().unwrap();
        jwks.write_all(SigningKey::jwks(&[&key]).to_string().as_bytes())
            .unwrap();
        let (_, path) = jwks.keep().unwrap();
        let mut config = Config::new(vec![IssuerConfig {
            issuer: "https://idp.example.com".into(),
            jwks: JwksSource::File(path),
        }]);
        let build = |config: &Config| {
            let mappings = StaticMappings::from_config(config).unwrap();
            Authorizer::new(config, mappings, Arc::new(ManualClock::new(1_800_000_000))).unwrap()
        };
        let iam = build(&config);
        config.response = ResponseMode::Simple;
        let simple = build(&config);
        World {
            rt: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            iam,
            simple,
        }
    })
}

/// The token sources an event carries, as text (to look for in error messages): values that
/// hold a bearer token. Other header values are not looked for: a short one such as
/// "REQUEST " can stand in scopegate's own fixed wording and prove nothing.
fn sources(event: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = event.get("authorizationToken").and_then(Value::as_str) {
        out.push(t.to_owned());
    }
    if let Some(h) = event.get("headers").and_then(Value::as_object) {
        out.extend(h.values().filter_map(Value::as_str).map(str::to_owned));
    }
    if let Some(h) = event.get("multiValueHeaders").and_then(Value::as_object) {
        let values = h.values().filter_map(Value::as_array).flatten();
        out.extend(values.filter_map(Value::as_str).map(str::to_owned));
    }
    out.retain(|s| s.len() >= 12 && s.to_ascii_lowercase().contains("bearer"));
    out
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let parsed: Option<Value> = serde_json::from_slice(data).ok();
    for a in [&w.iam, &w.simple] {
        match w.rt.block_on(a.handle_json(data)) {
            Ok(answer) => panic!(
                "an unverifiable event was answered: {}",
                String::from_utf8_lossy(&answer)
            ),
            Err(e) => {
                let text = format!("{e} {}", e.error_message());
                for s in parsed.iter().flat_map(sources) {
                    assert!(
                        !text.contains(&s),
                        "the error quotes the token source: {text}"
                    );
                }
            }
        }
    }
});
