//! The circuit breaker: [`CircuitBreaker`], a cheap-to-clone handle on one
//! breaker, its permits, and its `tower` layer.
//!
//! # The hot path
//!
//! Admitting a call in CLOSED (or METRICS_ONLY, DISABLED) is one atomic load
//! of the state word. Recording an outcome in CLOSED with a count window
//! takes no lock: the window is a lock-free ring (`window.rs`) where a call
//! moves a cursor with one CAS and, only when its outcome differs from the
//! one it evicts, swaps its slot and adds a precomputed delta to packed
//! counts; the threshold check is an integer compare on the counts that add
//! returned. Only a call whose counts reach a threshold (or make the window
//! clean) takes the `parking_lot` mutex, to decide on the counts of that
//! moment. While a count window is full of fast successes the state word
//! carries a CLEAN flag, and another fast success, which would only evict a
//! fast success, just bumps a per-thread counter shard: no shared write at
//! all. Other states and time windows record under the mutex. The clock is
//! read only when slow-call detection is configured or the window is
//! time-based.

mod classify;
mod config;
mod event;
mod layer;
mod machine;
pub mod metrics;
mod shard;
mod window;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tokio::time::Instant;

pub use classify::{Classification, Classifier, ErrorsAreFailures};
pub use config::{CircuitBreakerConfig, ConfigError, OpenWaitBackoff, SlidingWindowType};
pub use event::{Event, EventKind, EventStream};
pub use layer::{CircuitBreakerLayer, CircuitBreakerService, LocalRejectionsIgnored};
pub use machine::{State, Transition};
pub use metrics::{CallTotals, MetricSample, MetricsSnapshot};

use crate::clock::{Clock, SharedClock, TokioClock};
use crate::error::{CallError, CallNotPermitted};
use event::Publisher;
use machine::{Admission, CLEAN, Effects, Exceeded, Machine, Thresholds};
use shard::ShardedCounter;
use window::{CountWindow, Outcome};

// `CacheLine` keeps the read-mostly state word, the mutex and the count
// window's cursor (written by most calls) off each other's cache lines.
use cloud_runtime::shard::CacheLine;

#[derive(Debug)]
struct Inner {
    /// State code, [`CLEAN`] flag and generation, read without the lock.
    word: CacheLine<AtomicU64>,
    machine: CacheLine<Mutex<Machine>>,
    /// The count window, recorded into without the lock in CLOSED.
    count_window: Option<Arc<CountWindow>>,
    thresholds: Thresholds,
    /// Successes that skipped the lock because the window was clean.
    fast_successes: ShardedCounter,
    not_permitted: AtomicU64,
    name: Arc<str>,
    config: CircuitBreakerConfig,
    clock: SharedClock,
    events: Publisher,
}

/// A circuit breaker (Resilience4j semantics). Cloning is cheap and clones
/// share the breaker.
///
/// ```
/// use circuit_breaker::{CallError, CircuitBreaker, State};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let breaker = CircuitBreaker::builder("inventory")
///     .sliding_window_size(4)
///     .minimum_number_of_calls(4)
///     .build()
///     .expect("valid config");
/// for _ in 0..4 {
///     let _ = breaker.call(|| async { Err::<(), _>("upstream down") }).await;
/// }
/// assert_eq!(breaker.state(), State::Open);
/// let refused = breaker.call(|| async { Ok::<_, &str>(1) }).await;
/// assert!(matches!(refused, Err(CallError::NotPermitted(_))));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

/// Builds a [`CircuitBreaker`]; every setter documents its default.
#[derive(Debug)]
pub struct CircuitBreakerBuilder {
    name: Arc<str>,
    config: CircuitBreakerConfig,
    clock: SharedClock,
}

macro_rules! config_setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, value: $ty) -> Self {
                self.config.$field = value;
                self
            }
        )*
    };
}

