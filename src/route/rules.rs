//! Routing rules (`config/rules.yaml`, or every `config/rules/*.yaml` in name order), as
//! operators write them and as the router runs them.
//!
//! A rule has a name, a condition (message types, sender kinds, and an optional CEL expression
//! over `message`, `sender` and `case`), targets (`to`, and copies in `copy`) and a fallback for
//! targets that are not connected. Every rule whose condition holds adds its targets.

use std::collections::{BTreeSet, HashSet};

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::check;
use super::divisions::{Divisions, Level};
use super::recipient::Recipient;
use super::regions::Regions;
use crate::model::schema::Schemas;
use crate::model::{AgencyId, AgencyKind, SenderKind};

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesFile {
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSpec {
    pub name: Spanned<String>,
    /// The section of the opinion the rule implements (informational).
    #[serde(default)]
    pub section: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Canonical message types the rule applies to; all when absent.
    #[serde(default)]
    pub types: Option<Vec<Spanned<String>>>,
    /// Kinds of sender the rule applies to; all when absent.
    #[serde(default)]
    pub senders: Option<Vec<Spanned<String>>>,
    /// A CEL expression over `message`, `sender` and `case`.
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    #[serde(default)]
    pub to: Vec<TargetSpec>,
    #[serde(default)]
    pub copy: Vec<TargetSpec>,
    #[serde(default)]
    pub fallback: Fallback,
}

/// One target; exactly one of its keys (besides `of`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetSpec {
    /// The agency of this kind at the same division (`counterpart`: the other of ip_office and
    /// procuratorate).
    #[serde(default)]
    pub same_level: Option<Spanned<String>>,
    /// The agency of this kind at the superior division.
    #[serde(default)]
    pub superior: Option<Spanned<String>>,
    /// The national agency of this kind.
    #[serde(default)]
    pub national: Option<Spanned<String>>,
    /// A fixed agency, `KIND:DIVISION`.
    #[serde(default)]
    pub agency: Option<Spanned<String>>,
    /// A fixed hub, by region key.
    #[serde(default)]
    pub hub: Option<Spanned<String>>,
    /// `touched`: the hub of every region the case touches in two or more provinces.
    #[serde(default)]
    pub hubs: Option<Spanned<String>>,
    /// A named feed, such as `public`.
    #[serde(default)]
    pub feed: Option<Spanned<String>>,
    /// `sender`: the sender of the message this one answers (its `inreplyto`); `requester`: the
    /// agency that first asked, when that message passed a request on (an escalation).
    #[serde(default)]
    pub reply_to: Option<Spanned<String>>,
    /// The agencies (or hubs) the message lists at this JSON pointer into the event, e.g.
    /// `/data/participants`: one id, or an array of them.
    #[serde(default)]
    pub listed: Option<Spanned<String>>,
    /// The connected agencies of a key region: the sending hub's (`sender`), or the region whose
    /// key the message gives at a JSON pointer (`/data/audience/region`).
    #[serde(default)]
    pub members_of: Option<Spanned<String>>,
    /// For `members_of`: only agencies of these kinds (all when absent).
    #[serde(default)]
    pub kinds: Option<Vec<Spanned<String>>>,
    /// For `members_of`: only agencies at these levels (all when absent).
    #[serde(default)]
    pub levels: Option<Vec<Spanned<String>>>,
    /// For `members_of`: a JSON pointer to an object of the message with `kinds` and `levels`
    /// lists that narrow the members further (the message's own audience).
    #[serde(default)]
    pub audience: Option<Spanned<String>>,
    /// For `same_level` and `superior`: relative to the `sender` (default), to each of the
    /// `case`'s divisions, to the agency this message answers (`replying_to`), or to the agency
    /// the message names at a JSON pointer (`/data/evaluation/agency`).
    #[serde(default)]
    pub of: Option<Spanned<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Of {
    #[default]
    Sender,
    Case,
    /// The agency whose message this one answers.
    ReplyingTo,
    /// The agency the message names at this JSON pointer into the event.
    At(String),
}

/// Which region `members_of` takes the members of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegionRef {
    /// The sending hub's region.
    Sender,
    /// The region whose key the message gives at this JSON pointer.
    At(String),
}

