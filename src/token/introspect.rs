//! RFC 7662 token introspection: "POST to your identity provider to validate the token", as
//! the seed puts it.
//!
//! Used for opaque tokens (SCOPEGATE_INTROSPECT=opaque) or for every token, to see
//! revocations (=always). Answers are cached briefly, never past the token's `exp`; any error
//! talking to the endpoint refuses the token (fail closed).

use serde::Deserialize;

use super::claims::{self, Claims};
use super::fetch::MAX_INTROSPECTION;
use super::rejection::Rejection;
use super::verify::Verifier;
use crate::config::{IntrospectMode, IntrospectionConfig};
use crate::ttl_cache::TtlCache;

/// An introspection answer, as cached.
#[derive(Debug)]
enum Answer {
    Active(Box<Claims>),
    Inactive,
}

/// The introspection client. Build once per container.
#[derive(Debug)]
pub struct Introspector {
    config: IntrospectionConfig,
    cache: TtlCache<Answer>,
}

/// How long an inactive answer is remembered when the token's exp is unknown.
const INACTIVE_TTL: u64 = 30;

impl Introspector {
    /// Builds the client.
    pub fn new(config: IntrospectionConfig) -> Self {
        let ttl = config.cache_ttl.as_secs();
        Self {
            config,
            cache: TtlCache::new(10_000, ttl),
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
                Answer::Active(c) => Ok((**c).clone()),
                Answer::Inactive => Err(Rejection::Inactive),
            };
        }
        let url = self.endpoint(verifier).await?;
        let body = verifier
            .fetch()
            .post_form(
                &url,
                (&self.config.client_id, &self.config.client_secret),
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
        // The answer's issuer decides which issuer's rules read it; without one, the first
        // issuer's (whose endpoint this is by default).
        let issuer = match claims::issuer(&body)? {
            Some(iss) => verifier
                .issuer_index(&iss)
                .ok_or(Rejection::UntrustedIssuer)?,
            None => 0,
        };
        let claims = claims::parse(&body, verifier.claims_spec(issuer))?;
        // RFC 7662 makes exp optional in the answer; when present it bounds everything.
        let mut checked = claims.clone();
        let exp = claims.exp.unwrap_or(now + self.cache_ttl() + 1);
        checked.exp = Some(exp);
        verifier.check_claims(&checked, now, issuer)?;
        self.cache.insert(
            token,
            std::sync::Arc::new(Answer::Active(Box::new(checked.clone()))),
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::{Config, IssuerConfig, JwksSource};
    use crate::token::fake::FakeIdp;
    use crate::token::fetch::Fetch;
    use crate::token::jwks::KeyIo;

    const ISS: &str = "https://idp.example.com";
    const NOW: u64 = 1_800_000_000;

    fn rig(cache_seconds: u64) -> (Arc<FakeIdp>, Verifier, Introspector) {
        let idp = Arc::new(FakeIdp::new(json!({"keys": []})));
        let config = Config::new(vec![IssuerConfig {
            issuer: ISS.into(),
            jwks: JwksSource::Url(format!("{ISS}/jwks")),
        }]);
        let io = KeyIo {
            fetch: Arc::clone(&idp) as Arc<dyn Fetch>,
            clock: Arc::new(ManualClock::new(NOW)) as Arc<dyn Clock>,
            on_refetch: Arc::new(|_: &str, _: bool| {}),
        };
        let verifier = Verifier::with_io(&config, io).unwrap();
        let introspector = Introspector::new(IntrospectionConfig {
            mode: IntrospectMode::Opaque,
            url: Some(format!("{ISS}/introspect")),
            client_id: "rs".into(),
            client_secret: "secret".into(),
            cache_ttl: Duration::from_secs(cache_seconds),
        });
        (idp, verifier, introspector)
    }

    fn answer(idp: &FakeIdp, v: serde_json::Value) {
        *idp.form_answer.lock().unwrap() = v.to_string().into_bytes();
    }

    #[tokio::test]
    async fn answers_are_reused_for_the_ttl_and_never_past_exp() {
        let (idp, v, i) = rig(30);
        answer(
            &idp,
            json!({"active": true, "iss": ISS, "sub": "u", "scope": "email", "exp": NOW + 10}),
        );
        assert!(i.introspect(&v, "opaque-1", NOW).await.is_ok());
        assert!(i.introspect(&v, "opaque-1", NOW + 9).await.is_ok());
        assert_eq!(idp.posts(), 1, "the second answer came from the cache");
        // Asked again at exp; the provider's answer (within the leeway) decides.
        assert!(i.introspect(&v, "opaque-1", NOW + 10).await.is_ok());
        assert_eq!(
            idp.posts(),
            2,
            "exp ends the cached answer before the TTL does"
        );

        answer(
            &idp,
            json!({"active": true, "iss": ISS, "sub": "u", "exp": NOW + 3600}),
        );
        assert!(i.introspect(&v, "opaque-2", NOW).await.is_ok());
        assert!(i.introspect(&v, "opaque-2", NOW + 29).await.is_ok());
        assert_eq!(idp.posts(), 3);
        assert!(i.introspect(&v, "opaque-2", NOW + 30).await.is_ok());
        assert_eq!(idp.posts(), 4, "the TTL ends the cached answer");
    }

    #[tokio::test]
    async fn inactive_answers_are_cached_and_failures_are_not() {
        let (idp, v, i) = rig(30);
        assert_eq!(
            i.introspect(&v, "revoked", NOW).await.unwrap_err(),
            Rejection::Inactive
        );
        assert_eq!(
            i.introspect(&v, "revoked", NOW + 1).await.unwrap_err(),
            Rejection::Inactive
        );
        assert_eq!(idp.posts(), 1);

        idp.status.store(503, Ordering::SeqCst);
        for _ in 0..2 {
            assert!(matches!(
                i.introspect(&v, "other", NOW).await,
                Err(Rejection::Unavailable(_))
            ));
        }
        assert_eq!(idp.posts(), 3, "a failure is asked again, never remembered");
    }

    #[tokio::test]
    async fn a_zero_ttl_asks_every_time() {
        let (idp, v, i) = rig(0);
        answer(
            &idp,
            json!({"active": true, "iss": ISS, "sub": "u", "exp": NOW + 3600}),
        );
        for _ in 0..3 {
            assert!(i.introspect(&v, "t", NOW).await.is_ok());
        }
        assert_eq!(idp.posts(), 3);
    }
}
