//! Exact policies: the Denies that keep a template's Allow to the routes the token is
//! granted, compiled once per API and stage of a snapshot, assembled per token.
//!
//! IAM has no one-segment wildcard, so a template is written into the policy as `*`
//! (`orders/{id}` as `orders/*`), which also covers `orders/7/payments`: another route,
//! which may need another scope. For every route the token is not granted whose requests
//! such an Allow covers, the policy denies it beside the Allow: by the route's own pattern,
//! or, where that would deny a granted route, by the part of the Allow that runs past its
//! own route. So the requests a policy allows are exactly the requests of the routes the
//! token is granted (and what its glob entries match, with their IAM meaning).
//!
//! Where IAM cannot tell two routes apart, the Deny wins: it may also cover some requests of
//! a granted route (`orders/{id}/payments` is denied as `orders/*/payments`, which also
//! matches `orders/7/items/payments`, a request of `orders/{id}/items/{item}`). Those
//! requests are denied, never allowed, and reported as [`Inseparable`] with an example, so
//! that `validate` and `explain` can name them.
//!
//! # Cost
//! What depends only on the table is computed once per table: for every pattern a policy may
//! hold (each route's own pattern, each template's Allow and what it reaches past its
//! route), the routes that own some request it matches, found by one walk of the route trie
//! (see `RouteTable::owners`). [`RouteTable::new`] only builds the trie and interns the
//! patterns; each walk runs on the first policy that needs it, then is kept: what a route's
//! Allow reaches when a token is first granted that route, a Deny pattern's owners when a
//! policy first weighs that Deny. A token's Denies are then set lookups over its granted
//! routes: a new scope set costs what its routes reach, and a walk only for patterns no
//! earlier token needed. A table of literal paths (whose Allows reach no other route) costs
//! about what the same table written as globs costs.
//! Only a token's glob entries (IAM meaning, any shape) are compared with a Deny per token,
//! by `pattern::meet` on two patterns.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use super::entry::{Mapping, Method, ResourcePath};
use super::pattern::{meet, Glob, Meet, States};
use super::routing::{methods_meet, rank_order, segments, Segment};
use crate::policy::{covers, Effect};
use foldhash::fast::FixedState;

/// The example of a loss a search could not finish looking for.
pub const GAVE_UP: &str = "(not found within the search bound)";

/// The most states one walk of the route trie visits before it gives up: far above what the
/// patterns of one API need (a walk visits about the routes under the pattern's literal
/// prefix), a bound on what a hostile table can cost. Giving up counts every route as
/// reached: more Denies, never an Allow.
const MAX_WALK: usize = 50_000;

/// Two routes IAM cannot tell apart for one token: the Deny that keeps the token from
/// `denied` also covers some requests of `granted`, which are then denied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Inseparable {
    /// The route denied: `METHOD /path`.
    pub denied: String,
    /// The granted route or glob entry that loses requests: `METHOD /path`.
    pub granted: String,
    /// One such request: its method (`ANY` for an HTTP API's `ANY` request)...
    pub method: Method,
    /// ...and its path (no leading slash).
    pub example: String,
}

/// A Deny that exactness needs.
#[derive(Debug)]
pub struct ExactDeny<'t> {
    /// The method to deny (the denied route's).
    pub method: Method,
    /// The path pattern to deny, as IAM reads it (no leading slash).
    pub pattern: Cow<'t, str>,
    /// Whether the pattern followed by a slash is denied too (a REST API serves `orders/`
    /// from `orders`).
    pub slash_too: bool,
    /// The entry (index into the snapshot's entries) naming the denied route; the granted
    /// route itself for a Deny of what its `*` reaches beyond it.
    pub route: u32,
    /// The entry naming the granted route whose Allow covers it.
    pub covered_by: u32,
}

/// What exactness adds to one token's policy on one API and stage.
#[derive(Debug, Default)]
pub struct Exactness<'t> {
    /// The Denies to write beside the token's Allows.
    pub denies: Vec<ExactDeny<'t>>,
    /// The pairs IAM cannot tell apart (their requests are denied).
    pub inseparable: Vec<Inseparable>,
    /// What `inseparable` holds, to report each once without a search of it.
    reported: HashSet<Inseparable, FixedState>,
}

impl Exactness<'_> {
    /// Reports each granted request a Deny of `denied` costs, once per pair.
    fn report(&mut self, denied: &str, lost: Vec<(String, Method, String)>) {
        for (granted, method, example) in lost {
            let pair = Inseparable {
                denied: denied.to_owned(),
                granted,
                method,
                example,
            };
            if self.reported.insert(pair.clone()) {
                self.inseparable.push(pair);
            }
        }
    }
}

