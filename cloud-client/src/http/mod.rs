//! The resilient HTTP client: [`LbHttpClient`] resolves `lb://service/...`
//! through the registry cache and the balancer, guards each attempt with the
//! service's circuit breaker and a timeout, retries with a budget only when
//! it is safe, and propagates W3C `traceparent` (and Zipkin's B3 headers
//! when the trace came with them). It is also a
//! `tower::Service<reqwest::Request>`.
//!
//! - `client`: [`LbHttpClient`], [`HttpClientConfig`], [`InstanceSource`].
//! - `error`: [`HttpError`] and its `is_*()` questions.
//! - `trace`: [`TraceContext`], the `traceparent` and B3 headers, and
//!   [`continue_trace`], the server side.

mod client;
mod error;
mod trace;

pub use client::{HttpClientConfig, InstanceSource, LbHttpClient, ServiceStats, StaticInstances};
pub use error::HttpError;
pub use trace::{TRACEPARENT, TraceContext, continue_trace};
