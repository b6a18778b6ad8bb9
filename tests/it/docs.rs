//! The documentation against the code: docs/configuration.md's settings tables are exactly
//! `scopegate::config::SETTINGS` (names, defaults and ranges; the parser reads every number
//! through its row, so the table's range is the enforced one), and every `SCOPEGATE_*` name
//! the code mentions is documented.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;
use scopegate::config::SETTINGS;

use crate::support::repo_root;

/// One row of a settings table: `| `NAME` | default | range | meaning |`.
#[derive(Debug)]
struct Row {
    default: String,
    range: String,
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn configuration_md() -> String {
    read(&repo_root().join("docs/configuration.md"))
}

/// The rows of the four-column settings tables (the CLI-only table has two columns).
fn documented_settings(doc: &str) -> BTreeMap<String, Row> {
    let mut rows = BTreeMap::new();
    for (n, line) in doc.lines().enumerate() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.len() != 4 || !cells[0].starts_with("`SCOPEGATE_") {
            continue;
        }
        let name = cells[0].trim_matches('`').to_owned();
        let default = match cells[1] {
            "—" => String::new(),
            d => d
                .strip_prefix('`')
                .and_then(|d| d.strip_suffix('`'))
                .unwrap_or_else(|| {
                    panic!(
                        "docs/configuration.md:{}: write the default of {name} as `value` or —",
                        n + 1
                    )
                })
                .to_owned(),
        };
        let previous = rows.insert(
            name.clone(),
            Row {
                default,
                range: cells[2].to_owned(),
            },
        );
        assert!(
            previous.is_none(),
            "docs/configuration.md lists {name} twice"
        );
    }
    rows
}

#[test]
fn the_configuration_reference_lists_every_setting_and_nothing_else() {
    let doc = configuration_md();
    let rows = documented_settings(&doc);
    let documented: BTreeSet<&str> = rows.keys().map(String::as_str).collect();
    let code: BTreeSet<&str> = SETTINGS.iter().map(|s| s.name).collect();
    let undocumented: Vec<_> = code.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&code).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/configuration.md and scopegate::config::SETTINGS differ:\n  \
         read by the code but not documented: {undocumented:?}\n  \
         documented but not read by the code: {unknown:?}"
    );
    for s in SETTINGS {
        let row = &rows[s.name];
        assert_eq!(
            row.default,
            s.default_text(),
            "the default of {} in docs/configuration.md (left) differs from SETTINGS (right)",
            s.name
        );
        // The range the parser enforces is the table's (config.rs reads numbers through
        // their row), so this compares the enforced range with the documented one.
        assert_eq!(
            row.range,
            s.range_text(),
            "the range of {} in docs/configuration.md (left) differs from SETTINGS (right)",
            s.name
        );
    }
}

#[test]
fn every_scopegate_variable_in_the_code_is_documented() {
    let doc = configuration_md();
    let known: BTreeSet<&str> = SETTINGS.iter().map(|s| s.name).collect();
    let literal = Regex::new(r#""(SCOPEGATE_[A-Z][A-Z0-9_]*)""#).unwrap();
    let mut missing = BTreeSet::new();
    let mut stack = vec![repo_root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                for c in literal.captures_iter(&read(&path)) {
                    let name = c[1].to_owned();
                    // In SETTINGS (so in the table, by the test above), or at least documented
                    // (the CLI's own variables).
                    if !known.contains(name.as_str()) && !doc.contains(&format!("`{name}`")) {
                        missing.insert(format!(
                            "{name} ({})",
                            path.strip_prefix(repo_root()).unwrap().display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "read by the code but neither in scopegate::config::SETTINGS nor in docs/configuration.md: {missing:?}"
    );
}

#[test]
fn the_readme_names_only_real_settings_and_links_the_docs() {
    let readme = read(&repo_root().join("README.md"));
    let known: BTreeSet<&str> = SETTINGS.iter().map(|s| s.name).collect();
    let doc = configuration_md();
    let name = Regex::new(r"SCOPEGATE_[A-Z][A-Z0-9_]*").unwrap();
    for m in name.find_iter(&readme) {
        let n = m.as_str();
        assert!(
            known.contains(n) || doc.contains(&format!("`{n}`")),
            "README.md mentions {n}, which is neither a setting nor documented"
        );
    }
    for page in [
        "docs/configuration.md",
        "docs/deploying.md",
        "docs/mappings.md",
        "docs/caching.md",
    ] {
        assert!(repo_root().join(page).exists(), "{page} is missing");
    }
    // Every relative link in docs/ points at a file that exists.
    let link = Regex::new(r"\]\(([^)#:]+)(#[^)]*)?\)").unwrap();
    for entry in std::fs::read_dir(repo_root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            for c in link.captures_iter(&read(&path)) {
                let target = path.parent().unwrap().join(&c[1]);
                assert!(
                    target.exists(),
                    "{} links to {}, which does not exist",
                    path.display(),
                    &c[1]
                );
            }
        }
    }
}

/// docs/observability.md's refusals table is exactly `Refusal::ALL`, in order: the names an
/// operator's dashboards are built on are the ones the decision line and the metric carry.
#[test]
fn the_refusals_table_lists_every_refusal_name_and_nothing_else() {
    let doc = read(&repo_root().join("docs/observability.md"));
    let section = doc
        .split("### Refusals")
        .nth(1)
        .expect("docs/observability.md has a Refusals section");
    let row = Regex::new(r"(?m)^\| `([a-z_]+)` \|").unwrap();
    let documented: Vec<&str> = row
        .captures_iter(section.split("\n## ").next().unwrap())
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    let names: Vec<&str> = scopegate::refusal::Refusal::ALL
        .iter()
        .map(|r| r.as_str())
        .collect();
    assert_eq!(documented, names);
}
