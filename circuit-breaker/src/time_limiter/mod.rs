//! The time limiter: a deadline for a call; when it passes the call's future
//! is dropped (which cancels it) and the caller gets [`Elapsed`].

mod deadlines;
mod layer;

use std::future::Future;
use std::time::Duration;

pub use deadlines::{Deadline, Deadlines, RESOLUTION};
pub use layer::{TimeLimiterLayer, TimeLimiterService};

use crate::error::{CallError, Elapsed};

/// Puts a deadline on calls. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use circuit_breaker::{CallError, TimeLimiter};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let limiter = TimeLimiter::new(Duration::from_millis(10));
/// let slow = limiter
///     .call(|| async {
///         tokio::time::sleep(Duration::from_secs(5)).await;
///         Ok::<_, std::io::Error>(())
///     })
///     .await;
/// assert!(matches!(slow, Err(CallError::Elapsed(_))));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimiter {
    timeout: Duration,
}

impl Default for TimeLimiter {
    /// One second, Resilience4j's default.
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl TimeLimiter {
    /// A limiter that gives each call `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }

    /// The deadline given to each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `f`'s future with the deadline.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(async { f().await.map_err(CallError::Inner) })
            .await
    }

    /// Runs an already-guarded future with the deadline.
    pub(crate) async fn run<Fut, T, E>(&self, fut: Fut) -> Result<T, CallError<E>>
    where
        Fut: Future<Output = Result<T, CallError<E>>>,
    {
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or(Err(CallError::Elapsed(Elapsed::new(self.timeout))))
    }
}
