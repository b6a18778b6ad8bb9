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

/// What the mappings mean for `req` under `scopes` (docs/mappings.md, read naively).
pub fn meaning(entries: &[Mapping], scopes: &[&str], req: &Req) -> bool {
    let applies = |m: &Mapping| {
        let method = m.method.as_str();
        scopes.contains(&m.scope.as_str())
            && m.api.as_str() == req.api
            && (m.stage.as_str() == "*" || m.stage.as_str() == req.stage)
            && (method == "*"
                || method == req.verb
                // An `ANY` route's request may use any method: a Deny on one method
                // covers it (fail closed), an Allow on one method does not.
                || (req.verb == "ANY" && m.effect == Effect::Deny))
    };
    let matches = |m: &Mapping| {
        let r = m.resource.as_str();
        // A REST API serves `orders/` from the `orders` resource: an entry covers both. An
        // HTTP API routes `orders/` apart, so there only a Deny does (fail closed).
        wildcard(r, &req.path)
            || (!r.is_empty()
                && !r.ends_with('*')
                && (m.effect == Effect::Deny || !req.http)
                && wildcard(&format!("{r}/"), &req.path))
    };
    let hit = |effect| {
        entries
            .iter()
            .any(|m| m.effect == effect && applies(m) && matches(m))
    };
    hit(Effect::Allow) && !hit(Effect::Deny)
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
