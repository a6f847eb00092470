//! The partial settings of each policy, as Resilience4j's Spring Boot
//! properties name them. Keys may be written camelCase, kebab-case or
//! snake_case; durations as milliseconds, `"10s"`/`"500ms"` or ISO-8601
//! (`PT10S`), see [`humane_duration`]. Unknown keys are errors, except
//! Resilience4j keys with no meaning here, which are accepted and ignored so
//! an existing file can be reused: `registerHealthIndicator`,
//! `eventConsumerBufferSize`, `writableStackTraceEnabled`,
//! `fairCallHandlingStrategyEnabled`, and `recordExceptions`,
//! `ignoreExceptions`, `retryExceptions`: exception classes are Java's; here
//! a [`Classifier`](crate::Classifier) (breaker) or a
//! [`RetryPredicate`](crate::RetryPredicate) (retry) decides per outcome,
//! in code.

use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::layered::Settings;
use crate::breaker::{CircuitBreakerConfig, ConfigError, OpenWaitBackoff, SlidingWindowType};
use crate::bulkhead::{Bulkhead, BulkheadConfig};
use crate::humane_duration;
use crate::retry::{Retry, RetryConfig};
use crate::time_limiter::TimeLimiter;

/// Defines one policy's settings struct: the `baseConfig` key, the
/// policy's own keys (each an `Option`), and Resilience4j keys that are
/// accepted and ignored (`field = "camelCase" | "kebab-case"`).
macro_rules! settings {
    (
        $(#[$doc:meta])*
        $name:ident {
            $($(#[$meta:meta])* pub $field:ident: $ty:ty,)*
        }
        ignored {
            $($ignored:ident = $camel:literal | $kebab:literal,)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            /// The named config this one overlays (instances only). Default
            /// is `default`.
            #[serde(alias = "base-config", alias = "base_config")]
            pub base_config: Option<String>,
            $($(#[$meta])* pub $field: $ty,)*
            $(
                #[serde(default, rename = $camel, alias = $kebab)]
                $ignored: Option<IgnoredAny>,
            )*
        }
    };
}

settings! {
    /// A partial breaker configuration: every key is optional and overrides the
    /// configuration below it.
    BreakerSettings {
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
        /// Turns on [`CircuitBreakerConfig::open_wait_backoff`] (`true`) or off.
        #[serde(
            alias = "enable-exponential-backoff",
            alias = "enable_exponential_backoff"
        )]
        pub enable_exponential_backoff: Option<bool>,
        /// See [`OpenWaitBackoff::multiplier`]; used when the backoff is on.
        /// Default is 1.5.
        #[serde(
            alias = "exponential-backoff-multiplier",
            alias = "exponential_backoff_multiplier"
        )]
        pub exponential_backoff_multiplier: Option<f64>,
        /// See [`OpenWaitBackoff::max_wait`]; used when the backoff is on.
        #[serde(
            default,
            deserialize_with = "humane_duration::deserialize_opt",
            alias = "exponential-max-wait-duration-in-open-state",
            alias = "exponential_max_wait_duration_in_open_state"
        )]
        pub exponential_max_wait_duration_in_open_state: Option<Duration>,
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
    }
    ignored {
        register_health_indicator = "registerHealthIndicator" | "register-health-indicator",
        event_consumer_buffer_size = "eventConsumerBufferSize" | "event-consumer-buffer-size",
        record_exceptions = "recordExceptions" | "record-exceptions",
        ignore_exceptions = "ignoreExceptions" | "ignore-exceptions",
        writable_stack_trace_enabled = "writableStackTraceEnabled" | "writable-stack-trace-enabled",
    }
}

impl Settings for BreakerSettings {
    type Config = CircuitBreakerConfig;

    fn base_config(&self) -> Option<&str> {
        self.base_config.as_deref()
    }

    fn apply_to(&self, config: &mut CircuitBreakerConfig) -> Result<(), ConfigError> {
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
        if let Some(enable) = self.enable_exponential_backoff {
            config.open_wait_backoff = enable.then(|| {
                config.open_wait_backoff.unwrap_or(OpenWaitBackoff {
                    multiplier: OpenWaitBackoff::DEFAULT_MULTIPLIER,
                    max_wait: None,
                })
            });
        }
        if let Some(backoff) = &mut config.open_wait_backoff {
            if let Some(m) = self.exponential_backoff_multiplier {
                backoff.multiplier = m;
            }
            if let Some(d) = self.exponential_max_wait_duration_in_open_state {
                backoff.max_wait = Some(d);
            }
        }
        Ok(())
    }

    fn validate(config: &CircuitBreakerConfig) -> Result<(), ConfigError> {
        config.validate()
    }
}

