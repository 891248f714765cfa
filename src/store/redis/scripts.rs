//! The Lua scripts that make each write atomic on Redis. Every key of a gateway shares one hash
//! tag, so a script's keys are in one slot (Redis Cluster runs it on one shard); a script gets
//! the key base (`{prefix}:`) as `ARGV[1]` and one declared key for routing.
//!
//! A script that records something in the audit chain takes four more arguments from `ARGV[2]`:
//! the head it expects (`"seq hash"`, empty for an empty chain), the new record's sequence,
//! canonical JSON and hash (computed in Rust: Redis's Lua has no SHA-256 or SM3). When the head
//! moved (another instance appended), it writes nothing and answers `stale`; the caller reads
//! the head again and retries.

use std::sync::LazyLock;

use redis::Script;

/// Functions shared by the scripts: the audit chain's check and append.
const PRELUDE: &str = r#"
local B = ARGV[1]
local function audit_ok()
  if ARGV[3] == '' then return true end
  return (redis.call('GET', B .. 'audit:head') or '') == ARGV[2]
end
local function audit_write()
  if ARGV[3] == '' then return end
  local prev = '0000000000000000000000000000000000000000000000000000000000000000'
  if ARGV[2] ~= '' then prev = string.match(ARGV[2], ' (.*)$') end
  redis.call('XADD', B .. 'audit', ARGV[3] .. '-1', 'record', ARGV[4], 'prev', prev, 'hash', ARGV[5])
  redis.call('SET', B .. 'audit:head', ARGV[3] .. ' ' .. ARGV[5])
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Commits a message, its outbox (one feed entry per recipient) and its audit record, unless its
/// sender sent the native id before. ARGV[6..]: id, sender, native id, type, subject, content
/// hash, received at, received ms, stripped, event, in reply to, recipients (JSON), n, then n
/// pairs of recipient and its copy of the event.
pub static ACCEPT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local id, sender, native = ARGV[6], ARGV[7], ARGV[8]
local key = sender .. '\n' .. native
local earlier = redis.call('HGET', B .. 'native', key)
if earlier then
  local m = redis.call('HMGET', B .. 'm:' .. earlier, 'type', 'stripped', 'content', 'recipients')
  return {'earlier', earlier, m[1] or '', m[2] or '[]', m[3] or '', m[4] or '[]'}
end
if not audit_ok() then return {'stale'} end
local seq = redis.call('INCR', B .. 'seq')
redis.call('HSET', B .. 'm:' .. id, 'seq', seq, 'sender', sender, 'native', native, 'type', ARGV[9],
  'subject', ARGV[10], 'content', ARGV[11], 'received_at', ARGV[12], 'received_ms', ARGV[13],
  'stripped', ARGV[14], 'event', ARGV[15], 'reply_to', ARGV[16], 'recipients', ARGV[17])
redis.call('HSET', B .. 'native', key, id)
redis.call('HSET', B .. 'mseq', seq, id)
redis.call('ZADD', B .. 'nid:' .. native, seq, id)
redis.call('ZADD', B .. 'received', ARGV[13], seq)
local sid = seq .. '-1'
redis.call('XADD', B .. 'log', sid, 'id', id)
local n = tonumber(ARGV[18])
for i = 0, n - 1 do
  local r = ARGV[19 + 2 * i]
  redis.call('XADD', B .. 'feed:' .. r, sid, 'type', ARGV[9], 'subject', ARGV[10], 'event', ARGV[20 + 2 * i])
  redis.call('SADD', B .. 'recipients', r)
end
audit_write()
return {'created', tostring(seq)}
"#,
    )
});

/// Appends one audit record and nothing else.
pub static AUDIT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if not audit_ok() then return 'stale' end
audit_write()
return 'ok'
"#,
    )
});

/// Creates a subscription unless its id exists. ARGV[6..]: id, owner, spec, cursor (negative:
/// the head of the feeds), disabled ('' for none), source, created at.
pub static CREATE_SUBSCRIPTION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local sk = B .. 'sub:' .. ARGV[6]
if redis.call('EXISTS', sk) == 1 then return 0 end
local cursor = tonumber(ARGV[9])
if cursor < 0 then cursor = tonumber(redis.call('GET', B .. 'seq') or '0') end
redis.call('HSET', sk, 'owner', ARGV[7], 'spec', ARGV[8], 'cursor', cursor, 'source', ARGV[11], 'created_at', ARGV[12])
if ARGV[10] ~= '' then redis.call('HSET', sk, 'disabled', ARGV[10]) end
redis.call('SADD', B .. 'subs', ARGV[6])
return 1
"#,
    )
});

