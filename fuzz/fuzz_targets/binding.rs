//! Certificate-bound tokens (RFC 8705) on arbitrary input: a token's `cnf` claim as JSON, a
//! NUL, then the client certificate PEM a request would carry. No panic, and:
//! - a thumbprint, when the PEM yields one, is 43 characters of base64url (a SHA-256);
//! - a token bound to a certificate is accepted exactly when the request's certificate has
//!   that thumbprint, refused with no certificate, and never accepted for an unreadable one;
//! - a `cnf` other than exactly `{"x5t#S256": ...}` or `{"jkt": ...}` is a binding scopegate
//!   refuses, whatever the scheme and settings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::config::{BoundKinds, BoundMode};
use scopegate::token::bearer::Scheme;
use scopegate::token::binding::{
    certificate_thumbprint, check_certificate, required, Confirmation, Need,
};
use scopegate::token::Rejection;

const ALL: BoundKinds = BoundKinds {
    mtls: true,
    dpop: true,
};

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
            assert_eq!(
                required(Some(&cnf), Scheme::Bearer, BoundMode::Check, ALL),
                Ok(Need::Certificate(want))
            );
            let got = check_certificate(want, Some(pem));
            assert_eq!(got.is_ok(), thumbprint.as_deref() == Some(&**want));
            assert_eq!(
                check_certificate(want, None),
                Err(Rejection::CertificateMissing)
            );
        }
        Confirmation::Key(jkt) => {
            assert_eq!(
                required(Some(&cnf), Scheme::DPoP, BoundMode::Require, ALL),
                Ok(Need::Proof(jkt))
            );
            assert!(required(Some(&cnf), Scheme::Bearer, BoundMode::Check, ALL).is_err());
        }
        Confirmation::Unsupported => {
            for scheme in [Scheme::Bearer, Scheme::DPoP] {
                assert_eq!(
                    required(Some(&cnf), scheme, BoundMode::Check, ALL),
                    Err(Rejection::BindingUnsupported)
                );
            }
        }
    }
    assert_eq!(
        required(None, Scheme::Bearer, BoundMode::Check, ALL),
        Ok(Need::Nothing)
    );
});
