//! The routing pages: the rules in force by section and the division lookup, the playground
//! (explain), and rule changes (a draft checked, its impact previewed page by page over the
//! stored traffic, applied or downloaded, the history with diffs and rollbacks). Every action
//! calls what `/v1/admin/rules`, `/v1/admin/divisions` and `/v1/admin/explain` call.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::Form;
use super::guard;
use super::page::{self, Page, html};
use super::session::Session;
use crate::clock::format_ms;
use crate::gateway::{Finding, Gateway, RulesError, current_rules, version};
use crate::http::rules::{self, ChangeSummary, ChangeView, DivisionView, RuleView};
use crate::model::{BodyKind, Sender};
use crate::pipeline::explain::{self, Outcome};
use crate::pipeline::impact::{Changed, Delta};
use crate::pipeline::{Records, impact::Period};
use crate::store::counts::hour_of;

const SECTION: &str = "/console/routing";

#[derive(Template)]
#[template(path = "routing.html", config = "src/http/console/askama.toml")]
struct RoutingPage {
    page: Page,
    version: String,
    writable: bool,
    tests: usize,
    sections: Vec<(String, Vec<RuleView>)>,
    division_code: String,
    division: Option<DivisionView>,
    division_error: Option<String>,
}

/// The rules in force, by section, and the division lookup (`?division=CODE`).
pub async fn rules_page(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let s = match guard::require(&gw, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let current = match rules::in_force(&gw) {
        Ok(c) => c,
        Err(e) => return page::unavailable(&req, &e.problem.message),
    };
    let division_code = Form::query(&req).text("division").trim().to_string();
    let (division, division_error) = if division_code.is_empty() {
        (None, None)
    } else {
        match rules::division(&gw, &division_code) {
            Ok(d) => (Some(d), None),
            Err(p) => (None, Some(p.message)),
        }
    };
    let page = Page::new(&req, &s, SECTION);
    html(
        StatusCode::OK,
        &RoutingPage {
            page,
            version: current.version[..12].to_string(),
            writable: current.writable,
            tests: current.tests,
            sections: rules::by_section(current.rules),
            division_code,
            division,
            division_error,
        },
    )
}

/// A problem of a draft, with the line it is on and a caret under its column.
struct ProblemView {
    at: String,
    message: String,
    excerpt: Option<String>,
    caret: String,
}

impl ProblemView {
    fn of(f: &Finding, text: &str) -> ProblemView {
        let at = f.at();
        let excerpt = (f.file == crate::config::files::RULES_FILE)
            .then(|| f.line.and_then(|l| text.lines().nth(l as usize - 1)).map(str::to_string))
            .flatten();
        let caret = match (&excerpt, f.column) {
            (Some(_), Some(c)) => format!("{}^", " ".repeat(c.saturating_sub(1) as usize)),
            _ => String::new(),
        };
        ProblemView { at, message: f.message.clone(), excerpt, caret }
    }
}

#[derive(Template)]
#[template(path = "draft.html", config = "src/http/console/askama.toml")]
struct DraftPage {
    page: Page,
    text: String,
    base: String,
    note: String,
    from: String,
    to: String,
    writable: bool,
    /// `Some((rules, tests))` once checked and fine.
    checked: Option<(usize, usize)>,
    problems: Vec<ProblemView>,
    warnings: Vec<ProblemView>,
    error: Option<String>,
    read_only: bool,
    preview: bool,
}

impl DraftPage {
    fn new(page: Page, gw: &Gateway, text: String, base: String) -> DraftPage {
        let writable = rules::writable(&gw.runtime().config.dir);
        DraftPage {
            page,
            text,
            base,
            note: String::new(),
            from: String::new(),
            to: String::new(),
            writable,
            checked: None,
            problems: Vec::new(),
            warnings: Vec::new(),
            error: None,
            read_only: false,
            preview: false,
        }
    }
}

/// The editor, with the rules in force.
pub async fn draft_form(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let s = match guard::require(&gw, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let text = match current_rules(&gw.runtime().config.dir) {
        Ok(t) => t,
        Err(e) => return page::unavailable(&req, &e.to_string()),
    };
    let base = version(&text);
    html(StatusCode::OK, &DraftPage::new(Page::new(&req, &s, SECTION), &gw, text, base))
}

/// The editor's buttons: `action` = `check`, `preview`, `apply` or `download`.
pub async fn draft_action(gw: web::Data<Gateway>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form = Form::parse(&body);
    let action = form.text("action");
    let s = match guard::require_form(&gw, &req, &form, action == "apply").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let text = form.text("rules").replace("\r\n", "\n");
    let mut d = DraftPage::new(Page::new(&req, &s, SECTION), &gw, text.clone(), form.text("base").to_string());
    d.note = form.text("note").to_string();
    d.from = form.text("from").to_string();
    d.to = form.text("to").to_string();
    let checked = rules::check(&gw, &text);
    d.problems = checked.problems.iter().map(|f| ProblemView::of(f, &text)).collect();
    d.warnings = checked.warnings.iter().map(|f| ProblemView::of(f, &text)).collect();
    if checked.ok {
        d.checked = Some((checked.rules, checked.tests));
    }
    match action {
        "preview" if checked.ok => match rules::period(&gw, Some(&d.from), Some(&d.to)) {
            Ok(_) => d.preview = true,
            Err(p) => d.error = Some(p.message),
        },
        "download" if checked.ok => {
            return HttpResponse::Ok()
                .insert_header((CONTENT_TYPE, "application/yaml; charset=utf-8"))
                .insert_header((CONTENT_DISPOSITION, "attachment; filename=\"rules.yaml\""))
                .insert_header(("x-content-type-options", "nosniff"))
                .body(text);
        }
        "apply" if checked.ok => {
            let note = Some(d.note.trim().to_string()).filter(|n| !n.is_empty());
            let by = format!("operator:{}", s.operator);
            match gw.apply_rules(&text, Some(&d.base), &by, note, None).await {
                Ok(applied) => return page::see_other(&format!("{SECTION}/changes/{}?done=applied", applied.change)),
                Err(RulesError::ReadOnly(_)) => d.read_only = true,
                Err(e) => d.error = Some(rules::refusal(e).problem.message),
            }
        }
        _ => {}
    }
    let status =
        if d.problems.is_empty() && d.error.is_none() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    html(status, &d)
}

#[derive(Template)]
#[template(path = "impact.html", config = "src/http/console/askama.toml")]
struct ImpactFragment<'a> {
    t: &'static super::text::Text,
    scanned: usize,
    total: i64,
    percent: i64,
    more: bool,
    vals: String,
    totals: Vec<(String, Delta)>,
    changed: Vec<Changed>,
    period: &'a str,
}

/// One page of a preview, as a fragment htmx puts in the draft page: the progress and the totals
/// so far (carried from page to page in the form), and the changed messages of this page
/// appended to the list. While there is more, the fragment asks for the next page itself.
pub async fn impact(gw: web::Data<Gateway>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form = Form::parse(&body);
    if let Err(r) = guard::require_form(&gw, &req, &form, false).await {
        return r;
    }
    let t = super::text::Lang::of(&req).text();
    let period = match rules::period(&gw, Some(form.text("from")), Some(form.text("to"))) {
        Ok(p) => p,
        Err(p) => return fragment_error(&p.message),
    };
    let text = form.text("rules").replace("\r\n", "\n");
    let before = form.text("before").parse::<i64>().ok();
    let page = match rules::preview(&gw, &text, period, before, 1000).await {
        Ok(p) => p,
        Err(e) => return fragment_error(&e.problem.message),
    };
    let mut totals: BTreeMap<String, Delta> = serde_json::from_str(form.text("totals")).unwrap_or_default();
    for (recipient, d) in &page.totals {
        let sum = totals.entry(recipient.clone()).or_default();
        sum.gained += d.gained;
        sum.lost += d.lost;
    }
    let scanned = form.text("scanned").parse::<usize>().unwrap_or(0) + page.scanned;
    // Counted once, on the first page, and carried from page to page like the totals.
    let total = match form.text("total").parse::<i64>() {
        Ok(t) => t,
        Err(_) => estimate(&gw, period).await,
    }
    .max(scanned as i64);
    let vals = serde_json::json!({
        "scanned": scanned.to_string(),
        "total": total.to_string(),
        "before": page.next.map(|n| n.to_string()).unwrap_or_default(),
        "totals": serde_json::to_string(&totals).unwrap_or_default(),
    })
    .to_string();
    let percent = if total == 0 { 100 } else { (scanned as i64 * 100 / total).min(100) };
    let span = format!("{} – {}", format_ms(period.from_ms), format_ms(period.to_ms));
    let fragment = ImpactFragment {
        t,
        scanned,
        total,
        percent: if page.next.is_some() { percent } else { 100 },
        more: page.next.is_some(),
        vals,
        totals: totals.into_iter().collect(),
        changed: page.changed,
        period: &span,
    };
    match fragment.render() {
        Ok(body) => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body),
        Err(e) => fragment_error(&e.to_string()),
    }
}

