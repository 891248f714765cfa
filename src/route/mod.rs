//! Routing: who receives a message. The rules (`config/rules.yaml`) name targets relative to the
//! sender or the case; the division table gives levels and superiors; the regions give hubs.
//! A message no rule routes goes to the operators' feed. Pure: no I/O.

pub mod divisions;
pub mod recipient;
pub mod regions;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

pub use divisions::Divisions;
pub use recipient::Recipient;
pub use regions::Regions;
use rules::{Fallback, KindRef, Of, Relation, Rule, Target, Whom};

use crate::model::{AgencyId, AgencyKind, Code, Detail, Division, Problem, types};
use crate::secrecy::Level;
use crate::secrecy::mask::Masking;

/// Whether a recipient is the addressee or receives a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Primary,
    Copy,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Copy => "copy",
        }
    }
}

/// One recipient, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Routed {
    pub id: Recipient,
    pub role: Role,
    /// The rules that chose it.
    pub rules: Vec<String>,
    /// Why, in words.
    pub reasons: Vec<String>,
    /// The fallback taken, when the target agency is not connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// The outcome of routing one message.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Routing {
    /// The names of the rules whose condition held.
    pub rules: Vec<String>,
    pub recipients: Vec<Routed>,
    /// Nothing routed the message: it went to the operators' feed.
    pub unrouted: bool,
    /// What the router noticed on the way (conditions that failed, targets that do not exist).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Whom a reply answers, as the store knows it: the sender of the message its `inreplyto` names,
/// and the agency that first asked (the same, unless that message passed a request on: an
/// escalation sent in the name of the office that could not determine).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub sender: String,
    pub requester: String,
}

/// What each recipient may see: the clearance of each kind of recipient with its overrides,
/// and how the public feed's copy is anonymised.
#[derive(Clone, Debug)]
pub struct Clearances {
    pub agency: Level,
    pub hub: Level,
    pub public: Level,
    pub operators: Level,
    pub agencies: HashMap<AgencyId, Level>,
    pub hubs: HashMap<String, Level>,
    pub masking: Masking,
}

/// The compiled routing configuration.
pub struct Router {
    pub divisions: Divisions,
    pub regions: Regions,
    rules: Vec<Rule>,
    /// For each message type, the indices of the rules that may apply to it.
    by_type: HashMap<&'static str, Vec<usize>>,
    env: Arc<cel::Env>,
    connected: HashSet<AgencyId>,
    pub clearances: Clearances,
    pub operators_feed: String,
}

