//! Routing with the shipped configuration (the full division table, the six regions, the
//! default rules): a test for every row of the brief's flow table, escalation, fallback,
//! cross-region cases, and the anonymised public copy.

use std::collections::BTreeMap;

use crate::common::*;
use serde_json::{Value, json};
use xietong::config::Config;
use xietong::model::BodyKind;
use xietong::pipeline;

fn config() -> Config {
    Config::load(&root().join("config")).expect("the shipped configuration checks")
}

/// Runs a native message through the pipeline and routing: recipient → (role, rules).
fn route_native(config: &Config, sender: &str, body: &[u8]) -> BTreeMap<String, (String, Vec<String>)> {
    let sender = sender.parse().unwrap();
    let format = config.mapping_for(&sender, BodyKind::Native).unwrap();
    let n = pipeline::normalize(&config.schemas, format, &sender, body).unwrap_or_else(|p| panic!("refused: {p}"));
    recipients(config, &n, &sender)
}

/// Runs a canonical event of `type` with `data` from `sender`.
fn route_event(
    config: &Config,
    sender: &str,
    message_type: &str,
    data: Value,
) -> BTreeMap<String, (String, Vec<String>)> {
    let mut data = data;
    data["sender"] = json!({"id": sender});
    data["redactions"] = json!([]);
    data["classifiedFields"] = json!([]);
    let event = json!({"specversion": "1.0", "id": "t-1", "type": message_type, "time": "2026-11-24T10:00:00+08:00", "data": data});
    let sender = sender.parse().unwrap();
    let n = pipeline::normalize(&config.schemas, &config.cloudevents, &sender, &serde_json::to_vec(&event).unwrap())
        .unwrap_or_else(|p| panic!("refused: {p}"));
    recipients(config, &n, &sender)
}

fn recipients(
    config: &Config,
    n: &pipeline::Normalized,
    sender: &xietong::model::Sender,
) -> BTreeMap<String, (String, Vec<String>)> {
    let a = pipeline::address(&config.router, &n.event, sender, None).unwrap_or_else(|p| panic!("not routed: {p}"));
    a.deliveries
        .iter()
        .map(|d| (d.routed.id.to_string(), (d.routed.role.as_str().to_string(), d.routed.rules.clone())))
        .collect()
}

fn ids(r: &BTreeMap<String, (String, Vec<String>)>) -> Vec<&str> {
    r.keys().map(String::as_str).collect()
}

fn case(number: &str, divisions: &[&str]) -> Value {
    json!({"number": number, "divisions": divisions})
}

/// Every accepted shared example, and exactly who receives it, in which role. The brief's
/// expectations (`expected.json`) name some recipients and some that must not be; this names all.
const EXACT: &[(&str, &[(&str, &str)])] = &[
    ("ipo-bulletin-field-secret.json", &[("procuratorate:330000", "primary")]),
    (
        "ipo-clue-transfer-cross-region.json",
        &[("hub:yangtze_delta", "copy"), ("procuratorate:320500", "copy"), ("public_security:320500", "primary")],
    ),
    ("ipo-clue-transfer.json", &[("procuratorate:330100", "copy"), ("public_security:330100", "primary")]),
    ("ipo-filing-supervision.json", &[("procuratorate:330100", "primary")]),
    // 无法认定: the answer goes back to the procuratorate, and the request up to the province.
    ("ipo-opinion-cannot-determine.json", &[("ip_office:440000", "primary"), ("procuratorate:440300", "primary")]),
    ("ipo-typical-case.json", &[("public", "primary")]),
    ("prc-bulletin-secret-field.json", &[("ip_office:330000", "primary")]),
    ("prc-expert-request.json", &[("ip_office:310000", "primary")]),
    (
        "prc-major-case-supervision.json",
        &[("hub:chengdu_chongqing", "copy"), ("hub:pearl_river_delta", "copy"), ("ip_office:000000", "primary")],
    ),
    ("prc-non-prosecution-transfer.json", &[("ip_office:330100", "primary")]),
    ("prc-opinion-request.json", &[("ip_office:440300", "primary")]),
    ("prc-supervision-feedback.json", &[("ip_office:330100", "primary")]),
];

