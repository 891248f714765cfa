//! What one recipient may see of a message: fields classified above its clearance are removed
//! (for it only), and the public feed's copy is anonymised (see [`super::mask`]).
//!
//! A message's classification is the level of its most classified part. Where the sender
//! marked fields at that level, the rest of the message is 内部 (公开 for a 公开 message); where
//! it marked none, the whole message is at its classification. A recipient cleared below that
//! base level does not receive the message at all.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Level, mask, strip};

/// Where something was removed for a recipient, and why (never what).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Redaction {
    pub pointer: String,
    pub reason: &'static str,
}

/// A recipient's copy of a message.
#[derive(Clone, Debug)]
pub enum View {
    /// The event as this recipient receives it, and what was removed for it.
    Deliver { event: Value, removed: Vec<Redaction> },
    /// The recipient may not receive the message; why.
    Withhold(String),
}

/// The level of the parts of a message that carry no marking of their own.
pub fn base_level(classification: Level, marked: impl IntoIterator<Item = Level>) -> Level {
    if classification == Level::WorkSecret && marked.into_iter().any(|l| l == Level::WorkSecret) {
        Level::Internal
    } else {
        classification
    }
}

/// The copy of `event` for a recipient cleared to `clearance`; for the public feed, `public`
/// says how it is anonymised.
pub fn for_recipient(event: &Value, clearance: Level, public: Option<&mask::Masking>) -> View {
    let classification =
        event.get("classification").and_then(Value::as_str).and_then(Level::parse).unwrap_or(Level::Internal);
    let fields: Vec<(String, Level)> = event
        .pointer("/data/classifiedFields")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|f| {
                    Some((f.get("pointer")?.as_str()?.to_string(), Level::parse(f.get("level")?.as_str()?)?))
                })
                .collect()
        })
        .unwrap_or_default();
    let base = base_level(classification, fields.iter().map(|(_, l)| *l));
    if base > clearance {
        return View::Withhold(format!("the message is {base}, above the recipient's clearance {clearance}"));
    }
    let mut copy = event.clone();
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for (pointer, level) in &fields {
        if *level > clearance {
            if let Ok(p) = jsonptr::PointerBuf::parse(pointer.as_str())
                && strip::remove(&mut copy, &p)
            {
                removed.push(Redaction { pointer: pointer.clone(), reason: "above_clearance" });
            }
        } else {
            kept.push(json!({"pointer": pointer, "level": level.name()}));
        }
    }
    if let Some(masking) = public {
        removed.extend(
            mask::mask_personal_data(&mut copy, masking)
                .into_iter()
                .map(|pointer| Redaction { pointer, reason: "personal_data" }),
        );
    }
    let level = fields.iter().filter(|(_, l)| *l <= clearance).map(|(_, l)| *l).fold(base, Level::max);
    if let Some(obj) = copy.as_object_mut() {
        obj.insert("classification".into(), json!(level.name()));
    }
    if let Some(data) = copy.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("classifiedFields".into(), Value::Array(kept));
        let redactions = data.entry("redactions").or_insert_with(|| json!([]));
        if let Some(list) = redactions.as_array_mut() {
            list.extend(removed.iter().map(|r| json!({"pointer": r.pointer, "reason": r.reason})));
        }
    }
    View::Deliver { event: copy, removed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(classification: &str, fields: Value) -> Value {
        json!({"specversion": "1.0", "classification": classification,
               "data": {"content": "c", "case": {"number": "N"}, "redactions": [], "classifiedFields": fields}})
    }

    #[test]
    fn removes_fields_above_the_clearance_for_that_recipient_only() {
        let e = event("工作秘密", json!([{"pointer": "/data/content", "level": "工作秘密"}]));
        let View::Deliver { event: hub, removed } = for_recipient(&e, Level::Internal, None) else {
            panic!("withheld")
        };
        assert_eq!(removed, [Redaction { pointer: "/data/content".into(), reason: "above_clearance" }]);
        assert!(hub["data"].get("content").is_none());
        assert_eq!(hub["classification"], "内部", "the copy is at the level of what it holds");
        assert_eq!(hub["data"]["redactions"], json!([{"pointer": "/data/content", "reason": "above_clearance"}]));
        assert_eq!(e["data"]["content"], "c", "the original is untouched");

        let View::Deliver { event: agency, removed } = for_recipient(&e, Level::WorkSecret, None) else { panic!() };
        assert!(removed.is_empty());
        assert_eq!(agency["data"]["content"], "c");
        assert_eq!(agency["classification"], "工作秘密");
    }

    #[test]
    fn withholds_a_message_above_the_clearance_as_a_whole() {
        // 工作秘密 with no field marked: the whole message is a work secret.
        assert!(matches!(for_recipient(&event("工作秘密", json!([])), Level::Internal, None), View::Withhold(_)));
        // A 内部 message does not reach the public feed.
        assert!(matches!(
            for_recipient(&event("内部", json!([])), Level::Public, Some(&super::super::mask::Masking::default())),
            View::Withhold(_)
        ));
        assert!(matches!(
            for_recipient(&event("公开", json!([])), Level::Public, Some(&super::super::mask::Masking::default())),
            View::Deliver { .. }
        ));
    }

    #[test]
    fn base_levels() {
        assert_eq!(base_level(Level::WorkSecret, [Level::WorkSecret]), Level::Internal);
        assert_eq!(base_level(Level::WorkSecret, []), Level::WorkSecret);
        assert_eq!(base_level(Level::Internal, [Level::WorkSecret]), Level::Internal);
        assert_eq!(base_level(Level::Public, []), Level::Public);
    }
}
