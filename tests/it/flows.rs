//! The flows of the opinion end to end, over HTTP against the real binary (and on Redis with
//! `XIETONG_TEST_STORE=redis`): who receives each message, and the threads that track replies.

use serde_json::{Value, json};

use crate::common::*;

/// The shipped configuration with short delivery times.
fn exchange() -> Exchange {
    Exchange::start(ConfigDir::new(&fast_delivery("")))
}

/// The opinion request of 深圳市人民检察院 (procuratorate:440300), as procuratorate `from` with
/// native `id` and message type `native_type`.
fn procuratorate_message(from: &str, id: &str, native_type: &str) -> Value {
    let mut m = example_json("prc-opinion-request.json");
    m["header"]["messageId"] = json!(id);
    m["header"]["messageType"] = json!(native_type);
    m["header"]["sender"] = json!({ "orgCode": from, "orgName": "人民检察院" });
    m
}

/// Defect 1 of issue 15: a procuratorate's escalation (逐级请示) to its superior could never be
/// answered; the superior procuratorate now answers in its own system's format, and the answer
/// reaches the one that asked and closes the obligation.
#[tokio::test(flavor = "multi_thread")]
async fn a_superior_procuratorate_answers_an_escalation() {
    let gw = exchange();
    let escalation = procuratorate_message("330100", "HZ-JCY-ESC-1", "OPINION_ESCALATION");
    let receipt = accepted(gw.url(), "procuratorate:330100", &escalation).await;
    assert!(recipients(&receipt).contains(&"procuratorate:330000 primary".to_string()), "{receipt}");
    let asked = receipt["id"].clone();
    let owed =
        thread_until(gw.url(), asked.as_str().unwrap(), |t| !t["obligations"].as_array().unwrap().is_empty()).await;
    assert_eq!(owed["obligations"][0]["awaiting"], "procuratorate:330000");

    let mut answer = procuratorate_message("330000", "ZJ-JCY-REP-1", "OPINION_REPLY");
    answer["header"]["inReplyTo"] = json!("HZ-JCY-ESC-1");
    answer["body"]["outcome"] = json!({ "result": "构成相同商标", "explanation": "涉案标识与注册商标构成相同商标。" });
    let receipt = accepted(gw.url(), "procuratorate:330000", &answer).await;
    assert_eq!(recipients(&receipt), ["procuratorate:330100 primary"], "{receipt}");
    let answered = receipt["id"].clone();
    inbox_until(gw.url(), "procuratorate:330100", |e| has(e, &answered)).await;

    let thread = thread_until(gw.url(), answered.as_str().unwrap(), |t| t["state"] == "closed").await;
    let owed = &thread["obligations"][0];
    assert_eq!((owed["state"].as_str(), owed["answered_by"].as_str()), (Some("answered"), answered.as_str()));
}

/// Defect 2 of issue 15: when a reply of 无法认定 took a procuratorate's request up to the
/// superior IP office, the superior's answer went only to the office that escalated. It now
/// reaches the procuratorate that first asked, with a copy to that office, and every obligation
/// of the chain is answered.
#[tokio::test(flavor = "multi_thread")]
async fn the_superior_offices_answer_reaches_whoever_first_asked() {
    let gw = exchange();
    let asked = accepted(gw.url(), "procuratorate:440300", &example_json("prc-opinion-request.json")).await;
    accepted(gw.url(), "ip_office:440300", &example_json("ipo-opinion-cannot-determine.json")).await;
    let upstairs =
        inbox_until(gw.url(), "ip_office:440000", |e| e.iter().any(|m| m["type"] == "cn.xietong.opinion.escalation"))
            .await;
    let escalation = upstairs.iter().find(|m| m["type"] == "cn.xietong.opinion.escalation").unwrap();

    let mut answer = example_json("ipo-opinion-cannot-determine.json");
    answer["xxid"] = json!("GD-SJ-2026-000311");
    answer["glxxid"] = escalation["nativeid"].clone();
    answer["fsdw"] = json!({"dm": "440000", "mc": "广东省知识产权局"});
    answer["fk"] = json!({"jg": "构成相同商标", "sm": "涉案标识与注册商标构成相同商标。"});
    let receipt = accepted(gw.url(), "ip_office:440000", &answer).await;
    assert_eq!(recipients(&receipt), ["ip_office:440300 copy", "procuratorate:440300 primary"], "{receipt}");
    let answered = receipt["id"].clone();
    inbox_until(gw.url(), "procuratorate:440300", |e| has(e, &answered)).await;
    inbox_until(gw.url(), "ip_office:440300", |e| has(e, &answered)).await;

    let thread = thread_until(gw.url(), answered.as_str().unwrap(), |t| t["state"] == "closed").await;
    assert_eq!(thread["id"], asked["id"], "one thread, from the first request");
    let owed = thread["obligations"].as_array().unwrap();
    assert_eq!(owed.len(), 2, "{thread:#}");
    assert!(owed.iter().all(|o| o["state"] == "answered"), "{thread:#}");
    assert_eq!(owed[1]["answered_by"], answered);
}

