//! The load harness of the xietong gateway, behind `xietong-load` (docs/performance.md). It is
//! a crate of its own beside the gateway and knows it only by its HTTP API: realistic native messages
//! ([`messages`]), a driver at a chosen concurrency or rate ([`drive`]), the ceiling server
//! measured beside the gateway ([`ceiling`]), the delivery side (a webhook [`receiver`], SSE
//! readers in [`sse`], both matched with what was sent in [`delivery`]), and the reports
//! ([`report`]).

pub mod ceiling;
pub mod delivery;
pub mod drive;
pub mod messages;
pub mod receiver;
pub mod report;
pub mod sse;
