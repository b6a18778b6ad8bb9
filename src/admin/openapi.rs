//! OpenAPI 3.0/3.1 and Swagger 2.0 documents read for the OAuth scopes each operation
//! requires, so that mappings can be drafted from the API's own description instead of by hand.
//!
//! The document is walked by hand as a generic value (a `yaml_serde::Value`, whose mappings
//! keep document order, for JSON and YAML alike) rather than through a full schema: only
//! `paths`, the security schemes and the security requirements matter here, and everything
//! else may be as loose as real-world exports are. What cannot be expressed as scopes is not
//! guessed at: it becomes a [`Note`] and [`Security::Unmapped`] or [`Security::None`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use yaml_serde::{Mapping, Value};

/// Documents over this many bytes are refused before parsing: a mapping source has no reason
/// to be larger, and parsing is the expensive part.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// More operations than this are refused: far beyond any API Gateway API, and a bound on the
/// notes and mappings a single document can produce.
pub const MAX_OPERATIONS: usize = 10_000;

/// Document content quoted in an error or a note is cut to this many characters, so that a
/// hostile or broken document cannot flood a terminal or a log line.
const CLIP: usize = 60;

/// A document read: its version, for the caller's information, and what each operation
/// requires, in document order, so that a caller can turn operations into mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenApi {
    /// The `openapi` or `swagger` version as written ("3.0.3", "2.0"), to show which rules
    /// the document was read under.
    pub version: String,
    /// Swagger 2.0 `basePath`, or the path of OpenAPI 3's first `servers` URL: not
    /// prepended to the paths (API Gateway's import ignores it by default, and its exports
    /// put the stage there, which mapping paths do not hold), but kept so the caller can say
    /// so.
    pub base_path: Option<String>,
    /// Whether the document says it describes an HTTP API: API Gateway's HTTP API exports
    /// carry `x-amazon-apigateway-importexport-version`, and only HTTP APIs have a
    /// `$default` route.
    pub http_api: bool,
    /// Every routable operation, paths in document order and methods in document order within
    /// a path: a stable order makes the output diffable.
    pub operations: Vec<Operation>,
    /// What was skipped, dropped or cannot be checked, per operation: the caller must show
    /// these, since they are where the mapping differs from the document.
    pub notes: Vec<Note>,
}

/// One method on one path, and the scopes it requires: the unit a mapping entry is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Upper-case HTTP method, or "ANY" for `x-amazon-apigateway-any-method`, as API Gateway
    /// names methods in a methodArn.
    pub method: String,
    /// The path as written (`/orders/{id}`, `/files/{proxy+}`), without `basePath`.
    pub path: String,
    /// The `operationId`, if any, so that the caller can show a name people know.
    pub operation_id: Option<String>,
    /// What the operation requires.
    pub security: Security,
}

/// What an operation requires, in the terms scopegate can check: scopes, or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// `security: []` or an empty requirement object: no authorization, so nothing to map.
    Public,
    /// No security requirement anywhere: the document does not say, so nothing is mapped.
    None,
    /// Requirements existed but none could be expressed as OAuth scopes (API keys, HTTP
    /// auth, ...): scopegate cannot check them, so the operation needs mapping by hand.
    Unmapped,
    /// Alternatives, any one of which suffices; each inner `Vec` is a sorted, deduplicated
    /// set of scopes that are all required, and an empty one means any verified token. The
    /// outer `Vec` is sorted and deduplicated too, so equal documents give equal values.
    Scopes(Vec<Vec<String>>),
}

/// Something the caller should tell the operator about one operation: where the mapping
/// cannot follow the document exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Upper-case method, as in [`Operation::method`] ("TRACE" for a skipped trace).
    pub method: String,
    /// The path as written.
    pub path: String,
    /// What happened and why.
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.method, self.path, self.message)
    }
}

/// A document that cannot be read: each message names where (a JSON-pointer-ish location
/// such as `paths./orders/{id}.get.security[1]`) and why, and quotes at most a few short
/// pieces of the document, so that it can be fixed without opening a debugger.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// The document is over [`MAX_DOCUMENT_BYTES`].
    #[error("the document is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The text is neither JSON nor YAML.
    #[error("the document does not parse as {format}: {reason}")]
    Parse {
        /// "JSON" or "YAML": what it was read as.
        format: &'static str,
        /// The parser's message, cut short.
        reason: String,
    },
    /// Not OpenAPI 3.0.x/3.1.x nor Swagger 2.0: other versions have other rules.
    #[error("`{field}: {found}` is not supported: scopegate reads OpenAPI 3.0.x and 3.1.x and Swagger 2.0")]
    Version {
        /// `openapi` or `swagger`.
        field: &'static str,
        /// The version found.
        found: String,
    },
    /// A part of the document that is missing, of the wrong type, or not supported.
    #[error("`{at}`: {reason}")]
    Invalid {
        /// Where.
        at: String,
        /// Why.
        reason: String,
    },
    /// A security requirement names a scheme the document does not define.
    #[error(
        "`{at}` (for {operation}): security scheme `{scheme}` is not defined in `{defined_in}`"
    )]
    UndefinedScheme {
        /// The requirement's location.
        at: String,
        /// The operation it applies to ("GET /orders/{id}").
        operation: String,
        /// The scheme named.
        scheme: String,
        /// `components.securitySchemes` or `securityDefinitions`.
        defined_in: &'static str,
    },
    /// More than [`MAX_OPERATIONS`] operations.
    #[error("the document has more than {limit} operations")]
    TooManyOperations {
        /// The limit.
        limit: usize,
    },
}

