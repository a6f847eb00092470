//! Shared by the integration tests: an echo upstream, the gateway started
//! in-process on port 0 from a YAML file, and an HTTP client.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api_gateway::Gateway;
use api_gateway::resolve::ServiceInstances;
use api_gateway::settings::Source;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// An upstream that answers what it received as JSON: `method`, `path`,
/// `query`, `headers` (name to list of values), `body`, `server` (its
/// own address) and `peer` (the address the request came from, which
/// tells connections apart). Paths with a meaning:
/// - `/status/{code}`: answers with that status;
/// - `/delay/{ms}`: waits, then echoes;
/// - `/flaky/{n}`: 503 for the first `n` requests it sees, then echoes;
/// - `/redirect`: 302 to `http://<its address>/v1/next`;
/// - `/dup`: two `X-Dup` headers and a `Server-Secret` header;
/// - `/stall/{ms}`: answers `200` with a streamed body, `start\n` at once
///   and `end\n` after the pause (no echo).
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    token: CancellationToken,
}

#[derive(Clone)]
struct UpstreamState {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    flaky: Arc<AtomicUsize>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("address");
        let hits = Arc::new(AtomicUsize::new(0));
        let state = UpstreamState {
            addr,
            hits: Arc::clone(&hits),
            flaky: Arc::default(),
        };
        let router = Router::new().fallback(echo).with_state(state);
        let token = serve(listener, router);
        Upstream { addr, hits, token }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Serves `router` on `listener` until the returned token is cancelled;
/// each request carries axum's `ConnectInfo<SocketAddr>`.
pub fn serve(listener: tokio::net::TcpListener, router: Router) -> CancellationToken {
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, service)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    token
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn echo(
    State(state): State<UpstreamState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let values: Vec<Value> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::from(v.to_str().unwrap_or("?")))
            .collect();
        headers.insert(name.as_str().to_owned(), Value::Array(values));
    }
    let echoed = json!({
        "method": parts.method.as_str(),
        "path": path,
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "server": state.addr.to_string(),
        "peer": peer.to_string(),
    });
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let ["stall", ms] = segments.as_slice() {
        let pause = Duration::from_millis(ms.parse().unwrap_or(0));
        let parts =
            futures::stream::iter([Bytes::from_static(b"start\n"), Bytes::from_static(b"end\n")])
                .enumerate()
                .then(move |(i, chunk)| async move {
                    if i > 0 {
                        tokio::time::sleep(pause).await;
                    }
                    Ok::<_, std::convert::Infallible>(chunk)
                });
        return Body::from_stream(parts).into_response();
    }
    let mut status = StatusCode::OK;
    let mut extra = HeaderMap::new();
    match segments.as_slice() {
        ["status", code] => {
            status = code
                .parse()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_REQUEST)
        }
        ["delay", ms] => tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await,
        ["flaky", n] => {
            let seen = state.flaky.fetch_add(1, Ordering::SeqCst);
            if seen < n.parse().unwrap_or(0) {
                status = StatusCode::SERVICE_UNAVAILABLE;
            }
        }
        ["redirect"] => {
            status = StatusCode::FOUND;
            extra.insert(
                "location",
                format!("http://{}/v1/next", state.addr)
                    .parse()
                    .expect("location"),
            );
        }
        ["dup"] => {
            extra.append("x-dup", "a".parse().expect("value"));
            extra.append("x-dup", "a".parse().expect("value"));
            extra.insert("server-secret", "s".parse().expect("value"));
        }
        _ => {}
    }
    (status, extra, axum::Json(echoed)).into_response()
}

/// The gateway, serving in-process on port 0 from a YAML file.
pub struct TestGateway {
    pub gateway: Gateway,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub file: tempfile::NamedTempFile,
    token: CancellationToken,
}

impl TestGateway {
    pub async fn start(yaml: &str) -> TestGateway {
        TestGateway::start_with(yaml, None).await
    }

