//! Where the mappings live in the DynamoDB table, and how items are encoded: the key
//! scheme, the shards, generation ids, and the item structs serde_dynamo reads and writes.
//! Every item read is validated (its fields, and that its key is the one its fields give):
//! a corrupt item fails the whole load, because skipping it could drop a Deny.
//!
//! # Table layout (DynamoDB, one table, string keys `pk` / `sk`)
//!
//! ```text
//! pk = META                 sk = VERSION        version, generation, previous, shards, entries, apis, updated_at, updated_by
//! pk = G#<gen>#S#<shard>    sk = <entry key>    api, stage, method, resource, scope | scopes | nobody | claims + claim_scopes, effect, updated_at, updated_by
//! pk = HISTORY              sk = <version:020>  version, at, actor, action, summary, changes[]
//! pk = MIGRATION            sk = <id>           applied_at, actor, checksum, description
//! ```
//!
//! - The version record names the current generation. A reader reads it, then only that
//!   generation's items: an import writes a whole new generation (in batches, invisible to
//!   readers) and switches to it with one conditional write of the version record, so a reader
//!   sees the old set or the new one, never a mix, however large the import.
//! - A generation is spread over `shards` partitions by a stable hash of the entry key
//!   (FNV-1a), so a cold load is `shards` parallel, paginated Queries of exactly the current
//!   set. A Scan with a filter would read (and bill) every generation, the history and the
//!   migration records, and could not be parallelised without reading all of it; a partition
//!   per scope would need the list of scopes before the first read. Sharding also spreads an
//!   import's writes over several partitions.
//! - The entry key is `<scopes> <api> <stage> <METHOD> /<resource>`: one item per target
//!   (an Allow and a Deny of the same target are refused as a conflict anyway). `<scopes>` is
//!   the one scope, or the required scopes sorted and space-separated (all-of), or nothing
//!   (any verified token, so the key starts with a space), or `"nobody"` with its quotes (a
//!   route held for nobody; no scope holds `"`). A space cannot occur in any field
//!   and the last four fields are always there, so keys never collide. It starts with the
//!   scopes, so a shard's items are read grouped by scope. An entry that requires claims
//!   has them after the scopes as a JSON object (`orders:write {"groups":["leads"]} arn:...`):
//!   it starts with `{"`, which no scope holds, and ends where its JSON ends, so these keys
//!   never collide either.
//! - One scope is stored as `scope` (a string), as it always was; all-of and any-token as
//!   `scopes` (a list). An item with both, or neither, is corrupt.
//! - An entry that requires claims is stored with `claims` (a map of claim name to the list
//!   of values, each a string, number or boolean) and its scopes as `claim_scopes` (a list,
//!   maybe empty), never as `scope` or `scopes`: an authorizer older than claims finds none
//!   of the fields it knows, reads the item as corrupt and fails its load closed, where one
//!   that read `scope` alone would grant the entry to every token with that scope.
//! - `apis` is the map of declared API kinds (`{"arn:...": "http"}`, see
//!   [`ApiKinds`](crate::mapping::ApiKinds)), absent when none is declared. Every change
//!   writes it in the same conditional update that bumps the version (with the entries it
//!   comes with). An authorizer older than the field ignores it in the version record, and
//!   reads every API as before; it cannot read an S3 snapshot that carries `apis` (its
//!   document reader refuses unknown fields), so deploy the authorizer before declaring a
//!   kind (docs/deploying.md).
//! - The previous generation is kept until the next switch, so that a reader that started on it
//!   finishes; a reader re-reads the version record after its Queries and retries when its
//!   generation is neither current nor previous (it may have been deleted under it).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::from_item;

use super::error::StoreError;
use super::records::{Head, HistoryRecord, MigrationRecord, SnapshotDigest};
use crate::mapping::api_kinds::ApiKinds;
use crate::mapping::entry::{Mapping, Method, ResourcePath, Scope, Stage};
use crate::mapping::requirement::Requirement;
use crate::policy::{ApiArn, Effect};

/// Partitions per generation for new tables (recorded in the version record, so it can
/// change without breaking readers of older generations).
pub const DEFAULT_SHARDS: u32 = 8;

