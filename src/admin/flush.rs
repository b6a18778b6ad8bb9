//! Flushing API Gateway's authorizer cache after a mapping change that takes something away.
//!
//! API Gateway keeps a token's policy for the authorizer's TTL (`ReauthorizeEvery`, up to an
//! hour), so a removed grant or a new Deny would only bite when that token's cached policy
//! expires. FlushStageAuthorizersCache (REST APIs: `DELETE
//! /restapis/{id}/stages/{stage}/cache/authorizers`) drops every cached policy of a stage,
//! so the next request of every token is decided again, from the changed mappings (which warm
//! containers pick up within `SCOPEGATE_MAPPING_TTL_SECONDS`).
//!
//! What it does not cover: a token revoked at the identity provider still lives out its
//! cached policy (and its `exp`); introspection with a short TTL is the answer there
//! (docs/caching.md).

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use aws_sdk_apigateway::Client;
use serde::Serialize;

use crate::config::{ConfigError, MAPPING_TTL_SECONDS};
use crate::mapping::store::aws::AwsConfig;
use crate::mapping::store::sdk::service;
use crate::mapping::store::{Diff, StoreError};
use crate::mapping::{Mapping, MappingError, Stage};
use crate::policy::{ApiArn, Effect};

/// A stage whose authorizer cache a change calls for flushing: `*` stands for every stage
/// of the API, listed with GetStages when flushing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StageTarget {
    /// The API.
    pub api: ApiArn,
    /// The stage, or `*`.
    pub stage: Stage,
}

impl StageTarget {
    /// `--api` and `--stage` of `scopegate flush-cache`, validated as a mapping's are.
    ///
    /// # Errors
    /// The ARN's or the stage's problem.
    pub fn parse(api: &str, stage: &str) -> Result<StageTarget, MappingError> {
        Ok(StageTarget {
            api: ApiArn::parse(api).map_err(MappingError::Api)?,
            stage: Stage::new(stage)?,
        })
    }
}

impl std::fmt::Display for StageTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} stage {}", self.api, self.stage.as_str())
    }
}

/// The stages a change must flush so that nobody keeps what it took away: those of every
/// Allow removed, every Deny added, and every effect turned from Allow to Deny. A change
/// that only grants more needs none: a cached policy that lacks a new grant fails closed
/// until it expires. A change of an API's declared kind flushes every stage of that API:
/// its policies follow other routing rules (a REST API's slash twins are gone on an HTTP
/// API).
pub fn stages_to_flush(diff: &Diff) -> BTreeSet<StageTarget> {
    let target = |m: &Mapping| StageTarget {
        api: m.api.clone(),
        stage: m.stage.clone(),
    };
    let removed = diff.removed.iter().filter(|m| m.effect == Effect::Allow);
    let added = diff.added.iter().filter(|m| m.effect == Effect::Deny);
    let narrowed = diff
        .changed
        .iter()
        .filter(|(old, new)| old.effect == Effect::Allow && new.effect == Effect::Deny)
        .map(|(_, new)| new);
    let kinds = diff.kinds.iter().map(|k| StageTarget {
        api: k.api.clone(),
        stage: Stage::new("*").expect("`*` is a stage pattern"),
    });
    removed
        .chain(added)
        .chain(narrowed)
        .map(target)
        .chain(kinds)
        .collect()
}

/// What flushing one stage did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flushed {
    /// The API.
    pub api: ApiArn,
    /// The stage (never `*`: those are listed first).
    pub stage: String,
    /// `None` when flushed (or, in a dry run, when it would be), else why not.
    pub error: Option<String>,
}

/// An API Gateway client that flushes stages' authorizer caches.
#[derive(Debug, Clone)]
pub struct CacheFlusher {
    aws: AwsConfig,
}

impl CacheFlusher {
    /// A flusher with these AWS settings. Each API is asked in its own ARN's region.
    pub fn new(aws: AwsConfig) -> CacheFlusher {
        CacheFlusher { aws }
    }

