//! The messages the gateway sends itself: overdue notices (the thread worker) and notices to
//! the operators (a routing rule that started failing). They are checked against their type's
//! schema like any message, and each recipient gets its copy as routing would give it.

use serde_json::{Value, json};

use super::intake::Normalized;
use super::recipients::{self, Delivery};
use crate::clock::format_ms;
use crate::config::Config;
use crate::model::{Detail, MessageType, types};
use crate::route::{Recipient, Role, Routed};

/// What the gateway says, before it is an event.
pub struct Notice<'a> {
    pub message_type: &'static MessageType,
    /// Unique per notice: a repeat (after a crash, from another instance) is a duplicate.
    pub native_id: String,
    pub in_reply_to: Option<String>,
    pub subject: Option<String>,
    /// The data without `sender`, `redactions` and `classifiedFields`.
    pub data: Value,
    pub recipients: &'a [Routed],
}

/// The notice as a canonical event from `gateway`, with each recipient's copy; the schema's
/// complaints when it does not fit (a bug).
pub fn make(config: &Config, notice: Notice<'_>, now_ms: i64) -> Result<(Normalized, Vec<Delivery>), Vec<Detail>> {
    let mut data = notice.data;
    if let Some(obj) = data.as_object_mut() {
        obj.insert("sender".into(), json!({"id": "gateway", "name": "xietong"}));
        obj.insert("redactions".into(), json!([]));
        obj.insert("classifiedFields".into(), json!([]));
    }
    config.schemas.validate(notice.message_type, &data)?;
    let id = uuid::Uuid::now_v7().to_string();
    let mut event = json!({
        "specversion": "1.0", "id": id, "source": "urn:xietong:gateway", "type": notice.message_type.name,
        "time": format_ms(now_ms), "datacontenttype": "application/json",
        "dataschema": config.schemas.dataschema(notice.message_type),
        "sender": "gateway", "classification": "内部", "nativeid": notice.native_id,
    });
    if let Some(obj) = event.as_object_mut() {
        if let Some(link) = &notice.in_reply_to {
            obj.insert("inreplyto".into(), json!(link));
        }
        if let Some(case) = &notice.subject {
            obj.insert("subject".into(), json!(case));
        }
        obj.insert("data".into(), data);
    }
    let (deliveries, _) = recipients::copies(&config.router, &event, notice.recipients);
    let normalized = Normalized {
        content_sha256: super::intake::content_hash(&event),
        event,
        id,
        message_type: notice.message_type,
        native_id: notice.native_id,
        subject: notice.subject,
        in_reply_to: notice.in_reply_to,
        stripped: Vec::new(),
        provenance: Vec::new(),
    };
    Ok((normalized, deliveries))
}

/// The operators' notice that rule `rule` failed on message `message` (`why` names no value of
/// it): the rule did not apply. One per rule and configuration.
pub fn rule_failed(
    config: &Config,
    rule: &str,
    why: &str,
    message: &str,
    generation: &str,
    now_ms: i64,
) -> Result<(Normalized, Vec<Delivery>), Vec<Detail>> {
    let Some(message_type) = config.schemas.lookup(types::GATEWAY_NOTICE) else { return Err(Vec::new()) };
    let to = [Routed {
        id: Recipient::Feed(config.router.operators_feed.clone()),
        role: Role::Primary,
        rules: Vec::new(),
        reasons: vec!["primary: the operators look after the routing rules".into()],
        fallback: None,
    }];
    let notice = Notice {
        message_type,
        native_id: format!("rule-error-{generation}-{rule}"),
        in_reply_to: None,
        subject: None,
        data: json!({
            "notice": {"kind": "rule_error", "rule": rule, "message": message, "reason": why},
            "content": format!(
                "路由规则 `{rule}` 的条件在消息 {message} 上求值失败（{why}），该规则未生效。Rule `{rule}` failed on message {message} ({why}) and did not apply; it is counted in xietong_rule_errors_total. Fix the rule, or its test in rules.test.yaml."
            ),
        }),
        recipients: &to,
    };
    make(config, notice, now_ms)
}
