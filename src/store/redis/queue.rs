//! Each webhook subscription's delivery queue: a Redis stream read by a consumer group, under a
//! hash tag of its own, so the queues of different subscriptions spread over a Cluster's shards.
//!
//! Keys, all under `{PREFIX:q:SUBSCRIPTION}:`:
//! - `ready`: the stream of attempts ready to send, read by the consumer group `workers` (each
//!   instance one consumer). An entry is pending in the group while its attempt is in flight;
//!   its outcome acknowledges and deletes it.
//! - `delayed`: a sorted set of attempts waiting for a retry, by due time (unix ms); each lease
//!   first moves the due ones onto the stream.
//! - `a:ID`: an attempt (its event until delivered, its state, tries and last answer);
//!   `att`: feed position → attempt id, so an entry gets one attempt only.
//! - `pend`: the pending attempts by feed position; `thr:THREAD`: those of one case thread.
//!   Only a thread's oldest pending attempt is on the stream or waiting for a retry, and the
//!   next goes on when it is done: a thread reaches its endpoint in order.
//! - `done` (finished attempts by feed position, for the retention) and `dead` (dead letters).
//!
//! The janitor's work is the first step of every lease: `XAUTOCLAIM` takes over the entries
//! another consumer has held for longer than the lease (`delivery.lease`, longer than the
//! request timeout): an instance that died mid-delivery. A lost stream or group (`NOGROUP`: the
//! key was deleted, or Redis restarted without its data) is made again from `pend`, with the
//! attempts still leased by another instance waiting until their lease ends.

use std::sync::LazyLock;

use redis::Script;

use super::store::RedisStore;
use super::values::{unavailable, value_str};
use crate::store::webhooks::RESPONSE_KEPT;
use crate::store::{Attempt, AttemptOutcome, NewAttempt, StoreError};

/// Functions shared by the queue scripts. `ARGV[1]` is the queue's key base.
const PRELUDE: &str = r#"
local Q = ARGV[1]
local G = 'workers'
local function head(thread) return redis.call('ZRANGE', Q .. 'thr:' .. thread, 0, 0)[1] end
-- Takes an attempt's entry off the stream (acknowledged, deleted), if it has one.
local function unqueue(ak)
  local e = redis.call('HGET', ak, 'entry')
  if e and e ~= '' then
    redis.pcall('XACK', Q .. 'ready', G, e)
    redis.call('XDEL', Q .. 'ready', e)
    redis.call('HSET', ak, 'entry', '')
  end
end
-- Puts an attempt on the stream, unless it is there already.
local function queue(id)
  local ak = Q .. 'a:' .. id
  redis.call('ZREM', Q .. 'delayed', id)
  local e = redis.call('HGET', ak, 'entry')
  if e and e ~= '' then return end
  redis.call('HSET', ak, 'entry', redis.call('XADD', Q .. 'ready', '*', 'a', id))
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Creates attempts. ARGV[2..]: now, n, then n groups of id, feed position, thread, message
/// id, type, owner, event. Answers how many were new.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now, n = ARGV[2], tonumber(ARGV[3])
local made = 0
for i = 0, n - 1 do
  local b = 4 + 7 * i
  local id, seq, thread = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  if redis.call('HSETNX', Q .. 'att', seq, id) == 1 then
    redis.call('HSET', Q .. 'a:' .. id, 'seq', seq, 'thread', thread, 'mid', ARGV[b + 3], 'wid', 'msg_' .. ARGV[b + 3],
      'type', ARGV[b + 4], 'owner', ARGV[b + 5], 'event', ARGV[b + 6], 'state', 'pending', 'attempts', 0, 'next_at', 0,
      'entry', '', 'leased_until', 0, 'created_at', now, 'updated_at', now)
    redis.call('ZADD', Q .. 'pend', seq, id)
    redis.call('ZADD', Q .. 'thr:' .. thread, seq, id)
    if head(thread) == id then queue(id) end
    made = made + 1
  end
end
return made
"#,
    )
});