/// Deletes a subscription and its pending attempts (finished ones stay for the trace).
pub static DELETE_SUBSCRIPTION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local sub = ARGV[6]
local sk = B .. 'sub:' .. sub
if redis.call('EXISTS', sk) == 0 then return 0 end
for _, id in ipairs(redis.call('ZRANGE', sk .. ':pend', 0, -1)) do
  local a = redis.call('HMGET', B .. 'att:' .. id, 'thread', 'seq')
  if a[1] then redis.call('DEL', sk .. ':thr:' .. a[1]) end
  if a[2] then redis.call('SREM', B .. 'matt:' .. a[2], id) end
  redis.call('DEL', B .. 'att:' .. id)
end
redis.call('DEL', sk, sk .. ':pend', sk .. ':due', sk .. ':att')
redis.call('SREM', B .. 'subs', sub)
return 1
"#,
    )
});

/// Moves a subscription's cursor forward, never back. ARGV[6..]: id, cursor.
pub static ACKNOWLEDGE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local sk = B .. 'sub:' .. ARGV[6]
if redis.call('EXISTS', sk) == 0 then return 0 end
if tonumber(ARGV[7]) > tonumber(redis.call('HGET', sk, 'cursor') or '0') then
  redis.call('HSET', sk, 'cursor', ARGV[7])
end
return 1
"#,
    )
});

/// Creates the attempts of a webhook subscription and moves its cursor. ARGV[6..]: id, through,
/// now, n, then n pairs of feed position and case thread.
pub static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local sub = ARGV[6]
local sk = B .. 'sub:' .. sub
if redis.call('EXISTS', sk) == 0 then return 0 end
local n = tonumber(ARGV[9])
for i = 0, n - 1 do
  local seq, thread = ARGV[10 + 2 * i], ARGV[11 + 2 * i]
  if redis.call('HEXISTS', sk .. ':att', seq) == 0 then
    local mid = redis.call('HGET', B .. 'mseq', seq)
    if mid then
      local id = redis.call('INCR', B .. 'att:next')
      redis.call('HSET', B .. 'att:' .. id, 'sub', sub, 'seq', seq, 'mid', mid, 'wid', 'msg_' .. mid,
        'thread', thread, 'state', 'pending', 'attempts', 0, 'next_at', 0, 'created_at', ARGV[8], 'updated_at', ARGV[8])
      redis.call('HSET', sk .. ':att', seq, id)
      redis.call('ZADD', sk .. ':due', 0, id)
      redis.call('ZADD', sk .. ':pend', seq, id)
      redis.call('ZADD', sk .. ':thr:' .. thread, seq, id)
      redis.call('SADD', B .. 'matt:' .. seq, id)
    end
  end
end
if tonumber(ARGV[7]) > tonumber(redis.call('HGET', sk, 'cursor') or '0') then
  redis.call('HSET', sk, 'cursor', ARGV[7])
end
return 1
"#,
    )
});

/// Leases due attempts: the oldest pending one of each case thread only. The lease is the
/// attempt's due time moved to the lease's end, so an attempt whose instance died is due again
/// when its lease runs out (the janitor's work, done by the next lease). ARGV[6..]: id, now,
/// lease until, max. Answers id, feed position, message id, webhook id, attempts, event.
pub static LEASE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local sub = ARGV[6]
local sk = B .. 'sub:' .. sub
local s = redis.call('HMGET', sk, 'owner', 'disabled')
if not s[1] or s[2] then return {} end
local max = tonumber(ARGV[9])
local out = {}
local offset = 0
while #out < max and offset < 5000 do
  local ids = redis.call('ZRANGEBYSCORE', sk .. ':due', '-inf', ARGV[7], 'LIMIT', offset, 256)
  for _, id in ipairs(ids) do
    local a = redis.call('HMGET', B .. 'att:' .. id, 'thread', 'seq', 'mid', 'wid', 'attempts')
    if a[1] and redis.call('ZRANGE', sk .. ':thr:' .. a[1], 0, 0)[1] == id then
      local event = ''
      local e = redis.call('XRANGE', B .. 'feed:' .. s[1], a[2] .. '-1', a[2] .. '-1')
      if e[1] then
        local f = e[1][2]
        for j = 1, #f, 2 do if f[j] == 'event' then event = f[j + 1] end end
      end
      table.insert(out, {id, a[2], a[3], a[4], a[5], event})
      if #out >= max then break end
    end
  end
  if #ids < 256 then break end
  offset = offset + #ids
end
for _, o in ipairs(out) do redis.call('ZADD', sk .. ':due', ARGV[8], o[1]) end
return out
"#,
    )
});

