//! Grant claims: the token claims besides scopes that a mapping entry may require (`groups`,
//! `roles`, `cognito:groups`, `/realm_access/roles`, `acr`), shared by the token side (what a
//! token carries) and the mapping side (what an entry names), as [`crate::scope`] is for
//! scopes.
//!
//! Both sides meet in one place: a **grant key**, a string per (claim, value) pair. The
//! snapshot indexes an entry's scopes and grant keys alike, and a token brings its scopes and
//! the grant keys of its declared claims, so all-of rules, the policy cache and exactness work
//! for claims exactly as for scopes. A grant key starts with a control character, which no
//! scope can hold (RFC 6749 3.3), so the two spaces never meet.
//!
//! Matching is exact, and only what an entry can write can match (docs/tokens.md):
//! - a claim matches a value when it is that value, or an array with an element that is;
//! - strings compare byte for byte: no case folding, no splitting (only the scope claim is
//!   space-delimited);
//! - integers compare as integers, booleans as booleans; a string never matches a number
//!   (`"5"` is not `5`), and fractions are never matched;
//! - objects, `null` and nested arrays match nothing.
//!
//! Leaf module: it imports nothing from the crate.

use std::fmt;

use serde_json::Value;

/// The longest claim name, and the longest string value an entry may require or a token's
/// declared claim may hold (the scope limit: longer is refused, not cut).
pub const MAX_CLAIM_LEN: usize = 256;

/// The most values one declared claim of a token may hold (as for scopes); more refuses the
/// token.
pub const MAX_CLAIM_VALUES: usize = 512;

/// Why a claim name or value is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimError {
    /// A name that is empty, too long, or holds a character outside printable ASCII.
    Name,
    /// A JSON Pointer (RFC 6901) with a `~` not followed by `0` or `1`, or an empty step.
    Pointer,
    /// `scope` or `scp`, which scopes are read from, by name or by a pointer into them.
    ScopeClaim,
    /// A value an entry cannot require: empty, too long, a control character, a fraction, or
    /// not a string, integer or boolean.
    Value,
    /// A token's declared claim holding more than [`MAX_CLAIM_VALUES`] values.
    TooMany,
    /// A token's declared claim holding a string over [`MAX_CLAIM_LEN`] characters.
    TooLong,
}

impl ClaimError {
    /// What is wrong, in words (also the error's text).
    pub fn reason(self) -> &'static str {
        match self {
            ClaimError::Name => "a claim name is 1 to 256 printable ASCII characters, without spaces",
            ClaimError::Pointer => "a claim name starting with / is a JSON Pointer (RFC 6901): each step non-empty, ~ only as ~0 or ~1",
            ClaimError::ScopeClaim => "scope and scp hold scopes: require them with \"scope\" or \"scopes\"",
            ClaimError::Value => "a claim value is a string of 1 to 256 characters without control characters, an integer, or true or false",
            ClaimError::TooMany => "a claim holds more than 512 values",
            ClaimError::TooLong => "a claim holds a value longer than 256 characters",
        }
    }
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ClaimError {}

/// A claim name: a top-level claim exactly as the token writes it (`groups`,
/// `cognito:groups`, `https://example.com/roles`), or a JSON Pointer (RFC 6901) to a nested
/// one (`/realm_access/roles`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimName(Box<str>, Box<str>);

impl ClaimName {
    /// Validates a claim name.
    ///
    /// # Errors
    /// [`ClaimError::Name`], [`ClaimError::Pointer`] or [`ClaimError::ScopeClaim`].
    pub fn new(s: &str) -> Result<ClaimName, ClaimError> {
        if s.is_empty() || s.len() > MAX_CLAIM_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ClaimError::Name);
        }
        if let Some(rest) = s.strip_prefix('/') {
            for step in rest.split('/') {
                if step.is_empty() || !escapes_ok(step) {
                    return Err(ClaimError::Pointer);
                }
            }
        }
        let top = match s.strip_prefix('/') {
            Some(rest) => unescape(rest.split('/').next().unwrap_or_default()),
            None => s.to_owned(),
        };
        // `/scope` is the scope claim by another spelling, and a pointer below it reads into
        // the same string: a grant from it would bypass the scope claim's own rules.
        if top == "scope" || top == "scp" {
            return Err(ClaimError::ScopeClaim);
        }
        // The second field is a function of the first: comparisons stay those of the name.
        Ok(ClaimName(s.into(), top.into()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The top-level claim it reads: itself, or a pointer's first step, unescaped.
    pub fn top_level(&self) -> &str {
        &self.1
    }

    /// The claim's value inside `top`, the value of its [`top_level`](Self::top_level) claim.
    pub fn within<'v>(&self, top: &'v Value) -> Option<&'v Value> {
        match self.0.strip_prefix('/') {
            Some(rest) => match rest.find('/') {
                Some(i) => top.pointer(&rest[i..]),
                None => Some(top),
            },
            None => Some(top),
        }
    }
}

