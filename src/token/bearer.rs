//! `Bearer <token>` extraction from a token source value.
//!
//! The size cap is checked first, before any other work, so an oversized header costs one
//! comparison. The scheme is case-insensitive (RFC 7235 2.1); exactly one space-free token
//! must follow it.

use super::rejection::Rejection;

/// RFC 6750 2.1 `b64token`: `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`, then `=`
/// padding (accepted anywhere here; a JWT's decoder is stricter). One table lookup a byte:
/// the check runs over every token on the warm path.
static B64TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
        b += 1;
    }
    t
};

/// Returns the token in `value` ("Bearer <token>").
///
/// # Errors
/// [`Rejection::TooLarge`] over `max_bytes`, [`Rejection::Missing`] for an empty value,
/// [`Rejection::NotBearer`] for another scheme, a missing token, more than one, or a
/// character outside RFC 6750's `b64token`.
///
/// # Example
/// ```
/// use scopegate::token::bearer::extract;
/// assert_eq!(extract("bearer abc.def.ghi", 16384), Ok("abc.def.ghi"));
/// assert!(extract("Basic dXNlcjpwYXNz", 16384).is_err());
/// ```
pub fn extract(value: &str, max_bytes: usize) -> Result<&str, Rejection> {
    // "Bearer " + the token: the cap is on the token, the scheme gets its 7 bytes on top.
    if value.len() > max_bytes + 7 {
        return Err(Rejection::TooLarge {
            len: value.len(),
            max: max_bytes,
        });
    }
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return Err(Rejection::Missing);
    }
    let (scheme, rest) = value.split_once([' ', '\t']).ok_or(Rejection::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::NotBearer);
    }
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() || !token.bytes().all(|b| B64TOKEN[usize::from(b)]) {
        return Err(Rejection::NotBearer);
    }
    if token.len() > max_bytes {
        return Err(Rejection::TooLarge {
            len: token.len(),
            max: max_bytes,
        });
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_scheme_case() {
        for v in [
            "Bearer a.b.c",
            "bearer a.b.c",
            "BEARER  a.b.c",
            " Bearer a.b.c ",
        ] {
            assert_eq!(extract(v, 100), Ok("a.b.c"), "{v}");
        }
    }

    #[test]
    fn refuses_other_shapes() {
        assert_eq!(extract("", 100), Err(Rejection::Missing));
        for v in [
            "a.b.c",
            "Basic a.b.c",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a,b",
            "Bearera.b.c",
            "Bearer a\"b",
            "Bearer a%20b",
            "Bearer a\u{e9}b",
        ] {
            assert_eq!(extract(v, 100), Err(Rejection::NotBearer), "{v}");
        }
    }

    #[test]
    fn size_cap_comes_first() {
        let big = format!("Bearer {}", "a".repeat(101));
        assert!(matches!(
            extract(&big, 100),
            Err(Rejection::TooLarge { max: 100, .. })
        ));
        let huge = "x".repeat(10_000);
        assert!(matches!(
            extract(&huge, 100),
            Err(Rejection::TooLarge { .. })
        ));
        assert_eq!(
            extract(&format!("Bearer {}", "a".repeat(100)), 100).map(str::len),
            Ok(100)
        );
    }
}
