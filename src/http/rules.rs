//! The routing rules for operators: the rules in force (`GET /v1/admin/rules`), a draft checked
//! (`POST /v1/admin/rules/check`) and previewed over the stored traffic of a period
//! (`POST /v1/admin/rules/preview`), applied (`PUT /v1/admin/rules`), the history of changes
//! and rollbacks (`/v1/admin/rules/changes...`), and the division table
//! (`GET /v1/admin/divisions/{code}`). The console's routing page calls the same functions.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth;
use super::error::ApiError;
use crate::clock::{format_ms, parse_time};
use crate::config::files::RULES_FILE;
use crate::gateway::{Applied, Finding, Gateway, RulesError, current_rules, findings, version};
use crate::model::{Code, Detail, Division, Problem};
use crate::pipeline::impact::{self, ImpactPage, Period};
use crate::route::rules::Rule;
use crate::store::RuleChange;

/// A rule as the console lists it.
#[derive(Serialize, ToSchema)]
pub struct RuleView {
    pub name: String,
    /// The section of the opinion it implements (二, 七, 十一–十四, ...).
    pub section: Option<String>,
    pub description: Option<String>,
    /// The message types it applies to (all when absent).
    pub types: Option<Vec<String>>,
    /// The kinds of sender it applies to (all when absent).
    pub senders: Option<Vec<String>>,
    /// Its CEL condition.
    pub when: Option<String>,
    pub to: Vec<String>,
    pub copy: Vec<String>,
    /// Where its name is written in the rules (line, 1-based).
    pub line: u64,
}

impl RuleView {
    fn of(rule: &Rule) -> RuleView {
        let mut types: Option<Vec<String>> = rule.types.as_ref().map(|t| t.iter().map(|s| s.to_string()).collect());
        if let Some(t) = types.as_mut() {
            t.sort();
        }
        RuleView {
            name: rule.name.clone(),
            section: rule.section.clone(),
            description: rule.description.clone(),
            types,
            senders: rule.senders.as_ref().map(|s| s.iter().map(|k| k.to_string()).collect()),
            when: rule.when.as_ref().map(|c| c.source.clone()),
            to: rule.to.iter().map(ToString::to_string).collect(),
            copy: rule.copy.iter().map(ToString::to_string).collect(),
            line: rule.at.line(),
        }
    }
}

/// The rules in force.
#[derive(Serialize, ToSchema)]
pub struct RulesInForce {
    /// SHA-256 of `rules.yaml`: the `base` of a change drafted from it.
    pub version: String,
    /// `rules.yaml` as it is.
    pub text: String,
    /// Whether a change can be applied here (false: the configuration directory is read-only).
    pub writable: bool,
    /// The routing tests every change must pass (`rules.test.yaml`).
    pub tests: usize,
    pub rules: Vec<RuleView>,
}

/// The rules in force.
pub fn in_force(gw: &Gateway) -> Result<RulesInForce, ApiError> {
    let rt = gw.runtime();
    let dir = &rt.config.dir;
    let text =
        current_rules(dir).map_err(|e| Problem::new(Code::Internal, format!("cannot read {RULES_FILE}: {e}")))?;
    Ok(RulesInForce {
        version: version(&text),
        text,
        writable: writable(dir),
        tests: rt.config.rule_tests,
        rules: rt.config.router.rules().iter().map(RuleView::of).collect(),
    })
}

/// Whether a rule change can be written to the configuration directory `dir` (false for a
/// read-only mount such as a ConfigMap): a file is made there and removed.
pub fn writable(dir: &std::path::Path) -> bool {
    tempfile::Builder::new().prefix(".xietong-probe.").tempfile_in(dir).is_ok()
}

