//! Test harness: real servers on 127.0.0.1 (in-process or the real binary), real HTTP clients,
//! temporary data directories and configuration variants.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use xietong::gateway::{Gateway, Overrides};

mod browser;
mod config;
mod requests;
pub mod resp_proxy;
pub use browser::*;
pub use config::*;
pub use requests::*;

pub fn examples_dir() -> PathBuf {
    root().join("tests/fixtures/shared/examples")
}

pub fn example(name: &str) -> Vec<u8> {
    std::fs::read(examples_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn example_json(name: &str) -> Value {
    serde_json::from_slice(&example(name)).unwrap()
}

/// The brief's expectations for each example: `(file name, expectation)`.
pub fn expectations() -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/shared/expected.json")).unwrap();
    let all: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    all.into_iter().filter(|(k, _)| !k.starts_with('_')).collect()
}

/// An in-process gateway on 127.0.0.1:0, on its own actix system thread, with its own data
/// directory. Stops when dropped.
pub struct TestServer {
    pub url: String,
    pub data: tempfile::TempDir,
    pub config: ConfigDir,
    /// The gateway behind the server (its store, clock and configuration).
    pub gateway: std::sync::Arc<Gateway>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::with_settings("")
    }

    pub fn with_settings(settings: &str) -> TestServer {
        Self::with_config(ConfigDir::new(settings))
    }

    pub fn with_config(config_dir: ConfigDir) -> TestServer {
        Self::launch(config_dir, tempfile::tempdir().unwrap(), None)
    }

    /// A server reading `clock` (None: the system's), on `data`.
    pub fn launch(
        config_dir: ConfigDir,
        data: tempfile::TempDir,
        clock: Option<xietong::clock::ManualClock>,
    ) -> TestServer {
        log_when_asked();
        let mut config = config_dir.load();
        if let Some(prefix) = shared_store_prefix(&data) {
            config.settings.store.backend = xietong::config::settings::Backend::Redis;
            config.settings.store.redis.prefix = prefix;
        }
        let scheme = if config.settings.tls.is_some() { "https" } else { "http" };
        let overrides = Overrides { listen: None, data_dir: Some(data.path().to_path_buf()), workers: Some(2) };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let clock: std::sync::Arc<dyn xietong::clock::Clock> = match clock {
                    Some(c) => std::sync::Arc::new(c),
                    None => std::sync::Arc::new(xietong::clock::SystemClock),
                };
                let gateway = Gateway::open_with_clock(config, overrides, clock).await.expect("store opens");
                let gateway = std::sync::Arc::new(gateway);
                gateway.start_workers();
                let running = xietong::http::start(gateway, Some(listener)).expect("server starts");
                tx.send((running.addr, running.handle.clone(), running.gateway())).unwrap();
                running.wait().await.unwrap();
            })
        });
        let (addr, handle, gateway) = rx.recv_timeout(Duration::from_secs(10)).expect("server started");
        TestServer {
            url: format!("{scheme}://{addr}"),
            data,
            config: config_dir,
            gateway,
            handle,
            thread: Some(thread),
        }
    }

    /// Stops this server and starts another on the same configuration and data, reading `clock`:
    /// a restart.
    pub fn restart(mut self, clock: Option<xietong::clock::ManualClock>) -> TestServer {
        self.stop();
        let config = std::mem::replace(&mut self.config, ConfigDir::new(""));
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().unwrap());
        TestServer::launch(config, data, clock)
    }

    /// Stops the server gracefully and waits until its store is closed. Idempotent.
    pub fn stop(&mut self) {
        // As on SIGTERM: streams end, then the server stops. The stop command is sent when `stop`
        // is called; the thread ends once the store closed.
        self.gateway.begin_shutdown();
        drop(self.handle.stop(true));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data.path().join(xietong::store::sqlite::DB_FILE)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(prefix) = shared_store_prefix(&self.data) {
            forget_redis_prefix(&prefix);
        }
    }
}

