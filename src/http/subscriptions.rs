//! `/v1/subscriptions`: a recipient manages its own subscriptions — create, list, read, delete,
//! rotate a webhook's secret, re-enable one disabled by 410; and reads a cursor subscription
//! (`GET …/events`) and acknowledges what it processed (`POST …/ack`). Nobody can subscribe to a
//! feed other than their own: the owner is the caller.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::auth;
use super::error::ApiError;
use super::feeds::{PageQuery, passes};
use crate::clock::format_ms;
use crate::deliver::feeds::{self, read_kept};
use crate::deliver::guard::Guard;
use crate::deliver::signature;
use crate::deliver::subscription::{self, Start, Stored, SubscriptionSpec};
use crate::gateway::Gateway;
use crate::model::{Code, Detail, Problem};
use crate::route::Recipient;
use crate::store::{FeedEntry, SubscriptionRow};

/// A subscription as its owner sees it: secrets are never shown again after creation.
#[derive(Serialize, utoipa::ToSchema)]
pub struct View {
    id: String,
    /// The feed it reads: its owner's.
    owner: String,
    filter: subscription::Filter,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<WebhookView>,
    /// A cursor subscription's acknowledged position (`null` for a webhook).
    cursor: Option<String>,
    /// Why it is disabled (its endpoint answered 410), or `null`.
    disabled: Option<String>,
    /// `api` or `config` (subscriptions.yaml: only the operators change it).
    source: String,
    created_at: String,
    /// The webhook's secret, shown once: in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    url: String,
    /// How many secrets sign (two during a rotation).
    secrets: usize,
    concurrency: Option<u32>,
    rate_per_second: Option<u32>,
    client_certificate: bool,
    ca: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ViewList {
    subscriptions: Vec<View>,
}

/// A new webhook secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Rotated {
    id: String,
    secret: String,
    /// How many secrets sign now (the new one and the previous one).
    signing_with: usize,
}

/// A subscription enabled again.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Enabled {
    id: String,
    /// Always `null`: it is enabled.
    disabled: Option<String>,
}

/// A cursor subscription's position after an acknowledgement.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Acknowledged {
    id: String,
    cursor: String,
}

fn view(row: &SubscriptionRow) -> View {
    let stored = Stored::parse(&row.spec);
    View {
        id: row.id.clone(),
        owner: row.owner.clone(),
        cursor: stored.webhook.is_none().then(|| row.cursor.to_string()),
        webhook: stored.webhook.map(|w| WebhookView {
            url: w.url,
            secrets: w.secrets.len(),
            concurrency: w.concurrency,
            rate_per_second: w.rate_per_second,
            client_certificate: w.client_certificate.is_some(),
            ca: w.ca.is_some() || w.ca_pem.is_some(),
        }),
        filter: stored.filter,
        disabled: row.disabled.clone(),
        source: row.source.clone(),
        created_at: row.created_at.clone(),
        secret: None,
    }
}

/// The caller's feed.
fn owner(gw: &Gateway, req: &HttpRequest) -> Result<Recipient, Problem> {
    let rt = gw.runtime();
    let principal = auth::principal(&rt.config.agencies, &rt.config.operators, req)?;
    Ok(principal.feed(&rt.config.router.operators_feed))
}

/// The caller's subscription `id` (404 for anyone else's: its existence is not told).
async fn own(gw: &Gateway, req: &HttpRequest, id: &str) -> Result<SubscriptionRow, ApiError> {
    let owner = owner(gw, req)?.to_string();
    let rows = gw.store.subscriptions().await?;
    match rows.into_iter().find(|r| r.id == id) {
        Some(row) if row.owner == owner => Ok(row),
        Some(_) => {
            Err(Problem::new(Code::Forbidden, format!("subscription `{id}` is not yours: only its owner may use it"))
                .into())
        }
        None => Err(Problem::new(Code::NotFound, format!("there is no subscription `{id}`")).into()),
    }
}

/// A 400 naming every problem of a subscription as written, when there is one.
fn invalid(problems: Vec<String>) -> Result<(), ApiError> {
    if problems.is_empty() {
        return Ok(());
    }
    let details = problems.into_iter().map(|p| Detail::new("", p)).collect();
    Err(Problem::new(Code::BadRequest, "the subscription is not valid").with_details(details).into())
}

/// Refuses a change to a subscription of subscriptions.yaml.
fn configured(row: &SubscriptionRow) -> Result<(), ApiError> {
    if row.source == "config" {
        return Err(Problem::new(
            Code::Conflict,
            "this subscription is configured (subscriptions.yaml); the operators change it",
        )
        .into());
    }
    Ok(())
}

