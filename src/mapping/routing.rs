//! Which route a request belongs to, as API Gateway routes it.
//!
//! An entry whose resource is a route (literal segments, `{param}`, `{proxy+}`; no `*`/`?`)
//! names one of the API's routes. A request belongs to the most specific route that matches
//! it, and only that route's entries grant it:
//!
//! - segment by segment, left to right: a literal segment is more specific than `{param}`,
//!   which is more specific than `{proxy+}`;
//! - on the same path, a route for the request's method is more specific than an `ANY`
//!   route; an entry of method `*` names every method's own route, so it is not beaten.
//!
//! [`super::exact`] uses the same order to find which routes a policy pattern reaches.

use std::cmp::Ordering;

use super::entry::{Mapping, Method, ResourcePath};

/// One segment of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment<'a> {
    /// A literal segment, matched as written.
    Literal(&'a str),
    /// `{name}`: exactly one non-empty segment.
    Param,
    /// `{name+}`: one or more segments (only last).
    Greedy,
}

impl Segment<'_> {
    /// Its rank in the route order: literal 2, `{param}` 1, `{proxy+}` 0.
    pub(crate) fn rank(self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param => 1,
            Segment::Greedy => 0,
        }
    }
}

/// The segments of a route path (normalised: no leading or trailing slash); the root has
/// none.
pub fn segments(path: &ResourcePath) -> Vec<Segment<'_>> {
    if path.is_root() {
        return Vec::new();
    }
    // A `${claim:NAME}` segment stands in the API's own `{param}` route: it is that route,
    // granted only where the parameter is the token's value.
    path.segments()
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                _ if s.starts_with(super::entry::PLACEHOLDER) => Segment::Param,
                Some(name) if name.ends_with('+') => Segment::Greedy,
                Some(_) => Segment::Param,
                None => Segment::Literal(s),
            },
        )
        .collect()
}

/// Whether a request path (no leading slash; one trailing slash already removed) belongs to
/// the route's language.
pub fn route_matches(route: &[Segment<'_>], path: &str) -> bool {
    let parts: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    let mut i = 0;
    for (k, seg) in route.iter().enumerate() {
        match *seg {
            Segment::Greedy => {
                let rest = &parts[i.min(parts.len())..];
                return k + 1 == route.len()
                    && !rest.is_empty()
                    && rest.iter().all(|p| !p.is_empty());
            }
            Segment::Param => {
                if parts.get(i).is_none_or(|p| p.is_empty()) {
                    return false;
                }
            }
            Segment::Literal(l) => {
                if parts.get(i) != Some(&l) {
                    return false;
                }
            }
        }
        i += 1;
    }
    i == parts.len()
}

/// Orders two routes that match the same request: `Greater` when `a` is the more specific
/// (API Gateway's choice). Compared segment by segment, left to right.
pub fn specificity(a: &[Segment<'_>], b: &[Segment<'_>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.rank().cmp(&y.rank()) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// The route a request belongs to, as an entry of `table` naming it: the most specific route
/// entry matching `path` (the methodArn's resource; one trailing slash ignored) whose method
/// covers `method`. Glob entries are not routes and are skipped.
pub fn route_for<'m>(table: &[&'m Mapping], method: Method, path: &str) -> Option<&'m Mapping> {
    let path = without_slash(path);
    table
        .iter()
        .copied()
        .filter(|m| m.resource.is_route() && covers(m.method, method))
        .map(|m| (m, segments(&m.resource)))
        .filter(|(_, s)| route_matches(s, path))
        .max_by(|(a, sa), (b, sb)| precedence((sa, a.method), (sb, b.method)))
        .map(|(m, _)| m)
}

/// Whether two entries name the same route path (the same segments, whatever the parameters
/// are called).
pub fn same_route(a: &Mapping, b: &Mapping) -> bool {
    segments(&a.resource) == segments(&b.resource)
}

/// A request path without its one trailing slash (`orders/` is served by `orders`); the root
/// stays the root, and `/` is not the root.
pub(crate) fn without_slash(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    }
}

/// Two routes (or entries) cover a common method.
pub(crate) fn methods_meet(a: Method, b: Method) -> bool {
    a == b || a.is_every() || b.is_every()
}

/// Whether an entry of method `entry` names a route that takes a request of `request` (a
/// request ARN's method: one of the seven, or `Any` for an HTTP API's `ANY`): its own
/// method, `*` (every method's route), or `ANY` (the `ANY` route takes every method).
pub(crate) fn covers(entry: Method, request: Method) -> bool {
    entry == request || entry.is_every()
}

/// The route an entry names for a request of `request` that it [`covers`]: `ANY`'s route,
/// or the request method's own (which `*` names for every method).
pub(crate) fn route_method(entry: Method, request: Method) -> Method {
    if entry == Method::Any {
        Method::Any
    } else {
        request
    }
}

/// Which of two routes that match one request takes it (`Greater`: the first): the more
/// specific path ([`specificity`]), then, on the same path, a method's own route (`*`
/// included: it names every method's own route) before `ANY`. The one order the route of a
/// request, and every comparison of routes, follow.
pub(crate) fn precedence(a: (&[Segment<'_>], Method), b: (&[Segment<'_>], Method)) -> Ordering {
    specificity(a.0, b.0).then_with(|| (a.1 != Method::Any).cmp(&(b.1 != Method::Any)))
}

/// [`precedence`] on routes given by their segments' ranks ([`Segment::rank`]): comparing
/// rank lists left to right, then by length, is [`specificity`].
pub(crate) fn rank_order(a: (&[u8], Method), b: (&[u8], Method)) -> Ordering {
    a.0.cmp(b.0)
        .then_with(|| (a.1 != Method::Any).cmp(&(b.1 != Method::Any)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ResourcePath {
        ResourcePath::new(s).unwrap()
    }

    #[test]
    fn routes_match_segments_as_api_gateway_does() {
        let r = p("orders/{id}");
        let s = segments(&r);
        assert!(route_matches(&s, "orders/7"));
        assert!(!route_matches(&s, "orders"));
        assert!(!route_matches(&s, "orders/7/payments"));
        assert!(!route_matches(&s, "orders/"));
        let g = p("files/{proxy+}");
        let g = segments(&g);
        assert!(route_matches(&g, "files/a"));
        assert!(route_matches(&g, "files/a/b/c"));
        assert!(!route_matches(&g, "files"));
        assert!(!route_matches(&g, "files//a"));
        assert!(route_matches(&[], ""));
        assert!(!route_matches(&[], "x"));
    }

    #[test]
    fn literal_beats_param_beats_greedy_left_to_right() {
        let (a, b, c, d) = (
            p("orders/new"),
            p("orders/{id}"),
            p("orders/{proxy+}"),
            p("{x}/new"),
        );
        let (a, b, c, d) = (segments(&a), segments(&b), segments(&c), segments(&d));
        assert_eq!(specificity(&a, &b), Ordering::Greater);
        assert_eq!(specificity(&b, &c), Ordering::Greater);
        assert_eq!(specificity(&d, &b), Ordering::Less);
    }
}
