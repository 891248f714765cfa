//! The embedded store: SQLite (bundled) in WAL mode. A commit that carries a promise (an
//! accepted message, a subscription, an operator's action) is on disk when it returns
//! (`synchronous = FULL`).
//!
//! One writer thread owns the write connection and commits in *groups*: it takes the first
//! queued job, drains whatever else is queued (up to `batch_max`), and runs them all in one
//! transaction — one disk sync for the whole group. Under load, requests that arrive while a
//! sync is in flight share the next one; an idle gateway commits each request at once. Each job
//! runs in its own savepoint, so one failing job does not undo the others, and a job's answer is
//! sent only once the transaction is committed.
//!
//! The bookkeeping of webhook delivery (creating attempts, leasing them, recording outcomes)
//! promises nothing a sync would keep: a group of only such jobs is committed without a sync of
//! its own (`synchronous = NORMAL`) and reaches the disk with the next synced commit or WAL
//! checkpoint. A crash of the process loses none of it; a crash of the machine may undo the
//! last of it, which is then done again (an attempt is sent again, at least once, and its
//! outcome recorded then). The WAL stays a consistent prefix either way.
//!
//! The writer checkpoints the WAL itself when it passes 1,000 pages (SQLite's default), so the
//! WAL stays bounded under endless writes. (A checkpointer thread beside the writer gave 10-15%
//! more throughput but a longer tail: its database syncs slowed the commits that met them;
//! docs/performance.md.) Reads use a small pool of read-only connections: WAL lets them run
//! beside the writer.

mod audit;
mod counts;
mod feeds;
mod messages;
mod reply_figures;
mod rule_changes;
mod schema;
mod sessions;
mod subscriptions;
mod threads;
mod webhooks;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, Savepoint, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};

use crate::audit::Algorithm;
use crate::clock::{Clock, format_ms};
use crate::store::{Lifecycle, StoreError};
use crate::telemetry::StoreMetrics;
use writer::{Commit, Job, WriteJob};

/// The database file inside the data directory.
pub const DB_FILE: &str = "xietong.sqlite3";

#[derive(Clone, Debug)]
pub struct Options {
    pub batch_max: usize,
    pub busy_timeout: Duration,
    /// The hash of the audit chain.
    pub audit: Algorithm,
}

/// Read-only connections, reused.
struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn take(&self) -> rusqlite::Result<Connection> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(c);
        }
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 16
        {
            idle.push(conn);
        }
    }
}

pub struct SqliteStore {
    path: PathBuf,
    queue: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<Readers>,
    commits: watch::Receiver<u64>,
    audit: Algorithm,
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir` and starts its writer thread. Its
    /// timestamps come from `clock`.
    pub fn open(
        data_dir: &Path,
        options: Options,
        metrics: StoreMetrics,
        clock: Arc<dyn Clock>,
    ) -> Result<SqliteStore, StoreError> {
        let unavailable = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Unavailable(format!("{what} {}: {e}", data_dir.display()))
        };
        std::fs::create_dir_all(data_dir).map_err(|e| unavailable("cannot create", &e))?;
        let path = data_dir.join(DB_FILE);
        let mut conn =
            open_connection(&path, options.busy_timeout).map_err(|e| unavailable("cannot open the store in", &e))?;
        migrate(&mut conn).map_err(|e| unavailable("cannot prepare the store in", &e))?;
        let (tx, rx) = mpsc::channel(options.batch_max.saturating_mul(4).max(16));
        let (notify, commits) = watch::channel(0u64);
        let writer = std::thread::Builder::new()
            .name("xietong-store".into())
            .spawn(move || writer::run(conn, rx, options.batch_max, metrics, notify))
            .map_err(|e| unavailable("cannot start the writer for", &e))?;
        let readers =
            Arc::new(Readers { path: path.clone(), busy_timeout: options.busy_timeout, idle: Mutex::new(Vec::new()) });
        Ok(SqliteStore {
            path,
            queue: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            readers,
            commits,
            audit: options.audit,
            clock,
        })
    }

    /// Opens the store in `data_dir` to read it only: its file must exist; nothing is migrated
    /// and no writer starts (writes fail with `Closed`).
    pub fn open_read_only(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<SqliteStore, StoreError> {
        let path = data_dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::Unavailable(format!("{}: no store here", path.display())));
        }
        let readers = Arc::new(Readers {
            path: path.clone(),
            busy_timeout: Duration::from_secs(5),
            idle: Mutex::new(Vec::new()),
        });
        Ok(SqliteStore {
            path,
            queue: Mutex::new(None),
            writer: Mutex::new(None),
            readers,
            commits: watch::channel(0u64).1,
            audit: Algorithm::default(),
            clock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Now by the store's clock, as its timestamps are written (RFC 3339, Beijing time).
    fn now(&self) -> String {
        format_ms(self.clock.now_ms())
    }

    /// Queues a write and waits until it is committed.
    async fn write<T, F>(&self, commit: Commit, sql: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Savepoint<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let queue = self.queue.lock().map_err(|_| StoreError::Closed)?.clone().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(WriteJob { sql: Some(sql), value: None, reply, commit });
        queue.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a read on a pooled read-only connection.
    async fn read<T, F>(&self, sql: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let result = sql(&conn);
            readers.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

#[async_trait]
impl Lifecycle for SqliteStore {
    async fn ready(&self) -> Result<(), StoreError> {
        self.write(Commit::Synced, |_| Ok(())).await
    }

    async fn close(&self) {
        // Dropping the queue's last sender lets the writer drain what is queued and stop.
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = writer {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
    }
}

fn open_connection(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Each job's savepoint journals the pages it changes; in memory, not in a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 16 MiB of pages kept (the default is 2 MiB): the indexes' upper levels stay in memory.
    conn.pragma_update(None, "cache_size", -16 * 1024)?;
    // Every statement the store runs stays prepared (rusqlite keeps 16 by default).
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (version, sql) in (1i64..).zip(schema::MIGRATIONS).skip(usize::try_from(applied).unwrap_or(0)) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
