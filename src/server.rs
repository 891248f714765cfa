//! The HTTP server: the shared state, the routes, start-up, configuration reload and graceful
//! shutdown.
//!
//! The configuration lives in a [`Runtime`] snapshot behind an atomic pointer. A request takes
//! the snapshot once, at its start, and uses it throughout: a reload (`POST /v1/admin/reload` or
//! SIGHUP) swaps in a complete, checked snapshot, so no request sees half-old, half-new
//! configuration, and an invalid configuration is refused while the old one keeps serving.
//!
//! On SIGTERM or SIGINT the server stops accepting connections, ends its event streams and
//! long-polls (their clients resume from their cursor, on another instance or after the
//! restart), lets requests in flight finish (up to `shutdown_timeout_secs`), then commits what
//! the store has queued and exits.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use arc_swap::ArcSwap;
use serde_json::json;
use tracing_actix_web::TracingLogger;

use crate::clock::{Clock, SystemClock};
use crate::config::settings::Backend;
use crate::config::{Config, ConfigErrors};
use crate::connections::PerAddress;
use crate::ingest::{self, limit::RateLimits, response};
use crate::model::{Code, Problem};
use crate::store::Store;
use crate::store::redis::RedisStore;
use crate::store::sqlite::{self, SqliteStore};
use crate::telemetry::Metrics;
use crate::{admin, deliver, threads};

/// One consistent configuration and what is derived from it.
pub struct Runtime {
    pub config: Config,
    pub limits: RateLimits,
}

/// Everything a request handler needs.
pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// The time: received times, deadlines, overdue checks.
    pub clock: Arc<dyn Clock>,
    overrides: Overrides,
    /// The listener's TLS parts, when it serves HTTPS: reloads swap their files.
    tls: std::sync::OnceLock<crate::tls::Listener>,
    /// Requests in flight per client address (`limits.max_requests_per_client`).
    in_flight: PerAddress,
    /// Open connections per client address (`limits.max_connections_per_client`).
    connections: PerAddress,
    /// True once the server is stopping: event streams and long-polls end.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// Settings given on the command line (`serve --listen --data-dir`): they win over the files,
/// at start-up and at every reload.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub workers: Option<usize>,
}

impl Overrides {
    pub fn apply(&self, settings: &mut crate::config::Settings) {
        if let Some(l) = self.listen {
            settings.listen = l;
        }
        if let Some(d) = &self.data_dir {
            settings.data_dir = d.clone();
        }
        if let Some(w) = self.workers {
            settings.workers = Some(w);
        }
    }
}

/// Why a reload did not happen.
#[derive(Debug)]
pub enum ReloadError {
    /// The configuration does not check.
    Invalid(ConfigErrors),
    /// The store could not take the configured subscriptions.
    Store(crate::store::StoreError),
}

/// What a successful reload changed.
#[derive(Debug, serde::Serialize)]
pub struct Reloaded {
    pub formats: usize,
    pub agencies: usize,
    pub rules: usize,
    /// Settings that changed in the files but take effect only after a restart.
    pub restart_needed: Vec<&'static str>,
}

impl Gateway {
    /// Builds the gateway on the configured store (the embedded one in the data directory, or
    /// Redis) and brings the configured subscriptions into it, before anything is accepted: a
    /// subscription new in `subscriptions.yaml` starts at the head of its feed as it was when
    /// the gateway started, so it sees every message this gateway accepts.
    pub async fn open(mut config: Config, overrides: Overrides) -> Result<Gateway, crate::store::StoreError> {
        overrides.apply(&mut config.settings);
        let gateway = match config.settings.store.backend {
            Backend::Embedded => Gateway::embedded(config, overrides)?,
            Backend::Redis => {
                let redis = &config.settings.store.redis;
                let store = RedisStore::open(redis, config.settings.audit.hash).await?;
                Gateway::new(config, store, Arc::new(Metrics::new()), overrides)
            }
        };
        let subscriptions = gateway.runtime().config.subscriptions.clone();
        gateway.store.sync_config_subscriptions(subscriptions).await?;
        Ok(gateway)
    }

