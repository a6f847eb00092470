//! Forwarding one request to an upstream: the connection pool, hop-by-hop
//! headers, the forwarding headers (`X-Forwarded-*`, `Forwarded`), the
//! connect and response timeouts, the one transparent retry of an
//! idempotent request whose pooled connection turned out to be closed, and
//! the one resend of any request an HTTP/2 upstream refused unprocessed
//! (both only with the body still at hand).
//!
//! Upstreams are spoken to over HTTP/1.1, `http` and `https` (rustls,
//! trust from `httpclient.ssl.*`, see [`crate::tls::client_config`]), on
//! connections pooled per scheme and `host:port` (see `proxy/pool.rs`), at
//! most `httpclient.pool.max-idle-per-host` idle ones, each closed after
//! `httpclient.pool.max-idle-time` (30 s by default, below the 60 s
//! keep-alive most upstreams use, so the gateway closes first and rarely
//! writes into a connection the upstream is closing). The response
//! timeouts of all exchanges waiting for a head share one ticker
//! ([`circuit_breaker::time_limiter::Deadlines`]) instead of a timer in
//! tokio's wheel each.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Body as _;

use crate::filter::retry::FailureKind;
use crate::predicate::cidr::Cidr;
use crate::predicate::percent_decode;

mod pool;

pub use pool::{ForwardProxy, PoolSettings, Sizing};

/// Why an upstream gave no response.
#[derive(Debug, thiserror::Error)]
#[error("{upstream}: {detail}")]
pub struct UpstreamError {
    kind: Kind,
    upstream: String,
    detail: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connect,
    Io,
    Timeout,
    NoInstance { not_found: bool },
    Unsupported,
    ClientBody,
    TooLarge,
    PoolExhausted,
}

impl UpstreamError {
    /// No UP instance of service `name`: `503`, or `404` with
    /// `not_found` (SCG's `loadbalancer.use404`).
    pub fn no_instance(name: &str, not_found: bool) -> UpstreamError {
        UpstreamError {
            kind: Kind::NoInstance { not_found },
            upstream: format!("lb://{name}"),
            detail: format!("Unable to find instance for {name}"),
            source: None,
        }
    }

    /// The client's body is larger than the gateway keeps (`detail` says
    /// which limit).
    pub fn too_large(detail: String) -> UpstreamError {
        UpstreamError {
            kind: Kind::TooLarge,
            upstream: "client".to_owned(),
            detail,
            source: None,
        }
    }

    /// The route has no upstream to call (a forward).
    pub fn unsupported(upstream: &str, detail: &str) -> UpstreamError {
        UpstreamError {
            kind: Kind::Unsupported,
            upstream: upstream.to_owned(),
            detail: detail.to_owned(),
            source: None,
        }
    }

    /// The client's request body could not be read.
    pub fn client_body(source: impl std::error::Error + Send + Sync + 'static) -> UpstreamError {
        UpstreamError {
            kind: Kind::ClientBody,
            upstream: "client".to_owned(),
            detail: "the request body could not be read".to_owned(),
            source: Some(Box::new(source)),
        }
    }

    /// No response head within the response timeout.
    pub fn timeout(upstream: &str, after: Duration) -> UpstreamError {
        UpstreamError {
            kind: Kind::Timeout,
            upstream: upstream.to_owned(),
            detail: format!("Response took longer than timeout: {}ms", after.as_millis()),
            source: None,
        }
    }

    /// Whether connecting failed.
    pub fn is_connect(&self) -> bool {
        self.kind == Kind::Connect
    }

    /// Whether the response timed out.
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// Whether no instance was UP.
    pub fn is_no_instance(&self) -> bool {
        matches!(self.kind, Kind::NoInstance { .. })
    }

    /// Whether the client's request caused it (a body that could not be
    /// read or was over a limit), not the upstream.
    pub fn is_client_fault(&self) -> bool {
        matches!(self.kind, Kind::ClientBody | Kind::TooLarge)
    }

    /// Whether a `FIXED` pool had no connection free in time.
    pub fn is_pool_exhausted(&self) -> bool {
        self.kind == Kind::PoolExhausted
    }

    /// The status the client gets: 503 without an instance or a free
    /// pooled connection, 504 on a timeout, 502 otherwise.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            Kind::NoInstance { not_found: true } => StatusCode::NOT_FOUND,
            Kind::NoInstance { not_found: false } | Kind::PoolExhausted => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Kind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Kind::Connect | Kind::Io | Kind::Unsupported => StatusCode::BAD_GATEWAY,
            Kind::ClientBody => StatusCode::BAD_REQUEST,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The message for the client.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The failure kind the `Retry` filter knows.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self.kind {
            Kind::Connect => Some(FailureKind::Connect),
            Kind::Io => Some(FailureKind::Io),
            // Reactor's PoolAcquireTimeoutException is a TimeoutException.
            Kind::Timeout | Kind::PoolExhausted => Some(FailureKind::Timeout),
            Kind::NoInstance { .. } | Kind::Unsupported | Kind::ClientBody | Kind::TooLarge => None,
        }
    }

    /// SCG's (Java) exception type for this failure, for `FallbackHeaders`.
    pub fn java_type(&self) -> &'static str {
        match self.kind {
            Kind::Connect => "java.net.ConnectException",
            Kind::Io => "java.io.IOException",
            Kind::Timeout => "java.util.concurrent.TimeoutException",
            Kind::NoInstance { .. } => {
                "org.springframework.cloud.gateway.support.NotFoundException"
            }
            Kind::Unsupported => "java.lang.UnsupportedOperationException",
            Kind::ClientBody => "org.springframework.web.server.ServerWebInputException",
            Kind::TooLarge => "org.springframework.web.server.PayloadTooLargeException",
            Kind::PoolExhausted => {
                "reactor.netty.internal.shaded.reactor.pool.PoolAcquireTimeoutException"
            }
        }
    }
}

/// The upstream connection pools (see `proxy/pool.rs`).
#[derive(Debug)]
pub struct Upstreams {
    pool: pool::Pool,
    /// The response timeouts of the exchanges waiting for a head: one
    /// ticker for all of them, not a timer in tokio's wheel per request.
    deadlines: circuit_breaker::time_limiter::Deadlines,
}

/// A request body for one or more attempts.
#[derive(Debug)]
pub enum AttemptBody {
    /// Streamed once; gone after the first attempt.
    Stream(Option<Body>),
    /// Kept in memory, sent on each attempt.
    Kept(Bytes),
}

impl AttemptBody {
    fn take(&mut self) -> (Body, bool) {
        match self {
            AttemptBody::Stream(b) => match b.take() {
                Some(body) => {
                    let empty = body.size_hint().exact() == Some(0);
                    (body, empty)
                }
                None => (Body::empty(), true),
            },
            AttemptBody::Kept(bytes) => (Body::from(bytes.clone()), true),
        }
    }

    /// Whether there is no body to send (one that ends before its first
    /// byte).
    fn is_empty(&self) -> bool {
        match self {
            AttemptBody::Stream(Some(b)) => b.is_end_stream(),
            AttemptBody::Stream(None) => true,
            AttemptBody::Kept(bytes) => bytes.is_empty(),
        }
    }

    /// Whether another attempt can send the same body.
    pub fn replayable(&self) -> bool {
        match self {
            AttemptBody::Stream(Some(b)) => b.size_hint().exact() == Some(0),
            AttemptBody::Stream(None) => false,
            AttemptBody::Kept(_) => true,
        }
    }
}

impl Upstreams {
    /// Pools with `settings`; `https` upstreams are reached with `tls`.
    pub fn new(settings: PoolSettings, tls: rustls::ClientConfig) -> Upstreams {
        Upstreams {
            pool: pool::Pool::new(settings, tls),
            deadlines: circuit_breaker::time_limiter::Deadlines::new(),
        }
    }

