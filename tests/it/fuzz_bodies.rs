//! Bad input never yields a 5xx: random bytes, truncated messages, and well-formed messages
//! with any value replaced by random JSON are posted to a real server; every answer is below
//! 500 and every refusal is a JSON problem with a code.

use std::sync::OnceLock;

use crate::common::*;
use proptest::prelude::*;
use serde_json::{Map, Value};

const EXAMPLES: [(&str, &str); 6] = [
    ("ipo-clue-transfer.json", "ip_office:330100"),
    ("ipo-bulletin-field-secret.json", "ip_office:330000"),
    ("ipo-opinion-cannot-determine.json", "ip_office:440300"),
    ("prc-opinion-request.json", "procuratorate:440300"),
    ("prc-bulletin-secret-field.json", "procuratorate:330000"),
    ("prc-non-prosecution-transfer.json", "procuratorate:330100"),
];

struct Harness {
    server: TestServer,
    runtime: tokio::runtime::Runtime,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| Harness {
        server: TestServer::with_settings(
            "rate_limit:\n  per_second: 1000000\n  burst: 1000000\nlog:\n  level: warn\n",
        ),
        runtime: tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap(),
    })
}

/// Posts and checks the answer: below 500, and a JSON problem with a code when refused.
fn post_checked(agency: &str, content_type: &str, body: Vec<u8>) -> u16 {
    let h = harness();
    h.runtime.block_on(async {
        let r = post_as(&h.server.url, agency, content_type, body).await;
        let status = r.status().as_u16();
        let answer: Value = r.json().await.expect("every answer is JSON");
        assert!(status < 500, "{status}: {answer}");
        if status >= 400 {
            assert!(answer["code"].is_string() && answer["message"].is_string(), "{answer}");
        }
        status
    })
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        prop::sample::select(vec![
            "",
            "330100",
            "2026-11-20 14:03:22",
            "1,250,000.00",
            "秘密",
            "机密★10年",
            "非密",
            "dsr/9/x",
            "/body/x",
            "XSYS",
            "无法认定"
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every pointer in `v`, root included.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            m.iter().for_each(|(k, c)| pointers(c, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out))
        }
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600), ce: bool) {
        let ct = if ce { "application/cloudevents+json" } else { "application/json" };
        post_checked("ip_office:330100", ct, bytes);
    }

    #[test]
    fn truncated_messages(which in 0..EXAMPLES.len(), cut in 0.0f64..1.0) {
        let (name, agency) = EXAMPLES[which];
        let body = example(name);
        let end = (body.len() as f64 * cut) as usize;
        let status = post_checked(agency, "application/json", body[..end].to_vec());
        // A cut that leaves complete JSON (only trailing whitespace lost) is a valid message.
        if serde_json::from_slice::<Value>(&body[..end]).is_err() {
            prop_assert_eq!(status, 400);
        }
    }

    #[test]
    fn mutated_messages(which in 0..EXAMPLES.len(), pick in any::<prop::sample::Index>(), value in arb_json(), salt in any::<u32>()) {
        let (name, agency) = EXAMPLES[which];
        let mut m = example_json(name);
        let mut all = Vec::new();
        pointers(&m, String::new(), &mut all);
        let target = pick.get(&all).clone();
        if target.is_empty() { m = value; } else if let Some(slot) = m.pointer_mut(&target) { *slot = value; }
        // A fresh id (when the id survived) so that mutations are not answered as duplicates.
        for id in ["/xxid", "/header/messageId"] {
            if let Some(Value::String(s)) = m.pointer_mut(id) { s.push_str(&format!("-{salt}")); }
        }
        post_checked(agency, "application/json", serde_json::to_vec(&m).unwrap());
    }

    #[test]
    fn mutated_cloudevents(pick in any::<prop::sample::Index>(), value in arb_json(), salt in any::<u32>()) {
        let mut event = serde_json::json!({
            "specversion": "1.0", "id": format!("fuzz-{salt}"), "type": "cn.xietong.bulletin", "time": "2026-11-20T14:03:22+08:00",
            "sender": "ip_office:330100", "classification": "内部",
            "data": {"sender": {"id": "ip_office:330100"}, "content": "c", "attachments": [{"fileName": "a", "classification": "内部"}],
                     "redactions": [], "classifiedFields": [{"pointer": "/data/content", "level": "工作秘密"}]}
        });
        let mut all = Vec::new();
        pointers(&event, String::new(), &mut all);
        let target = pick.get(&all).clone();
        if target.is_empty() { event = value; } else if let Some(slot) = event.pointer_mut(&target) { *slot = value; }
        post_checked("ip_office:330100", "application/cloudevents+json", serde_json::to_vec(&event).unwrap());
    }
}
