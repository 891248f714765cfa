//! Bearer-token authentication: the token's hash names the agency, which is the sender.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;

use crate::config::{Agencies, Agency, Operators};
use crate::model::{AgencyId, Code, Problem};
use crate::route::Recipient;

/// The agency whose token the request carries.
pub fn authenticate<'a>(agencies: &'a Agencies, req: &HttpRequest) -> Result<&'a Agency, Problem> {
    let token = bearer(req)?;
    agencies
        .authenticate(token)
        .ok_or_else(|| Problem::new(Code::Unauthenticated, "the token is not valid for any configured agency"))
}

/// The operator whose token the request carries (admin endpoints). An agency's token is
/// refused with 403: it is valid, but not for this.
pub fn operator<'a>(operators: &'a Operators, agencies: &Agencies, req: &HttpRequest) -> Result<&'a str, Problem> {
    let token = bearer(req)?;
    if let Some(name) = operators.authenticate(token) {
        return Ok(name);
    }
    if let Some(agency) = agencies.authenticate(token) {
        return Err(Problem::new(
            Code::Forbidden,
            format!("{} may not use the admin endpoints: they need an operator's token", agency.id),
        ));
    }
    if let Some(hub) = agencies.authenticate_hub(token) {
        return Err(Problem::new(
            Code::Forbidden,
            format!("hub:{hub} may not use the admin endpoints: they need an operator's token"),
        ));
    }
    Err(Problem::new(Code::Unauthenticated, "the token is not valid for any configured operator"))
}

/// Who is calling, for the feeds and subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Agency(AgencyId),
    Hub(String),
    Operator(String),
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

/// The agency, hub or operator whose token the request carries.
pub fn principal(agencies: &Agencies, operators: &Operators, req: &HttpRequest) -> Result<Principal, Problem> {
    let token = bearer(req)?;
    if let Some(a) = agencies.authenticate(token) {
        return Ok(Principal::Agency(a.id));
    }
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
