//! Compiled mappings and their application to native messages.

use std::borrow::Cow;
use std::collections::HashMap;

// The mapping keeps sets of the pointers it read and looks each native field up in them, with
// foldhash instead of SipHash: several times faster on short keys. Its seed is random per
// process, and the shape limits (`limits.*`) bound how many fields a message can have.
use foldhash::{HashSet, HashSetExt};

use jsonptr::{Pointer, PointerBuf};
use serde_json::{Map, Value};

use super::convert::Convert;
use super::convert::pattern::Pattern;
use super::convert::text::normalized;
use super::spec::MarkingShape;
use crate::model::walk::WalkPath;
use crate::model::{AgencyId, Code, Detail, Division, MessageType, Sender};
use crate::secrecy::Level;

/// A compiled source format.
#[derive(Debug)]
pub struct Mapping {
    pub name: String,
    pub description: String,
    pub(super) envelope: EnvelopeRules,
    pub(super) types: HashMap<String, &'static MessageType>,
    pub(super) markings: Markings,
    pub(super) ignore: Vec<PointerBuf>,
    pub(super) expect: Vec<Condition>,
    pub(super) fields: Vec<Rule>,
}

#[derive(Debug)]
pub(super) struct EnvelopeRules {
    pub(super) id: Rule,
    pub(super) message_type: Rule,
    pub(super) sender: Rule,
    pub(super) sent_at: Rule,
    pub(super) sender_name: Option<Rule>,
    pub(super) classification: Option<Rule>,
    pub(super) in_reply_to: Option<Rule>,
}

#[derive(Debug, Default)]
pub(super) struct Markings {
    /// The format's codes for levels.
    pub(super) codes: HashMap<String, Level>,
    pub(super) fields: Option<FieldMarkings>,
    pub(super) items: Vec<ItemMarkings>,
}

impl Markings {
    /// The level a marking gives: a code of the format, or a level's name.
    fn level(&self, value: &Value) -> Option<Level> {
        let text = match value {
            Value::String(s) => normalized(s),
            Value::Number(n) => n.to_string().into(),
            _ => return None,
        };
        self.codes.get(text.as_ref()).copied().or_else(|| Level::parse(&text))
    }
}

#[derive(Debug)]
pub(super) struct FieldMarkings {
    pub(super) from: PointerBuf,
    pub(super) shape: MarkingShape,
    pub(super) path: PointerBuf,
    pub(super) level: PointerBuf,
    pub(super) one_or_many: bool,
}

#[derive(Debug)]
pub(super) struct ItemMarkings {
    pub(super) from: PointerBuf,
    pub(super) level: PointerBuf,
    pub(super) one_or_many: bool,
}

#[derive(Debug)]
pub(super) struct Rule {
    pub(super) to: PointerBuf,
    pub(super) source: Source,
    pub(super) convert: Option<Convert>,
    /// The patterns of a date or time converter; empty for its default form.
    pub(super) patterns: Vec<Pattern>,
    /// A single native value stands for a one-item list.
    pub(super) one_or_many: bool,
    pub(super) map: Option<EnumMap>,
    pub(super) default: Option<Value>,
    pub(super) required: bool,
    pub(super) when: Option<Condition>,
    pub(super) each: Option<Vec<Rule>>,
}

#[derive(Debug)]
pub(super) enum Source {
    FirstOf(Vec<PointerBuf>),
    Const(Value),
    /// The texts of all these fields, joined by the separator.
    Join(Vec<PointerBuf>, String),
}

/// The native fields a value came from: usually one (or none, for a constant); a joined value's
/// other fields in `more`, which stays empty (and unallocated) for every other value.
#[derive(Default)]
struct Sources {
    first: Option<PointerBuf>,
    more: Vec<PointerBuf>,
}

impl Sources {
    fn one(p: PointerBuf) -> Self {
        Sources { first: Some(p), more: Vec::new() }
    }

    fn iter(&self) -> impl Iterator<Item = &PointerBuf> {
        self.first.iter().chain(&self.more)
    }
}

