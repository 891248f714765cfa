//! A message type added by configuration only (docs/messages.md#adding-a-message-type): two
//! schema files, entries in the formats, permissions.yaml, rules.yaml and threads.yaml, and no
//! code. The worked example's files are docs/examples/foreign-case/. Also: the versions of
//! types, and the changes `check` and reload refuse unless the version is raised.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::*;

const EXAMPLE: &str = "docs/examples/foreign-case";
const REQUEST: &str = "cn.xietong.foreign_case.request";
const REPLY: &str = "cn.xietong.foreign_case.reply";
const PROCURATORATE: &str = "procuratorate:440300";
const OFFICE: &str = "ip_office:440300";

fn example(name: &str) -> String {
    std::fs::read_to_string(root().join(EXAMPLE).join(name)).unwrap()
}

/// Inserts `entry` under the top-level key `key` of a YAML file of the configuration.
fn insert_under(dir: &Path, file: &str, key: &str, entry: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find(&format!("\n{key}\n")).map(|i| i + key.len() + 2).unwrap_or_else(|| panic!("{file}: no {key}"));
    std::fs::write(path, format!("{}{entry}{}", &text[..at], &text[at..])).unwrap();
}

/// The steps of the worked example, applied to the configuration directory `dir`.
fn add_foreign_case(dir: &Path) {
    std::fs::create_dir_all(dir.join("schemas")).unwrap();
    for f in ["foreign_case.request.json", "foreign_case.reply.json"] {
        std::fs::write(dir.join("schemas").join(f), example(&format!("schemas/{f}"))).unwrap();
    }
    let settings = std::fs::read_to_string(dir.join("xietong.yaml")).unwrap();
    std::fs::write(dir.join("xietong.yaml"), format!("{settings}\nschemas: schemas\n")).unwrap();
    insert_under(dir, "permissions.yaml", "send:", &example("permissions.yaml"));
    insert_under(dir, "rules.yaml", "rules:", &example("rules.yaml"));
    insert_under(dir, "threads.yaml", "requests:", &example("threads.yaml"));
    insert_under(
        dir,
        "sources/procuratorate-case.yaml",
        "types:",
        "  FOREIGN_CASE_REQUEST: cn.xietong.foreign_case.request\n",
    );
    insert_under(dir, "sources/ipo-enforcement.yaml", "types:", "  SWXCDF: cn.xietong.foreign_case.reply\n");
}

fn check(config: &ConfigDir) -> (i32, String) {
    let (code, stdout, stderr) = run_cli(&["check", "--config", config.path().to_str().unwrap()]);
    (code, format!("{stdout}{stderr}"))
}

