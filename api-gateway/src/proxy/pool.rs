//! The upstream connection pool: HTTP/1.1 connections made with hyper's
//! `client::conn`, kept idle per upstream for the next request.
//!
//! A request without a body or upgrade to a cleartext upstream under the
//! default pool (`ELASTIC`, no forward proxy) takes an inline connection
//! instead ([`inline`]): one with no task of its own, on which the
//! request's task writes the request and reads the response itself. The
//! two kinds are listed apart; what follows is about hyper's.
//!
//! A connection is one task (spawned where it was opened: on an I/O worker,
//! the worker that serves the request) that reads and writes its socket;
//! the request's task talks to it through a [`SendRequest`]. After a
//! response its connection goes back to the pool when the response body
//! has been read to its end ([`PooledBody`]), never before, so a pooled
//! connection is always free for the next request. A response body dropped
//! before its end takes its connection with it.
//!
//! The idle connections are kept in shards, one per thread in turn, so the
//! I/O workers never contend for a lock; each shard keeps its most recently
//! used connection on top (warm in the upstream's caches, and the idle
//! ones at the bottom reach their idle timeout and close). A connection's
//! own task closes it after `idle_timeout` without a request; whichever of
//! that task and a checkout claims the idle connection first wins, so a
//! connection is never closed under a request.
//!
//! With `server.http2.enabled`, `https` upstreams are offered `h2` in the
//! TLS handshake; one that takes it is reached over a single multiplexed
//! connection per thread instead ([`http2`]). gRPC requests to `http`
//! upstreams go the same way over cleartext HTTP/2 (h2c, prior knowledge):
//! gRPC has no HTTP/1.1 form.
//!
//! How many connections an upstream may have is SCG's pool type
//! ([`Sizing`]): as many as requests need (`ELASTIC`, the default), at most
//! `max-connections` across all threads (`FIXED`: a request that finds none
//! idle and none free to open waits up to `acquire-timeout` for one to come
//! back or close, taking an idle one from another thread's shard if need
//! be), or a new connection per request (`DISABLED`). Under `FIXED` each
//! connection's task holds a semaphore permit of its upstream, so a closed
//! connection frees its place the moment it ends.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use cloud_runtime::gated::Gated;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

use cloud_runtime::shard::{self, CacheLine};
use cloud_runtime::stall::StallTimer;

mod http2;
mod inline;
mod tunnel;

pub(crate) use inline::{ExchangeError, InlineConn};

pub use tunnel::ForwardProxy;

/// A connection's state word: in use, closed, or idle since this many
/// milliseconds after the pool's start (plus one, so that 0 is free).
const IN_USE: u64 = 0;
const CLOSED: u64 = u64::MAX;

/// How many connections one upstream may have open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizing {
    /// As many as requests need (SCG's `ELASTIC`, its default).
    Elastic,
    /// At most `max` open across all I/O workers; a request waits up to
    /// `acquire_timeout` for one (SCG's `FIXED`).
    Fixed {
        /// `max-connections`.
        max: usize,
        /// `acquire-timeout`.
        acquire_timeout: Duration,
    },
    /// A new connection per request, closed after it (SCG's `DISABLED`).
    Disabled,
}

/// Why a request got no connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ObtainError {
    /// Opening one failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A `FIXED` pool had none free for the acquire timeout.
    #[error(
        "no connection to {authority} free within {} ms (httpclient.pool.max-connections is {max})",
        .waited.as_millis()
    )]
    Exhausted {
        authority: String,
        max: usize,
        waited: Duration,
    },
}

