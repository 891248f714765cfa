//! The operators' console at `/console/`: server-rendered pages (askama templates) on the same
//! listener and TLS as the API, its assets embedded in the binary, a strict
//! Content-Security-Policy (no inline script or style), Chinese by default and English by a
//! switch. Everything it shows comes from the same functions as the JSON admin API
//! (`/v1/admin/...`), so a script can do whatever the console does. See docs/console.md.

mod agencies;
mod assets;
mod audit;
mod chart;
mod delivery;
mod form;
mod guard;
mod messages;
mod overview;
mod page;
mod replies;
mod routing;
mod session;
mod text;

use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::gateway::Gateway;

use form::Form;
use page::{html, see_other};
use session::NoSession;
use text::{Lang, Text};

/// Adds the console's routes to `cfg`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("", web::get().to(|| async { see_other("/console/") }))
            .route("/", web::get().to(overview::page))
            .route("/messages", web::get().to(messages::list))
            .route("/messages/{id}", web::get().to(messages::one))
            .route("/agencies", web::get().to(agencies::page))
            .route("/audit", web::get().to(audit::page))
            .route("/audit/verify", web::post().to(audit::verify))
            .route("/delivery", web::get().to(delivery::page))
            .route("/delivery/subscriptions/{id}/{action}", web::post().to(delivery::act))
            .route("/delivery/dead-letters/{id}/replay", web::post().to(delivery::replay_one))
            .route("/replies", web::get().to(replies::page))
            .route("/replies.csv", web::get().to(replies::csv))
            .route("/replies/{agency}", web::get().to(replies::agency))
            .route("/routing", web::get().to(routing::rules_page))
            .route("/routing/draft", web::get().to(routing::draft_form))
            .route("/routing/draft", web::post().to(routing::draft_action))
            .route("/routing/impact", web::post().to(routing::impact))
            .route("/routing/changes", web::get().to(routing::changes))
            .route("/routing/changes/{id}", web::get().to(routing::change))
            .route("/routing/changes/{id}/rollback", web::post().to(routing::roll_back))
            .route("/routing/playground", web::get().to(routing::playground))
            .route("/routing/playground", web::post().to(routing::playground_run))
            .route("/login", web::get().to(login_form))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/lang", web::get().to(language))
            .route("/assets/{file}", web::get().to(assets::get))
            .default_service(web::to(not_found)),
    );
}

#[derive(Template)]
#[template(path = "login.html", config = "src/http/console/askama.toml")]
struct Login<'a> {
    lang: Lang,
    t: &'a Text,
    failed: bool,
    next: String,
    /// The operator the connection's client certificate names, who may sign in with it.
    certificate: Option<String>,
}

/// Where to go after signing in: a console page, nothing else.
fn next_of(req: &HttpRequest) -> String {
    safe_next(Form::query(req).text("next"))
}

fn safe_next(next: &str) -> String {
    if next.starts_with("/console/") && !next.starts_with("/console//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/console/".into()
    }
}

async fn login_form(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let failed = req.query_string().contains("failed=1");
    let certificate = session::certificate_operator(&gw, &req);
    html(actix_web::http::StatusCode::OK, &Login { lang, t: lang.text(), failed, next: next_of(&req), certificate })
}

async fn login(gw: web::Data<Gateway>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form = Form::parse(&body);
    let next = safe_next(form.text("next"));
    let signed = if form.text("with") == "certificate" {
        session::sign_in_certificate(&gw, &req).await
    } else {
        session::sign_in(&gw, &req, form.text("token")).await
    };
    match signed {
        Ok(Some(cookie)) => {
            let mut r = see_other(&next);
            let _ = r.add_cookie(&cookie);
            r
        }
        Ok(None) => {
            let back = url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>();
            see_other(&format!("/console/login?failed=1&next={back}"))
        }
        Err(e) => page::unavailable(&req, &e.to_string()),
    }
}

async fn logout(gw: web::Data<Gateway>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let s = match session::current(&gw, &req).await {
        Ok(s) => s,
        Err(NoSession::SignIn) => return see_other("/console/login"),
        Err(NoSession::Store(e)) => return page::unavailable(&req, &e.to_string()),
    };
    if !session::csrf_ok(&s, &req, Form::parse(&body).get("csrf")) {
        return page::forbidden(&req, "csrf");
    }
    let cookie = session::sign_out(&gw, &req, &s).await;
    let mut r = see_other("/console/login");
    let _ = r.add_cookie(&cookie);
    r
}

/// Chooses the language (a cookie, a year long) and goes back.
async fn language(req: HttpRequest) -> HttpResponse {
    let q = Form::query(&req);
    let to = if q.text("to") == "en" { "en" } else { "zh" };
    let back = match q.text("back") {
        "/console/login" => "/console/login".to_string(),
        b => safe_next(b),
    };
    let cookie = actix_web::cookie::Cookie::build(text::COOKIE, to)
        .path("/console")
        .same_site(actix_web::cookie::SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish();
    let mut r = see_other(&back);
    let _ = r.add_cookie(&cookie);
    r
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    page::not_found(&req)
}
