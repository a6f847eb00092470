//! Retry: up to `max_attempts` tries with exponential backoff and jitter, a
//! predicate on the outcome, and an optional [`RetryBudget`].

mod backoff;
mod budget;
mod layer;

use std::future::Future;
use std::sync::Arc;

pub use backoff::Backoff;
pub use budget::RetryBudget;
pub use layer::{RetryLayer, RetryService, RetryUnlessRejected};

use crate::breaker::ConfigError;

/// Decides from an outcome whether to try again. Any
/// `Fn(Result<&T, &E>) -> bool` is one.
pub trait RetryPredicate<T: ?Sized, E: ?Sized> {
    /// Whether this outcome deserves another attempt.
    fn should_retry(&self, outcome: Result<&T, &E>) -> bool;
}

impl<T: ?Sized, E: ?Sized, F> RetryPredicate<T, E> for F
where
    F: Fn(Result<&T, &E>) -> bool,
{
    fn should_retry(&self, outcome: Result<&T, &E>) -> bool {
        self(outcome)
    }
}

/// The default predicate: retry every `Err`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryOnError;

impl<T: ?Sized, E: ?Sized> RetryPredicate<T, E> for RetryOnError {
    fn should_retry(&self, outcome: Result<&T, &E>) -> bool {
        outcome.is_err()
    }
}

/// Configuration of a [`Retry`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Attempts in all, the first included. Default is 3.
    pub max_attempts: u32,
    /// Delays between attempts.
    pub backoff: Backoff,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::default(),
        }
    }
}

/// Retries failed calls. Cheap to clone; clones share the budget.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use circuit_breaker::{Retry, RetryConfig};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let retry = Retry::new(RetryConfig::default()).expect("valid config");
/// let tries = AtomicU32::new(0);
/// let result = retry
///     .call(|| async {
///         if tries.fetch_add(1, Ordering::Relaxed) < 1 { Err("flaky") } else { Ok(42) }
///     })
///     .await;
/// assert_eq!(result, Ok(42));
/// assert_eq!(tries.load(Ordering::Relaxed), 2);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Retry {
    config: RetryConfig,
    budget: Option<Arc<RetryBudget>>,
}

impl Retry {
    /// A retry policy without a budget.
    pub fn new(config: RetryConfig) -> Result<Self, ConfigError> {
        if config.max_attempts == 0 {
            return Err(ConfigError::OutOfRange {
                field: "max_attempts",
                expected: "at least 1",
                got: "0".into(),
            });
        }
        if !config.backoff.is_valid() {
            return Err(ConfigError::OutOfRange {
                field: "backoff",
                expected: "multiplier >= 1, jitter in [0, 1], initial <= max",
                got: format!("{:?}", config.backoff),
            });
        }
        Ok(Self {
            config,
            budget: None,
        })
    }

    /// Draws retries from `budget`; when it is spent, the last outcome is
    /// returned without retrying.
    pub fn with_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// Calls `f` until it succeeds, the attempts run out or the budget is
    /// spent; returns the last outcome.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_if(&RetryOnError, f).await
    }

    /// Like [`call`](Self::call), retrying only outcomes `predicate` accepts
    /// (which may be `Ok` values, such as an HTTP 503 response).
    pub async fn call_if<P, F, Fut, T, E>(&self, predicate: &P, f: F) -> Result<T, E>
    where
        P: RetryPredicate<T, E> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(|r: &Result<T, E>| predicate.should_retry(r.as_ref()), f)
            .await
    }

    /// The retry loop, over any result type.
    pub(crate) async fn run<R, P, F, Fut>(&self, should_retry: P, mut f: F) -> R
    where
        P: Fn(&R) -> bool,
        F: FnMut() -> Fut,
        Fut: Future<Output = R>,
    {
        self.begin();
        let mut attempt = 1;
        loop {
            let outcome = f().await;
            match self.delay_after(attempt, should_retry(&outcome)) {
                None => return outcome,
                Some(delay) => tokio::time::sleep(delay).await,
            }
            attempt += 1;
        }
    }

    /// Starts a call: pays its deposit into the budget.
    pub(crate) fn begin(&self) {
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
    }

    /// After attempt `attempt` (1 for the first) whose outcome `wants_retry`:
    /// the delay before the next attempt, or `None` to stop (attempts used
    /// up, outcome not retried, or budget spent).
    pub(crate) fn delay_after(
        &self,
        attempt: u32,
        wants_retry: bool,
    ) -> Option<std::time::Duration> {
        if attempt >= self.config.max_attempts || !wants_retry {
            return None;
        }
        if let Some(budget) = &self.budget
            && !budget.try_withdraw()
        {
            tracing::debug!(attempt, "retry budget spent; not retrying");
            return None;
        }
        let delay = self.config.backoff.delay(attempt, rand::random::<f64>());
        tracing::debug!(attempt, ?delay, "retrying");
        Some(delay)
    }
}
