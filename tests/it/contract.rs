//! The contract integrators build on, over HTTP: the OpenAPI document (served, committed, in step
//! with the route table), every error as an RFC 9457 problem document, the schemas that events
//! name (checked with another implementation of JSON Schema), dry runs, and `GET /v1/me`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::*;

/// GET with `token`: the status, the Content-Type, and the body as JSON.
async fn fetch(url: &str, token: Option<&str>) -> (u16, String, Value) {
    let mut r = client().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let media = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (r.status().as_u16(), media, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_document_is_the_committed_one_and_describes_every_route() {
    let server = TestServer::start();
    let (status, media, served) = fetch(&format!("{}/v1/openapi.json", server.url), None).await;
    assert_eq!((status, media.as_str()), (200, "application/json"));
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/openapi.json")).unwrap()).unwrap();
    assert!(
        served == committed,
        "docs/openapi.json is not what the gateway serves: run `cargo run -- openapi > docs/openapi.json`"
    );
    assert_eq!(served["openapi"], "3.1.0");

    let documented: BTreeSet<(String, String)> = served["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    let routed: BTreeSet<(String, String)> =
        xietong::http::routes::TABLE.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, routed, "every route is documented, and every documented operation is routed");

    // Every operation answers errors as problem documents, and says who may call it.
    for (method, path) in &routed {
        let op = &served["paths"][path][method];
        assert_eq!(
            op["responses"]["default"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/ProblemDocument",
            "{method} {path}"
        );
        assert!(op["operationId"].is_string(), "{method} {path}");
    }
    assert_eq!(
        served["webhooks"]["event"]["post"]["requestBody"]["content"]["application/cloudevents+json"]["schema"]["$ref"],
        "#/components/schemas/CanonicalEvent"
    );
    let examples = &served["paths"]["/v1/messages"]["post"]["requestBody"]["content"]["application/json"]["examples"];
    assert_eq!(examples["meeting-notice"]["value"], example_doc("ipo-meeting-notice.json"));
}

fn example_doc(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join("docs/examples").join(name)).unwrap()).unwrap()
}

/// One request and the problem it must get.
struct Case {
    what: &'static str,
    request: reqwest::RequestBuilder,
    status: u16,
    code: &'static str,
}

/// Every refusal code a request can provoke, each checked as RFC 9457 has it; the codes no
/// request can provoke on a healthy gateway (the store away, a bug, a request that never
/// arrives) are rendered by the same function, checked in `src/http/error.rs`.
#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_is_a_problem_document() {
    let config = ConfigDir::new("limits:\n  max_body_bytes: 65536\n  max_header_bytes: 8192\n");
    let agencies = std::fs::read_to_string(config.path().join("agencies.yaml")).unwrap();
    let hash = xietong::token::format_hash(&xietong::token::hash("slow-token"));
    config.write(
        "agencies.yaml",
        &format!("{agencies}\n  - id: ip_office:320000\n    tokens: [{hash}]\n    rate_limit: {{ per_second: 1, burst: 1 }}\n"),
    );
    let server = TestServer::with_config(config);
    let url = server.url.as_str();
    let c = client();
    let post = |agency: &str, media: &str, body: Vec<u8>| {
        c.post(format!("{url}/v1/messages")).bearer_auth(demo_token(agency)).header("content-type", media).body(body)
    };
    let native = |agency: &str, m: Value| post(agency, "application/json", serde_json::to_vec(&m).unwrap());
    let clue = example_json("ipo-clue-transfer.json");
    let changed = |f: &dyn Fn(&mut Value)| {
        let mut m = clue.clone();
        f(&mut m);
        m
    };
    // One accepted message, for the conflict of its id.
    accepted(url, "ip_office:330100", &clue).await;
    // One subscription, for the conflict of its id.
    let sub = json!({"id": "sub-contract", "cursor": true});
    let (status, _) = call(
        reqwest::Method::POST,
        &format!("{url}/v1/subscriptions"),
        Some("demo-hub-yangtze_delta"),
        Some(sub.clone()),
    )
    .await;
    assert_eq!(status, 201);
    // Spend the slow agency's one token.
    let slow = |m: Value| {
        c.post(format!("{url}/v1/messages"))
            .bearer_auth("slow-token")
            .header("content-type", "application/json")
            .json(&m)
    };
    let spent = slow(changed(&|m| m["fsdw"]["dm"] = json!("320000"))).send().await.unwrap();
    assert_eq!(spent.status(), 202);
    let deep = "[".repeat(60) + &"]".repeat(60);
    let invalid_rules = "rules:\n  - name: broken\n    types: [cn.xietong.nonsense]\n    to: [ { feed: public } ]\n";

    let cases = vec![
        Case {
            what: "not JSON",
            request: post("ip_office:330100", "application/json", b"{".to_vec()),
            status: 400,
            code: "malformed_json",
        },
        Case {
            what: "a bad parameter",
            request: c.get(format!("{url}/v1/feeds/public/events?limit=0")),
            status: 400,
            code: "bad_request",
        },
        Case {
            what: "a bad dry_run",
            request: c
                .post(format!("{url}/v1/messages?dry_run=maybe"))
                .bearer_auth(demo_token("ip_office:330100"))
                .header("content-type", "application/json")
                .body("{}"),
            status: 400,
            code: "bad_request",
        },
        Case { what: "no token", request: c.get(format!("{url}/v1/me")), status: 401, code: "unauthenticated" },
        Case {
            what: "another sender",
            request: native("ip_office:330000", changed(&|m| m["xxid"] = json!("X-2"))),
            status: 403,
            code: "sender_mismatch",
        },
        Case {
            what: "another's feed",
            request: c
                .get(format!("{url}/v1/feeds/ip_office:330100/events"))
                .bearer_auth(demo_token("procuratorate:330100")),
            status: 403,
            code: "forbidden",
        },
        Case {
            what: "too deep",
            request: post("ip_office:330100", "application/json", deep.into_bytes()),
            status: 422,
            code: "limit_exceeded",
        },
        Case {
            what: "huge headers",
            request: c.get(format!("{url}/v1/me")).header("x-padding", "x".repeat(9000)),
            status: 431,
            code: "headers_too_large",
        },
        Case { what: "no such route", request: c.get(format!("{url}/v1/nothing")), status: 404, code: "not_found" },
        Case {
            what: "a path the extractor cannot read",
            request: c.get(format!("{url}/v1/subscriptions/%FF")).bearer_auth(demo_token("ip_office:330100")),
            status: 404,
            code: "not_found",
        },
        Case {
            what: "a method the path does not take",
            request: c.put(format!("{url}/v1/subscriptions")),
            status: 405,
            code: "method_not_allowed",
        },
        Case {
            what: "a body above the limit",
            request: post("ip_office:330100", "application/json", vec![b' '; 70_000]),
            status: 413,
            code: "payload_too_large",
        },
        Case {
            what: "text/plain",
            request: post("ip_office:330100", "text/plain", b"{}".to_vec()),
            status: 415,
            code: "unsupported_media_type",
        },
        Case {
            what: "a state secret",
            request: post("ip_office:330100", "application/json", example("ipo-state-secret-message.json")),
            status: 422,
            code: "state_secret",
        },
        Case {
            what: "a marking in text",
            request: post("ip_office:330100", "application/json", example("ipo-marking-in-text.json")),
            status: 422,
            code: "state_secret_marking",
        },
        Case {
            what: "a marking of nothing",
            request: native("ip_office:330100", changed(&|m| m["zdmj"] = json!({"nowhere": "工作秘密"}))),
            status: 422,
            code: "invalid_marking",
        },
        Case {
            what: "an unmappable value",
            request: native("ip_office:330100", changed(&|m| m["fssj"] = json!("yesterday"))),
            status: 422,
            code: "mapping_failed",
        },
        Case {
            what: "an unknown type",
            request: native("ip_office:330100", changed(&|m| m["xxlx"] = json!("NOPE"))),
            status: 422,
            code: "unknown_message_type",
        },
        Case {
            what: "an unknown division",
            request: native(
                "ip_office:330100",
                changed(&|m| {
                    m["xxid"] = json!("X-3");
                    m["aj"]["fsdq"] = json!(["999999"])
                }),
            ),
            status: 422,
            code: "unknown_division",
        },
        Case {
            what: "an unknown region",
            request: native("ip_office:330000", {
                let mut m = example_doc("ipo-cooperation-notice.json");
                m["jl"]["qy"] = json!("atlantis");
                m
            }),
            status: 422,
            code: "unknown_region",
        },
        Case {
            what: "a schema violation",
            request: native(
                "ip_office:330100",
                changed(&|m| {
                    m["xxid"] = json!("X-4");
                    m.as_object_mut().unwrap().remove("aj");
                }),
            ),
            status: 422,
            code: "schema_violation",
        },
        Case {
            what: "a reused id",
            request: native("ip_office:330100", changed(&|m| m["nr"] = json!("另一条线索。"))),
            status: 409,
            code: "message_id_conflict",
        },
        Case {
            what: "a subscription id that exists",
            request: c.post(format!("{url}/v1/subscriptions")).bearer_auth("demo-hub-yangtze_delta").json(&sub),
            status: 409,
            code: "conflict",
        },
        Case {
            what: "a file path",
            request: c
                .post(format!("{url}/v1/subscriptions"))
                .bearer_auth("demo-hub-yangtze_delta")
                .json(&json!({"webhook": {"url": "https://hub.example.cn/in", "ca": "/etc/ssl/ca.pem"}})),
            status: 422,
            code: "file_path_refused",
        },
        Case {
            what: "above the rate",
            request: slow(changed(&|m| {
                m["xxid"] = json!("X-5");
                m["fsdw"]["dm"] = json!("320000")
            })),
            status: 429,
            code: "rate_limited",
        },
        Case {
            what: "a configuration that does not check",
            request: {
                server.config.write("rules.yaml", invalid_rules);
                c.post(format!("{url}/v1/admin/reload")).bearer_auth(OPERATOR)
            },
            status: 422,
            code: "invalid_configuration",
        },
    ];
    let mut seen = BTreeSet::new();
    for case in cases {
        let r = case.request.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let media = headers.get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!((status, body["code"].as_str()), (case.status, Some(case.code)), "{}: {body}", case.what);
        assert_eq!(media, "application/problem+json", "{}", case.what);
        assert_eq!(body["type"], format!("urn:xietong:problem:{}", case.code), "{}", case.what);
        assert_eq!(body["status"], case.status, "{}", case.what);
        assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "{}: {body}", case.what);
        assert_eq!(body["detail"], body["message"], "{}", case.what);
        let instance = body["instance"].as_str().unwrap_or_default();
        assert!(instance.starts_with("urn:uuid:") && instance.len() == 45, "{}: {body}", case.what);
        match case.code {
            "unauthenticated" => assert!(headers.contains_key("www-authenticate")),
            "rate_limited" => assert!(headers.contains_key("retry-after")),
            "method_not_allowed" => assert_eq!(headers["allow"], "GET, POST"),
            _ => {}
        }
        seen.insert(case.code);
    }
    assert_eq!(seen.len(), 24, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_name_a_schema_the_gateway_serves_and_another_validator_accepts() {
    let server = TestServer::with_settings("public_url: https://xietong.example.cn\n");
    let url = server.url.as_str();
    let (status, _, list) = fetch(&format!("{url}/v1/schemas"), None).await;
    assert_eq!(status, 200);
    let listed = list["schemas"].as_array().unwrap();
    assert_eq!(listed.len(), xietong::model::schema::Schemas::load().unwrap().types().len());
    for entry in listed {
        let t = entry["type"].as_str().unwrap();
        assert_eq!(entry["url"], format!("https://xietong.example.cn/v1/schemas/{t}/v1"));
        assert_eq!(entry["version"], 1);
    }

    let receipt = accepted(url, "ip_office:330100", &example_json("ipo-clue-transfer.json")).await;
    let events = inbox_until(url, "procuratorate:330100", |e| has(e, &receipt["id"])).await;
    let event = events.iter().find(|e| e["id"] == receipt["id"]).unwrap();
    let dataschema = event["dataschema"].as_str().unwrap();
    assert_eq!(dataschema, "https://xietong.example.cn/v1/schemas/cn.xietong.clue.transfer/v1");
    let path = dataschema.strip_prefix("https://xietong.example.cn").unwrap();
    let (status, media, schema) = fetch(&format!("{url}{path}"), None).await;
    assert_eq!((status, media.as_str()), (200, "application/schema+json"));
    assert_eq!(schema["$id"], dataschema);
    // The unversioned URL serves the version in force; another version is not there.
    let (_, _, current) = fetch(&format!("{url}/v1/schemas/cn.xietong.clue.transfer"), None).await;
    assert_eq!(current, schema);
    let (status, _, problem) = fetch(&format!("{url}/v1/schemas/cn.xietong.clue.transfer/v2"), None).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    assert!(problem["message"].as_str().unwrap().contains("version v1 only"), "{problem}");

    // Python's jsonschema, knowing nothing of the gateway, checks the delivered data with it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schema.json"), schema.to_string()).unwrap();
    std::fs::write(dir.path().join("good.json"), event["data"].to_string()).unwrap();
    let mut bad = event["data"].clone();
    bad["case"]["divisions"] = json!(["hangzhou"]);
    std::fs::write(dir.path().join("bad.json"), bad.to_string()).unwrap();
    let script = "import json, sys\nfrom jsonschema import Draft202012Validator\n\
                  s = json.load(open(sys.argv[1]))\nDraft202012Validator.check_schema(s)\n\
                  v = Draft202012Validator(s)\n\
                  print(' '.join('valid' if v.is_valid(json.load(open(f))) else 'invalid' for f in sys.argv[2:]))";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("schema.json"))
        .arg(dir.path().join("good.json"))
        .arg(dir.path().join("bad.json"))
        .output()
        .expect("python3 runs (CI installs jsonschema with schemathesis)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid invalid");

    let (status, _, problem) = fetch(&format!("{url}/v1/schemas/cn.xietong.gossip"), None).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_says_what_would_happen_and_stores_nothing() {
    let server = TestServer::start();
    let url = server.url.as_str();
    let dry = |agency: &str, body: Vec<u8>| {
        client()
            .post(format!("{url}/v1/messages?dry_run=true"))
            .bearer_auth(demo_token(agency))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = dry("ip_office:330100", example("ipo-clue-transfer.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["accepted"], true, "{outcome}");
    assert_eq!(outcome["message"]["type"], "cn.xietong.clue.transfer");
    let mut to: Vec<String> = outcome["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!("{} {} {}", r["id"].as_str().unwrap(), r["role"].as_str().unwrap(), r["rules"][0].as_str().unwrap())
        })
        .collect();
    to.sort();
    assert_eq!(to, ["procuratorate:330100 copy clue-transfer", "public_security:330100 primary clue-transfer"]);

    // A refusal is told, not given: 200 with the problem it would get.
    let r = dry("ip_office:330100", example("ipo-state-secret-message.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!((outcome["accepted"].as_bool(), outcome["error"]["code"].as_str()), (Some(false), Some("state_secret")));

    // Nothing was stored: the real post is the first, and no feed holds the dry runs.
    let receipt = accepted(url, "ip_office:330100", &example_json("ipo-clue-transfer.json")).await;
    let (_, page) =
        get(&format!("{url}/v1/feeds/procuratorate:330100/events"), Some(&demo_token("procuratorate:330100"))).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["events"][0]["event"]["id"], receipt["id"]);

    // Audited as dry runs, with the body's hash and the outcome, never the content.
    let db = server.db_path();
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT record FROM audit ORDER BY seq").unwrap();
    let records: Vec<Value> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| serde_json::from_str(&r.unwrap()).unwrap())
        .collect();
    let dry_runs: Vec<&Value> = records.iter().filter(|r| r["action"] == "dry_run").collect();
    assert_eq!(dry_runs.len(), 2, "{records:#?}");
    assert_eq!((dry_runs[0]["code"].as_str(), dry_runs[1]["code"].as_str()), (Some("accepted"), Some("state_secret")));
    assert!(dry_runs.iter().all(|r| r["actor"] == "ip_office:330100" && r["body_sha256"].is_string()));
    assert!(!records.iter().any(|r| r.to_string().contains("杭州")), "no content in the audit log");
}

#[tokio::test(flavor = "multi_thread")]
async fn me_tells_each_caller_who_it_is() {
    let server = TestServer::start();
    let me = |token: &str| fetch_owned(format!("{}/v1/me", server.url), token.to_string());
    let (status, _, agency) = me("demo-procuratorate-330100").await;
    assert_eq!(status, 200);
    assert_eq!(agency["id"], "procuratorate:330100");
    assert_eq!(
        (agency["kind"].as_str(), agency["level"].as_str(), agency["division"].as_str()),
        (Some("procuratorate"), Some("prefecture"), Some("330100"))
    );
    assert_eq!(agency["regions"], json!(["yangtze_delta"]));
    assert_eq!(
        (agency["format"].as_str(), agency["feed"].as_str()),
        (Some("procuratorate-case"), Some("procuratorate:330100"))
    );
    assert_eq!(agency["credentials"], json!(["token"]));
    let may: Vec<&str> = agency["may_send"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(may.contains(&"cn.xietong.opinion.request") && may.contains(&"cn.xietong.opinion.reply"));
    assert!(!may.contains(&"cn.xietong.clue.transfer") && !may.contains(&"cn.xietong.evaluation.notice"));

    let (_, _, hub) = me("demo-hub-yangtze_delta").await;
    assert_eq!((hub["kind"].as_str(), hub["feed"].as_str()), (Some("hub"), Some("hub:yangtze_delta")));
    assert_eq!(hub["may_send"], json!(["cn.xietong.bulletin", "cn.xietong.hub.notice"]));
    let (_, _, operator) = me(OPERATOR).await;
    assert_eq!((operator["kind"].as_str(), operator["may_send"].as_array().map(Vec::len)), (Some("operator"), Some(0)));
}

async fn fetch_owned(url: String, token: String) -> (u16, String, Value) {
    fetch(&url, Some(&token)).await
}

/// A client generated from the document (openapi-python-client, as docs/api.md shows) posts a
/// shared example and reads a feed.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_generated_from_the_document_posts_and_reads() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let generated = std::process::Command::new("openapi-python-client")
        .args(["generate", "--meta", "none", "--output-path", "xietong_client", "--path"])
        .arg(root().join("docs/openapi.json"))
        .current_dir(dir.path())
        .output()
        .expect("openapi-python-client runs (.ci/run installs it)");
    let said = String::from_utf8_lossy(&generated.stdout).to_string() + &String::from_utf8_lossy(&generated.stderr);
    assert!(generated.status.success(), "{said}");
    assert!(!said.contains("WARNING"), "the generator understood all of the document: {said}");
    let run = std::process::Command::new("python3")
        .arg(root().join("tests/it/generated_client.py"))
        .arg(&server.url)
        .arg(examples_dir().join("ipo-clue-transfer.json"))
        .env("PYTHONPATH", dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{out}{}", String::from_utf8_lossy(&run.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "me ip_office:330100");
    assert!(lines[1].ends_with("procuratorate:330100:copy public_security:330100:primary"), "{out}");
    assert!(lines[2].ends_with("cn.xietong.clue.transfer 杭市监知执〔2026〕123号"), "{out}");
    assert_eq!(lines[3], "refused 403 forbidden");
}

/// What schemathesis found (.ci/contract-check), kept as regressions: a cursor subscription's
/// page took any `limit` (0 was read as 1) and ignored a `wait` it could not read, where the
/// feed's page refuses both.
#[tokio::test(flavor = "multi_thread")]
async fn a_subscriptions_page_checks_its_parameters_as_a_feeds_page_does() {
    let server = TestServer::start();
    let token = "demo-hub-yangtze_delta";
    let (status, sub) = call(
        reqwest::Method::POST,
        &format!("{}/v1/subscriptions", server.url),
        Some(token),
        Some(json!({"cursor": true})),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    let events = format!("{}/v1/subscriptions/{}/events", server.url, sub["id"].as_str().unwrap());
    for query in ["limit=0", "limit=1001", "wait=soon", "limit=-1"] {
        let (status, media, problem) = fetch(&format!("{events}?{query}"), Some(token)).await;
        assert_eq!(
            (status, media.as_str(), problem["code"].as_str()),
            (400, "application/problem+json", Some("bad_request")),
            "{query}: {problem}"
        );
    }
    let (status, _, page) = fetch(&format!("{events}?limit=1000&wait=0"), Some(token)).await;
    assert_eq!(status, 200, "{page}");
}