/// Reads an OpenAPI 3.0.x/3.1.x or Swagger 2.0 document (JSON or YAML) and says, for each
/// operation, which OAuth scopes it requires, so that the caller can propose mappings.
///
/// # Errors
/// [`OpenApiError`] for a document that is too large, does not parse, has another version,
/// names an undefined security scheme, or is malformed where it matters here.
pub fn read(text: &str) -> Result<OpenApi, OpenApiError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(OpenApiError::TooLarge {
            size: text.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let doc = parse(text)?;
    let root = map(&doc, "(document)")?;
    let (version, v3) = version(root)?;
    let base_path = match root.get("basePath") {
        Some(b) if !v3 => Some(string(b, "basePath")?.to_owned()),
        _ if v3 => server_path(root),
        _ => None,
    };
    let http_api = root.contains_key("x-amazon-apigateway-importexport-version")
        || root
            .get("paths")
            .and_then(Value::as_mapping)
            .is_some_and(|p| p.contains_key(DEFAULT_ROUTE));
    let schemes = schemes(root, v3)?;
    let ctx = Ctx {
        schemes: &schemes,
        defined_in: if v3 {
            "components.securitySchemes"
        } else {
            "securityDefinitions"
        },
    };
    let (operations, notes) = operations(root, &ctx)?;
    Ok(OpenApi {
        version,
        base_path,
        http_api,
        operations,
        notes,
    })
}

/// The path of the first `servers` URL (`https://api.example.com/v1` gives `/v1`; a
/// relative `/v1` is itself), when it is more than `/`.
fn server_path(root: &Mapping) -> Option<String> {
    let url = root
        .get("servers")?
        .as_sequence()?
        .first()?
        .get("url")?
        .as_str()?;
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    (!path.trim_end_matches('/').is_empty()).then(|| path.to_owned())
}

/// JSON through serde_json (full JSON, surrogate escapes included) into an order-keeping
/// value; everything else, and JSON that serde_json refuses, through yaml_serde.
fn parse(text: &str) -> Result<Value, OpenApiError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let yaml = |text: &str| {
        let mut v: Value = yaml_serde::from_str(text)?;
        v.apply_merge()?;
        Ok::<_, yaml_serde::Error>(v)
    };
    let fail = |format, e: &dyn fmt::Display| OpenApiError::Parse {
        format,
        reason: clip_to(&e.to_string(), 200),
    };
    if text.trim_start().starts_with('{') {
        serde_json::from_str::<Value>(text)
            .or_else(|json| yaml(text).map_err(|_| fail("JSON", &json)))
    } else {
        yaml(text).map_err(|e| fail("YAML", &e))
    }
}

fn version(root: &Mapping) -> Result<(String, bool), OpenApiError> {
    let (field, v) = match (root.get("openapi"), root.get("swagger")) {
        (Some(v), _) => ("openapi", v),
        (None, Some(v)) => ("swagger", v),
        (None, None) => return Err(invalid("(document)", "no `openapi` or `swagger` field")),
    };
    let found = match v {
        Value::String(s) => s.clone(),
        // An unquoted `swagger: 2.0` in YAML is a number.
        Value::Number(n) if n.is_f64() => format!("{:?}", n.as_f64().unwrap_or_default()),
        Value::Number(n) => n.to_string(),
        other => return Err(expected(field, "a string", other)),
    };
    let family = |f: &str| found == f || found.starts_with(&format!("{f}."));
    match field {
        "openapi" if family("3.0") || family("3.1") => Ok((found, true)),
        "swagger" if found == "2.0" => Ok((found, false)),
        _ => Err(OpenApiError::Version {
            field,
            found: clip(&found),
        }),
    }
}

/// A security scheme, reduced to what matters: does it carry OAuth scopes.
struct Scheme {
    oauth: bool,
    kind: String,
}

struct Ctx<'a> {
    schemes: &'a BTreeMap<String, Scheme>,
    defined_in: &'static str,
}

/// The security schemes a document defines: `components.securitySchemes` in 3.x,
/// `securityDefinitions` in 2.0. A 3.x document may also carry 2.0's `securityDefinitions`
/// (some API Gateway examples do, and API Gateway imports them): its schemes count where
/// `components` does not define the name.
fn schemes(root: &Mapping, v3: bool) -> Result<BTreeMap<String, Scheme>, OpenApiError> {
    let swagger = root.get("securityDefinitions");
    if !v3 {
        return defined(swagger, "securityDefinitions", "#/securityDefinitions/");
    }
    let components = match root.get("components") {
        Some(c) => map(c, "components")?.get("securitySchemes"),
        None => None,
    };
    let mut out = defined(
        components,
        "components.securitySchemes",
        "#/components/securitySchemes/",
    )?;
    for (name, scheme) in defined(swagger, "securityDefinitions", "#/securityDefinitions/")? {
        out.entry(name).or_insert(scheme);
    }
    Ok(out)
}

