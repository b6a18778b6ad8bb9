//! The token's claims, read in one pass that keeps only what scopegate uses.
//!
//! Standard claims are typed; the claims named for the authorizer context or the usage key
//! are kept as JSON values; everything else is skipped without being built. A claim given
//! twice is refused: a payload must not say two things.
//!
//! The RFCs are followed exactly where a loose reading would widen a grant (docs/tokens.md):
//! - `aud` (RFC 7519 4.1.3) is one audience when it is a string, several only as an array;
//!   a string is never split.
//! - Scopes (RFC 6749 3.3) are split on the space character alone, and a scope value with
//!   any other whitespace or control character refuses the token ([`crate::scope`]).
//! - An empty `sub`, `client_id`, `azp` or `cid` names nobody and counts as absent.
//! - Grant claims (`SCOPEGATE_GRANT_CLAIMS`) become grant keys by [`crate::claim`]'s exact
//!   rules; a declared claim with a member given twice at any depth, more than 512 values
//!   or a value over 256 characters refuses the token.
//!
//! This parse runs only after the signature has verified (see `super::verify`); what runs
//! before it is [`issuer`], which reads `iss` and skips the rest.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::binding::Confirmation;
use super::rejection::Rejection;
use crate::claim::{binding_key, token_keys, ClaimName};
use crate::config::ScopeClaim;
use crate::scope::{self, ScopeError, MAX_SCOPES};

/// What a verified token says, as far as scopegate cares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    /// `iss`.
    pub iss: Option<Box<str>>,
    /// `sub`.
    pub sub: Option<Box<str>>,
    /// `client_id` (RFC 9068), else `azp`, else `cid` (Okta).
    pub client_id: Option<Box<str>>,
    /// `aud`: one audience from a string, several from an array.
    pub aud: Vec<Box<str>>,
    /// `exp`, seconds since the epoch.
    pub exp: Option<u64>,
    /// `nbf`.
    pub nbf: Option<u64>,
    /// `iat`.
    pub iat: Option<u64>,
    /// The scopes, in token order, without duplicates; each an RFC 6749 scope-token.
    pub scopes: Vec<Box<str>>,
    /// The other claims asked for (context claims, usage key claim), as given.
    pub extra: Vec<(Box<str>, Value)>,
    /// The grant keys of the declared grant claims' values ([`crate::claim::token_keys`]),
    /// which the snapshot matches beside the scopes.
    pub grants: Vec<Box<str>>,
    /// One binding key per declared grant claim ([`crate::claim::binding_key`]): its value
    /// as a `${claim:NAME}` path segment would read it, or why it cannot be one.
    pub bindings: Vec<Box<str>>,
    /// `cnf` (RFC 7800): what the token is bound to, if anything.
    pub cnf: Option<Confirmation>,
}

impl Claims {
    /// The principal API Gateway is told about: `sub`, or `client_id` for
    /// client-credentials tokens without one. Never empty: an empty claim names nobody (the
    /// parse already drops empty values; this holds for hand-built claims too).
    pub fn principal(&self) -> Option<&str> {
        fn named(v: &Option<Box<str>>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        named(&self.sub).or_else(|| named(&self.client_id))
    }

    /// An extra claim by name.
    pub fn extra(&self, name: &str) -> Option<&Value> {
        self.extra
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| v)
    }
}

/// What to read from a payload.
#[derive(Debug, Clone, Copy)]
pub struct ClaimsSpec<'a> {
    /// Where the scopes are.
    pub scope_claim: &'a ScopeClaim,
    /// Further claims to keep as JSON values.
    pub wanted: &'a [String],
    /// The grant claims mappings may name (`SCOPEGATE_GRANT_CLAIMS`).
    pub grant: &'a [ClaimName],
}

/// Reads only `iss` from a decoded payload, skipping every other member without building
/// it: what the verifier needs to pick the issuer's keys before the signature is checked.
/// Linear in the payload; `iss` given twice is refused.
///
/// # Errors
/// [`Rejection::Malformed`] when the payload is not a JSON object or `iss` is not a string.
pub fn issuer(payload: &[u8]) -> Result<Option<Cow<'_, str>>, Rejection> {
    #[derive(serde::Deserialize)]
    struct Iss<'a> {
        #[serde(borrow, default)]
        iss: Option<Cow<'a, str>>,
    }
    let malformed = Rejection::Malformed("claims are not a valid JSON object");
    // A derived struct would also take `["issuer"]` (the sequence form): only an object is
    // a claims set.
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(malformed);
    }
    serde_json::from_slice::<Iss<'_>>(payload)
        .map(|i| i.iss)
        .map_err(|_| malformed)
}

