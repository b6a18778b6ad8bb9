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

/// The claims read into typed fields; a claim's bit in the `seen` mask is its index here.
const STANDARD: [&str; 11] = [
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
];

impl<'de> Visitor<'de> for ClaimsVisitor<'_> {
    type Value = Claims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims, A::Error> {
        let spec = self.0;
        let mut c = Claims::default();
        let mut seen = 0u16;
        let mut scp: Option<Vec<Box<str>>> = None;
        let mut scope: Option<Vec<Box<str>>> = None;
        let mut named: Option<Vec<Box<str>>> = None;
        let (mut azp, mut cid) = (None, None);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let key: &str = &key;
            let standard = STANDARD.iter().position(|s| *s == key);
            let wanted = spec.wanted.iter().any(|w| w == key);
            let named_scope = matches!(spec.scope_claim, ScopeClaim::Named(n) if n == key);
            if let Some(i) = standard {
                if seen & (1 << i) != 0 {
                    return Err(de::Error::custom(format!("claim {key} given twice")));
                }
                seen |= 1 << i;
            } else if wanted || named_scope {
                if c.extra.iter().any(|(k, _)| &**k == key) || (named_scope && named.is_some()) {
                    return Err(de::Error::custom(format!("claim {key} given twice")));
                }
            } else {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if wanted || named_scope {
                // Kept as given (context claims), and read as scopes or a standard claim too.
                let value: Value = map.next_value()?;
                if named_scope {
                    named = Some(strings(&value).map_err(de::Error::custom)?);
                }
                if standard.is_some() {
                    let typed = serde_json::from_value::<Standard>(json_pair(key, &value))
                        .map_err(de::Error::custom)?;
                    typed.apply(&mut c, &mut azp, &mut cid, &mut scp, &mut scope);
                }
                if wanted {
                    c.extra.push((key.into(), value));
                }
                continue;
            }
            // The common case: straight into typed fields, no intermediate JSON value.
            match key {
                "iss" => c.iss = map.next_value::<Option<String>>()?.map(Into::into),
                "sub" => c.sub = map.next_value::<Option<String>>()?.map(Into::into),
                "client_id" => c.client_id = map.next_value::<Option<String>>()?.map(Into::into),
                "azp" => azp = map.next_value::<Option<String>>()?.map(Into::into),
                "cid" => cid = map.next_value::<Option<String>>()?.map(Into::into),
                "aud" => c.aud = map.next_value::<Strings>()?.0,
                "exp" => c.exp = map.next_value::<Date>()?.0,
                "nbf" => c.nbf = map.next_value::<Date>()?.0,
                "iat" => c.iat = map.next_value::<Date>()?.0,
                "scp" => scp = Some(map.next_value::<Strings>()?.0),
                _ => scope = Some(map.next_value::<Strings>()?.0),
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

/// One standard claim that was also asked for as a context claim, read from its value.
#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Standard {
    Iss(Option<String>),
    Sub(Option<String>),
    ClientId(Option<String>),
    Azp(Option<String>),
    Cid(Option<String>),
    Aud(Strings),
    Exp(Date),
    Nbf(Date),
    Iat(Date),
    Scp(Strings),
    Scope(Strings),
}

fn json_pair(key: &str, value: &Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(key.to_owned(), value.clone());
    Value::Object(m)
}

impl Standard {
    fn apply(
        self,
        c: &mut Claims,
        azp: &mut Option<Box<str>>,
        cid: &mut Option<Box<str>>,
        scp: &mut Option<Vec<Box<str>>>,
        scope: &mut Option<Vec<Box<str>>>,
    ) {
        match self {
            Standard::Iss(v) => c.iss = v.map(Into::into),
            Standard::Sub(v) => c.sub = v.map(Into::into),
            Standard::ClientId(v) => c.client_id = v.map(Into::into),
            Standard::Azp(v) => *azp = v.map(Into::into),
            Standard::Cid(v) => *cid = v.map(Into::into),
            Standard::Aud(v) => c.aud = v.0,
            Standard::Exp(v) => c.exp = v.0,
            Standard::Nbf(v) => c.nbf = v.0,
            Standard::Iat(v) => c.iat = v.0,
            Standard::Scp(v) => *scp = Some(v.0),
            Standard::Scope(v) => *scope = Some(v.0),
        }
    }
}

/// A space-delimited string (RFC 8693 `scope`) or an array of strings (`scp`, `aud`); null
/// is empty.
struct Strings(Vec<Box<str>>);

impl<'de> de::Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Strings, E> {
                Ok(Strings(
                    v.split_ascii_whitespace().map(Into::into).collect(),
                ))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Strings, E> {
                Ok(Strings(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s.into());
                }
                Ok(Strings(out))
            }
        }
        d.deserialize_any(V)
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
