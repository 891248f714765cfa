//! Stages 1 to 8 of the pipeline (see the module above): a body in, the canonical event or a
//! refusal out. Pure: no I/O.

use std::collections::BTreeMap;

use jsonptr::PointerBuf;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::event::{self, Attributes};
use crate::model::schema::Schemas;
use crate::model::shape::Shape;
use crate::model::{Code, Detail, MessageType, Problem, Sender};
use crate::normalize::{Mapped, Mapping, SenderRef, SourceMarking};
use crate::secrecy::{Level, scan, strip, view};

/// A message the pipeline accepted, ready to be stored.
#[derive(Debug)]
pub struct Normalized {
    /// The canonical CloudEvent.
    pub event: Value,
    pub id: String,
    pub message_type: &'static MessageType,
    pub native_id: String,
    pub subject: Option<String>,
    /// The sender's reference to an earlier message.
    pub in_reply_to: Option<String>,
    /// Pointers (into the event) of what was removed as a state secret.
    pub stripped: Vec<String>,
    /// SHA-256 (hex) of the event without its `id`: the same message sent twice has the same
    /// hash, so a reused message id with different content can be told apart.
    pub content_sha256: String,
    /// Which native field each canonical value came from (what `explain` shows).
    pub provenance: Vec<crate::normalize::Provenance>,
}

/// Event attributes the message cannot do without: a marking that would remove one refuses
/// the message instead.
const REQUIRED_ATTRIBUTES: [&str; 5] = ["/nativeid", "/type", "/time", "/classification", "/sender"];

/// Runs the pipeline for `sender`, whose native messages are in `format`.
pub fn normalize(schemas: &Schemas, format: &Mapping, sender: &Sender, body: &[u8]) -> Result<Normalized, Problem> {
    normalize_document(schemas, format, sender, parse(body, &Shape::default())?)
}

/// Parses a body and checks its shape against `limits`.
pub fn parse(body: &[u8], limits: &Shape) -> Result<Value, Problem> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| Problem::malformed_json(&e))?;
    limits.check(&doc)?;
    Ok(doc)
}

