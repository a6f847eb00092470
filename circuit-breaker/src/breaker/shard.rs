//! [`ShardedCounter`]: a counter that threads bump without contending, one
//! cache line per shard.

use std::sync::atomic::{AtomicU64, Ordering};

use cloud_runtime::shard::{CacheLine, this_thread};

const SHARDS: usize = 8;

/// A counter summed on read.
#[derive(Debug, Default)]
pub(crate) struct ShardedCounter {
    shards: [CacheLine<AtomicU64>; SHARDS],
}

impl ShardedCounter {
    #[inline]
    pub(crate) fn increment(&self) {
        self.shards[this_thread() % SHARDS]
            .0
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}
