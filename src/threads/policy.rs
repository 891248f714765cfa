//! `config/threads.yaml`: which messages ask for a reply, which types answer them, how long the
//! recipient has, and what happens when a deadline passes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::clock::beijing;
use crate::config::error::ConfigError;
use crate::config::files::read_yaml;
use crate::model::AgencyId;
use crate::model::schema::Schemas;
use crate::normalize::SpecError;
use crate::store::{LogEntry, StepRole};

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThreadsFile {
    #[serde(default)]
    requests: Vec<RequestSpec>,
    #[serde(default)]
    overdue: OverdueSpec,
    #[serde(default)]
    progress: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestSpec {
    #[serde(rename = "type")]
    message_type: Spanned<String>,
    answered_by: Vec<Spanned<String>>,
    /// The time to reply when the message names no `replyBy`.
    within: Spanned<String>,
    /// A reply of 无法认定 sends the request on to the replier's superior (逐级请示).
    #[serde(default)]
    escalate: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OverdueSpec {
    /// The late party's superior gets a copy of the overdue notice.
    notify_superior: bool,
}

impl Default for OverdueSpec {
    fn default() -> Self {
        OverdueSpec { notify_superior: true }
    }
}

#[derive(Clone, Debug)]
pub struct Request {
    pub answered_by: Vec<&'static str>,
    pub within: Duration,
    pub escalate: bool,
}

/// The compiled policy.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    requests: HashMap<&'static str, Request>,
    progress: Vec<&'static str>,
    pub notify_superior: bool,
}

impl Policy {
    /// Reads `path` (missing: no message asks for a reply). Problems go to `errors`.
    pub fn load(path: &Path, schemas: &Schemas, errors: &mut Vec<ConfigError>) -> Policy {
        let Some(file) = read_yaml::<ThreadsFile>(path, true, errors) else {
            return Policy { notify_superior: true, ..Policy::default() };
        };
        let mut error =
            |at: &serde_saphyr::Location, m: String| errors.push(ConfigError::from_spec(path, SpecError::at(at, m)));
        let known = |t: &Spanned<String>, error: &mut dyn FnMut(&serde_saphyr::Location, String)| match schemas
            .lookup(&t.value)
        {
            Some(mt) => Some(mt.name),
            None => {
                error(&t.referenced, format!("unknown message type `{}`", t.value));
                None
            }
        };
        let mut requests = HashMap::new();
        for r in file.requests {
            let within = match humantime::parse_duration(&r.within.value) {
                Ok(d) => d,
                Err(e) => {
                    error(&r.within.referenced, format!("`{}` is not a duration such as 15d ({e})", r.within.value));
                    Duration::ZERO
                }
            };
            let answered_by: Vec<&'static str> = r.answered_by.iter().filter_map(|t| known(t, &mut error)).collect();
            if r.answered_by.is_empty() {
                error(&r.message_type.referenced, "answered_by: the types that answer this request".into());
            }
            if let Some(t) = known(&r.message_type, &mut error)
                && requests.insert(t, Request { answered_by, within, escalate: r.escalate }).is_some()
            {
                error(&r.message_type.referenced, format!("`{t}` is listed twice"));
            }
        }
        let progress = file.progress.iter().filter_map(|t| known(t, &mut error)).collect();
        Policy { requests, progress, notify_superior: file.overdue.notify_superior }
    }

    pub fn request(&self, message_type: &str) -> Option<&Request> {
        self.requests.get(message_type)
    }

    /// The request types a reply of 无法认定 escalates.
    pub fn escalating(&self) -> Vec<String> {
        let mut types: Vec<String> =
            self.requests.iter().filter(|(_, r)| r.escalate).map(|(t, _)| t.to_string()).collect();
        types.sort();
        types
    }

    /// What a committed message is in its thread.
    pub fn role(&self, entry: &LogEntry) -> StepRole {
        // The event is read only for requests and replies, and only for the two members used.
        let probe = || serde_json::from_str::<Probe>(&entry.event).unwrap_or_default().data;
        if let Some(r) = self.request(&entry.message_type) {
            let awaiting = entry.primaries.iter().filter(|p| p.parse::<AgencyId>().is_ok()).cloned().collect();
            let reply_by = probe().request.and_then(|r| r.reply_by);
            return StepRole::Request {
                awaiting,
                deadline_ms: deadline(entry.received_ms, reply_by.as_deref(), r.within),
            };
        }
        let answers: Vec<String> = self
            .requests
            .iter()
            .filter(|(_, r)| r.answered_by.contains(&entry.message_type.as_str()))
            .map(|(t, _)| t.to_string())
            .collect();
        if !answers.is_empty() {
            let cannot_determine = probe().outcome.and_then(|o| o.cannot_determine).unwrap_or(false);
            let escalates = self.requests.iter().filter(|(_, r)| r.escalate).map(|(t, _)| t.to_string()).collect();
            return StepRole::Reply { answers, cannot_determine, escalates };
        }
        if self.progress.contains(&entry.message_type.as_str()) {
            return StepRole::Progress;
        }
        StepRole::Other
    }
}

/// The members of a canonical event that decide its role; serde skips the rest.
#[derive(Default, Deserialize)]
struct Probe {
    #[serde(default)]
    data: ProbeData,
}

#[derive(Default, Deserialize)]
struct ProbeData {
    request: Option<ProbeRequest>,
    outcome: Option<ProbeOutcome>,
}

#[derive(Deserialize)]
struct ProbeRequest {
    #[serde(rename = "replyBy")]
    reply_by: Option<String>,
}

#[derive(Deserialize)]
struct ProbeOutcome {
    #[serde(rename = "cannotDetermine")]
    cannot_determine: Option<bool>,
}

/// The deadline of a request received at `received_ms`: the end of its `replyBy` day (Beijing
/// time) when it names one, otherwise `within` after it arrived. A `replyBy` day that was over
/// before the request arrived binds nobody: `within` applies.
pub fn deadline(received_ms: i64, reply_by: Option<&str>, within: Duration) -> i64 {
    let named = reply_by.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).and_then(|day| {
        let end = day.and_hms_milli_opt(23, 59, 59, 999)?;
        beijing().from_local_datetime(&end).single().map(|t| t.timestamp_millis())
    });
    named.filter(|&d| d >= received_ms).unwrap_or(received_ms + within.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_the_end_of_the_reply_by_day_in_beijing() {
        let received = chrono::DateTime::parse_from_rfc3339("2026-11-10T09:00:00+08:00").unwrap().timestamp_millis();
        let d = deadline(received, Some("2026-11-24"), Duration::from_secs(86400));
        assert_eq!(crate::clock::format_ms(d), "2026-11-24T23:59:59.999+08:00");
        let d = deadline(received, None, Duration::from_secs(15 * 86400));
        assert_eq!(crate::clock::format_ms(d), "2026-11-25T09:00:00.000+08:00");
        assert_eq!(deadline(received, Some("not a date"), Duration::from_secs(60)), received + 60_000);
        assert_eq!(deadline(received, Some("2026-11-09"), Duration::from_secs(60)), received + 60_000, "already over");
        let last_moment = deadline(received, Some("2026-11-10"), Duration::from_secs(60));
        assert_eq!(crate::clock::format_ms(last_moment), "2026-11-10T23:59:59.999+08:00", "the same day still binds");
    }
}
