//! The no-state-secrets rule (section 四 of the opinion): classification levels, the scanner
//! that finds state-secret markings in free text, removal of marked fields, and each
//! recipient's view (its clearance; anonymisation for the public feed).

pub mod level;
pub mod mask;
pub mod scan;
pub mod strip;
pub mod view;

pub use level::Level;
