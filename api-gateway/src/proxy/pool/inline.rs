//! HTTP/1.1 to a cleartext upstream, run in the request's own task.
//!
//! hyper's client gives each connection a task of its own and hands each
//! request to it through a channel: two tasks, and the wake-ups between
//! them, per exchange. The common request (no body, no upgrade, a plain
//! `http` upstream, the `ELASTIC` pool, no forward proxy) is instead
//! written and answered in the task that serves the client, as nginx does
//! it (docs/benchmarks.md, "Twelfth pass" and "Twenty-fourth pass").
//! Everything else stays on hyper's client ([`super::handshake`]).
//!
//! The request goes out as hyper's client would write it: the method, the
//! path and query, `HTTP/1.1`, each header in lower case, no
//! `Transfer-Encoding` (there is no body). The response is read as hyper's
//! client reads it (RFC 9112 6.3):
//! - 1xx answers other than 101 are skipped (a 101 to a request that asked
//!   for no upgrade is an invalid response);
//! - answers to `HEAD`, and 204 and 304, have no body;
//! - a `Transfer-Encoding` ending in `chunked` is chunked (trailers come
//!   through as a trailers frame); any other is read to the close, and is
//!   invalid in HTTP/1.0;
//! - else `Content-Length`, every copy and list item the same number;
//! - else the body runs to the close.
//!
//! The connection's own fields (`Connection`, `Keep-Alive`,
//! `Transfer-Encoding` with `Content-Length`, ...) are left out of the
//! response's map, as the gateway would remove them; when `Connection`
//! names other fields, all stay for the gateway to remove together.
//!
//! At most [`MAX_HEADERS`] headers and [`MAX_HEAD`] bytes of head, as
//! hyper's defaults.
//!
//! A connection goes back to the pool when its response has been read to
//! its end, if the response lets it stay open (HTTP/1.1 without
//! `Connection: close`, HTTP/1.0 with `keep-alive`, not delimited by the
//! close) and the upstream sent nothing after it. A body read whole with
//! its head (the usual small answer) frees its connection at once.
//!
//! An idle connection has no task. The pool's reaper closes it after the
//! idle timeout ([`super::reap`]), and a checkout that finds it readable
//! (the upstream closed it, or sent bytes no request asked for) drops it
//! and takes the next ([`InlineConn::fit`]): tokio's readiness flag says
//! so without a system call while the socket is quiet.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use cloud_runtime::shard::CacheLine;
use cloud_runtime::stall::StallTimer;

use super::{BodyError, Home, Pool};
use crate::proxy::{self, Forwarding};

/// At most this many headers in a response head (hyper's default).
const MAX_HEADERS: usize = 100;
/// At most this many bytes of response head (hyper's client buffer limit).
const MAX_HEAD: usize = 8192 + 4096 * 100;
/// Room made for a read, at first; doubled after each read that filled
/// it (a large body), up to [`MAX_READ_SIZE`].
const READ_SIZE: usize = 8192;
/// Header fields a response's map has room for beyond the upstream's.
const RESPONSE_ROOM: usize = 8;
const MAX_READ_SIZE: usize = 256 * 1024;
/// At most this long a chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4096;
/// At most this many bytes of trailers.
const MAX_TRAILERS: usize = 64 * 1024;

/// One HTTP/1.1 connection to a cleartext upstream, driven by the request
/// that holds it.
#[derive(Debug)]
pub(crate) struct InlineConn {
    io: TcpStream,
    /// Bytes read and not yet parsed; empty between exchanges.
    read: BytesMut,
    /// The request head being written (its room kept between requests).
    write: Vec<u8>,
    /// The room the next read makes when the buffer is nearly full.
    read_size: usize,
    /// The shard of the thread that opened it.
    pub(super) home: Arc<CacheLine<Home>>,
    pub(super) authority: Box<str>,
    /// Whether it served a request before this one.
    pub(super) reused: bool,
    /// When it was opened (for `max-life-time`).
    pub(super) opened: Instant,
    /// When it went idle last.
    pub(super) idle_since: Instant,
}

