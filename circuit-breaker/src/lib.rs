//! Resilience policies for async calls, with Resilience4j's semantics:
//! a [`CircuitBreaker`], [`Retry`] with backoff and a [`RetryBudget`], a
//! [`Bulkhead`] and a [`TimeLimiter`]. Each guards any `async` call
//! (`policy.call(|| async { ... })`) and is also a `tower::Layer`. The crate
//! knows nothing of HTTP.
//!
//! ```
//! use circuit_breaker::{CallError, CircuitBreaker};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let breaker = CircuitBreaker::with_defaults("inventory");
//! let stock = match breaker.call(|| async { Ok::<u32, std::io::Error>(7) }).await {
//!     Ok(n) => n,
//!     Err(CallError::NotPermitted(_)) => 0, // open: serve a fallback
//!     Err(other) => panic!("{other}"),
//! };
//! assert_eq!(stock, 7);
//! # }
//! ```
//!
//! # The circuit breaker
//!
//! CLOSED records outcomes in a sliding window: count-based (the last N
//! calls) or time-based (the last N seconds, one bucket per second). Once
//! the window holds `minimum_number_of_calls`, a failure rate (or a slow-call
//! rate, when `slow_call_duration_threshold` is set) at or above its threshold
//! opens the breaker. OPEN refuses calls with [`CallNotPermitted`] for
//! `wait_duration_in_open_state` (or, with an [`OpenWaitBackoff`], a wait
//! that grows each time the breaker re-opens), then HALF_OPEN admits
//! `permitted_number_of_calls_in_half_open_state` trial calls whose rates
//! decide between CLOSED and OPEN. DISABLED, FORCED_OPEN and METRICS_ONLY
//! are entered by hand with [`CircuitBreaker::transition_to`]. A
//! [`Classifier`] decides per outcome whether a call succeeded, failed or is
//! ignored.
//!
//! Where we differ from Resilience4j, on purpose:
//! - calls are timed only when `slow_call_duration_threshold` is set (it is
//!   unset by default), which keeps the clock off the hot path;
//! - an outcome is recorded only in the state episode that admitted the call:
//!   a slow call admitted while CLOSED cannot spend a HALF_OPEN trial slot
//!   (a call whose recording races with a move out of CLOSED and back may
//!   land in the new CLOSED window: CLOSED records without a lock);
//! - a count-based window holds at most 16384 calls (its counts are packed
//!   in one atomic word);
//! - a cancelled call (its future dropped) records nothing and gives its
//!   HALF_OPEN trial permit back, so HALF_OPEN cannot get stuck.
//!
//! Observe a breaker with [`CircuitBreaker::subscribe`] ([`EventKind`] has
//! Resilience4j's event types) and [`CircuitBreaker::metrics`], whose
//! [`MetricsSnapshot::samples`] are named after Resilience4j's Micrometer
//! metrics, labelled `name="<breaker>"`: `circuitbreaker_state{state}`,
//! `circuitbreaker_calls_total{kind=successful|failed|ignored|not_permitted}`,
//! `circuitbreaker_slow_calls_total{kind}`, `circuitbreaker_buffered_calls{kind}`,
//! `circuitbreaker_slow_calls{kind}`, `circuitbreaker_failure_rate` and
//! `circuitbreaker_slow_call_rate` (see [`metrics`] for each one's meaning).
//! A [`Registry`] builds named breakers, retries, bulkheads and time
//! limiters from a YAML (or any serde) document shaped like Resilience4j's
//! Spring Boot properties, durations included (`10s`, `500ms`, `PT10S`).
//! Resilience4j's `recordExceptions` / `ignoreExceptions` lists name Java
//! classes; here a [`Classifier`] decides per outcome, in code, so those
//! keys are accepted and ignored.
//!
//! The closed-state overhead is a few nanoseconds per call and takes no
//! lock: admitting is one atomic load, and recording into a count window is
//! a CAS on its cursor, plus a slot swap and one `fetch_add` on packed
//! counts when the outcome differs from the one it evicts (figures against
//! `recloser` and `failsafe` in `docs/benchmarks.md`).
//!
//! # Composition
//!
//! The documented order is `Retry(CircuitBreaker(Bulkhead(TimeLimiter(call))))`;
//! [`Pipeline`] applies it to async calls and says why. With tower, list
//! the layers outermost first:
//!
//! ```
//! use std::time::Duration;
//! use circuit_breaker::*;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new()
//!     .layer(RetryLayer::new(Retry::new(RetryConfig::default()).expect("valid")))
//!     .layer(CircuitBreakerLayer::new(CircuitBreaker::with_defaults("users")))
//!     .layer(BulkheadLayer::new(Bulkhead::new("users", BulkheadConfig::default()).expect("valid")))
//!     .layer(TimeLimiterLayer::new(TimeLimiter::new(Duration::from_secs(1))))
//!     .service_fn(|id: u32| async move { Ok::<_, std::io::Error>(format!("user {id}")) });
//! assert_eq!(svc.oneshot(7).await.expect("answered"), "user 7");
//! # }
//! ```
//!
//! In the tower form every policy error is a [`tower::BoxError`]; recognise
//! ours with `downcast_ref::<CallNotPermitted>()`, [`BulkheadFull`] or
//! [`Elapsed`].
//!
//! # Layout
//!
//! - [`breaker`]: the circuit breaker. `breaker/window.rs` holds the sliding
//!   windows (the lock-free count ring and the per-second buckets),
//!   `breaker/machine.rs` the state machine (pure, clock-injected),
//!   `breaker/mod.rs` the thread-safe handle and its hot path,
//!   `breaker/shard.rs` the per-thread success counter of that path;
//!   `classify`, `event`, [`metrics`], `config` and the tower `layer` beside it.
//! - [`retry`]: the retry loop, `backoff` arithmetic, the `budget`, its layer.
//! - [`bulkhead`] and [`time_limiter`]: each policy with its layer;
//!   `time_limiter/deadlines.rs` is [`time_limiter::Deadlines`], one ticker
//!   task for the deadlines of many calls (cloud-client's attempts, the
//!   gateway's response timeouts).
//! - [`pipeline`]: the four composed in order.
//! - [`registry`]: named policies from serde configuration (`layered.rs`
//!   the `configs`/`instances` layering, `settings.rs` each policy's keys);
//!   [`humane_duration`] parses `"10s"`, `"500ms"` and `"PT10S"` durations.
//! - [`clock`]: the [`Clock`] trait, [`TokioClock`] and [`ManualClock`].
//! - [`error`]: [`CallNotPermitted`], [`BulkheadFull`], [`Elapsed`], [`CallError`].
//!
//! `benches/closed_overhead.rs` measures the closed-state overhead against
//! the `recloser` and `failsafe` crates; `examples/` has a guarded call with
//! fallback and the four policies composed.

