//! Whether a new version of a message type's schema breaks its consumers: a required member
//! added, a member removed, or a member narrowed (fewer types or values, tighter bounds, a new
//! pattern or format, other members no longer allowed). Such a change needs a new version.
//!
//! Both schemas are read as they validate: `$ref`s followed (into the shared definitions too),
//! `allOf` merged, `anyOf` branches matched by their reference. A keyword the comparison does
//! not model (`not`, `if`, `oneOf`, …) counts as a change whenever it differs: a change it
//! cannot prove harmless is reported, never let through.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::registry::COMMON_ID;

/// One breaking change: where (a path into the message's `data`, `*` for array items) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub at: String,
    pub what: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.at.is_empty() { "/" } else { &self.at };
        write!(f, "{at}: {}", self.what)
    }
}

/// A schema document and the shared definitions its references may lead into.
#[derive(Clone, Copy)]
pub struct Document<'a> {
    pub schema: &'a Value,
    pub common: &'a Value,
}

/// The changes from `old` to `new` that break consumers of `old`.
pub fn breaking(old: Document<'_>, new: Document<'_>) -> Vec<Change> {
    let mut changes = Vec::new();
    let old_node = Node::of(&[Facet { doc: old.schema, node: old.schema }], old.common);
    let new_node = Node::of(&[Facet { doc: new.schema, node: new.schema }], new.common);
    compare(&old_node, &new_node, "", old.common, new.common, &mut changes, 0);
    changes
}

/// A schema object and the document its local references resolve in.
#[derive(Clone, Copy)]
struct Facet<'a> {
    doc: &'a Value,
    node: &'a Value,
}

/// Keywords that describe but do not constrain, and keywords the comparison models.
const IGNORED: [&str; 9] =
    ["$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default", "deprecated"];
const MODELLED: [&str; 20] = [
    "$ref",
    "allOf",
    "anyOf",
    "properties",
    "required",
    "type",
    "enum",
    "const",
    "pattern",
    "format",
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
];

/// What a member accepts, all its facets merged.
#[derive(Default)]
struct Node<'a> {
    properties: BTreeMap<&'a str, Vec<Facet<'a>>>,
    required: BTreeSet<&'a str>,
    types: Option<BTreeSet<&'a str>>,
    values: Option<Vec<&'a Value>>,
    patterns: BTreeSet<&'a str>,
    formats: BTreeSet<&'a str>,
    lower: BTreeMap<&'static str, f64>,
    upper: BTreeMap<&'static str, f64>,
    closed: bool,
    items: Vec<Facet<'a>>,
    any_of: Vec<Vec<Facet<'a>>>,
    /// Keywords not modelled: name → every value written.
    opaque: BTreeMap<&'a str, Vec<&'a Value>>,
}

impl<'a> Node<'a> {
    fn of(facets: &[Facet<'a>], common: &'a Value) -> Node<'a> {
        let mut flat = Vec::new();
        for f in facets {
            flatten(*f, common, &mut flat, 0);
        }
        let mut n = Node::default();
        for Facet { doc, node } in flat {
            let Some(obj) = node.as_object() else {
                if node == &Value::Bool(false) {
                    n.values = Some(Vec::new());
                }
                continue;
            };
            for (key, value) in obj {
                let key = key.as_str();
                match key {
                    "properties" => {
                        for (name, child) in value.as_object().into_iter().flatten() {
                            n.properties.entry(name.as_str()).or_default().push(Facet { doc, node: child });
                        }
                    }
                    "required" => n.required.extend(value.as_array().into_iter().flatten().filter_map(Value::as_str)),
                    "type" => {
                        let these: BTreeSet<&str> = match value {
                            Value::String(s) => [s.as_str()].into(),
                            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                            _ => BTreeSet::new(),
                        };
                        n.types = Some(match n.types.take() {
                            None => these,
                            Some(before) => before.intersection(&these).copied().collect(),
                        });
                    }
                    "enum" | "const" => {
                        let these: Vec<&Value> = match (key, value) {
                            ("enum", Value::Array(a)) => a.iter().collect(),
                            _ => vec![value],
                        };
                        n.values = Some(match n.values.take() {
                            None => these,
                            Some(before) => before.into_iter().filter(|v| these.contains(v)).collect(),
                        });
                    }
                    "pattern" => n.patterns.extend(value.as_str()),
                    "format" => n.formats.extend(value.as_str()),
                    "minimum" | "exclusiveMinimum" | "minLength" | "minItems" | "minProperties" => {
                        if let Some(v) = value.as_f64() {
                            let k = MODELLED.iter().find(|m| **m == key).copied().unwrap_or("minimum");
                            let e = n.lower.entry(k).or_insert(v);
                            *e = e.max(v);
                        }
                    }
                    "maximum" | "exclusiveMaximum" | "maxLength" | "maxItems" | "maxProperties" => {
                        if let Some(v) = value.as_f64() {
                            let k = MODELLED.iter().find(|m| **m == key).copied().unwrap_or("maximum");
                            let e = n.upper.entry(k).or_insert(v);
                            *e = e.min(v);
                        }
                    }
                    "additionalProperties" if value == &Value::Bool(false) => n.closed = true,
                    "additionalProperties" if value == &Value::Bool(true) => {}
                    "items" => n.items.push(Facet { doc, node: value }),
                    "anyOf" => {
                        n.any_of.push(value.as_array().into_iter().flatten().map(|b| Facet { doc, node: b }).collect())
                    }
                    "$ref" | "allOf" => {}
                    k if IGNORED.contains(&k) || k.starts_with("x-") => {}
                    k => n.opaque.entry(k).or_default().push(value),
                }
            }
        }
        n
    }
}