/// The order of the opinion's sections (二 before 十, 十一–十四 after 十).
pub fn section_order(section: &str) -> u32 {
    let digit = |c: char| "一二三四五六七八九".find(c).map(|i| i as u32 / 3 + 1);
    let mut chars = section.chars();
    match (chars.next(), chars.next()) {
        (Some('十'), Some(c)) => 10 + digit(c).unwrap_or(0),
        (Some('十'), None) => 10,
        (Some(c), Some('十')) => digit(c).unwrap_or(0) * 10 + chars.next().and_then(digit).unwrap_or(0),
        (Some(c), _) => digit(c).unwrap_or(100),
        (None, _) => 100,
    }
}

/// A draft of `rules.yaml`.
#[derive(Deserialize, ToSchema)]
pub struct Draft {
    /// The whole of `rules.yaml` as it would be.
    pub rules: String,
}

/// What `check` says of a draft.
#[derive(Serialize, ToSchema)]
pub struct Checked {
    /// True when it checks and passes every routing test: it can be applied.
    pub ok: bool,
    /// Each problem at its file, line and column.
    pub problems: Vec<Finding>,
    /// What checks but can never work as written.
    pub warnings: Vec<Finding>,
    pub rules: usize,
    pub tests: usize,
}

/// Checks a draft: what `xietong check` says of the configuration with it.
pub fn check(gw: &Gateway, text: &str) -> Checked {
    match gw.check_rules(text) {
        Ok(config) => Checked {
            ok: true,
            problems: Vec::new(),
            warnings: findings(&config.dir, config.warnings.clone()),
            rules: config.router.rules().len(),
            tests: config.rule_tests,
        },
        Err(problems) => Checked { ok: false, problems, warnings: Vec::new(), rules: 0, tests: 0 },
    }
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| Problem::new(Code::BadRequest, format!("the body: {e}")))
}

/// The problem of a refused change.
pub fn refusal(e: RulesError) -> ApiError {
    match e {
        RulesError::Invalid(problems) => Problem::new(
            Code::InvalidConfiguration,
            format!("the draft has {} problem(s); the rules in force keep serving", problems.len()),
        )
        .with_details(problems.iter().map(detail).collect())
        .into(),
        RulesError::Stale { current } => Problem::new(
            Code::Conflict,
            format!("{RULES_FILE} changed since the draft was made (it is now version {current}): draft again from it"),
        )
        .into(),
        RulesError::Unchanged => Problem::new(Code::Conflict, "the draft is the rules in force: nothing to apply").into(),
        RulesError::ReadOnly(why) => Problem::new(
            Code::ReadOnlyConfiguration,
            format!(
                "the configuration directory cannot be written ({why}); take the checked file through the deployment's own change process"
            ),
        )
        .into(),
        RulesError::NoSuchChange(id) => Problem::new(Code::NotFound, format!("no rule change {id}")).into(),
        RulesError::Store(e) => e.into(),
    }
}

fn detail(f: &Finding) -> Detail {
    Detail::new(f.at(), f.message.clone())
}

/// The routing rules in force
///
/// `rules.yaml` as it is, its version, each rule compiled, and whether a change can be applied
/// here.
#[utoipa::path(get, path = "/v1/admin/rules", operation_id = "rules", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The rules in force", body = RulesInForce),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn get(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    Ok(HttpResponse::Ok().json(in_force(&gw)?))
}