/// The schemes of one definitions map (`defs`, at `at`; `$ref`s within it start `prefix`).
fn defined(
    defs: Option<&Value>,
    at: &str,
    prefix: &str,
) -> Result<BTreeMap<String, Scheme>, OpenApiError> {
    let mut out = BTreeMap::new();
    let Some(defs) = defs else {
        return Ok(out);
    };
    let defs = map(defs, at)?;
    for name in defs.keys() {
        let name = key(name, at)?;
        let mut seen = vec![name.to_owned()];
        let mut current = name.to_owned();
        let scheme = loop {
            let here = format!("{at}.{}", clip(&current));
            let body = defs.get(current.as_str()).unwrap_or(&Value::Null);
            let body = map(body, &here)?;
            if let Some(r) = body.get("$ref") {
                let here = format!("{here}.$ref");
                let r = string(r, &here)?;
                let Some(target) = r.strip_prefix(prefix) else {
                    let why = format!("only `{prefix}<name>` is followed, not `{}`", clip(r));
                    return Err(invalid(&here, why));
                };
                let target = target.replace("~1", "/").replace("~0", "~");
                if seen.contains(&target) {
                    let why = format!("reference cycle through `{}`", clip(&target));
                    return Err(invalid(&here, why));
                }
                if !defs.contains_key(target.as_str()) {
                    let why = format!("refers to `{}`, which is not defined", clip(&target));
                    return Err(invalid(&here, why));
                }
                seen.push(target.clone());
                current = target;
                continue;
            }
            let Some(ty) = body.get("type") else {
                return Err(invalid(&here, "no `type`"));
            };
            let ty = string(ty, &format!("{here}.type"))?;
            // API Gateway writes its Cognito user pool authorizer as an apiKey scheme with
            // `x-amazon-apigateway-authtype: cognito_user_pools`; the scopes it lists are
            // OAuth scopes of the pool's access tokens, so they count.
            let cognito = body
                .get("x-amazon-apigateway-authtype")
                .and_then(|v| v.as_str())
                .is_some_and(|t| t.eq_ignore_ascii_case("cognito_user_pools"));
            let oauth = match ty {
                "oauth2" | "openIdConnect" => true,
                "apiKey" if cognito => true,
                "apiKey" | "http" | "mutualTLS" | "basic" => false,
                other => {
                    let why = format!("unknown security scheme type `{}`", clip(other));
                    return Err(invalid(&format!("{here}.type"), why));
                }
            };
            break Scheme {
                oauth,
                kind: ty.to_owned(),
            };
        };
        out.insert(name.to_owned(), scheme);
    }
    Ok(out)
}

/// Path item keys that are operations, and the method API Gateway calls them.
const METHODS: [(&str, &str); 8] = [
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
    ("x-amazon-apigateway-any-method", "ANY"),
];

/// The path key an HTTP API export gives its `$default` route: the catch-all for every
/// request no other route matches.
pub const DEFAULT_ROUTE: &str = "$default";

/// The scheme name AWS SAM writes in `security` for a method that has no authorizer
/// (`Auth: {Authorizer: NONE}`), without defining it: a public method.
const SAM_NONE: &str = "NONE";

const NO_SECURITY: &str =
    "no security requirement: held for nobody; add security or map it by hand to grant it";

fn operations(root: &Mapping, ctx: &Ctx) -> Result<(Vec<Operation>, Vec<Note>), OpenApiError> {
    let (mut operations, mut notes) = (Vec::new(), Vec::new());
    let empty = Mapping::new();
    let paths = match root.get("paths") {
        None | Some(Value::Null) => &empty,
        Some(p) => map(p, "paths")?,
    };
    let note = |method: &str, path: &str, message: String| Note {
        method: method.to_owned(),
        path: path.to_owned(),
        message,
    };
    for (path, item) in paths {
        let path = key(path, "paths")?;
        if path.starts_with("x-") {
            continue;
        }
        let at = format!("paths.{}", clip(path));
        if !path.starts_with('/') && path != DEFAULT_ROUTE {
            return Err(invalid(&at, "a path must begin with `/`"));
        }
        let item = match item {
            Value::Null => &empty,
            v => map(v, &at)?,
        };
        for (k, op) in item {
            let k = key(k, &at)?;
            if k == "$ref" {
                let target = op.as_str().map(clip).unwrap_or_default();
                let why = format!("a path-level `$ref` (`{target}`) is not supported");
                return Err(invalid(&format!("{at}.$ref"), why));
            }
            if k == "trace" {
                let why = "API Gateway does not route TRACE: skipped".to_owned();
                notes.push(note("TRACE", path, why));
                continue;
            }
            let Some(&(_, method)) = METHODS.iter().find(|(m, _)| *m == k) else {
                if METHODS.iter().any(|(m, _)| m.eq_ignore_ascii_case(k)) {
                    let why = format!(
                        "`{k}` is not lower-case, and OpenAPI keys are case-sensitive: skipped"
                    );
                    notes.push(note(&k.to_ascii_uppercase(), path, why));
                }
                continue;
            };
            let op_at = format!("{at}.{k}");
            let op = map(op, &op_at)?;
            if operations.len() >= MAX_OPERATIONS {
                return Err(OpenApiError::TooManyOperations {
                    limit: MAX_OPERATIONS,
                });
            }
            let operation = format!("{method} {}", clip(path));
            let mut messages = Vec::new();
            let found = match (op.get("security"), root.get("security")) {
                (Some(list), _) => Some((list, format!("{op_at}.security"), "security")),
                (None, Some(list)) => Some((list, "security".to_owned(), "root security")),
                (None, None) => None,
            };
            let security = match found {
                Some((list, at, label)) => {
                    requirements(list, &at, label, &operation, ctx, &mut messages)?
                }
                None => {
                    messages.push(NO_SECURITY.to_owned());
                    Security::None
                }
            };
            notes.extend(messages.into_iter().map(|m| note(method, path, m)));
            let operation_id = op.get("operationId").and_then(Value::as_str);
            operations.push(Operation {
                method: method.to_owned(),
                path: path.to_owned(),
                operation_id: operation_id.map(str::to_owned),
                security,
            });
        }
    }
    Ok((operations, notes))
}

