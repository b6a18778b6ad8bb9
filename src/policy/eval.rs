//! The policy evaluator: what API Gateway (IAM) answers for one methodArn under a policy.
//!
//! This is the oracle the tests assert through: "this scope set may GET /dev/orders/7 and may
//! not DELETE it", rather than the shape of the JSON.

use super::{Effect, Policy};

/// The one action a Lambda authorizer's policy governs.
pub(crate) const INVOKE: &str = "execute-api:Invoke";

/// Decides `execute-api:Invoke` on `method_arn` the way IAM does: an explicit Deny on a
/// matching resource wins; otherwise a matching Allow allows; otherwise the implicit deny.
///
/// Every [`Statement`](super::Statement) is an `execute-api:Invoke` statement (statements
/// for other actions are dropped when a policy is parsed, see [`Policy`]), so only the
/// resources are matched here, with [`glob_match`].
pub fn evaluate(policy: &Policy, method_arn: &str) -> Effect {
    let mut allowed = false;
    for statement in &policy.statements {
        if !statement
            .resources
            .iter()
            .any(|r| glob_match(r, method_arn))
        {
            continue;
        }
        match statement.effect {
            Effect::Deny => return Effect::Deny,
            Effect::Allow => allowed = true,
        }
    }
    if allowed {
        Effect::Allow
    } else {
        Effect::Deny
    }
}

/// Whether an IAM `Action` element value covers `execute-api:Invoke` (`execute-api:Invoke`,
/// `execute-api:*`, `*`, ...). Actions, unlike resources, are case-insensitive in IAM.
pub(crate) fn action_matches(action: &str) -> bool {
    glob_match(&action.to_ascii_lowercase(), "execute-api:invoke")
}

/// IAM's resource wildcard match: `*` matches any run of characters, including `/` and the
/// empty run; `?` matches exactly one character; everything else matches itself,
/// case-sensitively.
///
/// Iterative (the classic backtrack-to-last-star two-pointer walk): at worst
/// O(pattern × text), never recursive, so a hostile pattern cannot blow the stack.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Policy resources share a long literal prefix (`arn:...:apiid/stage/`): compare it in
    // one memcmp before the byte-by-byte walk, which then only sees the tail.
    let literal = p
        .iter()
        .position(|&b| b == b'*' || b == b'?')
        .unwrap_or(p.len());
    if literal == p.len() {
        return p == t;
    }
    t.starts_with(&p[..literal]) && wildcard_match(&p[literal..], &t[literal..], false)
}

