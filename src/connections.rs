//! Open connections per client address. actix-web cannot refuse a connection when it opens,
//! so each connection carries a guard in its extensions that counts it while it is open; a
//! request on a connection beyond `limits.max_connections_per_client` is answered 429 and the
//! connection closed.

use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;

/// The open connections of every client address.
#[derive(Clone, Debug, Default)]
pub struct Connections {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Counts one connection while it lives (in the connection's extensions).
#[derive(Debug)]
struct Guard {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Connections {
    /// actix-web's `on_connect`: counts the connection (plain or TLS) until it closes.
    pub fn track(&self, connection: &dyn Any, data: &mut Extensions) {
        let Some(peer) = peer(connection) else { return };
        let ip = peer.ip();
        *self.open.lock().unwrap_or_else(|e| e.into_inner()).entry(ip).or_insert(0) += 1;
        data.insert(Guard { ip, open: self.open.clone() });
    }

    /// The connections open from `ip`.
    pub fn from(&self, ip: IpAddr) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).get(&ip).copied().unwrap_or(0)
    }
}

fn peer(connection: &dyn Any) -> Option<SocketAddr> {
    if let Some(tcp) = connection.downcast_ref::<TcpStream>() {
        return tcp.peer_addr().ok();
    }
    let tls = connection.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()?;
    tls.get_ref().0.peer_addr().ok()
}
