//! `agencies.yaml`: who may post. Each agency has an id (`KIND:DIVISION`), token hashes
//! (never tokens), and optionally its own format, rate limit and liaison (联络人, section 二);
//! each regional hub its tokens, and optionally its rate limit and liaison.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::error::ConfigError;
use super::settings::{RateLimit, Settings};
use crate::model::AgencyId;
use crate::normalize::SpecError;
use crate::secrecy::Level;
use crate::tls::PeerCertificate;
use crate::token::{self, TokenHash};

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgenciesFile {
    #[serde(default)]
    agencies: Vec<AgencySpec>,
    /// The regional hubs' credentials: a hub reads its feed and subscribes to it.
    #[serde(default)]
    hubs: Vec<HubSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HubSpec {
    id: Spanned<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tokens: Vec<Spanned<String>>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    liaison: Option<Spanned<Liaison>>,
}

/// 联络人: the person who handles day-to-day liaison for an agency or hub (section 二: each side
/// names one, 指定专人负责), as its counterparts read it from `GET /v1/agencies/{id}/liaison`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Liaison {
    /// The liaison's name.
    pub name: String,
    /// 联络机构: the unit that handles liaison, e.g. 知识产权保护司.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Liaison {
    /// What is wrong with it, if anything.
    fn problem(&self) -> Option<String> {
        if self.name.trim().is_empty() {
            return Some("liaison.name is empty: name the person who handles liaison".into());
        }
        if self.phone.is_none() && self.email.is_none() {
            return Some("liaison: give a phone or an email, or the counterparts cannot reach the liaison".into());
        }
        if let Some(p) = &self.phone
            && (p.trim().is_empty()
                || !p.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')')))
        {
            return Some(format!("liaison.phone `{p}`: expected digits, with +, -, spaces or parentheses"));
        }
        if let Some(e) = &self.email
            && !e.split_once('@').is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
        {
            return Some(format!("liaison.email `{e}` is not an email address"));
        }
        None
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgencySpec {
    id: Spanned<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    format: Option<Spanned<String>>,
    #[serde(default)]
    tokens: Vec<Spanned<String>>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    clearance: Option<Spanned<Level>>,
    /// How the agency proves who it is: token (default), certificate or both.
    #[serde(default)]
    auth: Option<Spanned<String>>,
    /// Client certificates that are the agency's, besides those naming it in a SAN URI.
    #[serde(default)]
    certificates: Vec<CertificateSpec>,
    #[serde(default)]
    liaison: Option<Spanned<Liaison>>,
}

/// A client certificate, by its SHA-256 fingerprint or its exact subject (RFC 4514).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateSpec {
    #[serde(default)]
    fingerprint: Option<Spanned<String>>,
    #[serde(default)]
    subject: Option<Spanned<String>>,
}

/// How an agency proves who it is (docs/security.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// A bearer token.
    #[default]
    Token,
    /// A client certificate (mutual TLS); a token is not needed.
    Certificate,
    /// Both, naming the same agency.
    Both,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Token => "token",
            AuthMode::Certificate => "certificate",
            AuthMode::Both => "both",
        }
    }

    pub fn needs_certificate(self) -> bool {
        matches!(self, AuthMode::Certificate | AuthMode::Both)
    }

    pub fn needs_token(self) -> bool {
        matches!(self, AuthMode::Token | AuthMode::Both)
    }
}

/// The prefix of the SAN URI that names an agency in its certificate.
pub const AGENCY_URI: &str = "urn:xietong:agency:";

/// A configured agency.
#[derive(Clone, Debug)]
pub struct Agency {
    pub id: AgencyId,
    pub name: String,
    /// The source format of its native messages; `None`: it posts canonical events only.
    pub format: Option<String>,
    pub rate_limit: RateLimit,
    /// Its clearance, when it differs from the default for agencies.
    pub clearance: Option<Level>,
    pub auth: AuthMode,
    pub liaison: Option<Liaison>,
}

