//! The differential property test of issue 8: for random mapping sets, scope sets and
//! requests, what the authorizer answers must equal what the mappings mean.
//!
//! Two independent pieces judge it, both in tests/it/model.rs and sharing no code with src/:
//! - [`meaning`], a naive reading of docs/mappings.md: an entry applies when every scope it
//!   requires is held, its API and stage name the request's (stage `*`: any), and its method
//!   is the request's (`*`/`ANY`: any). A Deny that applies and matches denies; a glob Allow
//!   that applies and matches allows; otherwise the request belongs to the most specific
//!   route that matches it, and is allowed when an Allow naming that route applies. An entry
//!   whose pattern does not end in `*` also covers the pattern followed by a slash.
//! - Where the mappings do not say (a path no route names, reached only by the `*` of a
//!   template's Allow), nothing is asserted. Where the policy denies what the mappings
//!   allow, the snapshot must have reported the token's routes as inseparable (IAM's `*`
//!   matches `/`, so some pairs of routes cannot be told apart; then the Deny wins). An
//!   Allow the mappings do not mean always fails the test.
//! - [`iam_allows`], a small IAM evaluator (dynamic programming over the pattern, not the
//!   backtracking walk of src/policy/eval.rs) that reads the policy JSON the authorizer
//!   returns: explicit Deny wins, then any Allow, else the implicit deny.
//!
//! The authorizer is the real one: ES256 tokens signed with a real key, the whole event
//! handler (TOKEN, REQUEST and HTTP API 2.0 events, IAM and simple responses), each request
//! answered twice so the token cache's path is judged too. Requests an API Gateway could not
//! have sent (a stage `*`, a method `get`) must be refused as bad events, never decided.
//!
//! Each case declares the kind of each API at random (issue 20 §1): the policy follows the
//! declared kind, and an event of the other kind (its shape: REST's, or an HTTP API's 1.0 or
//! 2.0) must be refused, never decided by either kind's rules.
//!
//! Cases per run: 2000 by default; `SCOPEGATE_PROPTEST_CASES=1000000 cargo test --release
//! --test it differential::` is the long run (docs/testing.md).

use std::io::Write;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use scopegate::authorizer::{AuthorizeError, Authorizer};
use scopegate::claim::{binding_key, grant_key, token_keys, ClaimName, ClaimValue};
use scopegate::clock::ManualClock;
use scopegate::config::{Config, IssuerConfig, JwksSource, ResponseMode};
use scopegate::mapping::StaticMappings;
use scopegate::mapping::{ApiKinds, Mapping, Snapshot};
use scopegate::policy::{ApiArn, ApiKind};
use scopegate::token::mint::SigningKey;
use scopegate::token::Alg;
use serde_json::{json, Value};

use super::model::{
    bound_value, holds_claim, iam_allows, meaning, meaning_with_claims, wildcard, Req,
};
use crate::support::proptest_cases;

/// Whether an answer is one the mappings allow: equal to the meaning, or a Deny where the
/// meaning is an Allow that the snapshot reported it cannot keep apart from a denied route.
fn acceptable(got: bool, want: Option<bool>, inseparable: bool) -> bool {
    match want {
        None => true,
        Some(want) => got == want || (want && !got && inseparable),
    }
}

const ISS: &str = "https://idp.differential.test";
const NOW: u64 = 1_800_000_000;
const APIS: [&str; 2] = [
    "arn:aws:execute-api:us-east-1:123456789012:aaaaaaaaaa",
    "arn:aws:execute-api:us-east-1:123456789012:bbbbbbbbbb",
];
/// Requests also go to an API no entry names.
const OTHER_API: &str = "arn:aws:execute-api:us-east-1:123456789012:cccccccccc";
const SCOPES: [&str; 4] = ["s1", "s2", "s3", "s4"];
/// The grant claims the authorizer is configured with (issue 21): a top-level array claim,
/// a nested one by JSON Pointer, and one that tokens write with several JSON types.
/// `tenant` and `/team/id` also stand in `${claim:NAME}` segments (issue 21 §2).
const GRANT: [&str; 5] = ["groups", "/org/roles", "tier", "tenant", "/team/id"];

