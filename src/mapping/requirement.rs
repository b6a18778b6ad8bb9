//! [`Scope`] and [`Requirement`]: what a token must carry for a mapping entry to apply. One
//! scope (the seed's `"scope": "email"`), several scopes at once (all-of, `"scopes":
//! ["orders:write", "orders:admin"]`), none beyond a verified token (`"scopes": []`), or
//! something no token carries (`"nobody": true`: a route held for nobody); and beside the
//! scopes, claim values ([`ClaimMatch`], `"claims": {"groups": ["support-leads"]}`), all of
//! them required too.

use std::fmt;
use std::str::FromStr;

use super::invalid::MappingError;
use crate::claim::{grant_key, ClaimName, ClaimValue};

/// The longest scope accepted: far beyond real scopes, short enough to bound what a mapping
/// can make the authorizer hash and log.
pub const MAX_SCOPE_LEN: usize = 256;

/// An OAuth scope as it appears in a token's `scp` or `scope` claim: an RFC 6749 3.3
/// scope-token (printable ASCII but space, `"` and `\`; see [`crate::scope`]) of at most
/// [`MAX_SCOPE_LEN`] characters. A token can carry no other scope, so an entry naming one
/// could never apply: it is refused rather than kept as dead weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// Validates a scope.
    pub fn new(s: &str) -> Result<Scope, MappingError> {
        let bad = |reason| MappingError::Scope {
            value: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.chars().count() > MAX_SCOPE_LEN {
            return Err(bad("it is longer than 256 characters"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(bad(
                "it contains whitespace, which separates scopes in a token",
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(bad("it contains control characters"));
        }
        if crate::scope::check_token(s).is_err() {
            return Err(bad(
                "RFC 6749 3.3 allows only printable ASCII but space, '\"' and '\\' in a scope",
            ));
        }
        Ok(Scope(s.to_owned()))
    }

    /// The scope text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Scope {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Scope, MappingError> {
        Scope::new(s)
    }
}

/// The text of [`Requirement::nobody`]'s one scope. `"` is outside RFC 6749 3.3's
/// scope-token, so no token can carry it (the token side refuses it, [`crate::scope`]), no
/// mapping can name it ([`Scope::new`] refuses it), and a store key that starts with it
/// cannot be another requirement's.
pub(crate) const NOBODY: &str = "\"nobody\"";

/// The most scopes one entry may require at once: far above real all-of rules (two or three),
/// low enough that checking one stays trivial.
pub const MAX_REQUIRED_SCOPES: usize = 16;

/// The most claim values one entry may require at once, over all its claims.
pub const MAX_REQUIRED_CLAIMS: usize = 16;

/// One claim value an entry requires: the token's claim `name` is `value`, or an array
/// holding it (see [`crate::claim`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimMatch {
    name: ClaimName,
    value: ClaimValue,
    /// [`grant_key`] of the two, made once: what the snapshot indexes the entry under.
    key: Box<str>,
}

impl ClaimMatch {
    /// Claim `name` must hold `value`.
    pub fn new(name: ClaimName, value: ClaimValue) -> ClaimMatch {
        let key = grant_key(&name, &value).into();
        ClaimMatch { name, value, key }
    }

    /// The claim.
    pub fn name(&self) -> &ClaimName {
        &self.name
    }

    /// The value it must hold.
    pub fn value(&self) -> &ClaimValue {
        &self.value
    }

    /// Its grant key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// What an entry requires, all of it: scopes and claim values, each sorted and without
/// repeats, so that two spellings of one rule (`[b, a]`, `[a, b, a]`) are one entry.
///
/// Empty means any verified token. That is never the result of a field left out: a document
/// must write `"scopes": []` (an entry with neither `scope` nor `scopes` is refused), because
/// an entry that silently applied to every token would be the widest grant there is. An
/// entry with claims and `"scopes": []` requires the claims alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requirement {
    scopes: Box<[Scope]>,
    claims: Box<[ClaimMatch]>,
}

impl Requirement {
    /// One scope: the seed's form, and the common case.
    pub fn one(scope: Scope) -> Requirement {
        Requirement::of(Box::new([scope]))
    }

    fn of(scopes: Box<[Scope]>) -> Requirement {
        Requirement {
            scopes,
            claims: Box::new([]),
        }
    }

    /// Every one of `scopes`, sorted and deduplicated; none means any verified token.
    ///
    /// # Errors
    /// [`MappingError::Scope`] when there are more than [`MAX_REQUIRED_SCOPES`] distinct
    /// scopes.
    pub fn all_of(scopes: impl IntoIterator<Item = Scope>) -> Result<Requirement, MappingError> {
        let mut scopes: Vec<Scope> = scopes.into_iter().collect();
        scopes.sort_unstable();
        scopes.dedup();
        if scopes.len() > MAX_REQUIRED_SCOPES {
            return Err(MappingError::Scope {
                value: scopes
                    .iter()
                    .map(Scope::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                reason: "an entry may require at most 16 scopes at once",
            });
        }
        Ok(Requirement::of(scopes.into_boxed_slice()))
    }

    /// This requirement with `claims` required too (sorted and deduplicated).
    ///
    /// # Errors
    /// [`MappingError::Claims`] when there are more than `MAX_REQUIRED_CLAIMS` (16) distinct
    /// values, or this is [`nobody`](Requirement::nobody).
    pub fn with_claims(
        self,
        claims: impl IntoIterator<Item = ClaimMatch>,
    ) -> Result<Requirement, MappingError> {
        let mut claims: Vec<ClaimMatch> = claims.into_iter().collect();
        claims.sort_unstable();
        claims.dedup();
        if claims.is_empty() {
            return Ok(self);
        }
        if self.is_nobody() {
            return Err(MappingError::Claims {
                value: String::new(),
                reason: "a route held for nobody requires nothing else",
            });
        }
        if claims.len() > MAX_REQUIRED_CLAIMS {
            return Err(MappingError::Claims {
                value: claims[0].name.to_string(),
                reason: "an entry may require at most 16 claim values at once",
            });
        }
        Ok(Requirement {
            scopes: self.scopes,
            claims: claims.into_boxed_slice(),
        })
    }

    /// Any verified token, whatever its scopes.
    pub fn any_token() -> Requirement {
        Requirement::of(Box::new([]))
    }

    /// What no token meets: the requirement of a route that is held for nobody (an OpenAPI
    /// operation scopegate cannot honour). The route still takes part in routing, so a
    /// wider grant (a template's `*`) is kept off its requests, and nobody is granted it.
    ///
    /// It is one scope that no token can carry, `"nobody"` with its quotes, not a flag beside the scopes:
    /// every check of a token against a requirement (the scope index, [`is_met_by`]) then
    /// fails closed on it without knowing about it, and it is never mistaken for the empty
    /// requirement of any verified token.
    ///
    /// [`is_met_by`]: Requirement::is_met_by
    pub fn nobody() -> Requirement {
        Requirement::of(Box::new([Scope(NOBODY.to_owned())]))
    }

    /// Whether this is [`nobody`](Requirement::nobody).
    pub fn is_nobody(&self) -> bool {
        matches!(&*self.scopes, [one] if one.0 == NOBODY)
    }

    /// The required scopes, sorted; empty for any verified token.
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// The required claim values, sorted by claim and value.
    pub fn claims(&self) -> &[ClaimMatch] {
        &self.claims
    }

    /// The one scope, when exactly one is required (written as `"scope"`); never for
    /// [`nobody`](Requirement::nobody).
    pub fn single(&self) -> Option<&Scope> {
        match &*self.scopes {
            [one] if one.0 != NOBODY => Some(one),
            _ => None,
        }
    }

    /// Whether any verified token meets it.
    pub fn is_any_token(&self) -> bool {
        self.scopes.is_empty() && self.claims.is_empty()
    }

    /// Everything required, as the snapshot indexes it: the scopes, then the claim values'
    /// grant keys ([`crate::claim`]).
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        let scopes = self.scopes.iter().map(Scope::as_str);
        let claims = self.claims.iter().map(ClaimMatch::key);
        // Two plain slices: an exact size without a chain's.
        Keys { scopes, claims }
    }

    /// Whether a token carrying `has` (scopes and grant keys) meets it: everything required
    /// is there.
    pub fn is_met_by(&self, has: impl Fn(&str) -> bool) -> bool {
        self.keys().all(has)
    }
}

/// [`Requirement::keys`].
#[derive(Clone)]
struct Keys<S, C> {
    scopes: S,
    claims: C,
}

impl<'a, S, C> Iterator for Keys<S, C>
where
    S: ExactSizeIterator<Item = &'a str>,
    C: ExactSizeIterator<Item = &'a str>,
{
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.scopes.next().or_else(|| self.claims.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.scopes.len() + self.claims.len();
        (n, Some(n))
    }
}

impl<'a, S, C> ExactSizeIterator for Keys<S, C>
where
    S: ExactSizeIterator<Item = &'a str>,
    C: ExactSizeIterator<Item = &'a str>,
{
}

impl fmt::Display for Requirement {
    /// `email`; `orders:admin orders:write` (all of them: space-separated, as in a token's
    /// `scope` claim, and a space cannot occur in a scope); `(any token)` (which no scope can
    /// be, for the same reason); claims after the scopes as `groups="support-leads"` (a
    /// scope holds no `"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any_token() {
            return f.write_str("(any token)");
        }
        if self.is_nobody() {
            return f.write_str("(nobody)");
        }
        for (i, k) in self.keys().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&crate::claim::key_label(k))?;
        }
        Ok(())
    }
}

