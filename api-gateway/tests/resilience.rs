//! CircuitBreaker (with and without fallback), Retry and
//! RequestRateLimiter against real upstreams on 127.0.0.1.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use support::{TestGateway, Upstream, client, eventually, get, seen, send};

fn breaker_config(up: std::net::SocketAddr, filters: &str) -> String {
    format!(
        "spring.cloud.gateway:\n  routes:\n\
         \x20   - id: guarded\n      uri: http://{up}\n      predicates: [Path=/g/**]\n      filters:\n        - StripPrefix=1\n{filters}\
         \x20   - id: fallback\n      uri: http://{up}\n      predicates: [Path=/fallback]\n      filters: [FallbackHeaders, SetPath=/from-fallback]\n\
         resilience4j:\n  circuitbreaker:\n    instances:\n      cb: {{slidingWindowSize: 4, minimumNumberOfCalls: 4, failureRateThreshold: 50, waitDurationInOpenState: 300ms, permittedNumberOfCallsInHalfOpenState: 1}}\n\
         \x20 timelimiter:\n    instances:\n      cb: {{timeoutDuration: 300ms}}\n"
    )
}

#[tokio::test]
async fn breaker_opens_on_failures_answers_from_the_fallback_and_closes_again() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&breaker_config(
        up.addr,
        "        - name: CircuitBreaker\n          args: {name: cb, fallbackUri: 'forward:/fallback', statusCodes: [500]}\n",
    ))
    .await;
    // Failures by status: each goes to the fallback, with the cause (a
    // request body stays with the failed call; the fallback gets none).
    for i in 0..4 {
        let request = match i {
            0 => client().post(gw.url("/g/status/500")).body("sent once"),
            _ => client().get(gw.url("/g/status/500")),
        };
        let (s, _, echo) = send(request).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(echo["path"], "/from-fallback");
        assert_eq!(
            support::seen(&echo, "execution-exception-type"),
            Some(
                "org.springframework.cloud.gateway.filter.factory.SpringCloudCircuitBreakerFilterFactory$CircuitBreakerStatusCodeException"
            )
        );
    }
    // Open: the upstream is not called, the fallback answers.
    let hits = up.hits();
    let (s, _, echo) = get(&gw.url("/g/ok")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(echo["path"], "/from-fallback");
    assert_eq!(
        support::seen(&echo, "execution-exception-type"),
        Some("io.github.resilience4j.circuitbreaker.CallNotPermittedException")
    );
    assert_eq!(
        up.hits(),
        hits + 1,
        "only the fallback route reached the upstream"
    );
    // After the wait, a good trial call closes it.
    eventually(Duration::from_secs(5), "the breaker to close", || async {
        let (_, _, echo) = get(&gw.url("/g/ok")).await;
        echo["path"] == "/ok"
    })
    .await;
    assert_eq!(get(&gw.url("/g/ok")).await.2["path"], "/ok");
}

#[tokio::test]
async fn breaker_without_fallback_answers_504_on_timeout_and_503_when_open() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&breaker_config(up.addr, "        - CircuitBreaker=cb\n")).await;
    for _ in 0..4 {
        let (s, _, body) = get(&gw.url("/g/delay/2000")).await;
        assert_eq!(s, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(body["status"], 504);
    }
    let (s, _, body) = get(&gw.url("/g/ok")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], 503);
}

#[tokio::test]
async fn a_response_timeout_shorter_than_the_breakers_time_limit_still_ends_the_wait() {
    // The route's response timeout (200 ms) under a breaker that would
    // wait 5 s: the response timeout answers; a breaker's shorter limit
    // (the test above) makes the gateway skip its own timer instead.
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "spring.cloud.gateway.routes:\n  - id: guarded\n    uri: http://{}\n    predicates: [Path=/g/**]\n    metadata: {{response-timeout: 200}}\n    filters: [StripPrefix=1, CircuitBreaker=cb]\n\
         resilience4j.timelimiter.instances.cb: {{timeoutDuration: 5s}}\n",
        up.addr
    ))
    .await;
    let started = tokio::time::Instant::now();
    let (s, _, body) = get(&gw.url("/g/delay/3000")).await;
    let took = started.elapsed();
    assert_eq!(s, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(
        took < Duration::from_millis(2500),
        "answered after {took:?}, not at the response timeout"
    );
}

