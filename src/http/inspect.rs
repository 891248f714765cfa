//! The operators' view of the messages: `GET /v1/admin/messages` (search by id, case number,
//! sender, type and time) and `GET /v1/admin/messages/{id}` (one message whole: the event as the
//! operators may see it, each recipient with the rules that chose it and what was removed for
//! it, every webhook attempt, and the case thread it belongs to). Nothing above the operators'
//! clearance is shown, and nothing stripped: only where and why.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth;
use super::error::ApiError;
use super::request::query;
use super::threads::{ThreadView, thread_view};
use crate::clock::parse_time;
use crate::gateway::Gateway;
use crate::model::{Code, Problem};
use crate::route::Recipient;
use crate::secrecy::view::{self, View};
use crate::store::{MessageQuery, MessageSummary, ThreadQuery, Trace};

#[derive(Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Search {
    /// The gateway's id of a message, or its sender's own id.
    pub id: Option<String>,
    /// The case number (the event's `subject`).
    pub case: Option<String>,
    /// The sender: `KIND:DIVISION`, `hub:REGION` or `gateway`.
    pub sender: Option<String>,
    /// A message type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub message_type: Option<String>,
    /// Received from this day (YYYY-MM-DD, Beijing) or time (RFC 3339).
    pub from: Option<String>,
    /// Received before this day or time.
    pub to: Option<String>,
    /// At most this many (1 to 500, default 100).
    pub limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct Found {
    pub messages: Vec<MessageSummary>,
}

/// The messages that match, newest first.
pub async fn find(gw: &Gateway, search: Search) -> Result<Vec<MessageSummary>, ApiError> {
    let time = |t: Option<&str>, name: &str| {
        t.filter(|t| !t.is_empty())
            .map(parse_time)
            .transpose()
            .map_err(|e| Problem::new(Code::BadRequest, format!("{name}: {e}")))
    };
    let given = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let q = MessageQuery {
        id: given(search.id),
        case: given(search.case),
        sender: given(search.sender),
        message_type: given(search.message_type),
        from_ms: time(search.from.as_deref(), "from")?,
        to_ms: time(search.to.as_deref(), "to")?,
        before: None,
        limit: Some(search.limit.unwrap_or(100).clamp(1, 500)),
    };
    Ok(gw.store.search(q).await?)
}

/// Search the messages
///
/// By the gateway's id or the sender's, case number, sender, type and time; newest first. Uses
/// the store's indexes, never a scan.
#[utoipa::path(get, path = "/v1/admin/messages", operation_id = "search_messages", tag = "admin", security(("bearer" = [])),
    params(Search),
    responses(
        (status = 200, description = "The messages found", body = Found),
        (status = 400, description = "A parameter is wrong"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn search(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let s: Search = query(&req)?;
    Ok(HttpResponse::Ok().json(Found { messages: find(&gw, s).await? }))
}

/// One message as the operators may see it.
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    #[serde(flatten)]
    pub trace: Trace,
    /// The event as the operators' clearance lets them see it (`null` when the message as a
    /// whole is above it).
    #[schema(schema_with = crate::model::schema::canonical_event)]
    pub event: Option<Value>,
    /// Why the event is not shown, when it is not.
    pub withheld: Option<String>,
    /// The case thread the message belongs to.
    pub thread: Option<ThreadView>,
}

/// Message `id` whole (see the module).
pub async fn message(gw: &Gateway, id: &str) -> Result<Option<MessageView>, ApiError> {
    let Some(trace) = gw.store.trace(id).await? else { return Ok(None) };
    let rt = gw.runtime();
    let router = &rt.config.router;
    let clearance = router.clearance(&Recipient::Feed(router.operators_feed.clone()));
    let (event, withheld) = match gw.store.message(id).await? {
        Some((event, _)) => match serde_json::from_str::<Value>(&event) {
            Ok(e) => match view::for_recipient(&e, clearance, None) {
                View::AsIs => (Some(e), None),
                View::Deliver { event, .. } => (Some(event), None),
                View::Withhold(reason) => (None, Some(reason)),
            },
            Err(_) => (None, Some("the stored event cannot be read".into())),
        },
        None => (None, None),
    };
    let thread = match gw.store.thread_of(id).await? {
        Some(t) => {
            let rows = gw.store.threads(ThreadQuery { id: Some(t), limit: 1, ..ThreadQuery::default() }).await?;
            rows.first().map(|t| thread_view(t, gw.clock.now_ms()))
        }
        None => None,
    };
    Ok(Some(MessageView { trace, event, withheld, thread }))
}

/// One message, whole
///
/// The event as the operators may see it; each recipient with the rules that chose it and what
/// was removed for it (pointers and reasons); every webhook attempt; its case thread.
#[utoipa::path(get, path = "/v1/admin/messages/{id}", operation_id = "message", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The gateway's id of the message")),
    responses(
        (status = 200, description = "The message", body = MessageView),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
        (status = 404, description = "No such message"),
    ))]
pub async fn one(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    match message(&gw, &id).await? {
        Some(m) => Ok(HttpResponse::Ok().json(m)),
        None => Err(Problem::new(Code::NotFound, format!("no message `{id}`")).into()),
    }
}
