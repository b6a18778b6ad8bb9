//! Errors as text for people: an error and its causes on one line, each text once.

use std::error::Error;

/// `error: cause: cause`, each text once. thiserror's `{source}` messages and the AWS SDK's
/// both repeat their source in their own text; printing the chain as is says it twice.
pub fn one_line(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Quiet(#[source] std::io::Error);

    #[test]
    fn each_text_once() {
        let io = || std::io::Error::other("disk");
        assert_eq!(one_line(&Repeats(io())), "outer: disk");
        assert_eq!(one_line(&Quiet(io())), "outer: disk");
    }
}
