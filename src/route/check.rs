//! Static checks of a rule's CEL condition, so that a mistake is refused by `check` instead of
//! silently never matching: every field it reads must exist in what the rule language provides
//! (`message`, the canonical event with its data as `schemas/` defines it; `sender`; `case`;
//! `replying_to`; `requester`), comparisons must be between compatible types, and a literal
//! compared with a field of a known vocabulary (regions, kinds, levels, message types, division
//! codes, the schema's enumerations and patterns) must be one that can occur. Each finding has
//! the character offset of the node it concerns. The `cel` crate has no type checker: this walks
//! its AST.

use std::collections::BTreeMap;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, operators};
use serde_json::Value;

use super::divisions::{Divisions, Level};
use super::regions::Regions;
use crate::model::schema::Schemas;
use crate::model::{Division, SenderKind};

/// A problem of a condition, at a character offset into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub offset: usize,
    pub message: String,
}

/// Where the values of a string may come from: a literal compared with it must be one of them.
#[derive(Clone, Debug)]
enum Vocabulary {
    Any,
    Regions,
    SenderKinds,
    Levels,
    Types,
    Divisions,
    Enum(Vec<String>),
    Pattern(String),
}

/// The type of an expression, as far as the checker can tell.
#[derive(Clone, Debug)]
enum Ty<'s> {
    Str(Vocabulary),
    Num,
    Bool,
    Null,
    List(Box<Ty<'s>>),
    /// An object whose members are known.
    Record(BTreeMap<&'static str, Ty<'s>>),
    /// A node of the message schemas.
    Schema(&'s Value),
    /// Anything: a value the checker cannot type.
    Dyn,
}

impl Ty<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Ty::Str(_) => "a string",
            Ty::Num => "a number",
            Ty::Bool => "a boolean",
            Ty::Null => "null",
            Ty::List(_) => "a list",
            Ty::Record(_) | Ty::Schema(_) => "an object",
            Ty::Dyn => "a value",
        }
    }
}

/// What a condition is checked against.
pub struct Checker<'a> {
    divisions: &'a Divisions,
    regions: &'a Regions,
    schemas: &'a Schemas,
    source_info: &'a cel::common::ast::SourceInfo,
    findings: Vec<Finding>,
}

