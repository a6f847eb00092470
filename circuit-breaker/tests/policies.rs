//! Retry, retry budget, bulkhead, time limiter and their composition, on
//! paused tokio time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use circuit_breaker::{
    Backoff, Bulkhead, BulkheadConfig, CallError, CircuitBreaker, Classification, Pipeline, Retry,
    RetryBudget, RetryConfig, State, TimeLimiter,
};
use tokio::time::Instant;

fn no_jitter(max_attempts: u32) -> RetryConfig {
    RetryConfig {
        max_attempts,
        backoff: Backoff {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(1),
            jitter: 0.0,
        },
    }
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_after_max_attempts_with_exponential_delays() {
    let retry = Retry::new(no_jitter(4)).unwrap();
    let start = Instant::now();
    let attempts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let result: Result<(), &str> = retry
        .call(|| {
            attempts.lock().unwrap().push(start.elapsed());
            async { Err("down") }
        })
        .await;
    assert_eq!(result, Err("down"));
    let at: Vec<u64> = attempts
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.as_millis() as u64)
        .collect();
    assert_eq!(at, vec![0, 100, 300, 700]);
}

#[tokio::test(start_paused = true)]
async fn retry_predicate_can_retry_ok_values_and_skip_errors() {
    let retry = Retry::new(no_jitter(5)).unwrap();
    let calls = AtomicU32::new(0);
    let retry_503 = |r: Result<&u16, &&str>| matches!(r, Ok(503));
    let result = retry
        .call_if(&retry_503, || {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move { if n < 2 { Ok(503) } else { Err("bad request") } }
        })
        .await;
    assert_eq!(
        result,
        Err("bad request"),
        "errors are not retried by this predicate"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_budget_bounds_retries_during_an_outage() {
    let budget = Arc::new(RetryBudget::new(0.1, 5));
    let retry = Retry::new(no_jitter(3))
        .unwrap()
        .with_budget(budget.clone());
    let calls = AtomicU32::new(0);
    for _ in 0..100 {
        let _: Result<(), ()> = retry
            .call(|| {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Err(()) }
            })
            .await;
    }
    let retries = calls.load(Ordering::Relaxed) - 100;
    // At most burst + ratio * calls = 5 + 0.1 * 100, against 200 without a budget.
    assert!(retries <= 15, "{retries} retries");
    assert!(retries >= 14, "the budget is spent, not wasted: {retries}");
}

#[tokio::test(start_paused = true)]
async fn bulkhead_limits_concurrency_and_waits_at_most_its_max_wait() {
    let bulkhead = Bulkhead::new(
        "db",
        BulkheadConfig {
            max_concurrent_calls: 2,
            max_wait_duration: Duration::from_millis(50),
        },
    )
    .unwrap();
    let busy = || {
        let b = bulkhead.clone();
        tokio::spawn(async move {
            b.call(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, ()>(())
            })
            .await
        })
    };
    let (a, b) = (busy(), busy());
    tokio::task::yield_now().await;
    assert_eq!(bulkhead.available_slots(), 0);
    let start = Instant::now();
    let refused = bulkhead.call(|| async { Ok::<_, ()>(()) }).await;
    let CallError::BulkheadFull(full) = refused.unwrap_err() else {
        panic!("expected BulkheadFull")
    };
    assert_eq!(full.name(), "db");
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert_eq!(bulkhead.available_slots(), 2);
}

#[tokio::test(start_paused = true)]
async fn time_limiter_drops_the_late_future() {
    struct DropFlag(Arc<AtomicU32>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let dropped = Arc::new(AtomicU32::new(0));
    let limiter = TimeLimiter::new(Duration::from_millis(200));
    let flag = DropFlag(dropped.clone());
    let result = limiter
        .call(|| async move {
            let _flag = flag;
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, ()>(())
        })
        .await;
    let CallError::Elapsed(e) = result.unwrap_err() else {
        panic!("expected Elapsed")
    };
    assert_eq!(e.after(), Duration::from_millis(200));
    assert_eq!(dropped.load(Ordering::Relaxed), 1, "the call was cancelled");
}

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::builder(name)
        .sliding_window_size(4)
        .minimum_number_of_calls(4)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn pipeline_counts_timeouts_as_breaker_failures_and_stops_retrying_when_open() {
    let cb = breaker("slow-upstream");
    let pipeline = Pipeline::new()
        .retry(Retry::new(no_jitter(10)).unwrap())
        .circuit_breaker(cb.clone())
        .bulkhead(Bulkhead::new("slow-upstream", BulkheadConfig::default()).unwrap())
        .time_limiter(TimeLimiter::new(Duration::from_millis(100)));
    let calls = AtomicU32::new(0);
    let result = pipeline
        .call(|| {
            calls.fetch_add(1, Ordering::Relaxed);
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<_, ()>(())
            }
        })
        .await;
    assert!(
        result.unwrap_err().is_rejected(),
        "the open breaker ended the retries"
    );
    assert_eq!(
        calls.load(Ordering::Relaxed),
        4,
        "4 timeouts opened the breaker"
    );
    assert_eq!(cb.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn pipeline_retries_what_the_classifier_calls_a_failure() {
    let pipeline = Pipeline::new()
        .retry(Retry::new(no_jitter(3)).unwrap())
        .circuit_breaker(breaker("by-status"));
    let calls = AtomicU32::new(0);
    let by_status = |r: Result<&u16, &()>| match r {
        Ok(s) if *s >= 500 => Classification::Failure,
        Ok(_) => Classification::Success,
        Err(_) => Classification::Failure,
    };
    let status = pipeline
        .call_with(&by_status, || {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move { Ok(if n == 0 { 503 } else { 200 }) }
        })
        .await
        .unwrap();
    assert_eq!((status, calls.load(Ordering::Relaxed)), (200, 2));
}
