//! Who may do what: the whole matrix, allowed and denied, over HTTP. Which kinds and levels may
//! send which message types (permissions.yaml), whose feeds and subscriptions a caller may use,
//! and who may call the admin endpoints. Every refusal is a 401 or a 403 and is counted.

use crate::common::*;
use serde_json::{Value, json};

const KINDS: [&str; 4] = ["ip_office", "procuratorate", "public_security", "court"];
/// One division per level: national, province (四川), prefecture (成都), county (锦江区).
const DIVISIONS: [&str; 4] = ["000000", "510000", "510100", "510104"];
/// The hub of a region those divisions belong to: it sends too.
const HUB: &str = "hub:chengdu_chongqing";

/// The brief's flow table and issue 15's mechanisms, written out independently of
/// `config/permissions.yaml`: whether an agency of `kind` at `division` (a hub: kind `hub`) may
/// send `message_type`.
fn may_send(message_type: &str, kind: &str, division: &str) -> bool {
    let both = matches!(kind, "ip_office" | "procuratorate");
    let hub = kind == "hub";
    match message_type.trim_start_matches("cn.xietong.") {
        // §十: a hub speaks to its region: bulletins and coordination notices, nothing else.
        "bulletin" => both || hub,
        "hub.notice" => hub,
        _ if hub => false,
        // §二: either side calls a meeting; whoever is invited answers, courts and police too.
        "meeting.notice" | "cooperation.notice" => both,
        "meeting.reply" => true,
        // §十七: CNIPA and the SPP commend and criticise.
        "evaluation.notice" => both && division == "000000",
        "typical_case" | "related_case.notice" | "opinion.escalation" => both,
        "expert.request" | "opinion.request" | "supervision.feedback" | "non_prosecution.transfer" => {
            kind == "procuratorate"
        }
        "clue.transfer" | "supervision.filing_suggestion" => kind == "ip_office",
        // §七 逐级请示: the IP office answers; a superior procuratorate answers its subordinate's
        // escalation (a county one has no subordinate).
        "opinion.reply" => kind == "ip_office" || (kind == "procuratorate" && division != "510104"),
        "major_case.supervision" => both && division == "000000",
        other => panic!("no expectation for {other}"),
    }
}

/// The shared examples and those of docs/examples (under the repository's root), each with the
/// agency or hub it comes from.
const EXAMPLES: [(&str, &str); 15] = [
    ("tests/fixtures/shared/examples/ipo-clue-transfer.json", "ip_office:330100"),
    ("tests/fixtures/shared/examples/ipo-filing-supervision.json", "ip_office:330100"),
    ("tests/fixtures/shared/examples/ipo-opinion-cannot-determine.json", "ip_office:440300"),
    ("tests/fixtures/shared/examples/ipo-bulletin-field-secret.json", "ip_office:330000"),
    ("tests/fixtures/shared/examples/ipo-typical-case.json", "ip_office:330000"),
    ("tests/fixtures/shared/examples/prc-non-prosecution-transfer.json", "procuratorate:330100"),
    ("tests/fixtures/shared/examples/prc-opinion-request.json", "procuratorate:440300"),
    ("tests/fixtures/shared/examples/prc-supervision-feedback.json", "procuratorate:330100"),
    ("tests/fixtures/shared/examples/prc-major-case-supervision.json", "procuratorate:000000"),
    ("tests/fixtures/shared/examples/prc-expert-request.json", "procuratorate:310000"),
    ("docs/examples/ipo-meeting-notice.json", "ip_office:330100"),
    ("docs/examples/prc-meeting-reply.json", "procuratorate:330100"),
    ("docs/examples/ipo-cooperation-notice.json", "ip_office:330000"),
    ("docs/examples/prc-evaluation-notice.json", "procuratorate:000000"),
    ("docs/examples/hub-notice.json", "hub:yangtze_delta"),
];

fn matrix_token(agency: &str) -> String {
    format!("matrix-{}", agency.replace(':', "-"))
}

