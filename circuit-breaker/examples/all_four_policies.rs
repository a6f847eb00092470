//! The four policies composed in the documented order,
//! Retry(CircuitBreaker(Bulkhead(TimeLimiter(call)))), twice: as a
//! [`Pipeline`] over an async call and as a tower stack.
//!
//! `cargo run -p circuit-breaker --example all_four_policies`
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use circuit_breaker::{
    Backoff, Bulkhead, BulkheadConfig, BulkheadLayer, CallNotPermitted, CircuitBreaker,
    CircuitBreakerLayer, Pipeline, Retry, RetryBudget, RetryConfig, RetryLayer, TimeLimiter,
    TimeLimiterLayer,
};
use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};

fn retry() -> Retry {
    Retry::new(RetryConfig {
        max_attempts: 3,
        backoff: Backoff {
            initial: Duration::from_millis(10),
            ..Backoff::default()
        },
    })
    .unwrap()
    .with_budget(Arc::new(RetryBudget::new(0.2, 10)))
}

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::builder(name)
        .sliding_window_size(10)
        .minimum_number_of_calls(4)
        .build()
        .unwrap()
}

fn bulkhead(name: &str) -> Bulkhead {
    Bulkhead::new(
        name,
        BulkheadConfig {
            max_concurrent_calls: 8,
            max_wait_duration: Duration::from_millis(5),
        },
    )
    .unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // 1. Async calls through a Pipeline: every third attempt times out and is
    //    retried; a third of failures stays under the 50% threshold.
    let pipeline = Pipeline::new()
        .retry(retry())
        .circuit_breaker(breaker("catalog"))
        .bulkhead(bulkhead("catalog"))
        .time_limiter(TimeLimiter::new(Duration::from_millis(50)));
    let attempts = AtomicU32::new(0);
    for i in 0..6 {
        let result = pipeline
            .call(|| {
                let n = attempts.fetch_add(1, Ordering::Relaxed);
                async move {
                    if n % 3 == 1 {
                        tokio::time::sleep(Duration::from_secs(1)).await; // too slow
                    }
                    Ok::<_, std::io::Error>(format!("item {i}"))
                }
            })
            .await;
        println!("pipeline call {i}: {result:?}");
    }
    println!("attempts: {}", attempts.load(Ordering::Relaxed));

    // 2. The same order as a tower stack over a service that is always slow:
    //    timeouts open the breaker and the retry stops at its rejection.
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(retry()))
        .layer(CircuitBreakerLayer::new(breaker("search")))
        .layer(BulkheadLayer::new(bulkhead("search")))
        .layer(TimeLimiterLayer::new(TimeLimiter::new(
            Duration::from_millis(20),
        )))
        .service(service_fn(|q: &'static str| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, BoxError>(format!("results for {q}"))
        }));
    for i in 0..4 {
        match svc.clone().oneshot("rust").await {
            Ok(r) => println!("tower call {i}: {r}"),
            Err(e) if e.is::<CallNotPermitted>() => {
                println!("tower call {i}: breaker open, fallback")
            }
            Err(e) => println!("tower call {i}: failed: {e}"),
        }
    }
}
