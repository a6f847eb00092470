//! Sliding windows over call outcomes: the last N calls (a ring) or the last
//! N seconds (one bucket per second). Pure arithmetic, no clock: the caller
//! passes the current second.

/// The outcome of one recorded call, as two bits: bit 0 failed, bit 1 slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome(u8);

impl Outcome {
    const FAILED: u8 = 1;
    const SLOW: u8 = 2;

    /// The outcome of a call that failed or not, and was slow or not.
    #[inline]
    pub(crate) fn new(failed: bool, slow: bool) -> Self {
        Self(u8::from(failed) | (u8::from(slow) << 1))
    }

    #[inline]
    fn failed(self) -> u32 {
        u32::from(self.0 & Self::FAILED)
    }

    #[inline]
    fn slow(self) -> u32 {
        u32::from((self.0 & Self::SLOW) >> 1)
    }
}

/// Aggregated counts over a window, packed as four 32-bit lanes of one
/// `u128` (calls, failed, slow, slow and failed). Updates are single wide
/// additions, and the value is always stored and loaded whole: updating four
/// narrow fields and reading them back as one value stalls on store
/// forwarding, which showed in the hot path. Lanes never carry into each
/// other: each is a count of recorded calls, at most the window's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts(u128);

impl Counts {
    const LANE: u32 = 32;
    const MASK: u128 = u32::MAX as u128;

    /// Counts from their four parts.
    #[cfg(test)]
    pub(crate) fn new(calls: u32, failed: u32, slow: u32, slow_failed: u32) -> Self {
        Self(
            u128::from(calls)
                | (u128::from(failed) << Self::LANE)
                | (u128::from(slow) << (2 * Self::LANE))
                | (u128::from(slow_failed) << (3 * Self::LANE)),
        )
    }

    /// Calls recorded (ignored calls are never recorded).
    #[inline]
    pub(crate) fn calls(self) -> u32 {
        (self.0 & Self::MASK) as u32
    }

    /// Of those, failed.
    #[inline]
    pub(crate) fn failed(self) -> u32 {
        ((self.0 >> Self::LANE) & Self::MASK) as u32
    }

    /// Of those, slower than the slow-call threshold.
    #[inline]
    pub(crate) fn slow(self) -> u32 {
        ((self.0 >> (2 * Self::LANE)) & Self::MASK) as u32
    }

    /// Of those, slow and failed.
    #[inline]
    pub(crate) fn slow_failed(self) -> u32 {
        (self.0 >> (3 * Self::LANE)) as u32
    }

    /// The lanes one outcome adds.
    #[inline]
    fn of(o: Outcome) -> u128 {
        let (failed, slow) = (u128::from(o.failed()), u128::from(o.slow()));
        1 | (failed << Self::LANE)
            | (slow << (2 * Self::LANE))
            | ((failed & slow) << (3 * Self::LANE))
    }

    #[inline]
    pub(crate) fn add(&mut self, o: Outcome) {
        self.0 += Self::of(o);
    }

    /// Swaps one recorded outcome for another (the number of calls stays).
    #[inline]
    fn replace(&mut self, old: Outcome, new: Outcome) {
        self.0 = self.0 - Self::of(old) + Self::of(new);
    }

    #[inline]
    fn sub_counts(&mut self, other: &Counts) {
        self.0 -= other.0;
    }

    /// Failure and slow-call rates in percent, once `calls >= minimum`
    /// (and at least one call), as Resilience4j computes them.
    #[inline]
    pub(crate) fn rates(&self, minimum: u32) -> Option<Rates> {
        let calls = self.calls();
        if calls == 0 || calls < minimum {
            return None;
        }
        let calls = calls as f32;
        Some(Rates {
            failure: self.failed() as f32 * 100.0 / calls,
            slow: self.slow() as f32 * 100.0 / calls,
        })
    }
}

/// Failure and slow-call rates, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rates {
    pub(crate) failure: f32,
    pub(crate) slow: f32,
}

/// The last `size` calls.
#[derive(Debug)]
pub(crate) struct CountWindow {
    ring: Box<[Outcome]>,
    head: usize,
    len: usize,
    counts: Counts,
}

impl CountWindow {
    /// A window over the last `size` calls (`size >= 1`).
    pub(crate) fn new(size: u32) -> Self {
        let size = size.max(1) as usize;
        Self {
            ring: vec![Outcome(0); size].into_boxed_slice(),
            head: 0,
            len: 0,
            counts: Counts::default(),
        }
    }

    /// Records one call, evicting the oldest once full; returns the new counts.
    #[inline]
    pub(crate) fn record(&mut self, o: Outcome) -> Counts {
        // Work on a copy held in registers: updating the fields in place and
        // then reading the struct back stalls on store forwarding.
        let mut counts = self.counts;
        let size = self.ring.len();
        let slot = &mut self.ring[self.head];
        if self.len == size {
            // Usually a success evicts a success: nothing to recount.
            if *slot != o {
                counts.replace(*slot, o);
            }
        } else {
            self.len += 1;
            counts.add(o);
        }
        *slot = o;
        self.head += 1;
        if self.head == size {
            self.head = 0;
        }
        self.counts = counts;
        counts
    }

    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }

    fn reset(&mut self) {
        self.head = 0;
        self.len = 0;
        self.counts = Counts::default();
    }
}

