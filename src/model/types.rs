//! Canonical message types. The catalogue is not compiled in: it is the schema registry
//! (`schemas/`, see [`super::schema`]), loaded at start and on reload. Each type is named after
//! its schema file (`clue.transfer.json` is `cn.xietong.clue.transfer`), and the schema carries
//! its version (`$id` ending in `:vN`) and the section of the opinion it comes from
//! (`x-section`).
//!
//! A few types have a meaning the gateway itself acts on; their names are below.

use std::sync::Mutex;

/// A canonical message type.
#[derive(Debug, PartialEq, Eq)]
pub struct MessageType {
    /// The CloudEvents `type`, e.g. `cn.xietong.clue.transfer`.
    pub name: &'static str,
    /// The schema file stem in `schemas/`, e.g. `clue.transfer`.
    pub schema: &'static str,
    /// The section of the opinion the flow comes from.
    pub section: &'static str,
    /// The schema's version: the `N` of its `$id` (`urn:xietong:schema:clue.transfer:vN`).
    pub version: u32,
}

/// Every type name is this prefix and the schema file's stem.
pub const PREFIX: &str = "cn.xietong.";

impl MessageType {
    /// The `$id` of this type's schema, which names its version.
    pub fn dataschema(&self) -> String {
        format!("urn:xietong:schema:{}:v{}", self.schema, self.version)
    }

    /// The type a registry declares: the same definition always gives the same reference, so
    /// that a reload that brings the same types reuses them.
    ///
    /// Types are passed as `&'static MessageType` all through the gateway (routing tables,
    /// mappings, the thread worker). A definition is leaked once, the first time it is loaded;
    /// a reload with a changed definition adds one. The memory stays bounded by the number of
    /// distinct definitions ever loaded, a few dozen in a gateway's life.
    pub fn intern(schema: &str, section: &str, version: u32) -> &'static MessageType {
        static INTERNED: Mutex<Vec<&'static MessageType>> = Mutex::new(Vec::new());
        let mut interned = INTERNED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let name = format!("{PREFIX}{schema}");
        if let Some(t) = interned.iter().find(|t| t.name == name && t.section == section && t.version == version) {
            return t;
        }
        let t: &'static MessageType = Box::leak(Box::new(MessageType {
            name: Box::leak(name.into_boxed_str()),
            schema: Box::leak(schema.to_string().into_boxed_str()),
            section: Box::leak(section.to_string().into_boxed_str()),
            version,
        }));
        interned.push(t);
        t
    }
}

/// The gateway's own overdue notice (section 十七); agencies never send it.
pub const OVERDUE: &str = "cn.xietong.thread.overdue";

/// The gateway's notices to its operators (a rule that started failing); agencies never send it.
pub const GATEWAY_NOTICE: &str = "cn.xietong.gateway.notice";

/// Whether only the gateway sends messages of this type.
pub fn gateway_only(name: &str) -> bool {
    name == OVERDUE || name == GATEWAY_NOTICE
}

/// 逐级请示: a request passed on to the superior; a reply to it answers whoever first asked.
pub const ESCALATION: &str = "cn.xietong.opinion.escalation";

/// 奖优惩劣: a commendation or criticism, to which the gateway adds the evaluated agency's figures.
pub const EVALUATION: &str = "cn.xietong.evaluation.notice";

/// The types whose meaning the gateway acts on: every registry must have them.
pub const REQUIRED: [&str; 4] = [OVERDUE, GATEWAY_NOTICE, ESCALATION, EVALUATION];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_definition_is_interned_once() {
        let a = MessageType::intern("test.interned", "—", 1);
        let b = MessageType::intern("test.interned", "—", 1);
        assert!(std::ptr::eq(a, b));
        let c = MessageType::intern("test.interned", "—", 2);
        assert!(!std::ptr::eq(a, c));
        assert_eq!(c.name, "cn.xietong.test.interned");
        assert_eq!(c.dataschema(), "urn:xietong:schema:test.interned:v2");
    }
}
