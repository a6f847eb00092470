//! Per-endpoint numbers, all atomics: requests in flight, the peak-EWMA
//! latency, consecutive failures and the ejection deadline. They outlive
//! pool updates (an endpoint that stays keeps its numbers).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Decay time of the latency average: an observation weighs `1/e` after
/// this long. 10 seconds, as tower's and Finagle's peak EWMA.
pub(crate) const DECAY_NS: f64 = 10_000_000_000.0;

/// Latency assumed before the first observation while a first call is in
/// flight: 1 ms.
pub(crate) const DEFAULT_RTT_NS: f64 = 1_000_000.0;

/// The numbers of one endpoint.
#[derive(Debug)]
pub(crate) struct EndpointStats {
    pub(crate) in_flight: AtomicU32,
    /// Peak-EWMA latency in nanoseconds, as `f64` bits.
    ewma_bits: AtomicU64,
    /// When the average was last updated (balancer clock, ns).
    ewma_at: AtomicU64,
    /// Whether any call has been timed yet.
    observed: AtomicBool,
    pub(crate) consecutive_failures: AtomicU32,
    /// Balancer clock (ns) until which the endpoint is ejected; 0 when not.
    pub(crate) ejected_until: AtomicU64,
    /// How many times it has been ejected (the back-off grows with it).
    pub(crate) ejections: AtomicU32,
}

impl Default for EndpointStats {
    fn default() -> Self {
        EndpointStats {
            in_flight: AtomicU32::new(0),
            ewma_bits: AtomicU64::new(DEFAULT_RTT_NS.to_bits()),
            ewma_at: AtomicU64::new(0),
            observed: AtomicBool::new(false),
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
        }
    }
}

impl EndpointStats {
    /// The peak-EWMA latency now, in ns.
    pub(crate) fn ewma(&self) -> f64 {
        f64::from_bits(self.ewma_bits.load(Ordering::Relaxed))
    }

    /// The load P2C compares: latency times (requests in flight + 1). An
    /// endpoint never timed and idle costs nothing, so a new instance gets
    /// a call as soon as it is drawn (its first answer then sets its
    /// average); without that, a known instance faster than the assumed
    /// 1 ms would keep all sequential traffic and the new one would never
    /// be timed.
    #[inline]
    pub(crate) fn cost(&self) -> f64 {
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        if in_flight == 0 && !self.observed.load(Ordering::Relaxed) {
            return 0.0;
        }
        self.ewma() * f64::from(in_flight + 1)
    }

    /// Records one latency observation at `now` (ns): a slower one replaces
    /// the average at once (the peak), a faster one decays it toward itself.
    ///
    /// Plain loads and stores, no read-modify-write: two observations that
    /// race may lose one of them, which a moving average shrugs off.
    #[inline]
    pub(crate) fn observe(&self, rtt_ns: f64, now: u64) {
        let prev = self.ewma();
        let at = self.ewma_at.load(Ordering::Relaxed);
        self.ewma_at.store(now, Ordering::Relaxed);
        let next = if self.observed.load(Ordering::Relaxed) {
            peak_ewma(prev, rtt_ns, now.saturating_sub(at))
        } else {
            rtt_ns
        };
        self.ewma_bits.store(next.to_bits(), Ordering::Relaxed);
        self.observed.store(true, Ordering::Relaxed);
    }
}

/// The peak-EWMA step, pure.
#[inline]
pub(crate) fn peak_ewma(prev: f64, rtt: f64, elapsed_ns: u64) -> f64 {
    if rtt > prev {
        rtt
    } else if elapsed_ns == 0 {
        prev
    } else {
        let w = (-(elapsed_ns as f64) / DECAY_NS).exp();
        prev * w + rtt * (1.0 - w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_answer_counts_at_once_and_fast_ones_decay_it() {
        assert_eq!(peak_ewma(1.0, 50.0, 0), 50.0);
        let after_a_moment = peak_ewma(50.0, 1.0, 1_000);
        assert!(after_a_moment > 49.9, "{after_a_moment}");
        let after_long = peak_ewma(50.0, 1.0, 100_000_000_000);
        assert!(after_long < 1.01, "{after_long}");
    }

    #[test]
    fn cost_grows_with_requests_in_flight() {
        let s = EndpointStats::default();
        assert_eq!(s.cost(), 0.0, "never timed and idle");
        s.observe(DEFAULT_RTT_NS, 1);
        let idle = s.cost();
        assert_eq!(idle, DEFAULT_RTT_NS);
        s.in_flight.fetch_add(1, Ordering::Relaxed);
        assert_eq!(s.cost(), 2.0 * idle);
    }
}
