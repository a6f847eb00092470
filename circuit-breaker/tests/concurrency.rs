//! Many tasks on many threads hammering one breaker: counts stay exact and
//! HALF_OPEN never admits more calls than its permits.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use circuit_breaker::{CallError, CircuitBreaker, State};
use proptest::prelude::*;

const TASKS: u64 = 16;
const CALLS: u64 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_stay_exact_under_contention() {
    // Every 10th call of each task fails: no window of 100 calls can reach
    // the 100% threshold, so the breaker stays CLOSED throughout.
    let breaker = CircuitBreaker::builder("hammered")
        .failure_rate_threshold(100.0)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let breaker = breaker.clone();
            tokio::spawn(async move {
                for i in 0..CALLS {
                    let r = breaker
                        .call(|| async move {
                            tokio::task::yield_now().await;
                            if i % 10 == 0 { Err(i) } else { Ok(i) }
                        })
                        .await;
                    assert!(!matches!(r, Err(CallError::NotPermitted(_))));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let m = breaker.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(m.totals.failed, TASKS * CALLS / 10);
    assert_eq!(m.totals.successful, TASKS * CALLS * 9 / 10);
    assert_eq!(m.totals.not_permitted, 0);
    assert_eq!(m.buffered_calls, 100);
}

#[test]
fn the_lock_free_window_is_exact_once_the_threads_are_done() {
    // Four threads record mixed outcomes into a CLOSED window without the
    // lock; once they are done, 10 successes must leave the window clean
    // (nothing stale, no lost eviction) and one failure must show as one.
    let breaker = CircuitBreaker::builder("ring")
        .sliding_window_size(10)
        .minimum_number_of_calls(10)
        .failure_rate_threshold(100.0)
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let breaker = &breaker;
            s.spawn(move || {
                for i in 0..20_000u64 {
                    let _ = breaker.call_sync(|| if (i + t) % 3 == 0 { Err(i) } else { Ok(i) });
                }
            });
        }
    });
    let m = breaker.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(m.buffered_calls, 10);
    assert_eq!(m.totals.successful + m.totals.failed, 80_000);
    assert_eq!(
        m.totals.failed,
        (0..4u64)
            .map(|t| (0..20_000u64).filter(|i| (i + t) % 3 == 0).count() as u64)
            .sum::<u64>()
    );
    for _ in 0..10 {
        breaker.call_sync(|| Ok::<_, ()>(())).unwrap();
    }
    assert_eq!(breaker.metrics().failed_calls, 0);
    let _ = breaker.call_sync(|| Err::<(), _>(()));
    let m = breaker.metrics();
    assert_eq!((m.buffered_calls, m.failed_calls), (10, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_never_admits_more_than_its_permits() {
    for permits in [1u32, 3, 7] {
        let breaker = CircuitBreaker::builder("trial")
            .permitted_number_of_calls_in_half_open_state(permits)
            .build()
            .unwrap();
        breaker.transition_to(State::HalfOpen);
        let admitted = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (breaker, admitted) = (breaker.clone(), admitted.clone());
                tokio::spawn(async move {
                    for _ in 0..200 {
                        // Trial calls fail, so the breaker goes back to OPEN
                        // (for 60 s) once all permits have reported.
                        let _ = breaker
                            .call(|| async {
                                admitted.fetch_add(1, Ordering::Relaxed);
                                tokio::task::yield_now().await;
                                Err::<(), _>("still down")
                            })
                            .await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(admitted.load(Ordering::Relaxed), u64::from(permits));
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(
            breaker.metrics().totals.not_permitted,
            TASKS * 200 - u64::from(permits)
        );
    }
}

#[test]
fn held_trial_permits_are_never_more_than_configured() {
    let breaker = CircuitBreaker::builder("held")
        .permitted_number_of_calls_in_half_open_state(5)
        .build()
        .unwrap();
    breaker.transition_to(State::HalfOpen);
    let held: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    (0..50)
                        .filter_map(|_| breaker.try_acquire_owned().ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(held.len(), 5);
}

proptest! {
    /// The breaker's window agrees with a naive "last N recorded calls"
    /// model, in CLOSED (the lock-free ring) and in METRICS_ONLY (the same
    /// ring under the lock); CLOSED opens exactly when those calls reach the
    /// threshold.
    #[test]
    fn breaker_window_matches_the_last_n_recorded_calls(
        size in 1u32..12,
        threshold in 1u32..=100,
        metrics_only in any::<bool>(),
        outcomes in proptest::collection::vec(0u8..3, 0..150),
    ) {
        let breaker = CircuitBreaker::builder("model")
            .sliding_window_size(size)
            .minimum_number_of_calls(size)
            .failure_rate_threshold(threshold as f32)
            .build()
            .unwrap();
        let state = if metrics_only { State::MetricsOnly } else { State::Closed };
        breaker.transition_to(state);
        let mut recorded: Vec<bool> = Vec::new();
        for o in outcomes {
            let class = match o {
                0 => circuit_breaker::Classification::Success,
                1 => circuit_breaker::Classification::Failure,
                _ => circuit_breaker::Classification::Ignored,
            };
            breaker.try_acquire().unwrap().record(class);
            if o < 2 {
                recorded.push(o == 1);
            }
            let last = &recorded[recorded.len().saturating_sub(size as usize)..];
            let failed = last.iter().filter(|f| **f).count();
            let reached = last.len() == size as usize
                && failed as f32 * 100.0 / size as f32 >= threshold as f32;
            if reached && !metrics_only {
                prop_assert_eq!(breaker.state(), State::Open);
                break;
            }
            prop_assert_eq!(breaker.state(), state);
            let m = breaker.metrics();
            prop_assert_eq!(m.buffered_calls as usize, last.len());
            prop_assert_eq!(m.failed_calls as usize, failed);
        }
    }
}
