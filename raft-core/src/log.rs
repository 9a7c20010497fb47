//! The in-memory Raft log: entries after the latest snapshot, plus the snapshot's position.

use std::collections::VecDeque;

use crate::message::{Entry, Index, SnapshotMeta, Term};

/// The log as one node holds it in memory. Entries up to `snapshot.index` have been
/// discarded (compacted); `entries[0]`, if any, has index `snapshot.index + 1`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftLog {
    snapshot: SnapshotMeta,
    entries: VecDeque<Entry>,
}

impl RaftLog {
    /// An empty log with no snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log that starts after `snapshot` and holds `entries`. Returns `None` if the entries
    /// are not consecutive from `snapshot.index + 1` or their terms decrease.
    pub fn from_parts(snapshot: SnapshotMeta, entries: Vec<Entry>) -> Option<Self> {
        let mut prev = (snapshot.index, snapshot.term);
        for e in &entries {
            if e.index != prev.0 + 1 || e.term < prev.1 {
                return None;
            }
            prev = (e.index, e.term);
        }
        Some(RaftLog {
            snapshot,
            entries: entries.into(),
        })
    }

    /// The position of the latest snapshot (index 0 when there is none).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot
    }

    /// The first index still held as an entry (`snapshot.index + 1`).
    pub fn first_index(&self) -> Index {
        self.snapshot.index + 1
    }

    /// The index of the last entry (the snapshot's index when no entries follow it).
    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as Index
    }

    /// The term of the last entry (the snapshot's term when no entries follow it).
    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot.term, |e| e.term)
    }

    /// Number of entries held in memory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entries follow the snapshot.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The term of the entry at `index`: known for the snapshot's last entry and for every
    /// held entry; `None` for compacted indexes (other than the snapshot's) and past the end.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Entries from `from` on, at most `max_entries` of them and about `max_bytes` of payload
    /// (at least one entry when any exists). Empty if `from` is compacted or past the end.
    pub fn slice(&self, from: Index, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let Some(offset) = from.checked_sub(self.first_index()) else {
            return Vec::new();
        };
        let offset = offset as usize;
        if offset >= self.entries.len() {
            return Vec::new();
        }
        let available = (self.entries.len() - offset).min(max_entries);
        let mut out = Vec::with_capacity(available);
        let mut bytes = 0usize;
        for e in self.entries.range(offset..offset + available) {
            bytes += e.payload.len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// Iterates over held entries from `from` through `to` (inclusive).
    pub fn iter_range(&self, from: Index, to: Index) -> impl Iterator<Item = &Entry> {
        let first = self.first_index();
        let start = from.max(first).saturating_sub(first) as usize;
        let end = (to.min(self.last_index()) + 1).saturating_sub(first) as usize;
        self.entries.range(start.min(end)..end)
    }

    /// The last index whose term is `term`, searching backwards from the end.
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        for e in self.entries.iter().rev() {
            if e.term == term {
                return Some(e.index);
            }
            if e.term < term {
                return None;
            }
        }
        (self.snapshot.term == term && self.snapshot.index > 0).then_some(self.snapshot.index)
    }

    /// The first held index with the same term as the entry at `index` (for conflict hints).
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let Some(term) = self.term_at(index) else {
            return index;
        };
        let mut i = index;
        while i > self.first_index() && self.term_at(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// Appends one entry; it must follow the last index.
    pub fn push(&mut self, entry: Entry) {
        // Invariant: callers build entries at last_index() + 1; anything else is a bug here.
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push_back(entry);
    }

    /// Removes every entry with index `>= from`.
    pub fn truncate_from(&mut self, from: Index) {
        let keep = from.saturating_sub(self.first_index()) as usize;
        self.entries.truncate(keep);
    }

    /// Discards entries through `meta.index` because a snapshot now covers them. If the log
    /// does not hold `meta.index` with `meta.term`, every entry is discarded (the snapshot
    /// replaces a log that diverged or is too short). Memory is released.
    pub fn compact_to(&mut self, meta: SnapshotMeta) {
        if meta.index <= self.snapshot.index {
            return;
        }
        if self.term_at(meta.index) == Some(meta.term) {
            let drop = (meta.index - self.snapshot.index) as usize;
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.snapshot = meta;
        if self.entries.capacity() > 64 && self.entries.capacity() > 4 * self.entries.len() {
            self.entries.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Payload;
    use bytes::Bytes;
    use quickcheck::{Gen, QuickCheck, TestResult};

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            payload: Payload::Command(Bytes::from(vec![index as u8; 3])),
        }
    }

    fn log_with_terms(terms: &[Term]) -> RaftLog {
        let mut log = RaftLog::new();
        for (i, t) in terms.iter().enumerate() {
            log.push(entry(i as Index + 1, *t));
        }
        log
    }

    #[test]
    fn empty_log_positions() {
        let log = RaftLog::new();
        assert_eq!(log.last_index(), 0);
        assert_eq!(log.last_term(), 0);
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(1), None);
        assert!(log.slice(1, 10, 100).is_empty());
    }

    #[test]
    fn slice_respects_limits_but_returns_one_entry() {
        let log = log_with_terms(&[1, 1, 1, 2, 2]);
        assert_eq!(log.slice(2, 2, 1000).len(), 2);
        assert_eq!(log.slice(2, 10, 1000).len(), 4);
        assert_eq!(log.slice(2, 10, 1).len(), 1);
        assert_eq!(log.slice(2, 10, 6).len(), 2);
        assert!(log.slice(6, 10, 100).is_empty());
        assert!(log.slice(0, 10, 100).is_empty());
    }

    #[test]
    fn compaction_keeps_suffix_when_terms_match() {
        let mut log = log_with_terms(&[1, 1, 2, 2, 3]);
        log.compact_to(SnapshotMeta { index: 3, term: 2 });
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.term_at(2), None);
        assert_eq!(log.entry(4).unwrap().term, 2);
    }

    #[test]
    fn compaction_discards_divergent_log() {
        let mut log = log_with_terms(&[1, 1, 2]);
        log.compact_to(SnapshotMeta { index: 3, term: 5 });
        assert!(log.is_empty());
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.last_term(), 5);
        let mut log = log_with_terms(&[1]);
        log.compact_to(SnapshotMeta { index: 10, term: 2 });
        assert_eq!(log.last_index(), 10);
        assert!(log.is_empty());
    }

    #[test]
    fn stale_compaction_is_ignored() {
        let mut log = log_with_terms(&[1, 1, 2]);
        log.compact_to(SnapshotMeta { index: 2, term: 1 });
        let before = log.clone();
        log.compact_to(SnapshotMeta { index: 1, term: 1 });
        assert_eq!(log, before);
    }

    #[test]
    fn term_search_helpers() {
        let log = log_with_terms(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.last_index_of_term(2), Some(5));
        assert_eq!(log.last_index_of_term(3), None);
        assert_eq!(log.last_index_of_term(1), Some(2));
        assert_eq!(log.first_index_of_term_at(5), 3);
        assert_eq!(log.first_index_of_term_at(6), 6);
    }

    #[test]
    fn truncate_and_iter_range() {
        let mut log = log_with_terms(&[1, 1, 2, 2]);
        log.truncate_from(3);
        assert_eq!(log.last_index(), 2);
        let idx: Vec<_> = log.iter_range(1, 10).map(|e| e.index).collect();
        assert_eq!(idx, vec![1, 2]);
        assert_eq!(log.iter_range(3, 2).count(), 0);
        log.truncate_from(100);
        assert_eq!(log.last_index(), 2);
    }

    #[test]
    fn from_parts_checks_continuity() {
        let snap = SnapshotMeta { index: 5, term: 2 };
        assert!(RaftLog::from_parts(snap, vec![entry(6, 2), entry(7, 3)]).is_some());
        assert!(RaftLog::from_parts(snap, vec![entry(7, 2)]).is_none());
        assert!(RaftLog::from_parts(snap, vec![entry(6, 1)]).is_none());
    }

    /// Property: whatever sequence of appends, truncations and compactions happens, the log
    /// stays consecutive, `term_at` agrees with the entries, and `slice` returns a consecutive
    /// run starting where asked.
    #[test]
    fn prop_log_stays_consistent() {
        fn prop(ops: Vec<(u8, u8)>) -> TestResult {
            let mut log = RaftLog::new();
            let mut term = 1;
            for (op, arg) in ops {
                match op % 4 {
                    0 | 1 => {
                        term += u64::from(arg % 2);
                        log.push(entry(log.last_index() + 1, term));
                    }
                    2 => log.truncate_from(log.first_index() + u64::from(arg) % 8),
                    _ => {
                        let idx = log.snapshot_meta().index + u64::from(arg % 5);
                        if let Some(t) = log.term_at(idx) {
                            log.compact_to(SnapshotMeta {
                                index: idx,
                                term: t,
                            });
                        }
                    }
                }
                let mut expect = log.first_index();
                for e in log.iter_range(0, Index::MAX) {
                    if e.index != expect || log.term_at(e.index) != Some(e.term) {
                        return TestResult::failed();
                    }
                    expect += 1;
                }
                if expect != log.last_index() + 1 {
                    return TestResult::failed();
                }
                let from = log.first_index();
                let s = log.slice(from, 3, usize::MAX);
                if s.iter()
                    .enumerate()
                    .any(|(i, e)| e.index != from + i as u64)
                {
                    return TestResult::failed();
                }
            }
            TestResult::passed()
        }
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(64, 0x5eed_0001))
            .tests(300)
            .quickcheck(prop as fn(Vec<(u8, u8)>) -> TestResult);
    }
}