impl Router {
    pub fn new(
        divisions: Divisions,
        regions: Regions,
        rules: Vec<Rule>,
        connected: HashSet<AgencyId>,
        clearances: Clearances,
        operators_feed: String,
    ) -> Router {
        let by_type = types::ALL
            .iter()
            .map(|t| {
                let indices = rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.types.as_ref().is_none_or(|ts| ts.contains(t.name)))
                    .map(|(i, _)| i)
                    .collect();
                (t.name, indices)
            })
            .collect();
        Router {
            divisions,
            regions,
            rules,
            by_type,
            env: Arc::new(cel::Env::stdlib()),
            connected,
            clearances,
            operators_feed,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The clearance of a recipient.
    pub fn clearance(&self, r: &Recipient) -> Level {
        let c = &self.clearances;
        match r {
            Recipient::Agency(a) => c.agencies.get(a).copied().unwrap_or(c.agency),
            Recipient::Hub(key) => c.hubs.get(key).copied().unwrap_or(c.hub),
            Recipient::Feed(name) if name == recipient::PUBLIC => c.public,
            Recipient::Feed(_) => c.operators,
        }
    }

    /// Routes a canonical event from `sender`. A case division or sender division that is not
    /// in the division table is refused (422 `unknown_division`): never a silent misroute.
    /// `reply` says whom the message answers, when the gateway knows it.
    pub fn route(&self, event: &Value, sender: &AgencyId, reply: Option<&Reply>) -> Result<Routing, Problem> {
        let divisions = self.case_divisions(event, sender)?;
        let message_type = event.get("type").and_then(Value::as_str).and_then(types::lookup);
        let candidates = message_type.and_then(|t| self.by_type.get(t.name)).map(Vec::as_slice).unwrap_or_default();

        let mut routing = Routing::default();
        let mut found: BTreeMap<Recipient, Routed> = BTreeMap::new();
        let mut context = cel::Context::with_env(self.env.clone());
        let mut built = [false; rules::VARIABLES.len()];
        for &i in candidates {
            let rule = &self.rules[i];
            if rule.senders.as_ref().is_some_and(|kinds| !kinds.contains(&sender.kind)) {
                continue;
            }
            if let Some(condition) = &rule.when {
                // Each variable is built once, and only when a condition reads it.
                for (v, needed) in condition.reads.iter().enumerate() {
                    if *needed && !built[v] {
                        self.add_variable(&mut context, v, event, sender, &divisions, reply);
                        built[v] = true;
                    }
                }
                let source = &condition.source;
                match condition.program.execute(&context) {
                    Ok(cel::Value::Bool(true)) => {}
                    Ok(cel::Value::Bool(false)) => continue,
                    Ok(other) => {
                        routing.notes.push(format!(
                            "rule `{}`: `{source}` gave {other:?}, not a boolean; the rule did not apply",
                            rule.name
                        ));
                        continue;
                    }
                    Err(e) => {
                        routing
                            .notes
                            .push(format!("rule `{}`: `{source}` failed ({e}); the rule did not apply", rule.name));
                        continue;
                    }
                }
            }
            routing.rules.push(rule.name.clone());
            for (role, targets) in [(Role::Primary, &rule.to), (Role::Copy, &rule.copy)] {
                for target in targets {
                    for (recipient, reason) in
                        self.resolve(target, sender, &divisions, reply, &rule.name, &mut routing.notes)
                    {
                        if recipient == Recipient::Agency(*sender) {
                            routing.notes.push(format!(
                                "rule `{}`: the sender is not sent its own message ({reason})",
                                rule.name
                            ));
                            continue;
                        }
                        let (recipient, fallback) = self.connect(recipient, rule.fallback);
                        let entry = found.entry(recipient.clone()).or_insert_with(|| Routed {
                            id: recipient,
                            role,
                            rules: Vec::new(),
                            reasons: Vec::new(),
                            fallback: None,
                        });
                        entry.role = entry.role.min(role);
                        if !entry.rules.contains(&rule.name) {
                            entry.rules.push(rule.name.clone());
                        }
                        entry.reasons.push(format!("{}: {reason}", role.as_str()));
                        entry.fallback = entry.fallback.take().or(fallback);
                    }
                }
            }
        }
        routing.recipients = found.into_values().collect();
        if routing.recipients.is_empty() {
            routing.unrouted = true;
            let why =
                if routing.rules.is_empty() { "no rule matched" } else { "the matching rules named no recipient" };
            routing.recipients.push(Routed {
                id: Recipient::Feed(self.operators_feed.clone()),
                role: Role::Primary,
                rules: Vec::new(),
                reasons: vec![format!("{why}: the operators' feed keeps the message")],
                fallback: None,
            });
        }
        Ok(routing)
    }

    /// The case's divisions, each checked against the table; the sender's division too.
    fn case_divisions(&self, event: &Value, sender: &AgencyId) -> Result<Vec<Division>, Problem> {
        let unknown =
            |pointer: String| Detail::new(pointer, "not a division of the GB/T 2260 table (config/divisions.csv)");
        let mut details = Vec::new();
        if !self.divisions.contains(&sender.division) {
            details.push(unknown("/sender".into()));
        }
        let mut out = Vec::new();
        let listed =
            event.pointer("/data/case/divisions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (i, v) in listed.iter().enumerate() {
            let Some(code) = v.as_str() else { continue };
            match Division::parse(code) {
                Ok(d) if self.divisions.contains(&d) => out.push(d),
                _ => details.push(unknown(format!("/data/case/divisions/{i}"))),
            }
        }
        if details.is_empty() {
            Ok(out)
        } else {
            Err(Problem::new(Code::UnknownDivision, "the message names a division that does not exist")
                .with_details(details))
        }
    }

    /// Adds variable `which` of [`rules::VARIABLES`] to a condition context: `message` (the
    /// event), `sender`, `case`, `replying_to` (the agency whose message this one answers, or
    /// empty) or `requester` (the agency that first asked, or empty).
    fn add_variable(
        &self,
        ctx: &mut cel::Context<'_, '_>,
        which: usize,
        event: &Value,
        sender: &AgencyId,
        divisions: &[Division],
        reply: Option<&Reply>,
    ) {
        let value = match which {
            0 => event.clone(),
            3 => json!(reply.map_or("", |r| r.sender.as_str())),
            4 => json!(reply.map_or("", |r| r.requester.as_str())),
            1 => {
                let level = self.divisions.get(&sender.division).map(|e| e.level.as_str()).unwrap_or("unknown");
                json!({"id": sender.to_string(), "kind": sender.kind.as_str(), "division": sender.division.as_str(),
                       "level": level, "province": divisions::province_of(sender.division.as_str()).as_str()})
            }
            _ => {
                let provinces: BTreeSet<String> =
                    divisions.iter().map(|d| divisions::province_of(d.as_str()).to_string()).collect();
                let regions: BTreeSet<&str> =
                    divisions.iter().flat_map(|d| self.regions.of(d)).map(|r| r.key.as_str()).collect();
                let touched: Vec<&str> = self.regions.touched(divisions).iter().map(|r| r.key.as_str()).collect();
                json!({"divisions": divisions.iter().map(Division::as_str).collect::<Vec<_>>(), "provinces": provinces,
                       "regions": regions, "touched": touched})
            }
        };
        // Plain JSON always converts.
        let _ = ctx.add_variable(rules::VARIABLES[which], value);
    }

    /// The recipients a target names, each with the reason.
    fn resolve(
        &self,
        target: &Target,
        sender: &AgencyId,
        case: &[Division],
        reply: Option<&Reply>,
        rule: &str,
        notes: &mut Vec<String>,
    ) -> Vec<(Recipient, String)> {
        match target {
            Target::ReplyTo(whom) => {
                let (agency, why) = match whom {
                    Whom::Sender => (reply.map(|r| &r.sender), "asked: this answers its message"),
                    Whom::Requester => (reply.map(|r| &r.requester), "first asked: this answers its request"),
                };
                match agency.and_then(|r| r.parse::<Recipient>().ok()) {
                    Some(r) => vec![(r.clone(), format!("{r} {why}"))],
                    None => {
                        notes.push(format!(
                            "rule `{rule}`: the message this one answers is not known, so neither is who asked"
                        ));
                        Vec::new()
                    }
                }
            }
            Target::Fixed(r) => vec![(r.clone(), format!("{r}, named by the rule"))],
            Target::TouchedHubs => self
                .regions
                .touched(case)
                .into_iter()
                .map(|r| {
                    (Recipient::Hub(r.key.clone()), format!("the case touches {} in two or more provinces", r.name))
                })
                .collect(),
            Target::Relative { relation, kind, of } => {
                let kind = match kind {
                    KindRef::Kind(k) => *k,
                    KindRef::Counterpart => match sender.kind {
                        AgencyKind::IpOffice => AgencyKind::Procuratorate,
                        AgencyKind::Procuratorate => AgencyKind::IpOffice,
                        other => {
                            notes.push(format!("rule `{rule}`: a {other} has no counterpart"));
                            return Vec::new();
                        }
                    },
                };
                let bases: Vec<(Division, String)> = match of {
                    Of::Sender => vec![(sender.division, format!("the sender {sender}"))],
                    Of::ReplyingTo => match reply.and_then(|r| r.sender.parse::<AgencyId>().ok()) {
                        Some(a) => vec![(a.division, format!("{a}, whose message this answers"))],
                        None => {
                            notes.push(format!(
                                "rule `{rule}`: the message this one answers is not known, so neither is its division"
                            ));
                            return Vec::new();
                        }
                    },
                    Of::Case => case
                        .iter()
                        .map(|d| (*d, format!("case division {d}")))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                };
                let mut out = Vec::new();
                for (base, whose) in bases {
                    let division = match relation {
                        Relation::SameLevel => Some(base),
                        Relation::National => Some(Division::NATIONAL),
                        Relation::Superior => self.divisions.superior(&base),
                    };
                    match division {
                        Some(d) => {
                            let what = match relation {
                                Relation::SameLevel => "at the same level as",
                                Relation::Superior => "superior to",
                                Relation::National => "national, for",
                            };
                            out.push((Recipient::Agency(AgencyId::new(kind, d)), format!("{kind} {what} {whose}")));
                        }
                        None => notes.push(format!("rule `{rule}`: {whose} has no superior")),
                    }
                }
                out
            }
        }
    }

    /// Applies the fallback to an agency that is not connected.
    fn connect(&self, recipient: Recipient, fallback: Fallback) -> (Recipient, Option<String>) {
        let Recipient::Agency(agency) = recipient else { return (recipient, None) };
        if self.connected.contains(&agency) {
            return (recipient, None);
        }
        if fallback == Fallback::Superior {
            let up = self
                .divisions
                .superiors(&agency.division)
                .into_iter()
                .map(|d| AgencyId::new(agency.kind, d))
                .find(|a| self.connected.contains(a));
            if let Some(up) = up {
                return (Recipient::Agency(up), Some(format!("{agency} is not connected: sent to its superior {up}")));
            }
            return (
                recipient,
                Some(format!("{agency} and its superiors are not connected: held in {agency}'s inbox")),
            );
        }
        (recipient, Some(format!("{agency} is not connected: held in its inbox until it connects")))
    }
}
