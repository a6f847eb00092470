//! Upstreams reached through a forward proxy
//! (`spring.cloud.gateway.httpclient.proxy.*`): a `CONNECT` tunnel per
//! connection, `Proxy-Authorization` when a user is set, the hosts of
//! `non-proxy-hosts-pattern` reached directly, and the settings refused at
//! start when they cannot work.

mod support;

use std::net::SocketAddr;

use axum::http::StatusCode;
use support::{ConnectProxy, TestGateway, Upstream, get};

fn config(upstream: SocketAddr, proxy: &str) -> String {
    format!(
        "spring.cloud.gateway:\n  httpclient:\n    proxy:\n{proxy}  routes:\n    - id: api\n      uri: http://{upstream}\n      predicates: [Path=/api/**]\n      filters: [StripPrefix=1]\n"
    )
}

#[tokio::test]
async fn upstream_connections_go_through_the_proxy_as_connect_tunnels() {
    let up = Upstream::start().await;
    let proxy = ConnectProxy::start(None).await;
    let gw = TestGateway::start(&config(
        up.addr,
        &format!("      host: 127.0.0.1\n      port: {}\n", proxy.addr.port()),
    ))
    .await;
    for _ in 0..3 {
        let (status, _, echo) = get(&gw.url("/api/hello")).await;
        assert_eq!(status, StatusCode::OK, "{echo}");
        assert_eq!(echo["path"], "/hello");
    }
    // Tunnels to the upstream, kept alive between requests (one per I/O
    // worker at most: each worker keeps its own connections).
    let tunnels = proxy.tunnels();
    assert!(!tunnels.is_empty());
    assert!(
        tunnels.iter().all(|t| *t == up.addr.to_string()),
        "{tunnels:?}"
    );
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(tunnels.len() <= workers.min(3), "{tunnels:?}");
}

#[tokio::test]
async fn the_proxy_user_is_sent_and_a_refusal_is_a_502_that_says_why() {
    let up = Upstream::start().await;
    // user:pass
    let proxy = ConnectProxy::start(Some("Basic dXNlcjpwYXNz")).await;
    let port = proxy.addr.port();
    let gw = TestGateway::start(&config(
        up.addr,
        &format!("      host: 127.0.0.1\n      port: {port}\n      username: user\n      password: pass\n"),
    ))
    .await;
    let (status, _, echo) = get(&gw.url("/api/x")).await;
    assert_eq!(status, StatusCode::OK, "{echo}");

    let wrong = TestGateway::start(&config(
        up.addr,
        &format!("      host: 127.0.0.1\n      port: {port}\n      username: user\n      password: nope\n"),
    ))
    .await;
    let (status, _, body) = get(&wrong.url("/api/x")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("407"), "{body}");
    assert_eq!(up.hits(), 1, "the refused tunnel reached no upstream");
}

#[tokio::test]
async fn exempt_hosts_are_reached_directly() {
    let up = Upstream::start().await;
    let proxy = ConnectProxy::start(None).await;
    let gw = TestGateway::start(&config(
        up.addr,
        &format!(
            "      host: 127.0.0.1\n      port: {}\n      nonProxyHostsPattern: 'localhost|127\\.0\\.0\\.\\d+'\n",
            proxy.addr.port()
        ),
    ))
    .await;
    let (status, _, echo) = get(&gw.url("/api/direct")).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert!(proxy.tunnels().is_empty(), "{:?}", proxy.tunnels());
}

#[tokio::test]
async fn proxy_settings_that_cannot_work_fail_at_start_naming_the_key() {
    for (proxy, key) in [
        ("      host: p.example\n", "httpclient.proxy.port"),
        (
            "      type: SOCKS5\n      host: p.example\n      port: 1080\n",
            "httpclient.proxy.type",
        ),
        (
            "      host: p.example\n      port: 3128\n      non-proxy-hosts-pattern: '(open'\n",
            "httpclient.proxy.non-proxy-hosts-pattern",
        ),
    ] {
        let text = support::refused_at_start(&config("127.0.0.1:1".parse().expect("addr"), proxy));
        assert!(text.contains(key), "{key}: {text}");
    }
}
