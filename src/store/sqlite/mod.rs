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

pub mod audit;
mod feeds;
mod messages;
mod schema;
mod threads;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{Connection, Savepoint, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};

use super::{
    Accepted, Attempt, AttemptOutcome, DeadLetter, DueObligation, FeedPage, LogEntry, NewAttempt, NewMessage,
    ObligationRow, Refusal, StepOutcome, Store, StoreError, SubscriptionRow, ThreadQuery, ThreadRow, ThreadStep, Trace,
};
use crate::audit::Algorithm;
use crate::telemetry::StoreMetrics;

/// `execute` with the statement kept prepared: rusqlite's `execute` prepares it anew each time,
/// which the writer's profile showed.
trait ExecuteCached {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl ExecuteCached for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

/// The database file inside the data directory.
pub const DB_FILE: &str = "xietong.sqlite3";

#[derive(Clone, Debug)]
pub struct Options {
    pub batch_max: usize,
    pub busy_timeout: Duration,
    /// The hash of the audit chain.
    pub audit: Algorithm,
}

/// What a write promises once it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Commit {
    /// New messages: synced, and feeds and workers are told.
    Messages,
    /// Synced.
    Synced,
    /// Delivery bookkeeping: not synced on its own (see the module's documentation).
    Unsynced,
}

/// A write: SQL run inside the group's transaction, answered once the group is committed.
trait Job: Send {
    fn run(&mut self, tx: &Savepoint<'_>) -> rusqlite::Result<()>;
    /// Ok once committed; the error otherwise.
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>);
    fn commit(&self) -> Commit;
}

struct WriteJob<T, F> {
    sql: Option<F>,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    commit: Commit,
}

