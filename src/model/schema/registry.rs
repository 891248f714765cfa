//! The schema registry: the message types and their JSON Schemas. The schemas shipped in the
//! repository's `schemas/` are built into the binary and are the default; the directory that
//! `schemas:` in `xietong.yaml` names is read at start and on every reload, and its files add
//! types or replace the shipped ones (`common.json` replaces the shared definitions).
//!
//! A file `STEM.json` defines the type `cn.xietong.STEM`. Its `$id` is
//! `urn:xietong:schema:STEM:vN`, N its version; `x-section` names the section of the opinion.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::types::{self, MessageType};

/// The `$id` of the shared definitions (`common.json`).
pub const COMMON_ID: &str = "urn:xietong:schema:common:v1";

const COMMON: &str = include_str!("../../../schemas/common.json");

/// `(schema file stem, contents)` of every shipped message type, in the catalogue's order.
const BUILT_IN: &[(&str, &str)] = &[
    ("meeting.notice", include_str!("../../../schemas/meeting.notice.json")),
    ("meeting.reply", include_str!("../../../schemas/meeting.reply.json")),
    ("related_case.notice", include_str!("../../../schemas/related_case.notice.json")),
    ("bulletin", include_str!("../../../schemas/bulletin.json")),
    ("expert.request", include_str!("../../../schemas/expert.request.json")),
    ("expert.recommendation", include_str!("../../../schemas/expert.recommendation.json")),
    ("consultation.request", include_str!("../../../schemas/consultation.request.json")),
    ("consultation.reply", include_str!("../../../schemas/consultation.reply.json")),
    ("opinion.request", include_str!("../../../schemas/opinion.request.json")),
    ("opinion.escalation", include_str!("../../../schemas/opinion.escalation.json")),
    ("opinion.reply", include_str!("../../../schemas/opinion.reply.json")),
    ("clue.transfer", include_str!("../../../schemas/clue.transfer.json")),
    ("clue.decision", include_str!("../../../schemas/clue.decision.json")),
    ("supervision.filing_suggestion", include_str!("../../../schemas/supervision.filing_suggestion.json")),
    ("supervision.judgment_application", include_str!("../../../schemas/supervision.judgment_application.json")),
    ("supervision.feedback", include_str!("../../../schemas/supervision.feedback.json")),
    ("non_prosecution.transfer", include_str!("../../../schemas/non_prosecution.transfer.json")),
    ("non_prosecution.result", include_str!("../../../schemas/non_prosecution.result.json")),
    ("major_case.supervision", include_str!("../../../schemas/major_case.supervision.json")),
    ("hub.notice", include_str!("../../../schemas/hub.notice.json")),
    ("cooperation.notice", include_str!("../../../schemas/cooperation.notice.json")),
    ("typical_case", include_str!("../../../schemas/typical_case.json")),
    ("evaluation.notice", include_str!("../../../schemas/evaluation.notice.json")),
    ("thread.overdue", include_str!("../../../schemas/thread.overdue.json")),
    ("gateway.notice", include_str!("../../../schemas/gateway.notice.json")),
];

/// A problem with a schema: the file (or the built-in schema) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct SchemaError {
    pub file: PathBuf,
    pub reason: String,
}

impl SchemaError {
    fn new(file: &Path, reason: impl Into<String>) -> Self {
        SchemaError { file: file.to_path_buf(), reason: reason.into() }
    }
}

/// One message type's schema, as written.
#[derive(Clone, Debug)]
pub struct TypeSchema {
    pub message_type: &'static MessageType,
    pub schema: Value,
    /// The file it was read from; `None` for a built-in schema.
    pub file: Option<PathBuf>,
}

impl TypeSchema {
    /// Where the schema comes from, for messages.
    pub fn origin(&self) -> PathBuf {
        self.file.clone().unwrap_or_else(|| built_in_path(self.message_type.schema))
    }
}

/// The shared definitions and every type's schema, parsed and named, not yet compiled.
#[derive(Clone, Debug)]
pub struct Registry {
    pub common: Value,
    pub types: Vec<TypeSchema>,
    /// The directory read over the built-in schemas, if any.
    pub dir: Option<PathBuf>,
}

fn built_in_path(stem: &str) -> PathBuf {
    PathBuf::from(format!("<built-in schemas/{stem}.json>"))
}

impl Registry {
    /// The shipped schemas.
    pub fn built_in() -> Result<Registry, Vec<SchemaError>> {
        let mut errors = Vec::new();
        let common = parse(COMMON, &built_in_path("common"), &mut errors).unwrap_or_default();
        let types = BUILT_IN
            .iter()
            .filter_map(|(stem, text)| {
                let file = built_in_path(stem);
                let schema = parse(text, &file, &mut errors)?;
                declared(stem, schema, None, &file, &mut errors)
            })
            .collect();
        if errors.is_empty() { Ok(Registry { common, types, dir: None }) } else { Err(errors) }
    }

