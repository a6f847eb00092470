//! The least a hyper proxy does for bench/gateway-cpu.sh's route: HTTP/1.1
//! in, `StripPrefix=1` of `/api`, `X-Forwarded-For`, HTTP/1.1 out on a
//! per-thread pool of keep-alive connections. One single-threaded tokio
//! runtime per thread on an `SO_REUSEPORT` listener of its own, the shape
//! our gateway's I/O workers have. No timeouts, routing, filters, metrics
//! or error answers: whatever our gateway spends beyond this is the price
//! of those.
//!
//! Usage: `hyper-floor PORT UPSTREAM_ADDR [THREADS]`.

use std::cell::RefCell;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

thread_local! {
    static IDLE: RefCell<Vec<SendRequest<Incoming>>> = const { RefCell::new(Vec::new()) };
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

async fn connection(upstream: SocketAddr) -> Result<SendRequest<Incoming>, Failure> {
    while let Some(c) = IDLE.with(|idle| idle.borrow_mut().pop()) {
        if c.is_ready() {
            return Ok(c);
        }
        if !c.is_closed() {
            // Still reading its last response: kept for a later request.
            IDLE.with(|idle| idle.borrow_mut().insert(0, c));
            break;
        }
    }
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(conn);
    Ok(sender)
}

async fn proxy(
    mut request: Request<Incoming>,
    upstream: SocketAddr,
    peer: SocketAddr,
) -> Result<Response<Incoming>, Failure> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let stripped = path.strip_prefix("/api").unwrap_or(path).to_owned();
    *request.uri_mut() = stripped.parse()?;
    request.headers_mut().insert(
        "x-forwarded-for",
        http::HeaderValue::from_str(&peer.ip().to_string())?,
    );
    let mut sender = connection(upstream).await?;
    let response = sender.send_request(request).await;
    IDLE.with(|idle| idle.borrow_mut().push(sender));
    Ok(response?)
}

fn serve(addr: SocketAddr, upstream: SocketAddr) -> Result<(), Failure> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::from_std(socket.into())?;
        loop {
            let (stream, peer) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::task::spawn_local(async move {
                let service = hyper::service::service_fn(move |r| proxy(r, upstream, peer));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hyper-floor PORT UPSTREAM_ADDR [THREADS]";
    let port: u16 = args.next().ok_or(usage)?.parse()?;
    let upstream: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let threads: usize = args.next().map_or(Ok(2), |t| t.parse())?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| std::thread::spawn(move || serve(addr, upstream).map_err(|e| e.to_string())))
        .collect();
    for w in workers {
        w.join().map_err(|_| "a worker panicked")??;
    }
    Ok(())
}
