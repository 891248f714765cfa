//! Group commit for the writes that append to the audit chain.
//!
//! Each record's hash covers the previous one, so an instance appends one record after another.
//! Sending one script and waiting for its answer before the next would make every accept wait
//! for the round trips of all the accepts queued before it. Instead, a caller queues its write
//! and takes the chain's lock; whoever holds the lock sends every queued write in one pipeline,
//! each with the record that follows the one before it, and hands each caller its answer.
//!
//! The scripts still compare the head they expect with the head in Redis (see `scripts`): a
//! write whose expected head moved (another instance appended, or an earlier write of the same
//! pipeline changed nothing) answers `stale`, writes nothing, and goes into the next pipeline.
//! The pipeline runs in its own task, which holds the lock, so a caller that goes away (a client
//! that hangs up) does not leave the others without an answer.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use redis::{RedisResult, Script, Value};
use tokio::sync::oneshot;

use super::connection::Conn;
use super::values::{unavailable, value_str};
use crate::audit::{Algorithm, Entry, GENESIS, Record, link};
use crate::clock::{Clock, format_ms};
use crate::store::StoreError;

/// Pipelines a write may be sent in before the caller is told to retry.
const ROUNDS: usize = 16;

/// Most writes sent in one pipeline.
const BATCH_MAX: usize = 256;

struct Write {
    script: &'static Script,
    entry: Option<Entry>,
    args: Vec<Vec<u8>>,
    answer: oneshot::Sender<Result<Value, StoreError>>,
}

pub struct Chain {
    conn: Conn,
    /// `{prefix}:`, every script's `ARGV[1]`.
    base: String,
    /// The key every script declares (for Cluster routing).
    routing_key: String,
    head_key: String,
    alg: Algorithm,
    /// Stamps each record's time.
    clock: Arc<dyn Clock>,
    /// The head as this instance last saw it (`"seq hash"`); `None` until read again.
    head: Arc<tokio::sync::Mutex<Option<String>>>,
    queue: Mutex<Vec<Write>>,
}

impl Chain {
    pub fn new(conn: Conn, base: &str, alg: Algorithm, clock: Arc<dyn Clock>) -> Arc<Chain> {
        Arc::new(Chain {
            conn,
            base: base.to_string(),
            routing_key: format!("{base}seq"),
            head_key: format!("{base}audit:head"),
            alg,
            clock,
            head: Arc::default(),
            queue: Mutex::default(),
        })
    }

    /// Forgets the head, to read it again before the next write (after Redis lost its data).
    pub async fn forget_head(&self) {
        *self.head.lock().await = None;
    }

