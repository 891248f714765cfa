//! Agency addressing: `KIND:DIVISION`, e.g. `ip_office:330100`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kinds of agency that exchange messages through xietong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgencyKind {
    /// 知识产权管理部门, including the patent/trademark enforcement department.
    IpOffice,
    /// 人民检察院.
    Procuratorate,
    /// 公安机关.
    PublicSecurity,
    /// 人民法院.
    Court,
}

impl AgencyKind {
    pub const ALL: [AgencyKind; 4] =
        [AgencyKind::IpOffice, AgencyKind::Procuratorate, AgencyKind::PublicSecurity, AgencyKind::Court];

    pub fn as_str(self) -> &'static str {
        match self {
            AgencyKind::IpOffice => "ip_office",
            AgencyKind::Procuratorate => "procuratorate",
            AgencyKind::PublicSecurity => "public_security",
            AgencyKind::Court => "court",
        }
    }
}

impl fmt::Display for AgencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgencyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgencyKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("unknown agency kind `{s}`; expected one of ip_office, procuratorate, public_security, court")
        })
    }
}

/// A six-digit GB/T 2260 division code. `000000` is national.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Division([u8; 6]);

impl Division {
    pub const NATIONAL: Division = Division(*b"000000");

    pub fn parse(s: &str) -> Result<Division, String> {
        let bytes: [u8; 6] =
            s.as_bytes().try_into().map_err(|_| "a division code has exactly six digits".to_string())?;
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err("a division code has exactly six digits".into());
        }
        Ok(Division(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("000000")
    }
}

impl fmt::Display for Division {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Division {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Division({})", self.as_str())
    }
}

/// An agency: its kind and its division, written `KIND:DIVISION`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgencyId {
    pub kind: AgencyKind,
    pub division: Division,
}

impl AgencyId {
    pub fn new(kind: AgencyKind, division: Division) -> Self {
        AgencyId { kind, division }
    }

    /// The CloudEvents `source` of messages this agency sends.
    pub fn source_uri(&self) -> String {
        format!("urn:xietong:agency:{self}")
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.division)
    }
}

impl fmt::Debug for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgencyId({self})")
    }
}

impl FromStr for AgencyId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, division) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not an agency id; expected KIND:DIVISION, e.g. ip_office:330100"))?;
        let kind = kind.parse()?;
        let division = Division::parse(division).map_err(|e| format!("agency id `{s}`: {e}"))?;
        Ok(AgencyId { kind, division })
    }
}

impl Serialize for AgencyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AgencyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What kind of party sends: an agency of a kind, or a regional hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SenderKind {
    Agency(AgencyKind),
    /// A regional hub (section 十): it publishes to the agencies of its region.
    Hub,
}

impl SenderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderKind::Agency(k) => k.as_str(),
            SenderKind::Hub => "hub",
        }
    }
}

impl fmt::Display for SenderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SenderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hub" => Ok(SenderKind::Hub),
            other => other.parse().map(SenderKind::Agency).map_err(|_| {
                format!(
                    "unknown sender kind `{s}`; expected one of ip_office, procuratorate, public_security, court, hub"
                )
            }),
        }
    }
}

/// Who sends a message: an agency, or a regional hub (`hub:REGION`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sender {
    Agency(AgencyId),
    /// A hub, by its region's key.
    Hub(String),
}

impl Sender {
    pub fn kind(&self) -> SenderKind {
        match self {
            Sender::Agency(a) => SenderKind::Agency(a.kind),
            Sender::Hub(_) => SenderKind::Hub,
        }
    }

    /// The agency, when an agency sends.
    pub fn agency(&self) -> Option<&AgencyId> {
        match self {
            Sender::Agency(a) => Some(a),
            Sender::Hub(_) => None,
        }
    }

    /// The CloudEvents `source` of its messages.
    pub fn source_uri(&self) -> String {
        match self {
            Sender::Agency(a) => a.source_uri(),
            Sender::Hub(key) => format!("urn:xietong:hub:{key}"),
        }
    }
}

impl From<AgencyId> for Sender {
    fn from(a: AgencyId) -> Sender {
        Sender::Agency(a)
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sender::Agency(a) => write!(f, "{a}"),
            Sender::Hub(key) => write!(f, "hub:{key}"),
        }
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sender({self})")
    }
}

impl FromStr for Sender {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("hub:") {
            Some(key)
                if !key.is_empty()
                    && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                Ok(Sender::Hub(key.to_string()))
            }
            Some(_) => Err(format!("`{s}` is not a hub id; expected hub:REGION, e.g. hub:yangtze_delta")),
            None => s.parse().map(Sender::Agency).map_err(|e: String| format!("{e} (or a hub, hub:REGION)")),
        }
    }
}

impl Serialize for Sender {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sender {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_agency_ids() {
        let id: AgencyId = "ip_office:330100".parse().unwrap();
        assert_eq!(id.kind, AgencyKind::IpOffice);
        assert_eq!(id.division.as_str(), "330100");
        assert_eq!(id.to_string(), "ip_office:330100");
        assert_eq!(id.source_uri(), "urn:xietong:agency:ip_office:330100");
    }

    #[test]
    fn rejects_malformed_agency_ids() {
        for bad in ["ip_office", "police:330100", "ip_office:33010", "ip_office:33010x", "ip_office:3301000", ":330100"]
        {
            assert!(bad.parse::<AgencyId>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn a_sender_is_an_agency_or_a_hub() {
        let hub: Sender = "hub:yangtze_delta".parse().unwrap();
        assert_eq!((hub.kind(), hub.source_uri()), (SenderKind::Hub, "urn:xietong:hub:yangtze_delta".to_string()));
        assert!(hub.agency().is_none());
        let agency: Sender = "court:330100".parse().unwrap();
        assert_eq!(agency.kind(), SenderKind::Agency(AgencyKind::Court));
        for bad in ["hub:", "hub:Yangtze", "hub:a-b", "hub:长三角", "police:330100", "gateway"] {
            assert!(bad.parse::<Sender>().is_err(), "{bad} should be refused");
        }
        assert_eq!("hub".parse::<SenderKind>(), Ok(SenderKind::Hub));
        assert!("police".parse::<SenderKind>().unwrap_err().contains("hub"));
    }

    proptest::proptest! {
        /// Whatever the text, parsing never panics, and what parses prints back as it was.
        #[test]
        fn sender_ids_parse_back_to_themselves(text in "(hub:[a-z0-9_]{0,12}|(ip_office|court|hub|x):[0-9a-z]{0,7}|.{0,16})") {
            if let Ok(sender) = text.parse::<Sender>() {
                proptest::prop_assert_eq!(sender.to_string(), text.clone());
                proptest::prop_assert_eq!(text.parse::<Sender>(), Ok(sender));
            }
        }
    }
}
