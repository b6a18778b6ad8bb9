//! IAM resource patterns as automata over bytes: `*` any run (`/` included), `?` one byte,
//! everything else itself.
//!
//! Two uses, both by [`super::exact`]:
//! - [`Glob::start`], [`Glob::step`] and [`Glob::accepts`] follow one pattern along a path
//!   as it is spelled out, a state set kept as a bitset (the route-table walk steps every
//!   pattern byte by byte);
//! - [`meet`] finds a path two patterns both match, over pairs of single states (no subset
//!   construction, so at most `(|a| + 1) × (|b| + 1)` states): whether a Deny would also
//!   cover what a glob entry of the token grants.

use std::collections::{HashMap, VecDeque};

/// A compiled IAM pattern.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    bytes: Box<[u8]>,
}

/// The states a [`Glob`] can be in: bit `i` says the first `i` pattern bytes have matched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct States(Box<[u64]>);

impl States {
    fn empty(words: usize) -> States {
        States(vec![0; words].into_boxed_slice())
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Whether no state is left: the pattern can match nothing that starts so.
    pub(crate) fn is_dead(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Glob {
        Glob {
            bytes: pattern.as_bytes().into(),
        }
    }

    fn words(&self) -> usize {
        self.bytes.len() / 64 + 1
    }

    /// Adds the states a `*` lets through without consuming anything. Only the set states
    /// are visited, in ascending order, so that a `*` reached through another `*` is
    /// followed too: a state set is a few bits of a long pattern.
    fn close(&self, s: &mut States) {
        let n = self.bytes.len();
        for wi in 0..s.0.len() {
            let mut w = s.0[wi];
            while w != 0 {
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                let i = wi * 64 + b;
                if i < n && self.bytes[i] == b'*' {
                    s.set(i + 1);
                    if (i + 1) / 64 == wi {
                        w |= 1 << ((i + 1) % 64);
                    }
                }
            }
        }
    }

    /// The states before any byte.
    pub(crate) fn start(&self) -> States {
        let mut s = States::empty(self.words());
        s.set(0);
        self.close(&mut s);
        s
    }

    /// The states after `bytes`. Each byte visits only the set states (see `close`).
    pub(crate) fn step(&self, from: &States, bytes: &[u8]) -> States {
        let n = self.bytes.len();
        let mut cur = from.clone();
        let mut next = States::empty(self.words());
        for &c in bytes {
            next.0.iter_mut().for_each(|w| *w = 0);
            for (wi, &word) in cur.0.iter().enumerate() {
                let mut w = word;
                while w != 0 {
                    let b = w.trailing_zeros() as usize;
                    w &= w - 1;
                    let i = wi * 64 + b;
                    if i >= n {
                        continue;
                    }
                    match self.bytes[i] {
                        b'*' => next.set(i),
                        b'?' => next.set(i + 1),
                        p if p == c => next.set(i + 1),
                        _ => {}
                    }
                }
            }
            self.close(&mut next);
            if next.is_dead() {
                return next;
            }
            std::mem::swap(&mut cur, &mut next);
        }
        cur
    }

    /// The pattern as written.
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes).expect("built from a str")
    }

    /// The one literal segment the pattern must match next from `s`, if it is in one state
    /// followed (after a `/` when `after_slash`) by a segment of plain bytes: then no other
    /// segment value can lead to a match.
    pub(crate) fn next_literal(&self, s: &States, after_slash: bool) -> Option<&[u8]> {
        let mut states = (0..=self.bytes.len()).filter(|&i| s.has(i));
        let i = states.next()?;
        if states.next().is_some() {
            return None;
        }
        let rest = &self.bytes[i..];
        let rest = if after_slash {
            rest.strip_prefix(b"/")?
        } else {
            rest
        };
        let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let segment = &rest[..end];
        (!segment.is_empty() && !segment.iter().any(|&b| b == b'*' || b == b'?')).then_some(segment)
    }