/// Why an exchange on an [`InlineConn`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The connection closed or was reset before a whole response head
    /// came: on a pooled connection, the upstream closing an idle one.
    #[error("the upstream closed the connection before its response")]
    Closed(#[source] Option<std::io::Error>),
    /// Reading or writing failed otherwise.
    #[error("the upstream connection failed")]
    Io(#[source] std::io::Error),
    /// The connection closed in the middle of a response body.
    #[error("the upstream closed the connection in the middle of its response body")]
    Incomplete,
    /// The upstream's bytes are not an HTTP/1.1 response.
    #[error("invalid response from the upstream: {0}")]
    Invalid(&'static str),
}

impl ExchangeError {
    /// Whether the connection closed before the response head (a request
    /// that may go again on a new connection).
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, ExchangeError::Closed(_))
    }

    /// Whether the upstream sent something that is not HTTP/1.1.
    pub(crate) fn is_invalid(&self) -> bool {
        matches!(self, ExchangeError::Invalid(_))
    }

    /// A read or write failure: `Closed` when the peer reset or closed the
    /// connection, before a response head.
    fn of_io(e: std::io::Error) -> ExchangeError {
        match e.kind() {
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted => ExchangeError::Closed(Some(e)),
            _ => ExchangeError::Io(e),
        }
    }
}

impl InlineConn {
    /// A new connection on `io`, owned by the shard `home`.
    pub(super) fn new(io: TcpStream, home: Arc<CacheLine<Home>>, authority: &str) -> InlineConn {
        let now = Instant::now();
        InlineConn {
            io,
            read: BytesMut::with_capacity(READ_SIZE),
            write: Vec::new(),
            read_size: READ_SIZE,
            home,
            authority: authority.into(),
            reused: false,
            opened: now,
            idle_since: now,
        }
    }

    /// Whether it served a request before this one.
    pub(crate) fn reused(&self) -> bool {
        self.reused
    }

    /// Whether the idle connection may take a request: nothing to read on
    /// it (a close, or bytes no request asked for, would be). A quiet
    /// socket's readiness flag is clear, which costs no system call to
    /// see; a set one is confirmed with a read that finds nothing.
    pub(super) fn fit(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Sends a request without a body and waits for the response head; the
    /// response's body reads the rest, and gives the connection back to
    /// the pool at its end. The body fails when the upstream sends nothing
    /// for `read_timeout`.
    pub(crate) async fn exchange(
        mut self,
        method: &Method,
        target: &[u8],
        headers: &HeaderMap,
        forwarding: &Forwarding,
        read_timeout: Option<Duration>,
    ) -> Result<http::Response<Body>, ExchangeError> {
        self.write.clear();
        write_head(&mut self.write, method, target, headers, forwarding);
        self.io
            .write_all(&self.write)
            .await
            .map_err(ExchangeError::of_io)?;
        loop {
            if !self.read.is_empty() {
                match parse_head(&mut self.read, method)? {
                    Parsed::Head(head) => return Ok(self.respond(head, read_timeout)),
                    Parsed::Informational => continue,
                    Parsed::Partial => {}
                }
            }
            reserve(&mut self.read, READ_SIZE);
            match self.io.read_buf(&mut self.read).await {
                Ok(0) => return Err(ExchangeError::Closed(None)),
                Ok(_) => {}
                Err(e) => return Err(ExchangeError::of_io(e)),
            }
        }
    }

    /// The response for `head`, its body read from this connection.
    fn respond(mut self, head: Head, read_timeout: Option<Duration>) -> http::Response<Body> {
        let mut response = http::Response::new(Body::empty());
        *response.status_mut() = head.status;
        // The client hears the gateway's HTTP version, as with hyper's
        // client (see `Pool::response`).
        *response.version_mut() = Version::HTTP_11;
        *response.headers_mut() = head.headers;
        if let Framing::Length(n) = head.framing
            && self.read.len() as u64 >= n
        {
            // Read whole with its head: the connection is free now.
            let whole = self.read.split_to(n as usize).freeze();
            if head.keep && self.read.is_empty() {
                Pool::check_in_inline(self);
            }
            if !whole.is_empty() {
                *response.body_mut() = Body::from(whole);
            }
            return response;
        }
        *response.body_mut() = Body::new(InlineBody {
            conn: Some(self),
            framing: head.framing,
            keep: head.keep,
            stall: read_timeout.map(StallTimer::new),
        });
        response
    }

    /// Reads what the socket has into the buffer.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        reserve(&mut self.read, self.read_size);
        let room = self.read.capacity() - self.read.len();
        loop {
            if let Err(e) = std::task::ready!(self.io.poll_read_ready(cx)) {
                return Poll::Ready(Err(e));
            }
            match self.io.try_read_buf(&mut self.read) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Ok(n) => {
                    if n == room {
                        self.read_size = (self.read_size * 2).min(MAX_READ_SIZE);
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Made ready to wait idle: a buffer grown by a large body is let go
    /// (an idle connection keeps only the first read's room).
    pub(super) fn rest(&mut self) {
        if self.read.capacity() > 4 * READ_SIZE {
            self.read = BytesMut::with_capacity(READ_SIZE);
        }
        self.read_size = READ_SIZE;
    }
}

/// Room for the next read: `size` more when less than 1 KiB is left.
fn reserve(read: &mut BytesMut, size: usize) {
    if read.capacity() - read.len() < 1024 {
        read.reserve(size);
    }
}

/// `method target HTTP/1.1` (`target` in origin form: the path and
/// query), the headers (without `Transfer-Encoding`: the request has no
/// body), the forwarding headers and the blank line.
fn write_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &[u8],
    headers: &HeaderMap,
    forwarding: &Forwarding,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    forwarding.write(out);
    out.extend_from_slice(b"\r\n");
}

/// A parsed response head.
#[derive(Debug)]
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    /// Whether the connection may stay open after the body.
    keep: bool,
}

#[derive(Debug)]
enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A 1xx answer was read and dropped.
    Informational,
    Head(Head),
}

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// After this many more bytes.
    Length(u64),
    Chunked(Chunk),
    /// At the close.
    Close,
    /// It has ended.
    Done,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// At a chunk-size line.
    Size,
    /// In a chunk's data, this many bytes left.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailers, then a blank line.
    Trailers,
}

