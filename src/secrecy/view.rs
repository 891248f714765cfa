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
    /// The recipient receives the event exactly as it is: nothing is removed, and its level and
    /// lists of marked fields and redactions already read as the copy's would.
    AsIs,
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
    if public.is_none() && fields.iter().all(|(_, l)| *l <= clearance) && reads_as_its_copy(event, &fields, base) {
        return View::AsIs;
    }
    copy_for(event, &fields, base, clearance, public)
}

/// The recipient's copy, made: `event` with what is above `clearance` removed (and anonymised
/// for the public feed), its level and lists rewritten.
fn copy_for(
    event: &Value,
    fields: &[(String, Level)],
    base: Level,
    clearance: Level,
    public: Option<&mask::Masking>,
) -> View {
    let mut copy = event.clone();
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for (pointer, level) in fields {
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

/// Whether the copy [`for_recipient`] makes, when it removes nothing, is `event` itself: the
/// classification is already the copy's level, every marked field is listed as the copy lists
/// it (none dropped as unreadable), and the list of redactions is there.
fn reads_as_its_copy(event: &Value, fields: &[(String, Level)], base: Level) -> bool {
    let level = fields.iter().map(|(_, l)| *l).fold(base, Level::max);
    let Some(data) = event.get("data").and_then(Value::as_object) else { return false };
    let listed = data.get("classifiedFields").and_then(Value::as_array);
    event.get("classification").and_then(Value::as_str) == Some(level.name())
        && data.contains_key("redactions")
        && listed.is_some_and(|list| {
            list.len() == fields.len()
                && list.iter().zip(fields).all(|(entry, (pointer, level))| {
                    entry.as_object().is_some_and(|e| {
                        e.len() == 2
                            && e.get("pointer").and_then(Value::as_str) == Some(pointer.as_str())
                            && e.get("level").and_then(Value::as_str) == Some(level.name())
                    })
                })
        })
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

        // Cleared for all of it: the event itself, not a copy.
        assert!(matches!(for_recipient(&e, Level::WorkSecret, None), View::AsIs));
    }

    mod as_is {
        //! `View::AsIs` is a shortcut: whenever it is taken, the copy the recipient would
        //! otherwise get is the event, byte for byte; and it is taken whenever that copy would
        //! be equal to the event.

        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::super::*;

        fn level() -> impl Strategy<Value = Level> {
            prop::sample::select(vec![Level::Public, Level::Internal, Level::WorkSecret])
        }

        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                level().prop_map(|l| l.name().to_string()),
                Just("工作秘密★1年".to_string()),
                Just("not a level".to_string()),
            ]
        }

        /// A marked-field entry as senders' mappings write it, or slightly off.
        fn entry() -> impl Strategy<Value = Value> {
            (prop::sample::select(vec!["/data/content", "/data/case/number", "/data/x"]), name(), 0..4u8).prop_map(
                |(pointer, level, shape)| match shape {
                    0 | 1 => json!({"pointer": pointer, "level": level}),
                    2 => json!({"level": level, "pointer": pointer}),
                    _ => json!({"pointer": pointer, "level": level, "note": "extra"}),
                },
            )
        }

        fn event() -> impl Strategy<Value = Value> {
            (name(), prop::option::of(prop::collection::vec(entry(), 0..3)), any::<bool>()).prop_map(
                |(classification, fields, redactions)| {
                    let mut data = json!({"content": "c", "case": {"number": "N"}, "x": 1});
                    if let Some(f) = fields {
                        data["classifiedFields"] = Value::Array(f);
                    }
                    if redactions {
                        data["redactions"] = json!([]);
                    }
                    json!({"specversion": "1.0", "classification": classification, "data": data})
                },
            )
        }

        proptest! {
            #[test]
            fn taken_exactly_when_the_copy_is_the_event(event in event(), clearance in level()) {
                let classification = event["classification"].as_str().and_then(Level::parse).unwrap_or(Level::Internal);
                let fields: Vec<(String, Level)> = event["data"]["classifiedFields"]
                    .as_array()
                    .map(|l| l.iter().filter_map(|f| Some((f["pointer"].as_str()?.to_string(), Level::parse(f["level"].as_str()?)?))).collect())
                    .unwrap_or_default();
                let base = base_level(classification, fields.iter().map(|(_, l)| *l));
                prop_assume!(base <= clearance);
                let made = copy_for(&event, &fields, base, clearance, None);
                let View::Deliver { event: copy, removed } = made else { panic!("withheld below the base level") };
                match for_recipient(&event, clearance, None) {
                    View::AsIs => {
                        prop_assert!(removed.is_empty());
                        prop_assert_eq!(&copy, &event);
                        let (a, b) = (copy.to_string(), event.to_string());
                        prop_assert!(a == b || copy == event, "same bytes, or equal with members reordered");
                    }
                    View::Deliver { event: delivered, .. } => {
                        prop_assert_eq!(&delivered, &copy);
                        prop_assert!(copy != event || !removed.is_empty(), "the shortcut was missed: {}", event);
                    }
                    View::Withhold(why) => prop_assert!(false, "withheld: {}", why),
                }
            }
        }
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
