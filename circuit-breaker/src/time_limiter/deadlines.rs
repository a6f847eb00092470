//! [`Deadlines`]: one timer task for the deadlines of many concurrent calls.
//!
//! `tokio::time::timeout` enters every call in the runtime's timer wheel,
//! and takes a reference on the runtime's handle to do so: a count that
//! every worker thread writes. A client making tens of thousands of calls a
//! second, nearly all of which end long before their deadline, pays that on
//! every call. [`Deadlines`] keeps a waiting call in a slot of its thread's
//! shard (a lock other threads rarely take) and lets one ticker task wake
//! the calls whose deadline has passed.
//!
//! The ticker sleeps until the earliest deadline it has seen. When every
//! call gets the same timeout, a later call never has an earlier deadline,
//! so registering does not wake the ticker: it runs about once per timeout
//! while calls are waiting, and not at all while none are.
//!
//! A call is cut within [`RESOLUTION`] (plus scheduling) after its deadline.
//! The ticker runs on the tokio runtime of the call that started it; if that
//! runtime shuts down, the next call polled on another runtime starts a new
//! one. Outside a tokio runtime deadlines are not enforced.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use cloud_runtime::shard::{self, CacheLine};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::Elapsed;

/// The ticker wakes at most once per this: tokio's timer resolution.
pub const RESOLUTION: Duration = Duration::from_millis(1);

/// The deadline of a timeout too long for the clock: about 30 years.
const NEVER: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `next_wake` while the ticker waits to be told of a deadline: when no
/// call waits, and while it scans.
const UNKNOWN: u64 = u64::MAX;

/// Deadlines for calls, enforced by one ticker task.
///
/// ```
/// use std::time::Duration;
/// use circuit_breaker::time_limiter::Deadlines;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let deadlines = Deadlines::new();
/// let quick = deadlines.run(Duration::from_secs(1), Box::pin(async { 7 })).await;
/// assert_eq!(quick, Ok(7));
/// let slow = deadlines
///     .run(Duration::from_millis(10), Box::pin(tokio::time::sleep(Duration::from_secs(5))))
///     .await;
/// assert_eq!(slow.unwrap_err().after(), Duration::from_millis(10));
/// # }
/// ```
#[derive(Debug)]
pub struct Deadlines {
    shared: Arc<Shared>,
}

struct Shared {
    shards: Box<[CacheLine<Mutex<Slots>>]>,
    /// What `next_wake` counts nanoseconds from.
    base: Instant,
    /// When the ticker wakes next (nanoseconds after `base`), or
    /// [`UNKNOWN`]: a call whose deadline is earlier notifies it.
    next_wake: AtomicU64,
    /// A ticker task is running (or being started).
    ticking: AtomicBool,
    /// The [`Deadlines`] was dropped: the ticker ends.
    closed: AtomicBool,
    notify: Notify,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("ticking", &self.ticking.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// One shard's waiting calls; a slot is reused once its call ends.
#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

enum Slot {
    Free,
    /// A call waiting for its result or its deadline.
    Waiting {
        deadline: Instant,
        waker: Waker,
    },
    /// The ticker found the deadline passed and woke the call.
    Due,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self::new()
    }
}

impl Deadlines {
    /// No calls yet; the ticker starts with the first call that waits.
    pub fn new() -> Self {
        Deadlines {
            shared: Arc::new(Shared {
                shards: shard::shards(),
                base: Instant::now(),
                next_wake: AtomicU64::new(UNKNOWN),
                ticking: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                notify: Notify::new(),
            }),
        }
    }

    /// `fut` with `timeout` to complete; past it the future is dropped
    /// (which cancels it) and the result is [`Elapsed`]. `fut` is polled
    /// before the deadline is checked, so a result that is ready wins.
    pub fn run<F: Future + Unpin>(&self, timeout: Duration, fut: F) -> Deadline<'_, F> {
        let now = Instant::now();
        Deadline {
            deadlines: self,
            fut: Some(fut),
            after: timeout,
            // A timeout past what the clock can add means "never" (as
            // `tokio::time::timeout` treats it), not an overflow.
            deadline: now.checked_add(timeout).unwrap_or(now + NEVER),
            slot: None,
        }
    }

    /// Calls waiting now (for tests and metrics).
    pub fn waiting(&self) -> usize {
        self.shared
            .shards
            .iter()
            .map(|s| {
                let slots = s.0.lock();
                slots.slots.len() - slots.free.len()
            })
            .sum()
    }

