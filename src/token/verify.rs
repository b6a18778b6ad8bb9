//! The [`Verifier`]: a token in, verified [`Claims`] out.
//!
//! The core ([`Verifier::verify_sync`]) is sans-IO: it works with the keys held and says when
//! it needs a key it does not have. [`Verifier::verify`] adds the one refetch that an unknown
//! `kid` may cause. Checks run cheapest first: shape, header and algorithm allow-list, issuer,
//! key lookup, signature; only then are the claims parsed and the time, audience and
//! principal checks made. Nothing before the signature is more than linear in the token.

use std::sync::Arc;

use super::claims::{self, Claims, ClaimsSpec};
use super::fetch::{Fetch, FetchError, HttpFetcher};
use super::jwks::{KeyFileError, KeyIo, KeyStore};
use super::jws;
use super::rejection::Rejection;
use crate::alg::{Alg, AlgSet};
use crate::clock::SystemClock;
use crate::config::{Config, IssuerRules};

/// A failure to set the verifier up (a JWKS file that cannot be used).
#[derive(Debug, thiserror::Error)]
#[error("keys for issuer {issuer}")]
pub struct SetupError {
    /// The issuer.
    pub issuer: String,
    /// What went wrong.
    #[source]
    pub source: KeyFileError,
}

/// What the sans-IO core needs to go on.
#[derive(Debug)]
pub enum Pending {
    /// The token is refused.
    Rejected(Rejection),
    /// The issuer's key set has no key for this kid: refetch, then try again.
    UnknownKey {
        /// Index of the issuer's key store.
        issuer: usize,
        /// The token's kid.
        kid: Option<Box<str>>,
        /// The token's algorithm.
        alg: Alg,
    },
}

impl From<Rejection> for Pending {
    fn from(r: Rejection) -> Self {
        Pending::Rejected(r)
    }
}

/// Verifies JWTs against the configured issuers. Build once per container and share.
#[derive(Debug)]
pub struct Verifier {
    stores: Vec<Arc<KeyStore>>,
    /// Per store (same order): its issuer's audiences, scope claim and grant claims.
    rules: Vec<IssuerRules>,
    allowed: AlgSet,
    leeway: u64,
    require_at_jwt: bool,
    wanted: Vec<String>,
    fetch: Arc<dyn Fetch>,
}

impl Verifier {
    /// Builds the verifier from the config, with HTTP to the identity provider and the
    /// system clock. Reads JWKS files; fetches nothing (see [`Verifier::hydrate`]).
    ///
    /// # Errors
    /// `SetupError` when a JWKS file cannot be used.
    pub fn new(config: &Config) -> Result<Self, SetupError> {
        Self::with_io(
            config,
            KeyIo {
                fetch: Arc::new(HttpFetcher::new(config.http_timeout)),
                clock: Arc::new(SystemClock),
                on_refetch: Arc::new(|_: &str, _: bool| {}),
            },
        )
    }