/// Your subscriptions
#[utoipa::path(get, path = "/v1/subscriptions", operation_id = "list_subscriptions", tag = "subscriptions", security(("bearer" = []), ("mutualTLS" = [])),
    responses(
        (status = 200, description = "Every subscription to your feed", body = ViewList),
        (status = 401, description = "No valid credentials"),
    ))]
pub async fn list(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let owner = owner(&gw, &req)?.to_string();
    let rows = gw.store.subscriptions().await?;
    Ok(HttpResponse::Ok()
        .json(ViewList { subscriptions: rows.iter().filter(|r| r.owner == owner).map(view).collect() }))
}

/// Subscribe to your feed
///
/// A webhook (the gateway pushes each event, signed; its secret is in this answer, once) or a
/// server-tracked cursor (`cursor: true`: read with `GET …/events`, acknowledge with `POST …/ack`).
/// `from`: `now` (default), `oldest`, or the cursor of an entry you read. Certificates for the
/// webhook's mutual TLS come as PEM text: file paths are refused.
#[utoipa::path(post, path = "/v1/subscriptions", operation_id = "create_subscription", tag = "subscriptions", security(("bearer" = []), ("mutualTLS" = [])),
    request_body(content = crate::deliver::subscription::SubscriptionSpec, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = View),
        (status = 400, description = "The subscription is not valid (each problem named)"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not your feed"),
        (status = 409, description = "A subscription with this id exists"),
        (status = 422, description = "A file path on the gateway's host"),
    ))]
pub async fn create(gw: web::Data<Gateway>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let owner = owner(&gw, &req)?;
    let mut spec: SubscriptionSpec = serde_json::from_slice(&body)
        .map_err(|e| Problem::new(Code::BadRequest, format!("the body is not a subscription: {e}")))?;
    if spec.owner.as_deref().is_some_and(|o| o != owner.to_string()) {
        return Err(Problem::new(Code::Forbidden, format!("{owner} may subscribe to its own feed only")).into());
    }
    // Files on the gateway's host are the operators' to name (subscriptions.yaml): through the
    // API, certificates come as PEM text.
    let named = spec.webhook.as_ref().map(|w| w.file_paths()).unwrap_or_default();
    if !named.is_empty() {
        let details = named
            .iter()
            .map(|field| {
                let pointer = format!("/{}", field.replace('.', "/"));
                Detail::new(
                    pointer,
                    "a file path on the gateway's host; send the PEM text itself (cert_pem, key_pem, ca_pem)",
                )
            })
            .collect();
        return Err(Problem::new(
            Code::FilePathRefused,
            "the API does not take file paths on the gateway's host; send certificates as PEM text",
        )
        .with_details(details)
        .into());
    }
    let rt = gw.runtime();
    let guard = Guard::new(&rt.config.settings.delivery.allow_internal).unwrap_or_default();
    invalid(subscription::validate(&spec, &rt.config.router, &guard))?;
    // The gateway makes the secret, and shows it this once.
    let mut secret = None;
    if let Some(w) = spec.webhook.as_mut()
        && w.secrets.is_empty()
    {
        let s = signature::new_secret();
        w.secrets.push(s.clone());
        secret = Some(s);
    }
    let id = spec.id.clone().unwrap_or_else(|| format!("sub_{}", uuid::Uuid::now_v7().simple()));
    let head = gw.store.head().await?;
    let cursor = match spec.start() {
        Ok(Start::Oldest) => 0,
        Ok(Start::After(c)) if c > head => {
            return Err(Problem::new(
                Code::BadRequest,
                format!("from: cursor {c} is beyond the newest entry ({head})"),
            )
            .with_details(vec![Detail::new("/from", "the cursor of an entry you read")])
            .into());
        }
        Ok(Start::After(c)) => c,
        _ => head,
    };
    let row = SubscriptionRow {
        id,
        owner: owner.to_string(),
        spec: Stored { filter: spec.filter, webhook: spec.webhook }.to_json(),
        cursor,
        disabled: None,
        source: "api".into(),
        created_at: format_ms(gw.clock.now_ms()),
    };
    gw.store.create_subscription(row.clone()).await?;
    Ok(HttpResponse::Created().json(View { secret, ..view(&row) }))
}

/// One of your subscriptions
#[utoipa::path(get, path = "/v1/subscriptions/{id}", operation_id = "read_subscription", tag = "subscriptions", security(("bearer" = []), ("mutualTLS" = [])), params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = View),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Another's subscription: only its owner may use it"),
        (status = 404, description = "No such subscription"),
    ))]
