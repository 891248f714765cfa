//! What a console handler checks before it answers: a session (or the sign-in page), and for a
//! submitted form its CSRF token and, for an action, a role that may act.

use actix_web::{HttpRequest, HttpResponse};

use super::form::Form;
use super::page;
use super::session::{NoSession, Session, csrf_ok, current, to_sign_in};
use crate::audit::Entry;
use crate::gateway::Gateway;

/// The session of a page request, or the answer to give instead: the sign-in page, or the store
/// being unavailable.
pub async fn require(gw: &Gateway, req: &HttpRequest) -> Result<Session, HttpResponse> {
    match current(gw, req).await {
        Ok(s) => Ok(s),
        Err(NoSession::SignIn) => Err(to_sign_in(req.uri().path_and_query().map_or("/console/", |p| p.as_str()))),
        Err(NoSession::Store(e)) => Err(page::unavailable(req, &e.to_string())),
    }
}

/// The session of a state-changing form (its CSRF token checked), or the answer to give
/// instead. `act`: the form changes something, which a viewer may not do; the action goes into
/// the audit chain with the operator's name (what it did is recorded by what it calls, such as
/// `rules_changed`). Refusals are audited as denials by the middleware.
pub async fn require_form(gw: &Gateway, req: &HttpRequest, form: &Form, act: bool) -> Result<Session, HttpResponse> {
    let s = require(gw, req).await?;
    if !csrf_ok(&s, req, form.get("csrf")) {
        return Err(page::forbidden(req, "csrf"));
    }
    if act && !s.may_act() {
        return Err(page::forbidden(req, "viewer"));
    }
    if act {
        let what = format!("{} {}", req.method(), req.path());
        let entry = Entry::new("console").actor(format!("operator:{}", s.operator)).detail(what);
        if let Err(e) = gw.store.audit(entry).await {
            tracing::warn!(error = %e, "could not record a console action in the audit log");
        }
    }
    Ok(s)
}
