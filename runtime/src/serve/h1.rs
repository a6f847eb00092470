//! Our own HTTP/1.1 for the plain requests of a connection, for services
//! that ask for it ([`super::RequestService::OWN_HTTP1`]): the request head
//! is read, the service called and the response written in the
//! connection's own task, without hyper's dispatcher.
//!
//! A request is *plain* when it is HTTP/1.1, has no body (no
//! `Transfer-Encoding`, no `Content-Length` other than `0`), asks for no
//! upgrade (no `Upgrade`, not `CONNECT`) and sends no `Expect`. The first
//! request that is not plain hands the connection, with every byte read
//! so far, to hyper for the rest of its life ([`Served::HandOver`]). So
//! request bodies, `100-continue`, WebSocket and HTTP/1.0 keep hyper's
//! handling, and a head that is not whole or not valid is judged by the
//! same check as a connection's first head ([`first_head`]): refused with
//! Spring's JSON body, or handed to hyper.
//!
//! Requests are built as hyper's server builds them: the method, the
//! target as a [`Uri`] sharing the head's bytes, HTTP/1.1, and the header
//! fields in order with lower-case names and values sharing the head's
//! bytes. Responses are written as hyper's server writes them (its
//! `Server::encode`): the status line with the canonical reason, the
//! header fields in the map's order with lower-case names, the framing
//! hyper would choose (`Content-Length` from the body's exact size,
//! otherwise chunked; none for `HEAD`, `204` and `304`), `connection:
//! close` when the connection will close, and a `date` once a second.
//! Trailer fields are written only to a request that said `TE: trailers`
//! and only those the response's `Trailer` field names, as hyper does. A
//! response head that cannot be written (a `1xx` status, a
//! `Content-Length` that is not a number) is answered with an empty `500`
//! and the connection closed, where hyper closes without an answer.
//!
//! As in hyper, a client that closes its connection while its request is
//! being answered cancels the answer; bytes of a pipelined next request
//! are kept. Keep-alive, the idle watch and graceful shutdown are the
//! caller's ([`super::Connection::drive`]): the loop ends between requests
//! once [`Own::graceful_shutdown`] was called.
//!
//! [`first_head`]: super::first_head

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Body as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tower::ServiceExt as _;

use super::first_head::{self, Check, MAX_URI_LEN, is_chunked};
use super::idle::Activity;

/// Header fields parsed on the stack; more (when allowed) on the heap.
const STACK_HEADERS: usize = 100;
/// Header fields a request's map has room for beyond the client's, so
/// that the fields a proxy adds (its `Host`, and its forwarding fields
/// when they go into the map) do not make it grow.
const ROOM: usize = 8;
/// A body frame up to this size is copied after the head into one write.
const COPY_LIMIT: usize = 16 * 1024;
/// The first read of a connection's next head.
const READ_SIZE: usize = 8 * 1024;

/// How the loop ended.
#[derive(Debug)]
pub(super) enum Served<I> {
    /// The connection is done: closed by either side, or refused.
    Closed,
    /// A request that is not plain: hyper serves the connection from these
    /// bytes on.
    HandOver(I, Bytes),
}

/// The limits a head is checked against (hyper's, as the server gives
/// them).
#[derive(Debug, Clone, Copy)]
pub(super) struct HeadLimits {
    pub(super) max_bytes: usize,
    pub(super) max_headers: usize,
}

/// The loop as a connection [`super::Connection::drive`] can shut down
/// gracefully.
pub(super) struct Own<F> {
    future: Pin<Box<F>>,
    closing: Arc<AtomicBool>,
}

impl<F> Own<F> {
    /// `future` is [`serve`]'s, given `closing`.
    pub(super) fn new(future: F, closing: Arc<AtomicBool>) -> Own<F> {
        Own {
            future: Box::pin(future),
            closing,
        }
    }
}

impl<F: Future> Future for Own<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<F: Future> super::GracefulConnection for Own<F> {
    fn graceful_shutdown(self: Pin<&mut Self>) {
        self.closing.store(true, Ordering::Relaxed);
    }
}

