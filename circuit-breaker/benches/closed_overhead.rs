//! Closed-state overhead per call: our breaker against `recloser` and
//! `failsafe`, configured alike (a window of 100 calls, 50 % failure
//! threshold), single-threaded and with two threads sharing one breaker.
//!
//! `cargo bench -p circuit-breaker`; the figures go to docs/benchmarks.md.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use circuit_breaker::{CircuitBreaker, CircuitBreakerConfig};
use criterion::{Criterion, criterion_group};
use tokio::time::Instant;

/// The guarded call: trivial, always succeeds, so every breaker stays CLOSED.
#[inline(always)]
fn upstream() -> Result<u64, u64> {
    Ok(black_box(7))
}

#[inline(always)]
fn upstream_at(_: u64) -> Result<u64, u64> {
    upstream()
}

/// A call that fails once in 20 (5%): every breaker stays CLOSED, but the
/// window always holds a failure, so ours takes its locked path.
#[inline(always)]
fn flaky(i: u64) -> Result<u64, u64> {
    if black_box(i).is_multiple_of(20) {
        Err(i)
    } else {
        Ok(i)
    }
}

fn ours() -> CircuitBreaker {
    CircuitBreaker::new(
        "bench",
        CircuitBreakerConfig {
            sliding_window_size: 100,
            minimum_number_of_calls: 100,
            failure_rate_threshold: 50.0,
            ..Default::default()
        },
    )
    .unwrap()
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .half_open_len(10)
        .open_wait(Duration::from_secs(60))
        .build()
}

/// failsafe has no count window; its closest policy is a success rate over a
/// time window with a minimum of 100 requests.
fn failsafe() -> impl failsafe::CircuitBreaker + Clone + Send + Sync + 'static {
    let policy = failsafe::failure_policy::success_rate_over_time_window(
        0.5,
        100,
        Duration::from_secs(30),
        failsafe::backoff::constant(Duration::from_secs(60)),
    );
    failsafe::Config::new().failure_policy(policy).build()
}

/// Polls a future that completes at once, with a no-op waker.
#[inline(always)]
fn poll_once<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the benchmarked future never waits"),
    }
}

fn single_threaded(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed_1_thread");
    g.bench_function("bare_call", |b| b.iter(|| black_box(upstream().is_ok())));
    g.bench_function("bare_async_call", |b| {
        b.iter(|| black_box(poll_once(async { upstream() }).is_ok()))
    });
    let cb = ours();
    g.bench_function("ours_sync", |b| {
        b.iter(|| black_box(cb.call_sync(upstream).is_ok()))
    });
    g.bench_function("ours_async", |b| {
        b.iter(|| black_box(poll_once(cb.call(|| async { upstream() })).is_ok()))
    });
    let rc = recloser();
    g.bench_function("recloser", |b| {
        b.iter(|| black_box(rc.call(upstream).is_ok()))
    });
    let fs = failsafe();
    g.bench_function("failsafe", |b| {
        b.iter(|| black_box(failsafe::CircuitBreaker::call(&fs, upstream).is_ok()))
    });
    g.finish();
    assert_eq!(cb.state(), circuit_breaker::State::Closed);

    let mut g = c.benchmark_group("closed_1_thread_5pct_failures");
    let cb = ours();
    let mut i = 0u64;
    g.bench_function("ours_sync", |b| {
        b.iter(|| {
            i += 1;
            black_box(cb.call_sync(|| flaky(i)).is_ok())
        })
    });
    let rc = recloser();
    g.bench_function("recloser", |b| {
        b.iter(|| {
            i += 1;
            black_box(rc.call(|| flaky(i)).is_ok())
        })
    });
    let fs = failsafe();
    g.bench_function("failsafe", |b| {
        b.iter(|| {
            i += 1;
            black_box(failsafe::CircuitBreaker::call(&fs, || flaky(i)).is_ok())
        })
    });
    g.finish();
    assert_eq!(cb.state(), circuit_breaker::State::Closed);
}

/// Two threads each make `iters` calls on one shared breaker; the result is
/// the wall time divided by 2, i.e. the amortised time per call.
fn two_threads<B: Send + Sync + 'static>(
    breaker: Arc<B>,
    call: fn(&B, u64) -> bool,
) -> impl FnMut(u64) -> Duration {
    move |iters| {
        let start = Arc::new(Barrier::new(3));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let breaker = breaker.clone();
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    for i in 0..iters {
                        black_box(call(&breaker, i));
                    }
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        for w in workers {
            w.join().unwrap();
        }
        began.elapsed() / 2
    }
}