/// A route of the table: a method and a path shape, named by one or more Allow entries.
#[derive(Debug)]
struct Route {
    method: Method,
    /// The entry it was first named by (index into the snapshot's entries).
    entry: u32,
    /// Its segments' ranks (literal 2, `{param}` 1, `{proxy+}` 0): the route order.
    ranks: Box<[u8]>,
    /// Its path, for the rare pairwise test of [`routes_meet`].
    resource: ResourcePath,
    /// Its own Deny pattern (`orders/*/payments`), an index into `patterns`.
    own: u32,
    /// The other routes whose requests its Allow's pattern covers, for a method the Allow
    /// covers ([`RouteTable::reach_of`]): walked for on the first policy that grants the
    /// route, then kept. Empty for a route whose Allow covers only its own requests (a
    /// literal path of one method).
    reach: OnceLock<Box<[u32]>>,
    /// What its Allow covers beyond the route (see [`over_reach`]), indices into `patterns`.
    over_reach: Box<[u32]>,
}

/// A Deny pattern and the routes owning a request it matches, found by the first policy
/// that needs them (see [`RouteTable::owners_of`]).
#[derive(Debug)]
struct DenyPattern {
    path: Box<str>,
    slash_too: bool,
    owners: OnceLock<Owners>,
}

#[derive(Debug)]
enum Owners {
    /// One example request per (route, method of the request ARN: the seven, and `Any` for
    /// an HTTP API's `ANY`).
    Known(Vec<Owner>),
    /// The walk hit [`MAX_WALK`]: every route may own one.
    GaveUp,
}

#[derive(Debug)]
struct Owner {
    route: u32,
    method: Method,
    /// Shared by the routes one request reaches.
    example: Arc<str>,
}

/// A node of the route trie.
#[derive(Debug, Default)]
struct Node {
    literal: HashMap<Box<str>, u32, FixedState>,
    param: Option<u32>,
    greedy: Option<u32>,
    /// The routes whose path ends here.
    ends: Vec<u32>,
}

/// The methods a request ARN can hold, in the order of [`Greedy`].
const ARN_METHODS: [Method; REQUEST_METHODS] = Method::REQUEST;

/// How many methods a request ARN can hold.
const REQUEST_METHODS: usize = Method::REQUEST.len();

/// No route.
const NONE: u32 = u32::MAX;

/// Per request method ([`ARN_METHODS`]), the most specific greedy route a walk has entered
/// that takes it, or [`NONE`].
type Greedy = [u32; REQUEST_METHODS];

/// The compiled exactness of one API and stage: its routes, the trie a request is routed
/// through, and for every Deny a policy may need, whose requests it would also cover.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    nodes: Vec<Node>,
    patterns: Vec<DenyPattern>,
    /// Entry index -> its routes (one, or every method's for `*`), for the entries that
    /// name a route.
    by_entry: HashMap<u32, Box<[u32]>, FixedState>,
    /// A segment value no route names: stands for every such value in a walk.
    fresh: Box<str>,
}

impl RouteTable {
    /// Compiles the route table of `table`: the indices (into `entries`) of every Allow
    /// entry on a route of one API and stage, whatever it requires.
    pub fn new(entries: &[Mapping], table: &[u32]) -> RouteTable {
        let mut t = RouteTable {
            routes: Vec::new(),
            nodes: vec![Node::default()],
            patterns: Vec::new(),
            by_entry: HashMap::with_capacity_and_hasher(table.len(), FixedState::default()),
            fresh: "x".into(),
        };
        // The trie node each route's path ends at: one per path shape, so the routes of a
        // path (one per method) are found there, and share one own pattern.
        let mut ends_at: Vec<u32> = Vec::with_capacity(table.len());
        for &i in table {
            let m = &entries[i as usize];
            debug_assert!(m.effect == Effect::Allow && m.resource.is_route());
            let segs = segments(&m.resource);
            let node = t.insert(&segs);
            // `*` names every method's route on its path (and the `ANY` route an HTTP API's
            // `ANY` request takes): one route per method, each the same route as an entry of
            // that method alone.
            let methods: &[Method] = if m.method == Method::Every {
                &ARN_METHODS
            } else {
                std::slice::from_ref(&m.method)
            };
            let mut ids = Vec::with_capacity(methods.len());
            for &method in methods {
                let ends = &t.nodes[node as usize].ends;
                if let Some(&id) = ends
                    .iter()
                    .find(|&&r| t.routes[r as usize].method == method)
                {
                    ids.push(id);
                    continue;
                }
                let id = u32::try_from(t.routes.len()).expect("fewer than 2^32 routes");
                ids.push(id);
                t.nodes[node as usize].ends.push(id);
                ends_at.push(node);
                t.routes.push(Route {
                    method,
                    entry: i,
                    ranks: segs.iter().map(|s| s.rank()).collect(),
                    resource: m.resource.clone(),
                    own: 0,
                    reach: OnceLock::new(),
                    over_reach: Box::new([]),
                });
            }
            t.by_entry.insert(i, ids.into_boxed_slice());
        }
        t.fresh = (0..)
            .map(|n| {
                if n == 0 {
                    "x".to_owned()
                } else {
                    format!("x{n}")
                }
            })
            .find(|f| !t.nodes.iter().any(|n| n.literal.contains_key(f.as_str())))
            .expect("a segment value no route names")
            .into();
        // Patterns are shared (one owners walk each): the routes of one path (one per method)
        // have one own pattern, made once for the node their path ends at, and the root's is
        // also what a root `{proxy+}` reaches beyond its route.
        let mut own_of_node: Vec<u32> = vec![NONE; t.nodes.len()];
        let mut interned: HashMap<(String, bool), u32, FixedState> = HashMap::default();
        for (r, &node) in ends_at.iter().enumerate() {
            let node = node as usize;
            if own_of_node[node] == NONE {
                own_of_node[node] = t.intern(&mut interned, own_pattern(&t.routes[r].resource));
            }
            let own = own_of_node[node];
            let over_reach = if over_covers(&t.routes[r]) {
                over_reach(&segments(&t.routes[r].resource))
                    .into_iter()
                    .map(|p| t.intern(&mut interned, p))
                    .collect()
            } else {
                Box::default()
            };
            let route = &mut t.routes[r];
            route.own = own;
            route.over_reach = over_reach;
        }
        t
    }

