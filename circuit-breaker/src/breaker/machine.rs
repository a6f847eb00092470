//! The pure core of the breaker: the state machine over a sliding window,
//! with an injected clock. It knows nothing of futures, locks or events: the
//! [`CircuitBreaker`](super::CircuitBreaker) wraps it in a mutex and acts on
//! the [`Effects`] it returns.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::config::{CircuitBreakerConfig, SlidingWindowType};
use super::window::{CountWindow, Counts, Outcome, Rates, TimeWindow, Window};
use super::{CallTotals, Classification};
use crate::clock::SharedClock;

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// Calls flow; outcomes are recorded; the breaker opens when a rate
    /// reaches its threshold.
    Closed = 0,
    /// Calls are refused until the wait duration has passed.
    Open = 1,
    /// A limited number of trial calls decide between CLOSED and OPEN.
    HalfOpen = 2,
    /// Calls flow; nothing is recorded and no event is emitted.
    Disabled = 3,
    /// Calls are refused until the state is changed by hand.
    ForcedOpen = 4,
    /// Calls flow; outcomes are recorded and events emitted, but the breaker
    /// never opens.
    MetricsOnly = 5,
}

impl State {
    const ALL: [State; 6] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::Disabled,
        State::ForcedOpen,
        State::MetricsOnly,
    ];

    /// The state's name as Resilience4j writes it, lower case (`half_open`),
    /// as used in the `state` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::Disabled => "disabled",
            State::ForcedOpen => "forced_open",
            State::MetricsOnly => "metrics_only",
        }
    }

    /// Every state, in declaration order.
    pub fn all() -> [State; 6] {
        Self::ALL
    }

    #[inline]
    pub(crate) fn from_code(code: u8) -> State {
        Self::ALL[usize::from(code % 6)]
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A move from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
}

/// Which threshold a window crossed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Exceeded {
    FailureRate(f32),
    SlowCallRate(f32),
}

/// What the caller of the core has to do after an operation: publish a
/// transition, report a threshold. Packed in one word (empty is 0) so the
/// common "nothing happened" travels in a register: bits 0-2 `from`, 3-5
/// `to`, bit 8 a transition is present, bits 9-10 which threshold, bits 32-63
/// the rate.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Effects(u64);

impl Effects {
    const TRANSITION: u64 = 1 << 8;
    const FAILURE_RATE: u64 = 1 << 9;
    const SLOW_CALL_RATE: u64 = 1 << 10;

    /// Nothing to do.
    pub(crate) const NONE: Effects = Effects(0);

    /// A transition happened (or none, for `None`).
    #[inline]
    pub(crate) fn moved(t: Option<Transition>) -> Self {
        match t {
            None => Self::NONE,
            Some(t) => Self(Self::TRANSITION | t.from as u64 | (t.to as u64) << 3),
        }
    }

    /// Adds a crossed threshold (or none).
    #[inline]
    pub(crate) fn and_exceeded(self, e: Option<Exceeded>) -> Self {
        match e {
            None => self,
            Some(Exceeded::FailureRate(r)) => {
                Self(self.0 | Self::FAILURE_RATE | u64::from(r.to_bits()) << 32)
            }
            Some(Exceeded::SlowCallRate(r)) => {
                Self(self.0 | Self::SLOW_CALL_RATE | u64::from(r.to_bits()) << 32)
            }
        }
    }

    #[inline]
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn transition(self) -> Option<Transition> {
        (self.0 & Self::TRANSITION != 0).then(|| Transition {
            from: State::from_code((self.0 & 0b111) as u8),
            to: State::from_code((self.0 >> 3 & 0b111) as u8),
        })
    }

    pub(crate) fn exceeded(self) -> Option<Exceeded> {
        let rate = f32::from_bits((self.0 >> 32) as u32);
        if self.0 & Self::FAILURE_RATE != 0 {
            Some(Exceeded::FailureRate(rate))
        } else if self.0 & Self::SLOW_CALL_RATE != 0 {
            Some(Exceeded::SlowCallRate(rate))
        } else {
            None
        }
    }
}

impl std::fmt::Debug for Effects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Effects")
            .field("transition", &self.transition())
            .field("exceeded", &self.exceeded())
            .finish()
    }
}

