//! [`ShardedCounter`]: a counter that threads bump without contending, one
//! cache line per shard.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::CacheLine;

const SHARDS: usize = 8;

/// Hands out shard indices round-robin, so the first threads get distinct
/// shards.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn my_shard() -> usize {
    SHARD.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            s.set(i);
        }
        i
    })
}

/// A counter summed on read.
#[derive(Debug, Default)]
pub(crate) struct ShardedCounter {
    shards: [CacheLine<AtomicU64>; SHARDS],
}

impl ShardedCounter {
    #[inline]
    pub(crate) fn increment(&self) {
        self.shards[my_shard()].0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}