impl<T, F> Job for WriteJob<T, F>
where
    T: Send,
    F: FnOnce(&Savepoint<'_>) -> rusqlite::Result<T> + Send,
{
    fn run(&mut self, tx: &Savepoint<'_>) -> rusqlite::Result<()> {
        if let Some(sql) = self.sql.take() {
            self.value = Some(sql(tx)?);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), StoreError>) {
        let answer = match (outcome, self.value) {
            (Ok(()), Some(v)) => Ok(v),
            (Ok(()), None) => Err(StoreError::Unavailable("the write produced nothing".into())),
            (Err(e), _) => Err(e),
        };
        // A requester that went away (timed out, disconnected) no longer needs its answer.
        let _ = self.reply.send(answer);
    }

    fn commit(&self) -> Commit {
        self.commit
    }
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
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir` and starts its writer thread.
    pub fn open(data_dir: &Path, options: Options, metrics: StoreMetrics) -> Result<SqliteStore, StoreError> {
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
            .spawn(move || run_writer(conn, rx, options.batch_max, metrics, notify))
            .map_err(|e| unavailable("cannot start the writer for", &e))?;
        let readers =
            Arc::new(Readers { path: path.clone(), busy_timeout: options.busy_timeout, idle: Mutex::new(Vec::new()) });
        let audit = options.audit;
        Ok(SqliteStore { path, queue: Mutex::new(Some(tx)), writer: Mutex::new(Some(writer)), readers, commits, audit })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
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

/// Now, Beijing time, for the store's timestamps.
fn now() -> String {
    chrono::Utc::now()
        .with_timezone(&crate::normalize::convert::beijing())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

#[async_trait]
impl Store for SqliteStore {
    async fn accept(&self, message: NewMessage) -> Result<Accepted, StoreError> {
        let alg = self.audit;
        self.write(Commit::Messages, move |tx| messages::accept(tx, alg, &message, &now())).await
    }

    async fn record_refusal(&self, refusal: Refusal) -> Result<(), StoreError> {
        let alg = self.audit;
        self.write(Commit::Synced, move |tx| messages::refuse(tx, alg, &refusal, &now())).await
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.write(Commit::Synced, |_| Ok(())).await
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }

    async fn feed(&self, recipient: &str, after: i64, limit: usize) -> Result<FeedPage, StoreError> {
        let recipient = recipient.to_string();
        self.read(move |c| feeds::page(c, &recipient, after, limit)).await
    }

    async fn head(&self) -> Result<i64, StoreError> {
        self.read(feeds::head).await
    }

    async fn purge(&self, before: String) -> Result<usize, StoreError> {
        self.write(Commit::Synced, move |tx| feeds::purge(tx, &before)).await
    }

    async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, StoreError> {
        self.read(webhooks::subscriptions).await
    }

    async fn create_subscription(&self, row: SubscriptionRow) -> Result<(), StoreError> {
        let id = row.id.clone();
        match self.write(Commit::Synced, move |tx| webhooks::create_subscription(tx, &row)).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict(format!("a subscription `{id}` exists"))),
        }
    }

    async fn sync_config_subscriptions(&self, rows: Vec<SubscriptionRow>) -> Result<(), StoreError> {
        self.write(Commit::Synced, move |tx| webhooks::sync_config(tx, &rows)).await
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(Commit::Synced, move |tx| webhooks::delete_subscription(tx, &id)).await
    }

    async fn update_subscription(
        &self,
        id: &str,
        spec: Option<String>,
        disabled: Option<Option<String>>,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(Commit::Synced, move |tx| webhooks::update_subscription(tx, &id, spec.as_deref(), disabled)).await
    }

    async fn acknowledge(&self, id: &str, cursor: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(Commit::Synced, move |tx| webhooks::acknowledge(tx, &id, cursor)).await
    }

    async fn enqueue(&self, subscription: &str, entries: Vec<NewAttempt>, through: i64) -> Result<(), StoreError> {
        let subscription = subscription.to_string();
        self.write(Commit::Unsynced, move |tx| webhooks::enqueue(tx, &subscription, &entries, through, &now())).await
    }

    async fn lease(
        &self,
        subscription: &str,
        max: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<Attempt>, StoreError> {
        let subscription = subscription.to_string();
        self.write(Commit::Unsynced, move |tx| webhooks::lease(tx, &subscription, max, now_ms, lease_ms)).await
    }

    async fn complete(&self, attempt: &Attempt, outcome: AttemptOutcome) -> Result<(), StoreError> {
        // What the outcome and its audit record need, without the event.
        let attempt = Attempt {
            subscription: attempt.subscription.clone(),
            recipient: attempt.recipient.clone(),
            message_id: attempt.message_id.clone(),
            message_type: attempt.message_type.clone(),
            webhook_id: attempt.webhook_id.clone(),
            event: String::new(),
            ..*attempt
        };
        let alg = self.audit;
        self.write(Commit::Unsynced, move |tx| webhooks::complete(tx, alg, &attempt, &outcome, &now())).await
    }

    async fn dead_letters(&self, subscription: Option<String>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.read(move |c| webhooks::dead_letters(c, subscription.as_deref(), limit)).await
    }

    async fn replay(&self, attempt: i64, by: &str) -> Result<bool, StoreError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let (alg, by) = (self.audit, by.to_string());
        self.write(Commit::Synced, move |tx| webhooks::replay(tx, alg, attempt, &by, now_ms, &now())).await
    }

    async fn audit(&self, entry: crate::audit::Entry) -> Result<(), StoreError> {
        let alg = self.audit;
        self.write(Commit::Synced, move |tx| audit::append(tx, alg, entry, &now())).await
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        self.read(audit::head).await
    }

    async fn audit_checkpoints(&self) -> Result<Vec<crate::audit::checkpoint::Checkpoint>, StoreError> {
        self.read(audit::checkpoints).await
    }

    async fn add_audit_checkpoint(&self, checkpoint: crate::audit::checkpoint::Checkpoint) -> Result<(), StoreError> {
        self.write(Commit::Synced, move |tx| audit::add_checkpoint(tx, &checkpoint)).await
    }

    async fn trace(&self, message_id: &str) -> Result<Option<Trace>, StoreError> {
        let id = message_id.to_string();
        self.read(move |c| messages::trace(c, &id)).await
    }

    async fn thread_backlog(&self, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        self.read(move |c| threads::backlog(c, limit)).await
    }

    async fn apply_thread_steps(&self, steps: Vec<ThreadStep>) -> Result<Vec<StepOutcome>, StoreError> {
        self.write(Commit::Synced, move |tx| threads::apply_all(tx, &steps)).await
    }

    async fn sender_of(&self, link: &str, reader: &str) -> Result<Option<String>, StoreError> {
        let (link, reader) = (link.to_string(), reader.to_string());
        self.read(move |c| Ok(threads::referenced(c, &link, i64::MAX, &reader)?.map(|(_, sender)| sender))).await
    }

    async fn message(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        let id = id.to_string();
        self.read(move |c| threads::message(c, &id)).await
    }

    async fn due_obligations(&self, now_ms: i64, limit: usize) -> Result<Vec<DueObligation>, StoreError> {
        self.read(move |c| threads::due(c, now_ms, limit)).await
    }

    async fn unescalated(&self, types: Vec<String>) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.read(move |c| threads::unescalated(c, &types)).await
    }

    async fn mark_overdue(&self, obligation: i64) -> Result<bool, StoreError> {
        self.write(Commit::Synced, move |tx| threads::mark_overdue(tx, obligation)).await
    }

    async fn threads(&self, query: ThreadQuery) -> Result<Vec<ThreadRow>, StoreError> {
        self.read(move |c| threads::threads(c, &query)).await
    }

    async fn obligations(&self, from_ms: i64, to_ms: i64) -> Result<Vec<ObligationRow>, StoreError> {
        self.read(move |c| threads::obligations(c, from_ms, to_ms)).await
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

fn run_writer(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    batch_max: usize,
    metrics: StoreMetrics,
    notify: watch::Sender<u64>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(batch_max);
    let mut synchronous_full = true;
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        // A group is synced when one of its jobs needs it (then all share the sync).
        let synced = batch.iter().any(|job| job.commit() != Commit::Unsynced);
        if synced != synchronous_full
            && conn.pragma_update(None, "synchronous", if synced { "FULL" } else { "NORMAL" }).is_ok()
        {
            synchronous_full = synced;
        }
        // Committed unsynced only when it may be; a group left synced promises more, never less.
        let outcome = if synced && !synchronous_full {
            Err(rusqlite::Error::InvalidQuery)
        } else {
            commit(&mut conn, &mut batch)
        };
        metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        metrics.batch_size.observe(batch.len() as f64);
        match outcome {
            Ok(results) => {
                let adds = batch.iter().zip(&results).any(|(job, r)| r.is_ok() && job.commit() == Commit::Messages);
                for (job, result) in batch.drain(..).zip(results) {
                    job.finish(result);
                }
                if adds {
                    notify.send_modify(|n| *n += 1);
                }
            }
            Err(e) => {
                metrics.commit_failures.inc();
                tracing::error!(error = %e, operations = batch.len(), "store commit failed; nothing of the batch was committed");
                for job in batch.drain(..) {
                    job.finish(Err(StoreError::Unavailable(e.to_string())));
                }
            }
        }
    }
}

fn commit(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<Vec<Result<(), StoreError>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch.iter_mut() {
        let sp = tx.savepoint()?;
        results.push(match job.run(&sp) {
            Ok(()) => {
                sp.commit()?;
                Ok(())
            }
            // Dropping the savepoint rolls back this job only.
            Err(e) => Err(StoreError::Unavailable(e.to_string())),
        });
    }
    tx.commit()?;
    Ok(results)
}

#[cfg(test)]
mod tests;
