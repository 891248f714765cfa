//! xietong (协同, "working together"): the data-exchange gateway between China's IP offices and
//! procuratorates (opinion of April 2022). Agency systems post native JSON; xietong normalises
//! it into one CloudEvents schema, strips what must not cross, routes it, stores it durably and
//! delivers it to every recipient.
//!
//! The layers, each importing only those below it (docs/architecture.md):
//!
//! - [`http`]: everything that speaks HTTP (routes, handlers, authentication, the error mapping);
//! - [`gateway`]: the running state (configuration in force, store, clock), reloads, workers;
//! - the domain: [`pipeline`] ([`normalize`] → [`secrecy`] → [`route`]), [`store`], [`deliver`],
//!   [`threads`], [`audit`], [`config`], and below them [`model`], [`clock`], [`tls`],
//!   [`telemetry`], [`token`].

pub mod audit;
pub mod clock;
pub mod config;
pub mod deliver;
pub mod fuzzing;
pub mod gateway;
pub mod http;
pub mod model;
pub mod normalize;
pub mod pipeline;
pub mod route;
pub mod secrecy;
pub mod store;
pub mod telemetry;
pub mod threads;
pub mod tls;
pub mod token;
