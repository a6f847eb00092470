//! The watch stream tells a client about a registration and a cancel within
//! 100 ms on loopback.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{Running, send_expecting};

const BODY: &str = r#"{"instance":{"instanceId":"w-1","hostName":"w.local","app":"WATCHED","ipAddr":"127.0.0.1",
  "status":"UP","port":{"$":8080,"@enabled":"true"},
  "dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}}}"#;

/// Reads SSE chunks until one holds `needle`; returns how long it took.
async fn until_event(response: &mut reqwest::Response, buffer: &mut String, needle: &str) {
    while !buffer.contains(needle) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("watch stream stalled")
            .unwrap()
            .expect("watch stream ended");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_register_and_cancel_within_100_ms() {
    let running = Running::start(discovery_server::ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let mut stream = client
        .get(running.url("/eureka/watch"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    until_event(&mut stream, &mut seen, "event: hello").await;

    let started = tokio::time::Instant::now();
    let register = client
        .post(running.url("/eureka/apps/WATCHED"))
        .header("Content-Type", "application/json")
        .body(BODY);
    send_expecting(register, 204).await;
    until_event(&mut stream, &mut seen, r#""instanceId":"w-1""#).await;
    let registered_after = started.elapsed();
    assert!(seen.contains(r#""action":"Register""#), "{seen}");

    seen.clear();
    let started = tokio::time::Instant::now();
    send_expecting(client.delete(running.url("/eureka/apps/WATCHED/w-1")), 200).await;
    until_event(&mut stream, &mut seen, r#""action":"Cancel""#).await;
    let cancelled_after = started.elapsed();

    assert!(
        registered_after < Duration::from_millis(100),
        "register seen after {registered_after:?}"
    );
    assert!(
        cancelled_after < Duration::from_millis(100),
        "cancel seen after {cancelled_after:?}"
    );
    drop(stream);
    running.stop().await;
}
