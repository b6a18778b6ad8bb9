//! DPoP proofs (RFC 9449): the checks of §4.3 on the `DPoP` header of one request.
//!
//! A DPoP-bound access token (`cnf.jkt`, §6.1) is good only beside a proof: a JWT signed by
//! the client's private key, naming this request's method and URL, made just now, carrying the
//! hash of this access token, and never used before. A stolen token is then worthless without
//! the key. This module is sans-IO: [`verify`] does every check of §4.3 but the replay one,
//! and returns what that check needs ([`Proof`]); the authorizer asks its replay guard.
//!
//! The checks, in the order they run (cheap ones first, the signature before any claim is
//! read, so that only linear work precedes it):
//! 1. at most [`MAX_PROOF_BYTES`], one compact JWS;
//! 2. `typ` is `dpop+jwt`; `alg` is on the allow-list (asymmetric by construction: [`Alg`]
//!    has no MAC and no `none`); no `crit`; the `jwk` header is a public key: a private
//!    member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) refuses the proof, since a client
//!    that sends its private key has none left;
//! 3. the key's RFC 7638 thumbprint is the token's `cnf.jkt`;
//! 4. the signature verifies with that key;
//! 5. `htm` is the request's method, `htu` its URL (no query or fragment, §4.2; compared after
//!    RFC 3986 §6.2.2 and §6.2.3 normalization, as §4.3 asks), `iat` within the allowed age
//!    (and at most [`FUTURE_SKEW`] seconds ahead), `ath` the SHA-256 of the access token, and
//!    a `jti`.
//!
//! Server nonces (`DPoP-Nonce`, §8 and §9) are not issued, so a `nonce` claim is not read.

use std::borrow::Cow;

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::claims::Text;
use super::jws;
use super::keys::VerifyingKey;
use super::rejection::Rejection;
use crate::alg::{Alg, AlgSet};

/// The largest `DPoP` header value taken, in bytes: checked before anything else.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// How far a proof's `iat` may be ahead of the authorizer's clock, in seconds: a client's
/// clock a little fast is not an attack, a proof made for later is.
pub const FUTURE_SKEW: u64 = 5;

/// The request a proof must name: its method and its URL.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The HTTP method (`GET`), as API Gateway reports it.
    pub method: &'a str,
    /// The origin the client called: `https://` and the domain name, or
    /// `SCOPEGATE_DPOP_ORIGIN`.
    pub origin: &'a str,
    /// The request's path as the event gives it (REST and payload 1.0:
    /// `requestContext.path`; payload 2.0: `rawPath`), in the form `form` says.
    pub path: &'a str,
    /// Whether API Gateway passed `path` still percent-encoded or decoded.
    pub form: PathForm,
}

/// How an event carries the request's path. REST APIs keep the client's percent-encoding;
/// HTTP APIs decode it (payload 1.0's `path` and 2.0's `rawPath` alike), so `/a%3Fb` arrives
/// as `/a?b` and `/a%2Fb` as `/a/b`. A decoded path cannot be parsed as a URL (its `?` would
/// start a query), so the claim is decoded instead and the two compared byte for byte: what
/// API Gateway cannot tell apart, the check does not either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathForm {
    /// Still percent-encoded (REST APIs).
    Encoded,
    /// Percent-decoded (HTTP APIs).
    Decoded,
}

/// The rules a proof is checked by.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The algorithms a proof may be signed with (`SCOPEGATE_ALGORITHMS`).
    pub algorithms: AlgSet,
    /// How old a proof may be, in seconds (`SCOPEGATE_DPOP_MAX_AGE_SECONDS`).
    pub max_age: u64,
}

/// A proof that passed every check but the replay one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The replay key: the SHA-256 of the key's thumbprint and the `jti`, base64url. The
    /// `jti` is the client's text: hashed, it has a fixed size and no byte a table or a log
    /// could mind, and one client's `jti` cannot collide with another's.
    pub replay_key: String,
    /// Until when (Unix seconds) a replay of it must be caught: after that its `iat` is too
    /// old for the proof to pass anyway.
    pub keep_until: u64,
}

