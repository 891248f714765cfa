//! No state secret crosses: what leaves the gateway is scanned, not only what it stores. For
//! every shared example with a field marked 秘密 or above, the marked values (every text and
//! number below the marked field) must appear in none of: the receipt, each recipient's feed
//! page, its Server-Sent Events, its webhook body, the operators' trace of the message, and
//! `xietong explain`; and, on the Redis store, in none of the gateway's keys.

use std::time::Duration;

use serde_json::Value;
use xietong::model::BodyKind;

use crate::common::*;

/// The values below `node`: texts, and numbers as written.
fn leaves(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Value::Object(members) => members.values().for_each(|v| leaves(v, out)),
        _ => {}
    }
}

/// The shared examples accepted with a field marked as a state secret: name, sender, and the
/// marked values (long enough not to occur by chance).
fn marked_examples(config: &xietong::config::Config) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (name, expected) in expectations() {
        if expected["accepted"] != true {
            continue;
        }
        let sender_id = expected["sender"].as_str().unwrap().to_string();
        let sender: xietong::model::Sender = sender_id.parse().unwrap();
        let doc: Value = serde_json::from_slice(&example(&name)).unwrap();
        let mapping = config.mapping_for(&sender, BodyKind::Native).unwrap();
        let found = mapping.markings(&doc).unwrap();
        let mut values = Vec::new();
        for m in found.markings.iter().filter(|m| m.level.is_state_secret()) {
            leaves(m.source.resolve(&doc).unwrap(), &mut values);
        }
        values.retain(|v| v.chars().count() >= 4);
        if !values.is_empty() {
            out.push((name, sender_id, values));
        }
    }
    out
}

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what} carries a marked value ({} chars)", s.chars().count());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_marked_secret_leaves_by_any_way_out() {
    let receiver = Receiver::start(|_, _| Answer::Status(200));
    let config = ConfigDir::new(&fast_delivery(""));
    let examples = marked_examples(&config.load());
    assert!(examples.len() >= 2, "the shared examples mark secret fields: {examples:?}");

    // Every recipient of those examples also has a webhook.
    let routing = config.load();
    let recipients_of: Vec<Vec<String>> = examples
        .iter()
        .map(|(name, sender, _)| recipients(&routing, &sender.parse().unwrap(), &example(name)))
        .collect();
    let mut hooks = String::from("subscriptions:\n");
    for (i, owner) in recipients_of.iter().flatten().filter(|r| r.contains(':')).enumerate() {
        hooks.push_str(&format!(
            "  - id: out-{i}\n    owner: {owner}\n    webhook:\n      url: {}\n      secrets: [{SECRET}]\n",
            receiver.url
        ));
    }
    config.write("subscriptions.yaml", &hooks);
    let server = TestServer::with_config(config);
    let url = server.url.as_str();

    let mut posted = Vec::new();
    for ((name, sender, secrets), recipients) in examples.iter().zip(&recipients_of) {
        // explain, before anything is stored.
        let dir = server.config.path().to_str().unwrap();
        let file = examples_dir().join(name);
        let (_, stdout, stderr) = run_cli(&["explain", "--config", dir, "--as", sender, file.to_str().unwrap()]);
        assert!(stdout.contains("\"accepted\": true"), "{name}: {stdout}{stderr}");
        assert_clean(&format!("{name}: explain"), &stdout, secrets);

        let (status, receipt) = post_json(url, sender, &example(name)).await;
        assert_eq!(status, 202, "{name}: {receipt}");
        assert_clean(&format!("{name}: the receipt"), &receipt.to_string(), secrets);
        let id = receipt["id"].as_str().unwrap().to_string();
        let trace = operator_get(&format!("{url}/v1/admin/messages/{id}")).await;
        assert_clean(&format!("{name}: the operators' trace"), &trace.to_string(), secrets);

        for recipient in recipients {
            let token = if recipient == "public" { None } else { Some(demo_token(recipient)) };
            let (status, page) = get(&format!("{url}/v1/feeds/{recipient}/events"), token.as_deref()).await;
            assert_eq!(status, 200, "{recipient}: {page}");
            assert!(page.to_string().contains(&id), "{recipient}'s feed has {name}");
            assert_clean(&format!("{name}: {recipient}'s feed"), &page.to_string(), secrets);

            let mut request = client().get(format!("{url}/v1/feeds/{recipient}/stream"));
            if let Some(t) = &token {
                request = request.bearer_auth(t);
            }
            let mut stream = request.send().await.unwrap();
            let mut frames = String::new();
            while !frames.contains(&id) {
                let chunk =
                    tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await.unwrap().unwrap().unwrap();
                frames.push_str(&String::from_utf8_lossy(&chunk));
            }
            assert_clean(&format!("{name}: {recipient}'s event stream"), &frames, secrets);
        }
        posted.push((id, secrets.clone(), recipients.iter().filter(|r| r.contains(':')).count()));
    }

    // The webhooks: every agency recipient's copy arrives, and carries nothing marked.
    let expected: usize = posted.iter().map(|(_, _, n)| n).sum();
    assert!(eventually(20, || receiver.delivered().len() >= expected).await, "every webhook delivered");
    for r in receiver.received() {
        let body = String::from_utf8_lossy(&r.body).to_string();
        for (id, secrets, _) in &posted {
            if body.contains(id.as_str()) {
                assert_clean("a webhook body", &body, secrets);
            }
        }
    }

    // What the store holds: the Redis keyspace under the gateway's prefix, or every row.
    let dump = store_dump(&server);
    assert!(dump.contains(&posted[0].0), "the dump reads the gateway's data");
    for (_, secrets, _) in &posted {
        assert_clean("the store", &dump, secrets);
    }
}