/// One `security` list, for one operation: `at` locates it for errors, `label` names it in
/// notes ("security" or "root security"), `operation` is "GET /path".
fn requirements(
    list: &Value,
    at: &str,
    label: &str,
    operation: &str,
    ctx: &Ctx,
    notes: &mut Vec<String>,
) -> Result<Security, OpenApiError> {
    let Value::Sequence(list) = list else {
        return Err(expected(at, "a list of security requirements", list));
    };
    if list.is_empty() {
        return Ok(Security::Public);
    }
    let mut alternatives = BTreeSet::new();
    let mut public = None;
    for (i, req) in list.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let req = map(req, &at)?;
        // SAM's `NONE`, when the document does not define a scheme of that name, is no
        // authorization: the requirement object is empty.
        let sam_none =
            |name: &Value| name.as_str() == Some(SAM_NONE) && !ctx.schemes.contains_key(SAM_NONE);
        if req.keys().all(sam_none) {
            let what = if req.is_empty() {
                "an empty requirement object"
            } else {
                "SAM's `NONE` (no authorizer)"
            };
            public.get_or_insert(format!("{label}[{i}] is {what}: no authorization is an alternative, so the operation is public"));
            continue;
        }
        let (mut scopes, mut oauth, mut others) = (BTreeSet::new(), false, Vec::new());
        for (name, listed) in req {
            if sam_none(name) {
                continue;
            }
            let name = key(name, &at)?;
            let Some(scheme) = ctx.schemes.get(name) else {
                return Err(OpenApiError::UndefinedScheme {
                    at: at.clone(),
                    operation: operation.to_owned(),
                    scheme: clip(name),
                    defined_in: ctx.defined_in,
                });
            };
            let at = format!("{at}.{}", clip(name));
            let Value::Sequence(listed) = listed else {
                return Err(expected(&at, "a list of scopes", listed));
            };
            let mut names = Vec::new();
            for (j, s) in listed.iter().enumerate() {
                let at = format!("{at}[{j}]");
                let s = string(s, &at)?;
                if scheme.oauth && !is_scope_token(s) {
                    let why = format!("`{}` is not an OAuth scope (RFC 6749 3.3)", clip(s));
                    return Err(invalid(&at, why));
                }
                names.push(s);
            }
            if scheme.oauth {
                oauth = true;
                scopes.extend(names.into_iter().map(str::to_owned));
            } else {
                let mut text = format!("`{}` ({})", clip(name), scheme.kind);
                if !names.is_empty() {
                    text.push_str(&format!(" listing `{}`", clip(&names.join(" "))));
                }
                others.push(text);
            }
        }
        let others = others.join(", ");
        if !oauth {
            notes.push(format!("{label}[{i}] names only {others}, which scopegate cannot check as OAuth scopes: this alternative is dropped"));
            continue;
        }
        if !others.is_empty() {
            // Another scheme must hold as well as the OAuth scopes (an API key, HTTP auth,
            // another authorizer, roles): an entry of the scopes alone would grant more than
            // the document says, so the alternative goes.
            notes.push(format!("{label}[{i}]: {others} must hold as well as the OAuth scopes, and scopegate cannot check it: this alternative is dropped (fail closed)"));
            continue;
        }
        alternatives.insert(scopes.into_iter().collect::<Vec<_>>());
    }
    if let Some(why) = public {
        notes.clear();
        notes.push(why);
        return Ok(Security::Public);
    }
    if alternatives.is_empty() {
        notes.push(format!("no alternative of {label} can be expressed as OAuth scopes alone: held for nobody; map it by hand to grant it"));
        return Ok(Security::Unmapped);
    }
    Ok(Security::Scopes(alternatives.into_iter().collect()))
}

/// RFC 6749 3.3 `scope-token`: what a token's `scope` can carry, so what a mapping can name.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn map<'a>(v: &'a Value, at: &str) -> Result<&'a Mapping, OpenApiError> {
    v.as_mapping().ok_or_else(|| expected(at, "a mapping", v))
}

fn string<'a>(v: &'a Value, at: &str) -> Result<&'a str, OpenApiError> {
    v.as_str().ok_or_else(|| expected(at, "a string", v))
}

fn expected(at: &str, what: &str, v: &Value) -> OpenApiError {
    invalid(at, format!("expected {what}, found {}", kind(v)))
}