/// Serves the plain requests of `io`, whose bytes read so far are `buf`,
/// with `service`, until the connection closes or a request that is not
/// plain comes (see the [module docs](self)). `closing` ends it between
/// requests; every response then says `connection: close`.
pub(super) async fn serve<I, S>(
    mut io: I,
    mut buf: BytesMut,
    service: S,
    limits: HeadLimits,
    activity: Arc<Activity>,
    closing: Arc<AtomicBool>,
) -> std::io::Result<Served<I>>
where
    I: AsyncRead + AsyncWrite + Unpin,
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let mut fields = Vec::new();
    let mut out = Vec::with_capacity(1024);
    loop {
        let head = loop {
            if !buf.is_empty() {
                match parse(&buf, limits, &mut fields) {
                    Parse::Plain(head) => break head,
                    Parse::Partial => {}
                    Parse::Other => return Ok(judge(io, buf, limits).await),
                }
            }
            if buf.capacity() - buf.len() < READ_SIZE / 2 {
                buf.reserve(READ_SIZE);
            }
            let read = poll_fn(|cx| {
                // A head not yet whole is no request being answered.
                if closing.load(Ordering::Relaxed) {
                    return Poll::Ready(Ok(0));
                }
                tokio_util::io::poll_read_buf(Pin::new(&mut io), cx, &mut buf)
            })
            .await?;
            if read == 0 {
                return Ok(Served::Closed);
            }
        };
        let bytes = buf.split_to(head.len).freeze();
        let Some(request) = head.request(&bytes, &fields) else {
            // Valid for httparse, not for `http`: the check says why.
            let mut all = BytesMut::from(&bytes[..]);
            all.extend_from_slice(&buf);
            return Ok(judge(io, all, limits).await);
        };
        let method = request.method().clone();
        let answering = activity.request();
        let answer = service.clone().oneshot(request);
        let Some(response) = answer_or_eof(answer, &mut io, &mut buf).await? else {
            tracing::debug!("the client closed its connection before its answer");
            return Ok(Served::Closed);
        };
        let Ok(response) = response;
        drop(answering);
        let to = Client {
            method: &method,
            keep_alive: head.keep_alive && !closing.load(Ordering::Relaxed),
            trailers: head.trailers,
        };
        if !write_response(&mut io, &mut out, response, to).await? {
            io.shutdown().await?;
            return Ok(Served::Closed);
        }
    }
}

/// A head the fast parse did not take: refused as a first head would be,
/// or handed to hyper.
async fn judge<I>(mut io: I, buf: BytesMut, limits: HeadLimits) -> Served<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    match first_head::check(&buf, limits.max_bytes, limits.max_headers) {
        Check::Refused(status, reason) => {
            first_head::refuse(&mut io, status, &reason).await;
            Served::Closed
        }
        Check::BrokenPreface => Served::Closed,
        Check::Whole | Check::Partial => Served::HandOver(io, buf.freeze()),
    }
}