/// Why no connection could be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The name did not resolve, or to no address.
    #[error("cannot resolve {authority}")]
    Resolve {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    /// No address took the connection in time.
    #[error("connection refused or unreachable")]
    Refused(#[source] std::io::Error),
    /// The TLS handshake failed.
    #[error("TLS handshake failed")]
    Tls(#[source] std::io::Error),
    /// The HTTP/1.1 handshake failed.
    #[error("HTTP handshake failed")]
    Http(#[source] hyper::Error),
    /// The forward proxy opened no tunnel to the upstream.
    #[error("no tunnel through the proxy {proxy} to {target}: {detail}")]
    Proxy {
        proxy: String,
        target: String,
        detail: String,
    },
}

/// The pools of all upstreams.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    /// One per thread (see [`cloud_runtime::shard`]), each its own allocation: a
    /// connection keeps its home shard's `Arc`, so returning it to the
    /// pool writes only to memory its own thread uses.
    shards: Box<[Arc<CacheLine<Home>>]>,
    tls: tokio_rustls::TlsConnector,
    sizing: Sizing,
    /// Whether `https` upstreams are offered HTTP/2.
    http2: bool,
    /// `httpclient.proxy.*`: the forward proxy connections go through.
    proxy: Option<ForwardProxy>,
    /// Under `FIXED`: each upstream's limit, by `[plain, secure]` and
    /// authority; looked up only when a request finds no idle connection
    /// on its own thread.
    limiters: Mutex<[ByAuthority<Arc<Limiter>>; 2]>,
}

/// One upstream's connection limit under `FIXED`.
#[derive(Debug)]
struct Limiter {
    /// A permit per connection that may open; each open connection's task
    /// holds one.
    open: Arc<tokio::sync::Semaphore>,
    /// Woken when a connection of this upstream goes back to the pool
    /// while requests wait.
    returned: tokio::sync::Notify,
    /// Requests waiting (so that a connection coming back wakes none
    /// when none waits).
    waiting: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("limits", &self.shards.first().map(|s| s.0.limits))
            .finish_non_exhaustive()
    }
}

/// One thread's idle connections.
#[derive(Debug)]
struct Home {
    idle: Mutex<Shard>,
    /// Open HTTP/2 connections (shared by requests, never idle-listed).
    http2: http2::Registry,
    limits: Limits,
}

/// The pool's settings, copied into each shard.
#[derive(Debug, Clone, Copy)]
struct Limits {
    idle_timeout: Duration,
    max_idle_per_host: usize,
    /// `max-life-time`: a connection older is not taken back.
    max_life: Option<Duration>,
    /// False under `DISABLED`: no connection is taken back.
    keep: bool,
    started: Instant,
}

/// Idle connections by upstream: hyper's by `[plain, secure]`, then the
/// inline ones ([`inline`]), each by authority.
#[derive(Debug, Default)]
struct Shard {
    idle: [ByAuthority<Vec<Http1Conn>>; 2],
    inline: ByAuthority<Vec<InlineConn>>,
    /// Whether a [`reap`] task watches the inline ones.
    reaping: bool,
}

/// Keyed by upstream authority (from the routes and the registry, not
/// from clients), with a fast seeded hash: SipHash showed in the request
/// path's profile.
type ByAuthority<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// Which HTTP a request may go upstream in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// HTTP/1.1 only: an upgrade (WebSocket).
    Http1,
    /// HTTP/2 when an `https` upstream picks it (`server.http2.enabled`),
    /// else HTTP/1.1.
    Negotiated,
    /// gRPC: as `Negotiated` over TLS; over cleartext, HTTP/2 by prior
    /// knowledge.
    Grpc,
}

/// One request's upstream connection: its own HTTP/1.1 one, or a lease on
/// a multiplexed HTTP/2 one.
#[derive(Debug)]
pub(crate) enum Conn {
    Http1(Http1Conn),
    Http2(http2::Lease),
}

/// One HTTP/1.1 upstream connection.
#[derive(Debug)]
pub(crate) struct Http1Conn {
    sender: SendRequest<Body>,
    state: Arc<AtomicU64>,
    /// The shard of the thread that opened it (and runs its task).
    home: Arc<CacheLine<Home>>,
    secure: bool,
    authority: Box<str>,
    /// Whether it served a request before this one.
    reused: bool,
    /// When it was opened (for `max-life-time`).
    opened: Instant,
    /// Its upstream's limit, under `FIXED`.
    limiter: Option<Arc<Limiter>>,
}