    pub async fn start_with(
        yaml: &str,
        resolver: Option<Arc<dyn ServiceInstances>>,
    ) -> TestGateway {
        let mut file = tempfile::Builder::new()
            .suffix(".yml")
            .tempfile()
            .expect("temp file");
        file.write_all(yaml.as_bytes()).expect("write config");
        let mut builder = Gateway::from_source(Source::file(file.path())).expect("settings load");
        if let Some(r) = resolver {
            builder = builder.resolver(r);
        }
        let gateway = builder.build().expect("routes compile");
        TestGateway::serve(gateway, file).await
    }

    /// Serves a gateway built elsewhere (from the environment, say).
    #[allow(dead_code)]
    pub async fn start_with_gateway(gateway: Gateway) -> TestGateway {
        let file = tempfile::Builder::new()
            .suffix(".yml")
            .tempfile()
            .expect("temp file");
        TestGateway::serve(gateway, file).await
    }

    async fn serve(gateway: Gateway, file: tempfile::NamedTempFile) -> TestGateway {
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind admin");
        let (proxy_addr, admin_addr) = (
            proxy.local_addr().expect("addr"),
            admin.local_addr().expect("addr"),
        );
        let token = CancellationToken::new();
        let limits = gateway.settings().server.limits.clone();
        let (g, t) = (gateway.clone(), token.clone());
        tokio::spawn(async move {
            if let Err(e) = api_gateway::run(g, proxy, admin, &limits, t).await {
                panic!("gateway stopped: {e}");
            }
        });
        TestGateway {
            gateway,
            proxy: proxy_addr,
            admin: admin_addr,
            file,
            token,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// The admin port's `/actuator/prometheus` text.
    pub async fn prometheus(&self) -> String {
        client()
            .get(self.admin_url("/actuator/prometheus"))
            .send()
            .await
            .expect("the admin port answers")
            .text()
            .await
            .expect("the metrics text")
    }

    /// Rewrites the config file (for refresh tests).
    pub fn rewrite(&self, yaml: &str) {
        std::fs::write(self.file.path(), yaml).expect("rewrite config");
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A client that shows redirects instead of following them.
pub fn client_without_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// GETs `url` and returns the status, headers and JSON body (or Null).
pub async fn get(url: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    send(client().get(url)).await
}

pub async fn send(
    request: reqwest::RequestBuilder,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("request sent");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
    let headers = response.headers().clone();
    let bytes: Bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

/// The first value of header `name` as the upstream saw it.
pub fn seen<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"][name][0].as_str()
}

pub use cloud_runtime::testing::eventually;

/// An empty body (for requests that should carry none).
pub fn empty() -> Body {
    Body::empty()
}

/// A free loopback port (for a child process that takes its port by flag).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Kills the child process when the test ends, however it ends.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `CONNECT` proxy: records each tunnel's target, refuses with 407 when
/// `required` is set and is not the request's `Proxy-Authorization`, and
/// relays bytes both ways.
pub struct ConnectProxy {
    pub addr: SocketAddr,
    tunnels: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub async fn start(required: Option<&'static str>) -> ConnectProxy {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let tunnels: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let seen = Arc::clone(&tunnels);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match client.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let target = head
                        .strip_prefix("CONNECT ")
                        .and_then(|rest| rest.split(' ').next())
                        .unwrap_or_default()
                        .to_owned();
                    let auth = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Proxy-Authorization: "))
                        .map(str::to_owned);
                    seen.lock().expect("lock").push(target.clone());
                    if required.is_some_and(|r| auth.as_deref() != Some(r)) {
                        let _ = client.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                            .await;
                        return;
                    }
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    if client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .is_ok()
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        ConnectProxy { addr, tunnels }
    }

    pub fn tunnels(&self) -> Vec<String> {
        self.tunnels.lock().expect("lock").clone()
    }
}

/// Builds a gateway from `yaml`, written to a file, which must fail at
/// start: the error's text, checked to name the file.
pub fn refused_at_start(yaml: &str) -> String {
    let file = tempfile::Builder::new()
        .suffix(".yml")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), yaml).expect("written");
    let err = Gateway::from_source(Source::file(file.path()))
        .and_then(|b| b.build())
        .expect_err("refused at start");
    let text = err.to_string();
    assert!(
        text.contains(&file.path().display().to_string()),
        "the error names the file: {text}"
    );
    text
}

pub mod redis;
