//! `xietong explain` and `POST /v1/admin/explain`: the whole pipeline without storing or
//! delivering, as one JSON object.

use serde_json::{Value, json};

use super::accept;
use crate::config::Config;
use crate::model::{BodyKind, Sender};

/// The outcome of explaining one message.
pub struct Explanation {
    pub accepted: bool,
    pub output: Value,
}

/// Runs the pipeline for `sender` on `body`. When `records` (the store) are given, a reply is
/// addressed to whoever sent what it answers, and an evaluation notice gets its figures. `Err` is a usage problem (no format for the
/// sender), not a refusal of the message.
pub async fn explain(
    config: &Config,
    sender: &Sender,
    kind: BodyKind,
    body: &[u8],
    records: Option<accept::Records<'_>>,
) -> Result<Explanation, String> {
    let format = config.mapping_for(sender, kind).ok_or_else(|| match sender {
        Sender::Agency(a) => format!(
            "{sender} has no source format: configure it in agencies.yaml or set formats.{} in xietong.yaml",
            a.kind
        ),
        Sender::Hub(_) => format!(
            "{sender} is a hub: hubs post canonical events (application/cloudevents+json; explain --kind cloudevent)"
        ),
    })?;
    let output = match accept::run(config, format, sender, body, records).await {
        Ok(unit) => {
            let (n, a) = (unit.normalized, unit.addressed);
            json!({
                "accepted": true,
                "format": format.name,
                "message": n.event,
                "stripped": n.stripped,
                "rules": a.routing.rules,
                "recipients": a.deliveries,
                "withheld": a.withheld,
                "unrouted": a.routing.unrouted,
                "notes": a.routing.notes,
            })
        }
        Err(problem) => json!({
            "accepted": false,
            "format": format.name,
            "error": problem,
        }),
    };
    Ok(Explanation { accepted: output["accepted"] == json!(true), output })
}