    fn ensure_ticker(&self) {
        let shared = &self.shared;
        if shared.ticking.load(Ordering::Acquire)
            || shared
                .ticking
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(tick(Arc::clone(shared)));
            }
            Err(_) => shared.ticking.store(false, Ordering::Release),
        }
    }
}

impl Drop for Deadlines {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.notify.notify_one();
    }
}

impl Shared {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(UNKNOWN - 1)
    }

    /// Marks the calls whose deadline is not after `now` due and wakes
    /// them; returns the earliest deadline still ahead.
    fn scan(&self, now: Instant) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut due = Vec::new();
        for shard in self.shards.iter() {
            let mut slots = shard.0.lock();
            for slot in slots.slots.iter_mut() {
                let Slot::Waiting { deadline, .. } = slot else {
                    continue;
                };
                if *deadline > now {
                    earliest = Some(earliest.map_or(*deadline, |e| e.min(*deadline)));
                } else if let Slot::Waiting { waker, .. } = std::mem::replace(slot, Slot::Due) {
                    due.push(waker);
                }
            }
        }
        // Woken outside the locks.
        due.into_iter().for_each(Waker::wake);
        earliest
    }

    /// Wakes every waiting call without marking it due: each polls again
    /// and starts a new ticker.
    fn wake_all(&self) {
        let mut waiting = Vec::new();
        for shard in self.shards.iter() {
            for slot in &shard.0.lock().slots {
                if let Slot::Waiting { waker, .. } = slot {
                    waiting.push(waker.clone());
                }
            }
        }
        waiting.into_iter().for_each(Waker::wake);
    }
}

/// The ticker task: wakes due calls, then sleeps until the earliest
/// deadline ahead or until a call with an earlier one tells it.
async fn tick(shared: Arc<Shared>) {
    /// Dropped when the task ends or its runtime shuts down.
    struct Running<'a>(&'a Shared);
    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.ticking.store(false, Ordering::Release);
            self.0.wake_all();
        }
    }
    let _running = Running(&shared);
    while !shared.closed.load(Ordering::Acquire) {
        // A call registering while we scan sees UNKNOWN and notifies, so
        // its deadline is not missed by a scan that passed its shard.
        shared.next_wake.store(UNKNOWN, Ordering::SeqCst);
        let now = Instant::now();
        match shared.scan(now) {
            Some(earliest) => {
                let at = earliest.max(now + RESOLUTION);
                shared.next_wake.store(shared.nanos(at), Ordering::SeqCst);
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = shared.notify.notified() => {}
                }
            }
            None => shared.notify.notified().await,
        }
    }
}

/// A future with a deadline; see [`Deadlines::run`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Deadline<'a, F> {
    deadlines: &'a Deadlines,
    /// `None` once it has completed.
    fut: Option<F>,
    after: Duration,
    deadline: Instant,
    /// (shard, slot) while registered.
    slot: Option<(usize, usize)>,
}

impl<F> Deadline<'_, F> {
    /// Enters the call in this thread's shard.
    fn register(&mut self, waker: &Waker) {
        let shared = &self.deadlines.shared;
        let s = shard::this_thread();
        let index = {
            let mut slots = shared.shards[s].0.lock();
            let entry = Slot::Waiting {
                deadline: self.deadline,
                waker: waker.clone(),
            };
            match slots.free.pop() {
                Some(i) => {
                    slots.slots[i] = entry;
                    i
                }
                None => {
                    slots.slots.push(entry);
                    slots.slots.len() - 1
                }
            }
        };
        self.slot = Some((s, index));
        if shared.nanos(self.deadline) < shared.next_wake.load(Ordering::SeqCst) {
            shared.notify.notify_one();
        }
    }

    /// Refreshes the waker; false when the ticker found the deadline passed.
    fn still_waiting(&self, (s, i): (usize, usize), waker: &Waker) -> bool {
        let mut slots = self.deadlines.shared.shards[s].0.lock();
        match slots.slots.get_mut(i) {
            Some(Slot::Waiting { waker: kept, .. }) => {
                if !kept.will_wake(waker) {
                    kept.clone_from(waker);
                }
                true
            }
            _ => false,
        }
    }

    /// Frees the call's slot.
    fn release(&mut self) {
        if let Some((s, i)) = self.slot.take() {
            let mut slots = self.deadlines.shared.shards[s].0.lock();
            if let Some(slot) = slots.slots.get_mut(i) {
                *slot = Slot::Free;
                slots.free.push(i);
            }
        }
    }
}

