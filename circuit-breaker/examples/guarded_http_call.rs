//! A guarded HTTP-like call with a fallback: an unreliable upstream (simulated,
//! no network) goes down, the breaker opens and the caller serves cached
//! prices instead of waiting on timeouts; when the upstream recovers the
//! breaker lets trial calls through and closes again.
//!
//! `cargo run -p circuit-breaker --example guarded_http_call`
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use circuit_breaker::{
    CallError, CircuitBreaker, Classification, EventKind, Pipeline, TimeLimiter,
};

/// What an HTTP client would return.
#[derive(Debug)]
struct Response {
    status: u16,
    body: String,
}

/// The simulated upstream: answers 200 when up, 503 when down.
#[derive(Clone)]
struct Upstream {
    up: Arc<AtomicBool>,
}

impl Upstream {
    async fn get(&self, path: &str) -> Result<Response, std::io::Error> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if self.up.load(Ordering::Relaxed) {
            Ok(Response {
                status: 200,
                body: format!("{{\"path\":\"{path}\",\"price\":42}}"),
            })
        } else {
            Ok(Response {
                status: 503,
                body: "unavailable".into(),
            })
        }
    }
}

/// 5xx responses and transport errors are failures; 4xx are the caller's
/// fault and do not count.
fn by_status(outcome: Result<&Response, &std::io::Error>) -> Classification {
    match outcome {
        Ok(r) if r.status >= 500 => Classification::Failure,
        Ok(r) if r.status >= 400 => Classification::Ignored,
        Ok(_) => Classification::Success,
        Err(_) => Classification::Failure,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let upstream = Upstream {
        up: Arc::new(AtomicBool::new(true)),
    };
    let breaker = CircuitBreaker::builder("pricing")
        .sliding_window_size(10)
        .minimum_number_of_calls(5)
        .wait_duration_in_open_state(Duration::from_millis(200))
        .permitted_number_of_calls_in_half_open_state(2)
        .build()
        .unwrap();
    let mut events = breaker.subscribe();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let EventKind::StateTransition { from, to } = event.kind {
                println!("  [{}] {from} -> {to}", event.breaker);
            }
        }
    });
    let pipeline = Pipeline::new()
        .circuit_breaker(breaker.clone())
        .time_limiter(TimeLimiter::new(Duration::from_millis(100)));

    for round in 0..40 {
        if round == 8 {
            println!("upstream goes down");
            upstream.up.store(false, Ordering::Relaxed);
        }
        if round == 25 {
            println!("upstream recovers");
            upstream.up.store(true, Ordering::Relaxed);
        }
        let result = pipeline
            .call_with(&by_status, || upstream.get("/price/7"))
            .await;
        let answer = match result {
            Ok(r) if r.status == 200 => r.body,
            Ok(r) => format!("fallback (upstream said {})", r.status),
            Err(CallError::NotPermitted(_)) => "fallback (breaker open: cached price 40)".into(),
            Err(e) => format!("fallback ({e})"),
        };
        println!("call {round:2} [{}]: {answer}", breaker.state());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = breaker.metrics();
    println!(
        "totals: {} ok, {} failed, {} refused",
        m.totals.successful, m.totals.failed, m.totals.not_permitted
    );
}