/// The calls of the last `size` seconds, in one bucket per second. A call at
/// second `s` counts while `now - s < size`.
#[derive(Debug, Clone)]
pub(crate) struct TimeWindow {
    buckets: Box<[Counts]>,
    /// The newest second the buckets have been moved to.
    head: u64,
    counts: Counts,
}

impl TimeWindow {
    /// A window over the last `size` seconds (`size >= 1`).
    pub(crate) fn new(size: u32) -> Self {
        let size = size.max(1) as usize;
        Self {
            buckets: vec![Counts::default(); size].into_boxed_slice(),
            head: 0,
            counts: Counts::default(),
        }
    }

    /// Moves the window to `second`, dropping buckets that fell out of it.
    /// A second older than the head (a clock that went back) counts as the head.
    fn advance(&mut self, second: u64) {
        if second <= self.head {
            return;
        }
        let size = self.buckets.len() as u64;
        // At most `size` seconds to clear: each bucket is visited once.
        let first = (self.head + 1).max(second.saturating_sub(size - 1));
        for s in first..=second {
            let bucket = &mut self.buckets[(s % size) as usize];
            self.counts.sub_counts(bucket);
            *bucket = Counts::default();
        }
        self.head = second;
    }

    /// Records one call at `second`; returns the counts of the window.
    pub(crate) fn record(&mut self, second: u64, o: Outcome) -> Counts {
        self.advance(second);
        let size = self.buckets.len() as u64;
        self.buckets[(self.head % size) as usize].add(o);
        let mut counts = self.counts;
        counts.add(o);
        self.counts = counts;
        counts
    }

    /// The counts of the window as of `second`.
    pub(crate) fn counts_at(&mut self, second: u64) -> Counts {
        self.advance(second);
        self.counts
    }

    fn reset(&mut self) {
        self.buckets.fill(Counts::default());
        self.head = 0;
        self.counts = Counts::default();
    }
}

/// One of the two window kinds.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn reset(&mut self) {
        match self {
            Self::Count(w) => w.reset(),
            Self::Time(w) => w.reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn outcome() -> impl Strategy<Value = Outcome> {
        (any::<bool>(), any::<bool>()).prop_map(|(f, s)| Outcome::new(f, s))
    }

    fn naive(outcomes: &[Outcome]) -> Counts {
        let mut c = Counts::default();
        for o in outcomes {
            c.add(*o);
        }
        c
    }

    #[test]
    fn count_window_evicts_the_oldest_call() {
        let mut w = CountWindow::new(2);
        w.record(Outcome::new(true, false));
        w.record(Outcome::new(false, true));
        let c = w.record(Outcome::new(false, false));
        assert_eq!(c, Counts::new(2, 0, 1, 0));
    }

    #[test]
    fn rates_wait_for_the_minimum_number_of_calls() {
        let mut c = Counts::default();
        c.add(Outcome::new(true, true));
        assert_eq!(c.rates(2), None);
        c.add(Outcome::new(false, false));
        let r = c.rates(2).unwrap();
        assert_eq!((r.failure, r.slow), (50.0, 50.0));
    }

    #[test]
    fn time_window_forgets_calls_older_than_its_size() {
        let mut w = TimeWindow::new(3);
        w.record(0, Outcome::new(true, false));
        w.record(2, Outcome::new(false, false));
        assert_eq!(w.counts_at(2).calls(), 2);
        assert_eq!(w.counts_at(3).calls(), 1);
        assert_eq!(w.counts_at(100).calls(), 0);
    }

    proptest! {
        #[test]
        fn count_window_matches_the_last_n_calls(
            size in 1u32..20,
            outcomes in proptest::collection::vec(outcome(), 0..200),
        ) {
            let mut w = CountWindow::new(size);
            for (i, o) in outcomes.iter().enumerate() {
                let got = w.record(*o);
                let from = (i + 1).saturating_sub(size as usize);
                let want = naive(&outcomes[from..=i]);
                prop_assert_eq!(got, want);
                prop_assert_eq!(got.rates(size.min(5)), want.rates(size.min(5)));
            }
        }

        #[test]
        fn time_window_matches_the_calls_of_the_last_n_seconds(
            size in 1u32..10,
            steps in proptest::collection::vec((0u64..4, outcome(), any::<bool>()), 0..200),
        ) {
            let mut w = TimeWindow::new(size);
            let mut now = 0u64;
            let mut log: Vec<(u64, Outcome)> = Vec::new();
            for (gap, o, jump) in steps {
                // Mostly small steps, sometimes a jump past the whole window.
                now += if jump && gap == 3 { u64::from(size) * 2 + 1 } else { gap };
                let got = w.record(now, o);
                log.push((now, o));
                let live: Vec<Outcome> = log
                    .iter()
                    .filter(|(s, _)| now - s < u64::from(size))
                    .map(|(_, o)| *o)
                    .collect();
                prop_assert_eq!(got, naive(&live));
                prop_assert_eq!(w.clone().counts_at(now + 1), naive(
                    &log.iter().filter(|(s, _)| now + 1 - s < u64::from(size)).map(|(_, o)| *o).collect::<Vec<_>>()
                ));
            }
        }
    }
}