/// `facet` and everything it references or includes (`$ref`, `allOf`), in order.
fn flatten<'a>(facet: Facet<'a>, common: &'a Value, out: &mut Vec<Facet<'a>>, depth: usize) {
    if depth > 32 {
        return;
    }
    out.push(facet);
    let Some(obj) = facet.node.as_object() else { return };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let (doc, fragment) = match r.strip_prefix(COMMON_ID) {
            Some(fragment) => (common, fragment),
            None => (facet.doc, r),
        };
        if let Some(target) = fragment.strip_prefix('#').and_then(|p| doc.pointer(p)) {
            flatten(Facet { doc, node: target }, common, out, depth + 1);
        }
    }
    for part in obj.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        flatten(Facet { doc: facet.doc, node: part }, common, out, depth + 1);
    }
}

fn accepts_type(types: &BTreeSet<&str>, t: &str) -> bool {
    types.contains(t) || (t == "integer" && types.contains("number"))
}

/// A branch's name for matching old and new `anyOf` branches: its reference, if it has one.
fn branch_key(f: &Facet<'_>, index: usize) -> String {
    f.node.get("$ref").and_then(Value::as_str).map_or_else(|| format!("#{index}"), str::to_string)
}

fn compare(
    old: &Node<'_>,
    new: &Node<'_>,
    at: &str,
    old_common: &Value,
    new_common: &Value,
    changes: &mut Vec<Change>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let mut change = |what: String| changes.push(Change { at: at.to_string(), what });
    for r in new.required.difference(&old.required) {
        change(format!("`{r}` is now required"));
    }
    match (&old.types, &new.types) {
        (None, Some(n)) => change(format!("now only of type {}", n.iter().copied().collect::<Vec<_>>().join(" or "))),
        (Some(o), Some(n)) => {
            for t in o.iter().filter(|t| !accepts_type(n, t)) {
                change(format!("no longer accepts type {t}"));
            }
        }
        _ => {}
    }
    match (&old.values, &new.values) {
        (None, Some(_)) => change("now limited to a list of values".into()),
        (Some(o), Some(n)) => {
            let lost: Vec<String> = o.iter().filter(|v| !n.contains(v)).map(|v| v.to_string()).collect();
            if !lost.is_empty() {
                change(format!("no longer accepts {}", lost.join(", ")));
            }
        }
        _ => {}
    }
    for p in new.patterns.difference(&old.patterns) {
        change(format!("must now match the pattern `{p}`"));
    }
    for f in new.formats.difference(&old.formats) {
        change(format!("must now have the format `{f}`"));
    }
    for (k, v) in &new.lower {
        if old.lower.get(k).is_none_or(|o| v > o) {
            change(format!("{k} raised to {v}"));
        }
    }
    for (k, v) in &new.upper {
        if old.upper.get(k).is_none_or(|o| v < o) {
            change(format!("{k} lowered to {v}"));
        }
    }
    if new.closed && !old.closed {
        change("no longer accepts members it does not list".into());
    }
    for (k, values) in &new.opaque {
        if old.opaque.get(k) != Some(values) {
            change(format!("`{k}` changed; xietong cannot tell whether it narrows, so it counts as breaking"));
        }
    }
    for k in old.opaque.keys().filter(|k| !new.opaque.contains_key(*k)) {
        change(format!("`{k}` removed; xietong cannot tell whether that narrows, so it counts as breaking"));
    }
    for (name, old_facets) in &old.properties {
        let here = format!("{at}/{name}");
        match new.properties.get(name) {
            None => changes.push(Change { at: here, what: "removed".into() }),
            Some(new_facets) => compare(
                &Node::of(old_facets, old_common),
                &Node::of(new_facets, new_common),
                &here,
                old_common,
                new_common,
                changes,
                depth + 1,
            ),
        }
    }
    if !old.items.is_empty() || !new.items.is_empty() {
        let here = format!("{at}/*");
        compare(
            &Node::of(&old.items, old_common),
            &Node::of(&new.items, new_common),
            &here,
            old_common,
            new_common,
            changes,
            depth + 1,
        );
    }
    if old.any_of.len() != new.any_of.len() && !new.any_of.is_empty() {
        changes.push(Change { at: at.to_string(), what: "its `anyOf` changed".into() });
        return;
    }
    for (old_branches, new_branches) in old.any_of.iter().zip(&new.any_of) {
        for (i, ob) in old_branches.iter().enumerate() {
            let key = branch_key(ob, i);
            match new_branches.iter().enumerate().find(|(j, nb)| branch_key(nb, *j) == key) {
                None => changes.push(Change { at: at.to_string(), what: format!("no longer accepts the form {key}") }),
                Some((_, nb)) => compare(
                    &Node::of(&[*ob], old_common),
                    &Node::of(&[*nb], new_common),
                    at,
                    old_common,
                    new_common,
                    changes,
                    depth + 1,
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::schema::registry::Registry;

    fn changes(old: &Value, new: &Value, common: &Value) -> Vec<String> {
        breaking(Document { schema: old, common }, Document { schema: new, common })
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_shipped_schema_is_compatible_with_itself() {
        let r = Registry::built_in().unwrap();
        for t in &r.types {
            assert_eq!(changes(&t.schema, &t.schema, &r.common), Vec::<String>::new(), "{}", t.message_type.name);
        }
    }

    #[test]
    fn finds_required_removed_and_narrowed_members_through_the_shared_definitions() {
        let r = Registry::built_in().unwrap();
        let old = &r.get("cn.xietong.clue.transfer").unwrap().schema;
        let mut new = old.clone();
        new["required"].as_array_mut().unwrap().push(json!("decision"));
        new["properties"]["case"]["required"].as_array_mut().unwrap().push(json!("amountYuan"));
        assert_eq!(
            changes(old, &new, &r.common),
            ["/: `decision` is now required", "/case: `amountYuan` is now required"]
        );

        // The same schema over changed shared definitions.
        let mut common = r.common.clone();
        let case = common["$defs"]["case"]["properties"].as_object_mut().unwrap();
        case.remove("openedOn");
        case["amountYuan"]["minimum"] = json!(1);
        common["$defs"]["party"]["properties"]["kind"]["enum"] = json!(["person"]);
        let got = breaking(Document { schema: old, common: &r.common }, Document { schema: old, common: &common });
        let got: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "/case/amountYuan: minimum raised to 1",
                "/case/openedOn: removed",
                "/parties/*/kind: no longer accepts \"organisation\"",
            ],
            "{got:#?}"
        );
    }

    #[test]
    fn widening_is_not_breaking() {
        let r = Registry::built_in().unwrap();
        let old = &r.get("cn.xietong.clue.transfer").unwrap().schema;
        let mut new = old.clone();
        new["properties"]["case"]["required"] = json!(["number"]);
        let mut common = r.common.clone();
        common["$defs"]["case"]["properties"]["note"] = json!({"type": "string"});
        common["$defs"]["party"]["properties"]["kind"]["enum"] = json!(["person", "organisation", "other"]);
        let got = breaking(Document { schema: old, common: &r.common }, Document { schema: &new, common: &common });
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn unmodelled_keywords_count_as_breaking_when_they_change() {
        let common = json!({});
        let old = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let new = json!({"type": "object", "properties": {"a": {"type": "string", "not": {"const": "x"}}}});
        assert_eq!(
            changes(&old, &new, &common),
            ["/a: `not` changed; xietong cannot tell whether it narrows, so it counts as breaking"]
        );
        let new = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        assert_eq!(changes(&old, &new, &common), ["/a: no longer accepts type string"]);
        let old = json!({"properties": {"n": {"type": "integer"}}});
        let new = json!({"properties": {"n": {"type": "number"}}});
        assert!(changes(&old, &new, &common).is_empty());
    }
}
