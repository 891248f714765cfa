//! Who receives a message: an agency (`KIND:DIVISION`), a regional hub (`hub:REGION`), or a
//! named feed (`public`, and the operators' feed).

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::model::{AgencyId, Sender};

/// The name of the public feed (section 十五, typical cases).
pub const PUBLIC: &str = "public";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    Agency(AgencyId),
    Hub(String),
    Feed(String),
}

impl Recipient {
    pub fn is_public(&self) -> bool {
        matches!(self, Recipient::Feed(name) if name == PUBLIC)
    }
}

impl From<&Sender> for Recipient {
    /// The feed of a sender's own inbox.
    fn from(s: &Sender) -> Recipient {
        match s {
            Sender::Agency(a) => Recipient::Agency(*a),
            Sender::Hub(key) => Recipient::Hub(key.clone()),
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Agency(a) => write!(f, "{a}"),
            Recipient::Hub(key) => write!(f, "hub:{key}"),
            Recipient::Feed(name) => f.write_str(name),
        }
    }
}

impl FromStr for Recipient {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(key) = s.strip_prefix("hub:") {
            return Ok(Recipient::Hub(key.to_string()));
        }
        if s.contains(':') {
            return s.parse().map(Recipient::Agency);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
            return Ok(Recipient::Feed(s.to_string()));
        }
        Err(format!("`{s}` is not a recipient: an agency KIND:DIVISION, hub:REGION or a feed name"))
    }
}

impl Serialize for Recipient {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
