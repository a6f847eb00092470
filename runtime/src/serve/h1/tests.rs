use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{any, get};
use http::HeaderMap;
use http_body_util::StreamBody;
use hyper::body::Frame;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::serve::tests::Own;
use crate::serve::{ServeLimits, serve};

const DEADLINE: Duration = Duration::from_secs(10);

/// Answers that cover hyper's framing and header rules.
fn router() -> Router {
    let chunks = || {
        let parts =
            ["one ", "two ", "three"].map(|p| Ok::<_, Infallible>(Frame::data(Bytes::from(p))));
        futures::stream::iter(parts)
    };
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/no-content", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/not-modified",
            get(|| async { (StatusCode::NOT_MODIFIED, [("content-length", "12")]) }),
        )
        .route(
            "/odd-status",
            get(|| async { StatusCode::from_u16(599).unwrap() }),
        )
        .route(
            "/chunks",
            get(move || async move { Body::new(StreamBody::new(chunks())) }),
        )
        .route(
            "/trailers",
            get(|| async {
                let mut trailers = HeaderMap::new();
                trailers.insert("x-sum", HeaderValue::from_static("42"));
                trailers.insert("x-undeclared", HeaderValue::from_static("1"));
                let frames = futures::stream::iter([
                    Ok::<_, Infallible>(Frame::data(Bytes::from("body"))),
                    Ok(Frame::trailers(trailers)),
                ]);
                ([("trailer", "x-sum")], Body::new(StreamBody::new(frames)))
            }),
        )
        .route(
            "/closing",
            get(|| async { ([("connection", "close")], "bye") }),
        )
        .route(
            "/length-field",
            get(|| async { ([("content-length", "5")], "hello") }),
        )
        .route(
            "/many",
            get(|| async {
                (
                    [
                        ("x-a", "1"),
                        ("x-b", "2"),
                        ("x-a", "3"),
                        ("vary", "a"),
                        ("vary", "b"),
                    ],
                    "many",
                )
            }),
        )
        .route("/big", get(|| async { "x".repeat(100 * 1024) }))
        .route(
            "/echo",
            any(|request: Request<Body>| async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let mut seen = format!("{} {} {:?}\n", parts.method, parts.uri, parts.version);
                for (name, value) in &parts.headers {
                    seen.push_str(&format!(
                        "{name}: {}\n",
                        String::from_utf8_lossy(value.as_bytes())
                    ));
                }
                seen.push_str(&String::from_utf8_lossy(&body));
                seen
            }),
        )
}

async fn start(own: bool) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let limits = ServeLimits::default();
        if own {
            serve(listener, Own(router()), &limits, token).await
        } else {
            serve(listener, router(), &limits, token).await
        }
    });
    (addr, stop)
}

