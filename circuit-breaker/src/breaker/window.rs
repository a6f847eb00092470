//! Sliding windows over call outcomes: the last N calls (a ring) or the last
//! N seconds (one bucket per second). Pure arithmetic, no clock: the caller
//! passes the current second.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use super::{CacheLine, CallTotals};

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

    /// A success that was not slow.
    #[inline]
    pub(crate) fn is_fast_success(self) -> bool {
        self.0 == 0
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

/// Largest count window: the ring's packed counts have 16-bit lanes, and
/// this leaves room for the transient excess of recorders in flight.
pub(crate) const MAX_COUNT_WINDOW: u32 = 1 << 14;

/// Slot value of a slot that holds no call yet; a call is `1 + outcome`.
const EMPTY: u8 = 0;

/// The ring's counts (calls, failed, slow, slow and failed) as four signed
/// 16-bit lanes of one `u64`, so that one `fetch_add` of a precomputed delta
/// (the new outcome's lanes minus the evicted one's, wrapping) updates them
/// all. Recorders apply their deltas in any order, so a lane may dip below 0
/// for a moment; read as signed lanes the packed sum stays exact.
fn lanes(slot: u8) -> u64 {
    if slot == EMPTY {
        return 0;
    }
    let o = Outcome(slot - 1);
    let (failed, slow) = (u64::from(o.failed()), u64::from(o.slow()));
    1 | failed << 16 | slow << 32 | (failed & slow) << 48
}

fn unpack(mut packed: u64) -> Counts {
    let mut lane = [0u32; 4];
    for l in &mut lane {
        let signed = packed as u16 as i16;
        *l = u32::try_from(signed).unwrap_or(0);
        packed = packed.wrapping_sub(signed as u64) >> 16;
    }
    Counts::new(lane[0], lane[1], lane[2], lane[3])
}

/// Where the next call goes: slot index in the low 16 bits, laps of the
/// ring above, so `laps * size + index` counts every call recorded.
const INDEX_BITS: u32 = 16;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;

/// The ring's counts and the totals of recorded outcomes other than plain
/// successes, on one cache line: a call that changes the window touches only
/// this line besides its slot.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Tally {
    counts: AtomicU64,
    failed: AtomicU64,
    slow_successful: AtomicU64,
    slow_failed: AtomicU64,
}

/// The last `size` calls, lock-free: a ring of one-byte slots, a cursor,
/// and packed counts. Recording a call moves the cursor (one CAS), reads its
/// slot, and only when the outcome differs from the evicted one swaps the
/// slot and adds the delta to the counts. Every swap accounts for exactly
/// the value it evicted, so at rest the counts equal the ring's content,
/// whatever the interleaving; calls recorded at the same moment may see
/// each other's effect late (never lost).
#[derive(Debug)]
pub(crate) struct CountWindow {
    cursor: CacheLine<AtomicU64>,
    tally: Tally,
    slots: Box<[AtomicU8]>,
}

impl CountWindow {
    /// A window over the last `size` calls (`1 <= size <= MAX_COUNT_WINDOW`).
    pub(crate) fn new(size: u32) -> Self {
        let size = size.clamp(1, MAX_COUNT_WINDOW) as usize;
        Self {
            cursor: CacheLine(AtomicU64::new(0)),
            tally: Tally::default(),
            slots: (0..size).map(|_| AtomicU8::new(EMPTY)).collect(),
        }
    }

    /// Takes the next slot.
    #[inline]
    fn advance(&self) -> usize {
        let last = self.slots.len() as u64 - 1;
        let mut cursor = self.cursor.0.load(Ordering::Relaxed);
        loop {
            let next = if cursor & INDEX_MASK == last {
                (cursor & !INDEX_MASK) + (1 << INDEX_BITS)
            } else {
                cursor + 1
            };
            match self.cursor.0.compare_exchange_weak(
                cursor,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (cursor & INDEX_MASK) as usize,
                Err(seen) => cursor = seen,
            }
        }
    }

