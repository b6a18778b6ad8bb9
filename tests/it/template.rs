//! template.yaml, checked for what `sam validate` and cfn-lint (scripts/check-template) do not
//! catch: the authorizer's cache TTL range and Identity keys, environment variables the code
//! does not read, references to nothing, and the least-privilege and storage promises the docs
//! make. Parsed with yaml_serde, which keeps CloudFormation's short-form tags (`!Ref X`) as
//! tagged values.

use std::collections::BTreeSet;

use scopegate::config::SETTINGS;
use scopegate::local::gateway::{DEFAULT_AUTHORIZER_TTL, DEFAULT_TOKEN_REGEX, MAX_AUTHORIZER_TTL};
use yaml_serde::value::{Tag, TaggedValue};
use yaml_serde::Value;

use crate::support::repo_root;

fn template() -> Value {
    let path = repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
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

/// `!If [condition, then, else]`: (condition, then, else).
fn as_if(v: &Value) -> Option<(&str, &Value, &Value)> {
    match v {
        Value::Tagged(t) if t.tag == Tag::new("If") => {
            let s = t.value.as_sequence()?;
            Some((s.first()?.as_str()?, s.get(1)?, s.get(2)?))
        }
        _ => None,
    }
}

/// The regex a parameter defaults to.
fn parameter_default<'a>(t: &'a Value, name: &str) -> &'a str {
    at(t, &["Parameters", name, "Default"])
        .as_str()
        .unwrap_or_else(|| panic!("parameter {name} needs a string Default"))
}

