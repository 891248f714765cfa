//! Delivery for operators: every subscription of every owner with its state and backlog
//! (`GET /v1/admin/subscriptions`), pausing and resuming a webhook subscription (resuming also
//! re-enables one its endpoint's 410 disabled), and replaying all of a subscription's dead
//! letters. One dead letter at a time is `admin::replay`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth;
use super::error::ApiError;
use crate::clock::format_ms;
use crate::deliver::subscription::Stored;
use crate::gateway::Gateway;
use crate::model::{Code, Problem};
use crate::store::SubscriptionRow;

/// How a pause is written in a subscription's `disabled` reason.
const PAUSED: &str = "paused by ";

/// A subscription as operators see it.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionState {
    pub id: String,
    /// The recipient whose feed it reads.
    pub owner: String,
    /// `webhook` or `cursor`.
    pub kind: &'static str,
    /// A webhook's endpoint (without credentials or query).
    pub endpoint: Option<String>,
    /// `config` (subscriptions.yaml) or `api`.
    pub source: String,
    /// `active`, `paused` (by an operator) or `disabled` (its endpoint answered 410).
    pub state: &'static str,
    /// Who paused it and when, or why it was disabled.
    pub reason: Option<String>,
    /// Attempts not delivered yet, and dead letters.
    pub pending: i64,
    pub dead: i64,
    pub oldest_pending: Option<String>,
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionStates {
    pub subscriptions: Vec<SubscriptionState>,
}

fn endpoint(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or_default(),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            ) + u.path()
        }
        Err(_) => String::new(),
    }
}

/// Every subscription, with its backlog.
pub async fn states(gw: &Gateway) -> Result<Vec<SubscriptionState>, ApiError> {
    let rows = gw.store.subscriptions().await?;
    let backlogs = gw.store.backlog().await?;
    let mut out: Vec<SubscriptionState> = rows
        .into_iter()
        .map(|row| {
            let stored = Stored::parse(&row.spec);
            let b = backlogs.iter().find(|b| b.subscription == row.id);
            let state = match &row.disabled {
                None => "active",
                Some(r) if r.starts_with(PAUSED) => "paused",
                Some(_) => "disabled",
            };
            SubscriptionState {
                kind: if stored.webhook.is_some() { "webhook" } else { "cursor" },
                endpoint: stored.webhook.as_ref().map(|w| endpoint(&w.url)),
                state,
                reason: row.disabled.clone(),
                pending: b.map_or(0, |b| b.pending),
                dead: b.map_or(0, |b| b.dead),
                oldest_pending: b.and_then(|b| b.oldest_pending.clone()),
                last_success_at: b.and_then(|b| b.last_success_at.clone()),
                last_error: b.and_then(|b| b.last_error.clone()),
                last_error_at: b.and_then(|b| b.last_error_at.clone()),
                id: row.id,
                owner: row.owner,
                source: row.source,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.owner, &a.id).cmp(&(&b.owner, &b.id)));
    Ok(out)
}

async fn webhook(gw: &Gateway, id: &str) -> Result<SubscriptionRow, ApiError> {
    let row = gw
        .store
        .subscription(id)
        .await?
        .ok_or_else(|| Problem::new(Code::NotFound, format!("no subscription {id}")))?;
    if Stored::parse(&row.spec).webhook.is_none() {
        return Err(Problem::new(
            Code::Conflict,
            "a cursor subscription is read by its owner: there is nothing to pause",
        )
        .into());
    }
    Ok(row)
}

/// Pauses a webhook subscription: nothing is sent until it is resumed; what arrives meanwhile
/// waits in its feed.
pub async fn pause_subscription(gw: &Gateway, id: &str, operator: &str) -> Result<(), ApiError> {
    let row = webhook(gw, id).await?;
    if let Some(reason) = &row.disabled {
        return Err(Problem::new(Code::Conflict, format!("{id} is not sending already: {reason}")).into());
    }
    let reason = format!("{PAUSED}operator:{operator} at {}", format_ms(gw.clock.now_ms()));
    gw.store.update_subscription(id, None, Some(Some(reason))).await?;
    tracing::info!(subscription = id, operator, "subscription paused");
    Ok(())
}

/// Resumes a paused subscription, or re-enables one its endpoint's 410 disabled.
pub async fn resume_subscription(gw: &Gateway, id: &str, operator: &str) -> Result<(), ApiError> {
    let row = webhook(gw, id).await?;
    if row.disabled.is_none() {
        return Err(Problem::new(Code::Conflict, format!("{id} is sending already")).into());
    }
    gw.store.update_subscription(id, None, Some(None)).await?;
    tracing::info!(subscription = id, operator, "subscription resumed");
    Ok(())
}

/// Sends every dead letter of a subscription again; how many.
pub async fn replay_all(gw: &Gateway, id: &str, operator: &str) -> Result<usize, ApiError> {
    gw.store.subscription(id).await?.ok_or_else(|| Problem::new(Code::NotFound, format!("no subscription {id}")))?;
    let by = format!("operator:{operator}");
    let mut replayed = 0;
    loop {
        let letters = gw.store.dead_letters(Some(id.to_string()), 1000).await?;
        if letters.is_empty() {
            break;
        }
        let before = replayed;
        for letter in letters {
            if gw.store.replay(letter.id, &by).await? {
                replayed += 1;
            }
        }
        if replayed == before {
            break;
        }
    }
    tracing::info!(subscription = id, operator, replayed, "dead letters replayed");
    Ok(replayed)
}

/// Every subscription
///
/// Of every owner, with its state (active, paused, disabled), backlog, last success and last
/// error.
#[utoipa::path(get, path = "/v1/admin/subscriptions", operation_id = "all_subscriptions", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscriptions", body = SubscriptionStates),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn list(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    Ok(HttpResponse::Ok().json(SubscriptionStates { subscriptions: states(&gw).await? }))
}

