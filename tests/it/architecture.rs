//! The shape of the library, checked on its source: which room (top-level module) may import
//! which, no import circle between files, and one module that reads the system clock.
//! docs/architecture.md draws the same rooms; this test keeps the drawing true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

use crate::support::repo_root;

/// What each room may import, down the request path. A room missing here may import nothing.
const ALLOWED: &[(&str, &[&str])] = &[
    ("alg", &[]),
    ("claim", &[]),
    ("clock", &[]),
    ("error_text", &[]),
    ("refusal", &[]),
    ("scope", &[]),
    ("ttl_cache", &[]),
    ("logging", &["config"]),
    ("metrics", &["clock", "refusal"]),
    ("config", &["alg", "claim"]),
    ("policy", &[]),
    (
        "token",
        &[
            "alg",
            "claim",
            "clock",
            "config",
            "refusal",
            "scope",
            "ttl_cache",
        ],
    ),
    (
        "mapping",
        &[
            "claim",
            "clock",
            "config",
            "error_text",
            "metrics",
            "policy",
            "scope",
        ],
    ),
    ("replay", &["config", "mapping", "token"]),
    (
        "authorizer",
        &[
            "alg",
            "claim",
            "clock",
            "config",
            "mapping",
            "metrics",
            "policy",
            "refusal",
            "replay",
            "scope",
            "token",
            "ttl_cache",
        ],
    ),
    ("local", &["clock", "policy", "token", "ttl_cache"]),
    (
        "admin",
        &[
            "alg",
            "authorizer",
            "claim",
            "clock",
            "config",
            "error_text",
            "local",
            "mapping",
            "policy",
            "scope",
            "token",
        ],
    ),
];

/// Every library file as its module path (`token::jwks`), with its text, comments dropped.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>, src: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().unwrap() != "bin" {
                    walk(&path, out, src);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module = rel.to_string_lossy().replace('/', "::");
            if let Some(parent) = module.strip_suffix("::mod") {
                module = parent.to_owned();
            }
            if module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(module, code);
        }
    }
    let src = repo_root().join("src");
    let mut out = BTreeMap::new();
    walk(&src, &mut out, &src);
    out
}

/// The longest module that `path` (`token::jwks::KeyStore`) names, if any.
fn resolve(mods: &BTreeMap<String, String>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| mods.contains_key(m))
}

/// Which files each file imports: `crate::` paths anywhere, `use super::` at the top of a
/// file, and paths through a child module (`claims::parse`, `pub use claims::Claims`).
fn edges(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let crate_path = Regex::new(r"(?-u:\b)crate((?:::[A-Za-z0-9_]+)+)").unwrap();
    let super_use = Regex::new(r"(?m)^use super((?:::[A-Za-z0-9_]+)*)(?:::\{([^}]*)\})?").unwrap();
    let child_path = Regex::new(r"(?:^|[^:A-Za-z0-9_])([A-Za-z0-9_]+)::[A-Za-z0-9_{]").unwrap();
    let mut out = BTreeMap::new();
    for (module, code) in mods {
        let mut deps = BTreeSet::new();
        for c in crate_path.captures_iter(code) {
            deps.extend(resolve(mods, &c[1][2..]));
        }
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        for c in super_use.captures_iter(code) {
            let base = [
                parent,
                c.get(1).map_or("", |r| r.as_str().trim_start_matches(':')),
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("::");
            let items = c.get(2).map_or(String::new(), |i| i.as_str().to_owned());
            let items: Vec<&str> = items
                .split(',')
                .map(|i| i.trim().split("::").next().unwrap_or("").trim())
                .filter(|i| !i.is_empty() && *i != "self" && *i != "*")
                .collect();
            if items.is_empty() {
                deps.extend(resolve(mods, &base));
            }
            for item in items {
                let full = if base.is_empty() {
                    item.to_owned()
                } else {
                    format!("{base}::{item}")
                };
                deps.extend(resolve(mods, &full).or_else(|| resolve(mods, &base)));
            }
        }
        for c in child_path.captures_iter(code) {
            let child = format!("{module}::{}", &c[1]);
            if mods.contains_key(&child) {
                deps.insert(child);
            }
        }
        deps.remove(module);
        out.insert(module.clone(), deps);
    }
    out
}

fn room(module: &str) -> &str {
    module.split("::").next().unwrap()
}

#[test]
fn rooms_import_only_downwards() {
    let mods = modules();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, deps) in edges(&mods) {
        let from = room(&module);
        assert!(
            allowed.contains_key(from),
            "room {from} is not in ALLOWED: place it"
        );
        for dep in deps {
            let to = room(&dep);
            if to != from && !allowed[from].contains(&to) {
                wrong.push(format!("{module} imports {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the floor plan:\n{}",
        wrong.join("\n")
    );
}

/// The first import circle found, as the path around it.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth-first search for a back edge; the path to it is the circle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, bool>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(true) => {
                let start = path.iter().position(|n| *n == node).unwrap();
                let mut circle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                circle.push(node.to_owned());
                return Some(circle);
            }
            Some(false) => return None,
            None => {}
        }
        state.insert(node, true);
        path.push(node);
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(dep, graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(node, false);
        None
    }
    let mut state = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut state, &mut Vec::new()))
}

#[test]
fn no_import_circle_between_files() {
    if let Some(c) = circle(&edges(&modules())) {
        panic!("import circle: {}", c.join(" -> "));
    }
}

#[test]
fn only_the_clock_reads_the_system_time() {
    let reads = Regex::new(r"(?-u:\b)(SystemTime|Instant)::now(?-u:\b)").unwrap();
    let mut wrong = Vec::new();
    fn walk(dir: &Path, reads: &Regex, wrong: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, reads, wrong);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("src/clock.rs")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    // tokio's Instant is the runtime's timer clock, which paused-time tests
                    // control: what waits (the second cache flush) and their tests use it.
                    let code = line.split("//").next().unwrap_or("");
                    if reads.is_match(&code.replace("tokio::time::Instant::now", "")) {
                        wrong.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    walk(&repo_root().join("src"), &reads, &mut wrong);
    assert!(
        wrong.is_empty(),
        "system time read outside src/clock.rs:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_sees_a_circle_and_an_upward_import() {
    // The checks above must be able to fail: a made-up tree with both faults.
    let mut mods = BTreeMap::new();
    mods.insert("token".to_owned(), "pub mod jwks;".to_owned());
    mods.insert(
        "token::jwks".to_owned(),
        "use crate::metrics::x;".to_owned(),
    );
    mods.insert(
        "metrics".to_owned(),
        "use crate::token::jwks::KeyStore;".to_owned(),
    );
    let graph = edges(&mods);
    assert!(graph["token::jwks"].contains("metrics"));
    assert!(graph["metrics"].contains("token::jwks"));
    assert_eq!(
        circle(&graph).unwrap(),
        ["metrics", "token::jwks", "metrics"]
    );
    assert!(!ALLOWED
        .iter()
        .any(|(r, deps)| *r == "metrics" && deps.contains(&"token")));
}
