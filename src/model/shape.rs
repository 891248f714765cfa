//! Limits on the shape of a posted JSON document: nesting depth, string length and array
//! length, so that no message can make the pipeline work without bound (docs/security.md).
//! The body size is limited before parsing (`limits.max_body_bytes`).

use jsonptr::{PointerBuf, Token};
use serde_json::Value;

use super::{Code, Detail, Problem};

/// The limits, from `limits:` in xietong.yaml.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Deepest nesting of objects and arrays (the parser stops at 128 in any case).
    pub max_depth: usize,
    /// Longest string, in characters (keys too).
    pub max_string_chars: usize,
    /// Most items in one array, or members in one object.
    pub max_items: usize,
}

impl Default for Shape {
    fn default() -> Self {
        Shape { max_depth: 32, max_string_chars: 64 * 1024, max_items: 10_000 }
    }
}

impl Shape {
    /// The first place where `doc` exceeds a limit, as a 422 `limit_exceeded`.
    pub fn check(&self, doc: &Value) -> Result<(), Problem> {
        let mut path = Vec::new();
        match self.walk(doc, 1, &mut path) {
            Ok(()) => Ok(()),
            Err(reason) => {
                let pointer = PointerBuf::from_tokens(path.iter().map(|step| match step {
                    Step::Key(k) => Token::new(*k),
                    Step::Index(i) => Token::from(*i),
                }))
                .to_string();
                Err(Problem::new(Code::LimitExceeded, "the message exceeds a limit on its shape")
                    .with_details(vec![Detail::new(pointer, reason)]))
            }
        }
    }

    /// Walks `v`, keeping in `path` where it is (borrowed from the document: a walk that
    /// finds nothing allocates nothing but the path's own room).
    fn walk<'v>(&self, v: &'v Value, depth: usize, path: &mut Vec<Step<'v>>) -> Result<(), String> {
        // A string has at least as many bytes as characters: most need no count.
        let long = |s: &str| s.len() > self.max_string_chars && s.chars().count() > self.max_string_chars;
        match v {
            Value::String(s) if long(s) => Err(format!("a string longer than {} characters", self.max_string_chars)),
            Value::Array(_) | Value::Object(_) if depth > self.max_depth => {
                Err(format!("nested deeper than {} levels", self.max_depth))
            }
            Value::Array(items) => {
                if items.len() > self.max_items {
                    return Err(format!("an array of more than {} items", self.max_items));
                }
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    self.walk(item, depth + 1, path)?;
                    path.pop();
                }
                Ok(())
            }
            Value::Object(members) => {
                if members.len() > self.max_items {
                    return Err(format!("an object of more than {} members", self.max_items));
                }
                for (key, item) in members {
                    path.push(Step::Key(key));
                    if long(key) {
                        return Err(format!("a member name longer than {} characters", self.max_string_chars));
                    }
                    self.walk(item, depth + 1, path)?;
                    path.pop();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A step of the walk's path: a member's key or an item's index.
enum Step<'v> {
    Key(&'v str),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(shape: Shape, doc: Value) -> (String, String) {
        let p = shape.check(&doc).unwrap_err();
        assert_eq!(p.code, Code::LimitExceeded);
        (p.details[0].pointer.clone(), p.details[0].reason.clone())
    }

    #[test]
    fn each_limit_names_where() {
        let small = Shape { max_depth: 3, max_string_chars: 4, max_items: 2 };
        assert!(small.check(&json!({"a": [{"b": "四个字符"}]})).is_ok());
        assert_eq!(refused(small, json!({"a": {"b": "五个字符啊"}})).0, "/a/b");
        assert_eq!(refused(small, json!({"a": [1, 2, 3]})), ("/a".into(), "an array of more than 2 items".into()));
        assert_eq!(refused(small, json!({"a": [[[1]]]})).0, "/a/0/0");
        assert_eq!(refused(small, json!({"a/b": {"c": 1, "d": 2, "e": 3}})).0, "/a~1b");
        assert_eq!(refused(small, json!({"长长长长长": 1})).0, "/长长长长长");
    }
}
