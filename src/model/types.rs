//! The catalogue of canonical message types: one per flow of the opinion (see the brief's
//! flow table). Each type has a JSON Schema in `schemas/` named after it.

/// A canonical message type.
#[derive(Debug, PartialEq, Eq)]
pub struct MessageType {
    /// The CloudEvents `type`, e.g. `cn.xietong.clue.transfer`.
    pub name: &'static str,
    /// The schema file stem in `schemas/`, e.g. `clue.transfer`.
    pub schema: &'static str,
    /// The section of the opinion the flow comes from.
    pub section: &'static str,
}

impl MessageType {
    /// The CloudEvents `dataschema` of this type: the `$id` of its schema.
    pub fn dataschema(&self) -> String {
        format!("urn:xietong:schema:{}:v1", self.schema)
    }
}

macro_rules! types {
    ($($schema:literal, $section:literal;)*) => {
        pub const ALL: &[MessageType] = &[
            $(MessageType { name: concat!("cn.xietong.", $schema), schema: $schema, section: $section },)*
        ];
    };
}

types! {
    "meeting.notice", "二";
    "meeting.reply", "二";
    "related_case.notice", "三";
    "bulletin", "四";
    "expert.request", "六";
    "expert.recommendation", "六";
    "consultation.request", "七";
    "consultation.reply", "七";
    "opinion.request", "七";
    "opinion.escalation", "七";
    "opinion.reply", "七";
    "clue.transfer", "八";
    "clue.decision", "八";
    "supervision.filing_suggestion", "八";
    "supervision.judgment_application", "八";
    "supervision.feedback", "八";
    "non_prosecution.transfer", "八";
    "non_prosecution.result", "八";
    "major_case.supervision", "九";
    "hub.notice", "十";
    "cooperation.notice", "十一–十四";
    "typical_case", "十五";
    "evaluation.notice", "十七";
    "thread.overdue", "十七";
    "gateway.notice", "—";
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

/// The type named `name` (a full CloudEvents type), if there is one.
pub fn lookup(name: &str) -> Option<&'static MessageType> {
    ALL.iter().find(|t| t.name == name)
}
