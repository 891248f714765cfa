//! Delivery: every recipient gets every message routed to it, at least once, by pull or push.
//!
//! - Feeds ([`feeds`]): each recipient reads its copies in order — JSON pages with a cursor and
//!   long-polling, or Server-Sent Events that resume from `Last-Event-ID`.
//! - Subscriptions ([`subscription`], [`api`]): a recipient's standing order on its own feed, a
//!   filter and either a webhook or a server-tracked cursor.
//! - Webhooks ([`worker`]): signed per Standard Webhooks ([`signature`]), retried on a schedule,
//!   dead-lettered when the schedule is spent, in order per case thread, leased while in flight.

pub mod api;
pub mod feeds;
pub mod guard;
pub mod signature;
pub mod subscription;
pub mod worker;
