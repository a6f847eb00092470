//! The retry budget: a token bucket filled by calls and drained by retries,
//! so retries stay a bounded fraction of calls during an outage.

use std::sync::atomic::{AtomicU64, Ordering};

/// Tokens are counted in thousandths.
const UNIT: u64 = 1000;

/// Each call deposits `ratio` tokens (up to `burst`), each retry takes one.
/// Over any stretch of time, retries are at most `burst + ratio × calls`: with
/// `ratio = 0.2` an outage costs the upstream at most 1.2× the load, instead
/// of `max_attempts`×. Shared by all the [`Retry`](super::Retry) clones (and
/// can be shared across retries of one upstream).
///
/// ```
/// use circuit_breaker::RetryBudget;
///
/// let budget = RetryBudget::new(0.5, 1);
/// assert!(budget.try_withdraw());  // the burst allowance
/// assert!(!budget.try_withdraw());
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.try_withdraw());  // two calls earned one retry
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    per_call: u64,
    cap: u64,
    balance: AtomicU64,
}

impl RetryBudget {
    /// A budget allowing `ratio` retries per call (clamped to `[0, 1000]`)
    /// plus a reserve of `burst` retries, which it starts with and refills to.
    pub fn new(ratio: f64, burst: u32) -> Self {
        Self {
            per_call: (ratio.clamp(0.0, 1000.0) * UNIT as f64).round() as u64,
            // Room for at least one retry, so a zero burst still accumulates.
            cap: u64::from(burst.max(1)) * UNIT,
            balance: AtomicU64::new(u64::from(burst) * UNIT),
        }
    }

    /// Records a call (not a retry): adds `ratio` tokens.
    pub fn deposit(&self) {
        let cap = self.cap.max(self.per_call);
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b < cap).then(|| (b + self.per_call).min(cap))
            });
    }

    /// Takes one token for a retry; false when the budget is spent.
    pub fn try_withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                b.checked_sub(UNIT)
            })
            .is_ok()
    }

    /// Retries available now.
    pub fn available(&self) -> f64 {
        self.balance.load(Ordering::Relaxed) as f64 / UNIT as f64
    }
}
