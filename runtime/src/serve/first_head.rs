//! The first request head of a connection, read and checked before hyper
//! takes the connection over, so that a malformed or oversized one gets
//! Spring's JSON error body: hyper answers such heads itself, with an
//! empty `400` or `431`.
//!
//! The checks are hyper's own, in its order (its HTTP/1 server with the
//! default parser settings): `httparse`'s parse, the size and header-count
//! limits hyper is given, the method, the request target as a URI,
//! `Transfer-Encoding` (HTTP/1.1 only, `chunked` last) and `Content-Length`
//! (digits, duplicates equal). A head that passes them is handed to hyper
//! with the bytes read so far ([`Prefixed`]), as are the HTTP/2 preface and
//! anything hyper's version detection takes. Later heads on a keep-alive
//! connection are hyper's to check.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::error_body::SpringError;

/// The HTTP/2 connection preface (RFC 9113 3.4), and the request line
/// that starts it.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const H2_PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// hyper's longest request target (`MAX_URI_LEN`); longer is `414`.
pub(super) const MAX_URI_LEN: usize = (u16::MAX - 1) as usize;

/// What became of a connection's first request head.
#[derive(Debug)]
pub(super) enum FirstHead {
    /// A head (or an HTTP/2 preface) at the start of these bytes: serve
    /// them, then the rest of the connection.
    Serve(Bytes),
    /// The client closed before a whole head, or the head was refused
    /// and answered: close.
    Done,
}

/// What the bytes read so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// A whole head that hyper will take.
    Whole,
    /// Not a whole head yet.
    Partial,
    /// A head hyper would refuse: the status and the reason.
    Refused(StatusCode, String),
    /// A broken HTTP/2 preface: a connection error (RFC 9113 3.4), closed
    /// without an answer.
    BrokenPreface,
}

/// Reads from `io` until its first request head is whole, then either
/// hands back what was read or, for a head hyper would refuse, writes
/// the refusal (status and Spring's JSON body) and reports [`FirstHead::Done`].
/// `max_bytes` and `max_headers` are the limits hyper is given. The caller
/// bounds the time it takes.
pub(super) async fn read<I>(io: &mut I, max_bytes: usize, max_headers: usize) -> FirstHead
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(4096.min(max_bytes.max(1)));
    loop {
        match io.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return FirstHead::Done,
            Ok(_) => {}
        }
        match check(&buf, max_bytes, max_headers) {
            Check::Whole => return FirstHead::Serve(buf.freeze()),
            Check::Partial => {
                if buf.capacity() == buf.len() {
                    buf.reserve(4096);
                }
            }
            Check::Refused(status, reason) => {
                refuse(io, status, &reason).await;
                return FirstHead::Done;
            }
            Check::BrokenPreface => {
                tracing::debug!("a broken HTTP/2 connection preface; closing");
                return FirstHead::Done;
            }
        }
    }
}

/// Whether the bytes a connection started with are the HTTP/2 preface.
pub(super) fn is_http2(start: &[u8]) -> bool {
    start.starts_with(H2_PREFACE)
}

/// Writes `status` with Spring's JSON body and closes the connection.
pub(super) async fn refuse<I: AsyncWrite + Unpin>(io: &mut I, status: StatusCode, reason: &str) {
    tracing::debug!(%status, reason, "refused a malformed first request head");
    let body = serde_json::to_vec(&SpringError::new(status, reason).body())
        .unwrap_or_else(|_| b"{}".to_vec());
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let written = async {
        io.write_all(head.as_bytes()).await?;
        io.write_all(&body).await?;
        io.shutdown().await
    };
    if let Err(e) = written.await {
        tracing::debug!(error = %e, "the refusal could not be written");
    }
}

/// Checks the bytes read so far as hyper would.
pub(super) fn check(buf: &[u8], max_bytes: usize, max_headers: usize) -> Check {
    // The HTTP/2 preface (or the start of it) is hyper's; one that
    // starts as the preface and then breaks off is closed, not read as
    // an HTTP/1.1 request.
    let n = buf.len().min(H2_PREFACE.len());
    if buf[..n] == H2_PREFACE[..n] {
        return if n == H2_PREFACE.len() {
            Check::Whole
        } else {
            Check::Partial
        };
    }
    if buf.starts_with(H2_PREFACE_LINE) {
        return Check::BrokenPreface;
    }
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers.max(1)];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= max_bytes => {
            return Check::Refused(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("the request head is larger than {max_bytes} bytes"),
            );
        }
        Ok(httparse::Status::Partial) => return Check::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Check::Refused(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("the request has more than {max_headers} header fields"),
            );
        }
        Err(httparse::Error::Token) if request.method.is_none() => {
            return bad("malformed request line: no method");
        }
        Err(httparse::Error::Token) => {
            return bad("malformed request line: the target has a character it may not have");
        }
        Err(e) => return bad(&format!("malformed request head: {e}")),
    };
    if parsed > max_bytes {
        return Check::Refused(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request head is larger than {max_bytes} bytes"),
        );
    }
    let target = request.path.unwrap_or_default();
    if target.len() > MAX_URI_LEN {
        return Check::Refused(
            StatusCode::URI_TOO_LONG,
            format!("the request target is longer than {MAX_URI_LEN} bytes"),
        );
    }
    if http::Method::from_bytes(request.method.unwrap_or_default().as_bytes()).is_err() {
        return bad("the request method is not a token");
    }
    if let Err(e) = http::Uri::try_from(target) {
        return bad(&format!("the request target is not a URI: {e}"));
    }
    framing(request.version == Some(1), request.headers)
}