/// Awaits `answer` while watching the connection for the client's close,
/// as hyper does for a request being answered. Bytes that come meanwhile
/// (a pipelined request) are kept in `buf`. `None` when the client closed.
async fn answer_or_eof<F, I>(
    answer: F,
    io: &mut I,
    buf: &mut BytesMut,
) -> std::io::Result<Option<F::Output>>
where
    F: Future,
    I: AsyncRead + Unpin,
{
    let mut answer = std::pin::pin!(answer);
    let mut watching = buf.is_empty();
    poll_fn(|cx| {
        if let Poll::Ready(answered) = answer.as_mut().poll(cx) {
            return Poll::Ready(Ok(Some(answered)));
        }
        if watching {
            if buf.capacity() == buf.len() {
                buf.reserve(READ_SIZE);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, buf) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Ok(None)),
                Poll::Ready(Ok(_)) => watching = false,
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

/// What the fast parse made of the bytes read.
enum Parse {
    /// A whole plain head.
    Plain(Head),
    /// Not a whole head yet (and under the size limit).
    Partial,
    /// Anything else: for [`judge`].
    Other,
}

/// A plain request head: where its parts are in the bytes read.
struct Head {
    /// Its length, with the empty line.
    len: usize,
    method: Range<usize>,
    target: Range<usize>,
    /// HTTP/1.1 without `Connection: close`.
    keep_alive: bool,
    /// `TE: trailers`: the client takes trailer fields.
    trailers: bool,
}

/// A header field's name and value in the bytes read.
#[derive(Debug, Clone)]
struct Field {
    name: Range<usize>,
    value: Range<usize>,
}

fn parse(buf: &[u8], limits: HeadLimits, fields: &mut Vec<Field>) -> Parse {
    let mut stack = [MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
    let mut heap;
    let headers = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers.max(1)]
    } else {
        heap = vec![MaybeUninit::<httparse::Header<'_>>::uninit(); limits.max_headers];
        &mut heap[..]
    };
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(len)) if len <= limits.max_bytes => len,
        Ok(httparse::Status::Partial) if buf.len() < limits.max_bytes => return Parse::Partial,
        _ => return Parse::Other,
    };
    let (Some(method), Some(target), Some(1)) = (request.method, request.path, request.version)
    else {
        return Parse::Other;
    };
    if method == "CONNECT" || target.len() > MAX_URI_LEN {
        return Parse::Other;
    }
    let at = |part: &[u8]| {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        start..start + part.len()
    };
    let mut keep_alive = true;
    let mut trailers = false;
    fields.clear();
    for h in request.headers.iter() {
        let name = h.name.as_bytes();
        let plain = match name.len() {
            2 => {
                if name.eq_ignore_ascii_case(b"te") && has_token(h.value, b"trailers") {
                    trailers = true;
                }
                true
            }
            6 => !name.eq_ignore_ascii_case(b"expect"),
            7 => !name.eq_ignore_ascii_case(b"upgrade"),
            10 => {
                if name.eq_ignore_ascii_case(b"connection") && has_token(h.value, b"close") {
                    keep_alive = false;
                }
                true
            }
            14 => !name.eq_ignore_ascii_case(b"content-length") || h.value.trim_ascii() == b"0",
            17 => !name.eq_ignore_ascii_case(b"transfer-encoding"),
            _ => true,
        };
        if !plain {
            return Parse::Other;
        }
        fields.push(Field {
            name: at(name),
            value: at(h.value),
        });
    }
    Parse::Plain(Head {
        len,
        method: at(method.as_bytes()),
        target: at(target.as_bytes()),
        keep_alive,
        trailers,
    })
}

/// Whether a comma-separated list has `token` (any case).
fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

impl Head {
    /// The request, sharing `bytes` (the head); `None` when the method,
    /// the target or a field is not valid for `http`.
    fn request(&self, bytes: &Bytes, fields: &[Field]) -> Option<Request<Body>> {
        let method = Method::from_bytes(&bytes[self.method.clone()]).ok()?;
        let uri = Uri::from_maybe_shared(bytes.slice(self.target.clone())).ok()?;
        let mut headers = HeaderMap::with_capacity(fields.len() + ROOM);
        for f in fields {
            let name = HeaderName::from_bytes(&bytes[f.name.clone()]).ok()?;
            let value = HeaderValue::from_maybe_shared(bytes.slice(f.value.clone())).ok()?;
            headers.append(name, value);
        }
        let mut request = Request::new(Body::empty());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Some(request)
    }
}

/// How a response body is framed on the wire.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    /// This many bytes (`0`: no body is written).
    Length(u64),
    /// Chunked, with the trailer fields the response's `Trailer` names.
    Chunked(Option<Vec<HeaderName>>),
    /// Until the connection closes.
    Close,
}

/// A response head as hyper writes it.
#[derive(Debug)]
struct Encoded {
    framing: Framing,
    /// The connection closes after this response.
    last: bool,
}

/// Why a response head cannot be written (hyper's user header error).
#[derive(Debug)]
struct BadHead(&'static str);

/// What the response is written for.
#[derive(Debug, Clone, Copy)]
struct Client<'a> {
    /// The request's method.
    method: &'a Method,
    /// The connection may stay open after the response.
    keep_alive: bool,
    /// The request said `TE: trailers`.
    trailers: bool,
}