#[test]
fn every_shared_example_reaches_exactly_its_recipients() {
    let config = config();
    let mut routed = 0;
    for (name, expected) in expectations() {
        if expected["accepted"] != true {
            continue;
        }
        let (_, exact) = EXACT.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{name}: add it to EXACT"));
        let got = route_native(&config, expected["sender"].as_str().unwrap(), &example(&name));
        let got: Vec<(&str, &str)> = got.iter().map(|(id, (role, _))| (id.as_str(), role.as_str())).collect();
        assert_eq!(got, *exact, "{name}");
        // The table agrees with the brief.
        for want in expected["recipients"].as_array().unwrap() {
            assert!(exact.iter().any(|(id, _)| want == id), "{name}: the brief expects {want}");
        }
        for unwanted in expected["not_recipients"].as_array().unwrap() {
            assert!(!exact.iter().any(|(id, _)| unwanted == id), "{name}: the brief excludes {unwanted}");
        }
        routed += 1;
    }
    assert_eq!(routed, EXACT.len(), "every example of the table was routed");
}

#[test]
fn section_8_clue_transfer_goes_to_the_police_with_a_copy_to_the_procuratorate() {
    let got = route_native(&config(), "ip_office:330100", &example("ipo-clue-transfer.json"));
    assert_eq!(ids(&got), ["procuratorate:330100", "public_security:330100"]);
    assert_eq!(got["public_security:330100"].0, "primary");
    assert_eq!(got["procuratorate:330100"].0, "copy");
}

#[test]
fn section_8_the_police_decision_returns_to_the_ip_office() {
    let got = route_event(
        &config(),
        "public_security:330100",
        "cn.xietong.clue.decision",
        json!({"case": case("N", &["330102"]), "decision": {"type": "立案"}}),
    );
    assert_eq!(ids(&got), ["ip_office:330100", "procuratorate:330100"]);
    assert_eq!(got["ip_office:330100"].0, "primary");
}

#[test]
fn section_8_supervision_requests_and_feedback() {
    let c = config();
    for t in ["cn.xietong.supervision.filing_suggestion", "cn.xietong.supervision.judgment_application"] {
        let got = route_event(&c, "ip_office:320500", t, json!({"case": case("N", &["320505"]), "content": "c"}));
        assert_eq!(ids(&got), ["procuratorate:320500"], "{t}");
    }
    let got = route_native(&c, "procuratorate:330100", &example("prc-supervision-feedback.json"));
    assert_eq!(ids(&got), ["ip_office:330100"]);
}

#[test]
fn section_8_non_prosecution_hand_over_and_its_result() {
    let c = config();
    let got = route_native(&c, "procuratorate:330100", &example("prc-non-prosecution-transfer.json"));
    assert_eq!(ids(&got), ["ip_office:330100"]);
    let got = route_event(
        &c,
        "ip_office:330100",
        "cn.xietong.non_prosecution.result",
        json!({"outcome": {"result": "已作出行政处罚"}}),
    );
    assert_eq!(ids(&got), ["procuratorate:330100"]);
}

#[test]
fn section_7_consultation_and_reply() {
    let c = config();
    let got = route_event(&c, "ip_office:440300", "cn.xietong.consultation.request", json!({"content": "追诉标准？"}));
    assert_eq!(ids(&got), ["procuratorate:440300"]);
    let got = route_event(&c, "procuratorate:440300", "cn.xietong.consultation.reply", json!({"content": "答复"}));
    assert_eq!(ids(&got), ["ip_office:440300"]);
}

