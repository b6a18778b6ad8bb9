//! The independent judges of the differential tests (tests/it/differential.rs) and of the
//! `policy` fuzz target (fuzz/, which includes this file by path): a naive model of what the
//! mappings mean, and a small IAM evaluator. Neither shares code with src/policy: they are
//! written from docs/mappings.md and IAM's documented matching rules, by dynamic programming
//! rather than src/policy/eval.rs's backtracking walk, so one bug cannot hide in both.

use scopegate::mapping::Mapping;
use scopegate::policy::Effect;
use serde_json::Value;

/// The methods a request ARN may hold.
pub const VERBS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// One request as API Gateway would describe it, or could not (`valid` false).
#[derive(Debug, Clone)]
pub struct Req {
    pub api: &'static str,
    pub stage: &'static str,
    pub verb: &'static str,
    pub path: String,
    /// HTTP API (routeArn, `ANY` possible) or REST (methodArn).
    pub http: bool,
}

impl Req {
    pub fn arn(&self) -> String {
        format!("{}/{}/{}/{}", self.api, self.stage, self.verb, self.path)
    }

    /// Whether API Gateway could have sent this ARN (issue 8, class 3).
    pub fn valid(&self) -> bool {
        let stage_ok = self.stage == "$default"
            || (!self.stage.is_empty()
                && self
                    .stage
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        let verb_ok = VERBS.contains(&self.verb) || (self.http && self.verb == "ANY");
        stage_ok && verb_ok
    }
}

/// `*` any run (slashes too), `?` exactly one character, the rest literal: by dynamic
/// programming over characters (row `i` says which prefixes of the text the first `i`
/// pattern characters match).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    // A literal prefix (an ARN's `arn:...:apiid/stage/`) matches only itself: compared
    // directly, it leaves the quadratic table for the short rest.
    let literal = pattern.find(['*', '?']).unwrap_or(pattern.len());
    let Some(text) = text.strip_prefix(&pattern[..literal]) else {
        return false;
    };
    let pattern = &pattern[literal..];
    let t: Vec<char> = text.chars().collect();
    let mut row = vec![false; t.len() + 1];
    let mut next = vec![false; t.len() + 1];
    row[0] = true;
    for pc in pattern.chars() {
        next[0] = pc == '*' && row[0];
        for j in 1..=t.len() {
            next[j] = match pc {
                '*' => row[j] || next[j - 1],
                '?' => row[j - 1],
                c => row[j - 1] && c == t[j - 1],
            };
        }
        std::mem::swap(&mut row, &mut next);
    }
    row[t.len()]
}

/// A resource pattern as IAM reads it: `{param}` and `{proxy+}` segments are `*`, and a
/// `${claim:NAME}` segment is the token's value (`value_of`), or `*` without one.
fn bound_iam_pattern(resource: &str, value_of: &dyn Fn(&str) -> Option<String>) -> String {
    pieces(resource)
        .into_iter()
        .map(|s| match claim_of(&s) {
            Some(name) => value_of(&name).unwrap_or_else(|| "*".to_owned()),
            None if s.starts_with('{') => "*".to_owned(),
            None => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A resource's segments, read character by character: `${claim:` opens a placeholder that
/// only its `}` closes, whatever `/` its name holds (`${claim:/org/id}`).
fn pieces(resource: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut inside = false;
    let chars: Vec<char> = resource.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !inside
            && out.last().unwrap().is_empty()
            && resource[byte(&chars, i)..].starts_with("${claim:")
        {
            inside = true;
        }
        if inside && c == '}' {
            inside = false;
        }
        if c == '/' && !inside {
            out.push(String::new());
        } else {
            out.last_mut().unwrap().push(c);
        }
        i += 1;
    }
    out
}

fn byte(chars: &[char], i: usize) -> usize {
    chars[..i].iter().map(|c| c.len_utf8()).sum()
}

/// The claim a `${claim:NAME}` segment names.
fn claim_of(segment: &str) -> Option<String> {
    segment
        .strip_prefix("${claim:")?
        .strip_suffix('}')
        .map(str::to_owned)
}

/// A token's value of claim `name` as one path segment (issue 21 §2, read from the issue):
/// a string of 1 to 128 characters from `A-Z a-z 0-9 . _ ~ -`, not `.` or `..`.
pub fn bound_value(claims: &Value, name: &str) -> Option<String> {
    let found = if name.starts_with('/') {
        claims.pointer(name)
    } else {
        claims.get(name)
    };
    let s = found?.as_str()?;
    let ok = (1..=128).contains(&s.chars().count())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c))
        && s != "."
        && s != "..";
    ok.then(|| s.to_owned())
}

