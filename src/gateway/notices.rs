//! What the gateway does when a routing rule's condition fails on a message: the failure is
//! counted (`xietong_rule_errors_total{rule}`) and logged at warning level with the message's id
//! and why (never the message's content); its trace keeps it (the store has it with the
//! message); and the first time a rule fails under the configuration in force, the operators'
//! feed gets a notice (`cn.xietong.gateway.notice`).

use sha2::{Digest, Sha256};

use super::state::{Gateway, Runtime};
use crate::pipeline;

impl Gateway {
    /// Handles the rule failures (`rule: why`) of accepted message `message_id`.
    pub async fn rule_failures(&self, rt: &Runtime, message_id: &str, failures: &[String]) {
        for failure in failures {
            let (rule, why) = failure.split_once(": ").unwrap_or((failure.as_str(), ""));
            self.metrics.count_rule_error(rule);
            tracing::warn!(id = %message_id, rule, why, "a routing rule's condition failed; the rule did not apply");
            let first = rt.told.lock().map(|mut told| told.insert(rule.to_string())).unwrap_or(false);
            if !first {
                continue;
            }
            // The same rule as written gets one notice, however many instances see it fail.
            let written = rt.config.router.rules().iter().find(|r| r.name == rule);
            let source = written.and_then(|r| r.when.as_ref()).map_or("", |c| c.source.as_str());
            let generation = hex::encode(&Sha256::digest(format!("{rule}\n{source}"))[..6]);
            let now = self.clock.now_ms();
            match pipeline::notice::rule_failed(&rt.config, rule, why, message_id, &generation, now) {
                Ok((notice, deliveries)) => {
                    let message = pipeline::stored(&notice, &deliveries, "gateway", notice.content_sha256.clone(), now);
                    if let Err(e) = self.store.accept(message).await {
                        tracing::warn!(error = %e, rule, "could not tell the operators of a failing rule");
                    }
                }
                Err(details) => tracing::error!(?details, "a rule-failure notice does not fit its schema: a bug"),
            }
        }
    }
}
