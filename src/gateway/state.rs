//! The running gateway: the configuration in force, the store, the metrics, the clock and the
//! shutdown signal. Everything that answers a request or works in the background reads it.
//!
//! The configuration lives in a [`Runtime`] snapshot behind an atomic pointer. A request takes
//! the snapshot once, at its start, and uses it throughout: a reload (`POST /v1/admin/reload` or
//! SIGHUP) swaps in a complete, checked snapshot, so no request sees half-old, half-new
//! configuration, and an invalid configuration is refused while the old one keeps serving.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::limits::RateLimits;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Current, Settings};
use crate::store::{self, Store, StoreError};
use crate::telemetry::Metrics;
use crate::threads::worker::ThreadWorker;
use crate::tls;

/// Why the gateway could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("TLS: {0}")]
    Tls(String),
}

/// One consistent configuration and what is derived from it.
pub struct Runtime {
    pub config: Arc<Config>,
    pub limits: RateLimits,
    /// The rules whose failure the operators were told of under this configuration.
    pub told: std::sync::Mutex<std::collections::HashSet<String>>,
    /// When this configuration came into force (unix ms), and who brought it (`start`, an
    /// operator, a signal, another instance).
    pub loaded: (i64, String),
}

impl Runtime {
    pub fn new(config: Config, limits: RateLimits, loaded: (i64, String)) -> Runtime {
        Runtime { config: Arc::new(config), limits, told: Default::default(), loaded }
    }
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
    pub fn apply(&self, settings: &mut Settings) {
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

/// The gateway's shared state.
/// The last draft checked: its version and configuration, for the impact preview's pages (each
/// page of a preview checks the same draft).
#[derive(Default)]
pub struct Drafts(pub(super) std::sync::Mutex<Option<(String, Arc<Config>)>>);

/// The client certificates presented to this instance, by fingerprint: what the agency directory
/// warns of when one nears its expiry (whose each is, is decided when the directory is read).
/// Kept in memory: each instance knows the connections it served.
#[derive(Default)]
pub struct CertificatesSeen(std::sync::RwLock<std::collections::HashMap<String, crate::tls::PeerCertificate>>);

impl CertificatesSeen {
    /// Keeps `peer` unless it is known already (a read lock, nothing copied, for a known one).
    pub fn record(&self, peer: &crate::tls::PeerCertificate) {
        let known = self.0.read().unwrap_or_else(|p| p.into_inner()).contains_key(&peer.fingerprint);
        if !known {
            self.0.write().unwrap_or_else(|p| p.into_inner()).insert(peer.fingerprint.clone(), peer.clone());
        }
    }

    /// Every certificate seen.
    pub fn all(&self) -> Vec<crate::tls::PeerCertificate> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

pub struct Gateway {
    pub(super) runtime: Arc<ArcSwap<Runtime>>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// The time: received times, deadlines, overdue checks, the store's timestamps.
    pub clock: Arc<dyn Clock>,
    pub(super) overrides: Overrides,
    /// The listener's TLS parts and the rustls configuration built around them, when it serves
    /// HTTPS: reloads swap the parts' files.
    tls: Option<(tls::Listener, rustls::ServerConfig)>,
    /// True once the gateway is stopping: event streams and long-polls end.
    stopping: watch::Sender<bool>,
    /// The last draft of the rules checked (`rules.rs`).
    pub(super) drafts: Drafts,
    /// Rule changes are applied one at a time.
    pub(super) rule_changes: tokio::sync::Mutex<()>,
    pub certificates: CertificatesSeen,
}

impl Gateway {
    /// Opens the gateway on the system's clock (see [`Gateway::open_with_clock`]).
    pub async fn open(config: Config, overrides: Overrides) -> Result<Gateway, OpenError> {
        Self::open_with_clock(config, overrides, Arc::new(SystemClock)).await
    }

    /// Opens the configured store (the embedded one in the data directory, or Redis) and brings
    /// the configured subscriptions into it, before anything is accepted: a subscription new in
    /// `subscriptions.yaml` starts at the head of its feed as it was when the gateway started,
    /// so it sees every message this gateway accepts. Everything reads `clock` (tests move a
    /// manual clock instead of waiting).
    pub async fn open_with_clock(
        mut config: Config,
        overrides: Overrides,
        clock: Arc<dyn Clock>,
    ) -> Result<Gateway, OpenError> {
        overrides.apply(&mut config.settings);
        let tls = config.tls.clone().map(tls::Listener::new).transpose().map_err(OpenError::Tls)?;
        let metrics = Arc::new(Metrics::new());
        let store = store::open(&config.settings, clock.clone(), metrics.store.clone()).await?;
        store.sync_config_subscriptions(config.subscriptions.clone()).await?;
        let limits = RateLimits::new(&config.agencies, None);
        Ok(Gateway {
            runtime: Arc::new(ArcSwap::from_pointee(Runtime::new(config, limits, (clock.now_ms(), "start".into())))),
            store,
            metrics,
            clock,
            overrides,
            tls,
            stopping: watch::Sender::new(false),
            drafts: Default::default(),
            rule_changes: tokio::sync::Mutex::new(()),
            certificates: CertificatesSeen::default(),
        })
    }

    /// The current configuration snapshot.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// The configuration in force, for tasks that outlive a snapshot.
    pub fn current(&self) -> Current {
        let runtime = self.runtime.clone();
        Arc::new(move || runtime.load().config.clone())
    }

    /// Tells event streams and long-polls to end: the gateway is stopping.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Turns true when the gateway begins to stop.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The rustls configuration of an HTTPS listener; `None` for plain HTTP.
    pub fn tls_server(&self) -> Option<rustls::ServerConfig> {
        self.tls.as_ref().map(|(_, server)| server.clone())
    }

    /// The listener's swappable TLS parts.
    pub(super) fn tls_listener(&self) -> Option<&tls::Listener> {
        self.tls.as_ref().map(|(live, _)| live)
    }

    /// The thread worker on this gateway's store, clock and configuration (the tests run its
    /// rounds themselves).
    pub fn thread_worker(&self) -> ThreadWorker {
        ThreadWorker::new(self.store.clone(), self.clock.clone(), self.current())
    }
}
