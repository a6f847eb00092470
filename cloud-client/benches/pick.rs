//! One pick (and the record of its outcome) from 100 instances, for each
//! strategy, and the same pick in `tower::balance::p2c` over peak-EWMA
//! services as the peer.
//!
//! `cargo bench -p cloud-client --bench pick -- --warm-up-time 1 --measurement-time 3`
//!
//! Time is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so
//! that other processes on a shared machine do not inflate the figures;
//! `PICK_BENCH_WALL_TIME=1` measures wall-clock time instead.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::future::Future as _;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cloud_client::discovery::ServiceInstance;
use cloud_client::loadbalancer::{LoadBalancer, Outcome, Strategy};
use cloud_protocol::eureka::{InstanceStatus, Metadata};
use criterion::Criterion;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use nix::time::{ClockId, clock_gettime};
use tower::Service;
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PeakEwma};

const INSTANCES: usize = 100;

/// The calling thread's CPU time, in nanoseconds.
struct ThreadCpuTime;

static WALL: WallTime = WallTime;

fn thread_cpu_ns() -> u64 {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, started: u64) -> u64 {
        thread_cpu_ns().saturating_sub(started)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Nanoseconds, printed as criterion prints durations.
        WALL.formatter()
    }
}

fn instances() -> Arc<[ServiceInstance]> {
    (0..INSTANCES)
        .map(|i| ServiceInstance {
            instance_id: format!("10.0.{}.{}:svc:8080", i / 256, i % 256),
            app: "SVC".into(),
            host: format!("10.0.{}.{}", i / 256, i % 256),
            port: 8080,
            secure: false,
            status: InstanceStatus::Up,
            zone: Some(if i % 3 == 0 { "eu" } else { "us" }.into()),
            weight: 1 + (i % 4) as u32,
            metadata: Metadata::new(),
            vip_address: Some("svc".into()),
            secure_vip_address: None,
        })
        .collect()
}

fn ours<M: Measurement>(c: &mut Criterion<M>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let list = instances();
    let mut group = c.benchmark_group("pick_100");
    let strategies = [
        ("round_robin", Strategy::RoundRobin),
        ("random", Strategy::Random),
        ("weighted", Strategy::Weighted),
        ("zone_preference", Strategy::ZonePreference("eu".into())),
        ("p2c_peak_ewma", Strategy::PowerOfTwoChoices),
    ];
    for (name, strategy) in strategies {
        let lb = LoadBalancer::new(strategy);
        lb.update(&list);
        group.bench_function(name, |b| {
            b.iter(|| {
                let p = lb.pick().unwrap();
                black_box(p.instance());
                p.record(Outcome::Success);
            })
        });
    }
    let lb = LoadBalancer::new(Strategy::Sticky);
    lb.update(&list);
    let keys: Vec<String> = (0..1024).map(|i| format!("session-{i}")).collect();
    let mut k = 0usize;
    group.bench_function("sticky", |b| {
        b.iter(|| {
            k = (k + 1) & 1023;
            let p = lb.pick_for(&keys[k]).unwrap();
            black_box(p.instance());
            p.record(Outcome::Success);
        })
    });

    // The peer: tower's P2C over peak-EWMA services that answer at once.
    let services: Vec<_> = (0..INSTANCES)
        .map(|_| {
            let svc = tower::service_fn(|_: ()| async { Ok::<_, Infallible>(()) });
            PeakEwma::new(
                svc,
                Duration::from_millis(1),
                Duration::from_secs(10).as_nanos() as f64,
                CompleteOnResponse::default(),
            )
        })
        .collect();
    let mut balance = Balance::new(ServiceList::new(services));
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    group.bench_function("tower_p2c_peak_ewma", |b| {
        b.iter(|| {
            match balance.poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => {}
                other => panic!("balance not ready: {:?}", other.map(|r| r.is_ok())),
            }
            let mut fut = std::pin::pin!(balance.call(()));
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(r) => {
                    black_box(r.ok());
                }
                Poll::Pending => panic!("the service answers at once"),
            }
        })
    });
    group.finish();
}

fn main() {
    if std::env::var_os("PICK_BENCH_WALL_TIME").is_some() {
        ours(&mut Criterion::default().configure_from_args());
    } else {
        ours(
            &mut Criterion::default()
                .with_measurement(ThreadCpuTime)
                .configure_from_args(),
        );
    }
    Criterion::default().configure_from_args().final_summary();
}
