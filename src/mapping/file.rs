//! Mapping files: `seed-data/mappings.json`, files given to the CLI, and the S3 snapshot
//! document.
//!
//! Two shapes are accepted:
//! - a JSON array of entries, each in the canonical or the blog post's form (see
//!   [`Mapping`]);
//! - the snapshot document `{"version": N, "generated_at": "...", "apis": {...}, "mappings": [...]}`
//!   (`version`, `generated_at` and `apis` optional). `apis` declares the kind of each API
//!   that is not a REST API: `{"arn:aws:execute-api:REGION:ACCOUNT:ID": "http"}` (see
//!   [`ApiKinds`]).
//!
//! Errors name the file, the entry (`mappings[3]`, counting from 0), the field, the value and
//! the reason, for every bad entry in the file, not just the first: an operator fixing a file
//! of 500 entries should not need 500 runs. A file that repeats an entry, or that both allows and denies the same (api, stage, method,
//! resource, scope), is refused with both indices: the first is a slip, the second cancels
//! itself out (the Deny always wins) and is almost certainly not what the author meant.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::api_kinds::ApiKinds;
use super::entry::{Mapping, MappingError, RawMapping};
use crate::policy::Effect;

/// A mapping file that cannot be used, naming the file (`origin`) and, for entry problems,
/// the entry index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read.
    #[error("cannot read mapping file {path}: {source}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The document is not JSON of either accepted shape.
    #[error("{origin}: expected a JSON array of mappings or an object {{\"version\": N, \"apis\": {{...}}, \"mappings\": [...]}}: {source}")]
    Document {
        /// The file (or other source) name.
        origin: String,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// Entries that are not valid: every one of them, in file order, one line each.
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Entries {
        /// What is wrong, at least one.
        problems: Vec<Problem>,
    },
}

impl FileError {
    /// The bad entries, when the document itself parsed (empty for [`FileError::Read`] and
    /// [`FileError::Document`]).
    pub fn problems(&self) -> &[Problem] {
        match self {
            FileError::Entries { problems } => problems,
            _ => &[],
        }
    }
}

/// One bad entry of a mapping document: where, which field, which value, and why. Printed
/// as one line (`file: mappings[3]: field "method": invalid method "FETCH": expected ...`);
/// serialized field by field for `--output json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file (or other source) name.
    pub file: String,
    /// The entry's index, from 0.
    pub index: usize,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// The value at fault, when there is one.
    pub value: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// The whole message after the index (the field, the value and the reason together).
    #[serde(skip)]
    detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: mappings[{}]: {}",
            self.file, self.index, self.detail
        )
    }
}

impl Problem {
    fn syntax(origin: &str, index: usize, e: &serde_json::Error) -> Problem {
        // serde names an unknown field (`unknown field `verb``); a wrong type has no name.
        let text = e.to_string();
        let field = text
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            .map(str::to_owned);
        Problem {
            file: origin.to_owned(),
            index,
            field,
            value: None,
            reason: text.clone(),
            detail: text,
        }
    }

    fn entry(origin: &str, index: usize, e: &MappingError) -> Problem {
        Problem {
            file: origin.to_owned(),
            index,
            field: e.field().map(str::to_owned),
            value: e.value().map(str::to_owned),
            reason: e.reason(),
            detail: e.to_string(),
        }
    }

    fn other(origin: &str, index: usize, reason: String) -> Problem {
        Problem {
            file: origin.to_owned(),
            index,
            field: None,
            value: None,
            detail: reason.clone(),
            reason,
        }
    }
}

/// A parsed mapping document: its entries, the kinds of its APIs and, when it was a snapshot
/// document, its version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Document {
    /// The snapshot version, when the document carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// When the snapshot was written, as given (informational).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<String>,
    /// The declared kind of each API that has one (an array document declares none: every
    /// API is REST).
    #[serde(skip_serializing_if = "ApiKinds::is_empty")]
    pub apis: ApiKinds,
    /// The entries, in file order.
    pub mappings: Vec<Mapping>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument<'a> {
    version: Option<u64>,
    generated_at: Option<String>,
    #[serde(default)]
    apis: ApiKinds,
    #[serde(borrow)]
    mappings: Vec<&'a RawValue>,
}

/// Reads and parses a mapping file (see [`parse`]).
pub fn load(path: &Path) -> Result<Vec<Mapping>, FileError> {
    load_document(path).map(|d| d.mappings)
}