    /// Sends one request to `authority` (over TLS when `secure`; a gRPC
    /// request over HTTP/2, with `te: trailers`) and waits for the response
    /// head at most `response_timeout` (with no timer of its own when
    /// `head_bounded`: the caller ends that wait first, as a circuit
    /// breaker's shorter time limit does); the response body fails when
    /// the upstream then sends nothing for as long. `forwarding` goes
    /// with `headers` (and is in the ones `again` makes). An idempotent
    /// request with an empty or kept body is sent once more, on a new
    /// connection and with the headers `again` makes, when the pooled
    /// connection it went out on was closed under it.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        authority: &str,
        secure: bool,
        method: &Method,
        path_and_query: String,
        headers: HeaderMap,
        mut forwarding: Forwarding,
        again: &(dyn Fn() -> Option<HeaderMap> + Sync),
        body: &mut AttemptBody,
        connect_timeout: Duration,
        response_timeout: Option<Duration>,
        head_bounded: bool,
    ) -> Result<Response<Body>, UpstreamError> {
        let exchange = async {
            // The path's own bytes become the URI's: no copy.
            let path_and_query = Bytes::from(path_and_query);
            let to_uri = || {
                http::Uri::from_maybe_shared(path_and_query.clone()).map_err(|e| UpstreamError {
                    kind: Kind::Io,
                    upstream: authority.to_owned(),
                    detail: format!(
                        "cannot send the path {}",
                        String::from_utf8_lossy(&path_and_query)
                    ),
                    source: Some(Box::new(e)),
                })
            };
            // A plain origin-form path needs no URI on our own HTTP/1.1
            // exchange, which writes its bytes as they are; any other is
            // made a URI (and refused) here, as hyper's client would.
            let uri = match plain_origin_form(&path_and_query) {
                true => None,
                false => Some(to_uri()?),
            };
            let mut closed_retry_left = is_idempotent(method);
            // An HTTP/2 upstream that refuses a stream (or leaves it above
            // its graceful GOAWAY's last) processed none of it (RFC 9113
            // 8.7): any request whose body is still at hand goes again,
            // once.
            let mut refused_retry_left = true;
            // An upgrade (WebSocket) needs HTTP/1.1 all the way; gRPC
            // needs HTTP/2.
            let wanted = wanted_by(&headers);
            if wanted == pool::Wanted::Grpc && secure && !self.pool.offers_http2() {
                warn_grpc_without_http2(authority);
            }
            // A request without a body or upgrade to a cleartext upstream
            // runs in this task, off hyper's client (see
            // `proxy/pool/inline.rs`), when the pool allows.
            let inline = !secure
                && wanted == pool::Wanted::Negotiated
                && *method != Method::CONNECT
                && body.is_empty();
            let mut headers = Some(headers);
            loop {
                if inline
                    && let Some(conn) = self
                        .pool
                        .obtain_inline(authority, connect_timeout)
                        .await
                        .map_err(|e| obtain_failed(authority, e))?
                {
                    let may_retry = conn.reused() && closed_retry_left;
                    if headers.is_none() {
                        headers = again();
                    }
                    let Some(h) = &headers else {
                        return Err(UpstreamError {
                            kind: Kind::Io,
                            upstream: authority.to_owned(),
                            detail: "connection failed".to_owned(),
                            source: None,
                        });
                    };
                    let target = match &uri {
                        Some(u) => u
                            .path_and_query()
                            .map_or(&b"/"[..], |p| p.as_str().as_bytes()),
                        None => &path_and_query[..],
                    };
                    let sent = conn.exchange(method, target, h, &forwarding, response_timeout);
                    match sent.await {
                        Ok(response) => return Ok(response),
                        Err(e) if may_retry && e.is_closed() => {
                            closed_retry_left = false;
                            tracing::debug!(
                                upstream = authority,
                                "pooled connection was closed; sending again"
                            );
                            continue;
                        }
                        Err(e) => return Err(exchange_failed(authority, e.is_invalid(), e)),
                    }
                }
                let mut conn = self
                    .pool
                    .obtain(secure, authority, connect_timeout, wanted)
                    .await
                    .map_err(|e| obtain_failed(authority, e))?;
                let (b, replayable) = body.take();
                // Only an attempt that may be sent again keeps a copy.
                let may_retry = conn.reused() && closed_retry_left && replayable;
                let may_resend_refused = conn.is_http2() && refused_retry_left && replayable;
                let mut request = Request::new(b);
                *request.method_mut() = method.clone();
                *request.uri_mut() = match &uri {
                    Some(u) => u.clone(),
                    None => to_uri()?,
                };
                // The first attempt sends the headers it was given; the
                // retry makes them again (cheaper than a copy per request
                // for a retry that almost never happens).
                let headers = headers.take().map(|mut h| {
                    forwarding.apply(&mut h);
                    h
                });
                *request.headers_mut() = match headers.or_else(again) {
                    Some(h) => h,
                    None => {
                        return Err(UpstreamError {
                            kind: Kind::Io,
                            upstream: authority.to_owned(),
                            detail: "connection failed".to_owned(),
                            source: None,
                        });
                    }
                };
                if wanted == pool::Wanted::Grpc {
                    // gRPC servers want `te: trailers` (it tells them the
                    // path passes trailers on); `TE` is hop-by-hop, so it
                    // is set anew, as SCG's `GRPCRequestHeadersFilter` does.
                    request
                        .headers_mut()
                        .insert(header::TE, HeaderValue::from_static("trailers"));
                }
                if conn.is_http2() {
                    // HTTP/2 names the host in `:authority`, from the URI
                    // (RFC 9113 8.3.1): the `Host` the request would have had.
                    let host = request.headers_mut().remove(header::HOST);
                    let host = host
                        .as_ref()
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or(authority);
                    *request.uri_mut() = absolute_uri(secure, host, &path_and_query)?;
                }
                match conn.send(request).await {
                    Ok(response) => {
                        return Ok(self.pool.response(conn, response, response_timeout));
                    }
                    Err(e) if body_over_limit(&e) => {
                        return Err(UpstreamError {
                            kind: Kind::TooLarge,
                            upstream: "client".to_owned(),
                            detail: "Request size is larger than permissible limit".to_owned(),
                            source: Some(Box::new(e)),
                        });
                    }
                    Err(e) if client_body_failed(&e) => {
                        return Err(UpstreamError::client_body(e));
                    }
                    Err(e) => {
                        if may_resend_refused && cloud_runtime::http2::refused_unprocessed(&e) {
                            refused_retry_left = false;
                            tracing::debug!(
                                upstream = authority,
                                "the upstream refused the stream; sending again"
                            );
                            continue;
                        }
                        if may_retry && connection_closed(&e) {
                            closed_retry_left = false;
                            tracing::debug!(
                                upstream = authority,
                                "pooled connection was closed; sending again"
                            );
                            continue;
                        }
                        return Err(exchange_failed(authority, e.is_parse(), e));
                    }
                }
            }
        };
        // Pinned where it is: the exchange is large, and is not moved into
        // the timer.
        let mut exchange = std::pin::pin!(exchange);
        match response_timeout.filter(|_| !head_bounded) {
            Some(t) => match self.deadlines.run(t, exchange.as_mut()).await {
                Ok(r) => r,
                Err(_) => Err(UpstreamError::timeout(authority, t)),
            },
            None => exchange.await,
        }
    }
}

