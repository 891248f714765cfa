//! The opinion's working mechanisms besides case exchange, over HTTP against the real binary
//! (and on Redis with `XIETONG_TEST_STORE=redis`): liaisons and consultation meetings (§二),
//! hubs that speak to their regions (§十), exchange, training, research and seminars
//! (§十一–十四), and commendation and criticism resting on the gateway's figures (§十七).

use serde_json::{Value, json};

use crate::common::*;

/// An example of docs/examples.
fn doc_example(name: &str) -> Value {
    let text = std::fs::read(root().join("docs/examples").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_slice(&text).unwrap()
}

fn exchange() -> Exchange {
    Exchange::start(ConfigDir::new(&fast_delivery("")))
}

/// A canonical event from hub `key`.
fn from_hub(key: &str, message_type: &str, native_id: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0", "id": native_id, "source": format!("urn:xietong:hub:{key}"), "type": message_type,
        "time": "2026-12-07T11:00:00+08:00", "datacontenttype": "application/json",
        "sender": format!("hub:{key}"), "classification": "内部", "data": data,
    })
}

/// Posts `event` as hub `key` (by its demo token); the status and the JSON answer.
async fn post_as_hub(url: &str, key: &str, event: &Value) -> (u16, Value) {
    post_canonical(url, &format!("hub:{key}"), event).await
}

/// §二: a meeting notice reaches every agency it lists, courts and the police included; each
/// answers in its own format (or as a canonical event), the answers go back to the agency that
/// called the meeting, and they close the thread one obligation each.
#[tokio::test(flavor = "multi_thread")]
async fn a_meeting_notice_reaches_whom_it_lists_and_their_answers_close_its_thread() {
    let config = ConfigDir::new(&fast_delivery(""));
    config.connect("public_security:330100");
    let gw = Exchange::start(config);

    let receipt = accepted(gw.url(), "ip_office:330100", &doc_example("ipo-meeting-notice.json")).await;
    assert_eq!(recipients(&receipt), ["procuratorate:330100 primary", "public_security:330100 primary"], "{receipt}");
    let notice = receipt["id"].clone();
    let thread =
        thread_until(gw.url(), notice.as_str().unwrap(), |t| t["obligations"].as_array().unwrap().len() == 2).await;
    let mut awaiting: Vec<&str> =
        thread["obligations"].as_array().unwrap().iter().map(|o| o["awaiting"].as_str().unwrap()).collect();
    awaiting.sort();
    assert_eq!(awaiting, ["procuratorate:330100", "public_security:330100"]);
    let inbox = inbox_until(gw.url(), "public_security:330100", |e| has(e, &notice)).await;
    let delivered = inbox.iter().find(|e| e["id"] == notice).unwrap();
    assert_eq!(delivered["data"]["meeting"]["startsAt"], "2026-12-18T14:30:00+08:00");
    assert_eq!(delivered["data"]["meeting"]["mode"], "hybrid");

    let receipt = accepted(gw.url(), "procuratorate:330100", &doc_example("prc-meeting-reply.json")).await;
    assert_eq!(recipients(&receipt), ["ip_office:330100 primary"], "{receipt}");
    let attends = receipt["id"].clone();
    let inbox = inbox_until(gw.url(), "ip_office:330100", |e| has(e, &attends)).await;
    let answer = inbox.iter().find(|e| e["id"] == attends).unwrap();
    assert_eq!(answer["data"]["attendance"], json!({"answer": "attend", "delegates": 2}));

    let decline = canonical(
        "public_security:330100",
        "cn.xietong.meeting.reply",
        "HZ-GA-HS-1",
        Some("ZJ-HZ-2026-HS-0007"),
        json!({"attendance": {"answer": "decline", "reason": "同日另有专项行动部署会"}}),
    );
    let (status, receipt) = post_canonical(gw.url(), "public_security:330100", &decline).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(recipients(&receipt), ["ip_office:330100 primary"], "{receipt}");
    let declines = receipt["id"].clone();

    let thread = thread_until(gw.url(), notice.as_str().unwrap(), |t| t["state"] == "closed").await;
    let answered: Vec<(&str, &str)> = thread["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["awaiting"].as_str().unwrap(), o["answered_by"].as_str().unwrap()))
        .collect();
    assert!(answered.contains(&("procuratorate:330100", attends.as_str().unwrap())), "{thread:#}");
    assert!(answered.contains(&("public_security:330100", declines.as_str().unwrap())), "{thread:#}");

    // A participant must say whether it attends: an answer without one is refused, with the field.
    let mut vague = doc_example("prc-meeting-reply.json");
    vague["header"]["messageId"] = json!("HZJCY-2026-HS-000032");
    vague["body"]["attendance"] = json!({"delegates": 1});
    let (status, problem) = post_json(gw.url(), "procuratorate:330100", &serde_json::to_vec(&vague).unwrap()).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("schema_violation")), "{problem}");
    assert!(problem.to_string().contains("/data/attendance"), "{problem}");
}

