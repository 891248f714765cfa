//! The thread worker on the embedded store. Applying committed messages to their threads: one
//! transaction per message against one per batch of 200 (what the worker reads at a time). And
//! the overdue notices of 500 deadlines passing at once. The variants run in the same process on
//! the same disk, so their ratio is what to read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xietong::clock::{ManualClock, SystemClock};
use xietong::config::Config;
use xietong::store::sqlite::{Options, SqliteStore};
use xietong::store::{Lifecycle, Messages, NewDelivery, NewMessage, Threads};
use xietong::telemetry::Metrics;
use xietong::threads::worker::{self, ThreadWorker};

/// Requests, each answered by one reply.
const PAIRS: usize = 500;
const DAY_MS: i64 = 86_400_000;

fn message(
    sender: &str,
    native_id: String,
    message_type: &'static str,
    to: &str,
    reply_to: Option<String>,
) -> NewMessage {
    NewMessage {
        id: uuid::Uuid::now_v7().to_string(),
        sender: sender.into(),
        native_id,
        message_type,
        subject: Some("杭市监知执〔2026〕123号".into()),
        content_sha256: uuid::Uuid::now_v7().to_string(),
        body_sha256: String::new(),
        stripped: Vec::new(),
        event: r#"{"data":{"content":"x"}}"#.into(),
        deliveries: vec![NewDelivery { recipient: to.into(), role: "primary", rules: Vec::new(), event: None }],
        received_ms: 0,
        in_reply_to: reply_to,
        rule_errors: Vec::new(),
    }
}

fn request(n: usize) -> NewMessage {
    message("ip_office:330100", format!("CLUE-{n}"), "cn.xietong.clue.transfer", "public_security:330100", None)
}

fn reply(n: usize) -> NewMessage {
    let id = format!("DECISION-{n}");
    message("public_security:330100", id, "cn.xietong.clue.decision", "ip_office:330100", Some(format!("CLUE-{n}")))
}

fn open(dir: &std::path::Path) -> Arc<SqliteStore> {
    let options = Options { batch_max: 256, busy_timeout: Duration::from_secs(5), audit: Default::default() };
    Arc::new(SqliteStore::open(dir, options, Metrics::new().store, Arc::new(SystemClock)).unwrap())
}

fn threads(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let load = || Config::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config")).unwrap();
    let policy = load().threads;
    let mut group = c.benchmark_group("thread_worker");
    group.sample_size(10);
    group.throughput(Throughput::Elements(2 * PAIRS as u64));
    for per_transaction in [1usize, 200] {
        group.bench_function(format!("apply_{per_transaction}_per_transaction"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir_in(".").unwrap();
                    let store = open(dir.path());
                    total += runtime.block_on(async {
                        for n in 0..PAIRS {
                            store.accept(request(n)).await.unwrap();
                            store.accept(reply(n)).await.unwrap();
                        }
                        let started = Instant::now();
                        loop {
                            let backlog = store.thread_backlog(200).await.unwrap();
                            if backlog.is_empty() {
                                break;
                            }
                            let mut steps: Vec<_> = backlog.into_iter().map(|e| worker::step(&policy, e)).collect();
                            while !steps.is_empty() {
                                let rest = steps.split_off(per_transaction.min(steps.len()));
                                store.apply_thread_steps(std::mem::replace(&mut steps, rest)).await.unwrap();
                            }
                        }
                        let elapsed = started.elapsed();
                        store.close().await;
                        elapsed
                    });
                }
                total
            })
        });
    }
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("overdue_notices", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir_in(".").unwrap();
                let store = open(dir.path());
                let clock = ManualClock::at(0);
                let config = Arc::new(load());
                let worker =
                    ThreadWorker::new(store.clone(), Arc::new(clock.clone()), Arc::new(move || config.clone()));
                total += runtime.block_on(async {
                    for n in 0..PAIRS {
                        store.accept(request(n)).await.unwrap();
                    }
                    worker.round().await.unwrap();
                    clock.advance(Duration::from_millis(31 * DAY_MS as u64));
                    let started = Instant::now();
                    worker.round().await.unwrap();
                    let elapsed = started.elapsed();
                    store.close().await;
                    elapsed
                });
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, threads);
criterion_main!(benches);
