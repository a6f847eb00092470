//! Every state transition of the breaker, on paused tokio time.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use circuit_breaker::{
    CallError, CircuitBreaker, CircuitBreakerBuilder, Classification, EventKind, SlidingWindowType,
    State, metrics,
};

const WAIT: Duration = Duration::from_secs(10);

fn small(name: &str) -> CircuitBreakerBuilder {
    CircuitBreaker::builder(name)
        .sliding_window_size(4)
        .minimum_number_of_calls(4)
        .permitted_number_of_calls_in_half_open_state(2)
        .wait_duration_in_open_state(WAIT)
}

async fn ok(b: &CircuitBreaker) -> Result<(), CallError<&'static str>> {
    b.call(|| async { Ok(()) }).await
}

async fn fail(b: &CircuitBreaker) -> Result<(), CallError<&'static str>> {
    b.call(|| async { Err("boom") }).await
}

async fn trip(b: &CircuitBreaker) {
    for _ in 0..4 {
        let _ = fail(b).await;
    }
    assert_eq!(b.state(), State::Open);
}

/// Lets spawned timer tasks run, polling until `cond` holds.
async fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not reached");
}

#[tokio::test(start_paused = true)]
async fn closed_stays_closed_until_the_minimum_number_of_calls() {
    let b = small("a").build().unwrap();
    for _ in 0..3 {
        assert!(matches!(fail(&b).await, Err(CallError::Inner("boom"))));
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().failure_rate, None);
}

#[tokio::test(start_paused = true)]
async fn closed_opens_when_the_failure_rate_reaches_the_threshold() {
    let b = small("a").build().unwrap();
    ok(&b).await.unwrap();
    ok(&b).await.unwrap();
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), State::Closed);
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), State::Open, "2 of 4 failed: 50% >= 50%");
    let refused = ok(&b).await.unwrap_err();
    let CallError::NotPermitted(e) = refused else {
        panic!("expected NotPermitted, got {refused:?}")
    };
    assert_eq!(e.name(), "a");
    assert_eq!(b.metrics().totals.not_permitted, 1);
}

#[tokio::test(start_paused = true)]
async fn closed_opens_when_the_slow_call_rate_reaches_the_threshold() {
    let b = small("slow")
        .slow_call_duration_threshold(Duration::from_millis(100))
        .slow_call_rate_threshold(50.0)
        .build()
        .unwrap();
    for _ in 0..2 {
        ok(&b).await.unwrap();
    }
    for _ in 0..2 {
        b.call(|| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok::<_, ()>(())
        })
        .await
        .unwrap();
    }
    assert_eq!(b.state(), State::Open);
    let m = b.metrics();
    assert_eq!(m.totals.slow_successful, 2);
    assert_eq!(m.slow_call_rate, Some(50.0));
}