/// Check a draft of the rules
///
/// The configuration as it would be with the draft as `rules.yaml`: every problem at its line
/// and column, and the routing tests of `rules.test.yaml` run against it. Nothing changes.
#[utoipa::path(post, path = "/v1/admin/rules/check", operation_id = "check_rules", tag = "admin", security(("bearer" = [])),
    request_body = Draft,
    responses(
        (status = 200, description = "What check says (`ok` false: problems)", body = Checked),
        (status = 400, description = "The body is not a draft"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn check_draft(gw: web::Data<Gateway>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let draft: Draft = json(&body)?;
    Ok(HttpResponse::Ok().json(check(&gw, &draft.rules)))
}

/// A draft to preview over stored messages.
#[derive(Deserialize, ToSchema)]
pub struct PreviewRequest {
    /// The whole of `rules.yaml` as it would be.
    pub rules: String,
    /// Messages received from this day (YYYY-MM-DD, Beijing) or time (RFC 3339); default 7 days
    /// ago.
    pub from: Option<String>,
    /// Received before this day or time; default now.
    pub to: Option<String>,
    /// The `next` of the previous page.
    pub before: Option<i64>,
    /// Messages per page, 1 to 5000 (default 1000).
    pub limit: Option<usize>,
}

/// The period of a preview: `from` (default 7 days before now) to `to` (default now).
pub fn period(gw: &Gateway, from: Option<&str>, to: Option<&str>) -> Result<Period, Problem> {
    let now = gw.clock.now_ms();
    let time = |t: Option<&str>, name: &str, default: i64| {
        t.map(str::trim)
            .filter(|t| !t.is_empty())
            .map(parse_time)
            .transpose()
            .map(|t| t.unwrap_or(default))
            .map_err(|e| Problem::new(Code::BadRequest, format!("{name}: {e}")))
    };
    let from_ms = time(from, "from", now - 7 * 24 * 3600 * 1000)?;
    let to_ms = time(to, "to", now + 1)?;
    if from_ms >= to_ms {
        return Err(Problem::new(
            Code::BadRequest,
            format!("from ({}) is not before to ({})", format_ms(from_ms), format_ms(to_ms)),
        ));
    }
    Ok(Period { from_ms, to_ms })
}

/// One page of a preview of `draft` over `period`.
pub async fn preview(
    gw: &Gateway,
    draft: &str,
    period: Period,
    before: Option<i64>,
    limit: usize,
) -> Result<ImpactPage, ApiError> {
    let config = gw.check_rules(draft).map_err(|p| refusal(RulesError::Invalid(p)))?;
    let current = gw.runtime();
    Ok(impact::page(gw.store.as_ref(), &current.config.router, &config.router, period, before, limit).await?)
}

/// Preview a draft over stored traffic
///
/// Goes through the messages stored in a period (newest first, a page at a time) and lists every
/// one whose recipients the draft changes, before and after, with per-recipient totals for the
/// page. Both sides are routed now, so the difference is the draft's. Pass `next` as `before`
/// for the next page.
#[utoipa::path(post, path = "/v1/admin/rules/preview", operation_id = "preview_rules", tag = "admin", security(("bearer" = [])),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "One page of the preview", body = ImpactPage),
        (status = 400, description = "The body or a time is malformed"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
        (status = 422, description = "The draft does not check"),
    ))]
