//! The operators' commands: `check` and `token new`.

use crate::common::*;

#[test]
fn check_passes_on_the_shipped_configuration() {
    let config = root().join("config");
    let (code, stdout, stderr) = run_cli(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("OK") && stdout.contains("ipo-enforcement") && stdout.contains("procuratorate-case"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "23 message types granted in permissions.yaml; plain HTTP; embedded store in ./data; audit chain sha256 with no signed checkpoints"
        ),
        "{stdout}"
    );
}

#[test]
fn check_reports_every_problem_with_file_and_position() {
    let config = ConfigDir::new("listen: 127.0.0.1:8080\nlog:\n  format: xml\n");
    let ipo = std::fs::read_to_string(config.path().join("sources/ipo-enforcement.yaml")).unwrap();
    let ipo = ipo
        .replace("{ to: /case/name,       from: /aj/ajmc }", "{ to: /case/title,      from: /aj/ajmc }")
        .replace("DXAL:   cn.xietong.typical_case", "DXAL:   cn.xietong.typical")
        .replace("{ to: /content, from: /nr }", "{ to: /content, from: nr }");
    config.write("sources/ipo-enforcement.yaml", &ipo);
    let line_of = |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).map(|i| i + 1).unwrap();
    let title_at = format!("ipo-enforcement.yaml:{}:11:", line_of(&ipo, "/case/title"));
    config.write(
        "agencies.yaml",
        "agencies:\n  - id: ip_office:330100\n    format: ipo\n    tokens: [sha256:1234]\n  - id: police:330100\n  - id: ip_office:330100\n    colour: red\n",
    );
    let (code, stdout, stderr) = run_cli(&["check", "--config", config.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let has = |file: &str, text: &str| lines.iter().any(|l| l.contains(file) && l.contains(text));
    // Every problem is reported, each at file:line:column.
    for (file, text) in [
        (title_at.as_str(), "`/case/title` is not a field of the shared schema"),
        ("ipo-enforcement.yaml:", "unknown canonical type `cn.xietong.typical`"),
        ("ipo-enforcement.yaml:", "`nr` is not a JSON pointer"),
        ("xietong.yaml:3:", "xml"),
        ("agencies.yaml:7:5:", "unknown field `colour`"),
    ] {
        assert!(has(file, text), "missing {file} … {text} in:\n{stderr}");
    }
    // Each mistake once: a broken format is not reported again where it is referenced.
    assert!(stderr.contains("has 5 problem(s)"), "{stderr}");

    // Agency problems, once the file parses.
    config.write("xietong.yaml", "");
    config.write(
        "agencies.yaml",
        "agencies:\n  - id: ip_office:330100\n    format: ipo\n    tokens: [sha256:1234]\n  - id: police:330100\n",
    );
    let (code, _, stderr) = run_cli(&["check", "--config", config.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    for text in [
        "agencies.yaml:3:13: no source format `ipo`",
        "agencies.yaml:4:14: a token hash is written sha256:",
        "agencies.yaml:5:9: unknown agency kind `police`",
    ] {
        assert!(stderr.contains(text), "missing {text} in:\n{stderr}");
    }
}

#[test]
fn check_reports_the_problems_of_threads_yaml() {
    let config = ConfigDir::new("");
    config.write(
        "threads.yaml",
        "requests:\n  - type: cn.xietong.clue.transfer\n    answered_by: [cn.xietong.clue.answer]\n    within: a month\n  - type: cn.xietong.clue.transfer\n    answered_by: []\n    within: 30d\nprogress: [cn.xietong.progress]\ndeadline: 3d\n",
    );
    let (code, stdout, stderr) = run_cli(&["check", "--config", config.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("threads.yaml:9:1: unknown field `deadline`"), "{stderr}");
    config.write(
        "threads.yaml",
        "requests:\n  - type: cn.xietong.clue.transfer\n    answered_by: [cn.xietong.clue.answer]\n    within: a month\n  - type: cn.xietong.clue.transfer\n    answered_by: []\n    within: 30d\nprogress: [cn.xietong.progress]\n",
    );
    let (code, _, stderr) = run_cli(&["check", "--config", config.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    for text in [
        "threads.yaml:3:19: unknown message type `cn.xietong.clue.answer`",
        "threads.yaml:4:13: `a month` is not a duration such as 15d",
        "threads.yaml:5:11: `cn.xietong.clue.transfer` is listed twice",
        "threads.yaml:5:11: answered_by: the types that answer this request",
        "threads.yaml:8:12: unknown message type `cn.xietong.progress`",
    ] {
        assert!(stderr.contains(text), "missing {text} in:\n{stderr}");
    }
}

#[test]
fn check_refuses_a_missing_directory() {
    let (code, _, stderr) = run_cli(&["check", "--config", "/nonexistent/config"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no such configuration directory"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_token_authenticates_once_its_hash_is_configured() {
    let (code, stdout, _) = run_cli(&["token", "new", "ip_office:330100"]);
    assert_eq!(code, 0);
    let token = stdout.split_whitespace().find(|w| w.starts_with("xt_")).expect("a token is printed").to_string();
    let hash = stdout.split_whitespace().find(|w| w.starts_with("sha256:")).expect("its hash is printed").to_string();
    assert_eq!(hash, xietong::token::format_hash(&xietong::token::hash(&token)));

    let config = ConfigDir::new("");
    config.write("agencies.yaml", &format!("agencies:\n  - id: ip_office:330100\n    tokens:\n      - {hash}\n"));
    let server = TestServer::with_config(config);
    let r = client()
        .post(format!("{}/v1/messages", server.url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(example("ipo-clue-transfer.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = post_as(&server.url, "ip_office:330100", "application/json", example("ipo-filing-supervision.json")).await;
    assert_eq!(r.status(), 401, "the demo token is no longer configured");
}

#[test]
fn check_reports_routing_problems_with_positions() {
    let config = ConfigDir::new("");
    config.write(
        "rules.yaml",
        "rules:\n\
         \x20 - name: a\n\
         \x20   types: [cn.xietong.gossip]\n\
         \x20   to: [ { same_level: police } ]\n\
         \x20 - name: b\n\
         \x20   when: message.type ==\n\
         \x20   to: [ { hub: atlantis } ]\n\
         \x20 - name: c\n\
         \x20   when: recipient.kind == \"court\"\n\
         \x20   to: [ { agency: ip_office:339999 } ]\n\
         \x20 - name: c\n\
         \x20   to: [ { hubs: all }, { feed: public, of: case } ]\n\
         \x20 - name: d\n\
         \x20 - name: e\n\
         \x20   when: case.divisions.exists(d, d.startsWith(\"33\")) && x.all(y, y > 0)\n\
         \x20   to: [ { feed: public } ]\n\
         \x20 - name: f\n\
         \x20   types: []\n\
         \x20   senders: [public_security]\n\
         \x20   to: [ { same_level: counterpart } ]\n\
         \x20 - name: g\n\
         \x20   senders: [hub]\n\
         \x20   to: [ { listed: participants }, { members_of: /data/audience/region, levels: [city] }, { feed: public, kinds: [ip_office] } ]\n\
         \x20 - name: h\n\
         \x20   to: [ { superior: same, of: case }, { same_level: ip_office, of: nowhere } ]\n",
    );
    config.write("regions.yaml", "regions:\n  east:\n    name: 东部\n    members: [\"33\", \"3399\", \"330\"]\n");
    let agencies = std::fs::read_to_string(config.path().join("agencies.yaml")).unwrap();
    config.write("agencies.yaml", &format!("{agencies}\n  - id: ip_office:110100\n  - id: court:339999\n"));
    let (code, _, stderr) = run_cli(&["check", "--config", config.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    for text in [
        "rules.yaml:3:13: rule `a`: unknown message type `cn.xietong.gossip`",
        "rules.yaml:4:25: rule `a`: unknown agency kind `police`",
        "rules.yaml:6:11: rule `b`: the condition is not valid CEL",
        "rules.yaml:7:18: rule `b`: no region `atlantis`",
        "rules.yaml:9:11: rule `c`: unknown variable recipient",
        "rules.yaml:10:21: rule `c`: 339999 is not a division of the table",
        "rules.yaml:11:11: rule `c` is defined twice",
        "rules.yaml:12:19: rule `c`: `hubs` takes `touched`",
        "rule `c`: `of` applies to same_level and superior only",
        "rules.yaml:13:11: rule `d` has no target",
        // Macro variables (d, y) are bound; x is not.
        "rules.yaml:15:11: rule `e`: unknown variable x;",
        "rules.yaml:17:11: rule `f` can never match",
        "rules.yaml:17:11: rule `f`: `counterpart` is impossible for its senders",
        "rules.yaml:23:21: rule `g`: `listed` takes a JSON pointer into the message",
        "rules.yaml:23:83: rule `g`: unknown level `city`",
        "rules.yaml:23:100: rule `g`: `kinds` applies to members_of only",
        "rules.yaml:25:23: rule `h`: `same` is the kind of the agency `of` names",
        "rules.yaml:25:70: rule `h`: `of: nowhere` is not sender, case, replying_to or a JSON pointer",
        "regions.yaml:4:21: region `east`: `3399` is not a province (XX) or prefecture (XXYY) prefix",
        "regions.yaml:4:29: region `east`: `330` is not",
        "ip_office:110100: 110100 (市辖区) is a grouping row, not an authority",
        "court:339999: 339999 is not a division of the GB/T 2260 table",
        // The demo hubs' credentials name regions this regions.yaml no longer has.
        "hub:yangtze_delta: no region `yangtze_delta` in regions.yaml",
    ] {
        assert!(stderr.contains(text), "missing {text:?} in:\n{stderr}");
    }
    assert!(stderr.contains("has 28 problem(s)"), "each problem once:\n{stderr}");
}

#[test]
fn check_refuses_an_anonymisation_pattern_that_is_not_a_regular_expression() {
    let config = ConfigDir::new("routing:\n  anonymise:\n    patterns: ['浙A[0-9']\n");
    let (code, stdout, stderr) = run_cli(&["check", "--config", config.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("xietong.yaml: routing.anonymise.patterns[0]: not a regular expression"), "{stderr}");
}
