//! `scopegate validate`: a mapping file checked entry by entry, with warnings for scope
//! sets whose policy would outgrow the size budget.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::error::AdminError;
use crate::mapping::file;
use crate::mapping::{Mapping, Snapshot};

/// The answer of `validate`.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    /// The file.
    pub file: String,
    /// Entries in it.
    pub entries: usize,
    /// Scopes in it.
    pub scopes: usize,
    /// Policies over the size budget: which scopes, which API and stage, how big.
    pub warnings: Vec<String>,
}

/// Validates a mapping file (every entry, duplicates, Allow/Deny that cancel out) and warns
/// when a scope set would produce a policy over `budget` bytes: each scope alone, and all of
/// an API's scopes together (the worst token), on each stage the file names.
///
/// # Errors
/// `FileError` naming the file, the entry and the field.
pub fn validate(path: &Path, budget: usize) -> Result<ValidateReport, AdminError> {
    let doc = file::load_document(path)?;
    Ok(validate_entries(
        &path.display().to_string(),
        doc.mappings,
        budget,
    ))
}

/// [`validate`] of entries already parsed.
pub fn validate_entries(origin: &str, entries: Vec<Mapping>, budget: usize) -> ValidateReport {
    use std::collections::BTreeMap;
    let n = entries.len();
    // API -> (stages named, scopes naming it).
    let mut apis: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for m in &entries {
        let (stages, scopes) = apis.entry(m.api.as_str().to_owned()).or_default();
        if !m.stage.is_any() {
            stages.insert(m.stage.as_str().to_owned());
        }
        scopes.insert(m.scope.as_str().to_owned());
    }
    let snapshot = Snapshot::new(0, entries);
    let mut warnings = Vec::new();
    for (api, (stages, scopes)) in &apis {
        let stages: Vec<&str> = if stages.is_empty() {
            // Only `*` entries: any stage name gives the same policy.
            vec!["any-stage"]
        } else {
            stages.iter().map(String::as_str).collect()
        };
        for stage in stages {
            let mut check = |set: Vec<&str>, label: String| {
                let p = snapshot.policy_for(set, api, stage);
                let bytes = p.json.get().len();
                if bytes > budget {
                    warnings.push(format!(
                        "{label} on {api} stage {stage}: policy of {bytes} bytes ({} statements) is over the budget of {budget} bytes",
                        p.grants
                    ));
                }
            };
            for scope in scopes {
                check(vec![scope.as_str()], format!("scope {scope}"));
            }
            if scopes.len() > 1 {
                check(
                    scopes.iter().map(String::as_str).collect(),
                    format!("all {} scopes together", scopes.len()),
                );
            }
        }
    }
    let scopes = snapshot.scopes().len();
    ValidateReport {
        file: origin.to_owned(),
        entries: n,
        scopes,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mapping::testing::entry as m;

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
}