/// Who among a region's members a `members_of` target keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience {
    /// Only these kinds (all when `None`).
    pub kinds: Option<Vec<AgencyKind>>,
    /// Only these levels (all when `None`).
    pub levels: Option<Vec<Level>>,
    /// The message's own `kinds` and `levels`, at this JSON pointer.
    pub from_message: Option<String>,
}

/// Whom `reply_to` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whom {
    /// The sender of the message this one answers.
    Sender,
    /// The agency that first asked: the sender of the request an escalation passed on.
    Requester,
}

/// What happens when a target agency is not connected (not configured in agencies.yaml).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The message waits in the agency's inbox until it connects.
    #[default]
    Hold,
    /// The message goes to the nearest connected superior agency of the same kind.
    Superior,
}

/// A kind as a target names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindRef {
    Kind(AgencyKind),
    /// ip_office ↔ procuratorate.
    Counterpart,
    /// The kind of the agency `of` names (`superior: same, of: /data/evaluation/agency`).
    Same,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    SameLevel,
    Superior,
    National,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Relative {
        relation: Relation,
        kind: KindRef,
        of: Of,
    },
    Fixed(Recipient),
    TouchedHubs,
    /// The sender of the message this one answers, or the agency that first asked.
    ReplyTo(Whom),
    /// The agencies or hubs the message lists at a JSON pointer.
    Listed(String),
    /// The connected agencies of a region, narrowed by an audience.
    MembersOf {
        region: RegionRef,
        audience: Audience,
    },
}

impl std::fmt::Display for Target {
    /// As an operator would write it in `rules.yaml`, shortened.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Relative { relation, kind, of } => {
                let relation = match relation {
                    Relation::SameLevel => "same_level",
                    Relation::Superior => "superior",
                    Relation::National => "national",
                };
                match kind {
                    KindRef::Kind(k) => write!(f, "{relation}: {k}")?,
                    KindRef::Counterpart => write!(f, "{relation}: counterpart")?,
                    KindRef::Same => write!(f, "{relation}: same")?,
                }
                match of {
                    Of::Sender => Ok(()),
                    Of::Case => write!(f, " (of: case)"),
                    Of::ReplyingTo => write!(f, " (of: replying_to)"),
                    Of::At(pointer) => write!(f, " (of: {pointer})"),
                }
            }
            Target::Fixed(recipient) => write!(f, "{recipient}"),
            Target::TouchedHubs => write!(f, "hubs: touched"),
            Target::ReplyTo(Whom::Sender) => write!(f, "reply_to: sender"),
            Target::ReplyTo(Whom::Requester) => write!(f, "reply_to: requester"),
            Target::Listed(pointer) => write!(f, "listed: {pointer}"),
            Target::MembersOf { region, audience } => {
                match region {
                    RegionRef::Sender => write!(f, "members_of: sender")?,
                    RegionRef::At(pointer) => write!(f, "members_of: {pointer}")?,
                }
                if let Some(kinds) = &audience.kinds {
                    let kinds: Vec<String> = kinds.iter().map(ToString::to_string).collect();
                    write!(f, " (kinds: {})", kinds.join(", "))?;
                }
                if let Some(levels) = &audience.levels {
                    write!(f, " (levels: {levels:?})")?;
                }
                if let Some(pointer) = &audience.from_message {
                    write!(f, " (audience: {pointer})")?;
                }
                Ok(())
            }
        }
    }
}

/// A compiled rule.
pub struct Rule {
    pub name: String,
    /// Where its name is written.
    pub at: Location,
    pub section: Option<String>,
    pub description: Option<String>,
    pub types: Option<HashSet<&'static str>>,
    pub senders: Option<Vec<SenderKind>>,
    pub when: Option<Condition>,
    pub to: Vec<Target>,
    pub copy: Vec<Target>,
    pub fallback: Fallback,
}

/// The variables a condition may use.
pub const VARIABLES: [&str; 5] = ["message", "sender", "case", "replying_to", "requester"];