fn shared_by_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed_2_threads");
    g.bench_function("ours_sync", |b| {
        b.iter_custom(two_threads(Arc::new(ours()), |cb, _| {
            cb.call_sync(upstream).is_ok()
        }))
    });
    g.bench_function("recloser", |b| {
        b.iter_custom(two_threads(Arc::new(recloser()), |rc, _| {
            rc.call(upstream).is_ok()
        }))
    });
    g.bench_function("failsafe", |b| {
        b.iter_custom(two_threads(Arc::new(failsafe()), |fs, _| {
            failsafe::CircuitBreaker::call(fs, upstream).is_ok()
        }))
    });
    g.finish();

    let mut g = c.benchmark_group("closed_2_threads_5pct_failures");
    g.bench_function("ours_sync", |b| {
        b.iter_custom(two_threads(Arc::new(ours()), |cb, i| {
            cb.call_sync(|| flaky(i)).is_ok()
        }))
    });
    g.bench_function("recloser", |b| {
        b.iter_custom(two_threads(Arc::new(recloser()), |rc, i| {
            rc.call(|| flaky(i)).is_ok()
        }))
    });
    g.bench_function("failsafe", |b| {
        b.iter_custom(two_threads(Arc::new(failsafe()), |fs, i| {
            failsafe::CircuitBreaker::call(fs, || flaky(i)).is_ok()
        }))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_threaded, shared_by_two_threads
}

/// ns per call of `calls` calls of `f`, once.
fn ns_per_call(calls: u64, mut f: impl FnMut(u64)) -> f64 {
    let began = Instant::now();
    for i in 0..calls {
        f(i);
    }
    began.elapsed().as_nanos() as f64 / calls as f64
}

fn min_and_median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

/// A noise-robust cross-check of the criterion figures: the three breakers
/// measured in short interleaved rounds (so a burst of load from other
/// processes hits all of them alike), reporting the minimum and median round.
fn interleaved_summary() {
    interleaved("all calls succeed", upstream_at);
    interleaved("5% of calls fail", flaky);
    interleaved_two_threads("all calls succeed", upstream_at);
    interleaved_two_threads("5% of calls fail", flaky);
}

/// Wall time per call of two threads making `calls` calls each at once,
/// from the first thread's start to the last thread's end.
fn ns_per_call_two_threads(calls: u64, f: &(impl Fn(u64) + Sync)) -> f64 {
    let start = Barrier::new(2);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let began = Instant::now();
                    for i in 0..calls {
                        f(i);
                    }
                    (began, Instant::now())
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let began = spans.iter().map(|s| s.0).min().unwrap();
    let ended = spans.iter().map(|s| s.1).max().unwrap();
    (ended - began).as_nanos() as f64 / (2 * calls) as f64
}

fn interleaved_two_threads(label: &str, call: impl Fn(u64) -> Result<u64, u64> + Copy + Sync) {
    const ROUNDS: usize = 40;
    const CALLS: u64 = 100_000;
    let (cb, rc, fs) = (ours(), recloser(), failsafe());
    let mut rounds: [Vec<f64>; 3] = Default::default();
    for _ in 0..ROUNDS {
        rounds[0].push(ns_per_call_two_threads(CALLS, &|i| {
            black_box(cb.call_sync(|| call(i)).is_ok());
        }));
        rounds[1].push(ns_per_call_two_threads(CALLS, &|i| {
            black_box(rc.call(|| call(i)).is_ok());
        }));
        rounds[2].push(ns_per_call_two_threads(CALLS, &|i| {
            black_box(failsafe::CircuitBreaker::call(&fs, || call(i)).is_ok());
        }));
    }
    println!(
        "interleaved, 2 threads on one breaker, {label}, {ROUNDS} rounds x 2 x {CALLS} calls: min / median ns per call"
    );
    for (name, r) in ["ours_sync", "recloser", "failsafe"]
        .into_iter()
        .zip(rounds)
    {
        let (min, median) = min_and_median(r);
        println!("  {name:<10} {min:6.2} / {median:6.2}");
    }
    assert_eq!(cb.state(), circuit_breaker::State::Closed);
}

fn interleaved(label: &str, call: impl Fn(u64) -> Result<u64, u64> + Copy) {
    const ROUNDS: usize = 300;
    const CALLS: u64 = 20_000;
    let (cb, rc, fs) = (ours(), recloser(), failsafe());
    let mut rounds: [Vec<f64>; 4] = Default::default();
    for _ in 0..ROUNDS {
        rounds[0].push(ns_per_call(CALLS, |i| {
            black_box(call(i).is_ok());
        }));
        rounds[1].push(ns_per_call(CALLS, |i| {
            black_box(cb.call_sync(|| call(i)).is_ok());
        }));
        rounds[2].push(ns_per_call(CALLS, |i| {
            black_box(rc.call(|| call(i)).is_ok());
        }));
        rounds[3].push(ns_per_call(CALLS, |i| {
            black_box(failsafe::CircuitBreaker::call(&fs, || call(i)).is_ok());
        }));
    }
    println!(
        "interleaved, 1 thread, {label}, {ROUNDS} rounds x {CALLS} calls: min / median ns per call"
    );
    for (name, r) in ["bare_call", "ours_sync", "recloser", "failsafe"]
        .into_iter()
        .zip(rounds)
    {
        let (min, median) = min_and_median(r);
        println!("  {name:<10} {min:6.2} / {median:6.2}");
    }
    assert_eq!(cb.state(), circuit_breaker::State::Closed);
}

fn main() {
    benches();
    // `--profile-time` runs one benchmark under a profiler: nothing else.
    if !std::env::args().any(|a| a == "--profile-time") {
        interleaved_summary();
    }
    Criterion::default().configure_from_args().final_summary();
}
