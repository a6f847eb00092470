//! The client against Spring's own servers (the reference Netflix Eureka
//! server and Spring Cloud Config server from `interop/spring`, run with
//! `java -jar`), and a Spring Boot service calling an instance our client
//! registered. The jars come from `scripts/prereqs`; without them these
//! tests fail and say so.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "../../interop/spring/spring_app.rs"]
#[allow(dead_code)]
mod spring_app;

use std::time::Duration;

use cloud_client::config::{ConfigClient, Properties};
use cloud_client::http::{HttpClientConfig, LbHttpClient, TraceContext};
use cloud_client::settings::ClientSettings;
use serde::Deserialize;
use spring_app::{JVM_START, SpringApp, within_scenario_deadline};
use support::{Repo, Upstream, eventually, reader, register_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_registers_discovers_and_polls_with_the_reference_eureka_server() {
    within_scenario_deadline(eureka_scenario()).await;
}

async fn eureka_scenario() {
    let mut eureka_server = SpringApp::start("eureka-server", ["--server.port=0"]);
    let eureka = format!(
        "http://127.0.0.1:{}/eureka/",
        eureka_server.http_port(JVM_START).await
    );

    // Our instance, registered by our client.
    let upstream = Upstream::start("rust").await;
    let registered = register_at(&eureka, "rust-upstream", upstream.addr.port()).await;
    assert!(registered.health().registered);

    // Our cache, refreshed by deltas on the timer (the server has no watch).
    let caller = reader(
        &eureka,
        &[("eureka.client.registry-fetch-interval-seconds", "1")],
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "our instance in our cache",
        || async { caller.instances("rust-upstream").len() == 1 },
    )
    .await;
    assert!(
        !caller.health().watching,
        "a Eureka server has no watch stream"
    );
    let http = LbHttpClient::new(caller.clone(), HttpClientConfig::default()).unwrap();
    assert_eq!(
        http.get("lb://rust-upstream/x").await.unwrap().status(),
        200
    );

    // A Spring service finds our instance through the same registry and
    // calls it through its @LoadBalanced client; we find and call it too.
    let mut spring = SpringApp::start(
        "service",
        [
            "--server.port=0".to_owned(),
            format!("--eureka.client.service-url.defaultZone={eureka}"),
            "--eureka.client.registry-fetch-interval-seconds=1".to_owned(),
            "--eureka.instance.hostname=127.0.0.1".to_owned(),
            "--eureka.instance.prefer-ip-address=true".to_owned(),
            "--eureka.instance.ip-address=127.0.0.1".to_owned(),
        ],
    );
    let spring_port = spring.http_port(JVM_START).await;
    let call = format!("http://127.0.0.1:{spring_port}/call/rust-upstream/hello");
    let hits = upstream.hits();
    eventually(
        Duration::from_secs(60),
        "Spring calls our instance",
        || async {
            reqwest::get(&call)
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
    assert!(upstream.hits() > hits);
    eventually(
        Duration::from_secs(30),
        "the Spring service in our cache",
        || async { caller.instances("interop-service").len() == 1 },
    )
    .await;
    let greeting = http.get("lb://interop-service/greeting").await.unwrap();
    assert_eq!(greeting.text().await.unwrap(), "local-default");

    // B3 both ways with Spring Boot's own tracing (Micrometer Tracing over
    // Brave, set to read and write B3 only). Our call made in a B3 trace
    // continues it in Spring, as a new span.
    let mut b3 = reqwest::header::HeaderMap::new();
    b3.insert("x-b3-traceid", "463ac35c9f6413ad".parse().unwrap());
    b3.insert("x-b3-spanid", "a2fb4a1d1a96d312".parse().unwrap());
    b3.insert("x-b3-sampled", "1".parse().unwrap());
    let incoming = TraceContext::from_headers(&b3).unwrap();
    let seen: serde_json::Value = incoming
        .scope(http.get("lb://interop-service/trace"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["traceId"], "463ac35c9f6413ad", "{seen}");
    let parent = seen["parentId"].as_str().unwrap();
    assert_eq!(
        parent.len(),
        16,
        "our call's span is Spring's parent: {seen}"
    );
    assert_ne!(parent, "a2fb4a1d1a96d312", "{seen}");

    // Spring's call to a Rust service, in a trace the test starts: our
    // server side reads Brave's B3 headers and the handler runs in it.
    let tracer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tracer_port = tracer.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route(
            "/trace",
            axum::routing::get(|| async {
                let ctx = TraceContext::current().unwrap();
                axum::Json(serde_json::json!({ "trace": ctx.to_string(), "b3": ctx.b3 }))
            }),
        )
        .layer(axum::middleware::from_fn(
            cloud_client::http::continue_trace,
        ));
    let tracer_server = tokio::spawn(async move { axum::serve(tracer, app).await });
    let tracer_instance = register_at(&eureka, "rust-tracer", tracer_port).await;
    let call = format!("http://127.0.0.1:{spring_port}/call/rust-tracer/trace");
    let spring_trace = "80f198ee56343ba864fe8b2a57d3eff7";
    let relayed = std::sync::Mutex::new(None);
    eventually(
        Duration::from_secs(60),
        "Spring calls the Rust tracer",
        || async {
            let resp = reqwest::Client::new()
                .get(&call)
                .header("X-B3-TraceId", spring_trace)
                .header("X-B3-SpanId", "e457b5a2e4d86bd1")
                .header("X-B3-Sampled", "1")
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => {
                    *relayed.lock().unwrap() = r.json::<serde_json::Value>().await.ok();
                    true
                }
                _ => false,
            }
        },
    )
    .await;
    let relayed = relayed.into_inner().unwrap().unwrap();
    assert_eq!(relayed["b3"], true, "{relayed}");
    let trace = relayed["trace"].as_str().unwrap();
    assert!(
        trace.starts_with(&format!("00-{spring_trace}-")),
        "{relayed}"
    );
    assert!(
        !trace.contains("e457b5a2e4d86bd1"),
        "Spring's client span between: {relayed}"
    );
    tracer_instance.shutdown().await.unwrap();
    tracer_server.abort();

    // Shutdown: DOWN and cancelled; the delta takes it out of our cache.
    registered.shutdown().await.unwrap();
    eventually(
        Duration::from_secs(20),
        "our instance gone from our cache",
        || async { caller.instances("rust-upstream").is_empty() },
    )
    .await;
    caller.shutdown().await.unwrap();
    spring.terminate(Duration::from_secs(30)).await;
    eureka_server.terminate(Duration::from_secs(30)).await;
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Greeting {
    message: String,
}

#[derive(Debug, Deserialize)]
struct AppConfig {
    greeting: Greeting,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_config_client_reads_and_polls_the_reference_config_server() {
    within_scenario_deadline(config_scenario()).await;
}

async fn config_scenario() {
    let repo = Repo::new();
    repo.write("users.yml", "greeting:\n  message: one\n");
    repo.commit("one");
    let mut server = SpringApp::start(
        "config-server",
        [
            "--server.port=0".to_owned(),
            format!(
                "--spring.cloud.config.server.git.uri=file://{}",
                repo.path().display()
            ),
        ],
    );
    let base = format!("http://127.0.0.1:{}", server.http_port(JVM_START).await);
    let import = format!("configserver:{base}");
    let s = ClientSettings::from_properties([
        ("spring.application.name", "users"),
        ("spring.config.import", import.as_str()),
        ("spring.cloud.config.watch.delay", "300"),
    ])
    .unwrap();
    let live = ConfigClient::new(&s)
        .unwrap()
        .start::<AppConfig>(Properties::new(), Properties::new())
        .await
        .unwrap();
    assert_eq!(live.get().greeting.message, "one");
    let first = live.current().version;
    assert!(first.is_some(), "Spring reports the commit as the version");

    let mut rx = live.subscribe();
    rx.borrow_and_update();
    repo.write("users.yml", "greeting:\n  message: two\n");
    repo.commit("two");
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .expect("the poll finds the new commit")
        .unwrap();
    let snap = live.current();
    assert_eq!(snap.value.greeting.message, "two");
    assert_eq!(&*snap.changed_keys, ["greeting.message"]);
    assert_ne!(snap.version, first);
    live.stop().await;
    server.terminate(Duration::from_secs(30)).await;
}
