use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::SystemClock;
use crate::store::{Accepted, Feeds, Messages, NewDelivery, NewMessage, Refusal, WebhookQueue};
use crate::telemetry::Metrics;

fn options() -> Options {
    Options { batch_max: 64, busy_timeout: Duration::from_millis(200), audit: Default::default() }
}

fn message(native_id: &str, content: &str) -> NewMessage {
    NewMessage {
        id: uuid::Uuid::now_v7().to_string(),
        sender: "ip_office:330100".into(),
        native_id: native_id.into(),
        message_type: "cn.xietong.bulletin",
        subject: None,
        content_sha256: content.into(),
        body_sha256: "b".repeat(64),
        stripped: vec!["/data/attachments/1".into()],
        event: r#"{"specversion":"1.0"}"#.into(),
        deliveries: vec![
            NewDelivery {
                recipient: "procuratorate:330100".into(),
                role: "copy",
                rules: vec!["r".into()],
                event: Some("{}".into()),
            },
            NewDelivery {
                recipient: "public_security:330100".into(),
                role: "primary",
                rules: vec!["r".into()],
                event: Some("{}".into()),
            },
        ],
        received_ms: 0,
        in_reply_to: None,
        rule_errors: Vec::new(),
    }
}

fn count(path: &Path, sql: &str) -> i64 {
    Connection::open(path).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn accepts_once_and_tells_duplicates_from_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store, Arc::new(SystemClock)).unwrap();
    let first = message("A-1", "h1");
    let Accepted::Created(receipt) = store.accept(first.clone()).await.unwrap() else { panic!("not created") };
    assert_eq!(receipt.id, first.id);
    let ids: Vec<&str> = receipt.recipients.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["procuratorate:330100", "public_security:330100"]);

    let again = message("A-1", "h1");
    assert_eq!(store.accept(again).await.unwrap(), Accepted::Duplicate(receipt.clone()));
    let changed = message("A-1", "h2");
    assert_eq!(store.accept(changed).await.unwrap(), Accepted::Conflict(receipt));
    store.close().await;

    assert_eq!(count(&dir.path().join(DB_FILE), "SELECT count(*) FROM messages"), 1);
    assert_eq!(count(&dir.path().join(DB_FILE), "SELECT count(*) FROM audit"), 3);
    assert_eq!(count(&dir.path().join(DB_FILE), "SELECT count(*) FROM deliveries"), 2, "the outbox is committed once");
}

#[tokio::test]
async fn remembers_messages_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store, Arc::new(SystemClock)).unwrap();
    let m = message("A-2", "h");
    store.accept(m.clone()).await.unwrap();
    store.close().await;
    assert!(matches!(store.accept(message("A-3", "h")).await, Err(StoreError::Closed)));

    let reopened = SqliteStore::open(dir.path(), options(), Metrics::new().store, Arc::new(SystemClock)).unwrap();
    match reopened.accept(message("A-2", "h")).await.unwrap() {
        Accepted::Duplicate(r) => {
            assert_eq!(r.id, m.id);
            assert_eq!(r.recipients.len(), 2, "the first receipt's recipients, from the outbox");
        }
        other => panic!("expected the first receipt, got {other:?}"),
    }
}

#[tokio::test]
async fn commits_concurrent_messages_in_shared_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let store =
        Arc::new(SqliteStore::open(dir.path(), options(), metrics.store.clone(), Arc::new(SystemClock)).unwrap());
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.accept(message(&format!("B-{i}"), "h")).await })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Ok(Accepted::Created(_))));
    }
    let text = metrics.render();
    let commits: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("xietong_store_batch_size_count "))
        .and_then(|n| n.trim().parse().ok())
        .expect("batch size count is exported");
    assert!(commits < 200, "200 concurrent messages took {commits} transactions: no group commit");
    assert_eq!(count(&dir.path().join(DB_FILE), "SELECT count(*) FROM messages"), 200);
}

