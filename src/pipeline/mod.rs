//! The pipeline: a native (or canonical) body in, the unit the store commits (the canonical
//! event and every recipient's copy) or a refusal out. [`accept::run`] is the one way through
//! it, for `POST /v1/messages`, `xietong explain` and `POST /v1/admin/explain` alike; the
//! thread worker addresses the messages it makes with the same [`address`] stage and commits
//! them as the same unit.
//!
//! The order of the stages is the no-state-secrets rule's:
//!
//! 1. parse the JSON;
//! 2. read the whole message's classification: a state secret is refused before anything else
//!    is looked at;
//! 3. read the sender's field markings, each of which must point at a real field;
//! 4. scan all free text (except fields marked as state secrets, which are removed anyway) for
//!    state-secret markings such as `机密★10年`: one refuses the message;
//! 5. map the native message to canonical data, recording where each value came from;
//! 6. check that the sender named in the message is the authenticated agency;
//! 7. remove every field marked as a state secret, and record where (`redactions`); record the
//!    markings above the message's base level (`classifiedFields`) for the per-recipient clearance;
//! 8. validate `data` against its type's JSON Schema;
//!
//! and then [`address`] it:
//!
//! 9. route it (the rules of `config/rules.yaml`), and make each recipient's copy: fields above
//!    its clearance removed, personal data masked for the public feed.

pub mod accept;
pub mod evaluation;
pub mod explain;
pub mod impact;
pub mod intake;
pub mod notice;
pub mod recipients;
pub mod rule_tests;

pub use accept::{Records, Unit, reply_context, run, stored};
pub use intake::{Normalized, body_sha256, content_hash, event_text, normalize, normalize_document, parse};
pub use recipients::{Addressed, Delivery, Withheld, address, copies, outbox};