    /// The other routes whose requests route `r`'s Allow covers, for a method it covers:
    /// walked for on first use and kept, so that a table costs the walks of the routes its
    /// tokens are granted, not of every template and `ANY` route it holds.
    fn reach_of(&self, r: u32) -> &[u32] {
        let route = &self.routes[r as usize];
        route.reach.get_or_init(|| {
            if !over_covers(route) {
                return Box::default();
            }
            let method = route.method;
            match self.owners(&Glob::new(&route.resource.policy_pattern())) {
                Owners::Known(list) => {
                    let mut ids: Vec<u32> = list
                        .iter()
                        .filter(|o| o.route != r && (method == Method::Any || o.method == method))
                        .map(|o| o.route)
                        .collect();
                    ids.sort_unstable();
                    ids.dedup();
                    ids.into()
                }
                Owners::GaveUp => (0..self.routes.len() as u32)
                    .filter(|&o| o != r && methods_meet(method, self.routes[o as usize].method))
                    .collect(),
            }
        })
    }

    /// [`reach_of`](Self::reach_of) route `r` for Allows of it by bound entries `by`, as
    /// `value_of` fills their bound segments: walked per token (the values are its own),
    /// about the nodes under the Allow's literal prefix. A walk that gives up falls back on
    /// the route's whole reach.
    fn bound_reach<'v>(
        &self,
        r: u32,
        by: &[&Mapping],
        value_of: &dyn Fn(&str) -> Option<&'v str>,
    ) -> Vec<u32> {
        let method = self.routes[r as usize].method;
        let mut ids: Vec<u32> = Vec::new();
        for m in by {
            match self.owners(&Glob::new(&m.resource.bound_pattern(value_of))) {
                Owners::Known(list) => ids.extend(
                    list.iter()
                        .filter(|o| o.route != r && (method == Method::Any || o.method == method))
                        .map(|o| o.route),
                ),
                Owners::GaveUp => return self.reach_of(r).to_vec(),
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// `METHOD /path` of route `r`, for reports.
    fn label(&self, r: u32) -> String {
        let route = &self.routes[r as usize];
        format!("{} /{}", route.method, route.resource)
    }

    fn insert(&mut self, segs: &[Segment<'_>]) -> u32 {
        let mut at = 0u32;
        for s in segs {
            let next = u32::try_from(self.nodes.len()).expect("fewer than 2^32 nodes");
            let node = &mut self.nodes[at as usize];
            let child = match s {
                Segment::Literal(l) => *node.literal.entry((*l).into()).or_insert(next),
                Segment::Param => *node.param.get_or_insert(next),
                Segment::Greedy => *node.greedy.get_or_insert(next),
            };
            if child == next {
                self.nodes.push(Node::default());
            }
            at = child;
        }
        at
    }

    fn intern(
        &mut self,
        interned: &mut HashMap<(String, bool), u32, FixedState>,
        p: Pattern,
    ) -> u32 {
        let key = (p.path, p.slash_too);
        if let Some(&id) = interned.get(&key) {
            return id;
        }
        let id = u32::try_from(self.patterns.len()).expect("fewer than 2^32 patterns");
        self.patterns.push(DenyPattern {
            path: key.0.clone().into(),
            slash_too: key.1,
            owners: OnceLock::new(),
        });
        interned.insert(key, id);
        id
    }

    /// The owners of interned pattern `p`, walked for on first use and kept: a pattern no
    /// token's policy needs (most routes' own patterns, in a table of literal paths) costs
    /// nothing.
    fn owners_of(&self, p: u32) -> &Owners {
        let pattern = &self.patterns[p as usize];
        pattern
            .owners
            .get_or_init(|| self.owners(&Glob::new(&pattern.path)))
    }

    /// The routes owning some request that `pattern` matches (or, for a pattern `p`, the
    /// request followed by a slash: a REST API routes `orders/` as `orders`), one example per
    /// route and method (see [`Owners::Known`]).
    ///
    /// A breadth-first walk of the trie, spelling requests out segment by segment. At each
    /// step only the values that can change an outcome are tried: each literal a live node
    /// branches on, each literal segment of the pattern, and one value no route names
    /// ([`RouteTable::fresh`], standing for all the others). A state is the trie nodes the
    /// path can be at, the best greedy route per method so far, and the pattern's state set;
    /// a state seen once is not walked again.
    ///
    /// A greedy route (`{proxy+}`) matches every longer path once entered, so the greedy
    /// nodes a path has passed are not carried along (they piled up, one per level, in a
    /// nested table, and every step paid for all of them): only, per request method, the most
    /// specific greedy route among them, which is all that can still win a request (the route
    /// order compares whole routes, and a greedy one matches whatever follows). So a walk
    /// visits about the nodes under the pattern's literal prefix, a few states each.
    fn owners(&self, pattern: &Glob) -> Owners {
        let pattern_literals = pattern_literals(pattern);
        struct Step {
            at: Vec<u32>,
            greedy: Greedy,
            states: States,
            parent: usize,
            segment: Box<str>,
            depth: usize,
        }
        let mut steps = vec![Step {
            at: vec![0],
            greedy: [NONE; REQUEST_METHODS],
            states: pattern.start(),
            parent: usize::MAX,
            segment: "".into(),
            depth: 0,
        }];
        let mut seen: HashSet<(Vec<u32>, Greedy, States), FixedState> = HashSet::default();
        seen.insert((
            steps[0].at.clone(),
            steps[0].greedy,
            steps[0].states.clone(),
        ));
        let mut queue = VecDeque::from([0usize]);
        let mut found: Vec<Owner> = Vec::new();
        let mut known: HashSet<(u32, Method), FixedState> = HashSet::default();
        let path_of = |steps: &[Step], mut i: usize| -> String {
            let mut parts = Vec::new();
            while i != usize::MAX && steps[i].depth > 0 {
                parts.push(&*steps[i].segment);
                i = steps[i].parent;
            }
            parts.reverse();
            parts.join("/")
        };
        let mut values: Vec<&str> = Vec::new();
        while let Some(i) = queue.pop_front() {
            // A request ending here, with or without a trailing slash.
            let step = &steps[i];
            let ends_here = step.greedy.iter().any(|&g| g != NONE)
                || step
                    .at
                    .iter()
                    .any(|&n| !self.nodes[n as usize].ends.is_empty());
            if ends_here {
                let plain = pattern.accepts(&step.states);
                let slash = step.depth > 0 && pattern.accepts(&pattern.step(&step.states, b"/"));
                if plain || slash {
                    let mut path: Option<Arc<str>> = None;
                    // Each method a request ARN can hold: the seven, and an HTTP API's
                    // `ANY`, which only an `ANY` route takes (its Allow and a Deny on every
                    // method write that segment too).
                    for (k, method) in ARN_METHODS.into_iter().enumerate() {
                        let ends = step
                            .at
                            .iter()
                            .flat_map(|&n| self.nodes[n as usize].ends.iter().copied());
                        let Some(route) = self.best(ends.chain(Some(step.greedy[k])), method)
                        else {
                            continue;
                        };
                        if known.insert((route, method)) {
                            let example = path
                                .get_or_insert_with(|| {
                                    let p = path_of(&steps, i);
                                    if plain { p } else { format!("{p}/") }.into()
                                })
                                .clone();
                            found.push(Owner {
                                route,
                                method,
                                example,
                            });
                        }
                    }
                }
            }
            // The segments worth trying next.
            values.clear();
            let mut open = step.greedy.iter().any(|&g| g != NONE);
            for &n in &step.at {
                let node = &self.nodes[n as usize];
                values.extend(node.literal.keys().map(|k| &**k));
                open |= node.param.is_some() || node.greedy.is_some();
            }
            if open {
                values.extend(pattern_literals.iter().map(|s| &**s));
                values.push(&self.fresh);
            }
            // Where the pattern can only go on with one literal segment, only that value can
            // lead anywhere: a walk under `r7/*` does not try the API's other resources.
            if let Some(next) = pattern.next_literal(&step.states, step.depth > 0) {
                values.retain(|v| v.as_bytes() == next);
            }
            values.sort_unstable();
            values.dedup();
            // The value no route names first: it reads best in an example (`orders/x`).
            if let Some(k) = values.iter().position(|v| *v == &*self.fresh) {
                values[..=k].rotate_right(1);
            }
            let states = if step.depth == 0 {
                step.states.clone()
            } else {
                pattern.step(&step.states, b"/")
            };
            if states.is_dead() {
                continue;
            }
            for &value in &values {
                let step = &steps[i];
                let mut at: Vec<u32> = Vec::new();
                let mut greedy = step.greedy;
                for &n in &step.at {
                    let node = &self.nodes[n as usize];
                    if let Some(&c) = node.literal.get(value) {
                        at.push(c);
                    }
                    if let Some(c) = node.param {
                        at.push(c);
                    }
                    if let Some(c) = node.greedy {
                        for (k, method) in ARN_METHODS.into_iter().enumerate() {
                            let ends = self.nodes[c as usize].ends.iter().copied();
                            if let Some(r) = self.best(ends.chain(Some(greedy[k])), method) {
                                greedy[k] = r;
                            }
                        }
                    }
                }
                if at.is_empty() && greedy.iter().all(|&g| g == NONE) {
                    continue;
                }
                at.sort_unstable();
                at.dedup();
                let next = pattern.step(&states, value.as_bytes());
                if next.is_dead() {
                    continue;
                }
                if !seen.insert((at.clone(), greedy, next.clone())) {
                    continue;
                }
                if seen.len() > MAX_WALK {
                    return Owners::GaveUp;
                }
                let depth = step.depth + 1;
                steps.push(Step {
                    at,
                    greedy,
                    states: next,
                    parent: i,
                    segment: value.into(),
                    depth,
                });
                queue.push_back(steps.len() - 1);
            }
        }
        Owners::Known(found)
    }

    /// The route that takes a request of `method` (a request ARN's: one of the seven, or
    /// `Any` for an HTTP API's `ANY`) among `candidates` that match it ([`NONE`] skipped): the
    /// most specific of those whose method covers it.
    fn best(&self, candidates: impl Iterator<Item = u32>, method: Method) -> Option<u32> {
        candidates
            .filter(|&r| r != NONE)
            .filter(|&r| {
                let m = self.routes[r as usize].method;
                m == method || m == Method::Any
            })
            .max_by(|&a, &b| {
                let (a, b) = (&self.routes[a as usize], &self.routes[b as usize]);
                rank_order((&a.ranks, a.method), (&b.ranks, b.method))
            })
    }

    /// The Denies that make one token's policy exact. `token` is the indices (into
    /// `entries`) of every entry the token meets on this API and stage: Allows and Denies,
    /// routes and globs.
    ///
    /// For every route the token is not granted whose requests the Allow of a granted route
    /// covers, one Deny, chosen so as not to cover granted routes:
    /// 1. the denied route's own pattern (`orders/*/payments`), when it covers no request of
    ///    a granted route or glob;
    /// 2. else, when the two routes share no request (or the granted one wins every request
    ///    they share), the part of the Allow's over-reach that reaches the denied route (its
    ///    pattern with one `*` made to span a `/`, `orders/*/?*`), if that costs fewer
    ///    granted routes than 1;
    /// 3. else the route's own pattern anyway (fail closed).
    ///
    /// Each Deny is for the Allow's method (for an `ANY` route's Allow, the denied route's),
    /// and every granted request a chosen Deny costs is reported as [`Inseparable`].
    ///
    /// Then what a granted template reaches beyond its route is denied wherever that costs
    /// no granted request (the table may not name every route of the API); and on an HTTP
    /// API, which routes `orders/7/` apart from `orders/{id}`, the slash beyond a template
    /// (`RouteTable::http_slash`).
    ///
    /// A route granted only by entries with `${claim:NAME}` segments (bound) is granted only
    /// where those segments are the token's values (`value_of`, by claim name): for the
    /// Allows of other routes it is a route the token is not granted, so they deny it, and
    /// that Deny, which also covers the token's own part of it, is reported. Only a bound
    /// Allow that can reach nothing but that part (every segment the bound route is bound
    /// at lies in its literal prefix, with the same value) leaves it alone.
    pub fn exactness<'t, 'v>(
        &'t self,
        entries: &[Mapping],
        token: &[u32],
        http: bool,
        value_of: &dyn Fn(&str) -> Option<&'v str>,
    ) -> Exactness<'t> {
        let mut out = Exactness::default();
        let globs: Vec<&Mapping> = token
            .iter()
            .map(|&i| &entries[i as usize])
            .filter(|m| m.effect == Effect::Allow && !m.resource.is_route())
            .collect();
        let mut grants = Grants {
            full: vec![false; self.routes.len()],
            held: vec![false; self.routes.len()],
            bound: HashMap::default(),
        };
        let mut any_over = false;
        for &i in token {
            let m = &entries[i as usize];
            for &r in self.by_entry.get(&i).into_iter().flatten() {
                grants.held[r as usize] = true;
                if m.resource.is_bound() {
                    grants.bound.entry(r).or_default().push(m);
                } else {
                    grants.full[r as usize] = true;
                }
                any_over |= over_covers(&self.routes[r as usize]);
            }
        }
        if any_over {
            self.route_denies(&grants, &globs, http, value_of, &mut out);
        }
        if http {
            self.http_slash(entries, token, &globs, &mut out);
        }
        out
    }

    fn route_denies<'t, 'v>(
        &'t self,
        grants: &Grants<'_>,
        globs: &[&Mapping],
        http: bool,
        value_of: &dyn Fn(&str) -> Option<&'v str>,
        out: &mut Exactness<'t>,
    ) {
        let granted = &grants.held;
        let mut written: HashSet<(Method, u32), FixedState> = HashSet::default();
        let push = |out: &mut Exactness<'t>,
                    written: &mut HashSet<(Method, u32), FixedState>,
                    method: Method,
                    p: u32,
                    route: u32,
                    by: u32| {
            if written.insert((method, p)) {
                let pattern = &self.patterns[p as usize];
                out.denies.push(ExactDeny {
                    method,
                    pattern: Cow::Borrowed(&pattern.path),
                    slash_too: pattern.slash_too,
                    route,
                    covered_by: by,
                });
            }
        };
        let granted_routes = (0..self.routes.len()).filter(|&r| granted[r]);
        for r in granted_routes.clone() {
            let by = &self.routes[r];
            if !over_covers(by) {
                continue;
            }
            // A route granted only by bound entries reaches what their Allows reach as this
            // token's values write them (`tenants/acme/orders` does not reach
            // `tenants/a/reports/orders`, which `tenants/*/orders` does).
            let reach: Cow<'_, [u32]> = match grants.bound_only(r as u32) {
                Some(by) => Cow::Owned(self.bound_reach(r as u32, by, value_of)),
                None => Cow::Borrowed(self.reach_of(r as u32)),
            };
            for &s in reach.iter() {
                if grants.full[s as usize] || grants.covers_bound(r as u32, s, value_of) {
                    continue;
                }
                let denied = &self.routes[s as usize];
                let own = &self.patterns[denied.own as usize];
                // A glob entry of the token that covers the whole route grants it (IAM
                // meaning).
                if glob_covers(globs, denied.method, &own.path) {
                    continue;
                }
                // Only the requests this Allow covers need the Deny: its method's, or, for an
                // `ANY` route's Allow, the denied route's.
                let m = if by.method == Method::Any {
                    denied.method
                } else {
                    by.method
                };
                let own_losses = self.losses(granted, globs, http, m, denied.own);
                if own_losses.is_empty() {
                    push(out, &mut written, m, denied.own, denied.entry, by.entry);
                    continue;
                }
                // The over-reach leaves the granted route's own requests alone: sound when
                // none of them belongs to the denied route (they share none, or the granted
                // route wins every one it shares). Of it, only the patterns that reach the
                // denied route are needed.
                let separate = rank_order((&by.ranks, by.method), (&denied.ranks, denied.method))
                    == std::cmp::Ordering::Greater
                    || !routes_meet(&segments(&by.resource), &segments(&denied.resource));
                let needed: Vec<u32> = if separate {
                    by.over_reach
                        .iter()
                        .copied()
                        .filter(|&p| self.reaches(p, s, m))
                        .collect()
                } else {
                    Vec::new()
                };
                let (chosen, lost): (&[u32], _) = if needed.is_empty() {
                    (std::slice::from_ref(&denied.own), own_losses)
                } else {
                    let mut lost = Vec::new();
                    let mut losers: HashSet<String, FixedState> = HashSet::default();
                    for &p in &needed {
                        for l in self.losses(granted, globs, http, m, p) {
                            if losers.insert(l.0.clone()) {
                                lost.push(l);
                            }
                        }
                    }
                    // Both cost granted requests. The route's own pattern costs only where
                    // the routes overlap in IAM's eyes, unless it is wide (a catch-all's `*`):
                    // the over-reach only when it costs fewer routes, so that one pair IAM
                    // cannot separate never costs the token's whole policy.
                    if lost.len() < own_losses.len() {
                        (&needed[..], lost)
                    } else {
                        (std::slice::from_ref(&denied.own), own_losses)
                    }
                };
                for &p in chosen {
                    push(out, &mut written, m, p, denied.entry, by.entry);
                }
                out.report(&self.label(s), lost);
            }
        }
        // Paths no route names: what a granted template's `*` reaches beyond its route is
        // denied too, wherever that costs no granted request. The table may not name every
        // route of the API, and such a route must not be reached through another's `*`.
        for r in granted_routes {
            let g = &self.routes[r];
            if !g.resource.has_params() {
                continue;
            }
            for &p in g.over_reach.iter() {
                if !written.contains(&(g.method, p))
                    && self.losses(granted, globs, http, g.method, p).is_empty()
                {
                    push(out, &mut written, g.method, p, g.entry, g.entry);
                }
            }
        }
    }

    /// Whether `pattern` matches a request of `method` (any, for `ANY`) that `route` owns
    /// (or may: a walk that gave up).
    fn reaches(&self, pattern: u32, route: u32, method: Method) -> bool {
        match self.owners_of(pattern) {
            Owners::Known(owners) => owners
                .iter()
                .any(|o| o.route == route && (method == Method::Any || o.method == method)),
            Owners::GaveUp => true,
        }
    }

    /// The granted requests a Deny of `pattern` for `method` would also cover: one example
    /// per granted route or glob entry that loses some, as (`METHOD /path` of the loser,
    /// the request's method, its path).
    fn losses(
        &self,
        granted: &[bool],
        globs: &[&Mapping],
        http: bool,
        method: Method,
        pattern: u32,
    ) -> Vec<(String, Method, String)> {
        let p = &self.patterns[pattern as usize];
        let mut lost: Vec<(String, Method, String)> = Vec::new();
        match self.owners_of(pattern) {
            Owners::Known(owners) => {
                let mut losers: HashSet<u32, FixedState> = HashSet::default();
                for o in owners {
                    // A REST API sends no `ANY` request: one costs nothing there.
                    if granted[o.route as usize]
                        && (method == Method::Any || o.method == method)
                        && (http || o.method != Method::Any)
                        && losers.insert(o.route)
                    {
                        lost.push((self.label(o.route), o.method, o.example.to_string()));
                    }
                }
            }
            Owners::GaveUp => {
                // Not known to be free of any granted route's requests: count each lost (the
                // Deny may then be reported, never dropped).
                for (r, route) in self.routes.iter().enumerate() {
                    if granted[r] && methods_meet(route.method, method) {
                        let m = concrete(method, route.method);
                        lost.push((self.label(r as u32), m, GAVE_UP.to_owned()));
                    }
                }
            }
        }
        lost.extend(glob_losses(globs, method, &p.path, p.slash_too));
        lost
    }

    /// An HTTP API routes `orders/7/` apart from `orders/{id}` (to `{proxy+}` or
    /// `$default`), but the Allow's `*` matches it: denied, as a literal route's Allow is not
    /// widened to its slash there either. Not where a glob entry of the token covers all of
    /// it (the glob grants it). Where a glob grants only part of it, the Deny is written all
    /// the same and the glob's loss is reported: a Deny that costs a granted request is
    /// reported, a missing one would be a wrong Allow.
    fn http_slash<'t>(
        &'t self,
        entries: &[Mapping],
        token: &[u32],
        globs: &[&Mapping],
        out: &mut Exactness<'t>,
    ) {
        for &i in token {
            let m = &entries[i as usize];
            let path = m.resource.as_str();
            if m.effect != Effect::Allow
                || !m.resource.is_route()
                || !path.ends_with('}')
                || path.ends_with("+}")
            {
                continue;
            }
            let pattern = format!("{}/", m.resource.policy_pattern());
            if glob_covers(globs, m.method, &pattern) {
                continue;
            }
            let lost = glob_losses(globs, m.method, &pattern, false);
            if !lost.is_empty() {
                out.report(&format!("{} /{}/", m.method, m.resource), lost);
            }
            out.denies.push(ExactDeny {
                method: m.method,
                pattern: Cow::Owned(pattern),
                slash_too: false,
                route: i,
                covered_by: i,
            });
        }
    }
}

