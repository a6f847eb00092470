//! Deciding what a call's outcome means to the breaker: [`Classification`]
//! and the [`Classifier`] trait.

/// What one call's outcome counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    /// The call succeeded.
    Success,
    /// The call failed and counts toward the failure rate.
    Failure,
    /// The call counts neither way (for example a client error such as an
    /// HTTP 404); in HALF_OPEN its trial permit is given back.
    Ignored,
}

/// Decides, per outcome, whether a call succeeded, failed or is ignored.
///
/// Any `Fn(Result<&T, &E>) -> Classification` is a classifier:
///
/// ```
/// use circuit_breaker::{Classification, Classifier};
///
/// struct Response { status: u16 }
/// // Server errors and transport errors trip the breaker; 4xx do not count.
/// let by_status = |outcome: Result<&Response, &std::io::Error>| match outcome {
///     Ok(r) if r.status >= 500 => Classification::Failure,
///     Ok(r) if r.status >= 400 => Classification::Ignored,
///     Ok(_) => Classification::Success,
///     Err(_) => Classification::Failure,
/// };
/// assert_eq!(by_status.classify(Ok(&Response { status: 503 })), Classification::Failure);
/// ```
pub trait Classifier<T: ?Sized, E: ?Sized> {
    /// Classifies one outcome.
    fn classify(&self, outcome: Result<&T, &E>) -> Classification;
}

impl<T: ?Sized, E: ?Sized, F> Classifier<T, E> for F
where
    F: Fn(Result<&T, &E>) -> Classification,
{
    #[inline]
    fn classify(&self, outcome: Result<&T, &E>) -> Classification {
        self(outcome)
    }
}

/// The default classifier: `Ok` is a success, `Err` a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorsAreFailures;

impl<T: ?Sized, E: ?Sized> Classifier<T, E> for ErrorsAreFailures {
    #[inline]
    fn classify(&self, outcome: Result<&T, &E>) -> Classification {
        match outcome {
            Ok(_) => Classification::Success,
            Err(_) => Classification::Failure,
        }
    }
}
