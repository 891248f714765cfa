//! Onboarding a third system takes one new file and no code change: the worked example of
//! docs/mapping.md (docs/examples/psb-case.yaml), checked, explained and posted as written.

use crate::common::*;
use serde_json::{Value, json};

fn onboarded() -> ConfigDir {
    let config = ConfigDir::new("");
    let spec = std::fs::read_to_string(root().join("docs/examples/psb-case.yaml")).unwrap();
    config.write("sources/psb-case.yaml", &spec);
    let agencies = std::fs::read_to_string(config.path().join("agencies.yaml")).unwrap();
    let hash = xietong::token::format_hash(&xietong::token::hash(&demo_token("public_security:330100")));
    config.write(
        "agencies.yaml",
        &format!("{agencies}\n  - id: public_security:330100\n    name: 杭州市公安局\n    format: psb-case\n    tokens:\n      - {hash}\n"),
    );
    config
}

#[test]
fn the_worked_example_checks_and_explains() {
    let config = onboarded();
    let dir = config.path().to_str().unwrap();
    let (code, stdout, stderr) = run_cli(&["check", "--config", dir]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("psb-case"), "{stdout}");

    let sample = root().join("docs/examples/psb-decision.json");
    let (code, stdout, _) =
        run_cli(&["explain", "--config", dir, "--as", "public_security:330100", sample.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    let m = &out["message"];
    assert_eq!(m["type"], "cn.xietong.clue.decision");
    assert_eq!(m["subject"], "杭市监知执〔2026〕123号");
    assert_eq!(m["inreplyto"], "ZJ-HZ-2026-004417");
    assert_eq!(m["time"], "2026-11-25T10:30:00+08:00");
    assert_eq!(m["data"]["decision"]["type"], "立案侦查");
    assert_eq!(m["data"]["case"]["charge"], "selling_counterfeit_trademark_goods");
    assert_eq!(
        m["data"]["parties"][0],
        json!({"kind": "person", "role": "criminal_suspect", "name": "王建国", "residentId": "330102198503124031"})
    );
    assert_eq!(m["data"]["classifiedFields"], json!([{"pointer": "/data/parties/0/residentId", "level": "工作秘密"}]));
    // A field the mapping does not read is kept, not dropped.
    assert_eq!(m["data"]["extra"], json!({"/operator": "张警官"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_third_system_posts_like_the_others() {
    let server = TestServer::with_config(onboarded());
    let sample = std::fs::read(root().join("docs/examples/psb-decision.json")).unwrap();
    let (status, body) = post_json(&server.url, "public_security:330100", &sample).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["type"], "cn.xietong.clue.decision");
}

// The second worked example: an economic-crime case system whose JSON is converted from an
// XML export (docs/examples/psb-economic-crime.yaml and its three messages).

const ECC: &str = "public_security:320500";

fn onboarded_xml_export() -> ConfigDir {
    let config = ConfigDir::new("");
    let spec = std::fs::read_to_string(root().join("docs/examples/psb-economic-crime.yaml")).unwrap();
    config.write("sources/psb-economic-crime.yaml", &spec);
    let agencies = std::fs::read_to_string(config.path().join("agencies.yaml")).unwrap();
    let hash = xietong::token::format_hash(&xietong::token::hash(&demo_token(ECC)));
    config.write(
        "agencies.yaml",
        &format!("{agencies}\n  - id: {ECC}\n    name: 苏州市公安局\n    format: psb-economic-crime\n    tokens:\n      - {hash}\n"),
    );
    config
}

fn ecc_example(name: &str) -> Vec<u8> {
    std::fs::read(root().join(format!("docs/examples/{name}.json"))).unwrap()
}

fn explain(config: &ConfigDir, body: &[u8]) -> Value {
    let sample = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(sample.path(), body).unwrap();
    let dir = config.path().to_str().unwrap();
    let (_, stdout, stderr) = run_cli(&["explain", "--config", dir, "--as", ECC, sample.path().to_str().unwrap()]);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"))
}

#[test]
fn the_xml_export_checks_and_explains() {
    let config = onboarded_xml_export();
    let dir = config.path().to_str().unwrap();
    let (code, stdout, stderr) = run_cli(&["check", "--config", dir]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("psb-economic-crime"), "{stdout}");

    // A single suspect, area, attachment and marking, each written as the element itself.
    let out = explain(&config, &ecc_example("psb-ecc-decision"));
    assert_eq!(out["accepted"], true, "{out:#}");
    let m = &out["message"];
    assert_eq!(m["nativeid"], "SZJZ-2026-000214", "the padded id is trimmed");
    assert_eq!(m["inreplyto"], "JS-SZ-2026-000981");
    assert_eq!(m["time"], "2026-11-25T09:30:00+08:00", "2026年11月25日 + 9时30分, Beijing time");
    assert_eq!(m["classification"], "内部", "密级 code 0 is 非密");
    let d = &m["data"];
    assert_eq!(d["sender"]["name"], "苏州市公安局经济犯罪侦查支队", "the #text of an element with attributes");
    assert_eq!(
        d["case"],
        json!({"number": "苏市监知执〔2026〕58号", "name": "苏州某电子商务有限公司销售假冒注册商标的商品案",
               "charge": "selling_counterfeit_trademark_goods", "amountYuan": 860000, "divisions": ["320505"]})
    );
    assert_eq!(
        d["decision"],
        json!({"type": "立案侦查", "documentNo": "苏公（经）立字〔2026〕31号", "date": "2026-11-25"})
    );
    assert_eq!(d["content"], "经审查，移送线索符合立案条件，已决定立案侦查。");
    assert_eq!(
        d["parties"],
        json!([{"kind": "person", "role": "criminal_suspect", "name": "陈建华", "residentId": "320505198206150018"}])
    );
    assert_eq!(d["attachments"], json!([{"fileName": "立案决定书.pdf", "size": 48211, "classification": "内部"}]));
    assert_eq!(d["classifiedFields"], json!([{"pointer": "/data/parties/0/residentId", "level": "工作秘密"}]));
    assert_eq!(d["extra"], json!({"/JZXX/JBR": "周警官"}));

    // Lists of several, full-width digits, seconds, and an attachment marked 秘密 by its code.
    let out = explain(&config, &ecc_example("psb-ecc-decision-many"));
    assert_eq!(out["accepted"], true, "{out:#}");
    let m = &out["message"];
    assert_eq!(m["time"], "2026-11-26T14:05:30+08:00");
    assert_eq!(m["classification"], "工作秘密");
    let d = &m["data"];
    assert_eq!(d["case"]["amountYuan"], 12_000_000, "１，２００万元");
    assert_eq!(d["case"]["divisions"], json!(["320505", "320506"]));
    assert_eq!(d["parties"][0]["creditCode"], "91320505MA1XK3Q0E8");
    assert_eq!(d["parties"][1]["name"], "刘志强");
    assert_eq!(d["attachments"][0]["fileName"], "不予立案通知书.pdf");
    assert_eq!(d["redactions"], json!([{"pointer": "/data/attachments/1", "reason": "state_secret"}]));
    assert!(!out.to_string().contains("侦查工作方案"), "the secret attachment's name left: {out:#}");

    // 密级 code 2 is 机密: refused exactly as the same message marked in words.
    let secret = ecc_example("psb-ecc-decision-secret");
    let by_code = explain(&config, &secret);
    let mut worded: Value = serde_json::from_slice(&secret).unwrap();
    worded["JZXX"]["BT"]["MJ"] = json!("机密");
    let by_word = explain(&config, &serde_json::to_vec(&worded).unwrap());
    assert_eq!(by_code["accepted"], false);
    assert_eq!(by_code["error"]["code"], "state_secret");
    assert_eq!(by_code["error"], by_word["error"]);
}

/// The bureau receives an IP office's clue transfer in its feed and answers it with a decision
/// in its own export format; the office receives the decision. A 机密 message is refused over
/// HTTP as in words, and nothing of it is delivered.
#[tokio::test(flavor = "multi_thread")]
async fn the_xml_export_answers_a_clue_transfer_over_http() {
    let server = TestServer::with_config(onboarded_xml_export());
    let transfer =
        std::fs::read(root().join("tests/fixtures/shared/examples/ipo-clue-transfer-cross-region.json")).unwrap();
    let (status, receipt) = post_json(&server.url, "ip_office:320500", &transfer).await;
    assert_eq!(status, 202, "{receipt}");
    assert!(recipients(&receipt).contains(&format!("{ECC} primary")), "{receipt}");
    inbox_until(&server.url, ECC, |events| events.iter().any(|e| e["nativeid"] == "JS-SZ-2026-000981")).await;

    let (status, receipt) = post_json(&server.url, ECC, &ecc_example("psb-ecc-decision")).await;
    assert_eq!(status, 202, "{receipt}");
    assert!(recipients(&receipt).contains(&"ip_office:320500 primary".to_string()), "{receipt}");
    let (status, receipt) = post_json(&server.url, ECC, &ecc_example("psb-ecc-decision-many")).await;
    assert_eq!(status, 202, "{receipt}");

    let secret = ecc_example("psb-ecc-decision-secret");
    let (status, by_code) = post_json(&server.url, ECC, &secret).await;
    let mut worded: Value = serde_json::from_slice(&secret).unwrap();
    worded["JZXX"]["BT"]["MJ"] = json!("机密");
    let (status_worded, by_word) = post_json(&server.url, ECC, &serde_json::to_vec(&worded).unwrap()).await;
    assert_eq!((status, by_code["code"].as_str()), (422, Some("state_secret")), "{by_code}");
    assert_eq!((status_worded, &by_word["code"]), (status, &by_code["code"]));

    let office = inbox_until(&server.url, "ip_office:320500", |events| {
        events.iter().filter(|e| e["type"] == "cn.xietong.clue.decision").count() == 2
    })
    .await;
    let decision = office.iter().find(|e| e["nativeid"] == "SZJZ-2026-000214").unwrap();
    assert_eq!(decision["inreplyto"], "JS-SZ-2026-000981");
    assert_eq!(decision["data"]["case"]["amountYuan"], 860000);
    assert!(office.iter().all(|e| e["nativeid"] != "SZJZ-2026-000216"), "the 机密 message was delivered");
}
