//! The JSON Schemas of the message types: the registry ([`registry`]: the shipped `schemas/`,
//! built in, and the directory `schemas:` names), compiled (draft 2020-12, references resolved
//! locally), published under the gateway's address, and compared version to version
//! ([`compat`]).

use std::collections::HashMap;

use jsonschema::Registry as Resources;
use jsonschema::{Draft, Validator};
use serde_json::Value;

use super::problem::Detail;
use super::types::{self, MessageType};

pub mod compat;
pub mod registry;

use registry::COMMON_ID;
pub use registry::{Registry, SchemaError, TypeSchema};

/// Every message type's compiled validator, and the shared definitions for field lookups; and
/// where the schemas are published (see [`Schemas::published`]).
pub struct Schemas {
    /// The message types, in the catalogue's order.
    types: Vec<&'static MessageType>,
    validators: HashMap<&'static str, Validator>,
    registry: Registry,
    /// The gateway's public address; events name their schema under it.
    base_url: Option<String>,
}

/// The path under the gateway's address where a type's schema is served, at its version.
pub fn schema_path(message_type: &MessageType) -> String {
    format!("/v1/schemas/{}/v{}", message_type.name, message_type.version)
}

/// The name of the canonical event in the OpenAPI document's components.
pub const CANONICAL_EVENT: &str = "CanonicalEvent";

/// A reference to the canonical event's schema, for the OpenAPI document (a CloudEvent whose
/// `data` follows `schemas/`).
pub fn canonical_event() -> utoipa::openapi::Ref {
    utoipa::openapi::Ref::from_schema_name(CANONICAL_EVENT)
}

impl Schemas {
    /// The shipped schemas, compiled.
    pub fn load() -> Result<Schemas, Vec<SchemaError>> {
        Schemas::compile(Registry::built_in()?)
    }