#[tokio::test]
async fn reports_unavailable_while_another_process_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store, Arc::new(SystemClock)).unwrap();
    let blocker = Connection::open(dir.path().join(DB_FILE)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let err = store.accept(message("C-1", "h")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(store.ready().await.is_err());

    blocker.execute_batch("ROLLBACK").unwrap();
    assert!(
        matches!(store.accept(message("C-1", "h")).await, Ok(Accepted::Created(_))),
        "nothing half-written blocks a retry"
    );
    assert!(store.ready().await.is_ok());
}

#[tokio::test]
async fn audits_refusals_without_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store, Arc::new(SystemClock)).unwrap();
    let refusal = Refusal {
        sender: Some("ip_office:330000".parse().unwrap()),
        body_sha256: "c".repeat(64),
        code: "state_secret",
        pointers: "/mj".into(),
    };
    store.record_refusal(refusal).await.unwrap();
    store.close().await;
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let row: (String, String, String, String) = conn
        .query_row(
            "SELECT record ->> 'action', record ->> 'actor', record ->> 'code', record ->> 'detail' FROM audit",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(row, ("refused".into(), "ip_office:330000".into(), "state_secret".into(), "/mj".into()));
}

#[tokio::test]
async fn the_migrations_keep_each_copy_once_and_mark_the_heads_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    // A store of the version before: every copy written out, one of them the event as it is.
    {
        let conn = open_connection(&path, Duration::from_millis(200)).unwrap();
        // The outbox migration is the sixth.
        let before: i64 = 5;
        for sql in &schema::MIGRATIONS[..before as usize] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before).unwrap();
        conn.execute(
            "INSERT INTO messages (seq, id, sender, native_id, type, content_sha256, received_at, stripped, event)
             VALUES (1, 'm1', 'ip_office:330100', 'N1', 'cn.xietong.bulletin', 'h', 't', '[]', '{\"same\":1}')",
            [],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO deliveries (message_seq, recipient, role, rules, event) VALUES
                (1, 'procuratorate:330100', 'primary', '[]', '{\"same\":1}'),
                (1, 'public', 'copy', '[]', '{\"masked\":1}');
             INSERT INTO messages (seq, id, sender, native_id, type, content_sha256, received_at, stripped, event)
                VALUES (2, 'm2', 'ip_office:330100', 'N2', 'cn.xietong.bulletin', 'h', 't', '[]', '{}');
             INSERT INTO deliveries (message_seq, recipient, role, rules, event)
                VALUES (2, 'procuratorate:330100', 'primary', '[]', '{}');
             INSERT INTO subscriptions (id, owner, spec, cursor, source, created_at)
                VALUES ('hook', 'procuratorate:330100', '{}', 2, 'api', 't');
             INSERT INTO webhook_attempts (subscription, message_seq, webhook_id, thread, state, next_at, created_at, updated_at)
                VALUES ('hook', 1, 'msg_m1', 'case', 'pending', 0, 't', 't'), ('hook', 2, 'msg_m2', 'case', 'pending', 0, 't', 't');",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store, Arc::new(SystemClock)).unwrap();
    assert_eq!(
        count(&path, "SELECT count(*) FROM deliveries WHERE event IS NULL AND message_seq = 1"),
        1,
        "the same one refers to it"
    );
    assert_eq!(store.feed("procuratorate:330100", 0, 10).await.unwrap().entries[0].event, r#"{"same":1}"#);
    assert_eq!(store.feed("public", 0, 10).await.unwrap().entries[0].event, r#"{"masked":1}"#);
    assert_eq!(count(&path, "PRAGMA user_version"), schema::MIGRATIONS.len() as i64);
    // The pending attempts of one thread: the older is its head, the one a lease takes.
    let leased = store.lease("hook", 10, 1, 1000).await.unwrap();
    assert_eq!(leased.iter().map(|a| a.message_seq).collect::<Vec<_>>(), [1]);
    assert_eq!(leased[0].event, r#"{"same":1}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_while_writes_never_pause() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open(dir.path(), options(), Metrics::new().store, Arc::new(SystemClock)).unwrap());
    // 64 writers committing 80 MiB of events without a pause between commits.
    let writers: Vec<_> = (0..64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..80 {
                    let mut m = message(&format!("WAL-{w}-{i}"), "h");
                    m.event = "x".repeat(16 * 1024);
                    store.accept(m).await.unwrap();
                }
            })
        })
        .collect();
    let mut largest = 0;
    for w in writers {
        w.await.unwrap();
        largest = largest.max(std::fs::metadata(dir.path().join(format!("{DB_FILE}-wal"))).map_or(0, |m| m.len()));
    }
    assert!(largest < 48 * 1024 * 1024, "the WAL grew to {largest} bytes");
    assert_eq!(count(&dir.path().join(DB_FILE), "SELECT count(*) FROM messages"), 64 * 80);
}

