//! `xietong explain` and `POST /v1/admin/explain`: the whole pipeline without storing or
//! delivering, as one JSON object.

use serde::Serialize;
use serde_json::Value;

use super::accept::{self, Unit};
use super::recipients::{Delivery, Withheld};
use crate::config::Config;
use crate::model::{BodyKind, Problem, Sender};

/// What the pipeline does with a message, without storing or delivering it: `xietong explain`,
/// `POST /v1/admin/explain` and the senders' dry runs (`POST /v1/messages?dry_run=true`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    /// Whether the gateway would accept the message.
    pub accepted: bool,
    /// The source format that read it.
    pub format: String,
    /// The canonical message (when accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::model::schema::canonical_event)]
    pub message: Option<Value>,
    /// JSON pointers removed as state secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripped: Option<Vec<String>>,
    /// Which native field became which canonical field (those it kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldOrigin>>,
    /// The rules whose condition held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<String>>,
    /// Who would receive it, why, and what each would have removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<Delivery>>,
    /// Recipients the rules named that may not receive it (cleared below it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<Vec<Withheld>>,
    /// No rule routed it: the operators' feed would keep it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrouted: Option<bool>,
    /// What the router noticed on the way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
    /// Rules whose condition failed on the message (`rule: why`): they did not apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_errors: Option<Vec<String>>,
    /// The refusal the message would get.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// A canonical field and the native field it came from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldOrigin {
    /// A JSON pointer into the event (`/data/case/number`, `/time`).
    pub canonical: String,
    /// A JSON pointer into the native message.
    pub native: String,
}

/// Runs the pipeline for `sender` on `body`. When `records` (the store) are given, a reply is
/// addressed to whoever sent what it answers, and an evaluation notice gets its figures.
/// `Err` is a usage problem (no format for the sender), not a refusal of the message.
pub async fn explain(
    config: &Config,
    sender: &Sender,
    kind: BodyKind,
    body: &[u8],
    records: Option<accept::Records<'_>>,
) -> Result<Outcome, String> {
    let format = config.mapping_for(sender, kind).ok_or_else(|| match sender {
        Sender::Agency(a) => format!(
            "{sender} has no source format: configure it in agencies.yaml or set formats.{} in xietong.yaml",
            a.kind
        ),
        Sender::Hub(_) => format!(
            "{sender} is a hub: hubs post canonical events (application/cloudevents+json; explain --kind cloudevent)"
        ),
    })?;
    Ok(outcome(format.name.clone(), accept::run(config, format, sender, body, records).await))
}

/// The outcome of the pipeline's run in `format`.
pub fn outcome(format: String, run: Result<Unit, Problem>) -> Outcome {
    match run {
        Ok(unit) => {
            let (n, a) = (unit.normalized, unit.addressed);
            let fields = n
                .provenance
                .iter()
                .filter_map(|p| {
                    let native = p.source.as_ref()?.to_string();
                    let canonical = p.target.to_string();
                    let removed = n.stripped.iter().any(|s| canonical == *s || canonical.starts_with(&format!("{s}/")));
                    (!removed).then_some(FieldOrigin { canonical, native })
                })
                .collect();
            Outcome {
                accepted: true,
                format,
                message: Some(n.event),
                stripped: Some(n.stripped),
                fields: Some(fields),
                rules: Some(a.routing.rules),
                recipients: Some(a.deliveries),
                withheld: Some(a.withheld),
                unrouted: Some(a.routing.unrouted),
                notes: Some(a.routing.notes),
                rule_errors: (!a.routing.failures.is_empty()).then_some(a.routing.failures),
                error: None,
            }
        }
        Err(problem) => Outcome {
            accepted: false,
            format,
            message: None,
            stripped: None,
            fields: None,
            rules: None,
            recipients: None,
            withheld: None,
            unrouted: None,
            notes: None,
            rule_errors: None,
            error: Some(problem),
        },
    }
}
