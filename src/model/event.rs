//! The canonical message: a CloudEvents 1.0 event in structured JSON mode, with xietong's
//! extension attributes.

use serde_json::{Map, Value, json};

use super::{MessageType, Sender};
use crate::secrecy::Level;

/// What a posted body is: a message in the sender's native format, or a canonical CloudEvent
/// (`application/cloudevents+json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Native,
    CloudEvent,
}

/// The attributes of a canonical event (the `data` is passed separately).
pub struct Attributes<'a> {
    /// The gateway's id for the message (a UUIDv7): unique, and the same on every delivery.
    pub id: &'a str,
    pub message_type: &'static MessageType,
    /// The authenticated sender; also the `source` (`urn:xietong:agency:KIND:DIVISION`, or
    /// `urn:xietong:hub:REGION` for a hub).
    pub sender: Sender,
    /// When the sender sent it (RFC 3339, `+08:00`).
    pub time: &'a str,
    pub classification: Level,
    /// The sender's own id for the message.
    pub native_id: &'a str,
    /// The sender's id of the message this one answers or continues.
    pub in_reply_to: Option<&'a str>,
    /// Where the type's schema is (`Schemas::dataschema`).
    pub dataschema: String,
}

/// Assembles the event (its `subject`, the case number, is added once the data is final).
/// Extension attributes: `sender`, `classification`, `nativeid`,
/// `inreplyto` (lower-case alphanumerics, as CloudEvents requires).
pub fn assemble(a: &Attributes<'_>, data: Value) -> Value {
    let mut event = Map::new();
    event.insert("specversion".into(), json!("1.0"));
    event.insert("id".into(), json!(a.id));
    event.insert("source".into(), json!(a.sender.source_uri()));
    event.insert("type".into(), json!(a.message_type.name));
    event.insert("time".into(), json!(a.time));
    event.insert("datacontenttype".into(), json!("application/json"));
    event.insert("dataschema".into(), json!(a.dataschema));
    event.insert("sender".into(), json!(a.sender.to_string()));
    event.insert("classification".into(), json!(a.classification.name()));
    event.insert("nativeid".into(), json!(a.native_id));
    if let Some(r) = a.in_reply_to {
        event.insert("inreplyto".into(), json!(r));
    }
    event.insert("data".into(), data);
    Value::Object(event)
}
