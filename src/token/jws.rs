//! The compact JWS form (RFC 7515 7.1) and the header checks that come before any crypto.
//!
//! Cheap checks first: the shape, the base64url alphabet, the header's `alg` against the
//! allow-list, and the refusal of any header that names its own key. Only then is the
//! payload decoded and a signature verified.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::rejection::Rejection;
use crate::alg::{Alg, AlgSet};

/// The three parts of a compact JWS, still encoded.
#[derive(Debug, Clone, Copy)]
pub struct Compact<'a> {
    /// The base64url header.
    pub header: &'a str,
    /// The base64url payload.
    pub payload: &'a str,
    /// The base64url signature.
    pub signature: &'a str,
    /// `header.payload`: the bytes the signature covers.
    pub signing_input: &'a str,
}

/// Whether `token` has the shape of a compact JWS (three non-empty base64url parts). Used to
/// tell JWTs from opaque tokens when only opaque ones are introspected.
pub fn looks_like_jwt(token: &str) -> bool {
    split(token).is_ok()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Splits `token` into its parts. The base64url alphabet is not checked here: every part is
/// decoded before it is trusted, and the decoder refuses anything else.
///
/// # Errors
/// [`Rejection::Malformed`] unless there are exactly three non-empty parts.
pub fn split(token: &str) -> Result<Compact<'_>, Rejection> {
    // `str::find` with an ASCII char is a memchr: the token is scanned once, quickly.
    let d1 = token
        .find('.')
        .ok_or(Rejection::Malformed("not three dot-separated parts"))?;
    let d2 = token[d1 + 1..]
        .find('.')
        .map(|i| d1 + 1 + i)
        .ok_or(Rejection::Malformed("not three dot-separated parts"))?;
    if token[d2 + 1..].contains('.') {
        return Err(Rejection::Malformed(
            "more than three parts (JWE or garbage)",
        ));
    }
    if d1 == 0 || d2 == d1 + 1 || d2 + 1 == token.len() {
        return Err(Rejection::Malformed("an empty part"));
    }
    Ok(Compact {
        header: &token[..d1],
        payload: &token[d1 + 1..d2],
        signature: &token[d2 + 1..],
        signing_input: &token[..d2],
    })
}

/// The header fields scopegate reads. Duplicate members are refused by serde, so a header
/// cannot say two things.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    jku: Option<IgnoredAny>,
    #[serde(default)]
    x5u: Option<IgnoredAny>,
    #[serde(default)]
    jwk: Option<IgnoredAny>,
    #[serde(default)]
    x5c: Option<IgnoredAny>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// A checked header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The algorithm, already on the allow-list.
    pub alg: Alg,
    /// The key id, if any.
    pub kid: Option<Box<str>>,
    /// Whether `typ` is `at+jwt` (RFC 9068), case-insensitively, with or without
    /// `application/`.
    pub at_jwt: bool,
}

/// Longest decoded header accepted. Real headers are under 200 bytes; the ones that are not
/// carry certificate chains (`x5c`), which are refused anyway.
const MAX_HEADER: usize = 1024;

/// Decodes and checks the header against the allow-list.
///
/// # Errors
/// [`Rejection::Malformed`], [`Rejection::AlgorithmNotAllowed`], [`Rejection::KeyInHeader`],
/// [`Rejection::Critical`].
pub fn header(encoded: &str, allowed: AlgSet) -> Result<Header, Rejection> {
    let mut buf = [0u8; MAX_HEADER];
    if encoded.len() > MAX_HEADER * 4 / 3 + 4 {
        return Err(Rejection::Malformed("header too long"));
    }
    let len = URL_SAFE_NO_PAD
        .decode_slice(encoded, &mut buf)
        .map_err(|_| Rejection::Malformed("header is not base64url"))?;
    let raw: RawHeader<'_> = serde_json::from_slice(&buf[..len])
        .map_err(|_| Rejection::Malformed("header is not a JSON object with alg"))?;
    let alg = match Alg::from_name(&raw.alg) {
        Some(a) if allowed.contains(a) => a,
        _ => return Err(Rejection::AlgorithmNotAllowed(registered_name(&raw.alg))),
    };
    for (present, name) in [
        (raw.jku.is_some(), "jku"),
        (raw.x5u.is_some(), "x5u"),
        (raw.jwk.is_some(), "jwk"),
        (raw.x5c.is_some(), "x5c"),
    ] {
        if present {
            return Err(Rejection::KeyInHeader(name));
        }
    }
    if raw.crit.is_some() {
        return Err(Rejection::Critical);
    }
    let at_jwt = typ_is(raw.typ.as_deref(), "at+jwt");
    Ok(Header {
        alg,
        kid: raw.kid.map(|k| k.into()),
        at_jwt,
    })
}

