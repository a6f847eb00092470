//! LocalResponseCache in front of a real upstream on 127.0.0.1: the
//! upstream sees one request for repeated GETs, `no-store` answers are not
//! kept, entries expire with the gateway's (manual) clock, and the global
//! cache follows `spring.cloud.gateway.filter.local-response-cache.*`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api_gateway::Gateway;
use api_gateway::settings::Settings;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use cloud_runtime::clock::ManualClock;
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;

/// An upstream that counts requests: `/plain` answers the count,
/// `/no-store` the same with `Cache-Control: no-store`.
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Upstream {
    async fn start() -> Upstream {
        async fn plain(State(hits): State<Arc<AtomicUsize>>) -> String {
            format!("hit {}", hits.fetch_add(1, Ordering::SeqCst) + 1)
        }
        async fn no_store(State(hits): State<Arc<AtomicUsize>>) -> impl IntoResponse {
            let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
            ([(header::CACHE_CONTROL, "no-store")], format!("hit {n}"))
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("address");
        let hits = Arc::new(AtomicUsize::new(0));
        let router = Router::new()
            .route("/plain", get(plain))
            .route("/no-store", get(no_store))
            .with_state(Arc::clone(&hits));
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await;
        });
        Upstream { addr, hits, stop }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A gateway over `yaml` (`{up}` replaced by the upstream's address) on
/// `clock`.
fn gateway(yaml: &str, up: &Upstream, clock: &ManualClock) -> Gateway {
    let yaml = yaml.replace("{up}", &up.addr.to_string());
    let settings: Settings = serde_yaml_ng::from_str(&yaml).expect("test YAML");
    Gateway::builder(settings)
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("routes compile")
}

async fn fetch(gw: &Gateway, path: &str) -> (StatusCode, HeaderMap, String) {
    let request = Request::builder()
        .uri(path)
        .header(header::HOST, "gw.test")
        .body(Body::empty())
        .expect("request");
    let response = gw
        .handle(request, SocketAddr::from(([127, 0, 0, 1], 40000)))
        .await;
    let (head, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        head.status,
        head.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

const ROUTE_CACHE: &str = "
spring:
  cloud:
    gateway:
      routes:
        - id: cached
          uri: http://{up}
          predicates: [ 'Path=/c/**' ]
          filters: [ 'StripPrefix=1', 'LocalResponseCache=30s,1MB' ]
        - id: direct
          uri: http://{up}
          predicates: [ 'Path=/d/**' ]
          filters: [ 'StripPrefix=1' ]
";

#[tokio::test]
async fn repeated_gets_reach_the_upstream_once_until_the_entry_expires() {
    let up = Upstream::start().await;
    let clock = ManualClock::new();
    let gw = gateway(ROUTE_CACHE, &up, &clock);
    let (s, h, body) = fetch(&gw, "/c/plain").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "hit 1"));
    assert_eq!(h[header::CACHE_CONTROL], "max-age=30");
    clock.advance(Duration::from_secs(12));
    for _ in 0..3 {
        let (s, h, body) = fetch(&gw, "/c/plain").await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "hit 1"));
        assert_eq!(h[header::CACHE_CONTROL], "max-age=18");
    }
    assert_eq!(up.hits(), 1, "answered from the cache");
    clock.advance(Duration::from_secs(18));
    assert_eq!(fetch(&gw, "/c/plain").await.2, "hit 2", "expired");
    // A route without the filter is not cached.
    fetch(&gw, "/d/plain").await;
    fetch(&gw, "/d/plain").await;
    assert_eq!(up.hits(), 4);
}

#[tokio::test]
async fn no_store_answers_and_no_store_requests_are_not_cached() {
    let up = Upstream::start().await;
    let clock = ManualClock::new();
    let gw = gateway(ROUTE_CACHE, &up, &clock);
    let (_, h, _) = fetch(&gw, "/c/no-store").await;
    assert_eq!(h[header::CACHE_CONTROL], "no-store", "passed on untouched");
    assert_eq!(fetch(&gw, "/c/no-store").await.2, "hit 2");
    let request = || {
        Request::builder()
            .uri("/c/plain")
            .header(header::HOST, "gw.test")
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::empty())
            .expect("request")
    };
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    gw.handle(request(), peer).await;
    gw.handle(request(), peer).await;
    assert_eq!(up.hits(), 4);
}

#[tokio::test]
async fn the_global_cache_covers_every_route_unless_switched_off() {
    let up = Upstream::start().await;
    let clock = ManualClock::new();
    let global = "
spring:
  cloud:
    gateway:
      filter:
        local-response-cache: { enabled: true, time-to-live: 1m, size: 10MB }
      routes:
        - id: direct
          uri: http://{up}
          predicates: [ 'Path=/d/**' ]
          filters: [ 'StripPrefix=1' ]
";
    let gw = gateway(global, &up, &clock);
    let (_, h, _) = fetch(&gw, "/d/plain").await;
    assert_eq!(h[header::CACHE_CONTROL], "max-age=60");
    assert_eq!(fetch(&gw, "/d/plain").await.2, "hit 1");
    assert_eq!(up.hits(), 1);

    let off = global.replace(
        "      routes:",
        "      global-filter:\n        local-response-cache: { enabled: false }\n      routes:",
    );
    let gw = gateway(&off, &up, &clock);
    fetch(&gw, "/d/plain").await;
    fetch(&gw, "/d/plain").await;
    assert_eq!(up.hits(), 3);
}

/// The error of building a gateway over `yaml`.
fn build_error(yaml: &str) -> String {
    let settings: Settings = serde_yaml_ng::from_str(yaml).expect("YAML");
    match Gateway::builder(settings).build() {
        Ok(_) => panic!("{yaml} should be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_cache_settings_are_refused_naming_the_key_or_route() {
    let e = build_error(
        "spring: { cloud: { gateway: { filter: { local-response-cache: { enabled: true, size: lots } } } } }",
    );
    assert!(
        e.contains("spring.cloud.gateway.filter.local-response-cache.size"),
        "{e}"
    );
    let e = build_error(
        "spring: { cloud: { gateway: { routes: [ { id: r7, uri: 'http://127.0.0.1:1', predicates: ['Path=/**'], filters: ['LocalResponseCache=soon'] } ] } } }",
    );
    assert!(e.contains("r7") && e.contains("LocalResponseCache"), "{e}");
    assert!(e.contains("`soon` is not a duration"), "{e}");
}
