//! Verification keys: a JWK parsed once into aws-lc-rs keys, each bound to one algorithm.
//!
//! Parsing a key costs more than a quarter of an RSA verification, so it happens when the
//! JWKS is fetched, never per request. A key only gets the algorithms its type allows (and
//! only its own `alg` when the JWK names one), which is what makes algorithm confusion
//! impossible: an RSA key has no HMAC form, an EC P-256 key verifies only ES256.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};

use crate::alg::{Alg, AlgSet};

/// Why a JWK was not taken into the key set. Such keys are skipped with a log line; the rest
/// of the set is still used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// `use` is not `sig`.
    #[error("key is not for signatures (use={0})")]
    NotForSignatures(String),
    /// A symmetric or unknown key type.
    #[error("unsupported key type {0}")]
    Unsupported(&'static str),
    /// The key names an algorithm that is not allowed or does not fit its type.
    #[error("key algorithm {0} is not allowed for this key")]
    Algorithm(String),
    /// The key material is malformed (bad base64url, bad point, RSA under 2048 bits).
    #[error("malformed key material: {0}")]
    Material(&'static str),
}

/// One public key from a JWKS, ready to verify.
pub struct VerifyingKey {
    kid: Option<Box<str>>,
    /// One parsed key per algorithm it may verify; at most six (RSA), usually one.
    parsed: Vec<(Alg, ParsedPublicKey)>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<Alg> = self.parsed.iter().map(|(a, _)| *a).collect();
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algs", &algs)
            .finish()
    }
}

impl VerifyingKey {
    /// Parses `jwk` for the algorithms in `allowed`.
    ///
    /// # Errors
    /// [`KeyError`] when the key cannot verify any allowed algorithm.
    pub fn from_jwk(jwk: &Jwk, allowed: AlgSet) -> Result<Self, KeyError> {
        if let Some(u) = &jwk.common.public_key_use {
            if *u != PublicKeyUse::Signature {
                let name = match u {
                    PublicKeyUse::Encryption => "enc".to_owned(),
                    PublicKeyUse::Other(o) => o.clone(),
                    PublicKeyUse::Signature => unreachable!(),
                };
                return Err(KeyError::NotForSignatures(name));
            }
        }
        let named = match jwk.common.key_algorithm {
            None => None,
            Some(ka) => Some(key_alg(ka).ok_or_else(|| KeyError::Algorithm(format!("{ka:?}")))?),
        };
        let candidates: Vec<Alg> = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Alg::ALL.into_iter().filter(|a| a.is_rsa()).collect(),
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => vec![Alg::ES256],
                EllipticCurve::P384 => vec![Alg::ES384],
                _ => return Err(KeyError::Unsupported("EC curve other than P-256 or P-384")),
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => vec![Alg::EdDSA],
                _ => return Err(KeyError::Unsupported("OKP curve other than Ed25519")),
            },
            AlgorithmParameters::OctetKey(_) => {
                return Err(KeyError::Unsupported("oct (symmetric)"))
            }
            _ => return Err(KeyError::Unsupported("unknown kty")),
        };
        let algs: Vec<Alg> = candidates
            .into_iter()
            .filter(|a| allowed.contains(*a) && named.is_none_or(|n| n == *a))
            .collect();
        if algs.is_empty() {
            let what = named.map_or_else(|| "any allowed algorithm".to_owned(), |a| a.to_string());
            return Err(KeyError::Algorithm(what));
        }

        let mut parsed = Vec::with_capacity(algs.len());
        match &jwk.algorithm {
            AlgorithmParameters::RSA(p) => {
                let n = b64(&p.n)?;
                let e = b64(&p.e)?;
                let components = RsaPublicKeyComponents {
                    n: strip_zeros(&n),
                    e: strip_zeros(&e),
                };
                for alg in algs {
                    let key = components
                        .to_parsed_public_key(rsa_params(alg))
                        .map_err(|_| KeyError::Material("RSA key rejected (at least 2048 bits)"))?;
                    parsed.push((alg, key));
                }
            }
            AlgorithmParameters::EllipticCurve(p) => {
                let (x, y) = (b64(&p.x)?, b64(&p.y)?);
                let size = if algs[0] == Alg::ES256 { 32 } else { 48 };
                if x.len() != size || y.len() != size {
                    return Err(KeyError::Material("EC coordinates of the wrong length"));
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let alg_ref: &'static signature::EcdsaVerificationAlgorithm =
                    if algs[0] == Alg::ES256 {
                        &signature::ECDSA_P256_SHA256_FIXED
                    } else {
                        &signature::ECDSA_P384_SHA384_FIXED
                    };
                let key = ParsedPublicKey::new(alg_ref, &point)
                    .map_err(|_| KeyError::Material("EC point not on the curve"))?;
                parsed.push((algs[0], key));
            }
            AlgorithmParameters::OctetKeyPair(p) => {
                let x = b64(&p.x)?;
                if x.len() != 32 {
                    return Err(KeyError::Material("Ed25519 key of the wrong length"));
                }
                let key = ParsedPublicKey::new(&signature::ED25519, &x)
                    .map_err(|_| KeyError::Material("Ed25519 key rejected"))?;
                parsed.push((Alg::EdDSA, key));
            }
            _ => unreachable!("filtered above"),
        }
        Ok(Self {
            kid: jwk.common.key_id.as_deref().map(Into::into),
            parsed,
        })
    }

    /// The key id, if the JWK had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether this key may verify `alg`.
    pub fn supports(&self, alg: Alg) -> bool {
        self.parsed.iter().any(|(a, _)| *a == alg)
    }

    /// Verifies `signature` over `message` with `alg`. `None` when the key may not verify
    /// `alg`; `Some(false)` when the signature is wrong.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> Option<bool> {
        let (_, key) = self.parsed.iter().find(|(a, _)| *a == alg)?;
        Some(key.verify_sig(message, signature).is_ok())
    }
}

