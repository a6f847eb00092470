//! Per-thread shards: state that every I/O worker writes on each request,
//! split so that two workers never write to the same cache line.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Shards of per-thread state (more than the I/O workers of any machine we
/// run on, so each worker usually has its own).
pub(crate) const SHARDS: usize = 16;

/// A value on its own cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// This thread's shard index, below [`SHARDS`].
pub(crate) fn this_thread() -> usize {
    SHARD.with(|s| *s)
}

/// [`SHARDS`] default values, each on its own cache lines.
pub(crate) fn shards<T: Default>() -> Box<[Padded<T>]> {
    (0..SHARDS).map(|_| Padded::default()).collect()
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
}