    /// Builds the gateway on the embedded store in the configured data directory.
    pub fn embedded(mut config: Config, overrides: Overrides) -> Result<Gateway, crate::store::StoreError> {
        overrides.apply(&mut config.settings);
        let metrics = Arc::new(Metrics::new());
        let options = sqlite::Options {
            audit: config.settings.audit.hash,
            batch_max: config.settings.store.batch_max,
            busy_timeout: Duration::from_millis(config.settings.store.busy_timeout_ms),
        };
        let store = SqliteStore::open(&config.settings.data_dir, options, metrics.store.clone())?;
        Ok(Gateway::new(config, Arc::new(store), metrics, overrides))
    }

    pub fn new(config: Config, store: Arc<dyn Store>, metrics: Arc<Metrics>, overrides: Overrides) -> Gateway {
        let limits = RateLimits::new(&config.agencies, None);
        Gateway {
            runtime: ArcSwap::from_pointee(Runtime { config, limits }),
            store,
            metrics,
            clock: Arc::new(SystemClock),
            overrides,
            tls: std::sync::OnceLock::new(),
            in_flight: PerAddress::default(),
            connections: PerAddress::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Tells event streams and long-polls to end: the server is stopping.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Turns true when the server begins to stop.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The same gateway reading `clock` (tests move a manual clock instead of waiting).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Gateway {
        self.clock = clock;
        self
    }

    /// The current configuration snapshot.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Loads the configuration directory again and swaps it in if it checks; otherwise the
    /// current configuration keeps serving and the errors are returned. The configured
    /// subscriptions are brought into the store first.
    /// `by` is who asked: an operator's name, or the signal.
    pub async fn reload(&self, by: &str) -> Result<Reloaded, ReloadError> {
        let current = self.runtime();
        let dir: PathBuf = current.config.dir.clone();
        let mut config = match Config::load(&dir) {
            Ok(c) => c,
            Err(errors) => {
                self.metrics.count_reload("refused");
                let entry = crate::audit::Entry::new("reload_refused")
                    .actor(by)
                    .detail(format!("{} problem(s)", errors.0.len()));
                if let Err(e) = self.store.audit(entry).await {
                    tracing::warn!(error = %e, "could not record the refused reload in the audit log");
                }
                tracing::warn!(
                    errors = errors.0.len(),
                    "configuration reload refused; the current configuration keeps serving"
                );
                return Err(ReloadError::Invalid(errors));
            }
        };
        self.store.sync_config_subscriptions(config.subscriptions.clone()).await.map_err(ReloadError::Store)?;
        self.overrides.apply(&mut config.settings);
        // What the running process was started with stays; changing it needs a restart.
        let (old, new) = (&current.config.settings, &mut config.settings);
        let mut restart_needed = Vec::new();
        if old.listen != new.listen {
            restart_needed.push("listen");
        }
        if old.data_dir != new.data_dir {
            restart_needed.push("data_dir");
        }
        if old.store != new.store {
            restart_needed.push("store");
        }
        if old.workers != new.workers || old.shutdown_timeout_secs != new.shutdown_timeout_secs {
            restart_needed.push("workers/shutdown_timeout_secs");
        }
        if old.log.level != new.log.level || old.log.format != new.log.format {
            restart_needed.push("log");
        }
        if old.tls.is_some() != new.tls.is_some() {
            // Plain HTTP and HTTPS are different listeners.
            restart_needed.push("tls (on or off)");
            new.tls = old.tls.clone();
            config.tls = current.config.tls.clone();
        }
        new.listen = old.listen;
        new.data_dir = old.data_dir.clone();
        new.store = old.store.clone();
        new.workers = old.workers;
        new.shutdown_timeout_secs = old.shutdown_timeout_secs;
        new.log = old.log.clone();
        let reloaded = Reloaded {
            formats: config.formats.len(),
            agencies: config.agencies.len(),
            rules: config.router.rules().len(),
            restart_needed,
        };
        if let (Some(listener), Some(material)) = (self.tls.get(), &config.tls) {
            listener.apply(material.clone());
        }
        let limits = RateLimits::new(&config.agencies, Some(&current.limits));
        self.runtime.store(Arc::new(Runtime { config, limits }));
        self.metrics.count_reload("applied");
        // The other instances sharing the store load the same files (a ConfigMap) too.
        if by != PEER_RELOAD
            && let Err(e) = self.store.announce_reload().await
        {
            tracing::warn!(error = %e, "could not tell the other instances to reload");
        }
        let entry = crate::audit::Entry::new("reloaded")
            .actor(by)
            .detail(format!("{} formats, {} agencies, {} rules", reloaded.formats, reloaded.agencies, reloaded.rules));
        if let Err(e) = self.store.audit(entry).await {
            tracing::warn!(error = %e, "could not record the reload in the audit log");
        }
        tracing::info!(
            formats = reloaded.formats,
            agencies = reloaded.agencies,
            rules = reloaded.rules,
            "configuration reloaded"
        );
        Ok(reloaded)
    }
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    server: Server,
    gateway: web::Data<Gateway>,
}

impl Running {
    /// The gateway this server serves.
    pub fn gateway(&self) -> web::Data<Gateway> {
        self.gateway.clone()
    }

    /// Runs until the server stops (a signal, or `handle.stop`), then closes the store.
    pub async fn wait(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.gateway.store.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Evidence of who did what, whichever endpoint answered: every 401 and 403 is counted, logged
/// and audited (the handlers say why in the response), and so is every admin action. Messages
/// refused by `POST /v1/messages` after authentication are audited by the store, with their
/// body's hash, so they are not recorded twice.
async fn account(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let gateway = req.app_data::<web::Data<Gateway>>().cloned();
    let response = next.call(req).await?;
    let Some(gw) = gateway else { return Ok(response) };
    let status = response.status().as_u16();
    let request = response.request();
    let endpoint = request.match_pattern().unwrap_or_else(|| "unmatched".into());
    let what = format!("{} {endpoint}", request.method());
    let denied = matches!(status, 401 | 403);
    let entry = if denied {
        gw.metrics.count_denial(status, &endpoint);
        tracing::warn!(status, endpoint = %endpoint, method = %request.method(), "denied");
        (endpoint != "/v1/messages" || status == 401).then(|| {
            let rt = gw.runtime();
            let who = ingest::auth::principal(&rt.config.agencies, &rt.config.operators, request).ok();
            let entry = crate::audit::Entry::new("denied").code(status.to_string()).detail(what);
            match who {
                Some(p) => entry.actor(p.to_string()),
                None => entry,
            }
        })
    } else if endpoint.starts_with("/v1/admin/") {
        let rt = gw.runtime();
        let operator = ingest::auth::operator(&rt.config.operators, &rt.config.agencies, request)
            .ok()
            .map(|o| format!("operator:{o}"));
        let mut entry = crate::audit::Entry::new("admin").code(status.to_string()).detail(what);
        entry.actor = operator;
        entry.message_id = request.match_info().get("id").map(str::to_string);
        Some(entry)
    } else {
        None
    };
    if let Some(entry) = entry
        && let Err(e) = gw.store.audit(entry).await
    {
        tracing::warn!(error = %e, "could not record a denial or an admin action in the audit log");
    }
    Ok(response)
}

/// One client address may have at most `limits.max_requests_per_client` requests in flight;
/// above that it gets 429, so that one client cannot hold every worker.
async fn per_client(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    let gateway = req.app_data::<web::Data<Gateway>>().cloned();
    let (Some(gw), Some(ip)) = (gateway, req.peer_addr().map(|a| a.ip())) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let rt = gw.runtime();
    let limits = &rt.config.settings.limits;
    let head: usize = req.uri().path_and_query().map_or(0, |p| p.as_str().len())
        + req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>();
    if head > limits.max_header_bytes {
        let p = Problem::new(
            Code::HeadersTooLarge,
            format!("the request's headers exceed {} bytes", limits.max_header_bytes),
        );
        return Ok(req.into_response(response::problem(&p)).map_into_right_body());
    }
    if gw.connections.count(ip) > limits.max_connections_per_client {
        let p = Problem::new(
            Code::RateLimited,
            format!("more than {} connections open from {ip}", limits.max_connections_per_client),
        );
        let mut response = response::retry_after(&p, Duration::from_secs(1));
        response.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
        return Ok(req.into_response(response).map_into_right_body());
    }
    let max = limits.max_requests_per_client;
    let Some(_held) = gw.in_flight.try_enter(ip, max) else {
        let p = Problem::new(Code::RateLimited, format!("more than {max} requests in flight from {ip}"));
        let response = response::retry_after(&p, Duration::from_secs(1));
        return Ok(req.into_response(response).map_into_right_body());
    };
    drop(rt);
    Ok(next.call(req).await?.map_into_left_body())
}

/// Binds and starts the server, and reloads the configuration on SIGHUP. `listener` overrides
/// the configured address (tests pass one bound to port 0).
pub fn start(gateway: Gateway, listener: Option<TcpListener>) -> std::io::Result<Running> {
    let settings = gateway.runtime().config.settings.clone();
    let tls = match gateway.runtime().config.tls.clone() {
        Some(material) => {
            let (live, rustls) = crate::tls::Listener::new(material).map_err(std::io::Error::other)?;
            let _ = gateway.tls.set(live);
            Some(rustls)
        }
        None => None,
    };
    let gateway = web::Data::new(gateway);
    let data = gateway.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::from_fn(per_client))
            .wrap(actix_web::middleware::from_fn(account))
            .wrap(TracingLogger::default())
            .service(post_only("/v1/messages", ingest::messages::post))
            .service(post_only("/v1/admin/explain", admin::explain))
            .service(post_only("/v1/admin/reload", admin::reload))
            .route("/v1/admin/messages/{id}", web::get().to(admin::trace))
            .route("/v1/admin/threads", web::get().to(threads::api::list))
            .route("/v1/admin/threads/{id}", web::get().to(threads::api::one))
            .route("/v1/admin/stats", web::get().to(threads::api::stats))
            .route("/v1/admin/dead-letters", web::get().to(admin::dead_letters))
            .service(post_only("/v1/admin/dead-letters/{id}/replay", admin::replay))
            .route("/v1/feeds/{feed}/events", web::get().to(deliver::feeds::events))
            .route("/v1/feeds/{feed}/stream", web::get().to(deliver::feeds::stream))
            .service(
                web::resource("/v1/subscriptions")
                    .route(web::get().to(deliver::api::list))
                    .route(web::post().to(deliver::api::create)),
            )
            .service(
                web::resource("/v1/subscriptions/{id}")
                    .route(web::get().to(deliver::api::read))
                    .route(web::delete().to(deliver::api::delete)),
            )
            .route("/v1/subscriptions/{id}/events", web::get().to(deliver::api::events))
            .service(post_only("/v1/subscriptions/{id}/ack", deliver::api::ack))
            .service(post_only("/v1/subscriptions/{id}/rotate-secret", deliver::api::rotate))
            .service(post_only("/v1/subscriptions/{id}/enable", deliver::api::enable))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(not_found))
    })
    .on_connect({
        let connections = gateway.connections.clone();
        move |connection, data| {
            connections.track(connection, data);
            crate::tls::peer::on_connect(connection, data);
        }
    })
    .client_request_timeout(settings.limits.request_timeout)
    .keep_alive(settings.limits.idle_timeout)
    .max_connections(settings.limits.max_connections)
    .shutdown_timeout(settings.shutdown_timeout_secs)
    .disable_signals();
    if let Some(workers) = settings.workers {
        server = server.workers(workers);
    }
    let server = match (listener, tls) {
        (Some(l), None) => server.listen(l)?,
        (None, None) => server.bind(settings.listen)?,
        (Some(l), Some(rustls)) => server.listen_rustls_0_23(l, rustls)?,
        (None, Some(rustls)) => server.bind_rustls_0_23(settings.listen, rustls)?,
    };
    if let Some(live) = gateway.tls.get() {
        let watched = gateway.clone();
        crate::tls::listener::watch(live.clone(), move || {
            let rt = watched.runtime();
            (rt.config.settings.tls.clone(), rt.config.dir.clone())
        });
    }
    let addr = server.addrs().first().copied().unwrap_or(settings.listen);
    let server = server.run();
    reload_on_sighup(gateway.clone());
    stop_on_signals(gateway.clone(), server.handle());
    reload_with_peers(gateway.clone());
    start_delivery(gateway.clone());
    Ok(Running { addr, handle: server.handle(), server, gateway })
}