impl CircuitBreakerBuilder {
    config_setters! {
        /// Failure rate in percent at or above which the breaker opens. Default is 50.
        failure_rate_threshold: f32;
        /// Slow-call rate in percent at or above which the breaker opens. Default is 100.
        slow_call_rate_threshold: f32;
        /// Count- or time-based window. Default is count-based.
        sliding_window_type: SlidingWindowType;
        /// Window size in calls or seconds. Default is 100.
        sliding_window_size: u32;
        /// Calls needed before a rate is computed. Default is 100.
        minimum_number_of_calls: u32;
        /// Time spent OPEN before trial calls. Default is 60 seconds.
        wait_duration_in_open_state: Duration;
        /// Leave OPEN on a timer rather than on the next call. Default is false.
        automatic_transition_from_open_to_half_open_enabled: bool;
        /// Trial calls in HALF_OPEN. Default is 10.
        permitted_number_of_calls_in_half_open_state: u32;
    }

    /// Calls longer than this are slow; setting it turns on call timing.
    /// Default is unset (calls are not timed).
    pub fn slow_call_duration_threshold(mut self, value: Duration) -> Self {
        self.config.slow_call_duration_threshold = Some(value);
        self
    }

    /// Grows the OPEN wait on each re-opening. Default is unset (constant wait).
    pub fn open_wait_backoff(mut self, value: OpenWaitBackoff) -> Self {
        self.config.open_wait_backoff = Some(value);
        self
    }

    /// Longest stay in HALF_OPEN. Default is unset (wait for the trial calls).
    pub fn max_wait_duration_in_half_open_state(mut self, value: Duration) -> Self {
        self.config.max_wait_duration_in_half_open_state = Some(value);
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: CircuitBreakerConfig) -> Self {
        self.config = config;
        self
    }

    /// The time source. Default is [`TokioClock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub(crate) fn shared_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configuration and builds the breaker, CLOSED.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        self.config.validate()?;
        let machine = Machine::new(self.config.clone(), self.clock.clone());
        Ok(CircuitBreaker {
            inner: Arc::new(Inner {
                word: CacheLine(AtomicU64::new(0)),
                count_window: machine.count_window(),
                thresholds: Thresholds::new(&self.config),
                machine: CacheLine(Mutex::new(machine)),
                fast_successes: ShardedCounter::default(),
                not_permitted: AtomicU64::new(0),
                name: self.name,
                config: self.config,
                clock: self.clock,
                events: Publisher::new(),
            }),
        })
    }
}

/// Permission to make one call. Report its outcome with
/// [`record`](Self::record) (or the shorthands); a permit dropped without an
/// outcome counts as a cancelled call: nothing is recorded and a HALF_OPEN
/// trial permit is given back.
#[derive(Debug)]
#[must_use = "a permit records nothing unless its outcome is reported"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    admission: Admission,
    started: Option<Instant>,
}

impl Permit<'_> {
    /// Reports the call's outcome.
    #[inline]
    pub fn record(self, class: Classification) {
        let this = std::mem::ManuallyDrop::new(self);
        this.breaker.record(this.admission, this.started, class);
    }

    /// Reports a success.
    #[inline]
    pub fn success(self) {
        self.record(Classification::Success);
    }

    /// Reports a failure.
    #[inline]
    pub fn failure(self) {
        self.record(Classification::Failure);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker.release(self.admission);
    }
}

/// A [`Permit`] that owns a handle on its breaker, for futures that must be
/// `'static` (the tower service).
#[derive(Debug)]
#[must_use = "a permit records nothing unless its outcome is reported"]
pub struct OwnedPermit {
    breaker: CircuitBreaker,
    admission: Admission,
    started: Option<Instant>,
    done: bool,
}

impl OwnedPermit {
    /// Reports the call's outcome.
    pub fn record(mut self, class: Classification) {
        self.done = true;
        self.breaker.record(self.admission, self.started, class);
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.release(self.admission);
        }
    }
}