/// A rule's value, the native fields it came from, and whether it keeps their structure.
struct Got {
    value: Value,
    sources: Sources,
    structural: bool,
}

/// The value of a `join` source.
enum Joined {
    Absent,
    Refused,
    Text(String, Sources),
}

#[derive(Debug)]
pub(super) struct EnumMap {
    pub(super) table: HashMap<String, Value>,
    pub(super) fallback: Option<Value>,
    /// An unlisted value goes on unchanged (the format's level codes before `classification`).
    pub(super) passthrough: bool,
    pub(super) listed: String,
}

#[derive(Debug)]
pub(super) struct Condition {
    pub(super) path: PointerBuf,
    pub(super) test: Test,
}

#[derive(Debug)]
pub(super) enum Test {
    Equals(Value),
    OneOf(Vec<Value>),
    Present(bool),
}

/// The sender as the message names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SenderRef {
    Division(Division),
    Agency(AgencyId),
    /// A regional hub, by its region's key.
    Hub(String),
    /// A sender that is neither: it names nobody the credentials could be.
    Unknown(String),
    Absent,
}

/// The envelope of a mapped message.
#[derive(Debug)]
pub struct Envelope {
    pub native_id: String,
    pub message_type: &'static MessageType,
    pub sender: SenderRef,
    pub sent_at: String,
    pub classification: Level,
    pub in_reply_to: Option<String>,
}

/// Where a canonical value came from. `target` is a pointer into the event (`/data/...` or
/// an attribute such as `/time`); `source` into the native message. When `structural`, the
/// value is the native value's structure unchanged, so a pointer below `source` maps to the
/// same pointer below `target`. `guards` are fields a `when` condition read to choose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    pub target: PointerBuf,
    pub source: Option<PointerBuf>,
    pub guards: Vec<PointerBuf>,
    pub structural: bool,
}

/// A field marking found in the native message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceMarking {
    /// The marked field.
    pub source: PointerBuf,
    pub level: Level,
    /// Where the marking itself is written.
    pub declared_at: PointerBuf,
}

/// What the markings section found: the markings, and the nodes that hold them (metadata,
/// not content: the scanner skips them and they are not delivered).
#[derive(Debug, Default)]
pub struct FoundMarkings {
    pub markings: Vec<SourceMarking>,
    pub metadata: Vec<PointerBuf>,
}

/// A mapped message: envelope, canonical data (without `sender.id`, `redactions` and
/// `classifiedFields`, which the pipeline adds) and the provenance of every value.
#[derive(Debug)]
pub struct Mapped {
    pub envelope: Envelope,
    pub data: Value,
    pub provenance: Vec<Provenance>,
}

impl Mapped {
    /// The event pointers that hold what came from the native field at `source` or below it.
    /// Where a value was converted, the whole converted value is named (more is removed, never
    /// less).
    pub fn targets_of(&self, source: &Pointer) -> Vec<PointerBuf> {
        let mut out: Vec<PointerBuf> = Vec::new();
        // The deepest values whose origin contains `source`.
        let deepest = self
            .provenance
            .iter()
            .filter_map(|p| p.source.as_ref().filter(|s| source.starts_with(s)).map(|s| s.count()))
            .max();
        for p in &self.provenance {
            let from_source = p.source.as_ref().and_then(|s| {
                if source.starts_with(s) && Some(s.count()) == deepest {
                    match source.strip_prefix(s) {
                        Some(rest) if p.structural => Some(p.target.concat(rest)),
                        _ => Some(p.target.clone()),
                    }
                } else if s.starts_with(source) {
                    Some(p.target.clone())
                } else {
                    None
                }
            });
            let from_guard = p.guards.iter().any(|g| g.starts_with(source) || source.starts_with(g));
            if let Some(t) = from_source.or_else(|| from_guard.then(|| p.target.clone())) {
                out.push(t);
            }
        }
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        out.dedup();
        // Removing a node removes everything below it.
        let mut kept: Vec<PointerBuf> = Vec::new();
        for t in out {
            if !kept.iter().any(|k| t.starts_with(k)) {
                kept.push(t);
            }
        }
        kept
    }
}

