//! Connections to Redis: one multiplexed connection (a single server through a connection
//! manager that reconnects by itself, or a Cluster); the watcher opens its own for its blocking
//! reads.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, Pipeline, RedisFuture, Value};

use super::values::unavailable;
use crate::config::settings::RedisSettings;
use crate::store::StoreError;

/// A connection to a single server or a Cluster; cheap to clone (the clones share it).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

fn client(settings: &RedisSettings, url: &str) -> Result<Client, StoreError> {
    let invalid = |e: redis::RedisError| StoreError::Unavailable(format!("store.redis.url: {e}"));
    match &settings.ca {
        Some(ca) => {
            let root_cert = std::fs::read(ca)
                .map_err(|e| StoreError::Unavailable(format!("store.redis.ca: {}: {e}", ca.display())))?;
            Client::build_with_tls(url, redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) })
                .map_err(invalid)
        }
        None => Client::open(url).map_err(invalid),
    }
}

impl Conn {
    /// Connects; fails when Redis does not answer within the timeout.
    pub async fn open(settings: &RedisSettings) -> Result<Conn, StoreError> {
        let url = settings.url.clone();
        if settings.cluster {
            let mut builder = redis::cluster::ClusterClientBuilder::new(vec![url.as_str()])
                .connection_timeout(settings.timeout)
                .response_timeout(settings.timeout);
            if let Some(ca) = &settings.ca {
                let root_cert = std::fs::read(ca)
                    .map_err(|e| StoreError::Unavailable(format!("store.redis.ca: {}: {e}", ca.display())))?;
                builder = builder.certs(redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) });
            }
            let client = builder.build().map_err(unavailable)?;
            return client.get_async_connection().await.map(Conn::Cluster).map_err(unavailable);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_with_config(client(settings, &url)?, config);
        match tokio::time::timeout(settings.timeout, manager).await {
            Ok(Ok(m)) => Ok(Conn::Single(m)),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(StoreError::Unavailable(format!("redis: no answer within {:?}", settings.timeout))),
        }
    }
}
