//! The set of linearized operations and the memo table of visited configurations.
//!
//! A configuration of the search is (set of operations linearized so far, model state).
//! Reaching the same configuration twice cannot lead anywhere new, so the search
//! remembers every configuration it has entered (Lowe's memoization, as in Porcupine).

use std::collections::HashMap;
use std::hash::Hash;

use crate::hash::{BuildIdentity, fx_hash, mix64};

/// A fixed-size set of operation indices with an incrementally maintained hash.
///
/// The hash is the XOR of a per-index random word (Zobrist hashing), so setting or
/// clearing a bit updates it in O(1) instead of rehashing all words.
#[derive(Debug, Clone)]
pub(crate) struct Bitset {
    words: Vec<u64>,
    hash: u64,
}

impl Bitset {
    /// An empty set able to hold indices `0..len`.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64).max(1)],
            hash: 0,
        }
    }

    #[inline]
    fn zobrist(index: u32) -> u64 {
        mix64(u64::from(index))
    }

    /// Adds `index`. The caller guarantees it was absent (the search only adds an operation
    /// it has not linearized yet), which keeps the hash consistent.
    #[inline]
    pub(crate) fn insert(&mut self, index: u32) {
        let (word, bit) = (index as usize / 64, index % 64);
        debug_assert_eq!(self.words[word] >> bit & 1, 0, "bit {index} already set");
        self.words[word] |= 1 << bit;
        self.hash ^= Self::zobrist(index);
    }

    /// Removes `index`, which the caller guarantees is present.
    #[inline]
    pub(crate) fn remove(&mut self, index: u32) {
        let (word, bit) = (index as usize / 64, index % 64);
        debug_assert_eq!(self.words[word] >> bit & 1, 1, "bit {index} not set");
        self.words[word] &= !(1 << bit);
        self.hash ^= Self::zobrist(index);
    }

    /// The hash of the set (independent of insertion order).
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The words, 64 indices per word.
    #[inline]
    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }
}

/// The visited configurations.
///
/// Entries live in flat arrays (bitset words back to back, states in a `Vec`); the hash map
/// only maps a hash to the newest entry with that hash, and entries with equal hashes are
/// chained through `next`.
pub(crate) struct Memo<S> {
    heads: HashMap<u64, u32, BuildIdentity>,
    next: Vec<u32>,
    bits: Vec<u64>,
    states: Vec<S>,
    words: usize,
}

const NONE: u32 = u32::MAX;

impl<S: Clone + Eq + Hash> Memo<S> {
    /// An empty table for bitsets of `words` words.
    pub(crate) fn new(words: usize) -> Self {
        Self {
            heads: HashMap::default(),
            next: Vec::new(),
            bits: Vec::new(),
            states: Vec::new(),
            words,
        }
    }

    /// Records the configuration `(set, state)`; returns `false` if it was already there.
    pub(crate) fn insert(&mut self, set: &Bitset, state: &S) -> bool {
        debug_assert_eq!(set.words().len(), self.words);
        let hash = set.hash() ^ mix64(fx_hash(state));
        let mut at = self.heads.get(&hash).copied().unwrap_or(NONE);
        let head = at;
        while at != NONE {
            let i = at as usize;
            if self.bits[i * self.words..(i + 1) * self.words] == *set.words()
                && self.states[i] == *state
            {
                return false;
            }
            at = self.next[i];
        }
        // More than 4 billion configurations would not fit in memory anyway; saturating
        // keeps the chain well-formed if it ever happened.
        let index = u32::try_from(self.states.len()).unwrap_or(NONE - 1);
        self.next.push(head);
        self.bits.extend_from_slice(set.words());
        self.states.push(state.clone());
        self.heads.insert(hash, index);
        true
    }

    /// Number of configurations recorded.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_hash_is_order_independent() {
        let mut a = Bitset::new(130);
        let mut b = Bitset::new(130);
        for i in [3, 64, 129] {
            a.insert(i);
        }
        for i in [129, 3, 64] {
            b.insert(i);
        }
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.words(), b.words());
        a.remove(64);
        assert_ne!(a.hash(), b.hash());
        b.remove(64);
        assert_eq!(a.hash(), b.hash());
        let empty = Bitset::new(130);
        a.remove(3);
        a.remove(129);
        assert_eq!(a.hash(), empty.hash());
        assert_eq!(a.words(), empty.words());
    }

    #[test]
    fn memo_detects_repeats_by_set_and_state() {
        let mut memo = Memo::new(1);
        let mut set = Bitset::new(10);
        assert!(memo.insert(&set, &"a"));
        assert!(!memo.insert(&set, &"a"));
        assert!(memo.insert(&set, &"b"));
        set.insert(4);
        assert!(memo.insert(&set, &"a"));
        assert!(!memo.insert(&set, &"a"));
        assert_eq!(memo.len(), 3);
    }
}
