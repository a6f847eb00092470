//! Retry as a `tower` middleware. Requests must be `Clone`; the last
//! attempt's outcome is returned.

use std::task::{Context, Poll};

use tower::{BoxError, Layer, Service, ServiceExt};

use super::{Retry, RetryPredicate};
use crate::ResponseFuture;
use crate::error::{BulkheadFull, CallNotPermitted};

/// The tower predicate by default: retry every error except local rejections
/// by an inner breaker or bulkhead ([`CallNotPermitted`], [`BulkheadFull`]):
/// retrying into an open breaker only burns budget.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryUnlessRejected;

impl<T: ?Sized> RetryPredicate<T, BoxError> for RetryUnlessRejected {
    fn should_retry(&self, outcome: Result<&T, &BoxError>) -> bool {
        match outcome {
            Ok(_) => false,
            Err(e) => !(e.is::<CallNotPermitted>() || e.is::<BulkheadFull>()),
        }
    }
}

/// Retries calls of the wrapped service with a [`Retry`] policy.
#[derive(Debug, Clone)]
pub struct RetryLayer<P = RetryUnlessRejected> {
    retry: Retry,
    predicate: P,
}

impl RetryLayer {
    /// A layer applying `retry` with [`RetryUnlessRejected`].
    pub fn new(retry: Retry) -> Self {
        Self {
            retry,
            predicate: RetryUnlessRejected,
        }
    }
}

impl<P> RetryLayer<P> {
    /// Retries the outcomes `predicate` accepts instead.
    pub fn with_predicate<P2>(self, predicate: P2) -> RetryLayer<P2> {
        RetryLayer {
            retry: self.retry,
            predicate,
        }
    }
}

impl<S, P: Clone> Layer<S> for RetryLayer<P> {
    type Service = RetryService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            retry: self.retry.clone(),
            predicate: self.predicate.clone(),
        }
    }
}

/// A service whose failed calls are retried; see [`RetryLayer`].
#[derive(Debug, Clone)]
pub struct RetryService<S, P = RetryUnlessRejected> {
    inner: S,
    retry: Retry,
    predicate: P,
}

impl<S, P, Req> Service<Req> for RetryService<S, P>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    Req: Clone + Send + Sync + 'static,
    P: RetryPredicate<S::Response, BoxError> + Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Response>;

    /// Always ready: each attempt waits for the inner service's readiness.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        let retry = self.retry.clone();
        let predicate = self.predicate.clone();
        Box::pin(async move {
            retry
                .run(
                    |r: &Result<S::Response, BoxError>| predicate.should_retry(r.as_ref()),
                    move || {
                        let attempt = inner.clone().oneshot(req.clone());
                        async move { attempt.await.map_err(Into::into) }
                    },
                )
                .await
        })
    }
}