/// Whether a `typ` header names the media type `name` (`at+jwt`, `dpop+jwt`): compared
/// case-insensitively, with or without `application/` (RFC 7515 §4.1.9).
pub fn typ_is(typ: Option<&str>, name: &str) -> bool {
    typ.is_some_and(|t| {
        let t = t.strip_prefix("application/").unwrap_or(t);
        t.eq_ignore_ascii_case(name)
    })
}

/// Decodes the signature into `buf` (large enough for RSA-8192); returns its length.
///
/// # Errors
/// [`Rejection::Malformed`] when it is not base64url or too long.
pub fn signature(encoded: &str, buf: &mut [u8; 1024]) -> Result<usize, Rejection> {
    if encoded.len() > 1368 {
        return Err(Rejection::Malformed("signature too long"));
    }
    URL_SAFE_NO_PAD
        .decode_slice(encoded, buf)
        .map_err(|_| Rejection::Malformed("signature is not base64url"))
}

/// Decodes the payload.
///
/// # Errors
/// [`Rejection::Malformed`] when it is not base64url.
pub fn payload(encoded: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| Rejection::Malformed("payload is not base64url"))
}

/// The JOSE registry's spelling of a refused `alg`, so that the log can say "HS256" or
/// "none" without ever echoing the header's own text.
fn registered_name(alg: &str) -> &'static str {
    const REGISTERED: [&str; 16] = [
        "none", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed25519",
    ];
    REGISTERED
        .into_iter()
        .find(|r| *r == alg)
        .unwrap_or("(unregistered)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn all() -> AlgSet {
        Alg::DEFAULT_ALLOWED.into_iter().collect()
    }

    #[test]
    fn split_shapes() {
        assert!(split("a.b.c").is_ok());
        for bad in ["ThisIsNotAJWT", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b."] {
            assert!(split(bad).is_err(), "{bad}");
        }
        assert!(looks_like_jwt("a-_.b.c"));
        for opaque in ["ThisIsNotAJWT", "a.b.c=", "a.b+.c", "a.b/.c"] {
            assert!(!looks_like_jwt(opaque), "{opaque}");
        }
    }

    #[test]
    fn header_allow_list() {
        let h = header(&b64(r#"{"alg":"RS256","kid":"k1","typ":"at+jwt"}"#), all()).unwrap();
        assert_eq!(
            (h.alg, h.kid.as_deref(), h.at_jwt),
            (Alg::RS256, Some("k1"), true)
        );
        for alg in ["none", "HS256", "rs256", "PS512"] {
            let e = header(&b64(&format!(r#"{{"alg":"{alg}"}}"#)), all()).unwrap_err();
            assert!(
                matches!(e, Rejection::AlgorithmNotAllowed(_)),
                "{alg}: {e:?}"
            );
        }
    }

    #[test]
    fn header_key_locations_refused() {
        for field in ["jku", "x5u", "jwk", "x5c"] {
            let h = format!(r#"{{"alg":"RS256","{field}":"https://evil.example/keys"}}"#);
            assert_eq!(header(&b64(&h), all()), Err(Rejection::KeyInHeader(field)));
        }
        let h = r#"{"alg":"RS256","crit":["exp"],"exp":1}"#;
        assert_eq!(header(&b64(h), all()), Err(Rejection::Critical));
    }

    #[test]
    fn header_garbage() {
        for h in [
            "{",
            "[]",
            r#"{"alg":1}"#,
            r#"{"alg":"RS256","alg":"none"}"#,
            r#"{"kid":"x"}"#,
        ] {
            assert!(
                matches!(header(&b64(h), all()), Err(Rejection::Malformed(_))),
                "{h}"
            );
        }
        assert!(header("!!!", all()).is_err());
    }
}