/// Whether an entry's resource is a route (no `*` or `?`).
fn is_route(resource: &str) -> bool {
    !resource.contains(['*', '?'])
}

/// A route's segments, ranked for specificity: 2 literal, 1 `{param}`, 0 `{proxy+}`.
fn ranks(resource: &str) -> Vec<u8> {
    if resource.is_empty() {
        return Vec::new();
    }
    pieces(resource)
        .iter()
        .map(
            |s| match (s.starts_with('{') || s.starts_with("${"), s.ends_with("+}")) {
                (false, _) => 2,
                (true, false) => 1,
                (true, true) => 0,
            },
        )
        .collect()
}

/// Whether a route (`orders/{id}`, `files/{p+}`) matches a request path, segment by segment.
fn route_matches(route: &str, path: &str) -> bool {
    let r: Vec<String> = if route.is_empty() {
        vec![]
    } else {
        pieces(route)
    };
    let p: Vec<&str> = if path.is_empty() {
        vec![]
    } else {
        path.split('/').collect()
    };
    for (i, seg) in r.iter().enumerate() {
        if seg.ends_with("+}") {
            return i + 1 == r.len() && p.len() > i && p[i..].iter().all(|s| !s.is_empty());
        }
        match p.get(i) {
            Some(s) if (seg.starts_with('{') || seg.starts_with("${")) && !s.is_empty() => {}
            Some(s) if s == seg => {}
            _ => return false,
        }
    }
    r.len() == p.len()
}

