//! Shared by the integration tests: the real discovery and config servers
//! in-process on `127.0.0.1:0`, a TCP proxy that can be cut to fake an
//! outage, throwaway git repositories, and waiting with a deadline.

#![allow(dead_code, unused_imports, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use cloud_client::settings::ClientSettings;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A discovery server on a loopback port, stopped on drop.
pub struct Discovery {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Discovery {
    pub async fn start() -> Discovery {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server =
            discovery_server::Server::new(discovery_server::ServerConfig::default()).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async {
            let _ = rx.await;
        }));
        Discovery {
            addr,
            stop: Some(tx),
        }
    }

    pub fn eureka_url(&self) -> String {
        format!("http://{}/eureka/", self.addr)
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A TCP proxy to `upstream` whose connections, open and future, can be
/// cut at once: a server outage without stopping the server.
pub struct Proxy {
    pub addr: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let conns = Arc::clone(&tasks);
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().push(conn);
            }
        });
        tasks.lock().push(acceptor);
        Proxy { addr, tasks }
    }

    pub fn eureka_url(&self) -> String {
        format!("http://{}/eureka/", self.addr)
    }

    /// Closes the listener and every connection.
    pub fn cut(&self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Settings from pairs, with fast timers for tests.
pub fn settings(pairs: &[(&str, &str)]) -> ClientSettings {
    let mut all = vec![
        ("eureka.instance.lease-renewal-interval-in-seconds", "1"),
        ("eureka.instance.lease-expiration-duration-in-seconds", "3"),
        ("eureka.client.eureka-server-connect-timeout-seconds", "1"),
        ("eureka.client.eureka-server-read-timeout-seconds", "2"),
        ("eureka.instance.hostname", "127.0.0.1"),
    ];
    all.extend_from_slice(pairs);
    ClientSettings::from_properties(all).unwrap()
}

pub use cloud_runtime::testing::GitRepo as Repo;
pub use cloud_runtime::testing::eventually;

/// A config server on a loopback port serving `repo`, stopped on drop.
pub struct ConfigServer {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    _mirror: tempfile::TempDir,
}

impl ConfigServer {
    pub async fn start(repo: &Repo) -> ConfigServer {
        let mirror = tempfile::tempdir().unwrap();
        let settings = config_server::Settings {
            git_uri: Some(format!("file://{}", repo.path().display())),
            refresh_rate: 0,
            mirror_dir: Some(mirror.path().join("mirror.git")),
            ..config_server::Settings::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let running = config_server::start(settings).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(running.serve(listener, async move {
            let _ = rx.await;
        }));
        ConfigServer {
            base,
            stop: Some(tx),
            _mirror: mirror,
        }
    }

    /// Tells the server, as GitHub's push webhook does, that `file` changed.
    pub async fn push_hook(&self, file: &str) {
        let hook =
            serde_json::json!({"commits": [{"added": [], "modified": [file], "removed": []}]});
        let r = reqwest::Client::new()
            .post(format!("{}/monitor", self.base))
            .header("x-github-event", "push")
            .json(&hook)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "monitor: {}", r.status());
    }
}

impl Drop for ConfigServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// What an [`Upstream`] does with requests.
pub const ANSWER: u8 = 0;
/// Answers 500.
pub const FAIL: u8 = 1;
/// Never answers.
pub const HANG: u8 = 2;

/// An HTTP service that counts hits and answers, fails or hangs on
/// demand; its body echoes its name, the request's `traceparent`, its path
/// and query (`uri`), its `x-test` header and its body.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<std::sync::atomic::AtomicU32>,
    mode: Arc<std::sync::atomic::AtomicU8>,
    stop: Option<oneshot::Sender<()>>,
}

impl Upstream {
    pub async fn start(name: &'static str) -> Upstream {
        use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
        let hits = Arc::new(AtomicU32::new(0));
        let mode = Arc::new(AtomicU8::new(ANSWER));
        let (h, m) = (Arc::clone(&hits), Arc::clone(&mode));
        let handler = move |uri: axum::http::Uri, headers: axum::http::HeaderMap, sent: String| {
            let (h, m) = (Arc::clone(&h), Arc::clone(&m));
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let header = |name: &str| header_text(&headers, name);
                let body = axum::Json(serde_json::json!({
                    "name": name,
                    "traceparent": header("traceparent"),
                    "uri": uri.to_string(),
                    "x-test": header("x-test"),
                    "body": sent,
                }));
                match m.load(Ordering::SeqCst) {
                    FAIL => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, body),
                    HANG => std::future::pending().await,
                    _ => (axum::http::StatusCode::OK, body),
                }
            }
        };
        let app = axum::Router::new().fallback(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Upstream {
            addr,
            hits,
            mode,
            stop: Some(tx),
        }
    }

    pub fn set(&self, mode: u8) {
        self.mode.store(mode, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn hits(&self) -> u32 {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// This upstream as an instance of `app`.
    pub fn instance(&self, app: &str, id: &str) -> cloud_client::discovery::ServiceInstance {
        instance_at(app, id, self.addr.port())
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// An `UP` instance of `app` on `127.0.0.1:port`.
pub fn instance_at(app: &str, id: &str, port: u16) -> cloud_client::discovery::ServiceInstance {
    cloud_client::discovery::ServiceInstance {
        instance_id: id.into(),
        app: app.to_ascii_uppercase(),
        host: "127.0.0.1".into(),
        port,
        secure: false,
        status: cloud_protocol::eureka::InstanceStatus::Up,
        zone: None,
        weight: 1,
        metadata: cloud_protocol::eureka::Metadata::new(),
        vip_address: Some(app.into()),
        secure_vip_address: None,
    }
}

/// A discovery client that registers `app` on `port` with the registry at
/// `eureka`, and does not read the registry.
pub async fn register_at(
    eureka: &str,
    app: &str,
    port: u16,
) -> cloud_client::discovery::DiscoveryClient {
    let port = port.to_string();
    cloud_client::discovery::DiscoveryClient::start(settings(&[
        ("spring.application.name", app),
        ("server.port", &port),
        ("eureka.client.service-url.defaultZone", eureka),
        ("eureka.client.fetch-registry", "false"),
    ]))
    .await
    .unwrap()
}

/// The text of header `name`, empty when absent or not visible ASCII.
pub fn header_text(headers: &axum::http::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A discovery client that only reads the registry at `eureka` (it does
/// not register), with `extra` settings.
pub async fn reader(
    eureka: &str,
    extra: &[(&str, &str)],
) -> cloud_client::discovery::DiscoveryClient {
    let mut pairs = vec![
        ("eureka.client.service-url.defaultZone", eureka),
        ("eureka.client.register-with-eureka", "false"),
    ];
    pairs.extend_from_slice(extra);
    cloud_client::discovery::DiscoveryClient::start(settings(&pairs))
        .await
        .unwrap()
}
