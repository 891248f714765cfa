//! Several instances as one gateway on Redis, and what happens when parts fail: the real
//! binary (killed with SIGKILL), the shared Redis at 127.0.0.1:6379 under a prefix of each
//! test's own, and Redis servers started by the tests themselves on free ports when a test
//! stops and restarts Redis.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

/// Settings that put the gateway on Redis at `url` under `prefix`.
fn on_redis(url: &str, prefix: &str, more: &str) -> String {
    format!(
        "{}store:\n  backend: redis\n  redis:\n    url: {url}\n    prefix: {prefix}\n    timeout: 1s\n{more}",
        fast_delivery("")
    )
}

/// A fresh prefix, its keys removed when the test ends.
struct Prefix(String);

impl Prefix {
    fn new() -> Prefix {
        Prefix(format!("test-{}", uuid::Uuid::now_v7()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        forget_redis_prefix(&self.0);
    }
}

/// A redis-server of the test's own on a free port, with its data in a temporary directory.
struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    aof: bool,
    /// More arguments (TLS, Cluster, a password).
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// `aof`: appendonly with fsync on every write, so acknowledged writes survive a kill.
    fn start(aof: bool) -> RedisServer {
        Self::start_with(aof, &[])
    }

    fn start_with(aof: bool, extra: &[&str]) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let extra = extra.iter().map(|a| a.replace("{port}", &port.to_string())).collect();
        let mut r = RedisServer { port, dir: tempfile::tempdir().unwrap(), aof, extra, child: None };
        r.launch();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--appendonly", if self.aof { "yes" } else { "no" }, "--appendfsync", "always"])
            .args(if self.extra.iter().any(|a| a == "--tls-port") {
                vec!["--port".to_string(), "0".to_string()]
            } else {
                vec!["--port".to_string(), self.port.to_string()]
            })
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(command.spawn().expect("redis-server is installed"));
        let up = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(25));
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        assert!(up, "redis-server did not start on port {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Zhejiang procuratorate's bulletin `tag-n` (to ip_office:330000).
fn tagged_bulletin(n: usize, tag: &str) -> Vec<u8> {
    bulletin(&format!("{tag}-{n}"))
}

/// Configuration for instances of one gateway: on `redis` under `prefix`, with a webhook
/// subscription of ip_office:330000 to `hook` (when given).
fn config(redis: &str, prefix: &str, hook: Option<&str>) -> ConfigDir {
    let config = ConfigDir::new(&on_redis(redis, prefix, ""));
    if let Some(url) = hook {
        config.write(
            "subscriptions.yaml",
            &format!(
                "subscriptions:\n  - id: inbox-hook\n    owner: ip_office:330000\n    webhook:\n      url: {url}\n      secrets: [{SECRET}]\n      concurrency: 2\n"
            ),
        );
    }
    config
}

async fn feed(url: &str, after: &str) -> Vec<String> {
    let r = client()
        .get(format!("{url}/v1/feeds/ip_office:330000/events?after={after}&limit=500"))
        .bearer_auth("demo-ip_office-330000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn delivered_ids(receiver: &Receiver) -> HashSet<String> {
    receiver.delivered().iter().map(|r| r.json()["id"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_are_one_gateway_and_one_finishes_what_a_killed_one_began() {
    const MESSAGES: usize = 60;
    let prefix = Prefix::new();
    // Two instances, two requests at a time each. The first 5 deliveries are answered; the rest
    // wait at a gate until one instance is killed, so the kill is mid-delivery on any machine.
    let gate = Gate::default();
    let held = gate.clone();
    let receiver = Receiver::start(move |n, _| if n < 5 { Answer::Status(200) } else { Answer::Held(held.clone()) });
    let config = config("redis://127.0.0.1:6379", &prefix.0, Some(&receiver.url));
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = BinaryServer::spawn(config.path(), data_a.path());
    let b = BinaryServer::spawn(config.path(), data_b.path());

    // Accepted by either, the messages are one sequence: a feed reads the same from both.
    let mut posted = Vec::new();
    for n in 0..MESSAGES {
        let url = if n % 2 == 0 { &a.url } else { &b.url };
        let (status, body) = post_json(url, "procuratorate:330000", &tagged_bulletin(n, "TWO")).await;
        assert_eq!(status, 202, "{body}");
        posted.push(body["id"].as_str().unwrap().to_string());
    }
    let (from_a, from_b) = (feed(&a.url, "0").await, feed(&b.url, "0").await);
    assert_eq!(from_a, posted, "the feed holds every message in commit order");
    assert_eq!(from_a, from_b, "and reads the same from any instance");
    // A resend to the other instance is recognised.
    let (status, body) = post_json(&b.url, "procuratorate:330000", &tagged_bulletin(0, "TWO")).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(posted[0].as_str())));

    // Both deliver; one is killed mid-delivery and the other finishes its leased work.
    assert!(eventually(20, || receiver.delivered().len() >= 5).await);
    let mut a = a;
    a.signal("KILL");
    a.wait();
    let before = delivered_ids(&receiver).len();
    assert!(before < MESSAGES, "killed mid-delivery ({before} of {MESSAGES} delivered)");
    gate.open();
    let posted: HashSet<String> = posted.into_iter().collect();
    assert!(
        eventually(30, || delivered_ids(&receiver) == posted).await,
        "every message reached the endpoint: {} of {}",
        delivered_ids(&receiver).len(),
        posted.len()
    );
    let per_id = receiver.delivered().iter().fold(HashMap::<String, usize>::new(), |mut m, r| {
        *m.entry(r.json()["id"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        m
    });
    let repeats = per_id.values().filter(|&&n| n > 1).count();
    assert!(repeats <= 4, "only what the killed instance held is sent again (at least once): {repeats} repeats");
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_on_one_instance_reaches_the_other() {
    let prefix = Prefix::new();
    let (one, two) =
        (config("redis://127.0.0.1:6379", &prefix.0, None), config("redis://127.0.0.1:6379", &prefix.0, None));
    let a = TestServer::with_config(one);
    let b = TestServer::with_config(two);
    let recipients = |r: &Value| -> Vec<String> {
        r["recipients"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
    };
    let (_, r) = post_json(&b.url, "procuratorate:330000", &tagged_bulletin(1, "RELOAD")).await;
    assert_eq!(recipients(&r), ["ip_office:330000"]);

    // The operator changes the rules everywhere (a ConfigMap) and reloads one instance.
    for server in [&a, &b] {
        let rules = std::fs::read_to_string(server.config.path().join("rules.yaml")).unwrap();
        let changed = rules.replace(
            "    types: [cn.xietong.bulletin]\n    senders: [ip_office, procuratorate]\n    to: [ { same_level: counterpart } ]",
            "    types: [cn.xietong.bulletin]\n    senders: [ip_office, procuratorate]\n    to: [ { same_level: counterpart } ]\n    copy: [ { national: ip_office } ]",
        );
        assert_ne!(rules, changed);
        // A change on purpose: the shipped routing tests, which pin the default, go.
        server.config.replace_rules(&changed);
    }
    let r = client().post(format!("{}/v1/admin/reload", a.url)).bearer_auth("demo-operator").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut n = 2;
    let reached = loop {
        let (_, r) = post_json(&b.url, "procuratorate:330000", &tagged_bulletin(n, "RELOAD")).await;
        if recipients(&r).contains(&"ip_office:000000".to_string()) {
            break true;
        }
        if n > 60 {
            break false;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reached, "the other instance routes by the new rules within a few seconds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_redis_is_down_ingest_answers_503_and_all_recovers_without_a_restart() {
    let mut redis = RedisServer::start(true);
    let receiver = Receiver::start(|_, _| Answer::Status(200));
    let config = config(&redis.url(), "down", Some(&receiver.url));
    let data = tempfile::tempdir().unwrap();
    let server = BinaryServer::spawn(config.path(), data.path());
    let url = Arc::new(server.url.clone());

    // Clients post all along; they keep what was answered 202, and the 503s.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (url, stop, acked, unavailable) = (url.clone(), stop.clone(), acked.clone(), unavailable.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let r = post_as(
                        &url,
                        "procuratorate:330000",
                        "application/json",
                        tagged_bulletin(c * 100_000 + n, "DOWN"),
                    )
                    .await;
                    match r.status().as_u16() {
                        202 => {
                            let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
                            acked.lock().unwrap().push(id);
                        }
                        503 => {
                            assert_eq!(r.headers()["retry-after"], "1");
                            assert_eq!(r.json::<Value>().await.unwrap()["code"], "store_unavailable");
                            unavailable.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => panic!("unexpected status {other}"),
                    }
                }
            })
        })
        .collect();
    let ready =
        |url: String| async move { client().get(format!("{url}/readyz")).send().await.unwrap().status().as_u16() };
    assert!(eventually(10, || acked.lock().unwrap().len() >= 50).await);
    assert_eq!(ready(server.url.clone()).await, 200);

    redis.kill();
    let mut down_ready = 0;
    for _ in 0..100 {
        down_ready = ready(server.url.clone()).await;
        if down_ready == 503 && unavailable.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(down_ready, 503, "not ready while Redis is down");
    assert!(unavailable.load(Ordering::SeqCst) > 0, "ingest answered 503");
    let acked_while_up = acked.lock().unwrap().len();

    redis.launch();
    assert!(eventually(20, || acked.lock().unwrap().len() >= acked_while_up + 50).await, "ingest recovers by itself");
    assert_eq!(ready(server.url.clone()).await, 200);
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }

    // Every message answered 202 is in Redis (appendfsync always) and reaches the webhook.
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    for id in acked.iter().take(400) {
        let r = client()
            .get(format!("{}/v1/admin/messages/{id}", server.url))
            .bearer_auth("demo-operator")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "message {id} was acknowledged but is not stored");
    }
    assert!(
        eventually(30, || delivered_ids(&receiver).is_superset(&acked)).await,
        "every acknowledged message reached the endpoint: {} of {}",
        acked.intersection(&delivered_ids(&receiver)).count(),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_that_lost_its_data_gets_the_configured_subscriptions_back() {
    let redis = RedisServer::start(false);
    let receiver = Receiver::start(|_, _| Answer::Status(200));
    let config = config(&redis.url(), "lost", Some(&receiver.url));
    let data = tempfile::tempdir().unwrap();
    let server = BinaryServer::spawn(config.path(), data.path());
    let (status, _) = post_json(&server.url, "procuratorate:330000", &tagged_bulletin(1, "LOST")).await;
    assert_eq!(status, 202);
    assert!(eventually(10, || receiver.delivered().len() == 1).await);

    // What a restart without persistence does to the data.
    let mut c = ::redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let () = ::redis::cmd("FLUSHALL").query(&mut c).unwrap();
    let mut n = 2;
    let delivered = loop {
        let (status, _) = post_json(&server.url, "procuratorate:330000", &tagged_bulletin(n, "LOST")).await;
        assert_eq!(status, 202);
        if eventually(1, || receiver.delivered().len() >= 2).await {
            break true;
        }
        if n > 10 {
            break false;
        }
        n += 1;
    };
    assert!(delivered, "the subscription from subscriptions.yaml was made again and delivers");
}

#[test]
fn waiting_for_the_append_only_file_needs_a_redis_that_can() {
    let redis = RedisServer::start(true);
    let mut c = ::redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let info: Vec<::redis::Value> = ::redis::cmd("COMMAND").arg("INFO").arg("WAITAOF").query(&mut c).unwrap();
    let has_waitaof = info.iter().any(|v| !matches!(v, ::redis::Value::Nil));
    let config = ConfigDir::new(&on_redis(&redis.url(), "aof", "    wait: { local: true }\n"));
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_xietong"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config.path())
        .arg("--data-dir")
        .arg(data.path());
    if has_waitaof {
        let server = BinaryServer::spawn(config.path(), data.path());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (status, _) = rt.block_on(post_json(&server.url, "procuratorate:330000", &tagged_bulletin(1, "AOF")));
        assert_eq!(status, 202);
    } else {
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("WAITAOF") && stderr.contains("7.2"), "{stderr}");
    }
}

/// `store.redis.wait` on a Redis that has `WAITAOF` (through a proxy that answers it, since the
/// machine's Redis is older): the 202 comes only after `WAITAOF` was sent on the connection
/// that wrote the message, after that write, and answered; an answer that says the write is
/// not on disk is a 503, never a 202.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_202_waits_for_waitaof_to_answer_that_the_write_is_on_disk() {
    use crate::common::resp_proxy::RespProxy;
    let redis = RedisServer::start(true);
    let proxy = RespProxy::start(redis.port).await;
    let config = ConfigDir::new(&on_redis(&proxy.url(), "aof", "    wait: { local: true, timeout: 5s }\n"));
    let data = tempfile::tempdir().unwrap();
    let (config_path, data_path) = (config.path().to_path_buf(), data.path().to_path_buf());
    let server = tokio::task::spawn_blocking(move || BinaryServer::spawn(&config_path, &data_path)).await.unwrap();

    let url = server.url.clone();
    let mut post =
        tokio::spawn(async move { post_json(&url, "procuratorate:330000", &tagged_bulletin(1, "AOF")).await });
    assert!(eventually(20, || proxy.waitaofs() == 1).await, "the gateway sends WAITAOF");
    // The answer is held: a gateway that did not wait for it would answer now.
    tokio::select! {
        answered = &mut post => panic!("answered {answered:?} while WAITAOF was unanswered"),
        () = tokio::time::sleep(Duration::from_millis(500)) => {}
    }
    proxy.answer_waitaof(b"*2\r\n:1\r\n:0\r\n");
    let (status, receipt) = post.await.unwrap();
    assert_eq!(status, 202, "{receipt}");
    let seen = proxy.seen();
    let wait = seen.iter().position(|s| s.words[0] == "WAITAOF").unwrap();
    assert_eq!(seen[wait].words[1..], ["1", "0", "5000"], "WAITAOF numlocal numreplicas timeout");
    let id = receipt["id"].as_str().unwrap();
    let connection = seen[wait].connection;
    let wrote = seen[..wait].iter().any(|s| s.connection == connection && s.words.iter().any(|w| w.contains(id)));
    assert!(wrote, "the message {id} was written on the connection that waited, before it waited: {seen:#?}");
    assert!(
        seen[wait + 1..].iter().any(|s| s.connection == connection && s.words[0] == "(answered WAITAOF)"),
        "{seen:#?}"
    );

    // Redis says the write did not reach the disk within the timeout: no 202, for the message
    // or for its resend (which finds it written, and must wait for the disk all the same).
    proxy.answer_waitaof(b"*2\r\n:0\r\n:0\r\n");
    for attempt in 0..2 {
        let r = post_as(&server.url, "procuratorate:330000", "application/json", tagged_bulletin(2, "AOF")).await;
        assert_eq!(r.status(), 503, "attempt {attempt}");
        assert_eq!(r.headers()["retry-after"], "1");
        let problem: Value = r.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains("not confirmed"), "{problem}");
    }
    assert_eq!(proxy.waitaofs(), 3);
    proxy.answer_waitaof(b"*2\r\n:1\r\n:0\r\n");
    let (status, receipt) = post_json(&server.url, "procuratorate:330000", &tagged_bulletin(2, "AOF")).await;
    assert_eq!(status, 200, "the resend, once on disk, has the first receipt: {receipt}");
    assert_eq!(proxy.waitaofs(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_to_redis_with_a_password_kept_in_a_file() {
    let pki = Pki::new();
    let (cert, key, ca) =
        (pki.server_cert.to_str().unwrap(), pki.server_key.to_str().unwrap(), pki.ca.to_str().unwrap());
    let redis = RedisServer::start_with(
        false,
        &[
            "--tls-port",
            "{port}",
            "--tls-cert-file",
            cert,
            "--tls-key-file",
            key,
            "--tls-ca-cert-file",
            ca,
            "--tls-auth-clients",
            "no",
            "--requirepass",
            "s3cret-红",
        ],
    );
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let settings = on_redis(&url, "tls", &format!("    password: file:redis-password\n    ca: {ca}\n"));
    let config = ConfigDir::new(&settings);
    config.write("redis-password", "s3cret-红\n");
    let server = TestServer::with_config(config);
    let (status, body) = post_json(&server.url, "procuratorate:330000", &tagged_bulletin(1, "TLS")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(feed(&server.url, "0").await, [body["id"].as_str().unwrap().to_string()]);

    // Without the password the gateway does not start, and says why.
    let config = ConfigDir::new(&on_redis(&url, "tls", &format!("    ca: {ca}\n")));
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xietong"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config.path())
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("redis") && stderr.contains("NOAUTH"), "{stderr}");
}

/// A Redis Cluster of three primaries, each with a third of the slots.
fn three_node_cluster() -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> =
        (0..3).map(|_| RedisServer::start_with(false, &["--cluster-enabled", "yes"])).collect();
    let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
    for (node, (from, to)) in nodes.iter().zip(ranges) {
        let mut c = ::redis::Client::open(node.url()).unwrap().get_connection().unwrap();
        let () = ::redis::cmd("CLUSTER").arg("ADDSLOTSRANGE").arg(from).arg(to).query(&mut c).unwrap();
    }
    let mut first = ::redis::Client::open(nodes[0].url()).unwrap().get_connection().unwrap();
    for other in &nodes[1..] {
        let () = ::redis::cmd("CLUSTER").arg("MEET").arg("127.0.0.1").arg(other.port).query(&mut first).unwrap();
    }
    let ok = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        nodes.iter().all(|n| {
            let mut c = ::redis::Client::open(n.url()).unwrap().get_connection().unwrap();
            ::redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c).unwrap().contains("cluster_state:ok")
        })
    });
    assert!(ok, "the three-node cluster came up");
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_cluster_of_three_shards_serves_and_the_delivery_queues_spread_over_them() {
    let nodes = three_node_cluster();
    let mut c = ::redis::Client::open(nodes[0].url()).unwrap().get_connection().unwrap();
    let shard_of = |c: &mut ::redis::Connection, key: &str| -> usize {
        let slot: u16 = ::redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(c).unwrap();
        usize::from(slot) * 3 / 16384
    };
    // Three webhook subscriptions whose queues fall on the three shards.
    let mut ids: [Option<String>; 3] = Default::default();
    for i in 0.. {
        let id = format!("hook-{i}");
        let shard = shard_of(&mut c, &format!("{{cluster:q:{id}}}:ready"));
        ids[shard].get_or_insert(id);
        if ids.iter().all(Option::is_some) {
            break;
        }
    }
    let ids: Vec<String> = ids.into_iter().map(Option::unwrap).collect();
    let receivers: Vec<Receiver> = ids.iter().map(|_| Receiver::start(|_, _| Answer::Status(200))).collect();
    let config = ConfigDir::new(&on_redis(&nodes[1].url(), "cluster", "    cluster: true\n"));
    let mut yaml = String::from("subscriptions:\n");
    for (id, receiver) in ids.iter().zip(&receivers) {
        yaml.push_str(&format!(
            "  - id: {id}\n    owner: ip_office:330000\n    webhook:\n      url: {}\n      secrets: [{SECRET}]\n",
            receiver.url
        ));
    }
    config.write("subscriptions.yaml", &yaml);
    let server = TestServer::with_config(config);
    let mut posted = HashSet::new();
    for n in 0..10 {
        let (status, body) = post_json(&server.url, "procuratorate:330000", &tagged_bulletin(n, "CLUSTER")).await;
        assert_eq!(status, 202, "{body}");
        posted.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(feed(&server.url, "0").await.into_iter().collect::<HashSet<_>>(), posted);
    for (id, receiver) in ids.iter().zip(&receivers) {
        assert!(eventually(20, || delivered_ids(receiver) == posted).await, "every message through {id}");
    }
    // Each shard holds the queue it was picked for; the messages are on the main tag's shard.
    for (shard, node) in nodes.iter().enumerate() {
        let mut n = ::redis::Client::open(node.url()).unwrap().get_connection().unwrap();
        let keys: Vec<String> = ::redis::cmd("KEYS").arg("*").query(&mut n).unwrap();
        let queue = format!("{{cluster:q:{}}}:", ids[shard]);
        assert!(keys.iter().any(|k| k.starts_with(&queue)), "shard {shard} holds {queue}: {keys:?}");
        let main = keys.iter().any(|k| k.starts_with("{cluster}:"));
        assert_eq!(main, shard == shard_of(&mut c, "{cluster}:seq"), "shard {shard}: {keys:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_chain_in_redis_is_verified_and_a_removed_record_is_caught() {
    let prefix = Prefix::new();
    let config = config("redis://127.0.0.1:6379", &prefix.0, None);
    let server = TestServer::with_config(ConfigDir::new(&on_redis("redis://127.0.0.1:6379", &prefix.0, "")));
    for n in 0..3 {
        let (status, _) = post_json(&server.url, "procuratorate:330000", &tagged_bulletin(n, "AUDIT")).await;
        assert_eq!(status, 202);
    }
    let dir = config.path().to_str().unwrap().to_string();
    let (code, out, err) = run_cli(&["audit", "verify", "--config", &dir]);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((report["records"].as_i64(), report["intact"].as_bool()), (Some(3), Some(true)), "{report}");

    let mut c = ::redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    let _: i64 = ::redis::cmd("XDEL").arg(format!("{{{}}}:audit", prefix.0)).arg("2-1").query(&mut c).unwrap();
    let (code, out, _) = run_cli(&["audit", "verify", "--config", &dir]);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["broken"]["seq"], 3, "the record after the gap names it: {report}");
}
