//! Threads and obligations on Redis.
//!
//! The thread worker reads what it needs, decides each message's changes in Rust, and commits
//! them with one script that first checks the worker's cursor is still where it read it: when
//! another instance's worker applied the message first, nothing is written and the batch ends
//! (the next round starts from the new cursor). Obligations are hashes `o:N`; `o:due` holds the
//! open ones by deadline, `o:owed` those not answered (open or overdue) by deadline, `o:opened`
//! all by opening time, `o:cd` those answered 无法认定; the reply figures are counted in the same
//! scripts (`reply_figures.rs`).

use async_trait::async_trait;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::messages::{recipients, referenced};
use super::reply_figures;
use super::scripts::{self, bulk, run};
use super::store::RedisStore;
use super::values::{Fields, field, number, position, stream_fields, unavailable};
use crate::store::{
    DueObligation, LogEntry, ObligationRow, OwedQuery, ReplyFigures, StepOutcome, StepRole, StoreError,
    ThreadMessageRow, ThreadQuery, ThreadRow, ThreadStep, Threads,
};
use crate::threads::decide::{self, Placement};
use crate::threads::stats::{day, reply_seconds};

#[async_trait]
impl Threads for RedisStore {
    async fn thread_backlog(&self, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        backlog(self, limit).await
    }

    async fn apply_thread_steps(&self, steps: Vec<ThreadStep>) -> Result<Vec<StepOutcome>, StoreError> {
        apply_all(self, steps).await
    }

    async fn due_obligations(&self, now_ms: i64, limit: usize) -> Result<Vec<DueObligation>, StoreError> {
        due(self, now_ms, limit).await
    }

    async fn unescalated(&self, types: Vec<String>) -> Result<Vec<(i64, String, String)>, StoreError> {
        unescalated(self, &types).await
    }

    async fn mark_overdue(&self, obligation: i64) -> Result<bool, StoreError> {
        let n: i64 = run(self, &scripts::MARK_OVERDUE, &[bulk(obligation.to_string())]).await?;
        Ok(n == 1)
    }

    async fn threads(&self, query: ThreadQuery) -> Result<Vec<ThreadRow>, StoreError> {
        threads(self, &query).await
    }

    async fn obligations(&self, from_ms: i64, to_ms: i64) -> Result<Vec<ObligationRow>, StoreError> {
        obligations(self, from_ms, to_ms).await
    }

    async fn reply_figures(&self, first_day: i64, end_day: i64, now_ms: i64) -> Result<Vec<ReplyFigures>, StoreError> {
        reply_figures::read(self, first_day, end_day, now_ms).await
    }

    async fn owed(&self, query: OwedQuery) -> Result<Vec<ObligationRow>, StoreError> {
        owed(self, &query).await
    }

    async fn thread_of(&self, message_id: &str) -> Result<Option<String>, StoreError> {
        Ok(member(self, message_id).await?.map(|m| m.thread))
    }
}

/// A message in a thread, as `tm` keeps it (by message id).
#[derive(Serialize, Deserialize)]
struct Member {
    thread: String,
    seq: i64,
    kind: String,
    #[serde(rename = "type")]
    message_type: String,
    sender: String,
    at_ms: i64,
    flag: Option<String>,
}

/// The changes of one step: commands for the apply script.
#[derive(Default)]
struct Changes {
    ops: Vec<Vec<String>>,
}

impl Changes {
    fn op(&mut self, parts: &[&str]) {
        self.ops.push(parts.iter().map(|p| p.to_string()).collect());
    }
}

async fn backlog(store: &RedisStore, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
    let mut conn = store.conn();
    let cursor: Option<i64> = conn.get(store.keys.key("threads:cursor")).await.map_err(unavailable)?;
    let reply: redis::streams::StreamRangeReply = conn
        .xrange_count(store.keys.key("log"), format!("({}-1", cursor.unwrap_or(0)), "+", limit)
        .await
        .map_err(unavailable)?;
    let mut p = redis::pipe();
    let ids: Vec<(i64, String)> =
        reply.ids.iter().map(|e| (position(&e.id), stream_fields(&e.map).remove("id").unwrap_or_default())).collect();
    for (_, id) in &ids {
        p.hgetall(store.keys.key(&format!("m:{id}")));
    }
    let rows: Vec<Fields> =
        if ids.is_empty() { Vec::new() } else { p.query_async(&mut conn).await.map_err(unavailable)? };
    Ok(ids
        .into_iter()
        .zip(rows)
        .map(|((seq, id), m)| {
            let mut primaries: Vec<String> = recipients(m.get("recipients").map_or("[]", String::as_str))
                .into_iter()
                .filter(|r| r.role == "primary")
                .map(|r| r.id)
                .collect();
            primaries.sort();
            LogEntry {
                seq,
                id,
                message_type: field(&m, "type").unwrap_or_default(),
                sender: field(&m, "sender").unwrap_or_default(),
                native_id: field(&m, "native").unwrap_or_default(),
                in_reply_to: field(&m, "reply_to"),
                subject: field(&m, "subject"),
                received_ms: number(&m, "received_ms"),
                event: m.get("event").cloned().unwrap_or_default(),
                primaries,
            }
        })
        .collect())
}

