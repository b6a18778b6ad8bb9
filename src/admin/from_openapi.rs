//! Mapping entries from an OpenAPI document ([`super::openapi`]): one entry per operation and
//! requirement alternative, for one API and stage, so that the API's own document says who may
//! call which route and nothing is written twice.
//!
//! - An operation's alternatives (its requirement objects) become one Allow entry each: any
//!   one suffices. The scopes of one alternative are all required (`"scopes": [...]`); an
//!   alternative of no scopes is any verified token (`"scopes": []`).
//! - The path template is the resource (`/orders/{id}` is the route `orders/{id}`), and
//!   `x-amazon-apigateway-any-method` is method `ANY`.
//! - A public operation (`security: []`, or SAM's undefined `NONE`) gets no entry: API
//!   Gateway does not call the authorizer for it.
//! - An operation scopegate cannot honour (no requirement at all; only apiKey, http or
//!   another authorizer; OAuth only together with another scheme) is still a route: an entry
//!   held for nobody ([`Requirement::nobody`]). Left out, its requests would belong to
//!   whatever wider route reaches them (the same path's `ANY`, a template), and that route's
//!   scopes would grant them. A note names each one.
//! - An HTTP API's `$default` route is the root and `{proxy+}`, where the document has no
//!   route of its own for the method.

use std::collections::hash_map::{Entry, HashMap};
use std::path::Path;

use super::error::AdminError;
use super::openapi::{self, OpenApi, Security};
use crate::mapping::routing::{methods_meet, segments, Segment};
use crate::mapping::{Mapping, Method, Requirement, ResourcePath, Scope, Stage};
use crate::policy::{ApiArn, ApiKind, Effect};

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
    /// The API's kind: from the document where it says so, else from `--kind`, else REST.
    /// Declared for the API wherever the entries go.
    pub kind: ApiKind,
}

/// How a requirement object that lists several scopes reads.
///
/// The OpenAPI specification says every listed scope is required. API Gateway's own Cognito
/// and JWT authorizers accept any one of a method's listed scopes, and vendors' documents
/// (Xero, Slack, Spotify) list scopes in that sense: an API moved behind scopegate under the
/// letter of the specification silently loses those requests. So the caller chooses, and is
/// told how many operations the choice affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeLists {
    /// Every listed scope is required (an all-of entry): the specification's reading.
    #[default]
    All,
    /// Any one listed scope suffices (one entry per scope).
    Any,
}

/// How a document is read: its scope lists, and the kind of API it describes when the
/// document does not say (`--kind`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadAs {
    /// How a requirement object listing several scopes reads.
    pub scope_lists: ScopeLists,
    /// The API's kind, where the document does not say (API Gateway's HTTP API exports do);
    /// REST when neither does.
    pub kind: Option<ApiKind>,
}

/// Reads the OpenAPI document at `path` and maps it onto `api` and `stage`.
///
/// # Errors
/// [`AdminError::OpenApi`] naming the file: it cannot be read or parsed, `--api` or
/// `--stage` is invalid, or an operation's path or scope cannot be a mapping's.
pub fn load(path: &Path, api: &str, stage: &str, read: ReadAs) -> Result<Derived, AdminError> {
    let at = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| AdminError::OpenApi(format!("cannot read OpenAPI document {at}: {e}")))?;
    let doc = openapi::read(&text).map_err(|e| AdminError::OpenApi(format!("{at}: {e}")))?;
    let api = ApiArn::parse(api).map_err(|e| AdminError::OpenApi(format!("--api: {e}")))?;
    let stage = Stage::new(stage).map_err(|e| AdminError::OpenApi(format!("--stage: {e}")))?;
    derive(&doc, &api, &stage, read).map_err(|e| AdminError::OpenApi(format!("{at}: {e}")))
}

