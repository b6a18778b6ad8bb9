//! How the admin commands' answers are printed: aligned tables for people, JSON for
//! scripts, tab-separated lines for `cut` and `awk`. The one place that turns a report into
//! text, so every command prints the same way.

use std::fmt::Write as _;

use std::path::Path;

use serde::Serialize;

use super::commands::Changed;
use super::explain::ExplainReport;
use super::flush::Flushed;
use super::migrate::MigrateReport;
use super::validate::ValidateReport;
use crate::mapping::file::{FileError, Problem};
use crate::mapping::store::{HistoryRecord, Published};
use crate::mapping::Mapping;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Aligned columns with a header and a footer, for people.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
    /// Tab-separated fields, one record per line, no header or footer: for `cut`, `awk`
    /// and `while read`, like the AWS CLI's `--output text`.
    Text,
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut first = true;
        let mut s = String::new();
        for (c, w) in cells.zip(&widths) {
            if !first {
                s.push_str("  ");
            }
            first = false;
            let _ = write!(s, "{c:<w$}");
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    for r in rows {
        line(&mut out, &mut r.iter().map(String::as_str));
    }
    out
}

/// An answer split by stream: what a script reads (standard output), and notes for the
/// person at the terminal (standard error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// For standard output.
    pub out: String,
    /// For standard error.
    pub err: String,
}

/// What `migrate` did: `created table`, one line per migration applied, warnings for
/// migration files changed since they were applied.
pub fn render_migrated(r: &MigrateReport, table: &str, output: Output) -> String {
    let mut out = String::new();
    match output {
        Output::Json => return json(r),
        Output::Text => {
            for id in &r.applied {
                let _ = writeln!(out, "applied\t{id}");
            }
            for id in &r.already {
                let _ = writeln!(out, "already\t{id}");
            }
        }
        Output::Table => {
            if r.created {
                let _ = writeln!(out, "created table {table}");
            }
            for id in &r.applied {
                let _ = writeln!(out, "applied {id}");
            }
            for id in &r.changed_since {
                let _ = writeln!(
                    out,
                    "warning: {id} was applied, and its file has changed since (not re-run)"
                );
            }
            if r.applied.is_empty() {
                let _ = writeln!(
                    out,
                    "nothing to do: {} already applied",
                    count(r.already.len(), "migration", "migrations")
                );
            }
        }
    }
    out
}

/// What `publish` did, at `location` (`s3://bucket/key`).
pub fn render_published(p: Published, location: &str, output: Output) -> String {
    match (output, p) {
        (Output::Json, p) => json_line(&p),
        (Output::Text, Published::Written { version, .. }) => {
            format!("written\t{version}\t{location}\n")
        }
        (Output::Text, Published::AlreadyCurrent { version, .. }) => {
            format!("already_current\t{version}\t{location}\n")
        }
        (Output::Table, Published::Written { version, .. }) => {
            format!("published version {version} to {location}\n")
        }
        (Output::Table, Published::AlreadyCurrent { version, .. }) => {
            format!("{location} already holds version {version}\n")
        }
    }
}

/// What `flush-cache` did, one row per stage: `flushed` (or in a dry run `would_flush`) or
/// `failed` with the reason.
pub fn render_flushed(rows: &[Flushed], dry_run: bool, output: Output) -> String {
    let done = if dry_run { "would_flush" } else { "flushed" };
    match output {
        Output::Json => json_line(&rows),
        Output::Text => rows
            .iter()
            .map(|r| match &r.error {
                None => format!("{done}\t{}\t{}\n", r.api, r.stage),
                Some(e) => format!("failed\t{}\t{}\t{e}\n", r.api, r.stage),
            })
            .collect(),
        Output::Table => {
            let mut out: String = rows
                .iter()
                .map(|r| match &r.error {
                    None if dry_run => format!("would flush {} stage {}\n", r.api, r.stage),
                    None => format!(
                        "flushed the authorizer cache of {} stage {}\n",
                        r.api, r.stage
                    ),
                    Some(e) => format!("could not flush {} stage {}: {e}\n", r.api, r.stage),
                })
                .collect();
            if rows.is_empty() {
                out.push_str("no stages to flush\n");
            }
            out
        }
    }
}

/// What `validate` prints with `--output json`, for a valid file and for one that is not.
#[derive(Serialize)]
struct Validation<'a> {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a ValidateReport>,
    problems: &'a [Problem],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A file that validates: the counts, and the policy-size warnings (on standard error for
