//! Logs: JSON lines on request, a request id on every line of a request, and never message
//! content, field values or tokens, even of refused messages.

use crate::common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_ids_and_no_content() {
    // Every level, so that nothing hides below the default.
    let config = ConfigDir::new(&format!("log:\n  format: json\n  level: debug\n{}", fast_delivery("")));
    let receiver = Receiver::start(|_, _| Answer::Status(200));
    config.write(
        "subscriptions.yaml",
        &format!(
            "subscriptions:\n  - id: hook\n    owner: procuratorate:330100\n    webhook:\n      url: {}\n      secrets: [{SECRET}]\n",
            receiver.url
        ),
    );
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("xietong.log");
    let mut exchange = Exchange::start_logging(config, Some(&log));
    let server = &mut exchange.server;

    let mut secret = example_json("ipo-state-secret-message.json");
    secret["nr"] = json!("整体机密的正文LOG7Q");
    let (status, _) = post_json(&server.url, "ip_office:330000", &serde_json::to_vec(&secret).unwrap()).await;
    assert_eq!(status, 422);
    let mut accepted = example_json("ipo-clue-transfer.json");
    accepted["dsr"][1]["sfzh"] = json!("11010119900307987X");
    let (status, receipt) = post_json(&server.url, "ip_office:330100", &serde_json::to_vec(&accepted).unwrap()).await;
    assert_eq!(status, 202);
    // A marking in free text: refused, and the marked text is not logged.
    let (status, _) = post_json(&server.url, "ip_office:330100", &example("ipo-marking-in-text.json")).await;
    assert_eq!(status, 422);
    // An operator's call, and the webhook delivered to the procuratorate, signed with the secret.
    let r = client()
        .get(format!("{}/v1/admin/dead-letters", server.url))
        .bearer_auth("demo-operator")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(eventually(10, || receiver.delivered().len() == 1).await);
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
    let secret_key = SECRET.trim_start_matches("whsec_");
    for forbidden in [
        "整体机密的正文LOG7Q",
        "11010119900307987X",
        "王建国",
        "demo-ip_office-330100",
        "demo-ip_office-330000",
        "demo-operator",
        secret_key,
        "关于联合开展专项行动的部署意见",
        "秘密★5年",
    ] {
        assert!(!text.contains(forbidden), "the log holds {forbidden}");
    }
}
