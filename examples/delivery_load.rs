//! Delivery figures on this machine: webhook deliveries per second to a local receiver, and
//! Server-Sent Events per second to a local reader.
//!
//!     cargo run --release --example delivery_load -- [MESSAGES] [--min-share FRACTION]
//!
//! The gateway runs in this process on a temporary data directory with the shipped
//! configuration, one webhook subscription (concurrency 64) on ip_office:330000's inbox, and
//! limits out of the way; the receiver answers 200 at once and counts distinct webhook ids.
//!
//! 1. The ceiling: 64 clients post MESSAGES (at least 5,000) bodies of a delivery's size straight
//!    to the receiver (the HTTP client and the receiver, without the gateway).
//! 2. Delivering while posting: 64 clients post MESSAGES bulletins (default 20,000).
//! 3. Draining: the subscription paused (the operators' API), MESSAGES more posted, then resumed;
//!    the time until all are delivered gives the draining rate, also as a share of the ceiling.
//!    With `--min-share`, the run fails (exit 1) below that share: the regression guard.
//! 4. One SSE reader reads the inbox from its start.
//!
//!     XIETONG_LOAD_REDIS=redis://127.0.0.1:6379 cargo run --release --example delivery_load
//!
//! runs the same on the Redis store (a fresh key prefix, removed afterwards).

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

