//! An index-addressed run of log entries that also remembers which segment holds each entry.
//!
//! Used twice: with full entries while replaying the log on open, and with small
//! per-entry summaries while running (to answer "does the log hold index i with term t",
//! to keep `raft_state_size` and to know which old segments no entry needs any more).

use std::collections::VecDeque;

use stepwise_raft::Index;

/// Consecutive items addressed by log index, with their segments.
#[derive(Clone, Debug)]
pub(crate) struct SegLog<T> {
    /// Index of `items[0]` (meaningless while empty).
    start: Index,
    items: VecDeque<T>,
    /// `(segment, first index in it)`, ascending in both: entries are written in index
    /// order, and a later entry is never in an earlier segment.
    runs: VecDeque<(u64, Index)>,
}

impl<T> Default for SegLog<T> {
    fn default() -> Self {
        SegLog {
            start: 0,
            items: VecDeque::new(),
            runs: VecDeque::new(),
        }
    }
}

impl<T> SegLog<T> {
    /// Index of the first entry, if any.
    pub fn first_index(&self) -> Option<Index> {
        (!self.items.is_empty()).then_some(self.start)
    }

    /// Index of the last entry, if any.
    pub fn last_index(&self) -> Option<Index> {
        (!self.items.is_empty()).then(|| self.start + self.items.len() as Index - 1)
    }

    /// The item at `index`.
    pub fn get(&self, index: Index) -> Option<&T> {
        let pos = index.checked_sub(self.start)?;
        self.items.get(usize::try_from(pos).ok()?)
    }

    /// The oldest segment that holds an entry.
    pub fn oldest_segment(&self) -> Option<u64> {
        self.runs.front().map(|&(seg, _)| seg)
    }

    /// Appends the entry at `index`, stored in segment `seg`. The caller checks that `index`
    /// follows the last entry (any index is accepted when empty).
    pub fn push(&mut self, index: Index, item: T, seg: u64) {
        debug_assert!(self.last_index().is_none_or(|last| index == last + 1));
        if self.items.is_empty() {
            self.start = index;
            self.runs.clear();
        }
        if self.runs.back().is_none_or(|&(s, _)| s != seg) {
            self.runs.push_back((seg, index));
        }
        self.items.push_back(item);
    }

    /// Removes every entry with index `>= from`, calling `removed` for each.
    pub fn truncate_from(&mut self, from: Index, mut removed: impl FnMut(T)) {
        let keep = from
            .saturating_sub(self.start)
            .min(self.items.len() as Index) as usize;
        while self.items.len() > keep {
            removed(self.items.pop_back().expect("len > keep"));
        }
        if self.items.is_empty() {
            self.runs.clear();
        } else {
            while self.runs.back().is_some_and(|&(_, first)| first >= from) {
                self.runs.pop_back();
            }
        }
    }

    /// Removes every entry with index `<= through`, calling `removed` for each.
    pub fn drop_through(&mut self, through: Index, mut removed: impl FnMut(T)) {
        while !self.items.is_empty() && self.start <= through {
            removed(self.items.pop_front().expect("not empty"));
            self.start += 1;
        }
        if self.items.is_empty() {
            self.runs.clear();
            return;
        }
        while self.runs.len() >= 2 && self.runs[1].1 <= self.start {
            self.runs.pop_front();
        }
        if let Some(front) = self.runs.front_mut() {
            front.1 = self.start;
        }
    }

    /// Removes every entry, calling `removed` for each.
    pub fn clear(&mut self, removed: impl FnMut(T)) {
        self.items.drain(..).for_each(removed);
        self.runs.clear();
    }

    /// Takes the log apart (first index, items, segment runs), to convert the items.
    pub fn into_parts(self) -> (Index, VecDeque<T>, VecDeque<(u64, Index)>) {
        (self.start, self.items, self.runs)
    }

    /// Rebuilds from parts with the same runs (see [`into_parts`](Self::into_parts)).
    pub fn from_parts(start: Index, items: VecDeque<T>, runs: VecDeque<(u64, Index)>) -> Self {
        SegLog { start, items, runs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(spec: &[(Index, u64)]) -> SegLog<Index> {
        let mut l = SegLog::default();
        for &(i, seg) in spec {
            l.push(i, i, seg);
        }
        l
    }

    #[test]
    fn runs_follow_truncation_and_compaction() {
        // 5,6 in segment 1; 7,8 in 2; 9 in 3.
        let mut l = log(&[(5, 1), (6, 1), (7, 2), (8, 2), (9, 3)]);
        assert_eq!(l.runs, [(1, 5), (2, 7), (3, 9)]);
        let mut gone = Vec::new();
        l.truncate_from(8, |i| gone.push(i));
        assert_eq!(gone, [9, 8]);
        assert_eq!(l.runs, [(1, 5), (2, 7)]);
        assert_eq!(l.last_index(), Some(7));
        l.push(8, 8, 4);
        assert_eq!(l.runs, [(1, 5), (2, 7), (4, 8)]);
        l.drop_through(6, |_| {});
        assert_eq!(l.oldest_segment(), Some(2));
        assert_eq!(l.first_index(), Some(7));
        l.drop_through(7, |_| {});
        assert_eq!(l.runs, [(4, 8)]);
        assert_eq!(l.get(8), Some(&8));
        assert_eq!(l.get(7), None);
        l.drop_through(100, |_| {});
        assert!(l.first_index().is_none() && l.runs.is_empty());
    }

    #[test]
    fn truncating_below_the_start_empties() {
        let mut l = log(&[(5, 1), (6, 2)]);
        l.truncate_from(0, |_| {});
        assert!(l.first_index().is_none() && l.oldest_segment().is_none());
        l.push(3, 3, 7);
        assert_eq!((l.first_index(), l.last_index()), (Some(3), Some(3)));
        assert_eq!(l.oldest_segment(), Some(7));
        l.truncate_from(10, |_| panic!("nothing at or after 10"));
        l.clear(|_| {});
        assert_eq!(l.last_index(), None);
        assert_eq!(l.get(3), None);
    }
}