/// A refusal from the mapping stage: the code says which kind.
#[derive(Debug)]
pub struct MapError {
    pub code: Code,
    pub details: Vec<Detail>,
}

impl Mapping {
    /// The classification of the whole message, read first so that a state secret is refused
    /// before anything else is looked at.
    /// Also returns where the classification was read.
    pub fn classification(&self, doc: &Value) -> Result<(Level, Option<PointerBuf>), Vec<Detail>> {
        let Some(rule) = &self.envelope.classification else {
            return Ok((Level::Internal, None));
        };
        let mut run = Run::new();
        let value = run.value(rule, doc, &PointerBuf::root());
        if !run.errors.is_empty() {
            return Err(run.errors);
        }
        let (value, at) = match value {
            Some(got) => (Some(got.value), got.sources.first),
            None => (None, None),
        };
        match value {
            Some(Value::String(s)) => match Level::parse(&s) {
                Some(level) => Ok((level, at)),
                None => Err(vec![Detail::new(
                    at.map(|p| p.to_string()).unwrap_or_default(),
                    format!("unknown classification; expected one of {}", Level::NAMES),
                )]),
            },
            _ => Ok((Level::Internal, None)),
        }
    }

    /// The sender's field markings, each resolved against the message. A marking that is
    /// malformed, names an unknown level or points at nothing is an error: a typo must never
    /// let a marked field through.
    pub fn markings(&self, doc: &Value) -> Result<FoundMarkings, Vec<Detail>> {
        let mut found = FoundMarkings::default();
        let mut errors = Vec::new();
        let level_of = |v: Option<&Value>, at: &PointerBuf, errors: &mut Vec<Detail>| -> Option<Level> {
            let level = v.and_then(|v| self.markings.level(v));
            if level.is_none() {
                errors.push(Detail::new(at.as_str(), format!("expected a level: one of {}", Level::NAMES)));
            }
            level
        };
        if let Some(f) = &self.markings.fields
            && let Some(node) = present(doc, &f.from)
        {
            found.metadata.push(f.from.clone());
            match (f.shape, node) {
                (MarkingShape::PathMap, Value::Object(entries)) => {
                    for (path, level) in entries {
                        let declared_at = f.from.with_trailing_token(path.as_str());
                        let source = PointerBuf::from_tokens(path.trim_start_matches('/').split('/'));
                        if let Some(level) = level_of(Some(level), &declared_at, &mut errors) {
                            found.markings.push(SourceMarking { source, level, declared_at });
                        }
                    }
                }
                (MarkingShape::PointerList, node @ (Value::Array(_) | Value::Object(_)))
                    if node.is_array() || f.one_or_many =>
                {
                    for (entry, declared_at) in one_or_many(node, &f.from) {
                        let path = f.path.resolve(entry).ok().and_then(Value::as_str);
                        let Some(source) = path.and_then(|p| PointerBuf::parse(p).ok()) else {
                            errors.push(Detail::new(
                                declared_at.concat(&f.path).as_str(),
                                "expected a JSON pointer such as /body/analysis",
                            ));
                            continue;
                        };
                        if let Some(level) =
                            level_of(f.level.resolve(entry).ok(), &declared_at.concat(&f.level), &mut errors)
                        {
                            found.markings.push(SourceMarking { source, level, declared_at });
                        }
                    }
                }
                (MarkingShape::PathMap, _) => {
                    errors.push(Detail::new(f.from.as_str(), "expected an object of path: level"))
                }
                (MarkingShape::PointerList, _) => {
                    errors.push(Detail::new(f.from.as_str(), "expected an array of markings"))
                }
            }
        }
        for items in &self.markings.items {
            let list = match present(doc, &items.from) {
                None => continue,
                Some(node @ Value::Array(_)) => node,
                Some(node @ Value::Object(_)) if items.one_or_many => node,
                Some(_) => {
                    // Items whose levels cannot be read must not pass as unmarked.
                    let hint = if items.one_or_many { "" } else { " (set one_or_many if a single item comes alone)" };
                    errors.push(Detail::new(
                        items.from.as_str(),
                        format!("expected an array of items that carry their own level{hint}"),
                    ));
                    continue;
                }
            };
            for (item, source) in one_or_many(list, &items.from) {
                let declared_at = source.concat(&items.level);
                if let Some(v) = items.level.resolve(item).ok().filter(|v| !v.is_null()) {
                    found.metadata.push(declared_at.clone());
                    if let Some(level) = level_of(Some(v), &declared_at, &mut errors) {
                        found.markings.push(SourceMarking { source, level, declared_at });
                    }
                }
            }
        }
        for m in &found.markings {
            if !m.source.is_root() && m.source.resolve(doc).is_err() {
                errors.push(Detail::new(
                    m.declared_at.as_str(),
                    format!("marks {} but the message has no such field", m.source),
                ));
            }
        }
        if errors.is_empty() { Ok(found) } else { Err(errors) }
    }

