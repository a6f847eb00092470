//! The bulkhead: at most N calls at once; a call that finds no free slot
//! waits up to the maximum wait, then fails with [`BulkheadFull`].

mod layer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use layer::{BulkheadLayer, BulkheadService};

use crate::breaker::ConfigError;
use crate::error::{BulkheadFull, CallError};

/// Configuration of a [`Bulkhead`] (Resilience4j's semaphore bulkhead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadConfig {
    /// Calls allowed at once. Default is 25.
    pub max_concurrent_calls: u32,
    /// How long a call may wait for a free slot. Default is zero: fail at once.
    pub max_wait_duration: Duration,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 25,
            max_wait_duration: Duration::ZERO,
        }
    }
}

#[derive(Debug)]
struct Inner {
    name: Arc<str>,
    config: BulkheadConfig,
    slots: Arc<Semaphore>,
}

/// Limits concurrent calls. Cheap to clone; clones share the slots.
///
/// ```
/// use circuit_breaker::{Bulkhead, BulkheadConfig};
///
/// let bulkhead = Bulkhead::new("db", BulkheadConfig { max_concurrent_calls: 1, ..Default::default() })
///     .expect("valid config");
/// let held = bulkhead.try_acquire().expect("one slot is free");
/// assert!(bulkhead.try_acquire().is_err());
/// drop(held);
/// assert_eq!(bulkhead.available_slots(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Bulkhead {
    inner: Arc<Inner>,
}

/// One occupied slot of a bulkhead, freed on drop.
#[derive(Debug)]
pub struct BulkheadPermit {
    _slot: OwnedSemaphorePermit,
}

impl Bulkhead {
    /// A bulkhead named `name`.
    pub fn new(name: impl Into<Arc<str>>, config: BulkheadConfig) -> Result<Self, ConfigError> {
        if config.max_concurrent_calls == 0 {
            return Err(ConfigError::OutOfRange {
                field: "max_concurrent_calls",
                expected: "at least 1",
                got: "0".into(),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.into(),
                slots: Arc::new(Semaphore::new(config.max_concurrent_calls as usize)),
                config,
            }),
        })
    }

    /// The bulkhead's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The bulkhead's configuration.
    pub fn config(&self) -> &BulkheadConfig {
        &self.inner.config
    }

    /// Free slots now.
    pub fn available_slots(&self) -> usize {
        self.inner.slots.available_permits()
    }

    fn full(&self) -> BulkheadFull {
        BulkheadFull::new(self.inner.name.clone())
    }

    /// Takes a slot if one is free, without waiting.
    pub fn try_acquire(&self) -> Result<BulkheadPermit, BulkheadFull> {
        self.inner
            .slots
            .clone()
            .try_acquire_owned()
            .map(|slot| BulkheadPermit { _slot: slot })
            .map_err(|_| self.full())
    }

    /// Takes a slot, waiting up to the maximum wait for one.
    pub async fn acquire(&self) -> Result<BulkheadPermit, BulkheadFull> {
        let wait = self.inner.config.max_wait_duration;
        if wait.is_zero() {
            return self.try_acquire();
        }
        match tokio::time::timeout(wait, self.inner.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(BulkheadPermit { _slot: slot }),
            // The semaphore is never closed; a timeout means no slot in time.
            _ => Err(self.full()),
        }
    }

    /// Runs `f`'s future in a slot.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _slot = self.acquire().await?;
        f().await.map_err(CallError::Inner)
    }

    /// Runs an already-guarded future in a slot.
    pub(crate) async fn run<Fut, T, E>(&self, fut: Fut) -> Result<T, CallError<E>>
    where
        Fut: Future<Output = Result<T, CallError<E>>>,
    {
        let _slot = self.acquire().await?;
        fut.await
    }
}
