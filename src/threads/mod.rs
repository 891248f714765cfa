//! Replies, deadlines and escalation (及时答复, 及时反馈, 逐级请示), and the figures behind
//! 奖优惩劣 (section 十七).
//!
//! A *thread* is the conversation on a case: the message that opened it and every message
//! that refers to it (`inreplyto`, from glxxid / inReplyTo) or reports progress on its case. An
//! *obligation* is one request owed one agency's reply by a deadline ([`policy`]). A worker
//! ([`worker`]) applies every committed message to the threads in commit order, escalates
//! requests answered 无法认定, and sends overdue notices when deadlines pass — each once,
//! across restarts. Which thread a message joins and which obligation a reply answers is decided
//! in one place ([`decide`]), whichever store keeps them. Operators read threads and statistics
//! ([`stats`]).

pub mod decide;
pub mod policy;
pub mod stats;
pub mod worker;

pub use policy::Policy;