    /// Maps the whole message: envelope, fields, and everything no rule reads into `extra`.
    pub fn map(&self, doc: &Value) -> Result<Mapped, MapError> {
        let mut run = Run::new();
        let root = PointerBuf::root();
        let fail = |code, details| Err(MapError { code, details });
        if !doc.is_object() {
            return fail(Code::MappingFailed, vec![Detail::new("", "the message must be a JSON object")]);
        }

        let e = &self.envelope;
        let native_type = run.string(&e.message_type, doc, "/type");
        let message_type = match native_type.as_deref() {
            Some(t) => match self.types.get(t) {
                Some(mt) => Some(*mt),
                None => {
                    let at = first_source(&e.message_type);
                    return fail(
                        Code::UnknownMessageType,
                        vec![Detail::new(
                            at,
                            format!(
                                "not a message type of format {}; expected one of {}",
                                self.name,
                                self.native_types().join(", ")
                            ),
                        )],
                    );
                }
            },
            None => None,
        };
        let native_id = run.string(&e.id, doc, "/nativeid");
        let sent_at = run.string(&e.sent_at, doc, "/time");
        let in_reply_to = e.in_reply_to.as_ref().and_then(|r| run.string(r, doc, "/inreplyto"));
        let classification = e
            .classification
            .as_ref()
            .and_then(|r| run.string(r, doc, "/classification"))
            .and_then(|s| Level::parse(&s))
            .unwrap_or(Level::Internal);
        let sender = match run.string(&e.sender, doc, "/sender") {
            None => SenderRef::Absent,
            Some(s) => match e.sender.convert {
                Some(Convert::Agency | Convert::Sender) => match s.parse::<Sender>() {
                    Ok(Sender::Agency(a)) => SenderRef::Agency(a),
                    Ok(Sender::Hub(key)) => SenderRef::Hub(key),
                    Err(_) => SenderRef::Unknown(s),
                },
                _ => Division::parse(&s).map(SenderRef::Division).unwrap_or(SenderRef::Unknown(s)),
            },
        };
        for c in &self.expect {
            run.check(c, doc);
        }

        let mut data = Value::Object(Map::new());
        let data_ptr = Pointer::from_static("/data");
        if let Some(rule) = &e.sender_name {
            run.apply(rule, doc, &root, &mut data, data_ptr);
        }
        for rule in &self.fields {
            run.apply(rule, doc, &root, &mut data, data_ptr);
        }
        if let Some(f) = &self.markings.fields {
            run.read(&f.from);
        }
        for p in &self.ignore {
            run.read(p);
        }
        run.collect_extra(doc, &mut data);

        if !run.errors.is_empty() {
            return fail(Code::MappingFailed, run.errors);
        }
        match (native_id, message_type, sent_at) {
            (Some(native_id), Some(message_type), Some(sent_at)) => Ok(Mapped {
                envelope: Envelope { native_id, message_type, sender, sent_at, classification, in_reply_to },
                data,
                provenance: run.provenance,
            }),
            _ => fail(Code::MappingFailed, vec![Detail::new("", "the envelope is incomplete")]),
        }
    }
}

