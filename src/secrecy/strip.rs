//! Removal of fields from a JSON document such that every pointer keeps its meaning: an
//! object member is deleted, an array item is replaced by `null` (so later items keep their
//! index and a list of removed pointers stays exact).

use jsonptr::Pointer;
use serde_json::Value;

/// Removes the node at `pointer`. Returns whether something was there to remove. The root
/// cannot be removed.
pub fn remove(doc: &mut Value, pointer: &Pointer) -> bool {
    let Some((parent, last)) = pointer.split_back() else {
        return false;
    };
    let Ok(parent) = parent.resolve_mut(doc) else {
        return false;
    };
    match parent {
        Value::Object(map) => map.remove(last.decoded().as_ref()).is_some(),
        Value::Array(items) => match last.to_index().ok().and_then(|i| i.for_len(items.len()).ok()) {
            Some(i) if !items[i].is_null() => {
                items[i] = Value::Null;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use jsonptr::PointerBuf;
    use serde_json::json;

    use super::*;

    fn ptr(s: &str) -> PointerBuf {
        PointerBuf::parse(s).unwrap()
    }

    #[test]
    fn removes_members_and_nulls_items() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2, 3]});
        assert!(remove(&mut doc, &ptr("/a/b")));
        assert!(remove(&mut doc, &ptr("/l/1")));
        assert_eq!(doc, json!({"a": {"c": 2}, "l": [1, null, 3]}));
        // The pointer of the next item still addresses the same item.
        assert_eq!(doc.pointer("/l/2"), Some(&json!(3)));
    }

    #[test]
    fn reports_nothing_to_remove() {
        let mut doc = json!({"a": {"b": 1}, "l": [1]});
        assert!(!remove(&mut doc, &ptr("/a/x")));
        assert!(!remove(&mut doc, &ptr("/l/5")));
        assert!(!remove(&mut doc, &ptr("/l/-")));
        assert!(!remove(&mut doc, &ptr("/a/b/c")));
        assert!(!remove(&mut doc, &ptr("")));
        assert_eq!(doc, json!({"a": {"b": 1}, "l": [1]}));
    }
}