/// A compiled CEL condition, with the variables it reads (so that only those are built).
pub struct Condition {
    pub source: String,
    pub program: cel::Program,
    /// Which of [`VARIABLES`] it reads.
    pub reads: [bool; VARIABLES.len()],
}

pub(crate) struct RuleError {
    pub at: Location,
    /// For a finding in a condition: its character offset into the condition's text.
    pub offset: Option<usize>,
    pub message: String,
}

/// Compiles the rules, checking names, types, kinds, conditions (their fields, types and
/// literals, [`check`]) and targets.
pub(crate) fn compile(
    specs: Vec<RuleSpec>,
    divisions: &Divisions,
    regions: &Regions,
    schemas: &Schemas,
) -> (Vec<Rule>, Vec<RuleError>) {
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    let mut names = HashSet::new();
    let mut findings: Vec<RuleError> = Vec::new();
    let mut err = |at: Location, message: String| errors.push(RuleError { at, offset: None, message });
    for spec in specs {
        let name = spec.name.value.clone();
        if !names.insert(name.clone()) {
            err(spec.name.referenced, format!("rule `{name}` is defined twice"));
        }
        // Lists written empty; a list emptied by an unknown entry is reported at that entry.
        let written_empty =
            spec.types.as_ref().is_some_and(Vec::is_empty) || spec.senders.as_ref().is_some_and(Vec::is_empty);
        let types = spec.types.map(|list| {
            let mut set = HashSet::new();
            for t in list {
                match schemas.lookup(&t.value) {
                    Some(mt) => {
                        set.insert(mt.name);
                    }
                    None => err(
                        t.referenced,
                        format!("rule `{name}`: unknown message type `{}`; the rule could never match", t.value),
                    ),
                }
            }
            set
        });
        let senders = spec.senders.map(|list| {
            list.iter()
                .filter_map(|k| match k.value.parse::<SenderKind>() {
                    Ok(kind) => Some(kind),
                    Err(e) => {
                        err(k.referenced, format!("rule `{name}`: {e}"));
                        None
                    }
                })
                .collect()
        });
        let when = spec.when.and_then(|w| match cel::Program::compile(&w.value) {
            Ok(program) => {
                let mut free = BTreeSet::new();
                free_variables(program.expression(), &mut Vec::new(), &mut free);
                let unknown: Vec<String> = free.iter().filter(|v| !VARIABLES.contains(&v.as_str())).cloned().collect();
                if unknown.is_empty() {
                    let mut reads = [false; VARIABLES.len()];
                    for (i, v) in VARIABLES.iter().enumerate() {
                        reads[i] = free.contains(*v);
                    }
                    for f in check::check(&program, divisions, regions, schemas) {
                        findings.push(RuleError {
                            at: w.referenced,
                            offset: Some(f.offset),
                            message: format!("rule `{name}`: {}", f.message),
                        });
                    }
                    Some(Condition { source: w.value.clone(), program, reads })
                } else {
                    err(
                        w.referenced,
                        format!(
                            "rule `{name}`: unknown variable {}; conditions can use message, sender, case, replying_to and requester",
                            unknown.join(", ")
                        ),
                    );
                    None
                }
            }
            Err(e) => {
                err(w.referenced, format!("rule `{name}`: the condition is not valid CEL: {e}"));
                None
            }
        });
        if written_empty {
            err(spec.name.referenced, format!("rule `{name}` can never match: its `types` or `senders` list is empty"));
        }
        if spec.to.is_empty() && spec.copy.is_empty() {
            err(spec.name.referenced, format!("rule `{name}` has no target: give it `to` or `copy`"));
        }
        let mut target = |t: &TargetSpec| compile_target(t, &name, spec.name.referenced, divisions, regions, &mut err);
        let to: Vec<Target> = spec.to.iter().filter_map(&mut target).collect();
        let copy: Vec<Target> = spec.copy.iter().filter_map(&mut target).collect();
        let counterpart =
            to.iter().chain(&copy).any(|t| matches!(t, Target::Relative { kind: KindRef::Counterpart, .. }));
        let without: Option<&Vec<SenderKind>> = senders.as_ref();
        if counterpart
            && without.is_some_and(|kinds| {
                !kinds.is_empty()
                    && kinds
                        .iter()
                        .all(|k| !matches!(k, SenderKind::Agency(AgencyKind::IpOffice | AgencyKind::Procuratorate)))
            })
        {
            err(
                spec.name.referenced,
                format!(
                    "rule `{name}`: `counterpart` is impossible for its senders (only ip_office and procuratorate have one)"
                ),
            );
        }
        rules.push(Rule {
            name,
            at: spec.name.referenced,
            section: spec.section,
            description: spec.description,
            types,
            senders,
            when,
            to,
            copy,
            fallback: spec.fallback,
        });
    }
    errors.extend(findings);
    (rules, errors)
}