    /// Whether the pattern has matched the whole path.
    pub(crate) fn accepts(&self, s: &States) -> bool {
        s.has(self.bytes.len())
    }
}

/// The most pairs of states [`meet`] visits before it gives up. Patterns are at most a
/// resource's 1 024 bytes, so a search is at most about a million pairs; the bound keeps a
/// hostile mapping from costing more than a few milliseconds per Deny.
const MAX_VISITED: usize = 200_000;

/// What [`meet`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Meet {
    /// A path both match.
    Path(String),
    /// There is none.
    Empty,
    /// The search stopped at its bound: there may be one. Every caller reads this the way
    /// that denies more.
    GaveUp,
}

/// A path that patterns `a` and `b` both match: a breadth-first walk over pairs of single
/// states, so the shortest such path.
pub(crate) fn meet(a: &str, b: &str) -> Meet {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    type State = (usize, usize);
    let mut parent: HashMap<State, Option<(State, Option<u8>)>, foldhash::fast::FixedState> =
        HashMap::default();
    parent.insert((0, 0), None);
    let mut queue = VecDeque::from([(0, 0)]);
    while let Some(state @ (i, j)) = queue.pop_front() {
        if i == a.len() && j == b.len() {
            let mut bytes = Vec::new();
            let mut at = state;
            while let Some(Some((prev, byte))) = parent.get(&at) {
                bytes.extend(byte);
                at = *prev;
            }
            bytes.reverse();
            return Meet::Path(String::from_utf8_lossy(&bytes).into_owned());
        }
        let (x, y) = (a.get(i).copied(), b.get(j).copied());
        let mut next: [Option<(State, Option<u8>)>; 3] = [None; 3];
        // A `*` may match nothing.
        if x == Some(b'*') {
            next[0] = Some(((i + 1, j), None));
        }
        if y == Some(b'*') {
            next[1] = Some(((i, j + 1), None));
        }
        // Both consume one byte: a `*` stays where it is.
        if let (Some(x), Some(y)) = (x, y) {
            let byte = match (x, y) {
                (b'*' | b'?', b'*' | b'?') => Some(b'x'),
                (b'*' | b'?', c) | (c, b'*' | b'?') => Some(c),
                (c, d) => (c == d).then_some(c),
            };
            if let Some(byte) = byte {
                let ni = if x == b'*' { i } else { i + 1 };
                let nj = if y == b'*' { j } else { j + 1 };
                next[2] = Some(((ni, nj), Some(byte)));
            }
        }
        for (n, byte) in next.into_iter().flatten() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(p: &str, path: &str) -> bool {
        let g = Glob::new(p);
        g.accepts(&g.step(&g.start(), path.as_bytes()))
    }

    #[test]
    fn a_glob_steps_as_iam_matches() {
        assert!(matches("orders/*", "orders/7/items"));
        assert!(matches("orders/*", "orders/"));
        assert!(!matches("orders/*", "orders"));
        assert!(matches("orders/*/?*", "orders/7/8"));
        assert!(!matches("orders/*/?*", "orders/7/"));
        assert!(matches("a?c", "abc"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        let long = format!("{}*", "a".repeat(100));
        assert!(matches(&long, &"a".repeat(150)));
        assert!(!matches(&long, &"a".repeat(99)));
    }

    #[test]
    fn meet_finds_a_common_path_or_none() {
        assert_eq!(
            meet("orders/*", "orders/*/payments"),
            Meet::Path("orders//payments".into())
        );
        assert_eq!(meet("orders/*/payments", "orders/7"), Meet::Empty);
        assert_eq!(meet("a?c", "*b*"), Meet::Path("abc".into()));
        assert_eq!(meet("x/*/", "x/a*"), Meet::Path("x/a/".into()));
        assert_eq!(meet("", "*"), Meet::Path(String::new()));
        assert_eq!(meet("a", "b"), Meet::Empty);
    }
}
