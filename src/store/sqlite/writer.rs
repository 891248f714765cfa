//! The writer: one thread owns the write connection and commits queued jobs in groups, each
//! job in its own savepoint (see the module above for why and what each kind of commit
//! promises).

use std::time::Instant;

use rusqlite::{Connection, Savepoint, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};

use crate::store::StoreError;
use crate::telemetry::StoreMetrics;

/// `execute` with the statement kept prepared: rusqlite's `execute` prepares it anew each time,
/// which the writer's profile showed.
pub trait ExecuteCached {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl ExecuteCached for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

/// What a write promises once it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// New messages: synced, and feeds and workers are told.
    Messages,
    /// Synced.
    Synced,
    /// Delivery bookkeeping: not synced on its own (see the module's documentation).
    Unsynced,
}

/// A write: SQL run inside the group's transaction, answered once the group is committed.
pub trait Job: Send {
    fn run(&mut self, tx: &Savepoint<'_>) -> rusqlite::Result<()>;
    /// Ok once committed; the error otherwise.
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>);
    fn commit(&self) -> Commit;
}

pub struct WriteJob<T, F> {
    pub sql: Option<F>,
    pub value: Option<T>,
    pub reply: oneshot::Sender<Result<T, StoreError>>,
    pub commit: Commit,
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

pub fn run(
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