async fn member(store: &RedisStore, message_id: &str) -> Result<Option<Member>, StoreError> {
    let json: Option<String> = store.conn().hget(store.keys.key("tm"), message_id).await.map_err(unavailable)?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

/// Applies `steps` in order, each with its own check of the cursor; stops at the first that
/// another instance applied first.
async fn apply_all(store: &RedisStore, steps: Vec<ThreadStep>) -> Result<Vec<StepOutcome>, StoreError> {
    let mut conn = store.conn();
    let cursor: Option<String> = conn.get(store.keys.key("threads:cursor")).await.map_err(unavailable)?;
    let mut cursor = cursor.unwrap_or_else(|| "0".into());
    let mut outcomes = Vec::with_capacity(steps.len());
    for step in steps {
        let mut changes = Changes::default();
        let outcome = apply(store, &step, &mut changes).await?;
        let next = cursor.parse::<i64>().unwrap_or(0).max(step.seq).to_string();
        let ops = serde_json::to_string(&changes.ops).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let applied: i64 = scripts::APPLY_THREADS
            .key(store.keys.key("seq"))
            .arg(&store.keys.base)
            .arg("")
            .arg("")
            .arg("")
            .arg("")
            .arg(&cursor)
            .arg(&next)
            .arg(ops)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if applied == 0 {
            break;
        }
        cursor = next;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

impl RedisStore {
    fn k(&self, name: &str) -> String {
        self.keys.key(name)
    }
}

/// Writes a thread's opening.
fn open_thread(store: &RedisStore, c: &mut Changes, id: &str, case: Option<&str>, opened_ms: i64) {
    let opened = opened_ms.to_string();
    c.op(&["HSET", &store.k(&format!("th:{id}")), "case", case.unwrap_or_default(), "opened_ms", &opened]);
    c.op(&["ZADD", &store.k("threads"), &opened, id]);
    if let Some(case) = case {
        c.op(&["ZADD", &store.k(&format!("case:{case}")), &opened, id]);
    }
}

/// Writes a message into a thread.
fn join(store: &RedisStore, c: &mut Changes, message_id: &str, m: &Member) {
    let json = serde_json::to_string(m).unwrap_or_default();
    c.op(&["HSET", &store.k("tm"), message_id, &json]);
    c.op(&["ZADD", &store.k(&format!("th:{}:m", m.thread)), &m.seq.to_string(), message_id]);
    c.op(&["SADD", &store.k(&format!("th:{}:a", m.thread)), &m.sender]);
}

/// A message that stood alone becomes the root of a thread when a later one refers to it.
async fn root_at(store: &RedisStore, c: &mut Changes, message_id: &str) -> Result<String, StoreError> {
    let m: Fields = store.conn().hgetall(store.k(&format!("m:{message_id}"))).await.map_err(unavailable)?;
    let sender = field(&m, "sender").unwrap_or_default();
    open_thread(store, c, message_id, field(&m, "subject").as_deref(), number(&m, "received_ms"));
    let kind = if sender == "gateway" { "notice" } else { "message" };
    let member = Member {
        thread: message_id.to_string(),
        seq: number(&m, "seq"),
        kind: kind.into(),
        message_type: field(&m, "type").unwrap_or_default(),
        sender,
        at_ms: number(&m, "received_ms"),
        flag: None,
    };
    join(store, c, message_id, &member);
    Ok(message_id.to_string())
}

async fn obligation(store: &RedisStore, id: &str) -> Result<Option<ObligationRow>, StoreError> {
    let f: Fields = store.conn().hgetall(store.k(&format!("o:{id}"))).await.map_err(unavailable)?;
    Ok((!f.is_empty()).then(|| row(id, &f)))
}

fn row(id: &str, f: &Fields) -> ObligationRow {
    ObligationRow {
        id: id.parse().unwrap_or_default(),
        thread: field(f, "thread").unwrap_or_default(),
        request_id: field(f, "request_id").unwrap_or_default(),
        request_type: field(f, "request_type").unwrap_or_default(),
        requester: field(f, "requester").unwrap_or_default(),
        awaiting: field(f, "awaiting").unwrap_or_default(),
        opened_ms: number(f, "opened_ms"),
        deadline_ms: number(f, "deadline_ms"),
        state: field(f, "state").unwrap_or_default(),
        answered_by: field(f, "answered_by"),
        answered_ms: field(f, "answered_ms").and_then(|v| v.parse().ok()),
        late: field(f, "late").map(|v| v == "1"),
        outcome: field(f, "outcome"),
    }
}

async fn apply(store: &RedisStore, step: &ThreadStep, c: &mut Changes) -> Result<StepOutcome, StoreError> {
    if let Some(m) = member(store, &step.message_id).await? {
        return Ok(StepOutcome { thread: Some(m.thread), ..StepOutcome::default() });
    }
    let target = match &step.link {
        Some(link) => referenced(store, link, step.seq, &step.sender).await?.map(|l| l.id),
        None => None,
    };
    let target_thread = match &target {
        Some(t) => member(store, t).await?.map(|m| m.thread),
        None => None,
    };
    let thread = match decide::place(step, target.as_deref().map(|t| (t, target_thread.as_deref()))) {
        Placement::Join(thread) => thread,
        Placement::RootAt(message) => root_at(store, c, &message).await?,
        Placement::LatestOfCase(case) => {
            let latest: Vec<String> =
                store.conn().zrevrange(store.k(&format!("case:{case}")), 0, 0).await.map_err(unavailable)?;
            match latest.into_iter().next() {
                Some(thread) => thread,
                None => open(store, c, step),
            }
        }
        Placement::Open => open(store, c, step),
        Placement::Alone => return Ok(StepOutcome::default()),
    };
    let mut outcome = StepOutcome { thread: Some(thread.clone()), ..StepOutcome::default() };
    match &step.role {
        StepRole::Request { awaiting, deadline_ms } => {
            let mut conn = store.conn();
            for a in awaiting {
                let unique = format!("{}\n{a}", step.message_id);
                let exists: bool = conn.hexists(store.k("o:req"), &unique).await.map_err(unavailable)?;
                if exists {
                    continue;
                }
                let id: i64 = conn.incr(store.k("o:next"), 1).await.map_err(unavailable)?;
                let (id, opened, deadline) = (id.to_string(), step.at_ms.to_string(), deadline_ms.to_string());
                c.op(&[
                    "HSET",
                    &store.k(&format!("o:{id}")),
                    "thread",
                    &thread,
                    "request_id",
                    &step.message_id,
                    "request_type",
                    &step.message_type,
                    "requester",
                    &step.sender,
                    "awaiting",
                    a,
                    "opened_ms",
                    &opened,
                    "deadline_ms",
                    &deadline,
                    "state",
                    "open",
                ]);
                c.op(&["HSET", &store.k("o:req"), &unique, &id]);
                c.op(&["ZADD", &store.k("o:due"), &deadline, &id]);
                c.op(&["ZADD", &store.k("o:owed"), &deadline, &id]);
                c.op(&["ZADD", &store.k("o:opened"), &opened, &id]);
                let day = day(step.at_ms).to_string();
                c.op(&["HINCRBY", &store.k(&format!("rf:{day}")), &format!("{a}\nreceived"), "1"]);
                c.op(&["ZADD", &store.k("rf:days"), &day, &day]);
                c.op(&["ZADD", &store.k(&format!("th:{thread}:o")), &id, &id]);
                c.op(&["SADD", &store.k(&format!("th:{thread}:a")), a]);
            }
        }
        StepRole::Reply { .. } => {
            let ids: Vec<String> =
                store.conn().zrange(store.k(&format!("th:{thread}:o")), 0, -1).await.map_err(unavailable)?;
            let mut candidates = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(o) = obligation(store, &id).await? {
                    candidates.push(o);
                }
            }
            match decide::answer(step, target.as_deref(), &candidates) {
                Ok(answer) => {
                    let id = answer.obligation.to_string();
                    if let Some(o) = candidates.iter().find(|o| o.id == answer.obligation) {
                        c.op(&[
                            "answer",
                            &id,
                            &day(o.opened_ms).to_string(),
                            &o.awaiting,
                            if answer.late { "late" } else { "on_time" },
                            &reply_seconds(o.opened_ms, step.at_ms).to_string(),
                        ]);
                    }
                    c.op(&[
                        "HSET",
                        &store.k(&format!("o:{id}")),
                        "state",
                        "answered",
                        "answered_by",
                        &step.message_id,
                        "answered_ms",
                        &step.at_ms.to_string(),
                        "late",
                        if answer.late { "1" } else { "0" },
                        "outcome",
                        answer.outcome,
                    ]);
                    c.op(&["ZREM", &store.k("o:due"), &id]);
                    c.op(&["ZREM", &store.k("o:owed"), &id]);
                    if answer.outcome == "cannot_determine" {
                        c.op(&["SADD", &store.k("o:cd"), &id]);
                    }
                    outcome.escalate = answer.escalate;
                }
                Err(flag) => outcome.flag = Some(flag),
            }
        }
        StepRole::Progress | StepRole::Other => {}
    }
    let m = Member {
        thread,
        seq: step.seq,
        kind: decide::kind(step).into(),
        message_type: step.message_type.clone(),
        sender: step.sender.clone(),
        at_ms: step.at_ms,
        flag: outcome.flag.clone(),
    };
    join(store, c, &step.message_id, &m);
    Ok(outcome)
}

/// Opens a thread whose id is the message's.
fn open(store: &RedisStore, c: &mut Changes, step: &ThreadStep) -> String {
    open_thread(store, c, &step.message_id, step.subject.as_deref(), step.at_ms);
    step.message_id.clone()
}

async fn due(store: &RedisStore, now_ms: i64, limit: usize) -> Result<Vec<DueObligation>, StoreError> {
    let mut conn = store.conn();
    let ids: Vec<String> =
        conn.zrangebyscore_limit(store.k("o:due"), "-inf", now_ms, 0, limit as isize).await.map_err(unavailable)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(o) = obligation(store, &id).await? else { continue };
        if o.state != "open" {
            continue;
        }
        let native: Option<String> =
            conn.hget(store.k(&format!("m:{}", o.request_id)), "native").await.map_err(unavailable)?;
        let case: Option<String> =
            conn.hget(store.k(&format!("th:{}", o.thread)), "case").await.map_err(unavailable)?;
        out.push(DueObligation {
            id: o.id,
            thread: o.thread,
            request_id: o.request_id,
            request_native_id: native.unwrap_or_default(),
            request_type: o.request_type,
            requester: o.requester,
            awaiting: o.awaiting,
            deadline_ms: o.deadline_ms,
            case_number: case.filter(|c| !c.is_empty()),
        });
    }
    Ok(out)
}

async fn unescalated(store: &RedisStore, types: &[String]) -> Result<Vec<(i64, String, String)>, StoreError> {
    let mut conn = store.conn();
    let mut ids: Vec<i64> = conn.smembers(store.k("o:cd")).await.map_err(unavailable)?;
    ids.sort_unstable();
    let mut out = Vec::new();
    for id in ids {
        let Some(o) = obligation(store, &id.to_string()).await? else { continue };
        if !types.contains(&o.request_type) {
            continue;
        }
        let escalated: bool =
            conn.hexists(store.k("native"), format!("{}\nescalation-{id}", o.awaiting)).await.map_err(unavailable)?;
        if !escalated {
            out.push((id, o.request_id, o.awaiting));
            if out.len() == 100 {
                break;
            }
        }
    }
    Ok(out)
}

async fn obligations(store: &RedisStore, from_ms: i64, to_ms: i64) -> Result<Vec<ObligationRow>, StoreError> {
    let ids: Vec<String> =
        store.conn().zrangebyscore(store.k("o:opened"), from_ms, format!("({to_ms}")).await.map_err(unavailable)?;
    let mut out = Vec::with_capacity(ids.len());
    let mut conn = store.conn();
    // A thousand obligations a round trip.
    for chunk in ids.chunks(1000) {
        let mut p = redis::pipe();
        for id in chunk {
            p.hgetall(store.k(&format!("o:{id}")));
        }
        let found: Vec<Fields> = p.query_async(&mut conn).await.map_err(unavailable)?;
        out.extend(chunk.iter().zip(found).filter(|(_, f)| !f.is_empty()).map(|(id, f)| row(id, &f)));
    }
    out.sort_by_key(|o| o.id);
    Ok(out)
}

async fn thread_row(store: &RedisStore, id: &str) -> Result<Option<ThreadRow>, StoreError> {
    let mut conn = store.conn();
    let t: Fields = conn.hgetall(store.k(&format!("th:{id}"))).await.map_err(unavailable)?;
    if t.is_empty() {
        return Ok(None);
    }
    let members: Vec<String> = conn.zrange(store.k(&format!("th:{id}:m")), 0, -1).await.map_err(unavailable)?;
    let mut messages = Vec::with_capacity(members.len());
    if !members.is_empty() {
        let rows: Vec<Option<String>> =
            redis::cmd("HMGET").arg(store.k("tm")).arg(&members).query_async(&mut conn).await.map_err(unavailable)?;
        for (message_id, json) in members.into_iter().zip(rows) {
            let Some(m) = json.and_then(|j| serde_json::from_str::<Member>(&j).ok()) else { continue };
            messages.push(ThreadMessageRow {
                message_id,
                seq: m.seq,
                kind: m.kind,
                message_type: m.message_type,
                sender: m.sender,
                at_ms: m.at_ms,
                flag: m.flag,
            });
        }
    }
    let ids: Vec<String> = conn.zrange(store.k(&format!("th:{id}:o")), 0, -1).await.map_err(unavailable)?;
    let mut obligations = Vec::with_capacity(ids.len());
    for o in ids {
        if let Some(o) = obligation(store, &o).await? {
            obligations.push(o);
        }
    }
    Ok(Some(ThreadRow {
        id: id.to_string(),
        case_number: field(&t, "case"),
        opened_ms: number(&t, "opened_ms"),
        messages,
        obligations,
    }))
}

async fn threads(store: &RedisStore, q: &ThreadQuery) -> Result<Vec<ThreadRow>, StoreError> {
    let mut conn = store.conn();
    let max = q.to_ms.map_or("+inf".to_string(), |t| format!("({t}"));
    let min = q.from_ms.map_or("-inf".to_string(), |f| f.to_string());
    let mut out = Vec::new();
    let mut offset = 0isize;
    const PAGE: isize = 200;
    while out.len() < q.limit {
        let ids: Vec<String> = match &q.id {
            Some(id) if offset == 0 => vec![id.clone()],
            Some(_) => Vec::new(),
            None => {
                conn.zrevrangebyscore_limit(store.k("threads"), &max, &min, offset, PAGE).await.map_err(unavailable)?
            }
        };
        if ids.is_empty() {
            break;
        }
        offset += ids.len() as isize;
        for id in ids {
            if let Some(agency) = &q.agency {
                let involved: bool =
                    conn.sismember(store.k(&format!("th:{id}:a")), agency).await.map_err(unavailable)?;
                if !involved {
                    continue;
                }
            }
            let Some(row) = thread_row(store, &id).await? else { continue };
            if q.from_ms.is_some_and(|f| row.opened_ms < f) || q.to_ms.is_some_and(|t| row.opened_ms >= t) {
                continue;
            }
            out.push(row);
            if out.len() == q.limit {
                break;
            }
        }
        if q.id.is_some() {
            break;
        }
    }
    Ok(out)
}

/// The obligations `q` names that are not answered, soonest deadline first: `o:owed` read in
/// deadline order, a page at a time, until `q.limit` are found.
async fn owed(store: &RedisStore, q: &OwedQuery) -> Result<Vec<ObligationRow>, StoreError> {
    const PAGE: isize = 500;
    let mut conn = store.conn();
    let mut out = Vec::new();
    let mut offset = 0;
    while out.len() < q.limit {
        let ids: Vec<String> = conn.zrange(store.k("o:owed"), offset, offset + PAGE - 1).await.map_err(unavailable)?;
        let mut p = redis::pipe();
        for id in &ids {
            p.hgetall(store.k(&format!("o:{id}")));
        }
        let found: Vec<Fields> =
            if ids.is_empty() { Vec::new() } else { p.query_async(&mut conn).await.map_err(unavailable)? };
        out.extend(
            ids.iter()
                .zip(found)
                .filter(|(_, f)| !f.is_empty())
                .map(|(id, f)| row(id, &f))
                .filter(|o| {
                    o.state != "answered"
                        && (q.from_ms..q.to_ms).contains(&o.opened_ms)
                        && q.awaiting.as_ref().is_none_or(|a| a.contains(&o.awaiting))
                })
                .take(q.limit - out.len()),
        );
        if (ids.len() as isize) < PAGE {
            break;
        }
        offset += PAGE;
    }
    Ok(out)
}
