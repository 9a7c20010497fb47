//! A fast, deterministic hasher for the store's and the session table's maps (no
//! process-random seed: cores take no OS randomness). Iteration order of these maps never
//! reaches any output: snapshots sort the keys first.

use std::hash::{BuildHasher, Hasher};

/// FxHash-style word mixing with a murmur3 finalizer, seeded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHasher {
    hash: u64,
}

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

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
        // murmur3's fmix64: every input bit affects every output bit.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
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
}