/// Writes `response` to a plain request; whether the connection stays
/// open.
async fn write_response<I>(
    io: &mut I,
    out: &mut Vec<u8>,
    response: Response<Body>,
    to: Client<'_>,
) -> std::io::Result<bool>
where
    I: AsyncWrite + Unpin,
{
    let (mut parts, mut body) = response.into_parts();
    let length = if body.is_end_stream() {
        None
    } else {
        Some(body.size_hint().exact())
    };
    if !to.keep_alive {
        let close = parts.headers.get_all(header::CONNECTION);
        if !close.iter().any(|v| has_token(v.as_bytes(), b"close")) {
            parts
                .headers
                .append(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    out.clear();
    let mut encoded = match encode(&parts, to.method, length, !to.keep_alive, out) {
        Ok(e) => e,
        Err(BadHead(why)) => {
            // hyper answers this with an empty 500 and closes.
            tracing::warn!(reason = why, "a response head that cannot be written");
            out.clear();
            out.extend_from_slice(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n",
            );
            write_date(out);
            out.extend_from_slice(b"\r\n");
            io.write_all(out).await?;
            return Ok(false);
        }
    };
    if let (Framing::Chunked(allowed), false) = (&mut encoded.framing, to.trailers) {
        // hyper sends trailer fields only to a client that asked for them.
        *allowed = None;
    }
    let whole = match &encoded.framing {
        Framing::Length(0) => true,
        framing => write_body(io, out, &mut body, framing).await?,
    };
    flush(io, out).await?;
    Ok(whole && !encoded.last && encoded.framing != Framing::Close)
}

/// Writes the body's frames after the head in `out`; whether the body
/// came whole (an error or a length that does not match closes the
/// connection).
async fn write_body<I>(
    io: &mut I,
    out: &mut Vec<u8>,
    body: &mut Body,
    framing: &Framing,
) -> std::io::Result<bool>
where
    I: AsyncWrite + Unpin,
{
    let mut remaining = match framing {
        Framing::Length(n) => *n,
        _ => u64::MAX,
    };
    loop {
        // Frames that are ready go into the same write as the head; the
        // bytes wait in `out` only until the body would wait.
        let frame = poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Pending if !out.is_empty() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
            Poll::Ready(frame) => Poll::Ready(Some(frame)),
        })
        .await;
        let frame = match frame {
            None => {
                flush(io, out).await?;
                continue;
            }
            Some(None) => break,
            Some(Some(Ok(frame))) => frame,
            Some(Some(Err(e))) => {
                tracing::debug!(error = %e, "the response body failed; closing the connection");
                flush(io, out).await?;
                return Ok(false);
            }
        };
        let frame = match frame.into_data() {
            Ok(data) if data.is_empty() => continue,
            Ok(data) => data,
            Err(frame) => {
                if let (Framing::Chunked(Some(allowed)), Ok(trailers)) =
                    (framing, frame.into_trailers())
                {
                    out.extend_from_slice(b"0\r\n");
                    for (name, value) in &trailers {
                        if allowed.contains(name) && trailer_allowed(name) {
                            field(out, name.as_str(), value.as_bytes());
                        }
                    }
                    out.extend_from_slice(b"\r\n");
                    return Ok(true);
                }
                continue;
            }
        };
        match framing {
            Framing::Length(_) => {
                let len = frame.len() as u64;
                if len > remaining {
                    tracing::debug!("the response body is longer than its content-length");
                    let fits = usize::try_from(remaining).unwrap_or(usize::MAX);
                    put(io, out, &frame[..fits], b"").await?;
                    return Ok(false);
                }
                remaining -= len;
                put(io, out, &frame, b"").await?;
            }
            Framing::Chunked(_) => {
                push_number(out, frame.len() as u64, 16);
                out.extend_from_slice(b"\r\n");
                put(io, out, &frame, b"\r\n").await?;
            }
            Framing::Close => put(io, out, &frame, b"").await?,
        }
    }
    match framing {
        Framing::Length(_) if remaining != 0 => {
            tracing::debug!("the response body ended before its content-length");
            Ok(false)
        }
        Framing::Chunked(_) => {
            out.extend_from_slice(b"0\r\n\r\n");
            Ok(true)
        }
        _ => Ok(true),
    }
}

/// hyper's trailer fields that may not be sent (RFC 9110 6.5.1).
fn trailer_allowed(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::AUTHORIZATION
            | header::CACHE_CONTROL
            | header::CONTENT_ENCODING
            | header::CONTENT_LENGTH
            | header::CONTENT_RANGE
            | header::CONTENT_TYPE
            | header::HOST
            | header::MAX_FORWARDS
            | header::SET_COOKIE
            | header::TE
            | header::TRAILER
            | header::TRANSFER_ENCODING
    )
}

