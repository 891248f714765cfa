//! Stage 9 of the pipeline: who receives an accepted message, and each recipient's copy (fields
//! above its clearance removed, the public copy anonymised). Pure: no I/O.

use serde::Serialize;
use serde_json::Value;

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
    #[serde(skip)]
    #[schema(ignore)]
    pub copy: Option<Value>,
}

impl Delivery {
    fn of(routed: Routed, clearance: Level, view: View) -> Option<Delivery> {
        let (copy, removed) = match view {
            View::AsIs => (None, Vec::new()),
            View::Deliver { event, removed } => (Some(event), removed),
            View::Withhold(_) => return None,
        };
        Some(Delivery { routed, clearance, removed, copy })
    }

    /// The event as this recipient receives it, `event` being the message's.
    pub fn event<'a>(&'a self, event: &'a Value) -> &'a Value {
        self.copy.as_ref().unwrap_or(event)
    }
}

/// The outbox rows of the copies of `event`: a copy that is the event as it is refers to it
/// instead of repeating it.
pub fn outbox(deliveries: &[Delivery], event: &Value) -> Vec<NewDelivery> {
    deliveries
        .iter()
        .map(|d| NewDelivery {
            recipient: d.routed.id.to_string(),
            role: d.routed.role.as_str(),
            rules: d.routed.rules.clone(),
            event: d.copy.as_ref().filter(|copy| *copy != event).map(Value::to_string),
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
    for routed in recipients {
        let clearance = router.clearance(&routed.id);
        match view::for_recipient(event, clearance, routed.id.is_public().then_some(&router.clearances.masking)) {
            View::Withhold(reason) => {
                withheld.push(Withheld { id: routed.id.clone(), rules: routed.rules.clone(), reason })
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
        deliveries.extend(Delivery::of(routed, clearance, view::for_recipient(event, clearance, None)));
    }
    Ok(Addressed { routing, deliveries, withheld })
}
