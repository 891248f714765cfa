//! The pipeline from end to end: a body from an authenticated sender in, the unit the store
//! commits out (or the refusal).

use super::evaluation;
use super::intake::{self, Normalized};
use super::recipients::{self, Addressed, Delivery};
use crate::config::Config;
use crate::model::{Problem, Sender, types};
use crate::normalize::Mapping;
use crate::route::Reply;
use crate::store::{Messages, NewMessage, Store};

/// How many escalations a reply's requester is looked for through.
const ESCALATIONS_FOLLOWED: usize = 8;

/// A message the pipeline accepted: its canonical event, and who receives what.
#[derive(Debug)]
pub struct Unit {
    pub normalized: Normalized,
    pub addressed: Addressed,
}

/// What the pipeline reads of the gateway's records: the store, and the time now (unix ms).
#[derive(Clone, Copy)]
pub struct Records<'a> {
    pub store: &'a dyn Store,
    pub now_ms: i64,
}

/// Every stage on `body`, sent by `sender` in `format`: parse and shape limits, normalisation and
/// the no-state-secrets rule, the sender's permission for the type, routing and each
/// recipient's copy. `records` (the store) say whom a reply answers, so that it goes back to
/// whoever asked (`reply_to: sender` and `requester` in the rules), and give an evaluation
/// notice its figures; without them (`xietong explain`), neither is known.
pub async fn run(
    config: &Config,
    format: &Mapping,
    sender: &Sender,
    body: &[u8],
    records: Option<Records<'_>>,
) -> Result<Unit, Problem> {
    let mut normalized = admit(config, format, sender, body)?;
    if normalized.message_type.name == types::EVALUATION {
        // The content hash is already taken: a retry of the notice is the same message, whatever
        // the figures are by then.
        match records {
            Some(r) => evaluation::attach_figures(&mut normalized.event, r.store, &config.router, r.now_ms).await?,
            None => {
                evaluation::period(&normalized.event)?;
            }
        }
    }
    let reply = match (records, &normalized.in_reply_to) {
        (Some(r), Some(link)) => reply_context(r.store, link, &sender.to_string()).await,
        _ => None,
    };
    let addressed = recipients::address(&config.router, &normalized.event, sender, reply.as_ref())?;
    Ok(Unit { normalized, addressed })
}

/// [`run`] without the gateway's records, synchronously: whom a reply answers is `reply` as
/// given, and an evaluation notice gets no figures. For the routing tests of `rules.test.yaml`.
pub fn run_offline(
    config: &Config,
    format: &Mapping,
    sender: &Sender,
    body: &[u8],
    reply: Option<&Reply>,
) -> Result<Unit, Problem> {
    let normalized = admit(config, format, sender, body)?;
    if normalized.message_type.name == types::EVALUATION {
        evaluation::period(&normalized.event)?;
    }
    let addressed = recipients::address(&config.router, &normalized.event, sender, reply)?;
    Ok(Unit { normalized, addressed })
}

/// Parsing, normalisation with the no-state-secrets rule, and the sender's permission.
fn admit(config: &Config, format: &Mapping, sender: &Sender, body: &[u8]) -> Result<Normalized, Problem> {
    let doc = intake::parse(body, &config.settings.limits.shape())?;
    let normalized = intake::normalize_document(&config.schemas, format, sender, doc)?;
    config.permissions.check(sender, normalized.message_type.name)?;
    Ok(normalized)
}

/// Whom a message from `reader` that links `link` answers: the sender of the linked message, and
/// the agency that first asked, found by following escalations (which pass a request on in the
/// name of the office that could not determine) back to the request. `None` when the store does
/// not know the link (or cannot be read: the reply is then routed as an unlinked one).
pub async fn reply_context(store: &dyn Messages, link: &str, reader: &str) -> Option<Reply> {
    let first = store.linked(link, reader).await.ok().flatten()?;
    let mut at = first.clone();
    for _ in 0..ESCALATIONS_FOLLOWED {
        let Some(up) = at.in_reply_to.as_deref().filter(|_| at.message_type == types::ESCALATION) else { break };
        match store.linked(up, &at.sender).await.ok().flatten() {
            Some(next) => at = next,
            None => break,
        }
    }
    Some(Reply { sender: first.sender, requester: at.sender })
}

impl Unit {
    /// What the store commits: the message from `sender` (an agency id, or `gateway`), its
    /// outbox, the hash of the body it came in, and when it was received (unix ms).
    pub fn message(&self, sender: &str, body_sha256: String, received_ms: i64) -> NewMessage {
        let message = stored(&self.normalized, &self.addressed.deliveries, sender, body_sha256, received_ms);
        NewMessage { rule_errors: self.addressed.routing.failures.clone(), ..message }
    }
}

/// The message the store commits for `n` with the copies `deliveries`.
pub fn stored(
    n: &Normalized,
    deliveries: &[Delivery],
    sender: &str,
    body_sha256: String,
    received_ms: i64,
) -> NewMessage {
    NewMessage {
        id: n.id.clone(),
        sender: sender.to_string(),
        native_id: n.native_id.clone(),
        message_type: n.message_type.name,
        subject: n.subject.clone(),
        content_sha256: n.content_sha256.clone(),
        body_sha256,
        stripped: n.stripped.clone(),
        event: intake::event_text(&n.event),
        deliveries: recipients::outbox(deliveries, &n.event),
        received_ms,
        in_reply_to: n.in_reply_to.clone(),
        rule_errors: Vec::new(),
    }
}
