//! The JSON Schemas of `schemas/`, embedded in the binary so that the code and the shared
//! contract always travel together, compiled once (draft 2020-12) and resolved locally.

use std::collections::HashMap;

use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;

use super::problem::Detail;
use super::types::{self, MessageType};

const COMMON_ID: &str = "urn:xietong:schema:common:v1";
const COMMON: &str = include_str!("../../schemas/common.json");

/// `(schema file stem, contents)` for every message type.
const TYPE_SCHEMAS: &[(&str, &str)] = &[
    ("meeting.notice", include_str!("../../schemas/meeting.notice.json")),
    ("meeting.reply", include_str!("../../schemas/meeting.reply.json")),
    ("related_case.notice", include_str!("../../schemas/related_case.notice.json")),
    ("bulletin", include_str!("../../schemas/bulletin.json")),
    ("expert.request", include_str!("../../schemas/expert.request.json")),
    ("expert.recommendation", include_str!("../../schemas/expert.recommendation.json")),
    ("consultation.request", include_str!("../../schemas/consultation.request.json")),
    ("consultation.reply", include_str!("../../schemas/consultation.reply.json")),
    ("opinion.request", include_str!("../../schemas/opinion.request.json")),
    ("opinion.escalation", include_str!("../../schemas/opinion.escalation.json")),
    ("opinion.reply", include_str!("../../schemas/opinion.reply.json")),
    ("clue.transfer", include_str!("../../schemas/clue.transfer.json")),
    ("clue.decision", include_str!("../../schemas/clue.decision.json")),
    ("supervision.filing_suggestion", include_str!("../../schemas/supervision.filing_suggestion.json")),
    ("supervision.judgment_application", include_str!("../../schemas/supervision.judgment_application.json")),
    ("supervision.feedback", include_str!("../../schemas/supervision.feedback.json")),
    ("non_prosecution.transfer", include_str!("../../schemas/non_prosecution.transfer.json")),
    ("non_prosecution.result", include_str!("../../schemas/non_prosecution.result.json")),
    ("major_case.supervision", include_str!("../../schemas/major_case.supervision.json")),
    ("hub.notice", include_str!("../../schemas/hub.notice.json")),
    ("cooperation.notice", include_str!("../../schemas/cooperation.notice.json")),
    ("typical_case", include_str!("../../schemas/typical_case.json")),
    ("evaluation.notice", include_str!("../../schemas/evaluation.notice.json")),
    ("thread.overdue", include_str!("../../schemas/thread.overdue.json")),
    ("gateway.notice", include_str!("../../schemas/gateway.notice.json")),
];

/// A schema that failed to load: a defect of the build, reported by `check` and at start-up.
#[derive(Debug, thiserror::Error)]
#[error("schema {schema}: {reason}")]
pub struct SchemaError {
    pub schema: String,
    pub reason: String,
}

/// Every message type's compiled validator, and the shared definitions for field lookups; and
/// where the schemas are published (see [`Schemas::published`]).
pub struct Schemas {
    validators: HashMap<&'static str, Validator>,
    common: Value,
    sources: HashMap<&'static str, Value>,
    /// The gateway's public address; events name their schema under it.
    base_url: Option<String>,
}

/// The path under the gateway's address where a type's schema is served.
pub fn schema_path(message_type: &MessageType) -> String {
    format!("/v1/schemas/{}", message_type.name)
}

/// The version of every schema: the `v1` of its URN.
pub const VERSION: u32 = 1;

/// The name of the canonical event in the OpenAPI document's components.
pub const CANONICAL_EVENT: &str = "CanonicalEvent";

/// A reference to the canonical event's schema, for the OpenAPI document (a CloudEvent whose
/// `data` follows `schemas/`).
pub fn canonical_event() -> utoipa::openapi::Ref {
    utoipa::openapi::Ref::from_schema_name(CANONICAL_EVENT)
}

impl Schemas {
    pub fn load() -> Result<Schemas, SchemaError> {
        let err = |schema: &str, reason: String| SchemaError { schema: schema.to_string(), reason };
        let common: Value = serde_json::from_str(COMMON).map_err(|e| err("common", e.to_string()))?;
        let registry = Registry::new()
            .add(COMMON_ID, common.clone())
            .and_then(|r| r.prepare())
            .map_err(|e| err("common", e.to_string()))?;
        let mut validators = HashMap::new();
        let mut sources = HashMap::new();
        for t in types::ALL {
            let text = TYPE_SCHEMAS
                .iter()
                .find(|(stem, _)| *stem == t.schema)
                .map(|(_, text)| *text)
                .ok_or_else(|| err(t.schema, "no schema file for this type".into()))?;
            let schema: Value = serde_json::from_str(text).map_err(|e| err(t.schema, e.to_string()))?;
            if schema.get("$id").and_then(Value::as_str) != Some(t.dataschema().as_str()) {
                return Err(err(t.schema, format!("$id must be {}", t.dataschema())));
            }
            let validator = jsonschema::options()
                .with_draft(Draft::Draft202012)
                .with_registry(&registry)
                .offline()
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|e| err(t.schema, e.to_string()))?;
            validators.insert(t.name, validator);
            sources.insert(t.name, schema);
        }
        Ok(Schemas { validators, common, sources, base_url: None })
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
        let mut schema = self.sources.get(message_type.name)?.clone();
        let defs = self.common.get("$defs").cloned().unwrap_or_default();
        localise(&mut schema);
        let obj = schema.as_object_mut()?;
        obj.insert("$id".into(), Value::String(self.dataschema(message_type)));
        let mut defs = defs;
        localise(&mut defs);
        obj.insert("$defs".into(), defs);
        obj.insert("x-version".into(), Value::from(VERSION));
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
        let mut node = self.resolve(self.common.pointer("/$defs/data")?)?;
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
        self.common.pointer("/$defs/data")
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
                node = self.common.pointer(fragment)?;
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
        assert_eq!(s.validators.len(), types::ALL.len());
    }

    #[test]
    fn validates_required_members_and_rejects_unknown_ones() {
        let s = schemas();
        let t = types::lookup("cn.xietong.typical_case").unwrap();
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
        let t = types::lookup("cn.xietong.bulletin").unwrap();
        let data = json!({"sender": {"id": "ip_office:330000"}, "content": "c",
                          "attachments": [{"fileName": "a.pdf"}, null],
                          "redactions": [{"pointer": "/data/attachments/1", "reason": "state_secret"}],
                          "classifiedFields": []});
        assert_eq!(s.validate(t, &data), Ok(()));
    }

    #[test]
    fn a_published_schema_stands_alone_and_validates_as_the_gateway_does() {
        let s = schemas().published_at("https://xietong.example.cn".into());
        let t = types::lookup("cn.xietong.clue.transfer").unwrap();
        let published = s.published(t).unwrap();
        assert_eq!(published["$id"], "https://xietong.example.cn/v1/schemas/cn.xietong.clue.transfer");
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
