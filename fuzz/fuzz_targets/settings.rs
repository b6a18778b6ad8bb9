//! The claim settings (`SCOPEGATE_GRANT_CLAIMS`, `SCOPEGATE_CONTEXT_CLAIMS`,
//! `SCOPEGATE_PROVIDERS`) on arbitrary
//! text: no panic, and whatever is accepted keeps the rules the authorizer relies on
//! (names that never reach the scope claim, distinct context keys none of which is one the
//! authorizer writes itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::claim::ClaimName;
use scopegate::config::{context_claims, grant_claims, providers, IssuerConfig, JwksSource};

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
    // SCOPEGATE_PROVIDERS: each accepted rule names a trusted issuer once, and never turns
    // the audience check off.
    let issuers: Vec<IssuerConfig> = ["https://a", "https://b"]
        .iter()
        .map(|i| IssuerConfig {
            issuer: (*i).to_owned(),
            jwks: JwksSource::Discovery,
        })
        .collect();
    if let Ok(rules) = providers(Some(text), &issuers) {
        for (i, r) in rules.iter().enumerate() {
            assert!(issuers.iter().any(|x| x.issuer == r.issuer), "{}", r.issuer);
            assert!(!rules[..i].iter().any(|o| o.issuer == r.issuer), "twice");
            if let Some(a) = &r.audiences {
                assert!(!a.is_empty() && a.iter().all(|x| !x.is_empty()));
            }
            for n in r.grant_claims.iter().flatten() {
                check_name(n);
            }
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
