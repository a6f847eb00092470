//! [`Registry`]: named policies configured from a serde document shaped
//! like Resilience4j's Spring Boot properties: one block per policy, each
//! with shared `configs` and per-name `instances`.
//!
//! ```yaml
//! circuitbreaker:
//!   configs:
//!     default:
//!       slidingWindowSize: 50
//!       waitDurationInOpenState: PT10S
//!       enableExponentialBackoff: true
//!   instances:
//!     inventory:
//!       failureRateThreshold: 25
//! retry:
//!   instances:
//!     inventory: { maxAttempts: 4, waitDuration: 200ms }
//! bulkhead:
//!   instances:
//!     inventory: { maxConcurrentCalls: 10, maxWaitDuration: 20ms }
//! timelimiter:
//!   instances:
//!     inventory: { timeoutDuration: 2s, cancelRunningFuture: true }
//! ```
//!
//! That is the `resilience4j:` subtree of a Spring Boot `application.yml`.
//! A name's configuration is the built-in defaults, overlaid by
//! `configs.default` (and the config its `baseConfig` names), overlaid by
//! its own `instances` entry ([`PolicyConfigs::resolve`]). The keys of each
//! block are documented on [`BreakerSettings`], [`RetrySettings`],
//! [`BulkheadSettings`] and [`TimeLimiterSettings`].
//!
//! `layered.rs` holds the layering, `settings.rs` the keys of each policy.

mod layered;
mod settings;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Deserialize;

pub use layered::{DEFAULT_CONFIG, PolicyConfigs, Settings};
pub use settings::{BreakerSettings, BulkheadSettings, RetrySettings, TimeLimiterSettings};

use crate::breaker::{CircuitBreaker, ConfigError, MetricsSnapshot};
use crate::bulkhead::Bulkhead;
use crate::clock::{Clock, SharedClock, TokioClock};
use crate::retry::Retry;
use crate::time_limiter::TimeLimiter;

/// The circuit-breaker block alone (`configs` and `instances`), the
/// document [`Registry::new`] took before the other policies had one.
pub type RegistryConfig = PolicyConfigs<BreakerSettings>;

/// Every policy's block: the `resilience4j:` subtree of a Spring Boot file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResilienceConfig {
    /// `circuitbreaker` (also `circuitBreaker`, `circuit-breaker`).
    #[serde(
        default,
        rename = "circuitbreaker",
        alias = "circuitBreaker",
        alias = "circuit-breaker",
        alias = "circuit_breaker"
    )]
    pub circuit_breaker: PolicyConfigs<BreakerSettings>,
    /// `retry`.
    #[serde(default)]
    pub retry: PolicyConfigs<RetrySettings>,
    /// `bulkhead`.
    #[serde(default)]
    pub bulkhead: PolicyConfigs<BulkheadSettings>,
    /// `timelimiter` (also `timeLimiter`, `time-limiter`).
    #[serde(
        default,
        rename = "timelimiter",
        alias = "timeLimiter",
        alias = "time-limiter",
        alias = "time_limiter"
    )]
    pub time_limiter: PolicyConfigs<TimeLimiterSettings>,
}

impl From<RegistryConfig> for ResilienceConfig {
    fn from(circuit_breaker: RegistryConfig) -> Self {
        Self {
            circuit_breaker,
            ..Self::default()
        }
    }
}

