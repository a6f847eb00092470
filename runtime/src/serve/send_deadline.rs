//! [`SendDeadline`]: a connection's writes fail once the peer has read
//! nothing of them for a while (nginx's `send_timeout`), measured by a
//! [`StallTimer`] (which costs nothing while writes do not wait). Each
//! write that makes progress is also counted in the connection's
//! [`Activity`], for its keep-alive watch.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::ConnectionStats;
use super::idle::Activity;
use crate::stall::StallTimer;

/// `io` whose writes fail with [`io::ErrorKind::TimedOut`] after waiting
/// `limit` without progress (never, when `limit` is `None`).
#[derive(Debug)]
pub(super) struct SendDeadline<I> {
    io: I,
    stall: Option<StallTimer>,
    stats: Arc<ConnectionStats>,
    activity: Arc<Activity>,
}

impl<I> SendDeadline<I> {
    pub(super) fn new(
        io: I,
        limit: Option<Duration>,
        stats: Arc<ConnectionStats>,
        activity: Arc<Activity>,
    ) -> Self {
        SendDeadline {
            io,
            stall: limit.map(StallTimer::new),
            stats,
            activity,
        }
    }

    /// `write`'s result, or a time-out once the writes have waited `limit`
    /// since their last progress.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(&mut I, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let polled = write(&mut self.io, cx);
        let Some(stall) = &mut self.stall else {
            return polled;
        };
        if polled.is_ready() {
            stall.progressed();
            return polled;
        }
        if !stall.stalled(cx) {
            return Poll::Pending;
        }
        let limit = stall.limit();
        self.stats.send_timeouts.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            timeout_ms = limit.as_millis(),
            "the client read nothing for server.send-timeout; closing"
        );
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the client read nothing for {} ms (server.send-timeout)",
                limit.as_millis()
            ),
        )))
    }
}

impl<I> SendDeadline<I> {
    /// Counts a write that moved bytes as the connection's activity (a
    /// flush does not count: hyper flushes on every wake-up, also while a
    /// slow client trickles in a head).
    fn count(&self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            self.activity.wrote();
        }
        written
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SendDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SendDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = self.guard(cx, |io, cx| Pin::new(io).poll_write(cx, buf));
        self.count(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = self.guard(cx, |io, cx| Pin::new(io).poll_write_vectored(cx, bufs));
        self.count(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.guard(cx, |io, cx| Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.guard(cx, |io, cx| Pin::new(io).poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt as _;
    use tokio::time::Instant;

    use super::*;

    const LIMIT: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_fails_after_the_limit() {
        let stats = Arc::new(ConnectionStats::default());
        // A pipe of 64 bytes whose far end is never read.
        let (near, _far) = tokio::io::duplex(64);
        let mut io = SendDeadline::new(near, Some(LIMIT), Arc::clone(&stats), Arc::default());
        let started = Instant::now();
        let failed = io
            .write_all(&[7u8; 1024])
            .await
            .expect_err("nobody reads: the write cannot finish");
        assert_eq!(failed.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            Instant::now() - started,
            LIMIT,
            "failed at the limit, not before"
        );
        assert_eq!(stats.send_timeouts(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_waited_for() {
        let stats = Arc::new(ConnectionStats::default());
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = SendDeadline::new(near, Some(LIMIT), Arc::clone(&stats), Arc::default());
        // The reader takes 64 bytes every 4 s: each wait is under the
        // limit, the whole write far over it.
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 64];
            while got < 1024 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                got += tokio::io::AsyncReadExt::read(&mut far, &mut buf)
                    .await
                    .expect("read");
            }
            got
        });
        io.write_all(&[7u8; 1024])
            .await
            .expect("progress every 4 s keeps the write alive");
        assert_eq!(reader.await.expect("reader"), 1024);
        assert_eq!(stats.send_timeouts(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_limit_a_write_waits_as_long_as_it_takes() {
        let stats = Arc::new(ConnectionStats::default());
        let (near, _far) = tokio::io::duplex(64);
        let mut io = SendDeadline::new(near, None, Arc::clone(&stats), Arc::default());
        let write = io.write_all(&[7u8; 1024]);
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), write)
                .await
                .is_err(),
            "still waiting after an hour"
        );
        assert_eq!(stats.send_timeouts(), 0);
    }
}