#[test]
fn the_authorizer_is_a_token_authorizer_with_a_typed_ttl_and_a_token_regex() {
    let t = template();
    let authorizers = resources_of_type(&t, "AWS::ApiGateway::Authorizer");
    assert_eq!(authorizers.len(), 1, "the example API's authorizer");
    let (name, a) = authorizers[0];
    let p = at(a, &["Properties"]);
    // TOKEN by default (the seed's walk-through), REQUEST for bound tokens.
    assert_eq!(as_ref(at(p, &["Type"])), Some("AuthorizerType"));
    assert_eq!(parameter_default(&t, "AuthorizerType"), "TOKEN");
    assert_eq!(
        strings(at(&t, &["Parameters", "AuthorizerType", "AllowedValues"])),
        ["TOKEN", "REQUEST"]
    );
    assert_eq!(
        at(p, &["IdentitySource"]).as_str(),
        Some("method.request.header.Authorization")
    );
    // A REQUEST authorizer that accepts bound tokens is never cached: API Gateway would
    // answer another certificate, or a replayed DPoP proof, from its cache unchecked.
    let (cond, uncached, cached) =
        as_if(at(p, &["AuthorizerResultTtlInSeconds"])).expect("!If [UncachedRequests, 0, ...]");
    assert_eq!(cond, "UncachedRequests");
    assert_eq!(as_u64(uncached), Some(0));
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    assert!(
        text.contains("UncachedRequests: !And\n    - !Condition RequestAuthorizer\n    - !Not [!Equals [!Ref BoundKinds, none]]"),
        "UncachedRequests is a REQUEST authorizer accepting some binding"
    );
    // A typed property (an integer), never a string inside an API definition: CloudFormation
    // passes parameters as strings, and SAM's Auth block wrote "60" into the OpenAPI body.
    let ttl = checked_ttl(&t, cached, &format!("{name}.AuthorizerResultTtlInSeconds"));
    assert_eq!(
        ttl,
        u64::from(DEFAULT_AUTHORIZER_TTL),
        "the documented default TTL"
    );
    let mut refs = Vec::new();
    references(at(p, &["AuthorizerUri"]), &mut refs);
    refs.retain(|r| !r.starts_with("AWS::"));
    assert_eq!(
        refs,
        ["AuthorizerFunction"],
        "{name} invokes the authorizer function"
    );

    // The token check: a TOKEN authorizer's only (a REQUEST one may be sent DPoP), from a
    // parameter, skipped when empty.
    let (cond, request, token) =
        as_if(at(p, &["IdentityValidationExpression"])).expect("!If [RequestAuthorizer, ...]");
    assert_eq!(cond, "RequestAuthorizer");
    assert_eq!(as_ref(request), Some("AWS::NoValue"));
    let (cond, then, otherwise) = as_if(token).expect("!If [HasTokenRegex, ...]");
    assert_eq!(cond, "HasTokenRegex");
    assert_eq!(as_ref(then), Some("TokenValidationRegex"));
    assert_eq!(as_ref(otherwise), Some("AWS::NoValue"));
    let expr = parameter_default(&t, "TokenValidationRegex");
    assert_eq!(
        expr, DEFAULT_TOKEN_REGEX,
        "the same token check as `scopegate local`"
    );
    let re = regex::Regex::new(expr).unwrap_or_else(|e| panic!("TokenValidationRegex: {e}"));
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert!(
            re.is_match(&format!("{scheme} {jwt}")),
            "{scheme}: the scheme is case-insensitive (RFC 7235 2.1)"
        );
    }
    assert!(
        !re.is_match("Bearer ThisIsNotAJWT"),
        "the seed's second curl case"
    );
    assert!(!re.is_match(jwt), "Bearer is required");
    assert!(!re.is_match(&format!("Basic {jwt}")));
    assert!(!re.is_match(&format!("Bearer {jwt} extra")));

    // The regex the parameter's description gives for opaque tokens (introspection).
    let description = at(&t, &["Parameters", "TokenValidationRegex", "Description"])
        .as_str()
        .unwrap();
    let opaque = description
        .split('"')
        .find(|s| s.starts_with('^'))
        .expect("the description quotes the opaque-token regex");
    let re = regex::Regex::new(opaque).unwrap_or_else(|e| panic!("opaque regex: {e}"));
    assert!(
        re.is_match("bearer 2YotnFZFEjr1zCsicMWpAA"),
        "RFC 6749's opaque example"
    );
    assert!(re.is_match(&format!("Bearer {jwt}")), "JWTs still pass");
    assert!(!re.is_match("Bearer two words"));
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
        "dynamodb:PutItem",
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
            // X-Ray, only with tracing on: its actions take no resource but "*".
            if let Some((cond, st, otherwise)) = as_if(st) {
                assert_eq!(cond, "TracingActive");
                assert_eq!(as_ref(otherwise), Some("AWS::NoValue"));
                assert_eq!(
                    strings(at(st, &["Action"])),
                    ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
                );
                continue;
            }
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
            let target = if actions == ["dynamodb:PutItem"] {
                // The only write: DPoP proofs, into their own table.
                "DpopReplayTable"
            } else if actions.iter().any(|a| a.starts_with("dynamodb:")) {
                assert!(
                    !actions.iter().any(|a| a == "dynamodb:PutItem"),
                    "the mappings are read-only: {actions:?}"
                );
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
fn the_example_api_is_optional_and_its_method_is_a_mock_behind_the_authorizer() {
    let t = template();
    let resources = at(&t, &["Resources"]).as_mapping().unwrap();
    let example: Vec<&str> = resources
        .iter()
        .filter(|(_, r)| {
            r.get("Type")
                .and_then(Value::as_str)
                .is_some_and(|k| k.starts_with("AWS::ApiGateway::"))
        })
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert!(example.len() >= 6, "{example:?}");
    for name in example.iter().copied().chain(["ExampleInvokePermission"]) {
        let cond = resource(&t, name).get("Condition").and_then(Value::as_str);
        assert!(
            matches!(cond, Some("CreateExampleApi" | "ExampleAccessLogs")),
            "{name} must be behind the CreateExampleApi condition"
        );
    }
    let p = at(&t, &["Parameters", "CreateExampleApi"]);
    assert_eq!(p.get("Default").and_then(Value::as_str), Some("true"));
    assert!(resources_of_type(&t, "AWS::Serverless::Api").is_empty());

    let (_, method) = resources_of_type(&t, "AWS::ApiGateway::Method")[0];
    let m = at(method, &["Properties"]);
    assert_eq!(at(m, &["AuthorizationType"]).as_str(), Some("CUSTOM"));
    assert_eq!(as_ref(at(m, &["AuthorizerId"])), Some("ExampleAuthorizer"));
    assert_eq!(at(m, &["Integration", "Type"]).as_str(), Some("MOCK"));

    // The stage: access logs (with retention) and tracing, as parameters.
    let stage = at(resource(&t, "ExampleStage"), &["Properties"]);
    let (cond, logs, _) = as_if(at(stage, &["AccessLogSetting"])).expect("!If access logs");
    assert_eq!(cond, "ExampleAccessLogs");
    let mut refs = Vec::new();
    references(at(logs, &["DestinationArn"]), &mut refs);
    let log_group = resource(&t, &refs[0]);
    assert_eq!(
        as_ref(at(log_group, &["Properties", "RetentionInDays"])),
        Some("LogRetentionDays")
    );
    assert_eq!(
        as_if(at(stage, &["TracingEnabled"])).map(|i| i.0),
        Some("TracingActive")
    );

    // API Gateway may invoke the function for this API's authorizer only.
    let perm = at(resource(&t, "ExampleInvokePermission"), &["Properties"]);
    assert_eq!(
        at(perm, &["Principal"]).as_str(),
        Some("apigateway.amazonaws.com")
    );
    let source = strings(at(perm, &["SourceArn"])).concat();
    assert!(
        source.ends_with("${ExampleApi}/authorizers/${ExampleAuthorizer}"),
        "{source}"
    );
}

/// Whether a name property writes a name (a literal or a `!Sub`), rather than pointing at
/// another resource with `!Ref` or `!GetAtt` (a permission's `FunctionName`).
fn names_something(v: Option<&Value>) -> bool {
    v.is_some_and(|v| {
        matches!(v, Value::String(_)) || matches!(v, Value::Tagged(t) if t.tag == Tag::new("Sub"))
    })
}

#[test]
fn the_core_is_reusable_exports_what_other_stacks_need_and_names_nothing_fixed() {
    let t = template();
    // Physical names CloudFormation can generate: fixed ones cap the stack name's length
    // and collide between two stacks in one account.
    for (name, r) in at(&t, &["Resources"]).as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let props = r.get("Properties").unwrap_or(&Value::Null);
        for fixed in [
            "FunctionName",
            "TableName",
            "BucketName",
            "LogGroupName",
            "RoleName",
            "AlarmName",
        ] {
            assert!(
                !names_something(props.get(fixed)),
                "{name}.{fixed} is fixed: let CloudFormation name it"
            );
        }
    }
    let outputs = at(&t, &["Outputs"]);
    for name in [
        "AuthorizerFunctionArn",
        "MappingsTableName",
        "SnapshotBucketName",
    ] {
        let export = at(outputs, &[name, "Export", "Name"]);
        let mut refs = Vec::new();
        references(export, &mut refs);
        assert_eq!(
            refs,
            ["AWS::StackName"],
            "{name} is exported under the stack's name"
        );
    }
    let mut refs = Vec::new();
    references(at(outputs, &["AuthorizerFunctionArn", "Value"]), &mut refs);
    assert_eq!(refs, ["AuthorizerFunction"]);
    for name in ["ApiUrl", "ApiArn"] {
        assert_eq!(
            at(outputs, &[name, "Condition"]).as_str(),
            Some("CreateExampleApi"),
            "{name} exists only with the example API"
        );
    }
    let (_, f) = resources_of_type(&t, "AWS::Serverless::Function")[0];
    assert_eq!(as_ref(at(f, &["Properties", "Tracing"])), Some("Tracing"));
}

