//! The policy builder: every resource a token's grants name, merged into at most one Allow
//! and one Deny statement and compacted, so the policy API Gateway caches stays small.
//!
//! Compaction never changes a decision (the tests check this with the evaluator):
//! - duplicates are dropped;
//! - a pattern [covered](covers) by another pattern of the same effect is dropped
//!   (`.../GET/orders/7` under `.../GET/orders/*`);
//! - an Allow pattern covered by a Deny pattern is dropped, since the Deny wins anyway.
//!
//! Layout: the Allow statement first, then the Deny statement, each with its resources
//! sorted, so that the same grants always give byte-identical JSON (diffable, and stable
//! across warm containers). A token left with nothing allowed gets [`Policy::deny_all`].

use std::collections::BTreeSet;

use super::document::{Effect, Policy, Statement};
use super::glob::wildcard_match;

/// Builds the policy for a set of grants: `(effect, resource pattern)` pairs, where a
/// pattern is a methodArn with `*`/`?` wildcards. See the module docs for what is
/// merged and dropped. The number of grants that survive is
/// [`Policy::grant_count`].
pub fn build<I, S>(grants: I) -> Policy
where
    I: IntoIterator<Item = (Effect, S)>,
    S: AsRef<str>,
{
    let mut allow = BTreeSet::new();
    let mut deny = BTreeSet::new();
    for (effect, resource) in grants {
        let set = match effect {
            Effect::Allow => &mut allow,
            Effect::Deny => &mut deny,
        };
        let resource = resource.as_ref();
        if !set.contains(resource) {
            set.insert(resource.to_owned());
        }
    }
    let deny = compact(deny);
    let allow = compact(allow);
    let mut denied = vec![false; allow.len()];
    each_cover(&deny, &allow, |_, a| denied[a] = true);
    let allow: Vec<String> = allow
        .into_iter()
        .zip(denied)
        .filter_map(|(a, denied)| (!denied).then_some(a))
        .collect();
    if allow.is_empty() {
        return Policy::deny_all();
    }
    let mut statements = vec![Statement {
        effect: Effect::Allow,
        resources: allow,
    }];
    if !deny.is_empty() {
        statements.push(Statement {
            effect: Effect::Deny,
            resources: deny,
        });
    }
    Policy { statements }
}

/// Whether every methodArn the pattern `inner` matches is also matched by `outer`: `inner`
/// is read as text, with the one care that a `?` in `outer` (one character) does not cover a
/// `*` in `inner` (any run). Sound (a `true` is always right); it may miss exotic
/// coverings, which only costs policy size.
pub fn covers(outer: &str, inner: &str) -> bool {
    wildcard_match(outer.as_bytes(), inner.as_bytes(), true)
}

/// Drops every pattern that another remaining pattern covers. Removing one pattern at a time,
/// and only when a pattern still present covers it, keeps the union of the set intact even
/// when two patterns cover each other (`a*` and `a**`: the later one survives).
///
/// `set` is sorted, so [`each_cover`] compares each pattern only with the patterns that
/// share its literal prefix, not with every other one.
fn compact(set: BTreeSet<String>) -> Vec<String> {
    let patterns: Vec<String> = set.into_iter().collect();
    let mut coverers: Vec<Vec<usize>> = vec![Vec::new(); patterns.len()];
    each_cover(&patterns, &patterns, |outer, inner| {
        if outer != inner {
            coverers[inner].push(outer);
        }
    });
    let mut alive = vec![true; patterns.len()];
    for i in 0..patterns.len() {
        alive[i] = !coverers[i].iter().any(|&j| alive[j]);
    }
    patterns
        .into_iter()
        .zip(alive)
        .filter_map(|(p, keep)| keep.then_some(p))
        .collect()
}

