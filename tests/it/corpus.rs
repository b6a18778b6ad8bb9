//! Public OpenAPI documents (tests/corpus/openapi; sources and licences in its SOURCES.md)
//! taken through what a user runs on them: `scopegate openapi`, `scopegate validate` on what
//! it printed, and `scopegate invoke` answering events for the document's routes with real
//! signed tokens. Every answer is judged by the independent model of tests/it/model.rs.
//!
//! These documents were written by people who never saw scopegate: vendors' and AWS's own,
//! Swagger 2.0 and OpenAPI 3.0 and 3.1, small and over a thousand operations. Each command
//! runs under coreutils' `timeout`, a guard against a hang rather than a timing goal (the
//! benches time things).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use scopegate::clock::{Clock, SystemClock};
use scopegate::mapping::{Mapping, Snapshot};
use scopegate::policy::ApiKind;
use scopegate::token::mint::SigningKey;
use scopegate::token::Alg;
use serde_json::{json, Value};

use crate::model::{iam_allows, meaning, Req};
use crate::support::repo_root;

const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
const ISSUER: &str = "https://issuer.corpus.test";
/// The most events one document's `invoke` answers: every route of the small documents, an
/// even sample of the large ones.
const REQUESTS: usize = 240;
/// Seconds any one command may take before it counts as hung.
const HANG: &str = "300";

/// What each document must give: mapped, or refused with exit 4 and this reason.
const DOCS: &[(&str, Option<&str>)] = &[
    ("aws-cognito-scopes.json", None),
    ("aws-httpapi-jwt.json", None),
    ("aws-rest-any-method.yaml", None),
    ("aws-rest-sam.yaml", None),
    ("aws-url-shortener.yaml", None),
    ("azure-devops-git.json", None),
    ("discord.json", None),
    ("kubernetes-1.33.json", None),
    ("non-oauth-scopes.json", None),
    ("okta-management.yaml", None),
    ("petstore-3.0.yaml", None),
    ("petstore-3.1.yaml", None),
    ("scalar-galaxy.yaml", None),
    ("tictactoe.yaml", None),
    // Two templates differing only in parameter names, which OpenAPI forbids (issue 20,
    // class 4): refused, both named.
    (
        "xero-accounting.yaml",
        Some("/Accounts/{AccountID}/Attachments/{AttachmentID} and /Accounts/{AccountID}/Attachments/{FileName} differ only in their parameters' names"),
    ),
    ("xero-webhooks.yaml", None),
];

fn corpus() -> PathBuf {
    repo_root().join("tests/corpus/openapi")
}