    /// Runs `script` with `args` after the audit arguments: with the record of `entry` appended
    /// to the chain in the same script, or with empty audit arguments when there is none.
    pub async fn write(
        self: &Arc<Self>,
        script: &'static Script,
        entry: Option<Entry>,
        args: Vec<Vec<u8>>,
    ) -> Result<Value, StoreError> {
        let (answer, mut answered) = oneshot::channel();
        self.lock_queue().push(Write { script, entry, args, answer });
        let head = self.head.clone().lock_owned().await;
        // The lock's last holder may have sent this write with its own.
        match answered.try_recv() {
            Ok(result) => return result,
            Err(oneshot::error::TryRecvError::Closed) => return Err(stopped()),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let writes = std::mem::take(&mut *self.lock_queue());
        let chain = self.clone();
        tokio::spawn(async move { chain.commit(head, writes).await });
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<Write>> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The record that follows `head` (`"seq hash"` or empty): its sequence, canonical JSON and
    /// hash.
    fn record(&self, head: &str, entry: Entry) -> (i64, String, String) {
        let (seq, prev) = match head.split_once(' ') {
            Some((seq, hash)) => (seq.parse::<i64>().unwrap_or(0) + 1, hash.to_string()),
            None => (1, GENESIS.to_string()),
        };
        let canonical = Record { seq, at: format_ms(self.clock.now_ms()), alg: self.alg, entry }.canonical();
        let hash = link(self.alg, &prev, &canonical);
        (seq, canonical, hash)
    }

    /// Sends `writes` in pipelines of at most `BATCH_MAX` until each has its answer.
    async fn commit(&self, mut head: tokio::sync::OwnedMutexGuard<Option<String>>, mut writes: Vec<Write>) {
        let mut round = 0;
        while !writes.is_empty() {
            round += 1;
            if round > ROUNDS {
                for w in writes.drain(..) {
                    let _ =
                        w.answer.send(Err(StoreError::Unavailable("redis: the audit chain kept moving; retry".into())));
                }
                break;
            }
            let later = writes.split_off(writes.len().min(BATCH_MAX));
            let mut retry = match self.send(&mut head, writes).await {
                Ok(retry) => retry,
                Err(failed) => failed,
            };
            retry.extend(later);
            writes = retry;
        }
    }

    /// One pipeline: answers the writes that went through, and gives back those to send again.
    /// When Redis cannot be reached, every write is answered with the error.
    async fn send(&self, head: &mut Option<String>, writes: Vec<Write>) -> Result<Vec<Write>, Vec<Write>> {
        let start = match head.clone() {
            Some(h) => h,
            None => {
                match redis::cmd("GET").arg(&self.head_key).query_async::<Option<String>>(&mut self.conn.clone()).await
                {
                    Ok(h) => h.unwrap_or_default(),
                    Err(e) => return Err(fail(writes, &e)),
                }
            }
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut expected = start.clone();
        let mut records = Vec::with_capacity(writes.len());
        for w in &writes {
            let record = w.entry.as_ref().map(|e| self.record(&expected, e.clone()));
            let mut invocation = w.script.key(&self.routing_key);
            invocation.arg(&self.base).arg(&expected);
            match &record {
                Some((seq, canonical, hash)) => invocation.arg(seq).arg(canonical).arg(hash),
                None => invocation.arg("").arg("").arg(""),
            };
            for a in &w.args {
                invocation.arg(a);
            }
            pipe.invoke_script(&invocation);
            let next = record.map(|(seq, _, hash)| format!("{seq} {hash}"));
            if let Some(next) = &next {
                expected = next.clone();
            }
            records.push(next);
        }
        let results: Vec<RedisResult<Value>> = match pipe.query_async(&mut self.conn.clone()).await {
            Ok(results) => results,
            Err(e) => {
                *head = None;
                return Err(fail(writes, &e));
            }
        };
        let mut now = start;
        let mut retry = Vec::new();
        let mut load: HashSet<&str> = HashSet::new();
        let mut to_load = Vec::new();
        for ((w, record), result) in writes.into_iter().zip(records).zip(results) {
            match result {
                Ok(v) if is_stale(&v) => retry.push(w),
                Ok(v) => {
                    if let Some(record) = record
                        && wrote(&v)
                    {
                        now = record;
                    }
                    let _ = w.answer.send(Ok(v));
                }
                Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                    if load.insert(w.script.get_hash()) {
                        to_load.push(w.script);
                    }
                    retry.push(w);
                }
                Err(e) => {
                    let _ = w.answer.send(Err(unavailable(e)));
                }
            }
        }
        for script in to_load {
            if let Err(e) = script.load_async(&mut self.conn.clone()).await {
                *head = None;
                return Err(fail(retry, &e));
            }
        }
        // A stale write means the head is not what this instance thought: read it again.
        *head = if retry.is_empty() { Some(now) } else { None };
        Ok(retry)
    }
}

/// Answers every write with `error`; gives back nothing to retry.
fn fail(writes: Vec<Write>, error: &redis::RedisError) -> Vec<Write> {
    for w in writes {
        let _ = w.answer.send(Err(unavailable(error.clone())));
    }
    Vec::new()
}

fn stopped() -> StoreError {
    StoreError::Unavailable("redis: the write was interrupted; retry".into())
}

/// A script's verdict: its answer, or the first element of an array answer.
fn verdict(v: &Value) -> Option<String> {
    match v {
        Value::Array(items) => items.first().and_then(value_str),
        other => value_str(other),
    }
}

fn is_stale(v: &Value) -> bool {
    verdict(v).as_deref() == Some("stale")
}

/// Whether the script appended its audit record (it did unless it changed nothing).
fn wrote(v: &Value) -> bool {
    matches!(verdict(v).as_deref(), Some("ok" | "yes" | "created"))
}
