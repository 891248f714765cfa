//! Each stage of the ingest pipeline on its own, at 1, 16 and 64 KiB (the load harness's clue
//! transfers), so a regression points at its stage: parse, classify (the message's level, its
//! field markings and the free-text scan for state-secret markings), normalise (the mapping),
//! validate (the JSON Schema), content hash, route, per-recipient views, the outbox's
//! serialisation, and the durable commit of one message (SQLite, synced). Then addressing and
//! committing one message as its recipients grow from 2 to 32.
//!
//!     cargo bench --bench stages

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/it/common/config.rs"]
mod common;
use serde_json::Value;
use xietong::clock::SystemClock;
use xietong::config::Config;
use xietong::model::BodyKind;
use xietong::model::Sender;
use xietong::model::shape::Shape;
use xietong::pipeline::{self, Normalized};
use xietong::secrecy::scan;
use xietong::store::sqlite::{Options, SqliteStore};
use xietong::store::{Messages, NewDelivery, NewMessage};
use xietong::telemetry::Metrics;
use xietong_load::messages::{Generator, Mix};

/// The gateway's allocator (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZES: [usize; 3] = [1024, 16 * 1024, 64 * 1024];

/// A clue transfer of about `size` bytes, and its sender.
fn message(size: usize) -> (Vec<u8>, Sender) {
    let mix = Mix { sizes: vec![size], procuratorate: 0.0, cross_region: 0.0, stripped: 0.0 };
    let m = Generator::new(mix, "bench", 7).next_message();
    (m.body, m.sender.parse().expect("an agency id"))
}

/// A fresh SQLite store with the default group commit, in `dir`.
fn open_store(dir: &std::path::Path) -> SqliteStore {
    let options = Options { batch_max: 256, busy_timeout: Duration::from_secs(5), audit: Default::default() };
    SqliteStore::open(dir, options, Metrics::new().store, std::sync::Arc::new(SystemClock)).expect("the store opens")
}

/// The message the ingest path commits for `normalized` (its `event` serialised), under a
/// native id of its own.
fn to_commit(
    normalized: &Normalized,
    sender: &Sender,
    native_id: String,
    event: String,
    deliveries: Vec<NewDelivery>,
) -> NewMessage {
    NewMessage {
        id: uuid::Uuid::now_v7().to_string(),
        sender: sender.to_string(),
        native_id,
        message_type: normalized.message_type.name,
        subject: normalized.subject.clone(),
        content_sha256: normalized.content_sha256.clone(),
        body_sha256: normalized.content_sha256.clone(),
        stripped: Vec::new(),
        event,
        deliveries,
        received_ms: 0,
        in_reply_to: None,
        rule_errors: Vec::new(),
    }
}