/// Maps a read document onto `api` and `stage`.
///
/// # Errors
/// A line naming the operation whose path or scopes a mapping cannot hold.
pub fn derive(doc: &OpenApi, api: &ApiArn, stage: &Stage, read: ReadAs) -> Result<Derived, String> {
    let lists = read.scope_lists;
    let kind = match (doc.http_api, read.kind) {
        (true, Some(ApiKind::Rest)) => {
            return Err("the document is an HTTP API's (an HTTP API export, or a $default route), but --kind rest was given".to_owned())
        }
        (true, _) => ApiKind::Http,
        (false, k) => k.unwrap_or(ApiKind::Rest),
    };
    refuse_renamed_templates(doc)?;
    match kind {
        ApiKind::Rest => refuse_slash_twins(doc)?,
        ApiKind::Http => refuse_reached_slash_routes(doc)?,
    }
    let mut entries = Vec::new();
    let mut notes: Vec<String> = doc.notes.iter().map(ToString::to_string).collect();
    if let Some(base) = doc
        .base_path
        .as_deref()
        .filter(|b| !b.trim_end_matches('/').is_empty())
    {
        notes.push(format!(
            "the base path {} is not prepended to the paths, as API Gateway's import does by default (basepath=ignore): mappings name the API's own resource paths",
            openapi::clip_path(base)
        ));
    }
    let mut listing = 0usize;
    for op in &doc.operations {
        let name = format!("{} {}", op.method, openapi::clip_path(&op.path));
        if op.path != openapi::DEFAULT_ROUTE {
            if let Some(why) = unroutable(&op.path, kind) {
                notes.push(format!("{name}: {why}"));
                continue;
            }
            // On a REST API `/x/` is `/x`, which `refuse_slash_twins` found to require the
            // same: one route, written once.
            let bare = op.path.trim_end_matches('/');
            if bare.len() < op.path.len()
                && !bare.is_empty()
                && doc
                    .operations
                    .iter()
                    .any(|o| o.method == op.method && o.path == bare)
            {
                continue;
            }
        }
        let method: Method = op.method.parse().map_err(|e| format!("{name}: {e}"))?;
        let resources = if op.path == openapi::DEFAULT_ROUTE {
            default_route(doc, method)
        } else {
            // `unroutable` left out paths with `*` or `?`: what is left is a route.
            vec![ResourcePath::new(&op.path).map_err(|e| format!("{name}: {e}"))?]
        };
        let requirements = match &op.security {
            Security::Scopes(alternatives) => {
                listing += usize::from(alternatives.iter().any(|a| a.len() > 1));
                let mut requirements = Vec::new();
                for scopes in alternatives {
                    let scopes = scopes
                        .iter()
                        .map(|s| Scope::new(s))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| format!("{name}: {e}"))?;
                    match lists {
                        ScopeLists::Any if !scopes.is_empty() => {
                            requirements.extend(scopes.into_iter().map(Requirement::one));
                        }
                        _ => match Requirement::all_of(scopes) {
                            Ok(r) => requirements.push(r),
                            // More scopes at once than an entry may require: the
                            // alternative cannot be an entry, and is dropped (fail closed).
                            Err(e) => notes.push(format!(
                                "{name}: {e}: this alternative is dropped (with --scope-lists any, each of its scopes would suffice)"
                            )),
                        },
                    }
                }
                requirements.sort_unstable();
                requirements.dedup();
                if requirements.is_empty() {
                    notes.push(format!(
                        "{name}: no alternative can be an entry: a route held for nobody; map it by hand to grant it"
                    ));
                    requirements.push(Requirement::nobody());
                }
                requirements
            }
            Security::Public => {
                notes.push(format!(
                    "{name}: public (security: []): no entry; API Gateway must not send it to the authorizer"
                ));
                continue;
            }
            // Still a route: left out, its requests would fall to whatever wider route or
            // template reaches them, and be granted by that route's scopes.
            Security::None | Security::Unmapped => {
                notes.push(format!(
                    "{name}: no OAuth requirement scopegate can check: a route held for nobody, so no other route's grant reaches it; map it by hand to grant it"
                ));
                vec![Requirement::nobody()]
            }
        };
        for resource in resources {
            for scopes in &requirements {
                entries.push(Mapping {
                    api: api.clone(),
                    stage: stage.clone(),
                    method,
                    resource: resource.clone(),
                    scopes: scopes.clone(),
                    effect: Effect::Allow,
                });
            }
        }
    }
    if listing > 0 {
        notes.push(match lists {
            ScopeLists::All => format!(
                "{} list several scopes in one requirement object, read as all of them required (the OpenAPI specification); --scope-lists any reads them as any one, as API Gateway's Cognito and JWT authorizers do",
                super::render::count(listing, "operation", "operations")
            ),
            ScopeLists::Any => format!(
                "{} list several scopes in one requirement object, read as any one of them (--scope-lists any)",
                super::render::count(listing, "operation", "operations")
            ),
        });
    }
    Ok(Derived {
        entries,
        notes,
        operations: doc.operations.len(),
        api: api.clone(),
        stage: stage.clone(),
        kind,
    })
}

