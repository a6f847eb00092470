//! The keep-alive watch of an HTTP/1 connection: [`Activity`], what the
//! connection's requests and writes have done, and [`IdleWatch`], a pure
//! decision over snapshots of it taken on a coarse tick.
//!
//! hyper's own header-read timer (`header_read_timeout`) arms a new boxed
//! timer in tokio's wheel for every request head it waits for and polls the
//! socket once more per request to start it. The watch instead re-arms one
//! timer per connection a few times per keep-alive period, whatever the
//! number of requests: per request it costs two counters and the guard of a
//! request being answered.
//!
//! A connection is idle when, for a whole period, no request head completed,
//! no write to the client made progress and no request was being answered.
//! That covers a keep-alive connection waiting for its next request and a
//! slow (slowloris) later head; a long request, or a long response that keeps
//! writing, is never idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Ticks per keep-alive period: an idle connection is closed between one
/// period and a period and a quarter after its last activity.
pub(super) const TICKS_PER_PERIOD: u32 = 4;

/// The tick of the watch for `keep_alive`: a quarter of it, at least 1 ms.
pub(super) fn tick(keep_alive: Duration) -> Duration {
    (keep_alive / TICKS_PER_PERIOD).max(Duration::from_millis(1))
}

/// What one connection's requests and writes have done. The counters of
/// heads and writes have one writer each (the connection's task), so they
/// are bumped with a load and a store, not a locked add.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// Request heads handed to the service.
    requests: AtomicU64,
    /// Writes to the client that made progress.
    writes: AtomicU64,
    /// Requests handed to the service whose answer is not ready yet (HTTP/2
    /// answers them on other tasks, hence a locked add).
    answering: AtomicU64,
}

impl Activity {
    /// A request head came and is handed to the service; the guard counts it
    /// as being answered until it is dropped.
    pub(super) fn request(self: &Arc<Self>) -> Answering {
        bump(&self.requests);
        self.answering.fetch_add(1, Ordering::Relaxed);
        Answering(Arc::clone(self))
    }

    /// A write to the client made progress.
    pub(super) fn wrote(&self) {
        bump(&self.writes);
    }

    /// Request heads handed to the service so far.
    pub(super) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The counters now.
    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            answering: self.answering.load(Ordering::Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// A request being answered: dropped when its service future ends (with an
/// answer or not).
#[derive(Debug)]
pub(super) struct Answering(Arc<Activity>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.answering.fetch_sub(1, Ordering::Relaxed);
    }
}

/// [`Activity`]'s counters at one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Snapshot {
    pub(super) requests: u64,
    pub(super) writes: u64,
    pub(super) answering: u64,
}

/// Decides, one tick at a time, when a connection has been idle for a whole
/// period ([`TICKS_PER_PERIOD`] ticks).
#[derive(Debug, Clone)]
pub(super) struct IdleWatch {
    last: Snapshot,
    quiet_ticks: u32,
}

impl IdleWatch {
    /// Starts watching from `now`.
    pub(super) fn new(now: Snapshot) -> IdleWatch {
        IdleWatch {
            last: now,
            quiet_ticks: 0,
        }
    }

    /// One tick with the counters `now`: true when nothing happened for the
    /// last [`TICKS_PER_PERIOD`] ticks and no request is being answered.
    pub(super) fn tick(&mut self, now: Snapshot) -> bool {
        if now != self.last || now.answering > 0 {
            self.last = now;
            self.quiet_ticks = 0;
            return false;
        }
        self.quiet_ticks += 1;
        self.quiet_ticks >= TICKS_PER_PERIOD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_idle_after_a_whole_period_without_activity() {
        let activity = Arc::new(Activity::default());
        let mut watch = IdleWatch::new(activity.snapshot());
        for tick in 1..TICKS_PER_PERIOD {
            assert!(!watch.tick(activity.snapshot()), "tick {tick}");
        }
        assert!(watch.tick(activity.snapshot()), "a whole period");
    }

    #[test]
    fn a_head_or_a_write_starts_the_period_again() {
        let activity = Arc::new(Activity::default());
        let mut watch = IdleWatch::new(activity.snapshot());
        for _ in 1..TICKS_PER_PERIOD {
            assert!(!watch.tick(activity.snapshot()));
        }
        drop(activity.request());
        assert!(!watch.tick(activity.snapshot()), "a head came");
        for _ in 1..TICKS_PER_PERIOD {
            assert!(!watch.tick(activity.snapshot()));
        }
        activity.wrote();
        assert!(!watch.tick(activity.snapshot()), "a write made progress");
        for _ in 1..TICKS_PER_PERIOD {
            assert!(!watch.tick(activity.snapshot()));
        }
        assert!(watch.tick(activity.snapshot()));
    }

    #[test]
    fn a_request_being_answered_is_never_idle() {
        let activity = Arc::new(Activity::default());
        let mut watch = IdleWatch::new(activity.snapshot());
        let answering = activity.request();
        for tick in 0..10 * TICKS_PER_PERIOD {
            assert!(!watch.tick(activity.snapshot()), "tick {tick}");
        }
        drop(answering);
        assert_eq!(activity.snapshot().answering, 0);
        assert!(!watch.tick(activity.snapshot()), "the answer is activity");
        for _ in 1..TICKS_PER_PERIOD {
            assert!(!watch.tick(activity.snapshot()));
        }
        assert!(
            watch.tick(activity.snapshot()),
            "idle a period after the answer"
        );
        assert_eq!(activity.requests(), 1);
    }

    #[test]
    fn the_tick_is_a_quarter_of_the_period_and_never_zero() {
        assert_eq!(tick(Duration::from_secs(60)), Duration::from_secs(15));
        assert_eq!(tick(Duration::ZERO), Duration::from_millis(1));
    }
}