fn stages(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("config")).expect("config checks");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = open_store(dir.path());

    let mut group = c.benchmark_group("stages");
    for size in SIZES {
        let (body, sender) = message(size);
        let format = config.mapping_for(&sender, BodyKind::Native).expect("a format").clone();
        let doc = pipeline::parse(&body, &Shape::default()).expect("parses");
        let normalized = pipeline::normalize(&config.schemas, &format, &sender, &body).expect("accepted");
        let addressed = pipeline::address(&config.router, &normalized.event, &sender, None).expect("routed");
        group.throughput(Throughput::Bytes(body.len() as u64));
        let id = |stage: &str| BenchmarkId::new(stage, format!("{} KiB", size / 1024));

        group.bench_function(id("parse"), |b| b.iter(|| pipeline::parse(&body, &Shape::default()).unwrap()));
        group.bench_function(id("classify"), |b| {
            b.iter(|| {
                let level = format.classification(&doc).unwrap();
                let found = format.markings(&doc).unwrap();
                let skip = |p: &jsonptr::Pointer| found.metadata.iter().any(|m| p.starts_with(m));
                (level, scan::scan(&doc, &skip).is_none())
            })
        });
        group.bench_function(id("normalise"), |b| b.iter(|| format.map(&doc).unwrap()));
        let data = normalized.event.get("data").unwrap_or(&Value::Null);
        group.bench_function(id("validate"), |b| {
            b.iter(|| config.schemas.validate(normalized.message_type, data).unwrap())
        });
        group.bench_function(id("content hash"), |b| b.iter(|| pipeline::content_hash(&normalized.event)));
        group
            .bench_function(id("route"), |b| b.iter(|| config.router.route(&normalized.event, &sender, None).unwrap()));
        group.bench_function(id("views"), |b| {
            b.iter(|| pipeline::copies(&config.router, &normalized.event, &addressed.routing.recipients))
        });
        group.bench_function(id("outbox"), |b| {
            b.iter(|| {
                (pipeline::event_text(&normalized.event), pipeline::outbox(&addressed.deliveries, &normalized.event))
            })
        });
        group.bench_function(id("whole pipeline"), |b| {
            b.iter(|| {
                let n = pipeline::normalize(&config.schemas, &format, &sender, &body).unwrap();
                pipeline::address(&config.router, &n.event, &sender, None).unwrap()
            })
        });
        let deliveries = pipeline::outbox(&addressed.deliveries, &normalized.event);
        let event = pipeline::event_text(&normalized.event);
        let mut n = 0u64;
        group.bench_function(id("commit"), |b| {
            b.iter(|| {
                n += 1;
                let m =
                    to_commit(&normalized, &sender, format!("STAGES-{size}-{n}"), event.clone(), deliveries.clone());
                runtime.block_on(store.accept(m)).unwrap()
            })
        });
    }
    group.finish();
}

/// Addressing, the outbox and the commit of one 1 KiB clue transfer as its recipients grow: the
/// shipped rules give it two; synthetic rules copy it to further provinces' procuratorates.
fn recipients(c: &mut Criterion) {
    const PROVINCES: [&str; 30] = [
        "110000", "120000", "130000", "140000", "150000", "210000", "220000", "230000", "310000", "320000", "340000",
        "350000", "360000", "370000", "410000", "420000", "430000", "440000", "450000", "460000", "500000", "510000",
        "520000", "530000", "540000", "610000", "620000", "630000", "640000", "650000",
    ];
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = open_store(dir.path());
    let (body, sender) = message(1024);
    let mut group = c.benchmark_group("recipients");
    for extra in [0, 6, 30] {
        let config_dir = common::ConfigDir::new("");
        let mut rules = std::fs::read_to_string(config_dir.path().join("rules.yaml")).expect("rules.yaml");
        for province in &PROVINCES[..extra] {
            rules.push_str(&format!(
                "\n  - name: copy-{province}\n    types: [cn.xietong.clue.transfer]\n    copy: [ {{ agency: procuratorate:{province} }} ]\n"
            ));
        }
        config_dir.replace_rules(&rules);
        let config = Config::load(config_dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let format = config.mapping_for(&sender, BodyKind::Native).expect("a format").clone();
        let normalized = pipeline::normalize(&config.schemas, &format, &sender, &body).expect("accepted");
        let addressed = pipeline::address(&config.router, &normalized.event, &sender, None).expect("routed");
        let n = addressed.deliveries.len();
        assert_eq!(n, 2 + extra, "{:?}", addressed.routing.recipients);
        group.bench_function(BenchmarkId::new("address", n), |b| {
            b.iter(|| pipeline::address(&config.router, &normalized.event, &sender, None).unwrap())
        });
        let event = pipeline::event_text(&normalized.event);
        let mut i = 0u64;
        group.bench_function(BenchmarkId::new("outbox and commit", n), |b| {
            b.iter(|| {
                i += 1;
                let deliveries = pipeline::outbox(&addressed.deliveries, &normalized.event);
                let m = to_commit(&normalized, &sender, format!("RECIPIENTS-{n}-{i}"), event.clone(), deliveries);
                runtime.block_on(store.accept(m)).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = stages, recipients
}
criterion_main!(benches);
