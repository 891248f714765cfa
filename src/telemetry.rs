//! Logs (tracing, text or JSON) and metrics (Prometheus text format at `GET /metrics`).
//!
//! Logs carry ids, agencies, codes and pointers — never message content, tokens or secrets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::config::settings::{Log, LogFormat};

/// Installs the global tracing subscriber. `RUST_LOG` overrides the configured level.
pub fn init_logging(log: &Log) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    /// accepted, duplicate, refused
    pub outcome: &'static str,
    /// The refusal code, or `ok`.
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    /// 401 or 403.
    pub status: u16,
    /// The route pattern, e.g. `/v1/feeds/{feed}/events`.
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    /// The rule's name.
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// applied, refused (reloads); delivered, retry, dead, gone (webhook attempts)
    pub outcome: &'static str,
}

/// Metrics of the store's commits.
#[derive(Clone)]
pub struct StoreMetrics {
    /// Operations per committed transaction (one disk sync each).
    pub batch_size: Histogram,
    pub commit_seconds: Histogram,
    pub commit_failures: Counter,
}

/// Every metric of one gateway process.
pub struct Metrics {
    registry: Registry,
    pub messages: Family<MessageLabels, Counter>,
    /// Messages no rule routed (kept in the operators' feed).
    pub unrouted: Counter,
    reloads: Family<OutcomeLabel, Counter>,
    webhooks: Family<OutcomeLabel, Counter>,
    denials: Family<DenialLabels, Counter>,
    rule_errors: Family<RuleLabel, Counter>,
    pub ingest_seconds: Histogram,
    pub store: StoreMetrics,
    /// HTTP requests being served, and connections open, as `/metrics` is rendered.
    pub http: HttpGauges,
}

/// What the listener holds right now.
#[derive(Clone, Debug, Default)]
pub struct HttpGauges {
    pub requests_in_flight: Gauge,
    pub connections_open: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("xietong");
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register("messages", "Messages posted, by outcome and refusal code", messages.clone());
        let unrouted = Counter::default();
        registry.register("unrouted", "Messages no rule routed, kept in the operators' feed", unrouted.clone());
        let reloads = Family::<OutcomeLabel, Counter>::default();
        registry.register("config_reloads", "Configuration reloads, applied or refused", reloads.clone());
        let webhooks = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook attempts by outcome: delivered, retry, dead, gone",
            webhooks.clone(),
        );
        let denials = Family::<DenialLabels, Counter>::default();
        registry.register(
            "denials",
            "Requests refused for want of credentials (401) or of the right to act (403), by endpoint",
            denials.clone(),
        );
        let rule_errors = Family::<RuleLabel, Counter>::default();
        registry.register(
            "rule_errors",
            "Messages on which a routing rule's condition failed (a missing member, a type error): the rule did not apply",
            rule_errors.clone(),
        );
        let ingest_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "ingest_seconds",
            "Time from a complete request body to the response",
            ingest_seconds.clone(),
        );
        let store = StoreMetrics {
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_failures: Counter::default(),
        };
        registry.register(
            "store_batch_size",
            "Operations per store transaction (one disk sync each)",
            store.batch_size.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Duration of a store transaction, sync included",
            store.commit_seconds.clone(),
        );
        registry.register(
            "store_commit_failures",
            "Store transactions that failed to commit",
            store.commit_failures.clone(),
        );
        let http = HttpGauges::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served until their response starts (this one included): a long-poll while it waits, an event stream until it opens",
            http.requests_in_flight.clone(),
        );
        registry.register("http_connections_open", "HTTP connections open", http.connections_open.clone());
        Metrics { registry, messages, unrouted, reloads, webhooks, denials, rule_errors, ingest_seconds, store, http }
    }

    pub fn count_webhook(&self, outcome: &'static str) {
        self.webhooks.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn count_denial(&self, status: u16, endpoint: &str) {
        self.denials.get_or_create(&DenialLabels { status, endpoint: endpoint.to_string() }).inc();
    }

    pub fn count_rule_error(&self, rule: &str) {
        self.rule_errors.get_or_create(&RuleLabel { rule: rule.to_string() }).inc();
    }

    pub fn count_reload(&self, outcome: &'static str) {
        self.reloads.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn count(&self, outcome: &'static str, code: &'static str) {
        self.messages.get_or_create(&MessageLabels { outcome, code }).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
