//! Delivery figures on this machine: webhook deliveries per second to a local receiver, and
//! Server-Sent Events per second to a local reader.
//!
//!     cargo run --release --example delivery_load -- [MESSAGES]
//!
//! The gateway runs in this process on a temporary data directory with the shipped
//! configuration, one webhook subscription (concurrency 64) on ip_office:330000's inbox, and
//! limits out of the way. 64 clients post MESSAGES bulletins (default 20,000) to it; the
//! receiver answers 200 at once and counts distinct webhook ids. Then one SSE reader reads the
//! inbox from its start.
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
async fn main() {
    let messages: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(20_000);
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

    // Post.
    let template =
        std::fs::read_to_string(root.join("tests/fixtures/shared/examples/prc-bulletin-secret-field.json")).unwrap();
    let client = reqwest::Client::builder().tls_certs_only([]).build().unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let posters: Vec<_> = (0..64)
        .map(|_| {
            let (client, url, next, template) = (client.clone(), url.clone(), next.clone(), template.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if n >= messages {
                        return;
                    }
                    let body = template.replacen("ZJJCY-2026-BL-0009", &format!("LOAD-{n}"), 1);
                    let r = client
                        .post(format!("{url}/v1/messages"))
                        .bearer_auth("demo-procuratorate-330000")
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .expect("post");
                    assert_eq!(r.status(), 202);
                }
            })
        })
        .collect();
    for p in posters {
        p.await.unwrap();
    }
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
    while events < messages {
        let chunk = response.chunk().await.unwrap().unwrap();
        buffer.extend_from_slice(&chunk);
        events += count(&buffer, b"\nevent: ");
        let keep = buffer.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        buffer.drain(..keep);
    }
    let took = started.elapsed();
    println!(
        "server-sent events          {:.0} events/s ({events} in {:.2} s)",
        events as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    );
    println!("resident memory             {} MiB", rss_mib());
    drop(handle.stop(true));
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
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
