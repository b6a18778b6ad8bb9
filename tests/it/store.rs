//! The DynamoDB store and the S3 snapshot against a LocalStack-compatible endpoint (moto by
//! default, or SCOPEGATE_TEST_AWS_ENDPOINT: `.ci/run` runs `cargo test --test it store::`
//! against real LocalStack). Every test has its own table and bucket.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use scopegate::admin::migrate;
use scopegate::admin::{Admin, AdminError, Filter, Target};
use scopegate::mapping::file;
use scopegate::mapping::store::aws::AwsOptions;
use scopegate::mapping::store::Published;
use scopegate::mapping::store::{ChangeNote, Edit, MappingWriter as _, StoreError};
use scopegate::mapping::{ApiKinds, Mapping};

use crate::support::emulator::{
    unique_name, AwsEmulator, ACCESS_KEY, ENDPOINT_ENV, REGION, SECRET_KEY,
};
use crate::support::{free_port, ChildGuard};

#[path = "store_cli.rs"]
mod cli;
#[path = "grant_claims.rs"]
mod grant_claims;

/// One emulator for the whole test binary (a moto server costs ~95 MB): tests isolate
/// themselves by table and bucket names. The moto child exits with the test process.
pub async fn emulator() -> &'static AwsEmulator {
    static EMU: tokio::sync::OnceCell<AwsEmulator> = tokio::sync::OnceCell::const_new();
    EMU.get_or_init(AwsEmulator::start).await
}

/// moto's server, with every request run under one lock. moto is not safe for concurrent
/// transactions: a cancelled TransactWriteItems restores a copy of the whole table taken
/// before it started, wiping whatever other requests committed meanwhile (moto 5.2.5,
/// `dynamodb/models/__init__.py`, `transact_write_items`). DynamoDB and DynamoDB Local
/// (LocalStack) isolate transactions; this makes moto do the same, for the concurrency test.
const SERIALIZED_MOTO: &str = "\
import os, sys, threading
def exit_with_parent():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=exit_with_parent, daemon=True).start()
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def serialized(environ, start_response):
    with lock:
        return list(app(environ, start_response))
run_simple('127.0.0.1', int(sys.argv[1]), serialized, threaded=True, request_handler=MotoRequestHandler)
";

/// An endpoint whose transactions are isolated: SCOPEGATE_TEST_AWS_ENDPOINT when set, else a
/// [`SERIALIZED_MOTO`] of this test's own (stopped when the guard drops).
pub async fn isolated_endpoint() -> (String, Option<ChildGuard>) {
    if let Ok(e) = std::env::var(ENDPOINT_ENV) {
        if !e.trim().is_empty() {
            return (e.trim().trim_end_matches('/').to_owned(), None);
        }
    }
    let python = crate::support::repo_root().join(".venv-emu/bin/python");
    let port = free_port();
    let mut command = std::process::Command::new(&python);
    command
        .args(["-c", SERIALIZED_MOTO, &port.to_string()])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("MOTO_PORT", port.to_string());
    let mut child = ChildGuard::spawn(command, None);
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = crate::support::http_client();
    let deadline = std::time::Instant::now() + crate::support::START_DEADLINE;
    loop {
        if let Some(status) = child.try_wait() {
            panic!("serialized moto exited ({status})\n{}", child.report());
        }
        if matches!(http.get(format!("{endpoint}/moto-api/")).send().await, Ok(r) if r.status().is_success())
        {
            return (endpoint, Some(child));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serialized moto not ready\n{}",
            child.report()
        );
        // The poll interval of a readiness loop with a deadline.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SDK options for `endpoint`, with the emulators' credentials and region.
pub fn aws(endpoint: &str) -> AwsOptions {
    AwsOptions {
        region: Some(REGION.to_owned()),
        endpoint_url: Some(endpoint.to_owned()),
        static_credentials: Some((ACCESS_KEY.to_owned(), SECRET_KEY.to_owned())),
        attempt_timeout: Some(Duration::from_secs(20)),
        operation_timeout: Some(Duration::from_secs(60)),
        max_attempts: Some(3),
        ..AwsOptions::default()
    }
}

/// A migrated table and an empty bucket of this test's own.
pub struct Fixture {
    pub admin: Admin,
    pub target: Target,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::at(emulator().await.endpoint()).await
    }

    pub async fn at(endpoint: &str) -> Fixture {
        let endpoint = endpoint.to_owned();
        let target = Target {
            aws: aws(&endpoint),
            table: unique_name("sg-map"),
            bucket: Some(unique_name("sg-snap")),
            key: "mappings/snapshot.json".to_owned(),
            actor: "tester".to_owned(),
            publish: false,
            grant_claims: Vec::new(),
        };
        let admin = Admin::open(&target).await.unwrap();
        let report = migrate::migrate(&admin, &migrate::embedded())
            .await
            .unwrap_or_else(|e| panic!("migrate on {endpoint}: {e}"));
        assert_eq!(report.applied.len(), migrate::EMBEDDED.len());
        admin
            .snapshots
            .as_ref()
            .unwrap()
            .create_bucket(Some(REGION))
            .await
            .unwrap_or_else(|e| panic!("create bucket on {endpoint}: {e}"));
        Fixture { admin, target }
    }

    /// Another operator on the same table and bucket.
    pub async fn operator(&self, actor: &str, publish: bool) -> Admin {
        Admin::open(&Target {
            actor: actor.to_owned(),
            publish,
            ..self.target.clone()
        })
        .await
        .unwrap()
    }

    /// Deletes the table and the bucket (matters on a shared LocalStack).
    pub async fn cleanup(self) {
        let _ = self.admin.store.delete_table().await;
        if let Some(s) = &self.admin.snapshots {
            let _ = s.delete_bucket().await;
        }
    }
}

pub const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

/// The flags of one GET entry on stage dev of [`API`]: `--api .. --scope SCOPE`.
pub fn entry_flags<'a>(scope: &'a str, resource: &'a str) -> [&'a str; 10] {
    [
        "--api",
        API,
        "--stage",
        "dev",
        "--method",
        "GET",
        "--resource",
        resource,
        "--scope",
        scope,
    ]
}

