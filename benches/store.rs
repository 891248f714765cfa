//! Group commit: 64 concurrent writers commit messages durably (WAL, synchronous=FULL).
//! `batch_max = 1` forces one transaction — one disk sync — per message; the default lets
//! messages queued during a sync share the next one. Both run in the same process, on the
//! same disk, so their ratio is what to read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xietong::clock::SystemClock;
use xietong::store::sqlite::{Options, SqliteStore};
use xietong::store::{Lifecycle, Messages, NewDelivery, NewMessage};
use xietong::telemetry::Metrics;

const WRITERS: usize = 64;
const PER_WRITER: usize = 8;

fn message(n: u64) -> NewMessage {
    NewMessage {
        id: uuid::Uuid::now_v7().to_string(),
        sender: "ip_office:330100".into(),
        native_id: format!("BENCH-{n}"),
        message_type: "cn.xietong.clue.transfer",
        subject: Some("杭市监知执〔2026〕123号".into()),
        content_sha256: "0".repeat(64),
        body_sha256: "0".repeat(64),
        stripped: Vec::new(),
        event: "x".repeat(2048),
        deliveries: vec![
            NewDelivery {
                recipient: "public_security:330100".into(),
                role: "primary",
                rules: vec!["clue-transfer".into()],
                event: Some("x".repeat(2048)),
            },
            NewDelivery {
                recipient: "procuratorate:330100".into(),
                role: "copy",
                rules: vec!["clue-transfer".into()],
                event: Some("x".repeat(2048)),
            },
        ],
        received_ms: 0,
        in_reply_to: None,
        rule_errors: Vec::new(),
    }
}

fn store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("store_commit");
    group.throughput(Throughput::Elements((WRITERS * PER_WRITER) as u64));
    group.sample_size(10);
    for batch_max in [1usize, 256] {
        let dir = tempfile::tempdir_in(".").unwrap();
        let options = Options { batch_max, busy_timeout: Duration::from_secs(5), audit: Default::default() };
        let store =
            Arc::new(SqliteStore::open(dir.path(), options, Metrics::new().store, Arc::new(SystemClock)).unwrap());
        let mut next = 0u64;
        group.bench_function(format!("batch_max_{batch_max}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let base = next;
                    next += (WRITERS * PER_WRITER) as u64;
                    let store = store.clone();
                    total += runtime.block_on(async move {
                        let started = Instant::now();
                        let writers: Vec<_> = (0..WRITERS as u64)
                            .map(|w| {
                                let store = store.clone();
                                tokio::spawn(async move {
                                    for i in 0..PER_WRITER as u64 {
                                        store.accept(message(base + w * PER_WRITER as u64 + i)).await.unwrap();
                                    }
                                })
                            })
                            .collect();
                        for w in writers {
                            w.await.unwrap();
                        }
                        started.elapsed()
                    });
                }
                total
            })
        });
        runtime.block_on(store.close());
    }
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
