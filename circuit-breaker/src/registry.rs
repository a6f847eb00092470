//! [`Registry`]: named breakers configured from a serde document shaped like
//! Resilience4j's, with shared `configs` and per-name `instances`.
//!
//! ```yaml
//! configs:
//!   default:
//!     slidingWindowSize: 50
//!     waitDurationInOpenState: 10s
//! instances:
//!   inventory:
//!     failureRateThreshold: 25
//!   search:
//!     baseConfig: default
//!     slowCallDurationThreshold: 500ms
//! ```
//!
//! Keys may be written camelCase (as above), kebab-case or snake_case.
//! Durations are milliseconds or strings with a unit. A breaker's
//! configuration is the built-in defaults, overlaid by `configs.default` (or
//! the config its `baseConfig` names), overlaid by its own `instances` entry.
//! Unknown keys are errors, except Resilience4j keys with no meaning here
//! (`registerHealthIndicator`, `eventConsumerBufferSize`, `recordExceptions`,
//! `ignoreExceptions`, `writableStackTraceEnabled`), which are accepted and
//! ignored so an existing file can be reused.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Deserialize;

use crate::breaker::{
    CircuitBreaker, CircuitBreakerConfig, ConfigError, MetricsSnapshot, SlidingWindowType,
};
use crate::clock::{Clock, SharedClock, TokioClock};
use crate::humane_duration;

/// The name of the configuration every instance starts from.
pub const DEFAULT_CONFIG: &str = "default";

/// A partial breaker configuration: every key is optional and overrides the
/// configuration below it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BreakerSettings {
    /// The named config this one overlays (instances only). Default is `default`.
    #[serde(alias = "base-config", alias = "base_config")]
    pub base_config: Option<String>,
    /// See [`CircuitBreakerConfig::failure_rate_threshold`].
    #[serde(alias = "failure-rate-threshold", alias = "failure_rate_threshold")]
    pub failure_rate_threshold: Option<f32>,
    /// See [`CircuitBreakerConfig::slow_call_rate_threshold`].
    #[serde(alias = "slow-call-rate-threshold", alias = "slow_call_rate_threshold")]
    pub slow_call_rate_threshold: Option<f32>,
    /// See [`CircuitBreakerConfig::slow_call_duration_threshold`].
    #[serde(
        default,
        deserialize_with = "humane_duration::deserialize_opt",
        alias = "slow-call-duration-threshold",
        alias = "slow_call_duration_threshold"
    )]
    pub slow_call_duration_threshold: Option<Duration>,
    /// See [`CircuitBreakerConfig::sliding_window_type`].
    #[serde(alias = "sliding-window-type", alias = "sliding_window_type")]
    pub sliding_window_type: Option<SlidingWindowType>,
    /// See [`CircuitBreakerConfig::sliding_window_size`].
    #[serde(alias = "sliding-window-size", alias = "sliding_window_size")]
    pub sliding_window_size: Option<u32>,
    /// See [`CircuitBreakerConfig::minimum_number_of_calls`].
    #[serde(alias = "minimum-number-of-calls", alias = "minimum_number_of_calls")]
    pub minimum_number_of_calls: Option<u32>,
    /// See [`CircuitBreakerConfig::wait_duration_in_open_state`].
    #[serde(
        default,
        deserialize_with = "humane_duration::deserialize_opt",
        alias = "wait-duration-in-open-state",
        alias = "wait_duration_in_open_state"
    )]
    pub wait_duration_in_open_state: Option<Duration>,
    /// See [`CircuitBreakerConfig::automatic_transition_from_open_to_half_open_enabled`].
    #[serde(
        alias = "automatic-transition-from-open-to-half-open-enabled",
        alias = "automatic_transition_from_open_to_half_open_enabled"
    )]
    pub automatic_transition_from_open_to_half_open_enabled: Option<bool>,
    /// See [`CircuitBreakerConfig::permitted_number_of_calls_in_half_open_state`].
    #[serde(
        alias = "permitted-number-of-calls-in-half-open-state",
        alias = "permitted_number_of_calls_in_half_open_state"
    )]
    pub permitted_number_of_calls_in_half_open_state: Option<u32>,
    /// See [`CircuitBreakerConfig::max_wait_duration_in_half_open_state`]; `0`
    /// means unset, as in Resilience4j.
    #[serde(
        default,
        deserialize_with = "humane_duration::deserialize_opt",
        alias = "max-wait-duration-in-half-open-state",
        alias = "max_wait_duration_in_half_open_state"
    )]
    pub max_wait_duration_in_half_open_state: Option<Duration>,
    #[serde(
        default,
        rename = "registerHealthIndicator",
        alias = "register-health-indicator"
    )]
    register_health_indicator: Option<serde::de::IgnoredAny>,
    #[serde(
        default,
        rename = "eventConsumerBufferSize",
        alias = "event-consumer-buffer-size"
    )]
    event_consumer_buffer_size: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "recordExceptions", alias = "record-exceptions")]
    record_exceptions: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "ignoreExceptions", alias = "ignore-exceptions")]
    ignore_exceptions: Option<serde::de::IgnoredAny>,
    #[serde(
        default,
        rename = "writableStackTraceEnabled",
        alias = "writable-stack-trace-enabled"
    )]
    writable_stack_trace_enabled: Option<serde::de::IgnoredAny>,
}

