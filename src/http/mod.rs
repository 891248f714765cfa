//! Everything that speaks HTTP: the server's start-up and shutdown ([`server`]), the route table
//! ([`routes`]), what every request passes through ([`middleware`], [`connections`]), who is
//! calling ([`auth`]), what a request carries ([`request`]), the one mapping of refusals to responses
//! ([`error`]), and one file per resource: [`messages`], [`feeds`] (pages and streams),
//! [`subscriptions`], [`threads`] (threads and statistics), [`agencies`] (liaisons), [`admin`],
//! [`health`] (health, readiness, metrics).
//!
//! Handlers read the [`crate::gateway::Gateway`] and call the domain modules; nothing below
//! this module knows of actix or HTTP.

pub mod admin;
pub mod agencies;
pub mod audit;
pub mod auth;
pub mod connections;
pub mod console;
pub mod contract;
pub mod delivery;
pub mod directory;
pub mod error;
pub mod feeds;
pub mod health;
pub mod inspect;
pub mod messages;
pub mod middleware;
pub mod overview;
pub mod request;
pub mod routes;
pub mod rules;
pub mod server;
pub mod subscriptions;
pub mod threads;

pub use server::{Running, start};