/// Policies by name, built from a [`ResilienceConfig`]. Breakers and
/// bulkheads hold state, so each name gets one, built on first use and
/// shared after; retries and time limiters are built on each request.
/// Cheap to clone; clones share the policies.
///
/// ```
/// use std::time::Duration;
/// use circuit_breaker::{Registry, ResilienceConfig};
///
/// let yaml = "
/// circuitbreaker:
///   configs:
///     default: { slidingWindowSize: 20, waitDurationInOpenState: PT5S }
///   instances:
///     payments: { failureRateThreshold: 10 }
/// timelimiter:
///   instances:
///     payments: { timeoutDuration: 1500ms }
/// ";
/// let config: ResilienceConfig = serde_yaml_ng::from_str(yaml).expect("valid YAML");
/// let registry = Registry::new(config).expect("valid config");
/// let payments = registry.circuit_breaker("payments").expect("valid config");
/// assert_eq!(payments.config().failure_rate_threshold, 10.0);
/// assert_eq!(payments.config().sliding_window_size, 20);
/// let limiter = registry.time_limiter("payments").expect("valid config");
/// assert_eq!(limiter.timeout(), Duration::from_millis(1500));
/// ```
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<RegistryInner>,
}

#[derive(Debug)]
struct RegistryInner {
    config: ResilienceConfig,
    clock: SharedClock,
    breakers: Mutex<HashMap<String, CircuitBreaker>>,
    bulkheads: Mutex<HashMap<String, Bulkhead>>,
}

/// The policy named `name` in `built`, built by `build` on first use.
fn shared<T: Clone>(
    built: &Mutex<HashMap<String, T>>,
    name: &str,
    build: impl FnOnce() -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let mut built = built.lock();
    if let Some(policy) = built.get(name) {
        return Ok(policy.clone());
    }
    let policy = build()?;
    built.insert(name.to_owned(), policy.clone());
    Ok(policy)
}

impl Registry {
    /// A registry over `config` (a [`ResilienceConfig`] or the breakers'
    /// [`RegistryConfig`]); every instance it lists is checked now.
    pub fn new(config: impl Into<ResilienceConfig>) -> Result<Self, ConfigError> {
        Self::with_clock(config, TokioClock::new())
    }

    /// Like [`new`](Self::new), with breakers on `clock`.
    pub fn with_clock(
        config: impl Into<ResilienceConfig>,
        clock: impl Clock,
    ) -> Result<Self, ConfigError> {
        let config = config.into();
        config.circuit_breaker.check()?;
        config.retry.check()?;
        config.bulkhead.check()?;
        config.time_limiter.check()?;
        Ok(Self {
            inner: Arc::new(RegistryInner {
                config,
                clock: Arc::new(clock),
                breakers: Mutex::new(HashMap::new()),
                bulkheads: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The breaker named `name`, built on first use.
    pub fn circuit_breaker(&self, name: &str) -> Result<CircuitBreaker, ConfigError> {
        shared(&self.inner.breakers, name, || {
            CircuitBreaker::builder(name)
                .config(self.inner.config.circuit_breaker.resolve(name)?)
                .shared_clock(self.inner.clock.clone())
                .build()
        })
    }

    /// The breaker named `name` if it was built already.
    pub fn get(&self, name: &str) -> Option<CircuitBreaker> {
        self.inner.breakers.lock().get(name).cloned()
    }

    /// The bulkhead named `name`, built on first use.
    pub fn bulkhead(&self, name: &str) -> Result<Bulkhead, ConfigError> {
        shared(&self.inner.bulkheads, name, || {
            Bulkhead::new(name, self.inner.config.bulkhead.resolve(name)?)
        })
    }

    /// A retry configured for `name`.
    pub fn retry(&self, name: &str) -> Result<Retry, ConfigError> {
        Retry::new(self.inner.config.retry.resolve(name)?)
    }

    /// The time limiter configured for `name`.
    pub fn time_limiter(&self, name: &str) -> Result<TimeLimiter, ConfigError> {
        self.inner.config.time_limiter.resolve(name)
    }

    /// Snapshots of every breaker built so far, sorted by name.
    pub fn metrics(&self) -> Vec<MetricsSnapshot> {
        let breakers: Vec<CircuitBreaker> = self.inner.breakers.lock().values().cloned().collect();
        let mut out: Vec<MetricsSnapshot> = breakers.iter().map(CircuitBreaker::metrics).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
