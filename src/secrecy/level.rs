//! Classification levels, low to high: 公开 public, 内部 internal, 工作秘密 work secret, then
//! the state secrets 秘密 secret, 机密 confidential, 绝密 top secret.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// 公开
    Public,
    /// 内部 (also written 非密, "not classified")
    Internal,
    /// 工作秘密
    WorkSecret,
    /// 秘密 — a state secret
    Secret,
    /// 机密 — a state secret
    Confidential,
    /// 绝密 — a state secret
    TopSecret,
}

impl Level {
    pub const NAMES: &'static str = "公开, 内部 (or 非密), 工作秘密, 秘密, 机密, 绝密";

    /// Parses a level as agencies write it: the level's name, optionally followed by a
    /// protection period after a star (`机密★10年`). `非密` means 内部.
    pub fn parse(text: &str) -> Option<Level> {
        let name = text.split(['★', '☆']).next().unwrap_or("").trim();
        Some(match name {
            "公开" => Level::Public,
            "内部" | "非密" => Level::Internal,
            "工作秘密" => Level::WorkSecret,
            "秘密" => Level::Secret,
            "机密" => Level::Confidential,
            "绝密" => Level::TopSecret,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Public => "公开",
            Level::Internal => "内部",
            Level::WorkSecret => "工作秘密",
            Level::Secret => "秘密",
            Level::Confidential => "机密",
            Level::TopSecret => "绝密",
        }
    }

    /// 秘密, 机密 and 绝密 are state secrets: they never cross the gateway.
    pub fn is_state_secret(self) -> bool {
        self >= Level::Secret
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Level::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown level; expected one of {}", Level::NAMES)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_levels_and_names_state_secrets() {
        assert!(Level::Public < Level::Internal && Level::Internal < Level::WorkSecret);
        assert!(!Level::WorkSecret.is_state_secret());
        for l in [Level::Secret, Level::Confidential, Level::TopSecret] {
            assert!(l.is_state_secret());
        }
    }

    #[test]
    fn parses_levels_as_written() {
        assert_eq!(Level::parse("非密"), Some(Level::Internal));
        assert_eq!(Level::parse(" 工作秘密 "), Some(Level::WorkSecret));
        assert_eq!(Level::parse("机密★10年"), Some(Level::Confidential));
        assert_eq!(Level::parse("绝密★"), Some(Level::TopSecret));
        assert_eq!(Level::parse("secret"), None);
        assert_eq!(Level::parse(""), None);
    }
}