/// The routes one token is granted: wholly (by an entry without `${claim:NAME}` segments),
/// or only where bound segments are its values.
struct Grants<'e> {
    /// Granted wholly.
    full: Vec<bool>,
    /// Granted wholly or in part: whose requests a Deny may cost.
    held: Vec<bool>,
    /// The bound entries granting a route, for the routes granted by any.
    bound: HashMap<u32, Vec<&'e Mapping>, FixedState>,
}

impl<'e> Grants<'e> {
    /// The bound entries granting route `r`, when only bound entries grant it.
    fn bound_only(&self, r: u32) -> Option<&[&'e Mapping]> {
        if self.full[r as usize] {
            return None;
        }
        self.bound.get(&r).map(Vec::as_slice)
    }

    /// Whether the token's Allows of route `r` cover no request of route `s` that it is not
    /// granted, `s` being granted only by bound entries: `r` is granted only by bound
    /// entries too, and each of them [implies](implied) one of `s`'s.
    fn covers_bound<'v>(&self, r: u32, s: u32, value_of: &dyn Fn(&str) -> Option<&'v str>) -> bool {
        if self.full[r as usize] {
            return false;
        }
        match (self.bound.get(&r), self.bound.get(&s)) {
            (Some(by), Some(of)) => by
                .iter()
                .all(|b| of.iter().any(|e| implied(b, e, value_of))),
            _ => false,
        }
    }
}