/// The response head at the front of `read`, taken off it when whole.
fn parse_head(read: &mut BytesMut, method: &Method) -> Result<Parsed, ExchangeError> {
    // Uninitialised: `[EMPTY_HEADER; MAX_HEADERS]` would write 3.2 KiB
    // on every response, most of it never read.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        read,
        &mut slots,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Complete(_)) => {
            return Err(ExchangeError::Invalid("the response head is too large"));
        }
        Ok(httparse::Status::Partial) if read.len() >= MAX_HEAD => {
            return Err(ExchangeError::Invalid("the response head is too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ExchangeError::Invalid("the response has too many headers"));
        }
        Err(_) => return Err(ExchangeError::Invalid("a malformed response head")),
    };
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(ExchangeError::Invalid("an unknown HTTP version")),
    };
    let code = response
        .code
        .ok_or(ExchangeError::Invalid("a response without a status"))?;
    let status =
        StatusCode::from_u16(code).map_err(|_| ExchangeError::Invalid("a status out of range"))?;
    match code {
        101 => {
            return Err(ExchangeError::Invalid(
                "a 101 to a request that asked for no upgrade",
            ));
        }
        100..=199 => {
            read.advance(len);
            return Ok(Parsed::Informational);
        }
        _ => {}
    }
    // Each header's name and value as offsets into the head, so that the
    // values can share the head's bytes once it is taken off the buffer.
    let base = read.as_ptr() as usize;
    // As `u32`: a head is at most `MAX_HEAD` bytes, and the array (zeroed
    // on every response) is half the size.
    const _: () = assert!(MAX_HEAD <= u32::MAX as usize);
    let mut spans = [[0u32; 4]; MAX_HEADERS];
    let count = response.headers.len();
    let mut fields = Fields::default();
    for (span, h) in spans.iter_mut().zip(response.headers.iter()) {
        *span = [
            (h.name.as_ptr() as usize - base) as u32,
            h.name.len() as u32,
            (h.value.as_ptr() as usize - base) as u32,
            h.value.len() as u32,
        ];
        fields.note(h.name.as_bytes(), h.value);
    }
    let framing = framing(code, method, version, &fields)?;
    let keep = framing != Framing::Close
        && match version {
            Version::HTTP_11 => !fields.close,
            _ => fields.keep_alive,
        };
    let head = read.split_to(len).freeze();
    // The connection's own fields never reach the client (the gateway
    // removes them, `proxy::remove_hop_by_hop`): they are left out here
    // rather than put in the map and taken out again, unless `Connection`
    // names other fields, which the gateway then removes with it. With
    // `Transfer-Encoding`, `Content-Length` goes too, as it does there.
    let leave_out = !fields.lists_others;
    let leave_length = leave_out && fields.chunked.is_some();
    // Room for the fields response filters add (`X-RateLimit-*`,
    // `SecureHeaders`'), so that the map does not grow on the way back.
    let mut headers = HeaderMap::with_capacity(count + RESPONSE_ROOM);
    for span in &spans[..count] {
        let [name_at, name_len, value_at, value_len] = span.map(|n| n as usize);
        let raw = &head[name_at..name_at + name_len];
        if leave_out
            && (proxy::is_hop_by_hop_name(raw)
                || leave_length && raw.eq_ignore_ascii_case(b"content-length"))
        {
            continue;
        }
        let name = HeaderName::from_bytes(raw)
            .map_err(|_| ExchangeError::Invalid("a malformed header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_len))
            .map_err(|_| ExchangeError::Invalid("a malformed header value"))?;
        headers.append(name, value);
    }
    Ok(Parsed::Head(Head {
        status,
        headers,
        framing,
        keep,
    }))
}

/// What the framing and the connection's fate depend on, gathered from
/// the raw header fields (cheaper than looking each up in the map).
#[derive(Debug, Default)]
struct Fields {
    /// `Content-Length`: none, one number (every copy and list item the
    /// same), or `Err` for anything else.
    length: Option<Result<u64, &'static str>>,
    /// `Transfer-Encoding`: none, or whether its last coding is `chunked`.
    chunked: Option<bool>,
    /// `Connection` lists `close`.
    close: bool,
    /// `Connection` lists `keep-alive`.
    keep_alive: bool,
    /// `Connection` lists a field name (anything but its two options).
    lists_others: bool,
}

impl Fields {
    fn note(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"content-length") {
            for item in value.split(|&b| b == b',') {
                let n = parse_length(item.trim_ascii());
                self.length = Some(match self.length {
                    None => n,
                    Some(Err(why)) => Err(why),
                    Some(Ok(seen)) => match n {
                        Ok(n) if n != seen => Err("differing Content-Length values"),
                        n => n,
                    },
                });
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The last coding of the last field.
            let last = value.rsplit(|&b| b == b',').next().unwrap_or(value);
            self.chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                let close = token.eq_ignore_ascii_case(b"close");
                let keep_alive = token.eq_ignore_ascii_case(b"keep-alive");
                self.close |= close;
                self.keep_alive |= keep_alive;
                self.lists_others |= !close && !keep_alive && !token.is_empty();
            }
        }
    }
}

