//! `scopegate validate`: a mapping file checked entry by entry, with warnings for scope
//! sets whose policy would outgrow the size budget, and for route pairs IAM cannot separate
//! (which make it exit 4 unless accepted).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::error::AdminError;
use crate::mapping::file;
use crate::mapping::store::{entry_key, MAX_SORT_KEY_BYTES};
use crate::mapping::{ApiKinds, Mapping, Snapshot};

/// The answer of `validate`.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    /// The file.
    pub file: String,
    /// Entries in it.
    pub entries: usize,
    /// Scopes in it.
    pub scopes: usize,
    /// Policies over the size budget (which scopes, which API and stage, how big), and route
    /// pairs IAM cannot separate.
    pub warnings: Vec<String>,
    /// How many of the warnings are route pairs IAM cannot separate, which cost a granted
    /// route requests: `validate` exits 4 on them unless told to accept them.
    pub inseparable: usize,
    /// The largest policy of the scope sets checked (each set the entries require, and all
    /// of an API's scopes together, which bounds what one token can be granted there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub largest: Option<Largest>,
}

/// The largest policy `validate` found: how big, for which scopes, API and stage.
#[derive(Debug, Clone, Serialize)]
pub struct Largest {
    /// The policy document's bytes.
    pub bytes: usize,
    /// Which scopes (`scope x`, `all 12 scopes together`).
    pub scopes: String,
    /// The API.
    pub api: String,
    /// The stage.
    pub stage: String,
}

/// Validates a mapping file (every entry, duplicates, Allow/Deny that cancel out) and warns
/// when a scope set would produce a policy over `budget` bytes: each scope alone, and all of
/// an API's scopes together (the worst token), on each stage the file names.
///
/// # Errors
/// `FileError` naming the file, the entry and the field.
pub fn validate(path: &Path, budget: usize) -> Result<ValidateReport, AdminError> {
    let doc = file::load_document(path)?;
    Ok(validate_document(&path.display().to_string(), doc, budget))
}

/// [`validate`] of entries already parsed, every API a REST API.
pub fn validate_entries(origin: &str, entries: Vec<Mapping>, budget: usize) -> ValidateReport {
    validate_entries_of(origin, entries, ApiKinds::new(), budget)
}

/// [`validate`] of a document already parsed: its entries, by the rules of its APIs'
/// declared kinds.
pub fn validate_document(origin: &str, doc: file::Document, budget: usize) -> ValidateReport {
    validate_entries_of(origin, doc.mappings, doc.apis, budget)
}

