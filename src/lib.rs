//! xietong (协同, "working together"): the data-exchange gateway between China's IP offices and
//! procuratorates (opinion of April 2022). Agency systems post native JSON; xietong normalises
//! it into one CloudEvents schema, strips what must not cross, stores it durably and (in later
//! stages) routes and delivers it.
//!
//! The data flow is the module tree: [`ingest`] (HTTP) → [`pipeline`] ([`normalize`] →
//! [`secrecy`] → [`model::schema`]) → [`store`].

pub mod admin;
pub mod audit;
pub mod clock;
pub mod config;
pub mod connections;
pub mod deliver;
pub mod explain;
pub mod fuzzing;
pub mod ingest;
pub mod load;
pub mod model;
pub mod normalize;
pub mod pipeline;
pub mod route;
pub mod secrecy;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod threads;
pub mod tls;
pub mod token;
