//! The operators' endpoints and configuration reload, over real HTTP: explain with routing,
//! reload applied and refused, no request seeing half-old, half-new configuration, SIGHUP on the
//! real binary, and the outbox committed with each message.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::*;
use serde_json::{Value, json};

async fn admin(url: &str, path: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let mut r = client().post(format!("{url}{path}")).header("content-type", content_type).body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn recipient_ids(v: &Value) -> BTreeSet<String> {
    v.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_shows_rules_recipients_reasons_and_removals() {
    let server = TestServer::start();
    let body = example("prc-major-case-supervision.json");
    let (status, out) = admin(
        &server.url,
        "/v1/admin/explain?as=procuratorate:000000",
        Some(OPERATOR),
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["accepted"], true);
    assert_eq!(out["rules"], json!(["major-case-supervision", "cross-region"]));
    let hub = out["recipients"].as_array().unwrap().iter().find(|r| r["id"] == "hub:chengdu_chongqing").unwrap();
    assert_eq!(hub["role"], "copy");
    assert_eq!(hub["rules"], json!(["cross-region"]));
    assert!(hub["reasons"][0].as_str().unwrap().contains("two or more provinces"), "{hub}");
    assert_eq!(hub["removed"], json!([{"pointer": "/data/content", "reason": "above_clearance"}]));
    assert_eq!(hub["clearance"], "内部");

    // Refusals are explained too, with 200: the explanation is the answer.
    let (status, out) = admin(
        &server.url,
        "/v1/admin/explain?as=ip_office:330000",
        Some(OPERATOR),
        "application/json",
        example("ipo-state-secret-message.json"),
    )
    .await;
    assert_eq!(
        (status, out["accepted"].clone(), out["error"]["code"].clone()),
        (200, json!(false), json!("state_secret"))
    );

    // Only operators.
    let (status, _) =
        admin(&server.url, "/v1/admin/explain?as=procuratorate:000000", None, "application/json", body.clone()).await;
    assert_eq!(status, 401);
    let (status, out) = admin(
        &server.url,
        "/v1/admin/explain?as=procuratorate:000000",
        Some("demo-procuratorate-000000"),
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!((status, out["code"].as_str()), (403, Some("forbidden")));
    let (status, _) = admin(&server.url, "/v1/admin/explain", Some(OPERATOR), "application/json", body).await;
    assert_eq!(status, 400, "the sender is required");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agency_without_a_native_format_posts_canonical_events() {
    let dir = ConfigDir::new("");
    let agencies = std::fs::read_to_string(dir.path().join("agencies.yaml")).unwrap();
    let hash = xietong::token::format_hash(&xietong::token::hash(&demo_token("public_security:330100")));
    dir.write("agencies.yaml", &format!("{agencies}\n  - id: public_security:330100\n    tokens: [{hash}]\n"));
    let server = TestServer::with_config(dir);
    let r = post_as(&server.url, "public_security:330100", "application/json", example("ipo-clue-transfer.json")).await;
    assert_eq!(r.status(), 415);
    assert!(r.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("application/cloudevents+json"));
    let event = json!({"specversion": "1.0", "id": "GA-1", "type": "cn.xietong.clue.decision", "time": "2026-11-25T10:30:00+08:00",
        "data": {"sender": {"id": "public_security:330100"}, "case": {"number": "杭市监知执〔2026〕123号", "divisions": ["330102"]},
                 "decision": {"type": "立案侦查"}, "redactions": [], "classifiedFields": []}});
    let r = post_as(
        &server.url,
        "public_security:330100",
        "application/cloudevents+json",
        serde_json::to_vec(&event).unwrap(),
    )
    .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        recipient_ids(&body["recipients"]),
        BTreeSet::from(["ip_office:330100".to_string(), "procuratorate:330100".to_string()])
    );
}

/// The rules with bulletins also copied to the national CNIPA: easy to tell from the default. The
/// shipped routing tests pin the default, so they go (`rule_checks.rs` tests a reload they refuse).
fn rules_with_national_copy(dir: &ConfigDir) -> String {
    let _ = std::fs::remove_file(dir.path().join("rules.test.yaml"));
    let rules = std::fs::read_to_string(dir.path().join("rules.yaml")).unwrap();
    rules.replace(
        "    types: [cn.xietong.bulletin]\n    senders: [ip_office, procuratorate]\n    to: [ { same_level: counterpart } ]",
        "    types: [cn.xietong.bulletin]\n    senders: [ip_office, procuratorate]\n    to: [ { same_level: counterpart } ]\n    copy: [ { national: ip_office } ]",
    )
}

/// The Zhejiang procuratorate's bulletin `n` (to ip_office:330000).
fn reload_bulletin(n: usize) -> Vec<u8> {
    bulletin(&format!("RELOAD-{n}"))
}

/// Two configurations that differ in the rules and in the agencies at once, so that each of the
/// four mixes routes the Zhejiang procuratorate's bulletin differently. The bulletin rule falls
/// back to the superior of a counterpart that is not connected; `new` also copies bulletins to
/// the SPP, and disconnects the Zhejiang IP office (its superior, CNIPA, receives instead):
///
/// | rules | agencies | recipients |
/// |---|---|---|
/// | old | old | ip_office:330000 |
/// | new | new | ip_office:000000, procuratorate:000000 |
/// | new | old | ip_office:330000, procuratorate:000000 (a mix) |
/// | old | new | ip_office:000000 (a mix) |
fn rules_and_agencies(dir: &ConfigDir) -> [(String, String); 2] {
    let _ = std::fs::remove_file(dir.path().join("rules.test.yaml"));
    let rules = std::fs::read_to_string(dir.path().join("rules.yaml")).unwrap();
    let rule = "    types: [cn.xietong.bulletin]\n    senders: [ip_office, procuratorate]\n    to: [ { same_level: counterpart } ]\n";
    assert!(rules.contains(rule));
    let old_rules = rules.replace(rule, &format!("{rule}    fallback: superior\n"));
    let new_rules =
        rules.replace(rule, &format!("{rule}    copy: [ {{ national: procuratorate }} ]\n    fallback: superior\n"));
    let agencies = std::fs::read_to_string(dir.path().join("agencies.yaml")).unwrap();
    // The Zhejiang IP office's entry, up to the next agency's.
    let start = agencies.find("  - id: ip_office:330000\n").unwrap();
    let end = start + 1 + agencies[start + 1..].find("  - id: ").unwrap();
    let new_agencies = format!("{}{}", &agencies[..start], &agencies[end..]);
    [(old_rules, agencies), (new_rules, new_agencies)]
}

#[tokio::test(flavor = "multi_thread")]
async fn no_request_sees_half_old_half_new_configuration() {
    let server = TestServer::with_settings("rate_limit:\n  per_second: 100000\n  burst: 100000\n");
    let dir = server.config.path().to_path_buf();
    let [old, new] = rules_and_agencies(&server.config);
    let url = Arc::new(server.url.clone());
    let done = Arc::new(AtomicBool::new(false));
    let write = |dir: &std::path::Path, (rules, agencies): &(String, String)| {
        std::fs::write(dir.join("rules.yaml"), rules).unwrap();
        std::fs::write(dir.join("agencies.yaml"), agencies).unwrap();
    };
    write(&dir, &old);
    let (status, body) = admin(&url, "/v1/admin/reload", Some(OPERATOR), "application/json", Vec::new()).await;
    assert_eq!(status, 200, "{body:?}");

    // One task flips rules and agencies together, back and forth, and reloads as fast as it can.
    let flipper = {
        let (url, done, dir) = (url.clone(), done.clone(), dir.clone());
        tokio::spawn(async move {
            let mut flips = 0;
            while !done.load(Ordering::SeqCst) {
                write(&dir, if flips % 2 == 0 { &new } else { &old });
                let (status, _) = admin(&url, "/v1/admin/reload", Some(OPERATOR), "application/json", Vec::new()).await;
                assert_eq!(status, 200);
                flips += 1;
            }
            flips
        })
    };
    let old_set = BTreeSet::from(["ip_office:330000".to_string()]);
    let new_set = BTreeSet::from(["ip_office:000000".to_string(), "procuratorate:000000".to_string()]);
    let (mut saw_old, mut saw_new) = (0, 0);
    for n in 0..300 {
        let (status, r) = post_json(&url, "procuratorate:330000", &reload_bulletin(1000 + n)).await;
        assert_eq!(status, 202);
        let got = recipient_ids(&r["recipients"]);
        if got == old_set {
            saw_old += 1;
        } else if got == new_set {
            saw_new += 1;
        } else {
            panic!("a mixed configuration: {got:?}");
        }
    }
    done.store(true, Ordering::SeqCst);
    let flips = flipper.await.unwrap();
    assert!(flips > 5 && saw_old > 0 && saw_new > 0, "flips {flips}, old {saw_old}, new {saw_new}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_real_binary() {
    let config = ConfigDir::new("");
    let data = tempfile::tempdir().unwrap();
    let server = BinaryServer::spawn(config.path(), data.path());
    let (_, r) = post_json(&server.url, "procuratorate:330000", &reload_bulletin(1)).await;
    assert_eq!(recipient_ids(&r["recipients"]).len(), 1);
    config.write("rules.yaml", &rules_with_national_copy(&config));
    server.signal("HUP");
    let mut applied = false;
    for n in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let (_, r) = post_json(&server.url, "procuratorate:330000", &reload_bulletin(100 + n)).await;
        if recipient_ids(&r["recipients"]).len() == 2 {
            applied = true;
            break;
        }
    }
    assert!(applied, "SIGHUP reloaded the rules");
}

/// Tests that run on the embedded store only (`.config/nextest.toml`): they open its SQLite file to
/// look inside it or to tamper with it, or they do not depend on the store at all.
mod embedded {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn the_202_lists_recipients_and_the_outbox_holds_each_copy() {
        let server = TestServer::start();
        let (status, receipt) =
            post_json(&server.url, "procuratorate:000000", &example("prc-major-case-supervision.json")).await;
        assert_eq!(status, 202);
        assert_eq!(
            receipt["recipients"],
            json!([
                {"id": "hub:chengdu_chongqing", "role": "copy"},
                {"id": "hub:pearl_river_delta", "role": "copy"},
                {"id": "ip_office:000000", "role": "primary"}
            ])
        );
        // A resend answers with the same recipients.
        let (status, again) =
            post_json(&server.url, "procuratorate:000000", &example("prc-major-case-supervision.json")).await;
        assert_eq!((status, &again), (200, &receipt));

        let conn = rusqlite::Connection::open(server.db_path()).unwrap();
        let mut stmt = conn
            .prepare("SELECT d.recipient, d.event IS NULL, coalesce(d.event, m.event) FROM deliveries d JOIN messages m ON m.seq = d.message_seq ORDER BY d.recipient")
            .unwrap();
        let rows: Vec<(String, bool, Value)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, serde_json::from_str(&r.get::<_, String>(2)?).unwrap())))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 3, "one copy per recipient, committed once");
        // The national IP office may see all of it: its copy is the message's event, kept once.
        assert_eq!(
            rows.iter().map(|(r, same, _)| (r.as_str(), *same)).collect::<Vec<_>>(),
            [("hub:chengdu_chongqing", false), ("hub:pearl_river_delta", false), ("ip_office:000000", true)]
        );
        let rows: Vec<(String, Value)> = rows.into_iter().map(|(r, _, e)| (r, e)).collect();
        for (recipient, event) in &rows {
            assert_eq!(event["id"], receipt["id"], "every copy carries the message's id");
            let content = event["data"].get("content");
            if recipient.starts_with("hub:") {
                assert!(content.is_none(), "{recipient}'s copy holds nothing above its clearance");
            } else {
                assert!(content.is_some());
            }
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn reload_applies_a_valid_configuration_and_refuses_an_invalid_one() {
        let server = TestServer::start();
        let dir = server.config.path().to_path_buf();
        let (_, r) = post_json(&server.url, "procuratorate:330000", &reload_bulletin(1)).await;
        assert_eq!(recipient_ids(&r["recipients"]), BTreeSet::from(["ip_office:330000".to_string()]));

        let original = std::fs::read_to_string(dir.join("rules.yaml")).unwrap();
        std::fs::write(dir.join("rules.yaml"), rules_with_national_copy(&server.config)).unwrap();
        let (status, out) =
            admin(&server.url, "/v1/admin/reload", Some(OPERATOR), "application/json", Vec::new()).await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["summary"]["rules"], original.matches("- name:").count());
        assert_eq!(out["summary"]["restart_needed"], json!([]), "command-line settings are not changes");
        let (_, r) = post_json(&server.url, "procuratorate:330000", &reload_bulletin(2)).await;
        assert_eq!(
            recipient_ids(&r["recipients"]),
            BTreeSet::from(["ip_office:000000".to_string(), "ip_office:330000".to_string()])
        );

        // A broken rule: refused with its position; the configuration in force keeps serving.
        std::fs::write(
            dir.join("rules.yaml"),
            original.replace(
                "senders: [procuratorate]\n    to: [ { same_level: ip_office } ]",
                "senders: [police]\n    to: [ { same_level: ip_office } ]",
            ),
        )
        .unwrap();
        let (status, out) =
            admin(&server.url, "/v1/admin/reload", Some(OPERATOR), "application/json", Vec::new()).await;
        assert_eq!((status, out["code"].as_str()), (422, Some("invalid_configuration")), "{out}");
        assert!(out["details"][0]["reason"].as_str().unwrap().contains("rules.yaml:"), "{out}");
        assert!(out["details"][0]["reason"].as_str().unwrap().contains("unknown sender kind `police`"), "{out}");
        let (_, r) = post_json(&server.url, "procuratorate:330000", &reload_bulletin(3)).await;
        assert_eq!(recipient_ids(&r["recipients"]).len(), 2, "still the last good configuration");

        let metrics = client().get(format!("{}/metrics", server.url)).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains(r#"xietong_config_reloads_total{outcome="applied"} 1"#), "{metrics}");
        assert!(metrics.contains(r#"xietong_config_reloads_total{outcome="refused"} 1"#), "{metrics}");

        let (status, _) =
            admin(&server.url, "/v1/admin/reload", Some("demo-ip_office-330100"), "application/json", Vec::new()).await;
        assert_eq!(status, 403);

        // A setting that only a restart can apply is reported, not half-applied.
        std::fs::write(dir.join("rules.yaml"), &original).unwrap();
        std::fs::write(dir.join("xietong.yaml"), "listen: 127.0.0.1:9\n").unwrap();
        let (status, out) =
            admin(&server.url, "/v1/admin/reload", Some(OPERATOR), "application/json", Vec::new()).await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["summary"]["restart_needed"], json!(["listen"]));
        let (status, _) = post_json(&server.url, "procuratorate:330000", &reload_bulletin(4)).await;
        assert_eq!(status, 202, "still serving where it listens");
    }
}

/// The overview counts what committed (from counters kept as messages commit), on either store;
/// a viewer reads it but may not act.
#[tokio::test(flavor = "multi_thread")]
async fn the_overview_counts_what_committed_and_a_viewer_may_read_not_act() {
    let server = TestServer::start();
    let url = &server.url;
    accepted(url, "ip_office:330100", &example_json("ipo-clue-transfer.json")).await;
    let (status, _) = post_json(url, "ip_office:330100", &example("ipo-clue-transfer.json")).await;
    assert_eq!(status, 200);
    let (status, _) = post_json(url, "ip_office:330100", &example("ipo-state-secret-message.json")).await;
    assert_eq!(status, 422);
    let mut conflict = example_json("ipo-clue-transfer.json");
    conflict["nr"] = json!("另一条线索。");
    let (status, _) = post_json(url, "ip_office:330100", &serde_json::to_vec(&conflict).unwrap()).await;
    assert_eq!(status, 409);

    let (status, o) = get(&format!("{url}/v1/admin/overview"), Some("demo-viewer")).await;
    assert_eq!(status, 200, "{o}");
    let hours = o["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let total = |k: &str| hours.iter().map(|h| h[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!((total("accepted"), total("resent"), total("refused")), (1, 1, 2), "{o}");
    assert_eq!(hours[23]["by_type"]["cn.xietong.clue.transfer"], 1);
    let codes: Vec<(&str, i64)> = o["refusals_by_code"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap(), t["n"].as_i64().unwrap()))
        .collect();
    assert_eq!(codes, [("message_id_conflict", 1), ("state_secret", 1)]);
    assert_eq!(o["refusals_by_agency"], json!([{"key": "ip_office:330100", "n": 2}]));
    assert_eq!(o["store_ready"], true);

    let (status, refused) = admin(url, "/v1/admin/reload", Some("demo-viewer"), "application/json", Vec::new()).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("viewer"), "{refused}");
    let (status, _) = admin(url, "/v1/admin/reload", Some(OPERATOR), "application/json", Vec::new()).await;
    assert_eq!(status, 200);
}
