//! The store contract: every scenario runs against the embedded store (SQLite in a temporary
//! directory) and against the Redis store (the real server at 127.0.0.1:6379, a key prefix of
//! its own per test, removed afterwards). Both implement the same traits; this suite is what
//! makes them interchangeable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use xietong::audit::verify::Stored;
use xietong::audit::{Entry, checkpoint::Signer};
use xietong::clock::SystemClock;
use xietong::config::settings::RedisSettings;
use xietong::store::redis::RedisStore;
use xietong::store::sqlite::{self, SqliteStore};
use xietong::store::*;
use xietong::telemetry::Metrics;
use xietong::threads::stats::{self, day, day_start};

/// A store under test, and what reads its audit chain.
enum Backend {
    /// The directory is held so it is removed when the test ends.
    Sqlite(Arc<SqliteStore>, #[allow(dead_code)] tempfile::TempDir),
    /// The prefix is held so its keys are removed when the test ends.
    Redis(Arc<RedisStore>, #[allow(dead_code)] Prefix),
}

/// Removes a test's Redis keys when it ends.
struct Prefix(String);

impl Drop for Prefix {
    fn drop(&mut self) {
        crate::common::forget_redis_prefix(&self.0);
    }
}

impl Backend {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(s, _) => s.clone(),
            Backend::Redis(s, _) => s.clone(),
        }
    }

    /// A second instance on the same data: another connection to the same keys on Redis; on
    /// SQLite, which serves one instance, the same store.
    async fn twin(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(s, _) => s.clone(),
            Backend::Redis(_, prefix) => {
                RedisStore::open(&redis_settings(&prefix.0), Default::default(), Arc::new(SystemClock)).await.unwrap()
            }
        }
    }

    /// The store as the version before the reply figures left it: without them, then opened
    /// again by this version.
    async fn without_reply_figures(self) -> Backend {
        match self {
            Backend::Sqlite(s, dir) => {
                s.close().await;
                drop(s);
                let c = rusqlite::Connection::open(dir.path().join(sqlite::DB_FILE)).unwrap();
                // The reply figures' migration undone, and the one after it (the index of pending
                // attempts), which comes again with it.
                c.execute_batch(
                    "DROP TABLE reply_figures; DROP INDEX obligations_by_opening;
                     DROP INDEX obligations_owed; DROP INDEX obligations_owed_by; DROP INDEX attempts_pending;",
                )
                .unwrap();
                let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
                c.pragma_update(None, "user_version", version - 2).unwrap();
                drop(c);
                let options = sqlite::Options {
                    batch_max: 64,
                    busy_timeout: Duration::from_millis(500),
                    audit: Default::default(),
                };
                let store =
                    SqliteStore::open(dir.path(), options, Metrics::new().store, Arc::new(SystemClock)).unwrap();
                Backend::Sqlite(Arc::new(store), dir)
            }
            Backend::Redis(s, prefix) => {
                s.close().await;
                let mut c = ::redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
                let base = format!("{{{}}}:", prefix.0);
                let keys: Vec<String> = ::redis::cmd("KEYS").arg(format!("{base}rf:*")).query(&mut c).unwrap();
                assert!(keys.len() >= 3, "the days, their figures, the upgrade's marks: {keys:?}");
                let () = ::redis::cmd("DEL").arg(keys).arg(format!("{base}o:owed")).query(&mut c).unwrap();
                let store = RedisStore::open(&redis_settings(&prefix.0), Default::default(), Arc::new(SystemClock))
                    .await
                    .unwrap();
                Backend::Redis(store, prefix)
            }
        }
    }

    /// The whole audit chain, read in pages.
    async fn chain(&self) -> Vec<Stored> {
        let store = self.store();
        let mut all: Vec<Stored> = Vec::new();
        loop {
            let page = store.audit_records(all.last().map_or(0, |s| s.seq), 1000).await.unwrap();
            let done = page.len() < 1000;
            all.extend(page);
            if done {
                return all;
            }
        }
    }
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let options =
        sqlite::Options { batch_max: 64, busy_timeout: Duration::from_millis(500), audit: Default::default() };
    let store = SqliteStore::open(dir.path(), options, Metrics::new().store, Arc::new(SystemClock)).unwrap();
    Backend::Sqlite(Arc::new(store), dir)
}

pub fn redis_settings(prefix: &str) -> RedisSettings {
    RedisSettings { prefix: prefix.to_string(), ..RedisSettings::default() }
}

async fn redis() -> Backend {
    let prefix = format!("test-{}", uuid::Uuid::now_v7());
    let store = RedisStore::open(&redis_settings(&prefix), Default::default(), Arc::new(SystemClock))
        .await
        .expect("a Redis server answers on 127.0.0.1:6379 (.ci/run starts one)");
    Backend::Redis(store, Prefix(prefix))
}

/// Runs each scenario on both stores.
/// The console's search: by the gateway's id or the sender's, case number, sender, type and
/// time, newest first; and each recipient's removals in the trace.
async fn messages_are_found_by_id_case_sender_type_and_time(b: Backend) {
    let store = b.store();
    let first = message(A, "S-1", "h1", &[(B, "primary")]);
    let other = NewMessage {
        subject: Some("另一案".into()),
        message_type: "cn.xietong.typical_case",
        ..message(C, "S-2", "h2", &[(B, "primary")])
    };
    let third = message(A, "S-3", "h3", &[(B, "primary")]);
    // Received 10 ms apart.
    let at = first.received_ms;
    let (other, third) = (NewMessage { received_ms: at + 10, ..other }, NewMessage { received_ms: at + 20, ..third });
    for m in [&first, &other, &third] {
        created(store.accept(m.clone()).await.unwrap());
    }
    let ids = |found: Vec<xietong::store::MessageSummary>| found.into_iter().map(|m| m.id).collect::<Vec<String>>();
    let q = |f: &dyn Fn(&mut MessageQuery)| {
        let mut q = MessageQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(store.search(q(&|_| {})).await.unwrap()),
        [third.id.as_str(), other.id.as_str(), first.id.as_str()],
        "newest first"
    );
    assert_eq!(ids(store.search(q(&|q| q.id = Some(first.id.clone()))).await.unwrap()), [first.id.as_str()]);
    assert_eq!(
        ids(store.search(q(&|q| q.id = Some("S-3".into()))).await.unwrap()),
        [third.id.as_str()],
        "the sender's own id"
    );
    assert_eq!(ids(store.search(q(&|q| q.case = Some("另一案".into()))).await.unwrap()), [other.id.as_str()]);
    assert_eq!(
        ids(store.search(q(&|q| q.sender = Some(A.into()))).await.unwrap()),
        [third.id.as_str(), first.id.as_str()]
    );
    let typical = store.search(q(&|q| q.message_type = Some("cn.xietong.typical_case".into()))).await.unwrap();
    assert_eq!((typical.len(), typical[0].sender.as_str(), typical[0].native_id.as_str()), (1, C, "S-2"));
    let none = q(&|q| {
        q.sender = Some(A.into());
        q.case = Some("另一案".into());
    });
    assert!(store.search(none).await.unwrap().is_empty(), "every criterion holds");
    let later = q(&|q| q.from_ms = Some(at + 10));
    assert_eq!(ids(store.search(later).await.unwrap()), [third.id.as_str(), other.id.as_str()], "from: included");
    let earlier = q(&|q| q.to_ms = Some(at + 10));
    assert_eq!(ids(store.search(earlier).await.unwrap()), [first.id.as_str()], "to: excluded");
    let between = q(&|q| {
        q.from_ms = Some(at + 5);
        q.to_ms = Some(at + 15);
        q.sender = Some(C.into());
    });
    assert_eq!(ids(store.search(between).await.unwrap()), [other.id.as_str()]);
    assert_eq!(store.search(q(&|q| q.limit = Some(2))).await.unwrap().len(), 2);
    // Paging by position: what was committed before the newest one's cursor.
    let newest = store.search(q(&|q| q.limit = Some(1))).await.unwrap()[0].cursor;
    let before = q(&|q| q.before = Some(newest));
    assert_eq!(ids(store.search(before).await.unwrap()), [other.id.as_str(), first.id.as_str()], "the next page");
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::sqlite().await).await })*
        }
        mod on_redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::redis().await).await })*
        }
    };
}