/// Whether `path_and_query` is a request target `http::Uri` takes as it
/// is: a `/`, then only bytes its path and its query both allow (no
/// fragment, nothing to escape), under its length limit.
fn plain_origin_form(path_and_query: &[u8]) -> bool {
    const fn allowed(b: u8) -> bool {
        // What `http`'s path and query scans both take; `?` begins the
        // query.
        matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x5F | 0x61..=0x7E)
    }
    const ALLOWED: [bool; 256] = {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            table[b] = allowed(b as u8);
            b += 1;
        }
        table
    };
    path_and_query.first() == Some(&b'/')
        && path_and_query.len() < usize::from(u16::MAX)
        && path_and_query.iter().all(|&b| ALLOWED[usize::from(b)])
}

/// The error for an exchange with `authority` that failed after its
/// connection was had: the upstream's answer was `invalid`, or the
/// connection failed.
fn exchange_failed(
    authority: &str,
    invalid: bool,
    source: impl std::error::Error + Send + Sync + 'static,
) -> UpstreamError {
    let detail = match invalid {
        true => "invalid response from the upstream",
        false => "connection failed",
    };
    UpstreamError {
        kind: Kind::Io,
        upstream: authority.to_owned(),
        detail: detail.to_owned(),
        source: Some(Box::new(source)),
    }
}

/// The error for a request that got no connection to `authority`.
fn obtain_failed(authority: &str, e: pool::ObtainError) -> UpstreamError {
    let detail = e.to_string();
    let (kind, source): (Kind, Box<dyn std::error::Error + Send + Sync>) = match e {
        pool::ObtainError::Connect(c) => (Kind::Connect, Box::new(c)),
        e @ pool::ObtainError::Exhausted { .. } => (Kind::PoolExhausted, Box::new(e)),
    };
    UpstreamError {
        kind,
        upstream: authority.to_owned(),
        detail,
        source: Some(source),
    }
}

/// Says once per process that gRPC to an `https` upstream needs
/// `server.http2.enabled` (without it the request goes in HTTP/1.1, which
/// gRPC servers refuse).
fn warn_grpc_without_http2(authority: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            upstream = authority,
            "a gRPC request goes to an https upstream in HTTP/1.1, which gRPC servers refuse: set server.http2.enabled: true"
        );
    }
}

/// `https://host/path?query` (`http` over cleartext), for a request on an
/// HTTP/2 connection.
fn absolute_uri(
    secure: bool,
    host: &str,
    path_and_query: &Bytes,
) -> Result<http::Uri, UpstreamError> {
    let scheme = match secure {
        true => http::uri::Scheme::HTTPS,
        false => http::uri::Scheme::HTTP,
    };
    http::Uri::builder()
        .scheme(scheme)
        .authority(host)
        .path_and_query(&path_and_query[..])
        .build()
        .map_err(|e| UpstreamError {
            kind: Kind::Io,
            upstream: host.to_owned(),
            detail: format!("cannot send to {host} over HTTP/2"),
            source: Some(Box::new(e)),
        })
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Whether the request body was cut at `RequestSize`'s limit.
fn body_over_limit(e: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Whether the exchange failed because the client's request body did:
/// malformed chunked framing, or the client gone mid-upload. Its error
/// comes through the body (axum's error type), never from the upstream's
/// side of the exchange; it is the client's fault (400), not the
/// upstream's.
fn client_body_failed(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<axum::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Whether the error says the connection closed before a response came
/// (a pooled connection the upstream had just closed).
fn connection_closed(e: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message() || h.is_canceled() || h.is_closed();
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            );
        }
        source = s.source();
    }
    false
}

/// The HTTP a request with `headers` needs upstream: HTTP/1.1 for an
/// upgrade (WebSocket), HTTP/2 for gRPC (its first `Content-Type`, see
/// [`is_grpc_type`]), else either. One pass over the (few) headers costs
/// less than looking both names up.
fn wanted_by(headers: &HeaderMap) -> pool::Wanted {
    let mut content_type = None;
    for (name, value) in headers {
        if name == header::UPGRADE {
            return pool::Wanted::Http1;
        }
        if content_type.is_none() && name == header::CONTENT_TYPE {
            content_type = Some(value);
        }
    }
    match content_type {
        Some(v) if is_grpc_type(v.as_bytes()) => pool::Wanted::Grpc,
        _ => pool::Wanted::Negotiated,
    }
}

/// Whether a `Content-Type` is gRPC's: `application/grpc`, or with a
/// `+format` or parameters after it; gRPC-Web (`application/grpc-web...`)
/// is not: it is made for HTTP/1.1.
fn is_grpc_type(v: &[u8]) -> bool {
    v.len() >= 16
        && v[..16].eq_ignore_ascii_case(b"application/grpc")
        && matches!(v.get(16), None | Some(b'+' | b';' | b' '))
}

/// Headers that apply to one connection only (RFC 9110, 7.6.1), and the
/// old `Proxy-Connection`, removed whatever
/// `filter.remove-hop-by-hop.headers` says: the next hop's framing depends
/// on them. The proxy credentials are in [`HopByHop`]'s default set.
const HOP_BY_HOP_NAMES: [&str; 7] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];
const HOP_BY_HOP: [HeaderName; 7] = [
    HeaderName::from_static(HOP_BY_HOP_NAMES[0]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[1]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[2]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[3]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[4]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[5]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[6]),
];

/// `Connection`'s and `Transfer-Encoding`'s places in [`HOP_BY_HOP`].
const CONNECTION_AT: usize = 0;
const TRANSFER_ENCODING_AT: usize = 4;

/// The lengths of [`HOP_BY_HOP`]'s names (see [`length_bit`]).
const HOP_BY_HOP_LENGTHS: u64 = {
    let mut set = 0;
    let mut i = 0;
    while i < HOP_BY_HOP_NAMES.len() {
        set |= length_bit(HOP_BY_HOP_NAMES[i].as_bytes());
        i += 1;
    }
    set
};

/// A name's length as a bit of a set of lengths (63 for any longer), so
/// that a header whose length no removed name has is passed by with one
/// test: most are.
const fn length_bit(name: &[u8]) -> u64 {
    let len = name.len();
    1 << if len < 63 { len } else { 63 }
}

/// Removes hop-by-hop headers and those the `Connection` header names;
/// with `Transfer-Encoding`, also `Content-Length`: the message was framed
/// by the former, and its length is not the latter's (RFC 9112 6.3: a
/// proxy must remove it). The next hop frames the body anew.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    remove_with(headers, &[], 0);
}

/// [`remove_hop_by_hop`] and the `listed` names, whose lengths are
/// `listed_lengths`.
fn remove_with(headers: &mut HeaderMap, listed: &[HeaderName], listed_lengths: u64) {
    // One pass over the (few) headers finds what to remove (a bit per
    // name of `HOP_BY_HOP`) and reads what `Connection` names; most
    // requests have nothing, most responses only `Connection: keep-alive`.
    let lengths = HOP_BY_HOP_LENGTHS | listed_lengths;
    let mut found = 0u8;
    let mut any_listed = false;
    let mut named: Vec<HeaderName> = Vec::new();
    for (name, value) in headers.iter() {
        if lengths & length_bit(name.as_str().as_bytes()) == 0 {
            continue;
        }
        match HOP_BY_HOP.iter().position(|n| n == name) {
            Some(i) => {
                found |= 1 << i;
                if i == CONNECTION_AT {
                    named.extend(connection_names(value));
                }
            }
            None => any_listed |= listed.contains(name),
        }
    }
    if any_listed {
        for n in listed {
            headers.remove(n);
        }
    }
    if found == 0 {
        return;
    }
    for n in &named {
        headers.remove(n);
    }
    for (i, n) in HOP_BY_HOP.iter().enumerate() {
        if found & (1 << i) != 0 {
            headers.remove(n);
        }
    }
    if found & (1 << TRANSFER_ENCODING_AT) != 0 {
        headers.remove(header::CONTENT_LENGTH);
    }
}