/// §二: each agency's liaison (联络人) is in agencies.yaml and readable by those who work with
/// it, and by nobody else.
#[tokio::test(flavor = "multi_thread")]
async fn liaisons_are_read_by_counterparts_and_no_one_else() {
    let gw = exchange();
    let read = |of: &str, token: Option<String>| {
        let url = format!("{}/v1/agencies/{of}/liaison", gw.url());
        async move {
            let mut r = client().get(url);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            let cache = r.headers().get("cache-control").map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), cache, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let token = |who: &str| Some(demo_token(who));

    // The counterpart at the same level, a subordinate, the region's hub, the operator.
    let (status, cache, body) = read("ip_office:000000", token("procuratorate:000000")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(body["id"], "ip_office:000000");
    assert_eq!(body["liaison"]["unit"], "知识产权保护司");
    assert_eq!(body["liaison"]["phone"], "010-5555-0100");
    for reader in ["ip_office:330100", "procuratorate:330100", "hub:yangtze_delta"] {
        let (status, _, body) = read("ip_office:000000", token(reader)).await;
        assert_eq!(status, 200, "{reader}: {body}");
    }
    for reader in ["procuratorate:330100", "ip_office:330000", "procuratorate:310000", "hub:yangtze_delta"] {
        let (status, _, body) = read("ip_office:330100", token(reader)).await;
        assert_eq!(status, 200, "{reader} reads ip_office:330100's liaison: {body}");
    }
    let (status, _, body) = read("ip_office:330100", Some(OPERATOR.to_string())).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = read("hub:yangtze_delta", token("procuratorate:310000")).await;
    assert_eq!((status, body["liaison"]["email"].as_str()), (200, Some("liaison@yangtze-delta.example.cn")), "{body}");

    // Outside the region and off the chain of superiors; another region's hub.
    for reader in ["procuratorate:440300", "hub:pearl_river_delta"] {
        let (status, _, body) = read("ip_office:330100", token(reader)).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{reader}: {body}");
        assert!(body["message"].as_str().unwrap().contains("counterparts"), "{body}");
    }
    let (status, _, body) = read("hub:yangtze_delta", token("ip_office:440300")).await;
    assert_eq!(status, 403, "{body}");

    // No liaison named, no such agency, not an id, no token.
    let (status, _, body) = read("ip_office:330000", token("procuratorate:330000")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("has named no liaison"), "{body}");
    let (status, _, body) = read("court:330100", token("procuratorate:330100")).await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = read("nobody", token("procuratorate:330100")).await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = read("ip_office:330100", None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthenticated")), "{body}");
}

/// §十: a hub publishes a coordination notice and a bulletin to the connected agencies of its
/// region, narrowed by the kinds and levels the notice names; what a hub may not do is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_hub_speaks_to_the_agencies_of_its_region() {
    let gw = exchange();
    let (status, receipt) = post_as_hub(gw.url(), "yangtze_delta", &doc_example("hub-notice.json")).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(
        recipients(&receipt),
        [
            "ip_office:320500 primary",
            "ip_office:330000 primary",
            "ip_office:330100 primary",
            "procuratorate:310000 primary",
            "procuratorate:330000 primary",
            "procuratorate:330100 primary"
        ],
        "{receipt}"
    );
    let notice = receipt["id"].clone();
    let inbox = inbox_until(gw.url(), "procuratorate:310000", |e| has(e, &notice)).await;
    let delivered = inbox.iter().find(|e| e["id"] == notice).unwrap();
    assert_eq!(delivered["source"], "urn:xietong:hub:yangtze_delta");
    assert_eq!(delivered["sender"], "hub:yangtze_delta");
    assert_eq!(delivered["data"]["coordination"]["kind"], "joint_meeting");

    // A bulletin to the provincial procuratorates only; the Greater Bay Area's hub reaches Shenzhen.
    let bulletin = from_hub(
        "yangtze_delta",
        "cn.xietong.bulletin",
        "YRD-XXTB-1",
        json!({"audience": {"kinds": ["procuratorate"], "levels": ["province"]}, "content": "区域协作工作简报第12期。"}),
    );
    let (status, receipt) = post_as_hub(gw.url(), "yangtze_delta", &bulletin).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(recipients(&receipt), ["procuratorate:310000 primary", "procuratorate:330000 primary"], "{receipt}");
    let gba = from_hub(
        "greater_bay_area",
        "cn.xietong.hub.notice",
        "GBA-LX-1",
        json!({"coordination": {"kind": "joint_handling", "title": "跨境商标侵权协作办案"}, "content": "协作办案通知。"}),
    );
    let (status, receipt) = post_as_hub(gw.url(), "greater_bay_area", &gba).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(recipients(&receipt), ["ip_office:440300 primary", "procuratorate:440300 primary"], "{receipt}");

    // Only hubs send hub notices; hubs send nothing else of the case flows; a hub speaks only for itself.
    let (status, problem) = post_canonical(
        gw.url(),
        "ip_office:330100",
        &canonical("ip_office:330100", "cn.xietong.hub.notice", "X-1", None, gba["data"].clone()),
    )
    .await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")), "{problem}");
    let notice = from_hub(
        "yangtze_delta",
        "cn.xietong.related_case.notice",
        "YRD-GL-1",
        json!({"case": {"number": "沪知执〔2026〕7号"}, "content": "关联案件。"}),
    );
    let (status, problem) = post_as_hub(gw.url(), "yangtze_delta", &notice).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")), "{problem}");
    assert!(problem["message"].as_str().unwrap().contains("a regional hub"), "{problem}");
    let (status, problem) = post_as_hub(gw.url(), "bohai_rim", &doc_example("hub-notice.json")).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("sender_mismatch")), "{problem}");
    let r = post_as(gw.url(), "hub:yangtze_delta", "application/json", b"{}".to_vec()).await;
    assert_eq!(r.status().as_u16(), 415);
    let problem: Value = r.json().await.unwrap();
    assert!(problem["message"].as_str().unwrap().contains("application/cloudevents+json"), "{problem}");
}

