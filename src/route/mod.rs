//! Routing: who receives a message. The rules (`config/rules.yaml`) name targets relative to the
//! sender or the case; the division table gives levels and superiors; the regions give hubs.
//! A message no rule routes goes to the operators' feed. Pure: no I/O.

pub mod check;
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
use rules::{Audience, Fallback, KindRef, Of, RegionRef, Relation, Rule, Target, Whom};

use crate::model::types::MessageType;
use crate::model::{AgencyId, AgencyKind, Code, Detail, Division, Problem, Sender};
use crate::secrecy::Level;
use crate::secrecy::mask::Masking;

/// Whether a recipient is the addressee or receives a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Routed {
    /// An agency `KIND:DIVISION`, a hub `hub:REGION`, or a feed (`public`, the operators').
    #[schema(value_type = String)]
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
    /// The rules whose condition failed on this message (and so did not apply), each with why
    /// (`rule: why`; the why names members and types, never values of the message).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// Whom a reply answers, as the store knows it: the sender of the message its `inreplyto` names,
/// and the agency that first asked (the same, unless that message passed a request on: an
/// escalation sent in the name of the office that could not determine).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub sender: String,
    pub requester: String,
}

/// Why a condition failed, in words that name members and types but never values of the message.
fn failure(e: &cel::ExecutionError) -> String {
    match e {
        cel::ExecutionError::NoSuchKey(key) => format!("the message has no member `{key}`"),
        cel::ExecutionError::UndeclaredReference(name) => format!("`{name}` is not defined"),
        cel::ExecutionError::UnsupportedBinaryOperator(op, _, _) => {
            format!("`{op}` between values of incompatible types")
        }
        cel::ExecutionError::UnexpectedType { got, want } => format!("a {got} where a {want} was expected"),
        cel::ExecutionError::ValuesNotComparable(_, _) => "values of incompatible types compared".to_string(),
        _ => "the condition could not be evaluated".to_string(),
    }
}

/// What a target is resolved against: the event, its sender, the case's divisions, whom it
/// answers, and the rule (for notes).
struct Resolving<'a> {
    event: &'a Value,
    sender: &'a Sender,
    case: &'a [Division],
    reply: Option<&'a Reply>,
    rule: &'a str,
}

fn unknown_detail(pointer: impl Into<String>) -> Detail {
    Detail::new(pointer, "not a division of the GB/T 2260 table (config/divisions.csv)")
}

