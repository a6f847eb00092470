//! The small error types of the policies and [`CallError`], which joins them
//! with the guarded call's own error.
//!
//! In the `tower` form each policy error travels as a
//! [`BoxError`](tower::BoxError) and is recognised with `downcast_ref`:
//!
//! ```
//! use circuit_breaker::{BulkheadFull, CallNotPermitted, Elapsed};
//!
//! fn is_local_rejection(err: &tower::BoxError) -> bool {
//!     err.is::<CallNotPermitted>() || err.is::<BulkheadFull>()
//! }
//! # let err: tower::BoxError = Box::new(Elapsed::new(std::time::Duration::from_secs(1)));
//! # assert!(!is_local_rejection(&err));
//! ```

use std::sync::Arc;
use std::time::Duration;

/// The circuit breaker refused the call: it is OPEN, FORCED_OPEN, or HALF_OPEN
/// with all trial permits taken. Cheap to build (one reference count).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker '{name}' does not permit further calls")]
pub struct CallNotPermitted {
    name: Arc<str>,
}

impl CallNotPermitted {
    pub(crate) fn new(name: Arc<str>) -> Self {
        Self { name }
    }

    /// The name of the breaker that refused the call.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The bulkhead had no free slot within its maximum wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bulkhead '{name}' is full and does not permit further calls")]
pub struct BulkheadFull {
    name: Arc<str>,
}

impl BulkheadFull {
    pub(crate) fn new(name: Arc<str>) -> Self {
        Self { name }
    }

    /// The name of the bulkhead that refused the call.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The time limiter's deadline passed; the call's future was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("call did not complete within {after:?}")]
pub struct Elapsed {
    after: Duration,
}

impl Elapsed {
    /// An error for a deadline of `after`.
    pub fn new(after: Duration) -> Self {
        Self { after }
    }

    /// The deadline that passed.
    pub fn after(&self) -> Duration {
        self.after
    }
}

/// The error of a call guarded by one or more policies: either a policy
/// refused or cut the call, or the call itself failed with `E`.
///
/// Match on it to serve a fallback:
///
/// ```
/// use circuit_breaker::CallError;
///
/// fn price_or_fallback(result: Result<u32, CallError<std::io::Error>>) -> u32 {
///     match result {
///         Ok(price) => price,
///         Err(CallError::NotPermitted(_)) => 0, // breaker open: cached or default answer
///         Err(other) => {
///             tracing::warn!(error = %other, "pricing failed");
///             0
///         }
///     }
/// }
/// # assert_eq!(price_or_fallback(Ok(3)), 3);
/// ```
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The circuit breaker refused the call.
    #[error(transparent)]
    NotPermitted(#[from] CallNotPermitted),
    /// The bulkhead was full.
    #[error(transparent)]
    BulkheadFull(#[from] BulkheadFull),
    /// The time limiter's deadline passed.
    #[error(transparent)]
    Elapsed(#[from] Elapsed),
    /// The call itself failed.
    #[error(transparent)]
    Inner(E),
}

impl<E> CallError<E> {
    /// Whether a policy refused the call before it ran (breaker or bulkhead):
    /// the upstream never saw it, so a fallback is always safe.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::NotPermitted(_) | Self::BulkheadFull(_))
    }

    /// Whether the time limiter cut the call.
    pub fn is_elapsed(&self) -> bool {
        matches!(self, Self::Elapsed(_))
    }

    /// The call's own error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// The call's own error, by reference.
    pub fn inner(&self) -> Option<&E> {
        match self {
            Self::Inner(e) => Some(e),
            _ => None,
        }
    }
}