/// §十一–十四: a cooperation notice goes to the counterparts it lists, or to the connected
/// agencies of the key region it names; a region or agency that does not exist is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_cooperation_notice_goes_to_those_it_lists_or_to_a_region() {
    let gw = exchange();
    let receipt = accepted(gw.url(), "ip_office:330000", &doc_example("ipo-cooperation-notice.json")).await;
    assert_eq!(
        recipients(&receipt),
        [
            "ip_office:320500 primary",
            "ip_office:330100 primary",
            "procuratorate:310000 primary",
            "procuratorate:330000 primary",
            "procuratorate:330100 primary"
        ],
        "{receipt}"
    );
    let training = receipt["id"].clone();
    let inbox = inbox_until(gw.url(), "ip_office:320500", |e| has(e, &training)).await;
    let delivered = inbox.iter().find(|e| e["id"] == training).unwrap();
    assert_eq!(delivered["data"]["cooperation"]["kind"], "joint_training");
    assert_eq!(delivered["data"]["cooperation"]["places"], 3);

    let listed = |id: &str, jl: Value, cydw: Option<Value>| {
        let mut m = doc_example("ipo-cooperation-notice.json");
        m["xxid"] = json!(id);
        m["jl"] = jl;
        if let Some(c) = cydw {
            m["cydw"] = c;
        }
        m
    };
    let exchange_staff = listed(
        "ZJ-2026-JL-0004",
        json!({"lx": "挂职交流", "bt": "互派干部挂职交流（2027年上半年）"}),
        Some(json!(["procuratorate:330000"])),
    );
    let receipt = accepted(gw.url(), "ip_office:330000", &exchange_staff).await;
    assert_eq!(recipients(&receipt), ["procuratorate:330000 primary"], "{receipt}");

    let url = gw.url();
    let post = |m: Value| async move { post_json(url, "ip_office:330000", &serde_json::to_vec(&m).unwrap()).await };
    let (status, problem) =
        post(listed("ZJ-2026-JL-0005", json!({"lx": "研讨会", "bt": "研讨", "qy": "atlantis"}), None)).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("unknown_region")), "{problem}");
    assert_eq!(problem["details"][0]["pointer"], "/data/audience/region", "{problem}");
    let (status, problem) = post(listed(
        "ZJ-2026-JL-0006",
        json!({"lx": "联合调研", "bt": "调研"}),
        Some(json!(["procuratorate:330000", "procuratorate:999999"])),
    ))
    .await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("unknown_division")), "{problem}");
    assert_eq!(problem["details"][0]["pointer"], "/data/participants/1", "{problem}");
    let (status, problem) = post(listed("ZJ-2026-JL-0007", json!({"lx": "研讨会", "bt": "无对象的研讨"}), None)).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("schema_violation")), "{problem}");
    let (status, problem) = post(listed("ZJ-2026-JL-0008", json!({"lx": "出国考察", "bt": "考察"}), None)).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("mapping_failed")), "{problem}");
    assert!(problem.to_string().contains("/jl/lx"), "{problem}");
}