/// Path pieces chosen so that patterns and paths collide often: shared words, the methods
/// (a path can contain `GET/`), a literal `*` (legal in a URL path), and empty segments.
fn path_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a", "b", "ab", "orders", "7", "GET", "x.y", "*", "", "{id}",
    ])
}

fn request_path() -> impl Strategy<Value = String> {
    (prop::collection::vec(path_piece(), 0..4), any::<bool>()).prop_map(|(parts, slash)| {
        let mut p = parts.join("/");
        if slash && !p.is_empty() {
            p.push('/');
        }
        p
    })
}

fn resource_pattern() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a",
        "b",
        "ab",
        "orders",
        "7",
        "GET",
        "*",
        "?",
        "a*",
        "*b",
        "o?ders",
        "x.y",
        "{id}",
        "{n}",
        "{p+}",
        "orders",
        "a",
        "${claim:tenant}",
        "${claim:/team/id}",
    ]);
    (prop::collection::vec(piece, 0..4), any::<bool>()).prop_map(|(parts, lead)| {
        let p = parts.join("/");
        if lead {
            format!("/{p}")
        } else {
            p
        }
    })
}

fn entry() -> impl Strategy<Value = Mapping> {
    (
        prop::sample::select(APIS.to_vec()),
        prop::sample::select(vec!["dev", "prod", "$default", "*"]),
        prop::sample::select(vec![
            "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*", "ANY",
        ]),
        resource_pattern(),
        requirement(),
        prop::sample::select(vec!["Allow", "Allow", "Deny"]),
        prop::option::weighted(0.35, entry_claims()),
    )
        .prop_filter_map(
            "a resource the mapping refuses",
            |(api, stage, method, resource, scopes, effect, claims)| {
                let mut entry = json!({
                    "api": api, "stage": stage, "method": method, "resource": resource,
                    "effect": effect,
                });
                match scopes.as_slice() {
                    [NOBODY] => entry["nobody"] = json!(true),
                    [one] => entry["scope"] = json!(one),
                    all => entry["scopes"] = json!(all),
                }
                if let (Some(claims), false) = (claims, scopes.as_slice() == [NOBODY]) {
                    entry["claims"] = claims;
                }
                serde_json::from_value::<Mapping>(entry).ok()
            },
        )
}

/// Claim values an entry requires: one or two of the grant claims, one or two values each,
/// of the types an entry may name.
fn entry_claims() -> impl Strategy<Value = Value> {
    let value = prop::sample::select(vec![
        json!("a"),
        json!("b"),
        json!("A"),
        json!("a b"),
        json!("5"),
        json!(5),
        json!(true),
    ]);
    prop::collection::btree_map(
        prop::sample::select(GRANT.to_vec()),
        prop::collection::vec(value, 1..3),
        1..3,
    )
    .prop_map(|m| json!(m))
}