/// Leases up to `max` attempts for this consumer: due retries onto the stream, then the
/// janitor's `XAUTOCLAIM` of entries idle longer than the lease, then new entries. ARGV[2..]:
/// consumer, now (ms), lease (ms), max. Answers id, feed position, message id, webhook id,
/// tries made, event, type, owner per attempt.
static LEASE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local consumer, now, lease, max = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
-- The stream and its group, made again from the pending attempts when lost.
local function repair()
  redis.call('DEL', Q .. 'ready')
  redis.call('XGROUP', 'CREATE', Q .. 'ready', G, '$', 'MKSTREAM')
  for _, id in ipairs(redis.call('ZRANGE', Q .. 'pend', 0, -1)) do
    local ak = Q .. 'a:' .. id
    local a = redis.call('HMGET', ak, 'thread', 'leased_until')
    redis.call('HSET', ak, 'entry', '')
    if head(a[1]) == id and not redis.call('ZSCORE', Q .. 'delayed', id) then
      local until_ms = tonumber(a[2] or '0') or 0
      if until_ms > now then redis.call('ZADD', Q .. 'delayed', until_ms, id) else queue(id) end
    end
  end
end
local claimed = redis.pcall('XAUTOCLAIM', Q .. 'ready', G, consumer, lease, '0-0', 'COUNT', max)
if type(claimed) == 'table' and claimed.err then
  if not string.find(claimed.err, 'NOGROUP') then return redis.error_reply(claimed.err) end
  repair()
  claimed = {'0-0', {}}
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', Q .. 'delayed', '-inf', now, 'LIMIT', 0, 1000)) do queue(id) end
local got = {}
for _, e in ipairs(claimed[2]) do if e and e[2] then table.insert(got, e) end end
if #got < max then
  local r = redis.call('XREADGROUP', 'GROUP', G, consumer, 'COUNT', max - #got, 'STREAMS', Q .. 'ready', '>')
  if r then for _, e in ipairs(r[1][2]) do table.insert(got, e) end end
end
local out = {}
for _, e in ipairs(got) do
  local eid, id = e[1], e[2][2]
  local ak = Q .. 'a:' .. id
  local a = redis.call('HMGET', ak, 'state', 'thread', 'entry', 'seq', 'mid', 'wid', 'attempts', 'event', 'type', 'owner')
  if a[1] == 'pending' and a[3] == eid and head(a[2]) == id then
    redis.call('HSET', ak, 'leased_until', now + lease)
    table.insert(out, {id, a[4], a[5], a[6], a[7], a[8], a[9], a[10]})
  else
    -- Finished, superseded, or not its thread's oldest any more (a replay went first): off
    -- the stream; it goes on again when its turn comes.
    redis.call('XACK', Q .. 'ready', G, eid)
    redis.call('XDEL', Q .. 'ready', eid)
    if a[3] == eid then redis.call('HSET', ak, 'entry', '') end
  end
end
return out
"#,
    )
});

/// Records an attempt's outcome. ARGV[2..]: attempt, outcome (delivered, retry, dead, gone),
/// status ('' for none), retry at, error, response, now, the reason of a gone endpoint, the
/// failure in words (kept in the queue's `stat` hash with the last success, for the console).
/// Answers `ok`, or `missing` when the attempt is not pending.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local id, kind, status, now = ARGV[2], ARGV[3], ARGV[4], ARGV[8]
local ak = Q .. 'a:' .. id
local a = redis.call('HMGET', ak, 'state', 'thread', 'seq')
if a[1] ~= 'pending' then return 'missing' end
local function tried(state)
  unqueue(ak)
  redis.call('HINCRBY', ak, 'attempts', 1)
  redis.call('HSET', ak, 'state', state, 'updated_at', now, 'leased_until', 0)
  if status ~= '' then redis.call('HSET', ak, 'last_status', status) else redis.call('HDEL', ak, 'last_status') end
end
-- Off the pending sets, among the finished ones.
local function retire(which, seq, thread)
  redis.call('ZREM', Q .. 'pend', which)
  redis.call('ZREM', Q .. 'delayed', which)
  redis.call('ZREM', Q .. 'thr:' .. thread, which)
  redis.call('ZADD', Q .. 'done', seq, which)
end
local function dead(other, error)
  local ok = Q .. 'a:' .. other
  local o = redis.call('HMGET', ok, 'seq', 'thread')
  unqueue(ok)
  redis.call('HSET', ok, 'state', 'dead', 'last_error', error, 'updated_at', now, 'leased_until', 0)
  retire(other, o[1], o[2])
  redis.call('ZADD', Q .. 'dead', other, other)
