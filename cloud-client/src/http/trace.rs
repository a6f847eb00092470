//! W3C Trace Context: the `traceparent` header
//! (`00-<trace id>-<parent id>-<flags>`), parsed, written, and carried in a
//! task-local so outgoing calls continue the incoming trace. Zipkin's B3
//! headers (`X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`, `X-B3-Flags`, or
//! the single `b3`) are read too, and sent on when the trace came with
//! them, so a Spring Cloud Sleuth or Brave neighbour sees its own format.
//!
//! [`continue_trace`] is the server side: an `axum` middleware (the service
//! runtime serves every router with it) that runs each request's handler in
//! the trace the request carries, or in a new one.

use std::fmt;
use std::future::Future;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::loadbalancer::hash;

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// One position in a trace: the trace id, the current span id, the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// 16 bytes, not all zero (a 64-bit B3 trace id fills the last 8).
    pub trace_id: [u8; 16],
    /// 8 bytes, not all zero: the span that makes the next call.
    pub span_id: [u8; 8],
    /// Trace flags; bit 0 is "sampled".
    pub flags: u8,
    /// The trace came with B3 headers: calls send them too, next to
    /// `traceparent`.
    pub b3: bool,
}

/// The header's name.
pub const TRACEPARENT: &str = "traceparent";

/// The header's name, made once: a request looks it up and inserts it
/// without parsing the name again.
pub(crate) static TRACEPARENT_HEADER: HeaderName = HeaderName::from_static(TRACEPARENT);
pub(crate) static B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
static B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
static B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
static B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");
pub(crate) static B3_SINGLE: HeaderName = HeaderName::from_static("b3");

impl TraceContext {
    /// A new trace, sampled.
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: nonzero_random(),
            span_id: nonzero_random(),
            flags: 1,
            b3: false,
        }
    }

    /// Parses a `traceparent` value; `None` when malformed (version `ff`,
    /// wrong lengths, non-hex, all-zero ids), as the spec asks.
    pub fn parse(value: &str) -> Option<TraceContext> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2
            || version.eq_ignore_ascii_case("ff")
            || u8::from_str_radix(version, 16).is_err()
        {
            return None;
        }
        // Version 00 has exactly four fields; later versions may add more.
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = hex_bytes(trace)?;
        let span_id: [u8; 8] = hex_bytes(span)?;
        let [flags]: [u8; 1] = hex_bytes(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
            b3: false,
        })
    }

    /// The trace a request carries: its `traceparent` when valid, else its
    /// B3 headers (the single `b3`, or `X-B3-TraceId` with `X-B3-SpanId`),
    /// else `None`. A malformed header counts as absent, as both specs ask.
    pub fn from_headers(headers: &HeaderMap) -> Option<TraceContext> {
        let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(ctx) = text(&TRACEPARENT_HEADER).and_then(TraceContext::parse) {
            // Both formats came: both go on.
            let b3 = headers.contains_key(&B3_TRACE_ID) || headers.contains_key(&B3_SINGLE);
            return Some(TraceContext { b3, ..ctx });
        }
        if let Some(single) = text(&B3_SINGLE) {
            return TraceContext::parse_b3_single(single);
        }
        let trace_id = b3_trace_id(text(&B3_TRACE_ID)?)?;
        let span_id: [u8; 8] = hex_bytes(text(&B3_SPAN_ID)?.trim())?;
        // X-B3-Flags: 1 is "debug", which implies sampled; an absent
        // decision is left to us, and we sample.
        let debug = text(&B3_FLAGS).is_some_and(|f| f.trim() == "1");
        let sampled = match text(&B3_SAMPLED).map(str::trim) {
            Some("0" | "false") => debug,
            _ => true,
        };
        b3_context(trace_id, span_id, sampled)
    }

    /// The single `b3` header:
    /// `<trace id>-<span id>[-<1|0|d>[-<parent span id>]]`.
    fn parse_b3_single(value: &str) -> Option<TraceContext> {
        let mut parts = value.trim().split('-');
        let trace_id = b3_trace_id(parts.next()?)?;
        let span_id: [u8; 8] = hex_bytes(parts.next()?)?;
        let sampled = match parts.next() {
            None | Some("1" | "d") => true,
            Some("0") => false,
            Some(_) => return None,
        };
        if let Some(parent) = parts.next() {
            hex_bytes::<8>(parent)?;
        }
        if parts.next().is_some() {
            return None;
        }
        b3_context(trace_id, span_id, sampled)
    }

    /// Writes this context's headers into `headers`: `traceparent`, and
    /// the B3 headers when the trace came with them.
    pub(crate) fn write_to(&self, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_bytes(&self.encode()) {
            headers.insert(TRACEPARENT_HEADER.clone(), v);
        }
        if !self.b3 {
            return;
        }
        // A 64-bit B3 trace id goes back as 16 digits, as it came.
        let trace = if self.trace_id[..8] == [0; 8] {
            &self.trace_id[8..]
        } else {
            &self.trace_id[..]
        };
        let mut digits = [0u8; 32];
        for (name, bytes) in [(&B3_TRACE_ID, trace), (&B3_SPAN_ID, &self.span_id[..])] {
            let text = &mut digits[..2 * bytes.len()];
            hex_into(text, bytes);
            if let Ok(v) = HeaderValue::from_bytes(text) {
                headers.insert(name.clone(), v);
            }
        }
        let sampled = if self.sampled() { "1" } else { "0" };
        headers.insert(B3_SAMPLED.clone(), HeaderValue::from_static(sampled));
    }

    /// Whether the trace is sampled (flags bit 0).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The same trace with a new span id: what a call made from this span
    /// sends.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: nonzero_random(),
            ..*self
        }
    }

    /// The trace context of the current task, if one was set with
    /// [`scope`](Self::scope).
    pub fn current() -> Option<TraceContext> {
        CURRENT.try_with(|c| *c).ok()
    }

    /// Runs `fut` with `self` as the current trace context, so calls made by
    /// the HTTP client inside continue this trace.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}