/// A permission to make one call, tied to the state episode (generation)
/// that granted it. Packed in one word so it travels in a register:
/// generation, then a bit for "records its outcome" (false in DISABLED) and
/// one for "holds a HALF_OPEN trial permit" (given back if cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admission(u64);

impl Admission {
    const RECORDS: u64 = 1;
    const TRIAL: u64 = 2;

    #[inline]
    pub(crate) fn new(generation: u64, records: bool, trial: bool) -> Self {
        let records = if records { Self::RECORDS } else { 0 };
        let trial = if trial { Self::TRIAL } else { 0 };
        Self((generation << 2) | records | trial)
    }

    #[inline]
    pub(crate) fn generation(self) -> u64 {
        self.0 >> 2
    }

    #[inline]
    pub(crate) fn records(self) -> bool {
        self.0 & Self::RECORDS != 0
    }

    #[inline]
    pub(crate) fn trial(self) -> bool {
        self.0 & Self::TRIAL != 0
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open {
        until: Instant,
    },
    HalfOpen {
        permits_left: u32,
        recorded: Counts,
        entered: Instant,
    },
    Disabled,
    ForcedOpen,
    MetricsOnly {
        above: bool,
    },
}

/// Layout of the state word: bits 0-2 the state code, bit 3 [`CLEAN`], the
/// rest the generation.
const STATE_MASK: u64 = 0b111;
/// Set in the state word while the state records into a count window that
/// is full and holds only fast successes: recording one more fast success
/// would evict a fast success, leaving the window as it is, so the hot path
/// may skip the lock and only count the call.
pub(crate) const CLEAN: u64 = 0b1000;
const GENERATION_SHIFT: u32 = 4;

/// Decodes a state word into state and generation.
#[inline]
pub(crate) fn decode(word: u64) -> (State, u64) {
    (
        State::from_code((word & STATE_MASK) as u8),
        word >> GENERATION_SHIFT,
    )
}

/// An uncapped OPEN wait that outgrows the clock ends in 30 years.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);

/// The state machine of one breaker.
#[derive(Debug)]
pub(crate) struct Machine {
    config: CircuitBreakerConfig,
    thresholds: Thresholds,
    /// State, [`CLEAN`] flag and generation, kept up to date.
    word: u64,
    phase: Phase,
    /// Consecutive openings: 1 when opened from CLOSED, one more for each
    /// re-opening from HALF_OPEN (grows the OPEN wait with a backoff).
    openings: u32,
    generation: u64,
    window: Window,
    /// When the time window's second 0 is.
    origin: Instant,
    totals: CallTotals,
    clock: SharedClock,
}

/// When a window's counts open the breaker, derived once from the
/// configuration; shared by the core and the lock-free path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    minimum_calls: u32,
    /// Calls in a full count window; 0 for a time window.
    full_window: u32,
    /// Fewest failed (slow) calls of a full count window that reach the
    /// failure (slow-call) threshold, by the same arithmetic as
    /// [`Counts::rates`], so the common check is an integer compare.
    full_window_failed_limit: u32,
    full_window_slow_limit: u32,
    failure_rate: f32,
    /// `None` when slow calls are not detected.
    slow_call_rate: Option<f32>,
}

impl Thresholds {
    pub(crate) fn new(config: &CircuitBreakerConfig) -> Self {
        let full_window = match config.sliding_window_type {
            SlidingWindowType::CountBased => config.sliding_window_size,
            SlidingWindowType::TimeBased => 0,
        };
        let limit = |threshold: f32| {
            (1..=full_window)
                .find(|&n| n as f32 * 100.0 / full_window as f32 >= threshold)
                .unwrap_or(u32::MAX)
        };
        let slow_call_rate = config
            .slow_call_duration_threshold
            .map(|_| config.slow_call_rate_threshold);
        Self {
            minimum_calls: config.effective_minimum_calls(),
            full_window,
            full_window_failed_limit: limit(config.failure_rate_threshold),
            full_window_slow_limit: slow_call_rate.map_or(u32::MAX, limit),
            failure_rate: config.failure_rate_threshold,
            slow_call_rate,
        }
    }

    /// Whether a count window is full of fast successes: one more fast
    /// success would leave it as it is.
    #[inline]
    pub(crate) fn is_clean(&self, counts: Counts) -> bool {
        self.full_window > 0
            && counts.calls() == self.full_window
            && counts.failed() == 0
            && counts.slow() == 0
    }

