//! Pull delivery over real HTTP: feeds read by their owner only (public open), pages that follow
//! the cursor, long-polling, Server-Sent Events resumed with Last-Event-ID (no gap, no
//! duplicate, heartbeats), retention with 410, and cursor subscriptions with acknowledgements.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

async fn post_bulletins(url: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let mut ids = Vec::new();
    for n in range {
        let (status, r) = post_json(url, "procuratorate:330000", &bulletin(&format!("FEED-{n}"))).await;
        assert_eq!(status, 202);
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    ids
}

const INBOX: &str = "ip_office:330000";
const TOKEN: &str = "demo-ip_office-330000";

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_is_read_by_its_owner_only_and_public_is_open() {
    let server = TestServer::start();
    let (_, clue) = post_json(&server.url, "ip_office:320500", &example("ipo-clue-transfer-cross-region.json")).await;
    post_json(&server.url, "ip_office:330000", &example("ipo-typical-case.json")).await;

    let (status, page) = get(&format!("{}/v1/feeds/procuratorate:320500/events", server.url), None).await;
    assert_eq!((status, page["code"].as_str()), (401, Some("unauthenticated")));
    let (status, page) =
        get(&format!("{}/v1/feeds/procuratorate:320500/events", server.url), Some("demo-ip_office-320500")).await;
    assert_eq!(
        (status, page["code"].as_str()),
        (403, Some("forbidden")),
        "the sender does not read the recipient's feed"
    );
    let (status, page) =
        get(&format!("{}/v1/feeds/procuratorate:320500/events", server.url), Some("demo-procuratorate-320500")).await;
    assert_eq!(status, 401, "an agency that is not configured has no token");
    let _ = page;

    // The hub reads its copy, with its own token.
    let (status, page) =
        get(&format!("{}/v1/feeds/hub:yangtze_delta/events", server.url), Some("demo-hub-yangtze_delta")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["events"][0]["event"]["id"], clue["id"]);
    assert_eq!(page["events"][0]["type"], "cn.xietong.clue.transfer");
    let (status, _) =
        get(&format!("{}/v1/feeds/hub:yangtze_delta/events", server.url), Some("demo-hub-west_strait")).await;
    assert_eq!(status, 403);

    // The public feed needs no token and holds the anonymised copy.
    let (status, page) = get(&format!("{}/v1/feeds/public/events", server.url), None).await;
    assert_eq!(status, 200);
    assert_eq!(page["events"][0]["event"]["data"]["parties"][0]["name"], "王某");

    let (status, _) = get(&format!("{}/v1/feeds/not a feed/events", server.url), None).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_follow_the_cursor_and_a_long_poll_waits_for_the_next_message() {
    let server = TestServer::start();
    let ids = post_bulletins(&server.url, 0..5).await;
    let feed = format!("{}/v1/feeds/{INBOX}/events", server.url);
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = get(&format!("{feed}?limit=2&after={after}"), Some(TOKEN)).await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            assert_eq!(page["next"].as_str().unwrap(), after, "an empty page keeps the cursor");
            break;
        }
        assert!(events.len() <= 2);
        seen.extend(events.iter().map(|e| e["event"]["id"].as_str().unwrap().to_string()));
        after = page["next"].as_str().unwrap().to_string();
    }
    assert_eq!(seen, ids, "every message once, in order");

    // A long-poll returns when the next message arrives.
    let poll = tokio::spawn({
        let url = format!("{feed}?after={after}&wait=20");
        async move { get(&url, Some(TOKEN)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "nothing new yet: the poll waits");
    let new = post_bulletins(&server.url, 5..6).await;
    let (status, page) = poll.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        page["events"][0]["event"]["id"],
        new[0].as_str(),
        "the poll returned with the new message, not at its timeout"
    );

    for bad in ["after=x", "after=-1", "limit=0", "limit=5000"] {
        let (status, _) = get(&format!("{feed}?{bad}"), Some(TOKEN)).await;
        assert_eq!(status, 400, "{bad}");
    }
}

/// Reads SSE frames until `n` events (and counts heartbeats), from a response.
async fn read_events(
    response: &mut reqwest::Response,
    n: usize,
    heartbeats: &mut usize,
) -> Vec<(String, String, Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("the stream sends")
            .unwrap()
            .expect("open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if frame.starts_with(": heartbeat") {
                *heartbeats += 1;
                continue;
            }
            let field = |name: &str| frame.lines().find_map(|l| l.strip_prefix(name)).map(str::to_string);
            if let (Some(id), Some(event), Some(data)) = (field("id: "), field("event: "), field("data: ")) {
                events.push((id, event, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn server_sent_events_resume_from_last_event_id_with_no_gap_and_no_duplicate() {
    let server = TestServer::with_settings(&fast_delivery(""));
    let ids = post_bulletins(&server.url, 0..3).await;
    let stream = format!("{}/v1/feeds/{INBOX}/stream", server.url);
    let mut heartbeats = 0;

    let mut first = client().get(&stream).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    let got = read_events(&mut first, 2, &mut heartbeats).await;
    assert_eq!(got.iter().map(|e| e.2["id"].as_str().unwrap()).collect::<Vec<_>>(), &ids[..2]);
    assert_eq!(got[0].1, "cn.xietong.bulletin");
    let last_id = got[1].0.clone();
    drop(first); // the client goes away mid-stream

    let more = post_bulletins(&server.url, 3..5).await;
    let mut second = client().get(&stream).bearer_auth(TOKEN).header("last-event-id", &last_id).send().await.unwrap();
    let rest = read_events(&mut second, 3, &mut heartbeats).await;
    let all: Vec<String> = got.iter().chain(&rest).map(|e| e.2["id"].as_str().unwrap().to_string()).collect();
    let expected: Vec<String> = ids.iter().chain(&more).cloned().collect();
    assert_eq!(all, expected, "resumed after {last_id}: no gap, no duplicate");
    let cursors: Vec<i64> = got.iter().chain(&rest).map(|e| e.0.parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]));

    // Idle, the stream carries heartbeats; a new message still arrives on it.
    let mut buffer = String::new();
    while !buffer.contains(": heartbeat") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), second.chunk()).await.unwrap().unwrap().unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
    let late = post_bulletins(&server.url, 5..6).await;
    let next = read_events(&mut second, 1, &mut heartbeats).await;
    assert_eq!(next[0].2["id"], late[0].as_str());

    let r = client().get(&stream).bearer_auth("demo-ip_office-330100").send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_subscription_filters_and_remembers_what_was_acknowledged() {
    use reqwest::Method;
    let server = TestServer::start();
    let hub = "demo-hub-yangtze_delta";
    let subs = format!("{}/v1/subscriptions", server.url);
    let (status, sub) = call(
        Method::POST,
        &subs,
        Some(hub),
        Some(json!({"id": "yrd-clues", "cursor": true, "filter": {"types": ["cn.xietong.clue.transfer"]}})),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    assert_eq!(sub["owner"], "hub:yangtze_delta");
    assert_eq!(sub["cursor"], "0", "a new subscription starts at the head of the feed");

    // A cross-region clue (taken) and a related-case notice across 上海 and 浙江 (filtered out).
    let (_, clue) = post_json(&server.url, "ip_office:320500", &example("ipo-clue-transfer-cross-region.json")).await;
    let notice = json!({"specversion": "1.0", "id": "N-1", "type": "cn.xietong.related_case.notice", "time": "2026-11-24T10:00:00+08:00",
        "data": {"sender": {"id": "ip_office:330000"}, "case": {"number": "N", "divisions": ["330106", "310115"]}, "content": "进展",
                 "redactions": [], "classifiedFields": []}});
    let r =
        post_as(&server.url, "ip_office:330000", "application/cloudevents+json", serde_json::to_vec(&notice).unwrap())
            .await;
    assert_eq!(r.status(), 202);

    let (status, page) = call(Method::GET, &format!("{subs}/yrd-clues/events"), Some(hub), None).await;
    assert_eq!(status, 200, "{page}");
    let got: Vec<&str> =
        page["events"].as_array().unwrap().iter().map(|e| e["event"]["id"].as_str().unwrap()).collect();
    assert_eq!(got, [clue["id"].as_str().unwrap()]);
    let next = page["next"].as_str().unwrap().to_string();
    let (status, acked) =
        call(Method::POST, &format!("{subs}/yrd-clues/ack"), Some(hub), Some(json!({"cursor": next}))).await;
    assert_eq!((status, acked["cursor"].as_str()), (200, Some(next.as_str())));
    let (_, page) = call(Method::GET, &format!("{subs}/yrd-clues/events"), Some(hub), None).await;
    assert!(
        page["events"].as_array().unwrap().is_empty(),
        "acknowledged: nothing left, and the notice was passed by the filter"
    );

    // Only the owner sees it; nobody subscribes to another's feed; bad specs are explained.
    let (status, _) = call(Method::GET, &format!("{subs}/yrd-clues"), Some("demo-hub-west_strait"), None).await;
    assert_eq!(status, 403, "another's subscription");
    let (status, _) = call(
        Method::POST,
        &subs,
        Some("demo-hub-west_strait"),
        Some(json!({"owner": "hub:yangtze_delta", "cursor": true})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        Method::POST,
        &subs,
        Some(hub),
        Some(json!({"cursor": true, "filter": {"types": ["cn.xietong.gossip"], "levels": ["town"]}})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["details"].as_array().unwrap().len(), 2, "{body}");
    let (status, _) = call(Method::POST, &subs, Some(hub), Some(json!({"id": "yrd-clues", "cursor": true}))).await;
    assert_eq!(status, 409, "ids are unique");
    let (status, _) =
        call(Method::POST, &format!("{subs}/yrd-clues/ack"), Some(hub), Some(json!({"cursor": "99999"}))).await;
    assert_eq!(status, 400, "no acknowledging the future");

    let (status, list) = call(Method::GET, &subs, Some(hub), None).await;
    assert_eq!((status, list["subscriptions"].as_array().unwrap().len()), (200, 1));
    let (status, _) = call(Method::DELETE, &format!("{subs}/yrd-clues"), Some(hub), None).await;
    assert_eq!(status, 204);
    let (_, list) = call(Method::GET, &subs, Some(hub), None).await;
    assert!(list["subscriptions"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_recipient_has_a_feed_with_its_own_copy() {
    let server = TestServer::start();
    let (_, r) = post_json(&server.url, "procuratorate:000000", &example("prc-major-case-supervision.json")).await;
    let ids: BTreeSet<&str> = r["recipients"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, BTreeSet::from(["hub:chengdu_chongqing", "hub:pearl_river_delta", "ip_office:000000"]));
    let (_, cnipa) =
        get(&format!("{}/v1/feeds/ip_office:000000/events", server.url), Some("demo-ip_office-000000")).await;
    let (_, hub) =
        get(&format!("{}/v1/feeds/hub:chengdu_chongqing/events", server.url), Some("demo-hub-chengdu_chongqing")).await;
    assert!(cnipa["events"][0]["event"]["data"].get("content").is_some());
    assert!(
        hub["events"][0]["event"]["data"].get("content").is_none(),
        "the hub's copy lacks what is above its clearance"
    );
    assert_eq!(cnipa["events"][0]["event"]["id"], hub["events"][0]["event"]["id"], "one message, one id");
}

/// Tests that run on the embedded store only (`.config/nextest.toml`): they open its SQLite file to
/// look inside it or to tamper with it, or they do not depend on the store at all.
mod embedded {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_cursor_older_than_the_retention_gets_410() {
        let server = TestServer::with_settings(&fast_delivery("  retention: 1s\n  purge_every: 100ms\n"));
        post_bulletins(&server.url, 0..2).await;
        let feed = format!("{}/v1/feeds/{INBOX}/events", server.url);
        let (_, page) = get(&feed, Some(TOKEN)).await;
        let first = page["events"][0]["cursor"].as_str().unwrap().to_string();
        assert_eq!(page["events"].as_array().unwrap().len(), 2);

        // Past the retention, the entries go; a reader still at the first one has missed the second.
        assert!(
            eventually(10, || {
                let conn = rusqlite::Connection::open(server.db_path()).unwrap();
                conn.query_row("SELECT count(*) FROM deliveries", [], |r| r.get::<_, i64>(0)).unwrap() == 0
            })
            .await,
            "purged"
        );
        let (status, body) = get(&format!("{feed}?after={first}"), Some(TOKEN)).await;
        assert_eq!((status, body["code"].as_str()), (410, Some("cursor_expired")), "{body}");
        assert!(body["message"].as_str().unwrap().contains("read again from the start"));
        let r = client()
            .get(format!("{}/v1/feeds/{INBOX}/stream", server.url))
            .bearer_auth(TOKEN)
            .header("last-event-id", &first)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 410, "the stream refuses it too, before it starts");

        // From the start, the reader carries on with what is retained.
        let new = post_bulletins(&server.url, 2..3).await;
        let (status, page) = get(&feed, Some(TOKEN)).await;
        assert_eq!(status, 200);
        assert_eq!(page["events"][0]["event"]["id"], new[0].as_str());
    }
}

/// At least once across a crash: a long-poll reader and an SSE reader each hold a cursor taken
/// before the gateway is killed with SIGKILL; after the restart, each resumes from its cursor and
/// gets every message accepted after it (those accepted before the kill included), with no gap
/// and no duplicate. The real binary, on either store (`Exchange`).
#[tokio::test(flavor = "multi_thread")]
async fn readers_resume_after_kill_9_with_no_gap() {
    let mut exchange = Exchange::start(ConfigDir::new(&fast_delivery("")));
    let first = post_bulletins(exchange.url(), 0..6).await;

    // The long-poll reader has read 3; the SSE reader 4.
    let (status, page) = get(&format!("{}/v1/feeds/{INBOX}/events?limit=3", exchange.url()), Some(TOKEN)).await;
    assert_eq!(status, 200, "{page}");
    let page_ids: Vec<&str> =
        page["events"].as_array().unwrap().iter().map(|e| e["event"]["id"].as_str().unwrap()).collect();
    assert_eq!(page_ids, &first[..3]);
    let poll_cursor = page["next"].as_str().unwrap().to_string();
    let stream = |url: &str| format!("{url}/v1/feeds/{INBOX}/stream");
    let mut sse = client().get(stream(exchange.url())).bearer_auth(TOKEN).send().await.unwrap();
    let mut heartbeats = 0;
    let got = read_events(&mut sse, 4, &mut heartbeats).await;
    assert_eq!(got.iter().map(|e| e.2["id"].as_str().unwrap()).collect::<Vec<_>>(), &first[..4]);
    let sse_cursor = got[3].0.clone();

    // More is accepted; then the gateway is killed, the SSE stream with it.
    let second = post_bulletins(exchange.url(), 6..10).await;
    exchange.kill();
    drop(sse);
    exchange.restart();
    let third = post_bulletins(exchange.url(), 10..12).await;
    let accepted: Vec<String> = first.iter().chain(&second).chain(&third).cloned().collect();

    let url = exchange.url();
    let (status, page) =
        get(&format!("{url}/v1/feeds/{INBOX}/events?after={poll_cursor}&limit=100"), Some(TOKEN)).await;
    assert_eq!(status, 200, "{page}");
    let resumed: Vec<&str> =
        page["events"].as_array().unwrap().iter().map(|e| e["event"]["id"].as_str().unwrap()).collect();
    assert_eq!(resumed, &accepted[3..], "the long-poll reader resumes with no gap and no duplicate");

    let mut sse =
        client().get(stream(url)).bearer_auth(TOKEN).header("last-event-id", &sse_cursor).send().await.unwrap();
    assert_eq!(sse.status(), 200);
    let rest = read_events(&mut sse, accepted.len() - 4, &mut heartbeats).await;
    let rest: Vec<&str> = rest.iter().map(|e| e.2["id"].as_str().unwrap()).collect();
    assert_eq!(rest, &accepted[4..], "the SSE reader resumes from Last-Event-ID with no gap and no duplicate");
}
