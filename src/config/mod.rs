//! Configuration: one directory (`config/` by default) holding
//!
//! - `xietong.yaml` — settings (listen address, data directory, limits, logging, store);
//! - `agencies.yaml` — the agencies that may post, their token hashes, formats and rate limits;
//! - `sources/*.yaml` — one source format per file (docs/mapping.md);
//! - `divisions.csv` — the GB/T 2260 division table;
//! - `regions.yaml` — the key regions of section 十 and their hubs;
//! - `rules.yaml` and/or `rules/*.yaml` — the routing rules (docs/routing.md);
//! - `operators.yaml` — who may call the admin endpoints;
//! - `permissions.yaml` — which kinds and levels of agency may send which message types;
//! - `subscriptions.yaml` — standing subscriptions (docs/delivery.md);
//! - `threads.yaml` — which messages ask for a reply, and by when (docs/threads.md).
//!
//! Loading checks everything and reports every problem with its file and position; nothing
//! starts on a configuration that does not check.

pub mod agencies;
pub mod operators;
pub mod permissions;
pub mod settings;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use agencies::{Agencies, Agency};
pub use operators::Operators;
pub use permissions::Permissions;
pub use settings::Settings;

use crate::model::AgencyId;
use crate::model::schema::Schemas;
use crate::normalize::{Mapping, SpecError};
use crate::pipeline::BodyKind;
use crate::route::{self, Clearances, Divisions, Regions, Router};

/// A loaded, checked configuration.
pub struct Config {
    pub dir: PathBuf,
    pub settings: Settings,
    pub agencies: Agencies,
    /// Source formats by name.
    pub formats: BTreeMap<String, Arc<Mapping>>,
    /// The built-in format for `application/cloudevents+json`.
    pub cloudevents: Arc<Mapping>,
    pub schemas: Arc<Schemas>,
    pub router: Router,
    pub operators: Operators,
    /// Who may send which message types (permissions.yaml).
    pub permissions: Permissions,
    /// The subscriptions of subscriptions.yaml, checked, as the store keeps them.
    pub subscriptions: Vec<crate::store::SubscriptionRow>,
    /// Which messages ask for a reply, and by when (threads.yaml).
    pub threads: crate::threads::Policy,
    /// The listener's certificate, key and client verifier, read from the files `settings.tls`
    /// names (none: plain HTTP).
    pub tls: Option<crate::tls::Material>,
}