impl From<Scope> for Requirement {
    fn from(scope: Scope) -> Requirement {
        Requirement::one(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Scope {
        Scope::new(x).unwrap()
    }

    #[test]
    fn spellings_of_one_rule_are_one_requirement() {
        let a = Requirement::all_of([s("b"), s("a"), s("b")]).unwrap();
        let b = Requirement::all_of([s("a"), s("b")]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "a b");
        assert_eq!(a.single(), None);
        assert_eq!(
            Requirement::all_of([s("x"), s("x")]).unwrap(),
            Requirement::one(s("x"))
        );
        assert_eq!(Requirement::one(s("x")).single(), Some(&s("x")));
        assert_eq!(Requirement::any_token().to_string(), "(any token)");
        assert!(Requirement::all_of([]).unwrap().is_any_token());
    }

    #[test]
    fn met_only_with_every_scope() {
        let r = Requirement::all_of([s("orders:write"), s("orders:admin")]).unwrap();
        assert!(r.is_met_by(|x| x == "orders:write" || x == "orders:admin"));
        assert!(!r.is_met_by(|x| x == "orders:write"));
        assert!(Requirement::any_token().is_met_by(|_| false));
    }

    #[test]
    fn nobody_is_met_by_no_token() {
        let nobody = Requirement::nobody();
        assert!(nobody.is_nobody());
        assert!(!nobody.is_any_token());
        assert_eq!(nobody.single(), None);
        assert_eq!(nobody.to_string(), "(nobody)");
        assert!(!nobody.is_met_by(|x| crate::scope::check_token(x).is_ok()));
        assert!(Scope::new(NOBODY).is_err());
        assert!(!Requirement::any_token().is_nobody());
        assert!(!Requirement::one(s("nobody")).is_nobody());
    }

    #[test]
    fn too_many_at_once_is_refused() {
        let many = (0..17).map(|i| s(&format!("s{i}")));
        let err = Requirement::all_of(many).unwrap_err();
        assert!(err.to_string().contains("at most 16"), "{err}");
    }
}