/// The proof header's members scopegate reads. Duplicate members are refused by serde.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    jwk: Option<&'a RawValue>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// A JWK's private members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2): any of them
/// present means the header carries a private key.
#[derive(Deserialize)]
struct PrivateMembers {
    #[serde(default)]
    d: Option<IgnoredAny>,
    #[serde(default)]
    p: Option<IgnoredAny>,
    #[serde(default)]
    q: Option<IgnoredAny>,
    #[serde(default)]
    dp: Option<IgnoredAny>,
    #[serde(default)]
    dq: Option<IgnoredAny>,
    #[serde(default)]
    qi: Option<IgnoredAny>,
    #[serde(default)]
    oth: Option<IgnoredAny>,
    #[serde(default)]
    k: Option<IgnoredAny>,
}

impl PrivateMembers {
    fn any(&self) -> bool {
        [
            &self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi, &self.oth, &self.k,
        ]
        .iter()
        .any(|m| m.is_some())
    }
}

/// The proof's claims (§4.2). Duplicate members are refused.
#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(borrow, default)]
    jti: Option<Text<'a>>,
    #[serde(borrow, default)]
    htm: Option<Text<'a>>,
    #[serde(borrow, default)]
    htu: Option<Text<'a>>,
    #[serde(default)]
    iat: Option<serde_json::Number>,
    #[serde(borrow, default)]
    ath: Option<Text<'a>>,
}

fn invalid(why: &'static str) -> Rejection {
    Rejection::DpopProof(why)
}

/// Checks `proof` (the `DPoP` header's value) for a request to `target` with `token`, bound
/// to the key whose thumbprint is `jkt`, at `now`.
///
/// # Errors
/// [`Rejection::DpopProof`] naming the check that failed (a fixed text, never the proof's).
pub fn verify(
    proof: &str,
    token: &str,
    jkt: &str,
    target: Target<'_>,
    now: u64,
    rules: Rules,
) -> Result<Proof, Rejection> {
    check(proof, Some((token, jkt)), target, now, rules).map(|(p, _)| p)
}

/// Checks `proof` sent with a token request (RFC 9449 §5): every check of [`verify`] but
/// those that concern an access token (`ath`, and the key named by `cnf.jkt`). Returns the
/// proof and its key's thumbprint, which the token issued is bound to (`cnf.jkt`). For the
/// dev identity provider of local mode.
///
/// # Errors
/// As [`verify`].
pub fn verify_token_request(
    proof: &str,
    target: Target<'_>,
    now: u64,
    rules: Rules,
) -> Result<(Proof, String), Rejection> {
    check(proof, None, target, now, rules)
}

