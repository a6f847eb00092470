//! RequestRateLimiter through a real `redis-server` (started by each test on
//! a free port, stopped when the test ends): SCG's keys, TTLs and budget
//! shared between gateways, and traffic let through while Redis is away.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use support::redis::RedisServer;
use support::{TestGateway, Upstream, client, eventually, get, send};

/// A gateway whose route `limited` (on `/l/**`) draws from Redis at
/// `redis_url`, keyed by `X-Api-Key`, with the filter arguments `args`.
async fn gateway(up: &Upstream, redis_url: &str, args: &str) -> TestGateway {
    gateway_with(
        up,
        &format!("spring.data.redis:\n  url: {redis_url}\n  timeout: 1s\n"),
        args,
    )
    .await
}

/// The same with the Redis settings `redis` (YAML).
async fn gateway_with(up: &Upstream, redis: &str, args: &str) -> TestGateway {
    TestGateway::start(&format!(
        "{redis}spring.cloud.gateway.routes:\n\
         \x20 - id: limited\n    uri: http://{}\n    predicates: [Path=/l/**]\n    filters:\n\
         \x20     - name: RequestRateLimiter\n        args: {{key-resolver: 'header:X-Api-Key', {args}}}\n\
         \x20 - id: by-address\n    uri: http://{}\n    predicates: [Path=/a/**]\n    filters:\n\
         \x20     - name: RequestRateLimiter\n        args: {{redis-rate-limiter.replenishRate: 1, redis-rate-limiter.burstCapacity: 3}}\n",
        up.addr, up.addr
    ))
    .await
}

/// A rate so slow that no token comes back while a test runs: the
/// sequence of remaining tokens is exact.
const SLOW: &str = "redis-rate-limiter.replenishRate: 0.001, redis-rate-limiter.burstCapacity: 3";

async fn limited(gw: &TestGateway, key: &str) -> (StatusCode, Option<String>) {
    let (s, h, _) = send(client().get(gw.url("/l/x")).header("x-api-key", key)).await;
    let remaining = h
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (s, remaining)
}

/// Waits until `gw` reaches Redis (so that no request of the test is let
/// through for want of a first connection on a busy machine).
async fn connected(gw: &TestGateway) {
    eventually(
        Duration::from_secs(10),
        "the gateway to reach Redis",
        || async { redis_status(gw).await == "UP" },
    )
    .await;
}

/// The answer of Redis command `cmd` on `key`.
async fn on_key<T: redis::FromRedisValue>(
    c: &mut redis::aio::MultiplexedConnection,
    cmd: &str,
    key: &str,
) -> T {
    redis::cmd(cmd)
        .arg(key)
        .query_async(c)
        .await
        .unwrap_or_else(|e| panic!("{cmd} {key}: {e}"))
}

/// A Redis, an upstream and a gateway with the `SLOW` limiter, connected.
async fn started() -> (RedisServer, Upstream, TestGateway) {
    let redis = RedisServer::start().await;
    let up = Upstream::start().await;
    let gw = gateway(&up, &redis.url(), SLOW).await;
    connected(&gw).await;
    (redis, up, gw)
}

async fn health(gw: &TestGateway) -> serde_json::Value {
    get(&gw.admin_url("/actuator/health")).await.2
}

async fn redis_status(gw: &TestGateway) -> String {
    health(gw).await["components"]["redis"]["status"]
        .as_str()
        .unwrap_or("absent")
        .to_owned()
}