pub async fn read(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(view(&own(&gw, &req, &id).await?)))
}

/// Delete one of your subscriptions
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", operation_id = "delete_subscription", tag = "subscriptions", security(("bearer" = []), ("mutualTLS" = [])), params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Another's subscription: only its owner may use it"),
        (status = 404, description = "No such subscription"),
        (status = 409, description = "A configured subscription (subscriptions.yaml)"),
    ))]
pub async fn delete(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let row = own(&gw, &req, &id).await?;
    configured(&row)?;
    gw.store.delete_subscription(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What `PATCH /v1/subscriptions/{id}` may change: the filter, and a webhook's URL and limits.
/// The cursor stays: nothing is missed or sent twice because of the change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    #[serde(default)]
    filter: Option<subscription::Filter>,
    #[serde(default)]
    webhook: Option<WebhookPatch>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    concurrency: Option<u32>,
    #[serde(default)]
    rate_per_second: Option<u32>,
}

/// Changes a subscription's filter, or its webhook's URL and limits, keeping its cursor.
/// Change a subscription's filter, or its webhook's URL and limits
///
/// The cursor stays: nothing is missed or sent twice because of the change.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", operation_id = "patch_subscription", tag = "subscriptions", security(("bearer" = []), ("mutualTLS" = [])), params(("id" = String, Path, description = "The subscription's id")),
    request_body(content = Patch, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed subscription", body = View),
        (status = 400, description = "The change is not valid"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Another's subscription: only its owner may use it"),
        (status = 404, description = "No such subscription"),
        (status = 409, description = "A configured subscription, or a webhook change to a cursor subscription"),
    ))]
pub async fn patch(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let row = own(&gw, &req, &id).await?;
    configured(&row)?;
    let change: Patch = serde_json::from_slice(&body).map_err(|e| {
        Problem::new(
            Code::BadRequest,
            format!("the body is not a change: {e}; send filter, or webhook url, concurrency, rate_per_second"),
        )
    })?;
    let mut stored = Stored::parse(&row.spec);
    if let Some(filter) = change.filter {
        stored.filter = filter;
    }
    match (change.webhook, stored.webhook.as_mut()) {
        (Some(w), Some(hook)) => {
            hook.url = w.url.unwrap_or(hook.url.clone());
            hook.concurrency = w.concurrency.or(hook.concurrency);
            hook.rate_per_second = w.rate_per_second.or(hook.rate_per_second);
        }
        (Some(_), None) => {
            return Err(Problem::new(Code::Conflict, "a cursor subscription has no webhook to change").into());
        }
        (None, _) => {}
    }
    // The changed subscription checks as a new one would.
    let spec = SubscriptionSpec {
        id: Some(row.id.clone()),
        owner: None,
        filter: stored.filter.clone(),
        cursor: stored.webhook.is_none(),
        webhook: stored.webhook.clone(),
        from: None,
    };
    let rt = gw.runtime();
    let guard = Guard::new(&rt.config.settings.delivery.allow_internal).unwrap_or_default();
    invalid(subscription::validate(&spec, &rt.config.router, &guard))?;
    gw.store.update_subscription(&row.id, Some(stored.to_json()), None).await?;
    let changed = SubscriptionRow { spec: stored.to_json(), ..row };
    Ok(HttpResponse::Ok().json(view(&changed)))
}

/// A new secret; the previous one keeps signing until the next rotation, so the endpoint can
/// switch without missing a message.
/// A new webhook secret
///
/// The previous secret keeps signing until the next rotation.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/rotate-secret", operation_id = "rotate_secret", tag = "subscriptions", security(("bearer" = []), ("mutualTLS" = [])), params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The new secret, shown once", body = Rotated),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Another's subscription: only its owner may use it"),
        (status = 404, description = "No such subscription"),
        (status = 409, description = "A cursor subscription, or a configured one"),
    ))]
pub async fn rotate(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let row = own(&gw, &req, &id).await?;
    let mut stored = Stored::parse(&row.spec);
    let Some(w) = stored.webhook.as_mut() else {
        return Err(Problem::new(Code::Conflict, "a cursor subscription has no secret").into());
    };
    configured(&row)?;
    let secret = signature::new_secret();
    let previous = w.secrets.first().cloned();
    w.secrets = std::iter::once(secret.clone()).chain(previous).collect();
    let signing_with = w.secrets.len();
    gw.store.update_subscription(&row.id, Some(stored.to_json()), None).await?;
    Ok(HttpResponse::Ok().json(Rotated { id: row.id, secret, signing_with }))
}

