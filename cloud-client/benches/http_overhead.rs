//! The resilient HTTP client against plain `reqwest`, in one run, to the
//! same loopback upstream (a hyper HTTP/1 server started here): added
//! latency at p50 and p99 for sequential calls, and throughput with
//! concurrent callers. Rounds alternate between the two clients so that
//! the machine's load drifts over both alike.
//!
//! `cargo bench -p cloud-client --bench http_overhead`
//! (`HTTP_BENCH_CALLS`, default 4000 sequential calls per client per
//! round; `HTTP_BENCH_SECONDS`, default 2 seconds of load per client per
//! round; `HTTP_BENCH_CONCURRENCY`, default 32; 3 rounds).
//!
//! Ours runs the whole path: `lb://upstream/ping` resolved through a
//! static instance list, the round-robin balancer, the service's circuit
//! breaker, the retry budget, the per-call timeout and a `traceparent`
//! header.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cloud_client::discovery::ServiceInstance;
use cloud_client::http::{HttpClientConfig, LbHttpClient, StaticInstances};
use cloud_protocol::eureka::{InstanceStatus, Metadata};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;

const ROUNDS: usize = 3;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A hyper server answering `pong` to everything, on 127.0.0.1:0.
async fn upstream() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"pong",
                    ))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// One of the two clients under test.
#[derive(Clone)]
enum Client {
    Plain(reqwest::Client, String),
    Ours(LbHttpClient),
}

impl Client {
    async fn call(&self) {
        let resp = match self {
            Client::Plain(c, url) => c.get(url).send().await.unwrap(),
            Client::Ours(c) => c.get("lb://upstream/ping").await.unwrap(),
        };
        assert!(resp.status().is_success());
        let body = resp.bytes().await.unwrap();
        assert_eq!(&body[..], b"pong");
    }
}

/// Latencies of `n` sequential calls, in microseconds.
async fn latencies(client: &Client, n: u64) -> Vec<f64> {
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t = Instant::now();
        client.call().await;
        out.push(t.elapsed().as_nanos() as f64 / 1_000.0);
    }
    out
}

/// Calls per second with `concurrency` callers for `time`.
async fn throughput(client: &Client, concurrency: u64, time: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, stop, done) = (client.clone(), Arc::clone(&stop), Arc::clone(&done));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    client.call().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(time).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let calls = env_or("HTTP_BENCH_CALLS", 4000);
    let seconds = env_or("HTTP_BENCH_SECONDS", 2);
    let concurrency = env_or("HTTP_BENCH_CONCURRENCY", 32);
    // `cargo bench` passes `--bench`; nothing else is taken.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = upstream().await;
        let instance = ServiceInstance {
            instance_id: format!("{addr}:upstream"),
            app: "UPSTREAM".into(),
            host: addr.ip().to_string(),
            port: addr.port(),
            secure: false,
            status: InstanceStatus::Up,
            zone: None,
            weight: 1,
            metadata: Metadata::new(),
            vip_address: None,
            secure_vip_address: None,
        };
        let plain = Client::Plain(reqwest::Client::new(), format!("http://{addr}/ping"));
        let ours = Client::Ours(LbHttpClient::with_reqwest(
            StaticInstances::new().with("upstream", vec![instance]),
            HttpClientConfig::default(),
            reqwest::Client::new(),
        ));
        // Warm up: connections open, the service's state built.
        latencies(&plain, 200).await;
        latencies(&ours, 200).await;

        let (mut lat_plain, mut lat_ours) = (Vec::new(), Vec::new());
        let (mut rps_plain, mut rps_ours) = (0.0, 0.0);
        let time = Duration::from_secs(seconds);
        for round in 0..ROUNDS {
            // Alternate which goes first.
            let (first, second) = if round % 2 == 0 {
                (&plain, &ours)
            } else {
                (&ours, &plain)
            };
            let a = latencies(first, calls).await;
            let b = latencies(second, calls).await;
            let (p, o) = if round % 2 == 0 { (a, b) } else { (b, a) };
            lat_plain.extend(p);
            lat_ours.extend(o);
            let a = throughput(first, concurrency, time).await;
            let b = throughput(second, concurrency, time).await;
            let (p, o) = if round % 2 == 0 { (a, b) } else { (b, a) };
            rps_plain += p;
            rps_ours += o;
        }
        lat_plain.sort_by(f64::total_cmp);
        lat_ours.sort_by(f64::total_cmp);
        let (rps_plain, rps_ours) = (rps_plain / ROUNDS as f64, rps_ours / ROUNDS as f64);
        let row = |name: &str, lat: &[f64], rps: f64| {
            println!(
                "{name:<14} p50 {:>8.1} us  p99 {:>8.1} us  {:>9.0} calls/s ({concurrency} callers)",
                percentile(lat, 0.50),
                percentile(lat, 0.99),
                rps
            );
        };
        println!(
            "loopback GET, {ROUNDS} alternating rounds of {calls} sequential calls and {seconds} s of load per client"
        );
        row("plain reqwest", &lat_plain, rps_plain);
        row("LbHttpClient", &lat_ours, rps_ours);
        println!(
            "added: p50 {:+.1} us, p99 {:+.1} us; throughput ratio ours/plain {:.3} ({:+.1} %)",
            percentile(&lat_ours, 0.50) - percentile(&lat_plain, 0.50),
            percentile(&lat_ours, 0.99) - percentile(&lat_plain, 0.99),
            rps_ours / rps_plain,
            (rps_ours / rps_plain - 1.0) * 100.0
        );
    });
}
