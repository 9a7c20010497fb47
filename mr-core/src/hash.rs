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

/// Builds [`WordHasher`]s: a fixed-seed hasher, so hash-map iteration order is the same in
/// every run given the same insertions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WordHashBuilder;

impl BuildHasher for WordHashBuilder {
    type Hasher = WordHasher;

    fn build_hasher(&self) -> WordHasher {
        WordHasher(0x243f_6a88_85a3_08d3)
    }
}

/// A small, fast hasher for in-memory tables keyed by words: each 8-byte chunk is mixed in
/// with a folded 64x64->128-bit multiply (as foldhash and wyhash do), so both the low bits
/// (the bucket index) and the high bits (hashbrown's tag) depend on every input bit.
///
/// Not keyed, so no protection against adversarial collisions: acceptable for a batch job
/// over the user's own inputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WordHasher(u64);

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHasher {
    #[inline]
    fn mix(a: u64, b: u64) -> u64 {
        let product = u128::from(a) * u128::from(b);
        (product as u64) ^ ((product >> 64) as u64)
    }
}

/// Reads 8 bytes at `at` (caller checks the bounds), little-endian.
#[inline]
fn read8(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Reads 4 bytes at `at` (caller checks the bounds), little-endian.
#[inline]
fn read4(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

impl Hasher for WordHasher {
    /// Short inputs are read with a few fixed-size, possibly overlapping loads (as wyhash
    /// does) instead of a variable-length copy; the length goes in through `write_usize`,
    /// which `[u8]`'s `Hash` calls, so overlapping reads cannot make two lengths collide.
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        let (a, b) = if n >= 8 {
            let mut at = 0;
            while n - at > 16 {
                self.0 = Self::mix(self.0 ^ read8(bytes, at), MULTIPLIER ^ read8(bytes, at + 8));
                at += 16;
            }
            (read8(bytes, at.min(n - 8)), read8(bytes, n - 8))
        } else if n >= 4 {
            (read4(bytes, 0), read4(bytes, n - 4))
        } else if n > 0 {
            (
                u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16,
                0,
            )
        } else {
            (0, 0)
        };
        self.0 = Self::mix(self.0 ^ a, MULTIPLIER ^ b);
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.0 = Self::mix(self.0 ^ u64::from(value), MULTIPLIER);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.0 = Self::mix(self.0 ^ value as u64, MULTIPLIER);
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
    fn word_hasher_is_deterministic_and_length_sensitive() {
        let hash = |bytes: &[u8]| {
            let mut h = WordHashBuilder.build_hasher();
            h.write(bytes);
            h.finish()
        };
        assert_eq!(hash(b"word"), hash(b"word"));
        assert_ne!(hash(b"word"), hash(b"words"));
        assert_ne!(hash(b"abcdefghi"), hash(b"abcdefgh"));
    }

    /// hashbrown takes the bucket from the low bits: they must spread well, or lookups
    /// degrade into long probe sequences (this is what made the earlier multiply-rotate
    /// hash slow here).
    #[test]
    fn low_bits_spread_like_a_random_function() {
        let text = crate::corpus::generate(3, 3_000_000);
        let mut words = std::collections::BTreeSet::new();
        crate::text::for_each_word(&text, |w| {
            words.insert(w);
        });
        let mut buckets = std::collections::HashSet::new();
        for w in &words {
            buckets.insert(WordHashBuilder.hash_one(w) & 0xffff);
        }
        // For n keys in 65536 buckets, a random function fills 65536 * (1 - e^(-n/65536)).
        let n = words.len() as f64;
        let expected = 65536.0 * (1.0 - (-n / 65536.0).exp());
        assert!(n > 20_000.0);
        assert!(
            buckets.len() as f64 > 0.97 * expected,
            "{} of {expected}",
            buckets.len()
        );
    }
}
