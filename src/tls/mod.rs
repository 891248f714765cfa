//! TLS on the listener, and who a client certificate says the caller is.
//!
//! - [`material`] reads the certificate, key, client CAs and CRLs named in the settings;
//! - [`listener`] builds the rustls server configuration around swappable parts, so new files
//!   take effect for new connections without a restart (SIGHUP, or a change on disk);
//! - [`peer`] keeps what the gateway needs of a client certificate on the connection.

pub mod listener;
pub mod material;
pub mod peer;

pub use listener::Listener;
pub use material::Material;
pub use peer::PeerCertificate;
