//! POST /v1/messages over real HTTP: every status the API promises, with precise errors.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

fn body_of(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_requests_get_401() {
    let server = TestServer::start();
    let url = format!("{}/v1/messages", server.url);
    let body = example("ipo-clue-transfer.json");
    let r = client().post(&url).header("content-type", "application/json").body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"xietong\"");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthenticated");
    for auth in ["Bearer wrong-token", "Basic ZGVtbzpkZW1v", "Bearer ", "demo-ip_office-330100"] {
        let r = client()
            .post(&url)
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{auth}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_naming_another_sender_gets_403() {
    let server = TestServer::start();
    // The Zhejiang provincial office's message, sent with Hangzhou's token.
    let (status, body) = post_json(&server.url, "ip_office:330100", &example("ipo-bulletin-field-secret.json")).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "sender_mismatch");
    assert!(body["message"].as_str().unwrap().contains("330000"), "{body}");
    // A procuratorate posting an IP-office message is read in its own format and fails there.
    let (status, body) = post_json(&server.url, "procuratorate:330100", &example("ipo-clue-transfer.json")).await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn media_types_other_than_json_get_415() {
    let server = TestServer::start();
    let body = example("ipo-clue-transfer.json");
    for ct in ["text/plain", "application/xml", "application/json; charset=gbk", "application/cloudevents-batch+json"] {
        let r = post_as(&server.url, "ip_office:330100", ct, body.clone()).await;
        assert_eq!(r.status(), 415, "{ct}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "unsupported_media_type");
    }
    let r = client()
        .post(format!("{}/v1/messages", server.url))
        .bearer_auth(demo_token("ip_office:330100"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "no Content-Type");
    let r = post_as(&server.url, "ip_office:330100", "Application/JSON; charset=UTF-8", body).await;
    assert_eq!(r.status(), 202, "media types are case-insensitive");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_get_413() {
    let server = TestServer::with_settings("limits:\n  max_body_bytes: 2048\n");
    let mut m = example_json("ipo-clue-transfer.json");
    m["nr"] = json!("长".repeat(1000));
    let big = body_of(&m);
    assert!(big.len() > 2048);
    let r = post_as(&server.url, "ip_office:330100", "application/json", big.clone()).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "payload_too_large");
    // Without a Content-Length (chunked), the limit holds as the body streams in.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.chunks(512).map(|c| Ok(c.to_vec())).collect();
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = post_as(&server.url, "ip_office:330100", "application/json", stream).await;
    assert_eq!(r.status(), 413);
    let (status, _) = post_json(&server.url, "ip_office:330100", &example("ipo-filing-supervision.json")).await;
    assert_eq!(status, 202, "a body under the limit passes");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_gets_400_with_its_position() {
    let server = TestServer::start();
    let (status, body) =
        post_json(&server.url, "ip_office:330100", b"{\n  \"xxid\": \"A\",\n  \"xxlx\" \"XSYS\"\n}").await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "malformed_json");
    assert_eq!((body["line"].as_u64(), body["column"].as_u64()), (Some(3), Some(10)), "{body}");
    let (status, body) = post_json(&server.url, "ip_office:330100", b"{\"xxid\": \"\xff\xfe\"}").await;
    assert_eq!(status, 400, "invalid UTF-8: {body}");
    let (status, _) = post_json(&server.url, "ip_office:330100", b"").await;
    assert_eq!(status, 400);
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let (status, _) = post_json(&server.url, "ip_office:330100", deep.as_bytes()).await;
    assert_eq!(status, 400, "nesting beyond the parser's limit");
}

#[tokio::test(flavor = "multi_thread")]
async fn mapping_failures_get_422_naming_each_field() {
    let server = TestServer::start();
    let mut m = example_json("ipo-clue-transfer.json");
    m["fssj"] = json!("2026/11/20 14:03");
    m["aj"]["sjje"] = json!("1,25,000");
    m["aj"]["ajlb"] = json!("著作权侵权");
    m["dsr"][1]["lx"] = json!("法人");
    let (status, body) = post_json(&server.url, "ip_office:330100", &body_of(&m)).await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "mapping_failed");
    let details: Vec<(&str, &str)> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["pointer"].as_str().unwrap(), d["reason"].as_str().unwrap()))
        .collect();
    let pointers: Vec<&str> = details.iter().map(|d| d.0).collect();
    assert_eq!(pointers, ["/fssj", "/aj/ajlb", "/aj/sjje", "/dsr/1/lx"], "{body:#}");
    assert!(details[0].1.contains("YYYY-MM-DD HH:MM:SS"), "the reason says what was expected: {body:#}");
    assert!(details[1].1.contains("商标侵权"), "the reason lists the known values: {body:#}");
    assert!(!body.to_string().contains("著作权侵权"), "the refused value is not echoed");
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_types_and_markings_get_their_own_codes() {
    let server = TestServer::start();
    let mut m = example_json("ipo-clue-transfer.json");
    m.as_object_mut().unwrap().remove("dsr");
    m.as_object_mut().unwrap().remove("zdmj"); // it marks a party
    let (status, body) = post_json(&server.url, "ip_office:330100", &body_of(&m)).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("schema_violation")), "{body}");
    assert_eq!(body["details"][0]["pointer"], "/data/parties");

    let mut m = example_json("ipo-clue-transfer.json");
    m["xxlx"] = json!("XSYS2");
    let (status, body) = post_json(&server.url, "ip_office:330100", &body_of(&m)).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("unknown_message_type")), "{body}");
    assert_eq!(body["details"][0]["pointer"], "/xxlx");

    let mut m = example_json("ipo-clue-transfer.json");
    m["zdmj"] = json!({"dsr/1/sfz": "秘密"});
    let (status, body) = post_json(&server.url, "ip_office:330100", &body_of(&m)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_marking")),
        "a marking that misses its field never lets it through: {body}"
    );

    // A required field marked as a state secret: removed, so the message cannot go.
    let mut m = example_json("ipo-clue-transfer.json");
    m["zdmj"] = json!({"aj/ajbh": "机密"});
    let (status, body) = post_json(&server.url, "ip_office:330100", &body_of(&m)).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("schema_violation")), "{body}");
    assert_eq!(body["details"][0]["pointer"], "/data/case/number");
    assert!(body["details"][0]["reason"].as_str().unwrap().contains("state secret"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn markings_in_free_text_anywhere_refuse_the_message() {
    let server = TestServer::start();
    let mut m = example_json("ipo-clue-transfer.json");
    m["dsr"][2]["mc"] = json!("某公司（绝密★长期）");
    let (status, body) = post_json(&server.url, "ip_office:330100", &body_of(&m)).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("state_secret_marking")));
    assert_eq!(body["details"][0]["pointer"], "/dsr/2/mc");
    // ... unless the field carrying it is itself marked as a state secret and removed.
    m["zdmj"] = json!({"dsr/2/mc": "绝密"});
    let (status, body) = post_json(&server.url, "ip_office:330100", &body_of(&m)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["stripped"], json!(["/data/parties/2/name"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn canonical_cloudevents_are_accepted_as_such() {
    let server = TestServer::start();
    let config = root().join("config");
    let file = examples_dir().join("prc-expert-request.json");
    let (_, stdout, _) = run_cli(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--as",
        "procuratorate:310000",
        file.to_str().unwrap(),
    ]);
    let mut event: Value = serde_json::from_str::<Value>(&stdout).unwrap()["message"].clone();
    event["id"] = json!("sender-chosen-id-1");
    let ce = "application/cloudevents+json";
    let r = post_as(&server.url, "procuratorate:310000", ce, body_of(&event)).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["type"], "cn.xietong.expert.request");
    assert_ne!(body["id"], "sender-chosen-id-1", "the gateway assigns its own id");

    let r = post_as(&server.url, "procuratorate:330100", ce, body_of(&event)).await;
    assert_eq!(r.status(), 403, "the event's sender attribute names another agency");

    let mut old = event.clone();
    old["id"] = json!("sender-chosen-id-2");
    old["specversion"] = json!("0.3");
    let r = post_as(&server.url, "procuratorate:310000", ce, body_of(&old)).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["details"][0]["pointer"], "/specversion");

    let mut odd = event.clone();
    odd["id"] = json!("sender-chosen-id-3");
    odd["data"]["nickname"] = json!("x");
    let r = post_as(&server.url, "procuratorate:310000", ce, body_of(&odd)).await;
    assert_eq!(r.status(), 422, "canonical data must fit the schema exactly");
}

#[tokio::test(flavor = "multi_thread")]
async fn agencies_over_their_rate_get_429_with_retry_after() {
    let config = ConfigDir::new("rate_limit:\n  per_second: 1\n  burst: 2\n");
    let server = TestServer::with_config(config);
    let mut statuses = Vec::new();
    for i in 0..4 {
        let mut m = example_json("ipo-filing-supervision.json");
        m["xxid"] = json!(format!("RL-{i}"));
        let r = post_as(&server.url, "ip_office:330100", "application/json", body_of(&m)).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=2).contains(&retry), "Retry-After {retry}");
            assert_eq!(r.json::<Value>().await.unwrap()["code"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..2], [202, 202]);
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    // Limits are per agency: another agency is not slowed down.
    let (status, _) =
        post_json(&server.url, "procuratorate:330100", &example("prc-non-prosecution-transfer.json")).await;
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_metrics_and_unknown_routes() {
    let server = TestServer::start();
    let c = client();
    let r = c.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(format!("{}/readyz", server.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    post_json(&server.url, "ip_office:330100", &example("ipo-clue-transfer.json")).await;
    post_json(&server.url, "ip_office:330100", &example("ipo-marking-in-text.json")).await;
    let text = c.get(format!("{}/metrics", server.url)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"xietong_messages_total{outcome="accepted",code="ok"} 1"#), "{text}");
    assert!(text.contains(r#"xietong_messages_total{outcome="refused",code="state_secret_marking"} 1"#), "{text}");
    assert!(text.contains("xietong_ingest_seconds_bucket"), "{text}");
    let r = c.get(format!("{}/nothing-here", server.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_found");
    let r = c.get(format!("{}/v1/messages", server.url)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let r = c.post(format!("{}/v1/messages", server.url)).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Tests that run on the embedded store only (`.config/nextest.toml`): they open its SQLite file to
/// look inside it or to tamper with it, or they do not depend on the store at all.
mod embedded {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_resent_message_is_one_message_and_a_reused_id_is_a_conflict() {
        let server = TestServer::start();
        let original = example("prc-opinion-request.json");
        let (s1, first) = post_json(&server.url, "procuratorate:440300", &original).await;
        assert_eq!(s1, 202);
        // Whitespace and key order do not make a different message.
        let reformatted = serde_json::to_vec_pretty(&example_json("prc-opinion-request.json")).unwrap();
        let r = post_as(&server.url, "procuratorate:440300", "application/json", reformatted).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["idempotent-replayed"], "true");
        assert_eq!(r.json::<Value>().await.unwrap(), first);

        let mut changed = example_json("prc-opinion-request.json");
        changed["body"]["content"] = json!("改过的内容");
        let (status, body) = post_json(&server.url, "procuratorate:440300", &body_of(&changed)).await;
        assert_eq!(status, 409);
        assert_eq!(body["code"], "message_id_conflict");
        assert!(body["message"].as_str().unwrap().contains(first["id"].as_str().unwrap()));

        // Another sender may use the same native id.
        let mut other = example_json("prc-opinion-request.json");
        other["header"]["sender"]["orgCode"] = json!("330100");
        let (status, _) = post_json(&server.url, "procuratorate:330100", &body_of(&other)).await;
        assert_eq!(status, 202);

        let conn = rusqlite::Connection::open(server.db_path()).unwrap();
        // (The example's replyBy day may have passed: the gateway's own overdue notices are not counted.)
        let n: i64 =
            conn.query_row("SELECT count(*) FROM messages WHERE sender != 'gateway'", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_store_that_cannot_commit_gets_503_and_nothing_is_half_written() {
        let server = TestServer::with_settings("store:\n  busy_timeout_ms: 200\n");
        let (status, _) = post_json(&server.url, "ip_office:330100", &example("ipo-clue-transfer.json")).await;
        assert_eq!(status, 202);

        // Another process takes the database's write lock.
        let blocker = rusqlite::Connection::open(server.db_path()).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let r =
            post_as(&server.url, "ip_office:330100", "application/json", example("ipo-filing-supervision.json")).await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "store_unavailable");
        let ready = client().get(format!("{}/readyz", server.url)).send().await.unwrap();
        assert_eq!(ready.status(), 503);

        blocker.execute_batch("ROLLBACK").unwrap();
        let (status, _) = post_json(&server.url, "ip_office:330100", &example("ipo-filing-supervision.json")).await;
        assert_eq!(status, 202, "the retry succeeds: the failed attempt left nothing behind");
        let n: i64 = blocker.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn refusals_leave_an_audit_record_and_no_content() {
        let server = TestServer::start();
        let mut m = example_json("ipo-state-secret-message.json");
        m["nr"] = json!("唯一的机密正文QX7");
        let body = body_of(&m);
        let (status, _) = post_json(&server.url, "ip_office:330000", &body).await;
        assert_eq!(status, 422);
        let conn = rusqlite::Connection::open(server.db_path()).unwrap();
        let (sender, hash, code): (String, String, String) = conn
            .query_row(
                "SELECT record ->> 'actor', record ->> 'body_sha256', record ->> 'code' FROM audit WHERE record ->> 'action' = 'refused'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((sender.as_str(), code.as_str()), ("ip_office:330000", "state_secret"));
        assert_eq!(hash, xietong::pipeline::body_sha256(&body));
        let messages: i64 = conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
        assert_eq!(messages, 0);
        drop(conn);
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(server.data.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        assert!(!String::from_utf8_lossy(&bytes).contains("唯一的机密正文QX7"));
    }
}