impl fmt::Display for ClaimName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether every `~` of a pointer step is `~0` or `~1` (RFC 6901 3).
fn escapes_ok(step: &str) -> bool {
    let b = step.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, &c)| c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')))
}

/// A pointer step's text: `~1` is `/`, then `~0` is `~` (RFC 6901 4, in that order).
fn unescape(step: &str) -> String {
    step.replace("~1", "/").replace("~0", "~")
}

/// A value an entry may require of a claim: a string, an integer or a boolean.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClaimValue {
    /// A string, compared byte for byte.
    String(Box<str>),
    /// An integer.
    Integer(i128),
    /// `true` or `false`.
    Bool(bool),
}

impl ClaimValue {
    /// The value a JSON value stands for, when an entry may require it.
    ///
    /// # Errors
    /// [`ClaimError::Value`].
    pub fn from_json(v: &Value) -> Result<ClaimValue, ClaimError> {
        match v {
            Value::String(s) => {
                if s.is_empty()
                    || s.chars().count() > MAX_CLAIM_LEN
                    || s.chars().any(char::is_control)
                {
                    Err(ClaimError::Value)
                } else {
                    Ok(ClaimValue::String(s.as_str().into()))
                }
            }
            Value::Number(n) => integer(n).map(ClaimValue::Integer).ok_or(ClaimError::Value),
            Value::Bool(b) => Ok(ClaimValue::Bool(*b)),
            _ => Err(ClaimError::Value),
        }
    }

    /// The value as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            ClaimValue::String(s) => Value::from(&**s),
            ClaimValue::Integer(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(i), _) => Value::from(i),
                (_, Ok(u)) => Value::from(u),
                _ => unreachable!("integers come from JSON's i64 and u64"),
            },
            ClaimValue::Bool(b) => Value::from(*b),
        }
    }
}

