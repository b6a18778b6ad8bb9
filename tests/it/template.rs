//! template.yaml, checked for what `sam validate` and cfn-lint (scripts/check-template) do not
//! catch: the authorizer's cache TTL range and Identity keys, environment variables the code
//! does not read, references to nothing, and the least-privilege and storage promises the docs
//! make. Parsed with serde_yaml, which keeps CloudFormation's short-form tags (`!Ref X`) as
//! tagged values.

use std::collections::BTreeSet;

use scopegate::config::SETTINGS;
use scopegate::local::gateway::{DEFAULT_AUTHORIZER_TTL, DEFAULT_TOKEN_REGEX, MAX_AUTHORIZER_TTL};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

use crate::support::repo_root;

fn template() -> Value {
    let path = repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

/// `v[key]`, or a panic naming the path.
fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for (i, key) in path.iter().enumerate() {
        cur = cur
            .get(*key)
            .unwrap_or_else(|| panic!("template.yaml has no {}", path[..=i].join(".")));
    }
    cur
}

fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    at(t, &["Resources", name])
}

fn resources_of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    at(t, &["Resources"])
        .as_mapping()
        .expect("Resources is a mapping")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
        .map(|(k, r)| (k.as_str().expect("resource names are strings"), r))
        .collect()
}

fn keys(m: &Value) -> BTreeSet<String> {
    m.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `!Ref X` or `{Ref: X}`: X.
fn as_ref(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == Tag::new("Ref") => t.value.as_str(),
        Value::Mapping(m) if m.len() == 1 => m.get("Ref").and_then(Value::as_str),
        _ => None,
    }
}

/// A whole number, from a YAML number or a numeric string (CloudFormation takes both).
fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Tagged(t) => strings(&t.value),
        _ => Vec::new(),
    }
}

