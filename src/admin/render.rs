//! How the admin commands' answers are printed: aligned tables for people, JSON for
//! scripts, tab-separated lines for `cut` and `awk`. The one place that turns a report into
//! text, so every command prints the same way.

use std::fmt::Write as _;

use super::commands::Changed;
use super::explain::ExplainReport;
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

/// `1 entry`, `2 entries`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// An entry's fields in table and text order: scope, effect, method, stage, resource, API.
fn entry_fields(m: &Mapping) -> [String; 6] {
    [
        m.scope.to_string(),
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
        Output::Json => serde_json::to_string_pretty(entries).expect("serializable") + "\n",
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
        Output::Json => return serde_json::to_string_pretty(c).expect("serializable") + "\n",
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
            return out;
        }
        Output::Table => {}
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
        Some(Ok(Published::Written { version })) => {
            let _ = writeln!(out, "snapshot published (version {version})");
        }
        Some(Ok(Published::AlreadyCurrent { version })) => {
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
        Output::Json => serde_json::to_string_pretty(records).expect("serializable") + "\n",
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
        Output::Json => return serde_json::to_string_pretty(r).expect("serializable") + "\n",
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
    if r.deciding.is_empty() {
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

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    fn m(scope: &str, method: &str, resource: &str, effect: &str) -> Mapping {
        serde_json::from_str(&format!(
            r#"{{"api":"{API}","stage":"dev","method":"{method}","resource":"{resource}","scope":"{scope}","effect":"{effect}"}}"#
        ))
        .unwrap()
    }

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