#[tokio::test]
async fn a_threads_pending_attempts_are_found_without_walking_its_delivered_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store, Arc::new(SystemClock)).unwrap();
    let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
    for sql in [webhooks::ENQUEUE, webhooks::PROMOTE_NEXT] {
        let mut plan = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let unbound = std::iter::repeat_n(rusqlite::types::Null, plan.parameter_count());
        let steps: Vec<String> = plan
            .query_map(rusqlite::params_from_iter(unbound), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        // attempts_thread would walk every attempt of the thread, delivered ones first.
        assert!(steps.iter().any(|s| s.contains("INDEX attempts_pending")), "{sql}\n{steps:#?}");
    }
    store.close().await;
}

#[tokio::test]
async fn the_delivery_statements_are_not_prepared_again_for_each_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store, Arc::new(SystemClock)).unwrap();
    let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
    for sql in [webhooks::LEASE, webhooks::PROMOTE_NEXT, webhooks::ENQUEUE] {
        let mut statement = c.prepare(sql).unwrap();
        // Other values each time, as each delivery binds its own.
        for n in 0..5_i64 {
            for i in 1..=statement.parameter_count() {
                statement.raw_bind_parameter(i, n * 10 + i as i64).unwrap();
            }
            let mut rows = statement.raw_query();
            while rows.next().unwrap().is_some() {}
        }
        let again = statement.get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(again, 0, "prepared again {again} times in 5 runs:\n{sql}");
    }
    store.close().await;
}

/// A delivery's turn in one writer job: the outcomes recorded, the thread's next attempt made
/// its head and leased at once — unless the subscription is no longer the one the caller sends
/// for, when the outcomes are still recorded and nothing is leased.
#[tokio::test]
async fn outcomes_and_the_next_lease_are_one_step_that_a_changed_spec_stops() {
    use crate::store::{Attempt, AttemptOutcome, NewAttempt, NextLease, SubscriptionRow, Subscriptions};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store, Arc::new(SystemClock)).unwrap();
    let row = SubscriptionRow {
        id: "hook".into(),
        owner: "procuratorate:330100".into(),
        spec: "spec-1".into(),
        cursor: 0,
        disabled: None,
        source: "api".into(),
        created_at: "t".into(),
    };
    store.create_subscription(row).await.unwrap();
    let mut entries = Vec::new();
    for n in 1..=3 {
        store.accept(message(&format!("N{n}"), "c")).await.unwrap();
        let message_id = format!("m{n}");
        let (message_type, event) = ("cn.xietong.bulletin".to_string(), String::new());
        entries.push(NewAttempt { seq: n, thread: "case".into(), message_id, message_type, event });
    }
    store.enqueue("hook", entries, 3).await.unwrap();
    let seqs = |attempts: &[Attempt]| attempts.iter().map(|a| a.message_seq).collect::<Vec<_>>();
    let next =
        |spec: &str| NextLease { subscription: "hook".into(), spec: spec.into(), max: 10, now_ms: 1, lease_ms: 1000 };
    let delivered = AttemptOutcome::Delivered { status: 200 };

    let first = store.lease("hook", 10, 1, 1000).await.unwrap();
    assert_eq!(seqs(&first), [1], "one thread: its oldest attempt only");
    let leased = store.complete_and_lease(vec![(first[0].clone(), delivered.clone())], &next("spec-1")).await.unwrap();
    assert_eq!(leased.as_deref().map(seqs), Some(vec![2]), "the next of the thread, in the same step");

    let changed = store.complete_and_lease(vec![(leased.unwrap()[0].clone(), delivered)], &next("spec-0")).await;
    assert_eq!(changed.unwrap().map(|a| a.len()), Some(0), "another spec: nothing leased");
    let path = dir.path().join(DB_FILE);
    assert_eq!(count(&path, "SELECT count(*) FROM webhook_attempts WHERE state = 'delivered'"), 2, "yet recorded");
    assert_eq!(seqs(&store.lease("hook", 10, 1, 1000).await.unwrap()), [3], "the third is the head, due");
    store.close().await;
}
