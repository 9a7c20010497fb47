//! Which shard a key belongs to: FNV-1a 64-bit over the key's bytes, modulo the number of
//! shards.
//!
//! The hash is written out here rather than taken from `std::hash`, whose output is not
//! stable across platforms or compiler versions: every client and server must agree on a
//! key's shard forever, so the function is part of the wire contract.
//!
//! ```
//! use stepwise_shard::key::{fnv1a64, key_to_shard};
//! assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
//! assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
//! assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
//! // shard = hash % nshards
//! assert_eq!(key_to_shard(b"a", 10), (0xaf63_dc4c_8601_ec8c_u64 % 10) as usize);
//! ```

/// The lab's number of shards (2020-2024; the 2025 lab uses 12). Configurable per
/// controller ([`Ctrler::new`](crate::ctrler::Ctrler::new)).
pub const NSHARDS: usize = 10;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64-bit: for each byte, `hash ^= byte; hash *= 0x100000001b3`, starting from
/// `0xcbf29ce484222325`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The shard of `key` among `nshards` shards: `fnv1a64(key) % nshards`.
///
/// # Panics
/// If `nshards` is 0 (a configuration always has at least one shard).
pub fn key_to_shard(key: &[u8], nshards: usize) -> usize {
    assert!(nshards > 0, "a configuration has at least one shard");
    (fnv1a64(key) % nshards as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_fnv1a64_vectors() {
        // From the FNV reference test suite (and DEPENDENCIES.md).
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn shard_vectors_for_the_lab_keys() {
        // Golden values (computed independently): changing them breaks every deployed
        // client and every stored shard.
        assert_eq!(fnv1a64(b"k0"), 0x08be_0e07_b562_230e);
        let got: Vec<usize> = (0..10)
            .map(|i| key_to_shard(format!("k{i}").as_bytes(), NSHARDS))
            .collect();
        assert_eq!(got, [2, 3, 0, 1, 6, 7, 4, 5, 4, 5]);
        assert_eq!(key_to_shard(b"", 10), 7);
        assert_eq!(key_to_shard(b"foobar", 12), 0);
    }
}
