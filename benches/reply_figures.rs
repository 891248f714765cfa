//! The replies page's figures (及时反馈, 奖优惩劣) with a realistic history stored: by default
//! 300,000 requests over 100 days owed by 300 agencies, four in five answered after a time
//! spread from minutes to a month (about 540,000 messages). The figures of the whole period and
//! of a week as the stores keep them per day (`Threads::reply_figures`), against counting them
//! from every obligation (what the page did before); and the 200 replies owed soonest. The
//! deadlines passed are marked overdue first, as the thread worker does within a tick.
//!
//!   cargo bench --bench reply_figures
//!   REPLY_BENCH_REQUESTS=100000 XIETONG_BENCH_STORE=redis cargo bench --bench reply_figures
//!
//! On Redis (the server at 127.0.0.1:6379, a key prefix of its own, removed at the end). The
//! variants run in the same process on the same store, so their ratio is what to read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::future::join_all;
use xietong::clock::SystemClock;
use xietong::config::settings::RedisSettings;
use xietong::store::redis::RedisStore;
use xietong::store::sqlite::{Options, SqliteStore};
use xietong::store::{NewDelivery, NewMessage, OwedQuery, StepRole, Store, ThreadStep};
use xietong::telemetry::Metrics;
use xietong::threads::stats::{self, day, day_start};

const AGENCIES: usize = 300;
const DAYS: i64 = 100;
const HOUR: i64 = 3_600_000;

/// A small deterministic generator (SplitMix64): the same history every run.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn agency(n: usize) -> String {
    format!("ip_office:{:06}", 110_000 + n * 100)
}

fn message(sender: String, native_id: String, message_type: &'static str, to: String, at: i64) -> NewMessage {
    NewMessage {
        id: uuid::Uuid::now_v7().to_string(),
        sender,
        native_id,
        message_type,
        subject: None,
        content_sha256: uuid::Uuid::now_v7().to_string(),
        body_sha256: String::new(),
        stripped: Vec::new(),
        event: r#"{"data":{"content":"x"}}"#.into(),
        deliveries: vec![NewDelivery { recipient: to, role: "primary", rules: Vec::new(), event: None }],
        received_ms: at,
        in_reply_to: None,
        rule_errors: Vec::new(),
    }
}

/// Stores the history, applies it to the threads as the worker does, and returns the first
/// day and the time the figures are read at.
async fn fill(store: &Arc<dyn Store>, requests: usize) -> (i64, i64) {
    let first = day(1_790_000_000_000);
    let start = day_start(first);
    let span = DAYS * 24 * HOUR;
    let mut mix = Mix(7);
    let mut messages = Vec::with_capacity(requests * 2);
    let mut replies = Vec::new();
    for n in 0..requests {
        let at = start + span * n as i64 / requests as i64;
        let owed_by = agency(n % AGENCIES);
        messages.push(message(
            "procuratorate:330100".into(),
            format!("REQ-{n}"),
            "cn.xietong.opinion.request",
            owed_by.clone(),
            at,
        ));
        if !mix.next().is_multiple_of(5) {
            // From ten minutes to thirty days, most within a week.
            let took = 600_000 + (mix.next() % (7 * 24 * HOUR as u64)) as i64 * (1 + (mix.next() % 4) as i64);
            let mut reply = message(
                owed_by,
                format!("REP-{n}"),
                "cn.xietong.opinion.reply",
                "procuratorate:330100".into(),
                at + took,
            );
            reply.in_reply_to = Some(format!("REQ-{n}"));
            replies.push(reply);
        }
    }
    messages.extend(replies);
    let total = messages.len();
    let started = Instant::now();
    let mut pending = messages.into_iter();
    loop {
        let batch: Vec<NewMessage> = pending.by_ref().take(512).collect();
        if batch.is_empty() {
            break;
        }
        for r in join_all(batch.into_iter().map(|m| store.accept(m))).await {
            r.unwrap();
        }
    }
    eprintln!("stored {total} messages in {:.0?}", started.elapsed());
    let started = Instant::now();
    loop {
        let backlog = store.thread_backlog(1000).await.unwrap();
        if backlog.is_empty() {
            break;
        }
        let steps = backlog
            .into_iter()
            .map(|e| ThreadStep {
                role: if e.message_type == "cn.xietong.opinion.request" {
                    StepRole::Request { awaiting: e.primaries.clone(), deadline_ms: e.received_ms + 15 * 24 * HOUR }
                } else {
                    StepRole::Reply {
                        answers: vec!["cn.xietong.opinion.request".into()],
                        cannot_determine: false,
                        escalates: Vec::new(),
                    }
                },
                seq: e.seq,
                message_id: e.id,
                message_type: e.message_type,
                sender: e.sender,
                subject: e.subject,
                at_ms: e.received_ms,
                link: e.in_reply_to,
            })
            .collect();
        store.apply_thread_steps(steps).await.unwrap();
    }
    eprintln!("applied them to the threads in {:.0?}", started.elapsed());
    // The thread worker marks the deadlines that passed (each mark its own commit).
    let now = day_start(first + DAYS + 10);
    let started = Instant::now();
    let mut marked = 0;
    loop {
        let due = store.due_obligations(now, 500).await.unwrap();
        if due.is_empty() {
            break;
        }
        marked += due.len();
        for r in join_all(due.iter().map(|d| store.mark_overdue(d.id))).await {
            r.unwrap();
        }
    }
    eprintln!("marked {marked} overdue in {:.0?}", started.elapsed());
    (first, now)
}

