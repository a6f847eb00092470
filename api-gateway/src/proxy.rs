//! Forwarding one request to an upstream: the connection pool, hop-by-hop
//! headers, the forwarding headers (`X-Forwarded-*`, `Forwarded`), the
//! connect and response timeouts, and the one transparent retry of an
//! idempotent request whose pooled connection turned out to be closed.
//!
//! Upstreams are spoken to over HTTP/1.1, `http` and `https` (rustls,
//! trust from `httpclient.ssl.*`, see [`crate::tls::client_config`]), on
//! connections pooled per scheme and `host:port` (see `proxy/pool.rs`), at
//! most `httpclient.pool.max-idle-per-host` idle ones, each closed after
//! `httpclient.pool.max-idle-time` (30 s by default, below the 60 s
//! keep-alive most upstreams use, so the gateway closes first and rarely
//! writes into a connection the upstream is closing).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Body as _;

use crate::filter::retry::FailureKind;
use crate::predicate::cidr::Cidr;

mod pool;

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
    NoInstance,
    Unsupported,
    ClientBody,
    TooLarge,
}

impl UpstreamError {
    /// No UP instance of service `name`.
    pub fn no_instance(name: &str) -> UpstreamError {
        UpstreamError {
            kind: Kind::NoInstance,
            upstream: format!("lb://{name}"),
            detail: format!("Unable to find instance for {name}"),
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
        self.kind == Kind::NoInstance
    }

    /// The status the client gets: 503 without an instance, 504 on a
    /// timeout, 502 otherwise.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            Kind::NoInstance => StatusCode::SERVICE_UNAVAILABLE,
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
            Kind::Timeout => Some(FailureKind::Timeout),
            Kind::NoInstance | Kind::Unsupported | Kind::ClientBody | Kind::TooLarge => None,
        }
    }

    /// SCG's (Java) exception type for this failure, for `FallbackHeaders`.
    pub fn java_type(&self) -> &'static str {
        match self.kind {
            Kind::Connect => "java.net.ConnectException",
            Kind::Io => "java.io.IOException",
            Kind::Timeout => "java.util.concurrent.TimeoutException",
            Kind::NoInstance => "org.springframework.cloud.gateway.support.NotFoundException",
            Kind::Unsupported => "java.lang.UnsupportedOperationException",
            Kind::ClientBody => "org.springframework.web.server.ServerWebInputException",
            Kind::TooLarge => "org.springframework.web.server.PayloadTooLargeException",
        }
    }
}

/// The upstream connection pools (see [`pool`]).
#[derive(Debug)]
pub struct Upstreams {
    pool: pool::Pool,
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
    /// Pools with `idle_timeout` and at most `max_idle_per_host` idle
    /// connections per upstream (and I/O worker); `https` upstreams are
    /// reached with `tls`.
    pub fn new(
        idle_timeout: Duration,
        max_idle_per_host: usize,
        tls: rustls::ClientConfig,
    ) -> Upstreams {
        Upstreams {
            pool: pool::Pool::new(idle_timeout, max_idle_per_host, tls),
        }
    }

    /// Sends one request to `authority` (over TLS when `secure`) and waits
    /// for the response head at most `response_timeout`. An idempotent
    /// request with an empty or kept body is sent once more, on a new
    /// connection, when the pooled connection it went out on was closed
    /// under it.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        authority: &str,
        secure: bool,
        method: &Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: &mut AttemptBody,
        connect_timeout: Duration,
        response_timeout: Option<Duration>,
    ) -> Result<Response<Body>, UpstreamError> {
        let exchange = async {
            let uri = http::Uri::try_from(path_and_query).map_err(|e| UpstreamError {
                kind: Kind::Io,
                upstream: authority.to_owned(),
                detail: format!("cannot send the path {path_and_query}"),
                source: Some(Box::new(e)),
            })?;
            let mut closed_retry_left = is_idempotent(method);
            loop {
                let mut conn = match self.pool.checkout(secure, authority).await {
                    Some(c) => c,
                    None => self
                        .pool
                        .connect(secure, authority, connect_timeout)
                        .await
                        .map_err(|e| UpstreamError {
                            kind: Kind::Connect,
                            upstream: authority.to_owned(),
                            detail: e.to_string(),
                            source: Some(Box::new(e)),
                        })?,
                };
                let (b, replayable) = body.take();
                // Only an attempt that may be sent again keeps a copy.
                let may_retry = conn.reused() && closed_retry_left && replayable;
                let mut request = Request::new(b);
                *request.method_mut() = method.clone();
                *request.uri_mut() = uri.clone();
                *request.headers_mut() = if may_retry {
                    headers.clone()
                } else {
                    std::mem::take(&mut headers)
                };
                match conn.send(request).await {
                    Ok(response) => return Ok(self.pool.response(conn, response)),
                    Err(e) if body_over_limit(&e) => {
                        return Err(UpstreamError {
                            kind: Kind::TooLarge,
                            upstream: "client".to_owned(),
                            detail: "Request size is larger than permissible limit".to_owned(),
                            source: Some(Box::new(e)),
                        });
                    }
                    Err(e) => {
                        if may_retry && connection_closed(&e) {
                            closed_retry_left = false;
                            tracing::debug!(
                                upstream = authority,
                                "pooled connection was closed; sending again"
                            );
                            continue;
                        }
                        return Err(UpstreamError {
                            kind: Kind::Io,
                            upstream: authority.to_owned(),
                            detail: "connection failed".to_owned(),
                            source: Some(Box::new(e)),
                        });
                    }
                }
            }
        };
        match response_timeout {
            Some(t) => match tokio::time::timeout(t, exchange).await {
                Ok(r) => r,
                Err(_) => Err(UpstreamError::timeout(authority, t)),
            },
            None => exchange.await,
        }
    }
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