/// Whether `name` (in any case) is one of [`HOP_BY_HOP`]'s.
pub(crate) fn is_hop_by_hop_name(name: &[u8]) -> bool {
    HOP_BY_HOP_LENGTHS & length_bit(name) != 0
        && HOP_BY_HOP_NAMES
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
}

/// The header names one `Connection` value lists; none for the usual
/// options.
fn connection_names(value: &HeaderValue) -> impl Iterator<Item = HeaderName> + '_ {
    let option =
        |n: &[u8]| n.eq_ignore_ascii_case(b"close") || n.eq_ignore_ascii_case(b"keep-alive");
    // The usual value is one option: no text to split.
    let listed = match option(value.as_bytes()) {
        true => None,
        false => value.to_str().ok(),
    };
    listed
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(move |n| !option(n.as_bytes()))
        .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
}

/// SCG's `filter.remove-hop-by-hop.headers`: headers removed from every
/// request and response besides the connection's own ([`remove_hop_by_hop`],
/// always removed). SCG's set by default: `proxy-authenticate`,
/// `proxy-authorization` and Spring Boot 1's `x-application-context`
/// (beside the connection's own, which it lists too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopByHop {
    listed: Vec<HeaderName>,
    /// The lengths of the `listed` names (see [`length_bit`]).
    lengths: u64,
}

impl HopByHop {
    /// SCG's default set.
    pub const DEFAULT: [&str; 9] = [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-authenticate",
        "x-application-context",
        "upgrade",
    ];

    /// The set of `names`; the connection's own are left to
    /// [`remove_hop_by_hop`]. The name that is not a header name is the
    /// error.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<HopByHop, &'a str> {
        let mut listed = Vec::new();
        for name in names {
            let parsed = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| name)?;
            if !HOP_BY_HOP.contains(&parsed) && !listed.contains(&parsed) {
                listed.push(parsed);
            }
        }
        Ok(HopByHop::of(listed))
    }

    fn of(listed: Vec<HeaderName>) -> HopByHop {
        let lengths = listed
            .iter()
            .fold(0, |set, n| set | length_bit(n.as_str().as_bytes()));
        HopByHop { listed, lengths }
    }

    /// Removes the connection's own headers ([`remove_hop_by_hop`]) and
    /// the listed ones from `headers`, in one pass over them.
    pub fn remove(&self, headers: &mut HeaderMap) {
        remove_with(headers, &self.listed, self.lengths);
    }
}

impl Default for HopByHop {
    /// [`HopByHop::DEFAULT`] less the connection's own.
    fn default() -> Self {
        HopByHop::of(vec![
            header::PROXY_AUTHORIZATION,
            header::PROXY_AUTHENTICATE,
            HeaderName::from_static("x-application-context"),
        ])
    }
}

/// The client connection a request came on: its peer, whether it came
/// over TLS, and the peer's forwarding values, written once per
/// connection.
#[derive(Debug)]
pub struct Peer {
    addr: SocketAddr,
    secure: bool,
    /// The address, for `X-Forwarded-For`.
    ip: HeaderValue,
    /// `"ip:port"` (`"[ip]:port"` for IPv6), for `Forwarded`'s `for=`.
    node: Box<str>,
    /// The values made for the connection's last request: its requests
    /// almost always carry the same `Host` and prefix.
    kept: std::sync::Mutex<Kept>,
}

/// The forwarding values a connection's last request made.
#[derive(Debug, Default)]
struct Kept {
    /// Those made from a `Host`.
    by_host: Option<(HeaderValue, ByHost)>,
    /// `X-Forwarded-Prefix` for a prefix.
    prefix: Option<(Box<str>, HeaderValue)>,
    /// The last request's forwarding fields, written out, when it sent
    /// none of its own.
    block: Option<Block>,
}

/// The forwarding fields a request that sent none of its own gets, and
/// what they were made from.
#[derive(Debug)]
struct Block {
    host: Option<HeaderValue>,
    port: u16,
    prefix: Option<Box<str>>,
    which: ForwardingHeaders,
    fields: Arc<Written>,
}

/// Forwarding fields made once: their values (for a map) and their lines
/// (for a head).
#[derive(Debug)]
struct Written {
    /// The values, in the order of [`FORWARDING_NAMES`].
    values: [Option<HeaderValue>; 6],
    /// `name: value\r\n` for each.
    text: Box<[u8]>,
}

impl Block {
    fn made_for(&self, client: &ClientSide<'_>, which: &ForwardingHeaders) -> bool {
        self.port == client.port
            && self.which == *which
            && self.host.as_ref() == client.host
            && self.prefix.as_deref() == client.prefix
    }
}

/// The forwarding values that follow from one `Host` on one connection.
#[derive(Debug, Clone)]
struct ByHost {
    /// `X-Forwarded-Port`.
    port: HeaderValue,
    /// This hop's `Forwarded` element; `None` when it is not text.
    forwarded: Option<HeaderValue>,
}

impl Peer {
    /// The connection from `addr`, over TLS when `secure`.
    pub fn new(addr: SocketAddr, secure: bool) -> Peer {
        let ip = addr.ip().to_string();
        let node = match addr {
            SocketAddr::V4(a) => format!("\"{a}\""),
            SocketAddr::V6(a) => format!("\"[{}]:{}\"", a.ip(), a.port()),
        };
        Peer {
            addr,
            secure,
            // An address's text is always a valid header value.
            ip: HeaderValue::from_str(&ip).unwrap_or(HeaderValue::from_static("unknown")),
            node: node.into(),
            kept: std::sync::Mutex::new(Kept::default()),
        }
    }

    /// The values for `host` (the client's `Host`), `port` and the
    /// `forwarded` element they make, and the `X-Forwarded-Prefix` for
    /// `prefix`: the last request's when they were the same, else made and
    /// kept.
    fn kept(
        &self,
        host: Option<&HeaderValue>,
        port: u16,
        forwarded: &Value<'_>,
        prefix: Option<&str>,
    ) -> (Option<ByHost>, Option<HeaderValue>) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let by_host = host.map(|host| match &kept.by_host {
            Some((kept_host, made)) if kept_host == host => made.clone(),
            _ => {
                let mut buf = String::with_capacity(64);
                let made = ByHost {
                    port: HeaderValue::from(port),
                    forwarded: match forwarded.write(&mut buf) {
                        true => HeaderValue::from_str(&buf).ok(),
                        false => None,
                    },
                };
                // A copy: the request's value shares the buffer its head
                // was read into (8 KiB or more), which a clone would keep
                // for as long as the connection lasts.
                let copy =
                    HeaderValue::from_bytes(host.as_bytes()).unwrap_or_else(|_| host.clone());
                kept.by_host = Some((copy, made.clone()));
                made
            }
        });
        let prefix = prefix.and_then(|prefix| match &kept.prefix {
            Some((kept_prefix, made)) if **kept_prefix == *prefix => Some(made.clone()),
            _ => {
                let made = HeaderValue::from_str(prefix).ok()?;
                kept.prefix = Some((prefix.into(), made.clone()));
                Some(made)
            }
        });
        (by_host, prefix)
    }

    /// The fields the connection's last request got, when this one's
    /// (which sent none of its own) are the same.
    fn kept_block(
        &self,
        client: &ClientSide<'_>,
        which: &ForwardingHeaders,
    ) -> Option<Arc<Written>> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.block
            .as_ref()
            .filter(|b| b.made_for(client, which))
            .map(|b| Arc::clone(&b.fields))
    }

    /// Keeps `made`, the fields of a request that sent none of its own,
    /// for the connection's next requests.
    fn keep_block(&self, client: &ClientSide<'_>, which: &ForwardingHeaders, made: &Forwarding) {
        let mut text = Vec::with_capacity(192);
        made.write(&mut text);
        let block = Block {
            // Copies: the request's values share the buffer its head was
            // read into (see `kept`).
            host: client
                .host
                .and_then(|h| HeaderValue::from_bytes(h.as_bytes()).ok()),
            port: client.port,
            prefix: client.prefix.map(Box::from),
            which: *which,
            fields: Arc::new(Written {
                values: made.fields.clone(),
                text: text.into(),
            }),
        };
        if block.host.as_ref() != client.host {
            return;
        }
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .block = Some(block);
    }

    /// The peer's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the connection is TLS.
    pub fn is_secure(&self) -> bool {
        self.secure
    }
}