end
-- Finished: retired, and the thread's next attempt goes on the stream.
local function finish(state)
  tried(state)
  retire(id, a[3], a[2])
  local next = head(a[2])
  if next then queue(next) end
end
if kind == 'delivered' then
  redis.call('HSET', Q .. 'stat', 'last_success_at', now)
else
  redis.call('HSET', Q .. 'stat', 'last_error', ARGV[10], 'last_error_at', now)
end
if kind == 'delivered' then
  finish('delivered')
  redis.call('HDEL', ak, 'last_error', 'event')
elseif kind == 'retry' then
  tried('pending')
  redis.call('HSET', ak, 'next_at', ARGV[5], 'last_error', ARGV[6])
  redis.call('ZADD', Q .. 'delayed', ARGV[5], id)
elseif kind == 'dead' then
  finish('dead')
  redis.call('HSET', ak, 'last_error', ARGV[6])
  if ARGV[7] ~= '' then redis.call('HSET', ak, 'last_response', ARGV[7]) end
  redis.call('ZADD', Q .. 'dead', id, id)
else
  tried('dead')
  dead(id, ARGV[9])
  for _, other in ipairs(redis.call('ZRANGE', Q .. 'pend', 0, -1)) do
    dead(other, 'the subscription is disabled: its endpoint is gone')
  end
end
return 'ok'
"#,
    )
});

/// Makes a dead attempt pending again, due now. ARGV[2..]: attempt, now (ms), now. Answers
/// `yes`, or `no` when it is not dead.
static REPLAY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local id = ARGV[2]
local ak = Q .. 'a:' .. id
local a = redis.call('HMGET', ak, 'state', 'seq', 'thread')
if a[1] ~= 'dead' then return 'no' end
redis.call('HSET', ak, 'state', 'pending', 'attempts', 0, 'next_at', ARGV[3], 'updated_at', ARGV[4], 'leased_until', 0)
redis.call('ZADD', Q .. 'pend', a[2], id)
redis.call('ZADD', Q .. 'thr:' .. a[3], a[2], id)
redis.call('ZREM', Q .. 'dead', id)
redis.call('ZREM', Q .. 'done', id)
if head(a[3]) == id then queue(id) end
return 'yes'
"#,
    )
});

/// Deletes the whole queue: every attempt, pending or finished.
static WIPE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local doomed = {}
for _, set in ipairs({'pend', 'done', 'dead'}) do
  for _, id in ipairs(redis.call('ZRANGE', Q .. set, 0, -1)) do doomed[id] = true end
end
for id in pairs(doomed) do
  local thread = redis.call('HGET', Q .. 'a:' .. id, 'thread')
  if thread then redis.call('DEL', Q .. 'thr:' .. thread) end
  redis.call('DEL', Q .. 'a:' .. id)
end
redis.call('DEL', Q .. 'ready', Q .. 'delayed', Q .. 'att', Q .. 'pend', Q .. 'done', Q .. 'dead', Q .. 'stat')
return 1
"#,
    )
});

impl RedisStore {
    /// A webhook subscription's delivery queue.
    pub(super) fn queue(&self, subscription: &str) -> Queue {
        Queue::new(&self.settings.prefix, subscription)
    }
}

/// One subscription's queue.
pub struct Queue {
    /// `{PREFIX:q:SUBSCRIPTION}:`
    pub base: String,
    pub subscription: String,
}

