//! Minting signed JWTs with real keys made on the spot: for the dev identity provider of
//! local mode, the tests and the benchmarks. Never used by the authorizer itself, which only
//! holds public keys.
//!
//! Signing goes straight through aws-lc-rs, independently of the verifier's code, and the
//! tests cross-check both against jsonwebtoken.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::alg::Alg;

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private key with its algorithm and key id.
pub struct SigningKey {
    alg: Alg,
    kid: String,
    inner: Inner,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key for `alg` (RSA keys are 2048 bits).
    ///
    /// # Panics
    /// If the system's random source fails.
    pub fn generate(alg: Alg, kid: &str) -> Self {
        let inner = match alg {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                Inner::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"))
            }
            Alg::ES256 => Inner::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .expect("EC key generation"),
            ),
            Alg::ES384 => Inner::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)
                    .expect("EC key generation"),
            ),
            Alg::EdDSA => Inner::Ed(Ed25519KeyPair::generate().expect("Ed25519 key generation")),
        };
        Self {
            alg,
            kid: kid.to_owned(),
            inner,
        }
    }

    /// The key's algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The PKCS#8 DER of the private key (for other signers, such as jsonwebtoken).
    pub fn pkcs8_der(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Rsa(k) => AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(k)
                .expect("RSA PKCS#8")
                .as_ref()
                .to_vec(),
            Inner::Ec(k) => k.to_pkcs8v1().expect("EC PKCS#8").as_ref().to_vec(),
            Inner::Ed(k) => k.to_pkcs8v1().expect("Ed25519 PKCS#8").as_ref().to_vec(),
        }
    }

    /// The public JWK (with `kid`, `alg` and `use: sig`).
    pub fn public_jwk(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match &self.inner {
            Inner::Rsa(k) => {
                let p = k.public_key();
                json!({"kty": "RSA",
                       "n": b64(p.modulus().big_endian_without_leading_zero()),
                       "e": b64(p.exponent().big_endian_without_leading_zero())})
            }
            Inner::Ec(k) => {
                let point = k.public_key().as_ref();
                let size = (point.len() - 1) / 2;
                let crv = if size == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv,
                       "x": b64(&point[1..=size]), "y": b64(&point[1 + size..])})
            }
            Inner::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg.name());
        jwk["use"] = json!("sig");
        jwk
    }

    /// A JWKS document holding the public keys of `keys`.
    pub fn jwks(keys: &[&SigningKey]) -> Value {
        json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
    }

    /// Signs `claims` with the standard header (`alg`, `kid`, `typ: at+jwt`).
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg.name(), "kid": self.kid, "typ": "at+jwt"});
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under any header, however wrong: for tests of what must be refused.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// The RFC 7638 thumbprint of the public key: what a token bound to it by DPoP carries in
    /// `cnf.jkt`.
    pub fn jkt(&self) -> String {
        let jwk = serde_json::from_value(self.public_jwk()).expect("a JWK");
        super::dpop::thumbprint(&jwk).expect("a key type DPoP takes")
    }

    /// A DPoP proof (RFC 9449 §4.2) signed by this key, its public JWK in the header:
    /// `ath` is the proof's hash of the access token ([`super::dpop::ath`]), none for a token
    /// request. Any value may be wrong on purpose, for tests of what must be refused.
    pub fn dpop_proof(
        &self,
        htm: &str,
        htu: &str,
        iat: u64,
        jti: &str,
        ath: Option<&str>,
    ) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": self.alg.name(), "jwk": self.public_jwk()});
        let mut claims = json!({"jti": jti, "htm": htm, "htu": htu, "iat": iat});
        if let Some(a) = ath {
            claims["ath"] = json!(a);
        }
        self.sign_with_header(&header, &claims)
    }

    /// The raw signature of `message`.
    pub fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Rsa(k) => {
                let enc: &'static dyn signature::RsaEncoding = match self.alg {
                    Alg::RS256 => &signature::RSA_PKCS1_SHA256,
                    Alg::RS384 => &signature::RSA_PKCS1_SHA384,
                    Alg::RS512 => &signature::RSA_PKCS1_SHA512,
                    Alg::PS256 => &signature::RSA_PSS_SHA256,
                    Alg::PS384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(enc, &rng, message, &mut sig).expect("RSA signing");
                sig
            }
            Inner::Ec(k) => k
                .sign(&rng, message)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
            Inner::Ed(k) => k.sign(message).as_ref().to_vec(),
        }
    }
}
