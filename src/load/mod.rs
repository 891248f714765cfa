//! The load harness behind `xietong-load` (docs/performance.md): realistic native messages
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
