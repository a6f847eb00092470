//! Measures, in-process and without sockets: resident memory per registered
//! instance, the time to build `GET /eureka/apps` (JSON, gzip) after a
//! change, and the time to serve it unchanged, at 10 000 and 100 000
//! instances; and the cost of a renewal through the router.
//!
//! `cargo run --release -p discovery-server --example footprint`

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cloud_protocol::eureka::{InstanceInfo, InstanceStatus, LeaseInfo, PortWrapper};
use discovery_server::registry::Origin;
use discovery_server::{Server, ServerConfig};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn instance(i: usize) -> InstanceInfo {
    let app = format!("SERVICE-{}", i % 100);
    let host = format!("host-{i}.example.internal");
    InstanceInfo {
        instance_id: format!("{host}:{}:8080", app.to_lowercase()),
        host_name: host.clone(),
        app: app.clone(),
        ip_addr: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
        status: InstanceStatus::Up,
        port: PortWrapper::enabled(8080),
        secure_port: PortWrapper::disabled(443),
        country_id: 1,
        lease_info: Some(LeaseInfo::default()),
        metadata: [("management.port".to_owned(), "8080".to_owned())].into(),
        home_page_url: Some(format!("http://{host}:8080/")),
        status_page_url: Some(format!("http://{host}:8080/actuator/info")),
        health_check_url: Some(format!("http://{host}:8080/actuator/health")),
        vip_address: Some(app.to_lowercase()),
        secure_vip_address: Some(app.to_lowercase()),
        ..InstanceInfo::default()
    }
}

async fn fetch(router: &axum::Router) -> (Duration, usize) {
    let req = Request::get("/eureka/apps")
        .header("Accept", "application/json")
        .header("Accept-Encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let started = tokio::time::Instant::now();
    let response = router.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let len = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .len();
    (started.elapsed(), len)
}

#[tokio::main]
async fn main() {
    for n in [10_000usize, 100_000] {
        let before = rss_kib();
        let server = Server::new(ServerConfig::default());
        let node = server.node().clone();
        for i in 0..n {
            node.register(instance(i), Origin::Local);
        }
        let router = server.router();
        let (build, len) = fetch(&router).await;
        let mut unchanged = Vec::new();
        for _ in 0..50 {
            unchanged.push(fetch(&router).await.0);
        }
        unchanged.sort();
        let after = rss_kib();
        let per_instance = (after.saturating_sub(before) * 1024) as f64 / n as f64;
        println!(
            "{n} instances: {per_instance:.0} B resident per instance (registry + cached JSON gzip body of {len} B); \
             full fetch JSON+gzip after a change {build:?}, unchanged p50 {:?} max {:?}",
            unchanged[unchanged.len() / 2],
            unchanged[unchanged.len() - 1]
        );
        let started = tokio::time::Instant::now();
        let renewals: u32 = 20_000;
        for i in 0..renewals {
            let info = instance(i as usize % n);
            let uri = format!("/eureka/apps/{}/{}?status=UP", info.app, info.instance_id);
            let req = Request::put(uri).body(Body::empty()).unwrap();
            let response = router.clone().oneshot(req).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        let per = started.elapsed() / renewals;
        println!("{n} instances: renewal through the router {per:?} each (one task, no socket)");
        drop(router);
        drop(server);
        drop(node);
    }
}