impl Conn {
    /// Whether it served a request before this one (a failure on it may be
    /// the upstream closing an idle connection).
    pub(crate) fn reused(&self) -> bool {
        match self {
            Conn::Http1(c) => c.reused,
            Conn::Http2(l) => l.reused(),
        }
    }

    /// The upstream's `host:port`.
    fn authority(&self) -> &str {
        match self {
            Conn::Http1(c) => &c.authority,
            Conn::Http2(l) => l.authority(),
        }
    }

    /// Whether it is HTTP/2 (the request's URI must then be absolute).
    pub(crate) fn is_http2(&self) -> bool {
        matches!(self, Conn::Http2(_))
    }

    /// Sends `request` on the connection.
    pub(crate) async fn send(
        &mut self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, hyper::Error> {
        match self {
            Conn::Http1(c) => c.sender.send_request(request).await,
            Conn::Http2(l) => l.send(request).await,
        }
    }
}

impl Http1Conn {
    /// Takes the idle connection for a request, unless its idle timeout
    /// claimed it first.
    fn claim(&self) -> bool {
        let seen = self.state.load(Ordering::Acquire);
        seen != IN_USE
            && seen != CLOSED
            && self
                .state
                .compare_exchange(seen, IN_USE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

/// The pool's settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// `max-idle-time`: an idle connection is closed after it.
    pub idle_timeout: Duration,
    /// `max-idle-per-host`: idle connections kept per upstream and thread.
    pub max_idle_per_host: usize,
    /// `max-life-time`: a connection older than this is closed when its
    /// request ends instead of going back to the pool.
    pub max_life: Option<Duration>,
    /// `type`, `max-connections` and `acquire-timeout`.
    pub sizing: Sizing,
    /// `server.http2.enabled`: `https` upstreams are offered HTTP/2 (ALPN
    /// `h2`, then `http/1.1`), as SCG's client is.
    pub http2: bool,
    /// `httpclient.proxy.*`: a forward proxy to reach upstreams through.
    pub proxy: Option<ForwardProxy>,
}

impl Pool {
    /// A pool with `settings`; `https` upstreams are reached with `tls` (its
    /// ALPN set to HTTP/1.1, or to HTTP/2 then HTTP/1.1 with
    /// `settings.http2`).
    pub(crate) fn new(settings: PoolSettings, mut tls: rustls::ClientConfig) -> Pool {
        tls.alpn_protocols = match settings.http2 {
            true => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            false => vec![b"http/1.1".to_vec()],
        };
        let limits = Limits {
            idle_timeout: settings.idle_timeout,
            max_idle_per_host: settings.max_idle_per_host.max(1),
            max_life: settings.max_life,
            keep: settings.sizing != Sizing::Disabled,
            started: Instant::now(),
        };
        Pool {
            shared: Arc::new(Shared {
                shards: (0..shard::SHARDS)
                    .map(|_| {
                        Arc::new(CacheLine(Home {
                            idle: Mutex::default(),
                            http2: http2::Registry::default(),
                            limits,
                        }))
                    })
                    .collect(),
                tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
                sizing: settings.sizing,
                http2: settings.http2,
                proxy: settings.proxy,
                limiters: Mutex::default(),
            }),
        }
    }

    /// Whether `https` upstreams are offered HTTP/2 (`server.http2.enabled`).
    pub(crate) fn offers_http2(&self) -> bool {
        self.shared.http2
    }

    /// A connection to `authority` for one request: an idle one of this
    /// thread, else a new one (connecting within `connect_timeout`), as the
    /// pool's [`Sizing`] allows, in the HTTP `wanted` allows.
    pub(crate) async fn obtain(
        &self,
        secure: bool,
        authority: &str,
        connect_timeout: Duration,
        wanted: Wanted,
    ) -> Result<Conn, ObtainError> {
        let sizing = self.shared.sizing;
        let http2 = match wanted {
            Wanted::Http1 => false,
            Wanted::Negotiated => secure && self.shared.http2,
            Wanted::Grpc => !secure || self.shared.http2,
        };
        if http2 && sizing != Sizing::Disabled {
            let home = &self.shared.home().0;
            if let Some(lease) = home.http2.lease(secure, authority, home.limits) {
                return Ok(Conn::Http2(lease));
            }
        }
        if http2 && !secure {
            // Cleartext HTTP/2 needs no look at the HTTP/1.1 connections,
            // and is one connection whatever the pool's type.
            return Ok(self
                .connect_boxed(secure, authority, connect_timeout, None, true)
                .await?);
        }
        if sizing != Sizing::Disabled
            && let Some(conn) = checkout(self.shared.home(), secure, authority).await
        {
            return Ok(Conn::Http1(conn));
        }
        let Sizing::Fixed {
            max,
            acquire_timeout,
        } = sizing
        else {
            return Ok(self
                .connect_boxed(secure, authority, connect_timeout, None, http2)
                .await?);
        };
        let limiter = self.shared.limiter(secure, authority, max);
        let deadline = Instant::now() + acquire_timeout;
        loop {
            if let Ok(permit) = Arc::clone(&limiter.open).try_acquire_owned() {
                let conn = self.connect_boxed(
                    secure,
                    authority,
                    connect_timeout,
                    Some((permit, &limiter)),
                    http2,
                );
                return Ok(conn.await?);
            }
            // Counted before looking, so that a connection coming back
            // after the look wakes this request.
            let waiting = Waiting::new(&limiter);
            for home in self.shared.shards.iter() {
                if let Some(conn) = checkout(home, secure, authority).await {
                    return Ok(Conn::Http1(conn));
                }
            }
            tokio::select! {
                permit = Arc::clone(&limiter.open).acquire_owned() => {
                    drop(waiting);
                    let Ok(permit) = permit else { continue };
                    let conn = self.connect_boxed(secure, authority, connect_timeout, Some((permit, &limiter)), http2);
                    return Ok(conn.await?);
                }
                () = limiter.returned.notified() => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(ObtainError::Exhausted {
                        authority: authority.to_owned(),
                        max,
                        waited: acquire_timeout,
                    });
                }
            }
        }
    }

    /// A connection for a request without a body or upgrade to the
    /// cleartext upstream `authority`, run in the request's own task
    /// ([`inline`]): an idle one of this thread, else a new one (connecting
    /// within `connect_timeout`). `None` when such requests go through
    /// hyper's client instead: under `FIXED` and `DISABLED` (whose counts
    /// and waits [`Pool::obtain`] keeps), and through a forward proxy.
    pub(crate) async fn obtain_inline(
        &self,
        authority: &str,
        connect_timeout: Duration,
    ) -> Result<Option<InlineConn>, ObtainError> {
        if self.shared.sizing != Sizing::Elastic
            || self
                .shared
                .proxy
                .as_ref()
                .is_some_and(|p| p.applies_to(host_of(authority)))
        {
            return Ok(None);
        }
        let home = self.shared.home();
        if let Some(conn) = checkout_inline(home, authority) {
            return Ok(Some(conn));
        }
        // Boxed for the reason `connect_boxed` gives.
        let connect: Pin<Box<dyn Future<Output = Result<TcpStream, ConnectError>> + Send + '_>> =
            Box::pin(connect_tcp(authority, connect_timeout));
        let tcp = connect.await?;
        Ok(Some(InlineConn::new(tcp, Arc::clone(home), authority)))
    }

    /// Puts the inline `conn` back among its thread's idle ones (when the
    /// pool keeps connections and the upstream has room), and makes sure a
    /// [`reap`] task will close it after the idle timeout.
    fn check_in_inline(mut conn: InlineConn) {
        let home = Arc::clone(&conn.home);
        let limits = home.0.limits;
        if !limits.keep || limits.idle_timeout.is_zero() {
            return;
        }
        let now = Instant::now();
        if limits.retired(conn.opened, now) {
            return;
        }
        // The reaper is a task on this runtime; with none (a body read
        // after its runtime ended) the connection is not kept.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        conn.idle_since = now;
        conn.rest();
        let mut shard = home.0.idle();
        let list = match shard.inline.get_mut(&*conn.authority) {
            Some(list) => list,
            None => shard.inline.entry(conn.authority.clone()).or_default(),
        };
        if list.len() >= limits.max_idle_per_host {
            return;
        }
        list.push(conn);
        if !shard.reaping {
            shard.reaping = true;
            runtime.spawn(reap(Arc::clone(&home)));
        }
    }

    /// [`Pool::connect`] on the heap. Connecting (TCP, TLS, the HTTP
    /// handshake) needs a future of some kilobytes, and every request's
    /// future would carry that room while only the few that open a
    /// connection use it; each request's future is moved once into its
    /// box, so its size is paid on every request (docs/benchmarks.md,
    /// "Fourteenth pass").
    fn connect_boxed<'a>(
        &'a self,
        secure: bool,
        authority: &'a str,
        connect_timeout: Duration,
        permit: Option<(tokio::sync::OwnedSemaphorePermit, &'a Arc<Limiter>)>,
        http2: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Conn, ConnectError>> + Send + 'a>> {
        Box::pin(self.connect(secure, authority, connect_timeout, permit, http2))
    }

    /// A new connection to `authority`, connecting within
    /// `connect_timeout`; under `FIXED`, holding `permit` of `limiter`.
    /// With `http2`, a TLS connection on which the upstream picks `h2`, or
    /// any cleartext one, becomes this thread's multiplexed one (outside
    /// `FIXED`'s count: it is one connection for all requests).
    async fn connect(
        &self,
        secure: bool,
        authority: &str,
        connect_timeout: Duration,
        permit: Option<(tokio::sync::OwnedSemaphorePermit, &Arc<Limiter>)>,
        http2: bool,
    ) -> Result<Conn, ConnectError> {
        let tcp = match &self.shared.proxy {
            Some(proxy) if proxy.applies_to(host_of(authority)) => {
                proxy.open(authority, connect_timeout).await?
            }
            _ => connect_tcp(authority, connect_timeout).await?,
        };
        let state = Arc::new(AtomicU64::new(IN_USE));
        let home = Arc::clone(self.shared.home());
        let (permit, limiter) = match permit {
            Some((p, l)) => (Some(p), Some(Arc::clone(l))),
            None => (None, None),
        };
        let sender = if secure {
            let host = host_of(authority);
            let name = rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
                ConnectError::Tls(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
            })?;
            let tls = self
                .shared
                .tls
                .connect(name, tcp)
                .await
                .map_err(ConnectError::Tls)?;
            if http2 && tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                let lease = http2::handshake(tls, secure, authority, &home).await?;
                return Ok(Conn::Http2(lease));
            }
            handshake(tls, &state, &home, permit).await?
        } else if http2 {
            let lease = http2::handshake(tcp, secure, authority, &home).await?;
            return Ok(Conn::Http2(lease));
        } else {
            handshake(tcp, &state, &home, permit).await?
        };
        Ok(Conn::Http1(Http1Conn {
            sender,
            state,
            home,
            secure,
            authority: authority.into(),
            reused: false,
            opened: Instant::now(),
            limiter,
        }))
    }