    /// Compiles every type's schema (draft 2020-12, references resolved locally).
    pub fn compile(registry: Registry) -> Result<Schemas, Vec<SchemaError>> {
        let mut errors = Vec::new();
        let common_file = registry
            .dir
            .as_ref()
            .map_or_else(|| std::path::PathBuf::from("<built-in schemas/common.json>"), |d| d.join("common.json"));
        let prepared = Resources::new().add(COMMON_ID, registry.common.clone()).and_then(|r| r.prepare());
        let resources = match prepared {
            Ok(r) => r,
            Err(e) => return Err(vec![SchemaError { file: common_file, reason: e.to_string() }]),
        };
        let mut validators = HashMap::new();
        for t in &registry.types {
            let built = jsonschema::options()
                .with_draft(Draft::Draft202012)
                .with_registry(&resources)
                .offline()
                .should_validate_formats(true)
                .build(&t.schema);
            match built {
                Ok(v) => {
                    validators.insert(t.message_type.name, v);
                }
                Err(e) => errors.push(SchemaError { file: t.origin(), reason: format!("does not compile: {e}") }),
            }
        }
        for name in types::REQUIRED {
            if registry.get(name).is_none() {
                errors.push(SchemaError {
                    file: registry.dir.clone().unwrap_or_default(),
                    reason: format!("{name} is missing: the gateway acts on it"),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let types = registry.types.iter().map(|t| t.message_type).collect();
        Ok(Schemas { types, validators, registry, base_url: None })
    }

    /// The message types, in the catalogue's order: the shipped ones, then those the schemas
    /// directory adds, by file name.
    pub fn types(&self) -> &[&'static MessageType] {
        &self.types
    }

    /// The type named `name` (a full CloudEvents type), if there is one.
    pub fn lookup(&self, name: &str) -> Option<&'static MessageType> {
        self.types.iter().copied().find(|t| t.name == name)
    }

    /// One line for `check`: how many types, where from, which the directory added or replaced.
    pub fn summary(&self) -> String {
        let Some(dir) = &self.registry.dir else {
            return format!("{} message types, the shipped schemas", self.types.len());
        };
        let from_dir: Vec<String> = self
            .registry
            .types
            .iter()
            .filter(|t| t.file.is_some())
            .map(|t| format!("{} v{}", t.message_type.name, t.message_type.version))
            .collect();
        format!(
            "{} message types: the shipped schemas and {} ({})",
            self.types.len(),
            dir.display(),
            if from_dir.is_empty() { "no changes".to_string() } else { from_dir.join(", ") }
        )
    }

    /// The schemas as written, before compilation.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// What changed since `before` in a way that breaks consumers, for each type `before` has
    /// whose version did not go up: each problem names the schema file and the changes. A
    /// version that went down is a problem too.
    pub fn breaking_since(&self, before: &Registry) -> Vec<SchemaError> {
        let mut problems = Vec::new();
        for old in &before.types {
            let Some(new) = self.registry.get(old.message_type.name) else {
                problems.push(SchemaError {
                    file: self.registry.dir.clone().unwrap_or_default(),
                    reason: format!(
                        "{} (v{}) is gone: its consumers still expect it",
                        old.message_type.name, old.message_type.version
                    ),
                });
                continue;
            };
            let (was, is) = (old.message_type.version, new.message_type.version);
            if is < was {
                problems.push(SchemaError {
                    file: new.origin(),
                    reason: format!("version v{is} is below v{was}, the version in force"),
                });
                continue;
            }
            if is > was {
                continue;
            }
            let changes = compat::breaking(
                compat::Document { schema: &old.schema, common: &before.common },
                compat::Document { schema: &new.schema, common: &self.registry.common },
            );
            if !changes.is_empty() {
                let listed: Vec<String> = changes.iter().map(ToString::to_string).collect();
                problems.push(SchemaError {
                    file: new.origin(),
                    reason: format!(
                        "{} changes in a way that breaks its consumers, at the same version v{was}: {}. Raise the version in $id to v{}",
                        new.message_type.name,
                        listed.join("; "),
                        was + 1
                    ),
                });
            }
        }
        problems
    }

    /// The same schemas, published under `base_url` (the gateway's public address).
    pub fn published_at(mut self, base_url: String) -> Schemas {
        self.base_url = Some(base_url);
        self
    }

    /// The `dataschema` of an event of `message_type`: the URL where the gateway serves its
    /// schema, or the schema's URN when no address is known (tools that run without one).
    pub fn dataschema(&self, message_type: &MessageType) -> String {
        match &self.base_url {
            Some(base) => format!("{base}{}", schema_path(message_type)),
            None => message_type.dataschema(),
        }
    }

    /// The schema of `message_type` as the gateway serves it: one self-contained JSON Schema
    /// 2020-12 document whose `$id` is its URL, with the shared definitions under `$defs` and
    /// every reference local, so that any validator can use it without resolving anything.
    pub fn published(&self, message_type: &MessageType) -> Option<Value> {
        let mut schema = self.registry.get(message_type.name)?.schema.clone();
        let defs = self.registry.common.get("$defs").cloned().unwrap_or_default();
        localise(&mut schema);
        let obj = schema.as_object_mut()?;
        obj.insert("$id".into(), Value::String(self.dataschema(message_type)));
        let mut defs = defs;
        localise(&mut defs);
        obj.insert("$defs".into(), defs);
        obj.insert("x-version".into(), Value::from(message_type.version));
        Some(schema)
    }

    /// Validates a message's `data` against its type's schema. Error reasons never quote the
    /// value (it may be sensitive); pointers are into the event (`/data/...`).
    pub fn validate(&self, message_type: &MessageType, data: &Value) -> Result<(), Vec<Detail>> {
        let Some(validator) = self.validators.get(message_type.name) else {
            return Err(vec![Detail::new("/type", "no schema for this message type")]);
        };
        let details: Vec<Detail> = validator
            .iter_errors(data)
            .map(|e| match e.kind() {
                // Name the missing member itself, not its parent.
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    let name = property.as_str().unwrap_or_default();
                    let member = jsonptr::PointerBuf::from_tokens([name]);
                    Detail::new(format!("/data{}{}", e.instance_path(), member), "required, but missing")
                }
                _ => Detail::new(format!("/data{}", e.instance_path()), e.masked().to_string()),
            })
            .collect();
        if details.is_empty() { Ok(()) } else { Err(details) }
    }

    /// The schema of the data member at `pointer` (relative to `data`), following `$ref`s,
    /// `properties`, array `items` (for a `[]` token) and the object branch of `anyOf`.
    /// `None` when the shared schema has no such member. Used by `check` to verify mapping
    /// targets.
    pub fn member<'a>(&'a self, tokens: &[&str]) -> Option<&'a Value> {
        let mut node = self.resolve(self.registry.common.pointer("/$defs/data")?)?;
        for token in tokens {
            node = if *token == "[]" {
                self.resolve(node.get("items")?)?
            } else {
                match node.get("properties").and_then(|p| p.get(*token)) {
                    Some(child) => self.resolve(child)?,
                    // Open objects (`extra`, `statistics`) accept any member.
                    None if node.get("additionalProperties").is_none_or(|a| a != &Value::Bool(false)) => {
                        return Some(&Value::Bool(true));
                    }
                    None => return None,
                }
            };
        }
        Some(node)
    }

    /// The shared definition of every message's `data`.
    pub fn data_schema(&self) -> Option<&Value> {
        self.registry.common.pointer("/$defs/data")
    }

    /// `node` with its `$ref`s followed (into the shared definitions) and the object branch of an
    /// `anyOf` taken.
    pub fn resolve_node<'a>(&'a self, node: &'a Value) -> Option<&'a Value> {
        self.resolve(node)
    }

