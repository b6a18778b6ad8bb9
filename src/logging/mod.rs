//! Logging: tracing, one JSON object per line, as CloudWatch Logs Insights reads best.
//!
//! Nothing here or anywhere else logs a token, a signature or a secret; decisions log the
//! principal, the decision, the grant count and the latency.

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
#[cfg(feature = "cli")]
use tracing_subscriber::EnvFilter;
use tracing_subscriber::{fmt, Layer as _};

use crate::config::LOG_LEVEL;

#[cfg(feature = "cli")]
mod buffered;
mod json_line;

#[cfg(feature = "cli")]
pub use buffered::{init_buffered, BufferedLogs};

use json_line::JsonLine;

/// Installs the JSON subscriber on stderr (stdout is for answers in `scopegate invoke`).
/// `SCOPEGATE_LOG_LEVEL` sets the level; default `info`.
///
/// The filter is a list of `target=level` directives ([`Targets`]), not an `EnvFilter`:
/// EnvFilter's span and field matching link a regex engine into the Lambda (about 250 KiB),
/// and the authorizer has no use for them. A value that does not parse falls back to the
/// default and says so.
pub fn init() {
    init_with(std::io::stderr);
}

/// [`init`], the lines going to `writer`.
pub(crate) fn init_with<W>(writer: W)
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let value = std::env::var(LOG_LEVEL.name).ok();
    let (filter, refused) = lambda_filter(value.as_deref());
    let _ = json_subscriber(filter, writer).try_init();
    if let Some(value) = refused {
        tracing::warn!(
            setting = LOG_LEVEL.name,
            value,
            "not a log filter; using the default"
        );
    }
}

/// The Lambda's log filter from `SCOPEGATE_LOG_LEVEL`, and the value if it was refused.
fn lambda_filter(value: Option<&str>) -> (Targets, Option<&str>) {
    let default = || LOG_LEVEL.text_default().parse().unwrap_or_default();
    match value {
        None => (default(), None),
        Some(v) => match v.parse::<Targets>() {
            Ok(filter) => (filter, None),
            Err(_) => (default(), Some(v)),
        },
    }
}

/// The Lambda's subscriber, writing to `writer`: what [`init`] installs on stderr, and what
/// the benchmarks measure the per-event cost of logging with.
pub fn json_subscriber<W>(filter: Targets, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let json = fmt::layer()
        .event_format(JsonLine)
        .fmt_fields(fmt::format::JsonFields::new())
        .with_writer(writer)
        .with_filter(NoUnauthorizedEcho::new());
    tracing_subscriber::registry().with(filter).with(json)
}

/// Drops one line: lambda_runtime's ERROR echo of a handler error when that error is the
/// 401 (`Unauthorized`, the answer API Gateway requires for a bad token).
///
/// The runtime logs every error a handler returns at ERROR, as the `Diagnostic`'s debug
/// text. For an authorizer a bad token is an ordinary answer, not a fault: it is already
/// logged at INFO with its reason (the decision line), and an ERROR per bad token would fire
/// every error alarm. Every other runtime ERROR (faults, panics, a broken event) stays.
/// The text matched is the runtime's own rendering of that `Diagnostic`, built here, so an
/// upgrade that changes it makes the ERROR line come back rather than hide anything else.
#[derive(Debug)]
struct NoUnauthorizedEcho {
    echo: String,
}

impl NoUnauthorizedEcho {
    fn new() -> Self {
        let unauthorized = lambda_runtime::Diagnostic {
            error_type: "Unauthorized".to_owned(),
            error_message: "Unauthorized".to_owned(),
        };
        Self {
            echo: format!("{unauthorized:?}"),
        }
    }
}

impl<S: Subscriber> Filter<S> for NoUnauthorizedEcho {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || !meta.target().starts_with("lambda_runtime") {
            return true;
        }
        let mut message = MessageIs {
            want: &self.echo,
            found: false,
        };
        event.record(&mut message);
        !message.found
    }
}

/// Whether an event's `message` field reads exactly `want`.
struct MessageIs<'a> {
    want: &'a str,
    found: bool,
}

impl Visit for MessageIs<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.found = format!("{value:?}") == self.want;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.found = value == self.want;
        }
    }
}

/// Installs the operator CLI's subscriber: plain text on stderr, for people. Only
/// scopegate's own warnings by default (the SDK's retries and its instance-metadata probing
/// are noise to an operator); `--debug` shows everything at debug level, the SDK's error
/// details included; `RUST_LOG` (EnvFilter syntax) overrides both.
#[cfg(feature = "cli")]
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_runtimes_echo_of_a_401_is_dropped_and_every_other_error_kept() {
        let out = Captured::default();
        let writer = out.clone();
        let layer = fmt::layer()
            .json()
            .with_writer(move || writer.clone())
            .with_filter(NoUnauthorizedEcho::new());
        let subscriber = tracing_subscriber::registry().with(layer);
        let unauthorized = lambda_runtime::Diagnostic {
            error_type: "Unauthorized".into(),
            error_message: "Unauthorized".into(),
        };
        let fault = lambda_runtime::Diagnostic {
            error_type: "MappingsUnavailable".into(),
            error_message: "no mappings".into(),
        };
        tracing::subscriber::with_default(subscriber, || {
            // As lambda_runtime's CatchPanic layer logs a handler's error.
            tracing::error!(target: "lambda_runtime::layers::panic", "{unauthorized:?}");
            tracing::error!(target: "lambda_runtime::layers::panic", "{fault:?}");
            tracing::error!(target: "lambda_runtime::layers::panic", "user handler panicked");
            tracing::error!(target: "scopegate::authorizer", "{unauthorized:?}");
            tracing::info!(target: "lambda_runtime::layers::panic", "{unauthorized:?}");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            4,
            "only the runtime's ERROR echo of the 401 goes: {text}"
        );
        assert!(lines[0].contains("MappingsUnavailable"), "{text}");
        assert!(lines[1].contains("panicked"), "{text}");
    }

    #[test]
    fn the_lambda_filter_reads_levels_and_targets_and_refuses_the_rest() {
        let (filter, refused) = lambda_filter(Some("warn,scopegate::token=debug"));
        assert_eq!(refused, None);
        assert!(filter.would_enable("scopegate::token::jwks", &Level::DEBUG));
        assert!(!filter.would_enable("scopegate::authorizer", &Level::INFO));
        assert!(filter.would_enable("scopegate::authorizer", &Level::WARN));

        let (filter, refused) = lambda_filter(None);
        assert_eq!(refused, None);
        assert!(filter.would_enable("scopegate::authorizer", &Level::INFO));
        assert!(!filter.would_enable("scopegate::authorizer", &Level::DEBUG));

        // EnvFilter's span syntax is not a target list: the default, and the value named.
        let (filter, refused) = lambda_filter(Some("[span{f=1}]=debug"));
        assert_eq!(refused, Some("[span{f=1}]=debug"));
        assert!(filter.would_enable("scopegate::authorizer", &Level::INFO));
        assert!(!filter.would_enable("scopegate::authorizer", &Level::DEBUG));
    }
}
