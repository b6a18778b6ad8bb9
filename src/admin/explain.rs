//! `scopegate mappings explain`: which entries decide a request for a set of scopes, which
//! they overrule, and which scopes map to nothing.

use serde::Serialize;

use super::error::AdminError;
use crate::claim::{is_binding_key, key_label, read_binding_key, ClaimName};
use crate::config::ScopeClaim;
use crate::mapping::{Mapping, Snapshot};
use crate::policy::Effect;
use crate::token::claims::{parse, unverified, ClaimsSpec};

/// An exactness Deny that applied to the request.
#[derive(Debug, Clone, Serialize)]
pub struct ExactDenyReport {
    /// The route denied, `METHOD /path`: the one the request belongs to, which the token is
    /// not granted.
    pub route: String,
    /// The granted route, `METHOD /path`, whose Allow would otherwise reach the request.
    pub covered_by: String,
}

/// The answer of `explain`.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainReport {
    /// The snapshot version explained against.
    pub version: u64,
    /// The request.
    pub method_arn: String,
    /// The scopes considered, and the claim values (`groups="support-leads"`).
    pub scopes: Vec<String>,
    /// Allow or Deny, as API Gateway would answer under the token's whole policy.
    pub decision: Effect,
    /// The entries that decided (matching Denies for a Deny, matching Allows for an Allow;
    /// none for the implicit deny).
    pub deciding: Vec<Mapping>,
    /// Matching Allows overruled by a Deny.
    pub overruled: Vec<Mapping>,
    /// Scopes no entry names.
    pub unknown_scopes: Vec<String>,
    /// Each claim a `${claim:NAME}` segment names, with the token's value
    /// (`tenant_id="acme"`) or why it has none (`tenant_id: missing`): an Allow bound to a
    /// claim without a value grants nothing, a Deny bound to one denies for every value.
    pub bindings: Vec<String>,
    /// The bound entries above (deciding or overruled) as this token's policy reads them:
    /// `GET /tenants/${claim:tenant_id}/orders -> GET /tenants/acme/orders`.
    pub bound_resources: Vec<String>,
    /// The route the request belongs to (`GET /orders/{id}`): the most specific route entry
    /// that matches it, whatever it requires; none when only globs match.
    pub route: Option<String>,
    /// What that route requires, one line per alternative (any one suffices).
    pub route_requires: Vec<String>,
    /// Exactness Denies that matched: the route denied, and the granted route whose `*`
    /// would otherwise have let the request through.
    pub exact_denies: Vec<ExactDenyReport>,
    /// Routes the token's policy cannot keep apart (their requests are denied):
    /// `denied route / granted route / example request`.
    pub inseparable: Vec<String>,
    /// Statements in the token's policy.
    pub policy_grants: usize,
    /// Size of the token's policy, in bytes.
    pub policy_bytes: usize,
}