/// The most entry changes one admin edit writes in a single transaction (DynamoDB allows 100
/// items per transaction; the version record and the history record take two). Larger
/// changes go through a new generation.
pub const MAX_TRANSACTION_EDITS: usize = 98;

/// DynamoDB's limit on a sort key, in bytes: [`entry_key`] must fit it.
pub const MAX_SORT_KEY_BYTES: usize = 1024;

/// The item key of an entry within its generation (see the module docs: the table layout).
pub fn entry_key(m: &Mapping) -> String {
    // Not the requirement's Display: `(any token)` could also be two scopes.
    let scopes: Vec<&str> = m.scopes.scopes().iter().map(|s| s.as_str()).collect();
    let claims = match claims_json(&m.scopes) {
        Some(json) => format!(" {json}"),
        None => String::new(),
    };
    format!(
        "{}{claims} {} {} {} /{}",
        scopes.join(" "),
        m.api,
        m.stage,
        m.method,
        m.resource
    )
}

/// The shard of an entry key: FNV-1a, stable across versions and platforms.
pub fn shard_of(key: &str, shards: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(shards.max(1))) as u32
}

/// The partition key of a generation's shard.
pub fn shard_pk(generation: &str, shard: u32) -> String {
    format!("G#{generation}#S#{shard:03}")
}

/// A fresh generation id for the change that makes `version`: the version, for reading, and
/// random bits, so that two imports racing for the same version never share a generation.
pub fn new_generation(version: u64) -> String {
    let mut random = [0u8; 6];
    // A failing system random is not survivable anyway; fall back to the time.
    if aws_lc_rs::rand::fill(&mut random).is_err() {
        let millis = crate::clock::unix_millis() as u32;
        random[..4].copy_from_slice(&millis.to_be_bytes());
    }
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{version}-{hex}")
}

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(super) const META_PK: &str = "META";
pub(super) const META_SK: &str = "VERSION";
pub(super) const HISTORY_PK: &str = "HISTORY";
pub(super) const MIGRATION_PK: &str = "MIGRATION";

/// The version record as stored.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MetaItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) version: u64,
    pub(super) generation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) previous: Option<String>,
    pub(super) shards: u32,
    pub(super) entries: u64,
    pub(super) updated_at: String,
    pub(super) updated_by: String,
    /// The version of the S3 snapshot whose digest follows (see [`Head::snapshot`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) snapshot_version: Option<u64>,
    /// SHA-256 of that snapshot's bytes, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) snapshot_sha256: Option<String>,
    /// The declared API kinds; validated as it is read (a bad ARN or kind fails the load).
    #[serde(default, skip_serializing_if = "ApiKinds::is_empty")]
    pub(super) apis: ApiKinds,
}

impl From<MetaItem> for Head {
    fn from(m: MetaItem) -> Head {
        Head {
            version: m.version,
            generation: m.generation,
            previous: m.previous,
            shards: m.shards,
            entries: m.entries,
            updated_at: m.updated_at,
            updated_by: m.updated_by,
            snapshot: m
                .snapshot_version
                .zip(m.snapshot_sha256)
                .map(|(version, sha256)| SnapshotDigest { version, sha256 }),
            apis: m.apis,
        }
    }
}

/// The claims a requirement holds as one compact JSON object, `{"groups":["leads"]}`, or
/// none.
fn claims_json(r: &Requirement) -> Option<String> {
    (!r.claims().is_empty())
        .then(|| serde_json::to_string(&stored_claims(r)).expect("a map of JSON values serializes"))
}

/// The claims a requirement holds, as stored: claim name -> its values.
fn stored_claims(r: &Requirement) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for c in r.claims() {
        out.entry(c.name().as_str().to_owned())
            .or_default()
            .push(c.value().to_json());
    }
    out
}

