//! The subscriptions API over HTTP against the real binary (and on Redis with
//! `XIETONG_TEST_STORE=redis`): what a caller may name, changing a subscription, and where a
//! new one starts reading.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

/// The owner of the subscriptions here, ip_office:330000 (the Zhejiang procuratorate's
/// bulletins reach it).
const TOKEN: &str = "demo-ip_office-330000";

fn exchange() -> Exchange {
    Exchange::start(ConfigDir::new(&fast_delivery("")))
}

fn subscriptions(gw: &Exchange) -> String {
    format!("{}/v1/subscriptions", gw.url())
}

/// Defect 4 of issue 15: the API took file paths on the gateway's host for a webhook's client
/// certificate and CA, which told a caller which files exist and could make the gateway present
/// another party's certificate. It refuses them (422, each field named) and takes PEM text.
#[tokio::test(flavor = "multi_thread")]
async fn the_api_takes_certificates_as_pem_and_refuses_file_paths() {
    let gw = exchange();
    let pki = Pki::new();
    let receiver = Receiver::start_tls(pki.server.clone(), |_, _| Answer::Status(200));
    for webhook in [
        json!({"url": receiver.url, "ca": pki.ca}),
        json!({"url": receiver.url, "client_certificate": {"cert": "/etc/passwd", "key": pki.client_key}}),
    ] {
        let (status, body) =
            call(Method::POST, &subscriptions(&gw), Some(TOKEN), Some(json!({"webhook": webhook}))).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("file_path_refused")), "{body}");
        let pointers: Vec<&str> =
            body["details"].as_array().unwrap().iter().map(|d| d["pointer"].as_str().unwrap()).collect();
        assert!(!pointers.is_empty() && pointers.iter().all(|p| p.starts_with("/webhook/")), "{body}");
        assert!(!body.to_string().contains("passwd"), "the answer does not echo the path: {body}");
    }
    let (_, list) = get(&subscriptions(&gw), Some(TOKEN)).await;
    assert_eq!(list["subscriptions"], json!([]), "nothing was created");

    let pem = |path: &std::path::Path| std::fs::read_to_string(path).unwrap();
    let webhook = json!({
        "url": receiver.url,
        "ca_pem": pem(&pki.ca),
        "client_certificate": {"cert_pem": pem(&pki.client_cert), "key_pem": pem(&pki.client_key)},
    });
    let (status, created) =
        call(Method::POST, &subscriptions(&gw), Some(TOKEN), Some(json!({"id": "mtls", "webhook": webhook}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["webhook"]["client_certificate"].as_bool(), created["webhook"]["ca"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(!created.to_string().contains("PRIVATE KEY"), "the key is never shown: {created}");

    let (status, _) = post_json(gw.url(), "procuratorate:330000", &bulletin("PEM-1")).await;
    assert_eq!(status, 202);
    assert!(eventually(10, || receiver.delivered().len() == 1).await, "delivered over mutual TLS with the PEM given");
    let (_, read) = get(&format!("{}/mtls", subscriptions(&gw)), Some(TOKEN)).await;
    assert!(!read.to_string().contains("PRIVATE KEY"), "{read}");
}

/// A gateway whose operators' feed also gets a copy of clue transfers, opinion requests,
/// bulletins and major-case supervision: one feed with every kind of entry to filter.
fn watched() -> Exchange {
    let config = ConfigDir::new(&fast_delivery(""));
    let mut rules = std::fs::read_to_string(config.path().join("rules.yaml")).unwrap();
    rules.push_str(
        "\n  - name: watch\n    types: [cn.xietong.clue.transfer, cn.xietong.opinion.request, cn.xietong.bulletin, cn.xietong.major_case.supervision]\n    copy: [ { feed: operators } ]\n",
    );
    config.replace_rules(&rules);
    Exchange::start(config)
}

/// Posts the four messages of [`watched`]: a clue transfer of 杭州 (a prefecture; a case in
/// Zhejiang, 长三角), an opinion request of 深圳 (a prefecture; a case in 深圳, 珠三角), a bulletin
/// of Zhejiang's procuratorate (a province; no case) and the SPP's major case (national; 成渝).
async fn post_four(gw: &Exchange) -> [String; 4] {
    let mut ids = Vec::new();
    for (agency, body) in [
        ("ip_office:330100", example("ipo-clue-transfer.json")),
        ("procuratorate:440300", example("prc-opinion-request.json")),
        ("procuratorate:330000", bulletin("FILTER-1")),
        ("procuratorate:000000", example("prc-major-case-supervision.json")),
    ] {
        let (status, receipt) = post_json(gw.url(), agency, &body).await;
        assert_eq!(status, 202, "{agency}: {receipt}");
        ids.push(receipt["id"].as_str().unwrap().to_string());
    }
    ids.try_into().unwrap()
}

/// The ids of the operators' feed's page for `query`.
async fn page_ids(gw: &Exchange, query: &str) -> Vec<String> {
    let (status, page) = get(&format!("{}/v1/feeds/operators/events?{query}", gw.url()), Some(OPERATOR)).await;
    assert_eq!(status, 200, "{query}: {page}");
    page["events"].as_array().unwrap().iter().map(|e| e["event"]["id"].as_str().unwrap().to_string()).collect()
}

/// The ids the operators' feed's stream sends for `query` within 700 ms.
async fn stream_ids(gw: &Exchange, query: &str) -> Vec<String> {
    let url = format!("{}/v1/feeds/operators/stream?{query}", gw.url());
    let mut r = client().get(url).bearer_auth(OPERATOR).send().await.unwrap();
    assert_eq!(r.status(), 200, "{query}");
    let mut text = String::new();
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(700);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(until, r.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<serde_json::Value>(d).unwrap()["id"].as_str().unwrap().to_string())
        .collect()
}

/// Feeds filter as subscriptions do (issue 15): `types`, `divisions`, `regions` and `levels`
/// on pages and on streams, each alone and together; a filter that cannot hold is refused.
#[tokio::test(flavor = "multi_thread")]
async fn feed_pages_and_streams_filter_by_type_division_region_and_level() {
    let gw = watched();
    let [clue, opinion, bulletin, major] = post_four(&gw).await;
    assert_eq!(page_ids(&gw, "limit=100").await.len(), 4);
    let cases = [
        ("types=cn.xietong.bulletin", vec![bulletin.clone()]),
        ("divisions=4403", vec![opinion.clone()]),
        ("regions=yangtze_delta", vec![clue.clone()]),
        ("levels=national", vec![major.clone()]),
        (
            "types=cn.xietong.opinion.request,cn.xietong.clue.transfer&levels=prefecture",
            vec![clue.clone(), opinion.clone()],
        ),
        ("regions=chengdu_chongqing&divisions=33", vec![]),
    ];
    for (query, expected) in &cases {
        assert_eq!(&page_ids(&gw, query).await, expected, "page ?{query}");
        assert_eq!(&stream_ids(&gw, query).await, expected, "stream ?{query}");
    }
    // A filtered page's `next` passes what the filter left out, so the reader moves on.
    let feed = format!("{}/v1/feeds/operators/events", gw.url());
    let (_, all) = get(&feed, Some(OPERATOR)).await;
    let (_, page) = get(&format!("{feed}?levels=province"), Some(OPERATOR)).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["next"], all["next"], "past the national entry after it: {page}");
    for bad in ["types=cn.xietong.nothing", "regions=atlantis", "levels=village", "divisions=3a"] {
        let (status, body) = get(&format!("{feed}?{bad}"), Some(OPERATOR)).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{bad}: {body}");
        let stream = format!("{}/v1/feeds/operators/stream?{bad}", gw.url());
        let r = client().get(stream).bearer_auth(OPERATOR).send().await.unwrap();
        assert_eq!(r.status(), 400, "stream ?{bad}");
    }
}

/// A subscription starts where its owner says (issue 15): from now (the default), from the
/// oldest entry kept, or after a cursor, so a hub that joins late backfills.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_subscription_starts_now_from_the_oldest_or_after_a_cursor() {
    let gw = exchange();
    for n in 1..=3 {
        let (status, _) = post_json(gw.url(), "procuratorate:330000", &bulletin(&format!("FROM-{n}"))).await;
        assert_eq!(status, 202);
    }
    let (_, inbox) = get(&format!("{}/v1/feeds/ip_office:330000/events", gw.url()), Some(TOKEN)).await;
    let cursors: Vec<String> =
        inbox["events"].as_array().unwrap().iter().map(|e| e["cursor"].as_str().unwrap().to_string()).collect();
    let events_of = |id: &'static str| {
        let url = format!("{}/{id}/events", subscriptions(&gw));
        async move {
            let (status, page) = get(&url, Some(TOKEN)).await;
            assert_eq!(status, 200, "{page}");
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["cursor"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    for (id, from, expected) in [
        ("now", json!(null), vec![]),
        ("oldest", json!("oldest"), cursors.clone()),
        ("after", json!(cursors[1]), vec![cursors[2].clone()]),
    ] {
        let (status, body) =
            call(Method::POST, &subscriptions(&gw), Some(TOKEN), Some(json!({"id": id, "cursor": true, "from": from})))
                .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(events_of(id).await, expected, "from {from}");
    }
    for bad in [json!("yesterday"), json!("999999")] {
        let (status, body) =
            call(Method::POST, &subscriptions(&gw), Some(TOKEN), Some(json!({"cursor": true, "from": bad}))).await;
        assert_eq!(status, 400, "from {bad}: {body}");
    }
}

/// `PATCH /v1/subscriptions/{id}` changes a filter, a webhook's URL and limits, and keeps the
/// cursor: nothing acknowledged comes again, nothing after it is skipped (issue 15).
#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_is_changed_without_losing_its_cursor() {
    let gw = exchange();
    let url = |id: &str| format!("{}/{id}", subscriptions(&gw));
    // A cursor subscription: two bulletins, the first acknowledged, then the filter changes.
    let (status, _) =
        call(Method::POST, &subscriptions(&gw), Some(TOKEN), Some(json!({"id": "pull", "cursor": true}))).await;
    assert_eq!(status, 201);
    for n in 1..=2 {
        post_json(gw.url(), "procuratorate:330000", &bulletin(&format!("PATCH-{n}"))).await;
    }
    let (_, page) = get(&format!("{}/events", url("pull")), Some(TOKEN)).await;
    let first = page["events"][0]["cursor"].clone();
    let (status, _) =
        call(Method::POST, &format!("{}/ack", url("pull")), Some(TOKEN), Some(json!({"cursor": first}))).await;
    assert_eq!(status, 200);
    let (status, changed) = call(
        Method::PATCH,
        &url("pull"),
        Some(TOKEN),
        Some(json!({"filter": {"types": ["cn.xietong.bulletin", "cn.xietong.related_case.notice"]}})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["filter"]["types"], json!(["cn.xietong.bulletin", "cn.xietong.related_case.notice"]));
    assert_eq!(changed["cursor"], first, "the cursor stays");
    let (_, page) = get(&format!("{}/events", url("pull")), Some(TOKEN)).await;
    let got: Vec<&str> =
        page["events"].as_array().unwrap().iter().map(|e| e["event"]["nativeid"].as_str().unwrap()).collect();
    assert_eq!(got, ["PATCH-2"], "after the acknowledged one, nothing skipped: {page}");

    // A webhook: its URL and limits change; what comes after goes to the new endpoint.
    let (old, new) = (Receiver::start(|_, _| Answer::Status(200)), Receiver::start(|_, _| Answer::Status(200)));
    let (status, _) =
        call(Method::POST, &subscriptions(&gw), Some(TOKEN), Some(json!({"id": "push", "webhook": {"url": old.url}})))
            .await;
    assert_eq!(status, 201);
    post_json(gw.url(), "procuratorate:330000", &bulletin("PATCH-3")).await;
    assert!(eventually(10, || old.delivered().len() == 1).await);
    let change = json!({"webhook": {"url": new.url, "concurrency": 2, "rate_per_second": 50}});
    let (status, changed) = call(Method::PATCH, &url("push"), Some(TOKEN), Some(change)).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["webhook"]["url"].as_str(), changed["webhook"]["concurrency"].as_u64()),
        (Some(new.url.as_str()), Some(2))
    );
    post_json(gw.url(), "procuratorate:330000", &bulletin("PATCH-4")).await;
    assert!(eventually(10, || new.delivered().len() == 1).await, "the new endpoint gets what came after");
    assert_eq!(new.delivered()[0].json()["nativeid"], "PATCH-4");
    assert_eq!(old.delivered().len(), 1, "the old one nothing more");

    // What may not change, or is not valid, is refused.
    for (body, status) in [
        (json!({"webhook": {"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}}), 400),
        (json!({"filter": {"regions": ["atlantis"]}}), 400),
        (json!({"webhook": {"url": "ftp://example.com"}}), 400),
    ] {
        let (got, answer) = call(Method::PATCH, &url("push"), Some(TOKEN), Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    let (status, _) = call(Method::PATCH, &url("pull"), Some(TOKEN), Some(json!({"webhook": {"url": new.url}}))).await;
    assert_eq!(status, 409, "a cursor subscription has no webhook");
    let (status, _) =
        call(Method::PATCH, &url("push"), Some("demo-ip_office-330100"), Some(json!({"filter": {}}))).await;
    assert_eq!(status, 403, "another's subscription is refused");
}
