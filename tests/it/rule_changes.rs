//! Rule changes over the admin API (docs/console.md, "Rule changes"): a draft checked with its
//! problems at line and column, previewed over the stored traffic, applied (and refused when
//! stale, by a viewer, or where the configuration is read-only), in force for the next
//! message, in the history with its diff, rolled back; on Redis, applied on one instance and in
//! force on the other.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const VIEWER: &str = "demo-viewer";
const COPY_LINE: &str = "    copy: [ { same_level: procuratorate } ]\n";

/// The shipped rules without the clue transfer's copy to the procuratorate.
fn without_the_copy(rules: &str) -> String {
    let at = rules.find("- name: clue-transfer").unwrap();
    let copy = at + rules[at..].find(COPY_LINE).unwrap();
    format!("{}{}", &rules[..copy], &rules[copy + COPY_LINE.len()..])
}

/// The shipped configuration without its routing tests, which pin the clue transfer's copy.
fn config() -> ConfigDir {
    let config = ConfigDir::new(&fast_delivery(""));
    let rules = std::fs::read_to_string(config.path().join("rules.yaml")).unwrap();
    config.replace_rules(&rules);
    config
}

fn clue(native_id: &str) -> Value {
    let mut m = example_json("ipo-clue-transfer.json");
    m["xxid"] = json!(native_id);
    m
}

