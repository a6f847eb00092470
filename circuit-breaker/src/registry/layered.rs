//! [`PolicyConfigs`]: one policy's `configs` and `instances` blocks, and how
//! a name's configuration is layered from them.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::breaker::ConfigError;

/// The name of the configuration every instance starts from.
pub const DEFAULT_CONFIG: &str = "default";

/// One policy's partial settings: every key is optional and overrides the
/// configuration below it.
pub trait Settings {
    /// The full configuration these settings overlay.
    type Config: Default;

    /// The named config these settings sit on (instances only).
    fn base_config(&self) -> Option<&str>;

    /// Overlays the keys set here on `config`.
    fn apply_to(&self, config: &mut Self::Config) -> Result<(), ConfigError>;

    /// Checks a fully layered configuration.
    fn validate(config: &Self::Config) -> Result<(), ConfigError>;
}

/// A Resilience4j-style block for one policy: shared `configs` by name and
/// per-name `instances`. A name's configuration is the built-in defaults,
/// overlaid by `configs.default`, then by the config its `baseConfig` names
/// (if not `default`), then by its own `instances` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfigs<S> {
    /// Shared configurations by name; `default` applies to every instance.
    #[serde(default = "BTreeMap::new")]
    pub configs: BTreeMap<String, S>,
    /// Per-name overrides.
    #[serde(default = "BTreeMap::new")]
    pub instances: BTreeMap<String, S>,
}

impl<S> Default for PolicyConfigs<S> {
    fn default() -> Self {
        Self {
            configs: BTreeMap::new(),
            instances: BTreeMap::new(),
        }
    }
}

impl<S: Settings> PolicyConfigs<S> {
    /// The full configuration of `name` (which need not be listed under
    /// `instances`).
    pub fn resolve(&self, name: &str) -> Result<S::Config, ConfigError> {
        let instance = self.instances.get(name);
        let base_name = instance.and_then(S::base_config).unwrap_or(DEFAULT_CONFIG);
        let mut config = S::Config::default();
        if base_name != DEFAULT_CONFIG
            && let Some(default) = self.configs.get(DEFAULT_CONFIG)
        {
            default.apply_to(&mut config)?;
        }
        match self.configs.get(base_name) {
            Some(base) => base.apply_to(&mut config)?,
            None if base_name != DEFAULT_CONFIG => {
                return Err(ConfigError::UnknownBaseConfig {
                    instance: name.to_owned(),
                    base: base_name.to_owned(),
                });
            }
            None => {}
        }
        if let Some(instance) = instance {
            instance.apply_to(&mut config)?;
        }
        S::validate(&config)?;
        Ok(config)
    }

    /// Resolves every listed instance and an unlisted name, so a bad
    /// document fails when loaded rather than on first use.
    pub fn check(&self) -> Result<(), ConfigError> {
        for name in self.instances.keys() {
            self.resolve(name)?;
        }
        self.resolve("").map(drop)
    }
}