/// The client side of the request, for the forwarding headers.
#[derive(Debug, Clone, Copy)]
pub struct ClientSide<'a> {
    /// The connection.
    pub peer: &'a Peer,
    /// The client's `Host`.
    pub host: Option<&'a HeaderValue>,
    /// The port the gateway was reached on (from `Host`, else the
    /// listener's).
    pub port: u16,
    /// The part of the path that was removed before forwarding, if any.
    pub prefix: Option<&'a str>,
}

/// Whether `peer` is one of the `trusted` proxies.
pub fn is_trusted(trusted: &[Cidr], peer: IpAddr) -> bool {
    trusted.iter().any(|c| c.contains(peer))
}

const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// Whether one forwarding header is written, and whether a trusted
/// proxy's value of it is extended (`*-enabled`, `*-append`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// Written at all; when not, a trusted proxy's value passes and
    /// anyone else's is removed.
    pub enabled: bool,
    /// A trusted proxy's value is extended (`a, b`) rather than replaced.
    pub append: bool,
}

impl Switch {
    const ON: Switch = Switch {
        enabled: true,
        append: true,
    };
}

/// SCG's `x-forwarded.*` and `forwarded.enabled`: which forwarding headers
/// the gateway writes. All on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardingHeaders {
    /// `X-Forwarded-For`.
    pub for_: Switch,
    /// `X-Forwarded-Proto`.
    pub proto: Switch,
    /// `X-Forwarded-Host`.
    pub host: Switch,
    /// `X-Forwarded-Port`.
    pub port: Switch,
    /// `X-Forwarded-Prefix`.
    pub prefix: Switch,
    /// `Forwarded` (always extended from a trusted proxy).
    pub forwarded: bool,
}

impl Default for ForwardingHeaders {
    fn default() -> Self {
        ForwardingHeaders {
            for_: Switch::ON,
            proto: Switch::ON,
            host: Switch::ON,
            port: Switch::ON,
            prefix: Switch::ON,
            forwarded: true,
        }
    }
}

/// Sets `X-Forwarded-For/Proto/Host/Port/Prefix` and `Forwarded` as
/// `which` says: a trusted peer's values are kept and extended (or
/// replaced, for a header that does not append); anyone else's are
/// replaced, or removed for a header that is off.
pub fn set_forwarding_headers(
    headers: &mut HeaderMap,
    client: &ClientSide<'_>,
    trusted: bool,
    which: &ForwardingHeaders,
) {
    forwarding_headers(headers, client, trusted, which).apply(headers);
}

/// [`set_forwarding_headers`] with the values this hop writes kept out of
/// the map: `headers` is left with the ones that pass (a trusted peer's
/// value of a header that is off) and the returned [`Forwarding`] holds
/// the rest, to be written after the map's fields.
pub fn forwarding_headers(
    headers: &mut HeaderMap,
    client: &ClientSide<'_>,
    trusted: bool,
    which: &ForwardingHeaders,
) -> Forwarding {
    // Most clients send none of these: one look at the names then spares a
    // lookup (and a removal) per header, and the fields are the same as
    // the connection's last request's when its `Host` and prefix are.
    let sent = headers.keys().any(is_forwarding_name);
    if !sent && let Some(kept) = client.peer.kept_block(client, which) {
        return Forwarding {
            fields: Default::default(),
            kept: Some(kept),
        };
    }
    let host = client.host.and_then(|h| h.to_str().ok());
    let (proto, proto_value) = if client.peer.secure {
        ("https", HeaderValue::from_static("https"))
    } else {
        ("http", HeaderValue::from_static("http"))
    };
    let element = Value::Forwarded {
        proto,
        host,
        node: &client.peer.node,
    };
    // The values made from `Host` and the prefix are the connection's last
    // ones when they are the same.
    let (by_host, prefix) = client
        .peer
        .kept(client.host, client.port, &element, client.prefix);
    let mut made = Forwarding::default();
    // One buffer for every value that has to be written, allocated by the
    // first (most requests have every value ready).
    let mut buf = String::new();
    let mut put = |at: usize, switch: Switch, value: Option<Value<'_>>| {
        let value = value.filter(|_| switch.enabled);
        let existing = match sent && trusted && switch.append {
            true => headers
                .get(&FORWARDING_NAMES[at])
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty()),
            false => None,
        };
        match forwarding_value(&mut buf, existing, trusted, value) {
            Step::Keep => return,
            Step::Set(v) => made.fields[at] = Some(v),
            Step::Remove => {}
        }
        if sent {
            headers.remove(&FORWARDING_NAMES[at]);
        }
    };
    put(AT_FOR, which.for_, Some(Value::Ready(&client.peer.ip)));
    put(AT_PROTO, which.proto, Some(Value::Ready(&proto_value)));
    put(AT_HOST, which.host, client.host.map(Value::Ready));
    let port = match &by_host {
        Some(b) => b.port.clone(),
        None => HeaderValue::from(client.port),
    };
    put(AT_PORT, which.port, Some(Value::Ready(&port)));
    let prefix = match &prefix {
        Some(made) => Some(Value::Ready(made)),
        None => client.prefix.map(Value::Text),
    };
    put(AT_PREFIX, which.prefix, prefix);
    let forwarded = Switch {
        enabled: which.forwarded,
        append: true,
    };
    // The made value's text is the element's, for a trusted peer's to
    // be extended with.
    let value = match by_host.as_ref().and_then(|b| b.forwarded.as_ref()) {
        Some(made) => Value::Ready(made),
        None => element,
    };
    put(AT_FORWARDED, forwarded, Some(value));
    if !sent {
        client.peer.keep_block(client, which, &made);
    }
    made
}

/// Where each forwarding header is in [`FORWARDING_NAMES`] and
/// [`Forwarding`].
const AT_FOR: usize = 0;
const AT_PROTO: usize = 1;
const AT_HOST: usize = 2;
const AT_PORT: usize = 3;
const AT_PREFIX: usize = 4;
const AT_FORWARDED: usize = 5;

/// The headers [`forwarding_headers`] writes, in the order it writes them.
static FORWARDING_NAMES: [HeaderName; 6] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_PORT,
    X_FORWARDED_PREFIX,
    FORWARDED,
];

/// Whether `name` is one of [`FORWARDING_NAMES`].
fn is_forwarding_name(name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    match name.len() {
        9 => name == b"forwarded",
        15..=18 => {
            name.starts_with(b"x-forwarded-")
                && FORWARDING_NAMES
                    .iter()
                    .any(|n| n.as_str().as_bytes() == name)
        }
        _ => false,
    }
}

