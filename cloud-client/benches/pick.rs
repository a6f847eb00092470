//! One pick (and the record of its outcome) from 100 instances, for each
//! strategy, and the same pick in `tower::balance::p2c` over peak-EWMA
//! services as the peer.
//!
//! `cargo bench -p cloud-client --bench pick -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cloud_client::discovery::ServiceInstance;
use cloud_client::loadbalancer::{LoadBalancer, Outcome, Strategy};
use cloud_protocol::eureka::{InstanceStatus, Metadata};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::Service;
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PeakEwma};

const INSTANCES: usize = 100;

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

fn ours(c: &mut Criterion) {
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

use std::future::Future as _;

criterion_group!(benches, ours);
criterion_main!(benches);
