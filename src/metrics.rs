//! Metrics in CloudWatch Embedded Metric Format (EMF): one JSON line per event, which
//! CloudWatch Logs turns into metrics by itself (no PutMetricData call, no permission beyond
//! writing logs, no extra latency).
//!
//! What is counted, in the namespace [`NAMESPACE`] with the dimension `FunctionName`:
//!
//! | event | metrics | properties |
//! |---|---|---|
//! | [`decision`] (every invocation) | `Allow`, `Deny`, `Unauthorized`, `Error` (one is 1, the others 0), `Latency` (µs), `MappingVersion`; on a refusal, `Unauthorized` also by `Refusal` | `MappingSource` |
//! | [`mapping_loaded`] | `MappingLoads`, `MappingVersion` | `MappingSource` |
//! | [`mapping_refresh_failed`] | `MappingRefreshFailures` | `MappingSource` |
//! | [`jwks_refetch`] | `JwksRefetches`, `JwksRefetchFailures` | `Issuer` |
//!
//! Nothing secret is written: no token, claim, principal, header or error text; only counts,
//! the mapping version and source, and the issuer URL (public by definition).
//!
//! Emission is off until [`install`] is called, so the library, `scopegate invoke` (whose
//! stdout carries the answers) and the tests write nothing to stdout (one unit test installs
//! a buffer, to check the free functions); the Lambda entry point installs
//! [`Metrics::stdout`]. The free functions are what the request path calls: a no-op when
//! nothing is installed, one short write otherwise.
//!
//! # Example
//! ```
//! use scopegate::metrics::{Metrics, Outcome};
//! let (metrics, buffer) = Metrics::buffer("my-authorizer");
//! metrics.decision(Outcome::Allow, 420, Some(("dynamodb", 7)));
//! let line = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
//! assert!(line.contains(r#""Allow":1"#) && line.contains(r#""MappingVersion":7"#));
//! ```

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Map, Value};

use crate::refusal::Refusal;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "scopegate";

/// How one invocation ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A policy that allows the request (API Gateway answers with the integration).
    Allow,
    /// A policy that denies the request (403).
    Deny,
    /// The token was refused: the error `Unauthorized` (401), counted also by why, in the
    /// dimension `Refusal`.
    Unauthorized(Refusal),
    /// Any other error (a broken event, no mappings): 500, fail closed.
    Error,
}

impl Outcome {
    /// The metric names, in the order [`Outcome::index`] gives.
    const NAMES: [&'static str; 4] = ["Allow", "Deny", "Unauthorized", "Error"];

    /// The metric name.
    pub fn as_str(self) -> &'static str {
        Outcome::NAMES[self.index()]
    }

    fn index(self) -> usize {
        match self {
            Outcome::Allow => 0,
            Outcome::Deny => 1,
            Outcome::Unauthorized(_) => 2,
            Outcome::Error => 3,
        }
    }
}

type Sink = Box<dyn Write + Send>;

