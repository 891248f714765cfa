//! Logs: JSON lines on request, a request id on every line of a request, and never message
//! content, field values or tokens, even of refused messages.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_ids_and_no_content() {
    let config = ConfigDir::new("log:\n  format: json\n  level: info\n");
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("xietong.log");
    let mut server = BinaryServer::spawn_logging_to(config.path(), &data.path().join("store"), &log);

    let mut secret = example_json("ipo-state-secret-message.json");
    secret["nr"] = json!("整体机密的正文LOG7Q");
    let (status, _) = post_json(&server.url, "ip_office:330000", &serde_json::to_vec(&secret).unwrap()).await;
    assert_eq!(status, 422);
    let mut accepted = example_json("ipo-clue-transfer.json");
    accepted["dsr"][1]["sfzh"] = json!("11010119900307987X");
    let (status, receipt) = post_json(&server.url, "ip_office:330100", &serde_json::to_vec(&accepted).unwrap()).await;
    assert_eq!(status, 202);
    server.signal("TERM");
    assert_eq!(server.wait(), Some(0));

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let accepted_line = lines.iter().find(|l| l["message"] == "accepted").expect("the accept is logged");
    assert_eq!(accepted_line["id"], receipt["id"]);
    assert!(accepted_line["span"]["request_id"].is_string(), "{accepted_line}");
    let refused = lines.iter().find(|l| l["message"] == "refused").expect("the refusal is logged");
    assert_eq!(refused["code"], "state_secret");
    assert!(refused["body_sha256"].as_str().is_some_and(|h| h.len() == 64));
    for forbidden in ["整体机密的正文LOG7Q", "11010119900307987X", "王建国", "demo-ip_office-330100"] {
        assert!(!text.contains(forbidden), "the log holds {forbidden}");
    }
}
