//! What every console page shares: its frame (the navigation, who is signed in, the language
//! switch, the CSRF token htmx sends), the security headers of every HTML answer, and the
//! error pages.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::session::Session;
use super::text::{Lang, Text};

/// The Content-Security-Policy of every console page: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A link of the navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The frame of a page.
pub struct Page {
    pub lang: Lang,
    pub t: &'static Text,
    pub title: &'static str,
    pub path: String,
    pub operator: String,
    pub role_label: &'static str,
    pub csrf: String,
    /// Whether the operator may act (not a viewer): the page offers its actions.
    pub may_act: bool,
    pub nav: Vec<NavItem>,
}

impl Page {
    /// The frame of the page at `path` (one of the navigation's), for `session`.
    pub fn new(req: &HttpRequest, session: &Session, current: &'static str) -> Page {
        let lang = Lang::of(req);
        let t = lang.text();
        let items: [(&'static str, &'static str); 7] = [
            ("/console/", t.nav_overview),
            ("/console/messages", t.nav_messages),
            ("/console/routing", t.nav_routing),
            ("/console/delivery", t.nav_delivery),
            ("/console/replies", t.nav_replies),
            ("/console/agencies", t.nav_agencies),
            ("/console/audit", t.nav_audit),
        ];
        let title = items.iter().find(|(h, _)| *h == current).map_or(t.title, |(_, l)| *l);
        Page {
            lang,
            t,
            title,
            path: req.uri().path_and_query().map_or("/console/".into(), |p| p.as_str().to_string()),
            operator: session.operator.clone(),
            role_label: if session.may_act() { t.role_operator } else { t.role_viewer },
            csrf: session.csrf.clone(),
            may_act: session.may_act(),
            nav: items.iter().map(|(href, label)| NavItem { href, label, current: *href == current }).collect(),
        }
    }
}

/// An HTML answer with the console's security headers.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => {
            let mut r = HttpResponse::build(status);
            r.insert_header((CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")))
                .insert_header(("content-security-policy", CSP))
                .insert_header(("x-content-type-options", "nosniff"))
                .insert_header(("referrer-policy", "no-referrer"))
                .insert_header(("x-frame-options", "DENY"))
                .insert_header((CACHE_CONTROL, "no-store"));
            r.body(body)
        }
        Err(e) => {
            tracing::error!(error = %e, "a console page could not be rendered: a bug");
            HttpResponse::InternalServerError().content_type("text/plain; charset=utf-8").body("internal error")
        }
    }
}

#[derive(Template)]
#[template(path = "error.html", config = "src/http/console/askama.toml")]
struct ErrorPage<'a> {
    lang: Lang,
    t: &'a Text,
    heading: &'a str,
    detail: &'a str,
}

fn error(req: &HttpRequest, status: StatusCode, heading: &str, detail: &str) -> HttpResponse {
    let lang = Lang::of(req);
    html(status, &ErrorPage { lang, t: lang.text(), heading, detail })
}

pub fn not_found(req: &HttpRequest) -> HttpResponse {
    let t = Lang::of(req).text();
    error(req, StatusCode::NOT_FOUND, t.not_found, "")
}

/// A refusal: `why` is `csrf` (the form's token is missing or wrong) or `viewer` (a viewer may
/// not act).
pub fn forbidden(req: &HttpRequest, why: &str) -> HttpResponse {
    let t = Lang::of(req).text();
    let detail = if why == "csrf" { t.csrf_refused } else { t.viewer_refused };
    error(req, StatusCode::FORBIDDEN, t.forbidden, detail)
}

/// An action that could not be done, and why.
pub fn refused(req: &HttpRequest, status: StatusCode, detail: &str) -> HttpResponse {
    let t = Lang::of(req).text();
    error(req, status, t.not_done, detail)
}

pub fn unavailable(req: &HttpRequest, detail: &str) -> HttpResponse {
    let t = Lang::of(req).text();
    error(req, StatusCode::SERVICE_UNAVAILABLE, t.unavailable, detail)
}

/// To another page, after a form (303).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, to.to_string()))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}
