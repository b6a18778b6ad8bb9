//! Sender-constrained tokens: the `cnf` claim (RFC 7800 §3.1) and the certificate binding of
//! RFC 8705 §3.
//!
//! A token whose `cnf` holds `x5t#S256` is good only in a request that presented the client
//! certificate of that SHA-256 thumbprint (base64url, of the certificate's DER): a stolen
//! copy is worthless without the client's private key. API Gateway gives a REQUEST authorizer
//! the certificate of a mutual-TLS custom domain; a TOKEN authorizer is given none, so a bound
//! token there is refused. A binding scopegate does not check (DPoP's `jkt`, RFC 9449 §6, or
//! any other `cnf` member) refuses the token too: accepting it as a bearer token would throw
//! away the protection its issuer asked for.
//!
//! The check runs on every request, after the verified-token cache: the cache is keyed by the
//! token, and the certificate is the request's.

use std::fmt;

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::rejection::Rejection;

/// What a token's `cnf` binds it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// `x5t#S256` (RFC 8705 §3.1): the base64url SHA-256 thumbprint of the client
    /// certificate's DER encoding.
    Certificate(Box<str>),
    /// Anything else: DPoP's `jkt`, another confirmation method, several at once, or none
    /// (an empty object). Refused: scopegate cannot check it.
    Unsupported,
}

impl<'de> Deserialize<'de> for Confirmation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Confirmation;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cnf object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Confirmation, A::Error> {
                let mut thumbprint: Option<Box<str>> = None;
                let mut members = 0usize;
                while let Some(key) = map.next_key::<super::claims::Text<'de>>()? {
                    members += 1;
                    if &*key.0 == "x5t#S256" {
                        if thumbprint.is_some() {
                            return Err(de::Error::custom("a claim is given twice"));
                        }
                        let value = map.next_value::<super::claims::Text<'de>>()?;
                        thumbprint = Some(value.0.into());
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(match thumbprint {
                    Some(t) if members == 1 => Confirmation::Certificate(t),
                    _ => Confirmation::Unsupported,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// The base64url (no padding) SHA-256 thumbprint of the first certificate in `pem`, as RFC
/// 8705 §3.1 computes `x5t#S256`; `None` when `pem` holds no readable certificate.
pub fn certificate_thumbprint(pem: &str) -> Option<String> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    // A DER certificate is a SEQUENCE; anything else is not one, whatever PEM label it had.
    if der.first() != Some(&0x30) {
        return None;
    }
    Some(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &der)))
}

/// The binding of a JWT that was also introspected: the token's own `cnf`, or the answer's
/// when only it has one (RFC 8705 §3.2 lets a provider state it there). Two that differ are
/// a binding scopegate cannot honour.
///
/// # Errors
/// [`Rejection::BindingUnsupported`] when both are given and differ.
pub fn merge(
    token: Option<Confirmation>,
    answer: Option<Confirmation>,
) -> Result<Option<Confirmation>, Rejection> {
    match (token, answer) {
        (Some(t), Some(a)) if t != a => Err(Rejection::BindingUnsupported),
        (t, a) => Ok(t.or(a)),
    }
}

/// Whether a request that presented `client_cert` (the PEM API Gateway passes, if any) may use
/// a token bound by `cnf`. An unbound token passes.
///
/// # Errors
/// [`Rejection::CertificateMissing`], [`Rejection::CertificateMismatch`] or
/// [`Rejection::BindingUnsupported`].
pub fn check(cnf: Option<&Confirmation>, client_cert: Option<&str>) -> Result<(), Rejection> {
    match cnf {
        None => Ok(()),
        Some(Confirmation::Unsupported) => Err(Rejection::BindingUnsupported),
        Some(Confirmation::Certificate(want)) => {
            let pem = client_cert.ok_or(Rejection::CertificateMissing)?;
            let have = certificate_thumbprint(pem).ok_or(Rejection::CertificateMismatch)?;
            // Not secret, but compared in constant time anyway: nothing to learn from timing.
            aws_lc_rs::constant_time::verify_slices_are_equal(have.as_bytes(), want.as_bytes())
                .map_err(|_| Rejection::CertificateMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = include_str!("../../tests/fixtures/certs/client.pem");
    const OTHER: &str = include_str!("../../tests/fixtures/certs/other.pem");
    /// `openssl x509 -in client.pem -outform DER | openssl dgst -sha256 -binary | basenc
    /// --base64url`, without the padding: computed outside this code.
    const CLIENT_X5T: &str = include_str!("../../tests/fixtures/certs/client.x5t");

    fn cnf(json: &str) -> Confirmation {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_thumbprint_is_rfc_8705s() {
        assert_eq!(
            certificate_thumbprint(CLIENT).as_deref(),
            Some(CLIENT_X5T.trim())
        );
        assert_ne!(
            certificate_thumbprint(OTHER),
            certificate_thumbprint(CLIENT)
        );
        for bad in [
            "",
            "not a certificate",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert_eq!(certificate_thumbprint(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cnf_reads_a_certificate_binding_and_refuses_the_rest() {
        let x5t = CLIENT_X5T.trim();
        assert_eq!(
            cnf(&format!(r#"{{"x5t#S256":"{x5t}"}}"#)),
            Confirmation::Certificate(x5t.into())
        );
        for other in [
            r#"{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}"#,
            r#"{"x5t#S256":"a","jkt":"b"}"#,
            r#"{"kid":"k1"}"#,
            r#"{}"#,
        ] {
            assert_eq!(cnf(other), Confirmation::Unsupported, "{other}");
        }
        assert!(serde_json::from_str::<Confirmation>(r#""x5t""#).is_err());
        assert!(serde_json::from_str::<Confirmation>(r#"{"x5t#S256":7}"#).is_err());
        assert!(
            serde_json::from_str::<Confirmation>(r#"{"x5t#S256":"a","x5t#S256":"a"}"#).is_err()
        );
    }

    #[test]
    fn an_introspection_answer_binds_a_token_that_does_not_bind_itself() {
        let a = Confirmation::Certificate("a".into());
        let b = Confirmation::Certificate("b".into());
        assert_eq!(merge(None, None), Ok(None));
        assert_eq!(merge(None, Some(a.clone())), Ok(Some(a.clone())));
        assert_eq!(merge(Some(a.clone()), None), Ok(Some(a.clone())));
        assert_eq!(merge(Some(a.clone()), Some(a.clone())), Ok(Some(a.clone())));
        assert_eq!(merge(Some(a), Some(b)), Err(Rejection::BindingUnsupported));
    }

    #[test]
    fn a_bound_token_needs_its_own_certificate() {
        let bound = Confirmation::Certificate(CLIENT_X5T.trim().into());
        assert_eq!(check(None, None), Ok(()));
        assert_eq!(check(None, Some(OTHER)), Ok(()));
        assert_eq!(check(Some(&bound), Some(CLIENT)), Ok(()));
        assert_eq!(
            check(Some(&bound), None),
            Err(Rejection::CertificateMissing)
        );
        assert_eq!(
            check(Some(&bound), Some(OTHER)),
            Err(Rejection::CertificateMismatch)
        );
        assert_eq!(
            check(Some(&bound), Some("garbage")),
            Err(Rejection::CertificateMismatch)
        );
        assert_eq!(
            check(Some(&Confirmation::Unsupported), Some(CLIENT)),
            Err(Rejection::BindingUnsupported)
        );
    }
}
