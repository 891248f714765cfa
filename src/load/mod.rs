//! The load harness behind `xietong-load` (docs/performance.md): realistic native messages
//! ([`messages`]), a driver at a chosen concurrency or rate ([`drive`]), the ceiling server
//! measured beside the gateway ([`ceiling`]), and the reports ([`report`]).

pub mod ceiling;
pub mod drive;
pub mod messages;
pub mod report;
