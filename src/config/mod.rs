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
pub mod error;
pub mod files;
pub mod operators;
pub mod permissions;
mod routing;
pub mod settings;
mod sources;
mod subscriptions;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use agencies::{Agencies, Agency, Hub, Liaison};
pub use error::{ConfigError, ConfigErrors};
pub use operators::Operators;
pub use permissions::Permissions;
pub use settings::Settings;

use crate::model::schema::Schemas;
use crate::model::{BodyKind, Sender};
use crate::normalize::Mapping;
use crate::route::Router;
use crate::store::SubscriptionRow;
use crate::threads::Policy;
use crate::tls::Material;
use files::{
    AGENCIES_FILE, OPERATORS_FILE, PERMISSIONS_FILE, SETTINGS_FILE, SOURCES_DIR, SUBSCRIPTIONS_FILE, THREADS_FILE,
};

/// The configuration in force, as a task that outlives one request reads it: each call gives
/// the current snapshot (a reload swaps it).
pub type Current = Arc<dyn Fn() -> Arc<Config> + Send + Sync>;

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
    pub subscriptions: Vec<SubscriptionRow>,
    /// Which messages ask for a reply, and by when (threads.yaml).
    pub threads: Policy,
    /// The listener's certificate, key and client verifier, read from the files `settings.tls`
    /// names (none: plain HTTP).
    pub tls: Option<Material>,
    /// What checks but can never work as written (a rule that can never match): `check` prints
    /// them and still succeeds.
    pub warnings: Vec<ConfigError>,
    /// How many routing tests (rules.test.yaml) passed, once `pipeline::rule_tests::load` ran
    /// them.
    pub rule_tests: usize,
    /// The version of `rules.yaml` as loaded (its SHA-256, hex; empty without one).
    pub rules_version: String,
}

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
        let settings_path = dir.join(SETTINGS_FILE);
        let mut settings = Settings::load(&settings_path, &mut errors);
        let schemas = match load_schemas(settings.schemas_dir(dir).as_deref()) {
            Ok(s) => s,
            Err(es) => {
                errors.extend(es.into_iter().map(|e| ConfigError::new(&e.file, e.reason)));
                return Err(ConfigErrors(errors));
            }
        };

        let (formats, declared) = sources::load(&dir.join(SOURCES_DIR), &schemas, &mut errors);
        settings.check_formats(&settings_path, &declared, &mut errors);
        let cloudevents = match Mapping::cloudevents(&schemas) {
            Ok(m) => Arc::new(m),
            Err(es) => {
                let file = Path::new("<built-in cloudevents format>");
                errors.extend(es.into_iter().map(|e| ConfigError::from_spec(file, e)));
                return Err(ConfigErrors(errors));
            }
        };

        let schemas = Arc::new(schemas.published_at(settings.base_url()));
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
        for c in operators.certificates() {
            if let Some(agency) = agencies.certificate_owner(c) {
                errors.push(ConfigError::new(
                    &dir.join(OPERATORS_FILE),
                    format!("the certificate {c} is also {agency}'s: every certificate has one owner"),
                ));
            }
        }
        let permissions = Permissions::load(&dir.join(PERMISSIONS_FILE), &schemas, &mut errors);
        let mut warnings = Vec::new();
        let router = routing::load(dir, &settings, &agencies, &schemas, &permissions, &mut errors, &mut warnings);
        let guard = crate::deliver::guard::Guard::new(&settings.delivery.allow_internal).unwrap_or_default();
        let subscriptions = subscriptions::load(&dir.join(SUBSCRIPTIONS_FILE), &router, &guard, &mut errors);
        let threads = Policy::load(&dir.join(THREADS_FILE), &schemas, &mut errors);
        for key in [&settings.audit.signing_key, &settings.audit.verify_key].into_iter().flatten() {
            if let Err(e) = crate::audit::checkpoint::Verifier::load(&dir.join(key)) {
                errors.push(ConfigError::new(&settings_path, format!("audit: {e}")));
            }
        }
        let tls = settings.tls.as_ref().and_then(|t| match Material::load(t, dir) {
            Ok(m) => Some(m),
            Err(e) => {
                errors.push(ConfigError::new(&settings_path, e));
                None
            }
        });

        if errors.is_empty() {
            let config = Config {
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
                warnings,
                rule_tests: 0,
                rules_version: std::fs::read_to_string(dir.join(files::RULES_FILE))
                    .map(|t| files::version(&t))
                    .unwrap_or_default(),
            };
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The mapping that reads a body of `kind` from `sender`: an agency's native format (as
    /// configured, or its kind's default), or the built-in CloudEvents format. Hubs have no
    /// native format: they post canonical events.
    pub fn mapping_for(&self, sender: &Sender, kind: BodyKind) -> Option<&Arc<Mapping>> {
        match (kind, sender) {
            (BodyKind::CloudEvent, _) => Some(&self.cloudevents),
            (BodyKind::Native, Sender::Hub(_)) => None,
            (BodyKind::Native, Sender::Agency(agency)) => {
                let name = match self.agencies.get(agency) {
                    Some(a) => a.format.as_deref()?,
                    None => self.settings.default_format(agency.kind)?,
                };
                self.formats.get(name)
            }
        }
    }
}

/// The schema registry: the shipped schemas and the files of `dir` over them, compiled. A
/// shipped type the directory changes in a way that breaks its consumers must have a raised
/// version.
fn load_schemas(dir: Option<&Path>) -> Result<Schemas, Vec<crate::model::schema::SchemaError>> {
    let shipped = crate::model::schema::Registry::built_in()?;
    let Some(dir) = dir else { return Schemas::compile(shipped) };
    let schemas = Schemas::compile(shipped.clone().overlaid(dir)?)?;
    let problems = schemas.breaking_since(&shipped);
    if problems.is_empty() { Ok(schemas) } else { Err(problems) }
}