fn reply_figures(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    // Run as a test (`cargo test`, `cargo nextest run --all-targets`: no `--bench`), a small
    // history, to check the bench works and the two ways agree.
    let measuring = std::env::args().any(|a| a == "--bench");
    let requests: usize = std::env::var("REPLY_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 300_000 } else { 2_000 });
    let on_redis = std::env::var("XIETONG_BENCH_STORE").is_ok_and(|s| s == "redis");
    let dir = tempfile::tempdir_in(".").unwrap();
    let prefix = format!("bench-{}", uuid::Uuid::now_v7());
    let store: Arc<dyn Store> = runtime.block_on(async {
        if on_redis {
            let settings = RedisSettings { prefix: prefix.clone(), ..RedisSettings::default() };
            RedisStore::open(&settings, Default::default(), Arc::new(SystemClock)).await.unwrap() as Arc<dyn Store>
        } else {
            let options = Options { batch_max: 512, busy_timeout: Duration::from_secs(5), audit: Default::default() };
            Arc::new(SqliteStore::open(dir.path(), options, Metrics::new().store, Arc::new(SystemClock)).unwrap())
        }
    });
    let (first, now) = runtime.block_on(fill(&store, requests));
    let whole = (day_start(first), day_start(first + DAYS));
    let week = (day_start(first + DAYS - 7), day_start(first + DAYS));

    let mut group = c.benchmark_group(if on_redis { "reply_figures_redis" } else { "reply_figures_sqlite" });
    group.sample_size(10);
    for (name, (from, to)) in [("100_days", whole), ("7_days", week)] {
        group.bench_function(format!("kept_per_day/{name}"), |b| {
            b.iter(|| runtime.block_on(stats::gather(store.as_ref(), from, to, now)).unwrap())
        });
        group.bench_function(format!("counted_from_obligations/{name}"), |b| {
            b.iter(|| stats::tally(&runtime.block_on(store.obligations(from, to)).unwrap(), now))
        });
    }
    group.bench_function("owed_soonest_200", |b| {
        let query = OwedQuery { from_ms: whole.0, to_ms: whole.1, awaiting: None, limit: 200 };
        b.iter(|| runtime.block_on(store.owed(query.clone())).unwrap())
    });
    group.finish();
    // The two ways agree.
    let kept = runtime.block_on(stats::gather(store.as_ref(), whole.0, whole.1, now)).unwrap();
    let counted = stats::tally(&runtime.block_on(store.obligations(whole.0, whole.1)).unwrap(), now);
    assert_eq!(kept, counted, "the figures kept are those the obligations give");
    runtime.block_on(store.close());
    if on_redis {
        forget(&prefix);
    }
}

/// Removes the bench's keys from Redis.
fn forget(prefix: &str) {
    let Ok(mut c) = redis::Client::open("redis://127.0.0.1:6379").and_then(|c| c.get_connection()) else { return };
    for pattern in xietong::store::redis::key_patterns(prefix) {
        let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut c).unwrap_or_default();
        for chunk in keys.chunks(1000) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query(&mut c);
        }
    }
}

criterion_group!(benches, reply_figures);
criterion_main!(benches);