/// Calls `f(o, i)` for every pattern `outers[o]` that [covers] `inners[i]`, where `inners`
/// is sorted.
///
/// Whatever a pattern covers starts with the pattern's literal prefix (the text before its
/// first wildcard), and in sorted order those patterns are one run: a literal pattern costs
/// a binary search (it covers only itself), a wildcard one a binary search and a match per
/// pattern of its run. So a policy of literal paths compacts in O(n log n), where a
/// comparison of every pair cost O(n²) matches (4 million for a token granted 2 000 routes).
/// The worst case is still quadratic: patterns whose wildcard comes early (`*/GET/...`, a
/// stage or method wildcard) each run over the whole API.
fn each_cover(outers: &[String], inners: &[String], mut f: impl FnMut(usize, usize)) {
    debug_assert!(inners.is_sorted());
    for (o, outer) in outers.iter().enumerate() {
        let Some(wild) = outer.find(['*', '?']) else {
            if let Ok(i) = inners.binary_search(outer) {
                f(o, i);
            }
            continue;
        };
        let prefix = &outer[..wild];
        let start = inners.partition_point(|p| p.as_str() < prefix);
        for (i, inner) in inners.iter().enumerate().skip(start) {
            if !inner.starts_with(prefix) {
                break;
            }
            if wildcard_match(&outer.as_bytes()[wild..], &inner.as_bytes()[wild..], true) {
                f(o, i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::eval::evaluate;

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    fn g(effect: Effect, rest: &str) -> (Effect, String) {
        (effect, format!("{API}/{rest}"))
    }

    fn arn(rest: &str) -> String {
        format!("{API}/{rest}")
    }

    fn resources(p: &Policy, effect: Effect) -> Vec<String> {
        p.statements
            .iter()
            .filter(|s| s.effect == effect)
            .flat_map(|s| s.resources.iter().map(|r| r[API.len() + 1..].to_owned()))
            .collect()
    }

    /// Every request a test cares about, decided by the uncompacted grants (the reference
    /// semantics) and by the built policy.
    fn same_decisions(grants: &[(Effect, String)], policy: &Policy) {
        let naive = Policy {
            statements: grants
                .iter()
                .map(|(e, r)| Statement {
                    effect: *e,
                    resources: vec![r.clone()],
                })
                .collect(),
        };
        for stage in ["dev", "prod"] {
            for method in ["GET", "POST", "DELETE"] {
                for path in [
                    "",
                    "orders",
                    "orders/",
                    "orders/7",
                    "orders/77",
                    "orders/7/items",
                    "a",
                    "ab",
                    "abc",
                ] {
                    let m = arn(&format!("{stage}/{method}/{path}"));
                    assert_eq!(evaluate(policy, &m), evaluate(&naive, &m), "{m}");
                }
            }
        }
    }

    #[test]
    fn no_grants_is_deny_all() {
        let empty: [(Effect, &str); 0] = [];
        assert_eq!(build(empty), Policy::deny_all());
        assert_eq!(build([g(Effect::Deny, "*")]), Policy::deny_all());
        assert_eq!(build([(Effect::Allow, "*")]).grant_count(), 1);
    }

    #[test]
    fn one_statement_per_effect_sorted_and_deduplicated() {
        let grants = [
            g(Effect::Allow, "dev/POST/orders"),
            g(Effect::Allow, "dev/GET/orders"),
            g(Effect::Deny, "dev/GET/orders/secret"),
            g(Effect::Allow, "dev/GET/orders"),
        ];
        let p = build(grants.clone());
        assert_eq!(p.statements.len(), 2);
        assert_eq!(p.statements[0].effect, Effect::Allow);
        assert_eq!(
            resources(&p, Effect::Allow),
            ["dev/GET/orders", "dev/POST/orders"]
        );
        assert_eq!(resources(&p, Effect::Deny), ["dev/GET/orders/secret"]);
        assert_eq!(p.grant_count(), 2);
        same_decisions(&grants, &p);
        // Order of input does not matter.
        let mut reversed = grants.to_vec();
        reversed.reverse();
        assert_eq!(build(reversed), p);
    }

    #[test]
    fn covered_patterns_are_dropped() {
        let grants = [
            g(Effect::Allow, "dev/GET/orders/7"),
            g(Effect::Allow, "dev/GET/orders/*"),
            g(Effect::Allow, "dev/GET/orders/?"),
            g(Effect::Allow, "*/GET/orders/*/items"),
            g(Effect::Allow, "dev/POST/orders"),
        ];
        let p = build(grants.clone());
        assert_eq!(
            resources(&p, Effect::Allow),
            [
                "*/GET/orders/*/items",
                "dev/GET/orders/*",
                "dev/POST/orders"
            ]
        );
        same_decisions(&grants, &p);
    }

    #[test]
    fn mutually_covering_patterns_keep_one() {
        let grants = [
            g(Effect::Allow, "dev/GET/a*"),
            g(Effect::Allow, "dev/GET/a**"),
        ];
        let p = build(grants.clone());
        assert_eq!(p.grant_count(), 1);
        same_decisions(&grants, &p);
    }

    #[test]
    fn question_mark_does_not_cover_star() {
        let grants = [
            g(Effect::Allow, "dev/GET/a?c"),
            g(Effect::Allow, "dev/GET/a*c"),
        ];
        let p = build(grants.clone());
        assert_eq!(resources(&p, Effect::Allow), ["dev/GET/a*c"]);
        same_decisions(&grants, &p);
    }

    #[test]
    fn allow_under_deny_is_dropped_and_deny_still_wins() {
        let grants = [
            g(Effect::Allow, "*/*/orders/*"),
            g(Effect::Allow, "prod/DELETE/orders/7"),
            g(Effect::Deny, "prod/DELETE/orders/*"),
        ];
        let p = build(grants.clone());
        assert_eq!(resources(&p, Effect::Allow), ["*/*/orders/*"]);
        assert_eq!(resources(&p, Effect::Deny), ["prod/DELETE/orders/*"]);
        assert_eq!(evaluate(&p, &arn("prod/DELETE/orders/7")), Effect::Deny);
        assert_eq!(evaluate(&p, &arn("dev/DELETE/orders/7")), Effect::Allow);
        same_decisions(&grants, &p);
    }

    #[test]
    fn everything_denied_is_deny_all() {
        let p = build([g(Effect::Allow, "dev/GET/orders"), g(Effect::Deny, "dev/*")]);
        assert_eq!(p, Policy::deny_all());
    }

    /// The old comparison of every pair, the model that [`compact`]'s pruning must agree
    /// with.
    fn compact_pairwise(set: BTreeSet<String>) -> Vec<String> {
        let patterns: Vec<String> = set.into_iter().collect();
        let mut alive = vec![true; patterns.len()];
        for i in 0..patterns.len() {
            alive[i] = !patterns
                .iter()
                .enumerate()
                .any(|(j, p)| j != i && alive[j] && covers(p, &patterns[i]));
        }
        patterns
            .into_iter()
            .zip(alive)
            .filter_map(|(p, keep)| keep.then_some(p))
            .collect()
    }

    proptest::proptest! {
        /// Patterns over a small alphabet, so that prefixes, wildcards and coverings collide
        /// often: the pruned compaction keeps exactly what the pairwise one keeps, and the
        /// built policy decides every short text as the grants do.
        #[test]
        fn compaction_by_prefix_runs_is_the_pairwise_one(
            grants in proptest::collection::vec(
                (proptest::bool::ANY, "[ab/*?]{0,5}"), 0..24),
            texts in proptest::collection::vec("[ab/]{0,5}", 16),
        ) {
            let grants: Vec<(Effect, String)> = grants
                .into_iter()
                .map(|(allow, r)| {
                    let e = if allow { Effect::Allow } else { Effect::Deny };
                    (e, format!("{API}/{r}"))
                })
                .collect();
            for effect in [Effect::Allow, Effect::Deny] {
                let set: BTreeSet<String> = grants
                    .iter()
                    .filter(|(e, _)| *e == effect)
                    .map(|(_, r)| r.clone())
                    .collect();
                proptest::prop_assert_eq!(compact(set.clone()), compact_pairwise(set));
            }
            let policy = build(grants.clone());
            let naive = Policy {
                statements: grants
                    .iter()
                    .map(|(e, r)| Statement { effect: *e, resources: vec![r.clone()] })
                    .collect(),
            };
            for t in texts {
                let m = arn(&t);
                proptest::prop_assert_eq!(evaluate(&policy, &m), evaluate(&naive, &m), "{}", m);
            }
        }
    }

    #[test]
    fn covers_is_directional() {
        assert!(covers(&arn("*"), &arn("dev/GET/")));
        assert!(!covers(&arn("dev/GET/"), &arn("*")));
    }
}