/// What a token's grant claims hold, hostile shapes included: arrays and bare values, case
/// and type variants (`"5"`, `5`, `5.0`), a space inside one value, the nested claim at the
/// wrong depth, objects, null.
fn token_claims() -> impl Strategy<Value = Value> {
    let value = prop::sample::select(vec![
        json!("a"),
        json!("b"),
        json!("A"),
        json!("a b"),
        json!(["a", "b"]),
        json!(["b"]),
        json!(["a b", "x"]),
        json!("5"),
        json!(5),
        json!(5.0),
        json!([5, true]),
        json!(true),
        json!(null),
        json!({"a": true}),
        json!([["a"]]),
    ]);
    // Bound values: path words that requests hit, and what must never be a segment.
    let bound = prop::sample::select(vec![
        json!("a"),
        json!("b"),
        json!("orders"),
        json!("7"),
        json!("GET"),
        json!("x.y"),
        json!("*"),
        json!("a*"),
        json!("a/b"),
        json!(".."),
        json!("."),
        json!(""),
        json!("%61"),
        json!("a b"),
        json!("é"),
        json!(["a"]),
        json!(7),
        json!(null),
    ]);
    (
        prop::option::of(value.clone()),
        prop::option::of(value.clone()),
        prop::option::of(value),
        any::<bool>(),
        prop::option::of(bound.clone()),
        prop::option::of((bound, any::<bool>())),
    )
        .prop_map(|(groups, roles, tier, nested, tenant, team)| {
            let mut c = serde_json::Map::new();
            if let Some(g) = groups {
                c.insert("groups".into(), g);
            }
            if let Some(r) = roles {
                // `/org/roles` is nested; a top-level `roles` or `org` holding the values
                // directly must not count.
                if nested {
                    c.insert("org".into(), json!({"roles": r}));
                } else {
                    c.insert("roles".into(), r.clone());
                    c.insert("org".into(), r);
                }
            }
            if let Some(t) = tier {
                c.insert("tier".into(), t);
            }
            if let Some(t) = tenant {
                c.insert("tenant".into(), t);
            }
            // `/team/id` is nested; `team` holding the value itself must not count.
            match team {
                Some((t, true)) => {
                    c.insert("team".into(), json!({ "id": t }));
                }
                Some((t, false)) => {
                    c.insert("team".into(), t);
                }
                None => {}
            }
            Value::Object(c)
        })
}

/// Stands for `"nobody": true` in [`requirement`]'s output (a route held for nobody, as
/// `openapi` writes an operation it cannot honour).
const NOBODY: &str = "(nobody)";

/// One scope mostly; sometimes two at once (all-of), none (any verified token), or nobody.
fn requirement() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![
        6 => prop::sample::select(SCOPES.to_vec()).prop_map(|s| vec![s]),
        2 => prop::sample::subsequence(SCOPES.to_vec(), 2..=2),
        1 => Just(vec![]),
        1 => Just(vec![NOBODY]),
    ]
}

fn request() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(vec![APIS[0], APIS[1], OTHER_API]),
        // Mostly real stages; sometimes what API Gateway never sends.
        prop::sample::select(vec![
            "dev", "dev", "prod", "prod", "$default", "staging", "*", "pro?", "d*v",
        ]),
        prop::sample::select(vec![
            "GET", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY", "ANY", "get",
            "TRACE", "*",
        ]),
        request_path(),
        any::<bool>(),
    )
        .prop_map(|(api, stage, verb, path, http)| Req {
            api,
            stage,
            verb,
            path,
            http,
        })
}

struct Harness {
    key: SigningKey,
    _jwks: tempfile::NamedTempFile,
    config: Config,
    rt: tokio::runtime::Runtime,
}

impl Harness {
    fn new() -> Harness {
        let key = SigningKey::generate(Alg::ES256, "k1");
        let mut jwks = tempfile::NamedTempFile::new().unwrap();
        jwks.write_all(SigningKey::jwks(&[&key]).to_string().as_bytes())
            .unwrap();
        let mut config = Config::new(vec![IssuerConfig {
            issuer: ISS.into(),
            jwks: JwksSource::File(jwks.path().to_owned()),
        }]);
        config.grant_claims = GRANT.iter().map(|n| ClaimName::new(n).unwrap()).collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        Harness {
            key,
            _jwks: jwks,
            config,
            rt,
        }
    }

    fn authorizer(&self, snapshot: Snapshot, simple: bool) -> Authorizer<StaticMappings> {
        let mut config = self.config.clone();
        if simple {
            config.response = ResponseMode::Simple;
        }
        let mappings = StaticMappings(Arc::new(snapshot));
        Authorizer::new(&config, mappings, Arc::new(ManualClock::new(NOW))).unwrap()
    }

    /// A token with `scopes` and the claims `claims` besides.
    fn token_with(&self, scopes: &[&str], claims: &Value) -> String {
        let mut payload = json!({
            "iss": ISS, "sub": "user", "scope": scopes.join(" "),
            "iat": NOW, "exp": NOW + 3600,
        });
        if let Value::Object(c) = claims {
            for (k, v) in c {
                payload[k] = v.clone();
            }
        }
        self.key.sign(&payload)
    }

