//! Measures, in-process and without sockets: resident memory per registered
//! instance, the time to build `GET /eureka/apps` (JSON, gzip) after a
//! change, and the time to serve it unchanged, at 10 000 and 100 000
//! instances; and the cost of a renewal through the router.
//!
//! `cargo run --release -p discovery-server --example footprint`

#![allow(clippy::unwrap_used)]

#[path = "shared/fixture.rs"]
mod fixture;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use discovery_server::registry::Origin;
use discovery_server::{Server, ServerConfig};
use fixture::{instance, rss_kib};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

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
    for n in [10_000u64, 100_000] {
        let before = rss_kib("self");
        let server = Server::new(ServerConfig::default()).expect("the HTTP client builds");
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
        let after = rss_kib("self");
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
            let info = instance(u64::from(i) % n);
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
