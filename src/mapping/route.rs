//! Routes and exact policies.
//!
//! An entry whose resource is a route (literal segments, `{param}`, `{proxy+}`; no `*`/`?`)
//! names one of the API's routes. A request belongs to the most specific route that matches
//! it, as API Gateway routes it, and only that route's entries grant it:
//!
//! - segment by segment, left to right: a literal segment is more specific than `{param}`,
//!   which is more specific than `{proxy+}`;
//! - on the same path, a route for the request's method is more specific than an `ANY`
//!   route.
//!
//! IAM has no one-segment wildcard, so a template is written into the policy as `*`
//! (`orders/{id}` as `orders/*`), which also covers `orders/7/payments`: another route, which
//! may need another scope. [`exact_denies`] finds, for one token's grants, every route the
//! token is not granted that such an Allow covers, and the policy denies it beside the Allow
//! (by the route's own pattern, or, where that would deny a granted route, by the part of
//! the Allow that runs past its own route). So the requests a policy allows are exactly the
//! requests of the routes the token is granted (and what its glob entries match, with their
//! IAM meaning).
//!
//! Where IAM cannot tell two routes apart, the Deny wins: it may also cover some requests of
//! a granted route (`orders/{id}/payments` is denied as `orders/*/payments`, which also
//! matches `orders/7/items/payments`, a request of `orders/{id}/items/{item}`). Those
//! requests are denied, never allowed, and [`exact_denies`] reports each such pair of
//! routes with an example request, so that `validate` and `explain` can name them.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};

use super::entry::{Mapping, Method, ResourcePath};
use crate::policy::{covers, Effect};

/// One segment of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// A literal segment, matched as written.
    Literal(&'a str),
    /// `{name}`: exactly one non-empty segment.
    Param,
    /// `{name+}`: one or more segments (only last).
    Greedy,
}

impl Segment<'_> {
    fn rank(self) -> u8 {
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
    path.as_str()
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
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

/// A route of the table: its method and path, and whether the token is granted it.
#[derive(Debug)]
struct Route<'m> {
    method: Method,
    resource: &'m ResourcePath,
    segments: Vec<Segment<'m>>,
    /// One entry naming it, to write its Deny from.
    entry: &'m Mapping,
    granted: bool,
    /// The route's language, and its IAM pattern's, for the searches (built once).
    program: Program,
    glob: Program,
}

/// Finds the route a request belongs to among `routes`: the most specific match whose
/// method covers `method`; on the same path a method's own route before `ANY`.
fn route_of<'r, 'm>(routes: &'r [Route<'m>], method: Method, path: &str) -> Option<&'r Route<'m>> {
    let path = without_slash(path);
    routes
        .iter()
        .filter(|r| {
            (r.method == method || r.method == Method::Any) && route_matches(&r.segments, path)
        })
        .max_by(|a, b| precedence((&a.segments, a.method), (&b.segments, b.method)))
}

/// The route a request belongs to, as an entry of `table` naming it: the most specific route
/// entry matching `path` (the methodArn's resource; one trailing slash ignored) whose method
/// covers `method`. Glob entries are not routes and are skipped.
pub fn route_for<'m>(table: &[&'m Mapping], method: Method, path: &str) -> Option<&'m Mapping> {
    let path = without_slash(path);
    table
        .iter()
        .copied()
        .filter(|m| m.resource.is_route() && (m.method == method || m.method == Method::Any))
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
fn without_slash(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    }
}

/// Two routes (or entries) cover a common method.
fn methods_meet(a: Method, b: Method) -> bool {
    a == b || a == Method::Any || b == Method::Any
}

/// A Deny that exactness needs.
#[derive(Debug)]
pub struct ExactDeny<'m> {
    /// The method to deny (the denied route's).
    pub method: Method,
    /// The path pattern to deny, as IAM reads it (no leading slash): the denied route's own
    /// pattern, or, where that would also deny a granted route, the part of the Allow's
    /// pattern that runs past its route (`orders/*/?*` and `orders/` beside `orders/*` for
    /// `orders/{id}`).
    pub pattern: String,
    /// Whether the pattern followed by a slash is denied too (the route's own pattern: a
    /// REST API serves `orders/` from `orders`).
    pub slash_too: bool,
    /// An entry naming the denied route; the granted route itself (as `covered_by`) for a
    /// Deny of what its `*` reaches beyond it, where no route is named.
    pub route: &'m Mapping,
    /// An entry naming the granted route whose Allow covers it.
    pub covered_by: &'m Mapping,
}

