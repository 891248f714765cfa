//! The gateway's background work, started once the gateway is open: the webhook worker and the
//! retention janitor, the thread worker, audit checkpoints, the TLS file watcher, and reloads on
//! SIGHUP or when another instance sharing the store reloaded. The modules that define each
//! worker know nothing of the gateway: they get the store, the clock and the configuration in
//! force.

use std::sync::Arc;

use super::reload::PEER_RELOAD;
use super::state::Gateway;
use crate::audit::checkpointer;
use crate::deliver::janitor;
use crate::deliver::worker::WebhookWorker;
use crate::tls;

impl Gateway {
    /// Starts every background task on the current Tokio runtime. They run until the runtime
    /// stops (or, for those that write, until the store is closed).
    pub fn start_workers(self: &Arc<Self>) {
        let current = self.current();
        tokio::spawn(
            WebhookWorker::new(self.store.clone(), self.clock.clone(), self.metrics.clone(), current.clone()).run(),
        );
        tokio::spawn(janitor::run(self.store.clone(), self.clock.clone(), current.clone()));
        tokio::spawn(self.thread_worker().run());
        tokio::spawn(checkpointer::run(self.store.clone(), self.clock.clone(), current.clone()));
        if let Some(live) = self.tls_listener() {
            tokio::spawn(tls::listener::watch(live.clone(), move || {
                let config = current();
                (config.settings.tls.clone(), config.dir.clone())
            }));
        }
        self.reload_on_sighup();
        self.reload_with_peers();
    }

    /// Reloads on SIGHUP.
    fn reload_on_sighup(self: &Arc<Self>) {
        #[cfg(unix)]
        {
            let gateway = self.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                    tracing::warn!("cannot listen for SIGHUP; reload with POST /v1/admin/reload");
                    return;
                };
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    gateway.reload_logged("SIGHUP").await;
                }
            });
        }
    }

    /// Reloads when another instance sharing the store reloaded.
    fn reload_with_peers(self: &Arc<Self>) {
        let Some(mut reloads) = self.store.reloads() else { return };
        let gateway = self.clone();
        tokio::spawn(async move {
            while reloads.changed().await.is_ok() {
                gateway.reload_logged(PEER_RELOAD).await;
            }
        });
    }
}