/// One problem in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        ConfigError { file: file.to_path_buf(), line: None, column: None, message: message.into() }
    }

    pub fn from_spec(file: &Path, e: SpecError) -> Self {
        ConfigError { file: file.to_path_buf(), line: e.line, column: e.column, message: e.message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// All the problems found; `Display` prints one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

pub const SETTINGS_FILE: &str = "xietong.yaml";
pub const AGENCIES_FILE: &str = "agencies.yaml";
pub const SOURCES_DIR: &str = "sources";
pub const DIVISIONS_FILE: &str = "divisions.csv";
pub const REGIONS_FILE: &str = "regions.yaml";
pub const RULES_FILE: &str = "rules.yaml";
pub const RULES_DIR: &str = "rules";
pub const OPERATORS_FILE: &str = "operators.yaml";
pub const PERMISSIONS_FILE: &str = "permissions.yaml";
pub const SUBSCRIPTIONS_FILE: &str = "subscriptions.yaml";
pub const THREADS_FILE: &str = "threads.yaml";

impl Config {
    /// Loads and checks the configuration in `dir`.
    pub fn load(dir: &Path) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        if !dir.is_dir() {
            return Err(ConfigErrors(vec![ConfigError::new(
                dir,
                "no such configuration directory (pass --config DIR)",
            )]));
        }
        let schemas = match Schemas::load() {
            Ok(s) => Arc::new(s),
            Err(e) => {
                return Err(ConfigErrors(vec![ConfigError::new(Path::new("schemas"), e.to_string())]));
            }
        };

        let (formats, declared) = load_sources(&dir.join(SOURCES_DIR), &schemas, &mut errors);
        let cloudevents = match Mapping::cloudevents(&schemas) {
            Ok(m) => Arc::new(m),
            Err(es) => {
                let file = Path::new("<built-in cloudevents format>");
                errors.extend(es.into_iter().map(|e| ConfigError::from_spec(file, e)));
                return Err(ConfigErrors(errors));
            }
        };

        let settings_path = dir.join(SETTINGS_FILE);
        let mut settings = Settings::load(&settings_path, &declared, &mut errors);
        if let Err(e) = settings.store.redis.resolve(dir) {
            errors.push(ConfigError::new(&settings_path, e));
        }
        let agencies = Agencies::load(&dir.join(AGENCIES_FILE), &settings, &declared, &mut errors);
        let operators = Operators::load(&dir.join(OPERATORS_FILE), &mut errors);
        if operators.hashes().any(|h| agencies.token_hashes().any(|a| a == h)) {
            errors.push(ConfigError::new(
                &dir.join(OPERATORS_FILE),
                "an operator token hash is also an agency's: every token has one owner",
            ));
        }
        let permissions = Permissions::load(&dir.join(PERMISSIONS_FILE), &mut errors);
        let router = load_routing(dir, &settings, &agencies, &mut errors);
        let guard = crate::deliver::guard::Guard::new(&settings.delivery.allow_internal).unwrap_or_default();
        let subscriptions = load_subscriptions(&dir.join(SUBSCRIPTIONS_FILE), &router, &guard, &mut errors);
        let threads = crate::threads::Policy::load(&dir.join(THREADS_FILE), &mut errors);
        for key in [&settings.audit.signing_key, &settings.audit.verify_key].into_iter().flatten() {
            if let Err(e) = crate::audit::checkpoint::Verifier::load(&dir.join(key)) {
                errors.push(ConfigError::new(&settings_path, format!("audit: {e}")));
            }
        }
        let tls = settings.tls.as_ref().and_then(|t| match crate::tls::Material::load(t, dir) {
            Ok(m) => Some(m),
            Err(e) => {
                errors.push(ConfigError::new(&settings_path, e));
                None
            }
        });

        if errors.is_empty() {
            Ok(Config {
                dir: dir.to_path_buf(),
                settings,
                agencies,
                formats,
                cloudevents,
                schemas,
                router,
                operators,
                permissions,
                subscriptions,
                threads,
                tls,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The mapping that reads a body of `kind` from `agency`: the agency's native format (as
    /// configured, or its kind's default), or the built-in CloudEvents format.
    pub fn mapping_for(&self, agency: &AgencyId, kind: BodyKind) -> Option<&Arc<Mapping>> {
        match kind {
            BodyKind::CloudEvent => Some(&self.cloudevents),
            BodyKind::Native => {
                let name = match self.agencies.get(agency) {
                    Some(a) => a.format.as_deref()?,
                    None => self.settings.default_format(agency.kind)?,
                };
                self.formats.get(name)
            }
        }
    }
}

/// The division table, the regions and the rules, compiled into the router; each agency's
/// division is checked against the table.
fn load_routing(dir: &Path, settings: &Settings, agencies: &Agencies, errors: &mut Vec<ConfigError>) -> Router {
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
        let (compiled, es) = route::rules::compile(file.rules, &divisions, &regions);
        for e in es {
            errors.push(ConfigError::from_spec(path, SpecError::at(&e.at, e.message)));
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

    let c = &settings.routing.clearance;
    let clearances = Clearances {
        agency: c.agency,
        hub: c.hub,
        public: c.public,
        operators: c.operators,
        agencies: agencies.iter().filter_map(|a| a.clearance.map(|l| (a.id, l))).collect(),
        hubs: regions.iter().filter_map(|r| r.clearance.map(|l| (r.key.clone(), l))).collect(),
    };
    let connected = agencies.iter().map(|a| a.id).collect();
    Router::new(divisions, regions, rules, connected, clearances, settings.routing.operators_feed.clone())
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionsFile {
    #[serde(default)]
    subscriptions: Vec<crate::deliver::subscription::SubscriptionSpec>,
}

/// A secret kept outside the configuration: `env:NAME` (an environment variable) or
/// `file:PATH` (a file, relative to `dir`, trimmed). None: `value` is the secret itself.
pub fn reference(value: &str, dir: &Path) -> Option<Result<String, String>> {
    if let Some(var) = value.strip_prefix("env:") {
        Some(std::env::var(var).map_err(|_| format!("the environment variable {var} is not set")))
    } else {
        value.strip_prefix("file:").map(|file| {
            let at = dir.join(file);
            std::fs::read_to_string(&at).map(|s| s.trim().to_string()).map_err(|e| format!("{}: {e}", at.display()))
        })
    }
}

/// The subscriptions of subscriptions.yaml (optional), each checked. They start at the head of
/// their feed when first created.
fn load_subscriptions(
    path: &Path,
    router: &Router,
    guard: &crate::deliver::guard::Guard,
    errors: &mut Vec<ConfigError>,
) -> Vec<crate::store::SubscriptionRow> {
    use crate::deliver::subscription::{self, Stored};
    let Some(file) = read_yaml::<SubscriptionsFile>(path, true, errors) else { return Vec::new() };
    let mut rows = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, mut spec) in file.subscriptions.into_iter().enumerate() {
        let name = spec.id.clone().unwrap_or_else(|| format!("#{}", i + 1));
        let mut problems = Vec::new();
        // Secrets may live outside the file: `env:NAME` or `file:PATH` (relative to config/).
        for (n, secret) in spec.webhook.iter_mut().flat_map(|w| w.secrets.iter_mut()).enumerate() {
            let resolved = match reference(secret, path.parent().unwrap_or(Path::new("."))) {
                Some(r) => r.map_err(|e| format!("webhook.secrets[{n}]: {e}")),
                None => continue,
            };
            match resolved {
                Ok(value) => *secret = value,
                Err(e) => problems.push(e),
            }
        }
        problems.extend(subscription::validate(&spec, router, guard));
        let owner = match spec.owner.as_deref().map(|o| subscription::validate_owner(o, router)) {
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                problems.push(e);
                None
            }
            None => {
                problems.push("owner: the recipient whose feed it reads".into());
                None
            }
        };
        if spec.id.is_none() {
            problems.push("id: a configured subscription needs an id".into());
        }
        if spec.webhook.as_ref().is_some_and(|w| w.secrets.is_empty()) {
            problems.push(
                "webhook.secrets: a configured webhook needs its secret (whsec_…), shared with the endpoint".into(),
            );
        }
        if !ids.insert(name.clone()) {
            problems.push("id: defined twice".into());
        }
        for p in &problems {
            errors.push(ConfigError::new(path, format!("subscription {name}: {p}")));
        }
        if let (true, Some(owner), Some(id)) = (problems.is_empty(), owner, spec.id) {
            let stored = Stored { filter: spec.filter, webhook: spec.webhook };
            rows.push(crate::store::SubscriptionRow {
                id,
                owner: owner.to_string(),
                spec: stored.to_json(),
                cursor: -1,
                disabled: None,
                source: "config".into(),
                created_at: String::new(),
            });
        }
    }
    rows
}

/// Reads a YAML file of the configuration. `None` when it is missing (an error unless
/// `optional`) or has problems (recorded in `errors`, with positions); an empty file is
/// `T::default()`.
pub(crate) fn read_yaml<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
    optional: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            errors.push(ConfigError::new(path, format!("cannot read: {e}")));
            return None;
        }
    };
    match serde_saphyr::from_str::<Option<T>>(&text) {
        Ok(value) => Some(value.unwrap_or_default()),
        Err(e) => {
            errors.push(ConfigError::from_spec(path, SpecError::from_yaml(&e)));
            None
        }
    }
}

/// The compiled formats, and the names of every format file (also those with errors, so that
/// references to them are not reported a second time).
fn load_sources(
    dir: &Path,
    schemas: &Schemas,
    errors: &mut Vec<ConfigError>,
) -> (BTreeMap<String, Arc<Mapping>>, BTreeSet<String>) {
    let mut formats = BTreeMap::new();
    let mut declared = BTreeSet::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(ConfigError::new(dir, format!("cannot read the source formats: {e}")));
            return (formats, declared);
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    for file in files {
        if let Some(stem) = file.file_stem().and_then(|s| s.to_str()) {
            declared.insert(stem.to_string());
        }
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ConfigError::new(&file, format!("cannot read: {e}")));
                continue;
            }
        };
        match Mapping::from_yaml(&text, schemas) {
            Ok(mapping) => {
                let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                if mapping.name != stem {
                    errors.push(ConfigError::new(
                        &file,
                        format!("format `{}` must live in a file named {}.yaml", mapping.name, mapping.name),
                    ));
                } else if mapping.name == "cloudevents" {
                    errors.push(ConfigError::new(
                        &file,
                        "`cloudevents` is the built-in canonical format; choose another name",
                    ));
                } else {
                    formats.insert(mapping.name.clone(), Arc::new(mapping));
                }
            }
            Err(es) => errors.extend(es.into_iter().map(|e| ConfigError::from_spec(&file, e))),
        }
    }
    (formats, declared)
}
