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
