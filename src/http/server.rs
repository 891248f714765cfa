//! Start-up and shutdown of the HTTP server.
//!
//! On SIGTERM or SIGINT the server stops accepting connections, ends its event streams and
//! long-polls (their clients resume from their cursor, on another instance or after the
//! restart), lets requests in flight finish (up to `shutdown_timeout_secs`), then commits what
//! the store has queued and exits.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use super::connections::Counts;
use super::middleware::{account, per_client, problems};
use super::routes::routes;
use crate::gateway::Gateway;

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    server: Server,
    gateway: Arc<Gateway>,
}

impl Running {
    /// The gateway this server serves.
    pub fn gateway(&self) -> Arc<Gateway> {
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

/// Binds and starts the server for `gateway` (plain HTTP, or HTTPS when the configuration names
/// TLS files), and stops it gracefully on SIGTERM or SIGINT. `listener` overrides the configured
/// address (tests pass one bound to port 0). The gateway's own workers are started by the
/// gateway ([`Gateway::start_workers`]).
pub fn start(gateway: Arc<Gateway>, listener: Option<TcpListener>) -> std::io::Result<Running> {
    let settings = gateway.runtime().config.settings.clone();
    let tls = gateway.tls_server();
    let data = web::Data::from(gateway.clone());
    let counts = web::Data::new(Counts::default());
    let on_connect = counts.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(counts.clone())
            .wrap(actix_web::middleware::from_fn(per_client))
            .wrap(actix_web::middleware::from_fn(account))
            .wrap(actix_web::middleware::from_fn(problems))
            .wrap(TracingLogger::default())
            .configure(routes)
    })
    .on_connect(move |connection, data| on_connect.on_connect(connection, data))
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
    let addr = server.addrs().first().copied().unwrap_or(settings.listen);
    let server = server.run();
    stop_on_signals(gateway.clone(), server.handle());
    Ok(Running { addr, handle: server.handle(), server, gateway })
}

/// On SIGTERM or SIGINT: streams and long-polls end, then the server stops gracefully.
fn stop_on_signals(gateway: Arc<Gateway>, handle: ServerHandle) {
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
