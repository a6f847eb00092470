//! WebSocket proxying with a real WebSocket echo upstream and a real
//! WebSocket client (tokio-tungstenite) through the gateway.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_gateway::resolve::{Instance, StaticInstances};
use futures::{SinkExt as _, StreamExt as _};
use support::{TestGateway, eventually};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the upstream saw of a handshake.
#[derive(Debug, Clone)]
struct Handshake {
    path: String,
    headers: http::HeaderMap,
}

/// A WebSocket echo server: echoes text and binary messages; on the text
/// `bye` it closes with code 1000 and reason `bye`. Handshakes to paths
/// starting `/refuse` are answered 403.
struct EchoUpstream {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Handshake>>>,
    token: CancellationToken,
}

impl EchoUpstream {
    async fn start() -> EchoUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("address");
        let seen: Arc<Mutex<Vec<Handshake>>> = Arc::default();
        let token = CancellationToken::new();
        let (stop, log) = (token.clone(), Arc::clone(&seen));
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((s, _)) => s,
                        Err(_) => return,
                    },
                    () = stop.cancelled() => return,
                };
                let (log, stop) = (Arc::clone(&log), stop.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = echo(stream, log) => {}
                        () = stop.cancelled() => {}
                    }
                });
            }
        });
        EchoUpstream { addr, seen, token }
    }

    fn handshakes(&self) -> Vec<Handshake> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn echo(stream: TcpStream, log: Arc<Mutex<Vec<Handshake>>>) {
    // tungstenite's callback type returns its (large) error response.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        log.lock().expect("lock").push(Handshake {
            path: request.uri().path().to_owned(),
            headers: request.headers().clone(),
        });
        if request.uri().path().starts_with("/refuse") {
            let mut refused = ErrorResponse::new(Some("refused".to_owned()));
            *refused.status_mut() = http::StatusCode::FORBIDDEN;
            return Err(refused);
        }
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        let reply = match message {
            Message::Text(t) if t.as_str() == "bye" => {
                let _ = ws
                    .close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "bye".into(),
                    }))
                    .await;
                continue;
            }
            m @ (Message::Text(_) | Message::Binary(_)) => m,
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}

fn routes(body: &str) -> String {
    format!("spring:\n  cloud:\n    gateway:\n      routes:\n{body}")
}

async fn connect(url: &str) -> Client {
    let (ws, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("handshake in time")
    .expect("handshake through the gateway");
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    ws
}

/// The next message, within a deadline.
async fn next(ws: &mut Client) -> Option<Message> {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message or the end in time")
        .and_then(Result::ok)
}

/// A gateway with one route taking every path to `uri`.
async fn every_path_to(uri: &str) -> TestGateway {
    TestGateway::start(&routes(&format!(
        "        - id: all\n          uri: {uri}\n          predicates: [Path=/**]\n"
    )))
    .await
}

async fn tunnels_close(gw: &TestGateway) {
    let gateway = gw.gateway.clone();
    eventually(Duration::from_secs(10), "the tunnel to end", || {
        let open = gateway.open_tunnels();
        async move { open == 0 }
    })
    .await;
}

#[tokio::test]
async fn text_and_binary_frames_are_echoed_and_filters_apply_to_the_handshake() {
    let up = EchoUpstream::start().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: ws\n          uri: ws://{}\n          predicates: [Path=/ws/**]\n          filters:\n            - StripPrefix=1\n            - AddRequestHeader=X-Via, gateway\n",
        up.addr
    )))
    .await;
    let mut ws = connect(&format!("ws://{}/ws/echo?room=1", gw.proxy)).await;
    let handshake = up
        .handshakes()
        .pop()
        .expect("the upstream saw the handshake");
    assert_eq!(
        handshake.path, "/echo",
        "StripPrefix applies to the handshake"
    );
    assert_eq!(handshake.headers["x-via"], "gateway");
    assert_eq!(handshake.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(handshake.headers["host"], up.addr.to_string().as_str());
    assert!(handshake.headers.contains_key("sec-websocket-key"));
    assert_eq!(gw.gateway.open_tunnels(), 1);

    ws.send(Message::text("hello")).await.expect("send text");
    assert_eq!(next(&mut ws).await, Some(Message::text("hello")));
    let payload = vec![0u8, 1, 2, 254, 255];
    ws.send(Message::binary(payload.clone()))
        .await
        .expect("send binary");
    assert_eq!(next(&mut ws).await, Some(Message::binary(payload)));
    let big = "x".repeat(256 * 1024);
    ws.send(Message::text(big.clone())).await.expect("send big");
    assert_eq!(next(&mut ws).await, Some(Message::text(big)));

    ws.close(None).await.expect("close sent");
    match next(&mut ws).await {
        Some(Message::Close(_)) | None => {}
        other => panic!("expected the close answered, got {other:?}"),
    }
    assert_eq!(next(&mut ws).await, None, "the connection ends");
    tunnels_close(&gw).await;
}

