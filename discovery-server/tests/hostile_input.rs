//! Hostile input against the real HTTP stack: bodies built to take
//! quadratic time or to grow memory are refused at once with a `400` and
//! our JSON error, counted in the metrics, while the server keeps serving;
//! the delta queue stays within its byte budget and says so when trimmed.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use cloud_protocol::eureka::{ActionType, InstanceInfo, json};
use discovery_server::limits::Limits;
use discovery_server::{Server, ServerConfig};
use support::{Running, instance};
use tokio::sync::oneshot;

/// Time any one request may take here, in a debug build on a busy machine.
const BUDGET: Duration = Duration::from_secs(5);

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(BUDGET).build().unwrap()
}

/// `<instance aaa='' aab='' ...>` with `n` distinct attributes, as in the
/// report (140 000 of them make 984 KB).
fn xml_with_attributes(n: usize) -> String {
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
    let mut s = String::with_capacity(n * 7 + 16);
    s.push_str("<instance ");
    let mut written = 0;
    'names: for a in &letters {
        for b in &letters {
            for c in &letters {
                if written == n {
                    break 'names;
                }
                s.extend([*a, *b, *c]);
                s.push_str("='' ");
                written += 1;
            }
        }
    }
    s.push_str("/>");
    s
}

fn with_metadata(id: &str, keys: usize, value_len: usize) -> InstanceInfo {
    let mut info = instance("HOSTILE", id);
    info.metadata
        .extend((0..keys).map(|i| (format!("key-{i:06}"), "v".repeat(value_len))));
    info
}

/// The value of a metric line (`name` includes labels) at a
/// `/actuator/prometheus` URL.
async fn metric_at(url: String, name: &str) -> Option<f64> {
    let text = client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The value of a metric line of a running server.
async fn metric(s: &Running, name: &str) -> Option<f64> {
    metric_at(s.url("/actuator/prometheus"), name).await
}

/// Checks a `400` with our JSON error body and returns its reason.
async fn bad_request_reason(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "Bad Request", "{body}");
    body["reason"].as_str().unwrap().to_owned()
}