/// What an action on a subscription did.
#[derive(Serialize, ToSchema)]
pub struct Acted {
    pub id: String,
    /// `paused`, `active`, or (replay) the state it is in.
    pub state: &'static str,
    /// Dead letters sent again (replay).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<usize>,
}

/// Pause a webhook subscription
///
/// Nothing is sent until it is resumed; what arrives meanwhile waits in its feed.
#[utoipa::path(post, path = "/v1/admin/subscriptions/{id}/pause", operation_id = "pause_subscription", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Paused", body = Acted),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token, or a viewer's"),
        (status = 404, description = "No such subscription"),
        (status = 409, description = "A cursor subscription, or one not sending already"),
    ))]
pub async fn pause(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let operator = auth::acting(&gw, &req)?;
    pause_subscription(&gw, &id, &operator).await?;
    Ok(HttpResponse::Ok().json(Acted { id: id.into_inner(), state: "paused", replayed: None }))
}

/// Resume or re-enable a webhook subscription
///
/// A paused one, or one its endpoint's 410 disabled: it sends again from where it stopped.
#[utoipa::path(post, path = "/v1/admin/subscriptions/{id}/resume", operation_id = "resume_subscription", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Sending again", body = Acted),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token, or a viewer's"),
        (status = 404, description = "No such subscription"),
        (status = 409, description = "A cursor subscription, or one sending already"),
    ))]
pub async fn resume(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let operator = auth::acting(&gw, &req)?;
    resume_subscription(&gw, &id, &operator).await?;
    Ok(HttpResponse::Ok().json(Acted { id: id.into_inner(), state: "active", replayed: None }))
}

/// Replay every dead letter of a subscription
///
/// Each goes out again from now on, with the same webhook id.
#[utoipa::path(post, path = "/v1/admin/subscriptions/{id}/replay", operation_id = "replay_subscription", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Replayed", body = Acted),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token, or a viewer's"),
        (status = 404, description = "No such subscription"),
    ))]
pub async fn replay(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let operator = auth::acting(&gw, &req)?;
    let replayed = replay_all(&gw, &id, &operator).await?;
    let state = states(&gw).await?.into_iter().find(|s| s.id == *id).map_or("active", |s| s.state);
    Ok(HttpResponse::Ok().json(Acted { id: id.into_inner(), state, replayed: Some(replayed) }))
}