/// people, as lines for scripts).
pub fn render_valid(r: &ValidateReport, output: Output) -> Rendered {
    let mut out = Rendered::default();
    match output {
        Output::Json => {
            out.out = json(&Validation {
                file: r.file.clone(),
                valid: true,
                report: Some(r),
                problems: &[],
                error: None,
            });
        }
        Output::Text => {
            for w in &r.warnings {
                let _ = writeln!(out.out, "warning\t{w}");
            }
            if let Some(l) = &r.largest {
                let _ = writeln!(
                    out.out,
                    "largest\t{}\t{}\t{}\t{}",
                    l.bytes, l.api, l.stage, l.scopes
                );
            }
            let _ = writeln!(out.out, "valid\t{}\t{}\t{}", r.file, r.entries, r.scopes);
        }
        Output::Table => {
            for w in &r.warnings {
                let _ = writeln!(out.err, "warning: {}: {w}", r.file);
            }
            if let Some(l) = &r.largest {
                let _ = writeln!(
                    out.err,
                    "{}: largest policy {} bytes ({} on {} stage {})",
                    r.file, l.bytes, l.scopes, l.api, l.stage
                );
            }
            let _ = writeln!(
                out.out,
                "{}: {}, {}: valid",
                r.file,
                count(r.entries, "entry", "entries"),
                count(r.scopes, "scope", "scopes")
            );
        }
    }
    out
}

/// A file that does not validate, as JSON: every problem (the error itself is printed by
/// the CLI's error path in every format).
pub fn render_invalid_json(path: &Path, e: &FileError) -> String {
    let problems = e.problems();
    json(&Validation {
        file: path.display().to_string(),
        valid: false,
        report: None,
        problems,
        error: problems.is_empty().then(|| e.to_string()),
    })
}

/// `diff` when the file and the table agree, for people (scripts read the exit code).
pub fn render_same(file: &Path, table: &str, version: u64) -> String {
    format!("{} matches {table} (version {version})\n", file.display())
}

/// Pretty JSON and a newline: every `--output json` answer.
fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("reports serialize") + "\n"
}

/// One-line JSON and a newline.
fn json_line<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("reports serialize") + "\n"
}

/// `1 entry`, `2 entries`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// An entry's fields in table and text order: scope, effect, method, stage, resource, API.
fn entry_fields(m: &Mapping) -> [String; 6] {
    [
        m.scopes.to_string(),
        m.effect.to_string(),
        m.method.to_string(),
        m.stage.to_string(),
        format!("/{}", m.resource),
        m.api.to_string(),
    ]
}

/// Tab-separated fields, one line (no field holds a tab or a newline: every field is
/// validated).
fn text_line(out: &mut String, fields: &[&str]) {
    out.push_str(&fields.join("\t"));
    out.push('\n');
}

/// An entry as one text line: `prefix` (if any), then its [`entry_fields`].
fn text_entry(out: &mut String, prefix: Option<&str>, m: &Mapping) {
    let f = entry_fields(m);
    let fields: Vec<&str> = prefix
        .into_iter()
        .chain(f.iter().map(String::as_str))
        .collect();
    text_line(out, &fields);
}

/// Entries as a table (with a footer naming the count and the version, when given), a JSON
/// array (the canonical form), or tab-separated lines.
pub fn render_mappings(entries: &[Mapping], output: Output, version: Option<u64>) -> String {
    match output {
        Output::Json => json(entries),
        Output::Text => {
            let mut out = String::new();
            for m in entries {
                text_entry(&mut out, None, m);
            }
            out
        }
        Output::Table => {
            let rows: Vec<Vec<String>> = entries.iter().map(|m| entry_fields(m).to_vec()).collect();
            let mut out = table(
                &["SCOPE", "EFFECT", "METHOD", "STAGE", "RESOURCE", "API"],
                &rows,
            );
            if let Some(v) = version {
                let _ = writeln!(
                    out,
                    "{}, version {v}",
                    count(entries.len(), "entry", "entries")
                );
            }
            out
        }
    }
}