/// The shipped configuration plus one agency of every kind at every level of the matrix.
fn server() -> TestServer {
    let config = ConfigDir::new("");
    let mut agencies = std::fs::read_to_string(config.path().join("agencies.yaml")).unwrap();
    let hub = format!("  - id: {HUB}\n");
    let at = agencies.find(&hub).unwrap();
    let tokens = at + agencies[at..].find("    tokens:\n").unwrap() + "    tokens:\n".len();
    let hash = xietong::token::format_hash(&xietong::token::hash(&matrix_token(HUB)));
    agencies.insert_str(tokens, &format!("      - {hash}\n"));
    for kind in KINDS {
        for division in DIVISIONS {
            let id = format!("{kind}:{division}");
            let hash = xietong::token::format_hash(&xietong::token::hash(&matrix_token(&id)));
            let entry = if agencies.contains(&format!("  - id: {id}\n")) {
                // Already configured (the demo's national bodies): a second token.
                let at = agencies.find(&format!("  - id: {id}\n")).unwrap();
                let tokens = at + agencies[at..].find("    tokens:\n").unwrap() + "    tokens:\n".len();
                agencies.insert_str(tokens, &format!("      - {hash}\n"));
                continue;
            } else {
                format!("  - id: {id}\n    tokens: [{hash}]\n    rate_limit: {{ per_second: 1000, burst: 1000 }}\n")
            };
            agencies.push_str(&entry);
        }
    }
    config.write("agencies.yaml", &agencies);
    TestServer::with_config(config)
}

/// Each example as a canonical event, from the gateway itself.
async fn canonical_examples(server: &TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    for (file, sender) in EXAMPLES {
        let media = if sender.starts_with("hub:") { "application/cloudevents+json" } else { "application/json" };
        let r = client()
            .post(format!("{}/v1/admin/explain?as={sender}", server.url))
            .bearer_auth("demo-operator")
            .header("content-type", media)
            .body(std::fs::read(root().join(file)).unwrap())
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["accepted"], true, "{file}: {body}");
        out.push(body["message"].clone());
    }
    out
}

/// `event` as if `agency` (or a hub) had written it.
fn as_sent_by(event: &Value, agency: &str, n: usize) -> Value {
    let mut e = event.clone();
    e["id"] = json!(format!("MATRIX-{n}"));
    e["source"] = match agency.strip_prefix("hub:") {
        Some(key) => json!(format!("urn:xietong:hub:{key}")),
        None => json!(format!("urn:xietong:agency:{agency}")),
    };
    e["sender"] = json!(agency);
    e["data"]["sender"] = json!({"id": agency});
    e.as_object_mut().unwrap().remove("nativeid");
    // The gateway added an evaluation's figures when it explained it; a sender may not write them.
    if let Some(evaluation) = e["data"].get_mut("evaluation").and_then(Value::as_object_mut) {
        evaluation.remove("figures");
    }
    e
}