/// Parses a decoded JWT payload (or an introspection answer, which uses the same names).
///
/// # Errors
/// [`Rejection::Malformed`] when it is not a JSON object, a standard claim has the wrong
/// type, or a claim is repeated; [`Rejection::Scope`] when a scope value is outside RFC 6749
/// 3.3 or there are more than [`MAX_SCOPES`].
pub fn parse(payload: &[u8], spec: ClaimsSpec<'_>) -> Result<Claims, Rejection> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    // serde's error is text; the scope readers leave the typed reason here instead.
    let scope_error = Cell::new(None);
    let mut claims = ClaimsVisitor {
        spec,
        scope_error: &scope_error,
    }
    .run(&mut de)
    .map_err(|_| match scope_error.get() {
        Some(e) => Rejection::Scope(e),
        None => Rejection::Malformed("claims are not a valid JSON object"),
    })?;
    de.end()
        .map_err(|_| Rejection::Malformed("trailing data after the claims"))?;
    let tops = std::mem::take(&mut claims.grant_tops);
    for name in spec.grant {
        let top = tops.iter().find(|(k, _)| &**k == name.top_level());
        let value = top.and_then(|(_, v)| name.within(v));
        token_keys(name, value, &mut claims.c.grants).map_err(Rejection::Claim)?;
        // What a `${claim:NAME}` segment would read, valid or not (crate::claim::bound_value).
        claims.c.bindings.push(binding_key(name, value).into());
    }
    scope::dedup_in_order(&mut claims.c.grants);
    Ok(claims.c)
}

/// The claims of a compact JWT read without verifying its signature, by exactly the rules
/// of a verified token's ([`parse`]), grant claims `grant` included. Only for `explain
/// --token`: the authorizer never calls it, and the Lambda (built without `cli`) does not
/// contain it.
///
/// # Errors
/// [`Rejection`] when it is not a JWS in compact form or its payload does not parse.
#[cfg(feature = "cli")]
pub(crate) fn unverified(
    jwt: &str,
    scope_claim: &ScopeClaim,
    grant: &[ClaimName],
) -> Result<Claims, Rejection> {
    let parts = super::jws::split(jwt)?;
    let payload = super::jws::payload(parts.payload)?;
    let spec = ClaimsSpec {
        scope_claim,
        wanted: &[],
        grant,
    };
    parse(&payload, spec)
}

struct ClaimsVisitor<'a> {
    spec: ClaimsSpec<'a>,
    scope_error: &'a Cell<Option<ScopeError>>,
}

impl ClaimsVisitor<'_> {
    fn run<'de, D: Deserializer<'de>>(self, d: D) -> Result<Parsed, D::Error> {
        d.deserialize_map(self)
    }
}

/// What the one pass yields: the claims, and the top-level members the grant claims read
/// (resolved to grant keys once the payload is known to be whole).
struct Parsed {
    c: Claims,
    grant_tops: Vec<(Box<str>, Value)>,
}

/// The claims read into typed fields; a claim's bit in the `seen` mask is its index here.
const STANDARD: [&str; 12] = [
    "iss",
    "sub",
    "client_id",
    "azp",
    "cid",
    "aud",
    "exp",
    "nbf",
    "iat",
    "scp",
    "scope",
    "cnf",
];

/// Where claims land while the payload is read; folded into [`Claims`] at the end.
#[derive(Default)]
struct Fields {
    c: Claims,
    azp: Option<Box<str>>,
    cid: Option<Box<str>>,
    scp: Option<Vec<Box<str>>>,
    scope: Option<Vec<Box<str>>>,
}

/// Reads standard claim `STANDARD[index]` into [`Fields`]: straight from the payload (the
/// common case, no intermediate JSON) or from a [`Value`] already kept as a context claim,
/// with the same rules either way.
struct StandardSeed<'f, 'e> {
    index: usize,
    fields: &'f mut Fields,
    scopes: ScopesSeed<'e>,
}

