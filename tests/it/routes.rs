//! Exact policies over random route tables (issue 12 §2): random paths with literal
//! segments, `{param}`, `{proxy+}` and overlapping prefixes, of one method, `*` or `ANY`; random requirements (one scope,
//! all of two, any verified token, and alternatives); random token scope sets. For every
//! concrete request of every route, the policy's IAM evaluation (the test's own evaluator,
//! tests/it/model.rs) allows it exactly when the route's requirements are met.
//!
//! The one exception is the one the product reports: where IAM's `*` cannot tell two routes
//! apart, the request is denied (never allowed), and `Snapshot::inseparable` names the pair
//! for that token. Each such report is checked too: its example request must be one the
//! route table grants and the policy denies, so a report cannot hide a bug by crying wolf.

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use scopegate::mapping::{Mapping, Snapshot};
use serde_json::{json, Value};

use super::model::{iam_allows, meaning, Req};
use crate::support::proptest_cases;

const API: &str = "arn:aws:execute-api:us-east-1:123456789012:aaaaaaaaaa";
const SCOPES: [&str; 4] = ["s1", "s2", "s3", "s4"];
/// Literal segments, shared between routes so that prefixes overlap and a parameter's value
/// can be another route's literal.
const WORDS: [&str; 4] = ["orders", "items", "payments", "new"];

#[derive(Debug, Clone)]
enum Seg {
    Lit(&'static str),
    Param,
    Greedy,
}

fn route() -> impl Strategy<Value = Vec<Seg>> {
    let seg = prop_oneof![
        4 => prop::sample::select(WORDS.to_vec()).prop_map(Seg::Lit),
        3 => Just(Seg::Param),
    ];
    (prop::collection::vec(seg, 0..4), prop::bool::weighted(0.2)).prop_map(|(mut segs, greedy)| {
        if greedy {
            segs.push(Seg::Greedy);
        }
        segs
    })
}

fn template(segs: &[Seg]) -> String {
    segs.iter()
        .enumerate()
        .map(|(i, s)| match s {
            Seg::Lit(l) => (*l).to_owned(),
            Seg::Param => format!("{{p{i}}}"),
            Seg::Greedy => "{proxy+}".to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn requirement() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![
        6 => prop::sample::select(SCOPES.to_vec()).prop_map(|s| vec![s]),
        2 => prop::sample::subsequence(SCOPES.to_vec(), 2..=2),
        1 => Just(vec![]),
    ]
}

/// A route: its method, its segments, and its requirements (alternatives; each all-of).
type Route = (&'static str, Vec<Seg>, Vec<Vec<&'static str>>);

#[derive(Debug, Clone)]
struct Table {
    routes: Vec<Route>,
    tokens: Vec<Vec<&'static str>>,
}

fn table() -> impl Strategy<Value = Table> {
    let one = (
        // `ANY` beside a method's own route on one path: the method's route beats it.
        prop::sample::select(vec!["GET", "GET", "POST", "*", "ANY"]),
        route(),
        prop::collection::vec(requirement(), 1..3),
    );
    (
        prop::collection::vec(one, 1..8),
        prop::collection::vec(prop::sample::subsequence(SCOPES.to_vec(), 0..=4), 1..4),
    )
        .prop_map(|(routes, tokens)| Table { routes, tokens })
}

fn entries(t: &Table) -> Vec<Mapping> {
    let mut out = Vec::new();
    for (method, segs, alternatives) in &t.routes {
        for scopes in alternatives {
            let mut e = json!({"api": API, "stage": "dev", "method": method,
                "resource": template(segs)});
            match scopes.as_slice() {
                [one] => e["scope"] = json!(one),
                all => e["scopes"] = json!(all),
            }
            out.push(serde_json::from_value(e).expect("a valid route entry"));
        }
    }
    out
}

/// Concrete paths of a route: each parameter as a fresh value or as a word some route uses
/// literally, a greedy parameter as one to three segments; with and without a trailing slash.
fn concrete(segs: &[Seg]) -> Vec<String> {
    let mut paths = vec![String::new()];
    for (i, s) in segs.iter().enumerate() {
        let values: Vec<String> = match s {
            Seg::Lit(l) => vec![(*l).to_owned()],
            Seg::Param => vec!["7".into(), "new".into(), "payments".into()],
            Seg::Greedy => vec!["7".into(), "7/new".into(), "a/b/orders".into()],
        };
        paths = paths
            .iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    if i == 0 {
                        v.clone()
                    } else {
                        format!("{p}/{v}")
                    }
                })
            })
            .collect();
    }
    let slashed: Vec<String> = paths
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| format!("{p}/"))
        .collect();
    paths.extend(slashed);
    paths
}

