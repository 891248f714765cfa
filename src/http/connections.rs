//! What the server keeps per connection: its count per client address (with the requests in
//! flight per address, each counted by a guard that gives its place back when dropped), and the
//! client certificate it presented. actix-web cannot refuse a connection when it opens, so a
//! connection's guard lives in the connection's extensions and a request on a connection beyond
//! `limits.max_connections_per_client` is answered 429 and the connection closed.

use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;

use crate::tls::PeerCertificate;

/// Open connections and requests in flight, per client address.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Requests in flight per client address (`limits.max_requests_per_client`).
    pub in_flight: PerAddress,
    /// Open connections per client address (`limits.max_connections_per_client`).
    pub connections: PerAddress,
}

impl Counts {
    /// actix-web's `on_connect`: counts the connection (plain or TLS) until it closes, and keeps
    /// the client certificate, if any, where `HttpRequest::conn_data` finds it.
    pub fn on_connect(&self, connection: &dyn Any, data: &mut Extensions) {
        self.connections.track(connection, data);
        if let Some(tls) = connection.downcast_ref::<TlsStream<TcpStream>>() {
            let (_, session) = tls.get_ref();
            let first = session.peer_certificates().and_then(|c| c.first());
            if let Some(peer) = first.and_then(|c| PeerCertificate::from_der(c)) {
                data.insert(peer);
            }
        }
    }
}

/// A count per client address.
#[derive(Clone, Debug, Default)]
pub struct PerAddress {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One place counted for an address, until dropped.
#[derive(Debug)]
pub struct Held {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl PerAddress {
    /// Counts one more for `ip` if fewer than `max` are counted.
    pub fn try_enter(&self, ip: IpAddr, max: usize) -> Option<Held> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Held { ip, counts: self.counts.clone() })
    }

    /// How many are counted, all addresses together.
    pub fn total(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }

    /// How many are counted for `ip`.
    pub fn count(&self, ip: IpAddr) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).get(&ip).copied().unwrap_or(0)
    }

    /// actix-web's `on_connect`: counts the connection (plain or TLS) until it closes.
    pub fn track(&self, connection: &dyn Any, data: &mut Extensions) {
        if let Some(held) = peer(connection).and_then(|p| self.try_enter(p.ip(), usize::MAX)) {
            data.insert(held);
        }
    }
}

fn peer(connection: &dyn Any) -> Option<SocketAddr> {
    if let Some(tcp) = connection.downcast_ref::<TcpStream>() {
        return tcp.peer_addr().ok();
    }
    let tls = connection.downcast_ref::<TlsStream<TcpStream>>()?;
    tls.get_ref().0.peer_addr().ok()
}
