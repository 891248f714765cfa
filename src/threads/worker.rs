//! The thread worker: applies every committed message to the threads, in commit order; sends on
//! the requests answered 无法认定 (逐级请示); sends the overdue notices of deadlines that passed.
//!
//! Each step happens once, whatever crashes: the worker's cursor moves in the same transaction
//! as the thread changes it reflects, and the messages it sends carry deterministic ids
//! (`escalation-{obligation}`, `overdue-{obligation}`) that the store's idempotency turns into
//! no-ops when a step is repeated after a crash, or by another instance.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::{Clock, format_ms};
use crate::config::{Config, Current};
use crate::model::{AgencyId, Sender, types};
use crate::pipeline::notice::Notice;
use crate::pipeline::{self, Delivery, Normalized};
use crate::route::{Recipient, Role, Routed};
use crate::store::{DueObligation, LogEntry, Store, StoreError, ThreadStep};
use crate::threads::Policy;

/// The thread worker, on a store, a clock and the configuration in force.
pub struct ThreadWorker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: Current,
}

impl ThreadWorker {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: Current) -> ThreadWorker {
        ThreadWorker { store, clock, config }
    }

    /// Runs a round every `delivery.tick`, not at every commit: deadlines are days, and under
    /// load a tick's worth of messages is applied in a few transactions instead of one per
    /// commit. Ends when the store is closed.
    pub async fn run(self) {
        loop {
            match self.round().await {
                Ok(()) => {}
                Err(StoreError::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "thread worker: the store is unavailable; retrying"),
            }
            tokio::time::sleep((self.config)().settings.delivery.tick).await;
        }
    }

    /// One pass: the log, the escalations, the deadlines.
    pub async fn round(&self) -> Result<(), StoreError> {
        let config = (self.config)();
        let policy = &config.threads;
        loop {
            let backlog = self.store.thread_backlog(200).await?;
            if backlog.is_empty() {
                break;
            }
            let steps = backlog.into_iter().map(|entry| step(policy, entry)).collect();
            for outcome in self.store.apply_thread_steps(steps).await? {
                if let Some(flag) = outcome.flag {
                    tracing::info!(thread = outcome.thread.as_deref().unwrap_or_default(), flag = %flag, "reply flagged");
                }
            }
        }
        for (obligation, request_id, replier) in self.store.unescalated(policy.escalating()).await? {
            self.escalate(&config, obligation, &request_id, &replier).await?;
        }
        // Every passed deadline is marked, so this ends.
        loop {
            let due = self.store.due_obligations(self.clock.now_ms(), 100).await?;
            if due.is_empty() {
                return Ok(());
            }
            for d in due {
                self.overdue(&config, &d).await?;
                self.store.mark_overdue(d.id).await?;
            }
        }
    }
}

/// What a committed message is to the threads, by the policy.
pub fn step(policy: &Policy, entry: LogEntry) -> ThreadStep {
    ThreadStep {
        role: policy.role(&entry),
        seq: entry.seq,
        message_id: entry.id,
        message_type: entry.message_type,
        sender: entry.sender,
        subject: entry.subject,
        at_ms: entry.received_ms,
        link: entry.in_reply_to,
    }
}

impl ThreadWorker {
    /// Commits a message the gateway makes, with its copies.
    async fn commit(&self, n: &Normalized, sender: &str, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let message = pipeline::stored(n, deliveries, sender, n.content_sha256.clone(), self.clock.now_ms());
        // A repeat (after a crash, or from another instance) is a duplicate: nothing new.
        self.store.accept(message).await.map(|_| ())
    }