#[test]
fn alarms_watch_faults_throttles_duration_fallback_and_key_fetches() {
    let t = template();
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 3, "at least three alarms: {}", alarms.len());
    // The metrics the code emits (src/metrics.rs); a typo would make an alarm that never fires.
    let emitted = [
        "Allow",
        "Deny",
        "Unauthorized",
        "Error",
        "Latency",
        "MappingLoads",
        "MappingVersion",
        "MappingRefreshFailures",
        "JwksRefetches",
        "JwksRefetchFailures",
        "IdpUnavailable",
        "DpopReplayUnavailable",
    ];
    let mut watched = BTreeSet::new();
    for (name, a) in &alarms {
        let p = at(a, &["Properties"]);
        let ns = at(p, &["Namespace"]).as_str().unwrap();
        let metric = at(p, &["MetricName"]).as_str().unwrap();
        match ns {
            "scopegate" => {
                assert_eq!(ns, scopegate::metrics::NAMESPACE);
                assert!(
                    emitted.contains(&metric),
                    "{name}: scopegate does not emit {metric}"
                );
            }
            "AWS/Lambda" => {}
            other => panic!("{name}: namespace {other}"),
        }
        assert_ne!(
            (ns, metric),
            ("AWS/Lambda", "Errors"),
            "{name}: every 401 is a Lambda error; alarm on scopegate's Error instead"
        );
        let dims = at(p, &["Dimensions"]).as_sequence().unwrap();
        assert_eq!(
            dims.len(),
            1,
            "{name}: the EMF lines carry FunctionName alone"
        );
        assert_eq!(at(&dims[0], &["Name"]).as_str(), Some("FunctionName"));
        assert_eq!(as_ref(at(&dims[0], &["Value"])), Some("AuthorizerFunction"));
        let (cond, _, _) = as_if(at(p, &["AlarmActions"])).expect("!If [HasAlarmTopic, ...]");
        assert_eq!(cond, "HasAlarmTopic", "{name} notifies the optional topic");
        watched.insert(metric.to_owned());
    }
    for metric in [
        "Error",
        "Throttles",
        "Duration",
        "MappingRefreshFailures",
        "JwksRefetchFailures",
        "IdpUnavailable",
        "DpopReplayUnavailable",
    ] {
        assert!(
            watched.contains(metric),
            "no alarm on {metric}: {watched:?}"
        );
    }
    // Each alarm is explained where its description points.
    let doc = std::fs::read_to_string(repo_root().join("docs/observability.md")).unwrap();
    for (name, _) in &alarms {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/observability.md does not explain {name}"
        );
    }
}

