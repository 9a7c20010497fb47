//! The data structures behind the memoization: the set of linearized operations, interned
//! model states, and the table of visited configurations.
//!
//! A configuration of the search is (set of operations linearized so far, model state).
//! Reaching the same configuration twice cannot lead anywhere new, so the search
//! remembers every configuration it has entered (Lowe's memoization, as in Porcupine).
//!
//! Two things keep the table small. States are interned, so a configuration stores a
//! `u32` state id. And the linearized set is stored relative to its *front*, the first return
//! event of a complete operation not yet linearized: every operation returning before the
//! front is linearized, none called after it is, so the set is fully described by the front
//! and one bit per operation open across it (usually a few dozen, not the whole history).

use std::collections::HashMap;
use std::hash::Hash;

use crate::hash::{BuildIdentity, fx_hash, mix64};

/// A fixed-size set of operation indices.
#[derive(Debug, Clone)]
pub(crate) struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    /// An empty set able to hold indices `0..len`.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
        }
    }

    #[inline]
    pub(crate) fn insert(&mut self, index: u32) {
        self.words[index as usize / 64] |= 1 << (index % 64);
    }

    #[inline]
    pub(crate) fn remove(&mut self, index: u32) {
        self.words[index as usize / 64] &= !(1 << (index % 64));
    }

    #[inline]
    pub(crate) fn contains(&self, index: u32) -> bool {
        self.words[index as usize / 64] >> (index % 64) & 1 == 1
    }
}

const NONE: u32 = u32::MAX;

/// Converts a table length to an id. Four billion entries would not fit in memory first.
fn id(len: usize) -> u32 {
    u32::try_from(len).expect("more than 2^32 memo entries")
}

/// Every distinct state seen, each stored once and named by a `u32`.
pub(crate) struct Interner<S> {
    heads: HashMap<u64, u32, BuildIdentity>,
    next: Vec<u32>,
    states: Vec<S>,
}

impl<S: Eq + Hash> Interner<S> {
    pub(crate) fn new() -> Self {
        Self {
            heads: HashMap::default(),
            next: Vec::new(),
            states: Vec::new(),
        }
    }

    /// The id of `state`, adding it if new.
    pub(crate) fn intern(&mut self, state: S) -> u32 {
        let hash = fx_hash(&state);
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let mut at = head;
        while at != NONE {
            if self.states[at as usize] == state {
                return at;
            }
            at = self.next[at as usize];
        }
        let new = id(self.states.len());
        self.states.push(state);
        self.next.push(head);
        self.heads.insert(hash, new);
        new
    }

    /// The state named `id`.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> &S {
        &self.states[id as usize]
    }
}

/// One visited configuration: front event, state id and the bits of the open operations
/// (`bits_len` words at `bits_at` in the shared arena).
struct Entry {
    front: u32,
    state: u32,
    bits_at: u32,
    bits_len: u32,
    next: u32,
}

/// The visited configurations.
pub(crate) struct Memo {
    heads: HashMap<u64, u32, BuildIdentity>,
    entries: Vec<Entry>,
    bits: Vec<u64>,
}

impl Memo {
    pub(crate) fn new() -> Self {
        Self {
            heads: HashMap::default(),
            entries: Vec::new(),
            bits: Vec::new(),
        }
    }

    fn key_hash(front: u32, state: u32, open_bits: &[u64]) -> u64 {
        mix64(fx_hash(&(front, state, open_bits)))
    }

    fn find(&self, hash: u64, front: u32, state: u32, open_bits: &[u64]) -> Option<u32> {
        let mut at = self.heads.get(&hash).copied().unwrap_or(NONE);
        while at != NONE {
            let e = &self.entries[at as usize];
            if e.front == front
                && e.state == state
                && self.bits[e.bits_at as usize..][..e.bits_len as usize] == *open_bits
            {
                return Some(at);
            }
            at = e.next;
        }
        None
    }

    /// Whether the configuration was recorded.
    pub(crate) fn contains(&self, front: u32, state: u32, open_bits: &[u64]) -> bool {
        let hash = Self::key_hash(front, state, open_bits);
        self.find(hash, front, state, open_bits).is_some()
    }

    /// Records the configuration; returns `false` if it was already there.
    pub(crate) fn insert(&mut self, front: u32, state: u32, open_bits: &[u64]) -> bool {
        let hash = Self::key_hash(front, state, open_bits);
        if self.find(hash, front, state, open_bits).is_some() {
            return false;
        }
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let new = id(self.entries.len());
        self.entries.push(Entry {
            front,
            state,
            bits_at: id(self.bits.len()),
            bits_len: id(open_bits.len()),
            next: head,
        });
        self.bits.extend_from_slice(open_bits);
        self.heads.insert(hash, new);
        true
    }

    /// Number of configurations recorded.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_insert_remove_contains() {
        let mut set = Bitset::new(130);
        for i in [0, 63, 64, 129] {
            assert!(!set.contains(i));
            set.insert(i);
            assert!(set.contains(i));
        }
        set.remove(64);
        assert!(!set.contains(64));
        assert!(set.contains(63) && set.contains(129));
    }

    #[test]
    fn interner_gives_equal_states_one_id() {
        let mut interner = Interner::new();
        let a = interner.intern("a".to_string());
        let b = interner.intern("b".to_string());
        assert_ne!(a, b);
        assert_eq!(interner.intern("a".to_string()), a);
        assert_eq!(interner.get(b), "b");
    }

    #[test]
    fn memo_detects_repeats_by_front_state_and_bits() {
        let mut memo = Memo::new();
        assert!(memo.insert(3, 0, &[0b101]));
        assert!(!memo.insert(3, 0, &[0b101]));
        assert!(memo.insert(3, 0, &[0b100]));
        assert!(memo.insert(3, 1, &[0b101]));
        assert!(memo.insert(4, 0, &[0b101]));
        assert!(memo.insert(4, 0, &[]));
        assert!(!memo.insert(4, 0, &[]));
        assert_eq!(memo.len(), 5);
        assert!(memo.contains(3, 0, &[0b100]));
        assert!(!memo.contains(3, 0, &[0b110]));
    }
}