/// [`normalize`] on a parsed body.
pub fn normalize_document(
    schemas: &Schemas,
    format: &Mapping,
    sender: &Sender,
    doc: Value,
) -> Result<Normalized, Problem> {
    let (classification, class_at) = format
        .classification(&doc)
        .map_err(|d| refusal(Code::MappingFailed, "the message's classification cannot be read", d))?;
    if classification.is_state_secret() {
        return Err(refusal(
            Code::StateSecret,
            format!(
                "the message is classified {classification}, a state secret: state secrets may not cross this gateway, and nothing of the message was stored"
            ),
            vec![Detail::new(
                class_at.map(|p| p.to_string()).unwrap_or_default(),
                format!("classified {classification}"),
            )],
        ));
    }

    let found = format.markings(&doc).map_err(|d| {
        refusal(
            Code::InvalidMarking,
            "a field marking is invalid; the message was not accepted, so no marked field can slip through",
            d,
        )
    })?;
    if let Some(m) = found.markings.iter().find(|m| m.source.is_root() && m.level.is_state_secret()) {
        return Err(refusal(
            Code::StateSecret,
            format!("the whole message is marked {}, a state secret: nothing of it was stored", m.level),
            vec![Detail::new(m.declared_at.as_str(), format!("marks the whole message {}", m.level))],
        ));
    }
    let secret_sources: Vec<&PointerBuf> =
        found.markings.iter().filter(|m| m.level.is_state_secret()).map(|m| &m.source).collect();

    let skip = |p: &jsonptr::Pointer| {
        secret_sources.iter().any(|s| p.starts_with(s)) || found.metadata.iter().any(|m| p.starts_with(m))
    };
    if let Some(hit) = scan::scan(&doc, &skip) {
        return Err(refusal(
            Code::StateSecretMarking,
            format!(
                "free text carries a state-secret marking ({}★): the message was refused and nothing of it was stored",
                hit.marking.level
            ),
            vec![Detail::new(
                hit.pointer.as_str(),
                format!("carries the marking {}★ at character {}", hit.marking.level, hit.marking.offset),
            )],
        ));
    }

    let mut mapped = format.map(&doc).map_err(|e| {
        let message = match e.code {
            Code::UnknownMessageType => {
                format!("the message type is not one of format {}", format.name)
            }
            _ => format!("the message does not fit format {}", format.name),
        };
        refusal(e.code, message, e.details)
    })?;

    let named = match (&mapped.envelope.sender, sender) {
        (SenderRef::Division(d), Sender::Agency(a)) if *d != a.division => Some(d.to_string()),
        (SenderRef::Division(d), Sender::Hub(_)) => Some(d.to_string()),
        (SenderRef::Agency(a), _) if Sender::Agency(*a) != *sender => Some(a.to_string()),
        (SenderRef::Hub(key), _) if Sender::Hub(key.clone()) != *sender => Some(format!("hub:{key}")),
        (SenderRef::Unknown(s), _) => Some(format!("`{s}`")),
        _ => None,
    };
    // A canonical event may also name its sender in its data; the gateway writes the
    // authenticated one there, and a different claim is refused, not overwritten.
    let claimed = mapped.data.pointer("/sender/id").and_then(Value::as_str).filter(|c| *c != sender.to_string());
    let named = named.or_else(|| claimed.map(str::to_string));
    if let Some(named) = named {
        return Err(Problem::new(
            Code::SenderMismatch,
            format!("the message names its sender as {named}, but the credentials are {sender}'s"),
        ));
    }

    let id = Uuid::now_v7().to_string();
    let mut data = std::mem::take(&mut mapped.data);
    let envelope = &mapped.envelope;
    if let Some(obj) = data.as_object_mut() {
        let sender_obj = obj.entry("sender").or_insert_with(|| json!({}));
        if let Some(s) = sender_obj.as_object_mut() {
            s.insert("id".into(), json!(sender.to_string()));
        }
    }
    let attributes = Attributes {
        id: &id,
        message_type: envelope.message_type,
        sender: sender.clone(),
        time: &envelope.sent_at,
        classification: envelope.classification,
        native_id: &envelope.native_id,
        in_reply_to: envelope.in_reply_to.as_deref(),
        dataschema: schemas.dataschema(envelope.message_type),
    };
    let mut event = event::assemble(&attributes, data);

    let stripped = remove_state_secrets(&mut event, &mapped, &secret_sources)?;
    let classified = classified_fields(&event, &mapped, &found.markings, envelope.classification);
    let subject = complete(&mut event, &stripped, &classified);

    let data = event.get("data").unwrap_or(&Value::Null);
    if let Err(mut details) = schemas.validate(envelope.message_type, data) {
        for d in &mut details {
            if stripped.contains(&d.pointer) {
                d.reason.push_str("; it is marked as a state secret and was removed, and the message cannot cross the gateway without it");
            }
        }
        return Err(refusal(
            Code::SchemaViolation,
            format!("the message does not satisfy the schema of {}", envelope.message_type.name),
            details,
        ));
    }

    let content_sha256 = content_hash(&event);
    Ok(Normalized {
        event,
        id,
        message_type: envelope.message_type,
        native_id: envelope.native_id.clone(),
        subject,
        in_reply_to: envelope.in_reply_to.clone(),
        stripped,
        content_sha256,
        provenance: mapped.provenance,
    })
}

/// Removes what was marked as a state secret, everywhere its provenance leads; the removed
/// pointers, sorted. A marked attribute the message cannot do without refuses the message.
fn remove_state_secrets(event: &mut Value, mapped: &Mapped, sources: &[&PointerBuf]) -> Result<Vec<String>, Problem> {
    let mut stripped: Vec<String> = Vec::new();
    for source in sources {
        for target in mapped.targets_of(source) {
            if REQUIRED_ATTRIBUTES.contains(&target.as_str()) {
                return Err(refusal(
                    Code::StateSecret,
                    format!(
                        "a field the message cannot do without ({target}) is marked as a state secret: nothing of the message was stored"
                    ),
                    vec![Detail::new(source.as_str(), "marked as a state secret")],
                ));
            }
            if strip::remove(event, &target) {
                stripped.push(target.to_string());
            }
        }
    }
    stripped.sort();
    stripped.dedup();
    Ok(stripped)
}

