//! `Bearer <token>` (and `DPoP <token>`) extraction from a token source value.
//!
//! The size cap is checked first, before any other work, so an oversized header costs one
//! comparison. The scheme is case-insensitive (RFC 7235 2.1); exactly one space-free token
//! must follow it. RFC 9449 §7.1's `DPoP` scheme has the same token68 syntax; which scheme
//! fits which token is [`super::binding`]'s business.

use super::rejection::Rejection;

/// RFC 6750 2.1 `b64token`: `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`, then `=`
/// padding (accepted anywhere here; a JWT's decoder is stricter).
///
/// Branch-free on purpose: comparisons joined with `|` let the compiler check a block of
/// bytes per instruction, where a table lookup or `matches!` goes a byte at a time. The check
/// runs over every token on the warm path, including the cached ones.
#[inline(always)]
fn is_b64token(b: u8) -> bool {
    // ASCII letters differ from their lowercase only in 0x20; nothing else lands in a..=z.
    ((b | 0x20).wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
        | (b == b'=')
}

/// Whether every byte is a [`is_b64token`] byte: whole blocks without an early exit (so they
/// vectorize), then the tail.
fn all_b64token(s: &[u8]) -> bool {
    const BLOCK: usize = 32;
    let mut blocks = s.chunks_exact(BLOCK);
    for block in &mut blocks {
        if !block.iter().fold(true, |ok, &b| ok & is_b64token(b)) {
            return false;
        }
    }
    blocks.remainder().iter().all(|&b| is_b64token(b))
}

/// The authorization scheme a token came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer` (RFC 6750 §2.1).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1): the token is presented with a proof of its key.
    DPoP,
}

/// Returns the token in `value` (`Bearer <token>`), refusing the `DPoP` scheme.
///
/// # Errors
/// As [`extract_with_scheme`], and [`Rejection::NotBearer`] for `DPoP`.
///
/// # Example
/// ```
/// use scopegate::token::bearer::extract;
/// assert_eq!(extract("bearer abc.def.ghi", 16384), Ok("abc.def.ghi"));
/// assert!(extract("Basic dXNlcjpwYXNz", 16384).is_err());
/// ```
pub fn extract(value: &str, max_bytes: usize) -> Result<&str, Rejection> {
    match extract_with_scheme(value, max_bytes)? {
        (Scheme::Bearer, token) => Ok(token),
        (Scheme::DPoP, _) => Err(Rejection::NotBearer),
    }
}

/// Returns the scheme and token in `value` (`Bearer <token>` or `DPoP <token>`).
///
/// # Errors
/// [`Rejection::TooLarge`] over `max_bytes`, [`Rejection::Missing`] for an empty value,
/// [`Rejection::NotBearer`] for another scheme, a missing token, more than one, or a
/// character outside RFC 6750's `b64token`.
pub fn extract_with_scheme(value: &str, max_bytes: usize) -> Result<(Scheme, &str), Rejection> {
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
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        return Err(Rejection::NotBearer);
    };
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() || !all_b64token(token.as_bytes()) {
        return Err(Rejection::NotBearer);
    }
    if token.len() > max_bytes {
        return Err(Rejection::TooLarge {
            len: token.len(),
            max: max_bytes,
        });
    }
    Ok((scheme, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64token_bytes_are_exactly_rfc_6750s() {
        // The model: RFC 6750 section 2.1's grammar, written as a set.
        let model = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
        for b in 0..=255u8 {
            assert_eq!(is_b64token(b), model(b), "byte {b:#04x}");
            // In every position of a block and of the tail.
            for len in [1, 31, 32, 33, 64, 70] {
                for at in 0..len {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    assert_eq!(all_b64token(&s), model(b), "byte {b:#04x} at {at} of {len}");
                }
            }
        }
        assert!(all_b64token(b""));
    }

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
        for v in ["DPoP a.b.c", "dpop a.b.c", "DPOP  a.b.c"] {
            assert_eq!(
                extract_with_scheme(v, 100),
                Ok((Scheme::DPoP, "a.b.c")),
                "{v}"
            );
            assert_eq!(extract(v, 100), Err(Rejection::NotBearer), "{v}");
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
