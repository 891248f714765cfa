//! Reloading the configuration: on `POST /v1/admin/reload`, SIGHUP, or when another instance
//! sharing the store reloaded. A configuration that does not check is refused and the current
//! one keeps serving; settings that need a restart keep their running values and are reported.

use std::path::PathBuf;
use std::sync::Arc;

use super::limits::RateLimits;
use super::state::{Gateway, Runtime};
use crate::audit::Entry;
use crate::config::{ConfigError, ConfigErrors};
use crate::store::StoreError;

/// Why a reload did not happen.
#[derive(Debug)]
pub enum ReloadError {
    /// The configuration does not check.
    Invalid(ConfigErrors),
    /// The store could not take the configured subscriptions.
    Store(StoreError),
}

/// What a successful reload changed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    pub formats: usize,
    pub agencies: usize,
    pub rules: usize,
    /// Settings that changed in the files but take effect only after a restart.
    pub restart_needed: Vec<&'static str>,
}

/// Who reloads when another instance announced a reload.
pub const PEER_RELOAD: &str = "another instance";

impl Gateway {
    /// Loads the configuration directory again and swaps it in if it checks; otherwise the
    /// current configuration keeps serving and the errors are returned. The configured
    /// subscriptions are brought into the store first. `by` is who asked: an operator's name,
    /// or the signal.
    pub async fn reload(&self, by: &str) -> Result<Reloaded, ReloadError> {
        let current = self.runtime();
        let dir: PathBuf = current.config.dir.clone();
        // Against the registry in force: a type changed in a way that breaks its consumers needs
        // a raised version, whether it was shipped or added by configuration.
        let loaded = crate::pipeline::rule_tests::load(&dir).and_then(|c| {
            let problems = c.schemas.breaking_since(current.config.schemas.registry());
            if problems.is_empty() {
                Ok(c)
            } else {
                Err(ConfigErrors(problems.into_iter().map(|p| ConfigError::new(&p.file, p.reason)).collect()))
            }
        });
        let mut config = match loaded {
            Ok(c) => c,
            Err(errors) => {
                self.metrics.count_reload("refused");
                let entry = Entry::new("reload_refused").actor(by).detail(format!("{} problem(s)", errors.0.len()));
                if let Err(e) = self.store.audit(entry).await {
                    tracing::warn!(error = %e, "could not record the refused reload in the audit log");
                }
                tracing::warn!(
                    errors = errors.0.len(),
                    "configuration reload refused; the current configuration keeps serving"
                );
                return Err(ReloadError::Invalid(errors));
            }
        };
        self.store.sync_config_subscriptions(config.subscriptions.clone()).await.map_err(ReloadError::Store)?;
        for w in &config.warnings {
            tracing::warn!(warning = %w, "the reloaded configuration has a rule that can never work as written");
        }
        self.overrides.apply(&mut config.settings);
        // What the running process was started with stays; changing it needs a restart.
        let (old, new) = (&current.config.settings, &mut config.settings);
        let mut restart_needed = Vec::new();
        if old.listen != new.listen {
            restart_needed.push("listen");
        }
        if old.data_dir != new.data_dir {
            restart_needed.push("data_dir");
        }
        if old.store != new.store {
            restart_needed.push("store");
        }
        if old.workers != new.workers || old.shutdown_timeout_secs != new.shutdown_timeout_secs {
            restart_needed.push("workers/shutdown_timeout_secs");
        }
        if old.log.level != new.log.level || old.log.format != new.log.format {
            restart_needed.push("log");
        }
        if old.tls.is_some() != new.tls.is_some() {
            // Plain HTTP and HTTPS are different listeners.
            restart_needed.push("tls (on or off)");
            new.tls = old.tls.clone();
            config.tls = current.config.tls.clone();
        }
        new.listen = old.listen;
        new.data_dir = old.data_dir.clone();
        new.store = old.store.clone();
        new.workers = old.workers;
        new.shutdown_timeout_secs = old.shutdown_timeout_secs;
        new.log = old.log.clone();
        let reloaded = Reloaded {
            formats: config.formats.len(),
            agencies: config.agencies.len(),
            rules: config.router.rules().len(),
            restart_needed,
        };
        if let (Some(listener), Some(material)) = (self.tls_listener(), &config.tls) {
            listener.apply(material.clone());
        }
        let limits = RateLimits::new(&config.agencies, Some(&current.limits));
        self.runtime.store(Arc::new(Runtime::new(config, limits, (self.clock.now_ms(), by.to_string()))));
        self.metrics.count_reload("applied");
        // The other instances sharing the store load the same files (a ConfigMap) too.
        if by != PEER_RELOAD
            && let Err(e) = self.store.announce_reload().await
        {
            tracing::warn!(error = %e, "could not tell the other instances to reload");
        }
        let entry = Entry::new("reloaded")
            .actor(by)
            .detail(format!("{} formats, {} agencies, {} rules", reloaded.formats, reloaded.agencies, reloaded.rules));
        if let Err(e) = self.store.audit(entry).await {
            tracing::warn!(error = %e, "could not record the reload in the audit log");
        }
        tracing::info!(
            formats = reloaded.formats,
            agencies = reloaded.agencies,
            rules = reloaded.rules,
            "configuration reloaded"
        );
        Ok(reloaded)
    }

    /// Reloads for `by` (a signal, another instance) where nobody waits for the answer: the
    /// outcome goes to the log.
    pub async fn reload_logged(&self, by: &str) {
        match self.reload(by).await {
            Ok(_) if by == PEER_RELOAD => tracing::info!("reloaded: another instance reloaded"),
            Ok(_) => {}
            Err(ReloadError::Invalid(errors)) if by == PEER_RELOAD => {
                tracing::warn!(
                    problems = errors.0.len(),
                    "another instance reloaded, but this one's files do not check"
                );
            }
            Err(ReloadError::Invalid(errors)) => {
                for e in &errors.0 {
                    tracing::warn!(error = %e, "configuration problem");
                }
            }
            Err(ReloadError::Store(e)) => tracing::warn!(error = %e, "reload failed: the store is unavailable"),
        }
    }
}
