//! Only a feed's owner reads it (docs/security.md): every route of the route table that names a
//! feed or a subscription, called by its owner, another agency, a hub, an operator and nobody.
//! The cases are generated from `routes::TABLE`: a route this file does not classify fails the
//! test, so a new route cannot skip the check.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const AGENCY: &str = "ip_office:330100";
const OTHER: &str = "procuratorate:330100";
const HUB: &str = "hub:yangtze_delta";

/// What guards a route.
#[derive(Debug, PartialEq)]
enum Guard {
    /// Anyone, no credentials.
    Open,
    /// Any caller with credentials.
    Caller,
    /// An agency or hub posting as itself (tests/it/access.rs).
    Sender,
    /// Operators only.
    Operators,
    /// The owner of the feed in the path.
    Feed,
    /// The owner of the subscription in the path.
    Subscription,
    /// The caller's own subscriptions.
    OwnSubscriptions,
}

fn guard(method: &str, path: &str) -> Guard {
    match path {
        "/healthz"
        | "/readyz"
        | "/metrics"
        | "/v1/openapi.json"
        | "/v1/schemas"
        | "/v1/schemas/{type}"
        | "/v1/schemas/{type}/{version}" => Guard::Open,
        "/v1/me" | "/v1/agencies/{id}/liaison" => Guard::Caller,
        "/v1/messages" => Guard::Sender,
        "/v1/feeds/{feed}/events" | "/v1/feeds/{feed}/stream" => Guard::Feed,
        "/v1/subscriptions" => Guard::OwnSubscriptions,
        p if p.starts_with("/v1/subscriptions/{id}") => Guard::Subscription,
        p if p.starts_with("/v1/admin/") => Guard::Operators,
        _ => panic!("{method} {path}: say in tests/it/owners.rs who may call this route"),
    }
}

/// The callers, by name and token (none: no credentials).
fn callers() -> Vec<(&'static str, Option<String>)> {
    vec![
        (AGENCY, Some(demo_token(AGENCY))),
        (OTHER, Some(demo_token(OTHER))),
        (HUB, Some(demo_token(HUB))),
        ("operator", Some(OPERATOR.to_string())),
        ("nobody", None),
    ]
}

/// The status of one call; a stream answers with its headers and is dropped.
async fn status(server: &TestServer, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> u16 {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = client().request(method, format!("{}{path}", server.url));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    request.send().await.unwrap().status().as_u16()
}

/// A body the owner could send to the route (a non-owner must be refused before it is read).
fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("patch", _) => Some(json!({"filter": {}})),
        (_, p) if p.ends_with("/ack") => Some(json!({"cursor": "0"})),
        ("post", _) => Some(json!({})),
        _ => None,
    }
}

