//! Eureka's `apps__hashcode`: counts of instances per status, written as
//! `STATUS_count_` pairs in alphabetical order of status (`DOWN_1_UP_5_`).

use std::fmt;

use super::status::InstanceStatus;

/// Instance counts per status, from which the apps hashcode is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppsHashcode {
    counts: [u64; 5],
}

impl AppsHashcode {
    /// Counts one more instance with `status`.
    pub fn add(&mut self, status: InstanceStatus) {
        self.counts[status.index()] += 1;
    }

    /// Counts one instance with `status` less (saturating at zero).
    pub fn remove(&mut self, status: InstanceStatus) {
        let c = &mut self.counts[status.index()];
        *c = c.saturating_sub(1);
    }

    /// How many instances have `status`.
    pub fn count(&self, status: InstanceStatus) -> u64 {
        self.counts[status.index()]
    }

    /// Total number of instances counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl fmt::Display for AppsHashcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for status in InstanceStatus::ALL_BY_NAME {
            let n = self.count(status);
            if n > 0 {
                write!(f, "{}_{}_", status.as_str(), n)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashcode_lists_statuses_alphabetically_with_trailing_delimiter() {
        let mut h = AppsHashcode::default();
        assert_eq!(h.to_string(), "");
        for _ in 0..5 {
            h.add(InstanceStatus::Up);
        }
        h.add(InstanceStatus::Down);
        h.add(InstanceStatus::OutOfService);
        assert_eq!(h.to_string(), "DOWN_1_OUT_OF_SERVICE_1_UP_5_");
        h.remove(InstanceStatus::Down);
        h.remove(InstanceStatus::Down);
        assert_eq!(h.to_string(), "OUT_OF_SERVICE_1_UP_5_");
        assert_eq!(h.total(), 6);
    }
}