fn key<'a>(k: &'a Value, at: &str) -> Result<&'a str, OpenApiError> {
    string(k, at).map_err(|_| invalid(at, format!("a key is {}, not a string", kind(k))))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn invalid(at: &str, reason: impl Into<String>) -> OpenApiError {
    OpenApiError::Invalid {
        at: at.to_owned(),
        reason: reason.into(),
    }
}

/// A path from a document as it may reach a terminal: control characters escaped, then
/// clipped.
pub(crate) fn clip_path(s: &str) -> String {
    clip(&s.escape_debug().to_string())
}

fn clip(s: &str) -> String {
    clip_to(s, CLIP)
}

fn clip_to(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMES: &str = "components: {securitySchemes: {idp: {type: oauth2}, other: {type: oauth2}, oidc: {type: openIdConnect}, key: {type: apiKey}, basic: {type: http}}}";

    fn scopes(alternatives: &[&[&str]]) -> Security {
        let v = alternatives.iter().map(|a| a.iter().map(|s| s.to_string()));
        Security::Scopes(v.map(Iterator::collect).collect())
    }

    fn notes(doc: &OpenApi) -> Vec<String> {
        doc.notes.iter().map(ToString::to_string).collect()
    }

    /// `GET /x` in OpenAPI 3.0.3 YAML, under root `security: <root>` and with its own
    /// `security: <op>`, each left out when empty: its security and the notes.
    fn one(root: &str, op: &str) -> (Security, Vec<String>) {
        let field = |s: &str| match s {
            "" => String::new(),
            s => format!("security: {s}"),
        };
        let (root, op) = (field(root), field(op));
        let doc = read(&format!(
            "openapi: 3.0.3\n{SCHEMES}\n{root}\npaths:\n  /x:\n    get: {{{op}}}\n"
        ));
        let doc = doc.unwrap();
        assert_eq!(doc.operations.len(), 1);
        (doc.operations[0].security.clone(), notes(&doc))
    }

    fn listed(operations: &[Operation]) -> Vec<(&str, &str)> {
        operations
            .iter()
            .map(|o| (o.method.as_str(), o.path.as_str()))
            .collect()
    }

    fn read_err(text: &str) -> String {
        read(text).unwrap_err().to_string()
    }

    #[test]
    fn root_security_applies_unless_an_operation_overrides_it() {
        let doc = read(&format!(
            "openapi: 3.0.3\n{SCHEMES}\nsecurity:\n  - idp: [orders.read]\npaths:\n  /orders:\n    get:\n      operationId: listOrders\n    post:\n      security:\n        - idp: [orders.write, orders.read, orders.write]\n"
        ))
        .unwrap();
        assert_eq!((doc.version.as_str(), &doc.base_path), ("3.0.3", &None));
        assert_eq!(
            listed(&doc.operations),
            [("GET", "/orders"), ("POST", "/orders")]
        );
        let (get, post) = (&doc.operations[0], &doc.operations[1]);
        assert_eq!(get.operation_id.as_deref(), Some("listOrders"));
        assert_eq!(get.security, scopes(&[&["orders.read"]]));
        assert_eq!(post.operation_id, None);
        assert_eq!(post.security, scopes(&[&["orders.read", "orders.write"]]));
        assert!(doc.notes.is_empty(), "{:?}", doc.notes);
    }

    #[test]
    fn objects_are_alternatives_and_schemes_within_one_are_all_required() {
        let (security, notes) = one(
            "[{idp: [x]}]",
            "[{idp: [b, a], other: [c, a]}, {idp: [z]}, {other: [z]}, {idp: [a, b, c, d]}]",
        );
        // [z] twice is kept once; the superset [a b c d] is kept beside [a b c]; sorted.
        let expected = scopes(&[&["a", "b", "c"], &["a", "b", "c", "d"], &["z"]]);
        assert_eq!((security, notes), (expected, vec![]));
    }

    #[test]
    fn api_gateways_cognito_authorizer_counts_as_oauth() {
        let doc = read(
            "openapi: 3.0.1\ncomponents: {securitySchemes: {pool: {type: apiKey, name: Authorization, in: header, x-amazon-apigateway-authtype: cognito_user_pools}, lambda: {type: apiKey, name: Authorization, in: header, x-amazon-apigateway-authtype: custom}}}\npaths:\n  /a:\n    get: {security: [{pool: [orders/read]}]}\n    post: {security: [{lambda: []}]}\n",
        )
        .unwrap();
        assert_eq!(doc.operations[0].security, scopes(&[&["orders/read"]]));
        assert_eq!(doc.operations[1].security, Security::Unmapped);
    }

    #[test]
    fn open_id_connect_counts_as_oauth() {
        let expected = scopes(&[&["openid", "profile"]]);
        assert_eq!(one("", "[{oidc: [profile, openid]}]"), (expected, vec![]));
    }

    #[test]
    fn api_key_only_is_unmapped_with_notes() {
        let (security, notes) = one("", "[{key: []}, {basic: [admin], key: []}]");
        assert_eq!(security, Security::Unmapped);
        assert_eq!(notes, [
            "GET /x: security[0] names only `key` (apiKey), which scopegate cannot check as OAuth scopes: this alternative is dropped",
            "GET /x: security[1] names only `basic` (http) listing `admin`, `key` (apiKey), which scopegate cannot check as OAuth scopes: this alternative is dropped",
            "GET /x: no alternative of security can be expressed as OAuth scopes alone: held for nobody; map it by hand to grant it",
        ]);
    }

    /// Issue 20, class 2: an alternative mixing OAuth with another scheme was mapped to its
    /// OAuth scopes alone, granting more than the document says.
    #[test]
    fn oauth_mixed_with_api_key_drops_the_alternative() {
        let (security, notes) = one("[{key: []}]", "[{key: []}, {idp: [w], key: []}]");
        assert_eq!(security, Security::Unmapped);
        assert_eq!(notes, [
            "GET /x: security[0] names only `key` (apiKey), which scopegate cannot check as OAuth scopes: this alternative is dropped",
            "GET /x: security[1]: `key` (apiKey) must hold as well as the OAuth scopes, and scopegate cannot check it: this alternative is dropped (fail closed)",
            "GET /x: no alternative of security can be expressed as OAuth scopes alone: held for nobody; map it by hand to grant it",
        ]);
        let (security, _) = one("", "[{idp: [w], key: []}, {idp: [r]}]");
        assert_eq!(security, scopes(&[&["r"]]));
    }

    /// SAM writes `NONE`, undefined, for a method without an authorizer: public, not an
    /// undefined scheme.
    #[test]
    fn sams_none_is_public_unless_the_document_defines_it() {
        assert_eq!(
            one("", "[{NONE: []}]"),
            (Security::Public, vec!["GET /x: security[0] is SAM's `NONE` (no authorizer): no authorization is an alternative, so the operation is public".to_owned()])
        );
        assert_eq!(one("[{NONE: []}]", "").0, Security::Public);
        let err = read("openapi: 3.0.1\ncomponents: {securitySchemes: {idp: {type: oauth2}}}\npaths:\n  /a:\n    get: {security: [{None: []}]}\n").unwrap_err();
        assert!(err.to_string().contains("`None` is not defined"), "{err}");
    }

    #[test]
    fn roles_of_another_scheme_beside_oauth_drop_the_alternative() {
        let (security, notes) = one(
            "",
            "[{idp: [users:read], basic: [users:admin]}, {idp: [root]}]",
        );
        assert_eq!(security, scopes(&[&["root"]]));
        assert_eq!(notes, [
            "GET /x: security[0]: `basic` (http) listing `users:admin` must hold as well as the OAuth scopes, and scopegate cannot check it: this alternative is dropped (fail closed)",
        ]);
    }

    #[test]
    fn empty_security_is_public_on_an_operation_or_inherited() {
        assert_eq!(one("[]", ""), (Security::Public, vec![]));
        assert_eq!(one("[{idp: [x]}]", "[]"), (Security::Public, vec![]));
        assert_eq!(one("[]", "[{idp: [x]}]").0, scopes(&[&["x"]]));
    }

    #[test]
    fn an_empty_requirement_object_makes_the_operation_public() {
        let public = |at: &str| {
            let why = "is an empty requirement object: no authorization is an alternative, so the operation is public";
            (Security::Public, vec![format!("GET /x: {at} {why}")])
        };
        assert_eq!(one("[{idp: [x]}, {}]", ""), public("root security[1]"));
        // Its note replaces the others': nothing is dropped from a public operation.
        assert_eq!(one("", "[{key: []}, {}]"), public("security[1]"));
    }

    #[test]
    fn an_oauth_scheme_without_scopes_means_any_verified_token() {
        assert_eq!(one("", "[{idp: []}]").0, Security::Scopes(vec![vec![]]));
        assert_eq!(one("", "[{idp: [], other: [s]}]").0, scopes(&[&["s"]]));
        assert_eq!(one("", "[{idp: []}, {idp: [s]}]").0, scopes(&[&[], &["s"]]));
    }

    #[test]
    fn an_undefined_scheme_is_an_error_naming_it_and_the_operation() {
        let e = read_err(&format!("openapi: 3.0.3\n{SCHEMES}\npaths:\n  /u/{{id}}:\n    delete:\n      security: [{{idp: [x]}}, {{nope: [x]}}]\n"));
        assert_eq!(e, "`paths./u/{id}.delete.security[1]` (for DELETE /u/{id}): security scheme `nope` is not defined in `components.securitySchemes`");
        let e = read_err(&format!(
            "openapi: 3.0.3\n{SCHEMES}\nsecurity: [{{ghost: []}}]\npaths: {{/r: {{get: {{}}}}}}\n"
        ));
        assert!(
            e.starts_with("`security[0]` (for GET /r): security scheme `ghost`"),
            "{e}"
        );
    }

    #[test]
    fn swagger_2_json_with_security_definitions_and_base_path() {
        let doc = read(
            r#"{"swagger": "2.0", "basePath": "/prod",
                "securityDefinitions": {
                    "auth": {"type": "oauth2", "flow": "application", "tokenUrl": "https://idp/token", "scopes": {"pets.read": ""}},
                    "basic": {"type": "basic"}},
                "security": [{"auth": ["pets.read"]}],
                "paths": {"/pets": {"get": {"operationId": "listPets"}, "post": {"security": [{"basic": []}]}}}}"#,
        )
        .unwrap();
        assert_eq!(
            (doc.version.as_str(), doc.base_path.as_deref()),
            ("2.0", Some("/prod"))
        );
        // basePath is not prepended.
        assert_eq!(
            listed(&doc.operations),
            [("GET", "/pets"), ("POST", "/pets")]
        );
        assert_eq!(doc.operations[0].security, scopes(&[&["pets.read"]]));
        assert_eq!(doc.operations[1].security, Security::Unmapped);
        assert!(notes(&doc)[0].starts_with("POST /pets: security[0] names only `basic` (basic)"));
        // An unquoted YAML `swagger: 2.0` is a number, and still Swagger 2.0.
        assert_eq!(read("swagger: 2.0\npaths: {}\n").unwrap().version, "2.0");
        let e =
            read_err(r#"{"swagger": "2.0", "paths": {"/p": {"get": {"security": [{"x": []}]}}}}"#);
        assert!(
            e.ends_with("security scheme `x` is not defined in `securityDefinitions`"),
            "{e}"
        );
    }

    #[test]
    fn openapi_3_1_json_with_a_scheme_ref() {
        let doc = read(
            r##"{"openapi": "3.1.0",
                "components": {"securitySchemes": {
                    "alias": {"$ref": "#/components/securitySchemes/real"},
                    "real": {"type": "oauth2", "flows": {}},
                    "tls": {"type": "mutualTLS"}}},
                "paths": {"/x": {"get": {"security": [{"alias": ["a"]}, {"tls": []}]}}}}"##,
        )
        .unwrap();
        assert_eq!(doc.version, "3.1.0");
        assert_eq!(doc.operations[0].security, scopes(&[&["a"]]));
        assert!(notes(&doc)[0].contains("names only `tls` (mutualTLS)"));
        let cycle = r##"{"openapi": "3.1.0", "components": {"securitySchemes": {
            "a": {"$ref": "#/components/securitySchemes/b"},
            "b": {"$ref": "#/components/securitySchemes/a"}}}, "paths": {}}"##;
        assert_eq!(
            read_err(cycle),
            "`components.securitySchemes.b.$ref`: reference cycle through `a`"
        );
        let away = r##"{"openapi": "3.1.0", "components": {"securitySchemes": {"a": {"$ref": "other.yaml#/a"}}}}"##;
        assert!(read_err(away).contains("not `other.yaml#/a`"));
    }

    #[test]
    fn the_any_method_extension_is_any() {
        let doc = read(&format!(
            "openapi: 3.0.3\n{SCHEMES}\nsecurity: [{{idp: [p]}}]\npaths:\n  /{{proxy+}}:\n    parameters: []\n    x-amazon-apigateway-any-method:\n      operationId: proxy\n    x-amazon-apigateway-integration: {{}}\n"
        ))
        .unwrap();
        let expected = Operation {
            method: "ANY".into(),
            path: "/{proxy+}".into(),
            operation_id: Some("proxy".into()),
            security: scopes(&[&["p"]]),
        };
        assert_eq!(doc.operations, [expected]);
    }

    #[test]
    fn trace_and_upper_case_methods_are_skipped_with_a_note() {
        let doc = read("openapi: 3.0.3\nsecurity: []\npaths:\n  /t:\n    trace: {}\n    GET: {}\n    get: {}\n").unwrap();
        assert_eq!(listed(&doc.operations), [("GET", "/t")]);
        assert_eq!(
            notes(&doc),
            [
                "TRACE /t: API Gateway does not route TRACE: skipped",
                "GET /t: `GET` is not lower-case, and OpenAPI keys are case-sensitive: skipped",
            ]
        );
    }

    #[test]
    fn other_versions_and_broken_documents_are_refused() {
        assert_eq!(
            read_err("openapi: 4.0.0\npaths: {}\n"),
            "`openapi: 4.0.0` is not supported: scopegate reads OpenAPI 3.0.x and 3.1.x and Swagger 2.0"
        );
        assert!(read_err(r#"{"swagger": "1.2"}"#).starts_with("`swagger: 1.2` is not supported"));
        assert!(read_err("openapi: 3.10.0\n").starts_with("`openapi: 3.10.0` is not"));
        assert_eq!(
            read_err("info: {}\n"),
            "`(document)`: no `openapi` or `swagger` field"
        );
        assert!(read_err("- a\n").ends_with("expected a mapping, found a list"));
        assert!(read_err("{\"openapi\": ").starts_with("the document does not parse as JSON"));
        assert!(read_err("a: [").starts_with("the document does not parse as YAML"));
        // A repeated key is refused rather than one of the two silently winning.
        let twice = read_err(r#"{"openapi": "3.0.0", "paths": {"/a": {}, "/a": {}}}"#);
        assert!(
            twice.starts_with(
                "the document does not parse as JSON: duplicate entry with key \"/a\""
            ),
            "{twice}"
        );
    }

    #[test]
    fn no_security_anywhere_is_none_with_a_note() {
        let doc = read("openapi: '3.0.0'\npaths:\n  /free:\n    get: {}\n").unwrap();
        assert_eq!(doc.operations[0].security, Security::None);
        assert_eq!(notes(&doc), [format!("GET /free: {NO_SECURITY}")]);
    }

    #[test]
    fn a_document_over_the_limit_is_refused_before_parsing() {
        // Not a document at all: the size is checked first.
        let big = "x".repeat(MAX_DOCUMENT_BYTES + 1);
        let refused = read(&big);
        assert!(matches!(refused, Err(OpenApiError::TooLarge { size, .. }) if size == big.len()));
        let head = "openapi: 3.0.0\npaths: {}\n#";
        let at_limit = format!("{head}{}", "x".repeat(MAX_DOCUMENT_BYTES - head.len()));
        assert!(read(&at_limit).is_ok());
    }

    #[test]
    fn more_operations_than_the_limit_are_refused() {
        // The limit's worth of paths with a GET, and one of them with a POST too.
        let paths: String = (1..MAX_OPERATIONS)
            .map(|i| format!("  /p{i}: {{get: {{}}}}\n"))
            .collect();
        let doc =
            |more: &str| format!("openapi: 3.0.0\npaths:\n{paths}  /p0: {{get: {{}}{more}}}\n");
        assert_eq!(read(&doc("")).unwrap().operations.len(), MAX_OPERATIONS);
        let e = read_err(&doc(", post: {}"));
        assert_eq!(
            e,
            format!("the document has more than {MAX_OPERATIONS} operations")
        );
    }

    #[test]
    fn document_order_is_kept_for_json_and_yaml() {
        let names = ["/zebra", "/apple", "/mango", "/b/{id}", "/a"];
        let json: Vec<_> = names
            .iter()
            .map(|p| format!(r#""{p}": {{"post": {{}}, "get": {{}}}}"#))
            .collect();
        let json = format!(
            r#"{{"openapi": "3.0.1", "paths": {{{}}}}}"#,
            json.join(", ")
        );
        let yaml: String = names
            .iter()
            .map(|p| format!("  {p}: {{post: {{}}, get: {{}}}}\n"))
            .collect();
        let yaml = format!("openapi: 3.0.1\npaths:\n{yaml}");
        let expected: Vec<_> = names
            .iter()
            .flat_map(|p| [("POST", *p), ("GET", *p)])
            .collect();
        for text in [json, yaml] {
            assert_eq!(listed(&read(&text).unwrap().operations), expected);
        }
    }

    #[test]
    fn a_large_json_document_keeps_its_order_and_full_json() {
        // Megabytes, indented with tabs, with a surrogate pair (which YAML parsers refuse) and a BOM.
        let ops: Vec<_> = (0..5000).rev().map(|i| format!(
            "\t\"/p{i}\": {{\n\t\t\"get\": {{\"description\": \"\\ud83d\\ude00 {}\", \"security\": [{{\"idp\": [\"s{i}\"]}}]}}\n\t}}",
            "x".repeat(500)
        )).collect();
        let text = format!(
            "\u{feff}{{\"openapi\": \"3.0.0\", \"components\": {{\"securitySchemes\": {{\"idp\": {{\"type\": \"oauth2\"}}}}}},\n\"paths\": {{\n{}\n}}}}",
            ops.join(",\n")
        );
        assert!(text.len() > 2_500_000);
        let doc = read(&text).unwrap();
        assert_eq!(doc.operations.len(), 5000);
        assert_eq!(doc.operations[0].path, "/p4999");
        assert_eq!(doc.operations[4999].security, scopes(&[&["s0"]]));
    }

    #[test]
    fn malformed_parts_are_located_and_quote_little() {
        // A 5000-character path and scheme name (JSON: YAML keys stop at 1024).
        let long = "y".repeat(5000);
        let e = read_err(&format!(
            r#"{{"openapi": "3.0.0", "paths": {{"/{long}": {{"get": {{"security": [{{"{long}": []}}]}}}}}}}}"#
        ));
        assert!(
            e.contains("is not defined") && e.len() < 300,
            "{} chars: {e}",
            e.len()
        );
        let op = |op: &str| {
            read_err(&format!(
                "openapi: 3.0.0\n{SCHEMES}\npaths:\n  /s:\n    {op}\n"
            ))
        };
        assert_eq!(
            op("$ref: '#/x'"),
            "`paths./s.$ref`: a path-level `$ref` (`#/x`) is not supported"
        );
        assert_eq!(
            op("get: {security: [{idp: [\"a b\"]}]}"),
            "`paths./s.get.security[0].idp[0]`: `a b` is not an OAuth scope (RFC 6749 3.3)"
        );
        assert_eq!(
            op("get: {security: {idp: []}}"),
            "`paths./s.get.security`: expected a list of security requirements, found a mapping"
        );
        assert_eq!(
            op("get: [1]"),
            "`paths./s.get`: expected a mapping, found a list"
        );
        let e = read_err("openapi: 3.0.0\ncomponents: {securitySchemes: {k: {type: magic}}}\n");
        assert_eq!(
            e,
            "`components.securitySchemes.k.type`: unknown security scheme type `magic`"
        );
        assert!(read_err("openapi: 3.0.0\npaths: {orders: {}}\n").ends_with("must begin with `/`"));
        let e = read_err(&format!("openapi: 3.0.0\nx: {}\nx: 1\n", "z".repeat(1000)));
        assert!(
            e.starts_with("the document does not parse as YAML") && e.len() < 300,
            "{e}"
        );
    }
}