fn first_source(rule: &Rule) -> String {
    match &rule.source {
        Source::FirstOf(ps) | Source::Join(ps, _) => ps.first().map(|p| p.to_string()).unwrap_or_default(),
        Source::Const(_) => String::new(),
    }
}

/// The items of a list; a node that is not an array is the only item (the XML-to-JSON form of a
/// repeated element with one member).
fn as_items(node: &Value) -> &[Value] {
    match node {
        Value::Array(items) => items,
        single => std::slice::from_ref(single),
    }
}

/// The items of a list, each with its pointer; a single item keeps its own pointer.
fn one_or_many<'v>(node: &'v Value, at: &Pointer) -> Vec<(&'v Value, PointerBuf)> {
    let indexed = node.is_array();
    as_items(node)
        .iter()
        .enumerate()
        .map(|(i, v)| (v, if indexed { at.with_trailing_token(i) } else { at.to_buf() }))
        .collect()
}

/// `a` followed by `b`, allocated once (`Pointer::concat` copies `a`, then grows the copy for
/// `b`); a pointer below the root is `b` itself.
fn join(a: &Pointer, b: &Pointer) -> PointerBuf {
    if a.is_root() {
        return b.to_buf();
    }
    let mut text = String::with_capacity(a.len() + b.len());
    text.push_str(a.as_str());
    text.push_str(b.as_str());
    // Two pointers end to end are a pointer; the check cannot fail, and costs no allocation.
    PointerBuf::parse(text).unwrap_or_else(|_| a.concat(b))
}

/// The node at `pointer`, unless it is absent or null.
fn present<'v>(doc: &'v Value, pointer: &Pointer) -> Option<&'v Value> {
    pointer.resolve(doc).ok().filter(|v| !v.is_null())
}

/// The state of one application: what was read, where values came from, what went wrong.
struct Run {
    reads: HashSet<PointerBuf>,
    provenance: Vec<Provenance>,
    errors: Vec<Detail>,
}

/// Room for the fields of a usual message, so that the set of reads does not grow step by step.
const USUAL_READS: usize = 64;

impl Run {
    fn new() -> Self {
        Run { reads: HashSet::with_capacity(USUAL_READS), provenance: Vec::new(), errors: Vec::new() }
    }

    fn read(&mut self, pointer: &Pointer) {
        if !self.reads.contains(pointer) {
            self.reads.insert(pointer.to_buf());
        }
    }

    /// [`Run::read`] of a pointer made for it: kept without a copy.
    fn read_owned(&mut self, pointer: PointerBuf) {
        self.reads.insert(pointer);
    }

    fn error(&mut self, pointer: &Pointer, reason: impl Into<String>) {
        self.errors.push(Detail::new(pointer.as_str(), reason));
    }

    /// Evaluates the condition; records the field it read.
    fn holds(&mut self, c: &Condition, ctx: &Value, ctx_ptr: &Pointer) -> bool {
        let node = present(ctx, &c.path);
        if node.is_some() {
            self.read_owned(join(ctx_ptr, &c.path));
        }
        match (&c.test, node) {
            (Test::Present(p), n) => n.is_some() == *p,
            (Test::Equals(v), Some(n)) => n == v,
            (Test::OneOf(vs), Some(n)) => vs.contains(n),
            (_, None) => false,
        }
    }

    fn check(&mut self, c: &Condition, doc: &Value) {
        if !self.holds(c, doc, &PointerBuf::root()) {
            let reason = match &c.test {
                Test::Equals(v) => format!("must be {v}"),
                Test::OneOf(vs) => format!("must be one of {}", Value::Array(vs.clone())),
                Test::Present(true) => "must be present".to_string(),
                Test::Present(false) => "must be absent".to_string(),
            };
            self.error(&c.path, reason);
        }
    }