/// A mapping entry as stored: the canonical fields, typed so that reading validates them,
/// plus keys and audit fields.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct EntryItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) api: ApiArn,
    pub(super) stage: Stage,
    pub(super) method: Method,
    pub(super) resource: ResourcePath,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) scope: Option<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) scopes: Option<Vec<Scope>>,
    /// `true` for a route held for nobody ([`Requirement::nobody`]), which has neither
    /// `scope` nor `scopes`. An authorizer older than this field reads such an item as
    /// corrupt and fails its load closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) nobody: Option<bool>,
    /// The claims an entry requires (see the module docs), with its scopes in
    /// `claim_scopes` and neither `scope` nor `scopes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) claims: Option<BTreeMap<String, Vec<serde_json::Value>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) claim_scopes: Option<Vec<Scope>>,
    pub(super) effect: Effect,
    pub(super) updated_at: String,
    pub(super) updated_by: String,
}

impl EntryItem {
    pub(super) fn new(m: &Mapping, generation: &str, shards: u32, at: &str, by: &str) -> EntryItem {
        let sk = entry_key(m);
        let with_claims = !m.scopes.claims().is_empty();
        EntryItem {
            pk: shard_pk(generation, shard_of(&sk, shards)),
            sk,
            api: m.api.clone(),
            stage: m.stage.clone(),
            method: m.method,
            resource: m.resource.clone(),
            scope: m.scopes.single().filter(|_| !with_claims).cloned(),
            scopes: match m.scopes.single() {
                _ if with_claims => None,
                Some(_) => None,
                None if m.scopes.is_nobody() => None,
                None => Some(m.scopes.scopes().to_vec()),
            },
            nobody: m.scopes.is_nobody().then_some(true),
            claims: with_claims.then(|| stored_claims(&m.scopes)),
            claim_scopes: with_claims.then(|| m.scopes.scopes().to_vec()),
            effect: m.effect,
            updated_at: at.to_owned(),
            updated_by: by.to_owned(),
        }
    }

