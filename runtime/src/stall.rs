//! [`StallTimer`]: how long a stream has waited without progress, for the
//! limits that end a stalled transfer (a client that reads nothing, an
//! upstream that sends nothing).
//!
//! Only waiting costs anything. Progress is one store; the timer is made
//! at the first wait; a new wait reads the clock once; and the timer, when
//! it fires, measures from the start of the current wait and sets itself
//! again if that wait is younger than the limit, rather than being moved
//! at every wait.
//!
//! The wait is measured from when it started, never from the last
//! progress: a stream that nobody polled for a while (its consumer was
//! slow) has not stalled.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use cloud_runtime::stall::StallTimer;
//! use std::task::{Context, Waker};
//! use std::time::Duration;
//!
//! let mut cx = Context::from_waker(Waker::noop());
//! let mut stall = StallTimer::new(Duration::from_secs(5));
//! // A poll of the stream returned `Pending`:
//! assert!(!stall.stalled(&mut cx));
//! tokio::time::advance(Duration::from_secs(5)).await;
//! assert!(stall.stalled(&mut cx), "five seconds in the same wait");
//! // A poll returned `Ready`:
//! stall.progressed();
//! assert!(!stall.stalled(&mut cx), "a new wait");
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Whether a stream has waited `limit` without progress (see the [module
/// docs](self)).
#[derive(Debug)]
pub struct StallTimer {
    limit: Duration,
    /// Made at the first wait.
    timer: Option<Pin<Box<Sleep>>>,
    /// When the current wait started; `None` after progress.
    waiting_since: Option<Instant>,
}

impl StallTimer {
    /// A timer for waits of at most `limit`.
    pub fn new(limit: Duration) -> StallTimer {
        StallTimer {
            limit,
            timer: None,
            waiting_since: None,
        }
    }

    /// The limit.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// The stream made progress: the next wait is a new one.
    pub fn progressed(&mut self) {
        self.waiting_since = None;
    }

    /// The stream waits (a poll returned `Pending`): whether this wait has
    /// lasted `limit`. When not, the task is woken when it could have.
    pub fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        let due = since + self.limit;
        // An earlier wait's deadline is never later than this one's.
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        while timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= due {
                return true;
            }
            timer.as_mut().reset(due);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    const LIMIT: Duration = Duration::from_millis(300);
    const STEP: Duration = Duration::from_millis(200);

    fn stalled(stall: &mut StallTimer) -> bool {
        stall.stalled(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_stalls_at_the_limit_and_progress_starts_a_new_one() {
        let mut stall = StallTimer::new(LIMIT);
        stall.progressed();
        assert!(stall.timer.is_none(), "progress alone makes no timer");
        assert!(!stalled(&mut stall), "the first wait starts the clock");
        tokio::time::advance(STEP).await;
        stall.progressed();
        assert!(!stalled(&mut stall));
        tokio::time::advance(STEP).await;
        assert!(
            !stalled(&mut stall),
            "400 ms since the first wait, but 200 in this one"
        );
        tokio::time::advance(STEP).await;
        assert!(stalled(&mut stall), "400 ms in this wait");
    }

    #[tokio::test(start_paused = true)]
    async fn time_nobody_polled_is_not_a_stall() {
        let mut stall = StallTimer::new(LIMIT);
        assert!(!stalled(&mut stall));
        stall.progressed();
        // The consumer is slow: no poll for ten times the limit.
        tokio::time::advance(LIMIT * 10).await;
        assert!(!stalled(&mut stall), "this wait has just started");
        tokio::time::advance(LIMIT).await;
        assert!(stalled(&mut stall));
    }
}
