//! The division table, the regions and the rules of the configuration, compiled into the router.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::agencies::Agencies;
use super::error::ConfigError;
use super::files::{AGENCIES_FILE, DIVISIONS_FILE, REGIONS_FILE, RULES_DIR, RULES_FILE, SETTINGS_FILE, read_yaml};
use super::permissions::Permissions;
use super::settings::Settings;
use crate::model::schema::Schemas;
use crate::model::{AgencyKind, SenderKind};
use crate::normalize::SpecError;
use crate::route::rules::{Of, RegionRef, Rule, Target};
use crate::route::{self, Clearances, Divisions, Regions, Router};
use crate::secrecy::mask::Masking;

/// The division table, the regions and the rules, compiled into the router; each agency's
/// division is checked against the table.
pub fn load(
    dir: &Path,
    settings: &Settings,
    agencies: &Agencies,
    schemas: &Schemas,
    permissions: &Permissions,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Router {
    let table_path = dir.join(DIVISIONS_FILE);
    let divisions = match std::fs::read_to_string(&table_path) {
        Ok(text) => Divisions::parse(&text).unwrap_or_else(|es| {
            for (line, message) in es {
                errors.push(ConfigError { file: table_path.clone(), line: Some(line as u64), column: None, message });
            }
            Divisions::default()
        }),
        Err(e) => {
            errors.push(ConfigError::new(&table_path, format!("cannot read the division table: {e}")));
            Divisions::default()
        }
    };
    let agencies_path = dir.join(AGENCIES_FILE);
    for a in agencies.iter() {
        let problem = match divisions.get(&a.id.division) {
            None => {
                Some(format!("{}: {} is not a division of the GB/T 2260 table ({DIVISIONS_FILE})", a.id, a.id.division))
            }
            Some(e) if e.grouping => {
                Some(format!("{}: {} ({}) is a grouping row, not an authority", a.id, a.id.division, e.name))
            }
            Some(_) => None,
        };
        if let Some(message) = problem {
            let at = agencies.position(&a.id).copied().unwrap_or(serde_saphyr::Location::UNKNOWN);
            errors.push(ConfigError::from_spec(&agencies_path, SpecError::at(&at, message)));
        }
    }

    let regions_path = dir.join(REGIONS_FILE);
    let hubs_to_check: Vec<(String, serde_saphyr::Location)> = agencies.hubs().to_vec();
    let regions = match read_yaml::<route::regions::RegionsFile>(&regions_path, false, errors) {
        Some(file) => {
            let (regions, es) = Regions::build(file, &divisions);
            for (at, message) in es {
                let at = at.unwrap_or(serde_saphyr::Location::UNKNOWN);
                errors.push(ConfigError::from_spec(&regions_path, SpecError::at(&at, message)));
            }
            regions
        }
        None => Regions::default(),
    };

    for (key, at) in hubs_to_check {
        if regions.get(&key).is_none() {
            errors.push(ConfigError::from_spec(
                &agencies_path,
                SpecError::at(&at, format!("hub:{key}: no region `{key}` in {REGIONS_FILE}")),
            ));
        }
    }

    let mut rule_files = vec![dir.join(RULES_FILE)];
    if let Ok(entries) = std::fs::read_dir(dir.join(RULES_DIR)) {
        let mut more: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        more.sort();
        rule_files.extend(more);
    }
    let mut rules = Vec::new();
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in rule_files.iter().filter(|p| p.exists()) {
        let Some(file) = read_yaml::<route::rules::RulesFile>(path, false, errors) else { continue };
        let (compiled, es) = route::rules::compile(file.rules, &divisions, &regions, schemas);
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for e in es {
            errors.push(ConfigError::from_spec(path, at_offset(&text, &e.at, e.offset, e.message)));
        }
        for rule in &compiled {
            for w in never(rule, schemas, permissions) {
                warnings.push(ConfigError::from_spec(path, SpecError::at(&rule.at, w)));
            }
        }
        for rule in compiled {
            // Twice in one file is reported by the compiler, at its position.
            match names.get(&rule.name) {
                Some(first) if first != path => errors.push(ConfigError::new(
                    path,
                    format!("rule `{}` is defined in {} too", rule.name, first.display()),
                )),
                Some(_) => {}
                None => {
                    names.insert(rule.name.clone(), path.clone());
                }
            }
            rules.push(rule);
        }
    }

    let a = &settings.routing.anonymise;
    let masking = Masking::new(&a.titles, &a.roles, &a.patterns).unwrap_or_else(|e| {
        errors.push(ConfigError::new(&dir.join(SETTINGS_FILE), format!("routing.anonymise.{e}")));
        Masking::default()
    });
    let c = &settings.routing.clearance;
    let clearances = Clearances {
        agency: c.agency,
        hub: c.hub,
        public: c.public,
        operators: c.operators,
        agencies: agencies.iter().filter_map(|a| a.clearance.map(|l| (a.id, l))).collect(),
        hubs: regions.iter().filter_map(|r| r.clearance.map(|l| (r.key.clone(), l))).collect(),
        masking,
    };
    let connected = agencies.iter().map(|a| a.id).collect();
    Router::new(
        divisions,
        regions,
        rules,
        schemas.types(),
        connected,
        clearances,
        settings.routing.operators_feed.clone(),
    )
}

/// The position of a rule error: the condition's own position, moved to the character it names
/// when the condition is written on one line (plain or quoted: the quote is skipped).
fn at_offset(text: &str, at: &serde_saphyr::Location, offset: Option<usize>, message: String) -> SpecError {
    let mut e = SpecError::at(at, message);
    let (Some(offset), Some(line), Some(column)) = (offset, e.line, e.column) else { return e };
    let Some(source) = text.lines().nth(line.saturating_sub(1) as usize) else { return e };
    let rest: String = source.chars().skip(column.saturating_sub(1) as usize).collect();
    if rest.starts_with(['|', '>']) {
        // A block scalar: the condition starts on a later line; its own position stands.
        return e;
    }
    let quoted = u64::from(rest.starts_with(['\'', '"']));
    e.column = Some(column + quoted + offset as u64);
    e
}

/// What can never happen with `rule`, given who may send what: the rule never matches (no
/// sender of its kinds may send any of its types), or a target never names anyone (a target
/// relative to the sender's division when only hubs, which have none, can send; the sending
/// hub's region when no hub can send).
fn never(rule: &Rule, schemas: &Schemas, permissions: &Permissions) -> Vec<String> {
    let kinds: Vec<SenderKind> = rule
        .senders
        .clone()
        .unwrap_or_else(|| AgencyKind::ALL.into_iter().map(SenderKind::Agency).chain([SenderKind::Hub]).collect());
    let names: Vec<&str> = match &rule.types {
        Some(t) => schemas.types().iter().map(|m| m.name).filter(|n| t.contains(n)).collect(),
        None => schemas.types().iter().map(|m| m.name).collect(),
    };
    let possible: Vec<SenderKind> =
        kinds.iter().copied().filter(|k| names.iter().any(|t| permissions.kind_may_send(t, *k))).collect();
    let name = &rule.name;
    if possible.is_empty() {
        return vec![format!(
            "rule `{name}` can never match: permissions.yaml lets no sender of its kinds send its types (warning)"
        )];
    }
    let mut out = Vec::new();
    let targets = rule.to.iter().chain(&rule.copy);
    for target in targets {
        match target {
            Target::MembersOf { region: RegionRef::Sender, .. } if !possible.contains(&SenderKind::Hub) => out.push(format!(
                "rule `{name}`: `members_of: sender` names the sending hub's region, and no hub may send its types (warning)"
            )),
            Target::Relative { of: Of::Sender, .. } if possible.iter().all(|k| *k == SenderKind::Hub) => {
                out.push(format!(
                    "rule `{name}`: a target relative to the sender names nobody, since only hubs (which have no division) can send its types (warning)"
                ))
            }
            _ => {}
        }
    }
    out
}