impl TraceContext {
    /// The `traceparent` value, `00-<trace id>-<span id>-<flags>` in
    /// lower-case hex, without allocating.
    pub(crate) fn encode(&self) -> [u8; 55] {
        let mut out = [b'-'; 55];
        hex_into(&mut out[0..2], &[0]);
        hex_into(&mut out[3..35], &self.trace_id);
        hex_into(&mut out[36..52], &self.span_id);
        hex_into(&mut out[53..55], &[self.flags]);
        out
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoded = self.encode();
        // Hex digits and dashes only: always UTF-8.
        f.write_str(std::str::from_utf8(&encoded).map_err(|_| fmt::Error)?)
    }
}

/// A B3 trace id: 16 or 32 lower-case hex digits.
fn b3_trace_id(s: &str) -> Option<[u8; 16]> {
    let s = s.trim();
    if s.len() == 16 {
        let low: [u8; 8] = hex_bytes(s)?;
        let mut id = [0u8; 16];
        id[8..].copy_from_slice(&low);
        Some(id)
    } else {
        hex_bytes(s)
    }
}

fn b3_context(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> Option<TraceContext> {
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(TraceContext {
        trace_id,
        span_id,
        flags: u8::from(sampled),
        b3: true,
    })
}

/// Writes `bytes` into `out` as lower-case hex (`out` is twice as long).
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

/// `axum` middleware: runs the handler in the trace the request carries
/// (`traceparent`, else B3), as a new span of it, or in a new trace; the
/// HTTP client's calls from the handler then continue it. The service
/// runtime serves every router with it; add it to a router you serve
/// yourself with `axum::middleware::from_fn(continue_trace)`.
pub async fn continue_trace(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let ctx = TraceContext::from_headers(req.headers())
        .map(|c| c.child())
        .unwrap_or_else(TraceContext::new_root);
    ctx.scope(next.run(req)).await
}

fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Random bytes, not all zero, from the per-thread generator the balancer
/// picks with (a few instructions per 8 bytes; seeded from the operating
/// system's randomness once per thread).
fn nonzero_random<const N: usize>() -> [u8; N] {
    loop {
        let mut bytes = [0u8; N];
        for chunk in bytes.chunks_mut(8) {
            let random = hash::random().to_le_bytes();
            chunk.copy_from_slice(&random[..chunk.len()]);
        }
        if bytes != [0; N] {
            return bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_the_spec_example() {
        let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let c = TraceContext::parse(v).unwrap();
        assert_eq!(c.to_string(), v);
        assert_eq!(c.flags, 1);
        let child = c.child();
        assert_eq!(child.trace_id, c.trace_id);
        assert_ne!(child.span_id, c.span_id);
    }

    #[test]
    fn malformed_values_are_rejected() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn b3_headers_are_read_in_both_forms_and_widths() {
        let multi = TraceContext::from_headers(&headers(&[
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-sampled", "1"),
        ]))
        .unwrap();
        assert_eq!(
            multi.trace_id[..8],
            [0; 8],
            "a 64-bit id fills the low half"
        );
        assert_eq!(
            multi.trace_id[8..],
            [0x46, 0x3a, 0xc3, 0x5c, 0x9f, 0x64, 0x13, 0xad]
        );
        assert!(multi.b3 && multi.sampled());
        // Zipkin's example of the single header, 128-bit, with a parent.
        let single = TraceContext::from_headers(&headers(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0-05e3ac9a4f6e3b90",
        )]))
        .unwrap();
        assert_eq!(
            single.to_string(),
            "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-00"
        );
        assert!(single.b3 && !single.sampled());
        // Not sampled, but debug: sampled.
        let debug = TraceContext::from_headers(&headers(&[
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-sampled", "0"),
            ("x-b3-flags", "1"),
        ]))
        .unwrap();
        assert!(debug.sampled());
    }

    #[test]
    fn malformed_or_partial_b3_headers_carry_no_trace() {
        for bad in [
            headers(&[("x-b3-traceid", "463ac35c9f6413ad")]),
            headers(&[("x-b3-spanid", "a2fb4a1d1a96d312")]),
            headers(&[
                ("x-b3-traceid", "463ac35c9f6413"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ]),
            headers(&[
                ("x-b3-traceid", "0000000000000000"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ]),
            headers(&[("b3", "0")]),
            headers(&[("b3", "463ac35c9f6413ad-a2fb4a1d1a96d312-x")]),
            headers(&[(
                "b3",
                "463ac35c9f6413ad-a2fb4a1d1a96d312-1-a2fb4a1d1a96d312-9",
            )]),
        ] {
            assert_eq!(TraceContext::from_headers(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn traceparent_wins_and_b3_goes_on_when_it_came() {
        let both = TraceContext::from_headers(&headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ]))
        .unwrap();
        assert_eq!(
            both.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert!(both.b3);
        let mut out = HeaderMap::new();
        both.write_to(&mut out);
        assert_eq!(out["x-b3-traceid"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(out["x-b3-spanid"], "00f067aa0ba902b7");
        assert_eq!(out["x-b3-sampled"], "1");

        let w3c_only =
            TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let mut out = HeaderMap::new();
        w3c_only.write_to(&mut out);
        assert_eq!(out.len(), 1, "{out:?}");
    }

    #[test]
    fn a_64_bit_b3_trace_goes_back_as_16_digits() {
        let ctx = TraceContext::from_headers(&headers(&[
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ]))
        .unwrap();
        let mut out = HeaderMap::new();
        ctx.child().write_to(&mut out);
        assert_eq!(out["x-b3-traceid"], "463ac35c9f6413ad");
        assert_ne!(out["x-b3-spanid"], "a2fb4a1d1a96d312", "a new span");
        assert_eq!(
            out["traceparent"].to_str().unwrap().get(3..35),
            Some("0000000000000000463ac35c9f6413ad")
        );
    }

    #[tokio::test]
    async fn the_middleware_runs_the_handler_in_the_request_trace() {
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::get(|| async {
                    TraceContext::current()
                        .map(|c| format!("{c} {}", c.b3))
                        .unwrap_or_default()
                }),
            )
            .layer(axum::middleware::from_fn(continue_trace));
        // What the handler sees of a request with `pairs` as its headers.
        let seen = |pairs: &'static [(&'static str, &'static str)]| {
            let app = app.clone();
            let mut req = axum::http::Request::new(axum::body::Body::empty());
            *req.headers_mut() = headers(pairs);
            async move {
                let resp = app.oneshot(req).await.unwrap();
                let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
                String::from_utf8(body.to_vec()).unwrap()
            }
        };
        let w3c = seen(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )])
        .await;
        assert!(
            w3c.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{w3c}"
        );
        assert!(
            !w3c.contains("00f067aa0ba902b7"),
            "the handler's own span: {w3c}"
        );
        assert!(w3c.ends_with("-01 false"), "{w3c}");
        let b3 = seen(&[
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ])
        .await;
        assert!(
            b3.starts_with("00-0000000000000000463ac35c9f6413ad-"),
            "{b3}"
        );
        assert!(b3.ends_with(" true"), "{b3}");
        let none = seen(&[]).await;
        assert!(
            TraceContext::parse(none.trim_end_matches(" false")).is_some(),
            "a new trace: {none}"
        );
    }

    #[tokio::test]
    async fn the_scope_sets_the_current_context() {
        assert_eq!(TraceContext::current(), None);
        let root = TraceContext::new_root();
        let seen = root.scope(async { TraceContext::current() }).await;
        assert_eq!(seen, Some(root));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_headers_never_panic(s in ".{0,80}") {
            let _ = TraceContext::parse(&s);
        }
    }
}