/// A `Content-Length` number: digits only.
fn parse_length(digits: &[u8]) -> Result<u64, &'static str> {
    const INVALID: &str = "an invalid Content-Length";
    if digits.is_empty() {
        return Err(INVALID);
    }
    digits.iter().try_fold(0u64, |n, &b| match b {
        b'0'..=b'9' => n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(INVALID),
        _ => Err(INVALID),
    })
}

/// How the body of a `code` response to `method` ends (RFC 9112 6.3, as
/// hyper's client decides it).
fn framing(
    code: u16,
    method: &Method,
    version: Version,
    fields: &Fields,
) -> Result<Framing, ExchangeError> {
    if code == 204 || code == 304 || *method == Method::HEAD {
        return Ok(Framing::Length(0));
    }
    if let Some(chunked) = fields.chunked {
        if version == Version::HTTP_10 {
            return Err(ExchangeError::Invalid(
                "Transfer-Encoding in an HTTP/1.0 response",
            ));
        }
        return Ok(match chunked {
            true => Framing::Chunked(Chunk::Size),
            false => Framing::Close,
        });
    }
    match fields.length {
        None => Ok(Framing::Close),
        Some(Ok(n)) => Ok(Framing::Length(n)),
        Some(Err(why)) => Err(ExchangeError::Invalid(why)),
    }
}

/// A response body read from its [`InlineConn`], which goes back to the
/// pool at the body's end.
struct InlineBody {
    /// `None` once the body has ended or failed.
    conn: Option<InlineConn>,
    framing: Framing,
    /// Whether the response lets the connection stay open.
    keep: bool,
    /// The route's response timeout, applied to each wait for the body
    /// (see `PooledBody`'s).
    stall: Option<StallTimer>,
}