#[tokio::test(start_paused = true)]
async fn open_moves_to_half_open_on_the_first_call_after_the_wait() {
    let b = small("a").build().unwrap();
    trip(&b).await;
    tokio::time::advance(WAIT - Duration::from_millis(1)).await;
    assert!(
        ok(&b).await.is_err(),
        "still open just before the wait ends"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        b.state(),
        State::Open,
        "no timer without automatic transition"
    );
    ok(&b).await.unwrap();
    assert_eq!(b.state(), State::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn open_moves_to_half_open_on_a_timer_when_automatic() {
    let b = small("auto")
        .automatic_transition_from_open_to_half_open_enabled(true)
        .build()
        .unwrap();
    trip(&b).await;
    assert_eq!(b.remaining_open_wait(), Some(WAIT));
    tokio::time::advance(WAIT).await;
    eventually(|| b.state() == State::HalfOpen).await;
}

#[tokio::test(start_paused = true)]
async fn half_open_closes_when_the_trial_calls_succeed() {
    let b = small("a").build().unwrap();
    trip(&b).await;
    tokio::time::advance(WAIT).await;
    ok(&b).await.unwrap();
    assert_eq!(b.state(), State::HalfOpen);
    ok(&b).await.unwrap();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        b.metrics().buffered_calls,
        0,
        "CLOSED starts with an empty window"
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_reopens_when_the_trial_calls_fail() {
    let b = small("a").build().unwrap();
    trip(&b).await;
    tokio::time::advance(WAIT).await;
    ok(&b).await.unwrap();
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), State::Open, "1 of 2 trials failed: 50%");
    assert!(ok(&b).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn half_open_refuses_calls_beyond_its_permits() {
    let b = small("a").build().unwrap();
    trip(&b).await;
    tokio::time::advance(WAIT).await;
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(p1); // cancelled: the permit comes back
    let p3 = b.try_acquire().unwrap();
    p2.success();
    p3.success();
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn half_open_reopens_after_its_maximum_wait() {
    let b = small("a")
        .max_wait_duration_in_half_open_state(Duration::from_secs(5))
        .build()
        .unwrap();
    trip(&b).await;
    tokio::time::advance(WAIT).await;
    let _stuck = b.try_acquire().unwrap();
    assert_eq!(b.state(), State::HalfOpen);
    tokio::time::advance(Duration::from_secs(5)).await;
    eventually(|| b.state() == State::Open).await;
}

#[tokio::test(start_paused = true)]
async fn forced_open_refuses_every_call_until_changed_by_hand() {
    let b = small("a").build().unwrap();
    b.transition_to(State::ForcedOpen);
    tokio::time::advance(WAIT * 10).await;
    assert!(matches!(ok(&b).await, Err(CallError::NotPermitted(_))));
    b.transition_to(State::Closed);
    ok(&b).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn disabled_admits_every_call_and_records_nothing() {
    let b = small("a").build().unwrap();
    b.transition_to(State::Disabled);
    for _ in 0..10 {
        fail(&b).await.unwrap_err();
    }
    assert_eq!(b.state(), State::Disabled);
    assert_eq!(b.metrics().totals.failed, 0);
}

#[tokio::test(start_paused = true)]
async fn metrics_only_records_and_reports_but_never_opens() {
    let b = small("a").build().unwrap();
    let mut events = b.subscribe();
    b.transition_to(State::MetricsOnly);
    for _ in 0..8 {
        fail(&b).await.unwrap_err();
    }
    assert_eq!(b.state(), State::MetricsOnly);
    assert_eq!(b.metrics().failure_rate, Some(100.0));
    let exceeded = std::iter::from_fn(|| events.try_recv())
        .filter(|e| matches!(e.kind, EventKind::FailureRateExceeded { .. }))
        .count();
    assert_eq!(exceeded, 1, "reported once when crossing the threshold");
}

#[tokio::test(start_paused = true)]
async fn reset_closes_with_an_empty_window() {
    let b = small("a").build().unwrap();
    trip(&b).await;
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().buffered_calls, 0);
}

#[tokio::test(start_paused = true)]
async fn time_based_window_forgets_failures_older_than_its_size() {
    let b = CircuitBreaker::builder("t")
        .sliding_window_type(SlidingWindowType::TimeBased)
        .sliding_window_size(10)
        .minimum_number_of_calls(4)
        .build()
        .unwrap();
    for _ in 0..3 {
        fail(&b).await.unwrap_err();
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    fail(&b).await.unwrap_err();
    assert_eq!(
        b.state(),
        State::Closed,
        "the first 3 failures left the window"
    );
    assert_eq!(b.metrics().buffered_calls, 1);
    for _ in 0..3 {
        fail(&b).await.unwrap_err();
    }
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn classifier_decides_what_counts() {
    let b = small("a").build().unwrap();
    let not_found_is_ignored = |r: Result<&u16, &()>| match r {
        Ok(s) if *s >= 500 => Classification::Failure,
        Ok(s) if *s >= 400 => Classification::Ignored,
        Ok(_) => Classification::Success,
        Err(_) => Classification::Failure,
    };
    for status in [404, 404, 404, 404, 200, 503, 503] {
        b.call_with(&not_found_is_ignored, || async move { Ok(status) })
            .await
            .unwrap();
    }
    let m = b.metrics();
    assert_eq!(
        (m.totals.ignored, m.buffered_calls, m.failed_calls),
        (4, 3, 2)
    );
    b.call_with(&not_found_is_ignored, || async { Ok(200) })
        .await
        .unwrap();
    assert_eq!(b.state(), State::Open, "2 of 4 recorded failed");
}

#[tokio::test(start_paused = true)]
async fn subscribers_see_outcomes_and_transitions_in_order() {
    let b = small("ev").build().unwrap();
    let mut events = b.subscribe();
    trip(&b).await;
    let _ = ok(&b).await;
    let kinds: Vec<EventKind> = std::iter::from_fn(|| events.try_recv())
        .map(|e| {
            assert_eq!(&*e.breaker, "ev");
            e.kind
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Error { elapsed: None },
            EventKind::Error { elapsed: None },
            EventKind::Error { elapsed: None },
            EventKind::FailureRateExceeded { rate: 100.0 },
            EventKind::StateTransition {
                from: State::Closed,
                to: State::Open
            },
            EventKind::Error { elapsed: None },
            EventKind::NotPermitted,
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn metrics_snapshot_exports_the_documented_names() {
    let b = small("m").build().unwrap();
    ok(&b).await.unwrap();
    fail(&b).await.unwrap_err();
    let samples = b.metrics().samples();
    let value = |name: &str, label: Option<(&str, &str)>| {
        samples
            .iter()
            .find(|s| s.name == name && label.is_none_or(|l| s.labels.contains(&l)))
            .unwrap()
            .value
    };
    assert_eq!(value(metrics::STATE, Some(("state", "closed"))), 1.0);
    assert_eq!(value(metrics::STATE, Some(("state", "open"))), 0.0);
    assert_eq!(value(metrics::CALLS_TOTAL, Some(("kind", "failed"))), 1.0);
    assert_eq!(
        value(metrics::BUFFERED_CALLS, Some(("kind", "successful"))),
        1.0
    );
    assert_eq!(value(metrics::FAILURE_RATE, None), -1.0);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_trial_call_gives_its_permit_back() {
    let b = small("a").build().unwrap();
    trip(&b).await;
    tokio::time::advance(WAIT).await;
    let hung = b.call(std::future::pending::<Result<(), ()>>);
    let _ = tokio::time::timeout(Duration::from_secs(1), hung).await;
    ok(&b).await.unwrap();
    ok(&b).await.unwrap();
    assert_eq!(b.state(), State::Closed);
}