impl CircuitBreaker {
    /// A builder for a breaker named `name`, with Resilience4j's defaults.
    pub fn builder(name: impl Into<Arc<str>>) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            name: name.into(),
            config: CircuitBreakerConfig::default(),
            clock: Arc::new(TokioClock::new()),
        }
    }

    /// A breaker named `name` with `config`, on the [`TokioClock`].
    pub fn new(
        name: impl Into<Arc<str>>,
        config: CircuitBreakerConfig,
    ) -> Result<Self, ConfigError> {
        Self::builder(name).config(config).build()
    }

    /// A breaker with Resilience4j's defaults.
    pub fn with_defaults(name: impl Into<Arc<str>>) -> Self {
        Self::builder(name)
            .build()
            .expect("the default configuration is valid")
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The breaker's configuration.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.inner.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        machine::decode(self.inner.word.0.load(Ordering::Acquire)).0
    }

    /// Asks for permission to make one call.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, CallNotPermitted> {
        let admission = match self.admit_fast() {
            Some(admission) => admission,
            None => self.admit_slow()?,
        };
        Ok(Permit {
            breaker: self,
            admission,
            started: self.start_timer(),
        })
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that holds its
    /// own handle on the breaker.
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, CallNotPermitted> {
        let admission = self.admit()?;
        Ok(OwnedPermit {
            breaker: self.clone(),
            admission,
            started: self.start_timer(),
            done: false,
        })
    }

    /// Runs the async call `f` if permitted; `Err` outcomes count as failures.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(&ErrorsAreFailures, f).await
    }

    /// Runs the async call `f` if permitted, classifying its outcome with
    /// `classifier`.
    pub async fn call_with<C, F, Fut, T, E>(&self, classifier: &C, f: F) -> Result<T, CallError<E>>
    where
        C: Classifier<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire()?;
        let result = f().await;
        permit.record(classifier.classify(result.as_ref()));
        result.map_err(CallError::Inner)
    }

    /// Runs the blocking call `f` if permitted; `Err` outcomes count as
    /// failures.
    #[inline]
    pub fn call_sync<F, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Result<T, E>,
    {
        self.call_sync_with(&ErrorsAreFailures, f)
    }

    /// Runs the blocking call `f` if permitted, classifying its outcome with
    /// `classifier`.
    #[inline]
    pub fn call_sync_with<C, F, T, E>(&self, classifier: &C, f: F) -> Result<T, CallError<E>>
    where
        C: Classifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, E>,
    {
        let permit = self.try_acquire()?;
        let result = f();
        permit.record(classifier.classify(result.as_ref()));
        result.map_err(CallError::Inner)
    }

    /// Guards a future whose errors may already come from inner policies:
    /// a time limiter's [`Elapsed`](crate::Elapsed) counts as a failure, a
    /// bulkhead's rejection is ignored (the upstream never saw the call).
    pub(crate) async fn guard<C, Fut, T, E>(
        &self,
        classifier: &C,
        fut: Fut,
    ) -> Result<T, CallError<E>>
    where
        C: Classifier<T, E> + ?Sized,
        Fut: Future<Output = Result<T, CallError<E>>>,
    {
        let permit = self.try_acquire()?;
        let result = fut.await;
        let class = match &result {
            Ok(v) => classifier.classify(Ok(v)),
            Err(CallError::Inner(e)) => classifier.classify(Err(e)),
            Err(CallError::Elapsed(_)) => Classification::Failure,
            Err(CallError::NotPermitted(_) | CallError::BulkheadFull(_)) => Classification::Ignored,
        };
        permit.record(class);
        result
    }

    /// Subscribes to state transitions and call outcomes. Outcome events are
    /// built only while someone subscribes.
    pub fn subscribe(&self) -> EventStream {
        self.inner.events.subscribe()
    }

    /// The breaker's state and numbers now.
    pub fn metrics(&self) -> MetricsSnapshot {
        let (state, (counts, rates), mut totals) = {
            let mut m = self.machine();
            (m.state(), m.window_counts(), m.totals())
        };
        totals.not_permitted = self.inner.not_permitted.load(Ordering::Relaxed);
        totals.successful += self.inner.fast_successes.sum();
        MetricsSnapshot {
            name: self.inner.name.to_string(),
            state,
            failure_rate: rates.map(|r| r.failure),
            slow_call_rate: rates.map(|r| r.slow),
            buffered_calls: counts.calls(),
            failed_calls: counts.failed(),
            slow_calls: counts.slow(),
            slow_failed_calls: counts.slow_failed(),
            totals,
        }
    }

    /// How long until an OPEN breaker admits trial calls; `None` when not OPEN.
    pub fn remaining_open_wait(&self) -> Option<Duration> {
        self.machine().remaining_open_wait()
    }

    /// Moves the breaker to `state` by hand (Resilience4j's
    /// `transitionTo...State`). Entering a state starts it afresh: CLOSED and
    /// METRICS_ONLY with an empty window, OPEN with a full wait, HALF_OPEN
    /// with all its trial permits.
    pub fn transition_to(&self, state: State) {
        self.apply(|m| Effects::moved(Some(m.enter(state))));
    }

    /// Back to CLOSED with an empty window; emits [`EventKind::Reset`].
    pub fn reset(&self) {
        self.transition_to(State::Closed);
        self.inner.events.send(&self.inner.name, EventKind::Reset);
    }

    #[inline]
    fn admit(&self) -> Result<Admission, CallNotPermitted> {
        match self.admit_fast() {
            Some(admission) => Ok(admission),
            None => self.admit_slow(),
        }
    }

    /// Admits without the lock in the states that admit every call.
    #[inline]
    fn admit_fast(&self) -> Option<Admission> {
        let word = self.inner.word.0.load(Ordering::Acquire);
        let (state, generation) = machine::decode(word);
        match state {
            State::Closed | State::MetricsOnly => Some(Admission::new(generation, true, false)),
            State::Disabled => Some(Admission::new(generation, false, false)),
            State::Open | State::HalfOpen | State::ForcedOpen => None,
        }
    }

    #[cold]
    fn admit_slow(&self) -> Result<Admission, CallNotPermitted> {
        let mut admission = None;
        self.apply(|m| {
            let (a, effects) = m.acquire();
            admission = a;
            effects
        });
        admission.ok_or_else(|| {
            self.inner.not_permitted.fetch_add(1, Ordering::Relaxed);
            self.inner
                .events
                .send(&self.inner.name, EventKind::NotPermitted);
            CallNotPermitted::new(self.inner.name.clone())
        })
    }

    #[inline]
    fn start_timer(&self) -> Option<Instant> {
        self.inner
            .config
            .slow_call_duration_threshold
            .map(|_| self.inner.clock.now())
    }

    #[inline]
    fn record(&self, admission: Admission, started: Option<Instant>, class: Classification) {
        if !admission.records() {
            return;
        }
        let (now, elapsed, slow) = match (started, self.inner.config.slow_call_duration_threshold) {
            (Some(started), Some(threshold)) => {
                let now = self.inner.clock.now();
                let elapsed = now.saturating_duration_since(started);
                (Some(now), Some(elapsed), elapsed > threshold)
            }
            _ => (None, None, false),
        };
        let word = self.inner.word.0.load(Ordering::Acquire);
        let outcome = Outcome::new(class == Classification::Failure, slow);
        if class == Classification::Success && !slow && word & CLEAN != 0 {
            self.inner.fast_successes.increment();
        } else if let Some(window) = &self.inner.count_window
            && class != Classification::Ignored
            && machine::decode(word) == (State::Closed, admission.generation())
        {
            self.record_lock_free(window, admission, outcome);
        } else {
            self.record_locked(admission, class, slow, now);
        }
        if self.inner.events.wanted() {
            let kind = match class {
                Classification::Success => EventKind::Success { elapsed },
                Classification::Failure => EventKind::Error { elapsed },
                Classification::Ignored => EventKind::IgnoredError { elapsed },
            };
            self.inner.events.send(&self.inner.name, kind);
        }
    }

    /// Records into the count window of the CLOSED episode that admitted the
    /// call. A call admitted just before a transition may land in the next
    /// CLOSED episode's window (a stale outcome, at most one per call in
    /// flight); the locked path would have dropped it.
    #[inline]
    fn record_lock_free(&self, window: &CountWindow, admission: Admission, outcome: Outcome) {
        let Some(counts) = window.record(outcome) else {
            return;
        };
        let t = &self.inner.thresholds;
        // The SeqCst add in `record` and this SeqCst load pair with the store
        // and re-read in `apply`: either we see CLEAN set or `apply` sees
        // our outcome, so the flag never outlives a failure.
        let clean_flag_stale =
            !outcome.is_fast_success() && self.inner.word.0.load(Ordering::SeqCst) & CLEAN != 0;
        if clean_flag_stale || t.is_clean(counts) || t.exceeded_by(counts).is_some() {
            self.apply(|m| m.reconcile(admission));
        }
    }

    fn record_locked(
        &self,
        admission: Admission,
        class: Classification,
        slow: bool,
        now: Option<Instant>,
    ) {
        self.apply(|m| m.record(admission, class, slow, now));
    }

    #[inline]
    fn release(&self, admission: Admission) {
        if admission.trial() {
            self.machine().release(admission);
        }
    }

    /// The core, locked.
    #[inline]
    fn machine(&self) -> MutexGuard<'_, Machine> {
        self.inner.machine.0.lock()
    }

    /// Runs `op` on the core under the lock, publishes the new state word,
    /// then acts on the effects outside the lock.
    #[inline]
    fn apply(&self, op: impl FnOnce(&mut Machine) -> Effects) {
        let (effects, timer) = {
            let mut m = self.machine();
            let effects = op(&mut m);
            let word = m.word();
            // Written only on change: the word stays shared in every core's cache.
            if self.inner.word.0.load(Ordering::Relaxed) != word {
                self.inner.word.0.store(word, Ordering::SeqCst);
                // A lock-free recorder may have added a failure after the
                // window was read (see `record_lock_free`).
                if word & CLEAN != 0 {
                    let word = m.recheck_clean();
                    if word & CLEAN == 0 {
                        self.inner.word.0.store(word, Ordering::SeqCst);
                    }
                }
            }
            let timer = if effects.is_empty() {
                None
            } else {
                effects.transition().and_then(|_| m.timer())
            };
            (effects, timer)
        };
        if !effects.is_empty() {
            self.publish(effects, timer);
        }
    }

    #[cold]
    fn publish(&self, effects: Effects, timer: Option<(Instant, u64)>) {
        let name = &self.inner.name;
        if let Some(exceeded) = effects.exceeded() {
            let kind = match exceeded {
                Exceeded::FailureRate(rate) => EventKind::FailureRateExceeded { rate },
                Exceeded::SlowCallRate(rate) => EventKind::SlowCallRateExceeded { rate },
            };
            tracing::debug!(breaker = %name, ?kind, "circuit breaker threshold exceeded");
            self.inner.events.send(name, kind);
        }
        if let Some(t) = effects.transition() {
            tracing::info!(breaker = %name, from = %t.from, to = %t.to, "circuit breaker state transition");
            self.inner.events.send(
                name,
                EventKind::StateTransition {
                    from: t.from,
                    to: t.to,
                },
            );
        }
        if let Some((at, generation)) = timer {
            self.arm_timer(at, generation);
        }
    }

    /// Fires [`Machine::on_timer`] at `at` on the current tokio runtime; with
    /// no runtime the move happens on the next call instead.
    fn arm_timer(&self, at: Instant, generation: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            tokio::time::sleep_until(at).await;
            if let Some(inner) = weak.upgrade() {
                let breaker = CircuitBreaker { inner };
                breaker.apply(|m| Effects::moved(m.on_timer(generation)));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(b: &CircuitBreaker) -> bool {
        b.inner.word.0.load(Ordering::Relaxed) & CLEAN != 0
    }

    #[test]
    fn a_full_window_of_fast_successes_takes_the_lock_free_path() {
        let b = CircuitBreaker::builder("clean")
            .sliding_window_size(4)
            .minimum_number_of_calls(4)
            .build()
            .unwrap();
        for _ in 0..3 {
            b.try_acquire().unwrap().success();
        }
        assert!(!clean(&b), "not full yet");
        b.try_acquire().unwrap().success();
        assert!(clean(&b));
        for _ in 0..10 {
            b.try_acquire().unwrap().success();
        }
        assert_eq!(b.inner.fast_successes.sum(), 10);
        b.try_acquire().unwrap().failure();
        assert!(!clean(&b), "a failure makes the window dirty");
        let m = b.metrics();
        assert_eq!((m.buffered_calls, m.failed_calls), (4, 1));
        assert_eq!(m.totals.successful, 14);
    }
}
