//! Against a real third-party OpenID Connect provider (oidc-provider): discovery, JWKS,
//! client_credentials tokens with scopes, key rotation, and RFC 7662 introspection.

use std::sync::Arc;
use std::time::Duration;

use scopegate::authorizer::{AuthorizeError, Authorizer};
use scopegate::clock::SystemClock;
use scopegate::config::{Config, IntrospectMode, IntrospectionConfig, IssuerConfig, JwksSource};
use scopegate::mapping::StaticMappings;
use scopegate::policy::{evaluate, Effect, Policy};
use serde_json::{json, Value};

use crate::support::idp::{
    IdpGuard, API_AUDIENCE, INTROSPECTOR_ID, INTROSPECTOR_SECRET, OPAQUE_AUDIENCE,
};

pub const SEED_GET: &str =
    "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2/dev/GET/my-resource";
const ORDERS: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

/// The config a user would write for this provider: just the issuer and the audience.
pub fn config_for(idp: &IdpGuard) -> Config {
    let mut c = Config::new(vec![IssuerConfig {
        issuer: idp.issuer().to_owned(),
        jwks: JwksSource::Discovery,
    }]);
    c.audiences = vec![API_AUDIENCE.to_owned()];
    c
}

fn authorizer(config: &Config) -> Authorizer {
    let mappings = StaticMappings::from_config(config).unwrap();
    Authorizer::new(config, mappings, Arc::new(SystemClock)).unwrap()
}

pub fn token_event(token: &str, method_arn: &str) -> Vec<u8> {
    json!({"type": "TOKEN", "authorizationToken": format!("Bearer {token}"), "methodArn": method_arn})
        .to_string()
        .into_bytes()
}

/// The policy the authorizer returns for `token` (the request being `method_arn`).
async fn policy(a: &Authorizer, token: &str, method_arn: &str) -> Result<Policy, AuthorizeError> {
    let bytes = a.handle_json(&token_event(token, method_arn)).await?;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    Ok(serde_json::from_value(v["policyDocument"].clone()).unwrap())
}

#[tokio::test]
async fn client_credentials_tokens_are_decided_by_scope() {
    let idp = IdpGuard::start().await;
    let a = authorizer(&config_for(&idp));
    a.hydrate().await;
    assert_eq!(
        a.verifier().stores()[0].fetch_count(),
        1,
        "hydrated at start through discovery"
    );

    let email = idp.token("email").await;
    let p = policy(&a, &email, SEED_GET).await.unwrap();
    assert_eq!(evaluate(&p, SEED_GET), Effect::Allow);
    assert_eq!(
        evaluate(&p, &SEED_GET.replace("/GET/", "/DELETE/")),
        Effect::Deny
    );

    let profile = idp.token("profile").await;
    let p = policy(&a, &profile, SEED_GET).await.unwrap();
    assert_eq!(
        evaluate(&p, SEED_GET),
        Effect::Deny,
        "valid token without email: deny-all"
    );

    // The complete policy: a token reading orders may read any order and the list, on the
    // stage of the request, and may not write; the policy does not depend on the method called.
    let reader = idp.token("orders:read").await;
    let p = policy(&a, &reader, &format!("{ORDERS}/dev/GET/orders"))
        .await
        .unwrap();
    assert_eq!(
        evaluate(&p, &format!("{ORDERS}/dev/GET/orders/7")),
        Effect::Allow
    );
    assert_eq!(
        evaluate(&p, &format!("{ORDERS}/dev/GET/")),
        Effect::Allow,
        "root resource"
    );
    assert_eq!(
        evaluate(&p, &format!("{ORDERS}/dev/DELETE/orders/7")),
        Effect::Deny
    );
    assert_eq!(
        evaluate(&p, &format!("{ORDERS}/prod/GET/orders/7")),
        Effect::Deny,
        "other stage"
    );

    // The prod stage's explicit Deny wins over the writer's wildcard grant.
    let writer = idp.token("orders:write orders:read").await;
    let prod = format!("{ORDERS}/prod/DELETE/orders/7");
    let p = policy(&a, &writer, &prod).await.unwrap();
    assert_eq!(evaluate(&p, &prod), Effect::Deny);
    assert_eq!(
        evaluate(&p, &format!("{ORDERS}/prod/PUT/orders/7")),
        Effect::Allow
    );

    assert_eq!(
        a.verifier().stores()[0].fetch_count(),
        1,
        "no fetch on the warm path"
    );
}