/// A server on its own runtime with two worker threads, as in the report,
/// so that requests that hold the server's threads cannot hold the test's
/// timers too: a slow answer fails the test within [`BUDGET`] instead of
/// stalling it. Stopped when dropped.
struct OwnRuntime {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl OwnRuntime {
    fn start(config: ServerConfig) -> OwnRuntime {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let shutdown = async {
                    let _ = stopped.await;
                };
                Server::new(config)
                    .unwrap()
                    .serve(listener, shutdown)
                    .await
                    .unwrap();
            });
        });
        OwnRuntime {
            addr,
            stop: Some(stop),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[tokio::test]
async fn xml_with_140k_attributes_is_refused_at_once_while_health_answers() {
    let s = OwnRuntime::start(ServerConfig::default());
    let body = xml_with_attributes(140_000);
    assert!(body.len() > 900_000 && body.len() < 1 << 20);
    let post = || {
        client()
            .post(s.url("/eureka/apps/X"))
            .header("Content-Type", "application/xml")
            .body(body.clone())
            .send()
    };
    // Two at once, as many as the server has worker threads, and a health
    // check beside them: all answered within the budget.
    let (a, b, health) = tokio::join!(
        post(),
        post(),
        client().get(s.url("/actuator/health")).send()
    );
    assert_eq!(health.unwrap().status(), 200);
    for response in [a.unwrap(), b.unwrap()] {
        let reason = bad_request_reason(response).await;
        assert!(reason.contains("1024 attributes"), "{reason}");
    }
    assert_eq!(
        metric_at(
            s.url("/actuator/prometheus"),
            r#"discovery_rejected_requests_total{reason="xml_attributes"}"#
        )
        .await,
        Some(2.0)
    );
}

#[tokio::test]
async fn deep_or_long_xml_is_refused_and_counted() {
    let s = Running::start(ServerConfig::default()).await;
    let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
    let mut long = String::from("<instance><metadata>");
    for i in 0..12_000 {
        long.push_str(&format!("<k{i}/>"));
    }
    long.push_str("</metadata></instance>");
    for (body, reason) in [(deep, "xml_depth"), (long, "xml_elements")] {
        let response = client()
            .post(s.url("/eureka/apps/X"))
            .header("Content-Type", "application/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        bad_request_reason(response).await;
        let name = format!("discovery_rejected_requests_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&s, &name).await, Some(1.0), "{reason}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_registration_with_too_much_metadata_is_refused_and_nothing_is_stored() {
    let s = Running::start(ServerConfig::default()).await;
    let register = |info: InstanceInfo| {
        client()
            .post(s.url("/eureka/apps/HOSTILE"))
            .header("Content-Type", "application/json")
            .body(json::encode_instance(&info))
            .send()
    };
    // The report's body: 60 000 keys, 840 KB.
    let reason = bad_request_reason(register(with_metadata("a", 60_000, 0)).await.unwrap()).await;
    assert!(reason.contains("at most 256"), "{reason}");
    bad_request_reason(register(with_metadata("a", 257, 0)).await.unwrap()).await;
    // 100 entries of 700 bytes: few keys, too many bytes.
    let reason = bad_request_reason(register(with_metadata("a", 100, 700)).await.unwrap()).await;
    assert!(reason.contains("65536"), "{reason}");
    let listed = client()
        .get(s.url("/eureka/apps/HOSTILE"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 404, "nothing was stored");
    assert_eq!(
        metric(
            &s,
            r#"discovery_rejected_requests_total{reason="metadata_keys"}"#
        )
        .await,
        Some(2.0)
    );
    assert_eq!(
        metric(
            &s,
            r#"discovery_rejected_requests_total{reason="metadata_bytes"}"#
        )
        .await,
        Some(1.0)
    );
    // Within the limits, the same instance registers.
    assert_eq!(
        register(with_metadata("a", 256, 200))
            .await
            .unwrap()
            .status(),
        204
    );
    s.stop().await;
}

#[tokio::test]
async fn metadata_puts_stop_at_the_per_instance_limit() {
    let s = Running::start(ServerConfig::default()).await;
    s.server.node().register(
        instance("HOSTILE", "a"),
        discovery_server::registry::Origin::Local,
    );
    let put = |prefix: &'static str| {
        let query: Vec<(String, String)> = (0..100)
            .map(|i| (format!("{prefix}{i}"), "v".to_owned()))
            .collect();
        client()
            .put(s.url("/eureka/apps/HOSTILE/a/metadata"))
            .query(&query)
            .send()
    };
    assert_eq!(put("a").await.unwrap().status(), 200);
    assert_eq!(put("b").await.unwrap().status(), 200);
    let reason = bad_request_reason(put("c").await.unwrap()).await;
    assert!(reason.contains("300 entries"), "{reason}");
    let (info, _) = s.server.node().registry().instance("HOSTILE", "a").unwrap();
    assert_eq!(
        info.metadata.len(),
        200,
        "the refused update stored nothing"
    );
    assert_eq!(
        metric(
            &s,
            r#"discovery_rejected_requests_total{reason="metadata_keys"}"#
        )
        .await,
        Some(1.0)
    );
    // An unknown instance is still a 404.
    let unknown = client()
        .put(s.url("/eureka/apps/HOSTILE/nobody/metadata?k=v"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn re_registering_with_large_metadata_keeps_the_delta_queue_small() {
    let s = Running::start(ServerConfig::default()).await;
    let mut info = with_metadata("a", 250, 200);
    let record = info.approx_size_bytes() as f64;
    for n in 0..200 {
        info.last_dirty_timestamp = 1_700_000_000_000 + n;
        let response = client()
            .post(s.url("/eureka/apps/HOSTILE"))
            .header("Content-Type", "application/json")
            .body(json::encode_instance(&info))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
    assert_eq!(
        metric(&s, "discovery_delta_queue_changes").await,
        Some(200.0)
    );
    let bytes = metric(&s, "discovery_delta_queue_bytes").await.unwrap();
    // One record (not 200 copies) and a small entry per change.
    assert!(
        bytes < 2.0 * record + 200.0 * 256.0,
        "{bytes} bytes for records of {record}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_trimmed_delta_queue_lists_every_instance_and_counts_the_drops() {
    let s = Running::start(ServerConfig::default()).await;
    let record = with_metadata("x", 50, 100).approx_size_bytes();
    s.server.node().registry().set_limits(Limits {
        max_delta_queue_bytes: 3 * record,
        ..Limits::default()
    });
    for i in 0..10 {
        let response = client()
            .post(s.url("/eureka/apps/HOSTILE"))
            .header("Content-Type", "application/json")
            .body(json::encode_instance(&with_metadata(
                &format!("i{i}"),
                50,
                100,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
    let cancel = client()
        .delete(s.url("/eureka/apps/HOSTILE/i0"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    assert!(metric(&s, "discovery_delta_queue_bytes").await.unwrap() <= 3.0 * record as f64);
    assert!(
        metric(&s, "discovery_delta_changes_dropped_total")
            .await
            .unwrap()
            >= 1.0
    );
    assert_eq!(metric(&s, "discovery_delta_incomplete").await, Some(1.0));
    let delta = client()
        .get(s.url("/eureka/apps/delta"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let delta = json::decode_applications(&delta).unwrap();
    let mut listed: Vec<(String, Option<ActionType>)> = delta
        .instances()
        .map(|i| (i.instance_id.clone(), i.action_type))
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed.len(), 10, "{listed:?}");
    assert_eq!(listed[0], ("i0".to_owned(), Some(ActionType::Deleted)));
    assert_eq!(delta.apps_hashcode, "UP_9_");
    s.stop().await;
}

#[tokio::test]
async fn silent_connections_are_closed_and_counted_while_requests_are_served() {
    let mut config = ServerConfig::default();
    config.limits.header_read_timeout = Duration::from_millis(300);
    let server = OwnRuntime::start(config);
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // Every silent connection is closed by the server (read returns EOF).
    for conn in &mut silent {
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(BUDGET, tokio::io::AsyncReadExt::read(conn, &mut buf))
            .await
            .expect("closed within the budget");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    let timeouts = metric_at(
        server.url("/actuator/prometheus"),
        "discovery_connection_header_timeouts_total",
    )
    .await;
    assert!(timeouts.is_some_and(|t| t >= 20.0), "{timeouts:?}");
    let health = tokio::time::timeout(BUDGET, client().get(server.url("/actuator/health")).send())
        .await
        .unwrap()
        .unwrap();
    assert!(health.status().is_success());
}