/// Whether every request that bound entry `by`'s Allow covers has, at each segment bound
/// entry `e` binds, `e`'s value: each such segment of `by` is in its literal prefix (only
/// literal and bound segments at or before it, so a request's segment there is `by`'s
/// exactly) and is that value.
fn implied<'v>(by: &Mapping, e: &Mapping, value_of: &dyn Fn(&str) -> Option<&'v str>) -> bool {
    let segs: Vec<&str> = by.resource.segments().collect();
    e.resource.bound_claims().all(|(k, name)| {
        let Some(want) = value_of(name) else {
            return false;
        };
        k < segs.len()
            && segs[..=k].iter().all(|seg| !seg.starts_with('{'))
            && match super::entry::placeholder(segs[k]) {
                Some(n) => value_of(n) == Some(want),
                None => segs[k] == want,
            }
    })
}

/// Whether a glob entry of the token for `method` (or every method) covers all of
/// `pattern`: then it grants what the pattern matches (IAM meaning).
fn glob_covers(globs: &[&Mapping], method: Method, pattern: &str) -> bool {
    globs.iter().any(|g| {
        (g.method.is_every() || g.method == method) && covers(&g.resource.policy_pattern(), pattern)
    })
}

/// The requests of a token's glob entries that a Deny of `path` (and `path/` with
/// `slash_too`) for `method` would cover.
fn glob_losses(
    globs: &[&Mapping],
    method: Method,
    path: &str,
    slash_too: bool,
) -> Vec<(String, Method, String)> {
    let mut lost = Vec::new();
    for g in globs.iter().filter(|g| methods_meet(g.method, method)) {
        let glob = g.resource.policy_pattern();
        // A search that gave up counts as a loss: the Deny is reported, never dropped.
        let example = |m: Meet| match m {
            Meet::Path(p) => Some(p),
            Meet::GaveUp => Some(GAVE_UP.to_owned()),
            Meet::Empty => None,
        };
        let found = example(meet(path, &glob)).or_else(|| {
            slash_too
                .then(|| example(meet(&format!("{path}/"), &glob)))
                .flatten()
        });
        if let Some(example) = found {
            let m = concrete(method, g.method);
            lost.push((format!("{} /{}", g.method, g.resource), m, example));
        }
    }
    lost
}