/// A change (or a dry run's plan) as text for people, JSON, or tab-separated lines
/// (`+`/`-`/`~`, then the entry's fields; `~` gives the new effect).
pub fn render_changed(c: &Changed, output: Output) -> String {
    let mut out = String::new();
    match output {
        Output::Json => return json(c),
        Output::Text => {
            let mut line = |op: &str, m: &Mapping| text_entry(&mut out, Some(op), m);
            for m in &c.diff.added {
                line("+", m);
            }
            for m in &c.diff.removed {
                line("-", m);
            }
            for (_, new) in &c.diff.changed {
                line("~", new);
            }
            for k in &c.diff.kinds {
                let name = |k: Option<crate::policy::ApiKind>| k.map_or("-", |k| k.as_str());
                let _ = writeln!(
                    out,
                    "kind\t{}\t{}\t{}",
                    k.api,
                    name(k.before),
                    name(k.after)
                );
            }
            return out;
        }
        Output::Table => {}
    }
    for k in &c.diff.kinds {
        let _ = writeln!(out, "{k}");
    }
    for m in &c.diff.added {
        let _ = writeln!(out, "+ {m}");
    }
    for m in &c.diff.removed {
        let _ = writeln!(out, "- {m}");
    }
    for (old, new) in &c.diff.changed {
        let _ = writeln!(out, "~ {old}  ->  {}", new.effect);
    }
    let what = if c.dry_run {
        format!(
            "dry run, nothing written: {} at version {}",
            c.diff.summary(),
            c.from_version
        )
    } else if c.version == c.from_version {
        format!("no change (version {})", c.version)
    } else {
        format!(
            "{}: version {} -> {}{}",
            c.diff.summary(),
            c.from_version,
            c.version,
            if c.attempts > 1 {
                format!(
                    " (after {})",
                    count(c.attempts as usize - 1, "retry", "retries")
                )
            } else {
                String::new()
            }
        )
    };
    let _ = writeln!(out, "{what}");
    match &c.published {
        Some(Ok(Published::Written { version, .. })) => {
            let _ = writeln!(out, "snapshot published (version {version})");
        }
        Some(Ok(Published::AlreadyCurrent { version, .. })) => {
            let _ = writeln!(out, "snapshot already at version {version}");
        }
        Some(Err(e)) => {
            let _ = writeln!(
                out,
                "warning: snapshot not published: {e} (run `scopegate publish`)"
            );
        }
        None => {}
    }
    out
}

/// History records as a table, JSON or tab-separated lines.
pub fn render_history(records: &[HistoryRecord], output: Output) -> String {
    match output {
        Output::Json => json(records),
        Output::Text => {
            let mut out = String::new();
            for r in records {
                let v = r.version.to_string();
                text_line(&mut out, &[&v, &r.at, &r.actor, &r.action, &r.summary]);
            }
            out
        }
        Output::Table => {
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    vec![
                        r.version.to_string(),
                        r.at.clone(),
                        r.actor.clone(),
                        r.action.clone(),
                        r.summary.clone(),
                    ]
                })
                .collect();
            let mut out = table(&["VERSION", "AT", "ACTOR", "ACTION", "SUMMARY"], &rows);
            if let Some(latest) = records.first() {
                for c in &latest.changes {
                    let _ = writeln!(out, "  v{}: {c}", latest.version);
                }
            }
            let _ = writeln!(out, "{}", count(records.len(), "change", "changes"));
            out
        }
    }
}

