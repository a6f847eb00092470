//! Serving a router on a listener with the limits every public server
//! needs, the same for every binary.
//!
//! Per connection: HTTP/1.1 (with upgrades, for WebSocket) or HTTP/2 with
//! prior knowledge (h2c), chosen by the first bytes. The limits
//! ([`ServeLimits`], each with its default):
//! - `header_read_timeout` (10 s): a new connection must deliver its first
//!   complete request head within it, or is closed. This ends slowloris
//!   connections and connections that never send a byte.
//! - `keep_alive_timeout` (60 s): an HTTP/1 connection that for this long
//!   completes no request head, writes nothing and has no request being
//!   answered is closed: an idle keep-alive connection, or one whose next
//!   head trickles in. One timer per connection, checked four times per
//!   period, watches this (so the close comes between one period and a
//!   period and a quarter after the last activity), instead of hyper's
//!   timer per request head (see `serve/idle.rs`). HTTP/2 connections are
//!   pinged at this interval and closed when a ping goes unanswered for
//!   20 s.
//! - `send_timeout` (60 s, as nginx's `send_timeout`): a connection whose
//!   client reads nothing of what the server writes for that long is
//!   closed. A client that stops reading a large response would otherwise
//!   hold its connection, and a proxy's upstream connection, forever.
//! - `max_connections` (8,192, as Tomcat): at the cap the server stops
//!   accepting until a connection closes; new connections wait in the
//!   kernel's backlog instead of exhausting file descriptors.
//! - `max_header_bytes` (32 KiB) and `max_headers` (100): a larger request
//!   head is answered `431`.
//! - `drain_timeout` (10 s): after shutdown, how long open connections get
//!   to finish before `serve` returns anyway.
//! - `io_workers` (none): when set, connections are served on that many
//!   I/O worker threads, each with its own single-threaded runtime
//!   ([`workers`]), instead of on the caller's runtime. The accept loop
//!   stays on the caller's runtime and hands connections out in turn.
//! - `io_worker_affinity` (`auto`): with as many I/O workers as CPUs the
//!   process may use, each worker is pinned to one of them
//!   ([`workers`] says why); `none` leaves them to the kernel.
//!
//! A connection's first request head is checked before hyper serves the
//! connection, as hyper checks heads, so that a malformed or oversized one
//! is answered with Spring's JSON error body (`400`, `414`, `431`) instead of
//! hyper's empty one.
//!
//! Over TLS ([`serve_tls_with_stats`], feature `tls`) each connection
//! first completes its handshake, within the same `header_read_timeout`;
//! the acceptor's ALPN list decides whether clients may pick HTTP/2. A
//! connection that agreed on `h2` is served as HTTP/2 only (one that does
//! not start with the HTTP/2 preface is closed, RFC 9113 3.4); any other is
//! chosen by its first bytes as above. Each request on a TLS connection
//! carries the [`Secure`] extension.
//!
//! A service may ask for our own HTTP/1 loop
//! ([`RequestService::OWN_HTTP1`], the gateway does): then a connection's
//! plain HTTP/1.1 requests (no body, no upgrade, no `Expect`) are read,
//! answered and written in the connection's task without hyper's
//! dispatcher, with hyper's framing and header rules, and the first
//! request that is not plain hands the connection to hyper with the bytes
//! read so far. A malformed later head then gets Spring's JSON error body
//! too.
//!
//! Each request to a [`Router`] carries axum's [`ConnectInfo<SocketAddr>`]
//! with the peer's address; any other [`RequestService`] gets the peer once
//! per connection. On shutdown the server stops accepting, lets in-flight
//! requests finish (idle keep-alive connections close at once) and returns
//! when every connection has closed or the drain timeout has passed.
//! Streams that never end by themselves (SSE, long polls) must end on the
//! same shutdown; see [`crate::shutdown`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::BytesMut;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::gated::Gated;
use crate::shutdown::OpenWork;