/// Headers that apply to one connection only (RFC 9110, 7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes hop-by-hop headers and those the `Connection` header names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the (few) headers finds whether there is anything to
    // remove; most requests and responses have nothing.
    let hop = |n: &HeaderName| HOP_BY_HOP.contains(n) || n == PROXY_CONNECTION;
    if !headers.keys().any(hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(n);
    }
    headers.remove(PROXY_CONNECTION);
}

/// The client side of the request, for the forwarding headers.
#[derive(Debug, Clone, Copy)]
pub struct ClientSide<'a> {
    /// The peer.
    pub peer: SocketAddr,
    /// The client's `Host`.
    pub host: Option<&'a HeaderValue>,
    /// The port the gateway was reached on (from `Host`, else the
    /// listener's).
    pub port: u16,
    /// The part of the path that was removed before forwarding, if any.
    pub prefix: Option<&'a str>,
    /// Whether the client came over TLS (`X-Forwarded-Proto: https`).
    pub secure: bool,
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

/// Sets `X-Forwarded-For/Proto/Host/Port/Prefix` and `Forwarded`: a
/// trusted peer's values are kept and extended; anyone else's are
/// replaced.
pub fn set_forwarding_headers(headers: &mut HeaderMap, client: &ClientSide<'_>, trusted: bool) {
    use std::fmt::Display;
    let host = client.host.and_then(|h| h.to_str().ok());
    let proto = if client.secure { "https" } else { "http" };
    let ip = client.peer.ip();
    let forwarded = Forwarded {
        proto,
        host,
        peer: client.peer,
    };
    // One buffer for every value.
    let mut buf = String::with_capacity(96);
    let mut put = |name: HeaderName, value: Option<&dyn Display>| {
        put_forwarding(headers, &mut buf, name, trusted, value);
    };
    put(X_FORWARDED_FOR, Some(&ip));
    put(X_FORWARDED_PROTO, Some(&proto));
    put(X_FORWARDED_HOST, host.as_ref().map(|h| h as &dyn Display));
    put(X_FORWARDED_PORT, Some(&client.port));
    put(
        X_FORWARDED_PREFIX,
        client.prefix.as_ref().map(|p| p as &dyn Display),
    );
    put(FORWARDED, Some(&forwarded));
}

/// The `Forwarded` element for one hop (RFC 7239).
struct Forwarded<'a> {
    proto: &'a str,
    host: Option<&'a str>,
    peer: SocketAddr,
}

impl std::fmt::Display for Forwarded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proto={}", self.proto)?;
        if let Some(h) = self.host {
            write!(f, ";host=\"{h}\"")?;
        }
        match self.peer {
            SocketAddr::V4(a) => write!(f, ";for=\"{a}\""),
            SocketAddr::V6(a) => write!(f, ";for=\"[{}]:{}\"", a.ip(), a.port()),
        }
    }
}

/// Sets `name` to `value`: appended to a `trusted` peer's own value,
/// replacing anyone else's; without a value, an untrusted peer's is
/// removed.
fn put_forwarding(
    headers: &mut HeaderMap,
    buf: &mut String,
    name: HeaderName,
    trusted: bool,
    value: Option<&dyn std::fmt::Display>,
) {
    use std::fmt::Write as _;
    let Some(value) = value else {
        if !trusted {
            headers.remove(&name);
        }
        return;
    };
    buf.clear();
    if trusted
        && let Some(existing) = headers.get(&name).and_then(|v| v.to_str().ok())
        && !existing.is_empty()
    {
        buf.push_str(existing);
        buf.push_str(", ");
    }
    let _ = write!(buf, "{value}");
    match HeaderValue::from_str(buf) {
        Ok(v) => {
            headers.insert(name, v);
        }
        Err(_) => {
            headers.remove(&name);
        }
    }
}

/// The prefix removed from `original` to give `forwarded` (SCG's
/// `X-Forwarded-Prefix`), when `forwarded` is a proper suffix.
pub fn removed_prefix<'a>(original: &'a str, forwarded: &str) -> Option<&'a str> {
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
            ("keep-alive", "5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("accept", "*/*"),
        ] {
            h.append(n, HeaderValue::from_static(v));
        }
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn forwarding_headers_are_replaced_unless_the_peer_is_trusted() {
        let host = HeaderValue::from_static("gw.example:8080");
        let client = ClientSide {
            peer: "10.1.1.1:5000".parse().expect("addr"),
            host: Some(&host),
            port: 8080,
            prefix: Some("/api"),
            secure: false,
        };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        set_forwarding_headers(&mut h, &client, false);
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
        set_forwarding_headers(&mut h, &client, true);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.1.1.1");
    }

    #[test]
    fn removed_prefix_is_the_stripped_part() {
        assert_eq!(removed_prefix("/api/users/1", "/users/1"), Some("/api"));
        assert_eq!(removed_prefix("/api", "/"), Some("/api"));
        assert_eq!(removed_prefix("/users", "/users"), None);
        assert_eq!(removed_prefix("/a/users", "/b/users"), None);
    }
}
