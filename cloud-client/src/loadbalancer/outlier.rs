//! Outlier ejection, as Envoy's `consecutive_5xx` / `consecutive_gateway_failure`:
//! an endpoint with `consecutive_failures` connect failures or 5xx answers
//! in a row is left out of picks for `base_ejection_time` times the number
//! of times it has been ejected (capped at `max_ejection_time`), then
//! comes back on its own.

use std::time::Duration;

/// Outlier ejection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierConfig {
    /// Failures in a row that eject an endpoint; 0 turns ejection off.
    /// Default is 5 (Envoy's `consecutive_5xx`).
    pub consecutive_failures: u32,
    /// First ejection's length. Default is 30 seconds (Envoy's).
    pub base_ejection_time: Duration,
    /// Longest ejection. Default is 300 seconds (Envoy's).
    pub max_ejection_time: Duration,
    /// Most endpoints ejected at once, in percent of the pool; at least
    /// one may always be ejected, and the last one never is. Default is 50.
    pub max_ejection_percent: u8,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 50,
        }
    }
}

impl OutlierConfig {
    /// No ejection.
    pub fn disabled() -> Self {
        OutlierConfig {
            consecutive_failures: 0,
            ..OutlierConfig::default()
        }
    }

    /// How long the `n`-th ejection (1 for the first) lasts.
    pub fn ejection_time(&self, n: u32) -> Duration {
        self.base_ejection_time
            .saturating_mul(n.max(1))
            .min(self.max_ejection_time)
    }

    /// How many of `pool` endpoints may be ejected at once.
    pub fn max_ejected(&self, pool: usize) -> usize {
        if pool <= 1 {
            return 0;
        }
        let by_percent = pool * usize::from(self.max_ejection_percent.min(100)) / 100;
        by_percent.max(1).min(pool - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejections_grow_linearly_up_to_the_cap() {
        let c = OutlierConfig::default();
        let secs: Vec<u64> = [1, 2, 3, 20]
            .iter()
            .map(|n| c.ejection_time(*n).as_secs())
            .collect();
        assert_eq!(secs, [30, 60, 90, 300]);
    }

    #[test]
    fn the_last_endpoint_is_never_ejected() {
        let c = OutlierConfig::default();
        assert_eq!(c.max_ejected(1), 0);
        assert_eq!(c.max_ejected(2), 1);
        assert_eq!(c.max_ejected(3), 1);
        assert_eq!(c.max_ejected(10), 5);
        let all = OutlierConfig {
            max_ejection_percent: 100,
            ..c
        };
        assert_eq!(all.max_ejected(4), 3);
    }
}