contract!(
    messages_are_found_by_id_case_sender_type_and_time,
    accepts_once_and_tells_duplicates_from_conflicts,
    feeds_page_in_commit_order,
    subscriptions_are_created_changed_and_synced,
    webhook_attempts_keep_thread_order_and_leases,
    webhook_outcomes_dead_letters_replay_and_gone,
    purge_keeps_what_is_still_pending,
    threads_open_answer_escalate_and_fall_due,
    a_reply_answers_the_owed_request_it_names_then_the_oldest_then_the_first_opened,
    concurrent_accepts_keep_one_unbroken_audit_chain,
    audit_records_refusals_entries_and_checkpoints,
    a_copy_that_is_the_event_as_it_is_reads_as_the_event,
    reply_figures_are_kept_as_obligations_open_fall_overdue_and_are_answered,
    reply_figures_of_obligations_stored_before_they_were_kept_are_counted_once,
    outcomes_recorded_together_are_recorded_as_one_by_one,
);

const A: &str = "ip_office:330100";
const B: &str = "procuratorate:330100";
const C: &str = "procuratorate:330000";

fn message(sender: &str, native_id: &str, content: &str, to: &[(&str, &'static str)]) -> NewMessage {
    NewMessage {
        id: uuid::Uuid::now_v7().to_string(),
        sender: sender.into(),
        native_id: native_id.into(),
        message_type: "cn.xietong.bulletin",
        subject: Some("（2026）浙01知民初1号".into()),
        content_sha256: content.into(),
        body_sha256: "b".repeat(64),
        stripped: vec!["/data/attachments/1".into()],
        event: format!(r#"{{"id":"{native_id}","data":"公告"}}"#),
        deliveries: to
            .iter()
            .map(|(r, role)| NewDelivery {
                recipient: r.to_string(),
                role,
                rules: vec!["rule-1".into()],
                event: Some(format!(r#"{{"for":"{r}","id":"{native_id}"}}"#)),
            })
            .collect(),
        received_ms: chrono::Utc::now().timestamp_millis(),
        in_reply_to: None,
        rule_errors: Vec::new(),
    }
}

fn created(a: Accepted) -> Receipt {
    match a {
        Accepted::Created(r) => r,
        other => panic!("expected Created, got {other:?}"),
    }
}

async fn accepts_once_and_tells_duplicates_from_conflicts(b: Backend) {
    let store = b.store();
    let first = message(A, "A-1", "h1", &[(B, "primary"), (C, "copy")]);
    let receipt = created(store.accept(first.clone()).await.unwrap());
    assert_eq!(receipt.id, first.id);
    assert_eq!(receipt.stripped, ["/data/attachments/1"]);
    let ids: Vec<(&str, &str)> = receipt.recipients.iter().map(|r| (r.id.as_str(), r.role.as_str())).collect();
    assert_eq!(ids, [(C, "copy"), (B, "primary")], "sorted by id");

    let again = message(A, "A-1", "h1", &[(B, "primary")]);
    assert_eq!(store.accept(again).await.unwrap(), Accepted::Duplicate(receipt.clone()));
    let changed = message(A, "A-1", "h2", &[(B, "primary")]);
    assert_eq!(store.accept(changed).await.unwrap(), Accepted::Conflict(receipt.clone()));
    // The same native id from another sender is another message.
    created(store.accept(message(C, "A-1", "h1", &[(B, "primary")])).await.unwrap());

    assert_eq!(store.head().await.unwrap(), 2, "the resend and the conflict created nothing");
    let (event, native) = store.message(&first.id).await.unwrap().unwrap();
    assert_eq!((event.as_str(), native.as_str()), (first.event.as_str(), "A-1"));
    assert!(store.message("no-such-id").await.unwrap().is_none());

    let trace = store.trace(&first.id).await.unwrap().unwrap();
    assert_eq!((trace.sender.as_str(), trace.cursor), (A, 1));
    assert_eq!(trace.recipients.len(), 2);
    assert_eq!(trace.recipients[1].rules, ["rule-1"]);
    assert!(trace.rule_errors.is_empty());
    assert!(store.trace("no-such-id").await.unwrap().is_none());
    // The rules whose condition failed on a message stay with it, for its trace.
    let failed = NewMessage {
        rule_errors: vec!["big-cases: the message has no member `amountYuan`".into()],
        ..message(A, "A-2", "h3", &[(B, "primary")])
    };
    created(store.accept(failed.clone()).await.unwrap());
    let trace = store.trace(&failed.id).await.unwrap().unwrap();
    assert_eq!(trace.rule_errors, failed.rule_errors);

    let actions: Vec<String> = b
        .chain()
        .await
        .iter()
        .map(|s| serde_json::from_str::<serde_json::Value>(&s.record).unwrap()["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["accepted", "duplicate", "conflict", "accepted", "accepted"]);
    let report = xietong::audit::verify::verify(b.chain().await.into_iter().map(Ok), &[], None);
    assert!(report.intact(), "{report:?}");
    assert_eq!(store.audit_head().await.unwrap().map(|h| h.0), Some(5));
}

async fn feeds_page_in_commit_order(b: Backend) {
    let store = b.store();
    for i in 1..=5 {
        let to: &[(&str, &'static str)] = if i % 2 == 0 { &[(B, "primary")] } else { &[(B, "primary"), (C, "copy")] };
        created(store.accept(message(A, &format!("F-{i}"), "h", to)).await.unwrap());
    }
    let page = store.feed(B, 0, 3).await.unwrap();
    assert_eq!(page.entries.iter().map(|e| e.cursor).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(page.entries[0].event, format!(r#"{{"for":"{B}","id":"F-1"}}"#), "the recipient's own copy");
    assert_eq!(page.entries[0].message_type, "cn.xietong.bulletin");
    assert_eq!(page.entries[0].subject.as_deref(), Some("（2026）浙01知民初1号"));
    let rest = store.feed(B, 3, 10).await.unwrap();
    assert_eq!(rest.entries.iter().map(|e| e.cursor).collect::<Vec<_>>(), [4, 5]);
    let copies = store.feed(C, 0, 10).await.unwrap();
    assert_eq!(copies.entries.iter().map(|e| e.cursor).collect::<Vec<_>>(), [1, 3, 5]);
    assert!(store.feed("nobody:1", 0, 10).await.unwrap().entries.is_empty());
    assert_eq!(store.head().await.unwrap(), 5);
    assert_eq!(rest.purged_through, 0);
}

fn sub(id: &str, owner: &str, source: &str) -> SubscriptionRow {
    SubscriptionRow {
        id: id.into(),
        owner: owner.into(),
        spec: format!(r#"{{"v":"{id}"}}"#),
        cursor: -1,
        disabled: None,
        source: source.into(),
        created_at: "2026-12-03T10:00:00+08:00".into(),
    }
}

async fn subscriptions_are_created_changed_and_synced(b: Backend) {
    let store = b.store();
    created(store.accept(message(A, "S-1", "h", &[(B, "primary")])).await.unwrap());
    store.create_subscription(sub("api-1", B, "api")).await.unwrap();
    assert!(matches!(store.create_subscription(sub("api-1", B, "api")).await, Err(StoreError::Conflict(_))));
    let list = store.subscriptions().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].cursor, 1, "a new subscription starts at the head");

    assert!(store.acknowledge("api-1", 5).await.unwrap());
    assert!(store.acknowledge("api-1", 3).await.unwrap());
    assert_eq!(store.subscriptions().await.unwrap()[0].cursor, 5, "a cursor never moves back");
    assert!(!store.acknowledge("nope", 3).await.unwrap());

    assert!(store.update_subscription("api-1", Some("{}".into()), Some(Some("gone".into()))).await.unwrap());
    let s = &store.subscriptions().await.unwrap()[0];
    assert_eq!((s.spec.as_str(), s.disabled.as_deref()), ("{}", Some("gone")));
    assert!(store.update_subscription("api-1", None, Some(None)).await.unwrap());
    assert_eq!(store.subscriptions().await.unwrap()[0].disabled, None);
    assert!(!store.update_subscription("nope", None, Some(None)).await.unwrap());

    store.sync_config_subscriptions(vec![sub("cfg-1", B, "config"), sub("cfg-2", C, "config")]).await.unwrap();
    let mut changed = sub("cfg-1", B, "config");
    changed.spec = r#"{"v":"changed"}"#.into();
    store.sync_config_subscriptions(vec![changed]).await.unwrap();
    let ids: Vec<(String, String)> = store.subscriptions().await.unwrap().into_iter().map(|s| (s.id, s.spec)).collect();
    assert_eq!(
        ids,
        [("api-1".into(), "{}".into()), ("cfg-1".into(), r#"{"v":"changed"}"#.into())],
        "config ones follow the file; api ones stay"
    );
    assert!(store.delete_subscription("api-1").await.unwrap());
    assert!(!store.delete_subscription("api-1").await.unwrap());
}

/// The attempts to create for `owner`'s feed entries (position, thread, message id), as the
/// webhook worker makes them from the feed.
async fn new_attempts(store: &Arc<dyn Store>, owner: &str, entries: &[(i64, &str, &str)]) -> Vec<NewAttempt> {
    let feed = store.feed(owner, 0, 100).await.unwrap().entries;
    entries
        .iter()
        .map(|(seq, thread, id)| {
            let e = feed.iter().find(|e| e.cursor == *seq).unwrap();
            NewAttempt {
                seq: *seq,
                thread: thread.to_string(),
                message_id: id.to_string(),
                message_type: e.message_type.clone(),
                event: e.event.clone(),
            }
        })
        .collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A webhook subscription of B with attempts for three messages: two of one case thread.
async fn with_attempts(store: &Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 1..=3 {
        ids.push(created(store.accept(message(A, &format!("W-{i}"), "h", &[(B, "primary")])).await.unwrap()).id);
    }
    let mut s = sub("hook", B, "api");
    s.cursor = 0;
    store.create_subscription(s).await.unwrap();
    let entries =
        new_attempts(store, B, &[(1, "case-x", &ids[0]), (2, "case-x", &ids[1]), (3, "case-y", &ids[2])]).await;
    store.enqueue("hook", entries.clone(), 3).await.unwrap();
    store.enqueue("hook", entries, 3).await.unwrap();
    assert_eq!(store.subscriptions().await.unwrap()[0].cursor, 3);
}

async fn webhook_attempts_keep_thread_order_and_leases(b: Backend) {
    let store = b.store();
    with_attempts(&store).await;
    const LEASE: i64 = 30_000;
    let mut leased = store.lease("hook", 10, now_ms(), LEASE).await.unwrap();
    leased.sort_by_key(|a| a.message_seq);
    assert_eq!(
        leased.iter().map(|a| a.message_seq).collect::<Vec<_>>(),
        [1, 3],
        "the oldest of each thread only; enqueued twice, attempts once"
    );
    let first = &leased[0];
    assert_eq!(first.event, format!(r#"{{"for":"{B}","id":"W-1"}}"#));
    assert!(first.webhook_id.starts_with("msg_"));
    assert_eq!((first.attempts, first.recipient.as_str(), first.message_type.as_str()), (0, B, "cn.xietong.bulletin"));
    assert!(store.lease("hook", 10, now_ms(), LEASE).await.unwrap().is_empty(), "leased ones are not leased again");

    store.complete(first, AttemptOutcome::Delivered { status: 204 }).await.unwrap();
    store.complete(&leased[1], AttemptOutcome::Delivered { status: 204 }).await.unwrap();
    let backlog = store.backlog().await.unwrap().into_iter().find(|b| b.subscription == "hook").unwrap();
    assert!(backlog.last_success_at.is_some() && backlog.last_error.is_none(), "{backlog:?}");
    let short = 300;
    let next = store.lease("hook", 10, now_ms(), short).await.unwrap();
    assert_eq!(next.iter().map(|a| a.message_seq).collect::<Vec<_>>(), [2], "the thread moves on once delivered");

    // An instance that died holding a lease: when the lease ends, another instance (with the
    // same lease setting) takes the attempt over (on Redis, the janitor's XAUTOCLAIM of an entry
    // idle longer than the lease, from the dead consumer).
    let other = b.twin().await;
    assert!(other.lease("hook", 10, now_ms(), short).await.unwrap().is_empty(), "not while the lease runs");
    tokio::time::sleep(Duration::from_millis(short as u64 + 100)).await;
    let again = other.lease("hook", 10, now_ms(), short).await.unwrap();
    assert_eq!(again.iter().map(|a| (a.message_seq, a.attempts)).collect::<Vec<_>>(), [(2, 0)]);
    other.complete(&again[0], AttemptOutcome::Delivered { status: 200 }).await.unwrap();
    assert!(store.lease("hook", 0, now_ms(), LEASE).await.unwrap().is_empty());
    assert!(store.lease("no-such-hook", 10, now_ms(), LEASE).await.unwrap().is_empty());
    // The late outcome of the dead instance changes nothing.
    store
        .complete(&next[0], AttemptOutcome::Dead { status: Some(400), error: "late".into(), response: None })
        .await
        .unwrap();
    assert!(store.dead_letters(None, 10).await.unwrap().is_empty());
}

/// The delivery worker records the outcomes of a subscription's sends together: each as
/// `complete` would, their audit records appended in the order given, and a late outcome in the
/// batch (an attempt finished by then) changing nothing.
async fn outcomes_recorded_together_are_recorded_as_one_by_one(b: Backend) {
    let store = b.store();
    with_attempts(&store).await;
    let mut leased = store.lease("hook", 10, now_ms(), 30_000).await.unwrap();
    leased.sort_by_key(|a| a.message_seq);
    assert_eq!(leased.iter().map(|a| a.message_seq).collect::<Vec<_>>(), [1, 3]);
    let dead = AttemptOutcome::Dead { status: Some(400), error: "HTTP 400".into(), response: Some("no".into()) };
    store
        .complete_all(vec![
            (leased[1].clone(), dead),
            (leased[0].clone(), AttemptOutcome::Delivered { status: 204 }),
            (leased[0].clone(), AttemptOutcome::Dead { status: Some(400), error: "late".into(), response: None }),
        ])
        .await
        .unwrap();
    let letters = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.iter().map(|d| d.webhook_id.as_str()).collect::<Vec<_>>(), [leased[1].webhook_id.as_str()]);
    assert_eq!(letters[0].last_response.as_deref(), Some("no"));
    let next = store.lease("hook", 10, now_ms(), 30_000).await.unwrap();
    assert_eq!(
        next.iter().map(|a| a.message_seq).collect::<Vec<_>>(),
        [2],
        "thread x moves on; the late outcome did nothing"
    );
    let backlog = store.backlog().await.unwrap().into_iter().find(|b| b.subscription == "hook").unwrap();
    assert!(backlog.last_success_at.is_some() && backlog.last_error.is_some(), "{backlog:?}");
    let chain = b.chain().await;
    let outcomes: Vec<(String, String)> = chain
        .iter()
        .map(|s| serde_json::from_str::<serde_json::Value>(&s.record).unwrap())
        .filter(|r| matches!(r["action"].as_str(), Some("delivered" | "dead")))
        .map(|r| (r["action"].as_str().unwrap().to_string(), r["code"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(
        outcomes,
        [("dead".into(), "400".into()), ("delivered".into(), "204".into())],
        "in the order given, once each"
    );
    let report = xietong::audit::verify::verify(chain.into_iter().map(Ok), &[], None);
    assert!(report.intact(), "{report:?}");
}

async fn webhook_outcomes_dead_letters_replay_and_gone(b: Backend) {
    let store = b.store();
    with_attempts(&store).await;
    let leased = store.lease("hook", 10, now_ms(), 30_000).await.unwrap();
    let one = leased.iter().find(|a| a.message_seq == 1).unwrap().clone();
    let three = leased.iter().find(|a| a.message_seq == 3).unwrap().clone();

    let retry = AttemptOutcome::Retry { at_ms: now_ms() + 400, status: Some(503), error: "busy".into() };
    store.complete(&one, retry).await.unwrap();
    assert!(store.lease("hook", 10, now_ms(), 30_000).await.unwrap().is_empty(), "not before its retry time");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let retried = store.lease("hook", 10, now_ms(), 30_000).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts), (one.id, 1));

    let dead = AttemptOutcome::Dead { status: Some(400), error: "refused".into(), response: Some("x".repeat(5000)) };
    store.complete(&retried[0], dead).await.unwrap();
    let letters = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].id, letters[0].attempts, letters[0].last_status), (one.id, 2, Some(400)));
    assert_eq!(letters[0].last_response.as_ref().map(|r| r.len()), Some(2048), "the start of the answer is kept");
    assert!(store.dead_letters(Some("other".into()), 10).await.unwrap().is_empty());
    let hook = |b: Vec<xietong::store::Backlog>| b.into_iter().find(|b| b.subscription == "hook").unwrap();
    let backlog = hook(store.backlog().await.unwrap());
    assert_eq!(backlog.last_error.as_deref(), Some("HTTP 400: refused"), "{backlog:?}");
    assert!(backlog.last_error_at.is_some() && backlog.last_success_at.is_none(), "{backlog:?}");
    // A dead attempt no longer holds its thread back.
    let next = store.lease("hook", 10, now_ms(), 30_000).await.unwrap();
    assert_eq!(next.iter().map(|a| a.message_seq).collect::<Vec<_>>(), [2]);

    assert!(store.replay(one.id, "operator:ops").await.unwrap());
    assert!(!store.replay(one.id, "operator:ops").await.unwrap(), "only a dead attempt is replayed");
    assert!(store.dead_letters(None, 10).await.unwrap().is_empty());

    let trace = store.trace(&one.message_id).await.unwrap().unwrap();
    let hooks = &trace.recipients[0].webhooks;
    assert_eq!(hooks.len(), 1);
    assert_eq!((hooks[0].state.as_str(), hooks[0].attempts), ("pending", 0));

    store.complete(&three, AttemptOutcome::Gone { status: 410 }).await.unwrap();
    let s = &store.subscriptions().await.unwrap()[0];
    assert!(s.disabled.as_deref().is_some_and(|d| d.contains("410")), "{s:?}");
    assert!(store.lease("hook", 10, now_ms(), 30_000).await.unwrap().is_empty());
    let letters = store.dead_letters(Some("hook".into()), 10).await.unwrap();
    assert_eq!(letters.len(), 3, "the gone one and every pending one: {letters:?}");
    // What arrives while it is disabled waits for its owner to enable it again.
    let later = created(store.accept(message(A, "W-4", "h", &[(B, "primary")])).await.unwrap()).id;
    store.enqueue("hook", new_attempts(&store, B, &[(4, "case-z", &later)]).await, 4).await.unwrap();
    assert!(store.lease("hook", 10, now_ms(), 30_000).await.unwrap().is_empty(), "nothing goes to a gone endpoint");
    assert!(store.update_subscription("hook", None, Some(None)).await.unwrap());
    let waiting = store.lease("hook", 10, now_ms(), 30_000).await.unwrap();
    assert_eq!(waiting.iter().map(|a| a.message_seq).collect::<Vec<_>>(), [4], "and it goes once enabled");

    let actions: Vec<String> = b
        .chain()
        .await
        .iter()
        .map(|s| serde_json::from_str::<serde_json::Value>(&s.record).unwrap()["action"].as_str().unwrap().to_string())
        .filter(|a| a != "accepted")
        .collect();
    assert_eq!(actions, ["dead", "replayed", "gone"], "final outcomes and replays are audited, retries are not");
}

async fn purge_keeps_what_is_still_pending(b: Backend) {
    let store = b.store();
    let old = chrono::Utc::now().timestamp_millis() - 48 * 3_600_000;
    let mut ids = Vec::new();
    for i in 1..=3 {
        let mut m = message(A, &format!("P-{i}"), "h", &[(B, "primary"), (C, "copy")]);
        m.received_ms = old;
        ids.push(created(store.accept(m).await.unwrap()).id);
    }
    created(store.accept(message(A, "P-4", "h", &[(B, "primary")])).await.unwrap());
    let mut s = sub("hook", C, "api");
    s.cursor = 0;
    store.create_subscription(s).await.unwrap();
    let entries = new_attempts(&store, C, &[(2, "t", &ids[1])]).await;
    store.enqueue("hook", entries, 3).await.unwrap();

    let before = (chrono::Utc::now() - chrono::Duration::hours(24)).to_rfc3339();
    let gone = store.purge(before.clone()).await.unwrap();
    assert!(gone >= 4, "B's three old entries and C's first at least: {gone}");
    let b_feed = store.feed(B, 0, 10).await.unwrap();
    let kept: Vec<i64> = b_feed.entries.iter().map(|e| e.cursor).collect();
    assert!(!kept.contains(&1) && !kept.contains(&3) && kept.contains(&4), "{kept:?}");
    assert_eq!(b_feed.purged_through, 3);
    let c_feed = store.feed(C, 0, 10).await.unwrap();
    assert!(c_feed.entries.iter().any(|e| e.cursor == 2), "a pending webhook attempt keeps its entry");
    assert!(!c_feed.entries.iter().any(|e| e.cursor == 1));
    assert_eq!(store.lease("hook", 10, now_ms(), 30_000).await.unwrap().len(), 1, "and can still be sent");
    assert_eq!(store.purge(before).await.unwrap(), 0, "purging again removes nothing more");
}

/// The committed messages the thread worker has not seen yet, as steps.
async fn steps(store: &Arc<dyn Store>, role: impl Fn(&LogEntry) -> StepRole) -> Vec<ThreadStep> {
    store
        .thread_backlog(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| ThreadStep {
            role: role(&e),
            seq: e.seq,
            message_id: e.id.clone(),
            message_type: e.message_type.clone(),
            sender: e.sender.clone(),
            subject: e.subject.clone(),
            at_ms: e.received_ms,
            link: e.in_reply_to.clone(),
        })
        .collect()
}

/// A reply of `sender` to A's message `link` (its native id), received at `at`.
fn reply(sender: &str, native_id: &str, link: &str, at: i64) -> NewMessage {
    let mut m = message(sender, native_id, "h", &[(A, "primary")]);
    m.message_type = "cn.xietong.opinion.reply";
    m.in_reply_to = Some(link.into());
    m.received_ms = at;
    m
}

/// How the thread worker reads a reply to an opinion request (no 无法认定).
fn answers_requests(_: &LogEntry) -> StepRole {
    StepRole::Reply {
        answers: vec!["cn.xietong.opinion.request".into()],
        cannot_determine: false,
        escalates: Vec::new(),
    }
}

async fn threads_open_answer_escalate_and_fall_due(b: Backend) {
    let store = b.store();
    let t0 = 1_800_000_000_000i64;
    // A asks B and C; B answers, C says 无法认定 (cannot determine).
    let mut request = message(A, "REQ-1", "h", &[(B, "primary"), (C, "primary")]);
    request.message_type = "cn.xietong.opinion.request";
    request.received_ms = t0;
    let request_id = request.id.clone();
    created(store.accept(request).await.unwrap());
    let backlog = store.thread_backlog(100).await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].primaries, [C, B]);
    let deadline = t0 + 10_000;
    let asks = steps(&store, |e| StepRole::Request { awaiting: e.primaries.clone(), deadline_ms: deadline }).await;
    let out = store.apply_thread_steps(asks.clone()).await.unwrap();
    assert_eq!(out[0].thread.as_deref(), Some(request_id.as_str()));
    assert!(store.thread_backlog(100).await.unwrap().is_empty(), "the cursor moved");

    created(store.accept(reply(B, "REP-B", "REQ-1", t0 + 1_000)).await.unwrap());
    created(store.accept(reply(C, "REP-C", "REQ-1", t0 + 20_000)).await.unwrap());
    let answers = steps(&store, |e| StepRole::Reply {
        answers: vec!["cn.xietong.opinion.request".into()],
        cannot_determine: e.sender == C,
        escalates: vec!["cn.xietong.opinion.request".into()],
    })
    .await;
    let out = store.apply_thread_steps(answers.clone()).await.unwrap();
    assert_eq!(out.len(), 2);
    assert!(out[0].escalate.is_none() && out[0].flag.is_none(), "{:?}", out[0]);
    let escalation = out[1].escalate.as_ref().expect("无法认定 on an escalating request");
    assert_eq!((escalation.request_id.as_str(), escalation.replier.as_str()), (request_id.as_str(), C));
    assert_eq!(store.unescalated(vec!["cn.xietong.opinion.request".into()]).await.unwrap().len(), 1);
    assert!(store.unescalated(vec!["other".into()]).await.unwrap().is_empty());

    // Applying again (another instance racing) changes nothing.
    let again = store.apply_thread_steps(answers).await.unwrap();
    assert!(again.iter().all(|o| o.escalate.is_none()));

    let rows = store.threads(ThreadQuery { limit: 10, ..ThreadQuery::default() }).await.unwrap();
    assert_eq!(rows.len(), 1);
    let t = &rows[0];
    assert_eq!(t.messages.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>(), ["request", "reply", "reply"]);
    let mut states: Vec<(String, String, Option<bool>, Option<String>)> =
        t.obligations.iter().map(|o| (o.awaiting.clone(), o.state.clone(), o.late, o.outcome.clone())).collect();
    states.sort();
    assert_eq!(
        states,
        [
            (C.into(), "answered".into(), Some(true), Some("cannot_determine".into())),
            (B.into(), "answered".into(), Some(false), Some("answered".into())),
        ]
    );
    let by_agency = |a: &str| ThreadQuery { agency: Some(a.into()), limit: 10, ..ThreadQuery::default() };
    assert_eq!(store.threads(by_agency(B)).await.unwrap().len(), 1);
    assert!(store.threads(by_agency("ip_office:110000")).await.unwrap().is_empty());
    let by_id = ThreadQuery { id: Some(request_id.clone()), limit: 10, ..ThreadQuery::default() };
    assert_eq!(store.threads(by_id).await.unwrap().len(), 1);
    let later = ThreadQuery { from_ms: Some(t0 + 1), limit: 10, ..ThreadQuery::default() };
    assert!(store.threads(later).await.unwrap().is_empty());
    assert_eq!(store.obligations(t0, t0 + 1).await.unwrap().len(), 2);
    assert!(store.obligations(t0 + 1, t0 + 2).await.unwrap().is_empty());
    let sender_of = |link: &str| {
        let (store, link) = (store.clone(), link.to_string());
        async move { store.linked(&link, B).await.unwrap().map(|l| l.sender) }
    };
    assert_eq!(sender_of("REQ-1").await.as_deref(), Some(A));
    assert_eq!(sender_of(&request_id).await.as_deref(), Some(A));
    assert_eq!(sender_of("nothing").await, None);
    let linked = store.linked("REP-C", A).await.unwrap().unwrap();
    assert_eq!(
        (linked.sender.as_str(), linked.message_type.as_str(), linked.in_reply_to.as_deref()),
        (C, "cn.xietong.opinion.reply", Some("REQ-1")),
        "a link finds the message's sender, type and what it links to in turn"
    );

    // A second request nobody answers falls due once.
    let mut second = message(A, "REQ-2", "h", &[(B, "primary")]);
    second.message_type = "cn.xietong.opinion.request";
    second.received_ms = t0 + 30_000;
    second.subject = Some("case-2".into());
    created(store.accept(second).await.unwrap());
    let asks = steps(&store, |e| StepRole::Request { awaiting: e.primaries.clone(), deadline_ms: t0 + 40_000 }).await;
    store.apply_thread_steps(asks).await.unwrap();
    assert!(store.due_obligations(t0 + 39_999, 10).await.unwrap().is_empty());
    let due = store.due_obligations(t0 + 40_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].request_native_id.as_str(), due[0].awaiting.as_str(), due[0].case_number.as_deref()),
        ("REQ-2", B, Some("case-2"))
    );
    assert!(store.mark_overdue(due[0].id).await.unwrap());
    assert!(!store.mark_overdue(due[0].id).await.unwrap(), "once");
    assert!(store.due_obligations(t0 + 99_000, 10).await.unwrap().is_empty());

    // Progress on a case joins its latest thread.
    let mut progress = message(B, "PROG-1", "h", &[(A, "primary")]);
    progress.subject = Some("case-2".into());
    created(store.accept(progress).await.unwrap());
    let out = store.apply_thread_steps(steps(&store, |_| StepRole::Progress).await).await.unwrap();
    assert_eq!(out[0].thread, Some(due[0].thread.clone()));
    // A message that refers to nothing stands alone.
    created(store.accept(message(B, "ALONE", "h", &[(A, "primary")])).await.unwrap());
    let out = store.apply_thread_steps(steps(&store, |_| StepRole::Other).await).await.unwrap();
    assert_eq!(out[0].thread, None);
}

const HOUR: i64 = 3_600_000;

/// Requests over two Beijing days, answered on time and late, marked overdue (one answered
/// after), past their deadline unmarked, and open: the store's reply figures (and a period with
/// parts of days) must be what the obligations themselves give. Returns the first day, the time
/// the figures are read at, and the requests' native ids by gateway id.
async fn requests_over_two_days(store: &Arc<dyn Store>) -> (i64, i64, HashMap<String, String>) {
    let d = day(1_800_000_000_000);
    let morning = day_start(d) + 9 * HOUR;
    // native id, received, reply within, owed by
    let requests: [(&str, i64, i64, &[&str]); 6] = [
        ("R1", morning, 2 * HOUR, &[B, C]),
        ("R2", morning + HOUR, 2 * HOUR, &[B, C]),
        ("R3", morning + 2 * HOUR, 30 * HOUR, &[B, C]),
        ("R4", morning + 3 * HOUR, HOUR, &[B, C]),
        ("R5", morning + 24 * HOUR, 2 * HOUR, &[B]),
        ("R6", morning + 25 * HOUR, 48 * HOUR, &[B]),
    ];
    let mut within = HashMap::new();
    let mut natives = HashMap::new();
    for (native, at, reply_within, owed_by) in requests {
        let to: Vec<(&str, &'static str)> = owed_by.iter().map(|a| (*a, "primary")).collect();
        let mut request = message(A, native, "h", &to);
        request.message_type = "cn.xietong.opinion.request";
        request.subject = Some(format!("case-{native}"));
        request.received_ms = at;
        within.insert(native.to_string(), reply_within);
        natives.insert(request.id.clone(), native.to_string());
        created(store.accept(request).await.unwrap());
    }
    let asks = steps(store, |e| StepRole::Request {
        awaiting: e.primaries.clone(),
        deadline_ms: e.received_ms + within[&e.native_id],
    })
    .await;
    store.apply_thread_steps(asks).await.unwrap();

    let replies = |list: &[(&str, &str, i64)]| {
        let (store, list) =
            (store.clone(), list.iter().map(|(s, r, at)| (s.to_string(), r.to_string(), *at)).collect::<Vec<_>>());
        async move {
            for (sender, request, at) in list {
                let m = reply(&sender, &format!("ANSWER-{request}-{sender}"), &request, at);
                created(store.accept(m).await.unwrap());
            }
            let answers = steps(&store, answers_requests).await;
            let out = store.apply_thread_steps(answers).await.unwrap();
            assert!(out.iter().all(|o| o.flag.is_none()), "{out:?}");
        }
    };
    // B answers R1 in 30 minutes and R2 late (3 h); C answers R3 in 12,345 s.
    replies(&[
        (B, "R1", morning + HOUR / 2),
        (B, "R2", morning + 4 * HOUR),
        (C, "R3", morning + 2 * HOUR + 12_345_000),
    ])
    .await;
    // The thread worker marks what fell due by then: R1 and R2 for C, R4 for both.
    let due = store.due_obligations(morning + 5 * HOUR, 100).await.unwrap();
    assert_eq!(due.len(), 4, "{due:?}");
    for d in &due {
        assert!(store.mark_overdue(d.id).await.unwrap());
    }
    // C answers R4 after it was marked overdue.
    replies(&[(C, "R4", morning + 6 * HOUR)]).await;
    // Read 40 h after the first morning: R3 (B) and R5 are past their deadline, not marked.
    (d, morning + 40 * HOUR, natives)
}

/// What the obligations of `[from, to)` give, counted one by one.
async fn counted_one_by_one(store: &Arc<dyn Store>, from: i64, to: i64, now: i64) -> Vec<ReplyFigures> {
    stats::tally(&store.obligations(from, to).await.unwrap(), now)
}

async fn reply_figures_are_kept_as_obligations_open_fall_overdue_and_are_answered(b: Backend) {
    let store = b.store();
    let (d, now, natives) = requests_over_two_days(&store).await;
    let kept = store.reply_figures(d, d + 2, now).await.unwrap();
    assert_eq!(kept, counted_one_by_one(&store, day_start(d), day_start(d + 2), now).await);
    let first_day = store.reply_figures(d, d + 1, now).await.unwrap();
    assert_eq!(
        first_day,
        [
            ReplyFigures {
                agency: C.into(),
                received: 4,
                on_time: 1,
                late: 1,
                overdue: 2,
                reply_times: vec![(10_800, 1), (12_345, 1)]
            },
            ReplyFigures {
                agency: B.into(),
                received: 4,
                on_time: 1,
                late: 1,
                overdue: 2,
                reply_times: vec![(1_800, 1), (10_800, 1)]
            },
        ]
    );
    assert_eq!(store.reply_figures(d + 1, d + 2, now).await.unwrap()[0].overdue, 1, "R5, past its deadline");
    assert!(store.reply_figures(d + 2, d + 9, now).await.unwrap().is_empty());
    // Periods that start or end within a day: whole days from the figures, the rest counted.
    for (from, to, received) in [
        (day_start(d) + 10 * HOUR, day_start(d + 2) + HOUR, 3 * 2 + 2),
        (day_start(d), day_start(d + 1) + 9 * HOUR + 30 * 60_000, 4 * 2 + 1),
        (day_start(d) + 10 * HOUR, day_start(d) + 12 * HOUR, 2 * 2),
    ] {
        let gathered = stats::gather(store.as_ref(), from, to, now).await.unwrap();
        assert_eq!(gathered, counted_one_by_one(&store, from, to, now).await);
        assert_eq!(gathered.iter().map(|f| f.received).sum::<u64>(), received);
    }

    // The replies owed, soonest deadline first: R1 and R2 for C, then R4, R5, R3 and R6 for B.
    let owed = |query: OwedQuery| {
        let (store, natives) = (store.clone(), natives.clone());
        async move {
            let owed = store.owed(query).await.unwrap();
            owed.iter()
                .map(|o| format!("{}/{}", natives[&o.request_id], if o.awaiting == B { "B" } else { "C" }))
                .collect::<Vec<_>>()
        }
    };
    let all = OwedQuery { from_ms: 0, to_ms: i64::MAX, awaiting: None, limit: 10 };
    assert_eq!(owed(all.clone()).await, ["R1/C", "R2/C", "R4/B", "R5/B", "R3/B", "R6/B"]);
    assert_eq!(owed(OwedQuery { limit: 2, ..all.clone() }).await, ["R1/C", "R2/C"]);
    assert_eq!(
        owed(OwedQuery { awaiting: Some(vec![B.into()]), ..all.clone() }).await,
        ["R4/B", "R5/B", "R3/B", "R6/B"]
    );
    assert_eq!(owed(OwedQuery { from_ms: day_start(d + 1), ..all }).await, ["R5/B", "R6/B"]);
}

/// A store written by the version before the reply figures (here: the figures removed, as that
/// version left it) counts its obligations once when this version opens it, and goes on
/// counting from there.
async fn reply_figures_of_obligations_stored_before_they_were_kept_are_counted_once(b: Backend) {
    let store = b.store();
    let (d, now, _) = requests_over_two_days(&store).await;
    let before = store.reply_figures(d, d + 2, now).await.unwrap();
    drop(store);
    let b = b.without_reply_figures().await;
    let store = b.store();
    assert_eq!(store.reply_figures(d, d + 2, now).await.unwrap(), before);
    // Changes to obligations counted by the upgrade are counted as before.
    created(store.accept(reply(B, "ANSWER-R6", "R6", day_start(d) + 35 * HOUR)).await.unwrap());
    store.apply_thread_steps(steps(&store, answers_requests).await).await.unwrap();
    let after = store.reply_figures(d, d + 2, now).await.unwrap();
    assert_eq!(after, counted_one_by_one(&store, day_start(d), day_start(d + 2), now).await);
    assert_eq!(after.iter().map(|f| f.on_time).sum::<u64>(), before.iter().map(|f| f.on_time).sum::<u64>() + 1);
    let owed = store.owed(OwedQuery { from_ms: 0, to_ms: i64::MAX, awaiting: None, limit: 10 }).await.unwrap();
    assert_eq!(owed.len(), 5, "R1, R2 for C, R3, R4, R5 for B: {owed:?}");
}

/// The tie-break of `threads::decide::answer`, pinned on both stores: four requests of A owe B
/// a reply in one thread; R2, R3 and R4 refer to R1, R3 arrived first, R1, R2 and R4 at the same
/// moment. Replies that name R4 and then only a note of the thread answer R4 (named), R3 (the
/// oldest), R1 (tied with R2 and R4 on time, opened first), then R2; one more is flagged.
async fn a_reply_answers_the_owed_request_it_names_then_the_oldest_then_the_first_opened(b: Backend) {
    let store = b.store();
    let t0 = 1_800_000_000_000i64;
    let mut ids = std::collections::BTreeMap::new();
    for (native, link, at) in
        [("R1", None, t0), ("R2", Some("R1"), t0), ("R3", Some("R1"), t0 - 1_000), ("R4", Some("R1"), t0)]
    {
        let mut request = message(A, native, "h", &[(B, "primary")]);
        request.message_type = "cn.xietong.opinion.request";
        request.in_reply_to = link.map(str::to_string);
        request.received_ms = at;
        ids.insert(request.id.clone(), native);
        created(store.accept(request).await.unwrap());
    }
    let mut note = message(A, "NOTE", "h", &[(B, "primary")]);
    note.in_reply_to = Some("R1".into());
    created(store.accept(note).await.unwrap());
    let opened = steps(&store, |e| match e.message_type.as_str() {
        "cn.xietong.opinion.request" => StepRole::Request { awaiting: vec![B.into()], deadline_ms: t0 + 60_000 },
        _ => StepRole::Other,
    })
    .await;
    let out = store.apply_thread_steps(opened).await.unwrap();
    assert!(out.iter().all(|o| o.thread == out[0].thread && o.thread.is_some()), "one thread: {out:?}");

    let mut replies = Vec::new();
    for (n, link) in ["R4", "NOTE", "NOTE", "NOTE", "NOTE"].into_iter().enumerate() {
        let answer = reply(B, &format!("ANSWER-{n}"), link, t0 + 1_000 + n as i64);
        replies.push(answer.id.clone());
        created(store.accept(answer).await.unwrap());
    }
    let answers = steps(&store, answers_requests).await;
    let out = store.apply_thread_steps(answers).await.unwrap();
    assert!(out[..4].iter().all(|o| o.flag.is_none()), "{out:?}");
    assert!(out[4].flag.as_deref().is_some_and(|f| f.contains("already answered")), "{:?}", out[4]);

    let rows = store.threads(ThreadQuery { limit: 10, ..ThreadQuery::default() }).await.unwrap();
    let answered: std::collections::BTreeMap<&str, usize> = rows[0]
        .obligations
        .iter()
        .map(|o| {
            let by = o.answered_by.as_deref().expect("every request answered");
            (ids[&o.request_id], replies.iter().position(|r| r == by).unwrap())
        })
        .collect();
    assert_eq!(answered, [("R1", 2), ("R2", 3), ("R3", 1), ("R4", 0)].into_iter().collect());
}

async fn a_copy_that_is_the_event_as_it_is_reads_as_the_event(b: Backend) {
    let store = b.store();
    let mut m = message(A, "SAME-1", "h", &[(B, "primary"), (C, "copy")]);
    m.deliveries[0].event = None;
    let id = created(store.accept(m.clone()).await.unwrap()).id;
    let b_feed = store.feed(B, 0, 10).await.unwrap().entries;
    assert_eq!(b_feed[0].event, m.event, "kept once, read as the message's event");
    let c_feed = store.feed(C, 0, 10).await.unwrap().entries;
    assert_eq!(c_feed[0].event, format!(r#"{{"for":"{C}","id":"SAME-1"}}"#), "a copy of its own");
    let mut s = sub("hook", B, "api");
    s.cursor = 0;
    store.create_subscription(s).await.unwrap();
    store.enqueue("hook", new_attempts(&store, B, &[(1, "t", &id)]).await, 1).await.unwrap();
    let leased = store.lease("hook", 10, now_ms(), 30_000).await.unwrap();
    assert_eq!(leased[0].event, m.event, "and sent as it");
}

async fn concurrent_accepts_keep_one_unbroken_audit_chain(b: Backend) {
    // Two instances accept at once: 200 messages, each of the first 50 sent a second time (40
    // resent as they were, 10 with other content), so duplicates and conflicts interleave with
    // the writes that append to the chain.
    let stores = [b.store(), b.twin().await];
    let tasks: Vec<_> = (0..250)
        .map(|i| {
            let store = stores[i % 2].clone();
            let (native, content) = match i {
                0..200 => (i, "h"),
                200..240 => (i - 200, "h"),
                _ => (i - 200, "other"),
            };
            tokio::spawn(
                async move { store.accept(message(A, &format!("CC-{native}"), content, &[(B, "primary")])).await },
            )
        })
        .collect();
    let (mut new, mut again) = (0, 0);
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Accepted::Created(_) => new += 1,
            Accepted::Duplicate(_) | Accepted::Conflict(_) => again += 1,
        }
    }
    assert_eq!((new, again), (200, 50));
    assert_eq!(stores[0].head().await.unwrap(), 200);
    assert_eq!(stores[1].feed(B, 0, 1000).await.unwrap().entries.len(), 200);
    let chain = b.chain().await;
    assert_eq!(chain.len(), 250, "one record per accept, duplicate and conflict");
    let report = xietong::audit::verify::verify(chain.into_iter().map(Ok), &[], None);
    assert!(report.intact(), "{report:?}");
}

async fn audit_records_refusals_entries_and_checkpoints(b: Backend) {
    let store = b.store();
    let refusal = Refusal {
        sender: Some(A.parse().unwrap()),
        body_sha256: "c".repeat(64),
        code: "state_secret",
        pointers: "/mj".into(),
    };
    store.record_refusal(refusal).await.unwrap();
    store.audit(Entry::new("reloaded").actor("operator:ops")).await.unwrap();
    let chain = b.chain().await;
    let first: serde_json::Value = serde_json::from_str(&chain[0].record).unwrap();
    assert_eq!(
        (first["action"].as_str(), first["code"].as_str(), first["detail"].as_str()),
        (Some("refused"), Some("state_secret"), Some("/mj"))
    );
    let (seq, hash) = store.audit_head().await.unwrap().unwrap();
    assert_eq!(seq, 2);
    let signer = Signer::generate();
    let checkpoint = signer.sign(seq, &hash, "2026-12-03T10:00:00+08:00");
    store.add_audit_checkpoint(checkpoint.clone()).await.unwrap();
    store.add_audit_checkpoint(checkpoint.clone()).await.unwrap();
    assert_eq!(store.audit_checkpoints().await.unwrap(), std::slice::from_ref(&checkpoint));
    let report = xietong::audit::verify::verify(chain.into_iter().map(Ok), &[checkpoint], Some(&signer.verifier()));
    assert!(report.intact() && report.signatures_checked == 1, "{report:?}");
}

/// Redis only: a delivery queue whose stream or consumer group is lost (the key deleted, the
/// group destroyed, Redis restarted without its data) is made again from the pending attempts
/// at the next lease; an attempt another instance is still sending waits for its lease to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_lost_queue_stream_or_group_is_made_again() {
    let b = redis().await;
    let Backend::Redis(_, Prefix(prefix)) = &b else { unreachable!() };
    let ready = format!("{{{prefix}:q:hook}}:ready");
    let mut c = ::redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    let store = b.store();
    with_attempts(&store).await;
    let sending = store.lease("hook", 1, now_ms(), 30_000).await.unwrap();
    assert_eq!(sending.iter().map(|a| a.message_seq).collect::<Vec<_>>(), [1]);

    let () = ::redis::cmd("DEL").arg(&ready).query(&mut c).unwrap();
    let next = store.lease("hook", 10, now_ms(), 30_000).await.unwrap();
    assert_eq!(next.iter().map(|a| a.message_seq).collect::<Vec<_>>(), [3], "not the one still being sent");
    store.complete(&sending[0], AttemptOutcome::Delivered { status: 200 }).await.unwrap();
    let then = store.lease("hook", 10, now_ms(), 30_000).await.unwrap();
    assert_eq!(then.iter().map(|a| a.message_seq).collect::<Vec<_>>(), [2], "its thread goes on");

    let () = ::redis::cmd("XGROUP").arg("DESTROY").arg(&ready).arg("workers").query(&mut c).unwrap();
    assert!(store.lease("hook", 10, now_ms(), 30_000).await.unwrap().is_empty(), "2 and 3 are being sent");
    for a in next.iter().chain(&then) {
        store.complete(a, AttemptOutcome::Delivered { status: 200 }).await.unwrap();
    }
    let id = created(store.accept(message(A, "W-4", "h", &[(B, "primary")])).await.unwrap()).id;
    store.enqueue("hook", new_attempts(&store, B, &[(4, "case-z", &id)]).await, 4).await.unwrap();
    let last = store.lease("hook", 10, now_ms(), 30_000).await.unwrap();
    assert_eq!(last.iter().map(|a| a.message_seq).collect::<Vec<_>>(), [4], "the group works again");
    let groups: Vec<::redis::Value> = ::redis::cmd("XINFO").arg("GROUPS").arg(&ready).query(&mut c).unwrap();
    assert_eq!(groups.len(), 1, "one group");
}