/// The connection limits of a server. Deserializes from Spring Boot's key
/// names under `server.` (`connection-timeout`, `keep-alive-timeout`,
/// `max-connections`, `max-http-request-header-size`), durations as
/// milliseconds or `"10s"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ServeLimits {
    /// Time for a new connection to deliver its first request head. Default
    /// is 10 seconds.
    #[serde(
        rename = "connection-timeout",
        deserialize_with = "crate::duration::deserialize",
        serialize_with = "crate::duration::serialize_millis"
    )]
    pub header_read_timeout: Duration,
    /// Time an idle keep-alive connection is kept open. Default is 60
    /// seconds.
    #[serde(
        deserialize_with = "crate::duration::deserialize",
        serialize_with = "crate::duration::serialize_millis"
    )]
    pub keep_alive_timeout: Duration,
    /// `server.send-timeout` (ours): the longest a write to the client may
    /// wait for the client to read; then the connection is closed. `0`
    /// turns it off. Default is 60 seconds.
    #[serde(
        deserialize_with = "crate::duration::deserialize",
        serialize_with = "crate::duration::serialize_millis"
    )]
    pub send_timeout: Duration,
    /// Connections served at once. Default is 8,192.
    pub max_connections: usize,
    /// Largest request head in bytes (at least 8,192). Default is 32 KiB.
    #[serde(rename = "max-http-request-header-size")]
    pub max_header_bytes: usize,
    /// Most header fields in a request. Default is 100.
    pub max_headers: usize,
    /// Time open connections get to finish after shutdown. Default is 10
    /// seconds.
    #[serde(
        deserialize_with = "crate::duration::deserialize",
        serialize_with = "crate::duration::serialize_millis"
    )]
    pub drain_timeout: Duration,
    /// `server.io-workers`: I/O worker threads to serve connections on (see
    /// [`workers`]); absent or `0` serves them on the caller's runtime.
    /// Default is absent.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::settings::optional_number"
    )]
    pub io_workers: Option<usize>,
    /// `server.io-worker-affinity` (`auto` or `none`): whether each I/O
    /// worker is pinned to a CPU ([`workers::WorkerAffinity`]). Default is
    /// `auto`: one per CPU when there are as many workers as CPUs.
    pub io_worker_affinity: workers::WorkerAffinity,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            max_connections: 8192,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            drain_timeout: crate::shutdown::DEFAULT_DRAIN_TIMEOUT,
            io_workers: None,
            io_worker_affinity: workers::WorkerAffinity::Auto,
        }
    }
}

/// Counters of the serving loop, for a server's metrics.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    accepted: AtomicU64,
    open: AtomicU64,
    header_timeouts: AtomicU64,
    send_timeouts: AtomicU64,
    at_capacity: AtomicU64,
}

impl ConnectionStats {
    /// Connections accepted since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed because no request head arrived in time.
    pub fn header_timeouts(&self) -> u64 {
        self.header_timeouts.load(Ordering::Relaxed)
    }

    /// Connections closed because the client read nothing for
    /// `send_timeout`.
    pub fn send_timeouts(&self) -> u64 {
        self.send_timeouts.load(Ordering::Relaxed)
    }

    /// Times the accept loop waited because `max_connections` were open.
    pub fn at_capacity(&self) -> u64 {
        self.at_capacity.load(Ordering::Relaxed)
    }

    /// Writes the counters as `{prefix}_connections_open`,
    /// `{prefix}_connections_accepted_total`,
    /// `{prefix}_connection_header_timeouts_total`,
    /// `{prefix}_connection_send_timeouts_total` and
    /// `{prefix}_connection_limit_waits_total`.
    pub fn write_prometheus(&self, out: &mut crate::prometheus::PrometheusText, prefix: &str) {
        out.gauge(
            &format!("{prefix}_connections_open"),
            "HTTP connections open now.",
            self.open(),
        );
        out.counter(
            &format!("{prefix}_connections_accepted_total"),
            "HTTP connections accepted.",
            self.accepted(),
        );
        out.counter(
            &format!("{prefix}_connection_header_timeouts_total"),
            "Connections closed because no request head arrived within server.connection-timeout.",
            self.header_timeouts(),
        );
        out.counter(
            &format!("{prefix}_connection_send_timeouts_total"),
            "Connections closed because the client read nothing for server.send-timeout.",
            self.send_timeouts(),
        );
        out.counter(
            &format!("{prefix}_connection_limit_waits_total"),
            "Times new connections had to wait because server.max-connections were open.",
            self.at_capacity(),
        );
    }
}

/// What answers a server's requests: an axum [`Router`], whose requests
/// carry the connection's [`ConnectInfo`] and (over TLS) [`Secure`]
/// extensions, or a service that makes its own service per connection
/// (a proxy that takes the peer once per connection, not from each
/// request's extensions).
pub trait RequestService: Clone + Send + Sync + 'static {
    /// Whether plain HTTP/1.1 requests (no body, no upgrade) are read and
    /// answered by our own HTTP/1 loop instead of hyper's (see
    /// `serve/h1.rs`); any other request hands the connection to hyper.
    /// Off unless a service turns it on.
    const OWN_HTTP1: bool = false;

    /// The service answering one connection's requests.
    type Connection: tower::Service<
            hyper::Request<Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static;

    /// The service for the connection from `peer`, over TLS when `secure`.
    fn connection(&self, peer: SocketAddr, secure: bool) -> Self::Connection;
}