/// Every name that a `Ref`, `GetAtt` or `${...}` in a `Sub` points at.
fn references(v: &Value, out: &mut Vec<String>) {
    let sub_vars = |s: &str, out: &mut Vec<String>| {
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            let name = &after[..end];
            if !name.starts_with('!') {
                out.push(name.split('.').next().unwrap_or(name).to_owned());
            }
            rest = &after[end + 1..];
        }
    };
    match v {
        Value::Tagged(t) => {
            let TaggedValue { tag, value } = &**t;
            if *tag == Tag::new("Ref") {
                out.push(value.as_str().expect("!Ref takes a name").to_owned());
            } else if *tag == Tag::new("GetAtt") {
                let target = match value {
                    Value::String(s) => s.split('.').next().unwrap_or(s).to_owned(),
                    Value::Sequence(s) => {
                        s[0].as_str().expect("!GetAtt [name, attribute]").to_owned()
                    }
                    other => panic!("odd !GetAtt {other:?}"),
                };
                out.push(target);
            } else if *tag == Tag::new("Sub") {
                match value {
                    Value::String(s) => sub_vars(s, out),
                    Value::Sequence(items) => {
                        let local = keys(&items[1]);
                        let mut found = Vec::new();
                        sub_vars(items[0].as_str().expect("!Sub [string, vars]"), &mut found);
                        out.extend(found.into_iter().filter(|n| !local.contains(n)));
                        references(&items[1], out);
                    }
                    other => panic!("odd !Sub {other:?}"),
                }
            } else {
                references(value, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| references(i, out)),
        Value::Mapping(m) => m.values().for_each(|i| references(i, out)),
        _ => {}
    }
}

#[test]
fn every_reference_names_a_parameter_resource_or_pseudo_parameter() {
    let t = template();
    let mut known = keys(at(&t, &["Parameters"]));
    known.extend(keys(at(&t, &["Resources"])));
    let conditions = keys(t.get("Conditions").unwrap_or(&Value::Null));
    let mut refs = Vec::new();
    references(at(&t, &["Resources"]), &mut refs);
    references(at(&t, &["Outputs"]), &mut refs);
    references(t.get("Conditions").unwrap_or(&Value::Null), &mut refs);
    for r in refs {
        assert!(
            known.contains(&r) || r.starts_with("AWS::") || conditions.contains(&r),
            "template.yaml refers to {r:?}, which is neither a parameter nor a resource"
        );
    }
}

#[test]
fn the_function_is_built_by_cargo_lambda_for_graviton() {
    let t = template();
    let functions = resources_of_type(&t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 1, "one function: the authorizer");
    let (_, f) = functions[0];
    assert_eq!(
        at(f, &["Metadata", "BuildMethod"]).as_str(),
        Some("rust-cargolambda")
    );
    // The binary must be one Cargo.toml builds (CARGO_BIN_EXE_authorizer exists only then).
    assert_eq!(
        at(f, &["Metadata", "BuildProperties", "Binary"]).as_str(),
        Some("authorizer")
    );
    assert!(std::path::Path::new(env!("CARGO_BIN_EXE_authorizer")).exists());
    let p = at(f, &["Properties"]);
    assert_eq!(at(p, &["Runtime"]).as_str(), Some("provided.al2023"));
    assert_eq!(at(p, &["Handler"]).as_str(), Some("bootstrap"));
    assert_eq!(strings(at(p, &["Architectures"])), ["arm64"]);
    assert!(
        p.get("Policies").is_none(),
        "permissions come from the explicit AuthorizerRole, not SAM policy templates"
    );
}

#[test]
fn environment_variables_are_settings_the_code_reads() {
    let t = template();
    let known: BTreeSet<&str> = SETTINGS.iter().map(|s| s.name).collect();
    let (_, f) = resources_of_type(&t, "AWS::Serverless::Function")[0];
    let vars = at(f, &["Properties", "Environment", "Variables"]);
    let names = keys(vars);
    for name in &names {
        assert!(
            known.contains(name.as_str()),
            "template.yaml sets {name}, which the authorizer does not read (scopegate::config::SETTINGS)"
        );
    }
    for required in [
        "SCOPEGATE_ISSUER",
        "SCOPEGATE_AUDIENCE",
        "SCOPEGATE_MAPPINGS_TABLE",
        "SCOPEGATE_SNAPSHOT_BUCKET",
    ] {
        assert!(
            names.contains(required),
            "template.yaml does not set {required}"
        );
    }
    assert_eq!(as_ref(at(vars, &["SCOPEGATE_ISSUER"])), Some("Issuer"));
    assert_eq!(as_ref(at(vars, &["SCOPEGATE_AUDIENCE"])), Some("Audience"));
    assert_eq!(
        as_ref(at(vars, &["SCOPEGATE_MAPPINGS_TABLE"])),
        Some("MappingsTable")
    );
    assert_eq!(
        as_ref(at(vars, &["SCOPEGATE_SNAPSHOT_BUCKET"])),
        Some("SnapshotBucket")
    );
}

/// The keys API Gateway (through SAM) takes in an authorizer's Identity block, by payload type.
fn identity_keys(payload: &str) -> &'static [&'static str] {
    match payload {
        "TOKEN" => &["Header", "ValidationExpression", "ReauthorizeEvery"],
        "REQUEST" => &[
            "Headers",
            "QueryStrings",
            "StageVariables",
            "Context",
            "ReauthorizeEvery",
        ],
        other => panic!("FunctionPayloadType {other:?}: expected TOKEN or REQUEST"),
    }
}

/// A TTL from a literal or a `!Ref` to a Number parameter, checked against API Gateway's
/// range; returns the default.
fn checked_ttl(t: &Value, v: &Value, what: &str) -> u64 {
    if let Some(param) = as_ref(v) {
        let p = at(t, &["Parameters", param]);
        assert_eq!(
            at(p, &["Type"]).as_str(),
            Some("Number"),
            "{what}: parameter {param} must be a Number"
        );
        let min = p.get("MinValue").and_then(as_u64);
        let max = p.get("MaxValue").and_then(as_u64);
        assert_eq!(min, Some(0), "{what}: parameter {param} needs MinValue 0");
        assert!(
            max.is_some_and(|m| m <= u64::from(MAX_AUTHORIZER_TTL)),
            "{what}: parameter {param} needs MaxValue <= {MAX_AUTHORIZER_TTL} (API Gateway's limit), has {max:?}"
        );
        let default = p
            .get("Default")
            .and_then(as_u64)
            .unwrap_or_else(|| panic!("{what}: parameter {param} needs a Default"));
        assert!(
            default <= u64::from(MAX_AUTHORIZER_TTL),
            "{what}: default {default} > {MAX_AUTHORIZER_TTL}"
        );
        default
    } else {
        let n = as_u64(v).unwrap_or_else(|| panic!("{what}: {v:?} is not a whole number"));
        assert!(
            n <= u64::from(MAX_AUTHORIZER_TTL),
            "{what}: {n} is over API Gateway's {MAX_AUTHORIZER_TTL}"
        );
        n
    }
}

