//! The gateway as a running whole, below the HTTP layer and above the domain modules: its shared
//! state ([`Gateway`]: the configuration in force, the store, metrics, clock and shutdown
//! signal), configuration reloads, the per-agency rate limits derived from the configuration, and
//! the background workers it starts.

pub mod limits;
mod notices;
mod reload;
mod rules;
mod state;
mod workers;

pub use reload::{PEER_RELOAD, ReloadError, Reloaded};
pub use rules::{Applied, Finding, RulesError, current_rules, findings, version};
pub use state::{CertificatesSeen, Gateway, OpenError, Overrides, Runtime};
