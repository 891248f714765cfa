//! Subscriptions: a recipient's standing order on its own feed — a filter, and either a webhook
//! (the gateway pushes) or a server-tracked cursor (the subscriber pulls and acknowledges).
//! The same shape is written in `config/subscriptions.yaml` and posted to `/v1/subscriptions`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::guard::Guard;
use super::signature;
use crate::model::{AgencyId, Division};
use crate::route::{Recipient, Router};

/// Which messages of the feed the subscription takes. Every listed criterion must hold; within
/// a list, any entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Canonical message types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Division prefixes (`33`, `3301`, `330106`): a case division must start with one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub divisions: Vec<String>,
    /// Key regions: a case division must belong to one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Sender levels: national, province, prefecture, county.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where events are POSTed.
    pub url: String,
    /// `whsec_…` secrets: every one signs (two during a rotation). Generated when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Requests in flight at once to this endpoint (default: delivery.concurrency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Requests per second at most (default: delivery.rate_per_second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u32>,
    /// A client certificate presented to the endpoint (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificate>,
    /// A PEM file of the CA certificates trusted for this endpoint instead of the system's:
    /// the endpoint is pinned to its private PKI. Configuration only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub ca: Option<PathBuf>,
    /// The same CA certificates, as PEM text (what the API takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

/// A client certificate and its key: files named in `subscriptions.yaml`, or PEM text (what the
/// API takes; kept in the store like the webhook's secrets, never shown again).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificate {
    /// PEM certificate chain file (configuration only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub cert: Option<PathBuf>,
    /// PEM private key file (configuration only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub key: Option<PathBuf>,
    /// The PEM certificate chain itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_pem: Option<String>,
    /// The PEM private key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pem: Option<String>,
}

impl ClientCertificate {
    /// The certificate chain and key as one PEM, read from the files or taken as written.
    pub fn pem(&self) -> Result<Vec<u8>, String> {
        let part = |file: &Option<PathBuf>, text: &Option<String>, what: &str| match (file, text) {
            (Some(f), None) => std::fs::read(f).map_err(|e| format!("{what} {}: {e}", f.display())),
            (None, Some(t)) => Ok(t.clone().into_bytes()),
            _ => Err(format!("give the {what} as a file or as PEM text, one of the two")),
        };
        let mut pem = part(&self.cert, &self.cert_pem, "client certificate")?;
        pem.push(b'\n');
        pem.extend(part(&self.key, &self.key_pem, "client key")?);
        Ok(pem)
    }
}

impl Webhook {
    /// The CA certificates the endpoint is pinned to, as PEM, if any.
    pub fn ca_pem(&self) -> Result<Option<Vec<u8>>, String> {
        match (&self.ca, &self.ca_pem) {
            (None, None) => Ok(None),
            (Some(f), None) => std::fs::read(f).map(Some).map_err(|e| format!("ca {}: {e}", f.display())),
            (None, Some(t)) => Ok(Some(t.clone().into_bytes())),
            (Some(_), Some(_)) => Err("give `ca` or `ca_pem`, not both".into()),
        }
    }

    /// The fields that name files on the gateway's host: what the API refuses.
    pub fn file_paths(&self) -> Vec<&'static str> {
        let mut named = Vec::new();
        if let Some(c) = &self.client_certificate {
            if c.cert.is_some() {
                named.push("webhook.client_certificate.cert");
            }
            if c.key.is_some() {
                named.push("webhook.client_certificate.key");
            }
        }
        if self.ca.is_some() {
            named.push("webhook.ca");
        }
        named
    }
}

/// A subscription as written.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSpec {
    /// Unique; generated when absent (API).
    #[serde(default)]
    pub id: Option<String>,
    /// The feed's owner (config only; through the API, the caller).
    #[serde(default)]
    #[schema(ignore)]
    pub owner: Option<String>,
    #[serde(default)]
    pub filter: Filter,
    #[serde(default)]
    pub webhook: Option<Webhook>,
    /// A server-tracked cursor instead of a webhook.
    #[serde(default)]
    pub cursor: bool,
    /// Where it starts: `now` (the default: what arrives from now on), `oldest` (everything the
    /// feed still keeps), or the `cursor` of an entry (what came after it): a hub that joins late
    /// backfills.
    #[serde(default)]
    pub from: Option<String>,
}

/// Where a new subscription starts reading its feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// What arrives from now on.
    Now,
    /// Everything the feed still keeps.
    Oldest,
    /// What came after this cursor.
    After(i64),
}

impl SubscriptionSpec {
    /// Where it starts; an error names what `from` takes.
    pub fn start(&self) -> Result<Start, String> {
        match self.from.as_deref().map(str::trim) {
            None | Some("now") => Ok(Start::Now),
            Some("oldest") => Ok(Start::Oldest),
            Some(c) => c
                .parse::<i64>()
                .ok()
                .filter(|c| *c >= 0)
                .map(Start::After)
                .ok_or_else(|| format!("from: `{c}` is not now, oldest or the cursor of an entry")),
        }
    }
}

/// What is stored: the filter and the webhook (none: a cursor subscription).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    #[serde(default)]
    pub filter: Filter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

