//! RFC 7662 token introspection: "POST to your identity provider to validate the token", as
//! the seed puts it.
//!
//! Used for opaque tokens (SCOPEGATE_INTROSPECT=opaque) or for every token, to see
//! revocations (=always). Answers are cached briefly, never past the token's `exp`; any error
//! talking to the endpoint refuses the token (fail closed).

use serde::Deserialize;

use super::cache::TokenCache;
use super::claims::{self, Claims};
use super::fetch::MAX_INTROSPECTION;
use super::verify::Verifier;
use super::Rejection;
use crate::config::{IntrospectMode, IntrospectionConfig};

/// An introspection answer, as cached.
#[derive(Debug)]
enum Answer {
    Active(Claims),
    Inactive,
}

/// The introspection client. Build once per container.
#[derive(Debug)]
pub struct Introspector {
    config: IntrospectionConfig,
    cache: TokenCache<Answer>,
}

/// How long an inactive answer is remembered when the token's exp is unknown.
const INACTIVE_TTL: u64 = 30;

impl Introspector {
    /// Builds the client.
    pub fn new(config: IntrospectionConfig) -> Self {
        let ttl = config.cache_ttl.as_secs();
        Self {
            config,
            cache: TokenCache::new(10_000, ttl),
        }
    }

    /// Which tokens are introspected.
    pub fn mode(&self) -> IntrospectMode {
        self.config.mode
    }

    /// The cache lifetime of an answer.
    pub fn cache_ttl(&self) -> u64 {
        self.config.cache_ttl.as_secs()
    }

    /// Asks the endpoint whether `token` is active and returns its claims.
    ///
    /// # Errors
    /// [`Rejection::Inactive`] for `active: false`; [`Rejection::Unavailable`] when the
    /// endpoint cannot be asked; claim check failures as for JWTs.
    pub async fn introspect(
        &self,
        verifier: &Verifier,
        token: &str,
        now: u64,
    ) -> Result<Claims, Rejection> {
        if let Some(a) = self.cache.get(token, now) {
            return match &*a {
                Answer::Active(c) => Ok(c.clone()),
                Answer::Inactive => Err(Rejection::Inactive),
            };
        }
        let url = self.endpoint(verifier).await?;
        let body = verifier
            .fetcher
            .post_form(
                &url,
                &self.config.client_id,
                &self.config.client_secret,
                &[("token", token), ("token_type_hint", "access_token")],
                MAX_INTROSPECTION,
            )
            .await
            .map_err(|e| Rejection::Unavailable(e.to_string()))?;

        #[derive(Deserialize)]
        struct Active {
            active: bool,
        }
        let active: Active = serde_json::from_slice(&body)
            .map_err(|_| Rejection::Unavailable(format!("{url}: not an introspection answer")))?;
        if !active.active {
            self.cache.insert(
                token,
                std::sync::Arc::new(Answer::Inactive),
                now,
                now + INACTIVE_TTL,
            );
            return Err(Rejection::Inactive);
        }
        let claims = claims::parse(&body, verifier.claims_spec())?;
        if let Some(iss) = claims.iss.as_deref() {
            if !verifier.trusts(iss) {
                return Err(Rejection::UntrustedIssuer);
            }
        }
        // RFC 7662 makes exp optional in the answer; when present it bounds everything.
        let mut checked = claims.clone();
        let exp = claims.exp.unwrap_or(now + self.cache_ttl() + 1);
        checked.exp = Some(exp);
        verifier.check_claims(&checked, now)?;
        self.cache.insert(
            token,
            std::sync::Arc::new(Answer::Active(checked.clone())),
            now,
            exp,
        );
        Ok(checked)
    }

    async fn endpoint(&self, verifier: &Verifier) -> Result<String, Rejection> {
        if let Some(u) = &self.config.url {
            return Ok(u.clone());
        }
        let store = verifier
            .stores()
            .first()
            .ok_or_else(|| Rejection::Unavailable("no issuer configured".into()))?;
        if store.introspection_endpoint().is_none() {
            // Discovery runs with the first JWKS fetch; an opaque-only deployment may not
            // have fetched keys yet.
            let _ = store.hydrate().await;
        }
        store.introspection_endpoint().ok_or_else(|| {
            Rejection::Unavailable(
                "no introspection endpoint: set SCOPEGATE_INTROSPECTION_URL or use discovery"
                    .into(),
            )
        })
    }
}