/// Re-enables a subscription that was disabled because its endpoint answered 410.
/// Enable a subscription its endpoint's 410 disabled
#[utoipa::path(post, path = "/v1/subscriptions/{id}/enable", operation_id = "enable_subscription", tag = "subscriptions", security(("bearer" = []), ("mutualTLS" = [])), params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Enabled", body = Enabled),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Another's subscription: only its owner may use it"),
        (status = 404, description = "No such subscription"),
    ))]
pub async fn enable(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let row = own(&gw, &req, &id).await?;
    gw.store.update_subscription(&row.id, None, Some(None)).await?;
    Ok(HttpResponse::Ok().json(Enabled { id: row.id, disabled: None }))
}

/// A cursor subscription's next events: those after its acknowledged cursor that pass its
/// filter. `next` passes the entries the filter left out too, so acknowledging it skips them.
/// A cursor subscription's next events
///
/// Those after its acknowledged cursor that pass its filter; `next` passes the entries the filter
/// left out too, so acknowledging it skips them.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/events", operation_id = "subscription_events", tag = "subscriptions", security(("bearer" = []), ("mutualTLS" = [])),
    params(("id" = String, Path, description = "The subscription's id"), ("limit" = Option<usize>, Query, description = "1 to 1000 (default 100)"),
           ("wait" = Option<u64>, Query, description = "Seconds to wait for an entry (long-poll; at most delivery.max_wait)")),
    responses(
        (status = 200, description = "The page", body = crate::deliver::feeds::Page),
        (status = 400, description = "A parameter is wrong"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Another's subscription: only its owner may use it"),
        (status = 404, description = "No such subscription"),
        (status = 409, description = "A webhook subscription (pushed, not read)"),
        (status = 410, description = "The cursor is older than the feed's retention"),
    ))]
pub async fn events(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let row = own(&gw, &req, &id).await?;
    let stored = Stored::parse(&row.spec);
    if stored.webhook.is_some() {
        return Err(Problem::new(Code::Conflict, "a webhook subscription is pushed, not read").into());
    }
    let query: PageQuery = super::request::query(&req)?;
    let limit = query.limit()?;
    let rt = gw.runtime();
    let wait = query.wait(rt.config.settings.delivery.max_wait);
    let router = &rt.config.router;
    let keep = |e: &FeedEntry| passes(&stored.filter, e, router);
    let kept = read_kept(gw.store.as_ref(), gw.stopping(), &row.owner, row.cursor, limit, wait, keep).await?;
    let feed: Recipient = row.owner.parse().unwrap_or(Recipient::Feed(row.owner.clone()));
    let mut out = feeds::render(&feed, &kept.entries, row.cursor);
    out.next = kept.next.to_string();
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Ack {
    /// The `next` of the page you processed.
    cursor: String,
}

/// Acknowledge what you processed of a cursor subscription
#[utoipa::path(post, path = "/v1/subscriptions/{id}/ack", operation_id = "acknowledge", tag = "subscriptions", security(("bearer" = []), ("mutualTLS" = [])), params(("id" = String, Path, description = "The subscription's id")),
    request_body(content = Ack, content_type = "application/json"),
    responses(
        (status = 200, description = "The new position", body = Acknowledged),
        (status = 400, description = "Not a cursor, or beyond the newest entry"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Another's subscription: only its owner may use it"),
        (status = 404, description = "No such subscription"),
        (status = 409, description = "A webhook subscription (acknowledged by its endpoint's 2xx)"),
    ))]
pub async fn ack(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let row = own(&gw, &req, &id).await?;
    if Stored::parse(&row.spec).webhook.is_some() {
        return Err(Problem::new(Code::Conflict, "a webhook subscription is acknowledged by its endpoint's 2xx").into());
    }
    let ack: Ack = serde_json::from_slice(&body)
        .map_err(|_| Problem::new(Code::BadRequest, r#"send {"cursor": "…"}: the `next` of the page you processed"#))?;
    let cursor = feeds::cursor(Some(&ack.cursor))?;
    let head = gw.store.head().await.unwrap_or(i64::MAX);
    if cursor > head {
        return Err(
            Problem::new(Code::BadRequest, format!("cursor {cursor} is beyond the newest entry ({head})")).into()
        );
    }
    gw.store.acknowledge(&row.id, cursor).await?;
    Ok(HttpResponse::Ok().json(Acknowledged { id: row.id, cursor: cursor.max(row.cursor).to_string() }))
}