/// An EMF writer: the function name (the dimension) and where lines go.
pub struct Metrics {
    function: String,
    /// The sink, and the buffer a decision line is written into (reused: the line is the
    /// only per-invocation work here, so it allocates nothing once warm).
    sink: Mutex<(Sink, Vec<u8>)>,
    /// The constant parts of a decision line, rendered once: after the timestamp, the
    /// directive without and with the mapping version declared (the array left open), ...
    decision_directive: [String; 2],
    /// ... the second directive a refusal adds (`Unauthorized` by `Refusal`), ...
    refusal_directive: String,
    /// ... and the function name member.
    function_member: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Lines on stdout, as Lambda forwards them to CloudWatch Logs. The dimension is
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda), else `scopegate`.
    pub fn stdout() -> Metrics {
        let function =
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "scopegate".to_owned());
        Metrics::new(function, Box::new(std::io::stdout()))
    }

    /// Lines into `writer` (the benchmarks measure with a sink).
    pub fn to_writer(function: &str, writer: impl Write + Send + 'static) -> Metrics {
        Metrics::new(function.to_owned(), Box::new(writer))
    }

    /// Lines into a shared buffer (tests).
    pub fn buffer(function: &str) -> (Metrics, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let metrics = Metrics::to_writer(function, SharedBuffer(Arc::clone(&buf)));
        (metrics, buf)
    }

    fn new(function: String, sink: Sink) -> Metrics {
        let directive = |with_mapping: bool| {
            let mut definitions: Vec<Value> = Outcome::NAMES
                .iter()
                .map(|name| json!({"Name": name, "Unit": "Count"}))
                .collect();
            definitions.push(json!({"Name": "Latency", "Unit": "Microseconds"}));
            if with_mapping {
                definitions.push(json!({"Name": "MappingVersion", "Unit": "None"}));
            }
            let directive = json!({
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": definitions,
            });
            format!(r#","CloudWatchMetrics":[{directive}"#)
        };
        let by_refusal = json!({
            "Namespace": NAMESPACE,
            "Dimensions": [["FunctionName", "Refusal"]],
            "Metrics": [{"Name": "Unauthorized", "Unit": "Count"}],
        });
        Metrics {
            decision_directive: [directive(false), directive(true)],
            refusal_directive: format!(",{by_refusal}"),
            function_member: format!(r#","FunctionName":{}"#, Value::from(function.as_str())),
            function,
            sink: Mutex::new((sink, Vec::with_capacity(512))),
        }
    }

    /// One invocation's outcome, its latency in microseconds, and the mapping snapshot it was
    /// decided with (`(source, version)`: `dynamodb`, `s3` or `file`), when there was one.
    ///
    /// A refusal's line carries a second directive: `Unauthorized` again, by the dimensions
    /// `FunctionName` and `Refusal` (one of the fixed [`Refusal`] names), so that refusals can
    /// be graphed by cause while every other line keeps one dimension set. It is a directive
    /// of its own, not a second dimension set of the first, so that the other metrics are
    /// not published once per cause too.
    ///
    /// Written straight into a reused buffer from parts rendered at start: this runs on every
    /// invocation, where building a JSON value tree cost more than the rest of a cached
    /// decision. The tests parse the line and check it against the EMF rules.
    pub fn decision(&self, outcome: Outcome, latency_us: u64, mapping: Option<(&str, u64)>) {
        use std::io::Write as _;
        let timestamp = crate::clock::unix_millis();
        let mut guard = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let (sink, line) = &mut *guard;
        line.clear();
        let _ = write!(
            line,
            r#"{{"_aws":{{"Timestamp":{timestamp}{}"#,
            self.decision_directive[usize::from(mapping.is_some())]
        );
        if let Outcome::Unauthorized(_) = outcome {
            line.extend_from_slice(self.refusal_directive.as_bytes());
        }
        line.extend_from_slice(b"]}");
        line.extend_from_slice(self.function_member.as_bytes());
        for (i, name) in Outcome::NAMES.iter().enumerate() {
            let _ = write!(line, r#","{name}":{}"#, u8::from(i == outcome.index()));
        }
        if let Outcome::Unauthorized(refusal) = outcome {
            // A fixed name, never the token's text: no escaping needed.
            let _ = write!(line, r#","Refusal":"{}""#, refusal.as_str());
        }
        let _ = write!(line, r#","Latency":{latency_us}"#);
        if let Some((source, version)) = mapping {
            let _ = write!(line, r#","MappingVersion":{version},"MappingSource":"#);
            let _ = serde_json::to_writer(&mut *line, source);
        }
        line.extend_from_slice(b"}\n");
        // One write per line, so lines from concurrent invocations never interleave. A failed
        // write loses a metric, never a request.
        let _ = sink.write_all(line);
        let _ = sink.flush();
    }

    /// A mapping snapshot was loaded (at cold start or on a version change), or the fallback
    /// was taken: `source` is where it came from.
    pub fn mapping_loaded(&self, source: &str, version: u64) {
        let mut props = Map::new();
        props.insert("MappingSource".into(), Value::from(source));
        self.emit(
            &[
                ("MappingLoads", Value::from(1), "Count"),
                ("MappingVersion", Value::from(version), "None"),
            ],
            props,
        );
    }

    /// A version check or load from `source` failed (the last good snapshot, the fallback, or
    /// a fail-closed answer follows; the log says which and why).
    pub fn mapping_refresh_failed(&self, source: &str) {
        let mut props = Map::new();
        props.insert("MappingSource".into(), Value::from(source));
        self.emit(
            &[("MappingRefreshFailures", Value::from(1), "Count")],
            props,
        );
    }

    /// A token was refused because the identity provider could not be asked (introspection
    /// or key fetch failed): the authorizer failed closed on a dependency.
    pub fn idp_unavailable(&self) {
        self.emit(&[("IdpUnavailable", Value::from(1), "Count")], Map::new());
    }

    /// A DPoP proof was refused because the replay table could not be asked: the authorizer
    /// failed closed on a dependency.
    pub fn dpop_replay_unavailable(&self) {
        self.emit(
            &[("DpopReplayUnavailable", Value::from(1), "Count")],
            Map::new(),
        );
    }

    /// An answer was over API Gateway's size limit and was narrowed to its request.
    pub fn oversized(&self) {
        self.emit(&[("AnswersNarrowed", Value::from(1), "Count")], Map::new());
    }

    /// An issuer's JWKS was fetched again because a token named an unknown key (`ok`: the
    /// fetch succeeded). Not counted: the fetch at cold start.
    pub fn jwks_refetch(&self, issuer: &str, ok: bool) {
        let mut props = Map::new();
        props.insert("Issuer".into(), Value::from(issuer));
        self.emit(
            &[
                ("JwksRefetches", Value::from(1), "Count"),
                ("JwksRefetchFailures", Value::from(u8::from(!ok)), "Count"),
            ],
            props,
        );
    }

    fn emit(&self, metrics: &[(&str, Value, &str)], mut doc: Map<String, Value>) {
        let timestamp = crate::clock::unix_millis();
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit}))
            .collect();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": definitions,
                }],
            }),
        );
        doc.insert("FunctionName".into(), Value::from(self.function.as_str()));
        for (name, value, _) in metrics {
            doc.insert((*name).to_owned(), value.clone());
        }
        let mut line = serde_json::to_vec(&doc).expect("a JSON map always serializes");
        line.push(b'\n');
        // One write per line, so lines from concurrent invocations never interleave. A failed
        // write loses a metric, never a request.
        let mut guard = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let _ = guard.0.write_all(&line);
        let _ = guard.0.flush();
    }
}

struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static INSTALLED: OnceLock<Metrics> = OnceLock::new();

/// Makes `metrics` the process's metrics writer (the Lambda entry point, once at start).
/// Returns false, changing nothing, if one is installed already.
pub fn install(metrics: Metrics) -> bool {
    INSTALLED.set(metrics).is_ok()
}

/// [`Metrics::decision`] on the installed writer; nothing when none is installed.
pub fn decision(outcome: Outcome, latency_us: u64, mapping: Option<(&str, u64)>) {
    if let Some(m) = INSTALLED.get() {
        m.decision(outcome, latency_us, mapping);
    }
}

/// [`Metrics::mapping_loaded`] on the installed writer; nothing when none is installed.
pub fn mapping_loaded(source: &str, version: u64) {
    if let Some(m) = INSTALLED.get() {
        m.mapping_loaded(source, version);
    }
}

/// [`Metrics::mapping_refresh_failed`] on the installed writer; nothing when none is installed.
pub fn mapping_refresh_failed(source: &str) {
    if let Some(m) = INSTALLED.get() {
        m.mapping_refresh_failed(source);
    }
}

/// [`Metrics::idp_unavailable`] on the installed writer; nothing when none is installed.
pub fn idp_unavailable() {
    if let Some(m) = INSTALLED.get() {
        m.idp_unavailable();
    }
}

/// [`Metrics::dpop_replay_unavailable`] on the installed writer; nothing when none is
/// installed.
pub fn dpop_replay_unavailable() {
    if let Some(m) = INSTALLED.get() {
        m.dpop_replay_unavailable();
    }
}

/// [`Metrics::oversized`] on the installed writer; nothing when none is installed.
pub fn oversized() {
    if let Some(m) = INSTALLED.get() {
        m.oversized();
    }
}