/// hyper's checks of `Transfer-Encoding` and `Content-Length`.
fn framing(http_11: bool, headers: &[httparse::Header<'_>]) -> Check {
    let mut length: Option<u64> = None;
    let mut chunked = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http_11 {
                return bad("HTTP/1.0 has no Transfer-Encoding");
            }
            chunked = Some(is_chunked(h.value));
        } else if h.name.eq_ignore_ascii_case("content-length") && chunked.is_none() {
            let Some(value) = content_length(h.value) else {
                return bad("Content-Length is not a number");
            };
            match length {
                Some(seen) if seen != value => {
                    return bad("Content-Length is given twice with different values");
                }
                _ => length = Some(value),
            }
        }
    }
    if chunked == Some(false) {
        return bad("Transfer-Encoding does not end with chunked");
    }
    Check::Whole
}

/// Whether a `Transfer-Encoding` value ends with `chunked`.
pub(super) fn is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|b| *b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// A `Content-Length` value: digits, or a list of the same digits.
fn content_length(value: &[u8]) -> Option<u64> {
    let mut found = None;
    for part in value.split(|b| *b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u64 = std::str::from_utf8(part).ok()?.parse().ok()?;
        match found {
            Some(seen) if seen != n => return None,
            _ => found = Some(n),
        }
    }
    found
}

fn bad(reason: &str) -> Check {
    Check::Refused(StatusCode::BAD_REQUEST, reason.to_owned())
}

/// A connection with bytes already read from it put back in front.
#[derive(Debug)]
pub(super) struct Prefixed<I> {
    prefix: Bytes,
    io: I,
}

impl<I> Prefixed<I> {
    pub(super) fn new(prefix: Bytes, io: I) -> Prefixed<I> {
        Prefixed { prefix, io }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(head: &str) -> Check {
        check(head.as_bytes(), 8192, 100)
    }

    fn status(head: &str) -> Option<u16> {
        match checked(head) {
            Check::Refused(s, _) => Some(s.as_u16()),
            _ => None,
        }
    }

    #[test]
    fn whole_heads_pass_and_partial_ones_wait() {
        assert_eq!(
            checked("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"),
            Check::Whole
        );
        assert_eq!(
            checked("GET /a HTTP/1.1\r\nHost: x\r\n\r\nbody bytes"),
            Check::Whole
        );
        assert_eq!(checked("GET http://x/a HTTP/1.0\r\n\r\n"), Check::Whole);
        assert_eq!(checked("GET /a HTTP/1.1\r\nHost: x\r\n"), Check::Partial);
        assert_eq!(checked("GE"), Check::Partial);
        // The HTTP/2 preface, whole or in part, is hyper's.
        assert_eq!(checked("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Check::Whole);
        assert_eq!(checked("PRI * HT"), Check::Partial);
        assert_eq!(checked("PRI * HTTP/2.0\r\n\r\nSM\r\n"), Check::Partial);
        assert_eq!(
            checked("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"),
            Check::BrokenPreface
        );
        // Framing hyper takes: chunked last, equal duplicate lengths, a
        // length after chunked (ignored, as hyper does).
        assert_eq!(
            checked("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Check::Whole
        );
        assert_eq!(
            checked("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n"),
            Check::Whole
        );
        assert_eq!(
            checked("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n"),
            Check::Whole
        );
    }

    #[test]
    fn what_hyper_refuses_is_refused_with_its_status() {
        assert_eq!(status("GARBAGE\r\n\r\n"), Some(400));
        assert_eq!(status("GET /a HTTP/3.0\r\n\r\n"), Some(400));
        assert_eq!(
            status("GET /a HTTP/1.1\r\nBad Header: x\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status("GET /a HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status("GET /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status("GET /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status("POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(400)
        );
        assert_eq!(status("GET /a\x7f HTTP/1.1\r\n\r\n"), Some(400));
        let many: String = (0..101).map(|i| format!("x-{i}: v\r\n")).collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\n{many}\r\n")), Some(431));
        let long = format!("GET / HTTP/1.1\r\nx: {}", "a".repeat(9000));
        assert_eq!(status(&long), Some(431));
    }

    #[tokio::test]
    async fn a_refused_head_is_answered_with_springs_json_and_a_whole_one_is_kept() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client
            .write_all(b"GET /a HTTP/1.1\r\nContent-Length: x\r\n\r\n")
            .await
            .expect("written");
        assert!(matches!(
            read(&mut server, 8192, 100).await,
            FirstHead::Done
        ));
        drop(server);
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(body["status"], 400);
        assert_eq!(body["message"], "Content-Length is not a number");

        // A head in two pieces is kept whole, with what followed it.
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let reading = tokio::spawn(async move {
            let head = read(&mut server, 8192, 100).await;
            (head, server)
        });
        client
            .write_all(b"GET /a HTTP/1.1\r\nHo")
            .await
            .expect("written");
        tokio::task::yield_now().await;
        client
            .write_all(b"st: x\r\n\r\nnext")
            .await
            .expect("written");
        let (head, server) = reading.await.expect("read");
        let FirstHead::Serve(bytes) = head else {
            panic!("not served: {head:?}");
        };
        let mut replayed = Prefixed::new(bytes, server);
        drop(client);
        let mut all = String::new();
        replayed.read_to_string(&mut all).await.expect("replayed");
        assert_eq!(all, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nnext");
    }
}
