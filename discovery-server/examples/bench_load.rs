//! Load generator for `bench/discovery-load.sh`: a hyper client on loopback.
//!
//! - `bench_load ceiling`: a bare hyper server that answers `200` to every
//!   request (the ceiling); prints `listening ADDR`.
//! - `bench_load run --server URL --pid PID --ceiling URL [--instances N]
//!   [--big M] [--seconds S] [--connections C]`: registers N instances on
//!   the discovery server, renews each once a second for S seconds (paced),
//!   then drives renewals as fast as C connections allow against the server
//!   and the ceiling in turn, times full `GET /eureka/apps` (JSON, gzip)
//!   unchanged at N and M instances, and reads the server's VmRSS.
//! - `bench_load free-ports K`: prints K free loopback ports.
//! - `bench_load replicated --server URL --peer URL [--instances N]
//!   [--seconds S]`: registers N instances on one node of a pair, times how
//!   long until its peer shows them all, renews each once a second on the
//!   first node, and compares both nodes' counters (Prometheus).
//! - `bench_load compare --server URL --pid PID --reference URL
//!   --reference-pid PID [--instances N] [--seconds S] [--rounds R]
//!   [--slices K] [--connections C] [--warm-up-seconds W] [--fetches F]`:
//!   the same load on our server and on a reference Eureka server
//!   (`bench/eureka-vs-spring.sh`), always alternating between the two:
//!   registers N instances on each (alternating chunks), warms both up alike,
//!   then paced renewals (each instance once a second, R rounds of S
//!   seconds each), saturated renewals (K one-second slices each), full
//!   `GET /eureka/apps` (JSON, gzip, F alternating fetches) and VmRSS; prints
//!   each figure for both and the ratio ours / reference. Renewals use the
//!   Eureka client's path, `PUT /eureka/apps/{APP}/{id}?status=UP&lastDirtyTimestamp=...`.
//!
//! Everything is bounded in count and time.

#![allow(clippy::unwrap_used)]

#[path = "shared/fixture.rs"]
mod fixture;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cloud_protocol::eureka::{InstanceInfo, LeaseInfo, json};
use fixture::{instance, renew_uri, rss_kib};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn num(name: &str, default: u64) -> u64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("ceiling") => ceiling().await,
        Some("run") => run().await,
        Some("free-ports") => free_ports(),
        Some("replicated") => replicated().await,
        Some("compare") => compare::compare().await,
        _ => eprintln!("usage: bench_load ceiling | run --server URL --pid PID --ceiling URL"),
    }
}

/// A bare hyper HTTP/1 server: `200`, empty body, to anything.
async fn ceiling() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening {}", listener.local_addr().unwrap());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .build(connector)
}

async fn send(client: &HttpClient, req: Request<Full<Bytes>>) -> (StatusCode, usize) {
    let response = client.request(req).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.len())
}