#[test]
fn section_7_opinion_request_reply_and_escalation() {
    let c = config();
    let got = route_native(&c, "procuratorate:440300", &example("prc-opinion-request.json"));
    assert_eq!(ids(&got), ["ip_office:440300"]);
    // A reply that can determine goes back only.
    let got = route_event(
        &c,
        "ip_office:440300",
        "cn.xietong.opinion.reply",
        json!({"outcome": {"result": "构成相同商标", "cannotDetermine": false}}),
    );
    assert_eq!(ids(&got), ["procuratorate:440300"]);
    // 无法认定: back to the procuratorate, and up to the superior IP office (逐级请示).
    let got = route_native(&c, "ip_office:440300", &example("ipo-opinion-cannot-determine.json"));
    assert_eq!(ids(&got), ["ip_office:440000", "procuratorate:440300"]);
    assert_eq!(got["ip_office:440000"].1, ["opinion-cannot-determine"]);
    // The procuratorate's own escalation goes to its superior procuratorate, level by level.
    let got = route_event(
        &c,
        "procuratorate:440300",
        "cn.xietong.opinion.escalation",
        json!({"case": case("N", &["440305"]), "request": {"question": "?"}}),
    );
    assert_eq!(ids(&got), ["procuratorate:440000"]);
    let got = route_event(
        &c,
        "procuratorate:440000",
        "cn.xietong.opinion.escalation",
        json!({"case": case("N", &["440305"]), "request": {"question": "?"}}),
    );
    assert_eq!(ids(&got), ["procuratorate:000000"]);
}

#[test]
fn section_6_expert_request_and_recommendation() {
    let c = config();
    let got = route_native(&c, "procuratorate:310000", &example("prc-expert-request.json"));
    assert_eq!(ids(&got), ["ip_office:310000"]);
    let got = route_event(&c, "ip_office:310000", "cn.xietong.expert.recommendation", json!({"content": "推荐专家"}));
    assert_eq!(ids(&got), ["procuratorate:310000"]);
}

#[test]
fn sections_3_and_4_go_between_counterparts_both_ways() {
    let c = config();
    for (sender, counterpart) in [
        ("ip_office:330000", "procuratorate:330000"),
        ("procuratorate:330000", "ip_office:330000"),
        ("ip_office:000000", "procuratorate:000000"),
    ] {
        let got = route_event(
            &c,
            sender,
            "cn.xietong.related_case.notice",
            json!({"case": case("N", &["330106"]), "content": "进展"}),
        );
        assert_eq!(ids(&got), [counterpart], "related case from {sender}");
        let got = route_event(&c, sender, "cn.xietong.bulletin", json!({"content": "简报"}));
        assert_eq!(ids(&got), [counterpart], "bulletin from {sender}");
    }
}

#[test]
fn section_9_joint_supervision_is_national_only() {
    let c = config();
    let got = route_event(
        &c,
        "ip_office:000000",
        "cn.xietong.major_case.supervision",
        json!({"case": case("N", &["110105"]), "content": "c"}),
    );
    assert_eq!(ids(&got), ["procuratorate:000000"]);
    // From a province, no rule matches: the operators' feed keeps it.
    let got = route_event(
        &c,
        "procuratorate:330000",
        "cn.xietong.major_case.supervision",
        json!({"case": case("N", &["330106"]), "content": "c"}),
    );
    assert_eq!(ids(&got), ["operators"]);
}

#[test]
fn section_10_hubs_receive_cases_touching_two_provinces_of_their_region() {
    let c = config();
    // 长三角: 苏州, 杭州, 上海.
    let got = route_native(&c, "ip_office:320500", &example("ipo-clue-transfer-cross-region.json"));
    assert_eq!(got["hub:yangtze_delta"].0, "copy");
    assert!(!got.contains_key("hub:pearl_river_delta"));
    // 成渝 and 泛珠三角 (四川 and 贵州 both in the 9+2), not 长三角.
    let got = route_native(&c, "procuratorate:000000", &example("prc-major-case-supervision.json"));
    assert_eq!(ids(&got), ["hub:chengdu_chongqing", "hub:pearl_river_delta", "ip_office:000000"]);
    // Two divisions of one province do not make a cross-regional case.
    let got = route_native(&c, "ip_office:330100", &example("ipo-clue-transfer.json"));
    assert!(!got.keys().any(|k| k.starts_with("hub:")));
    // 深圳 and 香港: 大湾区 and 泛珠三角, each in two provinces.
    let got = route_event(
        &c,
        "ip_office:440300",
        "cn.xietong.related_case.notice",
        json!({"case": case("N", &["440305", "810000"]), "content": "c"}),
    );
    assert_eq!(ids(&got), ["hub:greater_bay_area", "hub:pearl_river_delta", "procuratorate:440300"]);
    // 温州 (浙江) and 福州 (福建): 海西 only (浙江 is not in the 9+2, 福建 is not in 长三角).
    let got = route_event(
        &c,
        "ip_office:330300",
        "cn.xietong.related_case.notice",
        json!({"case": case("N", &["330302", "350102"]), "content": "c"}),
    );
    assert_eq!(ids(&got), ["hub:west_strait", "procuratorate:330300"]);
}

