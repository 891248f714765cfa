//! Hardening: limits on a message's shape, header size, slow and idle clients, requests per
//! client, webhooks kept away from internal addresses, and secrets kept out of the files.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

fn address(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

async fn post_canonical(server: &TestServer, body: &Value) -> (u16, Value) {
    let r =
        post_as(&server.url, "procuratorate:330000", "application/cloudevents+json", serde_json::to_vec(body).unwrap())
            .await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn notice(content: Value) -> Value {
    json!({"specversion": "1.0", "id": "HARD-1", "type": "cn.xietong.related_case.notice", "time": "2026-11-24T10:00:00+08:00",
           "data": {"sender": {"id": "procuratorate:330000"}, "case": {"number": "案件", "divisions": ["330106"]},
                    "content": content, "redactions": [], "classifiedFields": []}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_beyond_the_shape_limits_is_refused_with_where() {
    let server = TestServer::with_settings("limits:\n  max_depth: 8\n  max_string_chars: 1000\n  max_items: 50\n");
    let mut deep = json!("底");
    for _ in 0..10 {
        deep = json!([deep]);
    }
    let cases = [
        (notice(json!("长".repeat(1001))), "/data/content", "longer than 1000 characters"),
        (notice(json!((0..51).collect::<Vec<_>>())), "/data/content", "more than 50 items"),
        (notice(deep), "/data/content/0/0/0/0/0/0", "deeper than 8 levels"),
    ];
    for (body, pointer, reason) in cases {
        let (status, problem) = post_canonical(&server, &body).await;
        assert_eq!((status, problem["code"].as_str()), (422, Some("limit_exceeded")), "{problem}");
        assert_eq!(problem["details"][0]["pointer"], pointer);
        assert!(problem["details"][0]["reason"].as_str().unwrap().contains(reason), "{problem}");
    }
    let (status, problem) = post_canonical(&server, &notice(json!("长".repeat(1000)))).await;
    assert_eq!(status, 202, "at the limit: {problem}");
}

/// Sends `bytes` on a fresh connection and reads what comes back until the server closes it
/// or `wait` passes; what was read and how long it took.
fn raw(server: &TestServer, bytes: &[u8], wait: Duration) -> (String, Duration) {
    let mut s = TcpStream::connect(address(server)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let started = Instant::now();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_slow_and_idle_clients_are_cut_off() {
    let server =
        TestServer::with_settings("limits:\n  request_timeout: 1s\n  idle_timeout: 1s\n  max_header_bytes: 8192\n");
    let headers = |n: usize| format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n", "a".repeat(n));
    let (answer, _) = raw(&server, headers(7 * 1024).as_bytes(), Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 200"), "under the limit: {answer:?}");
    for size in [9 * 1024, 256 * 1024] {
        let (answer, _) = raw(&server, headers(size).as_bytes(), Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 431"), "{size} bytes of headers: {answer:?}");
    }

    // Slow loris: headers that never end.
    let (answer, took) = raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(took < Duration::from_secs(4), "cut off after the request timeout, not the client's patience: {took:?}");

    // Idle keep-alive: one answer, then the connection is closed.
    let (answer, took) = raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(took < Duration::from_secs(4), "an idle connection is closed: {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_client_cannot_hold_every_worker() {
    let server = TestServer::with_settings("limits:\n  max_requests_per_client: 2\n");
    let poll = || {
        client()
            .get(format!("{}/v1/feeds/ip_office:330100/events?wait=5", server.url))
            .bearer_auth("demo-ip_office-330100")
            .send()
    };
    let (a, b) = (tokio::spawn(poll()), tokio::spawn(poll()));
    // The gauge is read from another loopback address (127.0.0.2), which has a count of its own:
    // a probe from 127.0.0.1 sent before both polls were in could take one of their places.
    let watcher = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let metrics = watcher.get(format!("{}/metrics", server.url)).send().await.unwrap().text().await.unwrap();
        let in_flight = metrics.lines().find_map(|l| l.strip_prefix("xietong_http_requests_in_flight "));
        // Both polls and this request.
        if in_flight.map(str::trim) == Some("3") {
            break;
        }
        assert!(Instant::now() < deadline, "the two polls were never both in flight: {in_flight:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let third = client().get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(third.status(), 429, "a third request from the same address while two are in flight");
    assert_eq!(third.headers()["retry-after"], "1");
    assert_eq!(a.await.unwrap().unwrap().status(), 200);
    assert_eq!(b.await.unwrap().unwrap().status(), 200);
    let after = client().get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(after.status(), 200, "the count goes down as requests finish");
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_stay_away_from_internal_addresses() {
    // No allow_internal: the shipped default.
    let server = TestServer::start();
    let create = |url: &str| {
        client()
            .post(format!("{}/v1/subscriptions", server.url))
            .bearer_auth("demo-ip_office-330000")
            .json(&json!({"webhook": {"url": url}}))
            .send()
    };
    for url in
        ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "http://10.0.0.8/"]
    {
        let r = create(url).await.unwrap();
        assert_eq!(r.status(), 400, "{url}");
        let problem: Value = r.json().await.unwrap();
        assert!(problem.to_string().contains("internal address"), "{problem}");
    }

    // A name that resolves inward is caught when it is resolved.
    let receiver = Receiver::start(|_, _| Answer::Status(200));
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let r = create(&by_name).await.unwrap();
    assert_eq!(r.status(), 201, "a name cannot be judged before it is resolved");
    let id =
        post_as(&server.url, "procuratorate:330000", "application/json", example("prc-bulletin-secret-field.json"))
            .await
            .json::<Value>()
            .await
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
    let mut error = String::new();
    for _ in 0..100 {
        let trace = operator_get(&format!("{}/v1/admin/messages/{id}", server.url)).await;
        error = trace.pointer("/recipients/0/webhooks/0/last_error").and_then(Value::as_str).unwrap_or("").to_string();
        if !error.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(error.contains("internal address"), "{error:?}");
    assert!(receiver.received().is_empty(), "nothing reached the internal endpoint");

    // A configured subscription to an internal address does not check.
    let config = ConfigDir::new("");
    config.write(
        "subscriptions.yaml",
        "subscriptions:\n  - id: inward\n    owner: ip_office:330000\n    webhook:\n      url: http://192.168.1.10/hook\n      secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]\n",
    );
    let errors = xietong::config::Config::load(config.path()).err().expect("refused").to_string();
    assert!(errors.contains("subscription inward: webhook.url: 192.168.1.10 is an internal address"), "{errors}");
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_secrets_come_from_the_environment_or_a_file() {
    let config = ConfigDir::new(&fast_delivery(""));
    std::fs::write(config.path().join("hook.secret"), format!("{SECRET}\n")).unwrap();
    // SAFETY: set before the gateway starts, in this test's own process (nextest runs each test
    // in its own process), and read only by it.
    unsafe { std::env::set_var("XIETONG_TEST_HOOK_SECRET", SECRET) };
    let receiver = Receiver::start(|_, _| Answer::Status(200));
    let hooks: String = ["env:XIETONG_TEST_HOOK_SECRET", "file:hook.secret"]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!("  - id: hook-{i}\n    owner: ip_office:330000\n    webhook:\n      url: {}\n      secrets: [\"{s}\"]\n", receiver.url)
        })
        .collect();
    config.write("subscriptions.yaml", &format!("subscriptions:\n{hooks}"));
    let server = TestServer::with_config(config);
    post_as(&server.url, "procuratorate:330000", "application/json", example("prc-bulletin-secret-field.json")).await;
    assert!(eventually(10, || receiver.delivered().len() == 2).await);
    let official = standardwebhooks::Webhook::new(SECRET).unwrap();
    for r in receiver.delivered() {
        official.verify(&r.body, &r.headers).expect("signed with the secret from outside the file");
    }
    let stored = std::fs::read_to_string(server.config.path().join("subscriptions.yaml")).unwrap();
    assert!(!stored.contains(SECRET), "the file itself holds no secret");

    let missing = ConfigDir::new("");
    missing.write(
        "subscriptions.yaml",
        "subscriptions:\n  - id: h\n    owner: ip_office:330000\n    webhook:\n      url: https://hub.example.cn/h\n      secrets: [\"env:XIETONG_NOT_SET\"]\n",
    );
    let errors = xietong::config::Config::load(missing.path()).err().expect("refused").to_string();
    assert!(errors.contains("the environment variable XIETONG_NOT_SET is not set"), "{errors}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_client_cannot_hold_every_connection() {
    let server = TestServer::with_settings("limits:\n  max_connections_per_client: 2\n");
    let first = TcpStream::connect(address(&server)).unwrap();
    let second = TcpStream::connect(address(&server)).unwrap();
    // Once the server counts both, a third connection is refused: asked until it is.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let answer = loop {
        let probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (answer, _) = raw(&server, probe, Duration::from_secs(5));
        if answer.starts_with("HTTP/1.1 429") || std::time::Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(answer.starts_with("HTTP/1.1 429"), "a third connection: {answer:?}");
    assert!(answer.contains("connection: close"), "{answer:?}");
    drop((first, second));
    let mut answered = String::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(50));
        answered =
            raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", Duration::from_secs(5)).0;
        if answered.starts_with("HTTP/1.1 200") {
            break;
        }
    }
    assert!(answered.starts_with("HTTP/1.1 200"), "once the others closed: {answered:?}");
}