/// Explains the decision for `scopes` on `method_arn` under `snapshot`.
///
/// # Errors
/// [`AdminError::Arn`] for a methodArn that does not parse.
pub fn explain(
    snapshot: &Snapshot,
    scopes: &[String],
    method_arn: &str,
) -> Result<ExplainReport, AdminError> {
    let e = snapshot.explain(scopes.iter().map(String::as_str), method_arn)?;
    let route_text = |m: &Mapping| format!("{} /{}", m.method, m.resource);
    // A Deny of the route the request belongs to says more than the Deny of a template's
    // reach beyond its route, when both match.
    let named = e
        .exact_denied_by
        .iter()
        .any(|(route, by)| !std::ptr::eq(*route, *by));
    let exact_denies: Vec<ExactDenyReport> = e
        .exact_denied_by
        .iter()
        .filter(|(route, by)| !named || !std::ptr::eq(*route, *by))
        .map(|(route, by)| ExactDenyReport {
            route: route_text(route),
            covered_by: route_text(by),
        })
        .collect();
    let overruled =
        if e.effect == Effect::Deny && (!e.denied_by.is_empty() || !exact_denies.is_empty()) {
            e.allowed_by.iter().map(|m| (*m).clone()).collect()
        } else {
            Vec::new()
        };
    let value_of = |name: &str| {
        e.bindings
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref().ok())
    };
    let mut bound_resources: Vec<String> = Vec::new();
    for m in e.deciding().iter().chain(&e.allowed_by).chain(&e.denied_by) {
        if !m.resource.is_bound() {
            continue;
        }
        let resolved: Vec<&str> = m
            .resource
            .segments()
            .map(|seg| match crate::mapping::placeholder(seg) {
                Some(name) => value_of(name).unwrap_or("*"),
                None => seg,
            })
            .collect();
        let line = format!(
            "{} /{} -> {} /{}",
            m.method,
            m.resource,
            m.method,
            resolved.join("/")
        );
        if !bound_resources.contains(&line) {
            bound_resources.push(line);
        }
    }
    Ok(ExplainReport {
        version: snapshot.version(),
        method_arn: method_arn.to_owned(),
        scopes: scopes
            .iter()
            .filter(|k| !is_binding_key(k))
            .map(|k| key_label(k))
            .collect(),
        bindings: e
            .bindings
            .iter()
            .map(|(name, v)| match v {
                Ok(v) => format!("{name}={}", serde_json::Value::from(v.as_str())),
                Err(why) => format!("{name}: {why}"),
            })
            .collect(),
        bound_resources,
        decision: e.effect,
        deciding: e.deciding().iter().map(|m| (*m).clone()).collect(),
        overruled,
        unknown_scopes: e.unknown_scopes.iter().map(|k| key_label(k)).collect(),
        route: e.route.map(route_text),
        route_requires: e.route_requires.iter().map(ToString::to_string).collect(),
        exact_denies,
        inseparable: e
            .inseparable
            .iter()
            .map(|i| {
                format!(
                    "{} cannot be told from {} (e.g. {} /{})",
                    i.denied, i.granted, i.method, i.example
                )
            })
            .collect(),
        policy_grants: e.policy.grants,
        policy_bytes: e.policy.json.get().len(),
    })
}

/// The scopes of a JWT, read from its payload without verifying it (`explain` is an
/// operator's tool for a token they already hold; the authorizer always verifies), by the
/// same reader and the same RFC 6749 rules as a verified token's: `scp` (array or string),
/// else `scope`.
///
/// # Errors
/// [`AdminError::Usage`] when it is not a JWT, or one without scopes.
pub fn token_scopes(jwt: &str) -> Result<Vec<String>, AdminError> {
    token_grants(jwt, &[], &ScopeClaim::Standard)
}

/// [`token_scopes`] read from `scope_claim` (the authorizer's `SCOPEGATE_SCOPE_CLAIM`), then
/// the grant keys of the token's values of the claims `grant` (the authorizer's
/// `SCOPEGATE_GRANT_CLAIMS`), read by the authorizer's rules: what the snapshot matches for
/// this token.
///
/// # Errors
/// As [`token_scopes`]; a grant claim the authorizer would refuse.
pub fn token_grants(
    jwt: &str,
    grant: &[ClaimName],
    scope_claim: &ScopeClaim,
) -> Result<Vec<String>, AdminError> {
    let jwt = jwt.trim();
    let jwt = jwt.strip_prefix("Bearer ").unwrap_or(jwt);
    let c = unverified(jwt, scope_claim, grant)
        .map_err(|e| AdminError::Usage(format!("--token: {e}")))?;
    let bound = |k: &str| read_binding_key(k).is_some_and(|(_, v)| v.is_ok());
    if c.scopes.is_empty() && c.grants.is_empty() && !c.bindings.iter().any(|k| bound(k)) {
        return Err(AdminError::Usage(
            "--token: the token has no scp or scope claim, nor a value of a declared grant claim"
                .into(),
        ));
    }
    Ok(c.scopes
        .into_iter()
        .chain(c.grants)
        .chain(c.bindings)
        .map(String::from)
        .collect())
}

