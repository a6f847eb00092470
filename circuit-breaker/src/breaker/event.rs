//! Observing a breaker: [`Event`]s of state transitions and call outcomes,
//! delivered to [`EventStream`] subscribers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

use super::State;

/// Events a subscriber can fall behind by before it misses some.
pub(crate) const EVENT_BUFFER: usize = 256;

/// Something that happened to a breaker (Resilience4j's event types).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The breaker's name.
    pub breaker: Arc<str>,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of [`Event`].
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The breaker moved from one state to another.
    StateTransition {
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
    },
    /// A call succeeded. `elapsed` is set when calls are timed.
    Success {
        /// How long the call took.
        elapsed: Option<Duration>,
    },
    /// A call failed.
    Error {
        /// How long the call took.
        elapsed: Option<Duration>,
    },
    /// A call's outcome was classified as ignored.
    IgnoredError {
        /// How long the call took.
        elapsed: Option<Duration>,
    },
    /// A call was refused.
    NotPermitted,
    /// The failure rate reached its threshold.
    FailureRateExceeded {
        /// The failure rate, in percent.
        rate: f32,
    },
    /// The slow-call rate reached its threshold.
    SlowCallRateExceeded {
        /// The slow-call rate, in percent.
        rate: f32,
    },
    /// The breaker was reset to CLOSED with an empty window.
    Reset,
}

/// The sending side: a broadcast channel, and a count of live subscribers so
/// that call outcomes cost nothing when nobody listens.
#[derive(Debug)]
pub(crate) struct Publisher {
    sender: broadcast::Sender<Event>,
    subscribers: Arc<AtomicUsize>,
}

impl Publisher {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(EVENT_BUFFER).0,
            subscribers: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether anyone listens.
    #[inline]
    pub(crate) fn wanted(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn send(&self, breaker: &Arc<str>, kind: EventKind) {
        if self.wanted() {
            // An error only means every subscriber left meanwhile.
            let _ = self.sender.send(Event {
                breaker: breaker.clone(),
                kind,
            });
        }
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        EventStream {
            receiver: self.sender.subscribe(),
            subscribers: self.subscribers.clone(),
            missed: 0,
        }
    }
}

/// A subscription to a breaker's events (see
/// [`CircuitBreaker::subscribe`](super::CircuitBreaker::subscribe)). A slow
/// subscriber misses the oldest events instead of slowing the breaker; it can
/// see how many with [`missed`](Self::missed).
#[derive(Debug)]
pub struct EventStream {
    receiver: broadcast::Receiver<Event>,
    subscribers: Arc<AtomicUsize>,
    missed: u64,
}

impl EventStream {
    /// The next event; `None` once the breaker is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        loop {
            match self.receiver.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.missed += n,
                Err(_) => return None,
            }
        }
    }

    /// Events this subscriber missed by falling behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}