    /// What such a token brings to the snapshot, for `inseparable`: its scopes and the
    /// grant keys of its claim values the model says it holds.
    fn brings(&self, scopes: &[&str], claims: &Value) -> Vec<String> {
        let mut out: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        for name in GRANT {
            let name = ClaimName::new(name).unwrap();
            for v in [
                json!("a"),
                json!("b"),
                json!("A"),
                json!("a b"),
                json!("5"),
                json!(5),
                json!(true),
            ] {
                if holds_claim(claims, name.as_str(), &v) {
                    out.push(grant_key(&name, &ClaimValue::from_json(&v).unwrap()));
                }
            }
            // Its bound value, as the model reads one.
            let value = bound_value(claims, name.as_str()).map(Value::from);
            out.push(binding_key(&name, value.as_ref()));
        }
        out
    }
}

/// The three event shapes for `req`, each with the token in its place.
fn events(req: &Req, token: &str) -> Vec<(&'static str, Vec<u8>)> {
    let bearer = format!("Bearer {token}");
    let arn = req.arn();
    if req.http {
        vec![
            (
                "HTTP API 2.0",
                serde_json::to_vec(&json!({
                    "version": "2.0", "type": "REQUEST", "routeArn": arn,
                    "identitySource": [bearer], "headers": {"authorization": bearer},
                }))
                .unwrap(),
            ),
            // Issue 20, class 1: an HTTP API may send payload 1.0 ("for compatibility with
            // REST APIs"), which was read as REST: the REST slash twins, no HTTP slash Denies.
            (
                "HTTP API 1.0",
                serde_json::to_vec(&json!({
                    "version": "1.0", "type": "REQUEST", "methodArn": arn,
                    "identitySource": bearer, "authorizationToken": bearer,
                    "headers": {"authorization": bearer},
                    "multiValueHeaders": {"authorization": [bearer]},
                }))
                .unwrap(),
            ),
        ]
    } else {
        vec![
            (
                "TOKEN",
                serde_json::to_vec(
                    &json!({"type": "TOKEN", "authorizationToken": bearer, "methodArn": arn}),
                )
                .unwrap(),
            ),
            (
                "REQUEST",
                serde_json::to_vec(&json!({
                    "type": "REQUEST", "methodArn": arn, "headers": {"Authorization": bearer},
                }))
                .unwrap(),
            ),
        ]
    }
}

#[derive(Debug, Clone)]
struct Case {
    entries: Vec<Mapping>,
    /// Which of `APIS` and `OTHER_API` are declared HTTP APIs (`None`: not declared, so
    /// REST).
    http: [Option<bool>; 3],
    /// Each token: its scopes and its other claims.
    scope_sets: Vec<(Vec<&'static str>, Value)>,
    requests: Vec<Req>,
}

impl Case {
    fn kinds(&self) -> ApiKinds {
        [APIS[0], APIS[1], OTHER_API]
            .iter()
            .zip(self.http)
            .filter_map(|(api, http)| {
                let kind = if http? { ApiKind::Http } else { ApiKind::Rest };
                Some((ApiArn::parse(api).unwrap(), kind))
            })
            .collect()
    }

