//! [`CircuitBreakerConfig`]: the knobs of a breaker, with Resilience4j's
//! defaults, and their validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::window::MAX_COUNT_WINDOW;
use crate::retry::Backoff;

/// How the closed-state window counts calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SlidingWindowType {
    /// The last `sliding_window_size` calls (a ring).
    #[default]
    #[serde(alias = "count_based", alias = "count-based")]
    CountBased,
    /// The calls of the last `sliding_window_size` seconds, in one bucket
    /// per second.
    #[serde(alias = "time_based", alias = "time-based")]
    TimeBased,
}

/// Configuration of one circuit breaker. A plain struct: start from
/// [`Default`] (Resilience4j's defaults) and change what you need; the breaker
/// checks it with [`validate`](Self::validate) when built.
///
/// One deliberate difference from Resilience4j: `slow_call_duration_threshold`
/// is optional and unset by default, and calls are timed only when it is set.
/// Resilience4j times every call against a 60 s default; we keep the clock off
/// the hot path unless you say what "slow" means.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreakerConfig {
    /// Failure rate, in percent, at or above which the breaker opens.
    /// Default is 50.
    pub failure_rate_threshold: f32,
    /// Slow-call rate, in percent, at or above which the breaker opens.
    /// Default is 100. Only used when `slow_call_duration_threshold` is set.
    pub slow_call_rate_threshold: f32,
    /// Calls that take longer than this count as slow. Default is unset: calls
    /// are not timed and never slow.
    pub slow_call_duration_threshold: Option<Duration>,
    /// Count- or time-based window. Default is count-based.
    pub sliding_window_type: SlidingWindowType,
    /// Window size, in calls or in seconds. Default is 100. A count-based
    /// window holds at most 16384 calls.
    pub sliding_window_size: u32,
    /// Calls the window needs before a rate is computed. Default is 100. For a
    /// count-based window, values above the window size mean the window size.
    pub minimum_number_of_calls: u32,
    /// How long the breaker stays OPEN before it lets trial calls through.
    /// Default is 60 seconds.
    pub wait_duration_in_open_state: Duration,
    /// Makes the OPEN wait grow each time the breaker re-opens from
    /// HALF_OPEN (Resilience4j's `waitIntervalFunctionInOpenState` with
    /// exponential backoff). Default is unset: every wait is
    /// `wait_duration_in_open_state`.
    pub open_wait_backoff: Option<OpenWaitBackoff>,
    /// Move from OPEN to HALF_OPEN on a timer, instead of on the first call
    /// after the wait. Default is false. The timer is a task on the tokio
    /// runtime current when the breaker opens; without one (a breaker used
    /// only from plain threads) the move happens on the next call. The
    /// HALF_OPEN maximum wait uses the same mechanism.
    pub automatic_transition_from_open_to_half_open_enabled: bool,
    /// Trial calls admitted in HALF_OPEN; their outcome decides between
    /// CLOSED and OPEN. Default is 10.
    pub permitted_number_of_calls_in_half_open_state: u32,
    /// Longest stay in HALF_OPEN before going back to OPEN when the trial
    /// calls do not complete. Default is unset: wait for the trial calls.
    pub max_wait_duration_in_half_open_state: Option<Duration>,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: None,
            sliding_window_type: SlidingWindowType::CountBased,
            sliding_window_size: 100,
            minimum_number_of_calls: 100,
            wait_duration_in_open_state: Duration::from_secs(60),
            open_wait_backoff: None,
            automatic_transition_from_open_to_half_open_enabled: false,
            permitted_number_of_calls_in_half_open_state: 10,
            max_wait_duration_in_half_open_state: None,
        }
    }
}

/// Exponential growth of the OPEN wait: the n-th consecutive opening (the
/// first from CLOSED, each further one from a failed HALF_OPEN trial) waits
/// `wait_duration_in_open_state * multiplier^(n-1)`, at most `max_wait`.
/// Closing again starts over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenWaitBackoff {
    /// Growth per re-opening, at least 1. Resilience4j's default is 1.5.
    pub multiplier: f64,
    /// Longest wait. `None` means no cap.
    pub max_wait: Option<Duration>,
}

impl OpenWaitBackoff {
    /// Resilience4j's default multiplier.
    pub const DEFAULT_MULTIPLIER: f64 = 1.5;

    /// The wait of the `opening`-th consecutive opening (1 for the first).
    pub fn wait(&self, base: Duration, opening: u32) -> Duration {
        Backoff {
            initial: base,
            multiplier: self.multiplier,
            max: self.max_wait.unwrap_or(Duration::MAX),
            jitter: 0.0,
        }
        .base(opening)
    }
}

