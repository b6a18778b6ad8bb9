//! The policy document as API Gateway reads it, built and evaluated end to end.

use super::build::build;
use super::compiled::CompiledPolicy;
use super::document::*;
use super::eval::evaluate;

const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

#[test]
fn serializes_exactly_as_api_gateway_expects() {
    let p = Policy {
        statements: vec![Statement {
            effect: Effect::Allow,
            resources: vec![format!("{API}/dev/GET/orders")],
        }],
    };
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Action":"execute-api:Invoke","Effect":"Allow","Resource":["{API}/dev/GET/orders"]}}]}}"#
        )
    );
    assert_eq!(
        serde_json::to_string(&Policy::deny_all()).unwrap(),
        r#"{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Deny","Resource":["*"]}]}"#
    );
}

#[test]
fn round_trips() {
    let p = build([
        (Effect::Allow, format!("{API}/dev/GET/orders")),
        (Effect::Deny, format!("{API}/dev/GET/orders/secret")),
    ]);
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p);
}

#[test]
fn parses_the_forms_iam_allows() {
    let json = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"one","Action":"execute-api:*","Effect":"Allow","Resource":"{API}/dev/*"}},
            {{"Action":["s3:GetObject"],"Effect":"Deny","Resource":"*"}},
            {{"Action":["s3:GetObject","*"],"Effect":"Deny","Resource":["{API}/dev/DELETE/*"]}}
        ]}}"#
    );
    let p: Policy = serde_json::from_str(&json).unwrap();
    assert_eq!(p.statements.len(), 2, "the s3-only statement is irrelevant");
    assert_eq!(evaluate(&p, &format!("{API}/dev/GET/x")), Effect::Allow);
    assert_eq!(evaluate(&p, &format!("{API}/dev/DELETE/x")), Effect::Deny);

    let single =
        r#"{"Version":"2012-10-17","Statement":{"Action":"*","Effect":"Allow","Resource":"*"}}"#;
    let p: Policy = serde_json::from_str(single).unwrap();
    assert_eq!(p.grant_count(), 1);
}

#[test]
fn refuses_what_it_cannot_evaluate() {
    for bad in [
        r#"{"Version":"2012-10-17","Statement":[{"Action":"*","Effect":"Allow","NotResource":"*"}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Action":"*","Effect":"Allow","Resource":"*","Condition":{}}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Action":"*","Effect":"allow","Resource":"*"}]}"#,
        r#"{"Version":"2020-01-01","Statement":[]}"#,
    ] {
        assert!(serde_json::from_str::<Policy>(bad).is_err(), "{bad}");
    }
}

#[test]
fn compiled_policy_counts_and_serializes_once() {
    let c = CompiledPolicy::new(build([(Effect::Allow, format!("{API}/dev/GET/a"))]));
    assert_eq!(c.grants, 1);
    assert!(c.allows_anything);
    assert_eq!(c.json.get(), serde_json::to_string(&c.policy).unwrap());
    let d = CompiledPolicy::deny_all();
    assert_eq!(d.grants, 0);
    assert!(!d.allows_anything);
    assert_eq!(d.evaluate(&format!("{API}/dev/GET/a")), Effect::Deny);
}

#[test]
fn effect_text() {
    assert_eq!(Effect::Allow.to_string(), "Allow");
    assert_eq!(serde_json::to_string(&Effect::Deny).unwrap(), "\"Deny\"");
    assert_eq!(Effect::default(), Effect::Allow);
}
