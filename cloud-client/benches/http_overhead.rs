//! The resilient HTTP client against plain `reqwest`, in one run, to the
//! same loopback upstream (a hyper HTTP/1 server started here): added
//! latency at p50 and p99 for sequential calls, and throughput with
//! concurrent callers.
//!
//! `cargo bench -p cloud-client --bench http_overhead`
//!
//! Each round measures both clients back to back, the order alternating
//! between rounds, so that the machine's load (it is shared) drifts over
//! both alike; the throughput ratio reported is the median of the rounds'
//! ratios, with the lowest and highest. Next to calls per second it
//! reports the process's CPU time per call (`CLOCK_PROCESS_CPUTIME_ID`,
//! client and server together) in the throughput phases: other processes
//! taking cores lower the calls per second but hardly the CPU a call costs.
//!
//! Settings (environment): `HTTP_BENCH_ROUNDS`, default 7;
//! `HTTP_BENCH_CALLS`, default 2000 sequential calls per client per round;
//! `HTTP_BENCH_SECONDS`, default 1 second of load per client per round;
//! `HTTP_BENCH_CONCURRENCY`, default 32 callers; `HTTP_BENCH_WORKERS`,
//! tokio's worker threads, default one per core. `HTTP_BENCH_ONLY=plain`,
//! `traced` or `ours` runs only that client's load, for a profiler.
//! `HTTP_BENCH_PLAIN_TRACE=1` and `HTTP_BENCH_PLAIN_TIMEOUT=1` (either or
//! both) make plain reqwest send a `traceparent` and run each call under a
//! `tokio::time::timeout`, to tell what those two features cost from the
//! rest of ours.
//!
//! Each round also pairs ours with plain reqwest sending a `traceparent`
//! like ours (its own throughput phases, the order alternating too), and
//! configured as ours configures its reqwest client (reqwest's own retry
//! layer off, since ours retries): the same request on the wire through the
//! same reqwest, so that ratio is what our layer itself costs.
//! The header is not free here, because the upstream parsing it runs in the
//! same process on the same cores.
//!
//! Ours runs the whole path: `lb://upstream/ping` resolved through a
//! static instance list, the round-robin balancer, the service's circuit
//! breaker, the retry budget, the per-call timeout and a `traceparent`
//! header.
//!
//! Both clients allocate through mimalloc, the allocator our binaries use:
//! glibc's arena locks make every extra allocation a possible futex wait on
//! two busy workers, which measures the allocator's contention rather than
//! the client.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
use nix::time::{ClockId, clock_gettime};
use tokio::net::TcpListener;
use tokio::time::Instant;

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

/// `HTTP_BENCH_PLAIN_TRACE=1`: plain reqwest sends a `traceparent` too,
/// to tell the header's cost (in both client and server) from ours.
static PLAIN_TRACE: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("HTTP_BENCH_PLAIN_TRACE").is_some());
const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// `HTTP_BENCH_PLAIN_TIMEOUT=1`: plain reqwest's calls run under a
/// `tokio::time::timeout` too, to tell the timer's cost from ours.
static PLAIN_TIMEOUT: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("HTTP_BENCH_PLAIN_TIMEOUT").is_some());

/// One of the clients under test.
#[derive(Clone)]
enum Client {
    Plain(reqwest::Client, String),
    /// Plain reqwest sending a `traceparent` as ours does: the same request
    /// on the wire, so the comparison shows what ours costs besides the
    /// header (whose parsing costs the upstream, in this process, too).
    Traced(reqwest::Client, String),
    Ours(LbHttpClient),
}