/// §十七: a national body commends an agency; the notice reaches the agency and its superior of
/// the same kind with the agency's reply-timeliness figures for the period, computed by the
/// gateway from its threads. Figures a sender writes, reversed periods and provincial senders are
/// refused.
#[tokio::test(flavor = "multi_thread")]
async fn an_evaluation_notice_carries_the_figures_it_rests_on() {
    let gw = exchange();
    // One request to procuratorate:330100, answered on time.
    accepted(gw.url(), "ip_office:330100", &doc_example("ipo-meeting-notice.json")).await;
    let answered = accepted(gw.url(), "procuratorate:330100", &doc_example("prc-meeting-reply.json")).await;
    thread_until(gw.url(), answered["id"].as_str().unwrap(), |t| {
        t["obligations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["awaiting"] == "procuratorate:330100" && o["state"] == "answered")
    })
    .await;

    let today = chrono::Utc::now().with_timezone(&xietong::clock::beijing()).date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let mut notice = doc_example("prc-evaluation-notice.json");
    notice["body"]["evaluation"]["periodFrom"] = json!(day(today - chrono::Days::new(1)));
    notice["body"]["evaluation"]["periodTo"] = json!(day(today + chrono::Days::new(1)));
    let receipt = accepted(gw.url(), "procuratorate:000000", &notice).await;
    assert_eq!(recipients(&receipt), ["procuratorate:330000 copy", "procuratorate:330100 primary"], "{receipt}");
    let commended = receipt["id"].clone();
    let inbox = inbox_until(gw.url(), "procuratorate:330000", |e| has(e, &commended)).await;
    let evaluation = &inbox.iter().find(|e| e["id"] == commended).unwrap()["data"]["evaluation"];
    assert_eq!(evaluation["verdict"], "commendation");
    let figures = &evaluation["figures"];
    assert_eq!(figures["source"], "gateway", "{evaluation:#}");
    assert_eq!(figures["agency"], "procuratorate:330100");
    assert_eq!(
        (figures["received"].as_u64(), figures["answeredOnTime"].as_u64(), figures["answeredLate"].as_u64()),
        (Some(1), Some(1), Some(0)),
        "{figures:#}"
    );
    assert_eq!((figures["open"].as_u64(), figures["overdue"].as_u64()), (Some(0), Some(0)), "{figures:#}");

    // The same notice again is a duplicate, whatever the figures are by now.
    let (status, again) = post_json(gw.url(), "procuratorate:000000", &serde_json::to_vec(&notice).unwrap()).await;
    assert_eq!((status, &again["id"]), (200, &commended), "{again}");

    let written = canonical(
        "procuratorate:000000",
        "cn.xietong.evaluation.notice",
        "SPP-2026-JY-0003",
        None,
        json!({"evaluation": {"verdict": "criticism", "agency": "procuratorate:330100",
                              "period": {"from": "2026-07-01", "to": "2026-12-31"},
                              "figures": {"agency": "procuratorate:330100", "from": "2026-07-01T00:00:00+08:00",
                                          "to": "2027-01-01T00:00:00+08:00", "received": 9, "answeredOnTime": 0,
                                          "answeredLate": 9, "open": 0, "overdue": 0}},
               "content": "通报批评。"}),
    );
    let (status, problem) = post_canonical(gw.url(), "procuratorate:000000", &written).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("schema_violation")), "{problem}");
    assert_eq!(problem["details"][0]["pointer"], "/data/evaluation/figures", "{problem}");
    assert!(problem["details"][0]["reason"].as_str().unwrap().contains("computed by the gateway"), "{problem}");
    let reversed = {
        let mut m = notice.clone();
        m["header"]["messageId"] = json!("SPP-2026-JY-0004");
        m["body"]["evaluation"]["periodFrom"] = json!("2026-12-31");
        m["body"]["evaluation"]["periodTo"] = json!("2026-07-01");
        m
    };
    let (status, problem) = post_json(gw.url(), "procuratorate:000000", &serde_json::to_vec(&reversed).unwrap()).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("schema_violation")), "{problem}");
    assert_eq!(problem["details"][0]["pointer"], "/data/evaluation/period/to", "{problem}");
    let mut provincial = notice.clone();
    provincial["header"]["sender"] = json!({"orgCode": "330000", "orgName": "浙江省人民检察院"});
    let (status, problem) =
        post_json(gw.url(), "procuratorate:330000", &serde_json::to_vec(&provincial).unwrap()).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")), "{problem}");
}
