use std::time::Duration;

use axum::routing::get;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::timeout;

use super::*;

const DEADLINE: Duration = Duration::from_secs(10);

fn limits() -> ServeLimits {
    ServeLimits {
        header_read_timeout: Duration::from_millis(300),
        keep_alive_timeout: Duration::from_millis(600),
        drain_timeout: Duration::from_secs(5),
        ..ServeLimits::default()
    }
}

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
        .route(
            "/big",
            get(|| async {
                // 64 MiB: more than loopback's socket buffers hold.
                static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
                let chunks = (0..1024).map(|_| {
                    Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(&CHUNK))
                });
                axum::body::Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        )
        .route(
            "/slower",
            get(|| async {
                // Twice `limits()`'s keep-alive timeout.
                tokio::time::sleep(Duration::from_millis(1200)).await;
                "slower"
            }),
        )
        .route(
            "/drip",
            get(|| async {
                // Six chunks 250 ms apart: each gap under `limits()`'s
                // keep-alive timeout, the whole far over it.
                let chunks = futures::stream::unfold(0u8, |n| async move {
                    if n == 6 {
                        return None;
                    }
                    if n > 0 {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Some((Ok::<_, std::convert::Infallible>(vec![b'0' + n]), n + 1))
                });
                axum::body::Body::from_stream(chunks)
            }),
        )
}

struct Running {
    addr: SocketAddr,
    stop: CancellationToken,
    stats: Arc<ConnectionStats>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// `router()` served by our own HTTP/1 loop for plain requests.
#[derive(Clone)]
pub(super) struct Own(pub(super) Router);

impl RequestService for Own {
    const OWN_HTTP1: bool = true;

    type Connection = WithPeer<Router>;

    fn connection(&self, peer: SocketAddr, secure: bool) -> WithPeer<Router> {
        self.0.connection(peer, secure)
    }
}

async fn start(limits: ServeLimits) -> Running {
    start_as(false, limits).await
}

/// `router()` served under `limits`, by our own HTTP/1 loop when `own`.
async fn start_as(own: bool, limits: ServeLimits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let stats = Arc::new(ConnectionStats::default());
    let task = tokio::spawn({
        let (stop, stats) = (stop.clone(), Arc::clone(&stats));
        async move {
            if own {
                serve_with_stats(listener, Own(router()), &limits, stop, stats).await
            } else {
                serve_with_stats(listener, router(), &limits, stop, stats).await
            }
        }
    });
    Running {
        addr,
        stop,
        stats,
        task,
    }
}

/// Reads until the peer closes; the bytes read.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    timeout(DEADLINE, stream.read_to_end(&mut all))
        .await
        .expect("the server closed the connection in time")
        .ok();
    all
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    timeout(DEADLINE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

async fn a_connection_that_never_sends_a_byte_is_closed(own: bool) {
    let server = start_as(own, limits()).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    assert!(read_to_close(&mut idle).await.is_empty());
    assert_eq!(server.stats.header_timeouts(), 1);
}

#[test]
fn the_counters_are_written_for_prometheus() {
    let stats = ConnectionStats::default();
    stats.header_timeouts.fetch_add(2, Ordering::Relaxed);
    stats.send_timeouts.fetch_add(3, Ordering::Relaxed);
    let mut out = crate::prometheus::PrometheusText::new();
    stats.write_prometheus(&mut out, "svc");
    let text = out.finish();
    assert!(
        text.contains("svc_connection_header_timeouts_total 2\n"),
        "{text}"
    );
    assert!(
        text.contains("svc_connection_send_timeouts_total 3\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE svc_connections_open gauge\nsvc_connections_open 0\n"),
        "{text}"
    );
}

async fn a_slowloris_head_is_cut_off(own: bool) {
    let server = start_as(own, limits()).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let writer = async {
        for chunk in [
            "GET / HTTP/1.1\r\n",
            "Host: x\r\n",
            "X-A: 1\r\n",
            "X-B: 2\r\n",
            "X-C: 3\r\n",
        ] {
            if slow.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    timeout(DEADLINE, writer).await.unwrap();
    let rest = read_to_close(&mut slow).await;
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "never answered"
    );
}

async fn a_client_that_stops_reading_is_closed_after_the_send_timeout(own: bool) {
    let server = start_as(
        own,
        ServeLimits {
            send_timeout: Duration::from_millis(300),
            ..limits()
        },
    )
    .await;
    let mut reader = TcpStream::connect(server.addr).await.unwrap();
    reader
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Reads nothing until the server gives up on it.
    let stats = Arc::clone(&server.stats);
    wait_for("a send timeout", || stats.send_timeouts() == 1).await;
    let got = read_to_close(&mut reader).await;
    assert!(
        got.starts_with(b"HTTP/1.1 200 OK") && got.len() < 64 * 1024 * 1024,
        "cut short: {} bytes",
        got.len()
    );
}

/// One HTTP/1 connection to `addr` driven by hyper's client: a request
/// sent on it fails once the server has closed it.
async fn one_connection(
    addr: SocketAddr,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// GET `path` on `send`'s connection: the status, whether the server said
/// it closes the connection, and the body.
async fn get_on(
    send: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    path: &str,
) -> Result<(u16, bool, String), hyper::Error> {
    use http_body_util::BodyExt as _;
    send.ready().await?;
    let request = hyper::Request::get(path)
        .header("host", "x")
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = timeout(DEADLINE, send.send_request(request))
        .await
        .expect("answered in time")?;
    let status = response.status().as_u16();
    let closes = response
        .headers()
        .get("connection")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let body = timeout(DEADLINE, response.into_body().collect())
        .await
        .expect("the body in time")?
        .to_bytes();
    Ok((status, closes, String::from_utf8_lossy(&body).into_owned()))
}

/// A connection to `addr` whose first request (`GET /`) has been
/// answered: its status line read, the rest of the answer not.
async fn answered_once(addr: SocketAddr) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 15];
    conn.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK");
    conn
}

async fn an_idle_connection_closes_after_the_keep_alive_timeout_and_not_before(own: bool) {
    let server = start_as(own, limits()).await;
    let mut conn = answered_once(server.addr).await;
    let answered = tokio::time::Instant::now();
    let rest = String::from_utf8_lossy(&read_to_close(&mut conn).await).into_owned();
    let idle = answered.elapsed();
    assert!(rest.ends_with("ok"), "{rest}");
    assert!(
        idle >= limits().keep_alive_timeout,
        "closed after {idle:?} idle, under the keep-alive timeout"
    );
}

async fn a_later_head_that_trickles_in_is_cut_off_after_the_keep_alive_timeout(own: bool) {
    let server = start_as(own, limits()).await;
    let mut slow = answered_once(server.addr).await;
    // The second head: a line every 150 ms, for up to twenty lines
    // (3 s, five keep-alive timeouts), never finished.
    let writer = async {
        let mut lines = vec!["GET / HTTP/1.1\r\n".to_owned(), "Host: x\r\n".to_owned()];
        lines.extend((0..18).map(|i| format!("X-{i}: {i}\r\n")));
        for line in lines {
            if slow.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    timeout(DEADLINE, writer).await.unwrap();
    let rest = String::from_utf8_lossy(&read_to_close(&mut slow).await).into_owned();
    assert!(
        !rest.contains("HTTP/1.1 200 OK"),
        "the trickled head was never answered: {rest}"
    );
}

/// A request to `path` answers `body` on one connection, and the same
/// connection then serves another request.
async fn answers_and_keeps_the_connection(own: bool, path: &str, body: &str) {
    let server = start_as(own, limits()).await;
    let mut send = one_connection(server.addr).await;
    assert_eq!(
        get_on(&mut send, path).await.unwrap(),
        (200, false, body.to_owned())
    );
    assert_eq!(
        get_on(&mut send, "/").await.unwrap(),
        (200, false, "ok".to_owned()),
        "the same connection serves the next request"
    );
}

async fn a_request_answered_slower_than_the_keep_alive_timeout_keeps_its_connection(own: bool) {
    answers_and_keeps_the_connection(own, "/slower", "slower").await;
}

async fn a_response_that_keeps_writing_past_the_keep_alive_timeout_keeps_its_connection(own: bool) {
    answers_and_keeps_the_connection(own, "/drip", "012345").await;
}

async fn requests_carry_the_peer_address(own: bool) {
    let server = start_as(own, limits()).await;
    let body = reqwest::get(format!("http://{}/peer", server.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "127.0.0.1");
}

async fn an_oversized_head_is_refused_with_431(own: bool) {
    let server = start_as(own, limits()).await;
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("http://{}/", server.addr))
        .header("x-big", "a".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        reqwest::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let body: serde_json::Value = resp.json().await.expect("Spring's JSON body");
    assert_eq!(body["status"], 431);
    assert_eq!(body["error"], "Request Header Fields Too Large");
}

async fn a_malformed_first_head_gets_springs_json_and_a_good_one_is_served_whole(own: bool) {
    let server = start_as(own, limits()).await;
    for (head, status, says) in [
        (
            "GARBAGE\r\n\r\n",
            "400 Bad Request",
            "malformed request line",
        ),
        (
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "400 Bad Request",
            "malformed request head",
        ),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
            "400 Bad Request",
            "Content-Length",
        ),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            "400 Bad Request",
            "chunked",
        ),
    ] {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = String::from_utf8(read_to_close(&mut stream).await).unwrap();
        let (top, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(
            top.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{head:?}: {answer}"
        );
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(says)),
            "{head:?}: {body}"
        );
    }
    // A head sent in pieces, then a second request on the same
    // connection: both answered, the first from the bytes read to check it.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream.write_all(b"GET /peer HTTP/1.1\r\nHo").await.unwrap();
    stream
        .write_all(b"st: x\r\n\r\nGET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(read_to_close(&mut stream).await).unwrap();
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    assert_eq!(server.stats.header_timeouts(), 0);
}

#[tokio::test]
async fn at_the_connection_cap_new_connections_wait_for_a_free_slot() {
    let server = start(ServeLimits {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let first = TcpStream::connect(server.addr).await.unwrap();
    let _second = TcpStream::connect(server.addr).await.unwrap();
    wait_for("two open connections", || server.stats.open() == 2).await;
    let url = format!("http://{}/", server.addr);
    let third = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    wait_for("the accept loop to wait at the cap", || {
        server.stats.at_capacity() >= 1
    })
    .await;
    assert!(!third.is_finished());
    drop(first);
    let body = timeout(DEADLINE, third).await.unwrap().unwrap().unwrap();
    assert_eq!(body, "ok");
}

async fn shutdown_lets_an_in_flight_request_finish_then_returns(own: bool) {
    let server = start_as(own, limits()).await;
    let url = format!("http://{}/slow", server.addr);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    wait_for("the request to be in flight", || server.stats.open() == 1).await;
    server.stop.cancel();
    assert_eq!(
        timeout(DEADLINE, in_flight)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        "slow"
    );
    timeout(DEADLINE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn a_response_that_never_ends_cannot_hold_the_drain_past_its_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let forever = Router::new().route(
        "/forever",
        get(|| async {
            let stream = futures::stream::pending::<Result<bytes_chunk::Chunk, std::io::Error>>();
            axum::body::Body::from_stream(stream)
        }),
    );
    let stop = CancellationToken::new();
    let limits = ServeLimits {
        drain_timeout: Duration::from_millis(300),
        ..limits()
    };
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { serve(listener, forever, &limits, stop).await }
    });
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    timeout(DEADLINE, conn.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    stop.cancel();
    timeout(DEADLINE, task).await.unwrap().unwrap().unwrap();
}

mod bytes_chunk {
    /// A body chunk type for the never-ending stream.
    pub(super) type Chunk = axum::body::Bytes;
}

fn on_workers() -> ServeLimits {
    ServeLimits {
        io_workers: Some(2),
        ..limits()
    }
}

#[tokio::test]
async fn on_io_workers_requests_are_served_with_the_peer_and_the_limits() {
    let server = start(on_workers()).await;
    let peer = reqwest::get(format!("http://{}/peer", server.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(peer, "127.0.0.1");
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    assert!(read_to_close(&mut idle).await.is_empty());
    assert_eq!(server.stats.header_timeouts(), 1);
}

#[tokio::test]
async fn on_io_workers_shutdown_drains_in_flight_requests() {
    let server = start(on_workers()).await;
    let url = format!("http://{}/slow", server.addr);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    wait_for("the request to be in flight", || server.stats.open() == 1).await;
    server.stop.cancel();
    let body = timeout(DEADLINE, in_flight)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(body, "slow");
    timeout(DEADLINE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn io_workers_are_read_from_a_number_or_text() {
    for (value, want) in [
        (serde_json::json!(2), Some(2)),
        (serde_json::json!("3"), Some(3)),
        (serde_json::json!(null), None),
    ] {
        let limits: ServeLimits =
            serde_json::from_value(serde_json::json!({ "io-workers": value })).expect("valid");
        assert_eq!(limits.io_workers, want);
    }
    let bad = serde_json::from_value::<ServeLimits>(serde_json::json!({ "io-workers": "many" }));
    assert!(bad.expect_err("refused").to_string().contains("many"));
}

#[test]
fn io_worker_affinity_is_auto_unless_set_to_none() {
    use super::workers::WorkerAffinity;
    assert_eq!(
        ServeLimits::default().io_worker_affinity,
        WorkerAffinity::Auto
    );
    for (value, want) in [
        ("auto", WorkerAffinity::Auto),
        ("none", WorkerAffinity::None),
    ] {
        let limits: ServeLimits =
            serde_json::from_value(serde_json::json!({ "io-worker-affinity": value }))
                .expect("valid");
        assert_eq!(limits.io_worker_affinity, want);
    }
    let bad = serde_json::from_value::<ServeLimits>(
        serde_json::json!({ "io-worker-affinity": "always" }),
    );
    let e = bad.expect_err("refused").to_string();
    assert!(
        e.contains("always") && e.contains("auto") && e.contains("none"),
        "{e}"
    );
}

/// The tests above that hold for both HTTP/1 loops, run with each.
macro_rules! on_both_loops {
    ($($name:ident),* $(,)?) => {
        mod hyper_loop {
            $(#[tokio::test]
            async fn $name() {
                super::$name(false).await
            })*
        }
        mod own_loop {
            $(#[tokio::test]
            async fn $name() {
                super::$name(true).await
            })*
        }
    };
}

on_both_loops!(
    a_connection_that_never_sends_a_byte_is_closed,
    a_slowloris_head_is_cut_off,
    a_client_that_stops_reading_is_closed_after_the_send_timeout,
    an_idle_connection_closes_after_the_keep_alive_timeout_and_not_before,
    a_later_head_that_trickles_in_is_cut_off_after_the_keep_alive_timeout,
    a_request_answered_slower_than_the_keep_alive_timeout_keeps_its_connection,
    a_response_that_keeps_writing_past_the_keep_alive_timeout_keeps_its_connection,
    requests_carry_the_peer_address,
    an_oversized_head_is_refused_with_431,
    a_malformed_first_head_gets_springs_json_and_a_good_one_is_served_whole,
    shutdown_lets_an_in_flight_request_finish_then_returns
);