/// Sends `raw` on a new connection and reads until the server closes it;
/// `date` values masked.
async fn exchange(addr: SocketAddr, raw: &str) -> String {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(raw.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    timeout(DEADLINE, conn.read_to_end(&mut got))
        .await
        .expect("the server closed the connection in time")
        .unwrap();
    let text = String::from_utf8_lossy(&got).into_owned();
    text.split("\r\n")
        .map(|line| {
            if line.starts_with("date: ") {
                "date: <date>"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

const CLOSE: &str = "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn answers_the_same_bytes_as_hyper() {
    let (hyper_addr, hyper_stop) = start(false).await;
    let (own_addr, own_stop) = start(true).await;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
    let mut cases: Vec<String> = [
        "/",
        "/no-content",
        "/not-modified",
        "/odd-status",
        "/chunks",
        "/trailers",
        "/length-field",
        "/many",
        "/big",
        "/missing",
    ]
    .iter()
    .map(|p| get(p) + CLOSE)
    .collect();
    cases.extend(
        [
            // Trailers for a client that takes them.
            "GET /trailers HTTP/1.1\r\nhost: x\r\nte: trailers\r\n\r\n".to_owned() + CLOSE,
            // HEAD: the head as for GET, no body.
            "HEAD / HTTP/1.1\r\nhost: x\r\n\r\n".to_owned() + CLOSE,
            "HEAD /chunks HTTP/1.1\r\nhost: x\r\n\r\n".to_owned() + CLOSE,
            // The server's own close, and the client's.
            get("/closing"),
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: keep-alive, close\r\n\r\n".to_owned(),
            // Pipelined requests in one write.
            get("/") + &get("/chunks") + &get("/many") + CLOSE,
            // The request as the service sees it.
            "GET /echo?a=1&b=%20 HTTP/1.1\r\nHost: x\r\nX-Dup: 1\r\nX-Other: o\r\nx-dup: 2\r\ncontent-length: 0\r\n\r\n"
                .to_owned()
                + CLOSE,
            "GET http://example.com/echo?q HTTP/1.1\r\nhost: x\r\nx-obs: caf\u{e9}\r\n\r\n".to_owned() + CLOSE,
            "OPTIONS * HTTP/1.1\r\nhost: x\r\n\r\n".to_owned() + CLOSE,
            // Requests that are not plain: hyper's, on the same connection.
            get("/echo")
                + "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello"
                + &get("/echo")
                + CLOSE,
            get("/") + "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + CLOSE,
            get("/") + "GET /echo HTTP/1.0\r\nhost: x\r\n\r\n",
            get("/") + "GET /echo HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n" + CLOSE,
            get("/") + "GET /echo HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n\r\n" + CLOSE,
        ]
        .map(|c| c.to_owned()),
    );
    for case in &cases {
        let theirs = exchange(hyper_addr, case).await;
        let ours = exchange(own_addr, case).await;
        assert!(theirs.starts_with("HTTP/1."), "{case:?}: {theirs}");
        assert_eq!(ours, theirs, "for {case:?}");
    }
    hyper_stop.cancel();
    own_stop.cancel();
}

#[tokio::test]
async fn a_bad_later_head_is_refused_with_springs_json() {
    let (addr, stop) = start(true).await;
    let got = exchange(
        addr,
        &(CLOSE.replace("connection: close\r\n", "") + "GET /a b HTTP/1.1\r\n\r\n"),
    )
    .await;
    let (first, second) = got.split_at(got.find("ok").unwrap() + 2);
    assert!(first.starts_with("HTTP/1.1 200 OK"), "{got}");
    assert!(second.starts_with("HTTP/1.1 400 Bad Request"), "{got}");
    assert!(second.contains("content-type: application/json"), "{got}");
    assert!(second.contains("\"status\":400"), "{got}");
    let got = exchange(
        addr,
        &format!(
            "GET / HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nx: {}\r\n\r\n",
            "a".repeat(40 * 1024)
        ),
    )
    .await;
    assert!(
        got.contains("HTTP/1.1 431 Request Header Fields Too Large"),
        "{got}"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_client_that_closes_cancels_its_answer_and_pipelined_bytes_wait() {
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let dropped_tx = std::sync::Mutex::new(Some(dropped_tx));
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    struct OnDrop(Option<tokio::sync::oneshot::Sender<()>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
    let state = Arc::new((dropped_tx, started_tx, tokio::sync::Notify::new()));
    let hang = Router::new()
        .route(
            "/hang",
            get({
                let state = Arc::clone(&state);
                move || async move {
                    let _guard = OnDrop(state.0.lock().unwrap().take());
                    state.1.send(()).unwrap();
                    std::future::pending::<()>().await;
                    "never"
                }
            }),
        )
        .route(
            "/wait",
            get({
                let state = Arc::clone(&state);
                move || async move {
                    state.1.send(()).unwrap();
                    // Answers once the pipelined request has been sent.
                    state.2.notified().await;
                    "waited"
                }
            }),
        )
        .route("/", get(|| async { "ok" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move { serve(listener, Own(hang), &ServeLimits::default(), stop).await }
    });

    // A pipelined request that comes while the first is answered waits
    // for it, on the same connection.
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /wait HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    timeout(DEADLINE, started_rx.recv()).await.unwrap().unwrap();
    conn.write_all(CLOSE.as_bytes()).await.unwrap();
    state.2.notify_one();
    let mut got = Vec::new();
    timeout(DEADLINE, conn.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let got = String::from_utf8_lossy(&got);
    assert!(got.contains("waited") && got.ends_with("ok"), "{got}");

    // A client that goes away cancels its answer.
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    timeout(DEADLINE, started_rx.recv()).await.unwrap().unwrap();
    drop(conn);
    timeout(DEADLINE, dropped_rx)
        .await
        .expect("the answer was dropped when the client closed")
        .unwrap();
    stop.cancel();
}

#[test]
fn numbers_are_written_in_decimal_and_hex() {
    let mut out = Vec::new();
    for (n, radix) in [
        (0, 10),
        (7, 10),
        (1234567890, 10),
        (u64::MAX, 10),
        (0, 16),
        (255, 16),
        (4096, 16),
    ] {
        push_number(&mut out, n, radix);
        out.push(b' ');
    }
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "0 7 1234567890 18446744073709551615 0 ff 1000 "
    );
}

#[test]
fn content_lengths_are_digits_only() {
    assert_eq!(digits(b"0"), Some(0));
    assert_eq!(digits(b"123"), Some(123));
    for bad in [
        &b""[..],
        b"-1",
        b"1 ",
        b"+1",
        b"1,1",
        b"99999999999999999999",
    ] {
        assert_eq!(digits(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}
