//! The policy evaluator: what API Gateway (IAM) answers for one methodArn under a policy.
//!
//! This is the oracle the tests assert through: "this scope set may GET /dev/orders/7 and may
//! not DELETE it", rather than the shape of the JSON.

use super::document::{Effect, Policy};
use super::glob::glob_match;

/// Decides `execute-api:Invoke` on `method_arn` the way IAM does: an explicit Deny on a
/// matching resource wins; otherwise a matching Allow allows; otherwise the implicit deny.
///
/// Every [`Statement`](super::document::Statement) is an `execute-api:Invoke` statement (statements
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::document::{action_matches, Statement};
    use crate::policy::glob::wildcard_match;

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