/// Who receives `body` from `sender` under `config`, as the gateway would route it.
fn recipients(config: &xietong::config::Config, sender: &xietong::model::Sender, body: &[u8]) -> Vec<String> {
    let format = config.mapping_for(sender, BodyKind::Native).unwrap();
    let n = xietong::pipeline::normalize(&config.schemas, format, sender, body).unwrap();
    let a = xietong::pipeline::address(&config.router, &n.event, sender, None).unwrap();
    a.deliveries.iter().map(|d| d.routed.id.to_string()).collect()
}

/// Everything the store of `server` holds, as text: on Redis every key under its prefix with
/// its value, on the embedded store every row of every table.
fn store_dump(server: &TestServer) -> String {
    if let Some(prefix) = shared_store_prefix(&server.data) {
        return redis_dump(&prefix);
    }
    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = String::new();
    for table in tables {
        let mut rows = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = rows.column_count();
        let mut rows = rows.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            out.push_str(&table);
            for i in 0..columns {
                out.push(' ');
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        out.push_str(&String::from_utf8_lossy(t))
                    }
                    rusqlite::types::ValueRef::Integer(n) => out.push_str(&n.to_string()),
                    rusqlite::types::ValueRef::Real(x) => out.push_str(&x.to_string()),
                    rusqlite::types::ValueRef::Null => {}
                }
            }
            out.push('\n');
        }
    }
    out
}

/// Every key under the gateway's prefix with its value, as text.
fn redis_dump(prefix: &str) -> String {
    let mut c = ::redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    let mut out = String::new();
    for pattern in xietong::store::redis::key_patterns(prefix) {
        let keys: Vec<String> = ::redis::cmd("KEYS").arg(pattern).query(&mut c).unwrap();
        for key in keys {
            let kind: String = ::redis::cmd("TYPE").arg(&key).query(&mut c).unwrap();
            let value: ::redis::Value = match kind.as_str() {
                "string" => ::redis::cmd("GET").arg(&key).query(&mut c).unwrap(),
                "hash" => ::redis::cmd("HGETALL").arg(&key).query(&mut c).unwrap(),
                "list" => ::redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(&mut c).unwrap(),
                "set" => ::redis::cmd("SMEMBERS").arg(&key).query(&mut c).unwrap(),
                "zset" => ::redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).arg("WITHSCORES").query(&mut c).unwrap(),
                "stream" => ::redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query(&mut c).unwrap(),
                _ => ::redis::Value::Nil,
            };
            out.push_str(&key);
            out.push(' ');
            out.push_str(&text_of(&value));
            out.push('\n');
        }
    }
    out
}