    /// Records one call, evicting the oldest once full. Returns the new
    /// counts when the window changed, `None` when the call evicted an equal
    /// outcome (the common case: a success evicting a success).
    #[inline]
    pub(crate) fn record(&self, o: Outcome) -> Option<Counts> {
        if !o.is_fast_success() {
            self.count_total(o);
        }
        let slot = &self.slots[self.advance()];
        let new = o.0 + 1;
        if slot.load(Ordering::Relaxed) == new {
            return None;
        }
        let old = slot.swap(new, Ordering::Relaxed);
        if old == new {
            return None;
        }
        let delta = lanes(new).wrapping_sub(lanes(old));
        let packed = self.tally.counts.fetch_add(delta, Ordering::SeqCst);
        Some(unpack(packed.wrapping_add(delta)))
    }

    #[cold]
    fn count_total(&self, o: Outcome) {
        let total = match (o.failed() != 0, o.slow() != 0) {
            (true, false) => &self.tally.failed,
            (true, true) => {
                self.tally.failed.fetch_add(1, Ordering::Relaxed);
                &self.tally.slow_failed
            }
            (false, _) => &self.tally.slow_successful,
        };
        total.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub(crate) fn counts(&self) -> Counts {
        unpack(self.tally.counts.load(Ordering::SeqCst))
    }

    /// Totals of every call ever recorded (the window forgets, these do not).
    pub(crate) fn totals(&self) -> CallTotals {
        let cursor = self.cursor.0.load(Ordering::Relaxed);
        let recorded = (cursor >> INDEX_BITS)
            .wrapping_mul(self.slots.len() as u64)
            .wrapping_add(cursor & INDEX_MASK);
        let failed = self.tally.failed.load(Ordering::Relaxed);
        CallTotals {
            successful: recorded.saturating_sub(failed),
            failed,
            slow_successful: self.tally.slow_successful.load(Ordering::Relaxed),
            slow_failed: self.tally.slow_failed.load(Ordering::Relaxed),
            ..CallTotals::default()
        }
    }

    /// Empties the window (its totals stay). Safe against concurrent
    /// recorders: each slot is emptied by a swap whose evicted value is taken
    /// off the counts.
    fn reset(&self) {
        for slot in &self.slots {
            let old = slot.swap(EMPTY, Ordering::Relaxed);
            if old != EMPTY {
                self.tally.counts.fetch_sub(lanes(old), Ordering::SeqCst);
            }
        }
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
    Count(std::sync::Arc<CountWindow>),
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
        let w = CountWindow::new(2);
        w.record(Outcome::new(true, false));
        w.record(Outcome::new(false, true));
        let c = w.record(Outcome::new(false, false));
        assert_eq!(c, Some(Counts::new(2, 0, 1, 0)));
        assert_eq!(
            w.record(Outcome::new(false, true)),
            None,
            "slow evicts slow"
        );
        let t = w.totals();
        assert_eq!((t.successful, t.failed, t.slow_successful), (3, 1, 2));
        w.reset();
        assert_eq!(w.counts(), Counts::default());
    }

    #[test]
    fn packed_counts_read_right_while_a_lane_is_briefly_negative() {
        // A recorder evicted a failure and applied its delta before the
        // recorder that put the failure there applied its own.
        let evicted = lanes(1).wrapping_sub(lanes(2));
        let packed = (lanes(1) * 3).wrapping_add(evicted);
        assert_eq!(unpack(packed), Counts::new(3, 0, 0, 0), "failed is -1 here");
        assert_eq!(
            unpack(packed.wrapping_add(lanes(2))),
            Counts::new(4, 0, 0, 0)
        );
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
            let w = CountWindow::new(size);
            for (i, o) in outcomes.iter().enumerate() {
                let before = w.counts();
                let changed = w.record(*o);
                let got = w.counts();
                prop_assert_eq!(changed, (got != before).then_some(got));
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
