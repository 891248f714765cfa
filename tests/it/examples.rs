//! Every shared example goes through `explain` and over HTTP with the outcome the brief
//! implies (tests/fixtures/shared/expected.json): accepted with the right type and stripped
//! pointers, or refused with a state-secret code.

use crate::common::*;
use serde_json::Value;

/// The canonical type each example must become.
fn expected_type(name: &str) -> &'static str {
    match name {
        "ipo-clue-transfer.json" | "ipo-clue-transfer-cross-region.json" => "cn.xietong.clue.transfer",
        "ipo-filing-supervision.json" => "cn.xietong.supervision.filing_suggestion",
        "ipo-opinion-cannot-determine.json" => "cn.xietong.opinion.reply",
        "ipo-bulletin-field-secret.json"
        | "ipo-state-secret-message.json"
        | "ipo-marking-in-text.json"
        | "prc-bulletin-secret-field.json" => "cn.xietong.bulletin",
        "ipo-typical-case.json" => "cn.xietong.typical_case",
        "prc-non-prosecution-transfer.json" => "cn.xietong.non_prosecution.transfer",
        "prc-opinion-request.json" => "cn.xietong.opinion.request",
        "prc-supervision-feedback.json" => "cn.xietong.supervision.feedback",
        "prc-major-case-supervision.json" => "cn.xietong.major_case.supervision",
        "prc-expert-request.json" => "cn.xietong.expert.request",
        other => panic!("no expected type for {other}"),
    }
}

fn check_stripped(name: &str, expected: &Value, stripped: &Value) {
    let stripped: Vec<String> = serde_json::from_value(stripped.clone()).unwrap();
    match expected.get("stripped").and_then(Value::as_str) {
        Some(part) => assert!(
            stripped.iter().any(|p| p.to_lowercase().contains(part)),
            "{name}: expected a stripped pointer containing {part}, got {stripped:?}"
        ),
        None => assert!(stripped.is_empty(), "{name}: nothing should be stripped, got {stripped:?}"),
    }
}

/// The recipients the brief names are there, and those it excludes are not.
fn check_recipients(name: &str, expected: &Value, recipients: &Value) {
    let got: Vec<&str> = recipients.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    for want in expected["recipients"].as_array().unwrap() {
        assert!(got.contains(&want.as_str().unwrap()), "{name}: missing {want} in {got:?}");
    }
    for unwanted in expected["not_recipients"].as_array().unwrap() {
        assert!(!got.contains(&unwanted.as_str().unwrap()), "{name}: {unwanted} must not be among {got:?}");
    }
}

#[test]
fn every_example_through_explain() {
    let config = root().join("config");
    for (name, expected) in expectations() {
        let sender = expected["sender"].as_str().unwrap();
        let file = examples_dir().join(&name);
        let (code, stdout, stderr) =
            run_cli(&["explain", "--config", config.to_str().unwrap(), "--as", sender, file.to_str().unwrap()]);
        let out: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{name}: explain printed no JSON ({e}): {stdout}{stderr}"));
        if expected["accepted"] == true {
            assert_eq!(code, 0, "{name}: {out:#}");
            assert_eq!(out["accepted"], true);
            let m = &out["message"];
            assert_eq!(m["specversion"], "1.0", "{name}");
            assert_eq!(m["type"], expected_type(&name), "{name}");
            assert_eq!(m["sender"], sender, "{name}");
            assert_eq!(m["source"], format!("urn:xietong:agency:{sender}"), "{name}");
            assert!(m["time"].as_str().unwrap().ends_with("+08:00"), "{name}");
            assert_eq!(m["data"]["sender"]["id"], sender, "{name}");
            check_stripped(&name, &expected, &out["stripped"]);
            assert!(!out["rules"].as_array().unwrap().is_empty(), "{name}: a rule routes it");
            check_recipients(&name, &expected, &out["recipients"]);
        } else {
            assert_eq!(code, 1, "{name}: {out:#}");
            assert_eq!(out["accepted"], false);
            let refusal = out["error"]["code"].as_str().unwrap();
            assert!(refusal.contains("secret"), "{name}: refusal code {refusal}");
            assert!(out.get("message").is_none());
        }
    }
}

#[test]
fn explain_reads_standard_input_and_reports_usage_errors() {
    let config = root().join("config");
    let cfg = config.to_str().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xietong"))
        .args(["explain", "--config", cfg, "--as", "procuratorate:330100", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&example("prc-non-prosecution-transfer.json")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["message"]["type"], "cn.xietong.non_prosecution.transfer");

    // No such file, a kind without a configured format, a malformed agency id: usage errors.
    assert_eq!(run_cli(&["explain", "--config", cfg, "--as", "ip_office:330100", "/nonexistent.json"]).0, 2);
    let file = examples_dir().join("ipo-clue-transfer.json");
    assert_eq!(run_cli(&["explain", "--config", cfg, "--as", "court:330100", file.to_str().unwrap()]).0, 2);
    assert_eq!(run_cli(&["explain", "--config", cfg, "--as", "police:330100", file.to_str().unwrap()]).0, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_over_http() {
    let server = TestServer::start();
    for (name, expected) in expectations() {
        let sender = expected["sender"].as_str().unwrap();
        let (status, body) = post_json(&server.url, sender, &example(&name)).await;
        if expected["accepted"] == true {
            assert_eq!(status, 202, "{name}: {body:#}");
            assert_eq!(body["type"], expected_type(&name), "{name}");
            assert!(body["id"].as_str().is_some_and(|id| id.len() == 36), "{name}");
            check_stripped(&name, &expected, &body["stripped"]);
            check_recipients(&name, &expected, &body["recipients"]);
        } else {
            assert_eq!(status, 422, "{name}: {body:#}");
            assert!(body["code"].as_str().unwrap().contains("secret"), "{name}: {body:#}");
            assert!(body["details"][0]["pointer"].is_string(), "{name}: the refusal names the field");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_events_keep_no_state_secret() {
    let mut server = TestServer::start();
    let (status, body) = post_json(&server.url, "ip_office:330000", &example("ipo-bulletin-field-secret.json")).await;
    assert_eq!(status, 202);
    let (status, _) = post_json(&server.url, "procuratorate:330000", &example("prc-bulletin-secret-field.json")).await;
    assert_eq!(status, 202);
    let (status, _) = post_json(&server.url, "ip_office:330000", &example("ipo-state-secret-message.json")).await;
    assert_eq!(status, 422);

    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    let event: String = conn
        .query_row("SELECT event FROM messages WHERE id = ?1", [body["id"].as_str().unwrap()], |r| r.get(0))
        .unwrap();
    let event: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(event["data"]["attachments"][1], Value::Null);
    assert_eq!(
        event["data"]["redactions"],
        serde_json::json!([{"pointer": "/data/attachments/1", "reason": "state_secret"}])
    );
    drop(conn);
    server.stop();

    // Nothing of a secret field or a secret message is anywhere in the store's files.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(server.data.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in [
        "专项行动部署.pdf",
        "aa2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8ff",
        "重点案件侦查部署情况",
        "本条消息整体定密为机密",
    ] {
        assert!(!text.contains(secret), "the store holds {secret}");
    }
    assert!(text.contains("2026年第三季度"), "the check reads the store's text");
}