impl Stored {
    pub fn parse(json: &str) -> Stored {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Checks a subscription as written; every problem, each naming its field.
pub fn validate(spec: &SubscriptionSpec, router: &Router, guard: &Guard) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(id) = &spec.id
        && (id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        problems.push("id: letters, digits, `-` and `_`, at most 64".to_string());
    }
    match (&spec.webhook, spec.cursor) {
        (Some(_), true) => problems.push("give either `webhook` or `cursor: true`, not both".into()),
        (None, false) => problems.push("give `webhook` (the gateway pushes) or `cursor: true` (you pull)".into()),
        _ => {}
    }
    if let Err(e) = spec.start() {
        problems.push(e);
    }
    problems.extend(spec.filter.problems(router).into_iter().map(|p| format!("filter.{p}")));
    if let Some(w) = &spec.webhook {
        match reqwest::Url::parse(&w.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if let Err(e) = guard.check_url(&u) {
                    problems.push(format!("webhook.url: {e}"));
                }
            }
            _ => problems.push("webhook.url: an absolute http or https URL".into()),
        }
        for (i, s) in w.secrets.iter().enumerate() {
            if let Err(e) = signature::decode_secret(s) {
                problems.push(format!("webhook.secrets[{i}]: {e}"));
            }
        }
        if w.secrets.len() > 2 {
            problems.push("webhook.secrets: at most two (the new and the old one during a rotation)".into());
        }
        if w.concurrency.is_some_and(|c| !(1..=64).contains(&c)) {
            problems.push("webhook.concurrency: between 1 and 64".into());
        }
        if w.rate_per_second == Some(0) {
            problems.push("webhook.rate_per_second: above 0".into());
        }
        if let Some(c) = &w.client_certificate {
            match c.pem().map(|pem| reqwest::Identity::from_pem(&pem)) {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    problems.push(format!("webhook.client_certificate: not a PEM certificate chain and key ({e})"))
                }
                Err(e) => problems.push(format!("webhook.client_certificate: {e}")),
            }
        }
        match w.ca_pem() {
            Ok(None) => {}
            Ok(Some(pem)) => match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => {}
                _ => problems.push("webhook.ca: not a PEM bundle of certificates".into()),
            },
            Err(e) => problems.push(format!("webhook.ca: {e}")),
        }
    }
    problems
}

impl Filter {
    /// What is wrong with the filter, each problem naming its list (`types: …`).
    pub fn problems(&self, router: &Router) -> Vec<String> {
        let mut problems = Vec::new();
        for t in &self.types {
            if !router.knows_type(t) {
                problems.push(format!("types: unknown message type `{t}`"));
            }
        }
        for d in &self.divisions {
            if !matches!(d.len(), 2 | 4 | 6) || !d.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(format!("divisions: `{d}` is not a division prefix (XX, XXYY or XXYYZZ)"));
            }
        }
        for r in &self.regions {
            if router.regions.get(r).is_none() {
                problems.push(format!("regions: no region `{r}`"));
            }
        }
        for l in &self.levels {
            if !["national", "province", "prefecture", "county"].contains(&l.as_str()) {
                problems.push(format!("levels: `{l}` is not national, province, prefecture or county"));
            }
        }
        problems
    }

    /// Whether an entry of the feed passes.
    pub fn matches(&self, message_type: &str, event: &Value, router: &Router) -> bool {
        if !self.types.is_empty() && !self.types.iter().any(|t| t == message_type) {
            return false;
        }
        let divisions: Vec<Division> = event
            .pointer("/data/case/divisions")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(|d| d.as_str().and_then(|s| Division::parse(s).ok())).collect())
            .unwrap_or_default();
        if !self.divisions.is_empty()
            && !divisions.iter().any(|d| self.divisions.iter().any(|p| d.as_str().starts_with(p.as_str())))
        {
            return false;
        }
        if !self.regions.is_empty()
            && !divisions
                .iter()
                .any(|d| self.regions.iter().any(|r| router.regions.get(r).is_some_and(|region| region.contains(d))))
        {
            return false;
        }
        if !self.levels.is_empty() {
            let level = event
                .get("sender")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<AgencyId>().ok())
                .and_then(|a| router.divisions.get(&a.division).map(|e| e.level.as_str()));
            if !level.is_some_and(|l| self.levels.iter().any(|x| x == l)) {
                return false;
            }
        }
        true
    }

    /// Whether [`Filter::matches`] reads the event (its divisions or its sender), not only
    /// the message type.
    pub fn reads_the_event(&self) -> bool {
        !(self.divisions.is_empty() && self.regions.is_empty() && self.levels.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty() && !self.reads_the_event()
    }
}

/// Checks the owner of a config subscription: a recipient the gateway knows.
pub fn validate_owner(owner: &str, router: &Router) -> Result<Recipient, String> {
    let recipient: Recipient = owner.parse()?;
    match &recipient {
        Recipient::Hub(key) if router.regions.get(key).is_none() => Err(format!("owner: no region `{key}`")),
        Recipient::Feed(name) if name == crate::route::recipient::PUBLIC => {
            Err("owner: the public feed is open to all; it has no subscriptions".into())
        }
        _ => Ok(recipient),
    }
}