/// With `XIETONG_TEST_LOG` set to a filter (e.g. `xietong=debug`), in-process test servers log
/// to stderr, which nextest shows for a failing test.
fn log_when_asked() {
    if let Ok(filter) = std::env::var("XIETONG_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
}

/// With `XIETONG_TEST_STORE=redis`, test servers keep their state in Redis (127.0.0.1:6379)
/// instead of the embedded store: the same suites then check the Redis store over HTTP. The
/// key prefix is named after the data directory, so a restart finds its data again.
pub fn shared_store_prefix(data: &tempfile::TempDir) -> Option<String> {
    let wanted = std::env::var("XIETONG_TEST_STORE").is_ok_and(|v| v == "redis");
    let name = data.path().file_name()?.to_string_lossy().to_string();
    wanted.then(|| format!("test-{name}"))
}

/// Deletes every key of a Redis prefix: the gateway's (`{prefix}:…`) and its delivery
/// queues' (`{prefix:q:SUBSCRIPTION}:…`).
pub fn forget_redis_prefix(prefix: &str) {
    let Ok(mut c) = ::redis::Client::open("redis://127.0.0.1:6379").and_then(|c| c.get_connection()) else { return };
    for pattern in xietong::store::redis::key_patterns(prefix) {
        let keys: Vec<String> = ::redis::cmd("KEYS").arg(pattern).query(&mut c).unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = ::redis::cmd("DEL").arg(keys).query(&mut c);
        }
    }
}

/// The real `xietong` binary serving on a free port. Killed when dropped.
pub struct BinaryServer {
    pub url: String,
    pub child: Child,
}

impl BinaryServer {
    pub fn spawn(config: &Path, data_dir: &Path) -> BinaryServer {
        Self::spawn_with(config, data_dir, Some("warn"), Stdio::inherit())
    }

    /// With the configured log level (`RUST_LOG` unset), its log written to `log`.
    pub fn spawn_logging_to(config: &Path, data_dir: &Path, log: &Path) -> BinaryServer {
        Self::spawn_with(config, data_dir, None, Stdio::from(std::fs::File::create(log).unwrap()))
    }