#[test]
fn every_route_request_is_allowed_exactly_when_its_route_grants_it() {
    let mut runner = TestRunner::new(PtConfig {
        cases: proptest_cases(),
        failure_persistence: None,
        ..PtConfig::default()
    });
    runner
        .run(&table(), |t| {
            let entries = entries(&t);
            let snapshot = Snapshot::new(1, entries.clone());
            for token in &t.tokens {
                let policy = snapshot.policy_for(token.iter().copied(), API, "dev");
                let doc: Value = serde_json::from_str(policy.json.get()).unwrap();
                let inseparable = snapshot.inseparable(token.iter().copied(), API, "dev");
                for (method, segs, _) in &t.routes {
                    let verbs: &[&'static str] = if *method == "*" || *method == "ANY" {
                        &["GET", "DELETE"]
                    } else {
                        &[method]
                    };
                    for &verb in verbs {
                        for path in concrete(segs) {
                            let req = Req {
                                api: API,
                                stage: "dev",
                                verb,
                                path,
                                http: false,
                            };
                            let want = meaning(&entries, token, &req)
                                .expect("a route's own request is always specified");
                            let got = iam_allows(&doc, &req.arn());
                            prop_assert!(
                                got == want || (want && !inseparable.is_empty()),
                                "token {:?}, {}: got {}, meant {}; policy {}",
                                token,
                                req.arn(),
                                got,
                                want,
                                doc
                            );
                        }
                    }
                }
                for report in &inseparable {
                    let verb: &'static str = super::model::VERBS
                        .iter()
                        .find(|v| **v == report.method.as_str())
                        .copied()
                        .expect("a concrete method");
                    let req = Req {
                        api: API,
                        stage: "dev",
                        verb,
                        path: report.example.clone(),
                        http: false,
                    };
                    prop_assert_eq!(
                        meaning(&entries, token, &req),
                        Some(true),
                        "reported {:?} for {:?}, but the table does not grant it",
                        report,
                        token
                    );
                    prop_assert!(
                        !iam_allows(&doc, &req.arn()),
                        "reported {:?} for {:?}, but the policy allows it: {}",
                        report,
                        token,
                        doc
                    );
                }
            }
            Ok(())
        })
        .unwrap();
}

/// The tables of the issue's own examples, by hand, so the property cannot pass vacuously.
#[test]
fn orders_star_no_longer_reaches_payments() {
    let e = |m: &str, r: &str, s: &str| -> Mapping {
        serde_json::from_value(
            json!({"api": API, "stage": "dev", "method": m, "resource": r, "scope": s}),
        )
        .unwrap()
    };
    let entries = vec![
        e("GET", "orders/{id}", "orders:read"),
        e("GET", "orders/{id}/payments", "payments:read"),
    ];
    let s = Snapshot::new(1, entries);
    let doc: Value =
        serde_json::from_str(s.policy_for(["orders:read"], API, "dev").json.get()).unwrap();
    assert!(iam_allows(&doc, &format!("{API}/dev/GET/orders/7")));
    assert!(
        !iam_allows(&doc, &format!("{API}/dev/GET/orders/7/payments")),
        "{doc}"
    );
}