impl<F: Future + Unpin> Future for Deadline<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(fut) = this.fut.as_mut() else {
            return Poll::Ready(Err(Elapsed::new(this.after)));
        };
        if let Poll::Ready(out) = Pin::new(fut).poll(cx) {
            this.fut = None;
            this.release();
            return Poll::Ready(Ok(out));
        }
        match this.slot {
            None => this.register(cx.waker()),
            Some(slot) if this.still_waiting(slot, cx.waker()) => {}
            Some(_) => {
                this.fut = None;
                this.release();
                return Poll::Ready(Err(Elapsed::new(this.after)));
            }
        }
        this.deadlines.ensure_ticker();
        Poll::Pending
    }
}

impl<F> Drop for Deadline<'_, F> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending_for(d: Duration) -> Pin<Box<tokio::time::Sleep>> {
        Box::pin(tokio::time::sleep(d))
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_deadline_is_cut_within_the_resolution() {
        let deadlines = Deadlines::new();
        let start = Instant::now();
        let out = deadlines
            .run(
                Duration::from_millis(250),
                pending_for(Duration::from_secs(60)),
            )
            .await;
        let took = start.elapsed();
        assert_eq!(out, Err(Elapsed::new(Duration::from_millis(250))));
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took <= Duration::from_millis(250) + RESOLUTION, "{took:?}");
        assert_eq!(deadlines.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_ends_in_time_keeps_its_result_and_frees_its_slot() {
        let deadlines = Deadlines::new();
        let out = deadlines
            .run(
                Duration::from_secs(1),
                Box::pin(async {
                    tokio::time::sleep(Duration::from_millis(900)).await;
                    "done"
                }),
            )
            .await;
        assert_eq!(out, Ok("done"));
        assert_eq!(deadlines.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_too_long_for_the_clock_never_cuts_the_call() {
        let deadlines = Deadlines::new();
        let out = deadlines
            .run(
                Duration::MAX,
                Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "done"
                }),
            )
            .await;
        assert_eq!(out, Ok("done"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_deadline_registered_later_wakes_the_sleeping_ticker() {
        let deadlines = Deadlines::new();
        let long = deadlines.run(
            Duration::from_secs(30),
            pending_for(Duration::from_secs(60)),
        );
        let short = deadlines.run(
            Duration::from_millis(100),
            pending_for(Duration::from_secs(60)),
        );
        let start = Instant::now();
        // The long call registers first, so the ticker sleeps towards 30 s
        // until the short one tells it of its deadline.
        let (long, short) = tokio::join!(long, async {
            tokio::task::yield_now().await;
            let out = short.await;
            (out, start.elapsed())
        });
        let (short, short_took) = short;
        assert_eq!(short, Err(Elapsed::new(Duration::from_millis(100))));
        assert!(
            short_took <= Duration::from_millis(100) + RESOLUTION,
            "{short_took:?}"
        );
        assert_eq!(long, Err(Elapsed::new(Duration::from_secs(30))));
    }

    #[tokio::test(start_paused = true)]
    async fn many_calls_with_one_timeout_each_end_at_their_own_deadline() {
        let deadlines = Arc::new(Deadlines::new());
        let start = Instant::now();
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..20u64 {
            let deadlines = Arc::clone(&deadlines);
            calls.spawn(async move {
                tokio::time::sleep(Duration::from_millis(7 * i)).await;
                let begun = start.elapsed();
                let out = deadlines
                    .run(
                        Duration::from_millis(50),
                        pending_for(Duration::from_secs(60)),
                    )
                    .await;
                (out, start.elapsed() - begun)
            });
        }
        for (out, took) in calls.join_all().await {
            assert!(out.is_err());
            assert!(took >= Duration::from_millis(50), "{took:?}");
            assert!(took <= Duration::from_millis(50) + RESOLUTION, "{took:?}");
        }
        assert_eq!(deadlines.waiting(), 0);
    }

    #[test]
    fn a_ticker_whose_runtime_shut_down_is_replaced_on_the_next_runtime() {
        let deadlines = Deadlines::new();
        // A call cut on a runtime of its own, dropped afterwards.
        let cut_on_a_new_runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime")
                .block_on(async {
                    deadlines
                        .run(
                            Duration::from_millis(5),
                            pending_for(Duration::from_secs(60)),
                        )
                        .await
                })
        };
        assert!(cut_on_a_new_runtime().is_err());
        assert!(!deadlines.shared.ticking.load(Ordering::Acquire));
        assert!(cut_on_a_new_runtime().is_err());
    }
}