    /// Builds the verifier with the given network, clock and refetch listener (shared by
    /// every issuer's key cache and by introspection).
    ///
    /// # Errors
    /// `SetupError` when a JWKS file cannot be used.
    pub fn with_io(config: &Config, io: KeyIo) -> Result<Self, SetupError> {
        let allowed: AlgSet = config.algorithms.iter().copied().collect();
        let fetch = Arc::clone(&io.fetch);
        let stores = config
            .issuers
            .iter()
            .map(|i| {
                KeyStore::new(
                    &i.issuer,
                    &i.jwks,
                    allowed,
                    io.clone(),
                    config.jwks_cooldown,
                )
                .map(Arc::new)
                .map_err(|source| SetupError {
                    issuer: i.issuer.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        let mut wanted: Vec<String> = Vec::new();
        for c in &config.context_claims {
            let top = c.claim.top_level();
            if !wanted.iter().any(|w| w == top) {
                wanted.push(top.to_owned());
            }
        }
        if let Some(k) = &config.usage_key_claim {
            if !wanted.contains(k) {
                wanted.push(k.clone());
            }
        }
        Ok(Self {
            stores,
            rules: config
                .issuers
                .iter()
                .map(|i| config.rules_for(&i.issuer))
                .collect(),
            allowed,
            leeway: config.leeway,
            require_at_jwt: config.require_at_jwt,
            wanted,
            fetch,
        })
    }

    /// The network the key caches and introspection use.
    pub(crate) fn fetch(&self) -> &dyn Fetch {
        &*self.fetch
    }

    /// Fetches every issuer's keys: call at cold start so the first request does not pay
    /// for it. Failures are returned for logging; verification will retry on demand.
    pub async fn hydrate(&self) -> Vec<FetchError> {
        let mut errors = Vec::new();
        for store in &self.stores {
            if store.keys().is_empty() {
                if let Err(e) = store.hydrate().await {
                    errors.push(e);
                }
            }
        }
        errors
    }

    /// The key stores, one per issuer, in configuration order.
    pub fn stores(&self) -> &[Arc<KeyStore>] {
        &self.stores
    }

    /// What claims parsing keeps for the tokens of issuer `issuer` (an index into
    /// [`stores`](Self::stores); also used for introspection answers).
    pub(crate) fn claims_spec(&self, issuer: usize) -> ClaimsSpec<'_> {
        let rules = &self.rules[issuer];
        ClaimsSpec {
            scope_claim: &rules.scope_claim,
            wanted: &self.wanted,
            grant: &rules.grant_claims,
        }
    }

    /// The index of trusted issuer `iss`.
    pub(crate) fn issuer_index(&self, iss: &str) -> Option<usize> {
        self.stores.iter().position(|s| s.issuer() == iss)
    }

    /// Verifies `token` at time `now`, refetching the issuer's keys once if its kid is
    /// unknown (subject to the cooldown).
    ///
    /// # Errors
    /// The [`Rejection`] that refused the token.
    pub async fn verify(&self, token: &str, now: u64) -> Result<Claims, Rejection> {
        match self.verify_sync(token, now) {
            Ok(c) => {
                if let Some(store) = c.iss.as_deref().and_then(|iss| self.store_for(iss)) {
                    if store.is_stale() {
                        store.refresh_if_stale().await;
                    }
                }
                Ok(c)
            }
            Err(Pending::Rejected(r)) => Err(r),
            Err(Pending::UnknownKey { issuer, kid, alg }) => {
                let store = &self.stores[issuer];
                if store.refresh_for_unknown(kid.as_deref(), alg).await {
                    self.verify_sync(token, now).map_err(|p| match p {
                        Pending::Rejected(r) => r,
                        Pending::UnknownKey { .. } => Rejection::UnknownKey,
                    })
                } else {
                    Err(Rejection::UnknownKey)
                }
            }
        }
    }

    fn store_for(&self, iss: &str) -> Option<&Arc<KeyStore>> {
        self.stores.iter().find(|s| s.issuer() == iss)
    }

    /// The sans-IO core: verifies with the keys held now.
    ///
    /// # Errors
    /// `Pending::Rejected`, or `Pending::UnknownKey` when a refetch might help.
    pub fn verify_sync(&self, token: &str, now: u64) -> Result<Claims, Pending> {
        // Before the signature: only linear work, and only what picking the key needs (the
        // shape, the header, `iss`). Claims are parsed once the signature holds, so a forged
        // token, however large, costs one base64 decode and one skim of its JSON.
        let parts = jws::split(token)?;
        let header = jws::header(parts.header, self.allowed)?;
        if self.require_at_jwt && !header.at_jwt {
            return Err(Rejection::Typ.into());
        }
        let mut sig = [0u8; 1024];
        let sig_len = jws::signature(parts.signature, &mut sig)?;
        let payload = jws::payload(parts.payload)?;
        let iss = claims::issuer(&payload)?.ok_or(Rejection::UntrustedIssuer)?;
        let issuer = self
            .stores
            .iter()
            .position(|s| s.issuer() == iss)
            .ok_or(Rejection::UntrustedIssuer)?;
        let keys = self.stores[issuer].keys();
        let Some(key) = keys.find(header.kid.as_deref(), header.alg) else {
            return Err(Pending::UnknownKey {
                issuer,
                kid: header.kid,
                alg: header.alg,
            });
        };
        match key.verify(header.alg, parts.signing_input.as_bytes(), &sig[..sig_len]) {
            None => {
                return Err(Rejection::KeyAlgMismatch {
                    kid: key.kid().unwrap_or_default().to_owned(),
                    alg: header.alg,
                }
                .into())
            }
            Some(false) => return Err(Rejection::BadSignature.into()),
            Some(true) => {}
        }
        // Signed by the issuer: now the full, typed read.
        let claims = claims::parse(&payload, self.claims_spec(issuer))?;
        self.check_claims(&claims, now, issuer)?;
        Ok(claims)
    }

    /// The time, audience (issuer `issuer`'s) and principal checks, shared with
    /// introspection answers.
    pub(crate) fn check_claims(
        &self,
        claims: &Claims,
        now: u64,
        issuer: usize,
    ) -> Result<(), Rejection> {
        let audiences = &self.rules[issuer].audiences;
        let exp = claims.exp.ok_or(Rejection::MissingExp)?;
        if now >= exp.saturating_add(self.leeway) {
            return Err(Rejection::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
        {
            return Err(Rejection::NotYetValid);
        }
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(self.leeway))
        {
            return Err(Rejection::IssuedInFuture);
        }
        if !audiences.is_empty()
            && !claims
                .aud
                .iter()
                .any(|a| audiences.iter().any(|w| w == &**a))
        {
            return Err(Rejection::Audience);
        }
        if claims.principal().is_none() {
            return Err(Rejection::NoPrincipal);
        }
        Ok(())
    }
}
