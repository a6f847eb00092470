//! Below the floor of a hyper proxy: what bench/gateway-cpu.sh's route
//! costs with less HTTP machinery than hyper-floor has. Same shape (one
//! single-threaded runtime per thread on its own `SO_REUSEPORT` listener, a
//! per-thread pool of keep-alive upstream connections), same work (`/api`
//! stripped, `X-Forwarded-For` set), but the upstream exchange runs inline
//! in the client connection's task, as nginx runs it, and:
//!
//! - `raw`: no HTTP library: request and response heads parsed with
//!   `httparse` and written back as bytes;
//! - `http`: the same loop, with each head turned into `http`'s `Request` /
//!   `Response` (a `HeaderMap` each way) and written from it, the types a
//!   gateway's filters work on;
//! - `hybrid`: hyper's HTTP/1 server in front, the inline upstream exchange
//!   behind.
//!
//! A measuring tool, not a proxy: GET without a body only, upstream answers
//! with `Content-Length` only, any error closes the connection.
//!
//! Usage: `raw-floor raw|http|hybrid PORT UPSTREAM_ADDR [THREADS]`.

use std::cell::RefCell;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Raw,
    Http,
    Hybrid,
}

/// An upstream connection and its read buffer.
struct Upstream {
    stream: TcpStream,
    buf: BytesMut,
}

thread_local! {
    static IDLE: RefCell<Vec<Upstream>> = const { RefCell::new(Vec::new()) };
}

async fn upstream(addr: SocketAddr) -> Result<Upstream, Failure> {
    if let Some(c) = IDLE.with(|i| i.borrow_mut().pop()) {
        return Ok(c);
    }
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(Upstream {
        stream,
        buf: BytesMut::with_capacity(8192),
    })
}

async fn fill(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<(), Failure> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    match stream.read_buf(buf).await? {
        0 => Err("closed".into()),
        _ => Ok(()),
    }
}

/// Sends `head` upstream and reads the whole answer: (head length, body
/// length) within `up.buf`.
async fn exchange(up: &mut Upstream, head: &[u8]) -> Result<(usize, usize), Failure> {
    up.stream.write_all(head).await?;
    up.buf.clear();
    let (head_len, body_len) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(n) = response.parse(&up.buf)? {
            let length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .ok_or("no content-length")?;
            break (n, std::str::from_utf8(length.value)?.trim().parse()?);
        }
        fill(&mut up.stream, &mut up.buf).await?;
    };
    while up.buf.len() < head_len + body_len {
        fill(&mut up.stream, &mut up.buf).await?;
    }
    Ok((head_len, body_len))
}

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `raw` and `http`: the whole client connection, one request at a time.
async fn connection(mode: Mode, mut client: TcpStream, peer: SocketAddr, to: SocketAddr) -> Result<(), Failure> {
    let peer_ip = peer.ip().to_string();
    let mut buf = BytesMut::with_capacity(8192);
    let mut out = Vec::with_capacity(1024);
    loop {
        out.clear();
        let consumed = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(n) = request.parse(&buf)? {
                let method = request.method.ok_or("no method")?;
                let path = request.path.ok_or("no path")?;
                let path = path.strip_prefix("/api").unwrap_or(path);
                if mode == Mode::Raw {
                    out.extend_from_slice(method.as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(path.as_bytes());
                    out.extend_from_slice(b" HTTP/1.1\r\n");
                    for h in request.headers.iter() {
                        if !h.name.eq_ignore_ascii_case("connection") {
                            put_header(&mut out, h.name.as_bytes(), h.value);
                        }
                    }
                    put_header(&mut out, b"x-forwarded-for", peer_ip.as_bytes());
                } else {
                    let mut head = http::Request::new(());
                    *head.method_mut() = http::Method::from_bytes(method.as_bytes())?;
                    *head.uri_mut() = path.parse()?;
                    let map = head.headers_mut();
                    map.reserve(request.headers.len() + 1);
                    for h in request.headers.iter() {
                        map.append(
                            http::HeaderName::from_bytes(h.name.as_bytes())?,
                            http::HeaderValue::from_bytes(h.value)?,
                        );
                    }
                    map.remove(http::header::CONNECTION);
                    map.insert("x-forwarded-for", http::HeaderValue::from_str(&peer_ip)?);
                    out.extend_from_slice(head.method().as_str().as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(path.as_bytes());
                    out.extend_from_slice(b" HTTP/1.1\r\n");
                    for (name, value) in head.headers() {
                        put_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
                    }
                }
                out.extend_from_slice(b"\r\n");
                break n;
            }
            match client.read_buf(&mut buf).await? {
                0 => return Ok(()),
                _ => continue,
            }
        };
        let _ = buf.split_to(consumed);
        let mut up = upstream(to).await?;
        let (head_len, body_len) = exchange(&mut up, &out).await?;
        if mode == Mode::Raw {
            client.write_all(&up.buf[..head_len + body_len]).await?;
        } else {
            out.clear();
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut headers);
            parsed.parse(&up.buf)?;
            let mut response = http::Response::new(());
            *response.status_mut() = http::StatusCode::from_u16(parsed.code.ok_or("no status")?)?;
            let map = response.headers_mut();
            map.reserve(parsed.headers.len());
            for h in parsed.headers.iter() {
                map.append(
                    http::HeaderName::from_bytes(h.name.as_bytes())?,
                    http::HeaderValue::from_bytes(h.value)?,
                );
            }
            out.extend_from_slice(b"HTTP/1.1 ");
            out.extend_from_slice(response.status().as_str().as_bytes());
            out.push(b' ');
            out.extend_from_slice(response.status().canonical_reason().unwrap_or("").as_bytes());
            out.extend_from_slice(b"\r\n");
            for (name, value) in response.headers() {
                put_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&up.buf[head_len..head_len + body_len]);
            client.write_all(&out).await?;
        }
        IDLE.with(|i| i.borrow_mut().push(up));
    }
}

