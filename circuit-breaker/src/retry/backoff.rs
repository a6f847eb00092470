//! Exponential backoff with jitter: pure arithmetic, the random draw is an
//! argument.

use std::time::Duration;

/// Delay before the n-th retry: `initial * multiplier^(n-1)`, capped at `max`,
/// then spread by `±jitter` (Resilience4j's randomized exponential interval).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry. Default is 500 ms.
    pub initial: Duration,
    /// Growth per retry, at least 1. Default is 2.
    pub multiplier: f64,
    /// Largest delay before jitter. Default is 30 seconds.
    pub max: Duration,
    /// Spread in `[0, 1]`: a delay `d` becomes one in `[d(1-j), d(1+j)]`.
    /// Default is 0.5.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            multiplier: 2.0,
            max: Duration::from_secs(30),
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The delay before retry `retry` (1 for the first) without jitter.
    pub fn base(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        if secs < self.max.as_secs_f64() {
            Duration::try_from_secs_f64(secs).unwrap_or(self.max)
        } else {
            self.max
        }
    }

    /// The delay before retry `retry` with jitter, for a uniform draw
    /// `unit` in `[0, 1]`.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let base = self.base(retry).as_secs_f64();
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter + 2.0 * jitter * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64(base * factor)
    }

    /// Whether the values are in range.
    pub(crate) fn is_valid(&self) -> bool {
        self.multiplier >= 1.0 && (0.0..=1.0).contains(&self.jitter) && self.initial <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn delay_stays_within_jittered_bounds_of_the_capped_exponential(
            initial_ms in 1u64..2_000,
            multiplier in 1.0f64..4.0,
            max_ms in 2_000u64..120_000,
            jitter in 0.0f64..=1.0,
            retry in 1u32..200,
            unit in 0.0f64..=1.0,
        ) {
            let b = Backoff {
                initial: Duration::from_millis(initial_ms),
                multiplier,
                max: Duration::from_millis(max_ms),
                jitter,
            };
            let base = b.base(retry);
            prop_assert!(base <= b.max);
            prop_assert!(base >= b.initial);
            prop_assert!(b.base(retry + 1) >= base, "never shrinks");
            let d = b.delay(retry, unit).as_secs_f64();
            let lo = base.as_secs_f64() * (1.0 - jitter);
            let hi = base.as_secs_f64() * (1.0 + jitter);
            prop_assert!(d >= lo - 1e-9 && d <= hi + 1e-9, "{d} not in [{lo}, {hi}]");
        }
    }

    #[test]
    fn without_jitter_the_delay_doubles_until_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_millis(350),
            jitter: 0.0,
        };
        let delays: Vec<_> = (1..=4).map(|n| b.delay(n, 0.7)).collect();
        assert_eq!(
            delays,
            [100, 200, 350, 350].map(Duration::from_millis).to_vec()
        );
    }
}
