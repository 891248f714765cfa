//! Connections to Redis: one multiplexed connection (a single server through a connection
//! manager that reconnects by itself, or a Cluster), and the watcher's own connection for its
//! blocking reads.

use std::sync::Weak;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, Pipeline, RedisFuture, Value};

use super::{RedisStore, WATCH_BLOCK, unavailable};
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

/// Learns of commits by any instance (a blocking read of the log stream on a connection of its
/// own) and tells this instance's feeds and workers; notices when Redis lost the gateway's
/// data. Reconnects with a growing pause while Redis is away; ends with the store.
pub async fn watch(store: Weak<RedisStore>) {
    let mut last: String;
    let mut pause = Duration::from_millis(100);
    let mut reloads: Option<i64> = None;
    let mut looked = std::time::Instant::now();
    loop {
        let Some((settings, log)) = store.upgrade().map(|s| (s.settings.clone(), s.keys.key("log"))) else { return };
        let mut conn = match Conn::open(&settings).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "redis watcher: cannot connect; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        // From now on; whatever was committed while the watcher was away is announced at once.
        last = "$".into();
        let Some(s) = store.upgrade() else { return };
        if let Ok(true) = s.mark_epoch().await
            && let Err(e) = s.recover().await
        {
            tracing::warn!(error = %e, "redis watcher: could not restore the subscriptions");
        }
        s.notify.send_modify(|n| *n += 1);
        if reloads.is_none() {
            reloads = s.reload_generation().await.ok();
        }
        let block = WATCH_BLOCK.min(settings.timeout / 2).as_millis() as u64;
        drop(s);
        loop {
            let read: Result<Option<redis::streams::StreamReadReply>, _> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1000)
                .arg("BLOCK")
                .arg(block)
                .arg("STREAMS")
                .arg(&log)
                .arg(&last)
                .query_async(&mut conn)
                .await;
            let Some(s) = store.upgrade() else { return };
            // Reloads announced by other instances, looked for about once a second.
            if looked.elapsed() >= WATCH_BLOCK {
                looked = std::time::Instant::now();
                if let Some(seen) = reloads.as_mut()
                    && s.follow_reloads(seen).await.is_err()
                {
                    break;
                }
            }
            match read {
                Ok(Some(reply)) => {
                    if let Some(id) = reply.keys.iter().flat_map(|k| k.ids.last()).next_back() {
                        last = id.id.clone();
                        s.notify.send_modify(|n| *n += 1);
                    }
                }
                Ok(None) => {
                    // A quiet second: see whether Redis lost the data (restarted empty).
                    match s.mark_epoch().await {
                        Ok(true) => {
                            last = "$".into();
                            if let Err(e) = s.recover().await {
                                tracing::warn!(error = %e, "redis watcher: could not restore the subscriptions");
                            }
                            s.notify.send_modify(|n| *n += 1);
                        }
                        Ok(false) => {}
                        Err(_) => break,
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "redis watcher: lost the connection");
                    break;
                }
            }
        }
    }
}