/// Appends `data` and then `tail` to `out`, writing them out at once when
/// `data` is large.
async fn put<I>(io: &mut I, out: &mut Vec<u8>, data: &[u8], tail: &[u8]) -> std::io::Result<()>
where
    I: AsyncWrite + Unpin,
{
    if out.len() + data.len() <= COPY_LIMIT {
        out.extend_from_slice(data);
        out.extend_from_slice(tail);
        return Ok(());
    }
    let mut parts = [&out[..], data];
    while parts.iter().any(|p| !p.is_empty()) {
        let slices = [IoSlice::new(parts[0]), IoSlice::new(parts[1])];
        let n = io.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let first = n.min(parts[0].len());
        parts[0] = &parts[0][first..];
        parts[1] = &parts[1][n - first..];
    }
    out.clear();
    out.extend_from_slice(tail);
    Ok(())
}

async fn flush<I>(io: &mut I, out: &mut Vec<u8>) -> std::io::Result<()>
where
    I: AsyncWrite + Unpin,
{
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    io.flush().await
}

/// Whether a response to `method` with `status` may have a body (hyper's
/// `can_chunked`; requests here are never `CONNECT`).
fn can_have_body(method: &Method, status: StatusCode) -> bool {
    *method != Method::HEAD
        && !status.is_informational()
        && !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
}

/// Whether a response with `status` may say `Content-Length`.
fn can_have_length(status: StatusCode) -> bool {
    !status.is_informational()
        && !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
}

