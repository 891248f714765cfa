//! The impact of a rule change on real traffic: the stored messages of a period addressed by the
//! rules in force and by a draft, side by side, and every message whose recipients differ. Both
//! are computed now, from the stored (already stripped) event and what the store knows of the
//! thread, so the difference is the draft's alone, not that of earlier configurations. Paged, so
//! a caller can show progress and a week of traffic never sits in memory at once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::accept::reply_context;
use super::recipients::address;
use crate::model::Sender;
use crate::route::Router;
use crate::store::{Addressee, MessageQuery, MessageSummary, Store, StoreError};

/// Which stored messages to go through.
#[derive(Clone, Copy, Debug)]
pub struct Period {
    /// Received at or after (unix ms).
    pub from_ms: i64,
    /// Received before (unix ms).
    pub to_ms: i64,
}

/// A message whose recipients the draft changes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Changed {
    pub message: MessageSummary,
    /// Its recipients (and roles) under the rules in force.
    pub before: Vec<Addressee>,
    /// Under the draft; empty when the draft refuses it (`refused`).
    pub after: Vec<Addressee>,
    /// The code the draft refuses it with, if it does.
    pub refused: Option<String>,
}

/// Per recipient: how many messages it would gain and lose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delta {
    pub gained: u64,
    pub lost: u64,
}

/// One page of the preview, newest messages first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImpactPage {
    /// Messages gone through on this page.
    pub scanned: usize,
    pub changed: Vec<Changed>,
    /// Per recipient, over this page's changed messages.
    pub totals: BTreeMap<String, Delta>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<i64>,
}

/// Goes through at most `limit` messages of `period` committed before `before`.
pub async fn page(
    store: &dyn Store,
    current: &Router,
    draft: &Router,
    period: Period,
    before: Option<i64>,
    limit: usize,
) -> Result<ImpactPage, StoreError> {
    let query = MessageQuery {
        from_ms: Some(period.from_ms),
        to_ms: Some(period.to_ms),
        before,
        limit: Some(limit),
        ..MessageQuery::default()
    };
    let found = store.search(query).await?;
    let next = (found.len() == limit).then(|| found.last().map(|m| m.cursor)).flatten();
    let mut out = ImpactPage { scanned: found.len(), changed: Vec::new(), totals: BTreeMap::new(), next };
    for summary in found {
        // The gateway's own notices are addressed by the gateway, not by the rules.
        let Ok(sender) = summary.sender.parse::<Sender>() else { continue };
        let Some((event, _)) = store.message(&summary.id).await? else { continue };
        let Ok(event) = serde_json::from_str::<Value>(&event) else { continue };
        let reply = match event.get("inreplyto").and_then(Value::as_str) {
            Some(link) => reply_context(store, link, &summary.sender).await,
            None => None,
        };
        let was = addressees(current, &event, &sender, reply.as_ref());
        let would = addressees(draft, &event, &sender, reply.as_ref());
        if was == would {
            continue;
        }
        let (before, after) = (was.unwrap_or_default(), would.as_ref().cloned().unwrap_or_default());
        for a in &after {
            if !before.iter().any(|b| b.id == a.id) {
                out.totals.entry(a.id.clone()).or_default().gained += 1;
            }
        }
        for b in &before {
            if !after.iter().any(|a| a.id == b.id) {
                out.totals.entry(b.id.clone()).or_default().lost += 1;
            }
        }
        out.changed.push(Changed { message: summary, before, after, refused: would.err() });
    }
    Ok(out)
}

/// Who would receive `event` (sorted), or the code it would be refused with.
fn addressees(
    router: &Router,
    event: &Value,
    sender: &Sender,
    reply: Option<&crate::route::Reply>,
) -> Result<Vec<Addressee>, String> {
    let addressed = address(router, event, sender, reply).map_err(|p| p.code.as_str().to_string())?;
    let mut out: Vec<Addressee> = addressed
        .deliveries
        .iter()
        .map(|d| Addressee { id: d.routed.id.to_string(), role: d.routed.role.as_str().to_string() })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