    /// Which threshold a closed window's counts reach, if any.
    #[inline]
    pub(crate) fn exceeded_by(&self, counts: Counts) -> Option<Exceeded> {
        if counts.failed() == 0 && counts.slow() == 0 {
            // Both thresholds are above 0: nothing to compute.
            return None;
        }
        if counts.calls() == self.full_window
            && counts.failed() < self.full_window_failed_limit
            && counts.slow() < self.full_window_slow_limit
        {
            return None;
        }
        self.exceeded(counts.rates(self.minimum_calls))
    }

    #[inline]
    fn exceeded(&self, rates: Option<Rates>) -> Option<Exceeded> {
        let rates = rates?;
        if rates.failure >= self.failure_rate {
            Some(Exceeded::FailureRate(rates.failure))
        } else if self.slow_call_rate.is_some_and(|t| rates.slow >= t) {
            Some(Exceeded::SlowCallRate(rates.slow))
        } else {
            None
        }
    }
}

impl Machine {
    pub(crate) fn new(config: CircuitBreakerConfig, clock: SharedClock) -> Self {
        let window = match config.sliding_window_type {
            SlidingWindowType::CountBased => {
                Window::Count(Arc::new(CountWindow::new(config.sliding_window_size)))
            }
            SlidingWindowType::TimeBased => {
                Window::Time(TimeWindow::new(config.sliding_window_size))
            }
        };
        Self {
            thresholds: Thresholds::new(&config),
            word: State::Closed as u64,
            config,
            phase: Phase::Closed,
            openings: 0,
            generation: 0,
            window,
            origin: clock.now(),
            totals: CallTotals::default(),
            clock,
        }
    }

    /// The count window, shared with the lock-free path; `None` for a time
    /// window.
    pub(crate) fn count_window(&self) -> Option<Arc<CountWindow>> {
        match &self.window {
            Window::Count(w) => Some(w.clone()),
            Window::Time(_) => None,
        }
    }

    pub(crate) fn state(&self) -> State {
        match self.phase {
            Phase::Closed => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
            Phase::Disabled => State::Disabled,
            Phase::ForcedOpen => State::ForcedOpen,
            Phase::MetricsOnly { .. } => State::MetricsOnly,
        }
    }

    /// State and generation in one word, for the lock-free fast path.
    #[inline]
    pub(crate) fn word(&self) -> u64 {
        self.word
    }

    /// Asks for a permit. The fast path handles CLOSED, METRICS_ONLY and
    /// DISABLED without the core; this handles every state.
    pub(crate) fn acquire(&mut self) -> (Option<Admission>, Effects) {
        let mut effects = Effects::NONE;
        let generation = self.generation;
        let open = |records| Admission::new(generation, records, false);
        match self.phase {
            Phase::Closed | Phase::MetricsOnly { .. } => (Some(open(true)), effects),
            Phase::Disabled => (Some(open(false)), effects),
            Phase::ForcedOpen => (None, effects),
            Phase::Open { until } => {
                if self.clock.now() < until {
                    return (None, effects);
                }
                effects = Effects::moved(Some(self.enter(State::HalfOpen)));
                (self.take_trial_permit(), effects)
            }
            Phase::HalfOpen { entered, .. } => {
                if self.half_open_expired(entered) {
                    effects = Effects::moved(Some(self.enter(State::Open)));
                    return (None, effects);
                }
                (self.take_trial_permit(), effects)
            }
        }
    }

    fn half_open_expired(&self, entered: Instant) -> bool {
        self.config
            .max_wait_duration_in_half_open_state
            .is_some_and(|max| self.clock.now() >= entered + max)
    }

    fn take_trial_permit(&mut self) -> Option<Admission> {
        let Phase::HalfOpen { permits_left, .. } = &mut self.phase else {
            return None;
        };
        if *permits_left == 0 {
            return None;
        }
        *permits_left -= 1;
        Some(Admission::new(self.generation, true, true))
    }

    /// Gives back the permit of a call that was cancelled before its outcome
    /// was known.
    pub(crate) fn release(&mut self, admission: Admission) {
        if admission.trial()
            && admission.generation() == self.generation
            && let Phase::HalfOpen { permits_left, .. } = &mut self.phase
        {
            *permits_left += 1;
        }
    }

