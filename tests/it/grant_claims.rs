//! Grant claims end to end (issue 21 §6): a real OpenID Connect provider issues tokens with
//! groups, a tenant id and Keycloak-style nested roles (tests/idp/server.mjs), entries that
//! require them are written through the admin into the store (the emulator), and the
//! authorizer, reading the store as the Lambda does, answers from the tokens' claims.
//! Part of `store::` so that `.ci/run` runs it against LocalStack as well.

use std::sync::Arc;
use std::time::Duration;

use scopegate::admin::AdminError;
use scopegate::authorizer::Authorizer;
use scopegate::claim::ClaimName;
use scopegate::clock::SystemClock;
use scopegate::mapping::cache::{CacheOptions, MappingCache};
use scopegate::mapping::store::aws::AwsConfig;
use scopegate::mapping::store::{DynamoStore, S3Snapshots};
use scopegate::mapping::Mapping;
use scopegate::policy::{evaluate, Effect, Policy};
use serde_json::{json, Value};

use super::{Fixture, API};
use crate::oidc::{config_for, token_event};
use crate::support::idp::IdpGuard;

fn entry(v: Value) -> Mapping {
    let mut v = v;
    v["api"] = json!(API);
    v["stage"] = json!("dev");
    serde_json::from_value(v).unwrap()
}

fn declared() -> Vec<ClaimName> {
    ["groups", "/realm_access/roles", "tenant_id"]
        .iter()
        .map(|n| ClaimName::new(n).unwrap())
        .collect()
}

async fn decide(
    a: &Authorizer<MappingCache<DynamoStore, S3Snapshots>>,
    token: &str,
    method: &str,
    path: &str,
) -> Effect {
    let arn = format!("{API}/dev/{method}/{path}");
    let bytes = a
        .handle_json(&token_event(token, &arn))
        .await
        .unwrap_or_else(|e| panic!("{arn}: {e}"));
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    let p: Policy = serde_json::from_value(v["policyDocument"].clone()).unwrap();
    evaluate(&p, &arn)
}

#[tokio::test]
async fn claims_from_a_real_provider_through_the_store_decide() {
    let idp = IdpGuard::start().await;
    let fx = Fixture::new().await;
    let admin = fx
        .operator("claims-test", true)
        .await
        .with_grant_claims(declared());
    let entries = vec![
        entry(
            json!({"method": "DELETE", "resource": "orders/{id}", "scope": "orders:write",
            "claims": {"groups": ["support-leads"]}}),
        ),
        entry(json!({"method": "GET", "resource": "admin", "scopes": [],
            "claims": {"/realm_access/roles": ["admin"]}})),
        entry(json!({"method": "GET", "resource": "orders/{id}", "scope": "orders:write"})),
        entry(
            json!({"method": "GET", "resource": "orders/{id}", "scopes": [],
            "claims": {"groups": ["contractors"]}, "effect": "Deny"}),
        ),
        entry(
            json!({"method": "GET", "resource": "tenants/acme", "scopes": [],
            "claims": {"tenant_id": ["acme"]}}),
        ),
        // Issue 21 §2: each caller's own tenant's orders, bound to its tenant claim.
        entry(
            json!({"method": "GET", "resource": "tenants/${claim:tenant_id}/orders/{id}",
            "scope": "orders:write"}),
        ),
    ];
    admin.add(entries).await.unwrap();
    // An entry naming a claim the authorizer does not read is refused, and nothing changes.
    let before = admin.export().await.unwrap().mappings.len();
    let undeclared = entry(json!({"method": "GET", "resource": "x", "scopes": [],
        "claims": {"roles": ["admin"]}}));
    assert!(matches!(
        admin.add(vec![undeclared]).await,
        Err(AdminError::UndeclaredClaim { .. })
    ));
    // So is a segment bound to one.
    let undeclared = entry(json!({"method": "GET", "resource": "orgs/${claim:/org/id}",
        "scope": "orders:write"}));
    assert!(matches!(
        admin.add(vec![undeclared]).await,
        Err(AdminError::UndeclaredClaim { .. })
    ));
    assert_eq!(admin.export().await.unwrap().mappings.len(), before);

    let aws = AwsConfig::load(&fx.target.aws).await.unwrap();
    let cache = MappingCache::new(
        DynamoStore::new(&aws, &fx.target.table),
        S3Snapshots::new(&aws, fx.target.bucket.as_deref().unwrap(), &fx.target.key),
        Arc::new(SystemClock),
        CacheOptions {
            ttl: 60,
            max_stale: 300,
            check_timeout: Duration::from_secs(3),
            load_timeout: Duration::from_secs(10),
        },
    );
    let mut config = config_for(&idp);
    config.grant_claims = declared();
    let a = Authorizer::new(&config, cache, Arc::new(SystemClock)).unwrap();

    let lead = idp.token_for("scopegate-lead", "orders:write").await;
    let contractor = idp.token_for("scopegate-contractor", "orders:write").await;
    let plain = idp.token("orders:write").await;
    for (who, token, delete, get, admin_page, tenant) in [
        (
            "lead",
            &lead,
            Effect::Allow,
            Effect::Allow,
            Effect::Allow,
            Effect::Allow,
        ),
        // The contractor's roles hold "Admin": no case folding. Its groups deny the GET.
        (
            "contractor",
            &contractor,
            Effect::Deny,
            Effect::Deny,
            Effect::Deny,
            Effect::Deny,
        ),
        (
            "plain",
            &plain,
            Effect::Deny,
            Effect::Allow,
            Effect::Deny,
            Effect::Deny,
        ),
    ] {
        assert_eq!(
            decide(&a, token, "DELETE", "orders/7").await,
            delete,
            "{who} DELETE"
        );
        assert_eq!(decide(&a, token, "GET", "orders/7").await, get, "{who} GET");
        assert_eq!(
            decide(&a, token, "GET", "admin").await,
            admin_page,
            "{who} admin"
        );
        assert_eq!(
            decide(&a, token, "GET", "tenants/acme").await,
            tenant,
            "{who} tenant"
        );
    }
    // The bound entry, read back from the store: each token its own tenant's orders only;
    // a token without a tenant claim none.
    for (who, token, own) in [
        ("lead", &lead, Some("acme")),
        ("contractor", &contractor, Some("globex")),
        ("plain", &plain, None),
    ] {
        for tenant in ["acme", "globex", "initech"] {
            let want = if own == Some(tenant) {
                Effect::Allow
            } else {
                Effect::Deny
            };
            let path = format!("tenants/{tenant}/orders/7");
            assert_eq!(decide(&a, token, "GET", &path).await, want, "{who} {path}");
        }
    }
    fx.cleanup().await;
}