async fn denials(server: &TestServer, status: u16, endpoint: &str) -> f64 {
    let text = client().get(format!("{}/metrics", server.url)).send().await.unwrap().text().await.unwrap();
    let line = format!("xietong_denials_total{{status=\"{status}\",endpoint=\"{endpoint}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&line)).map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn who_may_send_what_the_whole_matrix() {
    let server = server();
    let events = canonical_examples(&server).await;
    let mut n = 0;
    let (mut allowed, mut denied) = (0, 0);
    for event in &events {
        let message_type = event["type"].as_str().unwrap();
        let agencies = KINDS.iter().flat_map(|k| DIVISIONS.iter().map(move |d| (*k, *d)));
        for (kind, division) in agencies.chain([("hub", "")]) {
            {
                n += 1;
                let agency = if kind == "hub" { HUB.to_string() } else { format!("{kind}:{division}") };
                let body = serde_json::to_vec(&as_sent_by(event, &agency, n)).unwrap();
                let r = client()
                    .post(format!("{}/v1/messages", server.url))
                    .bearer_auth(matrix_token(&agency))
                    .header("content-type", "application/cloudevents+json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let answer: Value = r.json().await.unwrap();
                if may_send(message_type, kind, division) {
                    allowed += 1;
                    assert_eq!(status, 202, "{agency} sends {message_type}: {answer}");
                } else {
                    denied += 1;
                    assert_eq!(status, 403, "{agency} sends {message_type}: {answer}");
                    assert_eq!(answer["code"], "forbidden");
                    let says = answer["message"].as_str().unwrap();
                    assert!(says.contains(&agency) && says.contains(message_type), "{says}");
                }
            }
        }
    }
    assert_eq!((allowed, denied), (85, 170), "the matrix has both sides");
    assert_eq!(denials(&server, 403, "/v1/messages").await, 170.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_county_office_cannot_speak_for_its_province() {
    let server = server();
    let bulletin = &canonical_examples(&server).await[3];
    let mut claim = as_sent_by(bulletin, "ip_office:510104", 1);
    claim["data"]["sender"] = json!({"id": "ip_office:510000"});
    let r = client()
        .post(format!("{}/v1/messages", server.url))
        .bearer_auth(matrix_token("ip_office:510104"))
        .header("content-type", "application/cloudevents+json")
        .body(serde_json::to_vec(&claim).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["code"], "sender_mismatch");
    assert!(answer["message"].as_str().unwrap().contains("ip_office:510000"), "{answer}");
}

/// The status of a GET or POST with `token` (none: no Authorization header).
async fn status(server: &TestServer, method: &str, path: &str, token: Option<&str>, body: Value) -> u16 {
    let url = format!("{}{path}", server.url);
    let mut request = if method == "GET" { client().get(url) } else { client().post(url).json(&body) };
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn feeds_subscriptions_and_admin_endpoints_by_role() {
    let server = server();
    let agency = "demo-ip_office-330100";
    let other_agency = "demo-procuratorate-330100";
    let hub = "demo-hub-yangtze_delta";
    let operator = "demo-operator";
    let none = json!({});
    // (method, path, caller, expected status)
    let cases: Vec<(&str, &str, Option<&str>, u16)> = vec![
        // An agency's feed: its owner only.
        ("GET", "/v1/feeds/ip_office:330100/events", Some(agency), 200),
        ("GET", "/v1/feeds/ip_office:330100/events", Some(other_agency), 403),
        ("GET", "/v1/feeds/ip_office:330100/events", Some(hub), 403),
        ("GET", "/v1/feeds/ip_office:330100/events", Some(operator), 403),
        ("GET", "/v1/feeds/ip_office:330100/events", None, 401),
        ("GET", "/v1/feeds/ip_office:330100/events", Some("not-a-token"), 401),
        // A hub's feed: the hub only.
        ("GET", "/v1/feeds/hub:yangtze_delta/events", Some(hub), 200),
        ("GET", "/v1/feeds/hub:yangtze_delta/events", Some(agency), 403),
        ("GET", "/v1/feeds/hub:pearl_river_delta/events", Some(hub), 403),
        // The public feed is open.
        ("GET", "/v1/feeds/public/events", None, 200),
        // Subscriptions: over one's own feed only.
        ("POST", "/v1/subscriptions", Some(agency), 201),
        ("GET", "/v1/subscriptions", None, 401),
        // Admin endpoints: operators only.
        ("GET", "/v1/admin/dead-letters", Some(operator), 200),
        ("GET", "/v1/admin/dead-letters", Some(agency), 403),
        ("GET", "/v1/admin/dead-letters", Some(hub), 403),
        ("GET", "/v1/admin/dead-letters", None, 401),
        ("GET", "/v1/admin/threads", Some(agency), 403),
        ("GET", "/v1/admin/stats", Some(agency), 403),
        ("POST", "/v1/admin/reload", Some(agency), 403),
        ("POST", "/v1/admin/explain?as=ip_office:330100", Some(agency), 403),
        ("GET", "/v1/admin/messages/unknown", Some(agency), 403),
    ];
    for (method, path, token, expected) in &cases {
        let body = if *path == "/v1/subscriptions" { json!({"cursor": true}) } else { none.clone() };
        assert_eq!(status(&server, method, path, *token, body).await, *expected, "{method} {path} as {token:?}");
    }
    let foreign = json!({"owner": "procuratorate:330100", "cursor": true});
    assert_eq!(status(&server, "POST", "/v1/subscriptions", Some(agency), foreign).await, 403, "another's feed");
    assert_eq!(denials(&server, 403, "/v1/feeds/{feed}/events").await, 5.0);
    assert_eq!(denials(&server, 401, "/v1/admin/dead-letters").await, 1.0);
    assert_eq!(denials(&server, 403, "/v1/admin/dead-letters").await, 2.0);
    assert_eq!(denials(&server, 403, "/v1/subscriptions").await, 1.0);
}