/// `hybrid`: one request from hyper's server, its exchange inline.
async fn proxy(
    request: http::Request<hyper::body::Incoming>,
    to: SocketAddr,
    peer: SocketAddr,
) -> Result<http::Response<Full<Bytes>>, Failure> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let path = path.strip_prefix("/api").unwrap_or(path);
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        if name != http::header::CONNECTION {
            put_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    put_header(&mut out, b"x-forwarded-for", peer.ip().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut up = upstream(to).await?;
    let (head_len, body_len) = exchange(&mut up, &out).await?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    parsed.parse(&up.buf)?;
    let mut map = http::HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        if !h.name.eq_ignore_ascii_case("content-length") {
            map.append(
                http::HeaderName::from_bytes(h.name.as_bytes())?,
                http::HeaderValue::from_bytes(h.value)?,
            );
        }
    }
    let status = http::StatusCode::from_u16(parsed.code.ok_or("no status")?)?;
    let body = up.buf.split_to(head_len + body_len).split_off(head_len).freeze();
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = map;
    IDLE.with(|i| i.borrow_mut().push(up));
    Ok(response)
}

fn serve(mode: Mode, addr: SocketAddr, to: SocketAddr) -> Result<(), Failure> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::from_std(socket.into())?;
        loop {
            let (stream, peer) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::task::spawn_local(async move {
                if mode == Mode::Hybrid {
                    let service = hyper::service::service_fn(move |r| proxy(r, to, peer));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                } else {
                    let _ = connection(mode, stream, peer, to).await;
                }
            });
        }
    })
}

fn main() -> Result<(), Failure> {
    let usage = "usage: raw-floor raw|http|hybrid PORT UPSTREAM_ADDR [THREADS]";
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("raw") => Mode::Raw,
        Some("http") => Mode::Http,
        Some("hybrid") => Mode::Hybrid,
        _ => return Err(usage.into()),
    };
    let port: u16 = args.next().ok_or(usage)?.parse()?;
    let to: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let threads: usize = args.next().map_or(Ok(2), |t| t.parse())?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| std::thread::spawn(move || serve(mode, addr, to).map_err(|e| e.to_string())))
        .collect();
    for w in workers {
        w.join().map_err(|_| "a worker panicked")??;
    }
    Ok(())
}
