//! Routing rules checked and tested like code: `check` refuses a condition that reads a member
//! that does not exist, compares incompatible types or a literal that cannot occur, each at its
//! line and column; warns of a rule that can never match; runs `rules.test.yaml`, which pins
//! every shipped rule, and refuses (with reload) a change that breaks a flow. A condition that
//! fails at run time is counted, logged, traced and told to the operators.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::*;

/// Appends `rules` (YAML list items) to the configuration's rules.yaml.
fn with_rules(config: &ConfigDir, rules: &str) {
    let path = config.path().join("rules.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(path, format!("{text}\n{rules}")).unwrap();
}

fn check(config: &ConfigDir) -> (i32, String, String) {
    run_cli(&["check", "--config", config.path().to_str().unwrap()])
}

/// The line of rules.yaml where `text` first occurs (1-based).
fn line_of(config: &ConfigDir, text: &str) -> usize {
    let rules = std::fs::read_to_string(config.path().join("rules.yaml")).unwrap();
    rules.lines().position(|l| l.contains(text)).unwrap() + 1
}

#[test]
fn check_refuses_conditions_that_can_never_work_at_their_line_and_column() {
    let config = ConfigDir::new("");
    with_rules(
        &config,
        r#"  - name: typo-in-a-field
    types: [cn.xietong.clue.transfer]
    when: '"yangtze_delta" in case.regionz'
    copy: [ { hub: yangtze_delta } ]
  - name: typo-in-a-region
    types: [cn.xietong.clue.transfer]
    when: case.regions.exists(r, r == "yangtze_dleta")
    copy: [ { hub: yangtze_delta } ]
  - name: every-kind-of-mistake
    types: [cn.xietong.clue.transfer]
    when: case.regions == "yangtze_delta" || sender.kind == "police" || sender.level == "city" || message.type == "cn.xietong.clue.transfr" || case.divisions.exists(d, d == "999999") || message.data.case.category == "piracy" || message.data.sender.id == "ip_office:33" || message.data.case.amountYuan == "many" || message.data.parties.size() > 0 && message.data.case.name.nme == "x"
    copy: [ { hub: yangtze_delta } ]
"#,
    );
    let (code, _, stderr) = check(&config);
    assert_eq!(code, 2, "{stderr}");
    let (field, region, all) =
        (line_of(&config, "case.regionz"), line_of(&config, "yangtze_dleta"), line_of(&config, "every-kind") + 2);
    // The position is the character of the condition that is wrong: the member selected, the
    // literal that cannot occur, or the operator comparing what cannot compare.
    let expected = [
        format!(
            "rules.yaml:{field}:35: rule `typo-in-a-field`: `case` has no member `regionz`; did you mean `regions`?"
        ),
        format!(
            "rules.yaml:{region}:39: rule `typo-in-a-region`: `yangtze_dleta` is not a region of regions.yaml, so the comparison can never hold; did you mean `yangtze_delta`?"
        ),
        format!(
            "rules.yaml:{all}:24: rule `every-kind-of-mistake`: compares a list with a string, which can never be equal"
        ),
        format!(
            "rules.yaml:{all}:61: rule `every-kind-of-mistake`: `police` is not a kind of sender (ip_office, procuratorate, public_security, court, hub), so the comparison can never hold"
        ),
        format!(
            "rules.yaml:{all}:89: rule `every-kind-of-mistake`: `city` is not a level (national, province, prefecture, county), so the comparison can never hold"
        ),
        format!(
            "rules.yaml:{all}:115: rule `every-kind-of-mistake`: `cn.xietong.clue.transfr` is not a message type, so the comparison can never hold; did you mean `cn.xietong.clue.transfer`?"
        ),
        format!(
            "rules.yaml:{all}:174: rule `every-kind-of-mistake`: `999999` is not a division of the GB/T 2260 table (config/divisions.csv), so the comparison can never hold"
        ),
        format!(
            "rules.yaml:{all}:217: rule `every-kind-of-mistake`: `piracy` is not one of trademark_infringement, patent_counterfeiting, patent_infringement_dispute, geographical_indication_infringement, other, so the comparison can never hold"
        ),
        format!(
            "rules.yaml:{all}:255: rule `every-kind-of-mistake`: `ip_office:33` does not have the form the schema gives"
        ),
        format!(
            "rules.yaml:{all}:302: rule `every-kind-of-mistake`: compares a number with a string, which can never be equal"
        ),
        format!(
            "rules.yaml:{all}:372: rule `every-kind-of-mistake`: `message.data.case.name` is a string: it has no member `nme`"
        ),
    ];
    for e in &expected {
        assert!(stderr.contains(e.as_str()), "missing {e:?} in:\n{stderr}");
    }
    assert!(stderr.contains(&format!("has {} problem(s)", expected.len())), "each problem once:\n{stderr}");
}

#[test]
fn check_warns_of_a_rule_that_can_never_match_and_still_succeeds() {
    let config = ConfigDir::new("");
    with_rules(
        &config,
        "  - name: police-bulletins\n    types: [cn.xietong.bulletin]\n    senders: [public_security]\n    to: [ { feed: public } ]\n\
         \x20 - name: hub-members-for-agencies\n    types: [cn.xietong.related_case.notice]\n    senders: [ip_office]\n    to: [ { members_of: sender } ]\n",
    );
    let (code, stdout, stderr) = check(&config);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("OK"), "{stdout}");
    let line = line_of(&config, "police-bulletins");
    assert!(
        stderr.contains(&format!("warning: {}/rules.yaml:{line}:11: rule `police-bulletins` can never match: permissions.yaml lets no sender of its kinds send its types", config.path().display())),
        "{stderr}"
    );
    assert!(stderr.contains("rule `hub-members-for-agencies`: `members_of: sender` names the sending hub's region, and no hub may send its types"), "{stderr}");
}