settings! {
    /// Partial settings of a [`Retry`] (`resilience4j.retry`).
    ///
    /// One difference from Resilience4j: our default backoff is exponential
    /// with jitter (see [`Backoff`](crate::Backoff)); `enableExponentialBackoff:
    /// false` and `enableRandomizedWait: false` give Resilience4j's constant wait.
    RetrySettings {
        /// See [`RetryConfig::max_attempts`].
        #[serde(alias = "max-attempts", alias = "max_attempts")]
        pub max_attempts: Option<u32>,
        /// The first delay, [`Backoff::initial`](crate::Backoff::initial).
        #[serde(
            default,
            deserialize_with = "humane_duration::deserialize_opt",
            alias = "wait-duration",
            alias = "wait_duration"
        )]
        pub wait_duration: Option<Duration>,
        /// `false` makes every delay `waitDuration` (multiplier 1).
        #[serde(
            alias = "enable-exponential-backoff",
            alias = "enable_exponential_backoff"
        )]
        pub enable_exponential_backoff: Option<bool>,
        /// [`Backoff::multiplier`](crate::Backoff::multiplier).
        #[serde(
            alias = "exponential-backoff-multiplier",
            alias = "exponential_backoff_multiplier"
        )]
        pub exponential_backoff_multiplier: Option<f64>,
        /// [`Backoff::max`](crate::Backoff::max).
        #[serde(
            default,
            deserialize_with = "humane_duration::deserialize_opt",
            alias = "exponential-max-wait-duration",
            alias = "exponential_max_wait_duration"
        )]
        pub exponential_max_wait_duration: Option<Duration>,
        /// `false` turns jitter off.
        #[serde(alias = "enable-randomized-wait", alias = "enable_randomized_wait")]
        pub enable_randomized_wait: Option<bool>,
        /// [`Backoff::jitter`](crate::Backoff::jitter).
        #[serde(alias = "randomized-wait-factor", alias = "randomized_wait_factor")]
        pub randomized_wait_factor: Option<f64>,
    }
    ignored {
        retry_exceptions = "retryExceptions" | "retry-exceptions",
        ignore_exceptions = "ignoreExceptions" | "ignore-exceptions",
        event_consumer_buffer_size = "eventConsumerBufferSize" | "event-consumer-buffer-size",
    }
}

impl Settings for RetrySettings {
    type Config = RetryConfig;

    fn base_config(&self) -> Option<&str> {
        self.base_config.as_deref()
    }

    fn apply_to(&self, config: &mut RetryConfig) -> Result<(), ConfigError> {
        let b = &mut config.backoff;
        if let Some(n) = self.max_attempts {
            config.max_attempts = n;
        }
        if let Some(d) = self.wait_duration {
            b.initial = d;
            b.max = b.max.max(d);
        }
        if let Some(m) = self.exponential_backoff_multiplier {
            b.multiplier = m;
        }
        if self.enable_exponential_backoff == Some(false) {
            b.multiplier = 1.0;
        }
        if let Some(d) = self.exponential_max_wait_duration {
            b.max = d;
        }
        if let Some(j) = self.randomized_wait_factor {
            b.jitter = j;
        }
        if self.enable_randomized_wait == Some(false) {
            b.jitter = 0.0;
        }
        Ok(())
    }

    fn validate(config: &RetryConfig) -> Result<(), ConfigError> {
        Retry::new(*config).map(drop)
    }
}

settings! {
    /// Partial settings of a [`Bulkhead`] (`resilience4j.bulkhead`).
    BulkheadSettings {
        /// See [`BulkheadConfig::max_concurrent_calls`].
        #[serde(alias = "max-concurrent-calls", alias = "max_concurrent_calls")]
        pub max_concurrent_calls: Option<u32>,
        /// See [`BulkheadConfig::max_wait_duration`].
        #[serde(
            default,
            deserialize_with = "humane_duration::deserialize_opt",
            alias = "max-wait-duration",
            alias = "max_wait_duration"
        )]
        pub max_wait_duration: Option<Duration>,
    }
    ignored {
        event_consumer_buffer_size = "eventConsumerBufferSize" | "event-consumer-buffer-size",
        writable_stack_trace_enabled = "writableStackTraceEnabled" | "writable-stack-trace-enabled",
        fair_call_handling_strategy_enabled = "fairCallHandlingStrategyEnabled" | "fair-call-handling-strategy-enabled",
    }
}

impl Settings for BulkheadSettings {
    type Config = BulkheadConfig;

    fn base_config(&self) -> Option<&str> {
        self.base_config.as_deref()
    }

    fn apply_to(&self, config: &mut BulkheadConfig) -> Result<(), ConfigError> {
        if let Some(n) = self.max_concurrent_calls {
            config.max_concurrent_calls = n;
        }
        if let Some(d) = self.max_wait_duration {
            config.max_wait_duration = d;
        }
        Ok(())
    }

    fn validate(config: &BulkheadConfig) -> Result<(), ConfigError> {
        Bulkhead::new("", *config).map(drop)
    }
}

settings! {
    /// Partial settings of a [`TimeLimiter`] (`resilience4j.timelimiter`).
    TimeLimiterSettings {
        /// See [`TimeLimiter::timeout`]. Default is 1 second.
        #[serde(
            default,
            deserialize_with = "humane_duration::deserialize_opt",
            alias = "timeout-duration",
            alias = "timeout_duration"
        )]
        pub timeout_duration: Option<Duration>,
        /// Only `true` is accepted: a call that times out is always cancelled
        /// (its future dropped); Resilience4j's `false` lets it run on unobserved,
        /// which a dropped Rust future cannot do.
        #[serde(alias = "cancel-running-future", alias = "cancel_running_future")]
        pub cancel_running_future: Option<bool>,
    }
    ignored {
        event_consumer_buffer_size = "eventConsumerBufferSize" | "event-consumer-buffer-size",
    }
}

impl Settings for TimeLimiterSettings {
    type Config = TimeLimiter;

    fn base_config(&self) -> Option<&str> {
        self.base_config.as_deref()
    }

    fn apply_to(&self, config: &mut TimeLimiter) -> Result<(), ConfigError> {
        if self.cancel_running_future == Some(false) {
            return Err(ConfigError::OutOfRange {
                field: "cancel_running_future",
                expected: "true (a timed-out call is always cancelled)",
                got: "false".into(),
            });
        }
        if let Some(d) = self.timeout_duration {
            *config = TimeLimiter::new(d);
        }
        Ok(())
    }

    fn validate(config: &TimeLimiter) -> Result<(), ConfigError> {
        if config.timeout().is_zero() {
            return Err(ConfigError::OutOfRange {
                field: "timeout_duration",
                expected: "longer than 0",
                got: "0".into(),
            });
        }
        Ok(())
    }
}
