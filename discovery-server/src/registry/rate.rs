//! Renewals counted over the last minute, lock-free: sixty one-second
//! buckets, each tagged with the second it counts.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

const BUCKETS: usize = 60;

/// The span the counter covers, in milliseconds.
pub(crate) const WINDOW_MILLIS: i64 = BUCKETS as i64 * 1000;

/// A sliding one-minute counter.
#[derive(Debug)]
pub(crate) struct MinuteRate {
    counts: [AtomicU64; BUCKETS],
    seconds: [AtomicI64; BUCKETS],
}

impl MinuteRate {
    pub(crate) fn new() -> MinuteRate {
        MinuteRate {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            seconds: std::array::from_fn(|_| AtomicI64::new(i64::MIN)),
        }
    }

    /// Counts one event at `now_millis`.
    pub(crate) fn increment(&self, now_millis: i64) {
        let second = now_millis.div_euclid(1000);
        let i = second.rem_euclid(BUCKETS as i64) as usize;
        let tagged = self.seconds[i].load(Ordering::Acquire);
        if tagged != second
            && self.seconds[i]
                .compare_exchange(tagged, second, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // This thread moved the bucket to a new second: restart it. A
            // concurrent increment between the two stores may be lost, which
            // a rate used for a threshold can afford.
            self.counts[i].store(0, Ordering::Release);
        }
        self.counts[i].fetch_add(1, Ordering::AcqRel);
    }

    /// Events counted in the sixty seconds up to `now_millis`.
    pub(crate) fn last_minute(&self, now_millis: i64) -> u64 {
        let now = now_millis.div_euclid(1000);
        (0..BUCKETS)
            .filter(|&i| {
                let s = self.seconds[i].load(Ordering::Acquire);
                s > now - BUCKETS as i64 && s <= now
            })
            .map(|i| self.counts[i].load(Ordering::Acquire))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_the_last_sixty_seconds() {
        let r = MinuteRate::new();
        r.increment(1_000);
        r.increment(1_500);
        r.increment(30_000);
        assert_eq!(r.last_minute(30_000), 3);
        assert_eq!(r.last_minute(60_999), 3);
        assert_eq!(r.last_minute(61_000), 1);
        // The bucket of second 1 is reused at second 61 and restarts.
        r.increment(61_200);
        assert_eq!(r.last_minute(61_200), 2);
        assert_eq!(r.last_minute(200_000), 0);
    }
}