/// [`Metrics::jwks_refetch`] on the installed writer; nothing when none is installed.
pub fn jwks_refetch(issuer: &str, ok: bool) {
    if let Some(m) = INSTALLED.get() {
        m.jwks_refetch(issuer, ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(buf: &Arc<Mutex<Vec<u8>>>) -> Vec<Value> {
        let bytes = buf.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The EMF rules CloudWatch applies: every declared metric and dimension is a top-level
    /// member, at most 100 metrics, a millisecond timestamp.
    fn assert_valid_emf(doc: &Value) {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert!(!directives.is_empty());
        for directive in directives {
            assert_eq!(directive["Namespace"], NAMESPACE);
            for set in directive["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(!set.is_empty() && set.len() <= 30);
                for d in set {
                    assert!(
                        doc[d.as_str().unwrap()].is_string(),
                        "dimension {d} missing: {doc}"
                    );
                }
            }
            let defs = directive["Metrics"].as_array().unwrap();
            assert!(!defs.is_empty() && defs.len() <= 100);
            for m in defs {
                assert!(
                    doc[m["Name"].as_str().unwrap()].is_number(),
                    "metric {m} missing: {doc}"
                );
            }
        }
    }

    #[test]
    fn a_decision_counts_one_outcome_and_zero_for_the_others() {
        let (m, buf) = Metrics::buffer("fn-1");
        m.decision(Outcome::Deny, 1234, Some(("s3", 9)));
        m.decision(Outcome::Unauthorized(Refusal::Expired), 50, None);
        let docs = lines(&buf);
        assert_eq!(docs.len(), 2);
        for d in &docs {
            assert_valid_emf(d);
            assert_eq!(d["FunctionName"], "fn-1");
        }
        let d = &docs[0];
        assert_eq!(
            (
                d["Allow"].as_u64(),
                d["Deny"].as_u64(),
                d["Unauthorized"].as_u64(),
                d["Error"].as_u64()
            ),
            (Some(0), Some(1), Some(0), Some(0))
        );
        assert_eq!(d["Latency"], 1234);
        assert_eq!(d["MappingVersion"], 9);
        assert_eq!(d["MappingSource"], "s3");
        // Only a refusal is counted by cause.
        assert_eq!(d["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 1);
        assert!(d.get("Refusal").is_none());
        let d = &docs[1];
        assert_eq!(d["Unauthorized"], 1);
        assert_eq!(d["Refusal"], "expired");
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][1],
            json!({"Namespace": NAMESPACE, "Dimensions": [["FunctionName", "Refusal"]],
                   "Metrics": [{"Name": "Unauthorized", "Unit": "Count"}]})
        );
        assert!(d.get("MappingVersion").is_none());
    }

    #[test]
    fn every_refusal_is_a_valid_dimension_value() {
        let (m, buf) = Metrics::buffer("fn-1");
        for r in Refusal::ALL {
            m.decision(Outcome::Unauthorized(r), 1, Some(("dynamodb", 1)));
        }
        let docs = lines(&buf);
        assert_eq!(docs.len(), Refusal::ALL.len());
        for (d, r) in docs.iter().zip(Refusal::ALL) {
            assert_valid_emf(d);
            assert_eq!(d["Refusal"], r.as_str());
        }
    }

    #[test]
    fn a_decision_line_escapes_what_it_did_not_render_itself() {
        let (m, buf) = Metrics::buffer("fn \"quoted\" \\ name");
        m.decision(Outcome::Allow, 7, Some(("s\"3", 2)));
        m.decision(Outcome::Error, 8, None);
        let docs = lines(&buf);
        docs.iter().for_each(assert_valid_emf);
        assert_eq!(docs[0]["FunctionName"], "fn \"quoted\" \\ name");
        assert_eq!(docs[0]["MappingSource"], "s\"3");
        assert_eq!(docs[1]["Error"], 1);
        // Both shapes declare exactly the metrics they carry.
        let declared = |d: &Value| {
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!((declared(&docs[0]), declared(&docs[1])), (6, 5));
    }

    #[test]
    fn mapping_and_jwks_events() {
        let (m, buf) = Metrics::buffer("fn-1");
        m.mapping_loaded("dynamodb", 3);
        m.mapping_refresh_failed("dynamodb");
        m.jwks_refetch("https://idp.example.com", false);
        m.idp_unavailable();
        let docs = lines(&buf);
        docs.iter().for_each(assert_valid_emf);
        assert_eq!(
            (
                docs[0]["MappingLoads"].as_u64(),
                docs[0]["MappingVersion"].as_u64()
            ),
            (Some(1), Some(3))
        );
        assert_eq!(docs[1]["MappingRefreshFailures"], 1);
        assert_eq!(
            (
                docs[2]["JwksRefetches"].as_u64(),
                docs[2]["JwksRefetchFailures"].as_u64()
            ),
            (Some(1), Some(1))
        );
        assert_eq!(docs[2]["Issuer"], "https://idp.example.com");
        assert_eq!(docs[3]["IdpUnavailable"], 1);
    }

    #[test]
    fn the_free_functions_write_to_the_installed_writer_only_once_it_is_installed() {
        // Other tests in this binary decide through the free functions too, so each call here
        // is told apart by a latency or issuer no other test uses.
        const BEFORE: u64 = 987_654_321;
        const AFTER: u64 = 987_654_322;
        decision(Outcome::Allow, BEFORE, None);
        let (m, buf) = Metrics::buffer("installed");
        assert!(install(m));
        decision(Outcome::Unauthorized(Refusal::BadSignature), AFTER, None);
        jwks_refetch("https://install-test.example", false);
        let (again, _) = Metrics::buffer("second");
        assert!(!install(again), "a second install must change nothing");
        decision(Outcome::Deny, AFTER, None);
        let docs = lines(&buf);
        let with_latency = |l: u64| {
            docs.iter()
                .filter(|d| d["Latency"] == l)
                .collect::<Vec<_>>()
        };
        assert!(with_latency(BEFORE).is_empty());
        let after = with_latency(AFTER);
        assert_eq!(after.len(), 2, "{docs:?}");
        assert_eq!(after[0]["Refusal"], "bad_signature");
        assert_eq!(after[1]["Deny"], 1);
        assert!(after.iter().all(|d| d["FunctionName"] == "installed"));
        let refetches = docs
            .iter()
            .filter(|d| d["Issuer"] == "https://install-test.example")
            .count();
        assert_eq!(refetches, 1);
    }
}