fn post_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path).route(web::post().to(handler)).default_service(web::to(method_not_allowed))
}

/// Starts the thread and webhook workers (the configured subscriptions are in the store since
/// `Gateway::open`).
fn start_delivery(gateway: web::Data<Gateway>) {
    threads::worker::spawn(gateway.clone());
    crate::audit::checkpoint::spawn(gateway.clone());
    deliver::worker::spawn(gateway);
}

/// Who reloads when another instance announced a reload.
const PEER_RELOAD: &str = "another instance";

/// Reloads when another instance sharing the store reloaded.
fn reload_with_peers(gateway: web::Data<Gateway>) {
    let Some(mut reloads) = gateway.store.reloads() else { return };
    actix_web::rt::spawn(async move {
        while reloads.changed().await.is_ok() {
            match gateway.reload(PEER_RELOAD).await {
                Ok(_) => tracing::info!("reloaded: another instance reloaded"),
                Err(ReloadError::Invalid(errors)) => {
                    tracing::warn!(
                        problems = errors.0.len(),
                        "another instance reloaded, but this one's files do not check"
                    );
                }
                Err(ReloadError::Store(e)) => tracing::warn!(error = %e, "reload failed: the store is unavailable"),
            }
        }
    });
}

/// On SIGTERM or SIGINT: streams and long-polls end, then the server stops gracefully.
fn stop_on_signals(gateway: web::Data<Gateway>, handle: ServerHandle) {
    actix_web::rt::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                tracing::warn!("cannot listen for SIGTERM and SIGINT");
                return;
            };
            let which = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = which, "stopping gracefully");
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        gateway.begin_shutdown();
        handle.stop(true).await;
    });
}

