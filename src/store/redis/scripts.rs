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

use super::store::RedisStore;
use super::values::unavailable;
use crate::store::StoreError;

/// Runs a script that keeps no audit record (its audit arguments empty) with `args`.
pub async fn run<T: redis::FromRedisValue>(
    store: &RedisStore,
    script: &Script,
    args: &[Vec<u8>],
) -> Result<T, StoreError> {
    let mut invocation = script.key(store.keys.key("seq"));
    invocation.arg(&store.keys.base).arg("").arg("").arg("").arg("");
    for a in args {
        invocation.arg(a);
    }
    invocation.invoke_async(&mut store.conn()).await.map_err(unavailable)
}

/// A string argument of a script.
pub fn bulk(s: impl AsRef<str>) -> Vec<u8> {
    s.as_ref().as_bytes().to_vec()
}

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
/// hash, received at, received ms, stripped, event, in reply to, recipients (JSON), rule errors
/// (JSON), n, then n pairs of recipient and its copy of the event (empty: the event as it is).
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
  'stripped', ARGV[14], 'event', ARGV[15], 'reply_to', ARGV[16], 'recipients', ARGV[17], 'rule_errors', ARGV[18])
redis.call('HSET', B .. 'native', key, id)
redis.call('HSET', B .. 'mseq', seq, id)
redis.call('ZADD', B .. 'nid:' .. native, seq, id)
redis.call('ZADD', B .. 'received', ARGV[13], seq)
-- The console's search (store/redis/messages.rs): by case number, sender and type.
if ARGV[10] ~= '' then redis.call('ZADD', B .. 'subj:' .. ARGV[10], seq, id) end
redis.call('ZADD', B .. 'snd:' .. sender, seq, id)
redis.call('ZADD', B .. 'typ:' .. ARGV[9], seq, id)
local sid = seq .. '-1'
redis.call('XADD', B .. 'log', sid, 'id', id)
local n = tonumber(ARGV[19])
for i = 0, n - 1 do
  local r, copy = ARGV[20 + 2 * i], ARGV[21 + 2 * i]
  if copy == '' then copy = ARGV[15] end
  redis.call('XADD', B .. 'feed:' .. r, sid, 'type', ARGV[9], 'subject', ARGV[10], 'event', copy)
  redis.call('SADD', B .. 'recipients', r)
end
local hour = B .. 'counts:' .. math.floor(tonumber(ARGV[13]) / 3600000)
redis.call('HINCRBY', hour, 'accepted\t' .. ARGV[9] .. '\t' .. sender .. '\t', 1)
redis.call('EXPIRE', hour, 691200)
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

/// Deletes a subscription's record (its queue is wiped separately: `queue`).
pub static DELETE_SUBSCRIPTION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local sub = ARGV[6]
local sk = B .. 'sub:' .. sub
if redis.call('EXISTS', sk) == 0 then return 0 end
redis.call('DEL', sk)
redis.call('SREM', B .. 'subs', sub)
return 1
"#,
    )
});

/// Disables a subscription, if it exists. ARGV[6..]: id, why.
pub static DISABLE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local sk = B .. 'sub:' .. ARGV[6]
if redis.call('EXISTS', sk) == 0 then return 0 end
redis.call('HSET', sk, 'disabled', ARGV[7])
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

/// The reply figures (`reply_figures.rs`): per Beijing day of the obligations' opening, a hash
/// `rf:DAY` of `AGENCY\nreceived|on_time|late|overdue` (counts) and `AGENCY\ntimes` (the reply
/// times in whole seconds, space-separated); `rf:days` the days that have some. The obligations up to
/// `rf:start` (those stored before the figures were kept) are counted by `FILL_REPLY_FIGURES`,
/// up to `rf:upto` so far: a change to one not counted yet is left for it to count.
const FIGURES: &str = r#"
local function counted(id)
  id = tonumber(id)
  return id > tonumber(redis.call('GET', B .. 'rf:start') or '0') or id <= tonumber(redis.call('GET', B .. 'rf:upto') or '0')
end
local function day_of(ms)
  return string.format('%d', math.floor((tonumber(ms) + 28800000) / 86400000))