#[test]
fn the_authorizer_is_a_token_authorizer_with_a_valid_identity() {
    let t = template();
    let apis = resources_of_type(&t, "AWS::Serverless::Api");
    assert_eq!(apis.len(), 1);
    let (api_name, api) = apis[0];
    let auth = at(api, &["Properties", "Auth"]);
    let authorizers = at(auth, &["Authorizers"])
        .as_mapping()
        .expect("Authorizers is a mapping");
    assert!(!authorizers.is_empty());
    let default = at(auth, &["DefaultAuthorizer"])
        .as_str()
        .expect("a DefaultAuthorizer");
    assert!(
        authorizers.contains_key(default),
        "DefaultAuthorizer {default} is not defined"
    );

    for (name, a) in authorizers {
        let what = format!(
            "{api_name}.Auth.Authorizers.{}",
            name.as_str().unwrap_or("?")
        );
        let payload = at(a, &["FunctionPayloadType"]).as_str().unwrap_or("TOKEN");
        let identity = at(a, &["Identity"]);
        let allowed = identity_keys(payload);
        for k in keys(identity) {
            assert!(
                allowed.contains(&k.as_str()),
                "{what}.Identity.{k} is not a {payload} authorizer key (allowed: {allowed:?})"
            );
        }
        let ttl = checked_ttl(
            &t,
            at(identity, &["ReauthorizeEvery"]),
            &format!("{what}.Identity.ReauthorizeEvery"),
        );
        assert_eq!(
            ttl,
            u64::from(DEFAULT_AUTHORIZER_TTL),
            "{what}: the documented default TTL"
        );
        if payload == "TOKEN" {
            assert_eq!(at(identity, &["Header"]).as_str(), Some("Authorization"));
            let expr = at(identity, &["ValidationExpression"])
                .as_str()
                .expect("a ValidationExpression");
            assert_eq!(
                expr, DEFAULT_TOKEN_REGEX,
                "the same token check as `scopegate local`"
            );
            let re = regex::Regex::new(expr)
                .unwrap_or_else(|e| panic!("{what}: ValidationExpression: {e}"));
            assert!(re.is_match("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
            assert!(!re.is_match("Bearer ThisIsNotAJWT"));
            assert!(
                !re.is_match("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
                "Bearer is required"
            );
        }
        let arn = at(a, &["FunctionArn"]);
        let mut refs = Vec::new();
        references(arn, &mut refs);
        assert_eq!(
            refs,
            ["AuthorizerFunction"],
            "{what}.FunctionArn is the authorizer function"
        );
    }
}

#[test]
fn the_reauthorize_every_parameter_is_api_gateways_range() {
    let t = template();
    let p = at(&t, &["Parameters", "ReauthorizeEvery"]);
    assert_eq!(p.get("Default").and_then(as_u64), Some(300));
    assert_eq!(p.get("MinValue").and_then(as_u64), Some(0));
    assert_eq!(
        p.get("MaxValue").and_then(as_u64),
        Some(u64::from(MAX_AUTHORIZER_TTL))
    );
    for name in ["Issuer", "Audience", "JwksUrl"] {
        at(&t, &["Parameters", name]);
    }
}

#[test]
fn the_authorizer_role_is_least_privilege() {
    let t = template();
    let (_, f) = resources_of_type(&t, "AWS::Serverless::Function")[0];
    let mut role_refs = Vec::new();
    references(at(f, &["Properties", "Role"]), &mut role_refs);
    assert_eq!(role_refs.len(), 1, "the function names its role");
    let role = resource(&t, &role_refs[0]);
    let allowed = [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "s3:GetObject",
    ];
    assert!(
        at(role, &["Properties"]).get("ManagedPolicyArns").is_none(),
        "no managed policies"
    );
    let mut granted = BTreeSet::new();
    for policy in at(role, &["Properties", "Policies"])
        .as_sequence()
        .expect("inline policies")
    {
        for st in at(policy, &["PolicyDocument", "Statement"])
            .as_sequence()
            .expect("statements")
        {
            assert_eq!(at(st, &["Effect"]).as_str(), Some("Allow"));
            let actions = strings(at(st, &["Action"]));
            for a in &actions {
                assert!(
                    allowed.contains(&a.as_str()),
                    "the authorizer role grants {a}"
                );
                granted.insert(a.clone());
            }
            let resources = at(st, &["Resource"]);
            assert!(
                !strings(resources).iter().any(|r| r == "*"),
                "a statement on every resource: {st:?}"
            );
            let mut refs = Vec::new();
            references(resources, &mut refs);
            let target = if actions.iter().any(|a| a.starts_with("dynamodb:")) {
                "MappingsTable"
            } else if actions.iter().any(|a| a.starts_with("s3:")) {
                "SnapshotBucket"
            } else {
                "AuthorizerLogGroup"
            };
            assert_eq!(refs, [target], "{actions:?} must be on {target} only");
        }
    }
    assert_eq!(granted.len(), allowed.len(), "granted {granted:?}");

    // The one object the role may read is the one the function is told to read.
    let vars = at(f, &["Properties", "Environment", "Variables"]);
    let key = at(vars, &["SCOPEGATE_SNAPSHOT_KEY"])
        .as_str()
        .expect("a literal snapshot key");
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    assert!(
        text.contains(&format!("${{SnapshotBucket.Arn}}/{key}")),
        "s3:GetObject must be on the object {key}"
    );
}

#[test]
fn the_table_and_bucket_are_durable_encrypted_and_private() {
    let t = template();
    let table = at(resource(&t, "MappingsTable"), &["Properties"]);
    assert_eq!(
        at(table, &["BillingMode"]).as_str(),
        Some("PAY_PER_REQUEST")
    );
    assert_eq!(
        at(
            table,
            &[
                "PointInTimeRecoverySpecification",
                "PointInTimeRecoveryEnabled"
            ]
        )
        .as_bool(),
        Some(true)
    );
    assert_eq!(
        at(table, &["SSESpecification", "SSEEnabled"]).as_bool(),
        Some(true)
    );
    // The key schema the code reads and writes (src/mapping/store/layout.rs).
    let schema: Vec<(String, String)> = at(table, &["KeySchema"])
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            (
                strings(at(k, &["AttributeName"]))[0].clone(),
                strings(at(k, &["KeyType"]))[0].clone(),
            )
        })
        .collect();
    assert_eq!(
        schema,
        [
            ("pk".to_owned(), "HASH".to_owned()),
            ("sk".to_owned(), "RANGE".to_owned())
        ]
    );

    let bucket = at(resource(&t, "SnapshotBucket"), &["Properties"]);
    assert_eq!(
        at(bucket, &["VersioningConfiguration", "Status"]).as_str(),
        Some("Enabled")
    );
    at(
        bucket,
        &["BucketEncryption", "ServerSideEncryptionConfiguration"],
    );
    let block = at(bucket, &["PublicAccessBlockConfiguration"]);
    for k in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            at(block, &[k]).as_bool(),
            Some(true),
            "PublicAccessBlockConfiguration.{k}"
        );
    }
    for name in ["MappingsTable", "SnapshotBucket"] {
        assert_eq!(
            at(resource(&t, name), &["DeletionPolicy"]).as_str(),
            Some("Retain"),
            "{name} outlives the stack"
        );
    }
}

#[test]
fn the_example_resource_is_a_mock_behind_the_authorizer() {
    let t = template();
    let (_, api) = resources_of_type(&t, "AWS::Serverless::Api")[0];
    // Set, or SAM adds a stage named "Stage" beside StageName.
    assert!(at(api, &["Properties", "OpenApiVersion"])
        .as_str()
        .is_some_and(|v| v.starts_with('3')));
    let paths = at(api, &["Properties", "DefinitionBody", "paths"]);
    let get = at(paths, &["/my-resource", "get"]);
    assert_eq!(
        at(get, &["x-amazon-apigateway-integration", "type"]).as_str(),
        Some("mock")
    );
    let outputs: Mapping = at(&t, &["Outputs"]).as_mapping().unwrap().clone();
    for name in [
        "ApiUrl",
        "MappingsTableName",
        "SnapshotBucketName",
        "AuthorizerFunctionArn",
    ] {
        assert!(outputs.contains_key(name), "output {name}");
    }
}