    fn resolve<'a>(&'a self, mut node: &'a Value) -> Option<&'a Value> {
        loop {
            if let Some(r) = node.get("$ref").and_then(Value::as_str) {
                let fragment = r.strip_prefix(COMMON_ID).unwrap_or(r).strip_prefix('#')?;
                node = self.registry.common.pointer(fragment)?;
            } else if let Some(branches) = node.get("anyOf").and_then(Value::as_array) {
                node = branches.iter().find(|b| b.get("$ref").is_some_and(|r| r != "#/$defs/removedItem"))?;
            } else {
                return Some(node);
            }
        }
    }

    /// Whether the member's schema is an array (rules with `each` must target one).
    pub fn is_array(node: &Value) -> bool {
        node.get("type").and_then(Value::as_str) == Some("array")
    }
}

/// Rewrites references to the shared definitions (`urn:…:common:v1#/$defs/x`) into local ones
/// (`#/$defs/x`).
fn localise(node: &mut Value) {
    match node {
        Value::Object(members) => {
            for (key, value) in members.iter_mut() {
                match value {
                    Value::String(r) if key == "$ref" => {
                        if let Some(local) = r.strip_prefix(COMMON_ID) {
                            *r = local.to_string();
                        }
                    }
                    _ => localise(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(localise),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schemas() -> Schemas {
        Schemas::load().expect("embedded schemas compile")
    }

    #[test]
    fn every_type_has_a_compiling_schema() {
        let s = schemas();
        assert_eq!(s.validators.len(), s.types().len());
    }

    #[test]
    fn validates_required_members_and_rejects_unknown_ones() {
        let s = schemas();
        let t = s.lookup("cn.xietong.typical_case").unwrap();
        let good = json!({"sender": {"id": "ip_office:330000"}, "case": {"number": "X"}, "content": "c",
                          "redactions": [], "classifiedFields": []});
        assert_eq!(s.validate(t, &good), Ok(()));
        let bad = json!({"sender": {"id": "ip_office:330000"}, "case": {"name": "X"}, "surprise": 1,
                         "redactions": [], "classifiedFields": []});
        let details = s.validate(t, &bad).unwrap_err();
        let pointers: Vec<_> = details.iter().map(|d| d.pointer.as_str()).collect();
        assert!(pointers.contains(&"/data/case/number"), "{details:?}");
        assert!(pointers.contains(&"/data"), "{details:?}");
        assert!(details.iter().all(|d| !d.reason.contains("\"X\"")), "values are never quoted: {details:?}");
    }

    #[test]
    fn removed_array_items_are_null_and_valid() {
        let s = schemas();
        let t = s.lookup("cn.xietong.bulletin").unwrap();
        let data = json!({"sender": {"id": "ip_office:330000"}, "content": "c",
                          "attachments": [{"fileName": "a.pdf"}, null],
                          "redactions": [{"pointer": "/data/attachments/1", "reason": "state_secret"}],
                          "classifiedFields": []});
        assert_eq!(s.validate(t, &data), Ok(()));
    }

    #[test]
    fn a_published_schema_stands_alone_and_validates_as_the_gateway_does() {
        let s = schemas().published_at("https://xietong.example.cn".into());
        let t = s.lookup("cn.xietong.clue.transfer").unwrap();
        let published = s.published(t).unwrap();
        assert_eq!(published["$id"], "https://xietong.example.cn/v1/schemas/cn.xietong.clue.transfer/v1");
        assert_eq!(published["x-version"], 1);
        assert_eq!(s.dataschema(t), published["$id"]);
        assert!(!published.to_string().contains("urn:xietong:schema:common"), "every reference is local");
        // Compiled with no registry and no network: everything it needs is inside.
        let alone = jsonschema::options().with_draft(Draft::Draft202012).offline().build(&published).unwrap();
        let good = json!({"sender": {"id": "ip_office:330100"}, "case": {"number": "X", "divisions": ["330102"]},
                          "content": "c", "redactions": [], "classifiedFields": []});
        assert_eq!(alone.is_valid(&good), s.validate(t, &good).is_ok());
        let bad = json!({"sender": {"id": "nobody"}, "redactions": [], "classifiedFields": []});
        assert!(!alone.is_valid(&bad) && s.validate(t, &bad).is_err());
    }

    #[test]
    fn finds_members_for_mapping_targets() {
        let s = schemas();
        assert!(s.member(&["case", "number"]).is_some());
        assert!(s.member(&["parties", "[]", "residentId"]).is_some());
        assert!(Schemas::is_array(s.member(&["attachments"]).unwrap()));
        assert!(s.member(&["extra", "anything"]).is_some());
        assert!(s.member(&["case", "nubmer"]).is_none());
        assert!(s.member(&["parties", "[]", "nickname"]).is_none());
    }
}
