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
