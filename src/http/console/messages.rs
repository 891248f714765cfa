//! The messages pages: a search (`GET /v1/admin/messages`) and a message whole
//! (`GET /v1/admin/messages/{id}`), from the same functions.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::guard;
use super::page::{self, Page, html};
use crate::gateway::Gateway;
use crate::http::inspect::{self, MessageView, Search};
use crate::store::MessageSummary;

#[derive(Template)]
#[template(path = "messages.html", config = "src/http/console/askama.toml")]
struct MessagesPage {
    page: Page,
    q: Search,
    types: Vec<&'static str>,
    searched: bool,
    found: Vec<MessageSummary>,
    error: Option<String>,
}

pub async fn list(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let s = match guard::require(&gw, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let searched = !req.query_string().is_empty();
    let q: Search = web::Query::<Search>::from_query(req.query_string()).map(|q| q.into_inner()).unwrap_or_default();
    let repeat = Search {
        id: q.id.clone(),
        case: q.case.clone(),
        sender: q.sender.clone(),
        message_type: q.message_type.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        limit: q.limit,
    };
    let (found, error) = match inspect::find(&gw, q).await {
        Ok(found) => (found, None),
        Err(e) => (Vec::new(), Some(e.problem.message)),
    };
    let page = Page::new(&req, &s, "/console/messages");
    let types = gw.runtime().config.schemas.types().iter().map(|t| t.name).collect();
    html(StatusCode::OK, &MessagesPage { page, q: repeat, types, searched, found, error })
}

#[derive(Template)]
#[template(path = "message.html", config = "src/http/console/askama.toml")]
struct MessagePage {
    page: Page,
    m: MessageView,
    event: String,
}

pub async fn one(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let s = match guard::require(&gw, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let m = match inspect::message(&gw, &id).await {
        Ok(Some(m)) => m,
        Ok(None) => return page::not_found(&req),
        Err(e) => return page::unavailable(&req, &e.problem.message),
    };
    let event = m.event.as_ref().map(|e| serde_json::to_string_pretty(e).unwrap_or_default()).unwrap_or_default();
    let page = Page::new(&req, &s, "/console/messages");
    html(StatusCode::OK, &MessagePage { page, m, event })
}