/// `scopegate ARGS` under the hang guard, with `env`, `stdin` fed.
fn scopegate(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg(HANG)
        .arg(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .env_remove("SCOPEGATE_MAPPINGS_TABLE")
        .env_remove("SCOPEGATE_SNAPSHOT_BUCKET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .expect("coreutils timeout and the scopegate binary");
    let mut input = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut input, stdin).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(124),
        "scopegate {args:?} ran past {HANG} s"
    );
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A request path the route takes: each `{param}` one segment, `{proxy+}` two.
fn request_path(resource: &str) -> String {
    resource
        .split('/')
        .map(|s| match (s.starts_with('{'), s.ends_with("+}")) {
            (true, true) => "x/y",
            (true, false) => "x",
            _ => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_document_lists_its_source() {
    let sources = std::fs::read_to_string(corpus().join("SOURCES.md")).unwrap();
    let mut on_disk = BTreeSet::new();
    for f in std::fs::read_dir(corpus()).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        if name != "SOURCES.md" {
            assert!(
                sources.contains(&format!("`{name}`")) || sources.contains(&name),
                "{name} has no source in SOURCES.md"
            );
            on_disk.insert(name);
        }
    }
    let listed: BTreeSet<String> = DOCS.iter().map(|(f, _)| (*f).to_owned()).collect();
    assert_eq!(on_disk, listed, "every document has an expectation here");
    assert!(listed.len() >= 10);
}

#[test]
fn public_documents_map_validate_and_decide_as_the_model_says() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(Alg::RS256, "k1");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, SigningKey::jwks(&[&key]).to_string()).unwrap();
    let now = SystemClock.now();
    let token = |scopes: &[&str]| {
        key.sign(
            &json!({"iss": ISSUER, "sub": "corpus", "iat": now, "exp": now + 600,
                         "scope": scopes.join(" ")}),
        )
    };
    for (file, refused) in DOCS {
        let doc = corpus().join(file);
        let out = scopegate(
            &[
                "openapi",
                doc.to_str().unwrap(),
                "--api",
                API,
                "--stage",
                "dev",
            ],
            &[],
            b"",
        );
        if let Some(why) = refused {
            assert_eq!(out.status.code(), Some(4), "{file}: {}", text(&out.stderr));
            assert!(
                text(&out.stderr).contains(why),
                "{file}: {}",
                text(&out.stderr)
            );
            continue;
        }
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        let document = scopegate::mapping::file::parse_document(&out.stdout, file)
            .unwrap_or_else(|e| panic!("{file}: the output is a mappings file: {e}"));
        // The output declares the API's kind: an HTTP API export's is http, the rest rest.
        let kind = document.apis.declared(API);
        assert_eq!(
            kind,
            Some(if file.contains("httpapi") {
                ApiKind::Http
            } else {
                ApiKind::Rest
            }),
            "{file}"
        );
        let http = kind == Some(ApiKind::Http);
        let entries: Vec<Mapping> = document.mappings.clone();
        let mapped = dir.path().join(format!("{file}.mappings.json"));
        std::fs::write(&mapped, &out.stdout).unwrap();

        // Exit 4 only for route pairs IAM cannot separate, which --accept-inseparable
        // accepts.
        let out = scopegate(&["validate", mapped.to_str().unwrap()], &[], b"");
        if !out.status.success() {
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(4), "{file}: {err}");
            assert!(
                err.contains("cannot be told apart") && err.contains("--accept-inseparable"),
                "{file}: {err}"
            );
            let accepted = ["validate", mapped.to_str().unwrap(), "--accept-inseparable"];
            let out = scopegate(&accepted, &[], b"");
            assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        }

        // Requests: each route (an even sample of large documents) by a token with exactly
        // its requirement, and by one with none of the document's scopes; and each operation
        // of the document itself by a token with every scope it names.
        let routes: Vec<&Mapping> = entries.iter().collect();
        let step = routes.len().div_ceil(REQUESTS / 2).max(1);
        let mut cases: Vec<(Vec<&str>, Req)> = Vec::new();
        for m in routes.iter().step_by(step) {
            let req = Req {
                api: API,
                stage: "dev",
                verb: match m.method.as_str() {
                    "*" | "ANY" => "GET",
                    v => v,
                },
                path: request_path(m.resource.as_str()),
                http,
            };
            let own: Vec<&str> = if m.scopes.is_nobody() {
                vec!["openid"]
            } else {
                m.scopes.scopes().iter().map(|s| s.as_str()).collect()
            };
            cases.push((own, req.clone()));
            cases.push((vec!["corpus:unrelated"], req));
        }
        let every: Vec<&str> = entries
            .iter()
            .flat_map(|m| m.scopes.scopes())
            .map(|s| s.as_str())
            .filter(|s| scopegate::scope::check_token(s).is_ok())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let operations = operations(&doc);
        let ops_step = operations.len().div_ceil(REQUESTS / 2).max(1);
        let sampled: Vec<&(Req, Granted)> = operations.iter().step_by(ops_step).collect();
        let first_op = cases.len();
        for (req, _) in &sampled {
            cases.push((
                every.clone(),
                Req {
                    http,
                    ..req.clone()
                },
            ));
        }
        let mut events = Vec::new();
        for (scopes, req) in &cases {
            let bearer = format!("Bearer {}", token(scopes));
            let e = if http {
                json!({"version": "2.0", "type": "REQUEST", "routeArn": req.arn(),
                       "identitySource": [bearer], "headers": {"authorization": bearer}})
            } else {
                json!({"type": "TOKEN", "authorizationToken": bearer, "methodArn": req.arn()})
            };
            events.extend(e.to_string().into_bytes());
            events.push(b'\n');
        }
        let out = scopegate(
            &["invoke"],
            &[
                ("SCOPEGATE_MAPPINGS_FILE", mapped.to_str().unwrap()),
                ("SCOPEGATE_JWKS_FILE", jwks.to_str().unwrap()),
                ("SCOPEGATE_ISSUER", ISSUER),
            ],
            &events,
        );
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        let answers = text(&out.stdout);
        let answers: Vec<&str> = answers.lines().collect();
        assert_eq!(answers.len(), cases.len(), "{file}: {}", text(&out.stderr));
        let snapshot = Snapshot::from_document(document);
        let mut allowed_some = false;
        for (k, ((scopes, req), answer)) in cases.iter().zip(answers).enumerate() {
            let body: Value = serde_json::from_str(answer).unwrap();
            let allowed = iam_allows(&body["policyDocument"], &req.arn());
            if let Some((_, granted)) = k.checked_sub(first_op).map(|i| sampled[i]) {
                // The document's own word: an operation it grants no OAuth requirement
                // (apiKey, http, another authorizer, OAuth beside another scheme, nothing) is
                // never allowed, whatever wider route or template surrounds it (issue 20,
                // class 2). A public one is never sent to the authorizer.
                assert!(
                    !allowed || *granted != Granted::No,
                    "{file}: {} {} is allowed to every scope, though the document grants it no OAuth requirement",
                    req.verb,
                    req.path
                );
                continue;
            }
            let want = meaning(&entries, scopes, req);
            let inseparable = !snapshot
                .inseparable(scopes.iter().copied(), API, "dev")
                .is_empty();
            let ok = match want {
                None => true,
                Some(want) => allowed == want || (want && !allowed && inseparable),
            };
            assert!(
                ok,
                "{file}: {scopes:?} {} {}: got {allowed}, meant {want:?}",
                req.verb, req.path
            );
            allowed_some |= allowed;
        }
        // A document with any grant grants something: the judge is not vacuous.
        let grants = entries.iter().any(|m| !m.scopes.is_nobody());
        assert_eq!(allowed_some, grants, "{file}");
    }
}