fn validate_entries_of(
    origin: &str,
    entries: Vec<Mapping>,
    kinds: ApiKinds,
    budget: usize,
) -> ValidateReport {
    use std::collections::BTreeMap;
    let n = entries.len();
    // API -> (stages named, the scope sets its entries require).
    type Sets = BTreeSet<Vec<String>>;
    let mut apis: BTreeMap<String, (BTreeSet<String>, Sets)> = BTreeMap::new();
    for m in &entries {
        let (stages, sets) = apis.entry(m.api.as_str().to_owned()).or_default();
        if !m.stage.is_any() {
            stages.insert(m.stage.as_str().to_owned());
        }
        if m.scopes.is_nobody() {
            // A route held for nobody: no scope set meets it.
            continue;
        }
        // Scopes and claim values (grant keys) alike: what a token must carry.
        sets.insert(m.scopes.keys().map(str::to_owned).collect());
    }
    let mut warnings = star_beside_methods(&entries);
    let snapshot = Snapshot::new(0, entries).with_kinds(kinds);
    let mut inseparable = 0;
    let mut largest: Option<Largest> = None;
    for (api, (stages, sets)) in &apis {
        let scopes: BTreeSet<&str> = sets.iter().flatten().map(String::as_str).collect();
        let stages: Vec<&str> = if stages.is_empty() {
            // Only `*` entries: any stage name gives the same policy.
            vec!["any-stage"]
        } else {
            stages.iter().map(String::as_str).collect()
        };
        for stage in stages {
            let mut check = |set: Vec<&str>, label: String| {
                for i in snapshot.inseparable(set.iter().copied(), api, stage) {
                    inseparable += 1;
                    warnings.push(format!(
                        "{label} on {api} stage {stage}: routes {} and {} cannot be told apart (IAM's * matches /): the Deny that keeps {} from these scopes also denies some requests of {}, e.g. {} /{}; those requests are denied",
                        i.denied, i.granted, i.denied, i.granted, i.method, i.example
                    ));
                }
                let p = snapshot.policy_for(set, api, stage);
                let bytes = p.json.get().len();
                if bytes > budget {
                    warnings.push(format!(
                        "{label} on {api} stage {stage}: policy of {bytes} bytes ({} resources) is over the limit of {budget} bytes (API Gateway takes an authorizer's answer up to 8 KB): such a token is answered for each request alone, and API Gateway's cached answer denies its other routes until it expires",
                        p.grants
                    ));
                }
                if p.longest_resource > crate::policy::MAX_RESOURCE_ARN_LEN {
                    warnings.push(format!(
                        "{label} on {api} stage {stage}: the policy holds a resource ARN of {} characters, over API Gateway's limit of {} on a policy statement's Resource: such a token is answered for each request alone (an Allow of the request's own ARN, when that fits), and API Gateway's cached answer denies its other routes until it expires",
                        p.longest_resource,
                        crate::policy::MAX_RESOURCE_ARN_LEN
                    ));
                }
                if largest.as_ref().is_none_or(|l| bytes > l.bytes) {
                    largest = Some(Largest {
                        bytes,
                        scopes: label.clone(),
                        api: api.clone(),
                        stage: stage.to_owned(),
                    });
                }
            };
            for set in sets {
                let label = match set.len() {
                    0 => "any token".to_owned(),
                    1 if !crate::claim::is_grant_key(&set[0]) => format!("scope {}", set[0]),
                    _ => format!(
                        "scopes {}",
                        set.iter()
                            .map(|k| crate::claim::key_label(k))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                };
                check(set.iter().map(String::as_str).collect(), label);
            }
            if scopes.len() > 1 {
                check(
                    scopes.iter().copied().collect(),
                    format!("all {} scopes together", scopes.len()),
                );
            }
        }
    }
    let scopes = snapshot.scopes().count();
    ValidateReport {
        file: origin.to_owned(),
        entries: n,
        scopes,
        warnings,
        inseparable,
        largest,
    }
}

/// Refuses the first entry that requires a claim not among `declared` (the authorizer's
/// `SCOPEGATE_GRANT_CLAIMS`), naming the entry and the claim.
///
/// # Errors
/// [`AdminError::UndeclaredClaim`].
pub fn check_declared(
    entries: &[Mapping],
    declared: &[crate::claim::ClaimName],
) -> Result<(), AdminError> {
    for m in entries {
        // The claims it requires, and those its `${claim:NAME}` segments are bound to.
        let named = m.scopes.claims().iter().map(|c| c.name().clone()).chain(
            m.resource
                .bound_claims()
                .filter_map(|(_, c)| crate::claim::ClaimName::new(c).ok()),
        );
        if let Some(c) = named.into_iter().find(|c| !declared.contains(c)) {
            let declared = if declared.is_empty() {
                "none".to_owned()
            } else {
                declared
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            return Err(AdminError::UndeclaredClaim {
                entry: m.to_string(),
                claim: c.to_string(),
                declared,
            });
        }
    }
    Ok(())
}

/// Refuses the first entry whose DynamoDB item key (the scopes, claims, API, stage, method
/// and resource) is over the sort key's limit: each part is within its own cap, but sixteen
/// long scopes beside a long resource are not, and DynamoDB's own error names no entry.
///
/// # Errors
/// [`AdminError::EntryKeyTooLong`].
pub fn check_storable(entries: &[Mapping]) -> Result<(), AdminError> {
    for m in entries {
        let bytes = entry_key(m).len();
        if bytes > MAX_SORT_KEY_BYTES {
            return Err(AdminError::EntryKeyTooLong {
                entry: m.to_string(),
                bytes,
                max: MAX_SORT_KEY_BYTES,
            });
        }
    }
    Ok(())
}

/// A `*` route entry beside entries of one method on the same path for other scopes: `*`
/// grants every method of its route, so it grants those methods too. That was not so before
/// `*` and `ANY` were told apart, and an earlier OpenAPI import wrote `ANY` as `*`: each is
/// named, so that one meant as API Gateway's `ANY` can be rewritten.
fn star_beside_methods(entries: &[Mapping]) -> Vec<String> {
    use std::collections::HashMap;

    use crate::mapping::routing::{segments, Segment};
    use crate::mapping::Method;
    use crate::policy::Effect;
    let routes = entries
        .iter()
        .filter(|m| m.effect == Effect::Allow && m.resource.is_route());
    let mut by_path: HashMap<(&str, Vec<Segment<'_>>), Vec<&Mapping>> = HashMap::new();
    for m in routes {
        by_path
            .entry((m.api.as_str(), segments(&m.resource)))
            .or_default()
            .push(m);
    }
    let mut out = Vec::new();
    for same_path in by_path.values() {
        for star in same_path.iter().filter(|m| m.method == Method::Every) {
            for other in same_path.iter().filter(|o| {
                !o.method.is_every()
                    && o.scopes != star.scopes
                    && (o.stage == star.stage || o.stage.is_any() || star.stage.is_any())
            }) {
                out.push(format!(
                    "{} (*) grants {} /{}, which is also mapped for {}: * is every method of its route; write ANY if you meant API Gateway's ANY route (an earlier openapi import wrote ANY as *)",
                    star.scopes, other.method, other.resource, other.scopes
                ));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mapping::testing::entry as m;

    /// `*` is every method of its route: beside a method mapped for other scopes on the
    /// same path, it grants that method too, which validate names.
    #[test]
    fn validate_names_a_star_route_beside_a_methods_own() {
        let r = validate_entries(
            "f.json",
            vec![
                m("admin", "*", "orders", "Allow"),
                m("orders:write", "POST", "orders", "Allow"),
                m("admin", "ANY", "items", "Allow"),
                m("items:write", "POST", "items", "Allow"),
            ],
            10_240,
        );
        let named: Vec<&String> = r
            .warnings
            .iter()
            .filter(|w| w.contains("* is every method"))
            .collect();
        assert_eq!(named.len(), 1, "{:?}", r.warnings);
        assert!(
            named[0].starts_with(
                "admin (*) grants POST /orders, which is also mapped for orders:write"
            ),
            "{}",
            named[0]
        );
        assert_eq!(r.inseparable, 0);
    }

    #[test]
    fn validate_names_routes_a_policy_cannot_separate() {
        let r = validate_entries(
            "f.json",
            vec![
                m("orders:read", "GET", "orders/{id}", "Allow"),
                m("orders:read", "GET", "orders/{id}/items/{item}", "Allow"),
                m("payments:read", "GET", "orders/{id}/payments", "Allow"),
            ],
            10_240,
        );
        let named: Vec<&String> = r
            .warnings
            .iter()
            .filter(|w| w.contains("cannot be told apart"))
            .collect();
        assert!(!named.is_empty(), "{:?}", r.warnings);
        assert!(
            named[0].starts_with("scope orders:read on ")
                && named[0]
                    .contains("routes GET /orders/{id}/payments and GET /orders/{id}/items/{item}")
                && named[0].contains("e.g. GET /orders/x/items/payments"),
            "{}",
            named[0]
        );
    }

    #[test]
    fn validate_warns_over_the_budget() {
        let entries: Vec<Mapping> = (0..200)
            .map(|i| m("big", "GET", &format!("r{i}/x"), "Allow"))
            .chain([m("small", "GET", "a", "Allow")])
            .collect();
        let r = validate_entries("f.json", entries, 4096);
        assert_eq!((r.entries, r.scopes), (201, 2));
        assert!(
            r.warnings.iter().any(|w| w.starts_with("scope big ")),
            "{:?}",
            r.warnings
        );
        assert!(
            r.warnings.iter().any(|w| w.starts_with("all 2 scopes")),
            "{:?}",
            r.warnings
        );
        assert!(!r.warnings.iter().any(|w| w.starts_with("scope small ")));
    }

    #[test]
    fn validate_warns_of_a_resource_arn_over_512_characters() {
        let long = "segment/".repeat(60);
        let entries = vec![
            m("long", "GET", long.trim_end_matches('/'), "Allow"),
            m("short", "GET", "a", "Allow"),
        ];
        let r = validate_entries("f.json", entries, 8000);
        let over: Vec<&String> = r
            .warnings
            .iter()
            .filter(|w| w.contains("over API Gateway's limit of 512"))
            .collect();
        assert!(
            over.iter().any(|w| w.starts_with("scope long ")),
            "{:?}",
            r.warnings
        );
        assert!(!over.iter().any(|w| w.starts_with("scope short ")));
    }
}
