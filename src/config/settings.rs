//! `xietong.yaml`: the gateway's settings. Every key is optional; the defaults below are
//! what a missing key means.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;
use crate::model::AgencyKind;
use crate::model::shape::Shape;
use crate::secrecy::Level;
use crate::secrecy::mask;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// The gateway's address as its callers reach it (`https://xietong.example.cn`), without a
    /// trailing slash: events name their schema under it (`dataschema`). Default: `http://` (or
    /// `https://` with TLS) `localhost` and the listening port.
    pub public_url: Option<String>,
    /// The embedded store's directory, relative to the working directory.
    pub data_dir: PathBuf,
    pub limits: Limits,
    /// The default rate limit of each agency; `agencies.yaml` may override it per agency.
    pub rate_limit: RateLimit,
    pub log: Log,
    pub store: StoreSettings,
    /// The source format of each agency kind's native messages, unless `agencies.yaml` names one.
    pub formats: BTreeMap<String, String>,
    /// A directory of message schemas (relative to the configuration directory) read at start
    /// and on reload, over the shipped ones: a file adds a type or replaces a shipped one
    /// (docs/messages.md#adding-a-message-type). None: the shipped schemas only.
    pub schemas: Option<PathBuf>,
    /// How long a stopping server waits for requests in flight.
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; default: one per core.
    pub workers: Option<usize>,
    pub routing: Routing,
    pub delivery: Delivery,
    /// HTTPS on the listener, and client certificates (docs/security.md). None: plain HTTP.
    pub tls: Option<Tls>,
    pub audit: Audit,
    pub console: Console,
}

/// The operators' console (docs/console.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Console {
    /// A session ends after this long without a request (`30m`).
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
}

impl Default for Console {
    fn default() -> Self {
        Console { idle_timeout: Duration::from_secs(30 * 60) }
    }
}

/// The audit chain (docs/security.md).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// sha256 (default) or sm3. A change applies to records appended from then on; each
    /// record names its own.
    pub hash: crate::audit::Algorithm,
    /// An Ed25519 private key (PKCS#8 PEM, `xietong audit key`), relative to the configuration
    /// directory: the gateway signs a checkpoint of the chain's head with it every
    /// `checkpoint_every`. None: no checkpoints.
    pub signing_key: Option<PathBuf>,
    /// The public key `xietong audit verify` checks checkpoints with (the signing key's public
    /// half when absent).
    pub verify_key: Option<PathBuf>,
    #[serde(deserialize_with = "duration")]
    pub checkpoint_every: Duration,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            hash: crate::audit::Algorithm::Sha256,
            signing_key: None,
            verify_key: None,
            checkpoint_every: Duration::from_secs(3600),
        }
    }
}

/// TLS on the listener (TLS 1.2 and 1.3 only). Paths are relative to the configuration
/// directory. The files are read again on SIGHUP, and when they change (checked every
/// `watch_every`), without a restart.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The server's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA bundles (PEM) whose client certificates agency systems may present (mutual TLS).
    /// Empty: no client certificates are asked for.
    #[serde(default)]
    pub client_ca: Vec<PathBuf>,
    /// Certificate revocation lists (PEM or DER) of those CAs. With any, a client certificate
    /// whose CA has no list here is refused too.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// How often the files are checked for changes.
    #[serde(default = "default_watch_every", deserialize_with = "duration")]
    pub watch_every: Duration,
}

fn default_watch_every() -> Duration {
    Duration::from_secs(10)
}