    fn client(&self, api: &ApiArn) -> Client {
        let conf = aws_sdk_apigateway::config::Builder::from(&self.aws.sdk)
            .region(aws_sdk_apigateway::config::Region::new(
                api.region().to_owned(),
            ))
            .build();
        Client::from_conf(conf)
    }

    /// The stages `target` names: itself, or for `*` every stage of the API (GetStages).
    ///
    /// # Errors
    /// [`StoreError::Service`] when GetStages fails.
    pub async fn stages(&self, target: &StageTarget) -> Result<Vec<String>, StoreError> {
        if !target.stage.is_any() {
            return Ok(vec![target.stage.as_str().to_owned()]);
        }
        let out = self
            .client(&target.api)
            .get_stages()
            .rest_api_id(target.api.api_id())
            .send()
            .await
            .map_err(service("apigateway:GetStages"))?;
        Ok(out
            .item
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.stage_name)
            .collect())
    }

    /// Flushes the authorizer cache of one stage.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn flush(&self, api: &ApiArn, stage: &str) -> Result<(), StoreError> {
        self.client(api)
            .flush_stage_authorizers_cache()
            .rest_api_id(api.api_id())
            .stage_name(stage)
            .send()
            .await
            .map_err(service("apigateway:FlushStageAuthorizersCache"))?;
        Ok(())
    }

    /// Flushes every stage `targets` name (`*` listed first), or with `dry_run` only lists
    /// them. Every failure is reported in its row; none stops the others.
    pub async fn flush_all(&self, targets: &BTreeSet<StageTarget>, dry_run: bool) -> Vec<Flushed> {
        let mut out = Vec::new();
        for target in targets {
            let stages = match self.stages(target).await {
                Ok(stages) => stages,
                Err(e) => {
                    out.push(Flushed {
                        api: target.api.clone(),
                        stage: target.stage.as_str().to_owned(),
                        error: Some(e.to_string()),
                    });
                    continue;
                }
            };
            for stage in stages {
                let error = if dry_run {
                    None
                } else {
                    self.flush(&target.api, &stage)
                        .await
                        .err()
                        .map(|e| e.to_string())
                };
                out.push(Flushed {
                    api: target.api.clone(),
                    stage,
                    error,
                });
            }
        }
        out
    }
}

/// What flushes stages' authorizer caches: API Gateway ([`CacheFlusher`]), or in tests a fake
/// that records when it was asked.
pub trait StageFlusher: Sync {
    /// Flushes every stage `targets` name, or with `dry_run` only lists them; one row each.
    fn flush_stages(
        &self,
        targets: &BTreeSet<StageTarget>,
        dry_run: bool,
    ) -> impl Future<Output = Vec<Flushed>> + Send;
}

impl StageFlusher for CacheFlusher {
    fn flush_stages(
        &self,
        targets: &BTreeSet<StageTarget>,
        dry_run: bool,
    ) -> impl Future<Output = Vec<Flushed>> + Send {
        self.flush_all(targets, dry_run)
    }
}

/// What the second flush waits beyond the function's `SCOPEGATE_MAPPING_TTL_SECONDS`: the
/// authorizer's version check (3 s at most) and a reload of the set.
pub const RELOAD_MARGIN: Duration = Duration::from_secs(5);

/// How long after the first flush the second must run so that every warm container of a
/// function whose mapping TTL is `mapping_ttl_secs` has the change: the TTL and
/// [`RELOAD_MARGIN`].
pub fn second_flush_after(mapping_ttl_secs: u64) -> Duration {
    Duration::from_secs(mapping_ttl_secs) + RELOAD_MARGIN
}

/// What [`flush_twice`] tells its caller, as it happens.
#[derive(Debug)]
pub enum FlushRound<'a> {
    /// A round of flushes (or, in a dry run, of stages that would be flushed).
    Done {
        /// One row per stage.
        rows: &'a [Flushed],
        /// Whether it only listed them.
        dry_run: bool,
    },
    /// The first round is done; the second runs after this long.
    Waiting(Duration),
}

