//! `GET /v1/admin/overview`: the state of the exchange at a glance, for the console's first page
//! and for scripts. Counts come from the counters kept as messages commit (never a scan of the
//! messages); backlogs from the webhook queues; replies owed from the thread store.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth;
use super::error::ApiError;
use crate::clock::format_ms;
use crate::gateway::Gateway;
use crate::store::counts::hour_of;
use crate::store::{Backlog, DueObligation};

/// How far ahead a reply counts as due soon.
const DUE_SOON_MS: i64 = 3 * 24 * 3600 * 1000;

/// One hour of traffic.
#[derive(Serialize, ToSchema)]
pub struct Hour {
    /// The hour's start (RFC 3339, Beijing time).
    pub at: String,
    pub accepted: i64,
    pub refused: i64,
    pub resent: i64,
    /// Accepted, by message type.
    pub by_type: BTreeMap<String, i64>,
}

/// A count by some key (a refusal code, an agency).
#[derive(Serialize, ToSchema)]
pub struct Tally {
    pub key: String,
    pub n: i64,
}

/// A webhook subscription's backlog, with its owner.
#[derive(Serialize, ToSchema)]
pub struct Queue {
    #[serde(flatten)]
    pub backlog: Backlog,
    pub owner: String,
}

/// A reply owed.
#[derive(Serialize, ToSchema)]
pub struct Owed {
    pub request: String,
    #[serde(rename = "type")]
    pub request_type: String,
    pub requester: String,
    pub awaiting: String,
    pub deadline: String,
    pub overdue: bool,
    pub case: Option<String>,
}

/// The exchange at a glance.
#[derive(Serialize, ToSchema)]
pub struct Overview {
    pub generated_at: String,
    /// The last 24 hours, oldest first.
    pub hours: Vec<Hour>,
    /// The message types accepted in them.
    pub types: Vec<String>,
    /// Refusals in the last 24 hours, most frequent first.
    pub refusals_by_code: Vec<Tally>,
    pub refusals_by_agency: Vec<Tally>,
    pub queues: Vec<Queue>,
    pub dead_letters: i64,
    /// Replies due within three days, or overdue and not yet notified, soonest first.
    pub owed: Vec<Owed>,
    /// The store: `embedded` or `redis`, and whether it can commit now.
    pub store: String,
    pub store_ready: bool,
    /// The instances serving this store (alive in the last 30 seconds).
    pub instances: Vec<String>,
    /// When the configuration in force came into force, and who brought it.
    pub configuration_loaded_at: String,
    pub configuration_loaded_by: String,
    pub rules: usize,
    /// The version of `rules.yaml` in force (the first 12 hex digits of its SHA-256), as the
    /// routing page and the rule changes name it.
    pub rules_version: String,
    pub agencies: usize,
}

/// The overview as the operators see it now.
pub async fn overview(gw: &Gateway) -> Result<Overview, ApiError> {
    let now = gw.clock.now_ms();
    let first = hour_of(now) - 23;
    let counts = gw.store.counts(first).await?;
    let mut hours: Vec<Hour> = (first..=first + 23)
        .map(|h| Hour { at: format_ms(h * 3_600_000), accepted: 0, refused: 0, resent: 0, by_type: BTreeMap::new() })
        .collect();
    let mut codes: BTreeMap<String, i64> = BTreeMap::new();
    let mut agencies: BTreeMap<String, i64> = BTreeMap::new();
    let mut types = std::collections::BTreeSet::new();
    for c in counts {
        let Some(h) = usize::try_from(c.hour - first).ok().and_then(|i| hours.get_mut(i)) else { continue };
        match c.outcome.as_str() {
            "accepted" => {
                h.accepted += c.n;
                *h.by_type.entry(c.message_type.clone()).or_default() += c.n;
                types.insert(c.message_type);
            }
            "resent" => h.resent += c.n,
            _ => {
                h.refused += c.n;
                *codes.entry(c.code).or_default() += c.n;
                *agencies.entry(if c.sender.is_empty() { "-".into() } else { c.sender }).or_default() += c.n;
            }
        }
    }
    let tallies = |m: BTreeMap<String, i64>| {
        let mut v: Vec<Tally> = m.into_iter().map(|(key, n)| Tally { key, n }).collect();
        v.sort_by(|a, b| b.n.cmp(&a.n).then(a.key.cmp(&b.key)));
        v.truncate(10);
        v
    };
    let owners: BTreeMap<String, String> =
        gw.store.subscriptions().await?.into_iter().map(|s| (s.id, s.owner)).collect();
    let queues: Vec<Queue> = gw
        .store
        .backlog()
        .await?
        .into_iter()
        .map(|b| Queue { owner: owners.get(&b.subscription).cloned().unwrap_or_default(), backlog: b })
        .collect();
    let dead_letters = queues.iter().map(|q| q.backlog.dead).sum();
    let owed = gw
        .store
        .due_obligations(now + DUE_SOON_MS, 50)
        .await?
        .into_iter()
        .map(|o: DueObligation| Owed {
            request: o.request_id,
            request_type: o.request_type,
            requester: o.requester,
            awaiting: o.awaiting,
            deadline: format_ms(o.deadline_ms),
            overdue: o.deadline_ms < now,
            case: o.case_number,
        })
        .collect();
    let store_ready = matches!(tokio::time::timeout(Duration::from_secs(2), gw.store.ready()).await, Ok(Ok(())));
    let instances = gw.store.instances().await.unwrap_or_default();
    let rt = gw.runtime();
    let config = &rt.config;
    Ok(Overview {
        generated_at: format_ms(now),
        hours,
        types: types.into_iter().collect(),
        refusals_by_code: tallies(codes),
        refusals_by_agency: tallies(agencies),
        queues,
        dead_letters,
        owed,
        store: match config.settings.store.backend {
            crate::config::settings::Backend::Embedded => "embedded".into(),
            crate::config::settings::Backend::Redis => "redis".into(),
        },
        store_ready,
        instances,
        configuration_loaded_at: format_ms(rt.loaded.0),
        configuration_loaded_by: rt.loaded.1.clone(),
        rules: config.router.rules().len(),
        rules_version: config.rules_version.chars().take(12).collect(),
        agencies: config.agencies.len(),
    })
}

/// The exchange at a glance
///
/// Messages accepted, refused and resent per hour over the last 24 hours (by type), refusals by
/// code and by agency, every webhook subscription's backlog, dead letters, replies due soon or
/// overdue, the store's health and the configuration in force. A viewer may read it.
#[utoipa::path(get, path = "/v1/admin/overview", operation_id = "overview", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The overview", body = Overview),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn get(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    Ok(HttpResponse::Ok().json(overview(&gw).await?))
}