#[tokio::test]
async fn wrong_audience_and_tampering_from_a_real_provider_are_refused() {
    let idp = IdpGuard::start().await;
    let mut config = config_for(&idp);
    config.audiences = vec!["https://another-api.example".into()];
    let a = authorizer(&config);
    let t = idp.token("email").await;
    assert!(matches!(
        policy(&a, &t, SEED_GET).await,
        Err(AuthorizeError::Unauthorized(_))
    ));

    let a = authorizer(&config_for(&idp));
    let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    assert!(matches!(
        policy(&a, &parts.join("."), SEED_GET).await,
        Err(AuthorizeError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn key_rotation_is_picked_up() {
    let mut idp = IdpGuard::start().await;
    let a = authorizer(&config_for(&idp));
    a.hydrate().await;
    let before = idp.token("email").await;
    assert_eq!(
        evaluate(&policy(&a, &before, SEED_GET).await.unwrap(), SEED_GET),
        Effect::Allow
    );

    idp.restart().await; // same issuer, new signing key
    let after = idp.token("email").await;
    assert_eq!(
        evaluate(&policy(&a, &after, SEED_GET).await.unwrap(), SEED_GET),
        Effect::Allow
    );
    assert_eq!(
        a.verifier().stores()[0].fetch_count(),
        2,
        "one refetch for the new kid"
    );

    // The cached verification of the old token still answers until its exp or the cache TTL;
    // a fresh authorizer without that cache refuses it: its key is gone.
    let fresh = authorizer(&config_for(&idp));
    assert!(matches!(
        policy(&fresh, &before, SEED_GET).await,
        Err(AuthorizeError::Unauthorized(_))
    ));
}

fn introspecting(idp: &IdpGuard) -> Config {
    let mut c = config_for(idp);
    c.audiences.push(OPAQUE_AUDIENCE.to_owned());
    c.introspection = Some(IntrospectionConfig {
        mode: IntrospectMode::Opaque,
        url: Some(idp.introspection_endpoint().to_owned()),
        client_id: INTROSPECTOR_ID.to_owned(),
        client_secret: INTROSPECTOR_SECRET.to_owned(),
        cache_ttl: Duration::ZERO,
    });
    c
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_revocation_is_seen() {
    let idp = IdpGuard::start().await;
    let a = authorizer(&introspecting(&idp));
    let opaque = idp.opaque_token("email").await;
    assert!(
        !opaque.contains('.'),
        "the opaque resource issues opaque tokens"
    );
    let p = policy(&a, &opaque, SEED_GET).await.unwrap();
    assert_eq!(evaluate(&p, SEED_GET), Effect::Allow);

    let other = idp.opaque_token("profile").await;
    assert_eq!(
        evaluate(&policy(&a, &other, SEED_GET).await.unwrap(), SEED_GET),
        Effect::Deny
    );

    idp.revoke(&opaque).await;
    assert!(matches!(
        policy(&a, &opaque, SEED_GET).await,
        Err(AuthorizeError::Unauthorized(_))
    ));
    assert!(matches!(
        policy(&a, "made-up-opaque-token", SEED_GET).await,
        Err(AuthorizeError::Unauthorized(_))
    ));

    // JWTs are still verified locally in opaque mode.
    let jwt = idp.token("email").await;
    assert_eq!(
        evaluate(&policy(&a, &jwt, SEED_GET).await.unwrap(), SEED_GET),
        Effect::Allow
    );
}

#[tokio::test]
async fn introspection_with_wrong_credentials_fails_closed() {
    let idp = IdpGuard::start().await;
    let mut config = introspecting(&idp);
    if let Some(i) = config.introspection.as_mut() {
        i.client_secret = "wrong".into();
    }
    let a = authorizer(&config);
    let opaque = idp.opaque_token("email").await;
    assert!(matches!(
        policy(&a, &opaque, SEED_GET).await,
        Err(AuthorizeError::Unauthorized(_))
    ));
}
