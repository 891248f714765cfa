//! Compilation of a source-format file into a [`Mapping`]: every pointer parsed, every
//! converter, type and target checked against the shared schema, each problem reported with
//! its position in the file.

use std::collections::HashMap;

use jsonptr::PointerBuf;
use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::convert::Convert;
use super::convert::pattern::Pattern;
use super::engine::{
    Condition, EnumMap, EnvelopeRules, FieldMarkings, ItemMarkings, Mapping, Markings, Rule, Source, Test,
};
use super::spec::{ConditionSpec, FromSpec, MarkingShape, RuleSpec, SourceSpec, SpecError};
use crate::model::schema::Schemas;
use crate::secrecy::Level;

impl Mapping {
    /// Parses and compiles a source-format file, checking every pointer, converter, type and
    /// target against the shared schema. All problems are reported, each with its position.
    pub fn from_yaml(text: &str, schemas: &Schemas) -> Result<Mapping, Vec<SpecError>> {
        let spec: SourceSpec = serde_saphyr::from_str(text).map_err(|e| vec![SpecError::from_yaml(&e)])?;
        let mut compiler = Compiler { schemas, errors: Vec::new(), level_codes: HashMap::new() };
        let mapping = compiler.mapping(spec);
        if compiler.errors.is_empty() { Ok(mapping) } else { Err(compiler.errors) }
    }

    /// The built-in mapping for canonical CloudEvents: every canonical type maps to itself.
    pub fn cloudevents(schemas: &Schemas) -> Result<Mapping, Vec<SpecError>> {
        let mut mapping = Mapping::from_yaml(super::CLOUDEVENTS_SPEC, schemas)?;
        mapping.types = schemas.types().iter().map(|t| (t.name.to_string(), *t)).collect();
        Ok(mapping)
    }

    /// The native message types this format knows, sorted.
    pub fn native_types(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.types.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

struct Compiler<'a> {
    schemas: &'a Schemas,
    errors: Vec<SpecError>,
    /// The format's codes for levels, checked.
    level_codes: HashMap<String, Level>,
}

/// Where a rule sits: in the envelope (no `to`), or among the fields, with the schema tokens of
/// its parent (for `each`, the array's item).
#[derive(Clone)]
enum Place {
    Envelope(&'static str),
    Fields(Vec<String>),
}

impl Compiler<'_> {
    fn error(&mut self, at: Location, message: impl Into<String>) {
        self.errors.push(SpecError::at(&at, message));
    }

    fn pointer(&mut self, text: &str, at: Location, what: &str) -> PointerBuf {
        match PointerBuf::parse(text) {
            Ok(p) => p,
            Err(e) => {
                self.error(at, format!("{what} `{text}` is not a JSON pointer ({e}); write it like /aj/ajbh"));
                PointerBuf::root()
            }
        }
    }

    fn spanned_pointer(&mut self, s: &Spanned<String>, what: &str) -> PointerBuf {
        self.pointer(&s.value, s.referenced, what)
    }