/// Writes the head of a response to a request with `method` into `out`,
/// as hyper's server does. `length` is the body's: `None` when it has
/// ended, else its exact size if known. `last`: the connection closes
/// after it.
fn encode(
    parts: &http::response::Parts,
    method: &Method,
    length: Option<Option<u64>>,
    mut last: bool,
    out: &mut Vec<u8>,
) -> Result<Encoded, BadHead> {
    let status = parts.status;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        last = true;
    } else if status.is_informational() {
        return Err(BadHead("a 1xx status cannot be a response"));
    }
    let http_10 = parts.version == Version::HTTP_10;
    if !http_10 && status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(if http_10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let chunkable = !http_10 && can_have_body(method, status);
    let mut framing = None;
    let mut trailers: Option<Vec<HeaderName>> = None;
    let mut wrote_date = false;
    // A field whose values are joined on one line, and whether its line is
    // still open.
    let mut open: Option<&HeaderName> = None;
    let mut add_chunked = false;
    let mut seen_length: Option<u64> = None;
    for (name, value) in &parts.headers {
        if open.is_some_and(|o| o != name) {
            close_line(out, &mut add_chunked);
            open = None;
        }
        match *name {
            header::CONTENT_LENGTH => {
                if framing.is_some() && open.is_none() {
                    return Err(BadHead("content-length after the framing was written"));
                }
                match length {
                    Some(Some(n)) => {
                        if open.is_none() {
                            framing = Some(Framing::Length(n));
                            out.extend_from_slice(b"content-length: ");
                            out.extend_from_slice(value.as_bytes());
                            open = Some(name);
                        }
                        continue;
                    }
                    Some(None) => {
                        let Some(n) = digits(value.as_bytes()) else {
                            return Err(BadHead("content-length is not a number"));
                        };
                        match seen_length {
                            Some(seen) if seen != n => {
                                return Err(BadHead("content-length given twice, differently"));
                            }
                            Some(_) => {}
                            None => {
                                framing = Some(Framing::Length(n));
                                out.extend_from_slice(b"content-length: ");
                                out.extend_from_slice(value.as_bytes());
                                open = Some(name);
                                seen_length = Some(n);
                            }
                        }
                        continue;
                    }
                    None if *method != Method::HEAD => continue,
                    None => {
                        framing = Some(Framing::Length(0));
                    }
                }
            }
            header::TRANSFER_ENCODING => {
                if framing.is_some() && open.is_none() {
                    return Err(BadHead("transfer-encoding after the framing was written"));
                }
                if !chunkable {
                    continue;
                }
                framing = Some(Framing::Chunked(None));
                add_chunked = !is_chunked(value.as_bytes());
                join(out, &mut open, name, "transfer-encoding: ", value);
                continue;
            }
            header::CONNECTION => {
                if !last && has_token(value.as_bytes(), b"close") {
                    last = true;
                }
                join(out, &mut open, name, "connection: ", value);
                continue;
            }
            header::DATE => wrote_date = true,
            header::TRAILER => {
                if !chunkable {
                    continue;
                }
                join(out, &mut open, name, "trailer: ", value);
                if let Ok(list) = value.to_str() {
                    trailers.get_or_insert_with(Vec::new).extend(
                        list.split(',')
                            .filter_map(|s| HeaderName::from_bytes(s.trim().as_bytes()).ok()),
                    );
                }
                continue;
            }
            _ => {}
        }
        field(out, name.as_str(), value.as_bytes());
    }
    if open.is_some() {
        close_line(out, &mut add_chunked);
    }
    let mut framing = match framing {
        Some(f) => f,
        None => match length {
            Some(None) if chunkable => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Framing::Chunked(None)
            }
            Some(None) => Framing::Close,
            None | Some(Some(0)) => {
                if can_have_length(status) && *method != Method::HEAD {
                    out.extend_from_slice(b"content-length: 0\r\n");
                }
                Framing::Length(0)
            }
            Some(Some(n)) if can_have_length(status) => {
                out.extend_from_slice(b"content-length: ");
                push_number(out, n, 10);
                out.extend_from_slice(b"\r\n");
                Framing::Length(n)
            }
            Some(Some(_)) => Framing::Length(0),
        },
    };
    if !can_have_body(method, status) {
        framing = Framing::Length(0);
    }
    if let (Framing::Chunked(allowed), Some(names)) = (&mut framing, trailers) {
        *allowed = Some(names);
    }
    if !wrote_date {
        out.extend_from_slice(b"date: ");
        write_date(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if framing == Framing::Close {
        last = true;
    }
    Ok(Encoded { framing, last })
}

/// Starts a joined line for `name` (`prefix` is its name and colon), or
/// adds `value` to the open one.
fn join<'a>(
    out: &mut Vec<u8>,
    open: &mut Option<&'a HeaderName>,
    name: &'a HeaderName,
    prefix: &str,
    value: &HeaderValue,
) {
    if open.is_none() {
        out.extend_from_slice(prefix.as_bytes());
        *open = Some(name);
    } else {
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(value.as_bytes());
}

fn close_line(out: &mut Vec<u8>, add_chunked: &mut bool) {
    if std::mem::take(add_chunked) {
        out.extend_from_slice(b", chunked\r\n");
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A `Content-Length` of digits only (hyper's `from_digits`).
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}

/// Appends `n` in `radix` (10 or 16, lower-case digits).
fn push_number(out: &mut Vec<u8>, mut n: u64, radix: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[(n % radix) as usize];
        n /= radix;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends the current time as an HTTP date, formatted once a second per
/// thread.
fn write_date(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != second {
            *date = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(date.1.as_bytes());
    });
}

#[cfg(test)]
mod tests;