pub fn entry(scope: &str, method: &str, resource: &str, effect: &str) -> Mapping {
    serde_json::from_str(&format!(
        r#"{{"api":"{API}","stage":"dev","method":"{method}","resource":"{resource}","scope":"{scope}","effect":"{effect}"}}"#
    ))
    .unwrap()
}

pub fn seed_dir() -> std::path::PathBuf {
    crate::support::repo_root().join("seed-data")
}

fn sorted(mut v: Vec<Mapping>) -> Vec<Mapping> {
    v.sort();
    v
}

fn note(actor: &str, action: &str) -> ChangeNote {
    ChangeNote {
        actor: actor.to_owned(),
        action: action.to_owned(),
        summary: action.to_owned(),
        changes: Vec::new(),
    }
}

#[tokio::test]
async fn migrate_twice_changes_nothing() {
    let fx = Fixture::new().await;
    let head = fx.admin.store.read_head().await.unwrap();
    assert_eq!((head.version, head.entries, head.shards), (0, 0, 8));
    let again = migrate::migrate(&fx.admin, &migrate::embedded())
        .await
        .unwrap();
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(again.already.len(), migrate::EMBEDDED.len());
    assert_eq!(
        fx.admin.store.read_head().await.unwrap(),
        head,
        "the version record is untouched"
    );
    let records = fx.admin.store.migrations().await.unwrap();
    assert_eq!(records.len(), migrate::EMBEDDED.len());
    assert!(records.iter().all(|r| r.actor == "tester"));
    fx.cleanup().await;
}