    fn spawn_with(config: &Path, data_dir: &Path, rust_log: Option<&str>, stderr: Stdio) -> BinaryServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xietong"));
        command.args(Self::serve_args(config, data_dir));
        match rust_log {
            Some(level) => command.env("RUST_LOG", level),
            None => command.env_remove("RUST_LOG"),
        };
        Self::from_command(command.stderr(stderr))
    }

    /// The arguments that serve `config` on a free port with `data_dir`.
    pub fn serve_args(config: &Path, data_dir: &Path) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> =
            ["serve", "--listen", "127.0.0.1:0", "--config"].iter().map(Into::into).collect();
        args.extend([config.as_os_str().to_owned(), "--data-dir".into(), data_dir.as_os_str().to_owned()]);
        args
    }

    /// Starts `command` (the binary, or a tool that runs it) and waits for the address it
    /// listens on.
    pub fn from_command(command: &mut Command) -> BinaryServer {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("xietong listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        BinaryServer { url, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (TERM, KILL, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }
}

/// The real binary serving `config` on a data directory of its own; with
/// `XIETONG_TEST_STORE=redis`, on the Redis store under a key prefix of its own (removed when
/// dropped). Killed when dropped.
pub struct Exchange {
    pub server: BinaryServer,
    pub config: ConfigDir,
    pub data: tempfile::TempDir,
}

impl Exchange {
    pub fn start(config: ConfigDir) -> Exchange {
        Self::start_logging(config, None)
    }

    /// With the configured log level, its log written to `log` when given.
    pub fn start_logging(config: ConfigDir, log: Option<&Path>) -> Exchange {
        let data = tempfile::tempdir().unwrap();
        if let Some(prefix) = shared_store_prefix(&data) {
            let path = config.path().join("xietong.yaml");
            let settings = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(!settings.contains("\nstore:"), "the test's settings choose the store themselves");
            let store = format!("\nstore:\n  backend: redis\n  redis:\n    prefix: {prefix}\n");
            std::fs::write(&path, settings + &store).unwrap();
        }
        let server = match log {
            Some(log) => BinaryServer::spawn_logging_to(config.path(), data.path(), log),
            None => BinaryServer::spawn(config.path(), data.path()),
        };
        Exchange { server, config, data }
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// SIGKILL, and waits for the process to end.
    pub fn kill(&mut self) {
        self.server.signal("KILL");
        self.server.wait();
    }

    /// Starts the binary again on the same configuration, data directory and store.
    pub fn restart(&mut self) {
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
        self.server = BinaryServer::spawn(self.config.path(), self.data.path());
    }

    /// The embedded store's file, when the exchange runs on it.
    pub fn sqlite(&self) -> Option<rusqlite::Connection> {
        shared_store_prefix(&self.data)
            .is_none()
            .then(|| rusqlite::Connection::open(self.data.path().join(xietong::store::sqlite::DB_FILE)).unwrap())
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
        if let Some(prefix) = shared_store_prefix(&self.data) {
            forget_redis_prefix(&prefix);
        }
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `xietong-load` binary (the load harness, a crate of its own in this workspace), built
/// beside `xietong` with the same profile: built here when missing or out of date (a no-op once
/// `cargo build --workspace` or `cargo nextest run --workspace` built it).
pub fn load_harness() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let gateway = PathBuf::from(env!("CARGO_BIN_EXE_xietong"));
            let profile = gateway.parent().and_then(|d| d.file_name()).and_then(|n| n.to_str()).unwrap_or("debug");
            let mut build = Command::new(env!("CARGO"));
            build.args(["build", "--quiet", "-p", "xietong-load", "--bin", "xietong-load", "--manifest-path"]);
            build.arg(root().join("Cargo.toml"));
            if profile == "release" {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "cargo build -p xietong-load failed");
            gateway.with_file_name(format!("xietong-load{}", std::env::consts::EXE_SUFFIX))
        })
        .clone()
}

/// Runs the `xietong` binary with `args`; returns exit code, stdout and stderr.
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xietong")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One request a [`Receiver`] got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    pub started: std::time::Instant,
    /// When the receiver answered (None while it stalls or if the caller went away).
    pub answered: Option<std::time::Instant>,
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// How a [`Receiver`] answers a request.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16),
    /// 429 or 503 with `Retry-After: secs`.
    RetryAfter(u16, u64),
    /// A status with a body.
    WithBody(u16, String),
    /// Waits, then answers 200.
    Stall(Duration),
    /// Waits until the gate opens, then answers 200.
    Held(Gate),
}

/// A gate the receiver's answers wait at (`Answer::Held`): closed until the test opens it.
#[derive(Clone, Debug, Default)]
pub struct Gate(std::sync::Arc<(std::sync::atomic::AtomicBool, tokio::sync::Notify)>);

impl Gate {
    pub fn open(&self) {
        self.0.0.store(true, std::sync::atomic::Ordering::SeqCst);
        self.0.1.notify_waiters();
    }

    async fn passed(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.0.0.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

type Behaviour = dyn Fn(usize, &Received) -> Answer + Send + Sync;

struct ReceiverState {
    log: std::sync::Mutex<Vec<Received>>,
    behave: Box<Behaviour>,
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

/// A webhook endpoint on 127.0.0.1 (its own actix server) that records every request and answers
/// as told: `behave(n, request)` for the n-th request (from 0).
pub struct Receiver {
    pub url: String,
    state: std::sync::Arc<ReceiverState>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct InFlight<'a>(&'a ReceiverState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn receive(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    state: actix_web::web::Data<ReceiverState>,
) -> actix_web::HttpResponse {
    use std::sync::atomic::Ordering;
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&state);
    let mut headers = http::HeaderMap::new();
    for (name, value) in req.headers() {
        if let (Ok(n), Ok(v)) =
            (http::HeaderName::from_bytes(name.as_str().as_bytes()), http::HeaderValue::from_bytes(value.as_bytes()))
        {
            headers.append(n, v);
        }
    }
    let mut received =
        Received { headers, body: body.to_vec(), started: std::time::Instant::now(), answered: None, status: 0 };
    // One lock: the n-th request is told it is the n-th, even when requests race.
    let (index, answer) = {
        let mut log = state.log.lock().unwrap();
        let n = log.len();
        let answer = (state.behave)(n, &received);
        log.push(received.clone());
        (n, answer)
    };
    let response = match answer {
        Answer::Status(s) => actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap()).finish(),
        Answer::RetryAfter(s, secs) => {
            actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap())
                .insert_header(("retry-after", secs.to_string()))
                .finish()
        }
        Answer::WithBody(s, b) => {
            actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap()).body(b)
        }
        Answer::Stall(d) => {
            tokio::time::sleep(d).await;
            actix_web::HttpResponse::Ok().finish()
        }
        Answer::Held(gate) => {
            gate.passed().await;
            actix_web::HttpResponse::Ok().finish()
        }
    };
    received.answered = Some(std::time::Instant::now());
    received.status = response.status().as_u16();
    state.log.lock().unwrap()[index] = received;
    response
}

