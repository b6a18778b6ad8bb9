//! The Lambda entry point: config, keys and mappings built once per container, then one
//! call to the library per invocation.

use std::sync::Arc;

use anyhow::Context;
use lambda_runtime::{service_fn, LambdaEvent};
use scopegate::authorizer::Authorizer;
use scopegate::config::Config;
use serde_json::value::RawValue;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    scopegate::logging::init();
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

async fn init() -> anyhow::Result<Arc<Authorizer>> {
    let config = Config::from_env().context("configuration")?;
    let authorizer = Authorizer::from_config(&config).context("start-up")?;
    authorizer.hydrate().await;
    Ok(Arc::new(authorizer))
}
