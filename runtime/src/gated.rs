//! [`Gated`]: a future that is polled again only when it asked to be.
//!
//! A task that waits on a busy future (a connection) beside rare ones (a
//! deadline, a shutdown signal) polls every branch on every wake-up, and
//! each poll of a timer or a notification re-registers its waker. Wrapped
//! in a [`Gated`], a rare future gets its own waker: the task's wake-ups
//! that did not come from it cost one atomic load.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use cloud_runtime::gated::Gated;
//! use std::time::Duration;
//!
//! let mut deadline = Gated::new(Box::pin(tokio::time::sleep(Duration::from_millis(1))));
//! let busy = std::future::pending::<()>();
//! tokio::select! {
//!     () = busy => unreachable!(),
//!     () = &mut deadline => {}
//! }
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// `inner`, polled only on the first poll and after `inner` woke its task.
#[derive(Debug)]
pub struct Gated<F> {
    inner: F,
    signal: Arc<Signal>,
    /// `signal` as a waker, made once.
    waker: Waker,
    /// The task waker last given to `signal`.
    task: Option<Waker>,
}

#[derive(Debug)]
struct Signal {
    fired: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl<F> Gated<F> {
    /// Gates `inner`.
    pub fn new(inner: F) -> Gated<F> {
        let signal = Arc::new(Signal {
            fired: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Gated {
            inner,
            waker: Waker::from(Arc::clone(&signal)),
            signal,
            task: None,
        }
    }

    /// The gated future, to change it (reset a timer); call
    /// [`Gated::rearm`] after, so that the next poll reaches it.
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.inner
    }

    /// Makes the next poll reach the gated future.
    pub fn rearm(&mut self) {
        self.signal.fired.store(true, Ordering::Release);
    }
}

impl<F: Future + Unpin> Future for Gated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if !this.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            *this
                .signal
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            this.task = Some(cx.waker().clone());
        }
        if !this.signal.fired.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        this.signal.fired.store(false, Ordering::Release);
        // A wake-up between the store above and this poll sets `fired`
        // again, so none is lost.
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Counts its polls; ready when `ready` is set, waking through the
    /// waker of its last poll.
    struct Probe {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn the_inner_future_is_polled_only_after_it_woke_the_task() {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let inner_waker = Arc::new(Mutex::new(None::<Waker>));
        let mut gated = Gated::new(Probe {
            polls: Arc::clone(&polls),
            ready: Arc::clone(&ready),
            waker: Arc::clone(&inner_waker),
        });
        let woken = Arc::new(Flag(AtomicBool::new(false)));
        let task = Waker::from(Arc::clone(&woken));
        let mut cx = Context::from_waker(&task);
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1, "the first poll reaches it");
        for _ in 0..5 {
            assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1, "other wake-ups do not");
        ready.store(true, Ordering::SeqCst);
        let waker = inner_waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        waker.expect("the inner future left a waker").wake();
        assert!(
            woken.0.load(Ordering::SeqCst),
            "its wake-up reaches the task"
        );
        assert!(Pin::new(&mut gated).poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn rearm_lets_the_next_poll_through() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut gated = Gated::new(Probe {
            polls: Arc::clone(&polls),
            ready: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(Mutex::new(None)),
        });
        let task = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
        let mut cx = Context::from_waker(&task);
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        gated.rearm();
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_gated_timer_fires_beside_a_busy_future() {
        let mut deadline = Gated::new(Box::pin(tokio::time::sleep(Duration::from_secs(5))));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let sender = tokio::spawn(async move {
            for i in 0..100 {
                if tx.send(i).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let mut received = 0;
        let started = tokio::time::Instant::now();
        loop {
            tokio::select! {
                Some(_) = rx.recv() => received += 1,
                () = &mut deadline => break,
            }
        }
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(received > 0);
        sender.abort();
    }

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}