    /// The requirement the item holds: `scope`, `scopes`, `nobody: true` or `claims` with
    /// `claim_scopes`, exactly one of them.
    fn requirement(&self) -> Result<Requirement, String> {
        match (&self.claims, &self.claim_scopes) {
            (None, None) => {}
            (Some(claims), Some(scopes)) => {
                if self.scope.is_some() || self.scopes.is_some() || self.nobody.is_some() {
                    return Err(
                        "it has \"claims\" beside \"scope\", \"scopes\" or \"nobody\"".to_owned(),
                    );
                }
                if claims.is_empty() {
                    return Err("its \"claims\" is empty".to_owned());
                }
                let raw: serde_json::Map<String, serde_json::Value> = claims
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
                    .collect();
                let claims =
                    crate::mapping::entry::claim_matches(raw).map_err(|e| e.to_string())?;
                return Requirement::all_of(scopes.iter().cloned())
                    .and_then(|r| r.with_claims(claims))
                    .map_err(|e| e.to_string());
            }
            _ => {
                return Err(
                    "it has one of \"claims\" and \"claim_scopes\" without the other".to_owned(),
                )
            }
        }
        match (&self.scope, &self.scopes, self.nobody) {
            (Some(one), None, None) => Ok(Requirement::one(one.clone())),
            (None, Some(all), None) => {
                Requirement::all_of(all.iter().cloned()).map_err(|e| e.to_string())
            }
            (None, None, Some(true)) => Ok(Requirement::nobody()),
            (None, None, None | Some(false)) => {
                Err("it has none of \"scope\", \"scopes\" and \"nobody\"".to_owned())
            }
            _ => Err("it has more than one of \"scope\", \"scopes\" and \"nobody\"".to_owned()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct HistoryItem {
    pub(super) pk: String,
    pub(super) sk: String,
    #[serde(flatten)]
    pub(super) record: HistoryRecord,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MigrationItem {
    pub(super) pk: String,
    pub(super) sk: String,
    #[serde(flatten)]
    pub(super) record: MigrationRecord,
}

pub(super) fn item_name(item: &Item) -> String {
    let get = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("item pk={:?} sk={:?}", get("pk"), get("sk"))
}

pub(super) fn corrupt(item: &Item, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: item_name(item),
        reason: reason.to_string(),
    }
}

/// Decodes one entry item as the cold load does (see `parse_entry`): public for the
/// `mapping` fuzz target, which feeds it arbitrary items.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the item and what is wrong with it.
pub fn decode_entry(
    item: HashMap<String, AttributeValue>,
    generation: &str,
    shards: u32,
) -> Result<Mapping, StoreError> {
    parse_entry(item, generation, shards)
}

/// Parses one entry item, checking that its key is the one its fields give (an item whose
/// fields were edited by hand into another entry's key is refused).
pub(super) fn parse_entry(
    item: Item,
    generation: &str,
    shards: u32,
) -> Result<Mapping, StoreError> {
    let name = item_name(&item);
    let bad = |reason: String| StoreError::Corrupt {
        what: name.clone(),
        reason,
    };
    let parsed: EntryItem = from_item(item).map_err(|e| bad(e.to_string()))?;
    let mapping = parsed.to_mapping().map_err(bad)?;
    let expected_sk = entry_key(&mapping);
    if parsed.sk != expected_sk {
        return Err(bad(format!(
            "its key does not match its fields (expected sk {expected_sk:?})"
        )));
    }
    let expected_pk = shard_pk(generation, shard_of(&expected_sk, shards));
    if parsed.pk != expected_pk {
        return Err(bad(format!(
            "it is in the wrong partition (expected {expected_pk:?})"
        )));
    }
    Ok(mapping)
}

impl EntryItem {
    pub(super) fn to_mapping(&self) -> Result<Mapping, String> {
        let scopes = self.requirement()?;
        if scopes.is_nobody() && (self.effect == Effect::Deny || !self.resource.is_route()) {
            return Err("only an Allow of a route can be held for nobody".to_owned());
        }
        Ok(Mapping {
            api: self.api.clone(),
            stage: self.stage.clone(),
            method: self.method,
            resource: self.resource.clone(),
            scopes,
            effect: self.effect,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::store::testing::m;

    #[test]
    fn entry_keys_are_unambiguous_and_shards_stable() {
        let a = m("a#b", "c", "Allow");
        assert_eq!(
            entry_key(&a),
            "a#b arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5 dev GET /c"
        );
        assert_ne!(entry_key(&m("a", "b#c", "Allow")), entry_key(&a));
        assert_eq!(entry_key(&m("s", "/", "Allow")).chars().last(), Some('/'));
        // Pinned: a reader and a writer built from different versions must agree.
        assert_eq!(shard_of("", 8), (0xcbf2_9ce4_8422_2325u64 % 8) as u32);
        assert_eq!(shard_of("abc", 1), 0);
        let spread: std::collections::HashSet<u32> =
            (0..200).map(|i| shard_of(&format!("k{i}"), 8)).collect();
        assert_eq!(spread.len(), 8);
        assert_eq!(shard_pk("7-ab", 3), "G#7-ab#S#003");
    }

    /// An entry that requires claims round-trips, has a key of its own, and holds neither
    /// `scope` nor `scopes`: an authorizer older than claims reads it as corrupt (fails
    /// closed) instead of granting it to every token with the scope.
    #[test]
    fn claim_items_round_trip_and_are_corrupt_to_an_older_reader() {
        use serde_dynamo::aws_sdk_dynamodb_1::to_item;
        let api = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
        let entry = |rest: &str| -> Mapping {
            serde_json::from_str(&format!(
                r#"{{"api":"{api}","stage":"dev","method":"GET","resource":"r",{rest}}}"#
            ))
            .unwrap()
        };
        let plain = entry(r#""scope":"a""#);
        let claims = entry(
            r#""scope":"a","claims":{"groups":["x y","b"],"/realm_access/roles":["r"],"mfa":[true],"level":[3]}"#,
        );
        let only_claims = entry(r#""scopes":[],"claims":{"groups":["b"]}"#);
        assert_eq!(
            entry_key(&claims),
            format!(
                r#"a {{"/realm_access/roles":["r"],"groups":["b","x y"],"level":[3],"mfa":[true]}} {api} dev GET /r"#
            )
        );
        assert_eq!(
            entry_key(&only_claims),
            format!(r#" {{"groups":["b"]}} {api} dev GET /r"#)
        );
        assert_ne!(entry_key(&claims), entry_key(&plain));
        for m in [&claims, &only_claims] {
            let item: Item = to_item(EntryItem::new(m, "g", 4, "t", "me")).unwrap();
            assert!(
                !item.contains_key("scope") && !item.contains_key("scopes"),
                "{m}"
            );
            assert!(item.contains_key("claims") && item.contains_key("claim_scopes"));
            assert_eq!(parse_entry(item.clone(), "g", 4).unwrap(), *m);
            // What an older reader does: none of scope, scopes and nobody is corrupt.
            let mut old = item;
            old.remove("claims");
            old.remove("claim_scopes");
            let err = parse_entry(old, "g", 4).unwrap_err().to_string();
            assert!(err.contains("none of"), "{err}");
        }
        // Half of the pair, or claims beside scope, is corrupt.
        let item: Item = to_item(EntryItem::new(&claims, "g", 4, "t", "me")).unwrap();
        let mut half = item.clone();
        half.remove("claim_scopes");
        assert!(parse_entry(half, "g", 4).is_err());
        let mut both = item;
        both.insert("scope".into(), AttributeValue::S("a".into()));
        assert!(parse_entry(both, "g", 4).is_err());
    }

    #[test]
    fn all_of_and_any_token_items_round_trip_and_one_scope_stays_a_string() {
        use serde_dynamo::aws_sdk_dynamodb_1::to_item;
        let api = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
        let entry = |scopes: &str| -> Mapping {
            serde_json::from_str(&format!(
                r#"{{"api":"{api}","stage":"dev","method":"GET","resource":"r",{scopes}}}"#
            ))
            .unwrap()
        };
        let one = entry(r#""scope":"a""#);
        let all = entry(r#""scopes":["b","a"]"#);
        let any = entry(r#""scopes":[]"#);
        assert_eq!(entry_key(&all), format!("a b {api} dev GET /r"));
        assert_eq!(entry_key(&any), format!(" {api} dev GET /r"));
        assert_ne!(entry_key(&any), entry_key(&one));
        // Two scopes that read like the any-token label are another key.
        assert_ne!(
            entry_key(&entry(r#""scopes":["(any","token)"]"#)),
            entry_key(&any)
        );
        let nobody = entry(r#""nobody":true"#);
        assert_eq!(entry_key(&nobody), format!("\"nobody\" {api} dev GET /r"));
        for m in [&one, &all, &any, &nobody] {
            let item: Item = to_item(EntryItem::new(m, "g", 4, "t", "me")).unwrap();
            assert_eq!(item.contains_key("nobody"), m.scopes.is_nobody(), "{m}");
            assert_eq!(
                item.contains_key("scope"),
                m.scopes.single().is_some(),
                "{m}"
            );
            assert_eq!(parse_entry(item, "g", 4).unwrap(), *m);
        }
        // An item with both fields, or neither, is corrupt: never read as "any token".
        let mut both: Item = to_item(EntryItem::new(&one, "g", 4, "t", "me")).unwrap();
        both.insert(
            "scopes".into(),
            AttributeValue::L(vec![AttributeValue::S("a".into())]),
        );
        let err = parse_entry(both, "g", 4).unwrap_err().to_string();
        assert!(err.contains("more than one"), "{err}");
        let mut neither: Item = to_item(EntryItem::new(&one, "g", 4, "t", "me")).unwrap();
        neither.remove("scope");
        let err = parse_entry(neither, "g", 4).unwrap_err().to_string();
        assert!(err.contains("none of"), "{err}");
        // `nobody` beside a scope, or `nobody: false` alone, is corrupt too.
        let mut nobody_and_scope: Item = to_item(EntryItem::new(&one, "g", 4, "t", "me")).unwrap();
        nobody_and_scope.insert("nobody".into(), AttributeValue::Bool(true));
        let err = parse_entry(nobody_and_scope, "g", 4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than one"), "{err}");
        let mut nobody_false: Item = to_item(EntryItem::new(&nobody, "g", 4, "t", "me")).unwrap();
        nobody_false.insert("nobody".into(), AttributeValue::Bool(false));
        let err = parse_entry(nobody_false, "g", 4).unwrap_err().to_string();
        assert!(err.contains("none of"), "{err}");
    }

    #[test]
    fn generations_are_unique() {
        let a = new_generation(5);
        assert!(a.starts_with("5-") && a.len() == 14, "{a}");
        assert_ne!(a, new_generation(5));
    }
}
