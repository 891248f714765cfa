//! Requests as an agency, a hub or an operator, and the messages the suites post.

use std::time::Duration;

use serde_json::{Value, json};

use super::example_json;

/// The operators' demo token (config/operators.yaml).
pub const OPERATOR: &str = "demo-operator";

/// The demo token of an agency or hub (see config/agencies.yaml and the README).
pub fn demo_token(agency: &str) -> String {
    format!("demo-{}", agency.replace(':', "-"))
}

/// A client for the plain-HTTP servers of the tests. It trusts no roots: loading the system's
/// certificate store for every request would dominate the tests' time.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).tls_certs_only([]).build().unwrap()
}

/// Posts `body` as `agency` (by its demo token) with `content_type`.
pub async fn post_as(url: &str, agency: &str, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    client()
        .post(format!("{url}/v1/messages"))
        .bearer_auth(demo_token(agency))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the request completes")
}

/// Posts a native JSON message as `agency`; returns the status and the JSON body.
pub async fn post_json(url: &str, agency: &str, body: &[u8]) -> (u16, Value) {
    let r = post_as(url, agency, "application/json", body.to_vec()).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A request with `client`, with `token` as its bearer token and `body` as JSON; the status
/// and the JSON answer (`Null` when there is none).
pub async fn call_with(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut r = client.request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.expect("the request completes");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// [`call_with`] on the tests' plain-HTTP client.
pub async fn call(method: reqwest::Method, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    call_with(&client(), method, url, token, body.as_ref()).await
}

/// GET with `token`; the status and the JSON answer.
pub async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    call(reqwest::Method::GET, url, token, None).await
}

/// GET as the operator; the answer, which must be 200.
pub async fn operator_get(url: &str) -> Value {
    let (status, body) = get(url, Some(OPERATOR)).await;
    assert_eq!(status, 200, "{url}: {body}");
    body
}

/// A bulletin of the Zhejiang procuratorate (procuratorate:330000) with native id `id`: it goes
/// to ip_office:330000 only, with its analysis removed (a field marked 秘密).
pub fn bulletin(id: &str) -> Vec<u8> {
    let mut m = example_json("prc-bulletin-secret-field.json");
    m["header"]["messageId"] = json!(id);
    serde_json::to_vec(&m).unwrap()
}

/// Posts `message` (native JSON) as `agency` and expects a 202; the receipt.
pub async fn accepted(url: &str, agency: &str, message: &Value) -> Value {
    let (status, receipt) = post_json(url, agency, &serde_json::to_vec(message).unwrap()).await;
    assert_eq!(status, 202, "{agency}: {receipt}");
    receipt
}

/// The events of `feed` read with `token` (its owner's), once `done` holds of them (10 s at most).
pub async fn feed_until(url: &str, feed: &str, token: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let page = format!("{url}/v1/feeds/{feed}/events?limit=1000");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(&page, Some(token)).await;
        assert_eq!(status, 200, "{feed}: {body}");
        let events: Vec<Value> = body["events"].as_array().unwrap().iter().map(|e| e["event"].clone()).collect();
        if done(&events) {
            return events;
        }
        assert!(std::time::Instant::now() < deadline, "{feed}'s feed never got there: {events:#?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The events of an agency's or hub's own feed, once `done` holds of them.
pub async fn inbox_until(url: &str, agency: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    feed_until(url, agency, &demo_token(agency), done).await
}

/// A canonical event (CloudEvents 1.0, structured JSON) from `sender`, to post as
/// `application/cloudevents+json`.
pub fn canonical(sender: &str, message_type: &str, native_id: &str, in_reply_to: Option<&str>, data: Value) -> Value {
    let source = format!("urn:xietong:agency:{sender}");
    let mut event = json!({
        "specversion": "1.0", "id": native_id, "source": source, "type": message_type,
        "time": "2026-12-01T09:00:00+08:00", "datacontenttype": "application/json",
        "sender": sender, "classification": "内部", "nativeid": native_id, "data": data,
    });
    if let Some(link) = in_reply_to {
        event["inreplyto"] = json!(link);
    }
    event
}

/// Posts a canonical event as `agency`; the status and the JSON answer.
pub async fn post_canonical(url: &str, agency: &str, event: &Value) -> (u16, Value) {
    let r = post_as(url, agency, "application/cloudevents+json", serde_json::to_vec(event).unwrap()).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The recipients of a receipt, as `id role`, sorted.
pub fn recipients(receipt: &Value) -> Vec<String> {
    let mut out: Vec<String> = receipt["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["id"].as_str().unwrap(), r["role"].as_str().unwrap()))
        .collect();
    out.sort();
    out
}

/// The thread (as the operators read it) that holds message `id`, once `done` holds of it.
pub async fn thread_until(url: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let all = operator_get(&format!("{url}/v1/admin/threads")).await;
        let thread = all["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["messages"].as_array().unwrap().iter().any(|m| m["id"] == id))
            .cloned();
        if let Some(t) = thread.filter(|t| done(t)) {
            return t;
        }
        assert!(std::time::Instant::now() < deadline, "the thread of {id} never got there: {all:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether `events` hold the event with id `id`.
pub fn has(events: &[Value], id: &Value) -> bool {
    events.iter().any(|e| e["id"] == *id)
}
