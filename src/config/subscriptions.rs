//! `subscriptions.yaml`: standing subscriptions, each checked (docs/delivery.md).

use std::collections::BTreeSet;
use std::path::Path;

use super::error::ConfigError;
use super::files::{read_yaml, reference};
use crate::deliver::guard::Guard;
use crate::deliver::subscription::{self, Start, Stored, SubscriptionSpec};
use crate::route::Router;
use crate::store::SubscriptionRow;

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionsFile {
    #[serde(default)]
    subscriptions: Vec<SubscriptionSpec>,
}

/// The subscriptions of subscriptions.yaml (optional), each checked. They start at the head of
/// their feed when first created.
pub fn load(path: &Path, router: &Router, guard: &Guard, errors: &mut Vec<ConfigError>) -> Vec<SubscriptionRow> {
    let Some(file) = read_yaml::<SubscriptionsFile>(path, true, errors) else { return Vec::new() };
    let mut rows = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, mut spec) in file.subscriptions.into_iter().enumerate() {
        let name = spec.id.clone().unwrap_or_else(|| format!("#{}", i + 1));
        let mut problems = Vec::new();
        // Secrets may live outside the file: `env:NAME` or `file:PATH` (relative to config/).
        for (n, secret) in spec.webhook.iter_mut().flat_map(|w| w.secrets.iter_mut()).enumerate() {
            let resolved = match reference(secret, path.parent().unwrap_or(Path::new("."))) {
                Some(r) => r.map_err(|e| format!("webhook.secrets[{n}]: {e}")),
                None => continue,
            };
            match resolved {
                Ok(value) => *secret = value,
                Err(e) => problems.push(e),
            }
        }
        problems.extend(subscription::validate(&spec, router, guard));
        let spec_start = spec.start();
        let owner = match spec.owner.as_deref().map(|o| subscription::validate_owner(o, router)) {
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                problems.push(e);
                None
            }
            None => {
                problems.push("owner: the recipient whose feed it reads".into());
                None
            }
        };
        if spec.id.is_none() {
            problems.push("id: a configured subscription needs an id".into());
        }
        if spec.webhook.as_ref().is_some_and(|w| w.secrets.is_empty()) {
            problems.push(
                "webhook.secrets: a configured webhook needs its secret (whsec_…), shared with the endpoint".into(),
            );
        }
        if !ids.insert(name.clone()) {
            problems.push("id: defined twice".into());
        }
        for p in &problems {
            errors.push(ConfigError::new(path, format!("subscription {name}: {p}")));
        }
        if let (true, Some(owner), Some(id)) = (problems.is_empty(), owner, spec.id) {
            let stored = Stored { filter: spec.filter, webhook: spec.webhook };
            rows.push(SubscriptionRow {
                id,
                owner: owner.to_string(),
                spec: stored.to_json(),
                // -1: the head of the feed when the subscription is first stored.
                cursor: match spec_start {
                    Ok(Start::Oldest) => 0,
                    Ok(Start::After(c)) => c,
                    _ => -1,
                },
                disabled: None,
                source: "config".into(),
                created_at: String::new(),
            });
        }
    }
    rows
}
