//! Who is calling: an agency by its client certificate (mutual TLS), its bearer token, or
//! both, as its `auth` in agencies.yaml requires; a hub or an operator by token. The agency or
//! hub so identified is the sender of what it posts.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;

use crate::config::settings::RateLimit;
use crate::config::{Agencies, Operators};
use crate::gateway::Gateway;
use crate::model::{AgencyId, Code, Problem, Sender};
use crate::route::Recipient;
use crate::tls::PeerCertificate;

/// Who posts a message, with its rate limit: an agency (by certificate, token or both), or a
/// regional hub (by token).
pub fn sender(agencies: &Agencies, req: &HttpRequest) -> Result<(Sender, RateLimit), Problem> {
    if let Some(agency) = agency_of(agencies, req)? {
        return Ok((Sender::Agency(agency.id), agency.rate_limit));
    }
    let token = bearer(req)?;
    if let Some(hub) = agencies.authenticate_hub(token).and_then(|key| agencies.hub(key)) {
        return Ok((Sender::Hub(hub.key.clone()), hub.rate_limit));
    }
    Err(Problem::new(Code::Unauthenticated, "the token is not valid for any configured agency or hub"))
}

/// The agency a request's client certificate and token identify, as its `auth` requires;
/// `None` when neither names an agency (the token may be a hub's or an operator's).
fn agency_of<'a>(agencies: &'a Agencies, req: &HttpRequest) -> Result<Option<&'a crate::config::Agency>, Problem> {
    let by_certificate = req.conn_data::<PeerCertificate>().and_then(|p| agencies.by_certificate(p));
    let token = bearer(req).ok();
    let by_token = token.and_then(|t| agencies.authenticate(t));
    let unauthenticated = |m: String| Err(Problem::new(Code::Unauthenticated, m));
    match (by_certificate, by_token) {
        (Some(c), Some(t)) if c.id != t.id => Err(Problem::new(
            Code::Forbidden,
            format!("the client certificate is {}'s but the token is {}'s: one caller, one identity", c.id, t.id),
        )),
        (Some(c), Some(_)) => Ok(Some(c)),
        (Some(c), None) if token.is_some() => unauthenticated(format!("the token is not valid for {}", c.id)),
        (Some(c), None) if c.auth.needs_token() => unauthenticated(format!(
            "{} authenticates with its token (auth: {}); send Authorization: Bearer TOKEN",
            c.id,
            c.auth.as_str()
        )),
        (Some(c), None) => Ok(Some(c)),
        (None, Some(t)) if t.auth.needs_certificate() => unauthenticated(format!(
            "{} must present its client certificate (auth: {}) over mutual TLS",
            t.id,
            t.auth.as_str()
        )),
        (None, found) => Ok(found),
    }
}

/// The operator whose token the request carries (admin endpoints). An agency's token is
/// refused with 403: it is valid, but not for this.
pub fn operator<'a>(operators: &'a Operators, agencies: &Agencies, req: &HttpRequest) -> Result<&'a str, Problem> {
    if let Some(name) = bearer(req).ok().and_then(|t| operators.authenticate(t)) {
        return Ok(name);
    }
    if let Some(name) = operator_certificate(operators, req) {
        return Ok(name);
    }
    if let Some(agency) = agency_of(agencies, req)? {
        return Err(Problem::new(
            Code::Forbidden,
            format!("{} may not use the admin endpoints: they need an operator's token", agency.id),
        ));
    }
    let token = bearer(req)?;
    if let Some(hub) = agencies.authenticate_hub(token) {
        return Err(Problem::new(
            Code::Forbidden,
            format!("hub:{hub} may not use the admin endpoints: they need an operator's token"),
        ));
    }
    Err(Problem::new(Code::Unauthenticated, "the token is not valid for any configured operator"))
}

/// The operator whose token the request carries, who must be allowed to act (role `operator`,
/// not `viewer`): a viewer is refused with 403.
pub fn acting_operator<'a>(
    operators: &'a Operators,
    agencies: &Agencies,
    req: &HttpRequest,
) -> Result<&'a str, Problem> {
    let name = operator(operators, agencies, req)?;
    match operators.role(name) {
        Some(crate::config::operators::Role::Operator) => Ok(name),
        _ => Err(Problem::new(Code::Forbidden, format!("operator:{name} is a viewer: it may read, not act"))),
    }
}

/// Who is calling, for the feeds and subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Agency(AgencyId),
    Hub(String),
    Operator(String),
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Agency(a) => write!(f, "{a}"),
            Principal::Hub(key) => write!(f, "hub:{key}"),
            Principal::Operator(name) => write!(f, "operator:{name}"),
        }
    }
}

impl Principal {
    /// The feed this caller owns.
    pub fn feed(&self, operators_feed: &str) -> Recipient {
        match self {
            Principal::Agency(a) => Recipient::Agency(*a),
            Principal::Hub(key) => Recipient::Hub(key.clone()),
            Principal::Operator(_) => Recipient::Feed(operators_feed.to_string()),
        }
    }
}

/// The operator a request's client certificate names, when it carries no token (a token and a
/// certificate of someone else would be two identities).
pub fn operator_certificate<'a>(operators: &'a Operators, req: &HttpRequest) -> Option<&'a str> {
    if req.headers().contains_key(AUTHORIZATION) {
        return None;
    }
    req.conn_data::<PeerCertificate>().and_then(|p| operators.by_certificate(p))
}

/// The agency, hub or operator whose token (or client certificate) the request carries.
pub fn principal(agencies: &Agencies, operators: &Operators, req: &HttpRequest) -> Result<Principal, Problem> {
    if let Some(name) = operator_certificate(operators, req) {
        return Ok(Principal::Operator(name.to_string()));
    }
    if let Some(a) = agency_of(agencies, req)? {
        return Ok(Principal::Agency(a.id));
    }
    let token = bearer(req)?;
    if let Some(key) = agencies.authenticate_hub(token) {
        return Ok(Principal::Hub(key.to_string()));
    }
    if let Some(name) = operators.authenticate(token) {
        return Ok(Principal::Operator(name.to_string()));
    }
    Err(Problem::new(Code::Unauthenticated, "the token is not valid for any configured agency, hub or operator"))
}

/// The bearer token of a request.
fn bearer(req: &HttpRequest) -> Result<&str, Problem> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| Problem::new(Code::Unauthenticated, "send the agency's token as Authorization: Bearer TOKEN"))?;
    header
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Problem::new(Code::Unauthenticated, "the Authorization header must be: Bearer TOKEN"))
}

/// The operator calling an admin endpoint, by the configuration in force (see [`operator`]).
pub fn calling_operator(gw: &Gateway, req: &HttpRequest) -> Result<String, Problem> {
    let rt = gw.runtime();
    operator(&rt.config.operators, &rt.config.agencies, req).map(str::to_string)
}

/// The operator calling an admin endpoint that acts, who must not be a viewer (see
/// [`acting_operator`]).
pub fn acting(gw: &Gateway, req: &HttpRequest) -> Result<String, Problem> {
    let rt = gw.runtime();
    acting_operator(&rt.config.operators, &rt.config.agencies, req).map(str::to_string)
}