    /// 逐级请示: the request answered 无法认定 goes on, in the replier's name, to whom the routing
    /// rules send its escalation (by default its superior of the same kind), with a new deadline.
    async fn escalate(
        &self,
        config: &Config,
        obligation: i64,
        request_id: &str,
        replier: &str,
    ) -> Result<(), StoreError> {
        let (Some((event, request_native_id)), Ok(replier_id)) =
            (self.store.message(request_id).await?, replier.parse::<AgencyId>())
        else {
            return Ok(());
        };
        let (Ok(mut event), Some(message_type)) =
            (serde_json::from_str::<Value>(&event), config.schemas.lookup(types::ESCALATION))
        else {
            return Ok(());
        };
        // Whoever sent the request, and whoever first asked (the same, unless it was itself an
        // escalation): the rules copy the escalation to the one who asked.
        let reply = pipeline::reply_context(self.store.as_ref(), request_id, replier).await;
        let id = uuid::Uuid::now_v7().to_string();
        let native_id = format!("escalation-{obligation}");
        if let Some(e) = event.as_object_mut() {
            e.insert("id".into(), json!(id));
            e.insert("source".into(), json!(replier_id.source_uri()));
            e.insert("type".into(), json!(message_type.name));
            e.insert("dataschema".into(), json!(config.schemas.dataschema(message_type)));
            e.insert("time".into(), json!(format_ms(self.clock.now_ms())));
            e.insert("sender".into(), json!(replier));
            e.insert("nativeid".into(), json!(native_id));
            e.insert("inreplyto".into(), json!(request_native_id));
        }
        if let Some(sender) = event.pointer_mut("/data/sender") {
            *sender = json!({"id": replier});
        }
        // A new deadline: the day the escalation type's `within` ends (the superior reads it).
        if let (Some(request), Some(r)) = (
            event.pointer_mut("/data/request").and_then(Value::as_object_mut),
            config.threads.request(message_type.name),
        ) {
            let due = self.clock.now_ms() + r.within.as_millis() as i64;
            request.insert("replyBy".into(), json!(format_ms(due).get(..10)));
        }
        let subject = event.get("subject").and_then(Value::as_str).map(str::to_string);
        let normalized = Normalized {
            content_sha256: pipeline::content_hash(&event),
            event,
            id,
            message_type,
            native_id,
            subject,
            in_reply_to: Some(request_native_id),
            stripped: Vec::new(),
            provenance: Vec::new(),
        };
        match pipeline::address(&config.router, &normalized.event, &Sender::Agency(replier_id), reply.as_ref()) {
            Ok(a) => {
                tracing::info!(obligation, from = %replier, recipients = a.deliveries.len(), "无法认定: the request goes up a level");
                self.commit(&normalized, replier, &a.deliveries).await
            }
            Err(p) => {
                tracing::error!(obligation, error = %p, "cannot route the escalation of a request");
                Ok(())
            }
        }
    }

    /// A deadline passed with no reply: the requester is told, and (as configured) the late
    /// party's superior gets a copy.
    async fn overdue(&self, config: &Config, due: &DueObligation) -> Result<(), StoreError> {
        let Some(message_type) = config.schemas.lookup(types::OVERDUE) else { return Ok(()) };
        let deadline = format_ms(due.deadline_ms);
        let mut recipients = Vec::new();
        if let Ok(requester) = due.requester.parse::<Recipient>() {
            recipients.push(Routed {
                id: requester,
                role: Role::Primary,
                rules: Vec::new(),
                reasons: vec![format!("primary: it asked {} and was owed a reply by {deadline}", due.awaiting)],
                fallback: None,
            });
        }
        if config.threads.notify_superior
            && let Ok(late) = due.awaiting.parse::<AgencyId>()
            && let Some(up) = config.router.divisions.superior(&late.division)
        {
            let superior = AgencyId::new(late.kind, up);
            recipients.push(Routed {
                id: Recipient::Agency(superior),
                role: Role::Copy,
                rules: Vec::new(),
                reasons: vec![format!("copy: the superior of {}, which is late", due.awaiting)],
                fallback: None,
            });
        }
        let mut data = json!({
            "thread": {"id": due.thread, "request": due.request_id, "requestType": due.request_type,
                       "requester": due.requester, "awaiting": due.awaiting, "deadline": deadline},
            "content": format!("{} 未在期限（{deadline}）内答复 {} 的请求（{}）。", due.awaiting, due.requester, due.request_id),
        });
        if let (Some(case), Some(obj)) = (&due.case_number, data.as_object_mut()) {
            obj.insert("case".into(), json!({"number": case}));
        }
        let notice = Notice {
            message_type,
            native_id: format!("overdue-{}", due.id),
            in_reply_to: Some(due.request_native_id.clone()),
            subject: due.case_number.clone(),
            data,
            recipients: &recipients,
        };
        let (normalized, deliveries) = match pipeline::notice::make(config, notice, self.clock.now_ms()) {
            Ok(made) => made,
            Err(details) => {
                tracing::error!(?details, "an overdue notice does not fit its schema: a bug");
                return Ok(());
            }
        };
        tracing::info!(obligation = due.id, late = %due.awaiting, requester = %due.requester, "deadline passed: overdue notice");
        self.commit(&normalized, "gateway", &deliveries).await
    }
}
