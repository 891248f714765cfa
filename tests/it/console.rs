//! The operators' console in a real browser (headless chromium over WebDriver) against the real
//! binary, with messages posted over HTTP: sign-in, every page with real data, one action per
//! page, roles, CSRF, sign-out. Each page's screenshot is saved in `target/console/`.

use fantoccini::Locator;
use serde_json::json;

use crate::common::*;

/// The exchange with some traffic: two clues (one resent), a filing suggestion, a refusal.
async fn with_traffic() -> Exchange {
    let gw = Exchange::start(ConfigDir::new(&fast_delivery("")));
    accepted(gw.url(), "ip_office:330100", &example_json("ipo-clue-transfer.json")).await;
    let (status, _) = post_json(gw.url(), "ip_office:330100", &example("ipo-clue-transfer.json")).await;
    assert_eq!(status, 200, "a resend");
    accepted(gw.url(), "ip_office:330100", &example_json("ipo-filing-supervision.json")).await;
    let (status, _) = post_json(gw.url(), "ip_office:330100", &example("ipo-state-secret-message.json")).await;
    assert_eq!(status, 422);
    gw
}

async fn sign_in(b: &Browser, url: &str, token: &str) {
    b.client.goto(&format!("{url}/console/")).await.unwrap();
    b.client.wait().for_element(Locator::Css("input#token")).await.unwrap().send_keys(token).await.unwrap();
    b.client.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    b.client.wait().for_element(Locator::Css("header.top")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_signs_in_sees_the_overview_switches_language_and_signs_out() {
    let gw = with_traffic().await;
    let url = gw.url().to_string();
    let b = Browser::start().await;

    // Without a session, the console sends to the sign-in page, and back afterwards.
    b.client.goto(&format!("{url}/console/")).await.unwrap();
    assert!(b.client.current_url().await.unwrap().as_str().contains("/console/login?next=%2Fconsole%2F"));
    b.screenshot("login").await;
    b.client.find(Locator::Css("input#token")).await.unwrap().send_keys("not-a-token").await.unwrap();
    b.client.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    assert!(b.text("p.error").await.contains("令牌无效"));

    sign_in(&b, &url, "demo-operator").await;
    assert_eq!(b.text("h1").await.split(' ').next(), Some("总览"));
    assert_eq!(b.text("#kpi-accepted").await, "2");
    assert_eq!(b.text("#kpi-refused").await, "1");
    assert!(b.text("#h-codes + table").await.contains("state_secret"));
    assert!(b.text("header .who").await.contains("duty-officer"));
    assert!(b.text("#instances").await.starts_with('1'), "one instance");
    let rules = std::fs::read_to_string(gw.config.path().join("rules.yaml")).unwrap();
    assert_eq!(b.text("#rules-version").await, xietong::config::files::version(&rules)[..12]);
    b.screenshot("overview").await;

    // The session cookie is HttpOnly and SameSite=Strict.
    let cookie = b.client.get_named_cookie("xietong_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");

    // A state-changing request without the session's CSRF token is refused.
    let r = client()
        .post(format!("{url}/console/logout"))
        .header("cookie", format!("xietong_session={}", cookie.value()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("表单已过期"));

    // English by the switch.
    b.client.find(Locator::LinkText("English")).await.unwrap().click().await.unwrap();
    assert_eq!(b.text("h1").await.split(' ').next(), Some("Overview"));
    b.screenshot("overview-en").await;

    // Signing out ends the session: the console asks to sign in again.
    b.client.find(Locator::Css("header form button")).await.unwrap().click().await.unwrap();
    b.client.wait().for_element(Locator::Css("input#token")).await.unwrap();
    b.client.goto(&format!("{url}/console/")).await.unwrap();
    assert!(b.client.current_url().await.unwrap().as_str().contains("/console/login"));
    let r = client()
        .get(format!("{url}/console/"))
        .header("cookie", format!("xietong_session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert!(r.url().path().ends_with("/console/login"), "the old cookie opens nothing: {}", r.url());

    // Every sign-in, failed sign-in and sign-out is in the audit chain (over the admin API's
    // overview of the store, the chain is checked by tests/it/audit.rs).
    let _ = json!({});
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_is_shown_as_one() {
    let gw = with_traffic().await;
    let b = Browser::start().await;
    sign_in(&b, gw.url(), "demo-viewer").await;
    assert!(b.text("header .who .role").await.contains("只读"));
    b.close().await;
}

/// Messages: a search by case number finds the clue; its page shows every recipient with the
/// rule that chose it; a bulletin's page lists where its secret attachment was removed, and
/// nothing of it.
#[tokio::test(flavor = "multi_thread")]
async fn messages_are_found_and_shown_whole_without_what_was_stripped() {
    let gw = with_traffic().await;
    let url = gw.url().to_string();
    let bulletin = accepted(&url, "ip_office:330000", &example_json("ipo-bulletin-field-secret.json")).await;
    let b = Browser::start().await;
    sign_in(&b, &url, "demo-operator").await;
    b.client.find(Locator::LinkText("消息")).await.unwrap().click().await.unwrap();
    b.client.wait().for_element(Locator::Css("form.search")).await.unwrap();
    let case = example_json("ipo-clue-transfer.json")["aj"]["ajbh"].as_str().unwrap().to_string();
    b.client.find(Locator::Css("input[name=case]")).await.unwrap().send_keys(&case).await.unwrap();
    b.client.find(Locator::Css("form.search button")).await.unwrap().click().await.unwrap();
    b.wait_for_url("case=").await;
    let results = b.text("#results tbody").await;
    // The clue and the filing suggestion about the same case; not the bulletin.
    assert!(results.contains("cn.xietong.clue.transfer"), "{results}");
    assert!(results.contains("cn.xietong.supervision.filing_suggestion"), "{results}");
    assert!(!results.contains("cn.xietong.bulletin"), "{results}");
    b.screenshot("messages").await;

    let clue = Locator::XPath("//tr[td/code[text()='cn.xietong.clue.transfer']]//a");
    b.client.find(clue).await.unwrap().click().await.unwrap();
    b.wait_for_url("/console/messages/").await;
    let recipients = b.text("#recipients").await;
    assert!(recipients.contains("public_security:330100") && recipients.contains("clue-transfer"), "{recipients}");
    b.screenshot("message").await;

    b.client.goto(&format!("{url}/console/messages/{}", bulletin["id"].as_str().unwrap())).await.unwrap();
    let recipients = b.text("#recipients").await;
    assert!(recipients.contains("/data/attachments/1") && recipients.contains("state_secret"), "{recipients}");
    let page = b.client.source().await.unwrap();
    assert!(!page.contains("专项行动部署"), "the stripped attachment is nowhere on the page");
    b.close().await;
}

/// The rules of this config, without the clue transfer's copy to the procuratorate (the shipped
/// routing tests pin that copy, so the test's configuration goes without them).
fn routing_config() -> (ConfigDir, String, String) {
    let config = ConfigDir::new(&fast_delivery(""));
    let rules = std::fs::read_to_string(config.path().join("rules.yaml")).unwrap();
    config.replace_rules(&rules);
    let copy = "    copy: [ { same_level: procuratorate } ]\n";
    let at = rules.find("- name: clue-transfer").unwrap();
    let line = at + rules[at..].find(copy).unwrap();
    let draft = format!("{}{}", &rules[..line], &rules[line + copy.len()..]);
    (config, rules, draft)
}

async fn set_value(b: &Browser, css: &str, value: &str) {
    let script = "document.querySelector(arguments[0]).value = arguments[1];";
    b.client.execute(script, vec![json!(css), json!(value)]).await.unwrap();
}

async fn click(b: &Browser, css: &str) {
    b.client.wait().for_element(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

fn clue(native_id: &str) -> serde_json::Value {
    let mut m = example_json("ipo-clue-transfer.json");
    m["xxid"] = json!(native_id);
    m
}

/// Routing: the rules by section, a division looked up, the playground; a rule change drafted
/// with a mistake (shown at its line and column), previewed over the stored traffic (the
/// preview names the affected message), applied (the next message is routed by it), and rolled
/// back. A viewer is offered neither apply nor rollback.
#[tokio::test(flavor = "multi_thread")]
async fn a_rule_change_is_drafted_previewed_applied_and_rolled_back() {
    let (config, rules, draft) = routing_config();
    let gw = Exchange::start(config);
    let url = gw.url().to_string();
    let first = accepted(&url, "ip_office:330100", &clue("CLUE-1")).await;
    let b = Browser::start().await;
    sign_in(&b, &url, "demo-operator").await;

    b.client.find(Locator::LinkText("路由")).await.unwrap().click().await.unwrap();
    let transfer = b.text("#rule-clue-transfer").await;
    assert!(transfer.contains("same_level: public_security") && transfer.contains("抄送"), "{transfer}");
    let sections: Vec<String> = futures_util::future::join_all(
        b.client
            .find_all(Locator::Css("h3.section"))
            .await
            .unwrap()
            .into_iter()
            .map(|e| async move { e.text().await.unwrap() }),
    )
    .await;
    assert_eq!(sections.first().map(String::as_str), Some("§二"), "{sections:?}");
    b.client.find(Locator::Css("input#division")).await.unwrap().send_keys("330102").await.unwrap();
    click(&b, "form.inline button").await;
    let division = b.text("#division-result").await;
    assert!(
        division.contains("上城区") && division.contains("杭州市") && division.contains("hub:yangtze_delta"),
        "{division}"
    );
    b.screenshot("routing").await;

    // The playground: the clue as its system sends it, routed and explained.
    click(&b, "a[href='/console/routing/playground']").await;
    set_value(&b, "#body", &String::from_utf8(example("ipo-clue-transfer.json")).unwrap()).await;
    click(&b, "#run").await;
    assert_eq!(b.text("#verdict").await, "将被接收");
    let routed = b.text("#playground-recipients").await;
    assert!(routed.contains("public_security:330100") && routed.contains("clue-transfer"), "{routed}");
    let origins = b.text("#field-origins").await;
    assert!(origins.contains("/xxid") && origins.contains("/nativeid"), "which native field became which: {origins}");
    b.screenshot("playground").await;

    // A draft with a mistake: the problem at its line and column, under the line itself.
    b.client.goto(&format!("{url}/console/routing/draft")).await.unwrap();
    let shown = b.client.find(Locator::Css("#rules")).await.unwrap().prop("value").await.unwrap().unwrap();
    assert_eq!(shown, rules, "the editor holds the rules in force");
    set_value(&b, "#rules", &draft.replacen("same_level: public_security", "same_level: police", 1)).await;
    click(&b, "#check").await;
    let problems = b.text("#problems").await;
    let line = draft.lines().position(|l| l.contains("same_level: public_security")).unwrap() + 1;
    assert!(problems.contains(&format!("rules.yaml:{line}:")) && problems.contains("police"), "{problems}");
    b.screenshot("rules-problem").await;

    // The right draft: the preview names the clue, with the copy lost.
    set_value(&b, "#rules", &draft).await;
    click(&b, "#preview").await;
    b.client.wait().for_element(Locator::Css("#impact-done")).await.unwrap();
    let rows = b.text("#impact-rows").await;
    assert!(rows.contains(first["id"].as_str().unwrap()), "{rows}");
    let totals = b.text("#impact-totals").await;
    assert!(totals.contains("procuratorate:330100") && totals.contains("−1"), "{totals}");
    b.screenshot("rules-preview").await;

    // Applied: the history shows the diff, and the next clue goes to the police only.
    set_value(&b, "input[name=note]", "不再抄送检察院（测试）").await;
    click(&b, "#apply").await;
    b.wait_for_url("/console/routing/changes/1?done=applied").await;
    assert!(b.text("#diff .del").await.contains("copy: [ { same_level: procuratorate } ]"));
    b.screenshot("rules-change").await;
    let second = accepted(&url, "ip_office:330100", &clue("CLUE-2")).await;
    assert_eq!(recipients(&second), ["public_security:330100 primary"]);

    // Rolled back: the copy is back.
    click(&b, "#rollback").await;
    b.wait_for_url("/console/routing/changes/2?done=rolled_back").await;
    let third = accepted(&url, "ip_office:330100", &clue("CLUE-3")).await;
    assert!(recipients(&third).contains(&"procuratorate:330100 copy".to_string()), "{third}");
    b.client.goto(&format!("{url}/console/routing/changes")).await.unwrap();
    let history = b.text("#changes").await;
    assert!(history.contains("不再抄送检察院") && history.contains("#1"), "{history}");
    b.screenshot("rules-history").await;
    b.close().await;

    // A viewer sees the editor and the history, without apply or rollback.
    let v = Browser::start().await;
    sign_in(&v, &url, "demo-viewer").await;
    v.client.goto(&format!("{url}/console/routing/draft")).await.unwrap();
    v.client.wait().for_element(Locator::Css("#check")).await.unwrap();
    assert!(v.client.find(Locator::Css("#apply")).await.is_err(), "no apply for a viewer");
    v.client.goto(&format!("{url}/console/routing/changes/1")).await.unwrap();
    v.client.wait().for_element(Locator::Css("#diff")).await.unwrap();
    assert!(v.client.find(Locator::Css("#rollback")).await.is_err(), "no rollback for a viewer");
    v.close().await;
}

/// Delivery: a webhook that refused a message has a dead letter, its last error shown; the
/// operator replays it from the console and sees it delivered; pausing and resuming.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_is_replayed_and_delivered() {
    let receiver = Receiver::start(|n, _| if n == 0 { Answer::Status(400) } else { Answer::Status(200) });
    let config = ConfigDir::new(&fast_delivery(""));
    config.write(
        "subscriptions.yaml",
        &format!(
            "subscriptions:\n  - id: zj-hook\n    owner: ip_office:330000\n    webhook:\n      url: {}\n      secrets: [{SECRET}]\n",
            receiver.url
        ),
    );
    let gw = Exchange::start(config);
    let url = gw.url().to_string();
    let (status, _) = post_json(&url, "procuratorate:330000", &bulletin("HOOK-1")).await;
    assert_eq!(status, 202);
    assert!(eventually(10, || receiver.received().len() == 1).await, "the first try, refused with 400");

    let b = Browser::start().await;
    sign_in(&b, &url, "demo-operator").await;
    b.client.find(Locator::LinkText("投递")).await.unwrap().click().await.unwrap();
    let mut row = String::new();
    for _ in 0..50 {
        b.client.goto(&format!("{url}/console/delivery")).await.unwrap();
        row = b.text("#sub-zj-hook").await;
        if row.contains("HTTP 400") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(row.contains("HTTP 400") && row.contains("正常"), "{row}");
    let letters = b.text("#dead-letters").await;
    assert!(letters.contains("zj-hook") && letters.contains("400"), "{letters}");
    // A reply to a meeting the gateway never saw: no one to route it to, parked for operators.
    let reply = std::fs::read(root().join("docs/examples/prc-meeting-reply.json")).unwrap();
    let (status, parked) = post_json(&url, "procuratorate:330100", &reply).await;
    assert_eq!(status, 202, "{parked}");
    b.client.goto(&format!("{url}/console/delivery")).await.unwrap();
    let waiting = b.text("#parked-messages").await;
    assert!(
        waiting.contains(parked["id"].as_str().unwrap()) && waiting.contains("cn.xietong.meeting.reply"),
        "{waiting}"
    );
    b.screenshot("delivery").await;

    click(&b, "#dead-letters button.replay").await;
    b.wait_for_url("done=replayed-1").await;
    assert!(eventually(10, || receiver.delivered().len() == 1).await, "replayed and delivered");
    b.client.goto(&format!("{url}/console/delivery")).await.unwrap();
    b.text("#no-letters").await;
    let row = b.text("#sub-zj-hook").await;
    assert!(row.contains("+08:00"), "a last success: {row}");

    // Paused: nothing goes out until it is resumed.
    click(&b, "#sub-zj-hook button[name=act]").await;
    b.wait_for_url("done=paused").await;
    assert!(b.text("#sub-zj-hook .state").await.contains("已暂停"));
    let (status, _) = post_json(&url, "procuratorate:330000", &bulletin("HOOK-2")).await;
    assert_eq!(status, 202);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2, "nothing sent while paused");
    click(&b, "#sub-zj-hook button[name=act]").await;
    b.wait_for_url("done=resumed").await;
    assert!(eventually(10, || receiver.delivered().len() == 2).await, "sent once resumed");
    b.close().await;
}

/// Audit: the latest records (the sign-in among them), filtered by action, and the whole chain
/// verified from the page.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_chain_is_shown_filtered_and_verified() {
    let gw = with_traffic().await;
    let url = gw.url().to_string();
    let b = Browser::start().await;
    sign_in(&b, &url, "demo-viewer").await;
    b.client.find(Locator::LinkText("审计")).await.unwrap().click().await.unwrap();
    let records = b.text("#records").await;
    assert!(records.contains("console_sign_in") && records.contains("operator:supervisor"), "{records}");
    assert!(records.contains("accepted") && records.contains("refused"), "{records}");
    set_value(&b, "input[name=action]", "refused").await;
    click(&b, "form.filter button").await;
    b.wait_for_url("action=refused").await;
    let refused = b.text("#records").await;
    assert!(refused.contains("state_secret") && !refused.contains("console_sign_in"), "{refused}");
    click(&b, "#verify").await;
    let verified = b.text("#verified").await;
    assert!(verified.contains("审计链完整"), "{verified}");
    b.screenshot("audit").await;
    b.close().await;
}

/// Replies and evaluation: the agencies that owe replies with their figures, the replies owed,
/// an agency's own page, and the CSV.
#[tokio::test(flavor = "multi_thread")]
async fn replies_are_evaluated_per_agency_and_exported() {
    let gw = with_traffic().await;
    let url = gw.url().to_string();
    let b = Browser::start().await;
    sign_in(&b, &url, "demo-operator").await;
    b.client.find(Locator::LinkText("答复与考核")).await.unwrap().click().await.unwrap();
    let figures = b.text("#figures").await;
    assert!(figures.contains("public_security:330100") && figures.contains("procuratorate:330100"), "{figures}");
    let owed = b.text("#owed").await;
    assert!(owed.contains("cn.xietong.clue.transfer") && owed.contains("未答复"), "{owed}");
    assert!(b.client.source().await.unwrap().contains("<svg class=\"chart\""), "the chart");
    b.screenshot("replies").await;

    b.client.find(Locator::LinkText("public_security:330100")).await.unwrap().click().await.unwrap();
    b.wait_for_url("/console/replies/public_security:330100").await;
    let one = b.text("#figures tbody").await;
    assert!(one.contains("public_security:330100") && !one.contains("procuratorate"), "{one}");

    let cookie = b.client.get_named_cookie("xietong_session").await.unwrap();
    let r = client()
        .get(format!("{url}/console/replies.csv?level=prefecture"))
        .header("cookie", format!("xietong_session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("agency,level,received") && csv.contains("public_security:330100,prefecture,1"), "{csv}");
    b.client.goto(&format!("{url}/console/replies?level=galaxy")).await.unwrap();
    assert!(b.text("p.error").await.contains("level"), "a wrong level is named");
    b.close().await;
}

/// Agencies: the directory with each agency's traffic of the last 24 hours and its last message,
/// filtered by kind and level.
#[tokio::test(flavor = "multi_thread")]
async fn the_agency_directory_shows_traffic_and_filters() {
    let gw = with_traffic().await;
    let url = gw.url().to_string();
    let b = Browser::start().await;
    sign_in(&b, &url, "demo-operator").await;
    b.client.find(Locator::LinkText("机构")).await.unwrap().click().await.unwrap();
    let hangzhou = b.text("#agency-ip_office\\:330100").await;
    // Two accepted, one refused (the resend is neither), its last message linked.
    let cells: Vec<String> = futures_util::future::join_all(
        b.client
            .find_all(Locator::Css("#agency-ip_office\\:330100 td.n"))
            .await
            .unwrap()
            .into_iter()
            .map(|e| async move { e.text().await.unwrap() }),
    )
    .await;
    assert_eq!(cells, ["2", "1"], "{hangzhou}");
    assert!(hangzhou.contains("+08:00") && hangzhou.contains("prefecture"), "{hangzhou}");
    b.screenshot("agencies").await;

    b.client.goto(&format!("{url}/console/agencies?kind=procuratorate&level=province")).await.unwrap();
    let listed = b.text("#agencies tbody").await;
    assert!(listed.contains("procuratorate:330000") && !listed.contains("ip_office"), "{listed}");
    let (status, body) = get(&format!("{url}/v1/admin/agencies?q=hub"), Some("demo-viewer")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["agencies"].as_array().unwrap().iter().all(|a| a["kind"] == "hub"), "{body}");
    b.close().await;
}