/// Flushes `targets` at once and again after `wait` (see [`second_flush_after`]), which is
/// worked out only once the first round is done (it may ask Lambda for the function's TTL,
/// which must not delay the first flush); a dry run lists them once. Twice, because a request that arrives just after the first flush may reach
/// a warm container that has not yet checked the mappings version, and its answer, with the
/// old grant, would be cached again for the authorizer's whole TTL; once every container has
/// the new version, the second flush drops what was cached meanwhile.
///
/// The wait is on tokio's clock, so tests run it under paused time. Dropping the future
/// during the wait (Ctrl-C) skips the second round; a failed row in the first round does not.
pub async fn flush_twice<F: StageFlusher>(
    flusher: &F,
    targets: &BTreeSet<StageTarget>,
    dry_run: bool,
    wait: impl Future<Output = Duration>,
    mut report: impl FnMut(FlushRound<'_>),
) {
    if targets.is_empty() {
        return;
    }
    let rows = flusher.flush_stages(targets, dry_run).await;
    report(FlushRound::Done {
        rows: &rows,
        dry_run,
    });
    if dry_run {
        return;
    }
    let wait = wait.await;
    report(FlushRound::Waiting(wait));
    tokio::time::sleep(wait).await;
    let rows = flusher.flush_stages(targets, false).await;
    report(FlushRound::Done {
        rows: &rows,
        dry_run: false,
    });
}

/// Why a function's mapping TTL could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FunctionTtlError {
    /// Lambda's GetFunctionConfiguration failed (no such function, no permission, ...).
    #[error(transparent)]
    Service(#[from] StoreError),
    /// The function's `SCOPEGATE_MAPPING_TTL_SECONDS` is not one it would start with.
    #[error("the function's {0}")]
    Setting(#[from] ConfigError),
}

/// The `SCOPEGATE_MAPPING_TTL_SECONDS` a deployed authorizer function runs with (its default
/// when the function does not set it), from Lambda's GetFunctionConfiguration: the TTL that
/// decides when its warm containers have a change, which the operator's own environment does
/// not tell. `function` is a name (asked in `region`, the flushed API's: an authorizer is in
/// its API's region) or an ARN (asked in its own region); a name without a qualifier reads
/// `$LATEST`.
///
/// # Errors
/// [`FunctionTtlError`].
pub async fn function_mapping_ttl(
    aws: &AwsConfig,
    function: &str,
    region: &str,
) -> Result<u64, FunctionTtlError> {
    // arn:aws:lambda:REGION:ACCOUNT:function:NAME
    let region = function
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(2))
        .filter(|r| !r.is_empty())
        .unwrap_or(region);
    let conf = aws_sdk_lambda::config::Builder::from(&aws.sdk)
        .region(aws_sdk_lambda::config::Region::new(region.to_owned()));
    let out = aws_sdk_lambda::Client::from_conf(conf.build())
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(service("lambda:GetFunctionConfiguration"))?;
    let vars = out
        .environment
        .and_then(|e| e.variables)
        .unwrap_or_default();
    Ok(MAPPING_TTL_SECONDS.number_from(|name| vars.get(name).cloned())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::testing::API;

    fn m(stage: &str, effect: &str) -> Mapping {
        serde_json::from_value(serde_json::json!({
            "api": API, "stage": stage, "method": "GET", "resource": "x",
            "scope": "s", "effect": effect,
        }))
        .unwrap()
    }

    fn stages(diff: &Diff) -> Vec<String> {
        stages_to_flush(diff)
            .into_iter()
            .map(|t| t.stage.as_str().to_owned())
            .collect()
    }

    #[test]
    fn only_what_takes_a_grant_away_is_flushed() {
        let none = Diff {
            added: vec![m("a", "Allow")],
            removed: vec![m("b", "Deny")],
            changed: vec![(m("c", "Deny"), m("c", "Allow"))],
            unchanged: 3,
            kinds: Vec::new(),
        };
        assert_eq!(stages(&none), Vec::<String>::new(), "grants more only");
        let some = Diff {
            added: vec![m("d", "Deny")],
            removed: vec![m("e", "Allow"), m("*", "Allow")],
            changed: vec![(m("f", "Allow"), m("f", "Deny"))],
            unchanged: 0,
            kinds: Vec::new(),
        };
        assert_eq!(stages(&some), ["*", "d", "e", "f"]);
        let kind = Diff::default().with_kinds(
            &crate::mapping::ApiKinds::new(),
            &[(ApiArn::parse(API).unwrap(), crate::policy::ApiKind::Http)]
                .into_iter()
                .collect(),
        );
        assert_eq!(stages(&kind), ["*"], "a kind change flushes the API");
    }

    #[test]
    fn targets_are_validated() {
        assert!(StageTarget::parse(API, "dev").is_ok());
        assert!(StageTarget::parse(API, "*").is_ok());
        assert!(StageTarget::parse(API, "de v").is_err());
        assert!(StageTarget::parse(&format!("{API}/dev"), "dev").is_err());
    }

    /// Records when (on tokio's clock) and how it was asked; the first round's rows fail.
    #[derive(Default)]
    struct Recording {
        calls: std::sync::Mutex<Vec<(tokio::time::Instant, bool)>>,
    }

    impl StageFlusher for Recording {
        fn flush_stages(
            &self,
            targets: &BTreeSet<StageTarget>,
            dry_run: bool,
        ) -> impl Future<Output = Vec<Flushed>> + Send {
            let mut calls = self.calls.lock().unwrap();
            let first = calls.is_empty();
            calls.push((tokio::time::Instant::now(), dry_run));
            let rows = targets
                .iter()
                .map(|t| Flushed {
                    api: t.api.clone(),
                    stage: t.stage.as_str().to_owned(),
                    error: first.then(|| "throttled".to_owned()),
                })
                .collect();
            std::future::ready(rows)
        }
    }

    fn one_target() -> BTreeSet<StageTarget> {
        BTreeSet::from([StageTarget::parse(API, "dev").unwrap()])
    }

    #[tokio::test(start_paused = true)]
    async fn the_second_flush_runs_the_function_ttl_and_the_margin_after_the_first() {
        let flusher = Recording::default();
        let start = tokio::time::Instant::now();
        let wait = second_flush_after(7);
        assert_eq!(wait, Duration::from_secs(12));
        let mut events = Vec::new();
        flush_twice(&flusher, &one_target(), false, async { wait }, |e| {
            events.push(match e {
                FlushRound::Done { rows, dry_run } => {
                    format!("done {} {dry_run} {:?}", rows.len(), rows[0].error)
                }
                FlushRound::Waiting(w) => format!("waiting {w:?}"),
            })
        })
        .await;
        let calls = flusher.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2, "a failed first round still gets its second");
        assert_eq!(calls[0], (start, false));
        assert_eq!(
            calls[1],
            (start + wait, false),
            "exactly the wait, on tokio's clock"
        );
        assert_eq!(
            events,
            [
                r#"done 1 false Some("throttled")"#,
                "waiting 12s",
                "done 1 false None"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_dry_run_lists_once_and_nothing_to_flush_asks_nothing() {
        let flusher = Recording::default();
        flush_twice(
            &flusher,
            &one_target(),
            true,
            async { second_flush_after(60) },
            |_| {},
        )
        .await;
        let calls = flusher.calls.lock().unwrap().clone();
        assert_eq!(calls, [(calls[0].0, true)]);
        let flusher = Recording::default();
        flush_twice(
            &flusher,
            &BTreeSet::new(),
            false,
            async { second_flush_after(60) },
            |_| {},
        )
        .await;
        assert!(flusher.calls.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_flush_during_the_wait_skips_the_second_round() {
        let flusher = Recording::default();
        let wait = second_flush_after(60);
        let targets = one_target();
        let run = flush_twice(&flusher, &targets, false, async { wait }, |_| {});
        // Ctrl-C a second before the second round.
        let cut = tokio::time::timeout(wait - Duration::from_secs(1), run).await;
        assert!(cut.is_err());
        assert_eq!(flusher.calls.lock().unwrap().len(), 1);
    }
}
