//! DPoP proofs (RFC 9449 §4.3) on arbitrary input: the bytes are a `DPoP` header value, the
//! request's path and the claimed `htu`, split by NULs. No panic, and:
//! - a proof the fuzzer wrote is never accepted (it cannot sign for the key the token is
//!   bound to), and every refusal is a [`Rejection::DpopProof`] naming a check;
//! - `normalize` is idempotent, and what it returns is an http(s) URL (http on loopback
//!   only) without query or fragment when asked strictly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::token::dpop::{normalize, verify, PathForm, Rules, Target};
use scopegate::token::{Alg, Rejection};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let proof = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("/dev/pets");
    let htu = parts.next().unwrap_or("");
    let rules = Rules {
        algorithms: Alg::ALL.into_iter().collect(),
        max_age: 60,
    };
    // The thumbprint of a key nobody holds: the fuzzer can never sign for it.
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    for form in [PathForm::Encoded, PathForm::Decoded] {
        let target = Target {
            method: "GET",
            origin: "https://api.example.com",
            path,
            form,
        };
        match verify(proof, "a.b.c", jkt, target, 1_800_000_000, rules) {
            Ok(p) => panic!("a forged proof was accepted: {p:?}"),
            Err(Rejection::DpopProof(why)) => assert!(!why.is_empty()),
            Err(other) => panic!("not a proof refusal: {other:?}"),
        }
    }
    for strict in [true, false] {
        if let Some(n) = normalize(htu, strict) {
            assert!(n.starts_with("https://") || n.starts_with("http://"), "{n}");
            assert_eq!(
                normalize(&n, strict).as_deref(),
                Some(n.as_str()),
                "{htu:?}"
            );
            if strict {
                assert!(!n.contains('?') && !n.contains('#'), "{n}");
            }
        }
    }
});
