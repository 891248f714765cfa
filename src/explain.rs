//! `xietong explain`: the whole pipeline without storing or delivering, as one JSON object.
//! Exit codes: 0 accepted, 1 refused, 2 usage or configuration error.

use serde_json::{Value, json};

use crate::config::Config;
use crate::model::AgencyId;
use crate::model::Problem;
use crate::normalize::Mapping;
use crate::pipeline::{self, Addressed, BodyKind, Normalized};
use crate::store::Store;

/// The outcome of explaining one message.
pub struct Explanation {
    pub accepted: bool,
    pub output: Value,
}

/// Both stages of the pipeline: normalise, then address. When a `store` is given, it says who
/// sent the message this one answers, so that a reply can go back to whoever asked
/// (`reply_to: sender` in the rules); without one (the `explain` command), that is not known.
pub async fn normalize_and_address(
    config: &Config,
    format: &Mapping,
    sender: &AgencyId,
    body: &[u8],
    store: Option<&dyn Store>,
) -> Result<(Normalized, Addressed), Problem> {
    let doc = pipeline::parse(body, &config.settings.limits.shape())?;
    let normalized = pipeline::normalize_document(&config.schemas, format, sender, doc)?;
    config.permissions.check(sender, normalized.message_type.name)?;
    let replying_to = match (store, &normalized.in_reply_to) {
        (Some(store), Some(link)) => store.sender_of(link, &sender.to_string()).await.ok().flatten(),
        _ => None,
    };
    let addressed = pipeline::address(&config.router, &normalized, sender, replying_to.as_deref())?;
    Ok((normalized, addressed))
}

/// Runs the pipeline for `sender` on `body`. `Err` is a usage problem (no format for the
/// sender), not a refusal of the message.
pub async fn explain(
    config: &Config,
    sender: &AgencyId,
    kind: BodyKind,
    body: &[u8],
    store: Option<&dyn Store>,
) -> Result<Explanation, String> {
    let format = config.mapping_for(sender, kind).ok_or_else(|| {
        format!(
            "{sender} has no source format: configure it in agencies.yaml or set formats.{} in xietong.yaml",
            sender.kind
        )
    })?;
    let outcome = normalize_and_address(config, format, sender, body, store).await;
    let output = match outcome {
        Ok((n, a)) => json!({
            "accepted": true,
            "format": format.name,
            "message": n.event,
            "stripped": n.stripped,
            "rules": a.routing.rules,
            "recipients": a.deliveries,
            "withheld": a.withheld,
            "unrouted": a.routing.unrouted,
            "notes": a.routing.notes,
        }),
        Err(problem) => json!({
            "accepted": false,
            "format": format.name,
            "error": problem,
        }),
    };
    Ok(Explanation { accepted: output["accepted"] == json!(true), output })
}