/// Where a Deny for exactness also denies requests this token is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inseparable {
    /// The route denied: `METHOD /path`.
    pub denied: String,
    /// The granted route or glob entry that loses requests: `METHOD /path`.
    pub granted: String,
    /// One such request: its method (never `ANY`)...
    pub method: Method,
    /// ...and its path (no leading slash).
    pub example: String,
}

/// What exactness adds to one token's policy on one API and stage.
#[derive(Debug, Default)]
pub struct Exactness<'m> {
    /// The Denies to write beside the token's Allows.
    pub denies: Vec<ExactDeny<'m>>,
    /// The pairs IAM cannot tell apart (their requests are denied, never allowed).
    pub inseparable: Vec<Inseparable>,
}

/// The Denies that make one token's policy exact. `table` is every Allow entry on a route of
/// the API and stage (whatever it requires); `token` is the entries the token meets there
/// (Allows and Denies, routes and globs).
///
/// For every route the token is not granted whose requests the `*` of a granted template
/// route's Allow may cover, one Deny, chosen so as not to cover granted routes:
/// 1. the denied route's own pattern (`orders/*/payments`), when it covers no request of a
///    granted route;
/// 2. else, when the two routes share no request, the Allow's over-reach: its pattern with
///    one `*` made to span a `/` (`orders/*/?*`), one Deny per parameter;
/// 3. else the route's own pattern anyway (fail closed), reported as [`Inseparable`].
pub fn exact_denies<'m>(table: &[&'m Mapping], token: &[&'m Mapping]) -> Exactness<'m> {
    // Both lists borrow the same snapshot's entries: the same entry is the same address.
    let is_met = |m: &Mapping| token.iter().any(|t| std::ptr::eq(*t, m));
    let mut routes: Vec<Route<'m>> = Vec::new();
    for &m in table {
        if m.effect != Effect::Allow || !m.resource.is_route() {
            continue;
        }
        let segs = segments(&m.resource);
        let granted = is_met(m);
        match routes
            .iter_mut()
            .find(|r| r.method == m.method && r.segments == segs)
        {
            Some(r) => r.granted |= granted,
            None => routes.push(Route {
                method: m.method,
                resource: &m.resource,
                program: Program::route(&segs),
                glob: Program::glob(&m.resource.policy_pattern()),
                segments: segs,
                entry: m,
                granted,
            }),
        }
    }
    let globs = glob_allows(token);
    // The granted requests a Deny pattern would also cover: one example per loser.
    let losses_of = |method: Method, deny: &Program| -> Vec<(String, Method, String)> {
        let mut lost = Vec::new();
        for g in routes
            .iter()
            .filter(|g| g.granted && methods_meet(g.method, method))
        {
            // The methods the lost request may have: where both are `ANY`, any of them
            // (another route may own the path for one method only).
            let one = [if method != Method::Any {
                method
            } else {
                g.method
            }];
            let methods: &[Method] = if one[0] == Method::Any {
                &Method::CONCRETE
            } else {
                &one
            };
            // A path of `g` that no more specific route takes: then it is `g`'s request.
            let example = methods.iter().find_map(|&m| {
                let beaten_by: Vec<&Program> = routes
                    .iter()
                    .filter(|h| {
                        !std::ptr::eq(*h, g)
                            && (h.method == m || h.method == Method::Any)
                            && beats(h, g)
                    })
                    .map(|h| &h.program)
                    .collect();
                match meet_excluding(deny, &g.program, &beaten_by) {
                    Meet::Path(e) => {
                        debug_assert!(route_of(&routes, m, &e).is_some_and(|r| std::ptr::eq(r, g)));
                        Some((m, e))
                    }
                    // Not known to be free of the granted route's requests: count it lost
                    // (the Deny may then be reported, never dropped).
                    Meet::GaveUp => Some((m, GAVE_UP.to_owned())),
                    Meet::Empty => None,
                }
            });
            if let Some((m, example)) = example {
                lost.push((format!("{} /{}", g.method, g.resource), m, example));
            }
        }
        for g in globs.iter().filter(|g| methods_meet(g.method, method)) {
            if let Some(example) =
                meet(deny, &Program::glob(&g.resource.policy_pattern())).or_lost()
            {
                let m = if method != Method::Any {
                    method
                } else {
                    g.method
                };
                let m = if m == Method::Any { Method::Get } else { m };
                lost.push((format!("{} /{}", g.method, g.resource), m, example));
            }
        }
        lost
    };
    let losses = |method: Method, pattern: &Pattern| -> Vec<(String, Method, String)> {
        let mut lost = losses_of(method, &Program::glob(&pattern.path));
        if pattern.slash_too {
            lost.extend(losses_of(
                method,
                &Program::glob(&format!("{}/", pattern.path)),
            ));
        }
        lost
    };
    let mut out = Exactness::default();
    for denied in routes.iter().filter(|r| !r.granted) {
        let own = Pattern::own(denied.resource);
        // A glob entry of the token that covers the whole route grants it (IAM meaning).
        if globs.iter().any(|g| {
            (g.method == Method::Any || g.method == denied.method)
                && covers(&g.resource.policy_pattern(), &own.path)
        }) {
            continue;
        }
        let denied_route = &denied.program;
        for by in routes.iter().filter(|g| {
            g.granted
                && over_covers(g.entry)
                && methods_meet(g.method, denied.method)
                && !meet(&g.glob, denied_route).is_empty()
        }) {
            let mut push = |p: Pattern| {
                if !out
                    .denies
                    .iter()
                    .any(|d| d.method == denied.method && d.pattern == p.path)
                {
                    out.denies.push(ExactDeny {
                        method: denied.method,
                        pattern: p.path,
                        slash_too: p.slash_too,
                        route: denied.entry,
                        covered_by: by.entry,
                    });
                }
            };
            let own_losses = losses(denied.method, &own);
            if own_losses.is_empty() {
                push(own.clone());
                continue;
            }
            // The over-reach leaves the granted route's own requests alone: sound when none of
            // them belongs to the denied route (they share none, or the granted route wins
            // every one it shares).
            let separate = beats(by, denied) || meet(&by.program, denied_route).is_empty();
            let reach = over_reach(&by.segments);
            if separate
                && !reach.is_empty()
                && reach.iter().all(|r| losses(denied.method, r).is_empty())
            {
                reach.into_iter().for_each(&mut push);
                continue;
            }
            push(own.clone());
            for (granted, method, example) in own_losses {
                let pair = Inseparable {
                    denied: format!("{} /{}", denied.method, denied.resource),
                    granted,
                    method,
                    example,
                };
                if !out
                    .inseparable
                    .iter()
                    .any(|i| i.denied == pair.denied && i.granted == pair.granted)
                {
                    out.inseparable.push(pair);
                }
            }
        }
    }
    // Paths no route names: what a granted template's `*` reaches beyond its route is
    // denied too, wherever that costs no granted request. The table may not name every
    // route of the API (an operation whose document gives no OAuth scope is not mapped), and
    // such a route must not be reached through another route's `*`.
    for g in routes
        .iter()
        .filter(|g| g.granted && g.resource.has_params())
    {
        for p in over_reach(&g.segments) {
            let known = out
                .denies
                .iter()
                .any(|d| d.method == g.method && d.pattern == p.path);
            if !known && losses(g.method, &p).is_empty() {
                out.denies.push(ExactDeny {
                    method: g.method,
                    pattern: p.path,
                    slash_too: p.slash_too,
                    route: g.entry,
                    covered_by: g.entry,
                });
            }
        }
    }
    out
}

/// The Denies an HTTP API adds for one token: an HTTP API routes `orders/7/` apart from
/// `orders/{id}` (to `{proxy+}` or `$default`), but the Allow's `*` matches it, so it is
/// denied, as a literal route's Allow is not widened to its slash there either. Not where a
/// glob entry of the token (IAM meaning) may match such a path: that glob grants it.
pub fn http_slash_denies<'m>(token: &[&'m Mapping]) -> Vec<ExactDeny<'m>> {
    let globs = glob_allows(token);
    let mut out = Vec::new();
    for m in token.iter().copied().filter(|m| {
        m.effect == Effect::Allow
            && m.resource.has_params()
            && !m.resource.as_str().ends_with("+}")
            && m.resource.as_str().ends_with('}')
    }) {
        let pattern = format!("{}/", m.resource.policy_pattern());
        let deny = Program::glob(&pattern);
        let costs_a_glob = globs.iter().any(|g| {
            methods_meet(g.method, m.method)
                && !meet(&deny, &Program::glob(&g.resource.policy_pattern())).is_empty()
        });
        if !costs_a_glob {
            out.push(ExactDeny {
                method: m.method,
                pattern,
                slash_too: false,
                route: m,
                covered_by: m,
            });
        }
    }
    out
}