#[test]
fn section_15_typical_cases_go_to_the_public_feed_anonymised() {
    let c = config();
    let sender = "ip_office:330000".parse().unwrap();
    let format = c.mapping_for(&sender, BodyKind::Native).unwrap();
    let n = pipeline::normalize(&c.schemas, format, &sender, &example("ipo-typical-case.json")).unwrap();
    let a = pipeline::address(&c.router, &n.event, &sender, None).unwrap();
    assert_eq!(a.deliveries.len(), 1);
    let public = &a.deliveries[0];
    assert_eq!(public.routed.id.to_string(), "public");
    let d = &public.event(&n.event)["data"];
    assert_eq!(d["parties"][0]["name"], "王某");
    assert!(d["parties"][0].get("residentId").is_none());
    assert_eq!(
        d["content"],
        "王某经营的杭州某贸易有限公司销售侵权运动鞋3,200双。本案行政执法与刑事司法有效衔接，入选2026年度知识产权行政保护典型案例。"
    );
    let text = public.event(&n.event).to_string();
    assert!(!text.contains("王建国") && !text.contains("330102198503124031"), "{text}");
    let removed: Vec<&str> = public.removed.iter().map(|r| r.pointer.as_str()).collect();
    assert!(removed.contains(&"/data/parties/0/residentId") && removed.contains(&"/data/content"), "{removed:?}");
    assert!(d["redactions"].as_array().unwrap().iter().all(|r| r["reason"] == "personal_data"));
    // The stored message itself keeps the names: only the public copy is masked.
    assert_eq!(n.event["data"]["parties"][0]["name"], "王建国");
}

#[test]
fn each_recipient_gets_only_what_its_clearance_allows() {
    let c = config();
    let sender = "procuratorate:000000".parse().unwrap();
    let format = c.mapping_for(&sender, BodyKind::Native).unwrap();
    let n = pipeline::normalize(&c.schemas, format, &sender, &example("prc-major-case-supervision.json")).unwrap();
    let a = pipeline::address(&c.router, &n.event, &sender, None).unwrap();
    for d in &a.deliveries {
        let event = d.event(&n.event);
        let content = event["data"].get("content");
        match d.routed.id.to_string().as_str() {
            "ip_office:000000" => assert!(content.is_some(), "an agency is cleared for 工作秘密"),
            hub => {
                assert!(content.is_none(), "{hub} is cleared for 内部 only");
                assert_eq!(event["classification"], "内部");
                assert_eq!(
                    event["data"]["redactions"],
                    json!([{"pointer": "/data/content", "reason": "above_clearance"}])
                );
            }
        }
    }
}

#[test]
fn unknown_divisions_are_refused_not_misrouted() {
    let c = config();
    let sender = "ip_office:330100".parse().unwrap();
    let format = c.mapping_for(&sender, BodyKind::Native).unwrap();
    let mut m = example_json("ipo-clue-transfer.json");
    m["aj"]["fsdq"] = json!(["330102", "339999"]);
    let n = pipeline::normalize(&c.schemas, format, &sender, &serde_json::to_vec(&m).unwrap()).unwrap();
    let p = pipeline::address(&c.router, &n.event, &sender, None).unwrap_err();
    assert_eq!(p.code.as_str(), "unknown_division");
    assert_eq!(p.details[0].pointer, "/data/case/divisions/1");
}

