//! Per-thread shards: state that several threads write on every request or
//! call, split so that two threads rarely write to the same cache line (a
//! write to a line another core has just written costs a transfer of the
//! line, far more than the write).
//!
//! Each thread takes the next [`this_thread`] index the first time it asks,
//! so the first [`SHARDS`] threads (a server's I/O workers, a runtime's
//! workers) each get their own. [`CacheLine`] keeps a value on lines of its
//! own. [`ShardedArc`] hands out an `Arc` through per-thread handles, so
//! that holding it for a call writes a reference count of the thread's own.
//!
//! ```
//! use cloud_runtime::shard;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! let hits = shard::shards::<AtomicU64>();
//! hits[shard::this_thread()].0.fetch_add(1, Ordering::Relaxed);
//! let total: u64 = hits.iter().map(|h| h.0.load(Ordering::Relaxed)).sum();
//! assert_eq!(total, 1);
//! ```

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Shards of per-thread state: more than the worker threads of the
/// machines we run on, so each worker usually has its own.
pub const SHARDS: usize = 16;

/// A value on cache lines of its own (128 bytes: two 64-byte lines, as
/// adjacent-line prefetching pairs them).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CacheLine<T>(pub T);

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// This thread's shard index, below [`SHARDS`]; the same for the thread's
/// whole life.
pub fn this_thread() -> usize {
    SHARD.with(|s| *s)
}

/// [`SHARDS`] default values, each on its own cache lines.
pub fn shards<T: Default>() -> Box<[CacheLine<T>]> {
    (0..SHARDS).map(|_| CacheLine::default()).collect()
}

/// An `Arc<T>` held through per-thread handles.
///
/// Every clone of one `Arc` writes the same reference count: a value that
/// each call clones and drops on every core (a service's state, a
/// balancer's pool) moves that count's cache line between cores twice per
/// call. [`local`](Self::local) clones this thread's own handle instead: a
/// separate count, on lines of its own, that other threads write only when
/// a call moved threads before ending.
///
/// ```
/// use cloud_runtime::shard::ShardedArc;
/// use std::sync::Arc;
///
/// let shared = ShardedArc::new(Arc::new(String::from("users")));
/// let held = shared.local();
/// assert_eq!(held.as_str(), "users");
/// assert!(Arc::ptr_eq(ShardedArc::arc(&shared), held.arc()));
/// ```
#[derive(Debug)]
pub struct ShardedArc<T> {
    handles: Box<[Arc<CacheLine<Arc<T>>>]>,
}

impl<T> ShardedArc<T> {
    /// Handles on `value` for [`SHARDS`] threads.
    pub fn new(value: Arc<T>) -> Self {
        ShardedArc {
            handles: (0..SHARDS)
                .map(|_| Arc::new(CacheLine(Arc::clone(&value))))
                .collect(),
        }
    }

    /// This thread's handle, cloned.
    pub fn local(&self) -> Local<T> {
        Local(Arc::clone(&self.handles[this_thread()]))
    }

    /// The `Arc` itself (an associated function, so it does not hide a
    /// method of `T`).
    pub fn arc(this: &Self) -> &Arc<T> {
        &this.handles[0].0
    }
}

impl<T> Deref for ShardedArc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.handles[0].0
    }
}

/// A thread's handle on a [`ShardedArc`]'s value; keeps the value alive.
#[derive(Debug)]
pub struct Local<T>(Arc<CacheLine<Arc<T>>>);

impl<T> Local<T> {
    /// The `Arc` it holds.
    pub fn arc(&self) -> &Arc<T> {
        &self.0.0
    }
}

impl<T> Clone for Local<T> {
    fn clone(&self) -> Self {
        Local(Arc::clone(&self.0))
    }
}

impl<T> Deref for Local<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_shard_and_shards_do_not_share_cache_lines() {
        let here = this_thread();
        assert!(here < SHARDS);
        assert_eq!(this_thread(), here);
        let shards = shards::<u64>();
        let a = std::ptr::from_ref(&shards[0]) as usize;
        let b = std::ptr::from_ref(&shards[1]) as usize;
        assert!(b - a >= 128);
    }

    #[test]
    fn a_local_handle_keeps_the_value_alive_and_counts_apart_from_other_threads() {
        let value = Arc::new(5u32);
        let shared = ShardedArc::new(Arc::clone(&value));
        let here = shared.local();
        let there = std::thread::spawn({
            let shared_value = Arc::clone(ShardedArc::arc(&shared));
            move || *shared_value
        });
        assert_eq!(there.join().expect("thread"), 5);
        // The value's own count: the test's, one per handle, none per local.
        assert_eq!(Arc::strong_count(&value), 1 + SHARDS);
        assert_eq!(Arc::strong_count(&here.0), 2);
        drop(shared);
        assert_eq!(*here, 5);
        assert_eq!(Arc::strong_count(&value), 2);
        drop(here);
        assert_eq!(Arc::strong_count(&value), 1);
    }

    #[test]
    fn the_first_threads_get_different_shards() {
        let seen: std::collections::HashSet<usize> = (0..4)
            .map(|_| std::thread::spawn(this_thread).join().expect("thread"))
            .collect();
        // Indices are handed out in turn, so four threads started one
        // after the other get four different ones.
        assert_eq!(seen.len(), 4);
    }
}