/// The example API's gateway responses are exactly `scopegate::local::responses::DEPLOYED`:
/// one per type, the same status, `WWW-Authenticate` (a static value, quoted as API Gateway
/// wants) and body template. `scopegate local` answers from that table, so the deployed API
/// and local mode say the same thing, and tests/it/local_mode.rs checks local mode's answers
/// against the rendered bodies.
#[test]
fn the_gateway_responses_are_rfc_6750s_and_the_same_as_local_modes() {
    use scopegate::local::responses::DEPLOYED;
    let t = template();
    let mut found = Vec::new();
    for (name, r) in resources_of_type(&t, "AWS::ApiGateway::GatewayResponse") {
        let p = at(r, &["Properties"]);
        assert_eq!(as_ref(at(p, &["RestApiId"])), Some("ExampleApi"), "{name}");
        let kind = at(p, &["ResponseType"]).as_str().unwrap();
        let want = DEPLOYED
            .iter()
            .find(|d| d.response_type == kind)
            .unwrap_or_else(|| panic!("{name}: {kind} is not in local::responses::DEPLOYED"));
        assert_eq!(
            as_u64(at(p, &["StatusCode"])),
            Some(u64::from(want.status)),
            "{name}"
        );
        let header = p
            .get("ResponseParameters")
            .and_then(|m| m.get("gatewayresponse.header.WWW-Authenticate"));
        let quoted = |r: &scopegate::local::responses::GatewayResponse| {
            r.www_authenticate.map(|v| format!("'{v}'"))
        };
        // The 401 names DPoP too where DPoP tokens reach the authorizer (RFC 9449 §7.1).
        let header = match header.and_then(as_if) {
            Some((cond, with_dpop, without)) => {
                assert_eq!(cond, "DpopChallenge", "{name}");
                assert_eq!(kind, "UNAUTHORIZED", "{name}");
                assert_eq!(
                    with_dpop.as_str().map(str::to_owned),
                    quoted(&scopegate::local::responses::UNAUTHORIZED_WITH_DPOP),
                    "{name}"
                );
                without.as_str()
            }
            None => header.map(|v| v.as_str().expect("a static header value")),
        };
        assert_eq!(
            header,
            quoted(want).as_deref(),
            "{name}: a static value is in single quotes"
        );
        assert_eq!(
            at(p, &["ResponseTemplates", "application/json"]).as_str(),
            Some(want.body),
            "{name}"
        );
        // Rendered as API Gateway renders it, the body is JSON.
        serde_json::from_str::<serde_json::Value>(&want.body("a \"message\""))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        found.push(kind.to_owned());
    }
    found.sort();
    let mut want: Vec<_> = DEPLOYED
        .iter()
        .map(|d| d.response_type.to_owned())
        .collect();
    want.sort();
    assert_eq!(found, want);
    // The deployment waits for them: a stage deployed before them would serve the defaults.
    let depends = strings(at(resource(&t, "ExampleDeployment"), &["DependsOn"]));
    for (name, _) in resources_of_type(&t, "AWS::ApiGateway::GatewayResponse") {
        assert!(
            depends.iter().any(|d| d == name),
            "ExampleDeployment must depend on {name}"
        );
    }
}