/// What the buffered bytes give.
enum Step {
    Frame(Frame<Bytes>),
    /// The body has ended.
    End,
    /// More bytes are needed.
    More,
}

impl InlineBody {
    /// The body has ended: its connection goes back to the pool when the
    /// response lets it and nothing follows the body.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(conn) = self.conn.take()
            && self.keep
            && conn.read.is_empty()
        {
            Pool::check_in_inline(conn);
        }
    }

    /// The next frame the buffered bytes make.
    fn step(&mut self) -> Result<Step, ExchangeError> {
        let Some(conn) = &mut self.conn else {
            return Ok(Step::End);
        };
        let read = &mut conn.read;
        loop {
            match &mut self.framing {
                Framing::Done | Framing::Length(0) => return Ok(Step::End),
                Framing::Length(left) | Framing::Chunked(Chunk::Data(left)) => {
                    if read.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = usize::try_from(*left).map_or(read.len(), |l| l.min(read.len()));
                    *left -= take as u64;
                    let data = read.split_to(take).freeze();
                    if let Framing::Chunked(c) = &mut self.framing
                        && *c == Chunk::Data(0)
                    {
                        *c = Chunk::DataEnd;
                    }
                    return Ok(Step::Frame(Frame::data(data)));
                }
                Framing::Close => {
                    if read.is_empty() {
                        return Ok(Step::More);
                    }
                    return Ok(Step::Frame(Frame::data(read.split().freeze())));
                }
                Framing::Chunked(chunk @ Chunk::Size) => {
                    let Some(end) = read.windows(2).position(|w| w == b"\r\n") else {
                        if read.len() > MAX_CHUNK_LINE {
                            return Err(ExchangeError::Invalid("a chunk-size line too long"));
                        }
                        return Ok(Step::More);
                    };
                    let size = chunk_size(&read[..end])?;
                    read.advance(end + 2);
                    *chunk = match size {
                        0 => Chunk::Trailers,
                        n => Chunk::Data(n),
                    };
                }
                Framing::Chunked(chunk @ Chunk::DataEnd) => {
                    if read.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &read[..2] != b"\r\n" {
                        return Err(ExchangeError::Invalid("a chunk not ended by CRLF"));
                    }
                    read.advance(2);
                    *chunk = Chunk::Size;
                }
                Framing::Chunked(Chunk::Trailers) => {
                    let mut slots = [httparse::EMPTY_HEADER; 64];
                    let (len, fields) = match httparse::parse_headers(read, &mut slots) {
                        Ok(httparse::Status::Complete(done)) => done,
                        Ok(httparse::Status::Partial) if read.len() > MAX_TRAILERS => {
                            return Err(ExchangeError::Invalid("trailers too large"));
                        }
                        Ok(httparse::Status::Partial) => return Ok(Step::More),
                        Err(_) => return Err(ExchangeError::Invalid("malformed trailers")),
                    };
                    let mut trailers = HeaderMap::with_capacity(fields.len());
                    for field in fields.iter() {
                        let name = HeaderName::from_bytes(field.name.as_bytes())
                            .map_err(|_| ExchangeError::Invalid("a malformed trailer name"))?;
                        let value = HeaderValue::from_bytes(field.value)
                            .map_err(|_| ExchangeError::Invalid("a malformed trailer value"))?;
                        trailers.append(name, value);
                    }
                    read.advance(len);
                    self.framing = Framing::Done;
                    if trailers.is_empty() {
                        return Ok(Step::End);
                    }
                    return Ok(Step::Frame(Frame::trailers(trailers)));
                }
            }
        }
    }
}

/// The size on a chunk-size line (hex digits, then optional extensions).
fn chunk_size(line: &[u8]) -> Result<u64, ExchangeError> {
    let invalid = ExchangeError::Invalid("an invalid chunk size");
    let digits = line.split(|&b| b == b';').next().unwrap_or(line);
    let digits = digits.trim_ascii_end();
    if digits.is_empty() || digits.len() > 16 {
        return Err(invalid);
    }
    let mut size: u64 = 0;
    for &b in digits {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(invalid),
        };
        size = (size << 4) | u64::from(d);
    }
    Ok(size)
}