    /// The rule's value with the native field it came from, after `map` and `convert`; `None`
    /// when the field is absent (and has no default) or the value is refused (an error is
    /// recorded).
    fn value(&mut self, rule: &Rule, ctx: &Value, ctx_ptr: &Pointer) -> Option<Got> {
        let found = match &rule.source {
            Source::Const(v) => Some((v.clone(), Sources::default())),
            Source::FirstOf(pointers) => {
                let mut found = None;
                for p in pointers {
                    match p.resolve(ctx) {
                        Ok(Value::Null) => self.read_owned(join(ctx_ptr, p)),
                        Ok(v) => {
                            found = Some((v.clone(), Sources::one(join(ctx_ptr, p))));
                            break;
                        }
                        Err(_) => {}
                    }
                }
                found
            }
            Source::Join(pointers, separator) => match self.joined(pointers, separator, ctx, ctx_ptr) {
                Joined::Absent => None,
                Joined::Refused => return None,
                Joined::Text(text, sources) => Some((Value::String(text), sources)),
            },
        };
        let Some((raw, sources)) = found else {
            if let Some(d) = &rule.default {
                return Some(Got { value: d.clone(), sources: Sources::default(), structural: false });
            }
            if rule.required {
                let at = match &rule.source {
                    Source::FirstOf(ps) => {
                        ps.iter().map(|p| ctx_ptr.concat(p).to_string()).collect::<Vec<_>>().join(" or ")
                    }
                    Source::Join(ps, _) => {
                        ps.iter().map(|p| ctx_ptr.concat(p).to_string()).collect::<Vec<_>>().join(" and ")
                    }
                    Source::Const(_) => ctx_ptr.to_string(),
                };
                self.errors.push(Detail::new(at, "required, but missing"));
            }
            return None;
        };
        let here = sources.first.clone().unwrap_or_else(|| ctx_ptr.to_buf());
        for s in sources.iter() {
            self.read(s);
        }
        let wrapped = rule.one_or_many && !raw.is_array();
        let raw = if wrapped { Value::Array(vec![raw]) } else { raw };
        let mapped = match &rule.map {
            None => raw,
            Some(m) => {
                let key: Option<Cow<'_, str>> = match &raw {
                    Value::String(s) => Some(normalized(s)),
                    Value::Number(n) => Some(Cow::Owned(n.to_string())),
                    Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
                    _ => None,
                };
                match key.and_then(|k| m.table.get(k.as_ref()).cloned()).or_else(|| m.fallback.clone()) {
                    Some(v) => v,
                    None if m.passthrough => raw,
                    None => {
                        self.error(&here, format!("not a known value; expected one of {}", m.listed));
                        return None;
                    }
                }
            }
        };
        let converted = match rule.convert {
            None => mapped,
            Some(c) => match c.apply_with(&mapped, &rule.patterns) {
                Ok(v) => v,
                Err(reason) if !sources.more.is_empty() => {
                    let joined: Vec<&str> = sources.iter().map(|s| s.as_str()).collect();
                    self.error(&here, format!("{reason} (the value joined from {})", joined.join(", ")));
                    return None;
                }
                Err(reason) => {
                    self.error(&here, reason);
                    return None;
                }
            },
        };
        let structural = !wrapped
            && matches!(rule.source, Source::FirstOf(_))
            && rule.map.is_none()
            && rule.convert.is_none_or(Convert::keeps_structure);
        Some(Got { value: converted, sources, structural })
    }

    /// The texts of `pointers` joined: absent when none is present, refused (with an error)
    /// when only some are, or when one is not text or a number.
    fn joined(&mut self, pointers: &[PointerBuf], separator: &str, ctx: &Value, ctx_ptr: &Pointer) -> Joined {
        let nodes: Vec<(Option<&Value>, PointerBuf)> =
            pointers.iter().map(|p| (present(ctx, p), join(ctx_ptr, p))).collect();
        if nodes.iter().all(|(n, _)| n.is_none()) {
            return Joined::Absent;
        }
        let mut parts = Vec::with_capacity(nodes.len());
        let mut refused = false;
        for (node, at) in &nodes {
            match node {
                Some(Value::String(s)) => parts.push(s.clone()),
                Some(Value::Number(n)) => parts.push(n.to_string()),
                Some(_) => {
                    self.error(at, "expected text or a number to join");
                    refused = true;
                }
                None => {
                    let others: Vec<&str> =
                        nodes.iter().filter(|(n, _)| n.is_some()).map(|(_, p)| p.as_str()).collect();
                    self.error(at, format!("required, but missing: the rule joins it with {}", others.join(", ")));
                    refused = true;
                }
            }
        }
        if refused {
            return Joined::Refused;
        }
        let mut fields = nodes.into_iter().map(|(_, p)| p);
        let sources = Sources { first: fields.next(), more: fields.collect() };
        Joined::Text(parts.join(separator), sources)
    }

    /// An envelope value as a string, recorded as the origin of the event attribute `target`.
    fn string(&mut self, rule: &Rule, doc: &Value, target: &str) -> Option<String> {
        let got = self.value(rule, doc, &PointerBuf::root())?;
        let Value::String(s) = got.value else {
            self.error(&got.sources.first.unwrap_or_default(), "expected a string");
            return None;
        };
        self.record(PointerBuf::parse(target).unwrap_or_default(), got.sources, Vec::new(), false);
        Some(s)
    }

    /// Records where the value at `target` came from: one entry per native field.
    fn record(&mut self, target: PointerBuf, sources: Sources, guards: Vec<PointerBuf>, structural: bool) {
        if sources.more.is_empty() {
            self.provenance.push(Provenance { target, source: sources.first, guards, structural });
            return;
        }
        // A joined value: one entry per field, in the order of `join`.
        let mut all: Vec<PointerBuf> = sources.first.into_iter().chain(sources.more).collect();
        let last = all.pop();
        for source in all {
            let (target, guards) = (target.clone(), guards.clone());
            self.provenance.push(Provenance { target, source: Some(source), guards, structural });
        }
        self.provenance.push(Provenance { target, source: last, guards, structural });
    }

    /// Applies a field rule in the context `ctx` (the message, or an array item) located at
    /// `ctx_ptr`, writing into `out`, which sits at `out_ptr` in the event.
    fn apply(&mut self, rule: &Rule, ctx: &Value, ctx_ptr: &Pointer, out: &mut Value, out_ptr: &Pointer) {
        let mut guards = Vec::new();
        if let Some(c) = &rule.when {
            if !self.holds(c, ctx, ctx_ptr) {
                return;
            }
            guards.push(join(ctx_ptr, &c.path));
        }
        let target = join(out_ptr, &rule.to);
        let (value, sources, structural) = if let Some(children) = &rule.each {
            let Some((node, at)) = self.array(rule, ctx, ctx_ptr) else {
                return;
            };
            let items = as_items(node);
            let mut result = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let item_src = if node.is_array() { at.with_trailing_token(i) } else { at.clone() };
                if !item.is_object() {
                    self.error(&item_src, "expected an object");
                    continue;
                }
                let mut obj = Value::Object(Map::new());
                let item_out = target.with_trailing_token(i);
                for child in children {
                    self.apply(child, item, &item_src, &mut obj, &item_out);
                }
                result.push(obj);
            }
            // A single item's pointer has no index: keep its structure only for real arrays.
            (Value::Array(result), Sources::one(at), node.is_array())
        } else {
            let Some(got) = self.value(rule, ctx, ctx_ptr) else {
                return;
            };
            (got.value, got.sources, got.structural)
        };
        if let Err(reason) = assign(out, &rule.to, value) {
            self.error(sources.first.as_deref().unwrap_or(ctx_ptr), reason);
            return;
        }
        self.record(target, sources, guards, structural);
    }

    /// The array an `each` rule walks (or, with `one_or_many`, its single object), and where
    /// it is.
    fn array<'v>(&mut self, rule: &Rule, ctx: &'v Value, ctx_ptr: &Pointer) -> Option<(&'v Value, PointerBuf)> {
        let Source::FirstOf(pointers) = &rule.source else {
            return None;
        };
        let found = pointers.iter().find_map(|p| present(ctx, p).map(|v| (v, join(ctx_ptr, p))));
        match found {
            Some((node @ Value::Array(_), at)) => Some((node, at)),
            Some((node @ Value::Object(_), at)) if rule.one_or_many => Some((node, at)),
            Some((_, at)) => {
                self.read(&at);
                self.error(&at, "expected an array");
                None
            }
            None => {
                if rule.required {
                    let at = pointers.first().map(|p| ctx_ptr.concat(p)).unwrap_or_default();
                    self.error(&at, "required, but missing");
                }
                None
            }
        }
    }

    /// Puts every native field that no rule read under `data.extra`, keyed by its pointer.
    fn collect_extra(&mut self, doc: &Value, data: &mut Value) {
        let prefixes = ancestors(&self.reads);
        let mut walk = ExtraWalk { reads: &self.reads, prefixes, provenance: &mut self.provenance, extra: Map::new() };
        walk.visit(doc, &mut WalkPath::root());
        let extra = walk.extra;
        if !extra.is_empty()
            && let Some(obj) = data.as_object_mut()
        {
            obj.insert("extra".into(), Value::Object(extra));
        }
    }
}