fn text_of(v: &::redis::Value) -> String {
    match v {
        ::redis::Value::BulkString(b) => String::from_utf8_lossy(b).to_string(),
        ::redis::Value::SimpleString(s) => s.clone(),
        ::redis::Value::Int(i) => i.to_string(),
        ::redis::Value::Array(items) | ::redis::Value::Set(items) => {
            items.iter().map(text_of).collect::<Vec<_>>().join(" ")
        }
        ::redis::Value::Map(pairs) => {
            pairs.iter().map(|(k, v)| format!("{} {}", text_of(k), text_of(v))).collect::<Vec<_>>().join(" ")
        }
        other => format!("{other:?}"),
    }
}

mod generated {
    //! The same promise for messages no one wrote by hand: fields marked 秘密, 机密 or 绝密 at
    //! random places of a clue transfer (an item of an array, a nested member, free text, an
    //! attachment, a member no rule reads, an object whose keys are themselves secret). Whatever
    //! the gateway decides (accept, or refuse), no marked value is in what it would store, in any
    //! recipient's copy, or in its answer.

    use std::sync::LazyLock;

    use proptest::prelude::*;
    use serde_json::{Value, json};
    use xietong::model::BodyKind;

    use crate::common::*;

    static CONFIG: LazyLock<xietong::config::Config> = LazyLock::new(|| ConfigDir::new("").load());

    /// Where a secret goes: the path (as `zdmj` writes it) and how the message is changed.
    #[derive(Clone, Debug)]
    enum Place {
        /// A text member of an item of the parties array.
        PartyField(usize, &'static str),
        CaseName,
        Narrative,
        /// An attachment's file name, its whole item marked.
        Attachment,
        /// A member no rule reads (it would travel in `extra`), nested.
        Unread(u8),
        /// An object no rule reads whose key is the secret, the object marked.
        SecretKey(u8),
    }