/// How messages reach their recipients: feeds and webhooks. Durations are written like `90d`,
/// `10s`, `250ms`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// How long feed entries are kept; a cursor older than that gets 410.
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
    /// How often entries past the retention are purged.
    #[serde(deserialize_with = "duration")]
    pub purge_every: Duration,
    /// The waits between webhook attempts; after the last one the attempt is dead.
    #[serde(deserialize_with = "durations")]
    pub retry_schedule: Vec<Duration>,
    /// Each wait is varied at random by up to this share, so retries do not come in waves.
    pub jitter: f64,
    /// How long a webhook request may take.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// How long an attempt is leased while being sent: longer than the request timeout, so a
    /// message is never being sent twice at once; after a crash, it is due again when it ends.
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    /// Requests in flight at once per endpoint, unless the subscription says otherwise.
    pub concurrency: u32,
    /// Requests per second per endpoint, unless the subscription says otherwise.
    pub rate_per_second: u32,
    /// How often an idle event stream (SSE) carries a heartbeat comment.
    #[serde(deserialize_with = "duration")]
    pub heartbeat: Duration,
    /// The longest a long-poll (`wait`) may wait.
    #[serde(deserialize_with = "duration")]
    pub max_wait: Duration,
    /// How often the webhook worker looks for retries that became due.
    #[serde(deserialize_with = "duration")]
    pub tick: Duration,
    /// Internal address ranges (CIDR) webhooks may be sent to. Loopback, private, link-local
    /// and other internal addresses are refused unless listed here (docs/security.md).
    pub allow_internal: Vec<String>,
}

impl Default for Delivery {
    fn default() -> Self {
        let secs = Duration::from_secs;
        Delivery {
            retention: secs(90 * 24 * 3600),
            purge_every: secs(3600),
            // The Standard Webhooks schedule: about 28 hours in all.
            retry_schedule: [5, 300, 1800, 7200, 18000, 36000, 36000].into_iter().map(secs).collect(),
            jitter: 0.2,
            request_timeout: secs(10),
            lease: secs(40),
            concurrency: 4,
            rate_per_second: 50,
            heartbeat: secs(15),
            max_wait: secs(60),
            tick: Duration::from_millis(250),
            allow_internal: Vec::new(),
        }
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration such as 10s, 5m or 90d ({e})")))
}

fn durations<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|t| {
            humantime::parse_duration(t).map_err(|e| serde::de::Error::custom(format!("`{t}` is not a duration ({e})")))
        })
        .collect()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Routing {
    /// The feed that keeps messages no rule routes.
    pub operators_feed: String,
    /// The default clearance of each kind of recipient.
    pub clearance: ClearanceDefaults,
    /// How the public feed's copy is anonymised.
    pub anonymise: Anonymise,
}

/// How the public copy is anonymised, beyond its fixed rules (parties, numbers, e-mail and street
/// addresses): docs/messages.md.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Anonymise {
    /// Titles after which a surname (and given name) is a person's: 张警官 → 某警官.
    pub titles: Vec<String>,
    /// Role words before which a name is a person's: 联系人王芳 → 联系人某某.
    pub roles: Vec<String>,
    /// More regular expressions whose matches are masked (××××), e.g. car plates.
    pub patterns: Vec<String>,
}