/// The variables an expression reads that no comprehension (`exists`, `all`, `map`, …) binds.
fn free_variables(e: &cel::IdedExpr, bound: &mut Vec<String>, out: &mut BTreeSet<String>) {
    use cel::common::ast::{EntryExpr, Expr};
    match &e.expr {
        Expr::Ident(name) => {
            if !bound.contains(name) {
                out.insert(name.clone());
            }
        }
        Expr::Call(c) => {
            c.target.iter().for_each(|t| free_variables(t, bound, out));
            c.args.iter().for_each(|a| free_variables(a, bound, out));
        }
        Expr::Select(s) => free_variables(&s.operand, bound, out),
        Expr::List(l) => l.elements.iter().for_each(|x| free_variables(x, bound, out)),
        Expr::Map(m) => m.entries.iter().for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => {
                free_variables(&me.key, bound, out);
                free_variables(&me.value, bound, out);
            }
            EntryExpr::StructField(f) => free_variables(&f.value, bound, out),
        }),
        Expr::Struct(st) => st.entries.iter().for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => free_variables(&me.value, bound, out),
            EntryExpr::StructField(f) => free_variables(&f.value, bound, out),
        }),
        Expr::Comprehension(c) => {
            free_variables(&c.iter_range, bound, out);
            free_variables(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                free_variables(part, bound, out);
            }
            bound.truncate(depth);
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn compile_target(
    t: &TargetSpec,
    rule: &str,
    rule_at: Location,
    divisions: &Divisions,
    regions: &Regions,
    err: &mut impl FnMut(Location, String),
) -> Option<Target> {
    let keys: Vec<(&str, &Spanned<String>)> = [
        ("same_level", &t.same_level),
        ("superior", &t.superior),
        ("national", &t.national),
        ("agency", &t.agency),
        ("hub", &t.hub),
        ("hubs", &t.hubs),
        ("feed", &t.feed),
        ("reply_to", &t.reply_to),
        ("listed", &t.listed),
        ("members_of", &t.members_of),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    .collect();
    let [(key, value)] = keys.as_slice() else {
        err(
            rule_at,
            format!(
                "rule `{rule}`: a target has exactly one of same_level, superior, national, agency, hub, hubs, feed, reply_to, listed, members_of"
            ),
        );
        return None;
    };
    let at = value.referenced;
    if let Some(of) = &t.of
        && !matches!(*key, "same_level" | "superior")
    {
        err(of.referenced, format!("rule `{rule}`: `of` applies to same_level and superior only"));
    }
    for (name, given) in
        [("kinds", t.kinds.is_some()), ("levels", t.levels.is_some()), ("audience", t.audience.is_some())]
    {
        if given && *key != "members_of" {
            err(at, format!("rule `{rule}`: `{name}` applies to members_of only"));
        }
    }
    let of = match &t.of {
        None => Of::Sender,
        Some(o) => match o.value.as_str() {
            "sender" => Of::Sender,
            "case" => Of::Case,
            "replying_to" => Of::ReplyingTo,
            p if p.starts_with('/') => Of::At(p.to_string()),
            other => {
                err(
                    o.referenced,
                    format!(
                        "rule `{rule}`: `of: {other}` is not sender, case, replying_to or a JSON pointer into the message (/data/...)"
                    ),
                );
                return None;
            }
        },
    };
    let kind = |err: &mut dyn FnMut(Location, String)| match value.value.as_str() {
        "counterpart" if *key == "same_level" => Some(KindRef::Counterpart),
        "same" if *key != "national" && of != Of::Case => Some(KindRef::Same),
        "same" => {
            err(
                at,
                format!("rule `{rule}`: `same` is the kind of the agency `of` names, and a case division has none"),
            );
            None
        }
        other => match other.parse::<AgencyKind>() {
            Ok(k) => Some(KindRef::Kind(k)),
            Err(e) => {
                err(at, format!("rule `{rule}`: {e}"));
                None
            }
        },
    };
    let pointer = |err: &mut dyn FnMut(Location, String)| {
        if value.value.starts_with('/') {
            Some(value.value.clone())
        } else {
            err(at, format!("rule `{rule}`: `{key}` takes a JSON pointer into the message, e.g. /data/participants"));
            None
        }
    };
    let relative = |relation, err: &mut dyn FnMut(Location, String)| {
        kind(err).map(|kind| Target::Relative { relation, kind, of: of.clone() })
    };
    match *key {
        "same_level" => relative(Relation::SameLevel, err),
        "superior" => relative(Relation::Superior, err),
        "national" => relative(Relation::National, err),
        "listed" => pointer(err).map(Target::Listed),
        "members_of" => {
            let region = match value.value.as_str() {
                "sender" => RegionRef::Sender,
                _ => RegionRef::At(pointer(err)?),
            };
            let kinds = t.kinds.as_ref().map(|ks| {
                ks.iter()
                    .filter_map(|k| {
                        k.value.parse::<AgencyKind>().map_err(|e| err(k.referenced, format!("rule `{rule}`: {e}"))).ok()
                    })
                    .collect()
            });
            let levels = t.levels.as_ref().map(|ls| {
                ls.iter()
                    .filter_map(|l| {
                        Level::named(&l.value).or_else(|| {
                            err(
                                l.referenced,
                                format!("rule `{rule}`: unknown level `{}`; expected national, province, prefecture or county", l.value),
                            );
                            None
                        })
                    })
                    .collect()
            });
            let from_message = match &t.audience {
                Some(a) if a.value.starts_with('/') => Some(a.value.clone()),
                Some(a) => {
                    err(
                        a.referenced,
                        format!("rule `{rule}`: `audience` takes a JSON pointer into the message, e.g. /data/audience"),
                    );
                    None
                }
                None => None,
            };
            Some(Target::MembersOf { region, audience: Audience { kinds, levels, from_message } })
        }
        "agency" => match value.value.parse::<AgencyId>() {
            Ok(a) if divisions.get(&a.division).is_some_and(|e| !e.grouping) => {
                Some(Target::Fixed(Recipient::Agency(a)))
            }
            Ok(a) => {
                err(at, format!("rule `{rule}`: {} is not a division of the table (or is a grouping row)", a.division));
                None
            }
            Err(e) => {
                err(at, format!("rule `{rule}`: {e}"));
                None
            }
        },
        "hub" => match regions.get(&value.value) {
            Some(r) => Some(Target::Fixed(Recipient::Hub(r.key.clone()))),
            None => {
                err(at, format!("rule `{rule}`: no region `{}` in regions.yaml", value.value));
                None
            }
        },
        "hubs" if value.value == "touched" => Some(Target::TouchedHubs),
        "reply_to" if value.value == "sender" => Some(Target::ReplyTo(Whom::Sender)),
        "reply_to" if value.value == "requester" => Some(Target::ReplyTo(Whom::Requester)),
        "reply_to" => {
            err(
                at,
                format!(
                    "rule `{rule}`: `reply_to` takes `sender` (the sender of the message this one answers) or `requester` (the agency that first asked)"
                ),
            );
            None
        }
        "hubs" => {
            err(
                at,
                format!(
                    "rule `{rule}`: `hubs` takes `touched` (the hubs of the regions the case touches in two or more provinces)"
                ),
            );
            None
        }
        _ => match value.value.parse::<Recipient>() {
            Ok(r @ Recipient::Feed(_)) => Some(Target::Fixed(r)),
            _ => {
                err(at, format!("rule `{rule}`: `{}` is not a feed name", value.value));
                None
            }
        },
    }
}