    fn level() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["秘密", "机密", "绝密", "机密★10年"])
    }

    fn place() -> impl Strategy<Value = Place> {
        prop_oneof![
            (0usize..3, prop::sample::select(vec!["xm", "mc", "sfzh", "tyshxydm"]))
                .prop_map(|(i, f)| Place::PartyField(i, f)),
            Just(Place::CaseName),
            Just(Place::Narrative),
            Just(Place::Attachment),
            any::<u8>().prop_map(Place::Unread),
            any::<u8>().prop_map(Place::SecretKey),
        ]
    }

    /// Applies the placements; the secret values and the marked message.
    fn marked(places: &[(Place, &'static str)], salt: u32) -> (Vec<String>, Value) {
        let mut m = example_json("ipo-clue-transfer.json");
        let mut secrets = Vec::new();
        for (i, (place, level)) in places.iter().enumerate() {
            let secret = format!("绝密值{salt:08x}{i}");
            let path = match place {
                Place::PartyField(p, f) => {
                    m["dsr"][*p][*f] = json!(secret);
                    format!("dsr/{p}/{f}")
                }
                Place::CaseName => {
                    m["aj"]["ajmc"] = json!(secret);
                    "aj/ajmc".to_string()
                }
                Place::Narrative => {
                    m["nr"] = json!(secret);
                    "nr".to_string()
                }
                Place::Attachment => {
                    m["fj"][0]["wjm"] = json!(secret);
                    "fj/0".to_string()
                }
                Place::Unread(n) => {
                    m[format!("kz{n}")] = json!({"nested": [{"deep": secret}]});
                    format!("kz{n}/nested/0/deep")
                }
                Place::SecretKey(n) => {
                    m[format!("bz{n}")] = json!({ secret.clone(): "v" });
                    format!("bz{n}")
                }
            };
            m["zdmj"][path] = json!(level);
            secrets.push(secret);
        }
        (secrets, m)
    }

    /// Each place on its own is accepted (a marked required member refuses the message), so the
    /// property sees accepted messages, not only refusals.
    #[test]
    fn the_places_a_secret_can_go_are_accepted_alone() {
        let sender: xietong::model::Sender = "ip_office:330100".parse().unwrap();
        let format = CONFIG.mapping_for(&sender, BodyKind::Native).unwrap();
        let places = [
            Place::PartyField(1, "xm"),
            Place::PartyField(0, "tyshxydm"),
            Place::Attachment,
            Place::Unread(7),
            Place::SecretKey(9),
        ];
        for place in places {
            let (secrets, message) = marked(&[(place.clone(), "机密")], 1);
            let body = serde_json::to_vec(&message).unwrap();
            let n = xietong::pipeline::normalize(&CONFIG.schemas, format, &sender, &body)
                .unwrap_or_else(|p| panic!("{place:?}: {p:?}"));
            assert!(!n.event.to_string().contains(&secrets[0]), "{place:?}");
            assert!(!n.stripped.is_empty(), "{place:?}: something was removed");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        #[test]
        fn no_marked_value_in_any_output(
            places in prop::collection::vec((place(), level()), 1..4),
            salt: u32,
        ) {
            let config = &*CONFIG;
            let (secrets, message) = marked(&places, salt);
            let sender: xietong::model::Sender = "ip_office:330100".parse().unwrap();
            let format = config.mapping_for(&sender, BodyKind::Native).unwrap();
            let body = serde_json::to_vec(&message).unwrap();
            let outputs: Vec<String> = match xietong::pipeline::normalize(&config.schemas, format, &sender, &body) {
                Err(refusal) => vec![format!("{refusal:?}")],
                Ok(n) => {
                    let mut out = vec![n.event.to_string()];
                    match xietong::pipeline::address(&config.router, &n.event, &sender, None) {
                        Ok(a) => out.extend(a.deliveries.iter().map(|d| d.event(&n.event).to_string())),
                        Err(refusal) => out.push(format!("{refusal:?}")),
                    }
                    out
                }
            };
            for output in &outputs {
                for secret in &secrets {
                    prop_assert!(!output.contains(secret.as_str()), "a marked value left in {output}");
                }
            }
        }
    }

    /// The same placements through the running gateway, on the store the suite runs on: no
    /// marked value is in any answer, any recipient's feed, the operators' trace, or anything
    /// the store holds (the Redis keyspace under the gateway's prefix, every SQLite row).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_marked_value_in_any_answer_feed_or_the_store() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;

        let server = TestServer::start();
        let url = server.url.as_str();
        let sender: xietong::model::Sender = "ip_office:330100".parse().unwrap();
        let strategy = (prop::collection::vec((place(), level()), 1..4), any::<u32>());
        let mut runner = TestRunner::default();
        let mut secrets = Vec::new();
        let mut outputs = Vec::new();
        let mut accepted = Vec::new();
        for n in 0..48 {
            let (places, salt) = strategy.new_tree(&mut runner).unwrap().current();
            let (mut these, mut message) = marked(&places, salt);
            message["xxid"] = json!(format!("ZJ-HZ-GEN-{n:04}"));
            let (status, answer) = post_json(url, &sender.to_string(), &serde_json::to_vec(&message).unwrap()).await;
            assert!(status == 202 || (400..500).contains(&status), "{places:?}: {status} {answer}");
            outputs.push((format!("the answer to {places:?}"), answer.to_string()));
            if status == 202 {
                let id = answer["id"].as_str().unwrap().to_string();
                let trace = operator_get(&format!("{url}/v1/admin/messages/{id}")).await;
                outputs.push((format!("the trace of {places:?}"), trace.to_string()));
                accepted.push(id);
            }
            secrets.append(&mut these);
        }
        assert!(accepted.len() >= 12, "enough of the generated messages are accepted: {}", accepted.len());

        let mut feeds = 0;
        for recipient in super::recipients(&CONFIG, &sender, &example("ipo-clue-transfer.json")) {
            let token = (recipient != "public").then(|| demo_token(&recipient));
            let (status, page) = get(&format!("{url}/v1/feeds/{recipient}/events?limit=1000"), token.as_deref()).await;
            if status == 401 {
                continue; // no demo token for this agency in the shipped configuration
            }
            feeds += 1;
            assert_eq!(status, 200, "{recipient}: {page}");
            let page = page.to_string();
            assert!(
                accepted.iter().all(|id| page.contains(id.as_str())),
                "{recipient}'s feed has every accepted message"
            );
            outputs.push((format!("{recipient}'s feed"), page));
        }
        assert!(feeds >= 1, "a recipient's feed was read");
        let dump = super::store_dump(&server);
        assert!(accepted.iter().all(|id| dump.contains(id.as_str())), "the dump reads the gateway's data");
        outputs.push(("the store".to_string(), dump));
        for (what, text) in &outputs {
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "{secret} in {what}");
            }
        }
    }
}
