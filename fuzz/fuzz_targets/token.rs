//! Bearer extraction, the compact JWS split, header checks and both claims readers, on
//! arbitrary bytes: no panic, and every parsed claim set keeps the RFC invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::claim::{is_grant_key, ClaimName, MAX_CLAIM_LEN};
use scopegate::config::ScopeClaim;
use scopegate::scope::{check_token, MAX_SCOPES};
use scopegate::token::claims::{self, Claims, ClaimsSpec};
use scopegate::token::{bearer, jws, Alg, AlgSet};

fn check(c: &Claims) {
    assert!(c.scopes.len() <= MAX_SCOPES);
    for (i, s) in c.scopes.iter().enumerate() {
        assert_eq!(check_token(s), Ok(()), "{s:?}");
        assert!(!c.scopes[..i].contains(s), "repeated scope {s:?}");
    }
    if let Some(p) = c.principal() {
        assert!(!p.is_empty());
    }
    // A grant key is never a scope, never repeated, and never longer than a name, a tag
    // and the longest value (in bytes: at most 4 per character).
    for (i, g) in c.grants.iter().enumerate() {
        assert!(is_grant_key(g) && check_token(g).is_err(), "{g:?}");
        assert!(!c.grants[..i].contains(g), "repeated grant {g:?}");
        assert!(
            g.len() <= 2 + MAX_CLAIM_LEN + 2 + 4 * MAX_CLAIM_LEN,
            "{g:?}"
        );
    }
}

fn claims(payload: &[u8]) {
    let _ = claims::issuer(payload);
    let named = ScopeClaim::Named("permissions".into());
    let wanted = ["scope".to_owned(), "email".to_owned(), "sub".to_owned()];
    // Grant claims: a top-level one that is also a context claim, a nested one, and one
    // under a standard claim's name.
    let grant: Vec<ClaimName> = ["groups", "/realm_access/roles", "email", "aud"]
        .iter()
        .map(|n| ClaimName::new(n).expect("a valid claim name"))
        .collect();
    for (scope_claim, wanted, grant) in [
        (&ScopeClaim::Standard, &[][..], &[][..]),
        (&named, &wanted[..], &grant[..]),
        (&ScopeClaim::Standard, &wanted[..], &grant[..]),
    ] {
        if let Ok(c) = claims::parse(
            payload,
            ClaimsSpec {
                scope_claim,
                wanted,
                grant,
            },
        ) {
            check(&c);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    claims(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let token = bearer::extract(text, 16 * 1024).unwrap_or(text);
    let Ok(parts) = jws::split(token) else {
        return;
    };
    let allowed: AlgSet = Alg::ALL.into_iter().collect();
    let _ = jws::header(parts.header, allowed);
    let mut sig = [0u8; 1024];
    let _ = jws::signature(parts.signature, &mut sig);
    if let Ok(payload) = jws::payload(parts.payload) {
        claims(&payload);
    }
});