/// A configuration value out of its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A value is out of its allowed range.
    #[error("{field} must be {expected}, got {got}")]
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// The allowed range, in words.
        expected: &'static str,
        /// The value given.
        got: String,
    },
    /// An instance names a base configuration that does not exist.
    #[error("instance '{instance}' names unknown base config '{base}'")]
    UnknownBaseConfig {
        /// The instance.
        instance: String,
        /// The missing base configuration.
        base: String,
    },
}

fn check_percent(field: &'static str, v: f32) -> Result<(), ConfigError> {
    if v > 0.0 && v <= 100.0 {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            expected: "in (0, 100]",
            got: v.to_string(),
        })
    }
}

fn check_positive(field: &'static str, v: u32) -> Result<(), ConfigError> {
    if v >= 1 {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            expected: "at least 1",
            got: v.to_string(),
        })
    }
}

impl CircuitBreakerConfig {
    /// Checks every value against its range (as Resilience4j's builder does).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_percent("failure_rate_threshold", self.failure_rate_threshold)?;
        check_percent("slow_call_rate_threshold", self.slow_call_rate_threshold)?;
        check_positive("sliding_window_size", self.sliding_window_size)?;
        if self.sliding_window_type == SlidingWindowType::CountBased
            && self.sliding_window_size > MAX_COUNT_WINDOW
        {
            return Err(ConfigError::OutOfRange {
                field: "sliding_window_size",
                expected: "at most 16384 for a count-based window",
                got: self.sliding_window_size.to_string(),
            });
        }
        check_positive("minimum_number_of_calls", self.minimum_number_of_calls)?;
        check_positive(
            "permitted_number_of_calls_in_half_open_state",
            self.permitted_number_of_calls_in_half_open_state,
        )?;
        if let Some(b) = self.open_wait_backoff {
            if !(b.multiplier >= 1.0 && b.multiplier.is_finite()) {
                return Err(ConfigError::OutOfRange {
                    field: "exponential_backoff_multiplier",
                    expected: "at least 1",
                    got: b.multiplier.to_string(),
                });
            }
            if b.max_wait
                .is_some_and(|max| max < self.wait_duration_in_open_state)
            {
                return Err(ConfigError::OutOfRange {
                    field: "exponential_max_wait_duration_in_open_state",
                    expected: "at least wait_duration_in_open_state",
                    got: format!("{:?}", b.max_wait),
                });
            }
        }
        if self.wait_duration_in_open_state.is_zero() {
            return Err(ConfigError::OutOfRange {
                field: "wait_duration_in_open_state",
                expected: "longer than 0",
                got: "0".into(),
            });
        }
        Ok(())
    }

    /// The number of calls the closed-state window needs before a rate is
    /// computed.
    pub(crate) fn effective_minimum_calls(&self) -> u32 {
        match self.sliding_window_type {
            SlidingWindowType::CountBased => {
                self.minimum_number_of_calls.min(self.sliding_window_size)
            }
            SlidingWindowType::TimeBased => self.minimum_number_of_calls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_resilience4j_defaults_and_valid() {
        let c = CircuitBreakerConfig::default();
        assert_eq!(c.failure_rate_threshold, 50.0);
        assert_eq!(c.sliding_window_size, 100);
        assert_eq!(c.wait_duration_in_open_state, Duration::from_secs(60));
        c.validate().unwrap();
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let c = CircuitBreakerConfig {
            failure_rate_threshold: 0.0,
            ..Default::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::OutOfRange {
                field: "failure_rate_threshold",
                ..
            })
        ));
    }

    #[test]
    fn the_open_wait_grows_by_the_multiplier_up_to_its_cap() {
        let b = OpenWaitBackoff {
            multiplier: 2.0,
            max_wait: Some(Duration::from_secs(35)),
        };
        let waits: Vec<u64> = (1..=5)
            .map(|n| b.wait(Duration::from_secs(10), n).as_secs())
            .collect();
        assert_eq!(waits, [10, 20, 35, 35, 35]);
        let uncapped = OpenWaitBackoff {
            max_wait: None,
            ..b
        };
        assert_eq!(uncapped.wait(Duration::from_secs(1), 2000), Duration::MAX);
    }

    #[test]
    fn count_window_minimum_is_capped_by_its_size() {
        let c = CircuitBreakerConfig {
            sliding_window_size: 10,
            ..Default::default()
        };
        assert_eq!(c.effective_minimum_calls(), 10);
    }
}
