//! A service started in Spring Boot's order: its Eureka settings come from
//! the config server, then it registers where they say.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use cloud_client::config::Properties;
use cloud_client::http::HttpClientConfig;
use cloud_client::service::CloudService;
use serde::Deserialize;
use serde_json::json;
use support::{ConfigServer, Discovery, Repo, eventually, reader};

#[derive(Debug, Deserialize)]
struct App {
    greeting: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_address_can_come_from_the_config_server() {
    let discovery = Discovery::start().await;
    let repo = Repo::new();
    repo.write(
        "orders.yml",
        &format!(
            "greeting: hi\neureka:\n  client:\n    service-url:\n      defaultZone: {}\n  instance:\n    hostname: 127.0.0.1\n",
            discovery.eureka_url()
        ),
    );
    repo.commit("one");
    let config = ConfigServer::start(&repo).await;

    let local: Properties = [
        ("spring.application.name", json!("orders")),
        ("server.port", json!(9700)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let env: Properties = [(
        "SPRING_CONFIG_IMPORT".to_owned(),
        json!(format!("configserver:{}", config.base)),
    )]
    .into_iter()
    .collect();
    let service = CloudService::<App>::start(local, env, HttpClientConfig::default())
        .await
        .unwrap();
    assert_eq!(service.config.get().greeting, "hi");
    assert_eq!(
        service.settings.eureka_service_urls().unwrap()[0]
            .base
            .as_str(),
        discovery.eureka_url()
    );

    let watcher = reader(&discovery.eureka_url(), &[]).await;
    eventually(Duration::from_secs(5), "orders registered", || async {
        watcher.instances("orders").len() == 1
    })
    .await;
    assert_eq!(watcher.instances("orders")[0].port, 9700);

    service.shutdown().await.unwrap();
    watcher.refresh_now().await;
    assert!(
        watcher.instances("orders").is_empty(),
        "deregistered at shutdown"
    );
    watcher.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_deregisters_before_draining_the_open_requests() {
    use std::sync::Arc;

    use cloud_runtime::serve::ServeLimits;
    use cloud_runtime::shutdown::Shutdown;
    use tokio::sync::Notify;

    let discovery = Discovery::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let local: Properties = [
        ("spring.application.name", json!("slow")),
        ("server.port", json!(port)),
        ("greeting", json!("hello")),
        (
            "eureka.client.service-url.defaultZone",
            json!(discovery.eureka_url()),
        ),
        ("eureka.instance.hostname", json!("127.0.0.1")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let service = CloudService::<App>::start(local, Properties::new(), HttpClientConfig::default())
        .await
        .unwrap();

    // A request that stays open until the test lets it finish.
    let release = Arc::new(Notify::new());
    let entered = Arc::new(Notify::new());
    let (r, e) = (Arc::clone(&release), Arc::clone(&entered));
    let http = service.http.clone();
    let router = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(move || {
                let (r, e) = (Arc::clone(&r), Arc::clone(&e));
                async move {
                    e.notify_one();
                    r.notified().await;
                    "done"
                }
            }),
        )
        // The trace headers a call from a handler carries.
        .route(
            "/relay",
            axum::routing::get(move || {
                let http = http.clone();
                async move {
                    http.get("lb://slow/echo-trace")
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap()
                }
            }),
        )
        .route(
            "/echo-trace",
            axum::routing::get(|headers: axum::http::HeaderMap| async move {
                let h = |name: &str| support::header_text(&headers, name);
                axum::Json(json!({
                    "traceparent": h("traceparent"),
                    "b3": h("x-b3-traceid"),
                    "span": h("x-b3-spanid"),
                }))
            }),
        );
    let shutdown = Shutdown::new();
    let serving = tokio::spawn({
        let (service, shutdown) = (service.clone(), shutdown.clone());
        async move {
            service
                .serve(listener, router, &ServeLimits::default(), shutdown)
                .await
        }
    });

    let base = format!("http://127.0.0.1:{port}");
    let health: serde_json::Value = reqwest::get(format!("{base}/actuator/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "UP");
    assert_eq!(health["components"]["discoveryClient"]["status"], "UP");
    assert_eq!(
        health["components"]["discoveryClient"]["details"]["registered"],
        true
    );
    // The service calls itself through the registry; the metrics show it.
    let own = service.http.get("lb://slow/actuator/health").await.unwrap();
    assert_eq!(own.status(), 200);
    let metrics = reqwest::get(format!("{base}/actuator/prometheus"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "cloud_client_registry_reachable 1",
        "cloud_client_loadbalancer_instances{service=\"slow\"} 1",
        "circuitbreaker_calls_total{name=\"slow\",kind=\"successful\"} 1",
        "circuitbreaker_state{name=\"slow\",state=\"closed\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }

    // A request that came with B3 headers: the handler's call continues
    // the trace in both formats, as a new span.
    let relayed: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/relay"))
        .header("X-B3-TraceId", "463ac35c9f6413ad")
        .header("X-B3-SpanId", "a2fb4a1d1a96d312")
        .header("X-B3-Sampled", "1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(relayed["b3"], "463ac35c9f6413ad", "{relayed}");
    assert_ne!(relayed["span"], "a2fb4a1d1a96d312", "{relayed}");
    let traceparent = relayed["traceparent"].as_str().unwrap();
    assert!(
        traceparent.starts_with("00-0000000000000000463ac35c9f6413ad-")
            && traceparent.ends_with("-01"),
        "{relayed}"
    );

    let watcher = reader(&discovery.eureka_url(), &[]).await;
    assert_eq!(watcher.instances("slow").len(), 1);

    let in_flight = tokio::spawn(reqwest::get(format!("{base}/slow")));
    entered.notified().await;
    shutdown.trigger();
    eventually(
        Duration::from_secs(5),
        "deregistered while a request is open",
        || async { watcher.instances("slow").is_empty() },
    )
    .await;
    assert!(
        !in_flight.is_finished(),
        "the open request is still being served"
    );
    release.notify_one();
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.text().await.unwrap(), "done");
    serving.await.unwrap().unwrap();
    watcher.shutdown().await.unwrap();
}
