//! Replies, deadlines and escalation (及时反馈, 逐级请示, 奖优惩劣), as whole scenarios over
//! HTTP, on a clock the tests move: nothing sleeps through a real deadline.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use xietong::clock::{Clock, ManualClock};

const DAY: Duration = Duration::from_secs(86_400);

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
}

/// A gateway whose clock stands at 2026-11-20 09:00 Beijing time until the test moves it.
fn gateway() -> (TestServer, ManualClock) {
    let clock = ManualClock::at(ms("2026-11-20T09:00:00+08:00"));
    let server =
        TestServer::launch(ConfigDir::new(&fast_delivery("")), tempfile::tempdir().unwrap(), Some(clock.clone()));
    (server, clock)
}

async fn admin(server: &TestServer, path: &str) -> Value {
    operator_get(&format!("{}{path}", server.url)).await
}

/// Polls an admin view until `done` holds of it.
async fn admin_until(server: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = admin(server, path).await;
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never got there; last answer:\n{v:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn containing(threads: &Value, message: &str) -> Option<Value> {
    threads["threads"].as_array()?.iter().find(|t| messages(t).iter().any(|m| m["id"] == message)).cloned()
}

fn messages(thread: &Value) -> Vec<Value> {
    thread["messages"].as_array().cloned().unwrap_or_default()
}

fn obligations(thread: &Value) -> Vec<Value> {
    thread["obligations"].as_array().cloned().unwrap_or_default()
}

/// The thread of `message`, once the worker applied it.
async fn thread_of(server: &TestServer, message: &str) -> Value {
    let all = admin_until(server, "/v1/admin/threads", |v| containing(v, message).is_some()).await;
    containing(&all, message).unwrap()
}

/// The thread of `message` once `done` holds of it.
async fn thread_until(server: &TestServer, message: &str, done: impl Fn(&Value) -> bool) -> Value {
    let all = admin_until(server, "/v1/admin/threads", |v| containing(v, message).is_some_and(|t| done(&t))).await;
    containing(&all, message).unwrap()
}

/// Posts a native message as `agency`; the gateway's id.
async fn send(server: &TestServer, agency: &str, message: &Value) -> String {
    let (status, receipt) = post_json(&server.url, agency, &serde_json::to_vec(message).unwrap()).await;
    assert_eq!(status, 202, "{receipt}");
    receipt["id"].as_str().unwrap().to_string()
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

/// Runs one whole round of the thread worker here, beside the server's own: when it returns,
/// every message committed before is in its thread and every deadline passed has its notice.
async fn settle(server: &TestServer) {
    server.gateway.thread_worker().round().await.unwrap();
}

/// The native ids of the committed messages of type `t`, on either store.
fn messages_of_type(server: &TestServer, t: &str) -> Vec<String> {
    match shared_store_prefix(&server.data) {
        None => {
            let conn = rusqlite::Connection::open(server.db_path()).unwrap();
            let mut stmt = conn.prepare("SELECT native_id FROM messages WHERE type = ?1").unwrap();
            stmt.query_map([t], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        }
        Some(prefix) => {
            let mut c = ::redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
            let keys: Vec<String> = ::redis::cmd("KEYS").arg(format!("{{{prefix}}}:m:*")).query(&mut c).unwrap();
            keys.iter()
                .filter_map(|k| {
                    let (kind, native): (Option<String>, Option<String>) =
                        ::redis::cmd("HMGET").arg(k).arg("type").arg("native").query(&mut c).unwrap();
                    native.filter(|_| kind.as_deref() == Some(t))
                })
                .collect()
        }
    }
}

fn overdue_notices(server: &TestServer) -> i64 {
    messages_of_type(server, "cn.xietong.thread.overdue").len() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn clue_transfer_police_silence_filing_suggestion_and_feedback() {
    let (server, clock) = gateway();
    let opened = clock.now_ms();
    let clue = send(&server, "ip_office:330100", &example_json("ipo-clue-transfer.json")).await;
    let thread = thread_of(&server, &clue).await;
    assert_eq!(thread["id"], clue.as_str(), "the clue opens the thread");
    assert_eq!(thread["case"], "杭市监知执〔2026〕123号");
    assert_eq!(thread["state"], "open");
    let owed = obligations(&thread);
    assert_eq!(owed.len(), 1, "only the primary recipient owes a reply, not the copy: {owed:#?}");
    assert_eq!(owed[0]["awaiting"], "public_security:330100");
    assert_eq!(owed[0]["requester"], "ip_office:330100");
    assert_eq!(owed[0]["deadline"], xietong::clock::format_ms(opened + 30 * DAY.as_millis() as i64));
    assert_eq!(owed[0]["deadline"], "2026-12-20T09:00:00.000+08:00", "30 days, in Beijing time");

    // The police stay silent for 29 days: nothing fires.
    clock.advance(29 * DAY);
    settle(&server).await;
    assert_eq!(overdue_notices(&server), 0);
    assert_eq!(admin(&server, &format!("/v1/admin/threads/{clue}")).await["state"], "open");

    // The 31st day: the IP office is told, and the police's superior gets a copy.
    clock.advance(2 * DAY);
    let events =
        inbox_until(&server.url, "ip_office:330100", |e| !of_type(e, "cn.xietong.thread.overdue").is_empty()).await;
    let notice = of_type(&events, "cn.xietong.thread.overdue")[0].clone();
    assert_eq!(notice["sender"], "gateway");
    assert_eq!(notice["subject"], "杭市监知执〔2026〕123号");
    assert_eq!(notice["inreplyto"], "ZJ-HZ-2026-004417", "it refers to the request");
    assert_eq!(notice["data"]["thread"]["awaiting"], "public_security:330100");
    assert_eq!(notice["data"]["thread"]["deadline"], "2026-12-20T09:00:00.000+08:00");
    let trace = admin(&server, &format!("/v1/admin/messages/{}", notice["id"].as_str().unwrap())).await;
    let recipients: Vec<(&str, &str)> = trace["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["role"].as_str().unwrap()))
        .collect();
    assert_eq!(recipients, [("ip_office:330100", "primary"), ("public_security:330000", "copy")]);
    let thread = thread_until(&server, &clue, |t| messages(t).len() == 2).await;
    assert_eq!(thread["state"], "overdue");
    assert_eq!(messages(&thread)[1]["kind"], "notice");
    assert_eq!(obligations(&thread)[0]["state"], "overdue");

    // A deadline fires once, however long the silence lasts.
    clock.advance(10 * DAY);
    settle(&server).await;
    settle(&server).await;
    assert_eq!(overdue_notices(&server), 1);

    // The IP office asks the procuratorate to supervise the filing (立案监督建议); it joins
    // the clue's thread (glxxid) and the procuratorate owes feedback.
    let suggestion = send(&server, "ip_office:330100", &example_json("ipo-filing-supervision.json")).await;
    let thread = thread_until(&server, &suggestion, |t| obligations(t).len() == 2).await;
    assert_eq!(thread["id"], clue.as_str());
    let owed = obligations(&thread);
    assert_eq!((owed[1]["awaiting"].as_str(), owed[1]["state"].as_str()), (Some("procuratorate:330100"), Some("open")));

    // The procuratorate feeds back (及时反馈) three days later, on time.
    clock.advance(3 * DAY);
    let feedback = send(&server, "procuratorate:330100", &example_json("prc-supervision-feedback.json")).await;
    let thread = thread_until(&server, &feedback, |t| obligations(t)[1]["state"] == "answered").await;
    let answered = &obligations(&thread)[1];
    assert_eq!(answered["answered_by"], feedback.as_str());
    assert_eq!(answered["late"], false);
    assert_eq!(answered["reply_seconds"], 3 * 86_400);
    let kinds: Vec<String> = messages(&thread).iter().map(|m| m["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["request", "notice", "request", "reply"]);
    // The police still owe their decision: the thread stays overdue until they give it.
    assert_eq!(thread["state"], "overdue");
}

#[tokio::test(flavor = "multi_thread")]
async fn opinion_request_cannot_determine_escalates_and_the_superior_answers() {
    let (server, clock) = gateway();
    let request = send(&server, "procuratorate:440300", &example_json("prc-opinion-request.json")).await;
    let thread = thread_of(&server, &request).await;
    let owed = obligations(&thread);
    assert_eq!(owed[0]["awaiting"], "ip_office:440300");
    assert_eq!(owed[0]["deadline"], "2026-11-24T23:59:59.999+08:00", "the end of the replyBy day, Beijing time");

    // The IP office answers 无法认定 two days later.
    clock.advance(2 * DAY);
    let reply = send(&server, "ip_office:440300", &example_json("ipo-opinion-cannot-determine.json")).await;

    // The gateway sends the request on to the superior IP office in the office's name, with a
    // new deadline; the procuratorate that asked gets a copy.
    let events =
        inbox_until(&server.url, "ip_office:440000", |e| !of_type(e, "cn.xietong.opinion.escalation").is_empty()).await;
    let escalation = of_type(&events, "cn.xietong.opinion.escalation")[0].clone();
    assert_eq!(escalation["sender"], "ip_office:440300");
    assert_eq!(escalation["inreplyto"], "SZ-JCY-2026-OPN-0042");
    assert_eq!(escalation["data"]["request"]["replyBy"], "2026-12-07", "15 days from the escalation");
    assert_eq!(escalation["data"]["case"]["number"], "深检知刑审〔2026〕19号");
    let escalation_id = escalation["id"].as_str().unwrap().to_string();
    inbox_until(&server.url, "procuratorate:440300", |e| e.iter().any(|m| m["id"] == escalation_id.as_str())).await;

    let thread = thread_until(&server, &escalation_id, |t| obligations(t).len() == 2).await;
    assert_eq!(thread["id"], request.as_str(), "the thread follows the request up");
    let owed = obligations(&thread);
    assert_eq!(owed[0]["outcome"], "cannot_determine");
    assert_eq!(owed[0]["answered_by"], reply.as_str());
    assert_eq!(owed[1]["awaiting"], "ip_office:440000");
    assert_eq!(owed[1]["requester"], "ip_office:440300");
    assert_eq!(owed[1]["deadline"], "2026-12-07T23:59:59.999+08:00");
    assert_eq!(thread["state"], "open");

    // The superior answers, referring to the escalation it received.
    clock.advance(DAY);
    let mut answer = example_json("ipo-opinion-cannot-determine.json");
    answer["xxid"] = json!("GD-SJ-2026-000311");
    answer["glxxid"] = json!(escalation_id);
    answer["fsdw"] = json!({"dm": "440000", "mc": "广东省知识产权局"});
    answer["fk"] = json!({"jg": "构成相同商标", "sm": "涉案标识与注册商标构成相同商标。"});
    let superior = send(&server, "ip_office:440000", &answer).await;
    let thread = thread_until(&server, &superior, |t| t["state"] == "closed").await;
    let owed = obligations(&thread);
    assert_eq!(
        (owed[1]["answered_by"].as_str(), owed[1]["outcome"].as_str()),
        (Some(superior.as_str()), Some("answered"))
    );
    assert_eq!(owed[1]["late"], false);
    let steps: Vec<String> = messages(&thread)
        .iter()
        .map(|m| {
            format!("{} {} {}", m["kind"].as_str().unwrap(), m["type"].as_str().unwrap(), m["sender"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        steps,
        [
            "request cn.xietong.opinion.request procuratorate:440300",
            "reply cn.xietong.opinion.reply ip_office:440300",
            "request cn.xietong.opinion.escalation ip_office:440300",
            "reply cn.xietong.opinion.reply ip_office:440000",
        ],
        "every step is visible in the thread"
    );
    // The answer goes back down to the office that escalated, which relays it.
    inbox_until(&server.url, "ip_office:440300", |e| e.iter().any(|m| m["id"] == superior.as_str())).await;

    // Escalated once, whatever the worker goes through again.
    settle(&server).await;
    assert_eq!(messages_of_type(&server, "cn.xietong.opinion.escalation").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_superior_that_cannot_determine_either_sends_the_request_further_up() {
    let (server, _clock) = gateway();
    let request = send(&server, "procuratorate:440300", &example_json("prc-opinion-request.json")).await;
    send(&server, "ip_office:440300", &example_json("ipo-opinion-cannot-determine.json")).await;
    let events =
        inbox_until(&server.url, "ip_office:440000", |e| !of_type(e, "cn.xietong.opinion.escalation").is_empty()).await;
    let first = of_type(&events, "cn.xietong.opinion.escalation")[0].clone();

    // The province cannot determine either; it refers to the escalation by its native id.
    let mut answer = example_json("ipo-opinion-cannot-determine.json");
    answer["xxid"] = json!("GD-SJ-2026-000312");
    answer["glxxid"] = first["nativeid"].clone();
    answer["fsdw"] = json!({"dm": "440000", "mc": "广东省知识产权局"});
    send(&server, "ip_office:440000", &answer).await;
    let events =
        inbox_until(&server.url, "ip_office:000000", |e| !of_type(e, "cn.xietong.opinion.escalation").is_empty()).await;
    let second = of_type(&events, "cn.xietong.opinion.escalation")[0].clone();
    assert_eq!(second["sender"], "ip_office:440000");
    assert_eq!(second["inreplyto"], first["nativeid"]);

    let thread = thread_until(&server, &request, |t| obligations(t).len() == 3).await;
    let chain: Vec<String> = obligations(&thread)
        .iter()
        .map(|o| format!("{} {}", o["awaiting"].as_str().unwrap(), o["outcome"].as_str().unwrap_or("open")))
        .collect();
    assert_eq!(
        chain,
        ["ip_office:440300 cannot_determine", "ip_office:440000 cannot_determine", "ip_office:000000 open"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_escalation_opens_an_obligation_on_the_superior() {
    let (server, _clock) = gateway();
    let request = send(&server, "procuratorate:440300", &example_json("prc-opinion-request.json")).await;
    let mut escalation = example_json("prc-opinion-request.json");
    escalation["header"]["messageId"] = json!("SZ-JCY-2026-ESC-0001");
    escalation["header"]["messageType"] = json!("OPINION_ESCALATION");
    escalation["header"]["inReplyTo"] = json!("SZ-JCY-2026-OPN-0042");
    escalation["body"]["request"]["replyBy"] = json!("2026-12-04");
    let explicit = send(&server, "procuratorate:440300", &escalation).await;
    let thread = thread_until(&server, &explicit, |t| obligations(t).len() == 2).await;
    assert_eq!(thread["id"], request.as_str());
    let owed = obligations(&thread);
    assert_eq!(owed[1]["type"], "cn.xietong.opinion.escalation");
    assert_eq!(owed[1]["awaiting"], "procuratorate:440000", "the superior procuratorate, by the rules");
    assert_eq!(owed[1]["deadline"], "2026-12-04T23:59:59.999+08:00");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_prosecution_transfer_and_result_feedback() {
    let (server, clock) = gateway();
    let transfer = send(&server, "procuratorate:330100", &example_json("prc-non-prosecution-transfer.json")).await;
    let thread = thread_of(&server, &transfer).await;
    let owed = obligations(&thread);
    assert_eq!(owed[0]["awaiting"], "ip_office:330100");
    assert_eq!(owed[0]["deadline"], "2027-02-18T09:00:00.000+08:00", "90 days");

    clock.advance(10 * DAY);
    let result = json!({
        "xxid": "HZ-CLJG-2026-0001", "xxlx": "CLJGFK", "glxxid": "HZJCY-2026-NP-000031",
        "fsdw": {"dm": "330100", "mc": "杭州市市场监督管理局（杭州市知识产权局）"},
        "fssj": "2026-11-30 10:00:00", "aj": {"ajbh": "杭检知刑不诉〔2026〕5号"},
        "fk": {"jg": "已作出行政处罚", "wsh": "杭市监处〔2026〕77号", "rq": "2026-11-30"},
        "nr": "已依法作出行政处罚。",
    });
    let feedback = send(&server, "ip_office:330100", &result).await;
    let thread = thread_until(&server, &feedback, |t| t["state"] == "closed").await;
    let owed = &obligations(&thread)[0];
    assert_eq!((owed["answered_by"].as_str(), owed["late"].as_bool()), (Some(feedback.as_str()), Some(false)));
    assert_eq!(owed["reply_seconds"], 10 * 86_400);
    inbox_until(&server.url, "procuratorate:330100", |e| e.iter().any(|m| m["id"] == feedback.as_str())).await;

    let stats = admin(&server, "/v1/admin/stats").await;
    let agencies = stats["agencies"].as_array().unwrap();
    assert_eq!(agencies.len(), 1);
    assert_eq!(
        agencies[0],
        json!({"agency": "ip_office:330100", "level": "prefecture", "received": 1, "answered_on_time": 1,
               "answered_late": 0, "open": 0, "overdue": 0, "median_reply_seconds": 864000, "p90_reply_seconds": 864000})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overdue_request_then_a_late_reply_and_the_figures() {
    let (server, clock) = gateway();
    let request = send(&server, "procuratorate:440300", &example_json("prc-opinion-request.json")).await;
    let np = send(&server, "procuratorate:330100", &example_json("prc-non-prosecution-transfer.json")).await;
    thread_of(&server, &np).await;

    // 2026-11-25 in Beijing: the replyBy day (11-24) is over.
    clock.advance(5 * DAY);
    let events =
        inbox_until(&server.url, "procuratorate:440300", |e| !of_type(e, "cn.xietong.thread.overdue").is_empty()).await;
    let notice = of_type(&events, "cn.xietong.thread.overdue")[0].clone();
    assert_eq!(notice["data"]["thread"]["awaiting"], "ip_office:440300");
    assert_eq!(notice["data"]["thread"]["request"], request.as_str());
    // The late office's superior gets a copy.
    inbox_until(&server.url, "ip_office:440000", |e| e.iter().any(|m| m["id"] == notice["id"])).await;
    let overdue = admin_until(&server, "/v1/admin/threads?state=overdue", |v| containing(v, &request).is_some()).await;
    assert_eq!(overdue["threads"].as_array().unwrap().len(), 1, "the non-prosecution transfer is not due yet");
    let open = admin(&server, "/v1/admin/threads?state=open").await;
    assert!(containing(&open, &np).is_some() && containing(&open, &request).is_none());

    // A reply after the deadline closes the thread as late.
    clock.advance(DAY);
    let mut reply = example_json("ipo-opinion-cannot-determine.json");
    reply["fk"] = json!({"jg": "构成相同商标"});
    let late = send(&server, "ip_office:440300", &reply).await;
    let thread = thread_until(&server, &late, |t| t["state"] == "closed").await;
    let owed = &obligations(&thread)[0];
    assert_eq!((owed["state"].as_str(), owed["late"].as_bool()), (Some("answered"), Some(true)));
    assert_eq!(owed["reply_seconds"], 6 * 86_400);
    let closed = admin(&server, "/v1/admin/threads?state=closed").await;
    assert!(containing(&closed, &request).is_some());

    // The figures behind 奖优惩劣, per agency that owed a reply.
    let stats = admin(&server, "/v1/admin/stats").await;
    let rows: Vec<(String, u64, u64, u64, u64)> = stats["agencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let n = |k: &str| a[k].as_u64().unwrap();
            (
                a["agency"].as_str().unwrap().to_string(),
                n("received"),
                n("answered_on_time"),
                n("answered_late"),
                n("open"),
            )
        })
        .collect();
    assert_eq!(rows, [("ip_office:330100".to_string(), 1, 0, 0, 1), ("ip_office:440300".to_string(), 1, 0, 1, 0)]);
    let csv = client()
        .get(format!("{}/v1/admin/stats?level=prefecture", server.url))
        .bearer_auth(OPERATOR)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.text().await.unwrap(),
        "agency,level,received,answered_on_time,answered_late,open,overdue,median_reply_seconds,p90_reply_seconds\n\
         ip_office:330100,prefecture,1,0,0,1,0,,\n\
         ip_office:440300,prefecture,1,0,1,0,0,518400,518400\n"
    );
    // Filters: by region, by level, by the day requests were opened (Beijing time).
    let region = admin(&server, "/v1/admin/stats?region=pearl_river_delta").await;
    assert_eq!(region["agencies"].as_array().unwrap().len(), 1);
    assert_eq!(region["agencies"][0]["agency"], "ip_office:440300");
    assert_eq!(admin(&server, "/v1/admin/stats?level=province").await["agencies"], json!([]));
    assert_eq!(admin(&server, "/v1/admin/stats?from=2026-11-21").await["agencies"], json!([]));
    assert_eq!(
        admin(&server, "/v1/admin/stats?from=2026-11-20&to=2026-11-21").await["agencies"].as_array().unwrap().len(),
        2
    );
    let theirs = admin(&server, "/v1/admin/threads?agency=ip_office:440300").await;
    assert_eq!(theirs["threads"].as_array().unwrap().len(), 1);
    assert!(containing(&theirs, &request).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_survives_a_restart_and_fires_once() {
    let (server, clock) = gateway();
    let clue = send(&server, "ip_office:330100", &example_json("ipo-clue-transfer.json")).await;
    thread_of(&server, &clue).await;

    // Stopped before the deadline, started again after it.
    let server = server.restart(Some(clock.clone()));
    clock.advance(31 * DAY);
    let server = server.restart(Some(clock.clone()));
    inbox_until(&server.url, "ip_office:330100", |e| !of_type(e, "cn.xietong.thread.overdue").is_empty()).await;
    settle(&server).await;
    assert_eq!(overdue_notices(&server), 1);

    // And again: the notice is not sent twice.
    clock.advance(DAY);
    let server = server.restart(Some(clock.clone()));
    settle(&server).await;
    assert_eq!(overdue_notices(&server), 1);
    let events = inbox_until(&server.url, "ip_office:330100", |_| true).await;
    assert_eq!(of_type(&events, "cn.xietong.thread.overdue").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_workers_fire_each_deadline_once() {
    let (server, clock) = gateway();
    const REQUESTS: usize = 20;
    for n in 0..REQUESTS {
        let mut clue = example_json("ipo-clue-transfer.json");
        clue["xxid"] = json!(format!("ZJ-HZ-2026-9{n:05}"));
        send(&server, "ip_office:330100", &clue).await;
    }
    settle(&server).await;
    clock.advance(31 * DAY);
    // Six workers at once, as if six instances shared the store, beside the server's own.
    let rounds: Vec<_> = (0..6)
        .map(|_| {
            let gateway = server.gateway.clone();
            tokio::spawn(async move { gateway.thread_worker().round().await })
        })
        .collect();
    for r in rounds {
        r.await.unwrap().unwrap();
    }
    settle(&server).await;
    assert_eq!(overdue_notices(&server), REQUESTS as i64);
    let distinct: std::collections::BTreeSet<String> =
        messages_of_type(&server, "cn.xietong.thread.overdue").into_iter().collect();
    assert_eq!(distinct.len(), REQUESTS);
    let obligations = server.gateway.store.obligations(0, i64::MAX).await.unwrap();
    assert_eq!(obligations.iter().filter(|o| o.state == "overdue").count(), REQUESTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_to_unknown_or_answered_requests_are_accepted_and_flagged() {
    let (server, _clock) = gateway();
    // A reply to a message the gateway never saw.
    let orphan = send(&server, "procuratorate:330100", &example_json("prc-supervision-feedback.json")).await;
    let thread = thread_of(&server, &orphan).await;
    let flag = messages(&thread)[0]["flag"].as_str().unwrap().to_string();
    assert!(flag.contains("does not know"), "{flag}");

    // A second reply to a request already answered.
    send(&server, "ip_office:330100", &example_json("ipo-filing-supervision.json")).await;
    let mut first = example_json("prc-supervision-feedback.json");
    first["header"]["messageId"] = json!("HZJCY-2026-SV-000113");
    let answer = send(&server, "procuratorate:330100", &first).await;
    thread_until(&server, &answer, |t| t["state"] == "closed").await;
    let mut again = first.clone();
    again["header"]["messageId"] = json!("HZJCY-2026-SV-000114");
    let repeat = send(&server, "procuratorate:330100", &again).await;
    let thread = thread_of(&server, &repeat).await;
    let last = messages(&thread).last().cloned().unwrap();
    assert_eq!(last["id"], repeat.as_str());
    assert!(last["flag"].as_str().unwrap().contains("already answered"), "{last}");
    assert_eq!(obligations(&thread)[0]["answered_by"], answer.as_str(), "the first answer stands");
    assert_eq!(thread["state"], "closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_views_are_for_operators_and_check_their_parameters() {
    let (server, _clock) = gateway();
    for path in ["/v1/admin/threads", "/v1/admin/stats", "/v1/admin/threads/x"] {
        let (status, _) = get(&format!("{}{path}", server.url), Some("demo-ip_office-330100")).await;
        assert_eq!(status, 403, "{path}");
        let r = client().get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    for (path, field) in [
        ("/v1/admin/threads?state=late", "state"),
        ("/v1/admin/threads?from=yesterday", "yesterday"),
        ("/v1/admin/stats?to=2026-13-01", "2026-13-01"),
        ("/v1/admin/stats?region=atlantis", "region"),
    ] {
        let (status, body) = get(&format!("{}{path}", server.url), Some(OPERATOR)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["message"].as_str().unwrap().contains(field), "{path}: {body}");
    }
    let (status, body) = get(&format!("{}/v1/admin/threads/no-such-thread", server.url), Some(OPERATOR)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread")]
async fn related_case_progress_joins_the_case_thread() {
    let (server, _clock) = gateway();
    let clue = send(&server, "ip_office:330100", &example_json("ipo-clue-transfer.json")).await;
    let progress = json!({
        "xxid": "ZJ-HZ-2026-004999", "xxlx": "GLAJTB",
        "fsdw": {"dm": "330100", "mc": "杭州市市场监督管理局（杭州市知识产权局）"},
        "fssj": "2026-11-21 10:00:00", "aj": {"ajbh": "杭市监知执〔2026〕123号"},
        "nr": "关联案件进展：当事人已提起行政复议。",
    });
    let notice = send(&server, "ip_office:330100", &progress).await;
    let thread = thread_of(&server, &notice).await;
    assert_eq!(thread["id"], clue.as_str(), "no reference, but the same case");
    assert_eq!(messages(&thread)[1]["kind"], "progress");
    assert_eq!(thread["state"], "open", "progress answers nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_superior_copy_of_overdue_notices_can_be_turned_off() {
    let clock = ManualClock::at(ms("2026-11-20T09:00:00+08:00"));
    let config = ConfigDir::new(&fast_delivery(""));
    let policy = std::fs::read_to_string(config.path().join("threads.yaml")).unwrap();
    assert!(policy.contains("notify_superior: true"));
    config.write("threads.yaml", &policy.replace("notify_superior: true", "notify_superior: false"));
    let server = TestServer::launch(config, tempfile::tempdir().unwrap(), Some(clock.clone()));
    send(&server, "ip_office:330100", &example_json("ipo-clue-transfer.json")).await;
    clock.advance(31 * DAY);
    let events =
        inbox_until(&server.url, "ip_office:330100", |e| !of_type(e, "cn.xietong.thread.overdue").is_empty()).await;
    let notice = of_type(&events, "cn.xietong.thread.overdue")[0]["id"].as_str().unwrap().to_string();
    let trace = admin(&server, &format!("/v1/admin/messages/{notice}")).await;
    let recipients: Vec<&str> =
        trace["recipients"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(recipients, ["ip_office:330100"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_stands_alone_opens_no_thread_until_one_refers_to_it() {
    let (server, _clock) = gateway();
    let bulletin = send(&server, "ip_office:330000", &example_json("ipo-bulletin-field-secret.json")).await;
    settle(&server).await;
    assert!(containing(&admin(&server, "/v1/admin/threads").await, &bulletin).is_none());
    let every = xietong::store::ThreadQuery { limit: 1000, ..Default::default() };
    assert!(server.gateway.store.threads(every).await.unwrap().is_empty());

    let mut follow_up = example_json("ipo-bulletin-field-secret.json");
    follow_up["xxid"] = json!("ZJ-SJ-2026-000079");
    follow_up["glxxid"] = json!("ZJ-SJ-2026-000077");
    let next = send(&server, "ip_office:330000", &follow_up).await;
    let thread = thread_of(&server, &next).await;
    assert_eq!(thread["id"], bulletin.as_str(), "the bulletin becomes the thread's root");
    let kinds: Vec<String> = messages(&thread).iter().map(|m| m["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["message", "message"]);
    assert_eq!(thread["state"], "closed", "nothing is owed");
}
