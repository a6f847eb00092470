//! A point-in-time view of a breaker ([`MetricsSnapshot`]) and the names it
//! is exported under.
//!
//! # Metric names
//!
//! [`MetricsSnapshot::samples`] yields these, each labelled `name="<breaker>"`
//! (Prometheus spelling of Resilience4j's Micrometer names):
//!
//! | name | type | extra labels | meaning |
//! |---|---|---|---|
//! | `circuitbreaker_state` | gauge | `state` = each [`State::as_str`] | 1 for the current state, 0 for the others |
//! | `circuitbreaker_calls_total` | counter | `kind` = `successful`, `failed`, `ignored`, `not_permitted` | calls since the breaker was built |
//! | `circuitbreaker_slow_calls_total` | counter | `kind` = `successful`, `failed` | slow calls since the breaker was built |
//! | `circuitbreaker_buffered_calls` | gauge | `kind` = `successful`, `failed` | calls in the current window |
//! | `circuitbreaker_slow_calls` | gauge | `kind` = `successful`, `failed` | slow calls in the current window |
//! | `circuitbreaker_failure_rate` | gauge | | failure rate of the window in percent, -1 until the minimum number of calls |
//! | `circuitbreaker_slow_call_rate` | gauge | | slow-call rate of the window in percent, -1 likewise |

use super::{Classification, State};

/// Name of the state gauge.
pub const STATE: &str = "circuitbreaker_state";
/// Name of the cumulative calls counter.
pub const CALLS_TOTAL: &str = "circuitbreaker_calls_total";
/// Name of the cumulative slow calls counter.
pub const SLOW_CALLS_TOTAL: &str = "circuitbreaker_slow_calls_total";
/// Name of the window's buffered calls gauge.
pub const BUFFERED_CALLS: &str = "circuitbreaker_buffered_calls";
/// Name of the window's slow calls gauge.
pub const SLOW_CALLS: &str = "circuitbreaker_slow_calls";
/// Name of the failure rate gauge.
pub const FAILURE_RATE: &str = "circuitbreaker_failure_rate";
/// Name of the slow-call rate gauge.
pub const SLOW_CALL_RATE: &str = "circuitbreaker_slow_call_rate";

/// Calls counted since the breaker was built (every state but DISABLED).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallTotals {
    /// Calls that succeeded.
    pub successful: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Calls whose outcome was ignored.
    pub ignored: u64,
    /// Successful calls that were slow.
    pub slow_successful: u64,
    /// Failed calls that were slow.
    pub slow_failed: u64,
    /// Calls refused by the breaker.
    pub not_permitted: u64,
}

impl CallTotals {
    #[inline]
    pub(crate) fn count(&mut self, class: Classification, slow: bool) {
        match class {
            Classification::Success => {
                self.successful += 1;
                self.slow_successful += u64::from(slow);
            }
            Classification::Failure => {
                self.failed += 1;
                self.slow_failed += u64::from(slow);
            }
            Classification::Ignored => self.ignored += 1,
        }
    }

    /// The field-wise sum of two totals.
    pub(crate) fn merged(self, other: CallTotals) -> CallTotals {
        CallTotals {
            successful: self.successful + other.successful,
            failed: self.failed + other.failed,
            ignored: self.ignored + other.ignored,
            slow_successful: self.slow_successful + other.slow_successful,
            slow_failed: self.slow_failed + other.slow_failed,
            not_permitted: self.not_permitted + other.not_permitted,
        }
    }
}

/// A breaker's state and numbers at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    /// The breaker's name.
    pub name: String,
    /// The current state.
    pub state: State,
    /// Failure rate of the current window in percent; `None` until the window
    /// holds the minimum number of calls.
    pub failure_rate: Option<f32>,
    /// Slow-call rate of the current window in percent; `None` likewise.
    pub slow_call_rate: Option<f32>,
    /// Calls in the current window (the trial calls in HALF_OPEN).
    pub buffered_calls: u32,
    /// Of those, failed.
    pub failed_calls: u32,
    /// Of those, slow.
    pub slow_calls: u32,
    /// Of those, slow and failed.
    pub slow_failed_calls: u32,
    /// Counts since the breaker was built.
    pub totals: CallTotals,
}

/// One exported number: a metric name, its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// The metric name (one of this module's constants).
    pub name: &'static str,
    /// Labels besides `name`, such as `("kind", "failed")`.
    pub labels: Vec<(&'static str, &'static str)>,
    /// The value.
    pub value: f64,
}

impl MetricsSnapshot {
    /// Successful calls in the current window.
    pub fn successful_calls(&self) -> u32 {
        self.buffered_calls - self.failed_calls
    }

    /// The snapshot as metric samples, named as in the [module docs](self).
    pub fn samples(&self) -> Vec<MetricSample> {
        let sample = |name, labels: &[(&'static str, &'static str)], value: f64| MetricSample {
            name,
            labels: labels.to_vec(),
            value,
        };
        let rate = |r: Option<f32>| r.map_or(-1.0, f64::from);
        let t = &self.totals;
        let mut out: Vec<MetricSample> = State::all()
            .into_iter()
            .map(|s| {
                sample(
                    STATE,
                    &[("state", s.as_str())],
                    f64::from(u8::from(s == self.state)),
                )
            })
            .collect();
        out.extend([
            sample(CALLS_TOTAL, &[("kind", "successful")], t.successful as f64),
            sample(CALLS_TOTAL, &[("kind", "failed")], t.failed as f64),
            sample(CALLS_TOTAL, &[("kind", "ignored")], t.ignored as f64),
            sample(
                CALLS_TOTAL,
                &[("kind", "not_permitted")],
                t.not_permitted as f64,
            ),
            sample(
                SLOW_CALLS_TOTAL,
                &[("kind", "successful")],
                t.slow_successful as f64,
            ),
            sample(
                SLOW_CALLS_TOTAL,
                &[("kind", "failed")],
                t.slow_failed as f64,
            ),
            sample(
                BUFFERED_CALLS,
                &[("kind", "successful")],
                f64::from(self.successful_calls()),
            ),
            sample(
                BUFFERED_CALLS,
                &[("kind", "failed")],
                f64::from(self.failed_calls),
            ),
            sample(
                SLOW_CALLS,
                &[("kind", "successful")],
                f64::from(self.slow_calls - self.slow_failed_calls),
            ),
            sample(
                SLOW_CALLS,
                &[("kind", "failed")],
                f64::from(self.slow_failed_calls),
            ),
            sample(FAILURE_RATE, &[], rate(self.failure_rate)),
            sample(SLOW_CALL_RATE, &[], rate(self.slow_call_rate)),
        ]);
        out
    }
}
