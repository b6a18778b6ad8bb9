//! Logging: tracing, one JSON object per line, as CloudWatch Logs Insights reads best.
//!
//! Nothing here or anywhere else logs a token, a signature or a secret; decisions log the
//! principal, the decision, the grant count and the latency.

use tracing_subscriber::EnvFilter;

use crate::config::LOG_LEVEL;

/// Installs the JSON subscriber on stderr (stdout is for answers in `scopegate invoke`).
/// `SCOPEGATE_LOG_LEVEL` (EnvFilter syntax) sets the level; default `info`.
pub fn init() {
    let filter = std::env::var(LOG_LEVEL.name)
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(LOG_LEVEL.text_default()));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Installs the operator CLI's subscriber: plain text on stderr, for people. Only
/// scopegate's own warnings by default (the SDK's retries and its instance-metadata probing
/// are noise to an operator); `--debug` shows everything at debug level, the SDK's error
/// details included; `RUST_LOG` (EnvFilter syntax) overrides both.
pub fn init_cli(debug: bool) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(if debug { "debug" } else { "scopegate=warn" }));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(debug)
        .with_writer(std::io::stderr)
        .try_init();
}
