use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::NewDelivery;
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
                event: "{}".into(),
            },
            NewDelivery {
                recipient: "public_security:330100".into(),
                role: "primary",
                rules: vec!["r".into()],
                event: "{}".into(),
            },
        ],
        received_ms: 0,
        in_reply_to: None,
    }
}

fn count(path: &Path, sql: &str) -> i64 {
    Connection::open(path).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn accepts_once_and_tells_duplicates_from_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store).unwrap();
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
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store).unwrap();
    let m = message("A-2", "h");
    store.accept(m.clone()).await.unwrap();
    store.close().await;
    assert!(matches!(store.accept(message("A-3", "h")).await, Err(StoreError::Closed)));

    let reopened = SqliteStore::open(dir.path(), options(), Metrics::new().store).unwrap();
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
    let store = Arc::new(SqliteStore::open(dir.path(), options(), metrics.store.clone()).unwrap());
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
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store).unwrap();
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
    let store = SqliteStore::open(dir.path(), options(), Metrics::new().store).unwrap();
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
