//! The breaker as a `tower` middleware: [`CircuitBreakerLayer`] and
//! [`CircuitBreakerService`]. A refused call fails with a boxed
//! [`CallNotPermitted`] without reaching the inner service.

use std::task::{Context, Poll};

use tower::{BoxError, Layer, Service};

use super::{CircuitBreaker, Classification, Classifier};
use crate::ResponseFuture;
use crate::error::{BulkheadFull, CallNotPermitted};

/// The tower classifier by default: `Ok` is a success; an error is a failure
/// unless it is a local rejection by an inner breaker or bulkhead
/// ([`CallNotPermitted`], [`BulkheadFull`]), which the upstream never saw and
/// which is therefore ignored. A time limiter's `Elapsed` is a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalRejectionsIgnored;

impl<T: ?Sized> Classifier<T, BoxError> for LocalRejectionsIgnored {
    fn classify(&self, outcome: Result<&T, &BoxError>) -> Classification {
        match outcome {
            Ok(_) => Classification::Success,
            Err(e) if e.is::<CallNotPermitted>() || e.is::<BulkheadFull>() => {
                Classification::Ignored
            }
            Err(_) => Classification::Failure,
        }
    }
}

/// Wraps a service in a [`CircuitBreaker`].
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = LocalRejectionsIgnored> {
    breaker: CircuitBreaker,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer guarding calls with `breaker`, classifying with
    /// [`LocalRejectionsIgnored`].
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            classifier: LocalRejectionsIgnored,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Classifies outcomes with `classifier` instead (it sees the response
    /// or the boxed error), e.g. to count HTTP 5xx responses as failures.
    pub fn with_classifier<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// A service guarded by a circuit breaker; see [`CircuitBreakerLayer`].
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C = LocalRejectionsIgnored> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
    C: Classifier<S::Response, BoxError> + Clone + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Err(refused) => Box::pin(std::future::ready(Err(refused.into()))),
            Ok(permit) => {
                let call = self.inner.call(req);
                let classifier = self.classifier.clone();
                Box::pin(async move {
                    let result = call.await.map_err(Into::into);
                    permit.record(classifier.classify(result.as_ref()));
                    result
                })
            }
        }
    }
}
