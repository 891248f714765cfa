//! The load harness: what it generates is what agencies send (every message accepted, stripped
//! and routed as its mix says), and `xietong-load` measures a real gateway and the ceiling in
//! one run and reports both.

use crate::common::*;
use serde_json::Value;
use xietong_load::messages::{Generator, Mix};

const UNLIMITED: &str = "rate_limit:\n  per_second: 1000000\n  burst: 1000000\n";

#[tokio::test]
async fn generated_messages_are_accepted_stripped_and_routed_as_their_mix_says() {
    let server = TestServer::with_settings(UNLIMITED);
    let mix = Mix { sizes: vec![1024, 16 * 1024, 64 * 1024], procuratorate: 0.5, cross_region: 0.5, stripped: 0.5 };
    let mut generator = Generator::new(mix, "test", 3);
    let (mut cross, mut stripped, mut senders) = (0, 0, std::collections::BTreeSet::new());
    for _ in 0..120 {
        let m = generator.next_message();
        let answer = client()
            .post(format!("{}/v1/messages", server.url))
            .bearer_auth(&m.token)
            .header("content-type", "application/json")
            .body(m.body.clone())
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let receipt: Value = answer.json().await.unwrap();
        assert_eq!(status, 202, "{} {receipt}\n{}", m.sender, String::from_utf8_lossy(&m.body[..300]));
        let removed = receipt["stripped"].as_array().unwrap();
        assert_eq!(!removed.is_empty(), m.stripped, "{receipt}");
        let hubs =
            receipt["recipients"].as_array().unwrap().iter().filter(|r| r["id"].as_str().unwrap().starts_with("hub:"));
        assert_eq!(hubs.count() > 0, m.cross_region, "a cross-region case reaches its region's hub: {receipt}");
        cross += usize::from(m.cross_region);
        stripped += usize::from(m.stripped);
        senders.insert(m.sender);
    }
    assert!(cross > 30 && stripped > 30, "both kinds are in the sample: {cross} {stripped}");
    assert_eq!(senders.len(), 5, "every sending agency: {senders:?}");
}

#[test]
fn the_harness_reports_the_gateway_and_the_ceiling_as_text_and_json() {
    let server = TestServer::with_settings(UNLIMITED);
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("report.json");
    let run = std::process::Command::new(load_harness())
        .args(["--url", &server.url, "--ceiling", "--connections", "4", "--duration", "1s", "--warmup", "200ms"])
        .args(["--sizes", "1k,16k", "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("of the ceiling"), "{stdout}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let reports = report["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2, "{report}");
    assert_eq!(reports[0]["name"], "ceiling");
    let gateway = &reports[1];
    assert_eq!(gateway["name"], "gateway");
    assert!(gateway["done"].as_u64().unwrap() > 0, "{gateway}");
    assert_eq!(gateway["done"], gateway["requests"], "every answer a 202: {gateway}");
    let ratio = gateway["ratio_to_ceiling"].as_f64().unwrap();
    assert!(ratio > 0.0, "{gateway}");
    for q in ["p50", "p90", "p99", "max"] {
        assert!(gateway["latency_ms"][q].as_f64().unwrap() > 0.0, "{gateway}");
    }
    assert_eq!(report["plan"]["sizes"], serde_json::json!([1024, 16384]));
}

#[test]
fn the_harness_follows_deliveries_to_a_webhook_receiver_and_an_sse_reader() {
    let server = TestServer::with_settings(&format!("{UNLIMITED}delivery:\n  allow_internal: [127.0.0.0/8]\n"));
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("report.json");
    let run = std::process::Command::new(load_harness())
        .args(["--url", &server.url, "--rate", "100", "--connections", "4", "--duration", "1s", "--warmup", "200ms"])
        .args(["--procuratorate", "0.5", "--webhook-copies", "2"])
        .args(["--webhook", "procuratorate:330100=demo-procuratorate-330100"])
        .args(["--webhook", "ip_office:330100=demo-ip_office-330100"])
        .args(["--sse", "procuratorate:330100=demo-procuratorate-330100", "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let deliveries = report["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.iter().map(|d| d["name"].as_str().unwrap()).collect::<Vec<_>>(), ["webhooks", "sse"]);
    let (hooks, sse) = (&deliveries[0], &deliveries[1]);
    // Each message to either feed reaches two subscriptions; the SSE reader sees one feed.
    assert!(hooks["expected"].as_u64().unwrap() > 20, "{hooks}");
    assert_eq!(hooks["arrived"], hooks["expected"], "{hooks}");
    assert_eq!((hooks["missing"].as_u64(), hooks["bad_signatures"].as_u64()), (Some(0), Some(0)), "{hooks}");
    assert!(sse["expected"].as_u64().unwrap() > 5 && sse["missing"] == 0, "{sse}");
    assert!(sse["expected"].as_u64() < hooks["expected"].as_u64(), "{sse}");
    assert!(hooks["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{hooks}");
    // The subscriptions made for the run are gone.
    let left = server.gateway.store.subscriptions();
    let left = actix_web::rt::System::new().block_on(left).unwrap();
    assert!(left.is_empty(), "{left:?}");
}