    /// These schemas with the files of `dir` added or put in their place.
    pub fn overlaid(mut self, dir: &Path) -> Result<Registry, Vec<SchemaError>> {
        let mut errors = Vec::new();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(e) => return Err(vec![SchemaError::new(dir, format!("cannot read the schemas directory: {e}"))]),
        };
        files.sort();
        for file in files {
            let Some(stem) = file.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(SchemaError::new(&file, e.to_string()));
                    continue;
                }
            };
            let Some(schema) = parse(&text, &file, &mut errors) else { continue };
            if stem == "common" {
                if schema.get("$id").and_then(Value::as_str) != Some(COMMON_ID) {
                    errors.push(SchemaError::new(&file, format!("$id must be {COMMON_ID}")));
                }
                self.common = schema;
                continue;
            }
            let Some(t) = declared(&stem, schema, Some(file.clone()), &file, &mut errors) else { continue };
            match self.types.iter_mut().find(|old| old.message_type.name == t.message_type.name) {
                Some(old) if types::gateway_only(old.message_type.name) => {
                    if old.schema != t.schema {
                        errors.push(SchemaError::new(
                            &file,
                            format!(
                                "{} is the gateway's own notice: its schema cannot be changed",
                                t.message_type.name
                            ),
                        ));
                    }
                }
                // A copy of a shipped schema changes nothing.
                Some(old) if old.schema == t.schema => {}
                Some(old) => *old = t,
                None => self.types.push(t),
            }
        }
        self.dir = Some(dir.to_path_buf());
        if errors.is_empty() { Ok(self) } else { Err(errors) }
    }

    /// The type named `name`.
    pub fn get(&self, name: &str) -> Option<&TypeSchema> {
        self.types.iter().find(|t| t.message_type.name == name)
    }
}

fn parse(text: &str, file: &Path, errors: &mut Vec<SchemaError>) -> Option<Value> {
    match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => Some(v),
        Ok(_) => {
            errors.push(SchemaError::new(file, "a schema is a JSON object"));
            None
        }
        Err(e) => {
            errors.push(SchemaError::new(file, format!("not JSON: {e}")));
            None
        }
    }
}

/// The type a schema file declares, its name and version checked against its `$id`.
fn declared(
    stem: &str,
    schema: Value,
    file: Option<PathBuf>,
    at: &Path,
    errors: &mut Vec<SchemaError>,
) -> Option<TypeSchema> {
    let well_named = !stem.is_empty()
        && stem.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
    if !well_named {
        errors.push(SchemaError::new(
            at,
            "a schema file is named after its type: lowercase words of letters, digits and `_`, joined by `.` (clue.transfer.json)",
        ));
        return None;
    }
    let id = schema.get("$id").and_then(Value::as_str).unwrap_or_default();
    let version = id
        .strip_prefix(&format!("urn:xietong:schema:{stem}:v"))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|v| *v >= 1 && !id.ends_with(":v0"));
    let Some(version) = version else {
        errors.push(SchemaError::new(
            at,
            format!("$id must be urn:xietong:schema:{stem}:vN, N the schema's version (1 or more)"),
        ));
        return None;
    };
    let section = match schema.get("x-section") {
        None => "—",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            errors.push(SchemaError::new(at, "x-section is the section of the opinion, as text (\"八\")"));
            return None;
        }
    };
    let message_type = MessageType::intern(stem, section, version);
    Some(TypeSchema { message_type, schema, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_registry_has_every_type_the_gateway_acts_on() {
        let r = Registry::built_in().unwrap();
        assert_eq!(r.types.len(), BUILT_IN.len());
        for name in types::REQUIRED {
            assert!(r.get(name).is_some(), "{name}");
        }
        let t = r.get("cn.xietong.clue.transfer").unwrap().message_type;
        assert_eq!((t.section, t.version), ("八", 1));
    }

    #[test]
    fn a_directory_adds_and_replaces_types() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, v: Value| std::fs::write(dir.path().join(name), v.to_string()).unwrap();
        write(
            "foreign_case.request.json",
            serde_json::json!({"$id": "urn:xietong:schema:foreign_case.request:v1", "x-section": "十六",
                               "$ref": "urn:xietong:schema:common:v1#/$defs/data"}),
        );
        std::fs::write(dir.path().join("README.md"), "not a schema").unwrap();
        let r = Registry::built_in().unwrap().overlaid(dir.path()).unwrap();
        assert_eq!(r.types.len(), BUILT_IN.len() + 1);
        let added = r.get("cn.xietong.foreign_case.request").unwrap();
        assert_eq!((added.message_type.section, added.message_type.version), ("十六", 1));
        assert_eq!(added.file.as_deref(), Some(dir.path().join("foreign_case.request.json").as_path()));

        write("Bad Name.json", serde_json::json!({}));
        write("bulletin.json", serde_json::json!({"$id": "urn:xietong:schema:bulletin:v0"}));
        write("thread.overdue.json", serde_json::json!({"$id": "urn:xietong:schema:thread.overdue:v2"}));
        let errors = Registry::built_in().unwrap().overlaid(dir.path()).unwrap_err();
        let reasons: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 3, "{reasons:#?}");
        assert!(reasons[0].contains("Bad Name.json: a schema file is named after its type"), "{reasons:#?}");
        assert!(reasons[1].contains("bulletin.json: $id must be urn:xietong:schema:bulletin:vN"), "{reasons:#?}");
        assert!(reasons[2].contains("the gateway's own notice"), "{reasons:#?}");
    }
}