#[test]
fn a_target_that_is_not_connected_falls_back_as_the_rule_says() {
    let dir = ConfigDir::new("");
    // Hold (the default): 深圳 police are not connected; the clue waits in their inbox.
    let rules = std::fs::read_to_string(dir.path().join("rules.yaml")).unwrap();
    // With `fallback: superior`, it goes to the nearest connected superior: here the Guangdong
    // provincial police, once connected.
    let rules = rules.replace("    to: [ { same_level: public_security } ]\n    copy: [ { same_level: procuratorate } ]", "    to: [ { same_level: public_security } ]\n    copy: [ { same_level: procuratorate } ]\n    fallback: superior");
    dir.replace_rules(&rules);
    let agencies = std::fs::read_to_string(dir.path().join("agencies.yaml")).unwrap();
    dir.write("agencies.yaml", &format!("{agencies}\n  - id: public_security:440000\n    name: 广东省公安厅\n"));
    let c = dir.load();
    let mut m = example_json("ipo-clue-transfer.json");
    m["fsdw"]["dm"] = json!("440300");
    m["aj"]["fsdq"] = json!(["440305"]);
    let sender = "ip_office:440300".parse().unwrap();
    let format = c.mapping_for(&sender, BodyKind::Native).unwrap();
    let n = pipeline::normalize(&c.schemas, format, &sender, &serde_json::to_vec(&m).unwrap()).unwrap();
    let a = pipeline::address(&c.router, &n.event, &sender, None).unwrap();
    let police = a.deliveries.iter().find(|d| d.routed.id.to_string().starts_with("public_security")).unwrap();
    assert_eq!(police.routed.id.to_string(), "public_security:440000");
    assert!(
        police.routed.fallback.as_deref().unwrap().contains("sent to its superior"),
        "{:?}",
        police.routed.fallback
    );
    // The procuratorate copy (procuratorate:440300 connected) is not affected.
    assert!(
        a.deliveries.iter().any(|d| d.routed.id.to_string() == "procuratorate:440300" && d.routed.fallback.is_none())
    );

    let c = config();
    let n = pipeline::normalize(
        &c.schemas,
        c.mapping_for(&sender, BodyKind::Native).unwrap(),
        &sender,
        &serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
    let a = pipeline::address(&c.router, &n.event, &sender, None).unwrap();
    let police = a.deliveries.iter().find(|d| d.routed.id.to_string().starts_with("public_security")).unwrap();
    assert_eq!(police.routed.id.to_string(), "public_security:440300");
    assert!(police.routed.fallback.as_deref().unwrap().contains("held in its inbox"));
}

#[test]
fn a_message_no_rule_routes_is_kept_for_the_operators() {
    let c = config();
    // The police do not send bulletins under any default rule.
    let got = route_event(&c, "public_security:330100", "cn.xietong.bulletin", json!({"content": "c"}));
    assert_eq!(ids(&got), ["operators"]);
}

/// Recipients with the same clearance share one copy, and the outbox serialises it once: for
/// every shared example that is accepted, each recipient's event is the view made for it alone,
/// and its outbox row holds exactly that view (none when it is the event itself).
#[test]
fn shared_copies_are_each_recipients_own_view() {
    let c = config();
    let mut checked = 0;
    for (name, expected) in expectations() {
        let Some(sender) = expected["sender"].as_str().and_then(|s| s.parse().ok()) else { continue };
        let Some(format) = c.mapping_for(&sender, BodyKind::Native) else { continue };
        let Ok(n) = pipeline::normalize(&c.schemas, format, &sender, &example(&name)) else { continue };
        let Ok(a) = pipeline::address(&c.router, &n.event, &sender, None) else { continue };
        let outbox = pipeline::outbox(&a.deliveries, &n.event);
        for (d, row) in a.deliveries.iter().zip(&outbox) {
            let masking = d.routed.id.is_public().then_some(&c.router.clearances.masking);
            let alone = match xietong::secrecy::view::for_recipient(&n.event, d.clearance, masking) {
                xietong::secrecy::view::View::AsIs => n.event.clone(),
                xietong::secrecy::view::View::Deliver { event, .. } => event,
                xietong::secrecy::view::View::Withhold(why) => panic!("{name}: {why}"),
            };
            assert_eq!(*d.event(&n.event), alone, "{name}: {}", d.routed.id);
            let stored = row.event.as_deref().map_or_else(|| n.event.clone(), |t| serde_json::from_str(t).unwrap());
            assert_eq!(stored, alone, "{name}: {}'s outbox row", d.routed.id);
            checked += 1;
        }
    }
    assert!(checked >= 10, "the examples' recipients were checked: {checked}");
}