impl<'de> DeserializeSeed<'de> for StandardSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let f = self.fields;
        match STANDARD[self.index] {
            "iss" => f.c.iss = Identity::deserialize(d)?.0,
            "sub" => f.c.sub = Identity::deserialize(d)?.0,
            "client_id" => f.c.client_id = Identity::deserialize(d)?.0,
            "azp" => f.azp = Identity::deserialize(d)?.0,
            "cid" => f.cid = Identity::deserialize(d)?.0,
            "aud" => f.c.aud = Audiences::deserialize(d)?.0,
            "exp" => f.c.exp = Date::deserialize(d)?.0,
            "nbf" => f.c.nbf = Date::deserialize(d)?.0,
            "iat" => f.c.iat = Date::deserialize(d)?.0,
            "scp" => f.scp = Some(self.scopes.deserialize(d)?),
            "cnf" => f.c.cnf = Some(Confirmation::deserialize(d)?),
            _ => f.scope = Some(self.scopes.deserialize(d)?),
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for ClaimsVisitor<'_> {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let spec = self.spec;
        let mut fields = Fields::default();
        let mut seen = 0u16;
        let mut named: Option<Vec<Box<str>>> = None;
        let mut grant_tops: Vec<(Box<str>, Value)> = Vec::new();
        let scopes = ScopesSeed(self.scope_error);
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let key: &str = &key;
            let standard = STANDARD.iter().position(|s| *s == key);
            let wanted = spec.wanted.iter().any(|w| w == key);
            let named_scope = matches!(spec.scope_claim, ScopeClaim::Named(n) if n == key);
            let grant = spec.grant.iter().any(|g| g.top_level() == key);
            if grant && grant_tops.iter().any(|(k, _)| &**k == key) {
                return Err(de::Error::custom("a claim is given twice"));
            }
            if let Some(i) = standard {
                if seen & (1 << i) != 0 {
                    return Err(de::Error::custom("a claim is given twice"));
                }
                seen |= 1 << i;
            } else if wanted || named_scope {
                let repeated = fields.c.extra.iter().any(|(k, _)| &**k == key)
                    || (named_scope && named.is_some());
                if repeated {
                    return Err(de::Error::custom("a claim is given twice"));
                }
            } else if !grant {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if grant {
                // Read strictly (a member twice at any depth refuses the token: two readers
                // of it could disagree), kept for the grant keys, and read as any other
                // claim too.
                let value: Value = map.next_value_seed(StrictValue)?;
                let wrong = |_: serde_json::Error| {
                    <A::Error as de::Error>::custom("a claim has the wrong type")
                };
                if named_scope {
                    named = Some(scopes.deserialize(&value).map_err(wrong)?);
                }
                if let Some(index) = standard {
                    StandardSeed {
                        index,
                        fields: &mut fields,
                        scopes,
                    }
                    .deserialize(&value)
                    .map_err(wrong)?;
                }
                if wanted {
                    fields.c.extra.push((key.into(), value.clone()));
                }
                grant_tops.push((key.into(), value));
                continue;
            }
            if !(wanted || named_scope) {
                if let Some(index) = standard {
                    map.next_value_seed(StandardSeed {
                        index,
                        fields: &mut fields,
                        scopes,
                    })?;
                }
                continue;
            }
            // Kept as given (context claims), and read as scopes or a standard claim too.
            let value: Value = map.next_value()?;
            let wrong = |_: serde_json::Error| {
                <A::Error as de::Error>::custom("a claim has the wrong type")
            };
            if named_scope {
                named = Some(scopes.deserialize(&value).map_err(wrong)?);
            }
            if let Some(index) = standard {
                StandardSeed {
                    index,
                    fields: &mut fields,
                    scopes,
                }
                .deserialize(&value)
                .map_err(wrong)?;
            }
            if wanted {
                fields.c.extra.push((key.into(), value));
            }
        }
        let Fields {
            mut c,
            azp,
            cid,
            scp,
            scope,
        } = fields;
        c.client_id = c.client_id.or(azp).or(cid);
        c.scopes = match spec.scope_claim {
            ScopeClaim::Standard => scp.or(scope).unwrap_or_default(),
            ScopeClaim::Named(_) => named.unwrap_or_default(),
        };
        Ok(Parsed { c, grant_tops })
    }
}

/// A JSON value read like serde_json's own, but refusing an object that names a member
/// twice, at any depth: serde_json keeps the last, another reader the first, and a grant
/// must not depend on which. Depth is bounded by serde_json's recursion limit.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(Text(k)) = map.next_key::<Text<'de>>()? {
            if out.contains_key(&*k) {
                return Err(de::Error::custom("a member is given twice"));
            }
            let v = map.next_value_seed(StrictValue)?;
            out.insert(k.into_owned(), v);
        }
        Ok(Value::Object(out))
    }
}

