//! The agency directory for operators (`GET /v1/admin/agencies`): every configured agency and
//! hub with its kind, level, division, key regions, format, authentication, clearance and
//! liaison, and its traffic: accepted and refused in the last 24 hours (from the hourly
//! counters) and its last message (from the sender index).

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth;
use super::error::ApiError;
use crate::config::Liaison;
use crate::gateway::Gateway;
use crate::model::{Code, Problem};
use crate::store::MessageQuery;
use crate::store::counts::hour_of;

/// An agency or hub as the directory lists it.
#[derive(Serialize, ToSchema)]
pub struct Entry {
    /// `KIND:DIVISION`, or `hub:REGION`.
    pub id: String,
    pub name: String,
    /// ip_office, procuratorate, public_security, court, or hub.
    pub kind: String,
    /// national, province, prefecture or county (none for a hub).
    pub level: Option<String>,
    /// The division's name in the table.
    pub division_name: Option<String>,
    /// The key regions it belongs to (a hub: its own).
    pub regions: Vec<String>,
    /// The source format of its native messages (none: canonical events only).
    pub format: Option<String>,
    /// token, certificate or both.
    pub auth: String,
    pub clearance: Option<String>,
    pub liaison: Option<Liaison>,
    pub accepted_24h: i64,
    pub refused_24h: i64,
    pub last_message_at: Option<String>,
    /// When the newest client certificate it presented to this instance expires, and in how many
    /// days (absent: it has not presented one since this instance started).
    pub certificate_expires_at: Option<String>,
    pub certificate_days_left: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Directory {
    /// How many match; at most `limit` are listed.
    pub matching: usize,
    pub agencies: Vec<Entry>,
}

#[derive(Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectoryQuery {
    /// Only this kind (or `hub`).
    pub kind: Option<String>,
    /// Only this level.
    pub level: Option<String>,
    /// Only agencies in this key region.
    pub region: Option<String>,
    /// Part of the id or the name.
    pub q: Option<String>,
    /// At most this many (1 to 1000, default 200).
    pub limit: Option<usize>,
}

/// The agencies and hubs that match, by id.
pub async fn directory(gw: &Gateway, query: &DirectoryQuery) -> Result<Directory, ApiError> {
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let rt = gw.runtime();
    let config = &rt.config;
    let router = &config.router;
    if given(&query.region).is_some_and(|r| router.regions.get(r).is_none()) {
        return Err(Problem::new(Code::BadRequest, "region: a region of regions.yaml").into());
    }
    let mut all = Vec::new();
    for a in config.agencies.iter() {
        let entry = router.divisions.get(&a.id.division);
        all.push(Entry {
            id: a.id.to_string(),
            name: a.name.clone(),
            kind: a.id.kind.to_string(),
            level: entry.map(|e| e.level.to_string()),
            division_name: entry.map(|e| e.name.clone()),
            regions: router.regions.iter().filter(|r| r.contains(&a.id.division)).map(|r| r.key.clone()).collect(),
            format: a.format.clone(),
            auth: a.auth.as_str().to_string(),
            clearance: a.clearance.map(|c| c.to_string()),
            liaison: a.liaison.clone(),
            accepted_24h: 0,
            refused_24h: 0,
            last_message_at: None,
            certificate_expires_at: None,
            certificate_days_left: None,
        });
    }
    for (key, _) in config.agencies.hubs() {
        let Some(hub) = config.agencies.hub(key) else { continue };
        all.push(Entry {
            id: format!("hub:{key}"),
            name: hub.name.clone(),
            kind: "hub".into(),
            level: None,
            division_name: None,
            regions: vec![key.clone()],
            format: None,
            auth: "token".into(),
            clearance: None,
            liaison: hub.liaison.clone(),
            accepted_24h: 0,
            refused_24h: 0,
            last_message_at: None,
            certificate_expires_at: None,
            certificate_days_left: None,
        });
    }
    let text = given(&query.q).map(str::to_lowercase);
    all.retain(|e| {
        given(&query.kind).is_none_or(|k| e.kind == k)
            && given(&query.level).is_none_or(|l| e.level.as_deref() == Some(l))
            && given(&query.region).is_none_or(|r| e.regions.iter().any(|x| x == r))
            && text.as_ref().is_none_or(|t| e.id.to_lowercase().contains(t) || e.name.to_lowercase().contains(t))
    });
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let matching = all.len();
    all.truncate(query.limit.unwrap_or(200).clamp(1, 1000));
    // Traffic: the hourly counters of the last 24 hours, then each listed sender's last message.
    let now = gw.clock.now_ms();
    let mut traffic: HashMap<String, (i64, i64)> = HashMap::new();
    for c in gw.store.counts(hour_of(now) - 23).await? {
        let t = traffic.entry(c.sender).or_default();
        match c.outcome.as_str() {
            "accepted" => t.0 += c.n,
            "refused" => t.1 += c.n,
            _ => {}
        }
    }
    // Each agency's newest certificate among those presented to this instance.
    let mut expiry: HashMap<String, i64> = HashMap::new();
    for peer in gw.certificates.all() {
        if let Some(agency) = config.agencies.by_certificate(&peer) {
            let newest = expiry.entry(agency.id.to_string()).or_insert(peer.not_after_ms);
            *newest = (*newest).max(peer.not_after_ms);
        }
    }
    for e in &mut all {
        if let Some(not_after_ms) = expiry.get(&e.id) {
            e.certificate_expires_at = Some(crate::clock::format_ms(*not_after_ms));
            e.certificate_days_left = Some((not_after_ms - now).div_euclid(86_400_000));
        }
        if let Some((accepted, refused)) = traffic.get(&e.id) {
            (e.accepted_24h, e.refused_24h) = (*accepted, *refused);
        }
        let last = gw
            .store
            .search(MessageQuery { sender: Some(e.id.clone()), limit: Some(1), ..MessageQuery::default() })
            .await?;
        e.last_message_at = last.into_iter().next().map(|m| m.received_at);
    }
    Ok(Directory { matching, agencies: all })
}

/// The agency directory
///
/// Every configured agency and hub with its kind, level, regions, format, authentication and
/// liaison, its messages accepted and refused in the last 24 hours, and its last message.
#[utoipa::path(get, path = "/v1/admin/agencies", operation_id = "agencies", tag = "admin", security(("bearer" = [])), params(DirectoryQuery),
    responses(
        (status = 200, description = "The agencies", body = Directory),
        (status = 400, description = "A parameter is malformed"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn get(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let q: DirectoryQuery = super::request::query(&req)?;
    Ok(HttpResponse::Ok().json(directory(&gw, &q).await?))
}
