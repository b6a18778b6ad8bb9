//! DPoP from the client's side (RFC 9449 §4.2), for trying a DPoP-protected API by hand: a
//! key read from a PEM file, and proofs signed with it. `scopegate token --dpop KEYFILE` asks
//! the dev identity provider for a token bound to the key; `scopegate dpop-proof` prints a
//! proof for one request, to paste into curl.
//!
//! The key is an EC P-256 private key in PKCS#8 PEM (ES256: the algorithm every DPoP
//! implementation takes), as `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256
//! -out client.pem` writes it. Only its public half goes into a proof (`jwk`).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde_json::json;

use super::error::LocalError;

/// How to make a key file, for the error that finds none.
pub const KEY_HINT: &str =
    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client.pem";

/// A client's DPoP key.
pub struct DpopKey {
    key: EncodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("thumbprint", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// Reads an EC P-256 private key (PKCS#8 PEM) from `path`.
    ///
    /// # Errors
    /// [`LocalError::DpopKey`] naming the file and what is wrong with it.
    pub fn from_file(path: &Path) -> Result<Self, LocalError> {
        let bad = |reason: String| LocalError::DpopKey {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path)
            .map_err(|e| bad(format!("cannot read it ({e}); make one with: {KEY_HINT}")))?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(&pem).map_err(|_| {
            bad(format!(
                "not a private key in PKCS#8 PEM; make one with: {KEY_HINT}"
            ))
        })?;
        // Parsed once for P-256 here, so that a key of another curve is named as such.
        aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
        )
        .map_err(|_| bad(format!("not an EC P-256 key; make one with: {KEY_HINT}")))?;
        let key = EncodingKey::from_ec_der(der.secret_pkcs8_der());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)
            .map_err(|_| bad(format!("not a P-256 key; make one with: {KEY_HINT}")))?;
        // The proof's `jwk` carries the public key alone: no `alg`, `kid` or `use` to
        // disagree with the header.
        jwk.common = Default::default();
        Ok(Self { key, jwk })
    }

    /// The key's RFC 7638 thumbprint: what a token bound to it carries in `cnf.jkt`.
    pub fn thumbprint(&self) -> String {
        crate::token::dpop::thumbprint(&self.jwk).expect("a P-256 key has a thumbprint")
    }

    /// A proof for `method` `url` made at `now` (Unix seconds), with `ath` for `token` when
    /// the request carries one. `url` loses its query and fragment (§4.2).
    ///
    /// # Errors
    /// [`LocalError::Jwt`] if signing fails.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        now: u64,
    ) -> Result<String, LocalError> {
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(LocalError::KeyGeneration)?;
        let mut claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": htu,
            "iat": now,
        });
        if let Some(t) = token {
            claims["ath"] = json!(crate::token::dpop::ath(t));
        }
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|source| LocalError::Jwt {
            what: "sign a DPoP proof",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::dpop::{verify, PathForm, Rules, Target};
    use crate::token::Alg;

    /// A proof made here passes the authorizer's own checks: the two sides agree.
    #[test]
    fn a_proof_from_a_pem_key_passes_the_authorizers_checks() {
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        )
        .unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_ref())
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), pem).unwrap();
        let key = DpopKey::from_file(file.path()).unwrap();
        let now = 1_800_000_000;
        let proof = key
            .proof(
                "GET",
                "https://api.example.com/dev/pets?x=1",
                Some("a.b.c"),
                now,
            )
            .unwrap();
        let target = Target {
            method: "GET",
            origin: "https://api.example.com",
            path: "/dev/pets",
            form: PathForm::Encoded,
        };
        let rules = Rules {
            algorithms: [Alg::ES256].into_iter().collect(),
            max_age: 60,
        };
        verify(&proof, "a.b.c", &key.thumbprint(), target, now, rules).unwrap();
        let err = DpopKey::from_file(Path::new("/nonexistent/client.pem")).unwrap_err();
        assert!(err.to_string().contains("openssl genpkey"), "{err}");
    }
}