#[path = "../tests/it/common/config.rs"]
mod common;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let messages: usize = args.first().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let min_share: Option<f64> =
        args.iter().position(|a| a == "--min-share").and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));

    // The receiver: counts distinct webhook ids.
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let receiver = {
        let seen = seen.clone();
        HttpServer::new(move || {
            let seen = seen.clone();
            App::new().default_service(web::to(move |req: HttpRequest, _body: web::Bytes| {
                let seen = seen.clone();
                async move {
                    if let Some(id) = req.headers().get("webhook-id").and_then(|v| v.to_str().ok()) {
                        seen.lock().unwrap().insert(id.to_string());
                    }
                    HttpResponse::Ok().finish()
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap()
    };
    let receiver_url = format!("http://{}/hook", receiver.addrs()[0]);
    actix_web::rt::spawn(receiver.run());

    // The gateway.
    let redis = std::env::var("XIETONG_LOAD_REDIS").ok();
    let prefix = format!("load-{}", std::process::id());
    let store = match &redis {
        Some(url) => format!("store:\n  backend: redis\n  redis:\n    url: {url}\n    prefix: {prefix}\n"),
        None => String::new(),
    };
    let config_dir = common::ConfigDir::new(&format!(
        "rate_limit:\n  per_second: 1000000\n  burst: 1000000\nlog:\n  level: warn\ndelivery:\n  tick: 20ms\n  allow_internal: [127.0.0.0/8]\n{store}"
    ));
    std::fs::write(
        config_dir.path().join("subscriptions.yaml"),
        format!(
            "subscriptions:\n  - id: load\n    owner: ip_office:330000\n    webhook:\n      url: {receiver_url}\n      secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]\n      concurrency: 64\n      rate_per_second: 1000000\n"
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = xietong::config::Config::load(config_dir.path()).expect("config");
    let overrides = xietong::gateway::Overrides { data_dir: Some(data.path().to_path_buf()), ..Default::default() };
    let gateway = Arc::new(xietong::gateway::Gateway::open(config, overrides).await.expect("store"));
    gateway.start_workers();
    let running = xietong::http::start(gateway, Some(TcpListener::bind("127.0.0.1:0").unwrap())).expect("server");
    let url = format!("http://{}", running.addr);
    let handle = running.handle.clone();
    actix_web::rt::spawn(running.wait());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let template =
        std::fs::read_to_string(root.join("tests/fixtures/shared/examples/prc-bulletin-secret-field.json")).unwrap();
    let client = reqwest::Client::builder().tls_certs_only([]).build().unwrap();

    // The ceiling: the same client and receiver, without the gateway (a delivery's body is the
    // event, about the bulletin's size).
    let started = Instant::now();
    let requests = messages.max(5_000);
    post_all(requests, |n| {
        client.post(&receiver_url).header("webhook-id", format!("ceiling-{n}")).body(template.clone())
    })
    .await;
    let ceiling = requests as f64 / started.elapsed().as_secs_f64();
    seen.lock().unwrap().clear();
    println!("ceiling (client to receiver) {ceiling:.0} requests/s");

    // Delivering while posting.
    let post = |n: usize| {
        client
            .post(format!("{url}/v1/messages"))
            .bearer_auth("demo-procuratorate-330000")
            .header("content-type", "application/json")
            .body(template.replacen("ZJJCY-2026-BL-0009", &format!("LOAD-{n}"), 1))
    };
    let started = Instant::now();
    post_all(messages, post).await;
    let posted = started.elapsed();
    let delivered_when_posted = seen.lock().unwrap().len();
    while seen.lock().unwrap().len() < messages {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all = started.elapsed();
    println!("messages                    {messages}");
    println!(
        "ingest                      {:.0} messages/s ({:.2} s)",
        messages as f64 / posted.as_secs_f64(),
        posted.as_secs_f64()
    );
    println!("webhooks, while posting     {delivered_when_posted} delivered by the end of posting");
    println!(
        "webhooks, end to end        {:.0} deliveries/s (all {} delivered {:.2} s after the first post)",
        messages as f64 / all.as_secs_f64(),
        messages,
        all.as_secs_f64()
    );
    let drain = all - posted;
    if delivered_when_posted < messages && drain > Duration::ZERO {
        println!(
            "webhooks, after posting     {:.0} deliveries/s",
            (messages - delivered_when_posted) as f64 / drain.as_secs_f64()
        );
    }

    // Draining one subscription: a backlog of MESSAGES built while it is paused.
    let admin = |action: &str| {
        client.post(format!("{url}/v1/admin/subscriptions/load/{action}")).bearer_auth("demo-operator").send()
    };
    assert!(admin("pause").await.expect("pause").status().is_success(), "the subscription pauses");
    post_all(messages, |n| post(messages + n)).await;
    let started = Instant::now();
    assert!(admin("resume").await.expect("resume").status().is_success(), "the subscription resumes");
    while seen.lock().unwrap().len() < 2 * messages {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drained = messages as f64 / started.elapsed().as_secs_f64();
    let share = drained / ceiling;
    println!("webhooks, draining          {drained:.0} deliveries/s, {:.1}% of the ceiling", share * 100.0);

    // SSE: one reader, the whole inbox from its start.
    let started = Instant::now();
    let mut response = client
        .get(format!("{url}/v1/feeds/ip_office:330000/stream"))
        .bearer_auth("demo-ip_office-330000")
        .send()
        .await
        .unwrap();
    let mut events = 0usize;
    let mut buffer = Vec::new();
    while events < 2 * messages {
        let chunk = tokio::time::timeout(Duration::from_secs(30), response.chunk())
            .await
            .expect("the SSE stream goes quiet for 30 s before every event arrived")
            .unwrap()
            .expect("the SSE stream ends before every event arrived");
        buffer.extend_from_slice(&chunk);
        // Whole lines only: an `event:` line split between two chunks is counted once complete.
        let complete = buffer.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        events += buffer[..complete].split(|b| *b == b'\n').filter(|line| line.starts_with(b"event: ")).count();
        buffer.drain(..complete);
    }
    let took = started.elapsed();
    println!(
        "server-sent events          {:.0} events/s ({events} in {:.2} s)",
        events as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    );
    println!("resident memory             {} MiB", rss_mib());
    drop(handle.stop(true));
    let collapsed = min_share.is_some_and(|min| share < min);
    if collapsed {
        eprintln!("delivery_load: draining reached {:.1}% of the ceiling, below --min-share", share * 100.0);
    }
    if let Some(url) = redis
        && let Ok(mut c) = ::redis::Client::open(url.as_str()).and_then(|c| c.get_connection())
    {
        for pattern in xietong::store::redis::key_patterns(&prefix) {
            let keys: Vec<String> = ::redis::cmd("KEYS").arg(pattern).query(&mut c).unwrap_or_default();
            for chunk in keys.chunks(1000) {
                let _: Result<(), _> = ::redis::cmd("DEL").arg(chunk).query(&mut c);
            }
        }
    }
    if collapsed { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS }
}

/// Sends `request(0..n)` from 64 concurrent clients, each request after the one before it has
/// been answered; every answer must be a success.
async fn post_all(n: usize, request: impl Fn(usize) -> reqwest::RequestBuilder) {
    use futures_util::StreamExt;
    futures_util::stream::iter((0..n).map(|i| request(i).send()))
        .buffer_unordered(64)
        .for_each(|r| async move {
            let status = r.expect("the request is answered").status();
            assert!(status.is_success(), "answered {status}");
        })
        .await;
}

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