/// `iss`, `sub`, `client_id`, `azp`, `cid`: a string; empty or null names nobody (or no
/// issuer) and is absent.
struct Identity(Option<Box<str>>);

impl<'de> de::Deserialize<'de> for Identity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Option::<Text<'de>>::deserialize(d)?;
        Ok(Identity(
            v.map(|t| t.0).filter(|s| !s.is_empty()).map(Into::into),
        ))
    }
}

/// `aud` (RFC 7519 4.1.3): a string is ONE audience, whatever it contains; only an array
/// holds several. Null is none.
struct Audiences(Vec<Box<str>>);

impl<'de> de::Deserialize<'de> for Audiences {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Audiences;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audiences, E> {
                Ok(Audiences(vec![v.into()]))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Audiences, E> {
                Ok(Audiences(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audiences, A::Error> {
                let mut out = Vec::new();
                while let Some(Text(s)) = seq.next_element::<Text<'de>>()? {
                    out.push(s.into());
                }
                Ok(Audiences(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a scope claim straight from the payload: a space-delimited string (`scope`, RFC
/// 8693/9068) or an array of scope-tokens (`scp`, custom claims); null is none. Every scope
/// is checked against RFC 6749 3.3, the count is bounded, repeats are dropped.
#[derive(Clone, Copy)]
struct ScopesSeed<'a>(&'a Cell<Option<ScopeError>>);

impl ScopesSeed<'_> {
    fn fail<E: de::Error>(self, e: ScopeError) -> E {
        self.0.set(Some(e));
        E::custom(e)
    }
}

impl<'de> DeserializeSeed<'de> for ScopesSeed<'_> {
    type Value = Vec<Box<str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Box<str>>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScopesSeed<'_> {
    type Value = Vec<Box<str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a space-delimited string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<Box<str>>, E> {
        let mut out: Vec<Box<str>> = scope::split(v)
            .map_err(|e| self.fail::<E>(e))?
            .into_iter()
            .map(Into::into)
            .collect();
        scope::dedup_in_order(&mut out);
        Ok(out)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<Box<str>>, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Box<str>>, A::Error> {
        let mut out: Vec<Box<str>> = Vec::new();
        while let Some(Text(s)) = seq.next_element::<Text<'de>>()? {
            scope::check_token(&s).map_err(|e| self.fail::<A::Error>(e))?;
            if out.len() == MAX_SCOPES {
                return Err(self.fail(ScopeError::TooMany));
            }
            out.push(s.into());
        }
        scope::dedup_in_order(&mut out);
        Ok(out)
    }
}

/// A NumericDate (RFC 7519 2): seconds, possibly fractional; negative dates are refused;
/// null is absent.
struct Date(Option<u64>);

impl<'de> de::Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Date;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Date, E> {
                Ok(Date(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Date, E> {
                u64::try_from(v)
                    .map(|v| Date(Some(v)))
                    .map_err(|_| E::custom("a date must not be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Date, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(Date(Some(v as u64)))
                } else {
                    Err(E::custom("a date must be a non-negative number"))
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Date, E> {
                Ok(Date(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON string that borrows from the input when it can (it can unless it has escapes):
/// claim names, scope lists and header maps are read without an allocation per string.
pub(crate) struct Text<'de>(pub(crate) Cow<'de, str>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_spec() -> ScopeClaim {
        ScopeClaim::Standard
    }

    fn p(json: &str) -> Result<Claims, Rejection> {
        parse(
            json.as_bytes(),
            ClaimsSpec {
                grant: &[],
                scope_claim: &std_spec(),
                wanted: &[],
            },
        )
    }

    #[test]
    fn scp_array_or_string_then_scope() {
        let c = p(r#"{"scp":["email","profile","email"],"scope":"x"}"#).unwrap();
        assert_eq!(
            c.scopes,
            vec!["email".into(), "profile".into()] as Vec<Box<str>>
        );
        let c = p(r#"{"scp":"a b"}"#).unwrap();
        assert_eq!(c.scopes.len(), 2);
        let c = p(r#"{"scope":"openid email"}"#).unwrap();
        assert_eq!(&*c.scopes[1], "email");
    }

    /// Issue 8, class 2: only the space separates scopes (RFC 6749 3.3); any other
    /// whitespace or control character refuses the token, in every scope claim.
    #[test]
    fn scopes_split_on_the_space_alone() {
        let named = ScopeClaim::Named("permissions".into());
        let wanted = ["scope".to_owned(), "permissions".to_owned()];
        for sep in [
            "\\t", "\\n", "\\r", "\\f", "\\u000b", "\\u00a0", "\\u0000", "\\u007f",
        ] {
            for json in [
                format!(r#"{{"scope":"profile{sep}superuser"}}"#),
                format!(r#"{{"scp":"profile{sep}superuser"}}"#),
                format!(r#"{{"scp":["profile{sep}superuser"]}}"#),
                format!(r#"{{"permissions":"profile{sep}superuser"}}"#),
                format!(r#"{{"permissions":["profile", "x{sep}superuser"]}}"#),
            ] {
                for (scope_claim, wanted) in [
                    (&ScopeClaim::Standard, &[][..]),
                    (&named, &[][..]),
                    (&ScopeClaim::Standard, &wanted[..]),
                    (&named, &wanted[..]),
                ] {
                    let got = parse(
                        json.as_bytes(),
                        ClaimsSpec {
                            grant: &[],
                            scope_claim,
                            wanted,
                        },
                    );
                    // `scope` and `scp` are always read strictly (a malformed standard claim
                    // refuses the token even when scopes come from elsewhere); a custom claim
                    // only when it is the scope claim.
                    let read_here = !json.contains("permissions")
                        || matches!(scope_claim, ScopeClaim::Named(_));
                    if read_here {
                        assert!(
                            matches!(got, Err(Rejection::Scope(_))),
                            "{json} {scope_claim:?} {wanted:?}: {got:?}"
                        );
                    }
                }
            }
        }
        for bad in [
            r#"{"scope":"a  b"}"#,
            r#"{"scope":" a"}"#,
            r#"{"scp":["a b"]}"#,
            r#"{"scp":[""]}"#,
        ] {
            assert!(matches!(p(bad), Err(Rejection::Scope(_))), "{bad}");
        }
        let many = vec!["s"; crate::scope::MAX_SCOPES + 1].join(" ");
        assert!(matches!(
            p(&format!(r#"{{"scope":"{many}"}}"#)),
            Err(Rejection::Scope(ScopeError::TooMany))
        ));
        assert_eq!(p(r#"{"scope":""}"#).unwrap().scopes.len(), 0);
    }

    /// Issue 8, class 1: a string aud is one audience (RFC 7519 4.1.3), never split.
    #[test]
    fn a_string_aud_is_one_audience() {
        let c = p(r#"{"aud":"api://other api://ours"}"#).unwrap();
        assert_eq!(
            c.aud,
            vec!["api://other api://ours".into()] as Vec<Box<str>>
        );
        let c = p(r#"{"aud":["api://other","api://ours"]}"#).unwrap();
        assert_eq!(c.aud.len(), 2);
        let wanted = ["aud".to_owned()];
        let c = parse(
            br#"{"aud":"a\tb"}"#,
            ClaimsSpec {
                grant: &[],
                scope_claim: &std_spec(),
                wanted: &wanted,
            },
        )
        .unwrap();
        assert_eq!(c.aud, vec!["a\tb".into()] as Vec<Box<str>>);
    }

    /// Issue 8, class 7: an empty sub names nobody; the principal is never empty.
    #[test]
    fn empty_identities_are_absent() {
        let c = p(r#"{"sub":"","client_id":"app"}"#).unwrap();
        assert_eq!(c.principal(), Some("app"));
        assert_eq!(c.sub, None);
        let c = p(r#"{"sub":"","client_id":"","azp":"web"}"#).unwrap();
        assert_eq!(c.principal(), Some("web"));
        let c = p(r#"{"sub":"","client_id":""}"#).unwrap();
        assert_eq!(c.principal(), None);
        let hand = Claims {
            sub: Some("".into()),
            client_id: Some("".into()),
            ..Claims::default()
        };
        assert_eq!(hand.principal(), None);
    }

    /// Issue 8, class 5: before the signature only `iss` is read, by a linear skim.
    #[test]
    fn the_issuer_skim_reads_iss_alone() {
        assert_eq!(
            issuer(br#"{"scope":"a\tb","iss":"https://i","exp":"x"}"#)
                .unwrap()
                .as_deref(),
            Some("https://i")
        );
        assert_eq!(issuer(br#"{"sub":"u"}"#).unwrap(), None);
        for bad in [
            &br#"{"iss":"a","iss":"b"}"#[..],
            b"[]",
            br#"["a"]"#,
            b"{",
            br#"{"iss":1}"#,
        ] {
            assert!(issuer(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn named_scope_claim_and_extras() {
        let claim = ScopeClaim::Named("permissions".into());
        let wanted = vec!["email".to_owned(), "tenant".to_owned(), "sub".to_owned()];
        let c = parse(
            br#"{"permissions":["read:orders"],"scope":"ignored","email":"a@b.c","tenant":7,"sub":"u1","other":{"x":1}}"#,
            ClaimsSpec { scope_claim: &claim, wanted: &wanted, grant: &[] },
        )
        .unwrap();
        assert_eq!(c.scopes, vec!["read:orders".into()] as Vec<Box<str>>);
        assert_eq!(c.extra("tenant"), Some(&Value::from(7)));
        assert_eq!(c.extra("sub"), Some(&Value::from("u1")));
        assert_eq!(c.sub.as_deref(), Some("u1"));
        assert!(c.extra("other").is_none());
    }

    /// Issue 21 §1: only declared grant claims are read, by exact rules; a member given
    /// twice at any depth of one, or a claim over the caps, refuses the token.
    #[test]
    fn grant_claims_become_grant_keys() {
        use crate::claim::{grant_key, ClaimValue};
        let grant: Vec<ClaimName> = ["groups", "cognito:groups", "/realm_access/roles", "email"]
            .iter()
            .map(|n| ClaimName::new(n).unwrap())
            .collect();
        let wanted = ["email".to_owned()];
        let parse_with = |json: &str| {
            parse(
                json.as_bytes(),
                ClaimsSpec {
                    scope_claim: &std_spec(),
                    wanted: &wanted,
                    grant: &grant,
                },
            )
        };
        let key = |n: usize, v: &str| -> Box<str> {
            grant_key(&grant[n], &ClaimValue::String(v.into())).into()
        };
        let c = parse_with(
            r#"{"groups":["a","b","a"],"cognito:groups":"c d","roles":["x"],"realm_access":{"roles":["admin"],"other":{"k":1}},"email":"e@x","scope":"s"}"#,
        )
        .unwrap();
        assert_eq!(
            c.grants,
            vec![
                key(0, "a"),
                key(0, "b"),
                key(1, "c d"),
                key(2, "admin"),
                key(3, "e@x")
            ]
        );
        assert_eq!(c.extra("email"), Some(&Value::from("e@x")));
        assert_eq!(c.scopes, vec!["s".into()] as Vec<Box<str>>);
        // Undeclared claims are never read; absent ones bring nothing.
        assert!(parse_with(r#"{"roles":["admin"]}"#)
            .unwrap()
            .grants
            .is_empty());
        for twice in [
            r#"{"groups":["a"],"groups":["b"]}"#,
            r#"{"realm_access":{"roles":["a"],"roles":["admin"]}}"#,
            r#"{"realm_access":{"x":{"y":1,"y":2}}}"#,
        ] {
            assert!(
                matches!(parse_with(twice), Err(Rejection::Malformed(_))),
                "{twice}"
            );
        }
        // Undeclared, a repeat deep inside is not read at all.
        assert!(p(r#"{"realm_access":{"roles":["a"],"roles":["b"]}}"#).is_ok());
        let many = vec!["\"g\""; crate::claim::MAX_CLAIM_VALUES + 1].join(",");
        assert!(matches!(
            parse_with(&format!(r#"{{"groups":[{many}]}}"#)),
            Err(Rejection::Claim(crate::claim::ClaimError::TooMany))
        ));
        let long = "x".repeat(crate::claim::MAX_CLAIM_LEN + 1);
        assert!(matches!(
            parse_with(&format!(r#"{{"realm_access":{{"roles":["{long}"]}}}}"#)),
            Err(Rejection::Claim(crate::claim::ClaimError::TooLong))
        ));
    }

    #[test]
    fn principal_falls_back_to_client() {
        let c = p(r#"{"azp":"app"}"#).unwrap();
        assert_eq!(c.principal(), Some("app"));
        let c = p(r#"{"sub":"u","client_id":"app"}"#).unwrap();
        assert_eq!(c.principal(), Some("u"));
    }

    #[test]
    fn refuses_bad_shapes() {
        for bad in [
            "[]",
            "{",
            r#"{"exp":"tomorrow"}"#,
            r#"{"exp":-1}"#,
            r#"{"sub":1}"#,
            r#"{"scope":"a","scope":"admin"}"#,
            r#"{"aud":[1]}"#,
            r#"{"sub":"a"} x"#,
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert_eq!(p(r#"{"exp":1.9e9}"#).unwrap().exp, Some(1_900_000_000));
    }
}