/// [`verify`], with the access token and the thumbprint it is bound to when there is one.
fn check(
    proof: &str,
    bound: Option<(&str, &str)>,
    target: Target<'_>,
    now: u64,
    rules: Rules,
) -> Result<(Proof, String), Rejection> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(invalid("the proof is over 8 KiB"));
    }
    let parts = jws::split(proof).map_err(|_| invalid("not a compact JWS"))?;
    let header_json = URL_SAFE_NO_PAD
        .decode(parts.header)
        .map_err(|_| invalid("the header is not base64url"))?;
    let header: Header<'_> = serde_json::from_slice(&header_json)
        .map_err(|_| invalid("the header is not a JSON object with alg"))?;
    if !jws::typ_is(header.typ.as_deref(), "dpop+jwt") {
        return Err(invalid("typ is not dpop+jwt"));
    }
    let alg = Alg::from_name(&header.alg)
        .filter(|a| rules.algorithms.contains(*a))
        .ok_or(invalid("alg is not on the allow-list"))?;
    if header.crit.is_some() {
        return Err(invalid("the header has critical extensions"));
    }
    let raw_jwk = header.jwk.ok_or(invalid("the header has no jwk"))?;
    let private: PrivateMembers =
        serde_json::from_str(raw_jwk.get()).map_err(|_| invalid("jwk is not a JSON object"))?;
    if private.any() {
        return Err(invalid("jwk holds a private or symmetric key"));
    }
    let jwk: Jwk =
        serde_json::from_str(raw_jwk.get()).map_err(|_| invalid("jwk is not a usable key"))?;
    let thumbprint = thumbprint(&jwk).ok_or(invalid("jwk is not a usable key"))?;
    if bound.is_some_and(|(_, jkt)| thumbprint != jkt) {
        return Err(invalid(
            "the proof's key is not the one the token is bound to",
        ));
    }
    let key = VerifyingKey::from_jwk(&jwk, std::iter::once(alg).collect())
        .map_err(|_| invalid("jwk cannot verify the proof's alg"))?;
    let mut sig = [0u8; 1024];
    let len = jws::signature(parts.signature, &mut sig)
        .map_err(|_| invalid("the signature is not base64url"))?;
    if key.verify(alg, parts.signing_input.as_bytes(), &sig[..len]) != Some(true) {
        return Err(invalid("the signature does not verify"));
    }

    let payload =
        jws::payload(parts.payload).map_err(|_| invalid("the payload is not base64url"))?;
    let claims: Claims<'_> = serde_json::from_slice(&payload)
        .map_err(|_| invalid("the claims are not a JSON object"))?;
    let jti = claims.jti.ok_or(invalid("no jti"))?;
    if jti.0.is_empty() {
        return Err(invalid("no jti"));
    }
    let htm = claims.htm.ok_or(invalid("no htm"))?;
    if *htm.0 != *target.method {
        return Err(invalid("htm is not the request's method"));
    }
    let htu = claims.htu.ok_or(invalid("no htu"))?;
    let claimed = normalize(&htu.0, true).ok_or(invalid(
        "htu is not an https URL (http on loopback only) without query or fragment",
    ))?;
    if !names_the_request(&claimed, target)? {
        return Err(invalid("htu is not the request's URL"));
    }
    // A NumericDate may have a fraction (RFC 7519 §2); the seconds are what is compared.
    let iat = claims
        .iat
        .and_then(|n| n.as_f64())
        .filter(|t| t.is_finite() && *t >= 0.0 && *t < 1e15)
        .map(|t| t as u64)
        .ok_or(invalid("no iat, or not a time"))?;
    if iat > now.saturating_add(FUTURE_SKEW) {
        return Err(invalid("iat is in the future"));
    }
    if iat.saturating_add(rules.max_age) < now {
        return Err(invalid("iat is too old"));
    }
    if let Some((token, _)) = bound {
        let claimed = claims.ath.ok_or(invalid("no ath"))?;
        if *claimed.0 != *ath(token) {
            return Err(invalid("ath is not the hash of the access token"));
        }
    }
    let proof = Proof {
        replay_key: replay_key(&thumbprint, &jti.0),
        keep_until: iat.saturating_add(rules.max_age).saturating_add(1),
    };
    Ok((proof, thumbprint))
}

/// Whether `claimed` (a normalized `htu`) names `target`'s URL.
fn names_the_request(claimed: &str, target: Target<'_>) -> Result<bool, Rejection> {
    let bad_origin = || invalid("the request's URL cannot be built (check SCOPEGATE_DPOP_ORIGIN)");
    if has_dot_segment(target.path) {
        return Err(invalid("the request's path has a dot segment"));
    }
    match target.form {
        PathForm::Encoded => {
            // An encoded path holds no `?` or `#`; one that does is no path API Gateway sends,
            // and parsed as a URL it would lose its end.
            if target.path.contains(['?', '#']) || !target.path.starts_with('/') {
                return Err(invalid("the request's path is not an encoded path"));
            }
            let mut actual = String::with_capacity(target.origin.len() + target.path.len());
            actual.push_str(target.origin.trim_end_matches('/'));
            actual.push_str(target.path);
            let actual = normalize(&actual, false).ok_or_else(bad_origin)?;
            Ok(claimed == actual)
        }
        PathForm::Decoded => {
            let origin = normalize(target.origin, false).ok_or_else(bad_origin)?;
            // `normalize` ends a bare origin with `/`: the claim's path starts there.
            let origin = origin.strip_suffix('/').unwrap_or(&origin);
            let Some(path) = claimed.strip_prefix(origin) else {
                return Ok(false);
            };
            Ok(path.starts_with('/') && percent_decode(path) == target.path.as_bytes())
        }
    }
}

