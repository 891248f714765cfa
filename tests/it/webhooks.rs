//! Push delivery over real HTTP to real receivers on 127.0.0.1: signatures checked by the
//! official Standard Webhooks library, retries with a stable webhook id, Retry-After, dead
//! letters and replay, 410, timeouts and leases, order per case thread, and per-endpoint limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

/// A server whose `ip_office:330000` inbox has webhook subscriptions (id, receiver url, extra
/// webhook YAML) on it.
fn server_with(hooks: &[(&str, &str, &str)], delivery: &str) -> TestServer {
    let config = ConfigDir::new(&fast_delivery(delivery));
    let mut yaml = String::from("subscriptions:\n");
    for (id, url, extra) in hooks {
        yaml.push_str(&format!("  - id: {id}\n    owner: ip_office:330000\n    webhook:\n      url: {url}\n      secrets: [{SECRET}]\n{extra}"));
    }
    config.write("subscriptions.yaml", &yaml);
    TestServer::with_config(config)
}

/// The Zhejiang procuratorate's bulletin `n` to ip_office:330000, on a case thread of its own
/// (bulletins have no case: the thread is then per message).
fn hook_bulletin(n: usize) -> Vec<u8> {
    bulletin(&format!("HOOK-{n}"))
}

/// A related-case notice on case `case` (a case thread), as a canonical event.
fn notice(n: usize, case: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"specversion": "1.0", "id": format!("NOTICE-{n}"), "type": "cn.xietong.related_case.notice",
        "time": "2026-11-24T10:00:00+08:00",
        "data": {"sender": {"id": "procuratorate:330000"}, "case": {"number": case, "divisions": ["330106"]}, "content": format!("进展 {n}"),
                 "redactions": [], "classifiedFields": []}}))
    .unwrap()
}

