//! What every request passes through: the per-client limits (header size, connections and
//! requests in flight per address) and the accounting of denials and admin actions.

use std::time::Duration;

use actix_web::web;

use super::auth;
use super::connections::Counts;
use super::error;
use crate::audit::Entry;
use crate::gateway::Gateway;
use crate::model::{Code, Problem};

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