#[test]
fn the_added_type_checks() {
    let config = ConfigDir::new("");
    add_foreign_case(config.path());
    let (code, out) = check(&config);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("27 message types: the shipped schemas and"), "{out}");
    assert!(out.contains("cn.xietong.foreign_case.reply v1, cn.xietong.foreign_case.request v1"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_added_by_configuration_is_accepted_routed_delivered_and_answered() {
    let config = ConfigDir::new("");
    add_foreign_case(config.path());
    let server = TestServer::with_config(config);
    let url = server.url.as_str();

    let (status, receipt) = post_json(url, PROCURATORATE, example("prc-foreign-case-request.json").as_bytes()).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(receipt["type"], REQUEST);
    assert_eq!(recipients(&receipt), [format!("{OFFICE} primary")]);
    let request_id = receipt["id"].clone();

    let inbox = inbox_until(url, OFFICE, |events| events.iter().any(|e| e["id"] == request_id)).await;
    let request = inbox.iter().find(|e| e["id"] == request_id).unwrap();
    assert_eq!(request["data"]["request"]["topic"], "境外权利人商标注册及维权情况");
    let dataschema = request["dataschema"].as_str().unwrap();
    assert!(dataschema.ends_with("/v1/schemas/cn.xietong.foreign_case.request/v1"), "{dataschema}");
    let (status, schema) = get(&format!("{url}/v1/schemas/{REQUEST}/v1"), None).await;
    assert_eq!(status, 200, "{schema}");
    assert_eq!(schema["$id"], dataschema);
    assert_eq!(schema["x-section"], "十六");

    // An obligation is open: the office owes an answer by the day the request names.
    let thread =
        thread_until(url, request_id.as_str().unwrap(), |t| !t["obligations"].as_array().unwrap().is_empty()).await;
    let obligation = &thread["obligations"][0];
    assert_eq!((&obligation["awaiting"], &obligation["state"]), (&json!(OFFICE), &json!("open")), "{thread:#}");
    assert_eq!(obligation["deadline"], "2026-12-15T23:59:59.999+08:00");

    let (status, reply) = post_json(url, OFFICE, example("ipo-foreign-case-reply.json").as_bytes()).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["type"], REPLY);
    assert_eq!(recipients(&reply), [format!("{PROCURATORATE} primary")]);
    let reply_id = reply["id"].clone();
    let inbox = inbox_until(url, PROCURATORATE, |events| events.iter().any(|e| e["id"] == reply_id)).await;
    let answer = inbox.iter().find(|e| e["id"] == reply_id).unwrap();
    assert_eq!(answer["inreplyto"], "SZ-JCY-2026-FC-0007");
    thread_until(url, request_id.as_str().unwrap(), |t| t["obligations"][0]["state"] == "answered").await;

    // The type is in the list, at its version, with its section, and in the API description.
    let (_, list) = get(&format!("{url}/v1/schemas"), None).await;
    let entry = list["schemas"].as_array().unwrap().iter().find(|s| s["type"] == REQUEST).cloned().unwrap();
    assert_eq!((entry["version"].as_u64(), entry["section"].as_str()), (Some(1), Some("十六")));
    let (_, api) = get(&format!("{url}/v1/openapi.json"), None).await;
    let components = &api["components"]["schemas"];
    assert!(components[format!("data.{REQUEST}")].is_object(), "the new type's data is described");
    let names = components["CanonicalEvent"]["properties"]["type"]["enum"].as_array().unwrap();
    assert!(names.contains(&json!(REPLY)), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_adds_a_type_and_refuses_to_break_it_at_the_same_version() {
    let config = ConfigDir::new("");
    let dir = config.path().to_path_buf();
    let server = TestServer::with_config(config);
    let url = server.url.as_str();
    let request = example("prc-foreign-case-request.json");
    let (status, refused) = post_json(url, PROCURATORATE, request.as_bytes()).await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("unknown_message_type")), "{refused}");

    add_foreign_case(&dir);
    let (status, body) = call(reqwest::Method::POST, &format!("{url}/v1/admin/reload"), Some(OPERATOR), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, receipt) = post_json(url, PROCURATORATE, request.as_bytes()).await;
    assert_eq!(status, 202, "{receipt}");

    // The reply type grows a required member at the same version: its consumers would break.
    let reply_path = dir.join("schemas/foreign_case.reply.json");
    let mut reply: Value = serde_json::from_str(&std::fs::read_to_string(&reply_path).unwrap()).unwrap();
    reply["required"] = json!(["content", "case"]);
    std::fs::write(&reply_path, reply.to_string()).unwrap();
    let (status, body) = call(reqwest::Method::POST, &format!("{url}/v1/admin/reload"), Some(OPERATOR), None).await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    assert!(text.contains("foreign_case.reply.json"), "{text}");
    assert!(text.contains("`case` is now required"), "{text}");
    assert!(text.contains("Raise the version in $id to v2"), "{text}");

    // With the version raised, it is taken, and events name the new version.
    reply["$id"] = json!("urn:xietong:schema:foreign_case.reply:v2");
    std::fs::write(&reply_path, reply.to_string()).unwrap();
    let (status, body) = call(reqwest::Method::POST, &format!("{url}/v1/admin/reload"), Some(OPERATOR), None).await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = get(&format!("{url}/v1/schemas"), None).await;
    let entry = list["schemas"].as_array().unwrap().iter().find(|s| s["type"] == REPLY).cloned().unwrap();
    assert_eq!(entry["version"], 2);
    assert!(entry["url"].as_str().unwrap().ends_with("/v1/schemas/cn.xietong.foreign_case.reply/v2"), "{entry}");
}

#[test]
fn check_refuses_a_breaking_change_to_a_shipped_type_unless_its_version_is_raised() {
    let config = ConfigDir::new("");
    std::fs::create_dir_all(config.path().join("schemas")).unwrap();
    let settings = std::fs::read_to_string(config.path().join("xietong.yaml")).unwrap();
    config.write("xietong.yaml", &format!("{settings}\nschemas: schemas\n"));
    let shipped = std::fs::read_to_string(root().join("schemas/clue.transfer.json")).unwrap();
    let mut schema: Value = serde_json::from_str(&shipped).unwrap();

    // A copy of the shipped schema changes nothing.
    config.write("schemas/clue.transfer.json", &shipped);
    let (code, out) = check(&config);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("25 message types: the shipped schemas and") && out.contains("(no changes)"), "{out}");

    // A required member added, and a member's values narrowed in a copy of the shared definitions.
    schema["required"].as_array_mut().unwrap().push(json!("rights"));
    config.write("schemas/clue.transfer.json", &schema.to_string());
    let mut common: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schemas/common.json")).unwrap()).unwrap();
    common["$defs"]["case"]["properties"]["category"]["enum"].as_array_mut().unwrap().retain(|v| v != "other");
    config.write("schemas/common.json", &common.to_string());
    let (code, out) = check(&config);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("schemas/clue.transfer.json"), "{out}");
    assert!(out.contains("/: `rights` is now required"), "{out}");
    assert!(out.contains("/case/category: no longer accepts \"other\""), "{out}");
    assert!(out.contains("Raise the version in $id to v2"), "{out}");
    // The narrowed shared definition breaks the other types that use it too.
    assert!(out.contains("<built-in schemas/related_case.notice.json>"), "{out}");

    common["$defs"]["case"]["properties"]["category"]["enum"].as_array_mut().unwrap().push(json!("other"));
    config.write("schemas/common.json", &common.to_string());
    schema["$id"] = json!("urn:xietong:schema:clue.transfer:v2");
    config.write("schemas/clue.transfer.json", &schema.to_string());
    let (code, out) = check(&config);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cn.xietong.clue.transfer v2"), "{out}");
}
