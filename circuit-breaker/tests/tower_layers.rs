//! The four policies as tower layers, alone and composed.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use circuit_breaker::{
    Backoff, Bulkhead, BulkheadConfig, BulkheadFull, BulkheadLayer, CallNotPermitted,
    CircuitBreaker, CircuitBreakerLayer, Classification, Elapsed, Retry, RetryConfig, RetryLayer,
    State, TimeLimiter, TimeLimiterLayer,
};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};

fn retry(max_attempts: u32) -> Retry {
    Retry::new(RetryConfig {
        max_attempts,
        backoff: Backoff {
            initial: Duration::from_millis(10),
            jitter: 0.0,
            ..Backoff::default()
        },
    })
    .unwrap()
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::builder("svc")
        .sliding_window_size(2)
        .minimum_number_of_calls(2)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn breaker_layer_refuses_with_a_boxed_call_not_permitted() {
    let cb = breaker();
    let mut svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(cb.clone()))
        .service(service_fn(|_: ()| async { Err::<(), _>("down") }));
    for _ in 0..2 {
        let e = svc.ready().await.unwrap().call(()).await.unwrap_err();
        assert_eq!(e.to_string(), "down");
    }
    let e = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(e.downcast_ref::<CallNotPermitted>().unwrap().name(), "svc");
    assert_eq!(cb.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn breaker_layer_takes_a_classifier_over_responses() {
    let cb = breaker();
    let five_xx = |r: Result<&u16, &BoxError>| match r {
        Ok(s) if *s >= 500 => Classification::Failure,
        Ok(_) => Classification::Success,
        Err(_) => Classification::Failure,
    };
    let svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(cb.clone()).with_classifier(five_xx))
        .service(service_fn(|_: ()| async { Ok::<u16, BoxError>(502) }));
    svc.clone().oneshot(()).await.unwrap();
    svc.oneshot(()).await.unwrap();
    assert_eq!(cb.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn time_limiter_layer_fails_late_calls_with_elapsed() {
    let svc = ServiceBuilder::new()
        .layer(TimeLimiterLayer::new(TimeLimiter::new(
            Duration::from_millis(5),
        )))
        .service(service_fn(|_: ()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, BoxError>(())
        }));
    let e = svc.oneshot(()).await.unwrap_err();
    assert!(e.downcast_ref::<Elapsed>().is_some());
}

#[tokio::test(start_paused = true)]
async fn bulkhead_layer_fails_with_bulkhead_full_when_no_slot_is_free() {
    let bulkhead = Bulkhead::new(
        "pool",
        BulkheadConfig {
            max_concurrent_calls: 1,
            max_wait_duration: Duration::ZERO,
        },
    )
    .unwrap();
    let svc = ServiceBuilder::new()
        .layer(BulkheadLayer::new(bulkhead))
        .service(service_fn(|_: ()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, BoxError>(())
        }));
    let first = tokio::spawn(svc.clone().oneshot(()));
    tokio::task::yield_now().await;
    let e = svc.clone().oneshot(()).await.unwrap_err();
    assert_eq!(e.downcast_ref::<BulkheadFull>().unwrap().name(), "pool");
    first.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn retry_layer_retries_errors_until_success() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(retry(3)))
        .service(service_fn(move |req: u32| {
            let n = counted.fetch_add(1, Ordering::Relaxed);
            async move {
                if n < 2 {
                    Err::<u32, BoxError>("flaky".into())
                } else {
                    Ok(req * 2)
                }
            }
        }));
    assert_eq!(svc.oneshot(21).await.unwrap(), 42);
    assert_eq!(calls.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn all_four_layers_compose_in_the_documented_order() {
    let cb = breaker();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(retry(5)))
        .layer(CircuitBreakerLayer::new(cb.clone()))
        .layer(BulkheadLayer::new(
            Bulkhead::new("svc", BulkheadConfig::default()).unwrap(),
        ))
        .layer(TimeLimiterLayer::new(TimeLimiter::new(
            Duration::from_millis(50),
        )))
        .service(service_fn(move |_: ()| {
            counted.fetch_add(1, Ordering::Relaxed);
            async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, BoxError>(())
            }
        }));
    let e = svc.oneshot(()).await.unwrap_err();
    // Two timeouts open the breaker; the retry does not retry a rejection.
    assert!(e.downcast_ref::<CallNotPermitted>().is_some(), "{e}");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(cb.metrics().totals.failed, 2);
}
