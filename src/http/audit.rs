//! The audit chain for operators: the latest records with filters, the head and the signed
//! checkpoints (`GET /v1/admin/audit`), and a verification of the whole chain
//! (`POST /v1/admin/audit/verify`, what `xietong audit verify` reports).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth;
use super::error::ApiError;
use crate::audit::Record;
use crate::audit::checkpoint::Verifier;
use crate::gateway::Gateway;
use crate::model::{Code, Problem};

/// A record as the console lists it.
#[derive(Serialize, ToSchema)]
pub struct RecordView {
    pub seq: i64,
    pub at: String,
    pub action: String,
    pub actor: Option<String>,
    pub message_id: Option<String>,
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    pub recipient: Option<String>,
    pub code: Option<String>,
    pub detail: Option<String>,
    /// Its link in the chain.
    pub hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointView {
    pub seq: i64,
    pub hash: String,
    pub at: String,
    /// The signing key (the first 16 hex digits of SHA-256 over the public key).
    pub key_id: String,
}

/// The chain's state and its latest records.
#[derive(Serialize, ToSchema)]
pub struct AuditView {
    /// The last record's sequence number and hash.
    pub head_seq: Option<i64>,
    pub head_hash: Option<String>,
    /// Newest first.
    pub records: Vec<RecordView>,
    /// How many records were read to find them (at most 20,000 from the head).
    pub scanned: usize,
    pub checkpoints: Vec<CheckpointView>,
}

#[derive(Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this action (accepted, refused, rules_changed, console, ...).
    pub action: Option<String>,
    /// Only this actor (an agency id, `operator:NAME`, `gateway`).
    pub actor: Option<String>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<usize>,
}

const SCAN: usize = 20_000;

/// The latest records that match, newest first, with the head and the checkpoints.
pub async fn latest(gw: &Gateway, q: &AuditQuery) -> Result<AuditView, ApiError> {
    const PAGE: i64 = 1000;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let (action, actor) = (given(&q.action), given(&q.actor));
    let head = gw.store.audit_head().await?;
    let mut records = Vec::new();
    let mut scanned = 0;
    let mut upto = head.as_ref().map_or(0, |(seq, _)| *seq);
    while upto > 0 && records.len() < limit && scanned < SCAN {
        let after = (upto - PAGE).max(0);
        let page = gw.store.audit_records(after, (upto - after) as usize).await?;
        scanned += page.len();
        for s in page.into_iter().rev() {
            let Ok(r) = serde_json::from_str::<Record>(&s.record) else { continue };
            let e = r.entry;
            if action.as_ref().is_some_and(|a| *a != e.action)
                || actor.as_ref().is_some_and(|a| Some(a) != e.actor.as_ref())
            {
                continue;
            }
            records.push(RecordView {
                seq: s.seq,
                at: r.at,
                action: e.action,
                actor: e.actor,
                message_id: e.message_id,
                message_type: e.message_type,
                recipient: e.recipient,
                code: e.code,
                detail: e.detail,
                hash: s.hash,
            });
            if records.len() == limit {
                break;
            }
        }
        upto = after;
    }
    let checkpoints = gw
        .store
        .audit_checkpoints()
        .await?
        .into_iter()
        .rev()
        .map(|c| CheckpointView { seq: c.seq, hash: c.hash, at: c.at, key_id: c.key_id })
        .collect();
    let (head_seq, head_hash) = head.map_or((None, None), |(s, h)| (Some(s), Some(h)));
    Ok(AuditView { head_seq, head_hash, records, scanned, checkpoints })
}

/// What verifying the whole chain found.
#[derive(Serialize, ToSchema)]
pub struct Verified {
    pub intact: bool,
    pub records: i64,
    pub head_seq: Option<i64>,
    pub head_hash: Option<String>,
    pub checkpoints: usize,
    /// Checkpoints whose Ed25519 signature was checked (none without a key).
    pub signatures_checked: usize,
    /// The key checkpoints were checked with.
    pub key: Option<String>,
    /// The first broken link: its sequence number and why.
    pub broken_seq: Option<i64>,
    pub broken_why: Option<String>,
}

/// Verifies the whole chain and its checkpoints with the configured key.
pub async fn verify(gw: &Gateway) -> Result<Verified, ApiError> {
    let rt = gw.runtime();
    let audit = &rt.config.settings.audit;
    let key = audit.verify_key.as_ref().or(audit.signing_key.as_ref()).map(|k| rt.config.dir.join(k));
    let verifier = key
        .as_deref()
        .map(Verifier::load)
        .transpose()
        .map_err(|e| Problem::new(Code::InvalidConfiguration, format!("audit key: {e}")))?;
    let report = crate::store::audit::verify(gw.store.as_ref(), verifier.as_ref()).await?;
    let (head_seq, head_hash) = report.head.clone().map_or((None, None), |(s, h)| (Some(s), Some(h)));
    Ok(Verified {
        intact: report.intact(),
        records: report.records,
        head_seq,
        head_hash,
        checkpoints: report.checkpoints,
        signatures_checked: report.signatures_checked,
        key: verifier.map(|v| v.key_id()),
        broken_seq: report.broken.as_ref().map(|b| b.seq),
        broken_why: report.broken.map(|b| b.why),
    })
}

/// The audit chain
///
/// The latest records that match (newest first), the head, and the signed checkpoints.
#[utoipa::path(get, path = "/v1/admin/audit", operation_id = "audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses(
        (status = 200, description = "The chain's state and latest records", body = AuditView),
        (status = 400, description = "A parameter is malformed"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn get(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let q: AuditQuery = super::request::query(&req)?;
    Ok(HttpResponse::Ok().json(latest(&gw, &q).await?))
}

/// Verify the audit chain
///
/// Every record in order, each linked to the one before and matching its hash, and every
/// checkpoint's signature (with `audit.verify_key` or `audit.signing_key`): the first broken
/// link, if any.
#[utoipa::path(post, path = "/v1/admin/audit/verify", operation_id = "verify_audit", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The report (`intact` false: the first broken link)", body = Verified),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn post_verify(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    Ok(HttpResponse::Ok().json(verify(&gw).await?))
}
