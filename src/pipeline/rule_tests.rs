//! `rules.test.yaml`: the operators' own tests of their routing rules. Each test is a message (a
//! native or canonical one, inline or in a file), its sender, and the recipients that must and
//! must not receive it — optionally the rules that decide, the fields removed for a recipient,
//! or the refusal expected. `check` runs them, and a configuration whose tests fail is refused
//! (by `check`, at start-up, by `POST /v1/admin/reload` and SIGHUP), so a rule change that breaks
//! a flow is caught before it applies. The tests run the whole pipeline without the store, as
//! `explain` does; a reply's link is given as `replying_to` (and `requester`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use super::accept;
use crate::config::{Config, ConfigError, ConfigErrors, files};
use crate::model::{BodyKind, Sender};
use crate::normalize::SpecError;
use crate::route::{Reply, Role};

/// The file, beside rules.yaml.
pub const FILE: &str = "rules.test.yaml";

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestsFile {
    #[serde(default)]
    tests: Vec<TestSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestSpec {
    name: Spanned<String>,
    /// `KIND:DIVISION` or `hub:REGION`.
    sender: String,
    /// The message itself.
    #[serde(default)]
    message: Option<Value>,
    /// Or a file holding it, relative to the configuration directory.
    #[serde(default)]
    file: Option<String>,
    /// `native` or `cloudevent`; by default a message with `specversion` is a canonical event.
    #[serde(default)]
    kind: Option<String>,
    /// The sender of the message this one answers, as the store would know it.
    #[serde(default)]
    replying_to: Option<String>,
    /// The agency that first asked (default: `replying_to`).
    #[serde(default)]
    requester: Option<String>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Exactly these primary recipients.
    #[serde(default)]
    to: Option<Vec<String>>,
    /// Exactly these copies.
    #[serde(default)]
    copy: Option<Vec<String>>,
    /// Each of these receives it (as a primary recipient or a copy); others may too.
    #[serde(default)]
    receive: Vec<String>,
    /// None of these receives it.
    #[serde(default)]
    not: Vec<String>,
    /// Exactly these rules decide (choose a recipient).
    #[serde(default)]
    rules: Option<Vec<String>>,
    /// Per recipient, pointers removed from its copy.
    #[serde(default)]
    removed: BTreeMap<String, Vec<String>>,
    /// The code the message is refused with, instead.
    #[serde(default)]
    refused: Option<String>,
}

/// Loads the configuration in `dir` and runs its routing tests: a configuration whose tests fail
/// is refused like one that does not check. What `check`, `serve` and every reload load.
pub fn load(dir: &Path) -> Result<Config, ConfigErrors> {
    let mut config = Config::load(dir)?;
    let tests = run(dir, &config);
    if !tests.failures.is_empty() {
        return Err(ConfigErrors(tests.failures));
    }
    config.rule_tests = tests.ran;
    Ok(config)
}

/// The outcome of the tests: how many ran, and each failure at its test's position.
pub struct Outcome {
    pub ran: usize,
    pub failures: Vec<ConfigError>,
    /// Every rule that chose a recipient in some test.
    pub rules_applied: BTreeSet<String>,
}

/// Runs the tests of `dir/rules.test.yaml` (none when the file is absent) against `config`.
pub fn run(dir: &Path, config: &Config) -> Outcome {
    let path = dir.join(FILE);
    let mut out = Outcome { ran: 0, failures: Vec::new(), rules_applied: BTreeSet::new() };
    if !path.exists() {
        return out;
    }
    let mut errors = Vec::new();
    let Some(file) = files::read_yaml::<TestsFile>(&path, false, &mut errors) else {
        out.failures = errors;
        return out;
    };
    for test in file.tests {
        out.ran += 1;
        let problems = run_one(dir, config, &test, &mut out.rules_applied);
        let name = &test.name.value;
        for p in problems {
            out.failures.push(ConfigError::from_spec(
                &path,
                SpecError::at(&test.name.referenced, format!("test `{name}`: {p}")),
            ));
        }
    }
    out
}

/// What is wrong with one test's outcome.
fn run_one(dir: &Path, config: &Config, t: &TestSpec, applied: &mut BTreeSet<String>) -> Vec<String> {
    let sender: Sender = match t.sender.parse() {
        Ok(s) => s,
        Err(e) => return vec![format!("sender: {e}")],
    };
    let message = match (&t.message, &t.file) {
        (Some(m), None) => m.clone(),
        (None, Some(f)) => match std::fs::read(dir.join(f))
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => return vec![format!("file {f}: {e}")],
        },
        _ => return vec!["give the message inline (`message`) or in a file (`file`), one of the two".into()],
    };
    let kind = match t.kind.as_deref() {
        Some("native") => BodyKind::Native,
        Some("cloudevent") => BodyKind::CloudEvent,
        Some(other) => return vec![format!("kind `{other}`: native or cloudevent")],
        None if message.get("specversion").is_some() => BodyKind::CloudEvent,
        None => BodyKind::Native,
    };
    let Some(format) = config.mapping_for(&sender, kind) else {
        return vec![format!("{sender} has no native format: give the message as a canonical event")];
    };
    let reply = t
        .replying_to
        .as_ref()
        .map(|s| Reply { sender: s.clone(), requester: t.requester.clone().unwrap_or_else(|| s.clone()) });
    let body = serde_json::to_vec(&message).unwrap_or_default();
    let e = &t.expect;
    let unit = match accept::run_offline(config, format, &sender, &body, reply.as_ref()) {
        Ok(unit) => unit,
        Err(p) if e.refused.as_deref() == Some(p.code.as_str()) => return Vec::new(),
        Err(p) => {
            return vec![format!(
                "refused ({}: {}), expected it to be {}",
                p.code.as_str(),
                p.message,
                match &e.refused {
                    Some(code) => format!("refused with {code}"),
                    None => "accepted".to_string(),
                }
            )];
        }
    };
    let routing = &unit.addressed.routing;
    // The rules that decided: those that chose a recipient (a rule whose condition held but
    // whose targets named nobody decided nothing).
    let deciding: BTreeSet<String> = unit
        .addressed
        .deliveries
        .iter()
        .flat_map(|d| d.routed.rules.iter())
        .chain(unit.addressed.withheld.iter().flat_map(|w| w.rules.iter()))
        .cloned()
        .collect();
    applied.extend(deciding.iter().cloned());
    if let Some(code) = &e.refused {
        return vec![format!("accepted, expected it to be refused with {code}")];
    }
    let who = |role: Role| -> BTreeSet<String> {
        unit.addressed.deliveries.iter().filter(|d| d.routed.role == role).map(|d| d.routed.id.to_string()).collect()
    };
    let (to, copy) = (who(Role::Primary), who(Role::Copy));
    let decided = format!(
        "routing gave to [{}], copy [{}] (rules: {}{})",
        to.iter().cloned().collect::<Vec<_>>().join(", "),
        copy.iter().cloned().collect::<Vec<_>>().join(", "),
        if deciding.is_empty() { "none".to_string() } else { deciding.iter().cloned().collect::<Vec<_>>().join(", ") },
        if routing.failures.is_empty() { String::new() } else { format!("; failed: {}", routing.failures.join("; ")) },
    );
    let mut problems = Vec::new();
    let set = |v: &Vec<String>| v.iter().cloned().collect::<BTreeSet<String>>();
    if let Some(want) = &e.to
        && set(want) != to
    {
        problems.push(format!("expected to [{}]; {decided}", want.join(", ")));
    }
    if let Some(want) = &e.copy
        && set(want) != copy
    {
        problems.push(format!("expected copy [{}]; {decided}", want.join(", ")));
    }
    let missed: Vec<&str> =
        e.receive.iter().filter(|n| !to.contains(*n) && !copy.contains(*n)).map(String::as_str).collect();
    if !missed.is_empty() {
        problems.push(format!("expected {} to receive it; {decided}", missed.join(", ")));
    }
    let reached: Vec<&String> = e.not.iter().filter(|n| to.contains(*n) || copy.contains(*n)).collect();
    if !reached.is_empty() {
        problems.push(format!(
            "expected {} not to receive it; {decided}",
            reached.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(want) = &e.rules
        && set(want) != deciding
    {
        problems.push(format!("expected the rules [{}] to decide; {decided}", want.join(", ")));
    }
    for (recipient, pointers) in &e.removed {
        let Some(d) = unit.addressed.deliveries.iter().find(|d| d.routed.id.to_string() == *recipient) else {
            problems.push(format!("expected {recipient} to receive it with fields removed; {decided}"));
            continue;
        };
        let removed: BTreeSet<&str> = d.removed.iter().map(|r| r.pointer.as_str()).collect();
        let missing: Vec<&str> = pointers.iter().map(String::as_str).filter(|p| !removed.contains(p)).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "expected {} removed for {recipient}; removed were [{}]",
                missing.join(", "),
                removed.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    problems
}