#[tokio::test]
async fn an_http_route_proxies_an_upgrade_and_the_upstreams_close_reaches_the_client() {
    let up = EchoUpstream::start().await;
    let gw = every_path_to(&format!("http://{}", up.addr)).await;
    let mut ws = connect(&format!("ws://{}/chat", gw.proxy)).await;
    ws.send(Message::text("bye")).await.expect("send");
    match next(&mut ws).await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(frame.code, CloseCode::Normal);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("expected the upstream's close, got {other:?}"),
    }
    assert_eq!(next(&mut ws).await, None, "the connection ends");
    tunnels_close(&gw).await;
}

#[tokio::test]
async fn an_lb_ws_route_reaches_an_instance() {
    let up = EchoUpstream::start().await;
    let services = Arc::new(StaticInstances::new());
    services.set("CHAT", vec![Instance::up("127.0.0.1", up.addr.port())]);
    let gw = TestGateway::start_with(
        &routes(
            "        - id: chat\n          uri: lb:ws://CHAT\n          predicates: [Path=/chat/**]\n",
        ),
        Some(services),
    )
    .await;
    let mut ws = connect(&format!("ws://{}/chat/room", gw.proxy)).await;
    ws.send(Message::text("hi")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("hi")));
    assert_eq!(up.handshakes()[0].path, "/chat/room");
}

#[tokio::test]
async fn a_refused_handshake_is_passed_on_as_a_plain_response() {
    let up = EchoUpstream::start().await;
    let gw = every_path_to(&format!("ws://{}", up.addr)).await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/refuse", gw.proxy)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), http::StatusCode::FORBIDDEN);
        }
        other => panic!("expected the upstream's 403, got {other:?}"),
    }
    assert_eq!(gw.gateway.open_tunnels(), 0);
}

#[tokio::test]
async fn shutdown_closes_open_tunnels() {
    let up = EchoUpstream::start().await;
    let gw = every_path_to(&format!("ws://{}", up.addr)).await;
    let mut ws = connect(&format!("ws://{}/live", gw.proxy)).await;
    ws.send(Message::text("ping")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("ping")));
    let gateway = gw.gateway.clone();
    drop(gw);
    assert_eq!(
        next(&mut ws).await,
        None,
        "the client's connection ends on shutdown"
    );
    eventually(
        Duration::from_secs(10),
        "the tunnel to be counted closed",
        || {
            let open = gateway.open_tunnels();
            async move { open == 0 }
        },
    )
    .await;
}

#[tokio::test]
async fn tunnels_beyond_max_connections_are_refused_until_one_closes() {
    let up = EchoUpstream::start().await;
    let gw = TestGateway::start(&format!(
        "server:\n  max-connections: 1\n{}",
        routes(&format!(
            "        - id: all\n          uri: ws://{}\n          predicates: [Path=/**]\n",
            up.addr
        ))
    ))
    .await;
    let mut first = connect(&format!("ws://{}/one", gw.proxy)).await;
    first.send(Message::text("a")).await.expect("send");
    assert_eq!(next(&mut first).await, Some(Message::text("a")));

    // The upgraded connection has left HTTP serving, so a second client
    // is served, but its tunnel would be one too many.
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/two", gw.proxy)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("a JSON error body");
            assert_eq!(body["status"], 503);
        }
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(gw.gateway.refused_tunnels(), 1);
    assert_eq!(
        up.handshakes().len(),
        1,
        "the refused handshake never reached the upstream"
    );
    // The first tunnel still works.
    first.send(Message::text("b")).await.expect("send");
    assert_eq!(next(&mut first).await, Some(Message::text("b")));

    first.close(None).await.expect("close sent");
    while next(&mut first).await.is_some() {}
    tunnels_close(&gw).await;
    let mut third = connect(&format!("ws://{}/three", gw.proxy)).await;
    third.send(Message::text("c")).await.expect("send");
    assert_eq!(next(&mut third).await, Some(Message::text("c")));
}