/// RFC 9449 §11.1: the replay table is what `DynamoReplayStore::create_table` makes (the
/// tests' table on the emulators), with TTL on the attribute the code writes, and the
/// function is told its name.
#[test]
fn the_dpop_replay_table_expires_its_items_and_the_function_knows_it() {
    let t = template();
    let table = at(resource(&t, "DpopReplayTable"), &["Properties"]);
    assert_eq!(
        at(table, &["BillingMode"]).as_str(),
        Some("PAY_PER_REQUEST")
    );
    assert_eq!(
        at(table, &["KeySchema"]).as_sequence().unwrap().len(),
        1,
        "one key: pk"
    );
    assert_eq!(
        at(table, &["KeySchema"]).as_sequence().unwrap()[0]["AttributeName"].as_str(),
        Some("pk")
    );
    assert_eq!(
        at(table, &["TimeToLiveSpecification", "AttributeName"]).as_str(),
        Some("expires_at")
    );
    assert_eq!(
        at(table, &["TimeToLiveSpecification", "Enabled"]).as_bool(),
        Some(true)
    );
    let (_, f) = resources_of_type(&t, "AWS::Serverless::Function")[0];
    let vars = at(f, &["Properties", "Environment", "Variables"]);
    assert_eq!(
        as_ref(at(vars, &["SCOPEGATE_DPOP_REPLAY_TABLE"])),
        Some("DpopReplayTable")
    );
    for (var, param) in [
        ("SCOPEGATE_BOUND_TOKENS", "BoundTokens"),
        ("SCOPEGATE_BOUND_KINDS", "BoundKinds"),
    ] {
        assert_eq!(as_ref(at(vars, &[var])), Some(param));
        let allowed = strings(at(&t, &["Parameters", param, "AllowedValues"]));
        for value in allowed {
            let env = [
                ("SCOPEGATE_ISSUER", "https://idp.example.com"),
                (var, value.as_str()),
            ];
            scopegate::config::Config::from_lookup(|n| {
                env.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| (*v).to_owned())
            })
            .unwrap_or_else(|e| panic!("{param}={value}: {e}"));
        }
    }
}
