//! [`Pipeline`]: the four policies composed in the documented order,
//! `Retry(CircuitBreaker(Bulkhead(TimeLimiter(call))))`.
//!
//! Why this order:
//! - the time limiter is innermost, so each attempt has its own deadline and
//!   a timeout counts as a failure in the breaker;
//! - the bulkhead sits inside the breaker, so an open breaker refuses calls
//!   without taking a slot, and a full bulkhead (a local condition the
//!   upstream never saw) is ignored by the breaker;
//! - retry is outermost, so every attempt asks the breaker again and an open
//!   breaker or full bulkhead stops the retries at once.

use std::future::Future;

use crate::breaker::{CircuitBreaker, Classification, Classifier, ErrorsAreFailures};
use crate::bulkhead::Bulkhead;
use crate::error::CallError;
use crate::retry::Retry;
use crate::time_limiter::TimeLimiter;

/// Any subset of the four policies, applied in the documented order. Cheap
/// to clone.
///
/// ```
/// use std::time::Duration;
/// use circuit_breaker::{Bulkhead, BulkheadConfig, CircuitBreaker, Pipeline, Retry, RetryConfig, TimeLimiter};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pipeline = Pipeline::new()
///     .retry(Retry::new(RetryConfig::default()).expect("valid"))
///     .circuit_breaker(CircuitBreaker::with_defaults("search"))
///     .bulkhead(Bulkhead::new("search", BulkheadConfig::default()).expect("valid"))
///     .time_limiter(TimeLimiter::new(Duration::from_secs(2)));
/// let hits = pipeline.call(|| async { Ok::<_, std::io::Error>(vec!["rust"]) }).await;
/// assert_eq!(hits.expect("upstream answered"), vec!["rust"]);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    retry: Option<Retry>,
    breaker: Option<CircuitBreaker>,
    bulkhead: Option<Bulkhead>,
    time_limiter: Option<TimeLimiter>,
}

impl Pipeline {
    /// A pipeline with no policy (calls pass straight through).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the outermost retry.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Adds the circuit breaker.
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Adds the bulkhead.
    pub fn bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }

    /// Adds the innermost time limiter.
    pub fn time_limiter(mut self, time_limiter: TimeLimiter) -> Self {
        self.time_limiter = Some(time_limiter);
        self
    }

    /// The pipeline's breaker, if any.
    pub fn breaker(&self) -> Option<&CircuitBreaker> {
        self.breaker.as_ref()
    }

    /// Runs `f` through the policies; `Err` outcomes are failures and are
    /// retried.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(&ErrorsAreFailures, f).await
    }

    /// Runs `f` through the policies with `classifier` deciding both what the
    /// breaker records and what is retried: outcomes classified as failures
    /// (and timeouts) are retried; successes, ignored outcomes and local
    /// rejections are not.
    pub async fn call_with<C, F, Fut, T, E>(
        &self,
        classifier: &C,
        mut f: F,
    ) -> Result<T, CallError<E>>
    where
        C: Classifier<T, E> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let should_retry = |r: &Result<T, CallError<E>>| match r {
            Ok(v) => classifier.classify(Ok(v)) == Classification::Failure,
            Err(CallError::Inner(e)) => classifier.classify(Err(e)) == Classification::Failure,
            Err(CallError::Elapsed(_)) => true,
            Err(CallError::NotPermitted(_) | CallError::BulkheadFull(_)) => false,
        };
        if let Some(retry) = &self.retry {
            retry.begin();
        }
        let mut attempt = 1;
        loop {
            // `f` is called inside the policies: a refused attempt never starts the call.
            let outcome = self
                .attempt(classifier, async { f().await.map_err(CallError::Inner) })
                .await;
            let delay = match &self.retry {
                Some(retry) => retry.delay_after(attempt, should_retry(&outcome)),
                None => None,
            };
            match delay {
                None => return outcome,
                Some(delay) => tokio::time::sleep(delay).await,
            }
            attempt += 1;
        }
    }

    /// One attempt: breaker, bulkhead, time limiter.
    async fn attempt<C, Fut, T, E>(&self, classifier: &C, call: Fut) -> Result<T, CallError<E>>
    where
        C: Classifier<T, E> + ?Sized,
        Fut: Future<Output = Result<T, CallError<E>>>,
    {
        let limited = async {
            match &self.time_limiter {
                Some(limiter) => limiter.run(call).await,
                None => call.await,
            }
        };
        let isolated = async {
            match &self.bulkhead {
                Some(bulkhead) => bulkhead.run(limited).await,
                None => limited.await,
            }
        };
        match &self.breaker {
            Some(breaker) => breaker.guard(classifier, isolated).await,
            None => isolated.await,
        }
    }
}
