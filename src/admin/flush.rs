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

use aws_sdk_apigateway::Client;
use serde::Serialize;

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
}
