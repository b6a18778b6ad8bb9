//! Mapping entries from an OpenAPI document ([`super::openapi`]): one entry per operation and
//! requirement alternative, for one API and stage, so that the API's own document says who may
//! call which route and nothing is written twice.
//!
//! - An operation's alternatives (its requirement objects) become one Allow entry each: any
//!   one suffices. The scopes of one alternative are all required (`"scopes": [...]`); an
//!   alternative of no scopes is any verified token (`"scopes": []`).
//! - The path template is the resource (`/orders/{id}` is the route `orders/{id}`), and
//!   `x-amazon-apigateway-any-method` is method `*`.
//! - Operations that are public (`security: []`), have no requirement at all, or only
//!   requirements scopegate cannot check (apiKey, http) get no entry, and a note says so.

use std::collections::hash_map::{Entry, HashMap};
use std::path::Path;

use super::error::AdminError;
use super::openapi::{self, OpenApi, Security};
use crate::mapping::routing::{segments, Segment};
use crate::mapping::{Mapping, Method, Requirement, ResourcePath, Scope, Stage};
use crate::policy::{ApiArn, Effect};

/// What a document maps to.
#[derive(Debug)]
pub struct Derived {
    /// The entries, in document order.
    pub entries: Vec<Mapping>,
    /// What was not mapped, and why: one line each, for stderr.
    pub notes: Vec<String>,
    /// How many operations the document has.
    pub operations: usize,
    /// The API the entries are for.
    pub api: ApiArn,
    /// The stage they are for.
    pub stage: Stage,
}

/// Reads the OpenAPI document at `path` and maps it onto `api` and `stage`.
///
/// # Errors
/// [`AdminError::OpenApi`] naming the file: it cannot be read or parsed, `--api` or
/// `--stage` is invalid, or an operation's path or scope cannot be a mapping's.
pub fn load(path: &Path, api: &str, stage: &str) -> Result<Derived, AdminError> {
    let at = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| AdminError::OpenApi(format!("cannot read OpenAPI document {at}: {e}")))?;
    let doc = openapi::read(&text).map_err(|e| AdminError::OpenApi(format!("{at}: {e}")))?;
    let api = ApiArn::parse(api).map_err(|e| AdminError::OpenApi(format!("--api: {e}")))?;
    let stage = Stage::new(stage).map_err(|e| AdminError::OpenApi(format!("--stage: {e}")))?;
    derive(&doc, &api, &stage).map_err(|e| AdminError::OpenApi(format!("{at}: {e}")))
}

/// Maps a read document onto `api` and `stage`.
///
/// # Errors
/// A line naming the operation whose path or scopes a mapping cannot hold.
pub fn derive(doc: &OpenApi, api: &ApiArn, stage: &Stage) -> Result<Derived, String> {
    refuse_renamed_templates(doc)?;
    let mut entries = Vec::new();
    let mut notes: Vec<String> = doc.notes.iter().map(ToString::to_string).collect();
    let mut unmapped = Vec::new();
    for op in &doc.operations {
        let name = format!("{} {}", op.method, op.path);
        let alternatives = match &op.security {
            Security::Scopes(alternatives) => alternatives,
            Security::Public => {
                notes.push(format!(
                    "{name}: public (security: []): no entry; API Gateway must not send it to the authorizer"
                ));
                continue;
            }
            Security::None | Security::Unmapped => {
                notes.push(format!(
                    "{name}: no OAuth requirement: no entry; if the authorizer guards it, map it by hand"
                ));
                unmapped.push(op);
                continue;
            }
        };
        let method: Method = if op.method == "ANY" {
            Method::Any
        } else {
            op.method.parse().map_err(|e| format!("{name}: {e}"))?
        };
        let resource = ResourcePath::new(&op.path).map_err(|e| format!("{name}: {e}"))?;
        if !resource.is_route() {
            return Err(format!(
                "{name}: a path with * or ? is not a route template; OpenAPI paths name routes"
            ));
        }
        for scopes in alternatives {
            let scopes = scopes
                .iter()
                .map(|s| Scope::new(s))
                .collect::<Result<Vec<_>, _>>()
                .and_then(Requirement::all_of)
                .map_err(|e| format!("{name}: {e}"))?;
            entries.push(Mapping {
                api: api.clone(),
                stage: stage.clone(),
                method,
                resource: resource.clone(),
                scopes,
                effect: Effect::Allow,
            });
        }
    }
    // A route the table does not name is not denied by name: say which granted template's `*`
    // reaches an unmapped operation (its parameters as one segment each).
    for op in unmapped {
        let path: Vec<&str> = op
            .path
            .trim_matches('/')
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect();
        let path = path.join("/");
        let method: Option<Method> = if op.method == "ANY" {
            Some(Method::Any)
        } else {
            op.method.parse().ok()
        };
        let reaching = entries.iter().find(|m| {
            m.resource.has_params()
                && method
                    .is_some_and(|x| m.method == Method::Any || x == Method::Any || m.method == x)
                && crate::policy::glob_match(&m.resource.policy_pattern(), &path)
                && m.resource.as_str() != op.path.trim_matches('/')
        });
        if let Some(m) = reaching {
            notes.push(format!(
                "{} {}: the * of {} /{} ({}) reaches it, and the policy cannot always deny it by name: map it by hand",
                op.method, op.path, m.method, m.resource, m.scopes
            ));
        }
    }
    Ok(Derived {
        entries,
        notes,
        operations: doc.operations.len(),
        api: api.clone(),
        stage: stage.clone(),
    })
}