#[tokio::test]
async fn burst_is_allowed_then_refused_with_the_rate_limit_headers() {
    let (_redis, up, gw) = started().await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let (s, r) = limited(&gw, "k1").await;
        assert_eq!(s, StatusCode::OK);
        remaining.push(r.unwrap_or_default());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let (s, h, _) = send(client().get(gw.url("/l/x")).header("x-api-key", "k1")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert_eq!(h["x-ratelimit-replenish-rate"], "0.001");
    assert_eq!(h["x-ratelimit-burst-capacity"], "3");
    assert_eq!(h["x-ratelimit-requested-tokens"], "1");
    assert_eq!(
        up.hits(),
        3,
        "the refused request never reached the upstream"
    );
    // Another key has its own bucket.
    assert_eq!(
        limited(&gw, "k2").await,
        (StatusCode::OK, Some("2".to_owned()))
    );
    let h = health(&gw).await;
    assert_eq!(h["status"], "UP");
    assert_eq!(h["components"]["redis"]["status"], "UP", "{h}");
}

#[tokio::test]
async fn buckets_have_scg_key_names_and_ttl_and_scg_state_is_honoured() {
    let (redis, _up, gw) = started().await;
    let mut c = redis.connection().await.expect("test connection");
    assert_eq!(limited(&gw, "k1").await.0, StatusCode::OK);
    let tokens: String = on_key(&mut c, "GET", "request_rate_limiter.{limited.k1}.tokens").await;
    assert_eq!(tokens.parse::<f64>().expect("a number").floor(), 2.0);
    let stamp: i64 = on_key(&mut c, "GET", "request_rate_limiter.{limited.k1}.timestamp").await;
    let (now, _): (i64, i64) = redis::cmd("TIME").query_async(&mut c).await.expect("time");
    assert!(
        (now - 5..=now).contains(&stamp),
        "the timestamp is Redis's TIME in seconds: {stamp} vs {now}"
    );
    // TTL = floor(capacity / rate * 2): 6000 s here.
    let ttl: i64 = on_key(&mut c, "TTL", "request_rate_limiter.{limited.k1}.tokens").await;
    assert!((5990..=6000).contains(&ttl), "ttl {ttl}");
    // Keyed by the client's address: 3 / 1 * 2 = 6 s.
    assert_eq!(get(&gw.url("/a/x")).await.0, StatusCode::OK);
    let ttl: i64 = on_key(
        &mut c,
        "TTL",
        "request_rate_limiter.{by-address.127.0.0.1}.timestamp",
    )
    .await;
    assert!((1..=6).contains(&ttl), "ttl {ttl}");
    // A bucket that another gateway (SCG) emptied refuses here too.
    let _: () = redis::pipe()
        .cmd("SETEX")
        .arg("request_rate_limiter.{limited.k9}.tokens")
        .arg(6000)
        .arg(0)
        .cmd("SETEX")
        .arg("request_rate_limiter.{limited.k9}.timestamp")
        .arg(6000)
        .arg(now)
        .query_async(&mut c)
        .await
        .expect("set");
    assert_eq!(
        limited(&gw, "k9").await,
        (StatusCode::TOO_MANY_REQUESTS, Some("0".to_owned()))
    );
}

#[tokio::test]
async fn two_gateways_on_one_redis_share_the_budget() {
    let redis = RedisServer::start().await;
    let up = Upstream::start().await;
    let a = gateway(&up, &redis.url(), SLOW).await;
    // Spring Boot 2's keys, host and port instead of a URL.
    let b = gateway_with(
        &up,
        &format!(
            "spring.redis:\n  host: 127.0.0.1\n  port: {}\n  timeout: 1s\n",
            redis.port
        ),
        SLOW,
    )
    .await;
    connected(&a).await;
    connected(&b).await;
    assert_eq!(
        limited(&a, "k").await,
        (StatusCode::OK, Some("2".to_owned()))
    );
    assert_eq!(
        limited(&b, "k").await,
        (StatusCode::OK, Some("1".to_owned()))
    );
    assert_eq!(
        limited(&a, "k").await,
        (StatusCode::OK, Some("0".to_owned()))
    );
    assert_eq!(limited(&b, "k").await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited(&a, "k").await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(up.hits(), 3);
}

#[tokio::test]
async fn an_outage_lets_traffic_through_is_reported_and_limiting_resumes() {
    let (mut redis, _up, gw) = started().await;
    for _ in 0..3 {
        assert_eq!(limited(&gw, "k").await.0, StatusCode::OK);
    }
    assert_eq!(limited(&gw, "k").await.0, StatusCode::TOO_MANY_REQUESTS);

    redis.kill();
    // Fail open: the requests pass, marked as not counted.
    for _ in 0..5 {
        assert_eq!(
            limited(&gw, "k").await,
            (StatusCode::OK, Some("-1".to_owned()))
        );
    }
    let h = health(&gw).await;
    assert_eq!(h["status"], "UP", "the gateway still serves: {h}");
    assert_eq!(h["components"]["redis"]["status"], "DOWN", "{h}");
    assert!(
        h["components"]["redis"]["details"]["error"].is_string(),
        "{h}"
    );
    // Spring Boot's probe groups: the gateway fails open, so it stays
    // ready; the component alone says DOWN.
    let (status, _, component) = get(&gw.admin_url("/actuator/health/redis")).await;
    assert_eq!(
        (status, &component["status"]),
        (StatusCode::OK, &json!("DOWN")),
        "{component}"
    );
    for probe in ["liveness", "readiness"] {
        let (status, _, body) = get(&gw.admin_url(&format!("/actuator/health/{probe}"))).await;
        assert_eq!(
            (status, &body["status"]),
            (StatusCode::OK, &json!("UP")),
            "{probe}: {body}"
        );
    }
    let metrics = gw.prometheus().await;
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gateway_rate_limiter_redis_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("failure counter missing:\n{metrics}"));
    assert!(failures >= 5, "{failures} failures counted");
    assert!(
        metrics.contains("gateway_rate_limiter_redis_up 0"),
        "{metrics}"
    );

    // Back (empty, as after a restart without persistence): counted again.
    assert!(redis.run().await, "redis-server restarts on its port");
    eventually(
        Duration::from_secs(10),
        "requests counted in Redis again",
        || async { limited(&gw, "k").await.1.as_deref() != Some("-1") },
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "the bucket to run dry again",
        || async { limited(&gw, "k").await.0 == StatusCode::TOO_MANY_REQUESTS },
    )
    .await;
    assert_eq!(redis_status(&gw).await, "UP");
}

#[test]
fn a_tls_redis_url_is_refused_at_start_naming_the_key() {
    let settings: api_gateway::settings::Settings =
        serde_yaml_ng::from_str("spring:\n  redis:\n    url: rediss://cache:6379\n").expect("YAML");
    let e = api_gateway::Gateway::builder(settings)
        .build()
        .expect_err("TLS to Redis is not supported")
        .to_string();
    assert!(e.contains("spring.redis.url"), "{e}");
    assert!(e.contains("redis://"), "{e}");
}
