//! The load-balanced HTTP client against real upstreams on loopback ports,
//! resolved through the real discovery server or a fixed list.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use circuit_breaker::{CircuitBreakerConfig, State};
use cloud_client::discovery::{DiscoveryClient, ServiceInstance, registration};
use cloud_client::http::{HttpClientConfig, LbHttpClient, StaticInstances, TraceContext};
use cloud_client::loadbalancer::OutlierConfig;
use support::{Discovery, FAIL, HANG, Upstream, eventually, instance_at, reader, settings};

fn quick_breaker() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        sliding_window_size: 4,
        minimum_number_of_calls: 4,
        wait_duration_in_open_state: Duration::from_millis(200),
        permitted_number_of_calls_in_half_open_state: 2,
        ..CircuitBreakerConfig::default()
    }
}

/// A client over a fixed list of `svc` instances.
fn client_over(instances: Vec<ServiceInstance>, config: HttpClientConfig) -> LbHttpClient {
    LbHttpClient::new(StaticInstances::new().with("svc", instances), config).unwrap()
}

async fn register(server: &Discovery, up: &Upstream, id: &str) -> DiscoveryClient {
    let s = settings(&[
        ("spring.application.name", "user-service"),
        (
            "eureka.client.service-url.defaultZone",
            &server.eureka_url(),
        ),
        ("eureka.client.fetch-registry", "false"),
    ]);
    let mut info = registration(&s);
    info.instance_id = id.into();
    info.port = cloud_protocol::eureka::PortWrapper::enabled(up.addr.port());
    DiscoveryClient::start_with(s, info).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_urls_resolve_through_the_registry_and_the_breaker_opens_and_closes() {
    let server = Discovery::start().await;
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let reg_a = register(&server, &a, "a").await;
    let reg_b = register(&server, &b, "b").await;
    let caller = reader(&server.eureka_url(), &[]).await;
    eventually(Duration::from_secs(5), "both instances known", || async {
        caller.instances("user-service").len() == 2
    })
    .await;
    let client = LbHttpClient::new(
        caller.clone(),
        HttpClientConfig {
            breaker: quick_breaker(),
            outlier: OutlierConfig::disabled(),
            max_attempts: 1,
            ..HttpClientConfig::default()
        },
    )
    .unwrap();

    for _ in 0..4 {
        let r = client.get("lb://user-service/users/1").await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        (a.hits(), b.hits()),
        (2, 2),
        "round robin over the registry's instances"
    );
    // `http://` with a registered name resolves too.
    assert_eq!(
        client.get("http://user-service/x").await.unwrap().status(),
        200
    );

    a.set(FAIL);
    b.set(FAIL);
    let breaker = client.breaker("user-service").unwrap();
    // The window holds four calls: two 500s among them make 50%, the threshold.
    for _ in 0..2 {
        let r = client.get("lb://user-service/users/1").await.unwrap();
        assert_eq!(r.status(), 500);
    }
    assert_eq!(breaker.state(), State::Open);
    let hits_before = a.hits() + b.hits();
    let err = client.get("lb://user-service/users/1").await.unwrap_err();
    assert!(err.is_breaker_open(), "{err}");
    assert!(err.is_safe_to_retry());
    assert_eq!(err.attempts(), 0);
    assert_eq!(
        a.hits() + b.hits(),
        hits_before,
        "an open breaker sends nothing"
    );

    a.set(support::ANSWER);
    b.set(support::ANSWER);
    eventually(
        Duration::from_secs(5),
        "the breaker closes after recovery",
        || async {
            let _ = client.get("lb://user-service/users/1").await;
            breaker.state() == State::Closed
        },
    )
    .await;
    for c in [reg_a, reg_b, caller] {
        c.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_instance_is_ejected_then_comes_back() {
    let (good, bad) = (Upstream::start("good").await, Upstream::start("bad").await);
    bad.set(FAIL);
    let source = StaticInstances::new().with(
        "svc",
        vec![good.instance("svc", "good"), bad.instance("svc", "bad")],
    );
    let client = LbHttpClient::new(
        source,
        HttpClientConfig {
            outlier: OutlierConfig {
                consecutive_failures: 3,
                base_ejection_time: Duration::from_millis(300),
                ..OutlierConfig::default()
            },
            max_attempts: 1,
            ..HttpClientConfig::default()
        },
    )
    .unwrap();
    for _ in 0..6 {
        let _ = client.get("lb://svc/").await.unwrap();
    }
    assert_eq!(bad.hits(), 3);
    assert!(client.is_ejected("svc", "bad"));
    for _ in 0..10 {
        assert_eq!(client.get("lb://svc/").await.unwrap().status(), 200);
    }
    assert_eq!(bad.hits(), 3, "no call reaches an ejected instance");
    bad.set(support::ANSWER);
    eventually(
        Duration::from_secs(5),
        "the ejected instance comes back",
        || async {
            let _ = client.get("lb://svc/").await;
            bad.hits() > 3
        },
    )
    .await;
    assert!(!client.is_ejected("svc", "bad"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_safe_requests_are_retried_and_the_error_says_why_the_call_ended() {
    let good = Upstream::start("good").await;
    let hang = Upstream::start("hang").await;
    hang.set(HANG);
    // A port nobody listens on: connect errors.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = HttpClientConfig {
        outlier: OutlierConfig::disabled(),
        timeout: Duration::from_millis(200),
        ..HttpClientConfig::default()
    };

    // A POST whose connection failed never reached anyone: retried.
    let client = client_over(
        vec![
            instance_at("svc", "dead", dead_port),
            good.instance("svc", "good"),
        ],
        config.clone(),
    );
    for _ in 0..2 {
        let req = client
            .reqwest()
            .post("lb://svc/orders")
            .body("{}")
            .build()
            .unwrap();
        assert_eq!(client.execute(req).await.unwrap().status(), 200);
    }

    // A POST that timed out may have been processed: not retried.
    let client = client_over(vec![hang.instance("svc", "hang")], config.clone());
    let req = client
        .reqwest()
        .post("lb://svc/orders")
        .body("{}")
        .build()
        .unwrap();
    let err = client.execute(req).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.attempts(), 1);
    assert!(!err.is_safe_to_retry());
    assert!(!err.is_retries_exhausted());
    assert_eq!(hang.hits(), 1);

    // A GET that timed out is retried up to the attempts allowed.
    let err = client.get("lb://svc/orders/1").await.unwrap_err();
    assert!(err.is_timeout() && err.is_retries_exhausted() && err.is_safe_to_retry());
    assert_eq!(err.attempts(), 3);
    assert_eq!(hang.hits(), 4);

    // Unknown service behind lb://, and a fallback hook.
    let err = client.get("lb://nobody/").await.unwrap_err();
    assert!(err.is_no_instance() && err.is_safe_to_retry());
    let req = client.reqwest().get("lb://nobody/").build().unwrap();
    let answer = client
        .execute_or_else(req, |err| async move {
            assert!(err.is_no_instance());
            Ok(reqwest::Response::from(
                http::Response::builder()
                    .status(203)
                    .body("cached")
                    .unwrap(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(answer.status(), 203);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_stops_retries_during_an_outage() {
    let hang = Upstream::start("hang").await;
    hang.set(HANG);
    let client = client_over(
        vec![hang.instance("svc", "hang")],
        HttpClientConfig {
            outlier: OutlierConfig::disabled(),
            timeout: Duration::from_millis(50),
            retry_budget_ratio: 0.0,
            retry_budget_burst: 2,
            ..HttpClientConfig::default()
        },
    );
    let err = client.get("lb://svc/").await.unwrap_err();
    assert_eq!(err.attempts(), 3, "two retries from the burst");
    let err = client.get("lb://svc/").await.unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert!(err.is_retry_budget_spent() && err.is_retries_exhausted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_continues_and_the_client_is_a_tower_service() {
    use tower::ServiceExt;
    let up = Upstream::start("up").await;
    let client = client_over(vec![up.instance("svc", "up")], HttpClientConfig::default());
    let incoming =
        TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    let req = client.reqwest().get("lb://svc/trace").build().unwrap();
    let resp = incoming.scope(client.clone().oneshot(req)).await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    let sent = TraceContext::parse(body["traceparent"].as_str().unwrap()).unwrap();
    assert_eq!(sent.trace_id, incoming.trace_id, "same trace");
    assert_ne!(sent.span_id, incoming.span_id, "a new span for the call");

    // Without a current trace, a new one starts.
    let body: serde_json::Value = client.get("lb://svc/").await.unwrap().json().await.unwrap();
    assert!(TraceContext::parse(body["traceparent"].as_str().unwrap()).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_is_sent_whole_and_a_streamed_body_is_not_retried() {
    let good = Upstream::start("good").await;
    // A port nobody listens on: connect errors.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let client = client_over(
        vec![
            instance_at("svc", "dead", dead_port),
            good.instance("svc", "good"),
        ],
        HttpClientConfig {
            outlier: OutlierConfig::disabled(),
            ..HttpClientConfig::default()
        },
    );

    // Round robin starts with the dead instance: the POST's first attempt
    // fails to connect, the second carries the same path, query, header
    // and body to the good one.
    let req = client
        .reqwest()
        .post("lb://SVC/orders/7?x=1&y=a%20b#not-sent")
        .header("x-test", "kept")
        .body(r#"{"n":1}"#)
        .build()
        .unwrap();
    let resp = client.execute(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["name"], "good");
    assert_eq!(body["uri"], "/orders/7?x=1&y=a%20b");
    assert_eq!(body["x-test"], "kept");
    assert_eq!(body["body"], r#"{"n":1}"#);
    assert!(TraceContext::parse(body["traceparent"].as_str().unwrap()).is_some());
    assert_eq!(good.hits(), 1);

    // A streamed body cannot be sent twice: the connect error ends the call.
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"streamed",
    ))]);
    let req = client
        .reqwest()
        .post("lb://svc/orders")
        .body(reqwest::Body::wrap_stream(stream))
        .build()
        .unwrap();
    let err = client.execute(req).await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.service(), Some("svc"));
    assert_eq!(good.hits(), 1, "not retried");

    // Errors name the service as the URL spelt it.
    let err = client.get("lb://NOBODY/").await.unwrap_err();
    assert!(err.is_no_instance());
    assert_eq!(err.service(), Some("NOBODY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_server_refused_is_retried_for_any_method_and_other_resets_are_not() {
    use cloud_runtime::testing::H2Upstream;
    let config = HttpClientConfig {
        outlier: OutlierConfig::disabled(),
        ..HttpClientConfig::default()
    };
    let client_to = |addr: std::net::SocketAddr| {
        let http = reqwest::Client::builder()
            .http2_prior_knowledge()
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .build()
            .unwrap();
        let instances =
            StaticInstances::new().with("svc", vec![instance_at("svc", "h2", addr.port())]);
        LbHttpClient::with_reqwest(instances, config.clone(), http)
    };
    let post = |client: &LbHttpClient| {
        client
            .reqwest()
            .post("lb://svc/orders")
            .body("{}")
            .build()
            .unwrap()
    };

    // REFUSED_STREAM: the server did not process it, so even a POST goes
    // again (here to the same, only instance).
    let upstream = H2Upstream::start(vec![Some(h2::Reason::REFUSED_STREAM), None]).await;
    let client = client_to(upstream.addr);
    let resp = client.execute(post(&client)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(upstream.streams(), 2);

    // Any other reset may come after the server acted: a POST is not sent
    // again, and the error says it is not safe to.
    let upstream = H2Upstream::start(vec![Some(h2::Reason::INTERNAL_ERROR), None]).await;
    let client = client_to(upstream.addr);
    let err = client.execute(post(&client)).await.unwrap_err();
    assert_eq!(err.attempts(), 1, "{err}");
    assert!(!err.is_safe_to_retry(), "{err}");
    assert_eq!(upstream.streams(), 1);
}
