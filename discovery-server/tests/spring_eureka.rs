//! Interop with Spring itself: a Spring Boot 3.5 / Spring Cloud 2025.0
//! service (spring-cloud-starter-netflix-eureka-client + LoadBalancer, from
//! `interop/spring/service`) against our registry, and our registry peered
//! with the reference Spring Cloud Netflix Eureka Server
//! (`interop/spring/eureka-server`). The jars come from `scripts/prereqs`.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use discovery_server::ServerConfig;
use serde_json::Value;
use support::{Running, SpringApp, eventually, get_json, instance_json, register_json};
use tokio::net::TcpListener;

/// How long a Spring application may take to start on a busy CI machine.
const JVM_START: Duration = Duration::from_secs(90);

/// An HTTP upstream on `127.0.0.1:0` answering `GET /hello`; the Spring
/// service reaches it by name only, through our registry.
async fn stub_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/hello", get(|| async { "hello from the rust stub" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// The Spring flags that point the service at `eureka` with one-second
/// renewals and registry fetches.
fn service_args(eureka: &str, instance_id: &str) -> Vec<String> {
    [
        "--server.port=0".to_owned(),
        format!("--eureka.client.service-url.defaultZone={eureka}"),
        format!("--eureka.instance.instance-id={instance_id}"),
        "--eureka.instance.metadata-map.zone=z1".to_owned(),
        "--eureka.instance.lease-renewal-interval-in-seconds=1".to_owned(),
        "--eureka.client.registry-fetch-interval-seconds=1".to_owned(),
    ]
    .into()
}

fn timestamp(instance: &Value, key: &str) -> i64 {
    let v = &instance["instance"]["leaseInfo"][key];
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("no leaseInfo.{key} in {instance}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_service_registers_renews_discovers_and_cancels_with_our_registry() {
    tokio::time::timeout(Duration::from_secs(180), spring_client_scenario())
        .await
        .expect("spring interop deadline");
}

async fn spring_client_scenario() {
    let running = Running::start(ServerConfig::default()).await;
    let eureka = running.eureka_url();
    let upstream = stub_upstream().await;
    let stub = instance_json("STUB-UPSTREAM", "stub-1", upstream);
    assert_eq!(register_json(&eureka, "STUB-UPSTREAM", &stub).await, 204);

    let id = "spring-svc-1";
    let mut spring = SpringApp::start("service", service_args(&eureka, id));
    let port = spring.http_port(JVM_START).await;
    let own = running.url(&format!("/eureka/apps/INTEROP-SERVICE/{id}"));

    // 1. Registered UP, with its real port, metadata and lease settings.
    eventually(Duration::from_secs(30), "the Spring registration", || {
        let own = own.clone();
        async move { get_json(&own).await.0 == 200 }
    })
    .await;
    let (_, registered) = get_json(&own).await;
    let info = &registered["instance"];
    assert_eq!(info["status"], "UP", "{registered}");
    assert_eq!(info["app"], "INTEROP-SERVICE");
    assert_eq!(info["vipAddress"], "interop-service");
    assert_eq!(
        info["port"]["$"].to_string().trim_matches('"'),
        port.to_string()
    );
    assert_eq!(info["metadata"]["zone"], "z1", "{registered}");
    assert_eq!(
        info["leaseInfo"]["renewalIntervalInSecs"].to_string(),
        "1",
        "{registered}"
    );

    // 2. It renews: lastRenewalTimestamp moves.
    let first = timestamp(&registered, "lastRenewalTimestamp");
    eventually(Duration::from_secs(15), "a renewal from Spring", || {
        let own = own.clone();
        async move { timestamp(&get_json(&own).await.1, "lastRenewalTimestamp") > first }
    })
    .await;

    // 3. It fetched the registry: a call by name through Spring Cloud
    // LoadBalancer reaches the stub registered with us over REST.
    let call = format!("http://127.0.0.1:{port}/call/stub-upstream/hello");
    let client = reqwest::Client::new();
    eventually(
        Duration::from_secs(30),
        "Spring calling stub-upstream by name",
        || {
            let request = client.get(&call).send();
            async move {
                match request.await {
                    Ok(r) if r.status() == 200 => {
                        r.text().await.unwrap() == "hello from the rust stub"
                    }
                    _ => false,
                }
            }
        },
    )
    .await;

    // 4. A graceful shutdown cancels the lease before the JVM exits.
    spring.terminate(Duration::from_secs(30)).await;
    assert!(
        spring.logged("deregister  status: 200"),
        "{}",
        spring.log_tail()
    );
    assert_eq!(get_json(&own).await.0, 404, "cancelled on shutdown");
    let (_, apps) = get_json(&running.url("/eureka/apps")).await;
    assert!(
        !apps.to_string().contains(id),
        "gone from the full registry: {apps}"
    );
    running.stop().await;
}
