//! The token's claims, read in one pass that keeps only what scopegate uses.
//!
//! Standard claims are typed; the claims named for the authorizer context or the usage key
//! are kept as JSON values; everything else is skipped without being built. A claim given
//! twice is refused: a payload must not say two things.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::Rejection;
use crate::config::ScopeClaim;

/// What a verified token says, as far as scopegate cares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    /// `iss`.
    pub iss: Option<Box<str>>,
    /// `sub`.
    pub sub: Option<Box<str>>,
    /// `client_id` (RFC 9068), else `azp`, else `cid` (Okta).
    pub client_id: Option<Box<str>>,
    /// `aud`, a string or an array.
    pub aud: Vec<Box<str>>,
    /// `exp`, seconds since the epoch.
    pub exp: Option<u64>,
    /// `nbf`.
    pub nbf: Option<u64>,
    /// `iat`.
    pub iat: Option<u64>,
    /// The scopes, in token order, without duplicates.
    pub scopes: Vec<Box<str>>,
    /// The other claims asked for (context claims, usage key claim), as given.
    pub extra: Vec<(Box<str>, Value)>,
}

impl Claims {
    /// The principal API Gateway is told about: `sub`, or `client_id` for
    /// client-credentials tokens without one.
    pub fn principal(&self) -> Option<&str> {
        self.sub.as_deref().or(self.client_id.as_deref())
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
}

/// Parses a decoded JWT payload (or an introspection answer, which uses the same names).
///
/// # Errors
/// [`Rejection::Malformed`] when it is not a JSON object, a standard claim has the wrong
/// type, or a claim is repeated.
pub fn parse(payload: &[u8], spec: ClaimsSpec<'_>) -> Result<Claims, Rejection> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let claims = spec
        .deserialize(&mut de)
        .map_err(|_| Rejection::Malformed("claims are not a valid JSON object"))?;
    de.end()
        .map_err(|_| Rejection::Malformed("trailing data after the claims"))?;
    Ok(claims)
}

impl<'de> DeserializeSeed<'de> for ClaimsSpec<'_> {
    type Value = Claims;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Claims, D::Error> {
        d.deserialize_map(ClaimsVisitor(self))
    }
}

struct ClaimsVisitor<'a>(ClaimsSpec<'a>);

#[derive(Default)]
struct Seen {
    names: Vec<Box<str>>,
}

impl Seen {
    fn first<E: de::Error>(&mut self, name: &str) -> Result<(), E> {
        if self.names.iter().any(|n| &**n == name) {
            return Err(E::custom(format!("claim {name} given twice")));
        }
        self.names.push(name.into());
        Ok(())
    }
}

impl<'de> Visitor<'de> for ClaimsVisitor<'_> {
    type Value = Claims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims, A::Error> {
        let spec = self.0;
        let mut c = Claims::default();
        let mut seen = Seen::default();
        let mut scp: Option<Vec<Box<str>>> = None;
        let mut scope: Option<Vec<Box<str>>> = None;
        let mut named: Option<Vec<Box<str>>> = None;
        let (mut azp, mut cid) = (None, None);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let key: &str = &key;
            let wanted = spec.wanted.iter().any(|w| w == key);
            let named_scope = matches!(spec.scope_claim, ScopeClaim::Named(n) if n == key);
            let standard = matches!(
                key,
                "iss"
                    | "sub"
                    | "client_id"
                    | "azp"
                    | "cid"
                    | "aud"
                    | "exp"
                    | "nbf"
                    | "iat"
                    | "scp"
                    | "scope"
            );
            if !(wanted || named_scope || standard) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            seen.first::<A::Error>(key)?;
            let value: Value = map.next_value()?;
            if named_scope {
                named = Some(strings(&value).map_err(de::Error::custom)?);
            }
            match key {
                "iss" => c.iss = string(&value).map_err(de::Error::custom)?,
                "sub" => c.sub = string(&value).map_err(de::Error::custom)?,
                "client_id" => c.client_id = string(&value).map_err(de::Error::custom)?,
                "azp" => azp = string(&value).map_err(de::Error::custom)?,
                "cid" => cid = string(&value).map_err(de::Error::custom)?,
                "aud" => c.aud = strings(&value).map_err(de::Error::custom)?,
                "exp" => c.exp = date(&value).map_err(de::Error::custom)?,
                "nbf" => c.nbf = date(&value).map_err(de::Error::custom)?,
                "iat" => c.iat = date(&value).map_err(de::Error::custom)?,
                "scp" => scp = Some(strings(&value).map_err(de::Error::custom)?),
                "scope" => scope = Some(strings(&value).map_err(de::Error::custom)?),
                _ => {}
            }
            if wanted {
                c.extra.push((key.into(), value));
            }
        }
        c.client_id = c.client_id.or(azp).or(cid);
        let mut scopes = match spec.scope_claim {
            ScopeClaim::Standard => scp.or(scope).unwrap_or_default(),
            ScopeClaim::Named(_) => named.unwrap_or_default(),
        };
        dedup_in_order(&mut scopes);
        c.scopes = scopes;
        Ok(c)
    }
}

fn dedup_in_order(v: &mut Vec<Box<str>>) {
    let mut i = 0;
    while i < v.len() {
        if v[..i].contains(&v[i]) {
            v.remove(i);
        } else {
            i += 1;
        }
    }
}

fn string(v: &Value) -> Result<Option<Box<str>>, &'static str> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.as_str().into())),
        _ => Err("expected a string"),
    }
}

/// A space-delimited string (RFC 8693 `scope`) or an array of strings (`scp`, `aud`).
fn strings(v: &Value) -> Result<Vec<Box<str>>, &'static str> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s.split_ascii_whitespace().map(Into::into).collect()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(Into::into)
                    .ok_or("expected an array of strings")
            })
            .collect(),
        _ => Err("expected a string or an array of strings"),
    }
}

/// A NumericDate (RFC 7519 2): seconds, possibly fractional; negative dates are refused.
fn date(v: &Value) -> Result<Option<u64>, &'static str> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0) {
                Ok(Some(f as u64))
            } else {
                Err("a date must be a non-negative number")
            }
        }
        _ => Err("a date must be a number"),
    }
}

/// A map key that borrows from the input when it can (it nearly always can).
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Key<'de>, A::Error> {
                Err(de::Error::custom("a claim name must be a string"))
            }
        }
        d.deserialize_str(V)
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
        let c = p(r#"{"scp":"a  b"}"#).unwrap();
        assert_eq!(c.scopes.len(), 2);
        let c = p(r#"{"scope":"openid email"}"#).unwrap();
        assert_eq!(&*c.scopes[1], "email");
    }

    #[test]
    fn named_scope_claim_and_extras() {
        let claim = ScopeClaim::Named("permissions".into());
        let wanted = vec!["email".to_owned(), "tenant".to_owned(), "sub".to_owned()];
        let c = parse(
            br#"{"permissions":["read:orders"],"scope":"ignored","email":"a@b.c","tenant":7,"sub":"u1","other":{"x":1}}"#,
            ClaimsSpec { scope_claim: &claim, wanted: &wanted },
        )
        .unwrap();
        assert_eq!(c.scopes, vec!["read:orders".into()] as Vec<Box<str>>);
        assert_eq!(c.extra("tenant"), Some(&Value::from(7)));
        assert_eq!(c.extra("sub"), Some(&Value::from("u1")));
        assert_eq!(c.sub.as_deref(), Some("u1"));
        assert!(c.extra("other").is_none());
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