impl Queue {
    pub fn new(prefix: &str, subscription: &str) -> Queue {
        Queue { base: format!("{{{prefix}:q:{subscription}}}:"), subscription: subscription.to_string() }
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.base)
    }

    /// Runs a queue script: its key base first, then `args`.
    async fn run<T: redis::FromRedisValue>(
        &self,
        store: &RedisStore,
        script: &Script,
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let mut invocation = script.key(self.key("ready"));
        invocation.arg(&self.base);
        for a in args {
            invocation.arg(*a);
        }
        invocation.invoke_async(&mut store.conn()).await.map_err(unavailable)
    }

    /// Creates the attempts that are new, with ids from the gateway's counter.
    pub async fn enqueue(&self, store: &RedisStore, owner: &str, entries: &[NewAttempt]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let last: i64 = redis::cmd("INCRBY")
            .arg(store.keys.key("att:next"))
            .arg(entries.len())
            .query_async(&mut store.conn())
            .await
            .map_err(unavailable)?;
        let first = last - entries.len() as i64 + 1;
        let (now, n) = (store.now(), entries.len().to_string());
        let numbers: Vec<(String, String)> =
            entries.iter().enumerate().map(|(i, e)| ((first + i as i64).to_string(), e.seq.to_string())).collect();
        let mut args: Vec<&[u8]> = vec![now.as_bytes(), n.as_bytes()];
        for (e, (id, seq)) in entries.iter().zip(&numbers) {
            args.extend([
                id.as_bytes(),
                seq.as_bytes(),
                e.thread.as_bytes(),
                e.message_id.as_bytes(),
                e.message_type.as_bytes(),
                owner.as_bytes(),
                e.event.as_bytes(),
            ]);
        }
        let _: i64 = self.run(store, &ENQUEUE, &args).await?;
        Ok(())
    }

    pub async fn lease(
        &self,
        store: &RedisStore,
        max: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<Attempt>, StoreError> {
        let (now, lease, max) = (now_ms.to_string(), lease_ms.max(1).to_string(), max.to_string());
        let args: [&[u8]; 4] = [store.consumer.as_bytes(), now.as_bytes(), lease.as_bytes(), max.as_bytes()];
        let rows: Vec<Vec<String>> = self.run(store, &LEASE, &args).await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.len() == 8)
            .map(|mut r| Attempt {
                id: r[0].parse().unwrap_or_default(),
                subscription: self.subscription.clone(),
                message_seq: r[1].parse().unwrap_or_default(),
                message_id: std::mem::take(&mut r[2]),
                webhook_id: std::mem::take(&mut r[3]),
                attempts: r[4].parse().unwrap_or_default(),
                event: std::mem::take(&mut r[5]),
                message_type: std::mem::take(&mut r[6]),
                recipient: std::mem::take(&mut r[7]),
            })
            .collect())
    }

    /// Records the outcome; false when the attempt was not pending.
    pub async fn complete(
        &self,
        store: &RedisStore,
        attempt: i64,
        outcome: &AttemptOutcome,
        gone_reason: &str,
    ) -> Result<bool, StoreError> {
        let status_of = |s: &Option<u16>| s.map(|s| s.to_string()).unwrap_or_default();
        let kept = |s: &Option<String>| {
            s.as_ref().map(|s| s.chars().take(RESPONSE_KEPT).collect::<String>()).unwrap_or_default()
        };
        // outcome, status, retry at, error, response
        let (kind, status, at, error, response) = match outcome {
            AttemptOutcome::Delivered { status } => ("delivered", status.to_string(), 0, "", String::new()),
            AttemptOutcome::Retry { at_ms, status, error } => {
                ("retry", status_of(status), *at_ms, error.as_str(), String::new())
            }
            AttemptOutcome::Dead { status, error, response } => {
                ("dead", status_of(status), 0, error.as_str(), kept(response))
            }
            AttemptOutcome::Gone { status } => ("gone", status.to_string(), 0, "", String::new()),
        };
        let (id, at, now) = (attempt.to_string(), at.to_string(), store.now());
        let failure = outcome.failure().unwrap_or_default();
        let args: [&[u8]; 9] = [
            id.as_bytes(),
            kind.as_bytes(),
            status.as_bytes(),
            at.as_bytes(),
            error.as_bytes(),
            response.as_bytes(),
            now.as_bytes(),
            gone_reason.as_bytes(),
            failure.as_bytes(),
        ];
        let answer: redis::Value = self.run(store, &COMPLETE, &args).await?;
        Ok(value_str(&answer).as_deref() == Some("ok"))
    }

    /// Whether the dead attempt was made pending again.
    pub async fn replay(&self, store: &RedisStore, attempt: i64) -> Result<bool, StoreError> {
        let (id, now_ms, now) = (attempt.to_string(), store.clock.now_ms().to_string(), store.now());
        let answer: redis::Value =
            self.run(store, &REPLAY, &[id.as_bytes(), now_ms.as_bytes(), now.as_bytes()]).await?;
        Ok(value_str(&answer).as_deref() == Some("yes"))
    }

    pub async fn wipe(&self, store: &RedisStore) -> Result<(), StoreError> {
        let _: i64 = self.run(store, &WIPE, &[]).await?;
        Ok(())
    }
}