/// The forwarding headers one hop writes, kept out of the request's map
/// (which holds none of them): the inline exchange writes them after the
/// map's fields ([`Forwarding::write`]), anything else puts them in the
/// map ([`Forwarding::apply`]). Writing them straight into the head spares
/// six insertions into the map per request, and a connection's requests
/// that carry the same `Host` share the fields made once.
#[derive(Debug, Default)]
pub struct Forwarding {
    /// The values, in the order of [`FORWARDING_NAMES`].
    fields: [Option<HeaderValue>; 6],
    /// Or the connection's kept ones.
    kept: Option<Arc<Written>>,
}

impl Forwarding {
    /// Moves the fields into `headers` (leaving none here).
    pub fn apply(&mut self, headers: &mut HeaderMap) {
        for (name, value) in FORWARDING_NAMES.iter().zip(&mut self.fields) {
            if let Some(v) = value.take() {
                headers.insert(name.clone(), v);
            }
        }
        let Some(kept) = self.kept.take() else { return };
        for (name, value) in FORWARDING_NAMES.iter().zip(&kept.values) {
            if let Some(v) = value {
                headers.insert(name.clone(), v.clone());
            }
        }
    }

    /// Appends the fields as a head's lines, `name: value\r\n` each.
    pub fn write(&self, out: &mut Vec<u8>) {
        if let Some(kept) = &self.kept {
            out.extend_from_slice(&kept.text);
            return;
        }
        for (name, value) in FORWARDING_NAMES.iter().zip(&self.fields) {
            if let Some(v) = value {
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(v.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// What one forwarding header becomes.
#[derive(Debug)]
enum Step {
    /// The request's own value (if any) passes.
    Keep,
    /// The request's own value (if any) is removed and none is written.
    Remove,
    /// The request's own value (if any) is replaced by this one.
    Set(HeaderValue),
}

/// A forwarding header's value for this hop.
enum Value<'a> {
    /// A ready header value.
    Ready(&'a HeaderValue),
    /// Text to copy.
    Text(&'a str),
    /// The `Forwarded` element for one hop (RFC 7239).
    Forwarded {
        proto: &'a str,
        host: Option<&'a str>,
        node: &'a str,
    },
}

impl Value<'_> {
    /// Appends the value to `buf`; false when it is not text.
    fn write(&self, buf: &mut String) -> bool {
        match self {
            Value::Ready(v) => match v.to_str() {
                Ok(text) => buf.push_str(text),
                Err(_) => return false,
            },
            Value::Text(t) => buf.push_str(t),
            Value::Forwarded { proto, host, node } => {
                buf.push_str("proto=");
                buf.push_str(proto);
                if let Some(h) = host {
                    buf.push_str(";host=");
                    push_token_or_quoted(buf, h);
                }
                buf.push_str(";for=");
                buf.push_str(node);
            }
        }
        true
    }
}

/// Appends `value` as an RFC 7239 parameter value: as it is when it is a
/// token (a host without a port, which SCG writes bare too), else as a
/// quoted string with `"` and `\` escaped.
fn push_token_or_quoted(buf: &mut String, value: &str) {
    // RFC 9110 `tchar`.
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !value.is_empty() && value.bytes().all(tchar) {
        buf.push_str(value);
        return;
    }
    buf.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            buf.push('\\');
        }
        buf.push(c);
    }
    buf.push('"');
}

/// One forwarding header's step: `value` appended to a trusted peer's
/// `existing` one (given only when it is to be extended), else replacing
/// any other; without a value, an untrusted peer's is removed.
fn forwarding_value(
    buf: &mut String,
    existing: Option<&str>,
    trusted: bool,
    value: Option<Value<'_>>,
) -> Step {
    let Some(value) = value else {
        return match trusted {
            true => Step::Keep,
            false => Step::Remove,
        };
    };
    if existing.is_none()
        && let Value::Ready(v) = value
    {
        return Step::Set(v.clone());
    }
    buf.clear();
    buf.reserve(96);
    if let Some(existing) = existing {
        buf.push_str(existing);
        buf.push_str(", ");
    }
    let written = value.write(buf);
    match HeaderValue::from_str(buf) {
        Ok(v) if written => Step::Set(v),
        _ => Step::Remove,
    }
}

/// The prefix removed from `original` to give `forwarded` (SCG's
/// `X-Forwarded-Prefix`), when `forwarded` is a proper suffix.
/// As SCG compares them, the paths are compared decoded: a prefix
/// removed from `/a%20b/users` is `/a b`.
pub fn removed_prefix<'a>(original: &'a str, forwarded: &str) -> Option<Cow<'a, str>> {
    if !original.contains('%') && !forwarded.contains('%') {
        return removed_prefix_of(original, forwarded).map(Cow::Borrowed);
    }
    let (original, forwarded) = (percent_decode(original), percent_decode(forwarded));
    removed_prefix_of(&original, &forwarded).map(|p| Cow::Owned(p.to_owned()))
}

fn removed_prefix_of<'a>(original: &'a str, forwarded: &str) -> Option<&'a str> {
    if forwarded == "/" && original != "/" {
        return Some(original.trim_end_matches('/')).filter(|p| !p.is_empty());
    }
    original
        .strip_suffix(forwarded)
        .filter(|p| !p.is_empty() && !p.ends_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("connection", "keep-alive, x-secret"),
            ("connection", "close"),
            ("te", "gzip"),
            ("keep-alive", "5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-connection", "keep-alive"),
            ("connection", "Close"),
            ("connection", "X-Other ,KEEP-ALIVE"),
            ("x-other", "2"),
            ("accept", "*/*"),
        ] {
            h.append(n, HeaderValue::from_static(v));
        }
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
        assert_eq!(HOP_BY_HOP[CONNECTION_AT], header::CONNECTION);
        assert_eq!(HOP_BY_HOP[TRANSFER_ENCODING_AT], header::TRANSFER_ENCODING);
    }

    #[test]
    fn the_listed_hop_by_hop_set_is_scgs_by_default_and_never_less_than_the_connections_own() {
        let message = || {
            let mut h = HeaderMap::new();
            for (n, v) in [
                ("proxy-authorization", "Basic eA=="),
                ("proxy-authenticate", "Basic"),
                ("x-application-context", "app:8080"),
                ("x-internal", "1"),
                ("accept", "*/*"),
            ] {
                h.append(n, HeaderValue::from_static(v));
            }
            h
        };
        let names = |h: &HeaderMap| -> Vec<String> {
            let mut names: Vec<String> = h.keys().map(|k| k.to_string()).collect();
            names.sort();
            names
        };

        let mut h = message();
        HopByHop::default().remove(&mut h);
        assert_eq!(names(&h), ["accept", "x-internal"]);
        assert_eq!(HopByHop::new(HopByHop::DEFAULT), Ok(HopByHop::default()));

        // A set of one's own replaces SCG's; the connection's own headers
        // are still removed by `remove_hop_by_hop`.
        let mine = HopByHop::new(["X-Internal", "connection", "upgrade"]).expect("names");
        let mut h = message();
        h.insert("connection", HeaderValue::from_static("close"));
        mine.remove(&mut h);
        assert_eq!(
            names(&h),
            [
                "accept",
                "proxy-authenticate",
                "proxy-authorization",
                "x-application-context"
            ]
        );
        assert_eq!(HopByHop::new(["x-ok", "not a name"]), Err("not a name"));

        // Names past 63 bytes share one length bit, and are still told
        // apart.
        let long = format!("x-{}", "a".repeat(70));
        let other = format!("x-{}", "b".repeat(80));
        let set = HopByHop::new([long.as_str()]).expect("a name");
        let mut h = message();
        h.insert(
            HeaderName::from_bytes(long.as_bytes()).expect("name"),
            HeaderValue::from_static("1"),
        );
        h.insert(
            HeaderName::from_bytes(other.as_bytes()).expect("name"),
            HeaderValue::from_static("2"),
        );
        set.remove(&mut h);
        assert!(
            !h.contains_key(long.as_str()) && h.contains_key(other.as_str()),
            "{h:?}"
        );
        assert_eq!(h.len(), 6);
    }

    #[test]
    fn a_plain_origin_form_is_what_http_takes_as_it_is() {
        // Whatever is called plain is a URI whose path and query are the
        // bytes themselves, for every byte in the path and in the query.
        let mut plain = 0;
        for b in 0..=255u8 {
            let target = [&b"/a"[..], &[b], b"?q=", &[b]].concat();
            if plain_origin_form(&target) {
                plain += 1;
                let uri = http::Uri::from_maybe_shared(Bytes::from(target.clone()))
                    .unwrap_or_else(|e| panic!("{target:?}: {e}"));
                assert_eq!(
                    uri.path_and_query().map(|p| p.as_str().as_bytes()),
                    Some(&target[..])
                );
            }
        }
        // The visible ASCII bytes (`!` to `~`) but `"`, `#`, `<`, `>` and
        // `` ` ``.
        assert_eq!(plain, 94 - 5);
        for yes in [
            "/",
            "/api/hello",
            "/a/{id}?x=1&y=%20&z=[1]",
            "/a?b=c?d",
            "//x",
        ] {
            assert!(plain_origin_form(yes.as_bytes()), "{yes}");
        }
        let long = format!("/{}", "a".repeat(usize::from(u16::MAX)));
        for no in [
            "",
            "a",
            "*",
            "?a",
            "/a#f",
            "/a b",
            "/é",
            "/a\"b",
            "/a?`",
            long.as_str(),
        ] {
            assert!(!plain_origin_form(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn grpc_is_told_by_its_content_type_and_grpc_web_is_not_grpc() {
        let with = |ct: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("x-before", HeaderValue::from_static("1"));
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            h.append(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
            wanted_by(&h) == pool::Wanted::Grpc
        };
        assert!(with("application/grpc"));
        assert!(with("application/grpc+proto"));
        assert!(with("Application/GRPC;charset=utf-8"));
        assert!(!with("application/grpc-web"));
        assert!(!with("application/grpc-web-text+proto"));
        assert!(!with("application/grpcx"));
        assert!(!with("application/json"));
        assert_eq!(wanted_by(&HeaderMap::new()), pool::Wanted::Negotiated);
        // The second `Content-Type` is not the one read, as `get` reads
        // the first.
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.append(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        assert_eq!(wanted_by(&h), pool::Wanted::Negotiated);
        // An upgrade wants HTTP/1.1, whatever its body's type and wherever
        // its `Upgrade`.
        for at_end in [false, true] {
            let mut h = HeaderMap::new();
            if !at_end {
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            }
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert("x-after", HeaderValue::from_static("1"));
            if at_end {
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            }
            assert_eq!(wanted_by(&h), pool::Wanted::Http1);
        }
    }

    #[test]
    fn transfer_encoding_takes_a_content_length_with_it() {
        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("100"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        remove_hop_by_hop(&mut h);
        assert!(h.is_empty(), "{h:?}");

        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("100"));
        h.insert("connection", HeaderValue::from_static("close"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h["content-length"], "100", "kept without Transfer-Encoding");
    }

    #[test]
    fn forwarding_headers_are_replaced_unless_the_peer_is_trusted() {
        let host = HeaderValue::from_static("gw.example:8080");
        let peer = Peer::new("10.1.1.1:5000".parse().expect("addr"), false);
        let client = ClientSide {
            peer: &peer,
            host: Some(&host),
            port: 8080,
            prefix: Some("/api"),
        };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        set_forwarding_headers(&mut h, &client, false, &ForwardingHeaders::default());
        assert_eq!(h["x-forwarded-for"], "10.1.1.1");
        assert_eq!(h["x-forwarded-host"], "gw.example:8080");
        assert_eq!(h["x-forwarded-port"], "8080");
        assert_eq!(h["x-forwarded-prefix"], "/api");
        assert_eq!(
            h["forwarded"],
            "proto=http;host=\"gw.example:8080\";for=\"10.1.1.1:5000\""
        );
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        set_forwarding_headers(&mut h, &client, true, &ForwardingHeaders::default());
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.1.1.1");
        let peer = Peer::new("[::1]:443".parse().expect("addr"), true);
        let client = ClientSide {
            peer: &peer,
            host: None,
            port: 443,
            prefix: None,
        };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-prefix", HeaderValue::from_static("/evil"));
        set_forwarding_headers(&mut h, &client, false, &ForwardingHeaders::default());
        assert_eq!(h["x-forwarded-for"], "::1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-port"], "443");
        assert!(!h.contains_key("x-forwarded-host"));
        assert!(!h.contains_key("x-forwarded-prefix"));
        assert_eq!(h["forwarded"], "proto=https;for=\"[::1]:443\"");
    }

    #[test]
    fn the_values_written_stay_out_of_the_map_and_the_clients_copies_leave_it() {
        let host = HeaderValue::from_static("gw");
        let peer = Peer::new("10.1.1.1:5000".parse().expect("addr"), false);
        let client = ClientSide {
            peer: &peer,
            host: Some(&host),
            port: 80,
            prefix: None,
        };
        let fields = |f: &Forwarding| {
            let mut out = Vec::new();
            f.write(&mut out);
            let text = String::from_utf8(out).expect("text");
            assert!(text.is_empty() || text.ends_with("\r\n"));
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        };
        let sent = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, host.clone());
            for (n, v) in pairs {
                h.append(*n, HeaderValue::from_static(v));
            }
            h
        };
        // An untrusted client's copies are removed, whatever their case or
        // number; the values made are not in the map.
        let mut h = sent(&[
            ("X-Forwarded-For", "6.6.6.6"),
            ("x-forwarded-for", "7.7.7.7"),
            ("x-forwarded-prefix", "/evil"),
            ("forwarded", "for=evil"),
            ("x-forwarded-other", "stays"),
        ]);
        let made = forwarding_headers(&mut h, &client, false, &ForwardingHeaders::default());
        let left: Vec<_> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["host", "x-forwarded-other"]);
        assert_eq!(
            fields(&made),
            [
                "x-forwarded-for: 10.1.1.1",
                "x-forwarded-proto: http",
                "x-forwarded-host: gw",
                "x-forwarded-port: 80",
                "forwarded: proto=http;host=gw;for=\"10.1.1.1:5000\"",
            ]
        );
        // A trusted proxy's values are extended out of the map, and the one
        // of a header that is off passes in it.
        let which = ForwardingHeaders {
            port: Switch {
                enabled: false,
                append: true,
            },
            ..ForwardingHeaders::default()
        };
        let mut h = sent(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-port", "8443")]);
        let mut made = forwarding_headers(&mut h, &client, true, &which);
        let left: Vec<_> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["host", "x-forwarded-port"]);
        assert_eq!(fields(&made)[0], "x-forwarded-for: 1.2.3.4, 10.1.1.1");
        // Applied, they are in the map and no longer in `made`.
        made.apply(&mut h);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.1.1.1");
        assert_eq!(h["x-forwarded-port"], "8443");
        assert_eq!(h.len(), 6);
        assert!(fields(&made).is_empty());
        // A client that sends none leaves the map as it was.
        let mut h = sent(&[("accept", "*/*")]);
        let all = ForwardingHeaders::default();
        let made = forwarding_headers(&mut h, &client, false, &all);
        assert_eq!(h.len(), 2);
        let first = fields(&made);
        assert_eq!(first.len(), 5);
        // The connection's next such request gets the same text, kept; and
        // applied, it makes the same fields as the values would.
        let mut again = forwarding_headers(&mut h, &client, true, &all);
        assert!(again.kept.is_some());
        assert_eq!(fields(&again), first);
        again.apply(&mut h);
        assert_eq!(h.len(), 7);
        assert_eq!(h["x-forwarded-for"], "10.1.1.1");
        assert_eq!(h["forwarded"], "proto=http;host=gw;for=\"10.1.1.1:5000\"");
        assert!(fields(&again).is_empty());
        // Another prefix, `Host` or switch is made anew, and a
        // client that sends its own is never given the kept text.
        let other_host = HeaderValue::from_static("other");
        let variants = [
            ClientSide {
                prefix: Some("/api"),
                ..client
            },
            ClientSide {
                host: Some(&other_host),
                ..client
            },
        ];
        for other in &variants {
            let made = forwarding_headers(&mut sent(&[]), other, false, &all);
            assert_ne!(fields(&made), first);
            let back = forwarding_headers(&mut sent(&[]), &client, false, &all);
            assert_eq!(fields(&back), first);
        }
        let no_prefix_no_port = ForwardingHeaders {
            port: Switch {
                enabled: false,
                append: true,
            },
            ..all
        };
        let made = forwarding_headers(&mut sent(&[]), &client, false, &no_prefix_no_port);
        assert_eq!(fields(&made).len(), 4);
        let mut h = sent(&[("x-forwarded-for", "6.6.6.6")]);
        let made = forwarding_headers(&mut h, &client, false, &all);
        assert!(made.kept.is_none());
        assert_eq!(fields(&made), first);
    }

    #[test]
    fn a_connection_whose_prefix_changes_gets_each_prefix() {
        let peer = Peer::new("10.1.1.1:5000".parse().expect("addr"), false);
        let host = HeaderValue::from_static("gw");
        let prefixed = |prefix: Option<&str>, trusted_value: Option<&'static str>| {
            let client = ClientSide {
                peer: &peer,
                host: Some(&host),
                port: 80,
                prefix,
            };
            let mut h = HeaderMap::new();
            if let Some(v) = trusted_value {
                h.insert("x-forwarded-prefix", HeaderValue::from_static(v));
            }
            let which = ForwardingHeaders::default();
            set_forwarding_headers(&mut h, &client, trusted_value.is_some(), &which);
            h.get("x-forwarded-prefix").cloned()
        };
        for _ in 0..2 {
            assert_eq!(
                prefixed(Some("/api"), None),
                Some(HeaderValue::from_static("/api"))
            );
            assert_eq!(
                prefixed(Some("/v2"), None),
                Some(HeaderValue::from_static("/v2"))
            );
            assert_eq!(prefixed(None, None), None);
        }
        // A trusted proxy's prefix is extended with the kept one.
        assert_eq!(
            prefixed(Some("/v2"), Some("/outer")),
            Some(HeaderValue::from_static("/outer, /v2"))
        );
    }

    #[test]
    fn a_connection_whose_host_changes_gets_the_values_of_each_host() {
        // The values made from `Host` are kept per connection; a request
        // with another `Host` must not get the last one's.
        let peer = Peer::new("10.1.1.1:5000".parse().expect("addr"), false);
        let forwarded = |host: &'static str, port: u16, trusted_value: Option<&'static str>| {
            let host = HeaderValue::from_static(host);
            let client = ClientSide {
                peer: &peer,
                host: Some(&host),
                port,
                prefix: None,
            };
            let mut h = HeaderMap::new();
            if let Some(v) = trusted_value {
                h.insert("forwarded", HeaderValue::from_static(v));
            }
            set_forwarding_headers(
                &mut h,
                &client,
                trusted_value.is_some(),
                &ForwardingHeaders::default(),
            );
            (h["forwarded"].clone(), h["x-forwarded-port"].clone())
        };
        for _ in 0..2 {
            assert_eq!(
                forwarded("a.example:8080", 8080, None),
                (
                    "proto=http;host=\"a.example:8080\";for=\"10.1.1.1:5000\""
                        .parse()
                        .expect("v"),
                    "8080".parse().expect("v")
                )
            );
            assert_eq!(
                forwarded("b.example", 80, None),
                (
                    "proto=http;host=b.example;for=\"10.1.1.1:5000\""
                        .parse()
                        .expect("v"),
                    "80".parse().expect("v")
                )
            );
        }
        // A trusted proxy's element is extended with this hop's.
        assert_eq!(
            forwarded("b.example", 80, Some("for=1.2.3.4")).0,
            "for=1.2.3.4, proto=http;host=b.example;for=\"10.1.1.1:5000\""
        );
    }

    #[test]
    fn a_header_turned_off_is_not_written_and_one_that_does_not_append_replaces() {
        let host = HeaderValue::from_static("gw.example");
        let peer = Peer::new("10.1.1.1:5000".parse().expect("addr"), false);
        let client = ClientSide {
            peer: &peer,
            host: Some(&host),
            port: 80,
            prefix: Some("/api"),
        };
        let off = Switch {
            enabled: false,
            append: true,
        };
        let which = ForwardingHeaders {
            prefix: off,
            host: Switch {
                enabled: true,
                append: false,
            },
            forwarded: false,
            ..ForwardingHeaders::default()
        };
        let sent = || {
            let mut h = HeaderMap::new();
            for (n, v) in [
                ("x-forwarded-prefix", "/edge"),
                ("x-forwarded-host", "edge.example"),
                ("x-forwarded-proto", "https"),
                ("forwarded", "for=1.2.3.4"),
            ] {
                h.insert(n, HeaderValue::from_static(v));
            }
            h
        };
        // From a trusted proxy: what is off passes, host is replaced, the
        // rest extended.
        let mut h = sent();
        set_forwarding_headers(&mut h, &client, true, &which);
        assert_eq!(h["x-forwarded-prefix"], "/edge");
        assert_eq!(h["x-forwarded-host"], "gw.example");
        assert_eq!(h["x-forwarded-proto"], "https, http");
        assert_eq!(h["forwarded"], "for=1.2.3.4");
        // From anyone else: what is off is removed, the rest replaced.
        let mut h = sent();
        set_forwarding_headers(&mut h, &client, false, &which);
        assert!(!h.contains_key("x-forwarded-prefix"), "{h:?}");
        assert!(!h.contains_key("forwarded"), "{h:?}");
        assert_eq!(h["x-forwarded-host"], "gw.example");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-for"], "10.1.1.1");
    }

    #[test]
    fn a_forwarded_host_is_a_token_when_it_can_be_and_quoted_otherwise() {
        let written = |value: &str| {
            let mut buf = String::new();
            push_token_or_quoted(&mut buf, value);
            buf
        };
        assert_eq!(written("gw.example"), "gw.example");
        assert_eq!(written("gw.example:80"), "\"gw.example:80\"");
        assert_eq!(written("[::1]"), "\"[::1]\"");
        assert_eq!(written("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(written(""), "\"\"");
    }

    #[test]
    fn removed_prefix_is_the_stripped_part() {
        assert_eq!(
            removed_prefix("/api/users/1", "/users/1").as_deref(),
            Some("/api")
        );
        assert_eq!(removed_prefix("/api", "/").as_deref(), Some("/api"));
        assert_eq!(removed_prefix("/users", "/users").as_deref(), None);
        assert_eq!(removed_prefix("/a/users", "/b/users").as_deref(), None);
        assert_eq!(
            removed_prefix("/a%20b/users", "/users").as_deref(),
            Some("/a b")
        );
        assert_eq!(
            removed_prefix("/s/p/a%2Fb", "/a/b").as_deref(),
            Some("/s/p")
        );
    }
}