    /// Puts `conn` back among its thread's idle ones (when it is still
    /// open and the upstream has room); a lease on an HTTP/2 connection
    /// ends.
    fn check_in(conn: Conn) {
        let conn = match conn {
            Conn::Http1(c) => c,
            Conn::Http2(lease) => return drop(lease),
        };
        let home = Arc::clone(&conn.home);
        let limits = home.0.limits;
        if conn.sender.is_closed() || !limits.keep {
            return;
        }
        let now = Instant::now();
        if limits.retired(conn.opened, now) {
            return;
        }
        conn.state.store(limits.stamp(now), Ordering::Release);
        // Under `FIXED`, whether a request waits for this upstream: read
        // before the connection is listed; a request that starts waiting
        // after this read looks at the lists (behind this shard's lock)
        // and finds it.
        let wake = conn
            .limiter
            .as_ref()
            .is_some_and(|l| l.waiting.load(Ordering::Acquire) > 0);
        let mut shard = home.0.idle();
        let idle = &mut shard.idle[usize::from(conn.secure)];
        let list = match idle.get_mut(&*conn.authority) {
            Some(list) => list,
            None => idle.entry(conn.authority.clone()).or_default(),
        };
        if list.len() >= limits.max_idle_per_host {
            // Connections whose idle timeout closed them still hold a place.
            list.retain(|c| !c.sender.is_closed());
        }
        if list.len() < limits.max_idle_per_host {
            list.push(conn);
            // Woken through the listed connection's own handle: no
            // reference count written on the way.
            if wake && let Some(l) = list.last().and_then(|c| c.limiter.as_deref()) {
                l.returned.notify_one();
            }
        }
    }