fn fragment_error(message: &str) -> HttpResponse {
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!("<div id=\"impact-progress\"><p class=\"error\" role=\"alert\">{escaped}</p></div>"))
}

/// About how many messages the period holds, from the hourly counters (never a scan).
async fn estimate(gw: &Gateway, period: Period) -> i64 {
    let (from, to) = (hour_of(period.from_ms), hour_of(period.to_ms));
    gw.store
        .counts(from)
        .await
        .map(|counts| counts.iter().filter(|c| c.hour <= to && c.outcome == "accepted").map(|c| c.n).sum())
        .unwrap_or(0)
}

#[derive(Template)]
#[template(path = "changes.html", config = "src/http/console/askama.toml")]
struct ChangesPage {
    page: Page,
    changes: Vec<ChangeSummary>,
}

pub async fn changes(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let s = match guard::require(&gw, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match gw.store.rule_changes(100).await {
        Ok(list) => html(
            StatusCode::OK,
            &ChangesPage { page: Page::new(&req, &s, SECTION), changes: list.iter().map(ChangeSummary::of).collect() },
        ),
        Err(e) => page::unavailable(&req, &e.to_string()),
    }
}

/// A line of a diff, with its kind for the stylesheet.
struct DiffLine {
    class: &'static str,
    text: String,
}

#[derive(Template)]
#[template(path = "change.html", config = "src/http/console/askama.toml")]
struct ChangePage {
    page: Page,
    c: ChangeSummary,
    diff: Vec<DiffLine>,
    done: String,
    error: Option<String>,
}

pub async fn change(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let s = match guard::require(&gw, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let done = Form::query(&req).text("done").to_string();
    show_change(&gw, &req, &s, &id, done, None).await
}

async fn show_change(
    gw: &Gateway,
    req: &HttpRequest,
    s: &Session,
    id: &str,
    done: String,
    error: Option<String>,
) -> HttpResponse {
    let Ok(id) = id.parse::<i64>() else { return page::not_found(req) };
    let c = match gw.store.rule_change(id).await {
        Ok(Some(c)) => c,
        Ok(None) => return page::not_found(req),
        Err(e) => return page::unavailable(req, &e.to_string()),
    };
    let view = ChangeView::of(c);
    let diff = view
        .diff
        .lines()
        .map(|l| DiffLine {
            class: match l.chars().next() {
                Some('+') if !l.starts_with("+++") => "add",
                Some('-') if !l.starts_with("---") => "del",
                Some('@') => "hunk",
                _ => "",
            },
            text: l.to_string(),
        })
        .collect();
    let status = if error.is_some() { StatusCode::CONFLICT } else { StatusCode::OK };
    html(status, &ChangePage { page: Page::new(req, s, SECTION), c: view.summary, diff, done, error })
}

pub async fn roll_back(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let s = match guard::require_form(&gw, &req, &form, true).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(n) = id.parse::<i64>() else { return page::not_found(&req) };
    match gw.roll_back_rules(n, &format!("operator:{}", s.operator)).await {
        Ok(applied) => page::see_other(&format!("{SECTION}/changes/{}?done=rolled_back", applied.change)),
        Err(e) => {
            let message = rules::refusal(e).problem.message;
            show_change(&gw, &req, &s, &id, String::new(), Some(message)).await
        }
    }
}

#[derive(Template)]
#[template(path = "playground.html", config = "src/http/console/askama.toml")]
struct PlaygroundPage {
    page: Page,
    sender: String,
    body: String,
    outcome: Option<Outcome>,
    message: String,
    error: Option<String>,
}

pub async fn playground(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let s = match guard::require(&gw, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let page = Page::new(&req, &s, SECTION);
    html(
        StatusCode::OK,
        &PlaygroundPage {
            page,
            sender: "ip_office:330100".into(),
            body: String::new(),
            outcome: None,
            message: String::new(),
            error: None,
        },
    )
}

/// Runs the pipeline on the pasted message, as `POST /v1/admin/explain` does: nothing stored.
pub async fn playground_run(gw: web::Data<Gateway>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form = Form::parse(&body);
    let s = match guard::require_form(&gw, &req, &form, false).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let page = Page::new(&req, &s, SECTION);
    let sender_text = form.text("sender").trim().to_string();
    let message_body = form.text("body").to_string();
    let mut p = PlaygroundPage {
        page,
        sender: sender_text.clone(),
        body: message_body.clone(),
        outcome: None,
        message: String::new(),
        error: None,
    };
    let sender: Sender = match sender_text.parse() {
        Ok(s) => s,
        Err(e) => {
            p.error = Some(e);
            return html(StatusCode::UNPROCESSABLE_ENTITY, &p);
        }
    };
    let kind = if message_body.contains("\"specversion\"") { BodyKind::CloudEvent } else { BodyKind::Native };
    let rt = gw.runtime();
    let records = Records { store: gw.store.as_ref(), now_ms: gw.clock.now_ms() };
    match explain::explain(&rt.config, &sender, kind, message_body.as_bytes(), Some(records)).await {
        Ok(outcome) => {
            p.message = outcome
                .message
                .as_ref()
                .map(|m| serde_json::to_string_pretty(m).unwrap_or_default())
                .unwrap_or_default();
            p.outcome = Some(outcome);
            html(StatusCode::OK, &p)
        }
        Err(usage) => {
            p.error = Some(usage);
            html(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
    }
}