fn rsa_params(alg: Alg) -> &'static RsaParameters {
    match alg {
        Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => unreachable!("only RSA algorithms reach here"),
    }
}

fn key_alg(ka: KeyAlgorithm) -> Option<Alg> {
    Some(match ka {
        KeyAlgorithm::RS256 => Alg::RS256,
        KeyAlgorithm::RS384 => Alg::RS384,
        KeyAlgorithm::RS512 => Alg::RS512,
        KeyAlgorithm::PS256 => Alg::PS256,
        KeyAlgorithm::PS384 => Alg::PS384,
        KeyAlgorithm::PS512 => Alg::PS512,
        KeyAlgorithm::ES256 => Alg::ES256,
        KeyAlgorithm::ES384 => Alg::ES384,
        KeyAlgorithm::EdDSA => Alg::EdDSA,
        _ => return None,
    })
}

fn b64(s: &str) -> Result<Vec<u8>, KeyError> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| KeyError::Material("not base64url"))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(json: &str) -> Jwk {
        serde_json::from_str(json).unwrap()
    }

    fn all() -> AlgSet {
        Alg::ALL.into_iter().collect()
    }

    #[test]
    fn symmetric_keys_are_refused() {
        let k = jwk(r#"{"kty":"oct","k":"c2VjcmV0","kid":"h"}"#);
        assert!(matches!(
            VerifyingKey::from_jwk(&k, all()),
            Err(KeyError::Unsupported(_))
        ));
    }

    #[test]
    fn encryption_keys_are_refused() {
        let k = jwk(r#"{"kty":"EC","crv":"P-256","use":"enc","x":"AAAA","y":"AAAA"}"#);
        assert!(matches!(
            VerifyingKey::from_jwk(&k, all()),
            Err(KeyError::NotForSignatures(_))
        ));
    }

    #[test]
    fn key_alg_must_be_allowed() {
        let k = jwk(r#"{"kty":"EC","crv":"P-256","alg":"ES256","x":"AAAA","y":"AAAA"}"#);
        let only_rsa: AlgSet = [Alg::RS256].into_iter().collect();
        assert!(matches!(
            VerifyingKey::from_jwk(&k, only_rsa),
            Err(KeyError::Algorithm(_))
        ));
        // Right algorithm, bad point.
        assert!(matches!(
            VerifyingKey::from_jwk(&k, all()),
            Err(KeyError::Material(_))
        ));
    }
}