    /// Wraps an upstream response's body so that its connection comes back
    /// when the body has been read to its end, and so that it fails when
    /// the upstream sends nothing for `read_timeout` (see
    /// [`PooledBody::stall`]).
    pub(crate) fn response(
        &self,
        conn: Conn,
        response: http::Response<Incoming>,
        read_timeout: Option<Duration>,
    ) -> http::Response<Body> {
        if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            // The connection now belongs to the upgrade.
            return response.map(Body::new);
        }
        let (mut head, body) = response.into_parts();
        // The client hears the gateway's HTTP version, not the upstream's:
        // an HTTP/1.0 upstream must not make the answer to an HTTP/1.1
        // client an HTTP/1.0 one (no chunking, no keep-alive). The server
        // side answers an HTTP/1.0 client in its version by itself.
        head.version = http::Version::HTTP_11;
        let mut pooled = PooledBody {
            body,
            conn: Some(conn),
            stall: read_timeout.map(StallTimer::new),
        };
        if pooled.body.is_end_stream() {
            pooled.release();
        }
        http::Response::from_parts(head, Body::new(pooled))
    }
}

impl Shared {
    /// This thread's shard.
    fn home(&self) -> &Arc<CacheLine<Home>> {
        &self.shards[shard::this_thread()]
    }

