//! Nothing acknowledged is lost, and every recipient gets every message: the real binary is
//! killed with SIGKILL while clients are posting, and while webhooks are being delivered, on the
//! embedded store and (`XIETONG_TEST_STORE=redis`, the Redis profile) on Redis. After a restart
//! every message answered 202 is in each recipient's feed exactly once, and a resend of it is
//! recognised as the same message; on the embedded store the file is also read directly: each
//! message stored once, with its outbox (one copy per recipient), never without it.

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

/// Every id in `feed` (read as its owner), in order.
async fn feed_ids(url: &str, feed: &str) -> Vec<String> {
    let events = inbox_until(url, feed, |_| true).await;
    events.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

/// The clue transfers' two recipients: the police, and the procuratorate in copy.
const RECIPIENTS: [&str; 2] = ["public_security:330100", "procuratorate:330100"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_message_survives_kill_9() {
    let config = ConfigDir::new("rate_limit:\n  per_second: 100000\n  burst: 100000\n");
    config.connect(RECIPIENTS[0]);
    let mut exchange = Exchange::start(config);
    let url = Arc::new(exchange.url().to_string());
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
    exchange.kill();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= CLIENTS * PER_CLIENT / 3 && acked.len() < CLIENTS * PER_CLIENT,
        "killed mid-stream after {} acks",
        acked.len()
    );

    // On the embedded store, read directly too: each message once, each with its outbox.
    if let Some(conn) = exchange.sqlite() {
        let mut stmt = conn.prepare("SELECT id FROM messages").unwrap();
        let stored: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        let unique: HashSet<&String> = stored.iter().collect();
        assert_eq!(unique.len(), stored.len(), "no message is stored twice");
        let mut outbox = conn
            .prepare("SELECT m.id, count(d.recipient) FROM messages m LEFT JOIN deliveries d ON d.message_seq = m.seq GROUP BY m.id")
            .unwrap();
        let counts: HashMap<String, i64> =
            outbox.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        assert!(counts.values().all(|&c| c == 2), "a message without its two deliveries: {counts:?}");
    }

    // After a restart, on either store: every acknowledged message is in both recipients' feeds,
    // once (the outbox was committed with it).
    exchange.restart();
    for feed in RECIPIENTS {
        let ids = feed_ids(exchange.url(), feed).await;
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{feed}: a message delivered twice");
        for (n, id) in &acked {
            assert!(unique.contains(id), "{feed}: message {n} was acknowledged as {id} but never reached it");
        }
    }

    // A resend of an acknowledged message is the same message; a message whose answer was lost
    // is stored once, whatever happened before the kill.
    for n in 0..CLIENTS * PER_CLIENT {
        let (status, body) = post_json(exchange.url(), "ip_office:330100", &message(n)).await;
        match acked.get(&n) {
            Some(id) => {
                assert_eq!(status, 200, "message {n}: {body}");
                assert_eq!(body["id"], id.as_str(), "message {n} keeps its id");
            }
            None => assert!(status == 200 || status == 202, "message {n}: {status} {body}"),
        }
    }
    for feed in RECIPIENTS {
        let ids = feed_ids(exchange.url(), feed).await;
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!((unique.len(), ids.len()), (CLIENTS * PER_CLIENT, CLIENTS * PER_CLIENT), "{feed}");
    }
}

/// A clue transfer of Suzhou's IP office across Shanghai, Suzhou and Hangzhou: to the Suzhou
/// police, copied to the Suzhou procuratorate and to the Yangtze delta's hub.
fn cross_region(n: usize) -> Vec<u8> {
    let mut m = example_json("ipo-clue-transfer-cross-region.json");
    m["xxid"] = json!(format!("CRASH-HOOK-{n}"));
    m["aj"]["ajbh"] = json!(format!("苏市监知执〔2026〕{n}号"));
    serde_json::to_vec(&m).unwrap()
}

/// Killed mid-delivery with three recipients at once: an agency reading its feed, another in
/// copy, and a hub whose subscription pushes to a webhook. After the restart each recipient has
/// every acknowledged message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_reaches_every_recipient_after_kill_9_mid_delivery() {
    const MESSAGES: usize = 40;
    const AGENCIES: [&str; 2] = ["public_security:320500", "procuratorate:320500"];
    // The first 5 deliveries are answered; the rest wait at a gate, so the kill is mid-delivery
    // however fast or slow the machine.
    let gate = Gate::default();
    let held = gate.clone();
    let receiver = Receiver::start(move |n, _| if n < 5 { Answer::Status(200) } else { Answer::Held(held.clone()) });
    let config = ConfigDir::new(&fast_delivery(""));
    config.write(
        "subscriptions.yaml",
        &format!(
            "subscriptions:\n  - id: hub-hook\n    owner: hub:yangtze_delta\n    webhook:\n      url: {}\n      secrets: [{SECRET}]\n      concurrency: 2\n",
            receiver.url
        ),
    );
    for agency in AGENCIES {
        config.connect(agency);
    }
    let mut exchange = Exchange::start(config);
    let mut posted = HashSet::new();
    for n in 0..MESSAGES {
        let (status, body) = post_json(exchange.url(), "ip_office:320500", &cross_region(n)).await;
        assert_eq!(status, 202, "{body}");
        let mut to = recipients(&body);
        to.sort();
        assert_eq!(to, ["hub:yangtze_delta copy", "procuratorate:320500 copy", "public_security:320500 primary"]);
        posted.insert(body["id"].as_str().unwrap().to_string());
    }
    assert!(eventually(20, || receiver.delivered().len() >= 5).await);
    exchange.kill();
    let before = receiver.delivered().len();
    assert!(before < MESSAGES, "killed mid-delivery ({before} of {MESSAGES} delivered)");

    exchange.restart();
    gate.open();
    let ids = || {
        receiver
            .delivered()
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap_or_default().to_string())
            .collect::<HashSet<_>>()
    };
    assert!(eventually(30, || ids() == posted).await, "every message reached the hub's endpoint after the restart");
    for r in receiver.received() {
        let id = r.json()["id"].as_str().unwrap_or_default().to_string();
        assert_eq!(r.header("webhook-id"), format!("msg_{id}"), "a duplicate carries the same webhook id and event id");
    }
    for agency in AGENCIES {
        let ids: HashSet<String> = feed_ids(exchange.url(), agency).await.into_iter().collect();
        assert_eq!(ids, posted, "{agency} has every message");
    }
}