    fn mapping(&mut self, spec: SourceSpec) -> Mapping {
        let name = spec.format.value.clone();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            self.error(spec.format.referenced, "format names use lowercase letters, digits and `-`");
        }
        for (code, level) in &spec.level_codes {
            match Level::parse(&level.value) {
                Some(l) => {
                    self.level_codes.insert(code.clone(), l);
                }
                None => self.error(
                    level.referenced,
                    format!("`{}` is not a level; expected one of {}", level.value, Level::NAMES),
                ),
            }
        }
        let e = spec.envelope;
        let envelope_rule = |c: &mut Self, rule: RuleSpec, field: &'static str| c.rule(rule, &Place::Envelope(field));
        let envelope = EnvelopeRules {
            id: envelope_rule(self, e.id, "id"),
            message_type: envelope_rule(self, e.message_type, "type"),
            sender: envelope_rule(self, e.sender, "sender"),
            sent_at: envelope_rule(self, e.sent_at, "sent_at"),
            // The sender's name is delivered in the data, as `sender.name`.
            sender_name: e.sender_name.map(|r| Rule {
                to: PointerBuf::from_tokens(["sender", "name"]),
                ..envelope_rule(self, r, "sender_name")
            }),
            classification: e.classification.map(|r| envelope_rule(self, r, "classification")),
            in_reply_to: e.in_reply_to.map(|r| envelope_rule(self, r, "in_reply_to")),
        };
        if !matches!(envelope.sender.convert, Some(Convert::Division | Convert::Agency | Convert::Sender)) {
            self.error(
                Location::UNKNOWN,
                "envelope.sender needs `convert: division`, `convert: agency` or `convert: sender`",
            );
        }
        let mut type_table = HashMap::new();
        for (native, canonical) in &spec.types {
            match self.schemas.lookup(&canonical.value) {
                Some(t) => {
                    type_table.insert(native.clone(), t);
                }
                None => {
                    let known: Vec<&str> = self.schemas.types().iter().map(|t| t.name).collect();
                    self.error(
                        canonical.referenced,
                        format!("unknown canonical type `{}`; known types: {}", canonical.value, known.join(", ")),
                    );
                }
            }
        }
        let markings = Markings {
            codes: self.level_codes.clone(),
            fields: spec.markings.fields.map(|f| {
                let from = self.spanned_pointer(&f.from, "markings.fields.from");
                let (path, level) = match f.shape {
                    MarkingShape::PathMap => {
                        if let Some(p) = f.path.as_ref().or(f.level.as_ref()) {
                            self.error(p.referenced, "`path` and `level` belong to shape pointer_list only");
                        }
                        if let Some(o) = &f.one_or_many {
                            self.error(o.referenced, "`one_or_many` belongs to shape pointer_list only");
                        }
                        (PointerBuf::root(), PointerBuf::root())
                    }
                    MarkingShape::PointerList => match (&f.path, &f.level) {
                        (Some(p), Some(l)) => (self.spanned_pointer(p, "path"), self.spanned_pointer(l, "level")),
                        _ => {
                            self.error(f.from.referenced, "shape pointer_list needs `path` and `level`: where each entry keeps its pointer and its level");
                            (PointerBuf::root(), PointerBuf::root())
                        }
                    },
                };
                let one_or_many = f.one_or_many.as_ref().is_some_and(|o| o.value);
                FieldMarkings { from, shape: f.shape, path, level, one_or_many }
            }),
            items: spec
                .markings
                .items
                .iter()
                .map(|i| ItemMarkings {
                    from: self.spanned_pointer(&i.from, "markings.items.from"),
                    level: self.spanned_pointer(&i.level, "markings.items.level"),
                    one_or_many: i.one_or_many,
                })
                .collect(),
        };
        let ignore = spec.ignore.iter().map(|p| self.spanned_pointer(p, "ignore")).collect();
        let expect = spec.expect.iter().map(|c| self.condition(c)).collect();
        let fields = self.rules(spec.fields, &[]);
        Mapping {
            name,
            description: spec.description.unwrap_or_default().trim().to_string(),
            envelope,
            types: type_table,
            markings,
            ignore,
            expect,
            fields,
        }
    }

