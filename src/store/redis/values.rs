//! Values as Redis returns them: hashes, stream entries, errors.

use std::collections::HashMap;

use redis::Value;

use crate::store::StoreError;

/// A hash as Redis returns it.
pub type Fields = HashMap<String, String>;

pub fn field(f: &Fields, name: &str) -> Option<String> {
    f.get(name).filter(|v| !v.is_empty()).cloned()
}

pub fn number(f: &Fields, name: &str) -> i64 {
    f.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

pub fn value_str(v: &Value) -> Option<String> {
    match v {
        Value::SimpleString(s) => Some(s.clone()),
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A stream entry's fields as a map.
pub fn stream_fields(map: &HashMap<String, Value>) -> Fields {
    map.iter().map(|(k, v)| (k.clone(), value_str(v).unwrap_or_default())).collect()
}

/// The feed position of a stream id (`seq-1`).
pub fn position(id: &str) -> i64 {
    id.split('-').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}