    /// Whether `api` is declared an HTTP API.
    fn is_http(&self, api: &str) -> bool {
        let at = [APIS[0], APIS[1], OTHER_API].iter().position(|a| *a == api);
        at.and_then(|i| self.http[i]).unwrap_or(false)
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(1, self.entries.clone()).with_kinds(self.kinds())
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(entry(), 0..10),
        prop::array::uniform3(prop::option::of(any::<bool>())),
        prop::collection::vec(
            (
                prop::sample::subsequence(SCOPES.to_vec(), 0..=4),
                token_claims(),
            ),
            1..3,
        ),
        prop::collection::vec(request(), 1..12),
    )
        .prop_map(|(entries, http, scope_sets, requests)| Case {
            entries,
            http,
            scope_sets,
            requests,
        })
}

/// The built policy (straight from the snapshot) equals the meaning, for every request.
#[test]
fn snapshot_policies_mean_what_the_mappings_mean() {
    let mut runner = TestRunner::new(PtConfig {
        cases: proptest_cases(),
        failure_persistence: None,
        ..PtConfig::default()
    });
    runner
        .run(&case(), |c| {
            let snapshot = c.snapshot();
            for (scopes, claims) in &c.scope_sets {
                // What the token brings beside its scopes: its grant claims' keys, as the
                // authorizer reads them (its own test is the handler test below).
                let mut keys: Vec<Box<str>> = Vec::new();
                for name in GRANT {
                    let name = ClaimName::new(name).unwrap();
                    let top = claims.get(name.top_level());
                    let value = top.and_then(|v| name.within(v));
                    token_keys(&name, value, &mut keys).unwrap();
                    keys.push(binding_key(&name, value).into());
                }
                let brings: Vec<&str> = scopes
                    .iter()
                    .copied()
                    .chain(keys.iter().map(|k| &**k))
                    .collect();
                // The policy follows the API's declared kind, whatever sent the request.
                let requests = c.requests.iter().map(|r| Req {
                    http: c.is_http(r.api),
                    ..r.clone()
                });
                for req in requests.filter(|r| r.valid()) {
                    let req = &req;
                    let policy = snapshot.policy_for(brings.iter().copied(), req.api, req.stage);
                    let doc: Value = serde_json::from_str(policy.json.get()).unwrap();
                    let arn = req.arn();
                    let got = iam_allows(&doc, &arn);
                    let want = meaning_with_claims(&c.entries, scopes, claims, req);
                    let inseparable = !snapshot
                        .inseparable(brings.iter().copied(), req.api, req.stage)
                        .is_empty();
                    prop_assert!(
                        acceptable(got, want, inseparable),
                        "got {}, meant {:?} (inseparable: {}): scopes {:?}, claims {}, request {}, policy {}",
                        got,
                        want,
                        inseparable,
                        scopes,
                        claims,
                        arn,
                        doc
                    );
                }
            }
            Ok(())
        })
        .unwrap();
}

/// The whole handler, every event shape and both response modes, first answer and cached
/// answer: an Allow exactly when the mappings mean one, a bad event for an impossible ARN.
#[test]
fn authorizer_answers_mean_what_the_mappings_mean() {
    let h = Harness::new();
    // The handler signs and verifies for real, so fewer cases than the pure test; each
    // still checks every request of the case through every event shape twice.
    let mut runner = TestRunner::new(PtConfig {
        cases: (proptest_cases() / 4).max(64),
        failure_persistence: None,
        ..PtConfig::default()
    });
    runner
        .run(&case(), |c| {
            let iam = h.authorizer(c.snapshot(), false);
            let simple = h.authorizer(c.snapshot(), true);
            let snapshot = c.snapshot();
            for (scopes, claims) in &c.scope_sets {
                let token = h.token_with(scopes, claims);
                let brings = h.brings(scopes, claims);
                for req in &c.requests {
                    let want = meaning_with_claims(&c.entries, scopes, claims, req);
                    // An event of the other kind than the API's declared one.
                    let mismatch = req.http != c.is_http(req.api);
                    let inseparable = !snapshot
                        .inseparable(brings.iter().map(String::as_str), req.api, req.stage)
                        .is_empty();
                    let authorizers: &[(&str, &Authorizer<StaticMappings>)] = if req.http {
                        &[("iam", &iam), ("simple", &simple)]
                    } else {
                        &[("iam", &iam)]
                    };
                    for (mode, a) in authorizers {
                        for (shape, event) in events(req, &token) {
                            for pass in ["first", "cached"] {
                                let got = h.rt.block_on(a.handle_json(&event));
                                let at = format!(
                                    "{shape} {mode} {pass}: scopes {scopes:?}, claims {claims}, request {}",
                                    req.arn()
                                );
                                if !req.valid() {
                                    prop_assert!(
                                        matches!(got, Err(AuthorizeError::BadEvent(_))),
                                        "{at}: {got:?}"
                                    );
                                    continue;
                                }
                                if mismatch {
                                    prop_assert!(
                                        matches!(got, Err(AuthorizeError::KindMismatch { .. })),
                                        "{at}: an event of the other kind than declared: {got:?}"
                                    );
                                    continue;
                                }
                                let body: Value = serde_json::from_slice(
                                    &got.map_err(|e| TestCaseError::fail(format!("{at}: {e}")))?,
                                )
                                .unwrap();
                                let allowed = match body.get("isAuthorized") {
                                    Some(v) => v.as_bool().unwrap(),
                                    None => iam_allows(&body["policyDocument"], &req.arn()),
                                };
                                prop_assert!(
                                    acceptable(allowed, want, inseparable),
                                    "{}: got {}, meant {:?}: {}",
                                    at,
                                    allowed,
                                    want,
                                    body
                                );
                            }
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

/// A case where claims decide (issue 21): one API and stage, a few paths that requests hit,
/// most entries requiring claim values, tokens with hostile claim shapes.
fn claim_case() -> impl Strategy<Value = Case> {
    let entry = (
        prop::sample::select(vec!["GET", "DELETE", "*"]),
        prop::sample::select(vec![
            "orders",
            "orders/{id}",
            "orders/*",
            "a",
            "${claim:tenant}/orders",
            "${claim:tenant}/orders/{id}",
            "${claim:/team/id}/{id}",
            "{t}/orders",
            "a/orders",
            "{t}",
            "{p+}",
        ]),
        prop::sample::select(vec![vec![], vec!["s1"], vec!["s1", "s2"]]),
        prop::sample::select(vec!["Allow", "Allow", "Deny"]),
        prop::option::weighted(0.8, entry_claims()),
    )
        .prop_map(|(method, resource, scopes, effect, claims)| {
            let mut e = json!({"api": APIS[0], "stage": "dev", "method": method,
                "resource": resource, "scopes": scopes, "effect": effect});
            if let Some(c) = claims {
                e["claims"] = c;
            }
            serde_json::from_value::<Mapping>(e).expect("a valid entry")
        });
    let request = (
        prop::sample::select(vec!["GET", "DELETE"]),
        prop::sample::select(vec![
            "orders",
            "orders/7",
            "a",
            "orders/7/x",
            "a/orders",
            "b/orders",
            "a/orders/7",
            "7/orders/7",
            "a/orders/7/x",
            "a/7",
        ]),
    )
        .prop_map(|(verb, path)| Req {
            api: APIS[0],
            stage: "dev",
            verb,
            path: path.to_owned(),
            http: false,
        });
    (
        prop::collection::vec(entry, 1..6),
        prop::collection::vec(
            (
                prop::sample::subsequence(vec!["s1", "s2"], 0..=2),
                token_claims(),
            ),
            1..4,
        ),
        prop::collection::vec(request, 1..6),
    )
        .prop_map(|(entries, scope_sets, requests)| Case {
            entries,
            http: [None; 3],
            scope_sets,
            requests,
        })
}

/// Claims through the whole handler: real signed tokens whose claims are read by the
/// authorizer's own rules, against the model's exact matching (`holds_claim`).
#[test]
fn claims_grant_exactly_what_the_model_says() {
    let h = Harness::new();
    let mut runner = TestRunner::new(PtConfig {
        cases: (proptest_cases() / 2).max(128),
        failure_persistence: None,
        ..PtConfig::default()
    });
    runner
        .run(&claim_case(), |c| {
            let iam = h.authorizer(c.snapshot(), false);
            let snapshot = c.snapshot();
            for (scopes, claims) in &c.scope_sets {
                let token = h.token_with(scopes, claims);
                let brings = h.brings(scopes, claims);
                for req in &c.requests {
                    let want = meaning_with_claims(&c.entries, scopes, claims, req);
                    let inseparable = !snapshot
                        .inseparable(brings.iter().map(String::as_str), req.api, req.stage)
                        .is_empty();
                    let (_, event) = &events(req, &token)[0];
                    let got = h.rt.block_on(iam.handle_json(event));
                    let body: Value = serde_json::from_slice(
                        &got.map_err(|e| TestCaseError::fail(format!("{}: {e}", req.arn())))?,
                    )
                    .unwrap();
                    let allowed = iam_allows(&body["policyDocument"], &req.arn());
                    prop_assert!(
                        acceptable(allowed, want, inseparable),
                        "got {}, meant {:?}: scopes {:?}, claims {}, request {}: {}",
                        allowed,
                        want,
                        scopes,
                        claims,
                        req.arn(),
                        body
                    );
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_judges_agree_with_hand_worked_cases() {
    // The test's own matcher and model, checked by hand so that a bug in them cannot hide
    // one in the product.
    assert!(wildcard("a*c", "abbc"));
    assert!(wildcard("*", ""));
    assert!(wildcard("a?c", "abc"));
    assert!(!wildcard("a?c", "ac"));
    assert!(wildcard("*/GET/x", "dev/GET/a/GET/x"));
    assert!(!wildcard("dev/GET/x", "dev/GET/x/"));
    let m: Mapping = serde_json::from_value(json!({"api": APIS[0], "stage": "*", "method": "*",
        "resource": "orders", "scope": "s1", "effect": "Deny"}))
    .unwrap();
    let a: Mapping =
        serde_json::from_value(json!({"api": APIS[0], "stage": "dev", "method": "GET",
        "resource": "*", "scope": "s1"}))
        .unwrap();
    let req = |verb: &'static str, path: &str| Req {
        api: APIS[0],
        stage: "dev",
        verb,
        path: path.into(),
        http: true,
    };
    let entries = [m, a];
    assert_eq!(
        meaning(&entries, &["s1"], &req("GET", "orders")),
        Some(false)
    );
    assert_eq!(
        meaning(&entries, &["s1"], &req("GET", "orders/")),
        Some(false)
    );
    assert_eq!(
        meaning(&entries, &["s1"], &req("GET", "orders/7")),
        Some(true)
    );
    assert_eq!(
        meaning(&entries, &["s2"], &req("GET", "orders/7")),
        Some(false)
    );
    assert_eq!(meaning(&entries, &["s1"], &req("POST", "x")), Some(false));
    // Routes: the most specific decides; an all-of entry needs every scope.
    let e = |v: Value| serde_json::from_value::<Mapping>(v).unwrap();
    let routes = [
        e(
            json!({"api": APIS[0], "stage": "dev", "method": "GET", "resource": "o/{id}", "scope": "s1"}),
        ),
        e(
            json!({"api": APIS[0], "stage": "dev", "method": "GET", "resource": "o/{id}/p", "scopes": ["s1", "s2"]}),
        ),
        e(json!({"api": APIS[0], "stage": "dev", "method": "*", "resource": "{x+}", "scopes": []})),
    ];
    let rest = |verb, path: &str| Req {
        http: false,
        ..req(verb, path)
    };
    assert_eq!(meaning(&routes, &["s1"], &rest("GET", "o/7")), Some(true));
    assert_eq!(meaning(&routes, &["s1"], &rest("GET", "o/7/")), Some(true));
    assert_eq!(
        meaning(&routes, &["s1"], &rest("GET", "o/7/p")),
        Some(false)
    );
    assert_eq!(
        meaning(&routes, &["s1", "s2"], &rest("GET", "o/7/p")),
        Some(true)
    );
    assert_eq!(meaning(&routes, &[], &rest("GET", "o/7")), Some(false));
    assert_eq!(meaning(&routes, &[], &rest("GET", "o/7/8/9")), Some(true));
    assert_eq!(meaning(&routes, &[], &rest("POST", "o/7")), Some(true));
}