/// A configured hub.
#[derive(Clone, Debug)]
pub struct Hub {
    /// Its region's key: the hub is `hub:KEY`.
    pub key: String,
    pub name: String,
    pub rate_limit: RateLimit,
    pub liaison: Option<Liaison>,
}

/// The configured agencies, by id and by token hash.
#[derive(Debug, Default)]
pub struct Agencies {
    by_id: BTreeMap<AgencyId, Agency>,
    by_token: HashMap<TokenHash, AgencyId>,
    /// Where each agency is written, for checks made later (its division against the table).
    positions: HashMap<AgencyId, serde_saphyr::Location>,
    /// Hub keys by token hash, and where each hub is written (checked against regions.yaml).
    hubs: HashMap<TokenHash, String>,
    hub_positions: Vec<(String, serde_saphyr::Location)>,
    hub_details: BTreeMap<String, Hub>,
    /// Agencies by certificate fingerprint (`sha256:HEX`) and by subject.
    by_fingerprint: HashMap<String, AgencyId>,
    by_subject: HashMap<String, AgencyId>,
}

/// The liaison as written, when it is sound; its problem goes to `error` otherwise.
fn checked_liaison(
    spec: Option<Spanned<Liaison>>,
    error: &mut impl FnMut(&serde_saphyr::Location, String),
) -> Option<Liaison> {
    let spec = spec?;
    match spec.value.problem() {
        None => Some(spec.value),
        Some(p) => {
            error(&spec.referenced, p);
            None
        }
    }
}