pub mod breaker;
pub mod bulkhead;
pub mod clock;
pub mod error;
pub use cloud_runtime::duration as humane_duration;
pub mod pipeline;
pub mod registry;
pub mod retry;
pub mod time_limiter;

use std::future::Future;
use std::pin::Pin;

pub use breaker::{
    CallTotals, CircuitBreaker, CircuitBreakerBuilder, CircuitBreakerConfig, CircuitBreakerLayer,
    CircuitBreakerService, Classification, Classifier, ConfigError, ErrorsAreFailures, Event,
    EventKind, EventStream, LocalRejectionsIgnored, MetricSample, MetricsSnapshot, OpenWaitBackoff,
    OwnedPermit, Permit, SlidingWindowType, State, Transition, metrics,
};
pub use bulkhead::{Bulkhead, BulkheadConfig, BulkheadLayer, BulkheadPermit, BulkheadService};
pub use clock::{Clock, ManualClock, TokioClock};
pub use error::{BulkheadFull, CallError, CallNotPermitted, Elapsed};
pub use pipeline::Pipeline;
pub use registry::{
    BreakerSettings, BulkheadSettings, PolicyConfigs, Registry, RegistryConfig, ResilienceConfig,
    RetrySettings, Settings, TimeLimiterSettings,
};
pub use retry::{
    Backoff, Retry, RetryBudget, RetryConfig, RetryLayer, RetryOnError, RetryPredicate,
    RetryService, RetryUnlessRejected,
};
pub use time_limiter::{TimeLimiter, TimeLimiterLayer, TimeLimiterService};

/// The future of every tower service in this crate: boxed, with errors as
/// [`tower::BoxError`].
pub type ResponseFuture<T> =
    Pin<Box<dyn Future<Output = Result<T, tower::BoxError>> + Send + 'static>>;