/// What a document says of one operation, read here from the document itself (not through
/// scopegate's reader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Granted {
    /// Some alternative is OAuth scopes alone.
    OAuth,
    /// Public: no authorization (`security: []`, an empty object, SAM's `NONE`).
    Public,
    /// Nothing scopegate can grant it by.
    No,
}

/// Every operation of the document at `path` and what it grants, as a REST request.
fn operations(path: &std::path::Path) -> Vec<(Req, Granted)> {
    let raw = std::fs::read_to_string(path).unwrap();
    let raw = raw.strip_prefix('\u{feff}').unwrap_or(&raw);
    let doc: yaml_serde::Value = yaml_serde::from_str(raw).unwrap();
    let schemes = |at: &[&str]| {
        let mut v = &doc;
        for k in at {
            v = &v[*k];
        }
        v.as_mapping().cloned().unwrap_or_default()
    };
    let mut defined = schemes(&["securityDefinitions"]);
    defined.extend(schemes(&["components", "securitySchemes"]));
    let oauth = |name: &str| {
        defined.get(name).is_some_and(|s| {
            matches!(s["type"].as_str(), Some("oauth2" | "openIdConnect"))
                || s["x-amazon-apigateway-authtype"].as_str() == Some("cognito_user_pools")
        })
    };
    let granted = |security: Option<&yaml_serde::Value>| -> Granted {
        let Some(list) = security.and_then(|s| s.as_sequence()) else {
            return Granted::No;
        };
        if list.is_empty() {
            return Granted::Public;
        }
        let mut best = Granted::No;
        for alt in list {
            let names: Vec<&str> = alt
                .as_mapping()
                .map(|m| m.keys().filter_map(|k| k.as_str()).collect())
                .unwrap_or_default();
            let names: Vec<&str> = names
                .into_iter()
                .filter(|n| *n != "NONE" || defined.contains_key("NONE"))
                .collect();
            if names.is_empty() {
                return Granted::Public;
            }
            if names.iter().all(|n| oauth(n)) {
                best = Granted::OAuth;
            }
        }
        best
    };
    let mut out = Vec::new();
    let Some(paths) = doc["paths"].as_mapping() else {
        return out;
    };
    for (p, item) in paths {
        let Some(p) = p.as_str().and_then(|p| p.strip_prefix('/')) else {
            continue;
        };
        let Some(item) = item.as_mapping() else {
            continue;
        };
        for (m, op) in item {
            let verb = match m.as_str() {
                Some("get") => "GET",
                Some("put") => "PUT",
                Some("post") => "POST",
                Some("delete") => "DELETE",
                Some("patch") => "PATCH",
                Some("head") => "HEAD",
                Some("options") => "OPTIONS",
                Some("x-amazon-apigateway-any-method") => "GET",
                _ => continue,
            };
            let security = op.get("security").or_else(|| doc.get("security"));
            out.push((
                Req {
                    api: API,
                    stage: "dev",
                    verb,
                    path: request_path(p.trim_end_matches('/')),
                    http: false,
                },
                granted(security),
            ));
        }
    }
    out
}
