//! Per-thread shards: state that several threads write on every request or
//! call, split so that two threads rarely write to the same cache line (a
//! write to a line another core has just written costs a transfer of the
//! line, far more than the write).
//!
//! Each thread takes the next [`this_thread`] index the first time it asks,
//! so the first [`SHARDS`] threads (a server's I/O workers, a runtime's
//! workers) each get their own. [`CacheLine`] keeps a value on lines of its
//! own.
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
    fn the_first_threads_get_different_shards() {
        let seen: std::collections::HashSet<usize> = (0..4)
            .map(|_| std::thread::spawn(this_thread).join().expect("thread"))
            .collect();
        // Indices are handed out in turn, so four threads started one
        // after the other get four different ones.
        assert_eq!(seen.len(), 4);
    }
}