fn reload_on_sighup(gateway: web::Data<Gateway>) {
    #[cfg(unix)]
    actix_web::rt::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /v1/admin/reload");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            match gateway.reload("SIGHUP").await {
                Ok(_) => {}
                Err(ReloadError::Invalid(errors)) => {
                    for e in &errors.0 {
                        tracing::warn!(error = %e, "configuration problem");
                    }
                }
                Err(ReloadError::Store(e)) => tracing::warn!(error = %e, "reload failed: the store is unavailable"),
            }
        }
    });
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when the store can commit now.
async fn readyz(gw: web::Data<Gateway>) -> HttpResponse {
    match tokio::time::timeout(Duration::from_secs(2), gw.store.ready()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Ok(Err(e)) => {
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable", "reason": e.to_string()}))
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "reason": "the store did not answer within 2 s"})),
    }
}

async fn metrics(gw: web::Data<Gateway>) -> HttpResponse {
    HttpResponse::build(StatusCode::OK)
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(gw.metrics.render())
}

async fn not_found() -> HttpResponse {
    response::problem(&Problem::new(Code::NotFound, "no such resource; messages are posted to /v1/messages"))
}

async fn method_not_allowed() -> HttpResponse {
    let mut r = response::problem(&Problem::new(Code::MethodNotAllowed, "this resource accepts POST only"));
    r.headers_mut().insert(actix_web::http::header::ALLOW, actix_web::http::header::HeaderValue::from_static("POST"));
    r
}