/// Checks `program` (the condition of a rule) against the vocabularies and the message schemas.
pub fn check(program: &cel::Program, divisions: &Divisions, regions: &Regions, schemas: &Schemas) -> Vec<Finding> {
    let mut checker = Checker { divisions, regions, schemas, source_info: program.source_info(), findings: Vec::new() };
    let mut scope: Vec<(String, Ty<'_>)> = checker.variables();
    let ty = checker.ty(program.expression(), &mut scope);
    if !matches!(ty, Ty::Bool | Ty::Dyn) {
        checker.error(program.expression(), format!("the condition is {}, not a boolean", ty.describe()));
    }
    checker.findings.sort_by_key(|f| f.offset);
    checker.findings.dedup();
    checker.findings
}

impl<'a> Checker<'a> {
    /// The variables of the rule language and their types (see docs/routing.md).
    fn variables(&self) -> Vec<(String, Ty<'a>)> {
        let s = |v| Ty::Str(v);
        let list = |v| Ty::List(Box::new(Ty::Str(v)));
        let data = self.schemas.data_schema().map_or(Ty::Dyn, Ty::Schema);
        let message = Ty::Record(BTreeMap::from([
            ("specversion", s(Vocabulary::Enum(vec!["1.0".into()]))),
            ("id", s(Vocabulary::Any)),
            ("source", s(Vocabulary::Any)),
            ("type", s(Vocabulary::Types)),
            ("subject", s(Vocabulary::Any)),
            ("time", s(Vocabulary::Any)),
            ("datacontenttype", s(Vocabulary::Any)),
            ("dataschema", s(Vocabulary::Any)),
            ("sender", s(Vocabulary::Any)),
            ("classification", s(Vocabulary::Enum(vec!["公开".into(), "内部".into(), "工作秘密".into()]))),
            ("nativeid", s(Vocabulary::Any)),
            ("inreplyto", s(Vocabulary::Any)),
            ("data", data),
        ]));
        let sender = Ty::Record(BTreeMap::from([
            ("id", s(Vocabulary::Any)),
            ("kind", s(Vocabulary::SenderKinds)),
            ("division", s(Vocabulary::Divisions)),
            ("level", s(Vocabulary::Levels)),
            ("province", s(Vocabulary::Divisions)),
            ("regions", list(Vocabulary::Regions)),
        ]));
        let case = Ty::Record(BTreeMap::from([
            ("divisions", list(Vocabulary::Divisions)),
            ("provinces", list(Vocabulary::Divisions)),
            ("regions", list(Vocabulary::Regions)),
            ("touched", list(Vocabulary::Regions)),
        ]));
        vec![
            ("message".into(), message),
            ("sender".into(), sender),
            ("case".into(), case),
            ("replying_to".into(), s(Vocabulary::Any)),
            ("requester".into(), s(Vocabulary::Any)),
        ]
    }

    fn offset(&self, e: &IdedExpr) -> usize {
        self.source_info.offset_for(e.id).map_or(0, |(start, _)| start as usize)
    }

    fn error(&mut self, e: &IdedExpr, message: String) {
        let offset = self.offset(e);
        self.findings.push(Finding { offset, message });
    }

    fn ty(&mut self, e: &IdedExpr, scope: &mut Vec<(String, Ty<'a>)>) -> Ty<'a> {
        match &e.expr {
            Expr::Ident(name) => scope.iter().rev().find(|(n, _)| n == name).map_or(Ty::Dyn, |(_, t)| t.clone()),
            Expr::Literal(l) => match l {
                LiteralValue::String(_) => Ty::Str(Vocabulary::Any),
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Null => Ty::Null,
                LiteralValue::Int(_) | LiteralValue::UInt(_) | LiteralValue::Double(_) => Ty::Num,
                LiteralValue::Bytes(_) => Ty::Dyn,
            },
            Expr::List(l) => {
                let items: Vec<Ty<'a>> = l.elements.iter().map(|x| self.ty(x, scope)).collect();
                Ty::List(Box::new(items.into_iter().next().unwrap_or(Ty::Dyn)))
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.ty(&me.key, scope);
                        self.ty(&me.value, scope);
                    }
                }
                Ty::Dyn
            }
            Expr::Struct(_) | Expr::Unspecified => Ty::Dyn,
            Expr::Select(s) => {
                let operand = self.ty(&s.operand, scope);
                let member = self.member(&operand, &s.field, e, &s.operand);
                if s.test { Ty::Bool } else { member }
            }
            Expr::Comprehension(c) => {
                let range = self.ty(&c.iter_range, scope);
                let item = match (&range, &c.iter_var2) {
                    (Ty::List(t), None) => (**t).clone(),
                    _ => Ty::Dyn,
                };
                let accu = self.ty(&c.accu_init, scope);
                let depth = scope.len();
                scope.push((c.iter_var.clone(), item));
                if let Some(v2) = &c.iter_var2 {
                    scope.push((v2.clone(), Ty::Dyn));
                }
                scope.push((c.accu_var.clone(), accu));
                self.ty(&c.loop_cond, scope);
                self.ty(&c.loop_step, scope);
                let result = self.ty(&c.result, scope);
                scope.truncate(depth);
                result
            }
            Expr::Call(call) => {
                let target = call.target.as_ref().map(|t| self.ty(t, scope));
                let args: Vec<Ty<'a>> = call.args.iter().map(|a| self.ty(a, scope)).collect();
                self.call(e, &call.func_name, target, &call.args, args)
            }
        }
    }

    /// The type of member `field` of a value of type `of` (`at` is the selection).
    fn member(&mut self, of: &Ty<'a>, field: &str, at: &IdedExpr, operand: &IdedExpr) -> Ty<'a> {
        let name = path(operand);
        match of {
            Ty::Record(members) => match members.get(field) {
                Some(t) => t.clone(),
                None => {
                    let known: Vec<&str> = members.keys().copied().collect();
                    self.unknown_member(at, &name, field, &known);
                    Ty::Dyn
                }
            },
            Ty::Schema(node) => {
                let Some(node) = self.schemas.resolve_node(node) else { return Ty::Dyn };
                match node.get("properties").and_then(Value::as_object) {
                    Some(props) => match props.get(field) {
                        Some(child) => self.schema_ty(child),
                        None if node.get("additionalProperties") == Some(&Value::Bool(false)) => {
                            let known: Vec<&str> = props.keys().map(String::as_str).collect();
                            self.unknown_member(at, &name, field, &known);
                            Ty::Dyn
                        }
                        None => Ty::Dyn,
                    },
                    // An open object (`extra`, `statistics`): any member.
                    None => Ty::Dyn,
                }
            }
            Ty::Dyn => Ty::Dyn,
            other => {
                self.error(at, format!("`{name}` is {}: it has no member `{field}`", other.describe()));
                Ty::Dyn
            }
        }
    }

    fn unknown_member(&mut self, at: &IdedExpr, of: &str, field: &str, known: &[&str]) {
        let hint = did_you_mean(field, known.iter().copied())
            .map_or_else(|| format!("; it has {}", known.join(", ")), |s| format!("; did you mean `{s}`?"));
        self.error(at, format!("`{of}` has no member `{field}`{hint}"));
    }

    /// The type of a value the schema node describes.
    fn schema_ty(&self, node: &'a Value) -> Ty<'a> {
        if node.get("$ref").and_then(Value::as_str).is_some_and(|r| r.ends_with("/divisionCode")) {
            return Ty::Str(Vocabulary::Divisions);
        }
        let Some(resolved) = self.schemas.resolve_node(node) else { return Ty::Dyn };
        if let Some(values) = resolved.get("enum").and_then(Value::as_array) {
            let strings: Vec<String> = values.iter().filter_map(Value::as_str).map(str::to_string).collect();
            return if strings.len() == values.len() { Ty::Str(Vocabulary::Enum(strings)) } else { Ty::Dyn };
        }
        if let Some(c) = resolved.get("const").and_then(Value::as_str) {
            return Ty::Str(Vocabulary::Enum(vec![c.to_string()]));
        }
        match resolved.get("type").and_then(Value::as_str) {
            Some("string") => match resolved.get("pattern").and_then(Value::as_str) {
                Some(p) => Ty::Str(Vocabulary::Pattern(p.to_string())),
                None => Ty::Str(Vocabulary::Any),
            },
            Some("integer" | "number") => Ty::Num,
            Some("boolean") => Ty::Bool,
            Some("array") => Ty::List(Box::new(resolved.get("items").map_or(Ty::Dyn, |i| self.schema_ty(i)))),
            Some("object") => Ty::Schema(resolved),
            _ => Ty::Dyn,
        }
    }

    fn call(
        &mut self,
        e: &IdedExpr,
        name: &str,
        target: Option<Ty<'a>>,
        args: &[IdedExpr],
        tys: Vec<Ty<'a>>,
    ) -> Ty<'a> {
        match (name, tys.as_slice()) {
            (operators::EQUALS | operators::NOT_EQUALS, [a, b]) => {
                self.comparable(e, &args[0], a, &args[1], b);
                Ty::Bool
            }
            (operators::LESS | operators::LESS_EQUALS | operators::GREATER | operators::GREATER_EQUALS, [a, b]) => {
                if !matches!((a, b), (Ty::Num, Ty::Num) | (Ty::Str(_), Ty::Str(_)) | (Ty::Dyn, _) | (_, Ty::Dyn)) {
                    self.error(e, format!("orders {} and {}, which do not compare", a.describe(), b.describe()));
                }
                Ty::Bool
            }
            (operators::IN, [item, container]) => {
                match container {
                    Ty::List(t) => self.comparable(e, &args[0], item, &args[1], t),
                    Ty::Str(_) | Ty::Num | Ty::Bool | Ty::Null => self.error(
                        e,
                        format!("`in` needs a list or an object on its right, and this is {}", container.describe()),
                    ),
                    _ => {}
                }
                Ty::Bool
            }
            (operators::LOGICAL_AND | operators::LOGICAL_OR | operators::LOGICAL_NOT, _) => {
                for (t, a) in tys.iter().zip(args) {
                    if !matches!(t, Ty::Bool | Ty::Dyn) {
                        self.error(a, format!("a condition joins booleans, and this is {}", t.describe()));
                    }
                }
                Ty::Bool
            }
            (operators::NOT_STRICTLY_FALSE, _) => Ty::Bool,
            (operators::CONDITIONAL, [_, a, _]) => a.clone(),
            (operators::INDEX, [Ty::List(t), _]) => (**t).clone(),
            (operators::ADD, [a @ (Ty::Str(_) | Ty::Num), _]) => match a {
                Ty::Str(_) => Ty::Str(Vocabulary::Any),
                _ => Ty::Num,
            },
            ("size", _) => Ty::Num,
            ("startsWith" | "endsWith" | "contains" | "matches", [arg]) => {
                match &target {
                    Some(Ty::Str(v)) => {
                        if name == "startsWith"
                            && let Some(prefix) = literal(&args[0])
                        {
                            self.prefix(&args[0], v, prefix);
                        }
                    }
                    Some(t @ (Ty::List(_) | Ty::Num | Ty::Bool | Ty::Record(_) | Ty::Schema(_))) => {
                        self.error(e, format!("`{name}` applies to strings, and this is {}", t.describe()))
                    }
                    _ => {}
                }
                if !matches!(arg, Ty::Str(_) | Ty::Dyn) {
                    self.error(&args[0], format!("`{name}` takes a string, and this is {}", arg.describe()));
                }
                Ty::Bool
            }
            _ => Ty::Dyn,
        }
    }

    /// Reports a comparison of incompatible types, or of a field with a literal it cannot hold.
    fn comparable(&mut self, e: &IdedExpr, left: &IdedExpr, a: &Ty<'a>, right: &IdedExpr, b: &Ty<'a>) {
        let compatible = matches!(
            (a, b),
            (Ty::Dyn, _)
                | (_, Ty::Dyn)
                | (Ty::Null, _)
                | (_, Ty::Null)
                | (Ty::Str(_), Ty::Str(_))
                | (Ty::Num, Ty::Num)
                | (Ty::Bool, Ty::Bool)
                | (Ty::List(_), Ty::List(_))
                | (Ty::Record(_) | Ty::Schema(_), Ty::Record(_) | Ty::Schema(_))
        );
        if !compatible {
            self.error(e, format!("compares {} with {}, which can never be equal", a.describe(), b.describe()));
            return;
        }
        for (field, other) in [(a, right), (b, left)] {
            if let (Ty::Str(v), Some(text)) = (field, literal(other)) {
                self.occurs(other, v, text);
            }
        }
    }

    /// Reports a literal that a string of vocabulary `v` can never be.
    fn occurs(&mut self, at: &IdedExpr, v: &Vocabulary, text: &str) {
        let keys: Vec<String> = self.regions.iter().map(|r| r.key.clone()).collect();
        let hint = |candidates: Vec<&str>| {
            did_you_mean(text, candidates.into_iter()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
        };
        let problem = match v {
            Vocabulary::Any => None,
            Vocabulary::Regions => (!keys.iter().any(|k| k == text)).then(|| {
                (format!("`{text}` is not a region of regions.yaml"), hint(keys.iter().map(String::as_str).collect()))
            }),
            Vocabulary::SenderKinds => text.parse::<SenderKind>().err().map(|_| {
                (
                    format!("`{text}` is not a kind of sender (ip_office, procuratorate, public_security, court, hub)"),
                    hint(vec!["ip_office", "procuratorate", "public_security", "court", "hub"]),
                )
            }),
            Vocabulary::Levels => Level::named(text).is_none().then(|| {
                (
                    format!("`{text}` is not a level (national, province, prefecture, county)"),
                    hint(Level::ALL.iter().map(|l| l.as_str()).collect()),
                )
            }),
            Vocabulary::Types => self.schemas.lookup(text).is_none().then(|| {
                (format!("`{text}` is not a message type"), hint(self.schemas.types().iter().map(|t| t.name).collect()))
            }),
            Vocabulary::Divisions => (!Division::parse(text).is_ok_and(|d| self.divisions.contains(&d))).then(|| {
                (format!("`{text}` is not a division of the GB/T 2260 table (config/divisions.csv)"), String::new())
            }),
            Vocabulary::Enum(values) => (!values.iter().any(|x| x == text)).then(|| {
                (
                    format!("`{text}` is not one of {}", values.join(", ")),
                    hint(values.iter().map(String::as_str).collect()),
                )
            }),
            Vocabulary::Pattern(p) => regex::Regex::new(p)
                .ok()
                .filter(|r| !r.is_match(text))
                .map(|_| (format!("`{text}` does not have the form the schema gives ({p})"), String::new())),
        };
        if let Some((problem, hint)) = problem {
            self.error(at, format!("{problem}, so the comparison can never hold{hint}"));
        }
    }

    /// Reports a `startsWith` prefix that no value of vocabulary `v` has.
    fn prefix(&mut self, at: &IdedExpr, v: &Vocabulary, prefix: &str) {
        let none = match v {
            Vocabulary::Divisions => !self.divisions.has_prefix(prefix),
            Vocabulary::Regions => !self.regions.iter().any(|r| r.key.starts_with(prefix)),
            Vocabulary::Types => !self.schemas.types().iter().any(|t| t.name.starts_with(prefix)),
            Vocabulary::Enum(values) => !values.iter().any(|x| x.starts_with(prefix)),
            _ => false,
        };
        if none {
            self.error(at, format!("no value this field can hold starts with `{prefix}`: the test can never hold"));
        }
    }
}

/// The text of a string literal.
fn literal(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

/// How an expression reads, for messages: `case.regions`, or `the value` when it is not a path.
fn path(e: &IdedExpr) -> String {
    match &e.expr {
        Expr::Ident(name) => name.clone(),
        Expr::Select(s) => format!("{}.{}", path(&s.operand), s.field),
        _ => "the value".into(),
    }
}

/// The candidate closest to `word` within two edits, if any.
pub fn did_you_mean<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .map(|c| (edits(word, c), c))
        .filter(|(d, c)| *d <= 2.max(word.chars().count() / 5) && *d < c.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The Levenshtein distance between two strings, by characters.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_or_none() {
        let regions = ["yangtze_delta", "bohai_rim", "west_strait"];
        assert_eq!(did_you_mean("yangtze_dleta", regions.into_iter()), Some("yangtze_delta"));
        assert_eq!(did_you_mean("regionz", ["regions", "divisions"].into_iter()), Some("regions"));
        assert_eq!(did_you_mean("atlantis", regions.into_iter()), None);
        assert_eq!(edits("kitten", "sitting"), 3);
    }
}
