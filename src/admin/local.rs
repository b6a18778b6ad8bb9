//! `scopegate local`: the dev identity provider and the gateway, with the real authorizer
//! between them, trusting the provider through discovery and its JWKS like any other issuer.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use tokio::net::TcpListener;

use crate::authorizer::{AuthorizeError, Authorizer};
use crate::clock::SystemClock;
use crate::config::{Config, IssuerConfig, JwksSource, MappingsSource};
use crate::local::{self, Banner, CurlExample, DevIdp, GatewayOptions, Route};
use crate::mapping::configured::ConfiguredMappings;
use crate::mapping::store::aws::AwsOptions;
use crate::mapping::Mappings;
use crate::mapping::{Mapping, Snapshot};
use crate::policy::Effect;
use crate::token::Rejection;

/// Settings of `scopegate local`.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Mappings file; the embedded seed data when `None`.
    pub mappings: Option<std::path::PathBuf>,
    /// The API to pretend to be; default the first API in the mappings.
    pub api: Option<String>,
    /// The stage; default the first stage of that API in the mappings.
    pub stage: Option<String>,
    /// Authorizer cache TTL, 0 to 3600.
    pub authorizer_ttl: u32,
    /// A REQUEST authorizer instead of TOKEN ([`GatewayOptions::request_authorizer`]): what
    /// DPoP needs. Not cached.
    pub request_authorizer: bool,
    /// Token source header.
    pub token_header: String,
    /// Token validation regex; `None` for the seed's, `Some("")` for none.
    pub token_regex: Option<String>,
    /// A DynamoDB mappings table to serve from instead of a file (with the warm cache the
    /// Lambda uses, so edits show within SCOPEGATE_MAPPING_TTL_SECONDS).
    pub table: Option<String>,
    /// Region, profile and endpoint for the table.
    pub aws: AwsOptions,
}

