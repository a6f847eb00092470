//! Hashing and randomness for picking, with no allocation: FNV-1a for
//! sticky keys, jump consistent hashing to a bucket, and a per-thread
//! wyrand generator.

use std::cell::Cell;

/// FNV-1a, 64 bits: stable across processes, so the same key picks the
/// same instance in every client.
#[inline]
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Lamping and Veach's jump consistent hash: a bucket in `0..buckets` for
/// `key`; growing the bucket count moves only `1/n` of the keys.
#[inline]
pub(crate) fn jump(mut key: u64, buckets: usize) -> usize {
    let buckets = i64::try_from(buckets).unwrap_or(i64::MAX);
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b.wrapping_add(1) as f64) * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    usize::try_from(b.max(0)).unwrap_or(0)
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(rand::random::<u64>() | 1);
}

/// A random `u64` from a per-thread wyrand: a few instructions, no lock.
#[inline]
pub(crate) fn random() -> u64 {
    RNG.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// A random index below `n` (`n > 0`), by multiply-shift.
#[inline]
pub(crate) fn below(n: usize) -> usize {
    ((u128::from(random()) * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hash_is_stable_and_moves_few_keys_when_growing() {
        let before: Vec<usize> = (0..1000u64)
            .map(|k| jump(fnv1a(&k.to_le_bytes()), 10))
            .collect();
        let again: Vec<usize> = (0..1000u64)
            .map(|k| jump(fnv1a(&k.to_le_bytes()), 10))
            .collect();
        assert_eq!(before, again);
        let after: Vec<usize> = (0..1000u64)
            .map(|k| jump(fnv1a(&k.to_le_bytes()), 11))
            .collect();
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert!(moved < 200, "{moved} of 1000 moved; about 91 expected");
        assert!(after.iter().all(|b| *b < 11));
        assert_eq!(jump(42, 1), 0);
    }

    proptest::proptest! {
        #[test]
        fn jump_and_below_stay_in_range(key in proptest::num::u64::ANY, n in 1usize..10_000) {
            proptest::prop_assert!(jump(key, n) < n);
            proptest::prop_assert!(below(n) < n);
        }
    }
}