/// What the authorizer asks of a request with this token besides its policy, when the token
/// is bound to its client (`cnf`): `explain` answers with the policy, which the authorizer
/// returns only once the binding is checked, or never. `None` for an unbound token, or one
/// that does not read.
pub fn token_binding(jwt: &str) -> Option<&'static str> {
    use crate::token::binding::Confirmation;
    let jwt = jwt.trim();
    let jwt = jwt.strip_prefix("Bearer ").unwrap_or(jwt);
    let c = unverified(jwt, &ScopeClaim::Standard, &[]).ok()?;
    Some(match c.cnf? {
        Confirmation::Certificate(_) => "the token is bound to a client certificate (cnf.x5t#S256, RFC 8705): the authorizer answers with this policy only for a request that presents that certificate (a REQUEST authorizer on a mutual-TLS domain), and refuses it otherwise",
        Confirmation::Key(_) => "the token is bound to a DPoP key (cnf.jkt, RFC 9449): the authorizer answers with this policy only for a request sent as `DPoP` with a fresh proof by that key (a REQUEST authorizer), and refuses it otherwise",
        Confirmation::Unsupported => "the token is bound to its client by a method scopegate does not check: the authorizer refuses it (binding_unsupported), so this policy is never returned",
    })
}

/// The grant keys of `claims` (a token's claims, as JSON text) for the grant claims
/// `grant`, read by the authorizer's own parser: a member given twice, a value over the
/// caps, or a claim of the wrong type is refused here as the authorizer would refuse the
/// token. For `explain --claims`.
///
/// # Errors
/// [`AdminError::Usage`] when `claims` is not a JSON object, or the authorizer would refuse
/// it.
pub fn claim_grants(claims: &str, grant: &[ClaimName]) -> Result<Vec<String>, AdminError> {
    let spec = ClaimsSpec {
        scope_claim: &ScopeClaim::Standard,
        wanted: &[],
        grant,
    };
    let c = parse(claims.trim().as_bytes(), spec).map_err(|e| {
        AdminError::Usage(format!(
            "--claims: {e}: give the token's claims as one JSON object"
        ))
    })?;
    Ok(c.grants
        .into_iter()
        .chain(c.bindings)
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mapping::testing::{entry as m, API};

    #[test]
    fn explain_names_the_deciding_entries() {
        let s = Snapshot::new(
            7,
            vec![
                m("w", "*", "orders/*", "Allow"),
                m("w", "DELETE", "orders/*", "Deny"),
                m("r", "GET", "orders", "Allow"),
            ],
        );
        let arn = format!("{API}/dev/DELETE/orders/1");
        let r = explain(&s, &["w".into(), "x".into()], &arn).unwrap();
        assert_eq!(r.decision, Effect::Deny);
        assert_eq!(r.deciding, vec![m("w", "DELETE", "orders/*", "Deny")]);
        assert_eq!(r.overruled, vec![m("w", "*", "orders/*", "Allow")]);
        assert_eq!(r.unknown_scopes, vec!["x".to_owned()]);
        let r = explain(&s, &["r".into()], &format!("{API}/dev/GET/orders")).unwrap();
        assert_eq!(r.decision, Effect::Allow);
        let r = explain(&s, &["r".into()], &format!("{API}/dev/GET/other")).unwrap();
        assert!(r.deciding.is_empty());
        assert!(matches!(
            explain(&s, &[], "nonsense"),
            Err(AdminError::Arn(_))
        ));
    }

    #[test]
    fn explain_names_the_route_its_requirement_and_the_exactness_deny() {
        let s = Snapshot::new(
            1,
            vec![
                m("orders:read", "GET", "orders/{id}", "Allow"),
                m("payments:read", "GET", "orders/{id}/payments", "Allow"),
            ],
        );
        let arn = format!("{API}/dev/GET/orders/7/payments");
        let r = explain(&s, &["orders:read".into()], &arn).unwrap();
        assert_eq!(r.decision, Effect::Deny);
        assert_eq!(r.route.as_deref(), Some("GET /orders/{id}/payments"));
        assert_eq!(r.route_requires, ["payments:read"]);
        assert_eq!(r.exact_denies.len(), 1);
        assert_eq!(r.exact_denies[0].route, "GET /orders/{id}/payments");
        assert_eq!(r.exact_denies[0].covered_by, "GET /orders/{id}");
        assert_eq!(
            r.overruled,
            vec![m("orders:read", "GET", "orders/{id}", "Allow")]
        );
        let r = explain(&s, &["payments:read".into()], &arn).unwrap();
        assert_eq!((r.decision, r.exact_denies.len()), (Effect::Allow, 0));
    }

    #[test]
    fn token_scopes_reads_scp_or_scope() {
        use base64::Engine as _;
        let enc = |v: serde_json::Value| {
            format!(
                "e30.{}.sig",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
            )
        };
        assert_eq!(
            token_scopes(&enc(serde_json::json!({"scope": "a b"}))).unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            token_scopes(&enc(serde_json::json!({"scp": ["c"]}))).unwrap(),
            ["c"]
        );
        assert!(token_scopes("nope").is_err());
        assert_eq!(token_binding(&enc(serde_json::json!({"scope": "a"}))), None);
        for (cnf, says) in [
            (serde_json::json!({"x5t#S256": "t"}), "client certificate"),
            (serde_json::json!({"jkt": "k"}), "DPoP key"),
            (serde_json::json!({"kid": "k"}), "never returned"),
        ] {
            let note = token_binding(&enc(serde_json::json!({"scope": "a", "cnf": cnf})));
            assert!(note.is_some_and(|n| n.contains(says)), "{note:?}");
        }
        assert!(token_scopes(&enc(serde_json::json!({"sub": "x"}))).is_err());
        // The verified reader's rules: a tab is not a scope separator (RFC 6749 3.3).
        assert!(token_scopes(&enc(serde_json::json!({"scope": "a\tb"}))).is_err());
        // The authorizer's SCOPEGATE_SCOPE_CLAIM (issue 22 §5): Auth0's `permissions`.
        let auth0 = enc(serde_json::json!({"permissions": ["read:orders"], "scope": "openid"}));
        let named = ScopeClaim::Named("permissions".into());
        assert_eq!(token_grants(&auth0, &[], &named).unwrap(), ["read:orders"]);
        assert_eq!(token_scopes(&auth0).unwrap(), ["openid"]);
    }

    #[test]
    fn claims_are_read_as_the_authorizer_reads_them() {
        let grant = [ClaimName::new("groups").unwrap()];
        let keys = claim_grants(r#"{"groups": ["a", "b"], "other": 1}"#, &grant).unwrap();
        let labels: Vec<String> = keys
            .iter()
            .filter(|k| !is_binding_key(k))
            .map(|k| key_label(k))
            .collect();
        assert_eq!(labels, [r#"groups="a""#, r#"groups="b""#]);
        // And what a `${claim:groups}` segment would read: an array is no segment.
        let bound: Vec<_> = keys.iter().filter_map(|k| read_binding_key(k)).collect();
        assert_eq!(bound, [("groups", Err(crate::claim::Unbound::NotString))]);
        // A member given twice is refused, not read last-wins: the authorizer refuses the
        // token, so explain must not answer for it.
        let twice = r#"{"groups": ["a"], "groups": ["admin"]}"#;
        assert!(matches!(
            claim_grants(twice, &grant),
            Err(AdminError::Usage(_))
        ));
        let nested = r#"{"groups": {"x": 1, "x": 2}}"#;
        assert!(claim_grants(nested, &grant).is_err());
        assert!(claim_grants(r#"["groups"]"#, &grant).is_err());
        assert!(claim_grants("groups=a", &grant).is_err());
    }
}
