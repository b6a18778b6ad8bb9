//! IAM's wildcard match, the one matcher of resource and action patterns.

/// IAM's resource wildcard match: `*` matches any run of characters, including `/` and the
/// empty run; `?` matches exactly one character; everything else matches itself,
/// case-sensitively.
///
/// Iterative (the classic backtrack-to-last-star two-pointer walk): at worst
/// O(pattern × text), never recursive, so a hostile pattern cannot blow the stack.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Policy resources share a long literal prefix (`arn:...:apiid/stage/`): compare it in
    // one memcmp before the byte-by-byte walk, which then only sees the tail.
    let literal = p
        .iter()
        .position(|&b| b == b'*' || b == b'?')
        .unwrap_or(p.len());
    if literal == p.len() {
        return p == t;
    }
    t.starts_with(&p[..literal]) && wildcard_match(&p[literal..], &t[literal..], false)
}

/// The walk behind [`glob_match`], over UTF-8 bytes (`?` consumes one whole character).
///
/// With `text_is_pattern`, `text` is itself a pattern and the question is whether every
/// string it matches is matched by `pattern`: then `?` in `pattern` may not stand for a `*`
/// in `text` (one character cannot cover a run). `*` in `pattern` covers anything, and a
/// literal in `pattern` only matches the same literal, never a wildcard in `text`.
pub(crate) fn wildcard_match(p: &[u8], t: &[u8], text_is_pattern: bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // After the last `*` seen: the pattern index after it, and the text index it is
    // currently assumed to stop at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    pi += 1;
                    star = Some((pi, ti));
                    continue;
                }
                b'?' if !(text_is_pattern && t[ti] == b'*') => {
                    pi += 1;
                    ti += utf8_width(t[ti]);
                    continue;
                }
                b'?' => {}
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((after_star, stop)) => {
                // Let the last `*` swallow one more character and retry from there.
                let stop = stop + utf8_width(t[stop]);
                star = Some((after_star, stop));
                pi = after_star;
                ti = stop;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// The byte length of the UTF-8 character that starts with `lead`.
fn utf8_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xff => 4,
        // A continuation byte: not a character start; step one byte (never reached for
        // valid UTF-8, which is all `&str` can hold).
        _ => 1,
    }
}