/// Whether route `a` takes every request it shares with route `b` (for a method both cover):
/// it is more specific, or the same path for one method where `b` is `ANY`.
fn beats(a: &Route<'_>, b: &Route<'_>) -> bool {
    precedence((&a.segments, a.method), (&b.segments, b.method)) == Ordering::Greater
}

/// Which of two routes that match one request takes it (`Greater`: the first): the more
/// specific path ([`specificity`]), then, on the same path, a method's own route before
/// `ANY`. The one order the route of a request, and every comparison of routes, follow.
fn precedence(a: (&[Segment<'_>], Method), b: (&[Segment<'_>], Method)) -> Ordering {
    specificity(a.0, b.0).then_with(|| (a.1 != Method::Any).cmp(&(b.1 != Method::Any)))
}

/// A token's glob Allows: they grant what they match, with IAM's meaning, whatever route it
/// belongs to.
fn glob_allows<'m>(token: &[&'m Mapping]) -> Vec<&'m Mapping> {
    token
        .iter()
        .copied()
        .filter(|m| m.effect == Effect::Allow && !m.resource.is_route())
        .collect()
}

/// Whether an Allow on a route may cover other routes: a template's `*` covers deeper
/// paths, and an `ANY` route covers the routes of one method on its path.
pub fn over_covers(m: &Mapping) -> bool {
    m.effect == Effect::Allow
        && m.resource.is_route()
        && (m.resource.has_params() || m.method == Method::Any)
}