/// Defect 3 of issue 15: replies went to the same-level office of their sender. After a clue
/// went up to the provincial police (the local police are not connected), its decision went to
/// the provincial IP office; it now goes back to the office that sent the clue, with a copy to
/// the procuratorate at that office's level (the one the clue was copied to).
#[tokio::test(flavor = "multi_thread")]
async fn after_a_fallback_the_decision_goes_back_to_the_office_that_sent_the_clue() {
    let config = ConfigDir::new(&fast_delivery(""));
    config.connect("public_security:440000");
    let rules = std::fs::read_to_string(config.path().join("rules.yaml")).unwrap();
    let clue_rule = "    to: [ { same_level: public_security } ]\n    copy: [ { same_level: procuratorate } ]\n";
    assert!(rules.contains(clue_rule));
    config.replace_rules(&rules.replacen(clue_rule, &format!("{clue_rule}    fallback: superior\n"), 1));
    let gw = Exchange::start(config);

    let mut clue = example_json("ipo-clue-transfer.json");
    clue["xxid"] = json!("SZ-ZSCQ-2026-CLUE-9");
    clue["fsdw"] = json!({"dm": "440300", "mc": "深圳市市场监督管理局（深圳市知识产权局）"});
    clue["aj"]["fsdq"] = json!(["440305"]);
    let receipt = accepted(gw.url(), "ip_office:440300", &clue).await;
    assert_eq!(recipients(&receipt), ["procuratorate:440300 copy", "public_security:440000 primary"], "{receipt}");

    let decision = canonical(
        "public_security:440000",
        "cn.xietong.clue.decision",
        "GD-GAT-2026-DEC-1",
        Some("SZ-ZSCQ-2026-CLUE-9"),
        json!({"case": {"number": clue["aj"]["ajbh"]}, "decision": {"type": "立案"}}),
    );
    let (status, receipt) = post_canonical(gw.url(), "public_security:440000", &decision).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(recipients(&receipt), ["ip_office:440300 primary", "procuratorate:440300 copy"], "{receipt}");
    let decided = receipt["id"].clone();
    inbox_until(gw.url(), "ip_office:440300", |e| has(e, &decided)).await;
    let thread = thread_until(gw.url(), decided.as_str().unwrap(), |t| t["state"] == "closed").await;
    assert_eq!(thread["obligations"][0]["answered_by"], decided);
}

/// Defect 5 of issue 15: the public copy let through the personal data of people who are not
/// parties (张警官 in free text), phone numbers with separators or in full-width digits, e-mail
/// and street addresses. None of it reaches the public feed now, nor what the operators add to
/// the masking (a car plate here).
#[tokio::test(flavor = "multi_thread")]
async fn the_public_copy_carries_no_personal_data_of_anyone() {
    let settings = format!("{}routing:\n  anonymise:\n    patterns: ['浙A[0-9A-Z]{{5}}']\n", fast_delivery(""));
    let gw = Exchange::start(ConfigDir::new(&settings));
    let mut case = example_json("ipo-typical-case.json");
    let personal = [
        "张警官",
        "138-1234-5678",
        "139 8765 4321",
        "+86 137 0000 1111",
        "１３６１２３４５６７８",
        "0571 87654321",
        "wang.jianguo@example.com",
        "文三路478号",
        "3幢2单元501室",
        "联系人李芳",
        "浙A12B34",
    ];
    case["nr"] = json!(format!(
        "王建国经营的杭州某贸易有限公司销售侵权运动鞋。现场由{}带队，举报电话{}、{}、{}、{}，座机{}，邮箱{}，仓库位于{}{}。{}协助。涉案车辆{}。",
        personal[0],
        personal[1],
        personal[2],
        personal[3],
        personal[4],
        personal[5],
        personal[6],
        personal[7],
        personal[8],
        personal[9],
        personal[10]
    ));
    let receipt = accepted(gw.url(), "ip_office:330000", &case).await;
    let id = receipt["id"].clone();
    let public = feed_until(gw.url(), "public", "", |e| has(e, &id)).await;
    let copy = public.iter().find(|e| e["id"] == id).unwrap();
    let text = copy.to_string();
    for p in personal {
        assert!(!text.contains(p), "{p} reached the public feed: {}", copy["data"]["content"]);
    }
    assert!(!text.contains("建国") && !text.contains("李芳"), "{}", copy["data"]["content"]);
    assert!(
        copy["data"]["redactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["pointer"] == "/data/content" && r["reason"] == "personal_data"),
        "the copy says where personal data was masked: {copy}"
    );
}