    /// Records the outcome of a call admitted by `admission`. `now` is the
    /// time the call ended when the caller already read it; `slow` whether it
    /// took longer than the slow-call threshold. Outcomes of calls admitted in
    /// an earlier state episode count in the totals only.
    #[inline]
    pub(crate) fn record(
        &mut self,
        admission: Admission,
        class: Classification,
        slow: bool,
        now: Option<Instant>,
    ) -> Effects {
        if admission.generation() != self.generation {
            self.totals.count(class, slow);
            return Effects::NONE;
        }
        let failed = match class {
            Classification::Success => false,
            Classification::Failure => true,
            Classification::Ignored => {
                self.totals.count(class, slow);
                self.release(admission);
                return Effects::NONE;
            }
        };
        let outcome = Outcome::new(failed, slow);
        if self.word & STATE_MASK == State::Closed as u64 {
            // The common case first, as a plain compare (the phase's own
            // discriminant compiles to a jump table).
            let counts = self.record_in_window(class, outcome, slow, now);
            return match self.thresholds.exceeded_by(counts) {
                None => Effects::NONE,
                Some(exceeded) => {
                    Effects::moved(Some(self.enter(State::Open))).and_exceeded(Some(exceeded))
                }
            };
        }
        match &mut self.phase {
            Phase::Closed => Effects::NONE,
            Phase::MetricsOnly { .. } => {
                let counts = self.record_in_window(class, outcome, slow, now);
                let exceeded = self.thresholds.exceeded_by(counts);
                let Phase::MetricsOnly { above } = &mut self.phase else {
                    return Effects::NONE;
                };
                let newly = exceeded.is_some() && !*above;
                *above = exceeded.is_some();
                Effects::NONE.and_exceeded(exceeded.filter(|_| newly))
            }
            Phase::HalfOpen { recorded, .. } => {
                self.totals.count(class, slow);
                recorded.add(outcome);
                let recorded = *recorded;
                let permitted = self.config.permitted_number_of_calls_in_half_open_state;
                match recorded.rates(permitted) {
                    None => Effects::NONE,
                    Some(rates) => match self.thresholds.exceeded(Some(rates)) {
                        Some(exceeded) => Effects::moved(Some(self.enter(State::Open)))
                            .and_exceeded(Some(exceeded)),
                        None => Effects::moved(Some(self.enter(State::Closed))),
                    },
                }
            }
            Phase::Open { .. } | Phase::Disabled | Phase::ForcedOpen => {
                self.totals.count(class, slow);
                Effects::NONE
            }
        }
    }

    /// After the lock-free path recorded a call of `admission`'s CLOSED
    /// episode into the count window: updates the [`CLEAN`] flag from the
    /// window's counts now and opens when they reach a threshold.
    pub(crate) fn reconcile(&mut self, admission: Admission) -> Effects {
        if admission.generation() != self.generation || !matches!(self.phase, Phase::Closed) {
            return Effects::NONE;
        }
        let Window::Count(w) = &self.window else {
            return Effects::NONE;
        };
        let counts = w.counts();
        self.mark_clean(counts);
        match self.thresholds.exceeded_by(counts) {
            None => Effects::NONE,
            Some(exceeded) => {
                Effects::moved(Some(self.enter(State::Open))).and_exceeded(Some(exceeded))
            }
        }
    }

    /// Clears [`CLEAN`] if the count window no longer is (a lock-free
    /// recorder added a failure after the flag was computed); returns the
    /// word.
    pub(crate) fn recheck_clean(&mut self) -> u64 {
        if let Window::Count(w) = &self.window {
            self.mark_clean(w.counts());
        }
        self.word
    }

    #[inline]
    fn mark_clean(&mut self, counts: Counts) {
        let clean = self.thresholds.is_clean(counts);
        self.word = self.word & !CLEAN | if clean { CLEAN } else { 0 };
    }

    /// Records into the closed window; a count window keeps its own totals.
    #[inline(always)]
    fn record_in_window(
        &mut self,
        class: Classification,
        outcome: Outcome,
        slow: bool,
        now: Option<Instant>,
    ) -> Counts {
        let counts = match &mut self.window {
            Window::Count(w) => w.record(outcome).unwrap_or_else(|| w.counts()),
            Window::Time(w) => {
                self.totals.count(class, slow);
                let now = now.unwrap_or_else(|| self.clock.now());
                w.record(
                    now.saturating_duration_since(self.origin).as_secs(),
                    outcome,
                )
            }
        };
        self.mark_clean(counts);
        counts
    }

