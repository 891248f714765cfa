//! Delivery: every recipient gets every message routed to it, at least once, by pull or push.
//!
//! - Feeds ([`feeds`]): each recipient reads its copies in order — pages after a cursor, waiting
//!   for the next commit when there is nothing yet (long-polls, Server-Sent Events).
//! - Subscriptions ([`subscription`]): a recipient's standing order on its own feed, a filter
//!   and either a webhook or a server-tracked cursor.
//! - Webhooks ([`worker`]): signed per Standard Webhooks ([`signature`]), retried on a schedule,
//!   dead-lettered when the schedule is spent, in order per case thread, leased while in flight,
//!   never to internal addresses unless allowed ([`guard`]).
//! - Retention ([`janitor`]): entries past `delivery.retention` are purged.
//!
//! The HTTP side of all this (feeds, streams, the subscriptions API) is in `http`.

pub mod feeds;
pub mod guard;
pub mod janitor;
pub mod signature;
pub mod subscription;
pub mod worker;
