//! The mapping store against an emulator (SCOPEGATE_TEST_AWS_ENDPOINT, else a moto server
//! started here from `.venv-emu`):
//!
//! - `store/cold_load_10k`: what a cold container pays: the version record, 8 parallel
//!   Queries of a 10 000-entry generation, validation, a second version read, and building
//!   the snapshot index. Peak RSS growth of one load is printed before the runs.
//! - `store/version_check`: what a warm container pays once per TTL: one GetItem.
//!
//! - `replay/record_new`, `replay/record_seen`: the DPoP replay check's call (RFC 9449
//!   §11.1): a conditional PutItem of a new key, and of a key already there (the condition
//!   fails), against `replay/get_item`, a plain GetItem on the same table in the same run.
//!
//! Emulator figures bound the client's cost from above (moto is Python); against DynamoDB
//! the network dominates.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use scopegate::mapping::store::aws::{AwsConfig, AwsOptions};
use scopegate::mapping::store::ChangeNote;
use scopegate::mapping::store::DynamoStore;
use scopegate::mapping::{Mapping, Snapshot};

const ENTRIES: usize = 10_000;

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn endpoint(rt: &tokio::runtime::Runtime) -> (String, Option<Moto>) {
    if let Ok(e) = std::env::var("SCOPEGATE_TEST_AWS_ENDPOINT") {
        if !e.trim().is_empty() {
            return (e.trim().trim_end_matches('/').to_owned(), None);
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-emu/bin/moto_server");
    let child = Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{server}: {e} (run scripts/setup)"));
    let moto = Moto(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    rt.block_on(async {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (endpoint, Some(moto))
}

fn entries() -> Vec<Mapping> {
    (0..ENTRIES)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "api": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5",
                "stage": "dev",
                "method": if i % 2 == 0 { "GET" } else { "PUT" },
                "resource": format!("r{i}/*"),
                "scope": format!("scope{}", i % 97),
            }))
            .expect("valid entry")
        })
        .collect()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (endpoint, _moto) = endpoint(&rt);
    let table = format!("sg-bench-{}", std::process::id());
    let store = rt.block_on(async {
        let aws = AwsConfig::load(&AwsOptions {
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint.clone()),
            static_credentials: Some(("test".into(), "test".into())),
            attempt_timeout: Some(Duration::from_secs(60)),
            operation_timeout: Some(Duration::from_secs(120)),
            ..AwsOptions::default()
        })
        .await
        .expect("AWS options with a region");
        let store = DynamoStore::new(&aws, &table);
        store.create_table().await.expect("create table");
        store
            .init_version(8, "bench")
            .await
            .expect("version record");
        let head = store.read_head().await.expect("head");
        let note = ChangeNote {
            actor: "bench".into(),
            action: "import".into(),
            summary: "bench".into(),
            changes: Vec::new(),
        };
        let started = Instant::now();
        store
            .replace_all(&head, &entries(), &head.apis, &note, &|_, _| {})
            .await
            .expect("import");
        eprintln!("import of {ENTRIES} entries: {:?}", started.elapsed());
        store
    });

    let before = peak_rss_kib();
    let started = Instant::now();
    let snapshot = rt.block_on(async {
        let loaded = store.load_current().await.expect("load");
        Snapshot::new(loaded.head.version, loaded.entries)
    });
    eprintln!(
        "one cold load of {} entries: {:?}, peak RSS {} KiB -> {} KiB (+{} KiB)",
        snapshot.len(),
        started.elapsed(),
        before,
        peak_rss_kib(),
        peak_rss_kib().saturating_sub(before)
    );
    drop(snapshot);

    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("cold_load_10k", |b| {
        b.iter(|| {
            rt.block_on(async {
                let loaded = store.load_current().await.expect("load");
                Snapshot::new(loaded.head.version, loaded.entries)
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("store");
    group.bench_function("version_check", |b| {
        b.iter(|| rt.block_on(store.read_head()).expect("head"))
    });
    group.finish();
    let _ = rt.block_on(store.delete_table());
}

fn replay(c: &mut Criterion) {
    use scopegate::replay::{DynamoReplayStore, ReplayStore as _};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (endpoint, _moto) = endpoint(&rt);
    let table = format!("sg-bench-replay-{}", std::process::id());
    let store = rt.block_on(async {
        let aws = AwsConfig::load(&AwsOptions {
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint.clone()),
            static_credentials: Some(("test".into(), "test".into())),
            ..AwsOptions::for_authorizer()
        })
        .await
        .expect("AWS options with a region");
        let store = DynamoReplayStore::new(&aws, &table);
        store.create_table().await.expect("create table");
        store
    });
    let now = 1_800_000_000u64;
    assert_eq!(rt.block_on(store.record("seen", now + 60, now)), Ok(true));
    let mut group = c.benchmark_group("replay");
    group.bench_function("get_item", |b| {
        b.iter(|| assert_eq!(rt.block_on(store.contains("seen")), Ok(true)))
    });
    let mut n = 0u64;
    group.bench_function("record_new", |b| {
        b.iter(|| {
            n += 1;
            let key = format!("k{n}");
            assert_eq!(rt.block_on(store.record(&key, now + 60, now)), Ok(true));
        })
    });
    group.bench_function("record_seen", |b| {
        b.iter(|| assert_eq!(rt.block_on(store.record("seen", now + 60, now)), Ok(false)))
    });
    group.finish();
}

criterion_group!(benches, store, replay);
criterion_main!(benches);