/// A fault starting local mode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalRunError {
    /// The mapping source cannot be set up (a bad file, an AWS setup fault).
    #[error("mappings")]
    Source(#[from] crate::mapping::store::StoreError),
    /// No snapshot could be loaded from the source.
    #[error("mappings")]
    Unavailable(#[from] crate::mapping::Unavailable),
    /// The mappings hold no entry at all, so there is no API to serve.
    #[error("mappings: no mapping entries")]
    NoEntries,
    /// No entry names the API asked for.
    #[error("mappings: no entry for API {api}")]
    NoEntryForApi {
        /// The API asked for.
        api: String,
    },
    /// A local-mode setting or server fault.
    #[error(transparent)]
    Local(#[from] local::LocalError),
    /// The authorizer could not be set up.
    #[error(transparent)]
    Init(#[from] crate::authorizer::InitError),
}

impl<M: Mappings> local::Authorize for Authorizer<M> {
    async fn authorize(&self, event: Value) -> Result<Value, local::AuthorizeError> {
        let bytes =
            serde_json::to_vec(&event).map_err(|e| local::AuthorizeError::Fault(Box::new(e)))?;
        match self.handle(&bytes).await {
            Ok(resp) => {
                serde_json::to_value(&resp).map_err(|e| local::AuthorizeError::Fault(Box::new(e)))
            }
            // The proof's refusals answer with DPoP's invalid_dpop_proof (RFC 9449 §7.1): a
            // client sends a fresh proof, which is also what to do when the replay check
            // could not be made.
            Err(AuthorizeError::Unauthorized(
                Rejection::DpopProof(_)
                | Rejection::DpopReplayed
                | Rejection::DpopProofMissing
                | Rejection::ReplayUnavailable(_),
            )) => Err(local::AuthorizeError::InvalidProof),
            Err(AuthorizeError::Unauthorized(_)) => Err(local::AuthorizeError::Unauthorized),
            Err(e) => Err(local::AuthorizeError::Fault(Box::new(e))),
        }
    }
}

/// A running local mode's addresses, for the banner and the tests.
#[derive(Debug, Clone)]
pub struct Running {
    /// The gateway's address.
    pub gateway: SocketAddr,
    /// The dev provider's issuer URL.
    pub issuer: String,
    /// The gateway's options (API, stage, routes).
    pub options: GatewayOptions,
    /// The start-up text: URLs and ready-to-paste curl lines.
    pub banner: String,
}

/// Starts the provider on `idp_listener` and the gateway on `gateway_listener`; `on_ready` is
/// called once both listen; returns when `shutdown` completes.
///
/// # Errors
/// [`LocalRunError`] for bad options or mappings, or a server fault.
pub async fn run(
    opts: LocalOptions,
    idp_listener: TcpListener,
    gateway_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&Running),
) -> Result<(), LocalRunError> {
    let mut source = Config::new(Vec::new());
    if let Some(p) = &opts.mappings {
        source.mappings = MappingsSource::File(p.clone());
    }
    source.mappings_table = opts.table.clone();
    let mappings =
        ConfiguredMappings::from_config(&source, &opts.aws, Arc::new(SystemClock)).await?;
    // The routes are the mappings' at start; the authorizer follows later edits.
    let snapshot = mappings.current().await?;
    let gateway_opts = gateway_options(&opts, &snapshot)?;
    gateway_opts.validate()?;

    let idp =
        DevIdp::bind(idp_listener)?.with_scopes_supported(snapshot.scopes().map(str::to_owned));
    let issuer = idp.issuer().to_owned();
    let mut config = Config::new(vec![IssuerConfig {
        issuer: issuer.clone(),
        jwks: JwksSource::Discovery,
    }]);
    config.audiences = vec![idp.audience().to_owned()];
    config.mappings = source.mappings.clone();
    config.mappings_table = source.mappings_table.clone();
    // Local mode reads the claims its mappings require (SCOPEGATE_GRANT_CLAIMS in a
    // deployment): `scopegate token --claim` issues them.
    // Those its `${claim:NAME}` segments are bound to too.
    for m in snapshot.entries() {
        let bound = m
            .resource
            .bound_claims()
            .filter_map(|(_, c)| crate::claim::ClaimName::new(c).ok());
        for name in m
            .scopes
            .claims()
            .iter()
            .map(|c| c.name().clone())
            .chain(bound)
        {
            if !config.grant_claims.contains(&name) {
                config.grant_claims.push(name);
            }
        }
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let idp_task = tokio::spawn(idp.serve(stopped(stop_rx.clone())));
    let gateway = gateway_listener
        .local_addr()
        .map_err(|source| local::LocalError::LocalAddr {
            what: "gateway",
            source,
        })?;
    // DPoP proofs name the gateway's URL as the banner prints it (plain http on loopback).
    config.dpop.origin = Some(format!("http://{}", local::display_addr(gateway)));
    let authorizer = Arc::new(Authorizer::new(&config, mappings, Arc::new(SystemClock))?);
    authorizer.hydrate().await;
    let (allowed, denied) = examples(&snapshot, &gateway_opts);
    let banner = local::startup_banner(&Banner {
        gateway,
        issuer: &issuer,
        options: &gateway_opts,
        token_command: "scopegate token",
        allowed,
        denied,
    });
    on_ready(&Running {
        gateway,
        issuer,
        options: gateway_opts.clone(),
        banner,
    });
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let served = local::serve(gateway_listener, authorizer, gateway_opts, stopped(stop_rx)).await;
    let _ = idp_task.await;
    served.map_err(Into::into)
}

/// The API, stage and routes from the mappings.
fn gateway_options(
    opts: &LocalOptions,
    snapshot: &Snapshot,
) -> Result<GatewayOptions, LocalRunError> {
    let entries = snapshot.entries();
    let api = match &opts.api {
        Some(a) => a.clone(),
        None => entries
            .first()
            .map(|m| m.api.as_str().to_owned())
            .ok_or(LocalRunError::NoEntries)?,
    };
    let for_api: Vec<&Mapping> = entries.iter().filter(|m| m.api.as_str() == api).collect();
    if for_api.is_empty() {
        return Err(LocalRunError::NoEntryForApi { api });
    }
    let stage = match &opts.stage {
        Some(s) => s.clone(),
        None => for_api
            .iter()
            .map(|m| m.stage.as_str())
            .find(|s| *s != "*")
            .unwrap_or("dev")
            .to_owned(),
    };
    let mut routes: Vec<Route> = Vec::new();
    for m in for_api.iter().filter(|m| m.stage.applies_to(&stage)) {
        // A `${claim:NAME}` segment is the API's own parameter there: the gateway routes by
        // shape, and the authorizer fills the binding from the token.
        let resource: String = m
            .resource
            .segments()
            .map(|s| {
                if crate::mapping::placeholder(s).is_some() {
                    "{claim}"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let r = Route::new(m.method.as_str(), &resource);
        if !routes.contains(&r) {
            routes.push(r);
        }
    }
    let mut g = GatewayOptions::new(api, stage, routes);
    g.authorizer_ttl = opts.authorizer_ttl;
    g.request_authorizer = opts.request_authorizer;
    g.token_header = opts.token_header.clone();
    if let Some(re) = &opts.token_regex {
        g.token_regex = local::gateway::parse_token_regex(re)?;
    }
    Ok(g)
}

/// A curl example that the mappings allow, and one they deny.
fn examples(snapshot: &Snapshot, g: &GatewayOptions) -> (Option<CurlExample>, Option<CurlExample>) {
    let route = g
        .routes
        .iter()
        .find(|r| r.method != "*" && !r.resource.contains('*'))
        .or(g.routes.first());
    let Some(route) = route else {
        return (None, None);
    };
    let method = if route.method == "*" {
        "GET"
    } else {
        &route.method
    };
    let path = route.example_path();
    let arn = crate::policy::method_arn(&g.api, &g.stage, method, &path);
    let allowing = snapshot
        .scopes()
        .find(|s| snapshot.policy_for([*s], &g.api, &g.stage).evaluate(&arn) == Effect::Allow);
    let allowed = allowing.map(|s| CurlExample {
        method: method.to_owned(),
        path: path.clone(),
        scope: s.to_owned(),
    });
    // The seed's second case: a valid token without the scope the resource needs.
    let denied_scope = std::iter::once("profile")
        .chain(snapshot.scopes())
        .find(|s| snapshot.policy_for([*s], &g.api, &g.stage).evaluate(&arn) == Effect::Deny)
        .unwrap_or("profile");
    let denied = Some(CurlExample {
        method: method.to_owned(),
        path,
        scope: denied_scope.to_owned(),
    });
    (allowed, denied)
}
