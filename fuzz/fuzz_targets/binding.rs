//! Certificate-bound tokens (RFC 8705) on arbitrary input: a token's `cnf` claim as JSON, a
//! NUL, then the client certificate PEM a request would carry. No panic, and:
//! - a thumbprint, when the PEM yields one, is 43 characters of base64url (a SHA-256);
//! - a token bound to a certificate is accepted exactly when the request's certificate has
//!   that thumbprint, refused with no certificate, and never accepted for an unreadable one;
//! - a `cnf` other than exactly `{"x5t#S256": ...}` is a binding scopegate refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::token::binding::{certificate_thumbprint, check, Confirmation};
use scopegate::token::Rejection;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (cnf, pem) = text.split_once('\0').unwrap_or((text, ""));
    let thumbprint = certificate_thumbprint(pem);
    if let Some(t) = &thumbprint {
        assert_eq!(t.len(), 43, "{t}");
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
    let Ok(cnf) = serde_json::from_str::<Confirmation>(cnf) else {
        return;
    };
    match &cnf {
        Confirmation::Certificate(want) => {
            let got = check(Some(&cnf), Some(pem));
            assert_eq!(got.is_ok(), thumbprint.as_deref() == Some(&**want));
            assert_eq!(check(Some(&cnf), None), Err(Rejection::CertificateMissing));
        }
        Confirmation::Unsupported => {
            assert_eq!(
                check(Some(&cnf), Some(pem)),
                Err(Rejection::BindingUnsupported)
            );
        }
    }
    assert_eq!(check(None, Some(pem)), Ok(()));
});