fn unknown_division(pointer: &str) -> Problem {
    Problem::new(Code::UnknownDivision, "the message names an agency whose division does not exist")
        .with_details(vec![unknown_detail(pointer)])
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
        catalogue: &[&'static MessageType],
        connected: HashSet<AgencyId>,
        clearances: Clearances,
        operators_feed: String,
    ) -> Router {
        let by_type = catalogue
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

    /// Whether `name` is a message type of the catalogue the router was built with.
    pub fn knows_type(&self, name: &str) -> bool {
        self.by_type.contains_key(name)
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
    /// in the division table is refused (422 `unknown_division`), as is an agency the message
    /// lists for a target with a division the table lacks, or a region it names that does not
    /// exist (422 `unknown_region`): never a silent misroute. `reply` says whom the message
    /// answers, when the gateway knows it.
    pub fn route(&self, event: &Value, sender: &Sender, reply: Option<&Reply>) -> Result<Routing, Problem> {
        let divisions = self.case_divisions(event, sender)?;
        let message_type = event.get("type").and_then(Value::as_str);
        let candidates = message_type.and_then(|t| self.by_type.get(t)).map(Vec::as_slice).unwrap_or_default();

        let mut routing = Routing::default();
        let mut found: BTreeMap<Recipient, Routed> = BTreeMap::new();
        let mut context = cel::Context::with_env(self.env.clone());
        let mut built = [false; rules::VARIABLES.len()];
        let mut refused: Option<Problem> = None;
        let own = Recipient::from(sender);
        for &i in candidates {
            let rule = &self.rules[i];
            if rule.senders.as_ref().is_some_and(|kinds| !kinds.contains(&sender.kind())) {
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
                        routing.failures.push(format!("{}: the condition is not a boolean", rule.name));
                        continue;
                    }
                    Err(e) => {
                        routing
                            .notes
                            .push(format!("rule `{}`: `{source}` failed ({e}); the rule did not apply", rule.name));
                        routing.failures.push(format!("{}: {}", rule.name, failure(&e)));
                        continue;
                    }
                }
            }
            routing.rules.push(rule.name.clone());
            for (role, targets) in [(Role::Primary, &rule.to), (Role::Copy, &rule.copy)] {
                for target in targets {
                    let at = Resolving { event, sender, case: &divisions, reply, rule: &rule.name };
                    let resolved = match self.resolve(target, &at, &mut routing.notes) {
                        Ok(resolved) => resolved,
                        Err(p) => {
                            refused.get_or_insert(p);
                            continue;
                        }
                    };
                    for (recipient, reason) in resolved {
                        if recipient == own {
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
        if let Some(p) = refused {
            return Err(p);
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
    fn case_divisions(&self, event: &Value, sender: &Sender) -> Result<Vec<Division>, Problem> {
        let unknown =
            |pointer: String| Detail::new(pointer, "not a division of the GB/T 2260 table (config/divisions.csv)");
        let mut details = Vec::new();
        if let Sender::Agency(a) = sender
            && !self.divisions.contains(&a.division)
        {
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
        sender: &Sender,
        divisions: &[Division],
        reply: Option<&Reply>,
    ) {
        let value = match which {
            0 => event.clone(),
            3 => json!(reply.map_or("", |r| r.sender.as_str())),
            4 => json!(reply.map_or("", |r| r.requester.as_str())),
            1 => match sender {
                Sender::Agency(a) => {
                    let level = self.divisions.get(&a.division).map(|e| e.level.as_str()).unwrap_or("unknown");
                    let regions: Vec<&str> = self.regions.of(&a.division).iter().map(|r| r.key.as_str()).collect();
                    json!({"id": a.to_string(), "kind": a.kind.as_str(), "division": a.division.as_str(),
                           "level": level, "province": divisions::province_of(a.division.as_str()).as_str(),
                           "regions": regions})
                }
                // A hub has no division: its own region instead.
                Sender::Hub(key) => json!({"id": sender.to_string(), "kind": "hub", "division": "", "level": "",
                                            "province": "", "regions": [key]}),
            },
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

    /// The recipients a target names, each with the reason; a refusal when the message names
    /// an agency or region for the target that does not exist.
    fn resolve(
        &self,
        target: &Target,
        at: &Resolving<'_>,
        notes: &mut Vec<String>,
    ) -> Result<Vec<(Recipient, String)>, Problem> {
        let rule = at.rule;
        Ok(match target {
            Target::ReplyTo(whom) => {
                let (agency, why) = match whom {
                    Whom::Sender => (at.reply.map(|r| &r.sender), "asked: this answers its message"),
                    Whom::Requester => (at.reply.map(|r| &r.requester), "first asked: this answers its request"),
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
                .touched(at.case)
                .into_iter()
                .map(|r| {
                    (Recipient::Hub(r.key.clone()), format!("the case touches {} in two or more provinces", r.name))
                })
                .collect(),
            Target::Listed(pointer) => self.listed(at.event, pointer)?,
            Target::MembersOf { region, audience } => self.members(at, region, audience, notes)?,
            Target::Relative { relation, kind, of } => {
                let named = match of {
                    Of::At(pointer) => Some(self.agency_at(at.event, pointer)?),
                    _ => None,
                };
                let Some(bases) = self.bases(of, named, at, notes) else { return Ok(Vec::new()) };
                let mut out = Vec::new();
                for (base, base_kind, whose) in bases {
                    let kind = match (kind, base_kind) {
                        (KindRef::Kind(k), _) => *k,
                        (KindRef::Counterpart, Some(AgencyKind::IpOffice)) => AgencyKind::Procuratorate,
                        (KindRef::Counterpart, Some(AgencyKind::Procuratorate)) => AgencyKind::IpOffice,
                        (KindRef::Same, Some(k)) => k,
                        (KindRef::Counterpart, Some(other)) => {
                            notes.push(format!("rule `{rule}`: a {other} has no counterpart"));
                            continue;
                        }
                        (_, None) => {
                            notes.push(format!("rule `{rule}`: {whose} is of no agency kind"));
                            continue;
                        }
                    };
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
        })
    }

    /// The divisions a relative target starts from, with the kind of the agency there (for
    /// `counterpart` and `same`) and how to say it; `None` (with a note) when there are none.
    fn bases(
        &self,
        of: &Of,
        named: Option<AgencyId>,
        at: &Resolving<'_>,
        notes: &mut Vec<String>,
    ) -> Option<Vec<(Division, Option<AgencyKind>, String)>> {
        let rule = at.rule;
        Some(match of {
            Of::Sender => match at.sender {
                Sender::Agency(a) => vec![(a.division, Some(a.kind), format!("the sender {a}"))],
                Sender::Hub(_) => {
                    notes.push(format!("rule `{rule}`: the sender {} is a hub, which has no division", at.sender));
                    return None;
                }
            },
            Of::ReplyingTo => match at.reply.and_then(|r| r.sender.parse::<AgencyId>().ok()) {
                Some(a) => vec![(a.division, Some(a.kind), format!("{a}, whose message this answers"))],
                None => {
                    notes.push(format!(
                        "rule `{rule}`: the message this one answers is not known (or is a hub's), so neither is its division"
                    ));
                    return None;
                }
            },
            Of::At(pointer) => match named {
                Some(a) => vec![(a.division, Some(a.kind), format!("{a}, named at {pointer}"))],
                None => return None,
            },
            Of::Case => at
                .case
                .iter()
                .map(|d| (*d, format!("case division {d}")))
                .collect::<BTreeSet<_>>()
                .into_iter()
                // `counterpart` of a case division: the sender's.
                .map(|(d, why)| (d, at.sender.agency().map(|a| a.kind), why))
                .collect(),
        })
    }

    /// The agency the event names at `pointer`: refused when it is absent, not an agency, or
    /// of a division the table lacks (the schema has made sure of the form already).
    fn agency_at(&self, event: &Value, pointer: &str) -> Result<AgencyId, Problem> {
        let value = event.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
        match value.parse::<AgencyId>() {
            Ok(a) if self.divisions.get(&a.division).is_some_and(|e| !e.grouping) => Ok(a),
            Ok(_) => Err(unknown_division(pointer)),
            Err(_) => {
                Err(Problem::new(Code::SchemaViolation, "the message does not name the agency its routing needs")
                    .with_details(vec![Detail::new(pointer, "expected an agency id, KIND:DIVISION")]))
            }
        }
    }

    /// The agencies and hubs the event lists at `pointer` (one id or an array of them).
    fn listed(&self, event: &Value, pointer: &str) -> Result<Vec<(Recipient, String)>, Problem> {
        let items: Vec<(String, &Value)> = match event.pointer(pointer) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().enumerate().map(|(i, v)| (format!("{pointer}/{i}"), v)).collect(),
            Some(one) => vec![(pointer.to_string(), one)],
        };
        let mut out = Vec::new();
        let mut details = Vec::new();
        let mut code = Code::UnknownDivision;
        for (at, item) in items {
            match item.as_str().map(str::parse::<Sender>) {
                Some(Ok(Sender::Agency(a))) if self.divisions.get(&a.division).is_some_and(|e| !e.grouping) => {
                    out.push((Recipient::Agency(a), format!("{a}, listed at {at}")))
                }
                Some(Ok(Sender::Hub(key))) if self.regions.get(&key).is_some() => {
                    out.push((Recipient::Hub(key.clone()), format!("hub:{key}, listed at {at}")))
                }
                Some(Ok(Sender::Hub(_))) => {
                    code = Code::UnknownRegion;
                    details.push(Detail::new(at, "no such region in regions.yaml, so no such hub"));
                }
                Some(Ok(Sender::Agency(_))) => details.push(unknown_detail(at)),
                // A removed item (`null`) or what the schema let through but is no id.
                _ => {}
            }
        }
        if details.is_empty() {
            Ok(out)
        } else {
            let what = if code == Code::UnknownRegion {
                "a hub that does not exist"
            } else {
                "an agency whose division does not exist"
            };
            Err(Problem::new(code, format!("the message lists {what}")).with_details(details))
        }
    }

    /// The connected agencies of a region, narrowed by `audience`.
    fn members(
        &self,
        at: &Resolving<'_>,
        region: &RegionRef,
        audience: &Audience,
        notes: &mut Vec<String>,
    ) -> Result<Vec<(Recipient, String)>, Problem> {
        let region = match region {
            RegionRef::Sender => match at.sender {
                Sender::Hub(key) => self.regions.get(key),
                Sender::Agency(a) => {
                    notes.push(format!("rule `{}`: members_of: sender needs a hub as sender, not {a}", at.rule));
                    return Ok(Vec::new());
                }
            },
            RegionRef::At(pointer) => match at.event.pointer(pointer) {
                None | Some(Value::Null) => return Ok(Vec::new()),
                Some(v) => match v.as_str().and_then(|key| self.regions.get(key)) {
                    Some(r) => Some(r),
                    None => {
                        return Err(Problem::new(
                            Code::UnknownRegion,
                            "the message names a region that does not exist",
                        )
                        .with_details(vec![Detail::new(pointer.as_str(), "not a region of regions.yaml")]));
                    }
                },
            },
        };
        let Some(region) = region else {
            notes.push(format!("rule `{}`: the sending hub's region is not in regions.yaml", at.rule));
            return Ok(Vec::new());
        };
        let named = audience.from_message.as_deref().and_then(|p| at.event.pointer(p));
        let listed = |member: &str| -> Option<Vec<String>> {
            named
                .and_then(|a| a.get(member))
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(Value::as_str).map(str::to_string).collect())
        };
        let (kinds, levels) = (listed("kinds"), listed("levels"));
        let mut members: Vec<&AgencyId> = self
            .connected
            .iter()
            .filter(|a| region.contains(&a.division))
            .filter(|a| audience.kinds.as_ref().is_none_or(|ks| ks.contains(&a.kind)))
            .filter(|a| audience.levels.as_ref().is_none_or(|ls| ls.contains(&divisions::Level::of(&a.division))))
            .filter(|a| kinds.as_ref().is_none_or(|ks| ks.iter().any(|k| k == a.kind.as_str())))
            .filter(|a| {
                levels.as_ref().is_none_or(|ls| ls.iter().any(|l| l == divisions::Level::of(&a.division).as_str()))
            })
            .collect();
        members.sort();
        if members.is_empty() {
            notes.push(format!("rule `{}`: no connected agency of {} is in the audience", at.rule, region.name));
        }
        Ok(members
            .into_iter()
            .map(|a| {
                (Recipient::Agency(*a), format!("a member of {} ({})", region.name, divisions::Level::of(&a.division)))
            })
            .collect())
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
