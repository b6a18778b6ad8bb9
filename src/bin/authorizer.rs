//! The Lambda entry point: config, keys and mappings built once per container, then one
//! call to the library per invocation.

use std::sync::Arc;

use anyhow::Context;
use lambda_runtime::{service_fn, LambdaEvent};
use scopegate::authorizer::Authorizer;
use scopegate::clock::SystemClock;
use scopegate::config::Config;
use scopegate::mapping::configured::ConfiguredMappings;
use scopegate::mapping::store::aws::AwsOptions;
use serde_json::value::RawValue;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    scopegate::logging::init();
    scopegate::metrics::install(scopegate::metrics::Metrics::stdout());
    let authorizer = match init().await {
        Ok(a) => a,
        Err(e) => {
            // Shown in the init error and the log: names the setting and the bad value.
            tracing::error!(error = format!("{e:#}"), "start-up failed");
            return Err(e.into());
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let authorizer = Arc::clone(&authorizer);
        async move {
            let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
            authorizer
                .handle(event.payload.get().as_bytes())
                .instrument(span)
                .await
                .map_err(lambda_runtime::Diagnostic::from)
        }
    }))
    .await
}

async fn init() -> anyhow::Result<Arc<Authorizer<ConfiguredMappings>>> {
    let config = Config::from_env().context("configuration")?;
    let clock = Arc::new(SystemClock);
    // DynamoDB (warm cache, S3 fallback) when SCOPEGATE_MAPPINGS_TABLE is set, else the file
    // or the embedded seed data.
    let mappings =
        ConfiguredMappings::from_config(&config, &AwsOptions::for_authorizer(), clock.clone())
            .await
            .context("start-up")?;
    let authorizer = Authorizer::new(&config, mappings, clock).context("start-up")?;
    let authorizer = match scopegate::replay::configured(&config, &AwsOptions::for_authorizer())
        .await
        .context("start-up")?
    {
        Some(store) => authorizer.with_replay_store(store),
        None => authorizer,
    };
    // Keys and mappings are loaded during init, which has its own time budget; a failure here
    // is logged and retried on the first invocation (which then fails closed if it must).
    authorizer.hydrate().await;
    authorizer.mappings().prime().await;
    Ok(Arc::new(authorizer))
}