/// The routes an HTTP API's `$default` route stands for, as `method` (it is written under
/// `x-amazon-apigateway-any-method`, so `ANY`): every request no other route matches, so the
/// root and `{proxy+}`, less those the document already has for the same method, which take
/// their requests before `$default` does (writing `$default`'s requirement there too would
/// grant it on them).
fn default_route(doc: &OpenApi, method: Method) -> Vec<ResourcePath> {
    let greedy = ResourcePath::new("{proxy+}").expect("a valid route");
    let own = |r: &ResourcePath| {
        doc.operations.iter().any(|op| {
            op.path != openapi::DEFAULT_ROUTE
                && op.method == method.as_str()
                && ResourcePath::new(&op.path).is_ok_and(|p| segments(&p) == segments(r))
        })
    };
    [ResourcePath::root(), greedy]
        .into_iter()
        .filter(|r| !own(r))
        .collect()
}

/// Why API Gateway can never route a request to `path` as written, or a mapping cannot
/// name it, if so: the operation is then left out, and named. Its requests, if any, go to
/// whichever route API Gateway does pick for them, which decides them.
fn unroutable(path: &str, kind: ApiKind) -> Option<&'static str> {
    if path.contains(['#', '?']) {
        return Some("a path holding # or ? is one API Gateway never routes (a client sends no fragment, and a query is not part of the path): left out");
    }
    if path.contains('*') {
        return Some(
            "a path holding * is not a route (mappings read * as IAM's wildcard): left out",
        );
    }
    let mixed = path.split('/').any(|seg| {
        seg.contains(['{', '}'])
            && !(seg.starts_with('{')
                && seg.ends_with('}')
                && !seg[1..seg.len() - 1].contains(['{', '}']))
    });
    if mixed {
        return Some("a parameter inside a segment (`{name}.json`, `{name}:verb`) is something API Gateway cannot route: left out; its requests go to whichever route API Gateway matches them to");
    }
    if kind == ApiKind::Http && path.len() > 1 && path.ends_with('/') {
        return Some("on an HTTP API a path with a trailing slash is a route of its own, apart from the path without it, and a mapping cannot name it: left out, so no token is granted it");
    }
    None
}