impl Receiver {
    pub fn start(behave: impl Fn(usize, &Received) -> Answer + Send + Sync + 'static) -> Receiver {
        Self::start_with(None, behave)
    }

    /// A receiver on HTTPS with `tls` (which may require client certificates).
    pub fn start_tls(
        tls: rustls::ServerConfig,
        behave: impl Fn(usize, &Received) -> Answer + Send + Sync + 'static,
    ) -> Receiver {
        Self::start_with(Some(tls), behave)
    }

    fn start_with(
        tls: Option<rustls::ServerConfig>,
        behave: impl Fn(usize, &Received) -> Answer + Send + Sync + 'static,
    ) -> Receiver {
        let state = std::sync::Arc::new(ReceiverState {
            log: std::sync::Mutex::new(Vec::new()),
            behave: Box::new(behave),
            in_flight: 0.into(),
            max_in_flight: 0.into(),
        });
        let data = actix_web::web::Data::from(state.clone());
        let tls_scheme = tls.is_some();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new().app_data(data.clone()).default_service(actix_web::web::to(receive))
                })
                .workers(2);
                let server = match tls {
                    Some(config) => server.listen_rustls_0_23(listener, config),
                    None => server.listen(listener),
                }
                .unwrap()
                .run();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            })
        });
        let handle = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let scheme = if tls_scheme { "https" } else { "http" };
        Receiver { url: format!("{scheme}://{addr}/hook"), state, handle, thread: Some(thread) }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| (200..300).contains(&r.status)).collect()
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until `cond` holds (checked every 20 ms), up to `secs`; whether it did.
pub async fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// A fixed webhook secret for the tests' subscriptions.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Settings with short delivery times for the tests; `delivery` adds keys to `delivery:`
/// (`"  retention: 1s\n"`).
pub fn fast_delivery(delivery: &str) -> String {
    format!(
        "rate_limit:\n  per_second: 100000\n  burst: 100000\ndelivery:\n  retry_schedule: [100ms, 200ms, 300ms]\n  jitter: 0\n  request_timeout: 1s\n  lease: 2s\n  tick: 50ms\n  heartbeat: 300ms\n  allow_internal: [127.0.0.0/8]\n{delivery}"
    )
}

/// A private PKI made for one test: a CA, a server certificate for 127.0.0.1 and a client
/// certificate, the PEM files of what the gateway needs, and a server configuration that
/// requires a client certificate from the CA.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The server's certificate (for 127.0.0.1) and key, PEM.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub server: rustls::ServerConfig,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "xietong test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server_cert =
            CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&server_key, &ca).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params.distinguished_name.push(DnType::CommonName, "xietong gateway");
        let client_cert = client_params.signed_by(&client_key, &ca).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca_path = write("ca.pem", ca.pem());
        let client_cert_path = write("client.pem", client_cert.pem());
        let client_key_path = write("client.key", client_key.serialize_pem());
        let server_cert_path = write("server.pem", server_cert.pem());
        let server_key_path = write("server.key", server_key.serialize_pem());

        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(std::sync::Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert.der().clone()], key.into())
            .unwrap();
        Pki {
            dir,
            ca: ca_path,
            client_cert: client_cert_path,
            client_key: client_key_path,
            server_cert: server_cert_path,
            server_key: server_key_path,
            server,
        }
    }
}