    /// Enters `to`, starting a new episode (even when `to` is the current
    /// state: that restarts it).
    pub(crate) fn enter(&mut self, to: State) -> Transition {
        let from = self.state();
        self.generation += 1;
        self.word = self.generation << GENERATION_SHIFT | to as u64;
        self.phase = match to {
            State::Closed => {
                self.window.reset();
                Phase::Closed
            }
            State::Open => {
                self.openings = match from {
                    State::HalfOpen => self.openings.saturating_add(1),
                    _ => 1,
                };
                let base = self.config.wait_duration_in_open_state;
                let wait = match self.config.open_wait_backoff {
                    Some(b) => b.wait(base, self.openings),
                    None => base,
                };
                let now = self.clock.now();
                Phase::Open {
                    until: now.checked_add(wait).unwrap_or(now + FAR_FUTURE),
                }
            }
            State::HalfOpen => Phase::HalfOpen {
                permits_left: self.config.permitted_number_of_calls_in_half_open_state,
                recorded: Counts::default(),
                entered: self.clock.now(),
            },
            State::Disabled => Phase::Disabled,
            State::ForcedOpen => Phase::ForcedOpen,
            State::MetricsOnly => {
                self.window.reset();
                Phase::MetricsOnly { above: false }
            }
        };
        Transition { from, to }
    }

    /// When the current episode wants a timer to fire, and the generation it
    /// belongs to: the end of the OPEN wait (with automatic transition) or
    /// the end of the longest HALF_OPEN stay.
    pub(crate) fn timer(&self) -> Option<(Instant, u64)> {
        let at = match self.phase {
            Phase::Open { until }
                if self
                    .config
                    .automatic_transition_from_open_to_half_open_enabled =>
            {
                until
            }
            Phase::HalfOpen { entered, .. } => {
                entered + self.config.max_wait_duration_in_half_open_state?
            }
            _ => return None,
        };
        Some((at, self.generation))
    }

    /// A timer armed for `generation` fired.
    pub(crate) fn on_timer(&mut self, generation: u64) -> Option<Transition> {
        if generation != self.generation {
            return None;
        }
        match self.phase {
            Phase::Open { until } if self.clock.now() >= until => Some(self.enter(State::HalfOpen)),
            Phase::HalfOpen { entered, .. } if self.half_open_expired(entered) => {
                Some(self.enter(State::Open))
            }
            _ => None,
        }
    }

    /// Counts and rates of the current episode's window: the closed window
    /// in CLOSED, OPEN and METRICS_ONLY, the trial calls in HALF_OPEN.
    pub(crate) fn window_counts(&mut self) -> (Counts, Option<Rates>) {
        if let Phase::HalfOpen { recorded, .. } = self.phase {
            let permitted = self.config.permitted_number_of_calls_in_half_open_state;
            return (recorded, recorded.rates(permitted));
        }
        let counts = match &mut self.window {
            Window::Count(w) => w.counts(),
            Window::Time(w) => {
                let second = self
                    .clock
                    .now()
                    .saturating_duration_since(self.origin)
                    .as_secs();
                w.counts_at(second)
            }
        };
        (counts, counts.rates(self.thresholds.minimum_calls))
    }

    /// Totals of every call recorded, the count window's included.
    pub(crate) fn totals(&self) -> CallTotals {
        match &self.window {
            Window::Count(w) => self.totals.merged(w.totals()),
            Window::Time(_) => self.totals,
        }
    }