impl HttpBody for InlineBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            match this.step() {
                Ok(Step::Frame(frame)) => {
                    if this.is_end_stream() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(Step::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
                Err(e) => return Poll::Ready(Some(Err(this.fail(e)))),
            }
            let Some(conn) = &mut this.conn else {
                return Poll::Ready(None);
            };
            match conn.poll_fill(cx) {
                Poll::Ready(Ok(0)) if this.framing == Framing::Close => {
                    this.keep = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Some(Err(this.fail(ExchangeError::Incomplete))));
                }
                Poll::Ready(Ok(_)) => {
                    if let Some(stall) = &mut this.stall {
                        stall.progressed();
                    }
                }
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Some(Err(this.fail(ExchangeError::Io(e)))));
                }
                Poll::Pending => {
                    let Some(stall) = &mut this.stall else {
                        return Poll::Pending;
                    };
                    if !stall.stalled(cx) {
                        return Poll::Pending;
                    }
                    tracing::warn!(
                        upstream = &*conn.authority,
                        timeout_ms = stall.limit().as_millis(),
                        "upstream stalled in the middle of a response body; closing both connections"
                    );
                    let limit = stall.limit();
                    this.conn = None;
                    this.framing = Framing::Done;
                    return Poll::Ready(Some(Err(BodyError::Stalled(limit))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Done | Framing::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl InlineBody {
    /// A broken body leaves a connection no one can trust: it closes.
    fn fail(&mut self, e: ExchangeError) -> BodyError {
        self.conn = None;
        self.framing = Framing::Done;
        BodyError::Inline(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(bytes: &[u8], method: &Method) -> Result<Parsed, ExchangeError> {
        parse_head(&mut BytesMut::from(bytes), method)
    }

    fn framing_of(bytes: &[u8], method: &Method) -> (Framing, bool) {
        match head_of(bytes, method) {
            Ok(Parsed::Head(h)) => (h.framing, h.keep),
            other => panic!("not a head: {other:?}"),
        }
    }

    #[test]
    fn the_request_head_is_what_hypers_client_writes_for_a_request_without_body() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("up:80"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.append("X-Two", HeaderValue::from_static("a"));
        headers.append("X-Two", HeaderValue::from_static("b"));
        let mut out = Vec::new();
        let target = b"/a?b=c";
        write_head(
            &mut out,
            &Method::DELETE,
            target,
            &headers,
            &Forwarding::default(),
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "DELETE /a?b=c HTTP/1.1\r\nhost: up:80\r\nx-two: a\r\nx-two: b\r\n\r\n"
        );
        // The forwarding headers kept out of the map follow its fields.
        let peer = crate::proxy::Peer::new("10.0.0.9:4000".parse().expect("addr"), false);
        let client = crate::proxy::ClientSide {
            peer: &peer,
            host: None,
            port: 80,
            prefix: None,
        };
        let which = crate::proxy::ForwardingHeaders::default();
        let forwarding = crate::proxy::forwarding_headers(&mut headers, &client, false, &which);
        out.clear();
        write_head(&mut out, &Method::GET, target, &headers, &forwarding);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "GET /a?b=c HTTP/1.1\r\nhost: up:80\r\nx-two: a\r\nx-two: b\r\n\
             x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-port: 80\r\n\
             forwarded: proto=http;for=\"10.0.0.9:4000\"\r\n\r\n"
        );
    }

    #[test]
    fn a_body_is_framed_as_rfc_9112_says() {
        let get = Method::GET;
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &get),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framing_of(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                &Method::HEAD
            ),
            (Framing::Length(0), true),
            "HEAD: no body whatever the length"
        );
        for code in ["204", "304"] {
            let head = format!("HTTP/1.1 {code} X\r\nContent-Length: 5\r\n\r\n");
            assert_eq!(framing_of(head.as_bytes(), &get).0, Framing::Length(0));
        }
        assert_eq!(
            framing_of(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 5\r\n\r\n",
                &get
            ),
            (Framing::Chunked(Chunk::Size), true),
            "chunked wins over a length"
        );
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &get),
            (Framing::Close, false)
        );
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\n\r\n", &get),
            (Framing::Close, false)
        );
        assert_eq!(
            framing_of(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n",
                &get
            ),
            (Framing::Length(3), true)
        );
        assert_eq!(
            framing_of(
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: Close\r\n\r\n",
                &get
            ),
            (Framing::Length(0), false)
        );
        assert_eq!(
            framing_of(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &get),
            (Framing::Length(0), false),
            "HTTP/1.0 closes unless it says keep-alive"
        );
        assert_eq!(
            framing_of(
                b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
                &get
            ),
            (Framing::Length(0), true)
        );
    }

    #[test]
    fn bad_heads_are_invalid_responses_not_guesses() {
        let get = Method::GET;
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        ] {
            match head_of(bad, &get) {
                Err(e) => assert!(e.is_invalid(), "{e}"),
                Ok(p) => panic!("{:?} parsed as {p:?}", String::from_utf8_lossy(bad)),
            }
        }
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(head_of(&many, &get).is_err_and(|e| e.is_invalid()));
        let endless = [b"HTTP/1.1 200 OK\r\nX: ".to_vec(), vec![b'a'; MAX_HEAD]].concat();
        assert!(head_of(&endless, &get).is_err_and(|e| e.is_invalid()));
        // Whole, but over the limit: refused too, however much one read
        // brought in; one byte less is taken.
        let fill = |n: usize| {
            let mut head = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
            head.resize(n - 4, b'a');
            head.extend_from_slice(b"\r\n\r\n");
            head
        };
        assert!(head_of(&fill(MAX_HEAD + 1), &get).is_err_and(|e| e.is_invalid()));
        assert!(head_of(&fill(MAX_HEAD), &get).is_ok_and(|p| matches!(p, Parsed::Head(_))));
    }

    #[test]
    fn informational_answers_are_skipped_and_a_partial_head_waits() {
        let mut read = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nhi"[..]);
        assert!(matches!(
            parse_head(&mut read, &Method::GET),
            Ok(Parsed::Informational)
        ));
        let Ok(Parsed::Head(head)) = parse_head(&mut read, &Method::GET) else {
            panic!("no head");
        };
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers["x-a"], "1");
        assert_eq!(&read[..], b"hi", "the body stays in the buffer");
        let text = b"HTTP/1.1 200 OK\r\nX-A";
        let mut partial = BytesMut::from(&text[..]);
        assert!(matches!(
            parse_head(&mut partial, &Method::GET),
            Ok(Parsed::Partial)
        ));
        assert_eq!(&partial[..], &text[..], "nothing taken off");
    }

    #[test]
    fn the_connections_own_fields_are_left_out_unless_connection_names_others() {
        let names = |bytes: &[u8]| match head_of(bytes, &Method::GET) {
            Ok(Parsed::Head(h)) => {
                let mut names: Vec<_> = h.headers.keys().map(|n| n.as_str().to_owned()).collect();
                names.sort();
                (names, h.framing, h.keep)
            }
            other => panic!("not a head: {other:?}"),
        };
        let (left, framing, keep) = names(
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nKEEP-ALIVE: timeout=5\r\n\
              Transfer-Encoding: chunked\r\nContent-Length: 5\r\nTrailer: x-sum\r\n\
              Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-A: 1\r\nContent-Type: text/plain\r\n\r\n",
        );
        assert_eq!(left, ["content-type", "x-a"]);
        assert_eq!((framing, keep), (Framing::Chunked(Chunk::Size), true));
        // Without `Transfer-Encoding`, `Content-Length` stays (it frames
        // the body the client gets).
        let (left, framing, _) =
            names(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(left, ["content-length"]);
        assert_eq!(framing, Framing::Length(2));
        // A `Connection` that names a field: everything stays for the
        // gateway, which removes the named field with the rest.
        let (left, _, _) = names(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\
              Keep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(
            left,
            ["connection", "content-length", "keep-alive", "x-secret"]
        );
    }

    #[test]
    fn chunk_sizes_are_hex_with_extensions_and_no_overflow() {
        assert_eq!(chunk_size(b"1a").ok(), Some(26));
        assert_eq!(chunk_size(b"FF;name=value").ok(), Some(255));
        assert_eq!(chunk_size(b"0 ").ok(), Some(0));
        for bad in [
            &b""[..],
            b";x",
            b"g",
            b"-1",
            b"0x10",
            b"1 2",
            b"10000000000000000",
        ] {
            assert!(
                chunk_size(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