async fn admin(method: Method, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    call(method, url, Some(token), body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_is_checked_previewed_applied_and_rolled_back() {
    let gw = Exchange::start(config());
    let url = gw.url();
    let first = accepted(url, "ip_office:330100", &clue("CLUE-1")).await;
    assert!(recipients(&first).contains(&"procuratorate:330100 copy".to_string()), "{first}");

    let (status, rules) = admin(Method::GET, &format!("{url}/v1/admin/rules"), OPERATOR, None).await;
    assert_eq!(status, 200, "{rules}");
    assert_eq!(rules["writable"], true);
    let transfer = rules["rules"].as_array().unwrap().iter().find(|r| r["name"] == "clue-transfer").unwrap();
    assert_eq!(
        (transfer["section"].as_str(), transfer["copy"][0].as_str()),
        (Some("八"), Some("same_level: procuratorate"))
    );
    let text = rules["text"].as_str().unwrap().to_string();
    let base = rules["version"].as_str().unwrap().to_string();

    // A draft with a mistake: the problem at its line and column, nothing changes.
    let broken = text.replacen("same_level: public_security", "same_level: police", 1);
    let (status, checked) =
        admin(Method::POST, &format!("{url}/v1/admin/rules/check"), VIEWER, Some(json!({ "rules": broken }))).await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["ok"], false, "{checked}");
    let problem = &checked["problems"][0];
    let line = broken.lines().position(|l| l.contains("same_level: police")).unwrap() as u64 + 1;
    assert_eq!((problem["file"].as_str(), problem["line"].as_u64()), (Some("rules.yaml"), Some(line)), "{checked}");
    assert!(problem["column"].as_u64().is_some(), "{checked}");
    assert!(problem["message"].as_str().unwrap().contains("police"), "{checked}");
    let (status, refused) =
        admin(Method::PUT, &format!("{url}/v1/admin/rules"), OPERATOR, Some(json!({ "rules": broken, "base": base })))
            .await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("invalid_configuration")), "{refused}");

    // The draft that drops the copy: it checks, and the preview names the message it changes.
    let draft = without_the_copy(&text);
    let (status, checked) =
        admin(Method::POST, &format!("{url}/v1/admin/rules/check"), OPERATOR, Some(json!({ "rules": draft }))).await;
    assert_eq!((status, &checked["ok"]), (200, &json!(true)), "{checked}");
    let (status, preview) =
        admin(Method::POST, &format!("{url}/v1/admin/rules/preview"), VIEWER, Some(json!({ "rules": draft }))).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["scanned"], 1, "{preview}");
    assert_eq!(preview["next"], Value::Null, "one page");
    let changed = &preview["changed"][0];
    assert_eq!(changed["message"]["id"], first["id"], "{preview}");
    let ids = |list: &Value| {
        list.as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&changed["before"]), ["procuratorate:330100", "public_security:330100"]);
    assert_eq!(ids(&changed["after"]), ["public_security:330100"]);
    assert_eq!(preview["totals"], json!({ "procuratorate:330100": { "gained": 0, "lost": 1 } }));
    let (status, bad) = admin(
        Method::POST,
        &format!("{url}/v1/admin/rules/preview"),
        OPERATOR,
        Some(json!({ "rules": draft, "from": "2026-13-01" })),
    )
    .await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_request")), "{bad}");

    // A viewer cannot apply; a draft from an older version is refused; then it is applied.
    let change = json!({ "rules": draft, "base": base, "note": "no copy to the procuratorate" });
    let (status, _) = admin(Method::PUT, &format!("{url}/v1/admin/rules"), VIEWER, Some(change.clone())).await;
    assert_eq!(status, 403);
    let stale = json!({ "rules": draft, "base": "0".repeat(64) });
    let (status, body) = admin(Method::PUT, &format!("{url}/v1/admin/rules"), OPERATOR, Some(stale)).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")), "{body}");
    let (status, applied) = admin(Method::PUT, &format!("{url}/v1/admin/rules"), OPERATOR, Some(change.clone())).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["change"], 1);
    assert_eq!(std::fs::read_to_string(gw.config.path().join("rules.yaml")).unwrap(), draft, "written");
    let (status, again) = admin(Method::PUT, &format!("{url}/v1/admin/rules"), OPERATOR, Some(change)).await;
    assert_eq!(status, 409, "the same draft again: stale base, {again}");

    // The next clue is routed by it.
    let second = accepted(url, "ip_office:330100", &clue("CLUE-2")).await;
    assert_eq!(recipients(&second), ["public_security:330100 primary"], "{second}");

    // The history: who, when, why, and the diff.
    let (_, history) = admin(Method::GET, &format!("{url}/v1/admin/rules/changes"), VIEWER, None).await;
    let entry = &history["changes"][0];
    assert_eq!((entry["id"].as_i64(), entry["by"].as_str()), (Some(1), Some("operator:duty-officer")), "{history}");
    assert_eq!((entry["added"].as_u64(), entry["removed"].as_u64()), (Some(0), Some(1)));
    assert_eq!(entry["note"], "no copy to the procuratorate");
    let (_, one) = admin(Method::GET, &format!("{url}/v1/admin/rules/changes/1"), VIEWER, None).await;
    assert!(one["diff"].as_str().unwrap().contains(&format!("-{COPY_LINE}")), "{one}");
    let (status, _) = admin(Method::GET, &format!("{url}/v1/admin/rules/changes/99"), VIEWER, None).await;
    assert_eq!(status, 404);

    // Rolled back: the copy is back for the next clue, and the rollback is a change of its own.
    let (status, _) = admin(Method::POST, &format!("{url}/v1/admin/rules/changes/1/rollback"), VIEWER, None).await;
    assert_eq!(status, 403);
    let (status, rolled) =
        admin(Method::POST, &format!("{url}/v1/admin/rules/changes/1/rollback"), OPERATOR, None).await;
    assert_eq!((status, rolled["change"].as_i64()), (200, Some(2)), "{rolled}");
    let third = accepted(url, "ip_office:330100", &clue("CLUE-3")).await;
    assert!(recipients(&third).contains(&"procuratorate:330100 copy".to_string()), "{third}");
    let (_, history) = admin(Method::GET, &format!("{url}/v1/admin/rules/changes"), OPERATOR, None).await;
    assert_eq!(history["changes"][0]["reverts"], 1, "{history}");

    // Every change is in the audit chain, which stays intact.
    let (status, log) = admin(
        Method::GET,
        &format!("{url}/v1/admin/audit?action=rules_changed&actor=operator:duty-officer"),
        VIEWER,
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let changes: Vec<&str> = log["records"].as_array().unwrap().iter().map(|r| r["detail"].as_str().unwrap()).collect();
    assert_eq!(changes.len(), 2, "{log}");
    assert!(changes[0].starts_with("change 2 rolls back change 1"), "newest first: {changes:?}");
    assert!(log["head_seq"].as_i64().unwrap() > 2, "{log}");
    let (status, verified) = admin(Method::POST, &format!("{url}/v1/admin/audit/verify"), VIEWER, None).await;
    assert_eq!((status, &verified["intact"]), (200, &json!(true)), "{verified}");
    // The reading of the log is an admin action, recorded after it answered.
    assert_eq!(verified["records"].as_i64(), log["head_seq"].as_i64().map(|h| h + 1), "{verified}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_division_table_is_looked_up() {
    let gw = Exchange::start(ConfigDir::new(&fast_delivery("")));
    let (status, d) = admin(Method::GET, &format!("{}/v1/admin/divisions/330102", gw.url()), VIEWER, None).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!((d["name"].as_str(), d["level"].as_str()), (Some("上城区"), Some("county")), "{d}");
    assert_eq!(d["superior"]["code"], "330100");
    let chain: Vec<&str> = d["superiors"].as_array().unwrap().iter().map(|s| s["code"].as_str().unwrap()).collect();
    assert_eq!(chain, ["330100", "330000", "000000"]);
    assert!(d["regions"].as_array().unwrap().iter().any(|r| r["hub"] == "hub:yangtze_delta"), "{d}");
    let (status, _) = admin(Method::GET, &format!("{}/v1/admin/divisions/339999", gw.url()), VIEWER, None).await;
    assert_eq!(status, 404);
    let (status, bad) = admin(Method::GET, &format!("{}/v1/admin/divisions/33", gw.url()), VIEWER, None).await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_request")), "{bad}");
}

/// Makes a directory unwritable, even for root (`chattr +i`), until dropped.
struct ReadOnly(std::path::PathBuf);

impl ReadOnly {
    fn make(dir: &std::path::Path) -> ReadOnly {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        if tempfile::tempfile_in(dir).is_ok() {
            let ok = std::process::Command::new("chattr").arg("+i").arg(dir).status().is_ok_and(|s| s.success());
            assert!(ok, "cannot make {} read-only", dir.display());
        }
        ReadOnly(dir.to_path_buf())
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn where_the_configuration_is_read_only_apply_says_so() {
    let gw = Exchange::start(config());
    let url = gw.url();
    let (_, rules) = admin(Method::GET, &format!("{url}/v1/admin/rules"), OPERATOR, None).await;
    let _read_only = ReadOnly::make(gw.config.path());
    let (_, now) = admin(Method::GET, &format!("{url}/v1/admin/rules"), OPERATOR, None).await;
    assert_eq!(now["writable"], false);
    let draft = without_the_copy(rules["text"].as_str().unwrap());
    let change = json!({ "rules": draft, "base": rules["version"] });
    let (status, body) = admin(Method::PUT, &format!("{url}/v1/admin/rules"), OPERATOR, Some(change)).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("read_only_configuration")), "{body}");
    let (_, history) = admin(Method::GET, &format!("{url}/v1/admin/rules/changes"), OPERATOR, None).await;
    assert_eq!(history["changes"], json!([]), "nothing recorded");
    let next = accepted(url, "ip_office:330100", &clue("CLUE-RO")).await;
    assert!(recipients(&next).contains(&"procuratorate:330100 copy".to_string()), "the rules in force keep serving");
}

/// Two instances on one Redis store (and one configuration directory, as a shared volume): a
/// change applied on one is in force on both.
#[tokio::test(flavor = "multi_thread")]
async fn on_redis_a_change_applied_on_one_instance_is_in_force_on_both() {
    let config = config();
    let prefix = format!("test-rules-{}", uuid::Uuid::now_v7().simple());
    let settings = std::fs::read_to_string(config.path().join("xietong.yaml")).unwrap();
    let store = format!("\nstore:\n  backend: redis\n  redis:\n    prefix: {prefix}\n");
    config.write("xietong.yaml", &(settings + &store));
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = BinaryServer::spawn(config.path(), data_a.path());
    let b = BinaryServer::spawn(config.path(), data_b.path());
    let _forget = Forget(prefix);

    let (_, rules) = admin(Method::GET, &format!("{}/v1/admin/rules", a.url), OPERATOR, None).await;
    let draft = without_the_copy(rules["text"].as_str().unwrap());
    let change = json!({ "rules": draft, "base": rules["version"] });
    let (status, applied) = admin(Method::PUT, &format!("{}/v1/admin/rules", a.url), OPERATOR, Some(change)).await;
    assert_eq!(status, 200, "{applied}");
    // The other instance reloads when told through the store.
    let mut routed = Vec::new();
    for i in 0..50 {
        let receipt = accepted(&b.url, "ip_office:330100", &clue(&format!("CLUE-B-{i}"))).await;
        routed = recipients(&receipt);
        if routed == ["public_security:330100 primary"] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(routed, ["public_security:330100 primary"], "instance b routes by the change");
    let (_, history) = admin(Method::GET, &format!("{}/v1/admin/rules/changes", b.url), OPERATOR, None).await;
    assert_eq!(history["changes"][0]["id"], 1, "one history: {history}");

    // Each instance's overview counts both.
    let mut instances = Value::Null;
    for _ in 0..50 {
        let (_, overview) = admin(Method::GET, &format!("{}/v1/admin/overview", a.url), OPERATOR, None).await;
        instances = overview["instances"].clone();
        if instances.as_array().is_some_and(|i| i.len() == 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(instances.as_array().map(Vec::len), Some(2), "{instances}");
}

struct Forget(String);

impl Drop for Forget {
    fn drop(&mut self) {
        forget_redis_prefix(&self.0);
    }
}