    /// How long until an OPEN breaker lets trial calls through.
    pub(crate) fn remaining_open_wait(&self) -> Option<Duration> {
        match self.phase {
            Phase::Open { until } => Some(until.saturating_duration_since(self.clock.now())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    fn machine(config: CircuitBreakerConfig) -> (Machine, ManualClock) {
        let clock = ManualClock::new();
        (Machine::new(config, Arc::new(clock.clone())), clock)
    }

    fn small() -> CircuitBreakerConfig {
        CircuitBreakerConfig {
            sliding_window_size: 4,
            minimum_number_of_calls: 4,
            permitted_number_of_calls_in_half_open_state: 2,
            wait_duration_in_open_state: Duration::from_secs(10),
            ..Default::default()
        }
    }

    fn call(m: &mut Machine, class: Classification) -> Effects {
        let (admission, _) = m.acquire();
        m.record(admission.unwrap(), class, false, None)
    }

    #[test]
    fn opens_when_failure_rate_reaches_threshold_after_minimum_calls() {
        let (mut m, _) = machine(small());
        call(&mut m, Classification::Failure);
        call(&mut m, Classification::Failure);
        call(&mut m, Classification::Success);
        assert_eq!(m.state(), State::Closed);
        let effects = call(&mut m, Classification::Success);
        assert_eq!(
            effects.transition(),
            Some(Transition {
                from: State::Closed,
                to: State::Open
            })
        );
        assert_eq!(effects.exceeded(), Some(Exceeded::FailureRate(50.0)));
    }

    #[test]
    fn stale_outcome_from_an_earlier_episode_is_not_recorded() {
        let (mut m, _) = machine(small());
        let (old, _) = m.acquire();
        m.enter(State::ForcedOpen);
        m.enter(State::Closed);
        let effects = m.record(old.unwrap(), Classification::Failure, false, None);
        assert!(effects.is_empty());
        assert_eq!(m.window_counts().0.calls(), 0);
        assert_eq!(m.totals().failed, 1);
    }

    #[test]
    fn half_open_admits_exactly_its_permits_and_closes_on_success() {
        let (mut m, clock) = machine(small());
        m.enter(State::Open);
        assert!(m.acquire().0.is_none());
        clock.advance(Duration::from_secs(10));
        let (a, effects) = m.acquire();
        assert_eq!(effects.transition().map(|t| t.to), Some(State::HalfOpen));
        let (b, _) = m.acquire();
        assert!(m.acquire().0.is_none(), "a third trial call is refused");
        m.record(a.unwrap(), Classification::Success, false, None);
        let effects = m.record(b.unwrap(), Classification::Success, false, None);
        assert_eq!(effects.transition().map(|t| t.to), Some(State::Closed));
    }

    #[test]
    fn ignored_and_cancelled_trial_calls_give_their_permit_back() {
        let (mut m, clock) = machine(small());
        m.enter(State::Open);
        clock.advance(Duration::from_secs(10));
        let (a, _) = m.acquire();
        let (b, _) = m.acquire();
        m.record(a.unwrap(), Classification::Ignored, false, None);
        m.release(b.unwrap());
        assert!(m.acquire().0.is_some());
        assert!(m.acquire().0.is_some());
        assert!(m.acquire().0.is_none());
    }

    #[test]
    fn each_failed_trial_round_lengthens_the_open_wait_until_closing_resets_it() {
        let (mut m, clock) = machine(CircuitBreakerConfig {
            open_wait_backoff: Some(super::super::OpenWaitBackoff {
                multiplier: 2.0,
                max_wait: Some(Duration::from_secs(30)),
            }),
            ..small()
        });
        let mut waits = Vec::new();
        m.enter(State::Open);
        for round in 0..4 {
            waits.push(m.remaining_open_wait().unwrap().as_secs());
            clock.advance(m.remaining_open_wait().unwrap());
            let class = if round < 3 {
                Classification::Failure
            } else {
                Classification::Success
            };
            call(&mut m, class);
            call(&mut m, class);
        }
        assert_eq!(waits, [10, 20, 30, 30]);
        assert_eq!(m.state(), State::Closed);
        m.enter(State::Open);
        assert_eq!(m.remaining_open_wait(), Some(Duration::from_secs(10)));
    }

    proptest::proptest! {
        #[test]
        fn a_full_window_opens_exactly_when_the_float_rate_reaches_the_threshold(
            size in 1u32..60,
            failed_permille in 0u32..=1000,
            threshold in 0.5f32..=100.0,
        ) {
            let failed = size * failed_permille / 1000;
            let (mut m, _) = machine(CircuitBreakerConfig {
                sliding_window_size: size,
                minimum_number_of_calls: size,
                failure_rate_threshold: threshold,
                ..Default::default()
            });
            for i in 0..size {
                let class = if i < failed { Classification::Failure } else { Classification::Success };
                call(&mut m, class);
            }
            let want = failed > 0 && failed as f32 * 100.0 / size as f32 >= threshold;
            proptest::prop_assert_eq!(m.state() == State::Open, want);
        }
    }
}
