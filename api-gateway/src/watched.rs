//! A response body passed on unchanged while something watches it go: each
//! data chunk, and how the body ended. The response cache keeps what it
//! sees ([`crate::filter::cache`]); the access log counts it and writes its
//! line at the end (`access_log.rs`).
//!
//! The end is the subtle part, so it is here once: hyper stops polling a
//! body as soon as it says it has ended (`is_end_stream`), so the end is
//! seen after the last chunk, at `None`, or at once for a body that is
//! empty from the start; an error or a drop before any of those is an end
//! that was not whole.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

/// What watches a body.
pub(crate) trait Watch: Send + Unpin + 'static {
    /// A data chunk on its way to the client.
    fn data(&mut self, chunk: &Bytes);

    /// The body ended: `whole` when it reached its end, `false` when it
    /// failed or was dropped before (the client went away). Called once.
    fn end(self, whole: bool);
}

/// `inner`, passed on as it is, with `watch` told about it.
pub(crate) fn watched<W: Watch>(inner: Body, watch: W) -> Body {
    let mut body = Watched {
        inner,
        watch: Some(watch),
    };
    if body.inner.is_end_stream() {
        body.end(true);
    }
    Body::new(body)
}

struct Watched<W: Watch> {
    inner: Body,
    /// `None` once told of the end.
    watch: Option<W>,
}

impl<W: Watch> Watched<W> {
    fn end(&mut self, whole: bool) {
        if let Some(watch) = self.watch.take() {
            watch.end(whole);
        }
    }
}

impl<W: Watch> HttpBody for Watched<W> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(watch)) = (frame.data_ref(), this.watch.as_mut()) {
                    watch.data(data);
                }
                if this.inner.is_end_stream() {
                    this.end(true);
                }
            }
            Poll::Ready(None) => this.end(true),
            Poll::Ready(Some(Err(_))) => this.end(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<W: Watch> Drop for Watched<W> {
    fn drop(&mut self) {
        self.end(false);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http_body_util::BodyExt;

    use super::*;

    /// The chunks seen, and each end told (`whole` or not).
    type Log = Arc<Mutex<(Vec<u8>, Vec<bool>)>>;

    /// Records what it is told.
    struct Seen(Log);

    impl Watch for Seen {
        fn data(&mut self, chunk: &Bytes) {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0
                .extend_from_slice(chunk);
        }

        fn end(self, whole: bool) {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .1
                .push(whole);
        }
    }

    fn seen() -> (Seen, Log) {
        let state = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        (Seen(Arc::clone(&state)), state)
    }

    fn stream(chunks: &[&'static str]) -> Body {
        Body::from_stream(futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes())))
                .collect::<Vec<_>>(),
        ))
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_is_seen_whole_once() {
        let (watch, state) = seen();
        let body = watched(stream(&["ab", "cd"]), watch);
        assert_eq!(body.collect().await.expect("body").to_bytes(), "abcd");
        let state = state.lock().expect("state");
        assert_eq!(state.0, b"abcd");
        assert_eq!(state.1, [true]);
    }

    #[tokio::test]
    async fn a_body_dropped_early_ends_not_whole_and_an_empty_one_at_once() {
        let (watch, state) = seen();
        let mut body = watched(stream(&["ab", "cd"]), watch);
        body.frame().await.expect("a frame").expect("data");
        drop(body);
        assert_eq!(state.lock().expect("state").1, [false]);

        let (watch, state) = seen();
        let body = watched(Body::empty(), watch);
        assert_eq!(state.lock().expect("state").1, [true], "before any poll");
        drop(body);
        assert_eq!(state.lock().expect("state").1, [true], "told once");
    }
}