impl Default for Anonymise {
    fn default() -> Self {
        Anonymise {
            titles: mask::TITLES.iter().map(|t| t.to_string()).collect(),
            roles: mask::ROLES.iter().map(|r| r.to_string()).collect(),
            patterns: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClearanceDefaults {
    pub agency: Level,
    pub hub: Level,
    pub public: Level,
    pub operators: Level,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            operators_feed: "operators".into(),
            clearance: ClearanceDefaults::default(),
            anonymise: Anonymise::default(),
        }
    }
}

impl ClearanceDefaults {
    pub fn values(&self) -> impl Iterator<Item = Level> {
        [self.agency, self.hub, self.public, self.operators].into_iter()
    }
}

impl Default for ClearanceDefaults {
    fn default() -> Self {
        ClearanceDefaults {
            agency: Level::WorkSecret,
            hub: Level::Internal,
            public: Level::Public,
            operators: Level::WorkSecret,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted request body (413 above it).
    pub max_body_bytes: usize,
    /// Deepest nesting of a message's objects and arrays (422 limit_exceeded above it).
    pub max_depth: usize,
    /// Longest string in a message, in characters.
    pub max_string_chars: usize,
    /// Most items in one array (or members in one object) of a message.
    pub max_items: usize,
    /// How long a client may take to send a request's headers (408 after it): slow-loris.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Open connections per worker thread, all clients together.
    pub max_connections: usize,
    /// Requests in flight from one client address at once (429 above it).
    pub max_requests_per_client: usize,
    /// Open connections from one client address (a request on one more gets 429 and the
    /// connection is closed).
    pub max_connections_per_client: usize,
    /// The request line and headers together (431 above it). The HTTP layer itself stops at
    /// 128 KiB and 96 headers, whatever this says.
    pub max_header_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained messages per second.
    pub per_second: u32,
    /// Messages that may arrive at once above the sustained rate.
    pub burst: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
    /// A tracing filter: `info`, `xietong=debug`, ... `RUST_LOG` overrides it.
    pub level: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// Which store keeps the gateway's state: `store: redis` (or `store: {backend: redis, ...}`)
/// switches from the embedded default.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "StoreForm")]
pub struct StoreSettings {
    pub backend: Backend,
    /// Embedded: most messages committed in one transaction (one disk sync).
    pub batch_max: usize,
    /// Embedded: how long a commit waits for a lock held by another process before the store
    /// is reported unavailable (503).
    pub busy_timeout_ms: u64,
    pub redis: RedisSettings,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// SQLite in `data_dir`: one instance, no other service.
    #[default]
    Embedded,
    /// Redis: several instances share it (docs/deploy.md).
    Redis,
}

/// `store:` as written: a backend's name alone, or the whole map.
enum StoreForm {
    Name(Backend),
    Map(StoreMap),
}

impl<'de> Deserialize<'de> for StoreForm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Form;
        impl<'de> serde::de::Visitor<'de> for Form {
            type Value = StoreForm;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`embedded`, `redis`, or a map with backend, batch_max, busy_timeout_ms and redis")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StoreForm, E> {
                Backend::deserialize(serde::de::value::StrDeserializer::<E>::new(v)).map(StoreForm::Name)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<StoreForm, A::Error> {
                StoreMap::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(StoreForm::Map)
            }
        }
        d.deserialize_any(Form)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct StoreMap {
    backend: Backend,
    batch_max: usize,
    busy_timeout_ms: u64,
    redis: RedisSettings,
}

impl Default for StoreMap {
    fn default() -> Self {
        let d = StoreSettings::default();
        StoreMap { backend: d.backend, batch_max: d.batch_max, busy_timeout_ms: d.busy_timeout_ms, redis: d.redis }
    }
}

impl From<StoreForm> for StoreSettings {
    fn from(form: StoreForm) -> Self {
        match form {
            StoreForm::Name(backend) => StoreSettings { backend, ..StoreSettings::default() },
            StoreForm::Map(m) => StoreSettings {
                backend: m.backend,
                batch_max: m.batch_max,
                busy_timeout_ms: m.busy_timeout_ms,
                redis: m.redis,
            },
        }
    }
}

/// The Redis store (docs/deploy.md).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://HOST:PORT/DB` or `rediss://` (TLS); `env:NAME` or `file:PATH` to keep it (and a
    /// password in it) out of the file. With `cluster`, any node of the cluster.
    pub url: String,
    /// Redis Cluster: the keys of one gateway share a hash tag, so they live on one shard.
    pub cluster: bool,
    /// The password, when the URL carries none: `env:NAME`, `file:PATH` or the value.
    pub password: Option<String>,
    /// A CA bundle (PEM) that signs the server's certificate (`rediss://`), relative to the
    /// configuration directory. None: the system's roots.
    pub ca: Option<PathBuf>,
    /// The hash tag every key starts with (`{prefix}:`): gateways that share a Redis need
    /// different prefixes.
    pub prefix: String,
    /// How long a connection attempt or a command may take before the store is reported
    /// unavailable (503).
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Wait after each accepted message until Redis has it in its append-only file (`WAITAOF`,
    /// Redis 7.2 or later), so a 202 survives a Redis crash. None: Redis's own fsync policy.
    pub wait: Option<WaitAof>,
}

impl RedisSettings {
    /// Reads the URL and password kept outside the file (`env:`, `file:`), puts the password
    /// into the URL, and makes the CA's path absolute (from `dir`, the configuration directory).
    pub fn resolve(&mut self, dir: &Path) -> Result<(), String> {
        if let Some(r) = super::files::reference(&self.url, dir) {
            self.url = r.map_err(|e| format!("store.redis.url: {e}"))?;
        }
        if let Some(password) = self.password.take() {
            let password = match super::files::reference(&password, dir) {
                Some(r) => r.map_err(|e| format!("store.redis.password: {e}"))?,
                None => password,
            };
            let mut url = url::Url::parse(&self.url).map_err(|e| format!("store.redis.url: {e}"))?;
            if url.password().is_none() {
                url.set_password(Some(&password))
                    .map_err(|()| "store.redis.url cannot carry a password".to_string())?;
            }
            self.url = url.to_string();
        }
        if let Some(ca) = &self.ca {
            self.ca = Some(dir.join(ca));
        }
        match self.url.split_once("://").map(|(scheme, _)| scheme) {
            Some("redis" | "rediss") => Ok(()),
            _ => Err(format!("store.redis.url: `{}` is not a redis:// or rediss:// URL", redact(&self.url))),
        }
    }
}

/// A URL with its password hidden, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(not a URL)".into(),
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: "redis://127.0.0.1:6379".into(),
            cluster: false,
            password: None,
            ca: None,
            prefix: "xietong".into(),
            timeout: Duration::from_secs(2),
            wait: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitAof {
    /// The local AOF must have the write (`appendonly yes`).
    #[serde(default = "yes")]
    pub local: bool,
    /// This many replicas must have it in theirs.
    #[serde(default)]
    pub replicas: u32,
    #[serde(default = "wait_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

fn yes() -> bool {
    true
}

fn wait_timeout() -> Duration {
    Duration::from_secs(1)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            limits: Limits::default(),
            rate_limit: RateLimit { per_second: 50, burst: 100 },
            log: Log::default(),
            store: StoreSettings::default(),
            formats: BTreeMap::from([
                ("ip_office".to_string(), "ipo-enforcement".to_string()),
                ("procuratorate".to_string(), "procuratorate-case".to_string()),
            ]),
            schemas: None,
            shutdown_timeout_secs: 30,
            workers: None,
            routing: Routing::default(),
            delivery: Delivery::default(),
            tls: None,
            audit: Audit::default(),
            console: Console::default(),
        }
    }
}

impl Limits {
    /// The limits on a message's shape.
    pub fn shape(&self) -> Shape {
        Shape { max_depth: self.max_depth, max_string_chars: self.max_string_chars, max_items: self.max_items }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let shape = Shape::default();
        Limits {
            max_body_bytes: 1024 * 1024,
            max_depth: shape.max_depth,
            max_string_chars: shape.max_string_chars,
            max_items: shape.max_items,
            request_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_requests_per_client: 256,
            max_connections_per_client: 128,
            max_header_bytes: 16 * 1024,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log { format: LogFormat::Text, level: "info".into() }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: Backend::Embedded,
            batch_max: 256,
            busy_timeout_ms: 5000,
            redis: RedisSettings::default(),
        }
    }
}

/// Checks a public URL: absolute http(s), no query, fragment or trailing slash.
fn public_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("`{text}`: an http or https URL with a host, e.g. https://xietong.example.cn"));
    }
    if url.query().is_some() || url.fragment().is_some() || text.ends_with('/') {
        return Err(format!("`{text}`: no query, fragment or trailing slash"));
    }
    Ok(())
}

