//! The integration suite, one binary (one link, shared helpers in [`common`]): end to end over
//! HTTP against in-process gateways and the real binary, on real SQLite files and the real
//! Redis server. Each module is a suite; `.config/nextest.toml` runs the suites that start
//! gateways again on Redis, minus their `embedded` modules (tests that open the embedded
//! store's file).

mod common;

mod access;
mod admin;
mod architecture;
mod audit;
mod cli;
mod console;
mod contract;
mod crash;
mod durability;
mod examples;
mod feeds;
mod flows;
mod fuzz_bodies;
mod fuzz_regressions;
mod hardening;
mod ingest;
mod load;
mod logs;
mod mechanisms;
mod message_types;
mod onboarding;
mod owners;
mod routing;
mod rule_changes;
mod rule_checks;
mod scale_out;
mod secrecy_outputs;
mod shutdown;
mod store_contract;
mod subscriptions;
mod threads;
mod tls;
mod webhooks;