    /// `authority`'s limit of `max` connections.
    fn limiter(&self, secure: bool, authority: &str, max: usize) -> Arc<Limiter> {
        let mut limiters = self
            .limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let by_authority = &mut limiters[usize::from(secure)];
        if let Some(l) = by_authority.get(authority) {
            return Arc::clone(l);
        }
        let l = Arc::new(Limiter {
            open: Arc::new(tokio::sync::Semaphore::new(max.max(1))),
            returned: tokio::sync::Notify::new(),
            waiting: std::sync::atomic::AtomicUsize::new(0),
        });
        by_authority.insert(authority.into(), Arc::clone(&l));
        l
    }
}

/// A request counted among a limiter's waiting ones while it lives.
struct Waiting<'a>(&'a Limiter);

impl<'a> Waiting<'a> {
    fn new(limiter: &'a Limiter) -> Waiting<'a> {
        limiter.waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(limiter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An idle connection to `authority` from `home`, if one is ready.
async fn checkout(home: &CacheLine<Home>, secure: bool, authority: &str) -> Option<Http1Conn> {
    loop {
        let mut conn = {
            let mut shard = home.0.idle();
            shard.idle[usize::from(secure)].get_mut(authority)?.pop()?
        };
        if conn.sender.is_closed() || !conn.claim() {
            continue;
        }
        // Free once the upstream's last response was read to its end;
        // closed if the upstream closed it meanwhile.
        if conn.sender.ready().await.is_ok() {
            conn.reused = true;
            return Some(conn);
        }
    }
}

/// An idle inline connection to `authority` from `home` that may take a
/// request (see [`InlineConn::fit`]); the unfit ones are dropped.
fn checkout_inline(home: &CacheLine<Home>, authority: &str) -> Option<InlineConn> {
    loop {
        let mut conn = {
            let mut shard = home.0.idle();
            shard.inline.get_mut(authority)?.pop()?
        };
        if conn.fit() {
            conn.reused = true;
            return Some(conn);
        }
    }
}

/// Closes `home`'s inline connections as each reaches the idle timeout;
/// ends when none is left (the next one checked in starts another).
async fn reap(home: Arc<CacheLine<Home>>) {
    let timeout = home.0.limits.idle_timeout;
    let mut next = Instant::now() + timeout;
    loop {
        tokio::time::sleep_until(next).await;
        let now = Instant::now();
        let mut closed = Vec::new();
        let earliest = {
            let mut shard = home.0.idle();
            for list in shard.inline.values_mut() {
                closed.extend(list.extract_if(.., |c| c.idle_since + timeout <= now));
            }
            shard.inline.retain(|_, list| !list.is_empty());
            let earliest = shard
                .inline
                .values()
                .flatten()
                .map(|c| c.idle_since + timeout)
                .min();
            shard.reaping = earliest.is_some();
            earliest
        };
        // Closed outside the lock.
        drop(closed);
        match earliest {
            Some(due) => next = due,
            None => return,
        }
    }
}

impl Home {
    fn idle(&self) -> std::sync::MutexGuard<'_, Shard> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Limits {
    /// Whether a connection opened at `opened` has reached `max-life-time`
    /// at `now` (and is closed rather than taken back).
    fn retired(&self, opened: Instant, now: Instant) -> bool {
        self.max_life
            .is_some_and(|life| now.saturating_duration_since(opened) >= life)
    }

    fn stamp(&self, at: Instant) -> u64 {
        let millis = at.saturating_duration_since(self.started).as_millis();
        u64::try_from(millis).unwrap_or(CLOSED - 2) + 1
    }

    /// How long until a connection in use is looked at again: the idle
    /// timeout, but never less than a second (`max-idle-time: 0` must not
    /// make a connection's task spin while its request runs).
    fn recheck(&self) -> Duration {
        self.idle_timeout.max(Duration::from_secs(1))
    }

    /// The time a [`Limits::stamp`] was made (to the millisecond).
    fn since_stamp(&self, stamp: u64) -> Instant {
        self.started + Duration::from_millis(stamp.saturating_sub(1))
    }

    /// When the connection with `state` should be looked at again, or
    /// `None` when it has been idle for the idle timeout and is now claimed
    /// for closing.
    fn idle_deadline(&self, state: &AtomicU64) -> Option<Instant> {
        let now = Instant::now();
        let seen = state.load(Ordering::Acquire);
        if seen == IN_USE || seen == CLOSED {
            return Some(now + self.recheck());
        }
        let since = self.since_stamp(seen);
        let due = since + self.idle_timeout;
        if due > now {
            return Some(due);
        }
        match state.compare_exchange(seen, CLOSED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => None,
            // Checked out meanwhile.
            Err(_) => Some(now + self.recheck()),
        }
    }
}

async fn handshake<I>(
    io: I,
    state: &Arc<AtomicU64>,
    home: &Arc<CacheLine<Home>>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<SendRequest<Body>, ConnectError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(ConnectError::Http)?;
    let (state, home) = (Arc::clone(state), Arc::clone(home));
    tokio::spawn(async move {
        let connection = connection.with_upgrades();
        tokio::pin!(connection);
        // Gated: the connection wakes this task for every request; the
        // idle timer is polled only when it fires.
        let first_check = Instant::now() + home.0.limits.idle_timeout;
        let mut idle = Gated::new(Box::pin(tokio::time::sleep_until(first_check)));
        loop {
            tokio::select! {
                ended = connection.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "upstream connection ended");
                    }
                    break;
                }
                () = &mut idle => {
                    match home.0.limits.idle_deadline(&state) {
                        // Idle past its timeout, and claimed for closing.
                        None => break,
                        Some(next) => {
                            idle.get_mut().as_mut().reset(next);
                            idle.rearm();
                        }
                    }
                }
            }
        }
        state.store(CLOSED, Ordering::Release);
        // The connection's place under `FIXED` is free from here.
        drop(permit);
    });
    Ok(sender)
}

/// An upstream response body that returns its connection to the pool when
/// read to its end.
struct PooledBody {
    body: Incoming,
    conn: Option<Conn>,
    /// The route's response timeout, applied to each wait for the body as
    /// Reactor Netty's `responseTimeout` (which SCG's is) applies between
    /// two network reads of the whole response: a body whose upstream goes
    /// quiet that long fails, which cuts the client's response short and
    /// drops the upstream connection.
    stall: Option<StallTimer>,
}

/// Why an upstream response body failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Reading it failed.
    #[error(transparent)]
    Read(#[from] hyper::Error),
    /// Reading it from an inline connection failed.
    #[error(transparent)]
    Inline(#[from] ExchangeError),
    /// The upstream sent nothing for the route's response timeout.
    #[error("the upstream sent no part of its response body for {} ms", .0.as_millis())]
    Stalled(Duration),
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            Pool::check_in(conn);
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let frame = match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                let Some(stall) = &mut this.stall else {
                    return Poll::Pending;
                };
                if !stall.stalled(cx) {
                    return Poll::Pending;
                }
                if let Some(conn) = this.conn.take() {
                    tracing::warn!(
                        upstream = conn.authority(),
                        timeout_ms = stall.limit().as_millis(),
                        "upstream stalled in the middle of a response body; closing both connections"
                    );
                }
                return Poll::Ready(Some(Err(BodyError::Stalled(stall.limit()))));
            }
        };
        if let Some(stall) = &mut this.stall {
            stall.progressed();
        }
        match &frame {
            None => this.release(),
            Some(Ok(_)) if this.body.is_end_stream() => this.release(),
            Some(Ok(_)) => {}
            // A broken body leaves a connection no one can trust.
            Some(Err(_)) => this.conn = None,
        }
        Poll::Ready(frame.map(|f| f.map_err(BodyError::Read)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The host of `host:port` (without an IPv6 address's brackets).
fn host_of(authority: &str) -> &str {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => host,
        _ => authority,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A TCP connection to `authority` (`host:port`): its addresses in turn,
/// each within `timeout`.
async fn connect_tcp(authority: &str, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<std::net::SocketAddr> = match authority.parse() {
        Ok(addr) => vec![addr],
        Err(_) => tokio::net::lookup_host(authority)
            .await
            .map_err(|source| ConnectError::Resolve {
                authority: authority.to_owned(),
                source,
            })?
            .collect(),
    };
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{authority} resolves to no address"),
    );
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
                return Ok(stream);
            }
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connect timed out after {}ms", timeout.as_millis()),
                );
            }
        }
    }
    Err(ConnectError::Refused(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_authority_without_port_or_brackets() {
        assert_eq!(host_of("example.com:443"), "example.com");
        assert_eq!(host_of("[::1]:8443"), "::1");
        assert_eq!(host_of("127.0.0.1:80"), "127.0.0.1");
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_idle_time_a_connection_in_use_is_looked_at_each_second() {
        let limits = Limits {
            idle_timeout: Duration::ZERO,
            max_idle_per_host: 1,
            max_life: None,
            keep: true,
            started: Instant::now(),
        };
        let in_use = AtomicU64::new(IN_USE);
        assert_eq!(
            limits.idle_deadline(&in_use),
            Some(Instant::now() + Duration::from_secs(1)),
            "not a deadline of now, which would spin the connection's task"
        );
        let idle = AtomicU64::new(limits.stamp(Instant::now()));
        assert_eq!(limits.idle_deadline(&idle), None, "idle: closed at once");
        assert_eq!(idle.load(Ordering::Acquire), CLOSED);
    }
}
