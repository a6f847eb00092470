//! The time limiter as a `tower` middleware; a late call fails with a boxed
//! [`Elapsed`].

use std::task::{Context, Poll};

use tower::{BoxError, Layer, Service};

use super::TimeLimiter;
use crate::ResponseFuture;
use crate::error::Elapsed;

/// Puts a [`TimeLimiter`] deadline on each call of the wrapped service.
#[derive(Debug, Clone)]
pub struct TimeLimiterLayer {
    limiter: TimeLimiter,
}

impl TimeLimiterLayer {
    /// A layer applying `limiter`.
    pub fn new(limiter: TimeLimiter) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for TimeLimiterLayer {
    type Service = TimeLimiterService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeLimiterService {
            inner,
            limiter: self.limiter,
        }
    }
}

/// A service whose calls have a deadline; see [`TimeLimiterLayer`].
#[derive(Debug, Clone)]
pub struct TimeLimiterService<S> {
    inner: S,
    limiter: TimeLimiter,
}

impl<S, Req> Service<Req> for TimeLimiterService<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let call = self.inner.call(req);
        let timeout = self.limiter.timeout();
        Box::pin(async move {
            match tokio::time::timeout(timeout, call).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Elapsed::new(timeout).into()),
            }
        })
    }
}
