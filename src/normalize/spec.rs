//! The source-format file as operators write it. Every struct rejects unknown keys; values
//! that later checks may refuse keep their position in the file (`Spanned`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::convert::Convert;

/// A source format: `config/sources/NAME.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The format's name; agencies refer to it (`format:` in `agencies.yaml`).
    pub format: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub envelope: EnvelopeSpec,
    /// Native message type → canonical type (`cn.xietong.…`).
    #[serde(default)]
    pub types: BTreeMap<String, Spanned<String>>,
    /// Codes the format writes for classification levels (`"0": 非密`, `"2": 机密`): read
    /// wherever a level is, the envelope's classification, markings, item levels and every rule
    /// with `convert: classification`. Levels written as words are read too.
    #[serde(default)]
    pub level_codes: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub markings: MarkingsSpec,
    /// Native fields the gateway reads nowhere and deliberately drops (they do not go to `extra`).
    #[serde(default)]
    pub ignore: Vec<Spanned<String>>,
    /// Conditions every message must meet (e.g. a version field).
    #[serde(default)]
    pub expect: Vec<ConditionSpec>,
    /// One rule per canonical data field.
    #[serde(default)]
    pub fields: Vec<RuleSpec>,
}

/// Where the envelope values are. Each is a rule without `to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSpec {
    /// The sender's own message id: the idempotency key with the sender.
    pub id: RuleSpec,
    /// The native message type, looked up in `types`.
    #[serde(rename = "type")]
    pub message_type: RuleSpec,
    /// The sender as the message names it: a division code (`convert: division`) or an
    /// agency id (`convert: agency`). It must agree with the authenticated agency.
    pub sender: RuleSpec,
    /// When the sender sent it; becomes the event's `time`.
    pub sent_at: RuleSpec,
    #[serde(default)]
    pub sender_name: Option<RuleSpec>,
    /// The classification of the whole message.
    #[serde(default)]
    pub classification: Option<RuleSpec>,
    /// The id of the message this one answers or continues.
    #[serde(default)]
    pub in_reply_to: Option<RuleSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkingsSpec {
    /// Per-field markings.
    #[serde(default)]
    pub fields: Option<FieldMarkingsSpec>,
    /// Arrays whose items carry their own level (attachments).
    #[serde(default)]
    pub items: Vec<ItemMarkingsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMarkingsSpec {
    pub from: Spanned<String>,
    pub shape: MarkingShape,
    /// For `pointer_list`: where each entry keeps its JSON pointer.
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// For `pointer_list`: where each entry keeps its level.
    #[serde(default)]
    pub level: Option<Spanned<String>>,
    /// For `pointer_list`: a single entry may come as an object instead of a one-item array.
    #[serde(default)]
    pub one_or_many: Option<Spanned<bool>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkingShape {
    /// An object `{ "dsr/1/sfzh": "工作秘密" }`: keys are `/`-separated paths from the root of
    /// the message, values are levels.
    PathMap,
    /// An array `[ { "path": "/body/analysis", "level": "秘密" } ]` of JSON pointers into the
    /// message and levels.
    PointerList,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemMarkingsSpec {
    /// The array.
    pub from: Spanned<String>,
    /// Where each item keeps its level, relative to the item.
    pub level: Spanned<String>,
    /// A single item may come as an object instead of a one-item array.
    #[serde(default)]
    pub one_or_many: bool,
}

/// One mapping rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The canonical field, a JSON pointer relative to `data` (or to the item, inside `each`).
    #[serde(default)]
    pub to: Option<Spanned<String>>,
    /// The native field: a JSON pointer (relative to the item inside `each`), or a list of
    /// pointers of which the first present one is used.
    #[serde(default)]
    pub from: Option<Spanned<FromSpec>>,
    /// A constant instead of `from`.
    #[serde(default)]
    pub value: Option<Value>,
    /// Several native fields whose texts, joined by `separator`, make the value (a date and a
    /// time, a code and a number).
    #[serde(default)]
    pub join: Option<Spanned<Vec<String>>>,
    /// What goes between the joined texts; nothing by default.
    #[serde(default)]
    pub separator: Option<Spanned<String>>,
    #[serde(default)]
    pub convert: Option<Spanned<Convert>>,
    /// For `date`, `beijing_datetime` and `datetime`: the pattern (or patterns, the first that
    /// matches) the native system writes, in strftime syntax.
    #[serde(default)]
    pub pattern: Option<Spanned<PatternSpec>>,
    /// The native value may be a list or a single value (XML converted to JSON writes a
    /// repeated element with one member as that member): a single value is a one-item list.
    #[serde(default)]
    pub one_or_many: Option<Spanned<bool>>,
    /// An enumeration: native value → canonical value; `"*"` is the value for anything else.
    /// Without `"*"`, an unlisted value is refused.
    #[serde(default)]
    pub map: Option<BTreeMap<String, Value>>,
    /// The canonical value when the native field is absent or null.
    #[serde(default)]
    pub default: Option<Value>,
    /// Refuse the message when the native field is absent or null (and there is no default).
    #[serde(default)]
    pub required: bool,
    /// Apply the rule only when this holds.
    #[serde(default)]
    pub when: Option<ConditionSpec>,
    /// For an array: the rules applied to each item (pointers relative to the item).
    #[serde(default)]
    pub each: Option<Vec<RuleSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PatternSpec {
    One(String),
    FirstOf(Vec<String>),
}

impl PatternSpec {
    pub fn texts(&self) -> Vec<&str> {
        match self {
            PatternSpec::One(p) => vec![p.as_str()],
            PatternSpec::FirstOf(ps) => ps.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FromSpec {
    One(String),
    FirstOf(Vec<String>),
}

/// A test on one native field: `equals`, `in` or `present` (exactly one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    pub path: Spanned<String>,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<Value>>,
    #[serde(default)]
    pub present: Option<bool>,
}

/// A problem in a source-format file, with its position when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl SpecError {
    pub fn at(location: &Location, message: impl Into<String>) -> Self {
        let known = *location != Location::UNKNOWN;
        SpecError {
            line: known.then(|| location.line()),
            column: known.then(|| location.column()),
            message: message.into(),
        }
    }

    pub fn from_yaml(err: &serde_saphyr::Error) -> Self {
        let location = err.location();
        SpecError { line: location.map(|l| l.line()), column: location.map(|l| l.column()), message: yaml_message(err) }
    }
}

/// The first line of a serde-saphyr error, without its own position prefix and snippet.
pub fn yaml_message(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": ") {
        Some((pos, rest)) if pos.starts_with("line ") => rest.to_string(),
        _ => first.to_string(),
    }
}

impl RuleSpec {
    /// The best position for errors about the whole rule.
    pub fn location(&self) -> Location {
        self.to
            .as_ref()
            .map(|t| t.referenced)
            .or_else(|| self.from.as_ref().map(|f| f.referenced))
            .or_else(|| self.join.as_ref().map(|j| j.referenced))
            .or_else(|| self.convert.as_ref().map(|c| c.referenced))
            .or_else(|| self.when.as_ref().map(|w| w.path.referenced))
            .unwrap_or(Location::UNKNOWN)
    }
}
