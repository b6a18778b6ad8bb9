//! The policy differential: arbitrary mapping sets, scope sets and requests; the policy a
//! snapshot builds, judged by the independent IAM evaluator of tests/it/model.rs, must equal
//! the model of what the mappings mean, and src/policy/eval.rs must agree with both.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use scopegate::mapping::{Mapping, Snapshot};
use scopegate::policy::{ApiKind, Effect};

#[path = "../../tests/it/model.rs"]
#[allow(dead_code)]
mod model;

use model::{iam_allows, meaning, Req, VERBS};

const APIS: [&str; 3] = [
    "arn:aws:execute-api:us-east-1:123456789012:aaaaaaaaaa",
    "arn:aws:execute-api:us-east-1:123456789012:bbbbbbbbbb",
    "arn:aws:execute-api:us-east-1:123456789012:cccccccccc",
];
const STAGES: [&str; 4] = ["dev", "prod", "$default", "*"];
const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*", "ANY",
];
const PIECES: [&str; 17] = [
    "a", "b", "ab", "orders", "7", "GET", "*", "?", "a*", "*b", "o?ders", "x.y", "", "ANY", "{id}",
    "{p+}", "{n}",
];
const SCOPES: [&str; 4] = ["s1", "s2", "s3", "s4"];

#[derive(Arbitrary, Debug)]
struct Entry {
    api: u8,
    stage: u8,
    method: u8,
    resource: Vec<u8>,
    lead: bool,
    scope: u8,
    /// Bit 4 set: all of the scopes of the low four bits (none: any verified token).
    all_of: u8,
    deny: bool,
}

#[derive(Arbitrary, Debug)]
struct Request {
    api: u8,
    stage: u8,
    verb: u8,
    path: Vec<u8>,
    slash: bool,
    http: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    entries: Vec<Entry>,
    scopes: u8,
    requests: Vec<Request>,
}

fn pick<T: Copy>(list: &[T], i: u8) -> T {
    list[usize::from(i) % list.len()]
}

fn path(pieces: &[u8]) -> String {
    pieces
        .iter()
        .take(5)
        .map(|&i| pick(&PIECES, i))
        .collect::<Vec<_>>()
        .join("/")
}

fuzz_target!(|input: Input| {
    let entries: Vec<Mapping> = input
        .entries
        .iter()
        .take(16)
        .filter_map(|e| {
            let resource = path(&e.resource);
            let resource = if e.lead {
                format!("/{resource}")
            } else {
                resource
            };
            let mut entry = serde_json::json!({
                "api": pick(&APIS[..2], e.api), "stage": pick(&STAGES, e.stage),
                "method": pick(&METHODS, e.method), "resource": resource,
                "effect": if e.deny { "Deny" } else { "Allow" },
            });
            if e.all_of & 0x10 != 0 {
                let all: Vec<&str> = SCOPES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| e.all_of & (1 << i) != 0)
                    .map(|(_, s)| *s)
                    .collect();
                entry["scopes"] = serde_json::json!(all);
            } else {
                entry["scope"] = serde_json::json!(pick(&SCOPES, e.scope));
            }
            serde_json::from_value(entry).ok()
        })
        .collect();
    let scopes: Vec<&str> = SCOPES
        .iter()
        .enumerate()
        .filter(|(i, _)| input.scopes & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect();
    // Every API declared REST in one snapshot and HTTP in the other: a request is judged
    // against the one of its kind.
    let declared = |kind: ApiKind| {
        let kinds: scopegate::mapping::ApiKinds = APIS
            .iter()
            .map(|a| (scopegate::policy::ApiArn::parse(a).unwrap(), kind))
            .collect();
        Snapshot::new(1, entries.clone()).with_kinds(kinds)
    };
    let (rest, http) = (declared(ApiKind::Rest), declared(ApiKind::Http));
    for r in input.requests.iter().take(16) {
        let verbs: Vec<&str> = VERBS.iter().copied().chain(["ANY"]).collect();
        let mut p = path(&r.path);
        if r.slash && !p.is_empty() {
            p.push('/');
        }
        let req = Req {
            api: pick(&APIS, r.api),
            stage: pick(&STAGES[..3], r.stage),
            verb: pick(&verbs, r.verb),
            path: p,
            http: r.http,
        };
        if !req.valid() {
            continue;
        }
        let snapshot = if req.http { &http } else { &rest };
        let policy = snapshot.policy_for(scopes.iter().copied(), req.api, req.stage);
        let doc: serde_json::Value = serde_json::from_str(policy.json.get()).unwrap();
        let arn = req.arn();
        let got = iam_allows(&doc, &arn);
        assert_eq!(
            policy.evaluate(&arn) == Effect::Allow,
            got,
            "src eval vs the model's IAM, {arn} under {doc}"
        );
        // Where the mappings say (Some), the policy says the same; a Deny of what they
        // allow only where the snapshot reported the routes inseparable. Never an Allow
        // they do not mean.
        if let Some(want) = meaning(&entries, &scopes, &req) {
            if got != want {
                assert!(
                    want && !snapshot
                        .inseparable(scopes.iter().copied(), req.api, req.stage)
                        .is_empty(),
                    "got {got}, meant {want}: {arn} under {doc}"
                );
            }
        }
    }
});