impl BreakerSettings {
    /// Overlays the keys set here on `config`.
    pub fn apply_to(&self, config: &mut CircuitBreakerConfig) {
        macro_rules! overlay {
            ($($field:ident),*) => {
                $(if let Some(v) = self.$field { config.$field = v; })*
            };
        }
        overlay!(
            failure_rate_threshold,
            slow_call_rate_threshold,
            sliding_window_type,
            sliding_window_size,
            minimum_number_of_calls,
            wait_duration_in_open_state,
            automatic_transition_from_open_to_half_open_enabled,
            permitted_number_of_calls_in_half_open_state
        );
        if let Some(d) = self.slow_call_duration_threshold {
            config.slow_call_duration_threshold = Some(d);
        }
        if let Some(d) = self.max_wait_duration_in_half_open_state {
            config.max_wait_duration_in_half_open_state = (!d.is_zero()).then_some(d);
        }
    }
}

/// The registry's configuration document.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Shared configurations by name; `default` applies to every instance
    /// that names no other.
    #[serde(default)]
    pub configs: BTreeMap<String, BreakerSettings>,
    /// Per-breaker overrides by breaker name.
    #[serde(default)]
    pub instances: BTreeMap<String, BreakerSettings>,
}

impl RegistryConfig {
    /// The full configuration of the breaker `name` (which need not be listed
    /// under `instances`).
    pub fn resolve(&self, name: &str) -> Result<CircuitBreakerConfig, ConfigError> {
        let instance = self.instances.get(name);
        let base_name = instance
            .and_then(|i| i.base_config.as_deref())
            .unwrap_or(DEFAULT_CONFIG);
        let mut config = CircuitBreakerConfig::default();
        if base_name != DEFAULT_CONFIG
            && let Some(default) = self.configs.get(DEFAULT_CONFIG)
        {
            default.apply_to(&mut config);
        }
        match self.configs.get(base_name) {
            Some(base) => base.apply_to(&mut config),
            None if base_name != DEFAULT_CONFIG => {
                return Err(ConfigError::UnknownBaseConfig {
                    instance: name.to_owned(),
                    base: base_name.to_owned(),
                });
            }
            None => {}
        }
        if let Some(instance) = instance {
            instance.apply_to(&mut config);
        }
        config.validate()?;
        Ok(config)
    }
}

/// Breakers by name, built on first use from a [`RegistryConfig`]. Cheap to
/// clone; clones share the breakers.
///
/// ```
/// use circuit_breaker::{Registry, RegistryConfig};
///
/// let yaml = "
/// configs:
///   default: { slidingWindowSize: 20, waitDurationInOpenState: 5s }
/// instances:
///   payments: { failureRateThreshold: 10 }
/// ";
/// let config: RegistryConfig = serde_yaml_ng::from_str(yaml).expect("valid YAML");
/// let registry = Registry::new(config).expect("valid config");
/// let payments = registry.circuit_breaker("payments").expect("valid config");
/// assert_eq!(payments.config().failure_rate_threshold, 10.0);
/// assert_eq!(payments.config().sliding_window_size, 20);
/// ```
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<RegistryInner>,
}

#[derive(Debug)]
struct RegistryInner {
    config: RegistryConfig,
    clock: SharedClock,
    breakers: Mutex<HashMap<String, CircuitBreaker>>,
}

impl Registry {
    /// A registry over `config`; every instance it lists is checked now.
    pub fn new(config: RegistryConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, TokioClock)
    }

    /// Like [`new`](Self::new), with breakers on `clock`.
    pub fn with_clock(config: RegistryConfig, clock: impl Clock) -> Result<Self, ConfigError> {
        for name in config.instances.keys() {
            config.resolve(name)?;
        }
        // And the configuration of an instance that is not listed.
        config.resolve("")?;
        Ok(Self {
            inner: Arc::new(RegistryInner {
                config,
                clock: Arc::new(clock),
                breakers: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The breaker named `name`, built on first use.
    pub fn circuit_breaker(&self, name: &str) -> Result<CircuitBreaker, ConfigError> {
        let mut breakers = self.inner.breakers.lock();
        if let Some(b) = breakers.get(name) {
            return Ok(b.clone());
        }
        let breaker = CircuitBreaker::builder(name)
            .config(self.inner.config.resolve(name)?)
            .shared_clock(self.inner.clock.clone())
            .build()?;
        breakers.insert(name.to_owned(), breaker.clone());
        Ok(breaker)
    }

    /// The breaker named `name` if it was built already.
    pub fn get(&self, name: &str) -> Option<CircuitBreaker> {
        self.inner.breakers.lock().get(name).cloned()
    }

    /// Snapshots of every breaker built so far, sorted by name.
    pub fn metrics(&self) -> Vec<MetricsSnapshot> {
        let breakers: Vec<CircuitBreaker> = self.inner.breakers.lock().values().cloned().collect();
        let mut out: Vec<MetricsSnapshot> = breakers.iter().map(CircuitBreaker::metrics).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