impl Agencies {
    pub fn load(
        path: &Path,
        settings: &Settings,
        formats: &BTreeSet<String>,
        errors: &mut Vec<ConfigError>,
    ) -> Agencies {
        let mut out = Agencies::default();
        let Some(file) = super::files::read_yaml::<AgenciesFile>(path, true, errors) else { return out };
        let at = |s: &serde_saphyr::Location, message: String| ConfigError::from_spec(path, SpecError::at(s, message));
        for spec in file.agencies {
            let id: AgencyId = match spec.id.value.parse() {
                Ok(id) => id,
                Err(e) => {
                    errors.push(at(&spec.id.referenced, e));
                    continue;
                }
            };
            if out.by_id.contains_key(&id) {
                errors.push(at(&spec.id.referenced, format!("agency {id} is configured twice")));
                continue;
            }
            // Without a native format (none named, none for its kind) the agency posts canonical
            // events only; it can always receive.
            let format = match &spec.format {
                Some(f) => {
                    if !formats.contains(&f.value) {
                        let known: Vec<&str> = formats.iter().map(String::as_str).collect();
                        errors.push(at(
                            &f.referenced,
                            format!("no source format `{}`; known formats: {}", f.value, known.join(", ")),
                        ));
                    }
                    Some(f.value.clone())
                }
                None => settings.default_format(id.kind).map(str::to_string),
            };
            for t in &spec.tokens {
                match token::parse_hash(&t.value) {
                    Ok(h) => {
                        if let Some(other) = out.by_token.insert(h, id) {
                            errors.push(at(
                                &t.referenced,
                                format!("this token hash is already {other}'s; every agency needs its own tokens"),
                            ));
                        }
                    }
                    Err(e) => errors.push(at(&t.referenced, e)),
                }
            }
            let rate_limit = spec.rate_limit.unwrap_or(settings.rate_limit);
            if rate_limit.per_second == 0 || rate_limit.burst == 0 {
                errors
                    .push(at(&spec.id.referenced, "rate_limit.per_second and rate_limit.burst must be above 0".into()));
            }
            if let Some(c) = &spec.clearance
                && c.value.is_state_secret()
            {
                errors.push(at(&c.referenced, "no agency may be cleared for state secrets (秘密, 机密, 绝密)".into()));
            }
            let auth = match spec.auth.as_ref().map(|a| a.value.as_str()) {
                None | Some("token") => AuthMode::Token,
                Some("certificate") => AuthMode::Certificate,
                Some("both") => AuthMode::Both,
                Some(other) => {
                    let at_auth = spec.auth.as_ref().map_or(&spec.id.referenced, |a| &a.referenced);
                    errors.push(at(at_auth, format!("auth: `{other}`; expected token, certificate or both")));
                    AuthMode::Token
                }
            };
            if auth == AuthMode::Both && spec.tokens.is_empty() {
                errors.push(at(&spec.id.referenced, format!("auth: {}: the agency needs a token", auth.as_str())));
            }
            for c in &spec.certificates {
                match (&c.fingerprint, &c.subject) {
                    (Some(f), None) => {
                        let ok = f.value.strip_prefix("sha256:").is_some_and(|h| {
                            h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                        });
                        if !ok {
                            errors.push(at(
                                &f.referenced,
                                "a fingerprint is written sha256:<64 lower-case hex digits>".into(),
                            ));
                        } else if let Some(other) = out.by_fingerprint.insert(f.value.clone(), id) {
                            errors.push(at(&f.referenced, format!("this certificate is already {other}'s")));
                        }
                    }
                    (None, Some(subject)) => {
                        if let Some(other) = out.by_subject.insert(subject.value.clone(), id) {
                            errors.push(at(&subject.referenced, format!("this subject is already {other}'s")));
                        }
                    }
                    _ => errors.push(at(
                        &spec.id.referenced,
                        "certificates: each entry has either fingerprint or subject".into(),
                    )),
                }
            }
            let name = spec.name.unwrap_or_default();
            let clearance = spec.clearance.map(|c| c.value);
            let liaison = checked_liaison(spec.liaison, &mut |l, m| errors.push(at(l, m)));
            out.positions.insert(id, spec.id.referenced);
            out.by_id.insert(id, Agency { id, name, format, rate_limit, clearance, auth, liaison });
        }
        for hub in file.hubs {
            let Some(key) = hub.id.value.strip_prefix("hub:") else {
                errors.push(at(&hub.id.referenced, format!("`{}` is not a hub id; write hub:REGION", hub.id.value)));
                continue;
            };
            let rate_limit = hub.rate_limit.unwrap_or(settings.rate_limit);
            if rate_limit.per_second == 0 || rate_limit.burst == 0 {
                errors
                    .push(at(&hub.id.referenced, "rate_limit.per_second and rate_limit.burst must be above 0".into()));
            }
            let liaison = checked_liaison(hub.liaison, &mut |l, m| errors.push(at(l, m)));
            let details = Hub { key: key.to_string(), name: hub.name.unwrap_or_default(), rate_limit, liaison };
            if out.hub_details.insert(key.to_string(), details).is_some() {
                errors.push(at(&hub.id.referenced, format!("hub:{key} is configured twice")));
            }
            out.hub_positions.push((key.to_string(), hub.id.referenced));
            for t in &hub.tokens {
                match token::parse_hash(&t.value) {
                    Ok(h) => {
                        if out.by_token.contains_key(&h) || out.hubs.insert(h, key.to_string()).is_some() {
                            errors.push(at(
                                &t.referenced,
                                "this token hash belongs to someone else; every hub needs its own tokens".into(),
                            ));
                        }
                    }
                    Err(e) => errors.push(at(&t.referenced, e)),
                }
            }
        }
        out
    }

    /// The hub (region key) a bearer token belongs to.
    pub fn authenticate_hub(&self, token: &str) -> Option<&str> {
        self.hubs.get(&token::hash(token)).map(String::as_str)
    }

    /// The hubs configured, with where each is written.
    pub fn hubs(&self) -> &[(String, serde_saphyr::Location)] {
        &self.hub_positions
    }

    /// A configured hub, by its region's key.
    pub fn hub(&self, key: &str) -> Option<&Hub> {
        self.hub_details.get(key)
    }