/// Records how an attempt ended. ARGV[6..]: attempt, outcome (delivered, retry, dead, gone),
/// status ('' for none), retry at, error, response, now, the reason of a gone endpoint.
pub static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local id = ARGV[6]
local ak = B .. 'att:' .. id
local a = redis.call('HMGET', ak, 'sub', 'seq', 'thread', 'state')
if not a[1] then return 'missing' end
if not audit_ok() then return 'stale' end
local sk = B .. 'sub:' .. a[1]
local kind, status, now = ARGV[7], ARGV[8], ARGV[12]
local function finish(state)
  redis.call('HSET', ak, 'state', state, 'updated_at', now)
  redis.call('HINCRBY', ak, 'attempts', 1)
  if status ~= '' then redis.call('HSET', ak, 'last_status', status) else redis.call('HDEL', ak, 'last_status') end
  redis.call('ZREM', sk .. ':due', id)
  redis.call('ZREM', sk .. ':pend', id)
  redis.call('ZREM', sk .. ':thr:' .. a[3], id)
  redis.call('ZADD', B .. 'done', a[2], id)
  if state == 'dead' then redis.call('ZADD', B .. 'dead', id, id) end
end
if kind == 'delivered' then
  finish('delivered')
  redis.call('HDEL', ak, 'last_error')
elseif kind == 'retry' then
  redis.call('HINCRBY', ak, 'attempts', 1)
  redis.call('HSET', ak, 'next_at', ARGV[9], 'last_error', ARGV[10], 'updated_at', now)
  if status ~= '' then redis.call('HSET', ak, 'last_status', status) else redis.call('HDEL', ak, 'last_status') end
  redis.call('ZADD', sk .. ':due', ARGV[9], id)
elseif kind == 'dead' then
  finish('dead')
  redis.call('HSET', ak, 'last_error', ARGV[10])
  if ARGV[11] ~= '' then redis.call('HSET', ak, 'last_response', ARGV[11]) end
else
  if redis.call('EXISTS', sk) == 1 then redis.call('HSET', sk, 'disabled', ARGV[13]) end
  for _, other in ipairs(redis.call('ZRANGE', sk .. ':pend', 0, -1)) do
    if other ~= id then
      local ok = B .. 'att:' .. other
      local o = redis.call('HMGET', ok, 'seq', 'thread')
      redis.call('HSET', ok, 'state', 'dead', 'last_error', 'the subscription is disabled: its endpoint is gone', 'updated_at', now)
      redis.call('ZREM', sk .. ':due', other)
      redis.call('ZREM', sk .. ':pend', other)
      if o[2] then redis.call('ZREM', sk .. ':thr:' .. o[2], other) end
      redis.call('ZADD', B .. 'done', o[1] or 0, other)
      redis.call('ZADD', B .. 'dead', other, other)
    end
  end
  finish('dead')
  redis.call('HSET', ak, 'last_error', ARGV[13])
end
audit_write()
return 'ok'
"#,
    )
});

/// Makes a dead attempt due again now. ARGV[6..]: attempt, now ms, now.
pub static REPLAY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local id = ARGV[6]
local ak = B .. 'att:' .. id
local a = redis.call('HMGET', ak, 'sub', 'seq', 'thread', 'state')
if a[4] ~= 'dead' then return 'no' end
if not audit_ok() then return 'stale' end
local sk = B .. 'sub:' .. a[1]
redis.call('HSET', ak, 'state', 'pending', 'attempts', 0, 'next_at', ARGV[7], 'updated_at', ARGV[8])
redis.call('ZADD', sk .. ':due', ARGV[7], id)
redis.call('ZADD', sk .. ':pend', a[2], id)
redis.call('ZADD', sk .. ':thr:' .. a[3], a[2], id)
redis.call('ZREM', B .. 'dead', id)
redis.call('ZREM', B .. 'done', id)
audit_write()
return 'yes'
"#,
    )
});

/// Applies the thread worker's changes if its cursor is still where it read it, and moves the
/// cursor. ARGV[6..]: the expected cursor, the new one, the changes (JSON: a list of commands).
pub static APPLY_THREADS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if (redis.call('GET', B .. 'threads:cursor') or '0') ~= ARGV[6] then return 0 end
for _, op in ipairs(cjson.decode(ARGV[8])) do redis.call(unpack(op)) end
redis.call('SET', B .. 'threads:cursor', ARGV[7])
return 1
"#,
    )
});

/// Marks an open obligation overdue. ARGV[6]: the obligation.
pub static MARK_OVERDUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local ok = B .. 'o:' .. ARGV[6]
if redis.call('HGET', ok, 'state') ~= 'open' then return 0 end
redis.call('HSET', ok, 'state', 'overdue')
redis.call('ZREM', B .. 'o:due', ARGV[6])
return 1
"#,
    )
});