pub async fn preview_draft(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let p: PreviewRequest = json(&body)?;
    let period = period(&gw, p.from.as_deref(), p.to.as_deref())?;
    let page = preview(&gw, &p.rules, period, p.before, p.limit.unwrap_or(1000).clamp(1, 5000)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A change to apply.
#[derive(Deserialize, ToSchema)]
pub struct Change {
    /// The whole of `rules.yaml` as it will be.
    pub rules: String,
    /// The `version` of the rules the draft was made from: refused (409) if they changed since.
    pub base: String,
    /// Why (kept in the history).
    pub note: Option<String>,
}

/// Apply a change to the rules
///
/// Checked as `check` does (422 with every problem), written atomically, reloaded on this
/// instance and on every instance sharing the store, kept in the history and the audit log.
/// Where the configuration directory is read-only, 409 `read_only_configuration`.
#[utoipa::path(put, path = "/v1/admin/rules", operation_id = "apply_rules", tag = "admin", security(("bearer" = [])),
    request_body = Change,
    responses(
        (status = 200, description = "Applied", body = Applied),
        (status = 400, description = "The body is not a change"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token, or a viewer's"),
        (status = 409, description = "The rules changed since the draft, the draft changes nothing, or the configuration is read-only"),
        (status = 422, description = "The draft does not check"),
    ))]
pub async fn apply(gw: web::Data<Gateway>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let operator = auth::acting(&gw, &req)?;
    let change: Change = json(&body)?;
    let note = change.note.filter(|n| !n.trim().is_empty());
    let applied = gw
        .apply_rules(&change.rules, Some(&change.base), &format!("operator:{operator}"), note, None)
        .await
        .map_err(refusal)?;
    Ok(HttpResponse::Ok().json(applied))
}

/// A change as the history lists it.
#[derive(Serialize, ToSchema)]
pub struct ChangeSummary {
    pub id: i64,
    pub at: String,
    pub by: String,
    pub reverts: Option<i64>,
    pub note: Option<String>,
    /// Versions of `rules.yaml` before and after.
    pub before_version: String,
    pub after_version: String,
    /// Lines added and removed.
    pub added: usize,
    pub removed: usize,
}

impl ChangeSummary {
    pub fn of(c: &RuleChange) -> ChangeSummary {
        let diff = similar::TextDiff::from_lines(&c.before, &c.after);
        let (mut added, mut removed) = (0, 0);
        for change in diff.iter_all_changes() {
            match change.tag() {
                similar::ChangeTag::Insert => added += 1,
                similar::ChangeTag::Delete => removed += 1,
                similar::ChangeTag::Equal => {}
            }
        }
        ChangeSummary {
            id: c.id,
            at: c.at.clone(),
            by: c.by.clone(),
            reverts: c.reverts,
            note: c.note.clone(),
            before_version: version(&c.before),
            after_version: version(&c.after),
            added,
            removed,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Changes {
    pub changes: Vec<ChangeSummary>,
}

/// A change whole.
#[derive(Serialize, ToSchema)]
pub struct ChangeView {
    #[serde(flatten)]
    pub summary: ChangeSummary,
    /// A unified diff of `rules.yaml`.
    pub diff: String,
    pub before: String,
    pub after: String,
}

impl ChangeView {
    pub fn of(c: RuleChange) -> ChangeView {
        let diff = similar::TextDiff::from_lines(&c.before, &c.after)
            .unified_diff()
            .context_radius(3)
            .header(&format!("{RULES_FILE} (before)"), &format!("{RULES_FILE} (change {})", c.id))
            .to_string();
        ChangeView { summary: ChangeSummary::of(&c), diff, before: c.before, after: c.after }
    }
}

/// The history of rule changes
///
/// Newest first: who, when, why, how many lines.
#[utoipa::path(get, path = "/v1/admin/rules/changes", operation_id = "rule_changes", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The changes", body = Changes),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn changes(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let changes = gw.store.rule_changes(100).await?;
    Ok(HttpResponse::Ok().json(Changes { changes: changes.iter().map(ChangeSummary::of).collect() }))
}

fn change_id(id: &str) -> Result<i64, Problem> {
    id.parse().map_err(|_| Problem::new(Code::BadRequest, "a rule change's id is a number"))
}

/// One rule change
///
/// With the rules before and after and their diff.
#[utoipa::path(get, path = "/v1/admin/rules/changes/{id}", operation_id = "rule_change", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The change's id")),
    responses(
        (status = 200, description = "The change", body = ChangeView),
        (status = 400, description = "Not a change's id"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
        (status = 404, description = "No such change"),
    ))]
pub async fn change(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let id = change_id(&id)?;
    match gw.store.rule_change(id).await? {
        Some(c) => Ok(HttpResponse::Ok().json(ChangeView::of(c))),
        None => Err(refusal(RulesError::NoSuchChange(id))),
    }
}

/// Roll back a rule change
///
/// Applies the rules as they were before the change (checked, like any change; recorded as a
/// change that reverts it).
#[utoipa::path(post, path = "/v1/admin/rules/changes/{id}/rollback", operation_id = "roll_back_rules", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The change's id")),
    responses(
        (status = 200, description = "Rolled back", body = Applied),
        (status = 400, description = "Not a change's id"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token, or a viewer's"),
        (status = 404, description = "No such change"),
        (status = 409, description = "The rules are already as they were before it, or the configuration is read-only"),
        (status = 422, description = "The earlier rules no longer check (the rest of the configuration changed)"),
    ))]
pub async fn roll_back(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let operator = auth::acting(&gw, &req)?;
    let id = change_id(&id)?;
    let applied = gw.roll_back_rules(id, &format!("operator:{operator}")).await.map_err(refusal)?;
    Ok(HttpResponse::Ok().json(applied))
}

/// A division of the GB/T 2260 table as routing sees it.
#[derive(Serialize, ToSchema)]
pub struct DivisionView {
    pub code: String,
    pub name: String,
    /// national, province, prefecture or county.
    pub level: String,
    /// A grouping row (市辖区, 县): no agency sits there.
    pub grouping: bool,
    /// The superior authority: the nearest parent that is not a grouping row.
    pub superior: Option<DivisionRef>,
    /// The chain of superiors up to national.
    pub superiors: Vec<DivisionRef>,
    /// The key regions (section 十) it belongs to, with their hubs.
    pub regions: Vec<RegionRef>,
    /// The agencies configured at it.
    pub agencies: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DivisionRef {
    pub code: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct RegionRef {
    pub key: String,
    pub name: String,
    pub hub: String,
}

/// The division `code`, or why there is none.
pub fn division(gw: &Gateway, code: &str) -> Result<DivisionView, Problem> {
    let d = Division::parse(code.trim()).map_err(|e: String| {
        Problem::new(Code::BadRequest, e).with_details(vec![Detail::new("", "a six-digit GB/T 2260 code")])
    })?;
    let rt = gw.runtime();
    let divisions = &rt.config.router.divisions;
    let entry =
        divisions.get(&d).ok_or_else(|| Problem::new(Code::NotFound, format!("{d} is not in the division table")))?;
    let named = |c: Division| DivisionRef {
        code: c.to_string(),
        name: divisions.get(&c).map(|e| e.name.clone()).unwrap_or_default(),
    };
    let mut agencies: Vec<String> =
        rt.config.agencies.iter().filter(|a| a.id.division == d).map(|a| a.id.to_string()).collect();
    agencies.sort();
    Ok(DivisionView {
        code: d.to_string(),
        name: entry.name.clone(),
        level: entry.level.to_string(),
        grouping: entry.grouping,
        superior: divisions.superior(&d).map(named),
        superiors: divisions.superiors(&d).into_iter().map(named).collect(),
        regions: rt
            .config
            .router
            .regions
            .iter()
            .filter(|r| r.contains(&d))
            .map(|r| RegionRef { key: r.key.clone(), name: r.name.clone(), hub: format!("hub:{}", r.key) })
            .collect(),
        agencies,
    })
}

/// A division of the table
///
/// Its name and level, its superiors, the key regions it belongs to and their hubs, and the
/// agencies configured at it.
#[utoipa::path(get, path = "/v1/admin/divisions/{code}", operation_id = "division", tag = "admin", security(("bearer" = [])),
    params(("code" = String, Path, description = "A six-digit GB/T 2260 code")),
    responses(
        (status = 200, description = "The division", body = DivisionView),
        (status = 400, description = "Not a division code"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
        (status = 404, description = "Not in the table"),
    ))]
pub async fn get_division(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    Ok(HttpResponse::Ok().json(division(&gw, &code)?))
}

/// Rules grouped by the opinion's section, in the opinion's order (rules without one last).
pub fn by_section(rules: Vec<RuleView>) -> Vec<(String, Vec<RuleView>)> {
    let mut groups: BTreeMap<(u32, String), Vec<RuleView>> = BTreeMap::new();
    for r in rules {
        let section = r.section.clone().unwrap_or_default();
        groups.entry((if section.is_empty() { 1000 } else { section_order(&section) }, section)).or_default().push(r);
    }
    groups.into_iter().map(|((_, s), rules)| (s, rules)).collect()
}

#[cfg(test)]
#[test]
fn sections_sort_in_the_opinions_order() {
    let mut s = vec!["十一–十四", "十", "二", "十七", "七", "九", "三十二"];
    s.sort_by_key(|s| section_order(s));
    assert_eq!(s, ["二", "七", "九", "十", "十一–十四", "十七", "三十二"]);
}
