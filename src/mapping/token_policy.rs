//! One token's policy on one API and stage: its entries' Allows and Denies, and the
//! Denies that make it exact ([`super::exact`]), merged and compacted by
//! [`crate::policy::build`].

use super::entry::{method_arns, Mapping};
use super::exact::{ExactDeny, RouteTable};
use crate::policy::{build, ApiKind, CompiledPolicy, Effect};

/// The policy for the entries `token` (indices into `entries`) that one token meets on `api`
/// and `stage`, for a request from an API of `kind`. `table` is the API and stage's compiled
/// route table, given when some entry of the token may cover other routes.
///
/// `value_of` gives the token's value of a claim a `${claim:NAME}` segment names, where it
/// can stand in a path segment ([`crate::claim::bound_value`]). An entry's bound segments are
/// written as those values; where there is none, as `*`: the caller leaves out the Allows
/// that would need one, so that only a Deny is ever widened (fail closed).
pub(crate) fn compile<'v>(
    entries: &[Mapping],
    token: &[u32],
    table: Option<&RouteTable>,
    api: &str,
    stage: &str,
    kind: ApiKind,
    value_of: &dyn Fn(&str) -> Option<&'v str>,
) -> CompiledPolicy {
    let exactness = table
        .map(|t| t.exactness(entries, token, kind == ApiKind::Http, value_of))
        .unwrap_or_default();
    let grants = token.iter().map(|&i| &entries[i as usize]).flat_map(|m| {
        debug_assert!(
            m.effect == Effect::Deny
                || m.resource
                    .bound_claims()
                    .all(|(_, c)| value_of(c).is_some()),
            "an Allow without its bound values"
        );
        m.policy_resources_as(&m.resource.bound_pattern(value_of), stage, kind)
            .into_iter()
            .map(move |r| (m.effect, r))
    });
    let exact = exactness
        .denies
        .iter()
        .flat_map(|d| exact_deny_resources(d, api, stage))
        .map(|r| (Effect::Deny, r));
    CompiledPolicy::new(build(grants.chain(exact)))
}

/// The resources of an exactness Deny: those of a Deny entry for the route, but for a route
/// of one method, not the `ANY` method segment. An explicit Deny covers an HTTP API's `ANY`
/// route (its requests may be that method); a request that went through an `ANY` route
/// belongs to that route, not to this one, so exactness must not deny it.
pub(crate) fn exact_deny_resources(d: &ExactDeny<'_>, api: &str, stage: &str) -> Vec<String> {
    method_arns(api, stage, d.method, false, &d.pattern, d.slash_too)
}
