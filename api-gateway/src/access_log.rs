//! The access log: one line per request on the proxy port, as Reactor
//! Netty (SCG's server) writes it with `reactor.netty.http.server.accessLogEnabled`:
//!
//! ```text
//! 127.0.0.1:52436 - - [30/Nov/2026:10:51:55 +0000] "GET /api/hello?x=1 HTTP/1.1" 200 13 4 ms
//! ```
//!
//! The client's address and port, `-` for the user, the time the request
//! came (UTC), the request line as received, the status, the response's
//! `Content-Length` (or the bytes sent when the body had none; `-` when
//! neither is known), and the milliseconds from the request to the end of
//! its response body. A line is written when the body ends, or when it is
//! dropped before its end (the client went away; then with the bytes sent
//! so far). Lines go through `tracing` at `info` with the target
//! `reactor.netty.http.server.AccessLog`, Reactor Netty's logger name, so
//! `RUST_LOG=warn,reactor.netty.http.server.AccessLog=info` keeps them
//! with other logs quiet.

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::body::Body;
use bytes::Bytes;
use cloud_runtime::clock::{SharedClock, UtcTime};
use http::{Method, Request, Response, Version};
use tokio::time::Instant;

use crate::watched::{Watch, watched};

/// The logger name lines are written under.
pub(crate) const TARGET: &str = "reactor.netty.http.server.AccessLog";

/// What is known of a request when it comes.
#[derive(Debug)]
pub(crate) struct Entry {
    peer: SocketAddr,
    received_millis: i64,
    started: Instant,
    /// `METHOD target PROTOCOL`.
    request_line: String,
    head: bool,
    clock: SharedClock,
}

impl Entry {
    /// Notes `request` from `peer` as it comes.
    pub(crate) fn begin<B>(request: &Request<B>, peer: SocketAddr, clock: &SharedClock) -> Entry {
        let uri = request.uri();
        let target = match (uri.path_and_query(), request.method()) {
            (_, &Method::CONNECT) => uri.authority().map_or("", |a| a.as_str()),
            (Some(pq), _) => pq.as_str(),
            (None, _) => uri.path(),
        };
        Entry {
            peer,
            received_millis: clock.epoch_millis(),
            started: clock.now(),
            request_line: format!(
                "{} {target} {}",
                request.method(),
                protocol(request.version())
            ),
            head: request.method() == Method::HEAD,
            clock: SharedClock::clone(clock),
        }
    }