/// Reads and parses a mapping file, keeping the snapshot version if it has one.
pub fn load_document(path: &Path) -> Result<Document, FileError> {
    let bytes = std::fs::read(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_document(&bytes, &path.display().to_string())
}

/// Parses a mapping document from `bytes`; `origin` (a path, `s3://...`, `<stdin>`) names it
/// in errors.
pub fn parse(bytes: &[u8], origin: &str) -> Result<Vec<Mapping>, FileError> {
    parse_document(bytes, origin).map(|d| d.mappings)
}

/// Parses a mapping document, keeping the snapshot version and time if it has them.
pub fn parse_document(bytes: &[u8], origin: &str) -> Result<Document, FileError> {
    let document = |source| FileError::Document {
        origin: origin.to_owned(),
        source,
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let (version, generated_at, apis, raw) = if first == Some(b'{') {
        let doc: RawDocument<'_> = serde_json::from_slice(bytes).map_err(document)?;
        (doc.version, doc.generated_at, doc.apis, doc.mappings)
    } else {
        let entries: Vec<&RawValue> = serde_json::from_slice(bytes).map_err(document)?;
        (None, None, ApiKinds::new(), entries)
    };
    let mut mappings = Vec::with_capacity(raw.len());
    let mut problems = Vec::new();
    // The index in the file of each of `mappings`, which differ once an entry is refused.
    let mut indices = Vec::new();
    for (index, value) in raw.into_iter().enumerate() {
        match serde_json::from_str::<RawMapping>(value.get()) {
            Err(e) => problems.push(Problem::syntax(origin, index, &e)),
            Ok(entry) => match Mapping::try_from(entry) {
                Err(e) => problems.push(Problem::entry(origin, index, &e)),
                Ok(mapping) => {
                    mappings.push(mapping);
                    indices.push(index);
                }
            },
        }
    }
    // Repeats and contradictions among the valid entries, named by their place in the file.
    problems.extend(unique_problems(&mappings, origin).into_iter().map(|mut p| {
        p.index = indices[p.index];
        p.detail = renumber(&p.detail, &indices);
        p.reason = renumber(&p.reason, &indices);
        p
    }));
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.index);
        return Err(FileError::Entries { problems });
    }
    Ok(Document {
        version,
        generated_at,
        apis,
        mappings,
    })
}

/// Refuses repeated entries and Allow/Deny pairs on the same target (see the
/// [module docs](self)); `origin` names the source in the error.
///
/// # Errors
/// [`FileError::Entries`] with every repeat and every contradiction.
pub fn check_unique(mappings: &[Mapping], origin: &str) -> Result<(), FileError> {
    let problems = unique_problems(mappings, origin);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(FileError::Entries { problems })
    }
}

/// The repeats and contradictions of [`check_unique`], with indices into `mappings`.
fn unique_problems(mappings: &[Mapping], origin: &str) -> Vec<Problem> {
    let mut seen: HashMap<Target<'_>, (usize, Effect)> = HashMap::with_capacity(mappings.len());
    let mut problems = Vec::new();
    for (index, m) in mappings.iter().enumerate() {
        let target = Target::of(m);
        match seen.get(&target) {
            None => {
                seen.insert(target, (index, m.effect));
            }
            Some(&(first, effect)) if effect == m.effect => {
                problems.push(Problem::other(
                    origin,
                    index,
                    format!("repeats mappings[{first}] ({m})"),
                ));
            }
            Some(&(first, _)) => {
                let (allow, deny) = match m.effect {
                    Effect::Allow => (index, first),
                    Effect::Deny => (first, index),
                };
                let mut p = Problem::other(
                    origin,
                    index,
                    format!(
                        "mappings[{allow}] allows and mappings[{deny}] denies the same {} {}: the Deny always wins, remove one",
                        m.scopes,
                        m.resource_arn()
                    ),
                );
                p.field = Some("effect".to_owned());
                p.value = Some(m.effect.to_string());
                problems.push(p);
            }
        }
    }
    problems
}

