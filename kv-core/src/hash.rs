//! A fast, deterministic hasher for the store's and the session table's maps (no
//! process-random seed: cores take no OS randomness). Iteration order of these maps never
//! reaches any output: snapshots sort the keys first.

use std::hash::{BuildHasher, Hasher};

/// FxHash-style word mixing with a folded-multiply finalizer, seeded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHasher {
    hash: u64,
}

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
/// The finalizer's multiplier (the fractional digits of pi, as foldhash uses).
const FOLD: u64 = 0x24_3f_6a_88_85_a3_08_d3;

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Keys of 8 to 16 bytes (the common case): two words, the second overlapping the
        // first when shorter than 16. Together with the length (hashed before the bytes by
        // `Hash for [u8]`) they determine every byte, and no loop or copy is needed.
        if let (8..=16, Some(lo), Some(hi)) = (
            bytes.len(),
            bytes.first_chunk::<8>(),
            bytes.last_chunk::<8>(),
        ) {
            self.add(u64::from_le_bytes(*lo));
            self.add(u64::from_le_bytes(*hi));
            return;
        }
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("chunks of 8")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A folded multiply (as in foldhash): both halves of the 128-bit product, so the
        // high bits of the last word (where keys like `key-000000000123` differ) reach the
        // low bits (the bucket index) as well as the high ones (hashbrown's tag).
        let full = u128::from(self.hash) * u128::from(FOLD);
        (full as u64) ^ ((full >> 64) as u64)
    }
}

/// Builds [`KeyHasher`]s from a seed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeyHash {
    seed: u64,
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    #[inline]
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { hash: self.seed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_distinct_keys_differ() {
        let h = |b: &[u8]| KeyHash::default().hash_one(b);
        assert_eq!(h(b"key-000000000001"), h(b"key-000000000001"));
        assert_ne!(h(b"key-000000000001"), h(b"key-000000000002"));
        assert_ne!(h(b""), h(b"\0"));
        // Through the 8..=16-byte path: every byte and the length count.
        for len in 8..=16 {
            let key: Vec<u8> = (1..=len as u8).collect();
            for i in 0..len {
                let mut other = key.clone();
                other[i] ^= 0x40;
                assert_ne!(h(&key), h(&other), "len {len} byte {i}");
            }
            assert_ne!(h(&key), h(&key[..len - 1]), "len {len}");
        }
    }

    #[test]
    fn keys_that_differ_only_at_the_end_spread_over_buckets_and_tags() {
        // hashbrown takes the bucket from the low bits and a tag from the top 7: both must
        // depend on the last bytes of a key and on every bit of a small integer.
        let spread = |hashes: Vec<u64>| {
            let buckets: std::collections::BTreeSet<u64> =
                hashes.iter().map(|h| h & 0x3fff).collect();
            let tags: std::collections::BTreeSet<u64> = hashes.iter().map(|h| h >> 57).collect();
            (buckets.len(), tags.len())
        };
        let keys =
            (0..10_000u64).map(|i| KeyHash::default().hash_one(format!("key-{i:012}").as_bytes()));
        let ids = (0..10_000u64).map(|i| KeyHash::default().hash_one(i));
        for (buckets, tags) in [spread(keys.collect()), spread(ids.collect())] {
            // 10,000 random hashes fill about 7,000 of 16,384 buckets.
            assert!(buckets > 6_500, "{buckets} buckets");
            assert_eq!(tags, 128);
        }
    }
}