/// An explanation as text for people, JSON, or tab-separated lines (`decision`, then one
/// line per deciding entry, overruled entry and unknown scope).
pub fn render_explain(r: &ExplainReport, output: Output) -> String {
    let mut out = String::new();
    match output {
        Output::Json => return json(r),
        Output::Text => {
            let decision = r.decision.to_string();
            text_line(&mut out, &["decision", &decision, &r.method_arn]);
            for (kind, list) in [("deciding", &r.deciding), ("overruled", &r.overruled)] {
                for m in list {
                    text_entry(&mut out, Some(kind), m);
                }
            }
            for s in &r.unknown_scopes {
                text_line(&mut out, &["unknown_scope", s]);
            }
            for b in &r.bindings {
                text_line(&mut out, &["binding", b]);
            }
            for b in &r.bound_resources {
                text_line(&mut out, &["bound_resource", b]);
            }
            if let Some(route) = &r.route {
                text_line(&mut out, &["route", route]);
            }
            for req in &r.route_requires {
                text_line(&mut out, &["route_requires", req]);
            }
            for d in &r.exact_denies {
                text_line(&mut out, &["exact_deny", &d.route, &d.covered_by]);
            }
            for i in &r.inseparable {
                text_line(&mut out, &["inseparable", i]);
            }
            return out;
        }
        Output::Table => {}
    }
    let _ = writeln!(
        out,
        "{}  {}  (scopes: {}; mappings version {})",
        r.decision,
        r.method_arn,
        r.scopes.join(" "),
        r.version
    );
    if let Some(route) = &r.route {
        let _ = writeln!(
            out,
            "  route: {route}, which requires {}",
            if r.route_requires.is_empty() {
                "nothing".to_owned()
            } else {
                r.route_requires.join(", or ")
            }
        );
    }
    for d in &r.exact_denies {
        if d.route == d.covered_by {
            let _ = writeln!(
                out,
                "  exactness: no route of the mappings is this path; the Allow of {} would reach it only through IAM's * (which matches /), so it is denied",
                d.covered_by
            );
        } else {
            let _ = writeln!(
                out,
                "  exactness: denied as route {}, which these scopes are not granted; the Allow of {} would otherwise reach it (IAM's * matches /)",
                d.route, d.covered_by
            );
        }
    }
    if !r.bindings.is_empty() {
        let _ = writeln!(out, "  bound claims: {}", r.bindings.join(", "));
    }
    for b in &r.bound_resources {
        let _ = writeln!(out, "  bound: {b}");
    }
    if r.deciding.is_empty() && r.exact_denies.is_empty() {
        let _ = writeln!(out, "  no entry of these scopes matches: implicit deny");
    }
    for m in &r.deciding {
        let _ = writeln!(out, "  decided by: {m}");
    }
    for m in &r.overruled {
        let _ = writeln!(out, "  overruled:  {m}");
    }
    if !r.unknown_scopes.is_empty() {
        let _ = writeln!(
            out,
            "  scopes no entry names: {}",
            r.unknown_scopes.join(" ")
        );
    }
    for i in &r.inseparable {
        let _ = writeln!(out, "  inseparable: {i}; such requests are denied");
    }
    let _ = writeln!(
        out,
        "  the token's policy: {} statements, {} bytes",
        r.policy_grants, r.policy_bytes
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mapping::testing::{entry as m, API};

    #[test]
    fn explanations_name_the_deciding_entries() {
        let s = crate::mapping::Snapshot::new(
            7,
            vec![
                m("w", "*", "orders/*", "Allow"),
                m("w", "DELETE", "orders/*", "Deny"),
            ],
        );
        let arn = format!("{API}/dev/DELETE/orders/1");
        let r = super::super::explain::explain(&s, &["w".into()], &arn).unwrap();
        let text = render_explain(&r, Output::Table);
        assert!(
            text.starts_with("Deny") && text.contains("decided by: w: Deny"),
            "{text}"
        );
    }

    #[test]
    fn publish_migrate_and_validate_answers_per_format() {
        let p = Published::Written {
            version: 4,
            sha256: "ab".repeat(32),
        };
        assert_eq!(
            render_published(p.clone(), "s3://b/k", Output::Text),
            "written\t4\ts3://b/k\n"
        );
        assert_eq!(
            render_published(p.clone(), "s3://b/k", Output::Table),
            "published version 4 to s3://b/k\n"
        );
        let j: serde_json::Value =
            serde_json::from_str(&render_published(p, "s3://b/k", Output::Json)).unwrap();
        assert_eq!(j["written"]["version"], 4);
        assert_eq!(j["written"]["sha256"], "ab".repeat(32));
        let r = MigrateReport {
            created: true,
            applied: vec!["0001-seed".into()],
            already: vec![],
            changed_since: vec![],
        };
        assert_eq!(
            render_migrated(&r, "t", Output::Table),
            "created table t\napplied 0001-seed\n"
        );
        assert_eq!(
            render_migrated(&r, "t", Output::Text),
            "applied\t0001-seed\n"
        );
        let v = ValidateReport {
            file: "f.json".into(),
            entries: 1,
            scopes: 1,
            warnings: vec!["big".into()],
            inseparable: 0,
            largest: None,
        };
        let people = render_valid(&v, Output::Table);
        assert_eq!(people.out, "f.json: 1 entry, 1 scope: valid\n");
        assert_eq!(
            people.err, "warning: f.json: big\n",
            "warnings to stderr for people"
        );
        let scripts = render_valid(&v, Output::Text);
        assert_eq!(scripts.out, "warning\tbig\nvalid\tf.json\t1\t1\n");
        assert!(scripts.err.is_empty());
    }

    #[test]
    fn tables_align() {
        let t = render_mappings(
            &[m("email", "GET", "my-resource", "Allow")],
            Output::Table,
            Some(3),
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("SCOPE  EFFECT  METHOD"), "{t}");
        assert!(lines[1].starts_with("email  Allow   GET"), "{t}");
        assert_eq!(
            lines[2], "1 entry, version 3",
            "footer on its own line: {t}"
        );
        let two = [m("a", "GET", "x", "Allow"), m("b", "GET", "y", "Deny")];
        let t = render_mappings(&two, Output::Table, Some(4));
        assert_eq!(t.lines().last(), Some("2 entries, version 4"), "{t}");
        let text = render_mappings(&two, Output::Text, Some(4));
        assert_eq!(
            text.lines().next(),
            Some(format!("a\tAllow\tGET\tdev\t/x\t{API}").as_str()),
            "no header, tab-separated: {text}"
        );
        assert_eq!(text.lines().count(), 2, "no footer: {text}");
        let j = render_mappings(
            &[m("email", "GET", "my-resource", "Allow")],
            Output::Json,
            None,
        );
        let back: Vec<Mapping> = serde_json::from_str(&j).unwrap();
        assert_eq!(back.len(), 1);
    }
}