impl Settings {
    /// The gateway's address as callers reach it (see [`Settings::public_url`]).
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.clone(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://localhost:{}", self.listen.port())
            }
        }
    }

    /// Reads `path` (a missing file means all defaults) and checks it.
    pub fn load(path: &Path, errors: &mut Vec<ConfigError>) -> Settings {
        // Missing: all defaults. With problems (recorded): defaults too, so that checking goes on.
        let settings = super::files::read_yaml::<Settings>(path, true, errors).unwrap_or_default();
        if let Some(u) = &settings.public_url
            && let Err(e) = public_url(u)
        {
            errors.push(ConfigError::new(path, format!("public_url: {e}")));
        }
        // The HTTP layer's clock ticks every 500 ms: a shorter timeout can fire at once.
        if settings.limits.request_timeout < Duration::from_secs(1)
            || settings.limits.idle_timeout < Duration::from_secs(1)
        {
            errors.push(ConfigError::new(path, "limits.request_timeout and limits.idle_timeout: at least 1s"));
        }
        if let Err(e) = crate::deliver::guard::Guard::new(&settings.delivery.allow_internal) {
            errors.push(ConfigError::new(path, e));
        }
        let l = &settings.limits;
        if [
            l.max_body_bytes,
            l.max_depth,
            l.max_string_chars,
            l.max_items,
            l.max_connections,
            l.max_requests_per_client,
            l.max_header_bytes,
            l.max_connections_per_client,
        ]
        .contains(&0)
        {
            errors.push(ConfigError::new(path, "limits: every limit must be above 0"));
        }
        if settings.rate_limit.per_second == 0 || settings.rate_limit.burst == 0 {
            errors.push(ConfigError::new(path, "rate_limit.per_second and rate_limit.burst must be above 0"));
        }
        let feed = &settings.routing.operators_feed;
        if feed == crate::route::recipient::PUBLIC
            || feed.is_empty()
            || !feed.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            errors.push(ConfigError::new(
                path,
                "routing.operators_feed: a feed name of lowercase letters, digits, `_` and `-`, not `public`",
            ));
        }
        if settings.routing.clearance.values().any(Level::is_state_secret) {
            errors.push(ConfigError::new(
                path,
                "routing.clearance: no recipient may be cleared for state secrets (秘密, 机密, 绝密)",
            ));
        }
        let d = &settings.delivery;
        if d.lease <= d.request_timeout {
            errors.push(ConfigError::new(
                path,
                "delivery.lease must be longer than delivery.request_timeout: a message is never sent twice at once",
            ));
        }
        if d.retry_schedule.is_empty() {
            errors.push(ConfigError::new(path, "delivery.retry_schedule needs at least one wait"));
        }
        if !(0.0..=1.0).contains(&d.jitter) {
            errors.push(ConfigError::new(path, "delivery.jitter is a share between 0 and 1"));
        }
        if d.concurrency == 0 || d.rate_per_second == 0 {
            errors.push(ConfigError::new(path, "delivery.concurrency and delivery.rate_per_second must be above 0"));
        }
        if settings.store.batch_max == 0 {
            errors.push(ConfigError::new(path, "store.batch_max must be above 0"));
        }
        settings
    }

    /// Checks that every kind's default format (`formats:`) is a kind and a format of
    /// `sources/`.
    pub fn check_formats(&self, path: &Path, formats: &BTreeSet<String>, errors: &mut Vec<ConfigError>) {
        for (kind, format) in &self.formats {
            if let Err(e) = kind.parse::<AgencyKind>() {
                errors.push(ConfigError::new(path, format!("formats: {e}")));
            }
            if !formats.contains(format) {
                errors.push(ConfigError::new(path, format!("formats.{kind}: no source format `{format}` in sources/")));
            }
        }
    }

    /// The schemas directory, resolved against the configuration directory.
    pub fn schemas_dir(&self, config_dir: &Path) -> Option<PathBuf> {
        self.schemas.as_ref().map(|d| config_dir.join(d))
    }

    /// The configured default format of an agency kind.
    pub fn default_format(&self, kind: AgencyKind) -> Option<&str> {
        self.formats.get(kind.as_str()).map(String::as_str)
    }
}
