//! Signing in to the console: an operator's token (or a client certificate mapped to an
//! operator) opens a session kept in the store (its id's hash only), carried by an HttpOnly,
//! SameSite=Strict cookie (Secure under TLS) and ended by sign-out or idle time. Every
//! state-changing request carries the session's CSRF token (a form field, or the
//! `X-CSRF-Token` header htmx sends). Sign-ins, failed sign-ins and sign-outs go into the audit
//! chain; so does every console action, by the middleware that audits admin actions.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::audit::Entry;
use crate::config::operators::Role;
use crate::gateway::Gateway;
use crate::store::SessionRow;

/// The cookie that carries the session id.
pub const COOKIE: &str = "xietong_session";

/// A signed-in operator.
#[derive(Clone, Debug)]
pub struct Session {
    pub operator: String,
    pub role: Role,
    pub csrf: String,
    id_sha256: String,
}

impl Session {
    pub fn may_act(&self) -> bool {
        self.role == Role::Operator
    }
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Why there is no session.
pub enum NoSession {
    /// Not signed in, or the session expired: sign in again.
    SignIn,
    /// The store could not be read.
    Store(crate::store::StoreError),
}

/// The session the request's cookie names, its idle time moved on.
pub async fn current(gw: &Gateway, req: &HttpRequest) -> Result<Session, NoSession> {
    let Some(cookie) = req.cookie(COOKIE) else { return Err(NoSession::SignIn) };
    let id_sha256 = sha256(cookie.value());
    let now = gw.clock.now_ms();
    let row = gw.store.session(&id_sha256, now).await.map_err(NoSession::Store)?.ok_or(NoSession::SignIn)?;
    let rt = gw.runtime();
    // The role is the one in force: a changed operators.yaml applies to open sessions.
    let Some(role) = rt.config.operators.role(&row.operator) else { return Err(NoSession::SignIn) };
    let idle = rt.config.settings.console.idle_timeout.as_millis() as i64;
    // Moved at most once a minute, so reading pages does not write at every request.
    if row.expires_ms - now < idle - 60_000 {
        gw.store.touch_session(&id_sha256, now + idle).await.map_err(NoSession::Store)?;
    }
    Ok(Session { operator: row.operator, role, csrf: row.csrf, id_sha256 })
}

/// Signs in with `token`: the session's cookie, or `None` (and an audit record) when the token is
/// no operator's.
pub async fn sign_in(
    gw: &Gateway,
    req: &HttpRequest,
    token: &str,
) -> Result<Option<Cookie<'static>>, crate::store::StoreError> {
    let rt = gw.runtime();
    let Some(operator) = rt.config.operators.authenticate(token.trim()).map(str::to_string) else {
        audit(gw, Entry::new("console_sign_in").code("refused").detail("a token that is no operator's")).await;
        return Ok(None);
    };
    open(gw, req, &operator, "token").await.map(Some)
}

/// Signs in with the client certificate of the connection (mutual TLS), when it is an
/// operator's: the session's cookie, or `None` (and an audit record).
pub async fn sign_in_certificate(
    gw: &Gateway,
    req: &HttpRequest,
) -> Result<Option<Cookie<'static>>, crate::store::StoreError> {
    let rt = gw.runtime();
    let Some(operator) = crate::http::auth::operator_certificate(&rt.config.operators, req).map(str::to_string) else {
        audit(gw, Entry::new("console_sign_in").code("refused").detail("a certificate that is no operator's")).await;
        return Ok(None);
    };
    open(gw, req, &operator, "certificate").await.map(Some)
}

/// The operator whose client certificate the connection presents, if any.
pub fn certificate_operator(gw: &Gateway, req: &HttpRequest) -> Option<String> {
    crate::http::auth::operator_certificate(&gw.runtime().config.operators, req).map(str::to_string)
}

/// Opens a session for `operator`, who proved who they are by `how`.
async fn open(
    gw: &Gateway,
    req: &HttpRequest,
    operator: &str,
    how: &str,
) -> Result<Cookie<'static>, crate::store::StoreError> {
    let rt = gw.runtime();
    let operator = operator.to_string();
    let role = rt.config.operators.role(&operator).unwrap_or(Role::Viewer);
    let id = random_token();
    let idle = rt.config.settings.console.idle_timeout.as_millis() as i64;
    let row = SessionRow {
        id_sha256: sha256(&id),
        operator: operator.clone(),
        role: role.as_str().to_string(),
        csrf: random_token(),
        expires_ms: gw.clock.now_ms() + idle,
    };
    gw.store.create_session(row).await?;
    let entry = Entry::new("console_sign_in").actor(format!("operator:{operator}")).code(role.as_str()).detail(how);
    audit(gw, entry).await;
    Ok(cookie(req, id, None))
}

/// Ends the session; the cookie that clears it.
pub async fn sign_out(gw: &Gateway, req: &HttpRequest, session: &Session) -> Cookie<'static> {
    if let Err(e) = gw.store.end_session(&session.id_sha256).await {
        tracing::warn!(error = %e, "could not end a console session");
    }
    audit(gw, Entry::new("console_sign_out").actor(format!("operator:{}", session.operator))).await;
    cookie(req, String::new(), Some(CookieDuration::ZERO))
}

fn cookie(req: &HttpRequest, value: String, max_age: Option<CookieDuration>) -> Cookie<'static> {
    let secure = req.connection_info().scheme() == "https";
    let mut c =
        Cookie::build(COOKIE, value).path("/console").http_only(true).same_site(SameSite::Strict).secure(secure);
    if let Some(age) = max_age {
        c = c.max_age(age);
    }
    c.finish()
}

async fn audit(gw: &Gateway, entry: Entry) {
    if let Err(e) = gw.store.audit(entry).await {
        tracing::warn!(error = %e, "could not record a console sign-in in the audit log");
    }
}

/// Whether a state-changing request carries the session's CSRF token (form field `csrf`, or the
/// `X-CSRF-Token` header).
pub fn csrf_ok(session: &Session, req: &HttpRequest, form_token: Option<&str>) -> bool {
    let header = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
    let given = form_token.or(header).unwrap_or_default();
    !given.is_empty() && constant_time_eq(given.as_bytes(), session.csrf.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// To the sign-in page, coming back to `to` afterwards.
pub fn to_sign_in(to: &str) -> HttpResponse {
    let back = url::form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>();
    HttpResponse::SeeOther().insert_header((LOCATION, format!("/console/login?next={back}"))).finish()
}
