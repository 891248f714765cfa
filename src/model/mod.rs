//! The canonical model: who speaks (agency ids), what is said (message types and their
//! JSON Schemas), and the shape of a refusal (`Problem`).

pub mod agency;
pub mod event;
pub mod problem;
pub mod schema;
pub mod shape;
pub mod types;
pub mod walk;

pub use agency::{AgencyId, AgencyKind, Division, Sender, SenderKind};
pub use event::BodyKind;
pub use problem::{Code, Detail, Problem};
pub use types::MessageType;