impl RequestService for Router {
    type Connection = WithPeer<Router>;

    fn connection(&self, peer: SocketAddr, secure: bool) -> WithPeer<Router> {
        WithPeer {
            service: self.clone(),
            peer,
            secure,
        }
    }
}

/// A connection's service whose requests get the connection's
/// [`ConnectInfo`] and, over TLS, [`Secure`] as extensions.
#[derive(Debug, Clone)]
pub struct WithPeer<S> {
    service: S,
    peer: SocketAddr,
    secure: bool,
}

impl<S, B> tower::Service<hyper::Request<B>> for WithPeer<S>
where
    S: tower::Service<hyper::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&mut self, mut request: hyper::Request<B>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        if self.secure {
            request.extensions_mut().insert(Secure);
        }
        self.service.call(request)
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` is
/// cancelled, then drains (see the [module docs](self)).
pub async fn serve(
    listener: TcpListener,
    router: impl RequestService,
    limits: &ServeLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with_stats(listener, router, limits, shutdown, Arc::default()).await
}

/// [`serve`], counting into `stats`.
pub async fn serve_with_stats(
    listener: TcpListener,
    router: impl RequestService,
    limits: &ServeLimits,
    shutdown: CancellationToken,
    stats: Arc<ConnectionStats>,
) -> std::io::Result<()> {
    serve_connections(listener, router, limits, shutdown, stats, Handshake::Plain).await
}

/// [`serve_with_stats`] over TLS: each connection completes a TLS
/// handshake with `tls` before HTTP (see the [module docs](self)). A
/// handshake that fails is logged at debug and the connection closed; one
/// that does not finish within `header_read_timeout` counts as a header
/// timeout.
#[cfg(feature = "tls")]
pub async fn serve_tls_with_stats(
    listener: TcpListener,
    router: impl RequestService,
    limits: &ServeLimits,
    shutdown: CancellationToken,
    stats: Arc<ConnectionStats>,
    tls: tokio_rustls::TlsAcceptor,
) -> std::io::Result<()> {
    serve_connections(
        listener,
        router,
        limits,
        shutdown,
        stats,
        Handshake::Tls(tls),
    )
    .await
}

/// Marks a request that came over TLS (an extension of each request
/// [`serve_tls_with_stats`] serves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secure;

/// Which HTTP versions a connection is served with.
#[derive(Debug, Clone, Copy)]
enum Protocol {
    /// HTTP/1.1 (with upgrades), or HTTP/2 when the connection starts
    /// with its preface.
    Auto,
    /// HTTP/2 only (ALPN `h2`).
    Http2,
}

/// What a connection does before HTTP.
#[derive(Clone)]
enum Handshake {
    Plain,
    #[cfg(feature = "tls")]
    Tls(tokio_rustls::TlsAcceptor),
}

async fn serve_connections<S: RequestService>(
    listener: TcpListener,
    router: S,
    limits: &ServeLimits,
    shutdown: CancellationToken,
    stats: Arc<ConnectionStats>,
    handshake: Handshake,
) -> std::io::Result<()> {
    let builder = connection_builder(limits);
    let workers = match limits.io_workers {
        Some(n) if n > 0 => Some(workers::Workers::start(
            n,
            "io-worker",
            limits.io_worker_affinity,
        )?),
        _ => None,
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let mut accept_errors_logged = 0u64;
    loop {
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                stats.at_capacity.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached; new connections wait until one closes"
                );
                tokio::select! {
                    p = Arc::clone(&permits).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = shutdown.cancelled() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning, and
                    // do not flood the log.
                    accept_errors_logged += 1;
                    if accept_errors_logged.is_power_of_two() {
                        tracing::error!(error = %e, count = accept_errors_logged, "accept failed");
                    }
                    drop(permit);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                        () = shutdown.cancelled() => break,
                    }
                }
            },
            () = shutdown.cancelled() => break,
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let connection = Connection {
            builder: builder.clone(),
            max_head_bytes: limits.max_header_bytes.max(8192),
            max_headers: limits.max_headers,
            router: router.clone(),
            header_read_timeout: limits.header_read_timeout,
            keep_alive_timeout: limits.keep_alive_timeout,
            send_timeout: Some(limits.send_timeout).filter(|t| !t.is_zero()),
            shutdown: shutdown.clone(),
            stats: Arc::clone(&stats),
            handshake: handshake.clone(),
        };
        match &workers {
            None => {
                connections.spawn(async move {
                    let _permit = permit;
                    connection.run(stream, peer).await;
                });
            }
            Some(workers) => {
                // A socket belongs to the reactor it was registered with:
                // move it to the worker's.
                let stream = match stream.into_std() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "cannot hand the connection to a worker");
                        continue;
                    }
                };
                connections.spawn_on(
                    async move {
                        let _permit = permit;
                        match TcpStream::from_std(stream) {
                            Ok(stream) => connection.run(stream, peer).await,
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "the worker cannot take the connection");
                            }
                        }
                    },
                    workers.next(),
                );
            }
        }
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(limits.drain_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            drain_timeout = ?limits.drain_timeout,
            "connections still open after the drain timeout; stopping anyway"
        );
    }
    drop(workers);
    Ok(())
}

fn connection_builder(limits: &ServeLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The keep-alive watch (`idle`) does this, for every request at
        // once; hyper's own (30 s unless set) costs a timer per head.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keep_alive_timeout)
        .keep_alive_timeout(Duration::from_secs(20))
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

struct Connection<S> {
    builder: Builder<TokioExecutor>,
    /// The limits hyper's builder has, for the first head's check.
    max_head_bytes: usize,
    max_headers: usize,
    router: S,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    send_timeout: Option<Duration>,
    shutdown: CancellationToken,
    stats: Arc<ConnectionStats>,
    handshake: Handshake,
}

impl<S: RequestService> Connection<S> {
    async fn run(self, stream: TcpStream, peer: SocketAddr) {
        let _open = OpenWork::begin("connection", peer);
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let head_deadline = tokio::time::Instant::now() + self.header_read_timeout;
        let activity = Arc::new(Activity::default());
        let stream = SendDeadline::new(
            stream,
            self.send_timeout,
            Arc::clone(&self.stats),
            Arc::clone(&activity),
        );
        let served = Served {
            peer,
            head_deadline,
            activity,
        };
        match &self.handshake {
            Handshake::Plain => {
                self.serve_http(stream, served, false, Protocol::Auto).await;
            }
            #[cfg(feature = "tls")]
            Handshake::Tls(acceptor) => {
                let accepted = tokio::select! {
                    a = tokio::time::timeout_at(head_deadline, acceptor.accept(stream)) => a,
                    () = self.shutdown.cancelled() => Ok(Err(std::io::ErrorKind::Interrupted.into())),
                };
                match accepted {
                    Ok(Ok(tls)) => {
                        // The protocol ALPN agreed on is the only one
                        // served (RFC 7301, RFC 9113 3.2): an `h2`
                        // connection that does not start with the HTTP/2
                        // preface is closed, not read as HTTP/1.1.
                        let protocol = match tls.get_ref().1.alpn_protocol() {
                            Some(b"h2") => Protocol::Http2,
                            _ => Protocol::Auto,
                        };
                        self.serve_http(tls, served, true, protocol).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => {
                        self.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, "no TLS handshake in time; closing");
                    }
                }
            }
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }

    async fn serve_http<I>(&self, io: I, served: Served, secure: bool, protocol: Protocol)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let connection = self.router.connection(served.peer, secure);
        let service = {
            let connection = connection.clone();
            let activity = Arc::clone(&served.activity);
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let answering = activity.request();
                let answer = connection.clone().oneshot(request.map(Body::new));
                async move {
                    let answer = answer.await;
                    drop(answering);
                    answer
                }
            })
        };
        let peer = served.peer;
        match protocol {
            Protocol::Auto => {
                let mut io = io;
                let head = tokio::select! {
                    h = tokio::time::timeout_at(
                        served.head_deadline,
                        first_head::read(&mut io, self.max_head_bytes, self.max_headers),
                    ) => h,
                    () = self.shutdown.cancelled() => return,
                };
                let prefix = match head {
                    Ok(FirstHead::Serve(prefix)) => prefix,
                    Ok(FirstHead::Done) => return,
                    Err(_) => {
                        self.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, "no request head in time; closing");
                        return;
                    }
                };
                // HTTP/2 has its own keep-alive (pings); an HTTP/1
                // connection is watched for idleness.
                let http2 = first_head::is_http2(&prefix);
                let keep_alive = (!http2).then_some(self.keep_alive_timeout);
                let (io, prefix) = if S::OWN_HTTP1 && !http2 {
                    let closing = Arc::new(AtomicBool::new(false));
                    let own = h1::serve(
                        io,
                        BytesMut::from(prefix),
                        connection,
                        h1::HeadLimits {
                            max_bytes: self.max_head_bytes,
                            max_headers: self.max_headers,
                        },
                        Arc::clone(&served.activity),
                        Arc::clone(&closing),
                    );
                    match self
                        .drive(h1::Own::new(own, closing), &served, keep_alive)
                        .await
                    {
                        Some(h1::Served::HandOver(io, rest)) => (io, rest),
                        Some(h1::Served::Closed) | None => return,
                    }
                } else {
                    (io, prefix)
                };
                let io = Prefixed::new(prefix, io);
                let conn = self
                    .builder
                    .serve_connection_with_upgrades(TokioIo::new(io), service);
                self.drive(conn, &served, keep_alive).await;
            }
            Protocol::Http2 => {
                // `serve_connection_with_upgrades` always reads the version
                // itself; `serve_connection` honours `http2_only` (and
                // HTTP/2 has no HTTP/1.1 upgrades).
                let builder = self.builder.clone().http2_only();
                let conn = builder.serve_connection(TokioIo::new(io), service);
                self.drive(conn, &served, None).await;
            }
        }
    }

    /// Runs `conn` to its end: closed when no request head came by the
    /// head deadline, shut down gracefully when idle for `keep_alive` (when
    /// set) and drained when shutdown begins.
    /// What the connection ended with, when it ended by itself without an
    /// error.
    async fn drive<C, T, E>(
        &self,
        conn: C,
        served: &Served,
        keep_alive: Option<Duration>,
    ) -> Option<T>
    where
        C: GracefulConnection<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let peer = served.peer;
        tokio::pin!(conn);
        // Gated: the connection wakes this task for every read and write;
        // the timer and the shutdown signal are polled only when they fire
        // (a timer poll or a token poll registers a waker each time). The
        // one timer serves the head deadline, then the keep-alive watch's
        // ticks.
        let mut timer = Gated::new(Box::pin(tokio::time::sleep_until(served.head_deadline)));
        let mut watch = Watch::FirstHead;
        let mut shutdown = Gated::new(Box::pin(self.shutdown.clone().cancelled_owned()));
        let mut draining = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    return match result {
                        Ok(ended) => Some(ended),
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                            None
                        }
                    };
                }
                () = &mut timer, if !matches!(watch, Watch::Done) => {
                    watch = match watch {
                        Watch::FirstHead if served.activity.requests() == 0 => {
                            self.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "no request head in time; closing");
                            break;
                        }
                        Watch::FirstHead => match keep_alive {
                            Some(period) => Watch::Idle(
                                IdleWatch::new(served.activity.snapshot()),
                                idle::tick(period),
                            ),
                            None => Watch::Done,
                        },
                        Watch::Idle(mut idle, tick) => {
                            if idle.tick(served.activity.snapshot()) {
                                tracing::debug!(%peer, "idle for server.keep-alive-timeout; closing");
                                conn.as_mut().graceful_shutdown();
                                Watch::Done
                            } else {
                                Watch::Idle(idle, tick)
                            }
                        }
                        Watch::Done => Watch::Done,
                    };
                    if let Watch::Idle(_, tick) = &watch {
                        let next = tokio::time::Instant::now() + *tick;
                        timer.get_mut().as_mut().reset(next);
                        timer.rearm();
                    }
                }
                () = &mut shutdown, if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        None
    }
}

/// What [`Connection::run`] hands on about the connection it serves.
struct Served {
    peer: SocketAddr,
    /// When the first request head must have come.
    head_deadline: tokio::time::Instant,
    activity: Arc<Activity>,
}

/// What the timer of a connection being driven is for.
enum Watch {
    /// The deadline of the first request head.
    FirstHead,
    /// The keep-alive watch, and its tick.
    Idle(IdleWatch, Duration),
    /// Nothing more.
    Done,
}

/// A served connection that can be asked to finish its requests and close.
trait GracefulConnection: Future {
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, E, B> GracefulConnection
    for hyper_util::server::conn::auto::UpgradeableConnection<'_, I, S, E>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper_util::server::conn::auto::HttpServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        hyper_util::server::conn::auto::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl<I, S, E, B> GracefulConnection for hyper_util::server::conn::auto::Connection<'_, I, S, E>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper_util::server::conn::auto::HttpServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        hyper_util::server::conn::auto::Connection::graceful_shutdown(self);
    }
}

/// Serves `router` until `shutdown` completes: a shorthand for servers
/// whose API takes a shutdown future.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    limits: &ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = CancellationToken::new();
    let trigger = token.clone();
    let watcher = tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let result = serve(listener, router, limits, token).await;
    watcher.abort();
    result
}

mod first_head;
mod h1;
mod idle;
mod send_deadline;
pub mod workers;

use first_head::{FirstHead, Prefixed};
use idle::{Activity, IdleWatch};
use send_deadline::SendDeadline;

#[cfg(test)]
mod tests;