/// Every proper ancestor of the pointers in `reads` (the root excluded), as slices of them: a
/// pointer's ancestors are its text up to each `/` (a `/` inside a token is escaped as `~1`).
/// A read whose parent is already in the set adds nothing more.
fn ancestors(reads: &HashSet<PointerBuf>) -> HashSet<&str> {
    let mut prefixes: HashSet<&str> = HashSet::with_capacity(reads.len());
    for r in reads {
        let mut text = r.as_str();
        while let Some(cut) = text.rfind('/').filter(|&cut| cut > 0) {
            text = &text[..cut];
            if !prefixes.insert(text) {
                break;
            }
        }
    }
    prefixes
}

/// The walk of [`Run::collect_extra`]: the fields no rule read, and their provenance.
struct ExtraWalk<'r> {
    reads: &'r HashSet<PointerBuf>,
    prefixes: HashSet<&'r str>,
    provenance: &'r mut Vec<Provenance>,
    extra: Map<String, Value>,
}

impl ExtraWalk<'_> {
    fn visit(&mut self, node: &Value, path: &mut WalkPath) {
        if self.reads.contains(path.pointer()) {
            return;
        }
        if !path.is_root() && !self.prefixes.contains(path.as_str()) {
            self.extra.insert(path.as_str().to_string(), node.clone());
            let target = PointerBuf::from_tokens(["data", "extra", path.as_str()]);
            self.provenance.push(Provenance {
                target,
                source: Some(path.to_buf()),
                guards: Vec::new(),
                structural: true,
            });
            return;
        }
        match node {
            Value::Object(map) => {
                for (k, v) in map {
                    let back = path.key(k);
                    self.visit(v, path);
                    path.back(back);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    let back = path.index(i);
                    self.visit(v, path);
                    path.back(back);
                }
            }
            _ => {}
        }
    }
}

/// Writes `value` at `to` below `out`, creating objects on the way. The root target merges an
/// object's members.
fn assign(out: &mut Value, to: &Pointer, value: Value) -> Result<(), &'static str> {
    let Some((parent, last)) = to.split_back() else {
        return match (out.as_object_mut(), value) {
            (Some(obj), Value::Object(members)) => {
                obj.extend(members);
                Ok(())
            }
            _ => Err("expected an object"),
        };
    };
    let mut node = out;
    for token in parent.tokens() {
        let obj = node.as_object_mut().ok_or("the target conflicts with another rule's")?;
        let key = token.decoded();
        // Most rules write beside another into an object already made: its key is not copied.
        if !obj.contains_key(key.as_ref()) {
            obj.insert(key.as_ref().to_owned(), Value::Object(Map::new()));
        }
        node = obj.get_mut(key.as_ref()).ok_or("the target conflicts with another rule's")?;
    }
    node.as_object_mut().ok_or("the target conflicts with another rule's")?.insert(last.decoded().into_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod xml_tests;