/// A concrete method of a request both methods cover (`GET` where both are `ANY` or `*`).
fn concrete(a: Method, b: Method) -> Method {
    match (a.is_every(), b.is_every()) {
        (true, true) => Method::Get,
        (true, false) => b,
        _ => a,
    }
}

/// Whether a route's Allow may cover other routes: a template's `*` covers deeper paths,
/// and an `ANY` route covers the routes of one method on its path. (`*` on a literal path
/// does not: the routes its Allow covers are every method's route there, which it names.)
fn covers_others(resource: &ResourcePath, method: Method) -> bool {
    resource.has_params() || method == Method::Any
}

/// [`covers_others`] of a route of the table.
fn over_covers(r: &Route) -> bool {
    covers_others(&r.resource, r.method)
}

/// Whether a token entry is an Allow on a route that may cover other routes (a template,
/// or an `ANY` route): only then does its policy need the route table.
pub fn entry_over_covers(m: &Mapping) -> bool {
    m.effect == Effect::Allow && m.resource.is_route() && covers_others(&m.resource, m.method)
}

/// Whether two routes share a request (with one trailing slash ignored).
fn routes_meet(a: &[Segment<'_>], b: &[Segment<'_>]) -> bool {
    for i in 0.. {
        match (a.get(i), b.get(i)) {
            (None, None) => return true,
            (Some(Segment::Greedy), Some(_)) | (Some(_), Some(Segment::Greedy)) => return true,
            (None, _) | (_, None) => return false,
            (Some(Segment::Literal(x)), Some(Segment::Literal(y))) if x != y => return false,
            _ => {}
        }
    }
    unreachable!("the loop returns")
}

/// The literal segments of a pattern (`orders` of `orders/*/?*`): values a walk must try
/// where a route takes any segment.
fn pattern_literals(pattern: &Glob) -> Vec<Box<str>> {
    pattern
        .text()
        .split('/')
        .filter(|s| !s.is_empty() && !s.contains(['*', '?']))
        .map(Into::into)
        .collect()
}

/// A Deny's path pattern, as IAM reads it.
#[derive(Debug, Clone)]
struct Pattern {
    path: String,
    slash_too: bool,
}

/// A route's own pattern (`orders/*/payments`), with its trailing-slash twin.
fn own_pattern(resource: &ResourcePath) -> Pattern {
    let path = resource.policy_pattern().into_owned();
    let slash_too = !path.is_empty() && !path.ends_with('*');
    Pattern { path, slash_too }
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