/// The byte `%XX` at `b[i..]` encodes, if `b[i]` starts one.
fn pct_at(b: &[u8], i: usize) -> Option<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    if b.get(i) != Some(&b'%') {
        return None;
    }
    let (h, l) = (hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?);
    u8::try_from(h * 16 + l).ok()
}

/// `s` with every `%XX` decoded (bytes, since the result need not be UTF-8); a `%` not
/// followed by two hex digits is kept.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match pct_at(b, i) {
            Some(c) => {
                out.push(c);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// Whether a segment of `path` is `.` or `..`, however percent-encoded. A URL parser removes
/// them from the claim (RFC 3986 §5.2.4), but API Gateway routes the event's path as it came:
/// `/dev/x/%2e%2e/admin` is a request under `x`, not for `/dev/admin`, so such a path is
/// refused rather than resolved.
fn has_dot_segment(path: &str) -> bool {
    // At most six bytes (`%2e%2e`) can decode to `..`: longer segments are not decoded.
    path.split('/').any(|segment| {
        segment.len() <= 6 && {
            let d = percent_decode(segment);
            d == b"." || d == b".."
        }
    })
}

/// A proof's `ath` for `token` (RFC 9449 §4.2): the base64url SHA-256 of its ASCII.
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

/// The RFC 7638 thumbprint (SHA-256, base64url) of a public JWK: the hash of its required
/// members only, in lexicographic order, without whitespace. `None` for a key type a proof
/// cannot use.
pub fn thumbprint(jwk: &Jwk) -> Option<String> {
    // serde_json writes a struct's fields in declaration order and escapes the strings, so
    // these are the canonical forms whatever the members hold.
    let members = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            #[derive(serde::Serialize)]
            struct Rsa<'a> {
                e: &'a str,
                kty: &'a str,
                n: &'a str,
            }
            serde_json::to_vec(&Rsa {
                e: &p.e,
                kty: "RSA",
                n: &p.n,
            })
        }
        AlgorithmParameters::EllipticCurve(p) => {
            #[derive(serde::Serialize)]
            struct Ec<'a> {
                crv: &'a str,
                kty: &'a str,
                x: &'a str,
                y: &'a str,
            }
            let crv = match p.curve {
                jsonwebtoken::jwk::EllipticCurve::P256 => "P-256",
                jsonwebtoken::jwk::EllipticCurve::P384 => "P-384",
                _ => return None,
            };
            serde_json::to_vec(&Ec {
                crv,
                kty: "EC",
                x: &p.x,
                y: &p.y,
            })
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            #[derive(serde::Serialize)]
            struct Okp<'a> {
                crv: &'a str,
                kty: &'a str,
                x: &'a str,
            }
            if p.curve != jsonwebtoken::jwk::EllipticCurve::Ed25519 {
                return None;
            }
            serde_json::to_vec(&Okp {
                crv: "Ed25519",
                kty: "OKP",
                x: &p.x,
            })
        }
        _ => return None,
    }
    .ok()?;
    Some(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &members)))
}

fn replay_key(thumbprint: &str, jti: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(thumbprint.as_bytes());
    // A byte neither a thumbprint nor a JSON string's UTF-8 can hold ends the first part.
    ctx.update(&[0xff]);
    ctx.update(jti.as_bytes());
    URL_SAFE_NO_PAD.encode(ctx.finish())
}

