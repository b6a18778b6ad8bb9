//! OAuth 2.0 scope syntax, exactly as RFC 6749 §3.3 writes it, shared by the token side (what
//! a token may carry) and the mapping side (what an entry may name).
//!
//! ```text
//! scope       = scope-token *( SP scope-token )
//! scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
//! ```
//!
//! Only the space character (`%x20`) separates scopes. Tab, LF, CR, FF and every other
//! whitespace or control character are not separators: they are not allowed at all, so a
//! scope string holding one is refused whole rather than split. Splitting on them would let
//! `"profile\tsuperuser"` grant `superuser` where the identity provider (and any other
//! RFC-conforming reader) saw one odd scope. An empty token (two spaces in a row, or a
//! leading or trailing space) is refused for the same reason: the string is not in the
//! grammar, and guessing what it meant is how two readers come to disagree.
//!
//! Leaf module: it imports nothing from the crate.

/// The most scopes one token may carry. Far above what real tokens hold (tens), low enough
/// that the per-token work stays small. A token over it is refused.
pub const MAX_SCOPES: usize = 512;

/// Why a scope value is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// An empty scope-token: two spaces in a row, or a leading or trailing space.
    #[error("a scope is empty (scopes are separated by exactly one space)")]
    Empty,
    /// A character outside `%x21 / %x23-5B / %x5D-7E`: whitespace other than the separating
    /// space, a control character, `"`, `\` or anything beyond ASCII.
    #[error("a scope holds a character RFC 6749 3.3 does not allow (whitespace other than one separating space, a control character, '\"', '\\' or non-ASCII)")]
    Character,
    /// More than [`MAX_SCOPES`] scopes.
    #[error("more than {MAX_SCOPES} scopes")]
    TooMany,
}

/// One `scope-token` byte: `%x21 / %x23-5B / %x5D-7E`.
fn is_token_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Checks one scope-token.
///
/// # Errors
/// [`ScopeError::Empty`] or [`ScopeError::Character`].
///
/// # Example
/// ```
/// use scopegate::scope::{check_token, ScopeError};
/// assert_eq!(check_token("orders:read"), Ok(()));
/// assert_eq!(check_token("a\tb"), Err(ScopeError::Character));
/// ```
pub fn check_token(token: &str) -> Result<(), ScopeError> {
    if token.is_empty() {
        return Err(ScopeError::Empty);
    }
    if token.bytes().all(is_token_byte) {
        Ok(())
    } else {
        Err(ScopeError::Character)
    }
}

/// Splits a space-delimited scope string (the `scope` claim, a string `scp`) into its
/// scope-tokens, each checked. The empty string holds no scope.
///
/// # Errors
/// The first [`ScopeError`]; a refused string yields no scope at all.
///
/// # Example
/// ```
/// use scopegate::scope::{split, ScopeError};
/// assert_eq!(split("openid email").unwrap(), ["openid", "email"]);
/// assert_eq!(split("profile\tsuperuser"), Err(ScopeError::Character));
/// ```
pub fn split(value: &str) -> Result<Vec<&str>, ScopeError> {
    let mut out = Vec::new();
    if value.is_empty() {
        return Ok(out);
    }
    for token in value.split(' ') {
        check_token(token)?;
        if out.len() == MAX_SCOPES {
            return Err(ScopeError::TooMany);
        }
        out.push(token);
    }
    Ok(out)
}

/// Removes repeated scopes, keeping the first of each, in time linear in the total length:
/// a short list is compared pairwise (cheaper than hashing), a longer one goes through a hash
/// set.
pub fn dedup_in_order<S: AsRef<str>>(scopes: &mut Vec<S>) {
    const PAIRWISE: usize = 16;
    if scopes.len() <= PAIRWISE {
        let mut kept = 0;
        for i in 0..scopes.len() {
            if !scopes[..kept]
                .iter()
                .any(|s| s.as_ref() == scopes[i].as_ref())
            {
                scopes.swap(kept, i);
                kept += 1;
            }
        }
        scopes.truncate(kept);
        return;
    }
    let keep: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity_and_hasher(
            scopes.len(),
            foldhash::fast::RandomState::default(),
        );
        scopes.iter().map(|s| seen.insert(s.as_ref())).collect()
    };
    let mut keep = keep.into_iter();
    scopes.retain(|_| keep.next().unwrap_or(false));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_space_separates() {
        assert_eq!(split("a b c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split("").unwrap(), Vec::<&str>::new());
        for sep in ["\t", "\n", "\r", "\u{c}", "\u{b}", "\u{a0}", "\u{2003}"] {
            assert_eq!(
                split(&format!("profile{sep}superuser")),
                Err(ScopeError::Character),
                "{sep:?}"
            );
        }
    }

    #[test]
    fn the_grammar_is_exact() {
        for ok in ["!", "#", "[", "]", "~", "api://orders/Orders.Read", "a:b"] {
            assert_eq!(check_token(ok), Ok(()), "{ok}");
        }
        for bad in ["\"", "\\", "\u{7f}", "\u{0}", "caf\u{e9}", "a b"] {
            assert_eq!(check_token(bad), Err(ScopeError::Character), "{bad:?}");
        }
        for bad in [" a", "a ", "a  b", " "] {
            assert_eq!(split(bad), Err(ScopeError::Empty), "{bad:?}");
        }
    }

    #[test]
    fn the_count_is_bounded() {
        let at = vec!["s"; MAX_SCOPES].join(" ");
        assert_eq!(split(&at).map(|v| v.len()), Ok(MAX_SCOPES));
        assert_eq!(split(&format!("{at} s")), Err(ScopeError::TooMany));
    }

    #[test]
    fn dedup_keeps_first_occurrences_in_order() {
        let mut short = vec!["b", "a", "b", "c", "a"];
        dedup_in_order(&mut short);
        assert_eq!(short, ["b", "a", "c"]);
        let mut long: Vec<String> = (0..100).map(|i| format!("s{}", i % 40)).collect();
        dedup_in_order(&mut long);
        let want: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
        assert_eq!(long, want);
    }
}