async fn subscribe(server: &TestServer, owner: &str) -> String {
    let (status, body) = call(
        Method::POST,
        &format!("{}/v1/subscriptions", server.url),
        Some(&demo_token(owner)),
        Some(json!({"cursor": true})),
    )
    .await;
    assert_eq!(status, 201, "{owner}: {body}");
    body["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_naming_a_feed_or_a_subscription_refuses_everyone_but_its_owner() {
    let server = TestServer::start();
    let subscriptions = [(AGENCY, subscribe(&server, AGENCY).await), (HUB, subscribe(&server, HUB).await)];
    let mut checked = 0;
    let mut owner_calls = Vec::new();
    for (method, path) in xietong::http::routes::TABLE {
        let owned: Vec<(&str, String)> = match guard(method, path) {
            Guard::Feed => [AGENCY, HUB].iter().map(|f| (*f, path.replace("{feed}", f))).collect(),
            Guard::Subscription => subscriptions.iter().map(|(o, id)| (*o, path.replace("{id}", id))).collect(),
            Guard::Operators => {
                let concrete = path.replace("{id}", "x").replace("{code}", "330100");
                for (who, token) in callers() {
                    let got = status(&server, method, &concrete, token.as_deref(), body_for(method, path)).await;
                    match who {
                        "operator" => assert!(got != 401 && got != 403, "{method} {concrete} as operator: {got}"),
                        "nobody" => assert_eq!(got, 401, "{method} {concrete} with no credentials"),
                        _ => assert_eq!(got, 403, "{method} {concrete} as {who}"),
                    }
                    checked += 1;
                }
                continue;
            }
            _ => continue,
        };
        for (owner, concrete) in owned {
            for (who, token) in callers() {
                if who == owner {
                    owner_calls.push((method, concrete.clone(), token));
                    continue;
                }
                let got = status(&server, method, &concrete, token.as_deref(), body_for(method, path)).await;
                let expected = if token.is_none() { 401 } else { 403 };
                assert_eq!(got, expected, "{method} {concrete} as {who} (owner {owner})");
                checked += 1;
            }
        }
    }
    // The owners last (a DELETE ends the subscription): each reaches its own.
    owner_calls.sort_by_key(|(m, _, _)| **m == "delete");
    for (method, path, token) in owner_calls {
        let got = status(&server, method, &path, token.as_deref(), body_for(method, &path)).await;
        assert!(![401, 403, 404].contains(&got), "{method} {path} as its owner: {got}");
    }
    assert!(checked > 100, "only {checked} refusals checked");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_subscription_list_and_creation_are_the_callers_own() {
    let server = TestServer::start();
    let mine = subscribe(&server, AGENCY).await;
    let hubs = subscribe(&server, HUB).await;
    let url = format!("{}/v1/subscriptions", server.url);
    for (who, own, other) in [(AGENCY, &mine, &hubs), (HUB, &hubs, &mine)] {
        let (status, list) = get(&url, Some(&demo_token(who))).await;
        assert_eq!(status, 200);
        let ids: Vec<&str> =
            list["subscriptions"].as_array().unwrap().iter().filter_map(|s| s["id"].as_str()).collect();
        assert!(ids.contains(&own.as_str()) && !ids.contains(&other.as_str()), "{who} lists {ids:?}");
    }
    // Over another's feed: an agency's, a hub's, from either side.
    for (who, feed) in [(OTHER, AGENCY), (HUB, AGENCY), (AGENCY, HUB), (AGENCY, "operators")] {
        let body = json!({"owner": feed, "cursor": true});
        let (status, answer) = call(Method::POST, &url, Some(&demo_token(who)), Some(body)).await;
        assert_eq!(status, 403, "{who} subscribing to {feed}'s feed: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_spelling_of_a_feed_reaches_another_owners() {
    let server = TestServer::start();
    // Something in the agency's feed.
    let event = canonical(
        OTHER,
        "cn.xietong.bulletin",
        "OWN-1",
        None,
        json!({"sender": {"id": OTHER}, "content": "c", "redactions": [], "classifiedFields": []}),
    );
    let (status_code, receipt) = post_canonical(&server.url, OTHER, &event).await;
    assert_eq!(status_code, 202, "{receipt}");
    inbox_until(&server.url, AGENCY, |events| !events.is_empty()).await;
    let spellings = [
        "ip_office%3A330100",
        "ip_office%253A330100",
        "IP_OFFICE:330100",
        "Ip_Office:330100",
        "ip_office:330100%2F",
        "ip_office::330100",
        "ip_office:%20330100",
        "ip_office:330100%00",
        "%20ip_office:330100",
        "ip_office:0330100",
        "ip_office%3a330100",
        "hub:yangtze_delta%2F..%2F..%2Fip_office:330100",
        "..%2Fip_office:330100",
    ];
    for spelling in spellings {
        for suffix in ["events", "stream"] {
            for (who, token) in [(OTHER, demo_token(OTHER)), (HUB, demo_token(HUB))] {
                let got = status(&server, "get", &format!("/v1/feeds/{spelling}/{suffix}"), Some(&token), None).await;
                assert!((400..500).contains(&got), "{who} reading {spelling}/{suffix}: {got}");
            }
        }
    }
}