/// Two paths that differ only in their parameters' names (`/a/{x}` and `/a/{y}`) are one
/// route to API Gateway, and OpenAPI forbids them ("templated paths with the same hierarchy
/// but different templated names MUST NOT exist as they are identical"). Merging them would
/// grant either's requirement on both; the document is refused instead, naming both.
fn refuse_renamed_templates(doc: &OpenApi) -> Result<(), String> {
    let templates: Vec<(ResourcePath, &str)> = doc
        .operations
        .iter()
        .filter_map(|op| Some((ResourcePath::new(&op.path).ok()?, op.path.as_str())))
        .filter(|(r, _)| r.has_params())
        .collect();
    // The route's segments name no parameter: one key per route API Gateway tells apart.
    let mut routes: HashMap<Vec<Segment<'_>>, &(ResourcePath, &str)> = HashMap::new();
    for t in &templates {
        match routes.entry(segments(&t.0)) {
            Entry::Occupied(first) if first.get().0 != t.0 => {
                return Err(format!(
                    "paths {} and {} differ only in their parameters' names: one route to API Gateway, and OpenAPI forbids it; rename one",
                    openapi::clip_path(first.get().1),
                    openapi::clip_path(t.1)
                ));
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(v) => {
                v.insert(t);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    fn derived(yaml: &str) -> Result<Derived, String> {
        let doc = openapi::read(yaml).unwrap();
        derive(
            &doc,
            &ApiArn::parse(API).unwrap(),
            &Stage::new("prod").unwrap(),
        )
    }

    #[test]
    fn operations_become_route_entries_one_per_alternative() {
        let d = derived(
            "openapi: 3.0.3\ncomponents: {securitySchemes: {idp: {type: oauth2}, key: {type: apiKey}}}\nsecurity: [{idp: [orders:read]}]\npaths:\n  /orders/{id}:\n    get: {}\n    delete: {security: [{idp: [orders:write, orders:admin]}, {idp: [root]}]}\n  /files/{proxy+}:\n    x-amazon-apigateway-any-method: {security: [{idp: []}]}\n  /health:\n    get: {security: []}\n  /keys:\n    get: {security: [{key: []}]}\n",
        )
        .unwrap();
        let lines: Vec<String> = d.entries.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                format!("orders:read: Allow {API}/prod/GET/orders/{{id}}"),
                format!("orders:admin orders:write: Allow {API}/prod/DELETE/orders/{{id}}"),
                format!("root: Allow {API}/prod/DELETE/orders/{{id}}"),
                format!("(any token): Allow {API}/prod/*/files/{{proxy+}}"),
            ]
        );
        assert!(
            d.notes.iter().any(|n| n.starts_with("GET /health: public")),
            "{:?}",
            d.notes
        );
        assert!(
            d.notes
                .iter()
                .any(|n| n.starts_with("GET /keys: no OAuth requirement")),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn an_unmapped_operation_a_template_reaches_is_named() {
        let d = derived(
            "openapi: 3.0.3\ncomponents: {securitySchemes: {idp: {type: oauth2}, lambda: {type: apiKey, name: Authorization, in: header}}}\npaths:\n  /orders/{id}:\n    get: {security: [{idp: [orders:read]}]}\n  /orders/{id}/refund:\n    get: {security: [{lambda: []}]}\n  /other:\n    get: {security: [{lambda: []}]}\n",
        )
        .unwrap();
        let reached: Vec<&String> = d
            .notes
            .iter()
            .filter(|n| n.contains("reaches it"))
            .collect();
        assert_eq!(
            reached,
            ["GET /orders/{id}/refund: the * of GET /orders/{id} (orders:read) reaches it, and the policy cannot always deny it by name: map it by hand"]
        );
    }

    /// Issue 20, class 4: `/a/{x}` and `/a/{y}` were merged into one route granting either
    /// requirement.
    #[test]
    fn templates_differing_only_in_parameter_names_are_refused() {
        const HEAD: &str = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\ncomponents:\n  securitySchemes:\n    o: {type: oauth2, flows: {clientCredentials: {tokenUrl: 'https://x/t', scopes: {}}}}\npaths:\n";
        let err = derived(&format!(
            "{HEAD}  /a/{{x}}:\n    get: {{security: [{{o: [read]}}]}}\n  /a/{{y}}:\n    get: {{security: [{{o: [admin]}}]}}\n"
        ))
        .unwrap_err();
        assert!(err.contains("/a/{x} and /a/{y}"), "{err}");
        // Two operations of one template are one route, not refused.
        let ok = derived(&format!(
            "{HEAD}  /a/{{x}}:\n    get: {{security: [{{o: [read]}}]}}\n    put: {{security: [{{o: [write]}}]}}\n"
        ));
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn a_path_a_mapping_cannot_hold_names_the_operation() {
        let err = derived(
            "openapi: 3.0.3\ncomponents: {securitySchemes: {idp: {type: oauth2}}}\npaths:\n  /a/x{id}:\n    get: {security: [{idp: [s]}]}\n",
        )
        .unwrap_err();
        assert!(err.starts_with("GET /a/x{id}: field \"resource\""), "{err}");
    }
}