    fn rules(&mut self, specs: Vec<RuleSpec>, parent: &[String]) -> Vec<Rule> {
        let mut seen: HashMap<String, Location> = HashMap::new();
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            if let (Some(to), None) = (&spec.to, &spec.when)
                && seen.insert(to.value.clone(), to.referenced).is_some()
            {
                self.error(
                    to.referenced,
                    format!("`{}` is already the target of another rule; give one of them a `when`", to.value),
                );
            }
            rules.push(self.rule(spec, &Place::Fields(parent.to_vec())));
        }
        rules
    }

    fn rule(&mut self, spec: RuleSpec, place: &Place) -> Rule {
        let at = spec.location();
        let to = match (place, &spec.to) {
            (Place::Envelope(field), Some(to)) => {
                self.error(to.referenced, format!("envelope.{field} takes no `to`: the envelope field is its target"));
                PointerBuf::root()
            }
            (Place::Envelope(_), None) => PointerBuf::root(),
            (Place::Fields(_), None) => {
                self.error(at, "a field rule needs `to`: the canonical field it fills");
                PointerBuf::root()
            }
            (Place::Fields(parent), Some(to)) => {
                let pointer = self.spanned_pointer(to, "to");
                let mut tokens = parent.clone();
                tokens.extend(pointer.tokens().map(|t| t.decoded().into_owned()));
                let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
                match self.schemas.member(&refs) {
                    None => self.error(
                        to.referenced,
                        format!("`{}` is not a field of the shared schema (schemas/common.json, $defs/data)", to.value),
                    ),
                    Some(node) if spec.each.is_some() && !Schemas::is_array(node) => {
                        self.error(to.referenced, format!("`each` needs an array target; `{}` is not one", to.value))
                    }
                    Some(node) if spec.one_or_many.as_ref().is_some_and(|o| o.value) && !Schemas::is_array(node) => {
                        self.error(
                            to.referenced,
                            format!(
                                "`one_or_many` needs a list target; `{}` is not a list in the shared schema",
                                to.value
                            ),
                        )
                    }
                    Some(_) => {}
                }
                pointer
            }
        };
        let one_or_many = match (&spec.one_or_many, place) {
            (Some(o), Place::Envelope(field)) if o.value => {
                self.error(o.referenced, format!("envelope.{field} is one value: it takes no `one_or_many`"));
                false
            }
            (Some(o), _) if o.value && spec.map.is_some() => {
                self.error(o.referenced, "`map` reads one value: a rule with `one_or_many` takes no `map`");
                false
            }
            (Some(o), _) => o.value,
            (None, _) => false,
        };
        if let (Some(sep), None) = (&spec.separator, &spec.join) {
            self.error(sep.referenced, "`separator` goes with `join`");
        }
        let patterns = match (&spec.pattern, spec.convert.as_ref().and_then(|c| c.value.pattern_reads())) {
            (None, _) => Vec::new(),
            (Some(p), None) => {
                self.error(p.referenced, "`pattern` goes with `convert: date`, `beijing_datetime` or `datetime`");
                Vec::new()
            }
            (Some(p), Some(reads)) => {
                let texts = p.value.texts();
                if texts.is_empty() {
                    self.error(p.referenced, "`pattern` lists no pattern");
                }
                texts
                    .into_iter()
                    .filter_map(|t| Pattern::new(t, reads).map_err(|e| self.error(p.referenced, e)).ok())
                    .collect()
            }
        };
        let source = match (&spec.from, &spec.value, &spec.join) {
            (None, None, Some(join)) => {
                if join.value.len() < 2 {
                    self.error(join.referenced, "`join` needs two or more fields");
                }
                let separator = spec.separator.as_ref().map(|s| s.value.clone()).unwrap_or_default();
                Source::Join(join.value.iter().map(|t| self.pointer(t, join.referenced, "join")).collect(), separator)
            }
            (Some(from), None, None) => {
                let texts: Vec<&String> = match &from.value {
                    FromSpec::One(p) => vec![p],
                    FromSpec::FirstOf(ps) => ps.iter().collect(),
                };
                if texts.is_empty() {
                    self.error(from.referenced, "`from` lists no field");
                }
                Source::FirstOf(texts.into_iter().map(|t| self.pointer(t, from.referenced, "from")).collect())
            }
            (None, Some(v), None) => Source::Const(v.clone()),
            (None, None, None) => {
                self.error(at, "a rule needs `from` (a native field), `join` (several) or `value` (a constant)");
                Source::Const(Value::Null)
            }
            _ => {
                self.error(at, "a rule has one of `from`, `join` and `value`, not several");
                Source::Const(Value::Null)
            }
        };
        let map = spec.map.map(|table| {
            let fallback = table.get("*").cloned();
            let mut listed: Vec<&str> = table.keys().filter(|k| *k != "*").map(String::as_str).collect();
            listed.sort_unstable();
            let listed = listed.join(", ");
            let table = table.into_iter().filter(|(k, _)| k != "*").collect();
            EnumMap { table, fallback, passthrough: false, listed }
        });
        // A level is read with the format's codes for levels, unless the rule maps it itself.
        let classification = spec.convert.as_ref().is_some_and(|c| c.value == Convert::Classification);
        let map = match map {
            None if classification && !self.level_codes.is_empty() => Some(self.level_code_map()),
            map => map,
        };
        let each = spec.each.map(|children| {
            if matches!(place, Place::Envelope(_)) {
                self.error(at, "envelope fields take no `each`");
            }
            if spec.convert.is_some()
                || map.is_some()
                || spec.default.is_some()
                || !matches!(source, Source::FirstOf(_))
            {
                self.error(at, "a rule with `each` takes only `to`, `from`, `one_or_many`, `required` and `when`");
            }
            let mut parent = match place {
                Place::Fields(p) => p.clone(),
                Place::Envelope(_) => Vec::new(),
            };
            if let Some(to) = &spec.to {
                parent.extend(
                    PointerBuf::parse(to.value.as_str())
                        .map(|p| p.tokens().map(|t| t.decoded().into_owned()).collect::<Vec<_>>())
                        .unwrap_or_default(),
                );
            }
            parent.push("[]".into());
            self.rules(children, &parent)
        });
        Rule {
            to,
            source,
            convert: spec.convert.map(|c| c.value),
            patterns,
            one_or_many,
            map,
            default: spec.default,
            required: spec.required,
            when: spec.when.as_ref().map(|c| self.condition(c)),
            each,
        }
    }

    fn level_code_map(&self) -> EnumMap {
        let table: HashMap<String, Value> =
            self.level_codes.iter().map(|(code, level)| (code.clone(), Value::String(level.name().into()))).collect();
        let mut listed: Vec<&str> = table.keys().map(String::as_str).collect();
        listed.sort_unstable();
        EnumMap { listed: listed.join(", "), table, fallback: None, passthrough: true }
    }

    fn condition(&mut self, spec: &ConditionSpec) -> Condition {
        let path = self.spanned_pointer(&spec.path, "path");
        let test = match (&spec.equals, &spec.one_of, spec.present) {
            (Some(v), None, None) => Test::Equals(v.clone()),
            (None, Some(vs), None) => Test::OneOf(vs.clone()),
            (None, None, Some(p)) => Test::Present(p),
            _ => {
                self.error(spec.path.referenced, "a condition has exactly one of `equals`, `in`, `present`");
                Test::Present(true)
            }
        };
        Condition { path, test }
    }
}
