//! Normalisation: native messages in, canonical data out, by declarative mappings.
//!
//! A *source format* is one YAML file under `config/sources/` (see `docs/mapping.md`): where
//! the envelope fields are, how native message types map to canonical ones, where the
//! sender put its field markings, and one rule per canonical field. The engine never runs
//! code from configuration; converters are a fixed, documented set.
//!
//! Mapping records *provenance*: for every canonical value, the native field(s) it came from.
//! That is what lets a field marking, written by the sender in native coordinates, be applied
//! exactly to the canonical message.

mod compile;
pub mod convert;
pub mod engine;
pub mod spec;

pub use engine::{Envelope, Mapped, Mapping, Provenance, SenderRef, SourceMarking};
pub use spec::SpecError;

/// The built-in mapping for canonical CloudEvents posted as `application/cloudevents+json`.
pub const CLOUDEVENTS_SPEC: &str = include_str!("cloudevents.yaml");