#[test]
fn the_shipped_tests_pin_every_shipped_rule() {
    let config = ConfigDir::new("");
    let loaded = config.load();
    let outcome = xietong::pipeline::rule_tests::run(config.path(), &loaded);
    assert!(outcome.failures.is_empty(), "{:#?}", outcome.failures.iter().map(ToString::to_string).collect::<Vec<_>>());
    assert!(outcome.ran >= 30, "{} tests", outcome.ran);
    let rules: BTreeSet<String> = loaded.router.rules().iter().map(|r| r.name.clone()).collect();
    let unpinned: Vec<&String> = rules.difference(&outcome.rules_applied).collect();
    assert!(unpinned.is_empty(), "rules no test in rules.test.yaml sees decide: {unpinned:?}");
    let (code, stdout, _) = check(&config);
    assert_eq!(code, 0);
    assert!(stdout.contains(&format!("{} routing tests passed (rules.test.yaml)", outcome.ran)), "{stdout}");
}

/// A change that breaks a flow (the clue no longer copied to the procuratorate, §八) is refused by
/// `check` and by a reload, which keeps the rules in force.
#[tokio::test(flavor = "multi_thread")]
async fn a_rule_change_that_breaks_a_flow_is_refused_and_the_old_rules_keep_serving() {
    let server = TestServer::start();
    let rules = server.config.path().join("rules.yaml");
    let text = std::fs::read_to_string(&rules).unwrap();
    let broken = text.replacen(
        "    to: [ { same_level: public_security } ]\n    copy: [ { same_level: procuratorate } ]",
        "    to: [ { same_level: public_security } ]",
        1,
    );
    assert_ne!(broken, text);
    std::fs::write(&rules, broken).unwrap();

    let (code, _, stderr) = check(&server.config);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("rules.test.yaml:"), "{stderr}");
    assert!(stderr.contains("expected copy [procuratorate:330100]; routing gave to [public_security:330100], copy [] (rules: clue-transfer)"), "{stderr}");

    let (status, refused) =
        call(reqwest::Method::POST, &format!("{}/v1/admin/reload", server.url), Some(OPERATOR), None).await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("invalid_configuration")), "{refused}");
    assert!(refused.to_string().contains("test `a clue goes to the police, the procuratorate in copy"), "{refused}");

    let receipt = accepted(&server.url, "ip_office:330100", &example_json("ipo-clue-transfer.json")).await;
    assert_eq!(recipients(&receipt), ["procuratorate:330100 copy", "public_security:330100 primary"], "{receipt}");
}

/// A condition that fails on a message (it reads a member the message lacks) is counted, logged
/// with the message's id and never its content, kept in the message's trace, and told to the
/// operators once.
#[tokio::test(flavor = "multi_thread")]
async fn a_condition_that_fails_at_run_time_is_counted_logged_traced_and_told() {
    let config = ConfigDir::new("log:\n  level: warn\n");
    with_rules(
        &config,
        "  - name: big-cases\n    types: [cn.xietong.supervision.filing_suggestion]\n    when: message.data.case.amountYuan >= 1000000\n    copy: [ { hub: yangtze_delta } ]\n",
    );
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("xietong.log");
    let mut server = BinaryServer::spawn_logging_to(config.path(), &data.path().join("store"), &log);
    let url = server.url.clone();

    let mut ids = Vec::new();
    for n in 0..2 {
        let mut m = example_json("ipo-filing-supervision.json");
        m["xxid"] = json!(format!("ZJ-HZ-RULE-{n}"));
        let receipt = accepted(&url, "ip_office:330100", &m).await;
        assert_eq!(recipients(&receipt), ["procuratorate:330100 primary"], "the rule did not apply: {receipt}");
        ids.push(receipt["id"].as_str().unwrap().to_string());
    }

    let metrics = client().get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("xietong_rule_errors_total{rule=\"big-cases\"} 2"), "{metrics}");

    let trace = operator_get(&format!("{url}/v1/admin/messages/{}", ids[0])).await;
    assert_eq!(trace["rule_errors"], json!(["big-cases: the message has no member `amountYuan`"]), "{trace}");

    let notices =
        feed_until(&url, "operators", OPERATOR, |e| e.iter().any(|m| m["type"] == "cn.xietong.gateway.notice")).await;
    let told: Vec<&Value> = notices.iter().filter(|m| m["type"] == "cn.xietong.gateway.notice").collect();
    assert_eq!(told.len(), 1, "told once: {told:#?}");
    assert_eq!(told[0]["sender"], "gateway");
    assert_eq!(
        told[0]["data"]["notice"],
        json!({"kind": "rule_error", "rule": "big-cases", "message": ids[0], "reason": "the message has no member `amountYuan`"})
    );

    server.signal("TERM");
    server.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("a routing rule's condition failed")).collect();
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(
        warnings[0].contains(&ids[0]) && warnings[0].contains("big-cases") && warnings[0].contains("WARN"),
        "{}",
        warnings[0]
    );
    assert!(!log.contains("杭州"), "no content of the message in the log");
}
