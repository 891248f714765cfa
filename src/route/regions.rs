//! The key regions of section 十 (`config/regions.yaml`): each is a set of province (`XX`) or
//! prefecture (`XXYY`) prefixes and has a hub, `hub:REGION`. A case touches a region "in two or
//! more provinces" when its divisions that belong to the region lie in at least two provinces.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::divisions::Divisions;
use crate::model::Division;
use crate::secrecy::Level;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegionsFile {
    pub regions: BTreeMap<String, RegionSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegionSpec {
    pub name: String,
    pub members: Vec<Spanned<String>>,
    #[serde(default)]
    pub clearance: Option<Level>,
}

/// A key region and its hub.
#[derive(Clone, Debug)]
pub struct Region {
    /// The region's key: the hub is `hub:KEY`.
    pub key: String,
    pub name: String,
    prefixes: Vec<String>,
    /// The hub's clearance, when it differs from the default for hubs.
    pub clearance: Option<Level>,
}

impl Region {
    pub fn contains(&self, code: &Division) -> bool {
        self.prefixes.iter().any(|p| code.as_str().starts_with(p.as_str()))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Regions {
    regions: Vec<Region>,
}

impl Regions {
    /// Builds the regions, checking every member against the division table. Errors carry
    /// the member's position.
    pub(crate) fn build(
        file: RegionsFile,
        divisions: &Divisions,
    ) -> (Regions, Vec<(Option<serde_saphyr::Location>, String)>) {
        let mut errors = Vec::new();
        let mut regions = Vec::new();
        for (key, spec) in file.regions {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                errors.push((None, format!("region `{key}`: keys use lowercase letters, digits and `_`")));
            }
            let mut prefixes = Vec::new();
            for m in &spec.members {
                let code = match m.value.len() {
                    2 => format!("{}0000", m.value),
                    4 => format!("{}00", m.value),
                    _ => String::new(),
                };
                let known = Division::parse(&code).ok().filter(|d| divisions.contains(d));
                match known {
                    Some(_) => prefixes.push(m.value.clone()),
                    None => errors.push((
                        Some(m.referenced),
                        format!("region `{key}`: `{}` is not a province (XX) or prefecture (XXYY) prefix of the division table", m.value),
                    )),
                }
            }
            regions.push(Region { key, name: spec.name, prefixes, clearance: spec.clearance });
        }
        (Regions { regions }, errors)
    }

    pub fn get(&self, key: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.key == key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.regions.iter()
    }

    /// The regions whose members include divisions of two or more provinces among `divisions`.
    pub fn touched(&self, divisions: &[Division]) -> Vec<&Region> {
        self.regions
            .iter()
            .filter(|r| {
                let provinces: BTreeSet<&str> =
                    divisions.iter().filter(|d| r.contains(d)).map(|d| &d.as_str()[0..2]).collect();
                provinces.len() >= 2
            })
            .collect()
    }

    /// Every region a division belongs to.
    pub fn of(&self, code: &Division) -> Vec<&Region> {
        self.regions.iter().filter(|r| r.contains(code)).collect()
    }
}