#[tokio::test]
async fn seed_export_import_replace_export_round_trips() {
    let fx = Fixture::new().await;
    let seeded = migrate::seed(&fx.admin, &seed_dir(), false).await.unwrap();
    assert_eq!(seeded.version, 1);
    let seed = migrate::seed_entries(&seed_dir()).unwrap();
    assert_eq!(seeded.diff.added.len(), seed.len());
    // Seeding again is no change.
    assert_eq!(
        migrate::seed(&fx.admin, &seed_dir(), false)
            .await
            .unwrap()
            .version,
        1
    );

    let first = fx.admin.export().await.unwrap();
    assert_eq!(first.version, Some(1));
    assert_eq!(sorted(first.mappings.clone()), sorted(seed.clone()));

    // Drift, then put the exported document back with --replace.
    fx.admin
        .add(vec![entry("extra", "GET", "x", "Allow")])
        .await
        .unwrap();
    let text = serde_json::to_vec(&first).unwrap();
    let doc = file::parse_document(&text, "export.json").unwrap();
    let dry = fx
        .admin
        .import("import", doc.mappings.clone(), true, true, &|_, _| {})
        .await
        .unwrap();
    assert!(
        dry.dry_run && dry.diff.removed == vec![entry("extra", "GET", "x", "Allow")],
        "{:?}",
        dry.diff
    );
    assert_eq!(
        fx.admin.store.read_head().await.unwrap().version,
        2,
        "a dry run writes nothing"
    );
    let replaced = fx
        .admin
        .import("import", doc.mappings, true, false, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(replaced.version, 3);
    let second = fx.admin.export().await.unwrap();
    assert_eq!(second.mappings, first.mappings, "same set, same order");
    fx.cleanup().await;
}

#[tokio::test]
async fn a_small_import_that_flips_an_effect_writes_it_in_one_transaction() {
    // Small enough for one transaction; the changed target must be one write of its item
    // (DynamoDB refuses a transaction that names an item twice, as a remove and an add would).
    let fx = Fixture::new().await;
    let read = entry("orders:read", "GET", "orders/*", "Allow");
    let keep = entry("orders:write", "POST", "orders", "Allow");
    fx.admin
        .add(vec![read.clone(), keep.clone()])
        .await
        .unwrap();
    let flipped = entry("orders:read", "GET", "orders/*", "Deny");
    let changed = fx
        .admin
        .import("import", vec![flipped.clone()], false, false, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(changed.diff.changed, vec![(read.clone(), flipped.clone())]);
    assert_eq!(fx.admin.get(&read).await.unwrap(), Some(flipped.clone()));
    let (head, all) = fx.admin.list(&Filter::default()).await.unwrap();
    assert_eq!((head.entries, all.len()), (2, 2), "{all:?}");
    let history = fx.admin.history(1).await.unwrap();
    assert!(
        history[0]
            .changes
            .iter()
            .any(|c| c.starts_with("~ ") && c.contains("(was Allow)")),
        "{history:?}"
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn add_get_remove_list_and_history() {
    let fx = Fixture::new().await;
    let alice = fx.operator("alice", false).await;
    let bob = fx.operator("bob", false).await;
    let e = entry("orders:read", "GET", "orders/*", "Allow");
    assert_eq!(alice.add(vec![e.clone()]).await.unwrap().version, 1);
    assert_eq!(alice.get(&e).await.unwrap(), Some(e.clone()));
    // Same target with the other effect: refused, not silently flipped.
    let err = bob
        .add(vec![entry("orders:read", "GET", "orders/*", "Deny")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::Store(StoreError::Exists { .. })),
        "{err}"
    );
    bob.add(vec![entry("orders:write", "POST", "orders", "Allow")])
        .await
        .unwrap();
    let (head, listed) = bob
        .list(&Filter {
            scope: Some("orders:read".into()),
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (head.version, head.entries, listed),
        (2, 2, vec![e.clone()])
    );
    // Remove by target: the stored effect is what is removed and recorded.
    let removed = bob
        .remove(vec![entry("orders:read", "GET", "orders/*", "Deny")])
        .await
        .unwrap();
    assert_eq!(removed.diff.removed, vec![e.clone()]);
    let err = bob.remove(vec![e.clone()]).await.unwrap_err();
    assert!(
        matches!(err, AdminError::Store(StoreError::NotFound { .. })),
        "{err}"
    );
    assert_eq!(alice.get(&e).await.unwrap(), None);

    let history = alice.history(10).await.unwrap();
    let got: Vec<(u64, &str, &str)> = history
        .iter()
        .map(|h| (h.version, h.actor.as_str(), h.action.as_str()))
        .collect();
    assert_eq!(
        got,
        [(3, "bob", "remove"), (2, "bob", "add"), (1, "alice", "add")]
    );
    assert!(
        history[0].changes[0].starts_with("- orders:read: Allow"),
        "{:?}",
        history[0]
    );
    assert!(history
        .iter()
        .all(|h| h.at.ends_with('Z') && h.at.len() == 20));
    fx.cleanup().await;
}

#[tokio::test]
async fn a_stale_read_loses_with_a_clear_error() {
    let fx = Fixture::new().await;
    let store = &fx.admin.store;
    let read = store.read_head().await.unwrap();
    store
        .apply(
            &read,
            &[Edit::Add(entry("a", "GET", "a", "Allow"))],
            &read.apis,
            &note("first", "add"),
        )
        .await
        .unwrap();
    let err = store
        .apply(
            &read,
            &[Edit::Add(entry("b", "GET", "b", "Allow"))],
            &read.apis,
            &note("second", "add"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                read: 0,
                found: Some(1)
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("changed since you read them")
            && err.to_string().contains("retry"),
        "{err}"
    );
    // Nothing of the loser's change was written.
    assert_eq!(
        store.load_current().await.unwrap().entries,
        vec![entry("a", "GET", "a", "Allow")]
    );
    // An import based on a stale read loses too, and leaves no generation behind.
    let err = store
        .replace_all(
            &read,
            &[entry("c", "GET", "c", "Allow")],
            &read.apis,
            &note("third", "import"),
            &|_, _| {},
        )
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(store.read_head().await.unwrap().version, 1);
    fx.cleanup().await;
}

#[tokio::test]
async fn sixteen_concurrent_editors_lose_no_update() {
    const EDITORS: usize = 16;
    const EACH: usize = 4;
    let (endpoint, _moto) = isolated_endpoint().await;
    let fx = Fixture::at(&endpoint).await;
    let retried = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for editor in 0..EDITORS {
        let admin = fx.operator(&format!("editor-{editor}"), false).await;
        let retried = Arc::clone(&retried);
        tasks.spawn(async move {
            for i in 0..EACH {
                let m = entry(
                    &format!("editor{editor}"),
                    "GET",
                    &format!("item/{i}"),
                    "Allow",
                );
                // Conflicts are the store's to retry: none reaches the caller.
                let changed = admin
                    .add(vec![m])
                    .await
                    .unwrap_or_else(|e| panic!("editor {editor}: {e}"));
                retried.fetch_add(changed.attempts as usize - 1, Ordering::Relaxed);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let loaded = fx.admin.store.load_current().await.unwrap();
    assert_eq!(loaded.entries.len(), EDITORS * EACH);
    assert_eq!(
        loaded.head.version,
        (EDITORS * EACH) as u64,
        "one version per change"
    );
    assert_eq!(loaded.head.entries, (EDITORS * EACH) as u64);
    let history = fx.admin.history(1000).await.unwrap();
    let versions: HashSet<u64> = history.iter().map(|h| h.version).collect();
    assert_eq!(versions.len(), EDITORS * EACH);
    eprintln!(
        "16 editors: {} retries after conflicts",
        retried.load(Ordering::Relaxed)
    );
    fx.cleanup().await;
}

/// Imports too large for one transaction race each other: each writes a generation, loses
/// the switch, patches its generation to the new state and tries again. All land.
#[tokio::test]
async fn concurrent_large_imports_all_land() {
    const IMPORTERS: usize = 4;
    const EACH: usize = 120;
    let (endpoint, _moto) = isolated_endpoint().await;
    let fx = Fixture::at(&endpoint).await;
    let mut tasks = tokio::task::JoinSet::new();
    for importer in 0..IMPORTERS {
        let admin = fx.operator(&format!("importer-{importer}"), false).await;
        tasks.spawn(async move {
            let entries: Vec<Mapping> = (0..EACH)
                .map(|i| entry(&format!("imp{importer}"), "GET", &format!("r{i}"), "Allow"))
                .collect();
            admin
                .import("import", entries, false, false, &|_, _| {})
                .await
                .unwrap_or_else(|e| panic!("importer {importer}: {e}"))
        });
    }
    let mut attempts = 0;
    while let Some(r) = tasks.join_next().await {
        attempts += r.unwrap().attempts;
    }
    let loaded = fx.admin.store.load_current().await.unwrap();
    assert_eq!(loaded.entries.len(), IMPORTERS * EACH);
    assert_eq!(loaded.head.version, IMPORTERS as u64);
    assert_eq!(fx.admin.history(100).await.unwrap().len(), IMPORTERS);
    eprintln!("{IMPORTERS} large imports: {attempts} attempts");
    fx.cleanup().await;
}

pub fn generated(n: usize) -> Vec<Mapping> {
    (0..n)
        .map(|i| {
            entry(
                &format!("scope{}", i % 97),
                if i % 2 == 0 { "GET" } else { "PUT" },
                &format!("r{i}/*"),
                "Allow",
            )
        })
        .collect()
}

#[tokio::test]
async fn a_ten_thousand_entry_import_switches_atomically() {
    let fx = Fixture::new().await;
    migrate::seed(&fx.admin, &seed_dir(), false).await.unwrap();
    let old = sorted(fx.admin.store.load_current().await.unwrap().entries);
    let new = sorted(generated(10_000));

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = fx.admin.store.clone();
        let (old, new, done) = (old.clone(), new.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            let (mut saw_old, mut saw_new) = (0, 0);
            loop {
                let finished = done.load(Ordering::SeqCst);
                let loaded = store.load_current().await.unwrap();
                if loaded.entries == old {
                    assert_eq!(loaded.head.version, 1);
                    saw_old += 1;
                } else if loaded.entries == new {
                    assert_eq!(loaded.head.version, 2);
                    saw_new += 1;
                } else {
                    panic!(
                        "a reader saw a mix: {} entries at version {}",
                        loaded.entries.len(),
                        loaded.head.version
                    );
                }
                if finished {
                    return (saw_old, saw_new);
                }
            }
        })
    };
    let high = Arc::new(AtomicUsize::new(0));
    let progress = {
        let high = Arc::clone(&high);
        move |done: usize, total: usize| {
            assert_eq!(total, 10_000);
            high.fetch_max(done, Ordering::SeqCst);
        }
    };
    let started = std::time::Instant::now();
    let changed = fx
        .admin
        .import("import", new.clone(), true, false, &progress)
        .await
        .unwrap();
    eprintln!("10k import: {:?}", started.elapsed());
    done.store(true, Ordering::SeqCst);
    assert_eq!(changed.version, 2);
    assert_eq!(high.load(Ordering::SeqCst), 10_000);
    let (saw_old, saw_new) = reader.await.unwrap();
    eprintln!("reader: {saw_old} loads of the old set, {saw_new} of the new");
    assert!(saw_old >= 1 && saw_new >= 1);

    // Another switch deletes the generation before the previous one.
    let head = fx.admin.store.read_head().await.unwrap();
    let first_generation = head.previous.clone().unwrap();
    fx.admin
        .import("import", old.clone(), true, false, &|_, _| {})
        .await
        .unwrap();
    assert!(fx
        .admin
        .store
        .read_generation(&first_generation, head.shards)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        sorted(fx.admin.store.load_current().await.unwrap().entries),
        old
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn invalid_imports_leave_the_table_as_it_was() {
    let fx = Fixture::new().await;
    migrate::seed(&fx.admin, &seed_dir(), false).await.unwrap();
    let before = fx.admin.store.read_head().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"[{"api":"arn:aws:execute-api:us-east-1:1:x","stage":"dev","method":"GET","resource":"r","scope":"s"}]"#,
            "mappings[0]: field \"api\"",
        ),
        (
            &*format!(
                r#"[{{"api":"{API}","stage":"dev","method":"FETCH","resource":"r","scope":"s"}}]"#
            ),
            "\"FETCH\"",
        ),
        (
            &*format!(
                r#"[{{"api":"{API}","stage":"dev","method":"GET","resource":"r","scope":""}}]"#
            ),
            "field \"scope\"",
        ),
        (
            &*format!(
                r#"[{{"api":"{API}","stage":"dev","method":"GET","resource":"orders/{{id}}/*","scope":"s"}}]"#
            ),
            "not both",
        ),
        (
            &*format!(
                r#"[{{"api":"{API}","stage":"dev","method":"GET","resource":"r","scope":"s"}},{{"api":"{API}","stage":"dev","method":"GET","resource":"r","scope":"s","effect":"Deny"}}]"#
            ),
            "mappings[0] allows and mappings[1] denies",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.json"));
        std::fs::write(&path, text).unwrap();
        let err = file::load_document(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("bad{i}.json")) && err.contains(needle),
            "{err}"
        );
    }
    // Entries that validate one by one but repeat: refused by the store's import itself.
    let dup = vec![
        entry("s", "GET", "r", "Allow"),
        entry("s", "GET", "r", "Allow"),
    ];
    let err = fx
        .admin
        .import("import", dup, true, false, &|_, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("repeats"), "{err}");
    assert_eq!(fx.admin.store.read_head().await.unwrap(), before);
    fx.cleanup().await;
}

#[tokio::test]
async fn publish_is_conditional_and_follows_changes() {
    let fx = Fixture::new().await;
    let snapshots = fx.admin.snapshots.clone().unwrap();
    let err = snapshots.read().await.unwrap_err();
    assert!(matches!(err, StoreError::NoSnapshot { .. }), "{err}");
    migrate::seed(&fx.admin, &seed_dir(), false).await.unwrap();
    let Published::Written { version: 1, sha256 } = fx.admin.publish_now().await.unwrap() else {
        panic!("version 1 written");
    };
    assert_eq!(
        fx.admin.publish_now().await.unwrap(),
        Published::AlreadyCurrent {
            version: 1,
            sha256: sha256.clone()
        }
    );
    // The version record names the object, and its digest is the object's.
    let head = fx.admin.store.read_head().await.unwrap();
    let named = head.vouched_snapshot().expect("the digest is recorded");
    assert_eq!((named.version, &named.sha256), (1, &sha256));
    assert_eq!(
        snapshots.read_verified(named).await.unwrap().version,
        Some(1)
    );
    let doc = snapshots.read().await.unwrap();
    assert_eq!(doc.version, Some(1));
    assert!(doc.generated_at.is_some());
    assert_eq!(
        sorted(doc.mappings),
        sorted(migrate::seed_entries(&seed_dir()).unwrap())
    );

    // With publishing on, every change is published.
    let op = fx.operator("publisher", true).await;
    let changed = op
        .add(vec![entry("new", "GET", "new", "Allow")])
        .await
        .unwrap();
    assert!(
        matches!(
            changed.published,
            Some(Ok(Published::Written { version: 2, .. }))
        ),
        "{:?}",
        changed.published
    );
    assert_eq!(snapshots.read().await.unwrap().version, Some(2));
    // An object that says version 2 but holds other entries (as after the table was made
    // again and counted from 1) is not "already current": it is replaced.
    snapshots
        .put_raw(br#"{"version": 2, "mappings": []}"#.to_vec())
        .await
        .unwrap();
    assert!(matches!(
        fx.admin.publish_now().await.unwrap(),
        Published::Written { version: 2, .. }
    ));
    assert!(!snapshots.read().await.unwrap().mappings.is_empty());
    // An older version never overwrites a newer one.
    let err = snapshots
        .publish(1, &[], &ApiKinds::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SnapshotNewer {
                ours: 1,
                theirs: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(snapshots.read().await.unwrap().version, Some(2));
    fx.cleanup().await;
}

#[tokio::test]
async fn corrupt_items_and_snapshots_are_refused() {
    let fx = Fixture::new().await;
    migrate::seed(&fx.admin, &seed_dir(), false).await.unwrap();
    fx.admin.publish_now().await.unwrap();
    let head = fx.admin.store.read_head().await.unwrap();
    // A Deny whose effect was mangled: serving the rest would drop it.
    fx.admin
        .store
        .put_raw_entry(
            &head.generation,
            0,
            "zz bad",
            &[
                ("api", API),
                ("stage", "dev"),
                ("method", "GET"),
                ("resource", "x"),
                ("scope", "zz"),
                ("effect", "Dney"),
                ("updated_at", "now"),
                ("updated_by", "x"),
            ],
        )
        .await
        .unwrap();
    let err = fx.admin.store.load_current().await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("sk=\"zz bad\""), "{err}");

    let snapshots = fx.admin.snapshots.clone().unwrap();
    snapshots
        .put_raw(br#"{"version": 9, "mappings": [{"api": "nope"}]}"#.to_vec())
        .await
        .unwrap();
    let err = snapshots.read().await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { .. }) && err.to_string().contains("mappings[0]"),
        "{err}"
    );
    snapshots
        .put_raw(b"{\"version\": 9, \"mappings\": [".to_vec())
        .await
        .unwrap();
    assert!(matches!(
        snapshots.read().await.unwrap_err(),
        StoreError::Corrupt { .. }
    ));
    fx.cleanup().await;
}

/// Issue 20 §1: an API's kind is declared with the entries, in the version record: an
/// import declares a file's kinds, a later edit or a large import through a new generation
/// keeps them, export and the published snapshot carry them, and `--replace` with a file
/// that declares none makes every API REST again.
#[tokio::test]
async fn api_kinds_are_declared_with_the_entries_and_travel_with_them() {
    use scopegate::policy::ApiKind;
    let fx = Fixture::new().await;
    let first = entry("orders:read", "GET", "orders/{id}", "Allow");
    let text = format!(
        r#"{{"apis": {{"{API}": "http"}}, "mappings": [{}]}}"#,
        serde_json::to_string(&first).unwrap()
    );
    let doc = file::parse_document(text.as_bytes(), "kinds.json").unwrap();
    let changed = fx
        .admin
        .import_document("import", doc, false, false, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(changed.diff.kinds.len(), 1, "{:?}", changed.diff);
    assert_eq!(
        changed.diff.kinds[0].to_string(),
        format!("kind {API}: undeclared (rest) -> http")
    );
    let kind_now = || async { fx.admin.kinds().await.unwrap().kind_of(API) };
    assert_eq!(kind_now().await, ApiKind::Http);
    // An edit (one transaction) and a large import (a new generation) keep the declaration.
    fx.admin
        .add(vec![entry("b", "GET", "b", "Allow")])
        .await
        .unwrap();
    assert_eq!(kind_now().await, ApiKind::Http);
    let many: Vec<Mapping> = (0..150)
        .map(|i| entry("bulk", "GET", &format!("bulk/{i}"), "Allow"))
        .collect();
    fx.admin
        .import("import", many, false, false, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(kind_now().await, ApiKind::Http);
    assert_eq!(
        fx.admin.snapshot().await.unwrap().kind_of(API),
        ApiKind::Http
    );
    let exported = fx.admin.export().await.unwrap();
    assert_eq!(exported.apis.declared(API), Some(ApiKind::Http));
    let snapshots = fx
        .admin
        .snapshots
        .as_ref()
        .expect("the fixture has a bucket");
    fx.admin.publish_now().await.unwrap();
    assert_eq!(
        snapshots.read().await.unwrap().apis.declared(API),
        Some(ApiKind::Http),
        "the published snapshot carries the kinds"
    );
    // Declaring the kind it has is no change, nor REST for an API declared nowhere; another
    // is one, in the history.
    let other =
        scopegate::policy::ApiArn::parse("arn:aws:execute-api:us-east-1:123456789012:zzzzzzzzzz")
            .unwrap();
    let none = fx.admin.declare(other, ApiKind::Rest).await.unwrap();
    assert_eq!(none.version, none.from_version);
    let same = fx
        .admin
        .declare(first.api.clone(), ApiKind::Http)
        .await
        .unwrap();
    assert_eq!(same.version, same.from_version);
    let rest = fx
        .admin
        .declare(first.api.clone(), ApiKind::Rest)
        .await
        .unwrap();
    assert_eq!(rest.version, same.version + 1);
    assert!(fx.admin.history(1).await.unwrap()[0]
        .changes
        .contains(&format!("kind {API}: http -> rest")));
    // --replace with a file that declares nothing: no declarations left.
    fx.admin
        .import("import", vec![first.clone()], true, false, &|_, _| {})
        .await
        .unwrap();
    assert!(fx.admin.kinds().await.unwrap().is_empty());
    // The same through one transaction (only the kinds change): `REMOVE apis` there too.
    fx.admin
        .declare(first.api.clone(), ApiKind::Http)
        .await
        .unwrap();
    let replaced = fx
        .admin
        .import("import", vec![first], true, false, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(replaced.diff.edit_count(), 0, "{:?}", replaced.diff);
    assert_eq!(replaced.version, replaced.from_version + 1);
    assert!(fx.admin.kinds().await.unwrap().is_empty());
    fx.cleanup().await;
}