/// The walk behind [`glob_match`], over UTF-8 bytes (`?` consumes one whole character).
///
/// With `text_is_pattern`, `text` is itself a pattern and the question is whether every
/// string it matches is matched by `pattern`: then `?` in `pattern` may not stand for a `*`
/// in `text` (one character cannot cover a run). `*` in `pattern` covers anything, and a
/// literal in `pattern` only matches the same literal, never a wildcard in `text`.
pub(crate) fn wildcard_match(p: &[u8], t: &[u8], text_is_pattern: bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // After the last `*` seen: the pattern index after it, and the text index it is
    // currently assumed to stop at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    pi += 1;
                    star = Some((pi, ti));
                    continue;
                }
                b'?' if !(text_is_pattern && t[ti] == b'*') => {
                    pi += 1;
                    ti += utf8_width(t[ti]);
                    continue;
                }
                b'?' => {}
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((after_star, stop)) => {
                // Let the last `*` swallow one more character and retry from there.
                let stop = stop + utf8_width(t[stop]);
                star = Some((after_star, stop));
                pi = after_star;
                ti = stop;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// The byte length of the UTF-8 character that starts with `lead`.
fn utf8_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xff => 4,
        // A continuation byte: not a character start; step one byte (never reached for
        // valid UTF-8, which is all `&str` can hold).
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Statement;

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    fn policy(statements: &[(Effect, &[&str])]) -> Policy {
        Policy {
            statements: statements
                .iter()
                .map(|(effect, resources)| Statement {
                    effect: *effect,
                    resources: resources.iter().map(|r| format!("{API}/{r}")).collect(),
                })
                .collect(),
        }
    }

    fn arn(rest: &str) -> String {
        format!("{API}/{rest}")
    }

    #[test]
    fn glob_basics() {
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything/at/all"));
        assert!(glob_match("**", "x"));
        assert!(glob_match("a*", "a"));
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("a*c", "ac"));
        assert!(!glob_match("a*c", "abcd"));
        assert!(glob_match("a*c*", "abcd"));
        assert!(glob_match("?", "x"));
        assert!(!glob_match("?", ""));
        assert!(!glob_match("?", "xy"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*/GET/*", "dev/GET/orders/7"));
        assert!(glob_match("a*b*c*d", "axxbyycd"));
        assert!(!glob_match("a*b*c*d", "axxbyycde"));
    }

    #[test]
    fn glob_is_case_sensitive_and_literal() {
        assert!(!glob_match("dev/get/x", "dev/GET/x"));
        assert!(!glob_match("DEV/GET/x", "dev/GET/x"));
        assert!(glob_match("orders.json", "orders.json"));
        assert!(!glob_match("orders.json", "ordersXjson"));
        assert!(glob_match("[a]", "[a]"));
    }

    #[test]
    fn glob_question_mark_is_one_character_not_one_byte() {
        assert!(glob_match("caf?", "café"));
        assert!(glob_match("?/x", "é/x"));
        assert!(!glob_match("??", "é"));
        assert!(glob_match("*é", "aé"));
        assert!(glob_match("*?", "é"));
    }

    #[test]
    fn glob_has_no_exponential_blowup() {
        let text = "a".repeat(10_000);
        let pattern = format!("{}b", "a*".repeat(200));
        assert!(!glob_match(&pattern, &text));
        assert!(glob_match(&format!("{}a", "*".repeat(5_000)), &text));
    }

    #[test]
    fn star_crosses_slashes_and_matches_root() {
        let p = policy(&[(Effect::Allow, &["dev/GET/*"])]);
        assert_eq!(evaluate(&p, &arn("dev/GET/")), Effect::Allow);
        assert_eq!(evaluate(&p, &arn("dev/GET/orders")), Effect::Allow);
        assert_eq!(evaluate(&p, &arn("dev/GET/orders/7/items")), Effect::Allow);
        assert_eq!(evaluate(&p, &arn("dev/POST/orders")), Effect::Deny);
        assert_eq!(evaluate(&p, &arn("prod/GET/orders")), Effect::Deny);
    }

    #[test]
    fn literal_resource_matches_only_itself() {
        let p = policy(&[(Effect::Allow, &["dev/GET/my-resource"])]);
        assert_eq!(evaluate(&p, &arn("dev/GET/my-resource")), Effect::Allow);
        assert_eq!(evaluate(&p, &arn("dev/GET/my-resource/")), Effect::Deny);
        assert_eq!(evaluate(&p, &arn("dev/GET/my-resource/1")), Effect::Deny);
        assert_eq!(evaluate(&p, &arn("dev/GET/")), Effect::Deny);
    }

    #[test]
    fn root_only() {
        let p = policy(&[(Effect::Allow, &["dev/GET/"])]);
        assert_eq!(evaluate(&p, &arn("dev/GET/")), Effect::Allow);
        assert_eq!(evaluate(&p, &arn("dev/GET/x")), Effect::Deny);
    }

    #[test]
    fn question_mark_in_policy() {
        let p = policy(&[(Effect::Allow, &["dev/GET/orders/?"])]);
        assert_eq!(evaluate(&p, &arn("dev/GET/orders/7")), Effect::Allow);
        assert_eq!(evaluate(&p, &arn("dev/GET/orders/77")), Effect::Deny);
        assert_eq!(evaluate(&p, &arn("dev/GET/orders/")), Effect::Deny);
    }

    #[test]
    fn explicit_deny_wins_in_any_order() {
        let allow_then_deny = policy(&[
            (Effect::Allow, &["*/*/orders/*"]),
            (Effect::Deny, &["prod/DELETE/orders/*"]),
        ]);
        let deny_then_allow = Policy {
            statements: allow_then_deny.statements.iter().rev().cloned().collect(),
        };
        for p in [&allow_then_deny, &deny_then_allow] {
            assert_eq!(evaluate(p, &arn("dev/DELETE/orders/7")), Effect::Allow);
            assert_eq!(evaluate(p, &arn("prod/GET/orders/7")), Effect::Allow);
            assert_eq!(evaluate(p, &arn("prod/DELETE/orders/7")), Effect::Deny);
        }
    }

    #[test]
    fn empty_and_deny_all_policies_deny() {
        assert_eq!(
            evaluate(&Policy { statements: vec![] }, &arn("dev/GET/")),
            Effect::Deny
        );
        let p = Policy {
            statements: vec![Statement {
                effect: Effect::Allow,
                resources: vec![],
            }],
        };
        assert_eq!(evaluate(&p, &arn("dev/GET/")), Effect::Deny);
        assert_eq!(
            evaluate(&Policy::deny_all(), &arn("dev/GET/")),
            Effect::Deny
        );
    }

    #[test]
    fn other_apis_do_not_match() {
        let p = policy(&[(Effect::Allow, &["*"])]);
        let other = "arn:aws:execute-api:us-east-1:123456789012:zzzzzzzzzz/dev/GET/";
        assert_eq!(evaluate(&p, other), Effect::Deny);
        assert_eq!(evaluate(&p, &arn("dev/GET/")), Effect::Allow);
    }

    #[test]
    fn actions() {
        for a in [
            "execute-api:Invoke",
            "execute-api:*",
            "*",
            "EXECUTE-API:invoke",
            "execute-api:Inv*",
        ] {
            assert!(action_matches(a), "{a}");
        }
        for a in [
            "execute-api:ManageConnections",
            "s3:*",
            "execute-api:InvalidateCache",
        ] {
            assert!(!action_matches(a), "{a}");
        }
    }

    #[test]
    fn pattern_covers_pattern_soundly() {
        let covers = |p: &str, r: &str| wildcard_match(p.as_bytes(), r.as_bytes(), true);
        assert!(covers("orders/*", "orders/*/items"));
        assert!(covers("*", "orders/?"));
        assert!(covers("orders/?", "orders/?"));
        assert!(covers("a?c", "abc"));
        // `?` is one character; a `*` in the covered pattern stands for any run.
        assert!(!covers("a?c", "a*c"));
        assert!(!covers("orders/7", "orders/*"));
        assert!(!covers("orders/*", "orders"));
    }
}