/// Runs `work(worker, index)` for indexes `range` over `connections`
/// concurrent workers.
async fn parallel<F, Fut>(connections: u64, range: std::ops::Range<u64>, work: F)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicU64::new(range.start));
    let end = range.end;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (work, next) = (Arc::clone(&work), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        return;
                    }
                    work(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn register_range(
    client: &HttpClient,
    base: &str,
    range: std::ops::Range<u64>,
    connections: u64,
) {
    let (client, base) = (client.clone(), base.to_owned());
    parallel(connections, range, move |i| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let info = InstanceInfo {
                lease_info: Some(LeaseInfo {
                    renewal_interval_in_secs: 1,
                    ..LeaseInfo::default()
                }),
                ..instance(i)
            };
            let req = Request::post(format!("{base}/eureka/apps/{}", info.app))
                .header("Content-Type", "application/json")
                .body(Full::new(Bytes::from(json::encode_instance(&info))))
                .unwrap();
            let (status, _) = send(&client, req).await;
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
    })
    .await;
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Each of `n` instances renews once a second for `seconds`, spread evenly
/// over the second. Returns (renewals per second achieved, sorted latencies in µs).
async fn paced(
    client: &HttpClient,
    base: &str,
    n: u64,
    seconds: u64,
    connections: u64,
) -> (f64, Vec<u32>) {
    let started = Instant::now();
    let total = n * seconds;
    let latencies = Arc::new(parking_lot::Mutex::new(Vec::with_capacity(total as usize)));
    let (c, b, lat) = (client.clone(), base.to_owned(), Arc::clone(&latencies));
    parallel(connections, 0..total, move |k| {
        let (client, base, lat) = (c.clone(), b.clone(), Arc::clone(&lat));
        async move {
            // Renewal k is due at k / n seconds.
            let due = started + Duration::from_micros(k * 1_000_000 / n);
            tokio::time::sleep_until(due).await;
            let t = Instant::now();
            let req = Request::put(renew_uri(&base, k % n))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let (status, _) = send(&client, req).await;
            assert_eq!(status, StatusCode::OK);
            let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
            lat.lock().push(us);
        }
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut l = std::mem::take(&mut *latencies.lock());
    l.sort_unstable();
    (total as f64 / elapsed, l)
}

/// Renewals as fast as `connections` allow for `secs`; returns per second.
async fn saturate(client: &HttpClient, base: &str, n: u64, secs: u64, connections: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|w| {
            let (client, base, stop, done) = (
                client.clone(),
                base.to_owned(),
                Arc::clone(&stop),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let req = Request::put(renew_uri(&base, i % n))
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    let (status, _) = send(&client, req).await;
                    assert_eq!(status, StatusCode::OK);
                    done.fetch_add(1, Ordering::Relaxed);
                    i += connections;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Sends a few cheap requests over `workers` connections.
async fn warm_up(client: &HttpClient, base: &str, workers: u64) {
    let (client, base) = (client.clone(), base.to_owned());
    parallel(workers, 0..workers * 20, move |_| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let req = Request::get(format!("{base}/actuator/health"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            send(&client, req).await;
        }
    })
    .await;
}

/// Times full fetches (JSON, gzip) of an unchanged registry: the first one
/// (built after the last change) and then `rounds` more.
/// Resident bytes per instance grown from `before_kib` to `after_kib`.
fn bytes_per_instance(before_kib: u64, after_kib: u64, instances: u64) -> f64 {
    (after_kib.saturating_sub(before_kib) * 1024) as f64 / instances as f64
}

/// Times `rounds` full fetches from the server holding `count` instances,
/// then prints them and the server's resident memory per instance.
async fn fetch_and_report(
    client: &HttpClient,
    server: &str,
    pid: &str,
    rounds: usize,
    count: u64,
    rss_before: u64,
) {
    let (first, times, len) = full_fetch(client, server, rounds).await;
    let rss = rss_kib(pid);
    println!(
        "full fetch at {count}: first after change {:.2} ms, unchanged p50 {} µs, p99 {} µs ({len} B gzip)",
        first.as_secs_f64() * 1e3,
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
    println!(
        "resident memory at {count}: {:.0} B per instance ({rss_before} KiB -> {rss} KiB)",
        bytes_per_instance(rss_before, rss, count),
    );
}

async fn full_fetch(client: &HttpClient, base: &str, rounds: usize) -> (Duration, Vec<u32>, usize) {
    let req = || {
        Request::get(format!("{base}/eureka/apps"))
            .header("Accept", "application/json")
            .header("Accept-Encoding", "gzip")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let t = Instant::now();
    let (status, len) = send(client, req()).await;
    assert_eq!(status, StatusCode::OK);
    let first = t.elapsed();
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        send(client, req()).await;
        times.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    times.sort_unstable();
    (first, times, len)
}

fn free_ports() {
    let k: usize = std::env::args()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let held: Vec<_> = (0..k)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<String> = held
        .iter()
        .map(|l| l.local_addr().unwrap().port().to_string())
        .collect();
    println!("{}", ports.join(" "));
}

/// Waits until `base` answers its health endpoint.
async fn wait_up(client: &HttpClient, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let req = Request::get(format!("{base}/actuator/health"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        if let Ok(r) = client.request(req).await
            && r.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "{base} never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One counter or gauge from `/actuator/prometheus`.
async fn metric(client: &HttpClient, base: &str, name: &str) -> f64 {
    let req = Request::get(format!("{base}/actuator/prometheus"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(req).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn replicated() {
    let server = arg("--server").expect("--server URL");
    let peer = arg("--peer").expect("--peer URL");
    let n = num("--instances", 10_000);
    let seconds = num("--seconds", 10);
    let connections = num("--connections", 64);
    let client = client();
    for base in [&server, &peer] {
        wait_up(&client, base).await;
    }
    warm_up(&client, &server, connections).await;
    let t = Instant::now();
    register_range(&client, &server, 0..n, connections).await;
    let registered = t.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&client, &peer, "discovery_instances").await < n as f64 {
        assert!(
            Instant::now() < deadline,
            "the peer never showed every instance"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "replicated registrations: {n} registered on one node in {:.2} s; all on its peer {:.0} ms after the last one",
        registered.as_secs_f64(),
        (t.elapsed() - registered).as_secs_f64() * 1e3
    );
    let before_a = metric(&client, &server, "discovery_renewals_total").await;
    let before_b = metric(&client, &peer, "discovery_renewals_total").await;
    let batches_before = metric(&client, &server, "discovery_replication_batches_total").await;
    let (rate, lat) = paced(&client, &server, n, seconds, connections.max(n / 100)).await;
    // Let the last batches land.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&client, &server, "discovery_replication_queue").await > 0.0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let renewed_a = metric(&client, &server, "discovery_renewals_total").await - before_a;
    let renewed_b = metric(&client, &peer, "discovery_renewals_total").await - before_b;
    let batches =
        metric(&client, &server, "discovery_replication_batches_total").await - batches_before;
    let dropped = metric(&client, &server, "discovery_replication_dropped_total").await;
    let failed = metric(&client, &server, "discovery_replication_failures_total").await;
    println!(
        "replicated renewals ({n} instances, each once a second, {seconds} s, on a node with one peer): {rate:.0}/s, latency p50 {} µs, p99 {} µs; \
         the peer applied {renewed_b:.0} of {renewed_a:.0} in {batches:.0} batches ({:.0} items each); dropped {dropped:.0}, failed {failed:.0}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        renewed_a / batches.max(1.0)
    );
}

async fn run() {
    let server = arg("--server").expect("--server URL");
    let ceiling = arg("--ceiling").expect("--ceiling URL");
    let pid = arg("--pid").expect("--pid PID");
    let n = num("--instances", 10_000);
    let big = num("--big", 100_000);
    let seconds = num("--seconds", 10);
    let connections = num("--connections", 64);
    let sat_secs = num("--saturate-seconds", 5);
    let client = client();

    // Open the connections first, so that their buffers are not counted
    // as memory per instance.
    let workers = connections.max(n / 100);
    warm_up(&client, &server, workers).await;
    let rss_before = rss_kib(&pid);
    let t = Instant::now();
    register_range(&client, &server, 0..n, connections).await;
    println!(
        "registered {n} instances in {:.2} s; resident memory {:.0} B per instance",
        t.elapsed().as_secs_f64(),
        bytes_per_instance(rss_before, rss_kib(&pid), n)
    );

    for (name, base) in [("discovery-server", &server), ("bare hyper", &ceiling)] {
        let (rate, lat) = paced(&client, base, n, seconds, workers).await;
        println!(
            "paced renewals on {name} ({n} instances, each once a second, {seconds} s): {rate:.0}/s, latency p50 {} µs, p99 {} µs, max {} µs",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0)
        );
    }

    println!(
        "resident memory at {n} after the renewals, before any fetch: {:.0} B per instance",
        bytes_per_instance(rss_before, rss_kib(&pid), n)
    );
    fetch_and_report(&client, &server, &pid, 50, n, rss_before).await;

    // Saturation: ours and the ceiling in alternating one-second slices,
    // so that bursts of other work on the machine hit both alike.
    let slices = num("--rounds", 3).max(1) * sat_secs.max(1);
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..slices {
        ours.push(saturate(&client, &server, n, 1, connections).await);
        bare.push(saturate(&client, &ceiling, n, 1, connections).await);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratios: Vec<f64> = ours.iter().zip(&bare).map(|(o, b)| o / b).collect();
    println!(
        "saturated renewals ({connections} connections, {slices} alternating 1 s slices each): discovery-server {:.0}/s, bare hyper {:.0}/s, ratio {:.2} (median of per-slice ratios {:.2})",
        mean(&ours),
        mean(&bare),
        mean(&ours) / mean(&bare),
        median(&ratios)
    );

    if big > n {
        let t = Instant::now();
        register_range(&client, &server, n..big, connections).await;
        println!(
            "registered up to {big} instances in {:.2} s",
            t.elapsed().as_secs_f64()
        );
        fetch_and_report(&client, &server, &pid, 20, big, rss_before).await;
    }
}

/// `bench_load compare`: ours against a reference Eureka server, same load,
/// alternating between the two so that other work on the machine hits both
/// alike. Unlike `run`, a failed request is counted, not fatal: the two
/// servers differ in connection handling (Tomcat closes a keep-alive
/// connection after 100 requests by default).
mod compare {
    use super::*;

    /// The `lastDirtyTimestamp` every instance registers with and every
    /// renewal sends back, as a Eureka client does.
    const DIRTY: i64 = 1_700_000_000_000;

    /// One server under test and what went wrong with it.
    struct Target {
        name: &'static str,
        base: String,
        pid: String,
        failed: AtomicU64,
    }

    impl Target {
        fn new(name: &'static str, base: String, pid: String) -> Arc<Self> {
            Arc::new(Self {
                name,
                base,
                pid,
                failed: AtomicU64::new(0),
            })
        }

        /// Sends `req`; `true` when the status is `expect`. Anything else
        /// (including a transport error) is counted as a failure.
        async fn call(
            &self,
            client: &HttpClient,
            req: Request<Full<Bytes>>,
            expect: StatusCode,
        ) -> bool {
            let ok = match client.request(req).await {
                Ok(response) => {
                    let status = response.status();
                    response.into_body().collect().await.is_ok() && status == expect
                }
                Err(_) => false,
            };
            if !ok {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
            ok
        }

        fn renew(&self, i: u64) -> Request<Full<Bytes>> {
            Request::put(format!(
                "{}&lastDirtyTimestamp={DIRTY}",
                renew_uri(&self.base, i)
            ))
            .body(Full::new(Bytes::new()))
            .unwrap()
        }

        fn fetch(&self, encoding: &str) -> Request<Full<Bytes>> {
            Request::get(format!("{}/eureka/apps", self.base))
                .header("Accept", "application/json")
                .header("Accept-Encoding", encoding)
                .body(Full::new(Bytes::new()))
                .unwrap()
        }

        fn rss_mib(&self) -> f64 {
            rss_kib(&self.pid) as f64 / 1024.0
        }
    }

    fn median(v: &[f64]) -> f64 {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// Waits (at most 60 s) until `GET /eureka/apps` answers `200`.
    async fn wait_ready(client: &HttpClient, t: &Target) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.request(t.fetch("identity")).await
                && r.status() == StatusCode::OK
                && r.into_body().collect().await.is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "{} never answered", t.base);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens `workers` connections with a cheap request (an unknown
    /// application, `404` on both).
    async fn open_connections(client: &HttpClient, t: &Arc<Target>, workers: u64) {
        let (client, t) = (client.clone(), Arc::clone(t));
        parallel(workers, 0..workers * 4, move |_| {
            let (client, t) = (client.clone(), Arc::clone(&t));
            async move {
                let req = Request::get(format!("{}/eureka/apps/NO-SUCH-APP", t.base))
                    .header("Accept", "application/json")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let _ = client.request(req).await;
            }
        })
        .await;
    }

    /// Registers instances `range` on `t`; returns the seconds it took.
    async fn register(
        client: &HttpClient,
        t: &Arc<Target>,
        range: std::ops::Range<u64>,
        connections: u64,
    ) -> f64 {
        let started = Instant::now();
        let (client, t) = (client.clone(), Arc::clone(t));
        parallel(connections, range, move |i| {
            let (client, t) = (client.clone(), Arc::clone(&t));
            async move {
                let info = InstanceInfo {
                    last_dirty_timestamp: DIRTY,
                    last_updated_timestamp: DIRTY,
                    ..instance(i)
                };
                let req = Request::post(format!("{}/eureka/apps/{}", t.base, info.app))
                    .header("Content-Type", "application/json")
                    .body(Full::new(Bytes::from(json::encode_instance(&info))))
                    .unwrap();
                t.call(&client, req, StatusCode::NO_CONTENT).await;
            }
        })
        .await;
        started.elapsed().as_secs_f64()
    }

    /// Renewals as fast as `connections` allow for `secs` seconds; per second.
    async fn saturate(
        client: &HttpClient,
        t: &Arc<Target>,
        n: u64,
        secs: f64,
        connections: u64,
    ) -> f64 {
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let end = started + Duration::from_secs_f64(secs);
        let tasks: Vec<_> = (0..connections)
            .map(|w| {
                let (client, t, done) = (client.clone(), Arc::clone(t), Arc::clone(&done));
                tokio::spawn(async move {
                    let mut i = w;
                    while Instant::now() < end {
                        if t.call(&client, t.renew(i % n), StatusCode::OK).await {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        i += connections;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    }

    /// Each of `n` instances renews once a second for `seconds`, spread
    /// evenly; a renewal not started within `seconds + 5` s is dropped.
    /// Returns (successful renewals per second, latencies in µs).
    async fn paced(
        client: &HttpClient,
        t: &Arc<Target>,
        n: u64,
        seconds: u64,
        workers: u64,
    ) -> (f64, Vec<u32>) {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds + 5);
        let total = n * seconds;
        let done = Arc::new(AtomicU64::new(0));
        let latencies = Arc::new(parking_lot::Mutex::new(Vec::with_capacity(total as usize)));
        let (c, tt, lat, d) = (
            client.clone(),
            Arc::clone(t),
            Arc::clone(&latencies),
            Arc::clone(&done),
        );
        parallel(workers, 0..total, move |k| {
            let (client, t, lat, done) =
                (c.clone(), Arc::clone(&tt), Arc::clone(&lat), Arc::clone(&d));
            async move {
                let due = started + Duration::from_micros(k * 1_000_000 / n);
                tokio::time::sleep_until(due).await;
                let sent = Instant::now();
                if sent > deadline {
                    return;
                }
                if t.call(&client, t.renew(k % n), StatusCode::OK).await {
                    done.fetch_add(1, Ordering::Relaxed);
                    let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                    lat.lock().push(us);
                }
            }
        })
        .await;
        let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        let l = std::mem::take(&mut *latencies.lock());
        (rate, l)
    }

    /// One full fetch (JSON, gzip): (µs, gzip bytes), or `None` on failure.
    async fn fetch_once(client: &HttpClient, t: &Target) -> Option<(u32, usize)> {
        let sent = Instant::now();
        let response = client.request(t.fetch("gzip")).await.ok()?;
        let ok = response.status() == StatusCode::OK
            && response
                .headers()
                .get("content-encoding")
                .is_some_and(|v| v == "gzip");
        let body = response.into_body().collect().await.ok()?.to_bytes();
        let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
        if !ok {
            t.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some((us, body.len()))
    }

    /// Instances in an uncompressed full fetch (to check both hold all),
    /// and its size in bytes.
    async fn count_instances(client: &HttpClient, t: &Target) -> (usize, usize) {
        let Ok(response) = client.request(t.fetch("identity")).await else {
            return (0, 0);
        };
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (
            String::from_utf8_lossy(&body)
                .matches("\"instanceId\"")
                .count(),
            body.len(),
        )
    }

    /// Prints one figure for both servers and the ratio ours / reference.
    fn row(figure: &str, unit: &str, ours: f64, reference: f64) {
        let ratio = if reference > 0.0 {
            ours / reference
        } else {
            f64::NAN
        };
        println!("| {figure} | {ours:.1} {unit} | {reference:.1} {unit} | {ratio:.2} |");
    }

    /// Prints the p50 and p99 rows (in ms) of both servers' sorted
    /// latencies (µs).
    fn latency_rows(figure: &str, both: &[Vec<u32>; 2]) {
        for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
            let ms = |v: &[u32]| f64::from(percentile(v, p)) / 1e3;
            row(
                &format!("{figure}, {name}"),
                "ms",
                ms(&both[0]),
                ms(&both[1]),
            );
        }
    }

    pub(super) async fn compare() {
        let n = num("--instances", 10_000);
        let seconds = num("--seconds", 5);
        let rounds = num("--rounds", 3).max(1);
        let slices = num("--slices", 10).max(1);
        let connections = num("--connections", 64);
        let warm_secs = num("--warm-up-seconds", 60);
        let fetches = num("--fetches", 60).max(1);
        let ours = Target::new(
            "ours",
            arg("--server").expect("--server URL"),
            arg("--pid").expect("--pid PID"),
        );
        let reference = Target::new(
            "reference",
            arg("--reference").expect("--reference URL"),
            arg("--reference-pid").expect("--reference-pid PID"),
        );
        let both = [&ours, &reference];
        let client = client();
        let workers = connections.max(n / 100);
        for t in both {
            wait_ready(&client, t).await;
            open_connections(&client, t, workers).await;
        }
        let rss_empty: Vec<f64> = both.iter().map(|t| t.rss_mib()).collect();

        // Registration in ten alternating chunks.
        let mut reg = [0.0_f64; 2];
        let chunk = n.div_ceil(10).max(1);
        let mut start = 0;
        while start < n {
            let range = start..(start + chunk).min(n);
            for (k, t) in both.iter().enumerate() {
                reg[k] += register(&client, t, range.clone(), connections).await;
            }
            start += chunk;
        }
        let rss_registered: Vec<f64> = both.iter().map(|t| t.rss_mib()).collect();
        let held = instances_held(&client, &both).await;
        println!(
            "registered {n} instances: ours in {:.2} s, reference in {:.2} s; full fetch lists {} (ours) and {} (reference) instances, {} B and {} B uncompressed",
            reg[0], reg[1], held[0].0, held[1].0, held[0].1, held[1].1
        );

        // Warm-up, the same for both: alternating one-second saturated
        // slices, each followed by a few full fetches.
        let warm_started = Instant::now();
        while warm_started.elapsed() < Duration::from_secs(warm_secs) {
            for t in both {
                saturate(&client, t, n, 1.0, connections).await;
                for _ in 0..5 {
                    fetch_once(&client, t).await;
                }
            }
        }
        let failed_warm: Vec<u64> = both
            .iter()
            .map(|t| t.failed.swap(0, Ordering::Relaxed))
            .collect();
        println!(
            "warm-up: {warm_secs} s of alternating saturated renewals and full fetches; failed requests: ours {}, reference {}",
            failed_warm[0], failed_warm[1]
        );

        // Paced renewals: alternating rounds.
        let mut rates = [Vec::new(), Vec::new()];
        let mut lats = [Vec::new(), Vec::new()];
        let mut p99s = [Vec::new(), Vec::new()];
        for _ in 0..rounds {
            for (k, t) in both.iter().enumerate() {
                let (rate, mut l) = paced(&client, t, n, seconds, workers).await;
                l.sort_unstable();
                rates[k].push(rate);
                p99s[k].push(f64::from(percentile(&l, 0.99)));
                lats[k].extend(l);
            }
        }
        for l in &mut lats {
            l.sort_unstable();
        }
        // Saturated renewals: alternating one-second slices.
        let mut sat = [Vec::new(), Vec::new()];
        for _ in 0..slices {
            for (k, t) in both.iter().enumerate() {
                sat[k].push(saturate(&client, t, n, 1.0, connections).await);
            }
        }
        let sat_ratios: Vec<f64> = sat[0].iter().zip(&sat[1]).map(|(a, b)| a / b).collect();
        // Full fetches: alternating single fetches.
        let mut times = [Vec::new(), Vec::new()];
        let mut sizes = [0usize; 2];
        for _ in 0..fetches {
            for (k, t) in both.iter().enumerate() {
                if let Some((us, len)) = fetch_once(&client, t).await {
                    times[k].push(us);
                    sizes[k] = len;
                }
            }
        }
        for v in &mut times {
            v.sort_unstable();
        }
        let rss_end: Vec<f64> = both.iter().map(|t| t.rss_mib()).collect();
        let failed: Vec<u64> = both
            .iter()
            .map(|t| t.failed.load(Ordering::Relaxed))
            .collect();

        println!();
        println!("| figure | ours | reference | ours / reference |");
        println!("| --- | --- | --- | --- |");
        row(
            &format!(
                "registration of {n} instances ({connections} connections, 10 alternating chunks)"
            ),
            "/s",
            n as f64 / reg[0],
            n as f64 / reg[1],
        );
        row(
            &format!(
                "paced renewals, {n} instances once a second, median of {rounds} x {seconds} s"
            ),
            "/s",
            median(&rates[0]),
            median(&rates[1]),
        );
        latency_rows("paced renewal latency (all rounds)", &lats);
        row(
            &format!("saturated renewals, {connections} connections, median of {slices} x 1 s"),
            "/s",
            median(&sat[0]),
            median(&sat[1]),
        );
        latency_rows(
            &format!("full fetch GET /eureka/apps (JSON, gzip) at {n}, {fetches} fetches"),
            &times,
        );
        row(
            "full fetch gzip body",
            "KB",
            sizes[0] as f64 / 1e3,
            sizes[1] as f64 / 1e3,
        );
        row(
            "VmRSS, empty (connections open)",
            "MiB",
            rss_empty[0],
            rss_empty[1],
        );
        row(
            &format!("VmRSS after registering {n}"),
            "MiB",
            rss_registered[0],
            rss_registered[1],
        );
        row(
            "VmRSS at the end (after renewals and fetches)",
            "MiB",
            rss_end[0],
            rss_end[1],
        );
        println!();
        println!(
            "per round, paced renewals/s: ours {:?}, reference {:?}; paced p99 per round (µs): ours {:?}, reference {:?}",
            rates[0].iter().map(|v| v.round()).collect::<Vec<_>>(),
            rates[1].iter().map(|v| v.round()).collect::<Vec<_>>(),
            p99s[0],
            p99s[1]
        );
        println!(
            "per slice, saturated renewals/s: ours {:?}, reference {:?}; median of per-slice ratios {:.2}",
            sat[0].iter().map(|v| v.round()).collect::<Vec<_>>(),
            sat[1].iter().map(|v| v.round()).collect::<Vec<_>>(),
            median(&sat_ratios)
        );
        println!(
            "failed requests after warm-up (wrong status or transport error): {} {}, {} {}",
            ours.name, failed[0], reference.name, failed[1]
        );
    }

    /// Instances listed by each server.
    async fn instances_held(client: &HttpClient, both: &[&Arc<Target>; 2]) -> Vec<(usize, usize)> {
        let mut held = Vec::new();
        for t in both {
            held.push(count_instances(client, t).await);
        }
        held
    }
}