/// A JSON number as an integer: only one written without a fraction or exponent that
/// serde_json reads as an integer.
fn integer(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// The grant key of `value` of claim `name`: what the snapshot indexes an entry requiring it
/// under, and what a token carrying it brings. `\u{1}` first (no scope holds a control
/// character), the name, `\u{0}` (no name holds one), then a type tag and the value.
pub fn grant_key(name: &ClaimName, value: &ClaimValue) -> String {
    let mut k = String::with_capacity(name.0.len() + 8);
    push_key(&mut k, name.as_str(), value);
    k
}

fn push_key(k: &mut String, name: &str, value: &ClaimValue) {
    use fmt::Write;
    k.push('\u{1}');
    k.push_str(name);
    k.push('\u{0}');
    match value {
        ClaimValue::String(s) => {
            k.push('s');
            k.push_str(s);
        }
        ClaimValue::Integer(i) => {
            let _ = write!(k, "i{i}");
        }
        ClaimValue::Bool(b) => {
            let _ = write!(k, "b{b}");
        }
    }
}

/// Whether `key` is a grant key (else it is a scope).
pub fn is_grant_key(key: &str) -> bool {
    key.starts_with('\u{1}')
}

/// How a grant key reads to an operator: `groups="support-leads"`, `mfa=true`. Never
/// mistaken for a scope: a scope holds no `"`, and a key's value is written as JSON. (Only
/// for keys of values an entry names: a token's values reach no log line.)
pub fn key_label(key: &str) -> String {
    let Some(rest) = key.strip_prefix('\u{1}') else {
        return key.to_owned();
    };
    let Some((name, value)) = rest.split_once('\u{0}') else {
        return key.to_owned();
    };
    let value = match value.split_at_checked(1) {
        Some(("s", s)) => Value::from(s).to_string(),
        Some((_, v)) => v.to_owned(),
        None => String::new(),
    };
    format!("{name}={value}")
}

/// The grant keys of a token's declared claim `name`, whose value is `value` (or the claim is
/// absent): one per value an entry could require. A value no entry can name (a fraction, an
/// object, `null`, a nested array, a string with a control character) is skipped: it matches
/// nothing.
///
/// # Errors
/// [`ClaimError::TooMany`] or [`ClaimError::TooLong`]: the caps scopes have, per claim; the
/// token is then refused, as one with too many scopes is.
pub fn token_keys(
    name: &ClaimName,
    value: Option<&Value>,
    out: &mut Vec<Box<str>>,
) -> Result<(), ClaimError> {
    let one = |v: &Value, out: &mut Vec<Box<str>>| -> Result<(), ClaimError> {
        if let Value::String(s) = v {
            if s.chars().count() > MAX_CLAIM_LEN {
                return Err(ClaimError::TooLong);
            }
        }
        if let Ok(v) = ClaimValue::from_json(v) {
            let mut k = String::new();
            push_key(&mut k, name.as_str(), &v);
            out.push(k.into());
        }
        Ok(())
    };
    match value {
        None => Ok(()),
        Some(Value::Array(items)) => {
            if items.len() > MAX_CLAIM_VALUES {
                return Err(ClaimError::TooMany);
            }
            items.iter().try_for_each(|v| one(v, out))
        }
        Some(v) => one(v, out),
    }
}

/// The most characters a claim value may have to stand in a `${claim:NAME}` path segment.
pub const MAX_BOUND_LEN: usize = 128;

/// Why a token's claim cannot stand in a `${claim:NAME}` path segment: an Allow entry bound
/// to it then grants nothing, and a Deny entry bound to it denies for every value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unbound {
    /// The token has no such claim.
    Missing,
    /// The claim is not a string (an array, a number, an object...): a segment is one value.
    NotString,
    /// The empty string.
    Empty,
    /// Over [`MAX_BOUND_LEN`] characters.
    TooLong,
    /// A character outside RFC 3986's unreserved set (`A-Z a-z 0-9 . _ ~ -`): `*` and `?`
    /// would be IAM wildcards, `/` another segment, `%` an escape, and anything else a
    /// character API Gateway's path may hold in another form.
    Character,
    /// `.` or `..`, which name the segment itself or its parent.
    DotSegment,
}

impl Unbound {
    /// What is wrong, in words, for the decision line (never the value).
    pub fn reason(self) -> &'static str {
        match self {
            Unbound::Missing => "missing",
            Unbound::NotString => "not a string",
            Unbound::Empty => "empty",
            Unbound::TooLong => "longer than 128 characters",
            Unbound::Character => "a character outside A-Z a-z 0-9 . _ ~ -",
            Unbound::DotSegment => "a dot segment",
        }
    }

    /// Its one-letter code inside a binding key.
    fn code(self) -> char {
        match self {
            Unbound::Missing => 'm',
            Unbound::NotString => 'n',
            Unbound::Empty => 'e',
            Unbound::TooLong => 'l',
            Unbound::Character => 'c',
            Unbound::DotSegment => 'd',
        }
    }

    fn from_code(c: &str) -> Option<Unbound> {
        Some(match c {
            "m" => Unbound::Missing,
            "n" => Unbound::NotString,
            "e" => Unbound::Empty,
            "l" => Unbound::TooLong,
            "c" => Unbound::Character,
            "d" => Unbound::DotSegment,
            _ => return None,
        })
    }
}

