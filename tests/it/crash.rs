//! Nothing acknowledged is lost, and every recipient gets every message: the real binary is
//! killed with SIGKILL while clients are posting, and while webhooks are being delivered; after a restart every message answered 202 is in the store exactly once, and a
//! resend of it is recognised as the same message; each is stored with its outbox (one copy per
//! recipient), never without it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use serde_json::{Value, json};

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 60;

fn message(n: usize) -> Vec<u8> {
    let mut m = example_json("ipo-clue-transfer.json");
    m["xxid"] = json!(format!("CRASH-{n:05}"));
    m["aj"]["ajbh"] = json!(format!("杭市监知执〔2026〕{n}号"));
    serde_json::to_vec(&m).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_message_survives_kill_9() {
    let config = ConfigDir::new("rate_limit:\n  per_second: 100000\n  burst: 100000\n");
    let data = tempfile::tempdir().unwrap();
    let server = BinaryServer::spawn(config.path(), data.path());
    let url = Arc::new(server.url.clone());
    let acked = Arc::new(std::sync::Mutex::new(HashMap::<usize, String>::new()));
    let count = Arc::new(AtomicUsize::new(0));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, acked, count) = (url.clone(), acked.clone(), count.clone());
            tokio::spawn(async move {
                let client = client();
                for i in 0..PER_CLIENT {
                    let n = c * PER_CLIENT + i;
                    let sent = client
                        .post(format!("{url}/v1/messages"))
                        .bearer_auth(demo_token("ip_office:330100"))
                        .header("content-type", "application/json")
                        .body(message(n))
                        .send()
                        .await;
                    // After the kill, requests fail: the client stops.
                    let Ok(r) = sent else { return };
                    if r.status() == 202 {
                        let body: Value = r.json().await.unwrap_or_default();
                        if let Some(id) = body["id"].as_str() {
                            acked.lock().unwrap().insert(n, id.to_string());
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();

    // Kill mid-stream, once a good number of messages were acknowledged.
    while count.load(Ordering::SeqCst) < CLIENTS * PER_CLIENT / 3 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    server.signal("KILL");
    for c in clients {
        c.await.unwrap();
    }
    drop(server);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= CLIENTS * PER_CLIENT / 3 && acked.len() < CLIENTS * PER_CLIENT,
        "killed mid-stream after {} acks",
        acked.len()
    );

    // Exactly once in the store, read directly.
    let conn = rusqlite::Connection::open(data.path().join(xietong::store::sqlite::DB_FILE)).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM messages").unwrap();
    let stored: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no message is stored twice");
    for (n, id) in &acked {
        assert!(unique.contains(id), "message {n} was acknowledged as {id} but is not in the store");
    }
    // The outbox was committed with each message: both recipients, for every stored message.
    let mut outbox = conn
        .prepare("SELECT m.id, count(d.recipient) FROM messages m LEFT JOIN deliveries d ON d.message_seq = m.seq GROUP BY m.id")
        .unwrap();
    let counts: HashMap<String, i64> =
        outbox.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    assert!(counts.values().all(|&c| c == 2), "a message without its two deliveries: {counts:?}");
    drop(outbox);
    drop(stmt);
    drop(conn);

    // After a restart, a resend of an acknowledged message is the same message; a message whose
    // answer was lost is stored once, whatever happened before the kill.
    let server = BinaryServer::spawn(config.path(), data.path());
    for n in 0..CLIENTS * PER_CLIENT {
        let (status, body) = post_json(&server.url, "ip_office:330100", &message(n)).await;
        match acked.get(&n) {
            Some(id) => {
                assert_eq!(status, 200, "message {n}: {body}");
                assert_eq!(body["id"], id.as_str(), "message {n} keeps its id");
            }
            None => assert!(status == 200 || status == 202, "message {n}: {status} {body}"),
        }
    }
    let conn = rusqlite::Connection::open(data.path().join(xietong::store::sqlite::DB_FILE)).unwrap();
    let total: i64 = conn.query_row("SELECT count(DISTINCT native_id) FROM messages", [], |r| r.get(0)).unwrap();
    let rows: i64 = conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!((total, rows), ((CLIENTS * PER_CLIENT) as i64, (CLIENTS * PER_CLIENT) as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_reaches_the_webhook_after_kill_9_mid_delivery() {
    const MESSAGES: usize = 40;
    // The first 5 deliveries are answered; the rest wait at a gate, so the kill is mid-delivery
    // however fast or slow the machine.
    let gate = Gate::default();
    let held = gate.clone();
    let receiver = Receiver::start(move |n, _| if n < 5 { Answer::Status(200) } else { Answer::Held(held.clone()) });
    let config = ConfigDir::new(&fast_delivery(""));
    config.write(
        "subscriptions.yaml",
        &format!(
            "subscriptions:\n  - id: inbox-hook\n    owner: ip_office:330000\n    webhook:\n      url: {}\n      secrets: [{SECRET}]\n      concurrency: 2\n",
            receiver.url
        ),
    );
    let data = tempfile::tempdir().unwrap();
    let server = BinaryServer::spawn(config.path(), data.path());
    let mut posted = HashSet::new();
    for n in 0..MESSAGES {
        let mut m = example_json("prc-bulletin-secret-field.json");
        m["header"]["messageId"] = json!(format!("CRASH-HOOK-{n}"));
        let (status, body) = post_json(&server.url, "procuratorate:330000", &serde_json::to_vec(&m).unwrap()).await;
        assert_eq!(status, 202);
        posted.insert(body["id"].as_str().unwrap().to_string());
    }
    assert!(eventually(20, || receiver.delivered().len() >= 5).await);
    server.signal("KILL");
    drop(server);
    let before = receiver.delivered().len();
    assert!(before < MESSAGES, "killed mid-delivery ({before} of {MESSAGES} delivered)");

    let _restarted = BinaryServer::spawn(config.path(), data.path());
    gate.open();
    let ids = || {
        receiver
            .delivered()
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap_or_default().to_string())
            .collect::<HashSet<_>>()
    };
    assert!(eventually(30, || ids() == posted).await, "every message reached the endpoint after the restart");
    for r in receiver.received() {
        let id = r.json()["id"].as_str().unwrap_or_default().to_string();
        assert_eq!(r.header("webhook-id"), format!("msg_{id}"), "a duplicate carries the same webhook id and event id");
    }
}