/// A Deny's path pattern, as IAM reads it.
#[derive(Debug, Clone)]
struct Pattern {
    path: String,
    slash_too: bool,
}

impl Pattern {
    /// A route's own pattern (`orders/*/payments`), with its trailing-slash twin.
    fn own(resource: &ResourcePath) -> Pattern {
        let path = resource.policy_pattern().into_owned();
        let slash_too = !path.is_empty() && !path.ends_with('*');
        Pattern { path, slash_too }
    }
}

/// What a template route's `*` covers beyond the route:
/// - one parameter's `*` spanning a `/` followed by at least one character (`orders/*/?*`;
///   `orders/7/` is the route's own request with a trailing slash), one pattern per
///   parameter (a greedy parameter spans `/` by right);
/// - the last parameter empty (`orders/`, or the root for `{proxy+}` alone): IAM's `*`
///   matches nothing too, and `orders/` is the `orders` route's request.
///
/// With the route's own requests, their union is all the Allow covers (but paths with an
/// empty segment, which no route has).
fn over_reach(route: &[Segment<'_>]) -> Vec<Pattern> {
    let render = |k: usize, with: &'static str| -> String {
        route
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                Segment::Literal(l) => l,
                _ if i == k => with,
                _ => "*",
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut out = Vec::new();
    for (k, seg) in route.iter().enumerate() {
        if *seg == Segment::Param {
            let path = render(k, "*/?*");
            let slash_too = !path.ends_with('*');
            out.push(Pattern { path, slash_too });
        }
    }
    if matches!(route.last(), Some(Segment::Param | Segment::Greedy)) {
        let path = render(route.len() - 1, "");
        out.push(Pattern {
            path,
            slash_too: false,
        });
    }
    out
}

/// A path pattern as a tiny automaton over bytes, for [`meet`].
#[derive(Debug)]
struct Program(Vec<Atom>);

#[derive(Debug, Clone, Copy)]
enum Atom {
    Byte(u8),
    /// `?`: one character, `/` included.
    AnyByte,
    /// `*`: any run, `/` included.
    AnyRun,
    /// `{param}`: one or more bytes but `/`.
    Segment,
    /// `{proxy+}`: one or more segments.
    Segments,
    /// One `/` or nothing: a REST API serves `orders/` from the `orders` route.
    OptionalSlash,
}

impl Program {
    fn glob(pattern: &str) -> Program {
        Program(
            pattern
                .bytes()
                .map(|b| match b {
                    b'*' => Atom::AnyRun,
                    b'?' => Atom::AnyByte,
                    b => Atom::Byte(b),
                })
                .collect(),
        )
    }

    fn route(segments: &[Segment<'_>]) -> Program {
        let mut atoms = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            if i > 0 {
                atoms.push(Atom::Byte(b'/'));
            }
            match s {
                Segment::Literal(l) => atoms.extend(l.bytes().map(Atom::Byte)),
                Segment::Param => atoms.push(Atom::Segment),
                Segment::Greedy => atoms.push(Atom::Segments),
            }
        }
        if !segments.is_empty() {
            atoms.push(Atom::OptionalSlash);
        }
        Program(atoms)
    }

    /// The moves from state `(at, inside)`: `inside` says a segment atom has consumed at
    /// least one byte of its current segment. Each move is the byte class and the next state;
    /// a class of `None` is a move that consumes nothing.
    fn moves(&self, (at, inside): (usize, bool)) -> Moves {
        let Some(&atom) = self.0.get(at) else {
            return Moves::of(&[]);
        };
        match atom {
            Atom::Byte(b) => Moves::of(&[(Some(Class::Byte(b)), (at + 1, false))]),
            Atom::AnyByte => Moves::of(&[(Some(Class::Any), (at + 1, false))]),
            Atom::AnyRun => Moves::of(&[(Some(Class::Any), (at, false)), (None, (at + 1, false))]),
            Atom::Segment if inside => {
                Moves::of(&[(Some(Class::NotSlash), (at, true)), (None, (at + 1, false))])
            }
            Atom::Segment => Moves::of(&[(Some(Class::NotSlash), (at, true))]),
            Atom::Segments if inside => Moves::of(&[
                (Some(Class::NotSlash), (at, true)),
                (Some(Class::Byte(b'/')), (at, false)),
                (None, (at + 1, false)),
            ]),
            Atom::Segments => Moves::of(&[(Some(Class::NotSlash), (at, true))]),
            Atom::OptionalSlash => Moves::of(&[
                (Some(Class::Byte(b'/')), (at + 1, false)),
                (None, (at + 1, false)),
            ]),
        }
    }

    fn accepts(&self, (at, _): (usize, bool)) -> bool {
        at == self.0.len()
    }
}

/// One move of an automaton: the byte class it consumes (`None`: nothing) and the next state.
type Move = (Option<Class>, (usize, bool));

/// The moves from one state: at most three, kept on the stack (the search asks for them at
/// every step).
struct Moves {
    items: [Move; 3],
    len: usize,
}

impl Moves {
    fn of(moves: &[Move]) -> Moves {
        let mut items = [(None, (0, false)); 3];
        items[..moves.len()].copy_from_slice(moves);
        Moves {
            items,
            len: moves.len(),
        }
    }

    fn as_slice(&self) -> &[Move] {
        &self.items[..self.len]
    }
}

#[derive(Debug, Clone, Copy)]
enum Class {
    Byte(u8),
    NotSlash,
    Any,
}

impl Class {
    fn allows(self, c: u8) -> bool {
        match self {
            Class::Byte(b) => b == c,
            Class::NotSlash => c != b'/',
            Class::Any => true,
        }
    }
}

/// A set of states of one automaton, closed under the moves that consume nothing, sorted.
type States = Vec<(usize, bool)>;

impl Program {
    fn closure(&self, mut set: States) -> States {
        let mut i = 0;
        while i < set.len() {
            for &(class, next) in self.moves(set[i]).as_slice() {
                if class.is_none() && !set.contains(&next) {
                    set.push(next);
                }
            }
            i += 1;
        }
        set.sort_unstable();
        set
    }

    fn step(&self, set: &States, c: u8) -> States {
        let mut next = Vec::new();
        for &s in set {
            for &(class, to) in self.moves(s).as_slice() {
                if class.is_some_and(|k| k.allows(c)) && !next.contains(&to) {
                    next.push(to);
                }
            }
        }
        self.closure(next)
    }

    fn accepts_any(&self, set: &States) -> bool {
        set.iter().any(|&s| self.accepts(s))
    }

    /// Whether some string could match both: their fixed starts (the bytes before the first
    /// wildcard or parameter) agree as far as both go. A cheap test that spares most pairs of
    /// routes of an API the walk of [`meet`].
    fn may_meet(&self, other: &Program) -> bool {
        for (x, y) in self.0.iter().zip(&other.0) {
            match (x, y) {
                (Atom::Byte(x), Atom::Byte(y)) if x != y => return false,
                (Atom::Byte(_), Atom::Byte(_)) => {}
                _ => return true,
            }
        }
        true
    }

    fn literals(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.iter().filter_map(|a| match a {
            Atom::Byte(b) => Some(*b),
            _ => None,
        })
    }
}

/// The searches' hasher: their keys are automaton states, no attack surface.
type Fast = foldhash::fast::FixedState;

/// The most states [`meet_excluding`] visits before it gives up (and says "none"): far above
/// what the patterns of one API need, a bound on what a hostile mapping can cost a policy
/// build. Giving up can only miss a report, never add an Allow.
const MAX_VISITED: usize = 20_000;

/// A path that `a` and `b` both match and none of `excluded` matches, if there is one: a
/// breadth-first walk over the product of the automata, each followed as the set of states
/// it can be in. Bytes are tried by class: every byte some pattern names, `/`, and one byte
/// none names (`x` when free), which stands for all the others.
fn meet_excluding(a: &Program, b: &Program, excluded: &[&Program]) -> Meet {
    type Key = (States, States, Vec<States>);
    if !a.may_meet(b) {
        return Meet::Empty;
    }
    // A pattern that cannot match what `b` matches excludes nothing.
    let excluded: Vec<&Program> = excluded.iter().copied().filter(|p| p.may_meet(b)).collect();
    if excluded.is_empty() {
        return meet_pair(a, b);
    }
    let excluded = excluded.as_slice();
    let mut alphabet: Vec<u8> = a
        .literals()
        .chain(b.literals())
        .chain(excluded.iter().flat_map(|p| p.literals()))
        .chain([b'/'])
        .collect();
    alphabet.sort_unstable();
    alphabet.dedup();
    // `x` reads best in an example; any printable byte will do; failing all of them, a byte
    // that never occurs in UTF-8 (so in no pattern) stands for the rest.
    let fresh = (b'x'..=b'z')
        .chain(b'0'..=b'9')
        .chain(b'a'..=b'w')
        .chain(b'!'..=b'~')
        .find(|c| !alphabet.contains(c))
        .unwrap_or(0xFF);
    alphabet.insert(0, fresh);

    let start: Key = (
        a.closure(vec![(0, false)]),
        b.closure(vec![(0, false)]),
        excluded
            .iter()
            .map(|p| p.closure(vec![(0, false)]))
            .collect(),
    );
    let mut parent: HashMap<Key, Option<(Key, u8)>, Fast> = HashMap::default();
    parent.insert(start.clone(), None);
    let mut queue = VecDeque::from([start]);
    while let Some(key) = queue.pop_front() {
        let (sa, sb, ex) = &key;
        if a.accepts_any(sa)
            && b.accepts_any(sb)
            && !excluded.iter().zip(ex).any(|(p, s)| p.accepts_any(s))
        {
            let mut bytes = Vec::new();
            let mut at = &key;
            while let Some(Some((prev, byte))) = parent.get(at) {
                bytes.push(*byte);
                at = prev;
            }
            bytes.reverse();
            return Meet::Path(String::from_utf8_lossy(&bytes).into_owned());
        }
        for &c in &alphabet {
            let na = a.step(sa, c);
            if na.is_empty() {
                continue;
            }
            let nb = b.step(sb, c);
            if nb.is_empty() {
                continue;
            }
            let nex = excluded.iter().zip(ex).map(|(p, s)| p.step(s, c)).collect();
            let next: Key = (na, nb, nex);
            if parent.len() >= MAX_VISITED {
                return Meet::GaveUp;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(next.clone()) {
                e.insert(Some((key.clone(), c)));
                queue.push_back(next);
            }
        }
    }
    Meet::Empty
}

/// A path both patterns match, if there is one.
fn meet(a: &Program, b: &Program) -> Meet {
    meet_excluding(a, b, &[])
}

/// [`meet_excluding`] with nothing excluded: a breadth-first walk over pairs of states, each
/// automaton followed state by state (no sets), with a byte both classes allow; the common
/// case, and much cheaper.
fn meet_pair(a: &Program, b: &Program) -> Meet {
    type State = ((usize, bool), (usize, bool));
    let start: State = ((0, false), (0, false));
    let mut parent: HashMap<State, Option<(State, Option<u8>)>, Fast> = HashMap::default();
    parent.insert(start, None);
    let mut queue = VecDeque::from([start]);
    while let Some(state @ (sa, sb)) = queue.pop_front() {
        if a.accepts(sa) && b.accepts(sb) {
            let mut bytes = Vec::new();
            let mut at = state;
            while let Some(Some((prev, byte))) = parent.get(&at) {
                bytes.extend(byte);
                at = *prev;
            }
            bytes.reverse();
            return Meet::Path(String::from_utf8_lossy(&bytes).into_owned());
        }
        let (ma, mb) = (a.moves(sa), b.moves(sb));
        let (ma, mb) = (ma.as_slice(), mb.as_slice());
        let mut next: Vec<(State, Option<u8>)> = Vec::new();
        next.extend(
            ma.iter()
                .filter(|m| m.0.is_none())
                .map(|&(_, ta)| ((ta, sb), None)),
        );
        next.extend(
            mb.iter()
                .filter(|m| m.0.is_none())
                .map(|&(_, tb)| ((sa, tb), None)),
        );
        for &(ca, ta) in ma {
            for &(cb, tb) in mb {
                if let Some(byte) = ca.zip(cb).and_then(|(ca, cb)| both(ca, cb)) {
                    next.push(((ta, tb), Some(byte)));
                }
            }
        }
        for (n, byte) in next {
            if parent.len() >= MAX_VISITED {
                return Meet::GaveUp;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(n) {
                e.insert(Some((state, byte)));
                queue.push_back(n);
            }
        }
    }
    Meet::Empty
}

/// A byte two classes both allow: the class's own byte, else `x` (no exclusions: any byte
/// but `/` will do).
fn both(a: Class, b: Class) -> Option<u8> {
    match (a, b) {
        (Class::Byte(x), Class::Byte(y)) => (x == y).then_some(x),
        (Class::Byte(x), other) | (other, Class::Byte(x)) => other.allows(x).then_some(x),
        _ => Some(b'x'),
    }
}

/// What [`meet_excluding`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Meet {
    /// A path both match (and no excluded pattern does).
    Path(String),
    /// There is none.
    Empty,
    /// The search stopped at [`MAX_VISITED`]: there may be one. Every caller reads this the
    /// way that denies more: a Deny is still written, a loss is still reported.
    GaveUp,
}

/// The example of a loss [`meet`] could not finish looking for.
const GAVE_UP: &str = "(not found within the search bound)";

impl Meet {
    /// Known to have no common path.
    fn is_empty(&self) -> bool {
        *self == Meet::Empty
    }

    /// The common path, or, when the search gave up, [`GAVE_UP`]: for loss reports.
    fn or_lost(self) -> Option<String> {
        match self {
            Meet::Path(p) => Some(p),
            Meet::GaveUp => Some(GAVE_UP.to_owned()),
            Meet::Empty => None,
        }
    }

    #[cfg(test)]
    fn as_deref(&self) -> Option<&str> {
        match self {
            Meet::Path(p) => Some(p),
            _ => None,
        }
    }
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

    #[test]
    fn meet_finds_a_common_path_or_none() {
        let route = |s: &str| {
            let r = p(s);
            Program::route(&segments(&r))
        };
        assert_eq!(
            meet(&Program::glob("orders/*"), &route("orders/{id}/payments")).as_deref(),
            Some("orders/x/payments")
        );
        assert_eq!(
            meet(
                &Program::glob("orders/*/payments"),
                &route("orders/{id}/items/{item}")
            )
            .as_deref(),
            Some("orders/x/items/payments")
        );
        assert_eq!(
            meet(&Program::glob("orders/*/payments"), &route("orders/{id}")),
            Meet::Empty
        );
        assert_eq!(
            meet(&Program::glob("orders/new"), &route("orders/{id}")).as_deref(),
            Some("orders/new")
        );
        assert_eq!(
            meet(&Program::glob("a?c"), &Program::glob("*b*")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            meet(&Program::glob("files/*"), &route("files/{p+}")).as_deref(),
            Some("files/x")
        );
        assert_eq!(meet(&Program::glob(""), &route("{p+}")), Meet::Empty);
    }
}
