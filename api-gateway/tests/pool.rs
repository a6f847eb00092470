//! The upstream connection pool's SCG settings over real sockets:
//! `httpclient.pool.type` (`ELASTIC`, `FIXED` with `max-connections` and
//! `acquire-timeout`, `DISABLED`) and `max-life-time`. The echo upstream
//! names the address each request came from, which tells its connections
//! apart.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use support::{TestGateway, Upstream, eventually, get};

/// One I/O worker: idle connections are kept per worker, and two requests
/// on two workers would use two connections under any pool type.
fn gateway_yml(up: &Upstream, pool: &str) -> String {
    gateway_yml_on(1, up, pool)
}

fn gateway_yml_on(io_workers: usize, up: &Upstream, pool: &str) -> String {
    format!(
        "server.io-workers: {io_workers}\nspring.cloud.gateway:\n  httpclient.pool:\n{pool}  routes:\n    - id: api\n      uri: http://{}\n      predicates: [Path=/api/**]\n      filters: [StripPrefix=1]\n",
        up.addr
    )
}

/// Starts a request that holds the gateway's one upstream connection for
/// `delay_ms` (after a first request that opens it), and waits until the
/// upstream has it: the connection it went out on, and the request.
async fn hold_the_connection(
    gw: &TestGateway,
    up: &Upstream,
    delay_ms: u64,
) -> (
    String,
    tokio::task::JoinHandle<(StatusCode, reqwest::header::HeaderMap, serde_json::Value)>,
) {
    let first = peer_of(gw, "/api/warm").await;
    let url = gw.url(&format!("/api/delay/{delay_ms}"));
    let busy = tokio::spawn(async move { get(&url).await });
    eventually(
        Duration::from_secs(5),
        "the slow request reaches the upstream",
        || async { up.hits() == 2 },
    )
    .await;
    (first, busy)
}

/// The upstream connection one request went out on.
async fn peer_of(gw: &TestGateway, path: &str) -> String {
    let (status, _, echo) = get(&gw.url(path)).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    echo["peer"].as_str().expect("peer").to_owned()
}

#[tokio::test]
async fn a_fixed_pool_opens_no_more_than_max_connections_and_answers_503_past_the_acquire_timeout()
{
    let up = Upstream::start().await;
    let gw = TestGateway::start(&gateway_yml(
        &up,
        "    type: FIXED\n    max-connections: 1\n    acquire-timeout: 200\n",
    ))
    .await;
    // The one connection is busy for 3 s.
    let (first, busy) = hold_the_connection(&gw, &up, 3000).await;
    let (status, _, body) = get(&gw.url("/api/other")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], 503, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("max-connections is 1"), "{body}");
    assert_eq!(
        up.hits(),
        2,
        "the refused request never reached the upstream"
    );
    let (status, _, echo) = busy.await.expect("the slow request ends");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo["peer"].as_str(), Some(first.as_str()));
    // The connection is free again, and still the only one.
    assert_eq!(peer_of(&gw, "/api/after").await, first);
}

#[tokio::test]
async fn a_request_waits_for_the_fixed_pools_connection_to_come_back() {
    let up = Upstream::start().await;
    // Two workers: client connections go to each in turn, so some of the
    // queued requests take the connection from the other worker's pool.
    let gw = TestGateway::start(&gateway_yml_on(
        2,
        &up,
        "    type: fixed\n    max-connections: 1\n    acquire-timeout: 10s\n",
    ))
    .await;
    // Busy long enough that the queued requests are sure to find it so.
    let (first, slow) = hold_the_connection(&gw, &up, 1000).await;
    // Sent while the only connection is busy: it waits, then goes out on it.
    let waiting: Vec<_> = (0..3)
        .map(|i| {
            let url = gw.url(&format!("/api/queued/{i}"));
            tokio::spawn(async move { get(&url).await })
        })
        .collect();
    for w in waiting {
        let (status, _, echo) = w.await.expect("a queued request ends");
        assert_eq!(status, StatusCode::OK, "{echo}");
        assert_eq!(echo["peer"].as_str(), Some(first.as_str()));
    }
    let (status, _, _) = slow.await.expect("the slow request ends");
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn elastic_reuses_connections_while_disabled_and_an_expired_life_do_not() {
    let up = Upstream::start().await;
    let elastic = TestGateway::start(&gateway_yml(&up, "    max-idle-time: 30s\n")).await;
    let a = peer_of(&elastic, "/api/a").await;
    assert_eq!(
        peer_of(&elastic, "/api/b").await,
        a,
        "a kept connection is reused"
    );

    let disabled = TestGateway::start(&gateway_yml(&up, "    type: DISABLED\n")).await;
    let a = peer_of(&disabled, "/api/a").await;
    assert_ne!(
        peer_of(&disabled, "/api/b").await,
        a,
        "no connection is kept"
    );

    // The upstream takes 20 ms: the connection is older than its 10 ms
    // life when the request ends.
    let short_lived = TestGateway::start(&gateway_yml(&up, "    max-life-time: 10ms\n")).await;
    let a = peer_of(&short_lived, "/api/delay/20").await;
    assert_ne!(
        peer_of(&short_lived, "/api/b").await,
        a,
        "an old connection is not kept"
    );
}