impl fmt::Display for Unbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// A claim's value as one literal path segment, or why it cannot be one.
pub fn bound_value(value: Option<&Value>) -> Result<&str, Unbound> {
    let s = match value {
        None => return Err(Unbound::Missing),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(Unbound::NotString),
    };
    if s.is_empty() {
        return Err(Unbound::Empty);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
    {
        return Err(Unbound::Character);
    }
    // ASCII only from here, so bytes are characters.
    if s.len() > MAX_BOUND_LEN {
        return Err(Unbound::TooLong);
    }
    if s == "." || s == ".." {
        return Err(Unbound::DotSegment);
    }
    Ok(s)
}

/// The binding key of a token's declared claim `name`: what it brings beside its grant keys
/// so that the snapshot can fill `${claim:NAME}` segments. `\u{2}` first (no scope or grant
/// key starts so), the name, `\u{0}`, then the value, or `\u{1}` and a code for why it
/// cannot be bound (a bound value holds no control character). Every declared claim brings
/// one, so the snapshot can tell a missing claim from a malformed one.
pub fn binding_key(name: &ClaimName, value: Option<&Value>) -> String {
    let mut k = String::with_capacity(name.0.len() + 16);
    k.push('\u{2}');
    k.push_str(name.as_str());
    k.push('\u{0}');
    match bound_value(value) {
        Ok(v) => k.push_str(v),
        Err(why) => {
            k.push('\u{1}');
            k.push(why.code());
        }
    }
    k
}

/// Whether `key` is a binding key ([`binding_key`]).
pub fn is_binding_key(key: &str) -> bool {
    key.starts_with('\u{2}')
}

/// A binding key's claim name (as written) and bound value, or why it has none; `None` for
/// a string that is not a binding key.
pub fn read_binding_key(key: &str) -> Option<(&str, Result<&str, Unbound>)> {
    let (name, value) = key.strip_prefix('\u{2}')?.split_once('\u{0}')?;
    match value.strip_prefix('\u{1}') {
        Some(code) => Some((name, Err(Unbound::from_code(code)?))),
        None => Some((name, Ok(value))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn n(s: &str) -> ClaimName {
        ClaimName::new(s).unwrap()
    }

    fn keys(name: &str, v: Value) -> Result<Vec<String>, ClaimError> {
        let mut out = Vec::new();
        token_keys(&n(name), Some(&v), &mut out)?;
        Ok(out.into_iter().map(String::from).collect())
    }

    #[test]
    fn names_are_top_level_or_pointers() {
        for ok in [
            "groups",
            "cognito:groups",
            "https://example.com/roles",
            "/realm_access/roles",
            "/resource_access/my-api/roles",
            "/a~1b/c~0d",
        ] {
            assert!(ClaimName::new(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", ClaimError::Name),
            ("a b", ClaimError::Name),
            ("grüppen", ClaimError::Name),
            ("a\tb", ClaimError::Name),
            ("/", ClaimError::Pointer),
            ("/a//b", ClaimError::Pointer),
            ("/a/", ClaimError::Pointer),
            ("/a~2", ClaimError::Pointer),
            ("/a~", ClaimError::Pointer),
            ("scope", ClaimError::ScopeClaim),
            ("scp", ClaimError::ScopeClaim),
            ("/scope", ClaimError::ScopeClaim),
            ("/scp", ClaimError::ScopeClaim),
            ("/scp/0", ClaimError::ScopeClaim),
        ] {
            assert_eq!(ClaimName::new(bad), Err(why), "{bad:?}");
        }
        assert!(ClaimName::new(&"g".repeat(257)).is_err());
        assert_eq!(n("/a~1b/c").top_level(), "a/b");
        assert_eq!(n("/a~01/c").top_level(), "a~1");
        assert_eq!(n("groups").top_level(), "groups");
    }

    #[test]
    fn pointers_reach_nested_claims() {
        let top = json!({"roles": ["admin"], "x/y": {"z": 1}});
        assert_eq!(
            n("/realm_access/roles").within(&top),
            Some(&json!(["admin"]))
        );
        assert_eq!(n("/realm_access").within(&top), Some(&top));
        assert_eq!(n("/realm_access/missing").within(&top), None);
        assert_eq!(n("/r/x~1y/z").within(&top), Some(&json!(1)));
        assert_eq!(n("groups").within(&top), Some(&top));
    }

    #[test]
    fn values_match_exactly_and_only_what_an_entry_can_name() {
        let k = |name: &str, v: Value| grant_key(&n(name), &ClaimValue::from_json(&v).unwrap());
        assert_eq!(
            keys(
                "groups",
                json!(["a", "B", 5, true, 1.5, null, {"x": 1}, ["a"], ""])
            )
            .unwrap(),
            [
                k("groups", json!("a")),
                k("groups", json!("B")),
                k("groups", json!(5)),
                k("groups", json!(true)),
            ]
        );
        assert_eq!(keys("acr", json!("a b")).unwrap(), [k("acr", json!("a b"))]);
        assert_ne!(k("g", json!("5")), k("g", json!(5)));
        assert_ne!(k("g", json!("true")), k("g", json!(true)));
        assert_ne!(k("g", json!("A")), k("g", json!("a")));
        assert!(keys("g", json!({"a": 1})).unwrap().is_empty());
        assert!(keys("g", json!(null)).unwrap().is_empty());
        assert!(keys("g", json!(2.0)).unwrap().is_empty());
        assert!(!is_grant_key("groups"));
        assert!(is_grant_key(&k("g", json!("a"))));
        // A control character first: outside every scope-token (RFC 6749 3.3).
        assert!(k("g", json!("a")).as_bytes()[0] < 0x21);
        assert_eq!(
            key_label(&k("groups", json!("support-leads"))),
            "groups=\"support-leads\""
        );
        assert_eq!(key_label(&k("n", json!(-3))), "n=-3");
        assert_eq!(key_label(&k("mfa", json!(false))), "mfa=false");
        assert_eq!(key_label("orders:read"), "orders:read");
    }

    #[test]
    fn a_name_cannot_smuggle_a_value() {
        // The NUL after the name, and names of printable ASCII alone, keep (name, value)
        // pairs apart.
        let a = grant_key(&n("g"), &ClaimValue::String("x".into()));
        let b = grant_key(&n("gs"), &ClaimValue::String("".into()));
        assert_ne!(a, b);
    }

    #[test]
    fn caps_refuse_the_claim() {
        assert_eq!(
            keys("g", Value::Array(vec![json!("a"); MAX_CLAIM_VALUES + 1])),
            Err(ClaimError::TooMany)
        );
        assert_eq!(
            keys("g", json!(["x".repeat(MAX_CLAIM_LEN + 1)])),
            Err(ClaimError::TooLong)
        );
        assert_eq!(
            keys("g", json!("x".repeat(MAX_CLAIM_LEN))).unwrap().len(),
            1
        );
        assert_eq!(
            ClaimValue::from_json(&json!("x".repeat(MAX_CLAIM_LEN + 1))),
            Err(ClaimError::Value)
        );
        assert_eq!(
            ClaimValue::from_json(&json!("a\nb")),
            Err(ClaimError::Value)
        );
        assert_eq!(
            ClaimValue::from_json(&json!(u64::MAX)).unwrap().to_json(),
            json!(u64::MAX)
        );
        assert_eq!(
            ClaimValue::from_json(&json!(i64::MIN)).unwrap().to_json(),
            json!(i64::MIN)
        );
    }

    #[test]
    fn bound_values_are_one_unreserved_segment() {
        assert_eq!(
            bound_value(Some(&json!("acme-1.b_c~d"))),
            Ok("acme-1.b_c~d")
        );
        let long = "a".repeat(MAX_BOUND_LEN);
        assert_eq!(bound_value(Some(&json!(long))), Ok(long.as_str()));
        for (v, why) in [
            (json!(null), Unbound::NotString),
            (json!(["acme"]), Unbound::NotString),
            (json!(5), Unbound::NotString),
            (json!({"id": "acme"}), Unbound::NotString),
            (json!(""), Unbound::Empty),
            (json!("a".repeat(MAX_BOUND_LEN + 1)), Unbound::TooLong),
            (json!("."), Unbound::DotSegment),
            (json!(".."), Unbound::DotSegment),
        ] {
            assert_eq!(bound_value(Some(&v)), Err(why), "{v}");
        }
        for bad in [
            "*", "a?", "a/b", "$x", "{a}", "a%2Fb", "a b", "a\tb", "é", "a+b", "a:b",
        ] {
            assert_eq!(
                bound_value(Some(&json!(bad))),
                Err(Unbound::Character),
                "{bad}"
            );
        }
        assert_eq!(bound_value(None), Err(Unbound::Missing));
    }

    #[test]
    fn binding_keys_round_trip_and_stay_apart() {
        let name = n("/org/id");
        let ok = binding_key(&name, Some(&json!("acme")));
        assert_eq!(read_binding_key(&ok), Some(("/org/id", Ok("acme"))));
        for why in [Unbound::Missing, Unbound::NotString, Unbound::Character] {
            let v = match why {
                Unbound::Missing => None,
                Unbound::NotString => Some(json!(["acme"])),
                _ => Some(json!("a*")),
            };
            let k = binding_key(&name, v.as_ref());
            assert_eq!(read_binding_key(&k), Some(("/org/id", Err(why))));
            assert!(is_binding_key(&k) && !is_grant_key(&k));
        }
        assert!(read_binding_key("orders:read").is_none());
        let grant = grant_key(&name, &ClaimValue::String("acme".into()));
        assert!(read_binding_key(&grant).is_none() && !is_binding_key(&grant));
    }
}