/// `url` in the form RFC 3986 §6.2.2 and §6.2.3 make comparable: scheme and host in lower
/// case, the default port dropped, dot segments removed, percent-encodings of unreserved
/// characters decoded and the rest in upper case, an empty path as `/`. `None` unless it is an
/// absolute https URL with a host and no user information (plain http only on loopback, for
/// `scopegate local`); with `strict` (the claim's side, §4.2), also when it has a query or a
/// fragment. The request's side drops them.
pub fn normalize(url: &str, strict: bool) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let scheme_ok = parsed.scheme() == "https"
        || (parsed.scheme() == "http" && crate::config::is_loopback(&parsed));
    if !scheme_ok
        || parsed.host_str().is_none()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || (strict && (parsed.query().is_some() || parsed.fragment().is_some()))
    {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    out.push_str(parsed.scheme());
    out.push_str("://");
    out.push_str(parsed.host_str()?);
    if let Some(port) = parsed.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    let bytes = parsed.path().as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match pct_at(bytes, i) {
            Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') => {
                out.push(c as char);
                i += 3;
            }
            Some(_) => {
                out.push('%');
                out.push(bytes[i + 1].to_ascii_uppercase() as char);
                out.push(bytes[i + 2].to_ascii_uppercase() as char);
                i += 3;
            }
            None => {
                out.push(bytes[i] as char);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::token::mint::SigningKey;

    const NOW: u64 = 1_800_000_000;
    const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln";
    const TARGET: Target<'static> = Target {
        method: "GET",
        origin: "https://api.example.com",
        path: "/dev/pets",
        form: PathForm::Encoded,
    };

    fn rules() -> Rules {
        Rules {
            algorithms: Alg::DEFAULT_ALLOWED.into_iter().collect(),
            max_age: 60,
        }
    }

    fn ath(token: &str) -> String {
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
    }

    fn claims() -> Value {
        json!({"jti": "j1", "htm": "GET", "htu": "https://api.example.com/dev/pets",
               "iat": NOW, "ath": ath(TOKEN)})
    }

    fn header(key: &SigningKey) -> Value {
        json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk()})
    }

    fn check(proof: &str, key: &SigningKey) -> Result<Proof, Rejection> {
        verify(proof, TOKEN, &key.jkt(), TARGET, NOW, rules())
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk: Jwk = serde_json::from_value(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }))
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn a_good_proof_passes_for_every_key_type() {
        for alg in [Alg::ES256, Alg::ES384, Alg::RS256, Alg::PS256, Alg::EdDSA] {
            let key = SigningKey::generate(alg, "k");
            let proof = key.sign_with_header(&header(&key), &claims());
            let got = check(&proof, &key).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(got.keep_until, NOW + 61);
            // The same jti by another key is another replay key.
            let other = SigningKey::generate(alg, "k");
            let proof = other.sign_with_header(&header(&other), &claims());
            assert_ne!(check(&proof, &other).unwrap().replay_key, got.replay_key);
        }
    }

    /// Every check of RFC 9449 §4.3, each failing once, with everything else right.
    #[test]
    fn each_check_of_section_4_3_refuses_alone() {
        let key = SigningKey::generate(Alg::ES256, "k");
        let other = SigningKey::generate(Alg::ES256, "k");
        let good_h = header(&key);
        let sign = |h: &Value, c: &Value| key.sign_with_header(h, c);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims();
            f(&mut c);
            sign(&good_h, &c)
        };
        let with_h = |f: &dyn Fn(&mut Value)| {
            let mut h = good_h.clone();
            f(&mut h);
            sign(&h, &claims())
        };
        let mut private = key.public_jwk();
        private["d"] = json!("AAAA");
        let good = sign(&good_h, &claims());
        let mut tampered = good.clone();
        tampered.replace_range(tampered.len() - 4.., "AAAA");
        let cases: Vec<(&str, String)> = vec![
            ("not a JWS", "a.b".into()),
            (
                "over 8 KiB",
                format!("{}{}", good, "A".repeat(MAX_PROOF_BYTES)),
            ),
            (
                "no typ",
                with_h(&|h| drop(h.as_object_mut().unwrap().remove("typ"))),
            ),
            ("typ jwt", with_h(&|h| h["typ"] = json!("JWT"))),
            ("typ at+jwt", with_h(&|h| h["typ"] = json!("at+jwt"))),
            ("alg none", with_h(&|h| h["alg"] = json!("none"))),
            ("alg HS256", with_h(&|h| h["alg"] = json!("HS256"))),
            (
                "alg other than the key's",
                with_h(&|h| h["alg"] = json!("ES384")),
            ),
            ("crit", with_h(&|h| h["crit"] = json!(["x"]))),
            (
                "no jwk",
                with_h(&|h| drop(h.as_object_mut().unwrap().remove("jwk"))),
            ),
            ("jwk with d", with_h(&|h| h["jwk"] = private.clone())),
            (
                "jwk symmetric",
                with_h(&|h| h["jwk"] = json!({"kty": "oct", "k": "c2VjcmV0"})),
            ),
            (
                "jwk of another key",
                with_h(&|h| h["jwk"] = other.public_jwk()),
            ),
            ("jwk not an object", with_h(&|h| h["jwk"] = json!("k"))),
            ("signature", tampered),
            (
                "no jti",
                with(&|c| drop(c.as_object_mut().unwrap().remove("jti"))),
            ),
            ("empty jti", with(&|c| c["jti"] = json!(""))),
            (
                "no htm",
                with(&|c| drop(c.as_object_mut().unwrap().remove("htm"))),
            ),
            ("htm POST", with(&|c| c["htm"] = json!("POST"))),
            ("htm get", with(&|c| c["htm"] = json!("get"))),
            (
                "no htu",
                with(&|c| drop(c.as_object_mut().unwrap().remove("htu"))),
            ),
            (
                "htu other path",
                with(&|c| c["htu"] = json!("https://api.example.com/dev/cats")),
            ),
            (
                "htu other host",
                with(&|c| c["htu"] = json!("https://evil.example.com/dev/pets")),
            ),
            (
                "htu http",
                with(&|c| c["htu"] = json!("http://api.example.com/dev/pets")),
            ),
            (
                "htu query",
                with(&|c| c["htu"] = json!("https://api.example.com/dev/pets?a=1")),
            ),
            (
                "htu fragment",
                with(&|c| c["htu"] = json!("https://api.example.com/dev/pets#x")),
            ),
            ("htu not a URL", with(&|c| c["htu"] = json!("/dev/pets"))),
            (
                "no iat",
                with(&|c| drop(c.as_object_mut().unwrap().remove("iat"))),
            ),
            ("iat too old", with(&|c| c["iat"] = json!(NOW - 61))),
            (
                "iat in the future",
                with(&|c| c["iat"] = json!(NOW + FUTURE_SKEW + 1)),
            ),
            ("iat a string", with(&|c| c["iat"] = json!(NOW.to_string()))),
            ("iat negative", with(&|c| c["iat"] = json!(-1))),
            (
                "no ath",
                with(&|c| drop(c.as_object_mut().unwrap().remove("ath"))),
            ),
            (
                "ath of another token",
                with(&|c| c["ath"] = json!(ath("another"))),
            ),
        ];
        assert!(check(&good, &key).is_ok());
        for (what, proof) in cases {
            assert!(
                matches!(check(&proof, &key), Err(Rejection::DpopProof(_))),
                "{what}: {:?}",
                check(&proof, &key)
            );
        }
        // Duplicate members say two things: refused.
        let dup = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(good_h.to_string()),
            URL_SAFE_NO_PAD.encode(r#"{"jti":"a","jti":"b"}"#),
            "AAAA"
        );
        assert!(check(&dup, &key).is_err());
    }

    #[test]
    fn the_edges_of_the_window_and_of_the_url() {
        let key = SigningKey::generate(Alg::ES256, "k");
        let ok = |c: Value| check(&key.sign_with_header(&header(&key), &c), &key).is_ok();
        let mut c = claims();
        c["iat"] = json!(NOW - 60);
        assert!(ok(c.clone()), "exactly max_age old");
        c["iat"] = json!(NOW + FUTURE_SKEW);
        assert!(ok(c.clone()), "exactly the skew ahead");
        // RFC 3986 §6.2.2 and §6.2.3: case of scheme and host, the default port, percent-
        // encoding of unreserved characters and the hex digits' case, dot segments.
        for htu in [
            "HTTPS://API.EXAMPLE.COM/dev/pets",
            "https://api.example.com:443/dev/pets",
            "https://api.example.com/dev/%70ets",
            "https://api.example.com/dev/./pets",
            "https://api.example.com/dev/x/../pets",
        ] {
            c = claims();
            c["htu"] = json!(htu);
            assert!(ok(c.clone()), "{htu}");
        }
        c = claims();
        c["htu"] = json!("https://api.example.com/Dev/pets");
        assert!(!ok(c), "the path is case-sensitive");
        c = claims();
        c["iat"] = json!(NOW as f64 + 0.5);
        assert!(ok(c), "a NumericDate may have a fraction");
        assert_eq!(
            normalize("https://h.example/a%2fb%7e", true).as_deref(),
            Some("https://h.example/a%2Fb~")
        );
        assert_eq!(
            normalize("https://h.example", true).as_deref(),
            Some("https://h.example/")
        );
        assert_eq!(normalize("https://u:p@h.example/", true), None);
        // Plain http only on loopback (`scopegate local`).
        assert_eq!(
            normalize("http://127.0.0.1:8080/dev", true).as_deref(),
            Some("http://127.0.0.1:8080/dev")
        );
        assert_eq!(normalize("http://api.example.com/dev", true), None);
    }

    /// REST passes the path encoded, HTTP APIs decoded: a proof names the request in either,
    /// and a decoded `?` or `#` (from `%3F`, `%23`) never cuts the path short.
    #[test]
    fn the_path_is_compared_in_the_form_the_event_gives_it() {
        let key = SigningKey::generate(Alg::ES256, "k");
        let check_at = |htu: &str, path: &str, form: PathForm| {
            let mut c = claims();
            c["htu"] = json!(htu);
            let proof = key.sign_with_header(&header(&key), &c);
            let target = Target {
                path,
                form,
                ..TARGET
            };
            verify(&proof, TOKEN, &key.jkt(), target, NOW, rules())
        };
        let h = "https://api.example.com";
        for (htu, path, form, pass) in [
            ("/dev/a%3Fb", "/dev/a%3Fb", PathForm::Encoded, true),
            ("/dev/a%3Fb", "/dev/a?b", PathForm::Decoded, true),
            ("/dev/a", "/dev/a?b", PathForm::Decoded, false),
            ("/dev/a", "/dev/a?b", PathForm::Encoded, false),
            ("/dev/a", "/dev/a#b", PathForm::Encoded, false),
            ("/dev/%2541", "/dev/%41", PathForm::Decoded, true),
            ("/dev/A", "/dev/%41", PathForm::Decoded, false),
            ("/dev/%41", "/dev/A", PathForm::Decoded, true),
            ("/dev/a%2Fb", "/dev/a/b", PathForm::Decoded, true),
            ("/dev/caf%C3%A9", "/dev/caf\u{e9}", PathForm::Decoded, true),
            ("/dev/pets", "/dev/pets", PathForm::Decoded, true),
            ("/dev/pets", "/dev/pets/", PathForm::Decoded, false),
            // Bytes that are not UTF-8 are compared as bytes, never matched loosely.
            ("/dev/%FF", "/dev/\u{ff}", PathForm::Decoded, false),
            ("/dev/%C3%BF", "/dev/\u{ff}", PathForm::Decoded, true),
            // A dot segment in the event's path is no path to resolve.
            (
                "/dev/admin",
                "/dev/x/%2e%2e/admin",
                PathForm::Encoded,
                false,
            ),
            ("/dev/admin", "/dev/x/../admin", PathForm::Encoded, false),
            ("/dev/admin", "/dev/x/../admin", PathForm::Decoded, false),
            ("/dev/x/../admin", "/dev/admin", PathForm::Encoded, true),
        ] {
            let got = check_at(&format!("{h}{htu}"), path, form);
            assert_eq!(
                got.is_ok(),
                pass,
                "{htu} against {path} ({form:?}): {got:?}"
            );
        }
        // Another host, whatever the path's form.
        for other in ["https://evil.example.com", "https://api.example.com.evil"] {
            let got = check_at(&format!("{other}/dev/pets"), "/dev/pets", PathForm::Decoded);
            assert!(got.is_err(), "{other}");
        }
    }
}