/// On a REST API `/x/` is the resource `/x` (API Gateway serves `x/` from it): two paths of
/// one document that differ only so are one route. With the same requirement they are one
/// entry; with different ones, the document says two things of one route, and merging
/// them would grant either: refused, naming both.
fn refuse_slash_twins(doc: &OpenApi) -> Result<(), String> {
    let mut seen: HashMap<(&str, &str), &openapi::Operation> = HashMap::new();
    for op in &doc.operations {
        let bare = op.path.trim_end_matches('/');
        match seen.entry((op.method.as_str(), bare)) {
            Entry::Occupied(first) if first.get().security != op.security => {
                return Err(format!(
                    "{} {} and {} {} are one route on a REST API (API Gateway serves a trailing slash from the path without it) but require different things; make them agree, or give --kind http if this is an HTTP API, which routes them apart",
                    op.method,
                    openapi::clip_path(&first.get().path),
                    op.method,
                    openapi::clip_path(&op.path)
                ));
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(v) => {
                v.insert(op);
            }
        }
    }
    Ok(())
}

/// On an HTTP API a path with a trailing slash (`/admin/`) is a route of its own, which a
/// mapping cannot name: it is left out. Its requests then go to no route of the table, and a
/// catch-all's Allow (`{proxy+}`, `$default`: IAM's `*`) covers them. Where such a catch-all
/// requires something else, that would grant `/admin/` to its scopes: refused, naming both.
fn refuse_reached_slash_routes(doc: &OpenApi) -> Result<(), String> {
    let pattern = |path: &str| -> Option<String> {
        if path == openapi::DEFAULT_ROUTE {
            return Some("*".to_owned());
        }
        let r = ResourcePath::new(path).ok()?;
        r.as_str()
            .ends_with("+}")
            .then(|| r.policy_pattern().into_owned())
    };
    let meet = |a: &str, b: &str| match (a.parse::<Method>(), b.parse::<Method>()) {
        (Ok(a), Ok(b)) => methods_meet(a, b),
        _ => true,
    };
    for slash in doc
        .operations
        .iter()
        .filter(|o| o.path.len() > 1 && o.path.ends_with('/'))
    {
        let request = slash.path.trim_start_matches('/');
        for catch_all in &doc.operations {
            let Some(p) = pattern(&catch_all.path) else {
                continue;
            };
            if meet(&catch_all.method, &slash.method)
                && crate::policy::glob_match(&p, request)
                && catch_all.security != slash.security
            {
                return Err(format!(
                    "{} {} is a route of its own on an HTTP API, which a mapping cannot name, and {} {} (which requires something else) would reach it; map them by hand, or give --kind rest if this is a REST API",
                    slash.method,
                    openapi::clip_path(&slash.path),
                    catch_all.method,
                    openapi::clip_path(&catch_all.path)
                ));
            }
        }
    }
    Ok(())
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
    use crate::policy::Effect;

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    fn derived(yaml: &str) -> Result<Derived, String> {
        let doc = openapi::read(yaml).unwrap();
        derive(
            &doc,
            &ApiArn::parse(API).unwrap(),
            &Stage::new("prod").unwrap(),
            ReadAs::default(),
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
                format!("(any token): Allow {API}/prod/ANY/files/{{proxy+}}"),
                format!("(nobody): Allow {API}/prod/GET/keys"),
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
                .any(|n| n.starts_with("GET /keys: no OAuth requirement scopegate can check")),
            "{:?}",
            d.notes
        );
    }

    /// Issue 20, class 2: an operation scopegate cannot map was left out, so its requests
    /// belonged to the template or `ANY` sibling that reaches them, and were granted by its
    /// scopes. Now it is a route held for nobody, and the policy denies exactly it.
    #[test]
    fn an_operation_scopegate_cannot_map_is_a_route_held_for_nobody() {
        use crate::mapping::Snapshot;
        use crate::policy::{method_arn, ApiKind};
        let d = derived(
            "openapi: 3.0.3\ncomponents: {securitySchemes: {idp: {type: oauth2}, key: {type: apiKey, name: k, in: header}, lambda: {type: apiKey, name: Authorization, in: header, x-amazon-apigateway-authtype: custom}}}\npaths:\n  /orders/{id}:\n    get: {security: [{idp: [orders:read]}]}\n  /orders/{id}/refund:\n    get: {security: [{lambda: []}]}\n  /orders/{id}/notes:\n    get: {security: [{idp: [orders:read], key: []}]}\n  /orders/{id}/items:\n    get: {security: [{idp: [orders:read]}]}\n  /other:\n    x-amazon-apigateway-any-method: {security: [{idp: [other]}]}\n    get: {}\n",
        )
        .unwrap();
        let nobody: Vec<String> = d
            .entries
            .iter()
            .filter(|m| m.scopes.is_nobody())
            .map(|m| format!("{} {}", m.method, m.resource))
            .collect();
        assert_eq!(
            nobody,
            [
                "GET orders/{id}/refund",
                "GET orders/{id}/notes",
                "GET other"
            ]
        );
        for kind in [ApiKind::Rest, ApiKind::Http] {
            let s = Snapshot::new(1, d.entries.clone())
                .with_kinds([(d.api.clone(), kind)].into_iter().collect());
            let allowed = |scope: &str, method: &str, path: &str| {
                s.policy_for([scope], API, "prod")
                    .evaluate(&method_arn(API, "prod", method, path))
                    == Effect::Allow
            };
            assert!(allowed("orders:read", "GET", "orders/7"), "{kind:?}");
            assert!(allowed("orders:read", "GET", "orders/7/items"), "{kind:?}");
            assert!(
                !allowed("orders:read", "GET", "orders/7/refund"),
                "{kind:?}"
            );
            assert!(!allowed("orders:read", "GET", "orders/7/notes"), "{kind:?}");
            assert!(allowed("other", "POST", "other"), "{kind:?}");
            assert!(!allowed("other", "GET", "other"), "{kind:?}");
        }
    }

    /// An HTTP API export's `$default` route is the catch-all: the root and `{proxy+}`,
    /// less the routes the document has itself.
    #[test]
    fn an_http_apis_default_route_is_its_catch_all() {
        let d = derived(
            "openapi: 3.0.1\ncomponents: {securitySchemes: {idp: {type: oauth2}}}\npaths:\n  $default:\n    x-amazon-apigateway-any-method: {security: [{idp: [fallback]}]}\n  /{proxy+}:\n    get: {security: [{idp: [read]}]}\n  /:\n    x-amazon-apigateway-any-method: {security: [{idp: [root]}]}\n",
        )
        .unwrap();
        let lines: Vec<String> = d.entries.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                format!("fallback: Allow {API}/prod/ANY/{{proxy+}}"),
                format!("read: Allow {API}/prod/GET/{{proxy+}}"),
                format!("root: Allow {API}/prod/ANY/"),
            ]
        );
    }

    /// Several scopes in one requirement object: all of them (the specification) unless
    /// `--scope-lists any`; stderr counts the operations. More scopes than an entry may
    /// require make the alternative go (fail closed), not the whole document (a public
    /// vendor document lists 30 scopes in one object).
    #[test]
    fn scope_lists_read_as_all_or_any() {
        let many: Vec<String> = (0..30).map(|i| format!("s{i}")).collect();
        let doc = format!(
            "openapi: 3.0.3\ncomponents: {{securitySchemes: {{idp: {{type: oauth2}}}}}}\npaths:\n  /a:\n    get: {{security: [{{idp: [read, list]}}]}}\n  /b:\n    get: {{security: [{{idp: [{}]}}]}}\n  /c:\n    get: {{security: [{{idp: [one]}}]}}\n",
            many.join(", ")
        );
        let doc = openapi::read(&doc).unwrap();
        let (api, stage) = (ApiArn::parse(API).unwrap(), Stage::new("prod").unwrap());
        let all = derive(&doc, &api, &stage, ReadAs::default()).unwrap();
        let lines: Vec<String> = all.entries.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                format!("list read: Allow {API}/prod/GET/a"),
                format!("(nobody): Allow {API}/prod/GET/b"),
                format!("one: Allow {API}/prod/GET/c"),
            ]
        );
        assert!(
            all.notes
                .iter()
                .any(|n| n.starts_with("2 operations list several scopes")
                    && n.contains("all of them")),
            "{:?}",
            all.notes
        );
        assert!(
            all.notes
                .iter()
                .any(|n| n.starts_with("GET /b: ") && n.contains("at most 16")),
            "{:?}",
            all.notes
        );
        let any = derive(
            &doc,
            &api,
            &stage,
            ReadAs {
                scope_lists: ScopeLists::Any,
                kind: None,
            },
        )
        .unwrap();
        assert_eq!(any.entries.len(), 2 + 30 + 1);
        assert!(any.entries.iter().all(|m| m.scopes.single().is_some()));
        assert!(
            any.notes.iter().any(|n| n.contains("any one of them")),
            "{:?}",
            any.notes
        );
    }

    /// A 3.x document carrying 2.0's `securityDefinitions` (an API Gateway example does)
    /// was refused for an undefined scheme.
    #[test]
    fn a_3x_document_may_define_its_schemes_the_2_0_way() {
        let d = derived(
            "openapi: 3.0.1\nsecurityDefinitions: {pool: {type: apiKey, name: Authorization, in: header, x-amazon-apigateway-authtype: cognito_user_pools}}\npaths:\n  /app:\n    get: {security: [{pool: [app/read]}]}\n",
        )
        .unwrap();
        let lines: Vec<String> = d.entries.iter().map(ToString::to_string).collect();
        assert_eq!(lines, [format!("app/read: Allow {API}/prod/GET/app")]);
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

    /// Paths API Gateway can never route as written are left out and named, not refused
    /// (a public document of a large API uses `{name}:verb`) nor kept as an entry no
    /// request matches.
    #[test]
    fn paths_api_gateway_cannot_route_are_left_out_and_named() {
        let d = derived(
            "openapi: 3.0.3\ncomponents: {securitySchemes: {idp: {type: oauth2}}}\nsecurity: [{idp: [s]}]\npaths:\n  /a/x{id}:\n    get: {}\n  /v1/{name}:cancel:\n    post: {}\n  /doc#part:\n    get: {}\n  /ok/{id}:\n    get: {}\n",
        )
        .unwrap();
        let lines: Vec<String> = d.entries.iter().map(ToString::to_string).collect();
        assert_eq!(lines, [format!("s: Allow {API}/prod/GET/ok/{{id}}")]);
        for named in [
            "GET /a/x{id}: a parameter inside a segment",
            "POST /v1/{name}:cancel: a parameter inside a segment",
            "GET /doc#part: a path holding #",
        ] {
            assert!(
                d.notes.iter().any(|n| n.starts_with(named)),
                "{named}: {:?}",
                d.notes
            );
        }
    }

    /// Issue 20, class 3: `/x` and `/x/` of an HTTP API document were merged into one
    /// route carrying both requirements. An HTTP API routes them apart: `/x/` cannot be
    /// named by a mapping, so it is left out (no token is granted it) and `/x` keeps its
    /// own requirement. On a REST API they are one route: the same requirement is one
    /// entry, different ones are refused.
    #[test]
    fn a_trailing_slash_is_another_route_on_an_http_api_and_the_same_on_a_rest_api() {
        const DOC: &str = "openapi: 3.0.1\ncomponents: {securitySchemes: {idp: {type: oauth2}}}\npaths:\n  /x:\n    get: {security: [{idp: [plain]}]}\n  /x/:\n    get: {security: [{idp: [slashed]}]}\n";
        let doc = openapi::read(DOC).unwrap();
        let (api, stage) = (ApiArn::parse(API).unwrap(), Stage::new("prod").unwrap());
        let http = ReadAs {
            kind: Some(ApiKind::Http),
            ..ReadAs::default()
        };
        let d = derive(&doc, &api, &stage, http).unwrap();
        let lines: Vec<String> = d.entries.iter().map(ToString::to_string).collect();
        assert_eq!(lines, [format!("plain: Allow {API}/prod/GET/x")]);
        assert!(
            d.notes
                .iter()
                .any(|n| n.starts_with("GET /x/: on an HTTP API")),
            "{:?}",
            d.notes
        );
        // A catch-all that requires something else would reach the left-out /x/: refused.
        let reached = DOC.replace(
            "  /x/:\n",
            "  /{proxy+}:\n    get: {security: [{idp: [plain]}]}\n  /x/:\n",
        );
        let err = derive(&openapi::read(&reached).unwrap(), &api, &stage, http).unwrap_err();
        assert!(
            err.contains("GET /x/ is a route of its own") && err.contains("GET /{proxy+}"),
            "{err}"
        );
        // An HTTP API export says its kind itself.
        let export = DOC.replace(
            "openapi: 3.0.1\n",
            "openapi: 3.0.1\nx-amazon-apigateway-importexport-version: '1.0'\n",
        );
        let d = derive(
            &openapi::read(&export).unwrap(),
            &api,
            &stage,
            ReadAs::default(),
        )
        .unwrap();
        assert_eq!(d.entries.len(), 1);
        let rest = ReadAs {
            kind: Some(ApiKind::Rest),
            ..ReadAs::default()
        };
        let err = derive(&openapi::read(&export).unwrap(), &api, &stage, rest).unwrap_err();
        assert!(err.contains("--kind rest"), "{err}");
        // REST (the default): one route; two requirements for it are refused.
        let err = derive(&doc, &api, &stage, ReadAs::default()).unwrap_err();
        assert!(
            err.contains("GET /x and GET /x/ are one route on a REST API"),
            "{err}"
        );
        let same = DOC.replace("[slashed]", "[plain]");
        let d = derived(&same).unwrap();
        let lines: Vec<String> = d.entries.iter().map(ToString::to_string).collect();
        assert_eq!(lines, [format!("plain: Allow {API}/prod/GET/x")]);
    }

    /// A base path is not applied, as API Gateway's import does by default, and never
    /// silently.
    #[test]
    fn a_base_path_is_named_not_applied() {
        let d = derived(
            "openapi: 3.0.1\nservers: [{url: 'https://api.example.com/v1'}]\ncomponents: {securitySchemes: {idp: {type: oauth2}}}\npaths:\n  /a:\n    get: {security: [{idp: [s]}]}\n",
        )
        .unwrap();
        assert_eq!(d.entries[0].resource.as_str(), "a");
        assert!(
            d.notes
                .iter()
                .any(|n| n.starts_with("the base path /v1 is not prepended")),
            "{:?}",
            d.notes
        );
    }
}