/// The route shape, parameter names dropped (`orders/{id}` and `orders/{n}` are one route).
fn shape(resource: &str) -> String {
    pieces(resource)
        .iter()
        .map(
            |s| match (s.starts_with('{') || s.starts_with("${"), s.ends_with("+}")) {
                (false, _) => s.as_str(),
                (true, false) => "{}",
                (true, true) => "{+}",
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// What the mappings mean for `req` under `scopes` (docs/mappings.md, read naively):
/// `Some(allowed)`, or `None` for a path no route names that only the IAM `*` of a template
/// route's Allow reaches (API Gateway sends no such request for a REST API whose routes the
/// mapping names; what the policy says of it is not specified).
///
/// - An entry applies when the token holds every scope it requires (none for `"scopes":
///   []`; never for `"nobody": true`), its API and stage name the request's, and its method
///   is the request's (`*` and `ANY`: any; a Deny on one method also covers an HTTP API's
///   `ANY` request).
/// - A Deny that applies and matches (its IAM pattern, or that followed by a slash) denies.
/// - A glob entry (`*`, `?`) that applies and matches allows, with IAM's meaning.
/// - Otherwise the request belongs to the most specific route matching it (literal, then
///   `{param}`, then `{proxy+}`, left to right; a method's own route before `ANY`, where
///   `*` names every method's own route), and is allowed when an Allow entry naming that
///   route applies.
pub fn meaning(entries: &[Mapping], scopes: &[&str], req: &Req) -> Option<bool> {
    meaning_with_claims(entries, scopes, &Value::Null, req)
}

/// Whether a token whose claims are `claims` (the whole JSON payload) holds `value` of claim
/// `name` (issue 21): the claim, found by name or, for a name starting with `/`, by JSON
/// Pointer from the payload's root, is that JSON value, or an array with an element that
/// is. Nothing else: no case folding, no splitting, `"5"` is not `5`.
pub fn holds_claim(claims: &Value, name: &str, value: &Value) -> bool {
    let found = if name.starts_with('/') {
        claims.pointer(name)
    } else {
        claims.get(name)
    };
    match found {
        Some(Value::Array(items)) => items.iter().any(|v| v == value),
        Some(v) => v == value,
        None => false,
    }
}

/// [`meaning`] for a token with claims: an entry that requires claim values applies only
/// when the token [holds](holds_claim) every one of them, beside its scopes.
pub fn meaning_with_claims(
    entries: &[Mapping],
    scopes: &[&str],
    claims: &Value,
    req: &Req,
) -> Option<bool> {
    // `*` and `ANY` both cover every method of a request; they differ only in the route
    // they name (below).
    let method_ok = |m: &Mapping| {
        let method = m.method.as_str();
        method == "*"
            || method == "ANY"
            || method == req.verb
            || (req.verb == "ANY" && m.effect == Effect::Deny)
    };
    let on_request = |m: &Mapping| {
        m.api.as_str() == req.api && (m.stage.as_str() == "*" || m.stage.as_str() == req.stage)
    };
    // A route held for nobody is a route no token holds.
    let held = |m: &Mapping| {
        !m.scopes.is_nobody()
            && m.scopes
                .scopes()
                .iter()
                .all(|s| scopes.contains(&s.as_str()))
            && m.scopes
                .claims()
                .iter()
                .all(|c| holds_claim(claims, c.name().as_str(), &c.value().to_json()))
    };
    // `${claim:NAME}` segments (issue 21 §2): an Allow needs a value for each; a Deny
    // without one denies for every value (its segment is `*`).
    let value_of = |name: &str| bound_value(claims, name);
    let bound_ok = |m: &Mapping| {
        m.effect == Effect::Deny
            || pieces(m.resource.as_str())
                .iter()
                .filter_map(|s| claim_of(s))
                .all(|c| value_of(&c).is_some())
    };
    let held = |m: &Mapping| held(m) && bound_ok(m);
    let applies = |m: &Mapping| held(m) && on_request(m) && method_ok(m);
    let matches = |m: &Mapping| {
        let r = bound_iam_pattern(m.resource.as_str(), &value_of);
        // A REST API serves `orders/` from the `orders` resource: an entry covers both. An
        // HTTP API routes `orders/` apart, so there only a Deny does (fail closed).
        wildcard(&r, &req.path)
            || (!r.is_empty()
                && !r.ends_with('*')
                && (m.effect == Effect::Deny || !req.http)
                && wildcard(&format!("{r}/"), &req.path))
    };
    if entries
        .iter()
        .any(|m| m.effect == Effect::Deny && applies(m) && matches(m))
    {
        return Some(false);
    }
    if entries.iter().any(|m| {
        m.effect == Effect::Allow && !is_route(m.resource.as_str()) && applies(m) && matches(m)
    }) {
        return Some(true);
    }
    // The route: REST ignores one trailing slash; an HTTP API's `ANY` request came through
    // an `ANY` route.
    let path = match req.path.strip_suffix('/') {
        Some(p) if !req.http && !p.is_empty() => p,
        _ => req.path.as_str(),
    };
    // The route an entry names for this request: `ANY` names the `ANY` route; `*` names
    // the request method's own route, as an entry of that method does.
    let named = |m: &Mapping| {
        if m.method.as_str() == "ANY" {
            "ANY"
        } else {
            req.verb
        }
    };
    let routes: Vec<&Mapping> = entries
        .iter()
        .filter(|m| {
            m.effect == Effect::Allow
                && is_route(m.resource.as_str())
                && on_request(m)
                && (m.method.as_str() == "*"
                    || m.method.as_str() == "ANY"
                    || m.method.as_str() == req.verb)
                && route_matches(m.resource.as_str(), path)
        })
        .collect();
    let best = routes.iter().max_by(|a, b| {
        ranks(a.resource.as_str())
            .cmp(&ranks(b.resource.as_str()))
            .then((named(a) != "ANY").cmp(&(named(b) != "ANY")))
    });
    if let Some(best) = best {
        let same = |m: &&&Mapping| {
            named(m) == named(best) && shape(m.resource.as_str()) == shape(best.resource.as_str())
        };
        // Granted by an entry naming the route whose bound segments are the token's values
        // there (routing itself knows nothing of claims).
        let parts: Vec<&str> = path.split('/').collect();
        let bound_here = |m: &Mapping| {
            pieces(m.resource.as_str())
                .iter()
                .enumerate()
                .all(|(k, s)| match claim_of(s) {
                    Some(c) => value_of(&c).as_deref() == parts.get(k).copied(),
                    None => true,
                })
        };
        return Some(routes.iter().filter(same).any(|m| held(m) && bound_here(m)));
    }
    let reached = entries.iter().any(|m| {
        m.effect == Effect::Allow && is_route(m.resource.as_str()) && applies(m) && matches(m)
    });
    if reached {
        None
    } else {
        Some(false)
    }
}

/// IAM's answer for `arn` under a policy document as JSON.
pub fn iam_allows(policy: &Value, arn: &str) -> bool {
    let statements = policy["Statement"].as_array().expect("Statement array");
    let mut allowed = false;
    for s in statements {
        assert_eq!(s["Action"], "execute-api:Invoke", "{s}");
        let resources: Vec<&str> = match &s["Resource"] {
            Value::String(r) => vec![r.as_str()],
            Value::Array(rs) => rs.iter().map(|r| r.as_str().expect("string")).collect(),
            other => panic!("Resource {other}"),
        };
        if !resources.iter().any(|r| wildcard(r, arn)) {
            continue;
        }
        match s["Effect"].as_str() {
            Some("Deny") => return false,
            Some("Allow") => allowed = true,
            other => panic!("Effect {other:?}"),
        }
    }
    allowed
}