    /// Every configured hub.
    pub fn hub_list(&self) -> impl Iterator<Item = &Hub> {
        self.hub_details.values()
    }

    /// The agency a verified client certificate belongs to: the configured agency its SAN URI
    /// `urn:xietong:agency:ID` names, else the one its fingerprint or subject is listed for.
    /// The agency a certificate fingerprint (`sha256:HEX`) or subject is configured for.
    pub fn certificate_owner(&self, fingerprint_or_subject: &str) -> Option<AgencyId> {
        self.by_fingerprint.get(fingerprint_or_subject).or_else(|| self.by_subject.get(fingerprint_or_subject)).copied()
    }

    pub fn by_certificate(&self, peer: &PeerCertificate) -> Option<&Agency> {
        let by_uri = peer
            .uris
            .iter()
            .filter_map(|u| u.strip_prefix(AGENCY_URI))
            .filter_map(|id| id.parse::<AgencyId>().ok())
            .find(|id| self.by_id.contains_key(id));
        by_uri
            .or_else(|| self.by_fingerprint.get(&peer.fingerprint).copied())
            .or_else(|| self.by_subject.get(&peer.subject).copied())
            .and_then(|id| self.by_id.get(&id))
    }

    /// The agency a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<&Agency> {
        self.by_token.get(&token::hash(token)).and_then(|id| self.by_id.get(id))
    }

    pub fn get(&self, id: &AgencyId) -> Option<&Agency> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Agency> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Where the agency is written in agencies.yaml.
    pub fn position(&self, id: &AgencyId) -> Option<&serde_saphyr::Location> {
        self.positions.get(id)
    }

    pub fn token_hashes(&self) -> impl Iterator<Item = &TokenHash> {
        self.by_token.keys().chain(self.hubs.keys())
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Agencies, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agencies.yaml");
        std::fs::write(&path, text).unwrap();
        let mut errors = Vec::new();
        let agencies = Agencies::load(&path, &Settings::default(), &BTreeSet::new(), &mut errors);
        (agencies, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_liaison_is_kept_when_it_can_be_reached_and_reported_where_it_cannot() {
        let (agencies, errors) = load(
            "agencies:\n\
             \x20 - id: ip_office:330100\n\
             \x20   liaison: { name: 联络人, unit: 保护处, phone: \"0571-5555 0100\" }\n\
             \x20 - id: procuratorate:330100\n\
             \x20   liaison: { name: 联络人 }\n\
             \x20 - id: procuratorate:330000\n\
             \x20   liaison: { name: \" \", email: a@b.cn }\n\
             \x20 - id: ip_office:330000\n\
             \x20   liaison: { name: 联络人, phone: 五五五, email: nobody }\n\
             hubs:\n\
             \x20 - id: hub:yangtze_delta\n\
             \x20   rate_limit: { per_second: 5, burst: 10 }\n\
             \x20   liaison: { name: 联络人, email: hub@example.cn }\n",
        );
        let ok: AgencyId = "ip_office:330100".parse().unwrap();
        assert_eq!(agencies.get(&ok).unwrap().liaison.as_ref().unwrap().unit.as_deref(), Some("保护处"));
        let hub = agencies.hub("yangtze_delta").unwrap();
        assert_eq!((hub.rate_limit.per_second, hub.liaison.as_ref().map(|l| l.name.as_str())), (5, Some("联络人")));
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].contains(":5:") && errors[0].contains("give a phone or an email"), "{}", errors[0]);
        assert!(errors[1].contains(":7:") && errors[1].contains("liaison.name is empty"), "{}", errors[1]);
        assert!(errors[2].contains(":9:") && errors[2].contains("liaison.phone"), "{}", errors[2]);
        let none: AgencyId = "procuratorate:330100".parse().unwrap();
        assert!(agencies.get(&none).unwrap().liaison.is_none(), "a liaison that cannot be reached is not served");
    }
}