impl Client {
    async fn call(&self) {
        let resp = match self {
            Client::Plain(c, url) => {
                let mut req = c.get(url);
                if *PLAIN_TRACE {
                    req = req.header("traceparent", TRACE);
                }
                if *PLAIN_TIMEOUT {
                    tokio::time::timeout(Duration::from_secs(1), req.send())
                        .await
                        .unwrap()
                        .unwrap()
                } else {
                    req.send().await.unwrap()
                }
            }
            Client::Traced(c, url) => c
                .get(url)
                .header(
                    reqwest::header::HeaderName::from_static("traceparent"),
                    reqwest::header::HeaderValue::from_static(TRACE),
                )
                .send()
                .await
                .unwrap(),
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

/// The process's CPU time so far (every thread), in seconds.
fn process_cpu() -> f64 {
    let t = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("process CPU clock");
    t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
}

/// One throughput phase: calls per second, and CPU microseconds per call.
#[derive(Clone, Copy)]
struct Load {
    rps: f64,
    cpu_us: f64,
}

/// `concurrency` callers for `time`.
async fn throughput(client: &Client, concurrency: u64, time: Duration) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu = process_cpu();
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
    let calls = done.load(Ordering::Relaxed) as f64;
    Load {
        rps: calls / started.elapsed().as_secs_f64(),
        cpu_us: (process_cpu() - cpu) * 1e6 / calls,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rounds = env_or("HTTP_BENCH_ROUNDS", 7).max(1) as usize;
    let calls = env_or("HTTP_BENCH_CALLS", 2000);
    let seconds = env_or("HTTP_BENCH_SECONDS", 1);
    let concurrency = env_or("HTTP_BENCH_CONCURRENCY", 32);
    let only = std::env::var("HTTP_BENCH_ONLY").ok();
    // `cargo bench` passes `--bench`; nothing else is taken.
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = std::env::var("HTTP_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        rt.worker_threads(workers);
    }
    let rt = rt.enable_all().build().unwrap();
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
        // Like ours: reqwest's own retry layer off (ours retries itself).
        let no_retry = reqwest::Client::builder()
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .build()
            .unwrap();
        let traced = Client::Traced(no_retry, format!("http://{addr}/ping"));
        let ours = Client::Ours(
            LbHttpClient::new(
                StaticInstances::new().with("upstream", vec![instance]),
                HttpClientConfig::default(),
            )
            .unwrap(),
        );
        // Warm up: connections open, the service's state built.
        for client in [&plain, &traced, &ours] {
            latencies(client, 200).await;
            throughput(client, concurrency, Duration::from_millis(200)).await;
        }
        let time = Duration::from_secs(seconds);
        if let Some(only) = only {
            let client = match only.as_str() {
                "plain" => &plain,
                "traced" => &traced,
                _ => &ours,
            };
            let load = throughput(client, concurrency, time * rounds as u32).await;
            println!("{only}: {:.0} calls/s, {:.2} us CPU per call", load.rps, load.cpu_us);
            return;
        }

        let (mut lat_plain, mut lat_ours) = (Vec::new(), Vec::new());
        let (mut load_plain, mut load_ours) = (Vec::new(), Vec::new());
        let mut traced_ratios = Vec::new();
        for round in 0..rounds {
            // Alternate which goes first.
            let swap = round % 2 == 1;
            let (first, second) = if swap { (&ours, &plain) } else { (&plain, &ours) };
            let a = latencies(first, calls).await;
            let b = latencies(second, calls).await;
            let (p, o) = if swap { (b, a) } else { (a, b) };
            lat_plain.extend(p);
            lat_ours.extend(o);
            let a = throughput(first, concurrency, time).await;
            let b = throughput(second, concurrency, time).await;
            let (p, o) = if swap { (b, a) } else { (a, b) };
            // Plain with the header, next to ours, first or second in turn.
            let (t, o2) = if swap {
                let o2 = throughput(&ours, concurrency, time).await;
                (throughput(&traced, concurrency, time).await, o2)
            } else {
                let t = throughput(&traced, concurrency, time).await;
                (t, throughput(&ours, concurrency, time).await)
            };
            traced_ratios.push(o2.rps / t.rps);
            load_plain.push(p);
            load_ours.push(o);
        }
        lat_plain.sort_by(f64::total_cmp);
        lat_ours.sort_by(f64::total_cmp);
        let ratios: Vec<f64> = load_plain
            .iter()
            .zip(&load_ours)
            .map(|(p, o)| o.rps / p.rps)
            .collect();
        let cpu_ratios: Vec<f64> = load_plain
            .iter()
            .zip(&load_ours)
            .map(|(p, o)| o.cpu_us / p.cpu_us)
            .collect();
        let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = ratios.iter().copied().fold(0.0, f64::max);
        let row = |name: &str, lat: &[f64], load: &[Load]| {
            println!(
                "{name:<14} p50 {:>8.1} us  p99 {:>8.1} us  {:>9.0} calls/s  {:>6.2} us CPU/call (medians of rounds)",
                percentile(lat, 0.50),
                percentile(lat, 0.99),
                median(load.iter().map(|l| l.rps).collect()),
                median(load.iter().map(|l| l.cpu_us).collect()),
            );
        };
        println!(
            "loopback GET, {rounds} alternating rounds of {calls} sequential calls and {seconds} s of {concurrency} callers per client"
        );
        row("plain reqwest", &lat_plain, &load_plain);
        row("LbHttpClient", &lat_ours, &load_ours);
        let per_round: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
        println!("throughput ratio per round: {}", per_round.join(" "));
        let ratio = median(ratios);
        println!(
            "added: p50 {:+.1} us, p99 {:+.1} us; throughput ratio ours/plain median {ratio:.3} ({:+.1} %, rounds {lowest:.3} to {highest:.3}); CPU per call ours/plain median {:.3}",
            percentile(&lat_ours, 0.50) - percentile(&lat_plain, 0.50),
            percentile(&lat_ours, 0.99) - percentile(&lat_plain, 0.99),
            (ratio - 1.0) * 100.0,
            median(cpu_ratios),
        );
        let lowest = traced_ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = traced_ratios.iter().copied().fold(0.0, f64::max);
        let ratio = median(traced_ratios);
        println!(
            "like for like: throughput ratio ours/(plain sending the same traceparent, reqwest retry off) median {ratio:.3} ({:+.1} %, rounds {lowest:.3} to {highest:.3})",
            (ratio - 1.0) * 100.0,
        );
    });
}