/// The data fields marked below the state secrets but above the message's base level (see
/// [`view::base_level`]), with their levels: they travel with the message, so that each
/// recipient receives only what its clearance allows.
fn classified_fields(
    event: &Value,
    mapped: &Mapped,
    markings: &[SourceMarking],
    classification: Level,
) -> BTreeMap<String, Level> {
    let lower: Vec<&SourceMarking> = markings.iter().filter(|m| !m.level.is_state_secret()).collect();
    let base = view::base_level(classification, lower.iter().map(|m| m.level));
    let mut classified: BTreeMap<String, Level> = BTreeMap::new();
    for m in lower.into_iter().filter(|m| m.level > base) {
        for target in mapped.targets_of(&m.source) {
            if target.as_str().starts_with("/data/") && target.resolve(event).is_ok_and(|v| !v.is_null()) {
                let level = classified.entry(target.to_string()).or_insert(m.level);
                *level = (*level).max(m.level);
            }
        }
    }
    classified
}

/// Completes the event once its data is final: `subject` (the case number), `redactions` and
/// `classifiedFields`. Returns the subject.
fn complete(event: &mut Value, stripped: &[String], classified: &BTreeMap<String, Level>) -> Option<String> {
    let subject = event.pointer("/data/case/number").and_then(Value::as_str).map(str::to_string);
    if let (Some(s), Some(obj)) = (&subject, event.as_object_mut()) {
        // After `type`, where CloudEvents lists it.
        let at = obj.keys().position(|k| k == "type").map_or(0, |i| i + 1);
        obj.shift_insert(at, "subject".into(), json!(s));
    }
    if let Some(data) = event.get_mut("data").and_then(Value::as_object_mut) {
        // A canonical event may arrive with redactions made upstream; they are kept.
        let mut redactions: Vec<Value> = data.get("redactions").and_then(Value::as_array).cloned().unwrap_or_default();
        redactions.extend(stripped.iter().map(|p| json!({"pointer": p, "reason": "state_secret"})));
        data.insert("redactions".into(), Value::Array(redactions));
        data.insert(
            "classifiedFields".into(),
            Value::Array(classified.iter().map(|(p, l)| json!({"pointer": p, "level": l.name()})).collect()),
        );
    }
    subject
}

fn refusal(code: Code, message: impl Into<String>, details: Vec<Detail>) -> Problem {
    Problem::new(code, message).with_details(details)
}

/// SHA-256 of the event with its `id` and `dataschema` left out (the gateway's public address
/// may change between a message and its resend).
pub fn content_hash(event: &Value) -> String {
    let mut hasher = Sha256::new();
    if let Value::Object(members) = event {
        for (k, v) in members.iter().filter(|(k, _)| !matches!(k.as_str(), "id" | "dataschema")) {
            hasher.update(k.as_bytes());
            hasher.update([0]);
            // Written into the hash as it is serialised: the same bytes as `v.to_string()`.
            serde_json::to_writer(&mut hasher, v).expect("a JSON value serialises, and hashing cannot fail");
            hasher.update([0]);
        }
    }
    hex::encode(hasher.finalize())
}

/// The stored text of an event (or of a recipient's copy). Written as `serde_json::to_string`
/// writes it, into a byte buffer: `Value::to_string` goes through `Display`, a formatter call
/// per token, and takes about twice as long for the same bytes.
pub fn event_text(event: &Value) -> String {
    // A `Value` always serialises: its keys are strings.
    serde_json::to_string(event).unwrap_or_default()
}

/// The SHA-256 (hex) of a request body, for audit records.
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}
