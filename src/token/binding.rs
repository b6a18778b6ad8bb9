//! Sender-constrained tokens: the `cnf` claim (RFC 7800 §3.1) and the certificate binding of
//! RFC 8705 §3.
//!
//! A token whose `cnf` holds `x5t#S256` is good only in a request that presented the client
//! certificate of that SHA-256 thumbprint (base64url, of the certificate's DER): a stolen
//! copy is worthless without the client's private key. API Gateway gives a REQUEST authorizer
//! the certificate of a mutual-TLS custom domain; a TOKEN authorizer is given none, so a bound
//! token there is refused. A token whose `cnf` holds `jkt` (RFC 9449 §6.1) needs a DPoP proof
//! by that key ([`super::dpop`]). A binding scopegate does not check (any other `cnf` member,
//! or several) refuses the token: accepting it as a bearer token would throw away the
//! protection its issuer asked for.
//!
//! The checks run on every request, after the verified-token cache: the cache is keyed by the
//! token, and the certificate and the proof are the request's.

use std::fmt;

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::bearer::Scheme;
use super::rejection::Rejection;
use crate::config::{BoundKinds, BoundMode};

/// What a token's `cnf` binds it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// `x5t#S256` (RFC 8705 §3.1): the base64url SHA-256 thumbprint of the client
    /// certificate's DER encoding.
    Certificate(Box<str>),
    /// `jkt` (RFC 9449 §6.1): the RFC 7638 thumbprint of the key the client signs its DPoP
    /// proofs with.
    Key(Box<str>),
    /// Anything else: another confirmation method, several at once, or none (an empty
    /// object). Refused: scopegate cannot check it.
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
                let mut certificate: Option<Box<str>> = None;
                let mut key: Option<Box<str>> = None;
                let mut members = 0usize;
                while let Some(name) = map.next_key::<super::claims::Text<'de>>()? {
                    members += 1;
                    let slot = match &*name.0 {
                        "x5t#S256" => &mut certificate,
                        "jkt" => &mut key,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom("a claim is given twice"));
                    }
                    *slot = Some(map.next_value::<super::claims::Text<'de>>()?.0.into());
                }
                Ok(match (certificate, key) {
                    (Some(t), None) if members == 1 => Confirmation::Certificate(t),
                    (None, Some(k)) if members == 1 => Confirmation::Key(k),
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

/// What a request must present besides the token, by the token's binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Nothing: an unbound token, accepted as a bearer token.
    Nothing,
    /// The client certificate of this thumbprint ([`check_certificate`]).
    Certificate(&'a str),
    /// A DPoP proof by the key of this thumbprint ([`super::dpop::verify`]).
    Proof(&'a str),
}

/// What a token bound by `cnf` and sent with `scheme` needs, under `SCOPEGATE_BOUND_TOKENS`
/// (`mode`) and `SCOPEGATE_BOUND_KINDS` (`kinds`).
///
/// The scheme must fit the binding (RFC 9449 §7.1, §7.2): a DPoP-bound token sent as
/// `Bearer` would let a client that lost its key (or a thief) skip the proof, and a token sent
/// as `DPoP` that is not DPoP-bound claims a protection it does not have.
///
/// # Errors
/// [`Rejection::WrongScheme`], [`Rejection::BindingRequired`], [`Rejection::BindingKindOff`],
/// [`Rejection::BindingUnsupported`].
pub fn required(
    cnf: Option<&Confirmation>,
    scheme: Scheme,
    mode: BoundMode,
    kinds: BoundKinds,
) -> Result<Need<'_>, Rejection> {
    match cnf {
        None if scheme == Scheme::DPoP => Err(Rejection::WrongScheme(
            "a token that is not DPoP-bound was sent with the DPoP scheme",
        )),
        None if mode == BoundMode::Require => Err(Rejection::BindingRequired),
        None => Ok(Need::Nothing),
        Some(Confirmation::Unsupported) => Err(Rejection::BindingUnsupported),
        Some(Confirmation::Certificate(_)) if !kinds.mtls => {
            Err(Rejection::BindingKindOff("a client certificate (mtls)"))
        }
        Some(Confirmation::Key(_)) if !kinds.dpop => {
            Err(Rejection::BindingKindOff("a DPoP key (dpop)"))
        }
        Some(Confirmation::Certificate(_)) if scheme == Scheme::DPoP => Err(
            Rejection::WrongScheme("a certificate-bound token was sent with the DPoP scheme"),
        ),
        Some(Confirmation::Key(_)) if scheme == Scheme::Bearer => Err(Rejection::WrongScheme(
            "a DPoP-bound token was sent with the Bearer scheme",
        )),
        Some(Confirmation::Certificate(t)) => Ok(Need::Certificate(t)),
        Some(Confirmation::Key(k)) => Ok(Need::Proof(k)),
    }
}

/// Whether a request that presented `client_cert` (the PEM API Gateway passes, if any) is
/// the one a token bound to the certificate of thumbprint `want` may be used in.
///
/// # Errors
/// [`Rejection::CertificateMissing`], [`Rejection::CertificateMismatch`].
pub fn check_certificate(want: &str, client_cert: Option<&str>) -> Result<(), Rejection> {
    let pem = client_cert.ok_or(Rejection::CertificateMissing)?;
    let have = certificate_thumbprint(pem).ok_or(Rejection::CertificateMismatch)?;
    // Not secret, but compared in constant time anyway: nothing to learn from timing.
    aws_lc_rs::constant_time::verify_slices_are_equal(have.as_bytes(), want.as_bytes())
        .map_err(|_| Rejection::CertificateMismatch)
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
        assert_eq!(
            cnf(r#"{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}"#),
            Confirmation::Key("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into())
        );
        assert!(serde_json::from_str::<Confirmation>(r#"{"jkt":"a","jkt":"a"}"#).is_err());
        for other in [
            r#"{"x5t#S256":"a","jkt":"b"}"#,
            r#"{"jkt":"b","x5t#S256":"a"}"#,
            r#"{"jkt":"b","kid":"k1"}"#,
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
        let want = CLIENT_X5T.trim();
        assert_eq!(check_certificate(want, Some(CLIENT)), Ok(()));
        assert_eq!(
            check_certificate(want, None),
            Err(Rejection::CertificateMissing)
        );
        assert_eq!(
            check_certificate(want, Some(OTHER)),
            Err(Rejection::CertificateMismatch)
        );
        assert_eq!(
            check_certificate(want, Some("garbage")),
            Err(Rejection::CertificateMismatch)
        );
    }

    /// The whole table of binding x scheme x mode x kinds, against a model written as the
    /// issue and RFC 9449 §7 say it, rule by rule.
    #[test]
    fn the_scheme_mode_and_kinds_decide_what_a_token_needs() {
        let cert = Confirmation::Certificate("c".into());
        let key = Confirmation::Key("k".into());
        let bindings = [
            None,
            Some(&cert),
            Some(&key),
            Some(&Confirmation::Unsupported),
        ];
        for cnf in bindings {
            for scheme in [Scheme::Bearer, Scheme::DPoP] {
                for mode in [BoundMode::Check, BoundMode::Require] {
                    for (mtls, dpop) in [(true, true), (true, false), (false, true), (false, false)]
                    {
                        let kinds = BoundKinds { mtls, dpop };
                        let got = required(cnf, scheme, mode, kinds);
                        let model: Option<Need<'_>> = match cnf {
                            None => (scheme == Scheme::Bearer && mode == BoundMode::Check)
                                .then_some(Need::Nothing),
                            Some(Confirmation::Certificate(_)) => {
                                (mtls && scheme == Scheme::Bearer).then_some(Need::Certificate("c"))
                            }
                            Some(Confirmation::Key(_)) => {
                                (dpop && scheme == Scheme::DPoP).then_some(Need::Proof("k"))
                            }
                            Some(Confirmation::Unsupported) => None,
                        };
                        assert_eq!(got.ok(), model, "{cnf:?} {scheme:?} {mode:?} {kinds:?}");
                    }
                }
            }
        }
    }
}