#[tokio::test]
async fn retry_repeats_idempotent_requests_on_5xx_but_not_posts() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "spring.cloud.gateway.routes:\n  - id: r\n    uri: http://{}\n    predicates: [Path=/**]\n    filters:\n      - name: Retry\n        args: {{retries: 3, statuses: BAD_GATEWAY, methods: 'GET,PUT', backoff: {{firstBackoff: 5ms, maxBackoff: 20ms}}}}\n",
        up.addr
    ))
    .await;
    let (s, _, echo) = send(client().get(gw.url("/flaky/2")).header("x-kept", "yes")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(echo["path"], "/flaky/2");
    assert_eq!(up.hits(), 3, "two 503s, then the answer");
    // The third attempt carries the client's headers and the gateway's,
    // as the first did (the first sends the client's own map).
    assert_eq!(seen(&echo, "x-kept"), Some("yes"));
    assert_eq!(seen(&echo, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(
        echo["headers"]["x-forwarded-for"].as_array().map(Vec::len),
        Some(1)
    );
    // A kept (small) body is sent again on each attempt.
    let (s, _, echo) = send(client().put(gw.url("/flaky/4")).body("payload")).await;
    assert_eq!(
        (s, echo["body"].as_str()),
        (StatusCode::OK, Some("payload"))
    );
    // Retries run out: the last answer is passed on.
    let before = up.hits();
    assert_eq!(get(&gw.url("/status/502")).await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(up.hits() - before, 4);
    // POST is not among the methods: sent once.
    let before = up.hits();
    assert_eq!(
        send(client().post(gw.url("/status/503")).body("x")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(up.hits() - before, 1);
    // A body too large to keep is streamed once, never buffered for a retry.
    let before = up.hits();
    let big = vec![b'x'; 200 * 1024];
    assert_eq!(
        send(client().put(gw.url("/status/503")).body(big)).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(up.hits() - before, 1);
}

#[tokio::test]
async fn retry_on_connect_failure_then_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let gw = TestGateway::start(&format!(
        "spring.cloud.gateway.routes:\n  - id: r\n    uri: http://{closed}\n    predicates: [Path=/**]\n    filters: [Retry=2]\n"
    ))
    .await;
    assert_eq!(get(&gw.url("/x")).await.0, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn rate_limiter_refuses_beyond_the_burst_with_headers() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "spring.cloud.gateway.routes:\n  - id: r\n    uri: http://{}\n    predicates: [Path=/**]\n    filters:\n      - name: RequestRateLimiter\n        args: {{redis-rate-limiter.replenishRate: 1, redis-rate-limiter.burstCapacity: 2, redis-rate-limiter.requestedTokens: 1}}\n",
        up.addr
    ))
    .await;
    let (s, h, _) = get(&gw.url("/a")).await;
    assert_eq!(
        (s, h["x-ratelimit-remaining"].to_str().ok()),
        (StatusCode::OK, Some("1"))
    );
    assert_eq!(h["x-ratelimit-burst-capacity"], "2");
    assert_eq!(h["x-ratelimit-replenish-rate"], "1");
    assert_eq!(h["x-ratelimit-requested-tokens"], "1");
    assert_eq!(get(&gw.url("/a")).await.0, StatusCode::OK);
    let (s, h, _) = get(&gw.url("/a")).await;
    assert_eq!(
        (s, h["x-ratelimit-remaining"].to_str().ok()),
        (StatusCode::TOO_MANY_REQUESTS, Some("0"))
    );
    assert_eq!(
        up.hits(),
        2,
        "the refused request never reached the upstream"
    );
    // Tokens come back at the replenish rate.
    eventually(Duration::from_secs(5), "tokens to come back", || async {
        get(&gw.url("/a")).await.0 == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn the_rate_limit_headers_follow_scgs_settings() {
    let up = Upstream::start().await;
    let route = |settings: &str| {
        format!(
            "spring.cloud.gateway:\n{settings}  routes:\n    - id: r\n      uri: http://{}\n      predicates: [Path=/**]\n      filters:\n        - name: RequestRateLimiter\n          args: {{replenishRate: 1, burstCapacity: 1}}\n",
            up.addr
        )
    };
    // SCG 4.3's prefix, and no headers at all, on the answer or the refusal.
    let gw = TestGateway::start(&route(
        "  server.webflux.redis-rate-limiter.include-headers: false\n",
    ))
    .await;
    let (s, h, _) = get(&gw.url("/a")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, refused, _) = get(&gw.url("/a")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    for headers in [&h, &refused] {
        assert!(
            !headers
                .keys()
                .any(|n| n.as_str().starts_with("x-ratelimit")),
            "{headers:?}"
        );
    }
    // Renamed.
    let gw = TestGateway::start(&route(
        "  redis-rate-limiter:\n    remaining-header: X-Tokens-Left\n",
    ))
    .await;
    let (s, h, _) = get(&gw.url("/a")).await;
    assert_eq!(
        (s, h["x-tokens-left"].to_str().ok()),
        (StatusCode::OK, Some("0"))
    );
    assert!(!h.contains_key("x-ratelimit-remaining"));
    assert_eq!(h["x-ratelimit-burst-capacity"], "1");
}

#[tokio::test]
async fn cache_request_body_lets_retry_send_a_large_body_again() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "spring.codec.max-in-memory-size: 1MB\nspring.cloud.gateway.routes:\n  - id: r\n    uri: http://{}\n    predicates: [Path=/**]\n    filters:\n      - CacheRequestBody=java.lang.String\n      - name: Retry\n        args: {{retries: 2, statuses: SERVICE_UNAVAILABLE, methods: POST, backoff: {{firstBackoff: 5ms, maxBackoff: 20ms}}}}\n",
        up.addr
    ))
    .await;
    // 200 KiB: over the 64 KiB Retry keeps by itself, within the codec limit.
    let big = "y".repeat(200 * 1024);
    let (s, _, echo) = send(client().post(gw.url("/flaky/1")).body(big.clone())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(up.hits(), 2, "one 503, then the same body again");
    assert_eq!(echo["body"].as_str().map(str::len), Some(big.len()));
    // Over the codec limit: 413 before anything is sent.
    let before = up.hits();
    let (s, _, error) = send(
        client()
            .post(gw.url("/x"))
            .body("z".repeat(1024 * 1024 + 1)),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_eq!(up.hits(), before);
}