end
local function add_time(f, agency, seconds)
  local field = agency .. '\ntimes'
  local times = redis.call('HGET', f, field)
  if times then seconds = times .. ' ' .. seconds end
  redis.call('HSET', f, field, seconds)
end
local function reply_seconds(opened, answered)
  local s = math.floor((tonumber(answered) - tonumber(opened)) / 1000)
  if s < 0 then s = 0 end
  return string.format('%d', s)
end
"#;

/// Applies the thread worker's changes if its cursor is still where it read it, and moves the
/// cursor. ARGV[6..]: the expected cursor, the new one, the changes (JSON: a list of commands;
/// `answer OBLIGATION DAY AGENCY on_time|late SECONDS` counts an answer in the reply figures,
/// before the obligation's state changes).
pub static APPLY_THREADS: LazyLock<Script> = LazyLock::new(|| {
    script(
        &[
            FIGURES,
            r#"
if (redis.call('GET', B .. 'threads:cursor') or '0') ~= ARGV[6] then return 0 end
for _, op in ipairs(cjson.decode(ARGV[8])) do
  if op[1] == 'answer' then
    if counted(op[2]) then
      local f = B .. 'rf:' .. op[3]
      if redis.call('HGET', B .. 'o:' .. op[2], 'state') == 'overdue' then
        redis.call('HINCRBY', f, op[4] .. '\noverdue', -1)
      end
      redis.call('HINCRBY', f, op[4] .. '\n' .. op[5], 1)
      add_time(f, op[4], op[6])
    end
  else
    redis.call(unpack(op))
  end
end
redis.call('SET', B .. 'threads:cursor', ARGV[7])
return 1
"#,
        ]
        .concat(),
    )
});

/// Marks an open obligation overdue, in the reply figures too. ARGV[6]: the obligation.
pub static MARK_OVERDUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        &[
            FIGURES,
            r#"
local ok = B .. 'o:' .. ARGV[6]
if redis.call('HGET', ok, 'state') ~= 'open' then return 0 end
redis.call('HSET', ok, 'state', 'overdue')
redis.call('ZREM', B .. 'o:due', ARGV[6])
if counted(ARGV[6]) then
  local o = redis.call('HMGET', ok, 'awaiting', 'opened_ms')
  redis.call('HINCRBY', B .. 'rf:' .. day_of(o[2]), o[1] .. '\noverdue', 1)
end
return 1
"#,
        ]
        .concat(),
    )
});

/// Counts the next obligations stored before the reply figures were kept (up to `rf:start`) in
/// them, and in `o:owed` those not answered. ARGV[6]: how many at most. Returns how many are
/// left to count.
pub static FILL_REPLY_FIGURES: LazyLock<Script> = LazyLock::new(|| {
    script(
        &[
            FIGURES,
            r#"
local start = tonumber(redis.call('GET', B .. 'rf:start') or '0')
local upto = tonumber(redis.call('GET', B .. 'rf:upto') or '0')
local last = math.min(start, upto + tonumber(ARGV[6]))
for id = upto + 1, last do
  local o = redis.call('HMGET', B .. 'o:' .. id, 'awaiting', 'opened_ms', 'deadline_ms', 'state', 'answered_ms', 'late')
  if o[1] then
    local day = day_of(o[2])
    local f = B .. 'rf:' .. day
    redis.call('ZADD', B .. 'rf:days', day, day)
    redis.call('HINCRBY', f, o[1] .. '\nreceived', 1)
    if o[4] == 'answered' then
      local late = 'on_time'
      if o[6] == '1' then late = 'late' end
      redis.call('HINCRBY', f, o[1] .. '\n' .. late, 1)
      add_time(f, o[1], reply_seconds(o[2], o[5]))
    else
      redis.call('ZADD', B .. 'o:owed', o[3], id)
      if o[4] == 'overdue' then redis.call('HINCRBY', f, o[1] .. '\noverdue', 1) end
    end
  end
end
if last > upto then redis.call('SET', B .. 'rf:upto', string.format('%d', last)) end
return start - math.max(last, upto)
"#,
        ]
        .concat(),
    )
});
