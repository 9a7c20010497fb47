//! Hash functions: the lab's partition hash and a fast, deterministic hasher for the
//! map-side combiner.

use std::hash::{BuildHasher, Hasher};

/// The lab's `ihash`: FNV-1a 32-bit over the key bytes, masked with `0x7fffffff`.
///
/// Never `std::hash::Hash`: partitions must be the same on every platform and compiler.
///
/// ```
/// assert_eq!(stepwise_mr::ihash(b""), 0x811c_9dc5 & 0x7fff_ffff);
/// assert_eq!(stepwise_mr::ihash(b"a"), 0xe40c_292c & 0x7fff_ffff);
/// ```
pub fn ihash(key: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in key {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash & 0x7fff_ffff
}

/// The reduce bucket of `key` among `n_reduce` buckets: `ihash(key) % n_reduce`.
///
/// `n_reduce` must be at least 1 (configs are validated before use).
pub fn partition(key: &[u8], n_reduce: u32) -> u32 {
    ihash(key) % n_reduce.max(1)
}

/// Builds [`FxHasher`]s: a fixed-seed hasher, so hash-map iteration order is the same in
/// every run given the same insertions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FxBuildHasher;

impl BuildHasher for FxBuildHasher {
    type Hasher = FxHasher;

    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

/// The multiply-rotate hash used inside rustc (FxHash): a few cycles per 8 bytes, good
/// enough for in-memory tables keyed by words. Not for untrusted adversarial keys at scale
/// (no DoS resistance), which is acceptable for a batch job over the user's own inputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference vectors of FNV-1a 32 (before the lab's mask).
    #[test]
    fn ihash_matches_fnv1a_32_vectors() {
        assert_eq!(ihash(b""), 0x811c_9dc5 & 0x7fff_ffff);
        assert_eq!(ihash(b"a"), 0xe40c_292c & 0x7fff_ffff);
        assert_eq!(ihash(b"foobar"), 0xbf9c_f968 & 0x7fff_ffff);
    }

    #[test]
    fn partition_is_in_range_and_stable() {
        for n in 1..20 {
            for key in [&b"the"[..], b"Sherlock", b"", b"\xff\xfe"] {
                let p = partition(key, n);
                assert!(p < n);
                assert_eq!(p, ihash(key) % n);
            }
        }
        assert_eq!(partition(b"anything", 0), 0, "0 buckets is treated as 1");
    }

    #[test]
    fn fx_hasher_is_deterministic_and_length_sensitive() {
        let hash = |bytes: &[u8]| {
            let mut h = FxBuildHasher.build_hasher();
            h.write(bytes);
            h.finish()
        };
        assert_eq!(hash(b"word"), hash(b"word"));
        assert_ne!(hash(b"word"), hash(b"words"));
        assert_ne!(hash(b"abcdefghi"), hash(b"abcdefgh"));
    }
}