/// Rewrites `mappings[i]` in `text` to `mappings[indices[i]]`: entries' places in the file
/// when some before them were refused.
fn renumber(text: &str, indices: &[usize]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("mappings[") {
        let (before, after) = rest.split_at(at + "mappings[".len());
        out.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|i| indices.get(i))
        {
            Some(i) => out.push_str(&i.to_string()),
            None => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// What an entry grants or denies, without the effect.
#[derive(PartialEq, Eq, Hash)]
struct Target<'a> {
    api: &'a str,
    stage: &'a str,
    method: super::entry::Method,
    resource: &'a str,
    scopes: &'a super::requirement::Requirement,
}

impl<'a> Target<'a> {
    fn of(m: &'a Mapping) -> Target<'a> {
        Target {
            api: m.api.as_str(),
            stage: m.stage.as_str(),
            method: m.method,
            resource: m.resource.as_str(),
            scopes: &m.scopes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::snapshot::Snapshot;
    use crate::policy::{method_arn, MethodArn};

    const SEED: &[u8] = include_bytes!("../../seed-data/mappings.json");
    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    fn decide(s: &Snapshot, scopes: &[&str], arn: &str) -> Effect {
        let r = MethodArn::parse(arn).unwrap();
        s.policy_for(scopes.iter().copied(), r.api(), r.stage())
            .evaluate(arn)
    }

    #[test]
    fn seed_data_parses() {
        let mappings = parse(SEED, "seed-data/mappings.json").unwrap();
        assert!(
            mappings.len() > 10 && mappings.len() <= 40,
            "{}",
            mappings.len()
        );
        assert!(mappings.iter().any(|m| m.effect == Effect::Deny));
        assert!(mappings.iter().any(|m| m.resource.is_root()));
        // Canonical serialization parses back to the same entries.
        let json = serde_json::to_vec(&mappings).unwrap();
        assert_eq!(parse(&json, "round trip").unwrap(), mappings);
    }

    #[test]
    fn the_blog_post_example_still_works() {
        let s = Snapshot::new(1, parse(SEED, "seed").unwrap());
        let arn = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2/dev/GET/my-resource";
        assert_eq!(decide(&s, &["email"], arn), Effect::Allow);
        assert_eq!(decide(&s, &["openid", "email"], arn), Effect::Allow);
        assert_eq!(decide(&s, &["openid", "profile"], arn), Effect::Deny);
        assert_eq!(decide(&s, &[], arn), Effect::Deny);
        let post = "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2/dev/POST/my-resource";
        assert_eq!(decide(&s, &["email"], post), Effect::Deny);
    }

    #[test]
    fn the_seed_story_holds() {
        let s = Snapshot::new(1, parse(SEED, "seed").unwrap());
        let orders = |stage: &str, method: &str, path: &str| method_arn(API, stage, method, path);
        let inventory = |stage: &str, method: &str, path: &str| {
            method_arn(
                "arn:aws:execute-api:us-east-1:123456789012:f6g7h8i9j0",
                stage,
                method,
                path,
            )
        };
        let read = ["openid", "orders:read"];
        assert_eq!(
            decide(&s, &read, &orders("dev", "GET", "orders/7")),
            Effect::Allow
        );
        assert_eq!(
            decide(&s, &read, &orders("prod", "GET", "orders")),
            Effect::Allow
        );
        assert_eq!(
            decide(&s, &read, &orders("dev", "DELETE", "orders/7")),
            Effect::Deny
        );

        let write = ["orders:read", "orders:write"];
        assert_eq!(
            decide(&s, &write, &orders("dev", "DELETE", "orders/7")),
            Effect::Allow
        );
        assert_eq!(
            decide(&s, &write, &orders("prod", "DELETE", "orders/7")),
            Effect::Deny
        );
        assert_eq!(
            decide(&s, &write, &orders("prod", "POST", "orders/7/cancel")),
            Effect::Allow
        );

        let readonly = ["readonly"];
        assert_eq!(
            decide(&s, &readonly, &inventory("prod", "GET", "items/42")),
            Effect::Allow
        );
        assert_eq!(
            decide(&s, &readonly, &inventory("prod", "PUT", "items/42/stock")),
            Effect::Deny
        );

        let payment = orders("prod", "GET", "orders/7/payment");
        assert_eq!(
            decide(&s, &readonly, &orders("prod", "GET", "orders/7")),
            Effect::Allow
        );
        assert_eq!(decide(&s, &readonly, &payment), Effect::Deny);
        assert_eq!(decide(&s, &readonly, &format!("{payment}/")), Effect::Deny);
        assert_eq!(decide(&s, &["orders:read"], &payment), Effect::Allow);

        let audit = ["orders:audit"];
        assert_eq!(
            decide(&s, &audit, &orders("prod", "GET", "orders/7/history")),
            Effect::Allow
        );
        assert_eq!(
            decide(&s, &audit, &orders("dev", "GET", "orders/7/history")),
            Effect::Deny
        );

        let admin = ["admin"];
        assert_eq!(
            decide(&s, &admin, &orders("dev", "PATCH", "anything")),
            Effect::Allow
        );
        assert_eq!(
            decide(&s, &admin, &orders("prod", "PATCH", "anything")),
            Effect::Deny
        );
        let back_office = "arn:aws:execute-api:us-east-1:123456789012:k1l2m3n4o5";
        assert_eq!(
            decide(
                &s,
                &admin,
                &method_arn(back_office, "prod", "POST", "users")
            ),
            Effect::Allow
        );
        let health = method_arn(back_office, "prod", "GET", "health");
        assert_eq!(decide(&s, &["monitoring"], &health), Effect::Allow);
    }

    #[test]
    fn snapshot_document_shape() {
        let doc = format!(
            r#"{{"version": 12, "generated_at": "2024-05-01T00:00:00Z", "mappings": [
                {{"api":"{API}","stage":"dev","method":"GET","resource":"orders","scope":"orders:read"}}
            ]}}"#
        );
        let d = parse_document(doc.as_bytes(), "s3://bucket/key").unwrap();
        assert_eq!(d.version, Some(12));
        assert_eq!(d.mappings.len(), 1);
        let back = serde_json::to_vec(&d).unwrap();
        assert_eq!(parse_document(&back, "again").unwrap(), d);
        assert!(parse(br#"{"mappings": []}"#, "x").unwrap().is_empty());
        assert!(parse(b" [] ", "x").unwrap().is_empty());
    }

    fn err(json: &str) -> String {
        parse(json.as_bytes(), "m.json").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_entry_and_field() {
        let good =
            format!(r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"a","scope":"s"}}"#);
        let e = err(&format!(
            r#"[{good}, {{"api":"{API}","stage":"dev","method":"GET","resource":"orders/{{id}}/*","scope":"s"}}]"#
        ));
        assert!(
            e.starts_with("m.json: mappings[1]: field \"resource\""),
            "{e}"
        );
        assert!(e.contains("orders/{id}/*"), "{e}");

        let e = err(&format!(
            r#"[{good}, {{"api":"{API}","stage":"dev","verb":"GET"}}]"#
        ));
        assert!(
            e.starts_with("m.json: mappings[1]: unknown field `verb`"),
            "{e}"
        );

        let e = err(&format!(r#"[{{"api":"{API}","stage":3}}]"#));
        assert!(e.starts_with("m.json: mappings[0]: invalid type"), "{e}");

        let e = err(r#"{"version": 1, "entries": []}"#);
        assert!(e.starts_with("m.json: expected a JSON array"), "{e}");
        assert!(e.contains("unknown field `entries`"), "{e}");

        let e = err("[");
        assert!(e.starts_with("m.json: expected a JSON array"), "{e}");
        assert!(err("\"x\"").starts_with("m.json: expected"));
    }

    #[test]
    fn duplicates_and_conflicts_are_refused_with_both_indices() {
        let entry = |effect: &str, resource: &str| {
            format!(
                r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"{resource}","scope":"s","effect":"{effect}"}}"#
            )
        };
        let seed_form = format!(
            r#"{{"arn":"{API}","stage":"dev","httpVerb":"get","resource":"/a/","scope":"s"}}"#
        );
        let e = err(&format!(
            "[{}, {}, {seed_form}]",
            entry("Allow", "a"),
            entry("Allow", "b")
        ));
        assert!(e.contains("mappings[2]: repeats mappings[0]"), "{e}");

        let e = err(&format!(
            "[{}, {}, {}]",
            entry("Deny", "a"),
            entry("Allow", "b"),
            entry("Allow", "a")
        ));
        assert!(
            e.contains("mappings[2] allows and mappings[0] denies"),
            "{e}"
        );
        assert!(e.contains("dev/GET/a"), "{e}");
    }

    #[test]
    fn load_reads_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        std::fs::write(&path, SEED).unwrap();
        assert_eq!(load(&path).unwrap(), parse(SEED, "seed").unwrap());
        let missing = dir.path().join("missing.json");
        let e = load(&missing).unwrap_err();
        assert!(matches!(e, FileError::Read { .. }));
        assert!(e.to_string().contains("missing.json"), "{e}");
        std::fs::write(&path, b"[{\"scope\": \"s\"}]").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: mappings[0]", path.display())),
            "{e}"
        );
    }
}
