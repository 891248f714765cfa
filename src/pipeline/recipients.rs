//! Stage 9 of the pipeline: who receives an accepted message, and each recipient's copy (fields
//! above its clearance removed, the public copy anonymised). Pure: no I/O.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::intake::event_text;
use crate::model::{Problem, Sender};
use crate::route::{Recipient, Reply, Role, Routed, Router, Routing};
use crate::secrecy::Level;
use crate::secrecy::view::{self, Redaction, View};
use crate::store::NewDelivery;

/// One recipient's copy of an accepted message, ready for the outbox.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    #[serde(flatten)]
    pub routed: Routed,
    /// The recipient's clearance: 公开, 内部 or 工作秘密.
    #[schema(value_type = String)]
    pub clearance: Level,
    /// What was removed for this recipient (above its clearance, personal data).
    pub removed: Vec<Redaction>,
    /// The recipient's own copy of the event; `None` when it receives the event as it is.
    /// Recipients with the same clearance share one copy.
    #[serde(skip)]
    #[schema(ignore)]
    pub copy: Option<Arc<Value>>,
}

impl Delivery {
    fn of(routed: Routed, clearance: Level, view: &Shared) -> Option<Delivery> {
        let (copy, removed) = match view {
            Shared::AsIs => (None, Vec::new()),
            Shared::Copy(event, removed) => (Some(event.clone()), removed.clone()),
            Shared::Withhold(_) => return None,
        };
        Some(Delivery { routed, clearance, removed, copy })
    }

    /// The event as this recipient receives it, `event` being the message's.
    pub fn event<'a>(&'a self, event: &'a Value) -> &'a Value {
        self.copy.as_deref().unwrap_or(event)
    }
}

/// A recipient's view, made once for every recipient with the same clearance.
enum Shared {
    AsIs,
    Copy(Arc<Value>, Vec<Redaction>),
    Withhold(String),
}

impl From<View> for Shared {
    fn from(view: View) -> Shared {
        match view {
            View::AsIs => Shared::AsIs,
            View::Deliver { event, removed } => Shared::Copy(Arc::new(event), removed),
            View::Withhold(reason) => Shared::Withhold(reason),
        }
    }
}

/// The outbox rows of the copies of `event`: a copy that is the event as it is refers to it
/// instead of repeating it, and a copy shared by several recipients is serialised once.
pub fn outbox(deliveries: &[Delivery], event: &Value) -> Vec<NewDelivery> {
    // Each shared copy met so far, with its row's text.
    let mut written: Vec<(&Arc<Value>, Option<String>)> = Vec::new();
    deliveries
        .iter()
        .map(|d| {
            let text =
                d.copy.as_ref().and_then(|copy| match written.iter().find(|(seen, _)| Arc::ptr_eq(seen, copy)) {
                    Some((_, text)) => text.clone(),
                    None => {
                        let text = (**copy != *event).then(|| event_text(copy));
                        written.push((copy, text.clone()));
                        text
                    }
                });
            NewDelivery {
                recipient: d.routed.id.to_string(),
                role: d.routed.role.as_str(),
                rules: d.routed.rules.clone(),
                event: text,
            }
        })
        .collect()
}

/// A recipient that rules named but that may not receive the message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Withheld {
    #[schema(value_type = String)]
    pub id: Recipient,
    pub rules: Vec<String>,
    pub reason: String,
}

/// Who receives an accepted message, and what each receives.
#[derive(Debug)]
pub struct Addressed {
    pub routing: Routing,
    pub deliveries: Vec<Delivery>,
    pub withheld: Vec<Withheld>,
}

/// Each recipient's copy of `event`: fields above its clearance removed, the public copy
/// anonymised; those cleared below the message as a whole are withheld.
pub fn copies(router: &Router, event: &Value, recipients: &[Routed]) -> (Vec<Delivery>, Vec<Withheld>) {
    let mut deliveries = Vec::new();
    let mut withheld = Vec::new();
    // The view depends on the clearance and on whether the copy is the public one, only.
    let mut made: Vec<((Level, bool), Shared)> = Vec::new();
    for routed in recipients {
        let clearance = router.clearance(&routed.id);
        let key = (clearance, routed.id.is_public());
        let at = match made.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                let masking = key.1.then_some(&router.clearances.masking);
                made.push((key, view::for_recipient(event, clearance, masking).into()));
                made.len() - 1
            }
        };
        match &made[at].1 {
            Shared::Withhold(reason) => {
                withheld.push(Withheld { id: routed.id.clone(), rules: routed.rules.clone(), reason: reason.clone() })
            }
            view => deliveries.extend(Delivery::of(routed.clone(), clearance, view)),
        }
    }
    (deliveries, withheld)
}

/// Routes an accepted message and makes each recipient's copy. `reply` says whom it answers,
/// when known (the store knows; `explain` without one does not). A recipient cleared below the
/// message as a whole is withheld; when that leaves nobody, the operators' feed keeps it.
pub fn address(router: &Router, event: &Value, sender: &Sender, reply: Option<&Reply>) -> Result<Addressed, Problem> {
    let routing = router.route(event, sender, reply)?;
    let (mut deliveries, withheld) = copies(router, event, &routing.recipients);
    if deliveries.is_empty() {
        let id = Recipient::Feed(router.operators_feed.clone());
        let clearance = router.clearance(&id);
        let routed = Routed {
            id,
            role: Role::Primary,
            rules: Vec::new(),
            reasons: vec!["every recipient was withheld: the operators' feed keeps the message".into()],
            fallback: None,
        };
        deliveries.extend(Delivery::of(routed, clearance, &view::for_recipient(event, clearance, None).into()));
    }
    Ok(Addressed { routing, deliveries, withheld })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn delivery(id: &str, copy: Option<&Arc<Value>>) -> Delivery {
        let routed = Routed {
            id: id.parse().unwrap(),
            role: Role::Primary,
            rules: Vec::new(),
            reasons: Vec::new(),
            fallback: None,
        };
        Delivery { routed, clearance: Level::Internal, removed: Vec::new(), copy: copy.cloned() }
    }

    #[test]
    fn the_outbox_writes_each_recipients_own_copy_once() {
        let event = json!({"id": "e", "data": {"content": "c", "x": 1}});
        let hub = Arc::new(json!({"id": "e", "data": {"x": 1}}));
        let public = Arc::new(json!({"id": "e", "data": {}}));
        let same = Arc::new(event.clone());
        let deliveries = [
            delivery("ip_office:330100", None),
            delivery("hub:yangtze_delta", Some(&hub)),
            delivery("public", Some(&public)),
            delivery("hub:pearl_river_delta", Some(&hub)),
            delivery("procuratorate:330100", Some(&same)),
        ];
        let rows: Vec<Option<Value>> = outbox(&deliveries, &event)
            .into_iter()
            .map(|r| r.event.map(|t| serde_json::from_str(&t).unwrap()))
            .collect();
        assert_eq!(rows, [None, Some((*hub).clone()), Some((*public).clone()), Some((*hub).clone()), None]);
    }
}