async fn post(server: &TestServer, body: Vec<u8>, canonical: bool) -> String {
    let ct = if canonical { "application/cloudevents+json" } else { "application/json" };
    let r = post_as(&server.url, "procuratorate:330000", ct, body).await;
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

/// The trace of message `id` once its first webhook attempt is recorded as delivered (the
/// receiver sees the request a moment before the gateway records the answer).
async fn delivered_trace(server: &TestServer, id: &str) -> Value {
    let mut trace = Value::Null;
    for _ in 0..100 {
        trace = admin_get(server, &format!("/v1/admin/messages/{id}")).await;
        if trace["recipients"][0]["webhooks"][0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trace
}

async fn admin_get(server: &TestServer, path: &str) -> Value {
    operator_get(&format!("{}{path}", server.url)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_subscriptions_are_stored_before_the_gateway_accepts_anything() {
    // A subscription new in subscriptions.yaml starts at the head of its feed: had it been
    // stored after the first message was accepted, it would never see that message.
    let receiver = Receiver::start(|_, _| Answer::Status(200));
    let server = server_with(&[("inbox-hook", &receiver.url, "")], "");
    let stored = server.gateway.store.subscriptions().await.unwrap();
    assert_eq!(stored.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["inbox-hook"]);
    assert_eq!(stored[0].cursor, 0, "from the head of an empty feed");
    post(&server, hook_bulletin(10), false).await;
    assert!(eventually(10, || receiver.delivered().len() == 1).await);
}

/// A webhook subscription's filter holds for pushes as for feeds: a division filter reads each
/// event's case divisions, a type filter the message type alone; each push carries its own
/// message's id (`webhook-id` and the event's `id`).
#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_filter_passes_only_the_messages_it_names() {
    let by_division = Receiver::start(|_, _| Answer::Status(200));
    let by_type = Receiver::start(|_, _| Answer::Status(200));
    let server = server_with(
        &[
            ("by-division", &by_division.url, "    filter:\n      divisions: [\"3301\"]\n"),
            ("by-type", &by_type.url, "    filter:\n      types: [cn.xietong.bulletin]\n"),
        ],
        "",
    );
    let bulletin = post(&server, hook_bulletin(20), false).await;
    let notice = post(&server, notice(21, "FILTER-1"), true).await;
    let last = post(&server, hook_bulletin(22), false).await;
    // Settled once both subscriptions have read the whole feed and have nothing pending: what
    // the receivers hold then is all they will get.
    let store = server.gateway.store.clone();
    let mut settled = false;
    for _ in 0..500 {
        let feed = store.feed("ip_office:330000", 0, 100).await.unwrap();
        let end = feed.entries.last().map_or(0, |e| e.cursor);
        let read = store.subscriptions().await.unwrap().iter().all(|s| s.cursor >= end);
        let pending: i64 = store.backlog().await.unwrap().iter().map(|b| b.pending).sum();
        if end > 0 && read && pending == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(settled, "both subscriptions read the feed to its end and delivered what they took");
    // Sorted: bulletins have no case, so each is a thread of its own and they may cross.
    let ids = |r: &Receiver| -> Vec<(String, String)> {
        let mut ids: Vec<(String, String)> = r
            .delivered()
            .iter()
            .map(|d| (d.header("webhook-id").to_string(), d.json()["id"].as_str().unwrap().to_string()))
            .collect();
        ids.sort();
        ids
    };
    let mut bulletins = [(format!("msg_{bulletin}"), bulletin.clone()), (format!("msg_{last}"), last.clone())];
    bulletins.sort();
    assert_eq!(ids(&by_division), [(format!("msg_{notice}"), notice.clone())], "only the case in 杭州 (3301)");
    assert_eq!(ids(&by_type), bulletins, "only the bulletins");
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_signed_per_standard_webhooks_and_carry_the_cloudevent() {
    let receiver = Receiver::start(|_, _| Answer::Status(204));
    let server = server_with(&[("inbox-hook", &receiver.url, "")], "");
    let id = post(&server, hook_bulletin(1), false).await;
    assert!(eventually(10, || receiver.delivered().len() == 1).await);
    let got = &receiver.received()[0];

    // Verified by the official library (also against its 5-minute timestamp tolerance).
    let official = standardwebhooks::Webhook::new(SECRET).unwrap();
    official.verify(&got.body, &got.headers).expect("the official Standard Webhooks library accepts the signature");
    assert_eq!(got.header("webhook-id"), format!("msg_{id}"));
    assert!(got.header("webhook-signature").starts_with("v1,"));
    assert_eq!(got.header("content-type"), "application/cloudevents+json; charset=utf-8");
    let event = got.json();
    assert_eq!((event["specversion"].as_str(), event["id"].as_str()), (Some("1.0"), Some(id.as_str())));
    assert_eq!(event["type"], "cn.xietong.bulletin");
    // A body altered in transit fails verification.
    let mut tampered = got.body.clone();
    tampered[10] ^= 1;
    assert!(official.verify(&tampered, &got.headers).is_err());

    let trace = delivered_trace(&server, &id).await;
    let hook = &trace["recipients"][0]["webhooks"][0];
    assert_eq!(
        (hook["state"].as_str(), hook["attempts"].as_u64(), hook["last_status"].as_u64()),
        (Some("delivered"), Some(1), Some(204)),
        "{trace}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_retried_with_the_same_id_and_retry_after_is_honoured() {
    let receiver = Receiver::start(|n, _| match n {
        0 => Answer::Status(503),
        1 => Answer::RetryAfter(429, 1),
        _ => Answer::Status(200),
    });
    let server = server_with(&[("inbox-hook", &receiver.url, "")], "");
    let id = post(&server, hook_bulletin(2), false).await;
    assert!(eventually(10, || receiver.delivered().len() == 1).await);
    let got = receiver.received();
    assert_eq!(got.len(), 3, "503, then 429, then 200");
    assert!(
        got.iter().all(|r| r.header("webhook-id") == format!("msg_{id}") && r.json()["id"] == id.as_str()),
        "one id across retries"
    );
    assert!(got[2].started - got[1].started >= Duration::from_millis(950), "Retry-After: 1 was honoured");
    let trace = delivered_trace(&server, &id).await;
    assert_eq!(trace["recipients"][0]["webhooks"][0]["attempts"], 3, "{trace}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gone_disables_the_subscription_until_its_owner_enables_it() {
    let gone = Arc::new(AtomicBool::new(true));
    let receiver = Receiver::start({
        let gone = gone.clone();
        move |_, _| if gone.load(Ordering::SeqCst) { Answer::Status(410) } else { Answer::Status(200) }
    });
    let server = server_with(&[("inbox-hook", &receiver.url, "")], "");
    post(&server, hook_bulletin(5), false).await;
    assert!(eventually(10, || receiver.received().len() == 1).await);
    let sub = format!("{}/v1/subscriptions/inbox-hook", server.url);
    let mut disabled = Value::Null;
    for _ in 0..100 {
        disabled = client().get(&sub).bearer_auth("demo-ip_office-330000").send().await.unwrap().json().await.unwrap();
        if disabled["disabled"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(disabled["disabled"].as_str().unwrap().contains("410"), "{disabled}");
    post(&server, hook_bulletin(6), false).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 1, "a disabled subscription is not sent to");

    gone.store(false, Ordering::SeqCst);
    let r = client().post(format!("{sub}/enable")).bearer_auth("demo-ip_office-330000").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(eventually(10, || receiver.delivered().len() == 1).await, "new messages flow again");
    let dead = admin_get(&server, "/v1/admin/dead-letters?subscription=inbox-hook").await;
    assert!(
        !dead["dead_letters"].as_array().unwrap().is_empty(),
        "what was pending when it went is in the dead letters, for replay"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_endpoint_is_retried_after_its_timeout_and_never_delays_another() {
    let stalling = Arc::new(AtomicBool::new(false));
    let slow = Receiver::start({
        let stalling = stalling.clone();
        move |n, _| {
            if n == 0 {
                stalling.store(true, Ordering::SeqCst);
                Answer::Stall(Duration::from_millis(1500))
            } else {
                Answer::Status(200)
            }
        }
    });
    let seen_while_stalling = Arc::new(AtomicBool::new(false));
    let fast = Receiver::start({
        let (stalling, seen) = (stalling.clone(), seen_while_stalling.clone());
        move |_, _| {
            if stalling.load(Ordering::SeqCst) {
                seen.store(true, Ordering::SeqCst);
            }
            Answer::Status(200)
        }
    });
    let server = server_with(&[("slow", &slow.url, ""), ("fast", &fast.url, "")], "");
    let first = post(&server, hook_bulletin(7), false).await;
    assert!(eventually(10, || stalling.load(Ordering::SeqCst)).await);
    // While the slow endpoint stalls on the first message, the fast one gets both.
    post(&server, hook_bulletin(8), false).await;
    assert!(eventually(10, || fast.delivered().len() == 2).await);
    assert!(seen_while_stalling.load(Ordering::SeqCst), "the fast endpoint was served while the slow one stalled");

    // The slow endpoint gets the first message again after the request timeout (1 s), never
    // while the first request is still the gateway's.
    assert!(eventually(10, || slow.delivered().iter().any(|r| r.header("webhook-id") == format!("msg_{first}"))).await);
    let tries: Vec<_> =
        slow.received().into_iter().filter(|r| r.header("webhook-id") == format!("msg_{first}")).collect();
    assert!(tries.len() >= 2);
    assert!(tries[1].started - tries[0].started >= Duration::from_millis(950), "not sent twice at once");
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_of_one_case_thread_arrive_in_order() {
    // The first attempt at 案件甲's first message fails; everything else succeeds.
    let failed = std::sync::atomic::AtomicBool::new(false);
    let receiver = Receiver::start(move |_, r| {
        let first = String::from_utf8_lossy(&r.body).contains("进展 1\"");
        if first && !failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            Answer::Status(503)
        } else {
            Answer::Status(200)
        }
    });
    let server = server_with(&[("inbox-hook", &receiver.url, "      concurrency: 4\n")], "");
    let a1 = post(&server, notice(1, "案件甲"), true).await;
    let a2 = post(&server, notice(2, "案件甲"), true).await;
    let b1 = post(&server, notice(3, "案件乙"), true).await;
    if !eventually(20, || receiver.delivered().len() == 3).await {
        let answers: Vec<(String, u16)> = receiver
            .received()
            .iter()
            .map(|r| (r.json()["id"].as_str().unwrap_or("?").to_string(), r.status))
            .collect();
        let conn = rusqlite::Connection::open(server.db_path()).unwrap();
        let attempts: Vec<String> = conn
            .prepare("SELECT message_seq || ' ' || state || ' ' || attempts || ' ' || coalesce(last_error, '') FROM webhook_attempts")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        panic!("not all three of {a1}, {a2}, {b1} delivered; the receiver saw {answers:?}; attempts {attempts:?}");
    }
    let order: Vec<String> =
        receiver.delivered().iter().map(|r| r.json()["id"].as_str().unwrap().to_string()).collect();
    let at = |id: &str| order.iter().position(|x| x == id).unwrap();
    assert!(at(&a1) < at(&a2), "案件甲's messages in order although the first was retried: {order:?}");
    let attempts: Vec<u16> =
        receiver.received().iter().filter(|r| r.json()["id"] == a1.as_str()).map(|r| r.status).collect();
    assert_eq!(attempts, [503, 200], "案件甲's first message was retried");
    assert!(order.contains(&b1));
}

#[tokio::test(flavor = "multi_thread")]
async fn per_endpoint_concurrency_is_enforced() {
    let receiver = Receiver::start(|_, _| Answer::Stall(Duration::from_millis(150)));
    let server = server_with(&[("inbox-hook", &receiver.url, "      concurrency: 2\n")], "");
    for n in 0..8 {
        post(&server, notice(100 + n, &format!("案件{n}")), true).await;
    }
    assert!(eventually(20, || receiver.delivered().len() == 8).await);
    assert_eq!(receiver.max_in_flight(), 2, "two at a time, and no more");
}

#[tokio::test(flavor = "multi_thread")]
async fn per_endpoint_rate_limits_are_enforced() {
    // Concurrency out of the way: only the rate (5 per second, a burst of 5) spaces requests.
    let receiver = Receiver::start(|_, _| Answer::Status(200));
    let server = server_with(&[("inbox-hook", &receiver.url, "      concurrency: 12\n      rate_per_second: 5\n")], "");
    for n in 0..12 {
        post(&server, notice(200 + n, &format!("案件{n}")), true).await;
    }
    assert!(eventually(20, || receiver.delivered().len() == 12).await);
    let got = receiver.received();
    let first = got.iter().map(|r| r.started).min().unwrap();
    let last = got.iter().map(|r| r.started).max().unwrap();
    // 5 at once, then one every 200 ms: the twelfth no sooner than 1.4 s after the first.
    assert!(last - first >= Duration::from_millis(1200), "12 requests at 5 per second took {:?}", last - first);
}

/// Tests that run on the embedded store only (`.config/nextest.toml`): they open its SQLite file to
/// look inside it or to tamper with it, or they do not depend on the store at all.
mod embedded {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_client_certificate_reaches_a_mutual_tls_endpoint() {
        let pki = Pki::new();
        let receiver = Receiver::start_tls(pki.server.clone(), |_, _| Answer::Status(200));
        let with_cert = format!(
            "      ca: {}\n      client_certificate:\n        cert: {}\n        key: {}\n",
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        );
        let without_cert = format!("      ca: {}\n", pki.ca.display());
        let server = server_with(&[("mtls", &receiver.url, &with_cert), ("no-cert", &receiver.url, &without_cert)], "");
        let id = post(&server, hook_bulletin(9), false).await;
        assert!(receiver.url.starts_with("https://"));
        assert!(eventually(10, || receiver.delivered().len() == 1).await, "delivered over mutual TLS");
        assert_eq!(receiver.delivered()[0].json()["id"], id.as_str());

        // Without the client certificate the handshake fails: retried, then dead, never received.
        assert!(
            eventually(10, || {
                let conn = rusqlite::Connection::open(server.db_path()).unwrap();
                conn.query_row("SELECT state FROM webhook_attempts WHERE subscription = 'no-cert'", [], |r| {
                    r.get::<_, String>(0)
                })
                .unwrap()
                    == "dead"
            })
            .await
        );
        assert_eq!(receiver.received().len(), 1, "the endpoint refused the connection that had no certificate");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_refusal_is_a_dead_letter_with_the_answer_kept_and_can_be_replayed() {
        let fixed = Arc::new(AtomicBool::new(false));
        let receiver = Receiver::start({
            let fixed = fixed.clone();
            move |_, _| {
                if fixed.load(Ordering::SeqCst) {
                    Answer::Status(200)
                } else {
                    Answer::WithBody(400, "unknown field `classifiedFields`".into())
                }
            }
        });
        let server = server_with(&[("inbox-hook", &receiver.url, "")], "");
        let id = post(&server, hook_bulletin(3), false).await;
        let mut dead = Value::Null;
        assert!(eventually(10, || receiver.received().len() == 1).await);
        for _ in 0..100 {
            dead = admin_get(&server, "/v1/admin/dead-letters").await;
            if !dead["dead_letters"].as_array().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let letter = &dead["dead_letters"][0];
        assert_eq!(letter["message_id"], id.as_str());
        assert_eq!(
            (letter["attempts"].as_u64(), letter["last_status"].as_u64()),
            (Some(1), Some(400)),
            "a 4xx is not retried blindly"
        );
        assert_eq!(letter["last_response"], "unknown field `classifiedFields`");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.received().len(), 1, "no blind retries");

        // The subscriber fixes its side; the operator replays.
        fixed.store(true, Ordering::SeqCst);
        let replay = client()
            .post(format!("{}/v1/admin/dead-letters/{}/replay", server.url, letter["id"]))
            .bearer_auth("demo-operator")
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 200);
        assert!(eventually(10, || receiver.delivered().len() == 1).await);
        assert_eq!(
            receiver.delivered()[0].header("webhook-id"),
            format!("msg_{id}"),
            "the replay keeps the webhook id"
        );
        let again = client()
            .post(format!("{}/v1/admin/dead-letters/{}/replay", server.url, letter["id"]))
            .bearer_auth("demo-operator")
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 404, "delivered: no longer a dead letter");
        let r = client()
            .get(format!("{}/v1/admin/dead-letters", server.url))
            .bearer_auth("demo-ip_office-330000")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "operators only");

        // The audit chain has the attempt's fate, and who replayed it.
        let conn = rusqlite::Connection::open(server.db_path()).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT record ->> 'action', record ->> 'actor' FROM audit WHERE record ->> 'message_id' = ?1 ORDER BY seq",
            )
            .unwrap();
        let trail: Vec<(String, String)> =
            stmt.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        let at =
            |action: &str| trail.iter().position(|(a, _)| a == action).unwrap_or_else(|| panic!("{action}: {trail:?}"));
        assert!(
            at("accepted") < at("dead") && at("dead") < at("replayed") && at("replayed") < at("delivered"),
            "{trail:?}"
        );
        assert_eq!(trail[at("replayed")].1, "operator:duty-officer");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn after_the_schedule_an_attempt_is_dead() {
        let receiver = Receiver::start(|_, _| Answer::Status(500));
        let server = server_with(&[("inbox-hook", &receiver.url, "")], "");
        let id = post(&server, hook_bulletin(4), false).await;
        // One try and three retries (the schedule has three waits), then it is dead.
        assert!(eventually(10, || receiver.received().len() == 4).await);
        assert!(
            eventually(5, || {
                let conn = rusqlite::Connection::open(server.db_path()).unwrap();
                conn.query_row("SELECT state FROM webhook_attempts", [], |r| r.get::<_, String>(0)).unwrap() == "dead"
            })
            .await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.received().len(), 4, "nothing after the schedule");
        let trace = admin_get(&server, &format!("/v1/admin/messages/{id}")).await;
        let hook = &trace["recipients"][0]["webhooks"][0];
        assert_eq!(hook["state"], "dead");
        assert!(hook["last_error"].as_str().unwrap().contains("gave up after 4 attempts"), "{hook}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_official_python_package_verifies_the_signature_too() {
        let receiver = Receiver::start(|_, _| Answer::Status(200));
        let server = server_with(&[("inbox-hook", &receiver.url, "")], "");
        post(&server, hook_bulletin(10), false).await;
        assert!(eventually(10, || receiver.delivered().len() == 1).await);
        let got = &receiver.received()[0];
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("body"), &got.body).unwrap();
        let headers = json!({
            "webhook-id": got.header("webhook-id"),
            "webhook-timestamp": got.header("webhook-timestamp"),
            "webhook-signature": got.header("webhook-signature"),
        });
        std::fs::write(dir.path().join("headers.json"), headers.to_string()).unwrap();
        let script = "import json, sys\n\
                      from standardwebhooks import Webhook\n\
                      body = open(sys.argv[1] + '/body', 'rb').read()\n\
                      headers = json.load(open(sys.argv[1] + '/headers.json'))\n\
                      print(Webhook(sys.argv[2]).verify(body, headers)['id'])\n";
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(dir.path())
            .arg(SECRET)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "the Python package refused the signature (is it installed? pip install standardwebhooks==1.1.0): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), got.json()["id"].as_str().unwrap());
    }
}

/// The operators' view of every subscription (`GET /v1/admin/subscriptions`): its state,
/// backlog, last success and last error; pausing holds what arrives until it is resumed;
/// replaying all of a subscription's dead letters; a viewer may look, not act.
#[tokio::test(flavor = "multi_thread")]
async fn operators_see_every_subscription_pause_resume_and_replay_all() {
    let fixed = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::start({
        let fixed = fixed.clone();
        move |_, _| if fixed.load(Ordering::SeqCst) { Answer::Status(200) } else { Answer::Status(422) }
    });
    let server = server_with(&[("inbox-hook", &receiver.url, "")], "");
    post(&server, hook_bulletin(1), false).await;
    post(&server, hook_bulletin(2), false).await;
    let state = |all: &Value| {
        all["subscriptions"].as_array().unwrap().iter().find(|s| s["id"] == "inbox-hook").cloned().unwrap()
    };
    let mut hook = Value::Null;
    for _ in 0..100 {
        hook = state(&admin_get(&server, "/v1/admin/subscriptions").await);
        if hook["dead"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (hook["dead"].as_i64(), hook["state"].as_str(), hook["kind"].as_str()),
        (Some(2), Some("active"), Some("webhook")),
        "{hook}"
    );
    assert_eq!(hook["last_error"], "the endpoint refused it with HTTP 422", "{hook}");
    assert_eq!(hook["endpoint"], receiver.url.as_str());
    assert_eq!(hook["last_success_at"], Value::Null);

    let act = |path: &str, token: &'static str| {
        let url = format!("{}/v1/admin/subscriptions/inbox-hook/{path}", server.url);
        async move { call(reqwest::Method::POST, &url, Some(token), None).await }
    };
    assert_eq!(act("pause", "demo-viewer").await.0, 403, "a viewer may not act");
    assert_eq!(act("pause", "demo-operator").await.0, 200);
    assert_eq!(act("pause", "demo-operator").await.0, 409, "paused already");
    let paused = state(&admin_get(&server, "/v1/admin/subscriptions").await);
    assert_eq!(paused["state"], "paused");
    assert!(paused["reason"].as_str().unwrap().starts_with("paused by operator:duty-officer"), "{paused}");

    // Replayed while paused: nothing goes out until it is resumed.
    fixed.store(true, Ordering::SeqCst);
    let (status, replayed) = act("replay", "demo-operator").await;
    assert_eq!(
        (status, replayed["replayed"].as_u64(), replayed["state"].as_str()),
        (200, Some(2), Some("paused")),
        "{replayed}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.delivered().len(), 0, "nothing sent while paused");
    assert_eq!(act("resume", "demo-operator").await.0, 200);
    assert_eq!(act("resume", "demo-operator").await.0, 409, "sending already");
    assert!(eventually(10, || receiver.delivered().len() == 2).await, "both sent once resumed");
    let mut hook = Value::Null;
    for _ in 0..100 {
        hook = state(&admin_get(&server, "/v1/admin/subscriptions").await);
        if hook["last_success_at"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((hook["dead"].as_i64(), hook["state"].as_str()), (Some(0), Some("active")), "{hook}");
    assert!(hook["last_success_at"].is_string(), "{hook}");
    let (status, _) = call(
        reqwest::Method::POST,
        &format!("{}/v1/admin/subscriptions/nope/pause", server.url),
        Some("demo-operator"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}