    /// `response`, whose body writes the line when it ends.
    pub(crate) fn finish(self, response: Response<Body>) -> Response<Body> {
        let status = response.status().as_u16();
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let (head, body) = response.into_parts();
        let pending = Pending {
            entry: self,
            status,
            declared,
            sent: 0,
        };
        Response::from_parts(head, watched(body, pending))
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// A line waiting for its body's end.
#[derive(Debug)]
struct Pending {
    entry: Entry,
    status: u16,
    declared: Option<u64>,
    sent: u64,
}

impl Pending {
    fn line(&self) -> String {
        let e = &self.entry;
        let t = UtcTime::from_epoch_millis(e.received_millis);
        let took = e.clock.now().saturating_duration_since(e.started);
        let mut line = String::with_capacity(e.request_line.len() + 80);
        // Writing to a String cannot fail.
        let _ = write!(
            line,
            "{} - - [{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000] \"{}\" {} ",
            e.peer,
            t.day,
            t.month_abbreviation(),
            t.year,
            t.hour,
            t.minute,
            t.second,
            e.request_line,
            self.status,
        );
        match (self.declared, e.head) {
            (Some(n), _) => {
                let _ = write!(line, "{n}");
            }
            (None, false) => {
                let _ = write!(line, "{}", self.sent);
            }
            (None, true) => line.push('-'),
        }
        let _ = write!(line, " {} ms", took.as_millis());
        line
    }
}

impl Watch for Pending {
    fn data(&mut self, chunk: &Bytes) {
        self.sent += chunk.len() as u64;
    }

    /// Whole or not (the client went away): the line, with what was sent.
    fn end(self, _whole: bool) {
        tracing::info!(target: TARGET, "{}", self.line());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use std::pin::Pin;
    use std::task::{Context, Poll};

    use cloud_runtime::clock::{Clock, ManualClock};
    use hyper::body::Body as HttpBody;

    use super::*;

    fn pending(clock: &Arc<ManualClock>, request: Request<()>, status: u16) -> Pending {
        let clock: SharedClock = Arc::<ManualClock>::clone(clock);
        Pending {
            entry: Entry::begin(&request, "127.0.0.1:52436".parse().expect("addr"), &clock),
            status,
            declared: None,
            sent: 0,
        }
    }

    #[test]
    fn lines_are_reactor_nettys() {
        // 2026-11-30T10:51:55Z
        let clock = Arc::new(ManualClock::at_epoch_millis(1_796_035_915_000));
        let request = Request::get("/api/hello?x=1").body(()).expect("request");
        let mut p = pending(&clock, request, 200);
        clock.advance(Duration::from_millis(4));
        p.declared = Some(13);
        assert_eq!(
            p.line(),
            "127.0.0.1:52436 - - [30/Nov/2026:10:51:55 +0000] \"GET /api/hello?x=1 HTTP/1.1\" 200 13 4 ms"
        );
        p.declared = None;
        p.sent = 7;
        assert!(p.line().ends_with("\" 200 7 4 ms"), "{}", p.line());

        let head = Request::head("/x")
            .version(Version::HTTP_2)
            .body(())
            .expect("request");
        let p = pending(&clock, head, 404);
        assert!(
            p.line().ends_with("\"HEAD /x HTTP/2.0\" 404 - 0 ms"),
            "{}",
            p.line()
        );
        assert_eq!(clock.epoch_millis(), 1_796_035_915_004);
    }

    /// Runs `f` with `info` events of [`TARGET`] captured; the lines.
    fn captured(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = sink
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn poll_to_end(body: &mut Body) -> usize {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut frames = 0;
        while let Poll::Ready(Some(Ok(_))) = Pin::new(&mut *body).poll_frame(&mut cx) {
            frames += 1;
        }
        frames
    }

    #[test]
    fn a_line_is_written_once_when_the_body_ends_or_is_dropped() {
        let clock: SharedClock = Arc::new(ManualClock::at_epoch_millis(0));
        let peer: SocketAddr = "[::1]:9".parse().expect("addr");
        let post = || Request::post("/up").body(()).expect("request");

        let lines = captured(|| {
            let response = Entry::begin(&post(), peer, &clock).finish(Response::new(
                Body::from_stream(futures::stream::iter([
                    Ok::<_, std::io::Error>(Bytes::from_static(b"hel")),
                    Ok(Bytes::from_static(b"lo")),
                ])),
            ));
            let mut body = response.into_body();
            assert_eq!(poll_to_end(&mut body), 2);
            drop(body);
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains(TARGET), "{lines:?}");
        assert!(
            lines[0].ends_with(
                "[::1]:9 - - [01/Jan/1970:00:00:00 +0000] \"POST /up HTTP/1.1\" 200 5 0 ms"
            ),
            "{lines:?}"
        );

        // The client went away after the head: the line still comes, once.
        let lines = captured(|| {
            let mut response = Response::new(Body::from_stream(futures::stream::iter([Ok::<
                _,
                std::io::Error,
            >(
                Bytes::from_static(b"x"),
            )])));
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            drop(Entry::begin(&post(), peer, &clock).finish(response));
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with("\" 502 0 0 ms"), "{lines:?}");

        // An empty body is done at once.
        let lines = captured(|| {
            let response = Entry::begin(&post(), peer, &clock).finish(Response::new(Body::empty()));
            let mut body = response.into_body();
            assert_eq!(poll_to_end(&mut body), 0);
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
    }
}
