//! What every request passes through: the per-client limits (header size, connections and
//! requests in flight per address), the accounting of denials and admin actions, and the
//! problem documents of every error response.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use tracing_actix_web::RequestId;

use super::auth;
use super::connections::Counts;
use super::error::{self, Document, PROBLEM_JSON};
use crate::audit::Entry;
use crate::gateway::Gateway;
use crate::model::{Code, Problem};

/// Every error response is a problem document (RFC 9457) with the request id as its
/// `instance`: the gateway's own refusals keep their code and details; what actix answered by
/// itself (a body it could not read, a limit, an error a middleware raised) gets the code of
/// its status. Other headers (`WWW-Authenticate`, `Retry-After`, `Allow`) stay.
pub async fn problems(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let instance = req.extensions().get::<RequestId>().map(|id| format!("urn:uuid:{id}"));
    // Handlers' and extractors' errors arrive as responses; an `Err` would come from a
    // middleware, and none of the gateway's raises one.
    let response = next.call(req).await?.map_into_boxed_body();
    let status = response.status();
    // The console answers its own errors as pages.
    let html =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || html {
        return Ok(response);
    }
    let (request, old) = response.into_parts();
    let problem = old.extensions().get::<Problem>().cloned().unwrap_or_else(|| of_status(status, old.error()));
    let mut new = HttpResponse::new(status);
    for (name, value) in old.headers().iter().filter(|(n, _)| *n != CONTENT_TYPE && *n != CONTENT_LENGTH) {
        new.headers_mut().append(name.clone(), value.clone());
    }
    new.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    new.head_mut().set_connection_type(old.head().connection_type());
    let new = new.set_body(BoxBody::new(Document::new(&problem, status, instance).to_bytes()));
    Ok(ServiceResponse::new(request, new))
}

/// The problem for an error response that actix made, by its status and error.
fn of_status(status: StatusCode, error: Option<&actix_web::Error>) -> Problem {
    let why = error.map(|e| e.to_string()).filter(|e| !e.is_empty());
    let (code, default) = match status {
        StatusCode::NOT_FOUND => (Code::NotFound, "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (Code::MethodNotAllowed, "the method is not allowed on this resource"),
        StatusCode::PAYLOAD_TOO_LARGE => (Code::PayloadTooLarge, "the body is larger than the limit"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (Code::UnsupportedMediaType, "the Content-Type is not accepted"),
        StatusCode::REQUEST_TIMEOUT => (Code::RequestTimeout, "the request did not arrive in time"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (Code::HeadersTooLarge, "the request's headers are too large"),
        StatusCode::TOO_MANY_REQUESTS => (Code::RateLimited, "too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => (Code::Unavailable, "the gateway cannot serve now"),
        s if s.is_server_error() => (Code::Internal, "the gateway failed; the error is logged"),
        _ => (Code::BadRequest, "the request could not be read"),
    };
    if status.is_server_error() {
        // The error's text may say more than a caller should read: the log has it.
        tracing::error!(status = status.as_u16(), error = why.as_deref().unwrap_or(""), "error response");
        return Problem::new(code, default);
    }
    Problem::new(code, why.map_or_else(|| default.to_string(), |w| format!("{default}: {w}")))
}

/// Evidence of who did what, whichever endpoint answered: every 401 and 403 is counted, logged
/// and audited (the handlers say why in the response), and so is every admin action. Messages
/// refused by `POST /v1/messages` after authentication are audited by the store, with their
/// body's hash, so they are not recorded twice.
pub async fn account(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let gateway = req.app_data::<web::Data<Gateway>>().cloned();
    let response = next.call(req).await?;
    let Some(gw) = gateway else { return Ok(response) };
    let status = response.status().as_u16();
    let request = response.request();
    let endpoint = request.match_pattern().unwrap_or_else(|| "unmatched".into());
    let what = format!("{} {endpoint}", request.method());
    let denied = matches!(status, 401 | 403);
    if let Some(peer) = request.conn_data::<crate::tls::PeerCertificate>() {
        gw.certificates.record(peer);
    }
    let entry = if denied {
        gw.metrics.count_denial(status, &endpoint);
        tracing::warn!(status, endpoint = %endpoint, method = %request.method(), "denied");
        (endpoint != "/v1/messages" || status == 401).then(|| {
            let rt = gw.runtime();
            let who = auth::principal(&rt.config.agencies, &rt.config.operators, request).ok();
            let entry = Entry::new("denied").code(status.to_string()).detail(what);
            match who {
                Some(p) => entry.actor(p.to_string()),
                None => entry,
            }
        })
    } else if endpoint.starts_with("/v1/admin/") {
        let rt = gw.runtime();
        let operator =
            auth::operator(&rt.config.operators, &rt.config.agencies, request).ok().map(|o| format!("operator:{o}"));
        let mut entry = Entry::new("admin").code(status.to_string()).detail(what);
        entry.actor = operator;
        entry.message_id = request.match_info().get("id").map(str::to_string);
        Some(entry)
    } else {
        None
    };
    if let Some(entry) = entry
        && let Err(e) = gw.store.audit(entry).await
    {
        tracing::warn!(error = %e, "could not record a denial or an admin action in the audit log");
    }
    Ok(response)
}

/// One client address may have at most `limits.max_requests_per_client` requests in flight;
/// above that it gets 429, so that one client cannot hold every worker.
pub async fn per_client(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    let gateway = req.app_data::<web::Data<Gateway>>().cloned();
    let (Some(gw), Some(ip)) = (gateway, req.peer_addr().map(|a| a.ip())) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let rt = gw.runtime();
    let limits = &rt.config.settings.limits;
    let head: usize = req.uri().path_and_query().map_or(0, |p| p.as_str().len())
        + req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>();
    if head > limits.max_header_bytes {
        let p = Problem::new(
            Code::HeadersTooLarge,
            format!("the request's headers exceed {} bytes", limits.max_header_bytes),
        );
        return Ok(req.into_response(error::problem(&p)).map_into_right_body());
    }
    let Some(counts) = req.app_data::<web::Data<Counts>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if counts.connections.count(ip) > limits.max_connections_per_client {
        let p = Problem::new(
            Code::RateLimited,
            format!("more than {} connections open from {ip}", limits.max_connections_per_client),
        );
        let mut response = error::retry_after(&p, Duration::from_secs(1));
        response.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
        return Ok(req.into_response(response).map_into_right_body());
    }
    let max = limits.max_requests_per_client;
    let Some(_held) = counts.in_flight.try_enter(ip, max) else {
        let p = Problem::new(Code::RateLimited, format!("more than {max} requests in flight from {ip}"));
        let response = error::retry_after(&p, Duration::from_secs(1));
        return Ok(req.into_response(response).map_into_right_body());
    };
    drop(rt);
    Ok(next.call(req).await?.map_into_left_body())
}
