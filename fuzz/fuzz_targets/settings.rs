//! The claim settings (`SCOPEGATE_GRANT_CLAIMS`, `SCOPEGATE_CONTEXT_CLAIMS`) on arbitrary
//! text: no panic, and whatever is accepted keeps the rules the authorizer relies on
//! (names that never reach the scope claim, distinct context keys none of which is one the
//! authorizer writes itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::claim::ClaimName;
use scopegate::config::{context_claims, grant_claims};

fn check_name(n: &ClaimName) {
    let s = n.as_str();
    assert!(
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()),
        "{s:?}"
    );
    assert!(!matches!(n.top_level(), "scope" | "scp"), "{s:?}");
    // A name is its own canonical form: read again, it is the same name.
    assert_eq!(ClaimName::new(s).as_ref(), Ok(n));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(names) = grant_claims(Some(text)) {
        for (i, n) in names.iter().enumerate() {
            check_name(n);
            assert!(!names[..i].contains(n), "{n} twice");
        }
    }
    if let Ok(claims) = context_claims(Some(text)) {
        for (i, c) in claims.iter().enumerate() {
            check_name(&c.claim);
            let key = &*c.key;
            assert!((1..=64).contains(&key.len()), "{key:?}");
            assert!(!matches!(key, "sub" | "scope" | "client_id"), "{key:?}");
            assert!(!claims[..i].iter().any(|o| o.key == c.key), "{key} twice");
        }
    }
});
