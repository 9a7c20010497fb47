//! Tracks the size of the persisted Raft state from the persistence actions passed through,
//! to decide when to snapshot.
//!
//! The measure is [`Persisted::raft_state_size`](stepwise_raft::Persisted::raft_state_size)
//! (the lab's `RaftStateSize()`): 24 bytes of hard state plus, per log entry, 17 bytes of
//! header and its payload. The tracker mirrors the log's entries (term and size only) and
//! follows [`Persisted::apply`](stepwise_raft::Persisted::apply) rule for rule, so it agrees
//! with the storage it describes at every step.

use std::collections::VecDeque;

use stepwise_raft::{Action, Entry, Index, Persisted, Term};

/// Bytes of hard state (term, vote) in the measure.
const HARD_STATE_BYTES: usize = 24;
/// Bytes of per-entry header (term, index, kind) in the measure.
const ENTRY_HEADER_BYTES: usize = 17;

/// The persisted Raft state's size, kept up to date action by action.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogSize {
    /// Index of `entries[0]` (one past the snapshot).
    first: Index,
    /// Term and measured size of every entry in the log, in order.
    entries: VecDeque<(Term, u32)>,
    /// Sum of the sizes in `entries`.
    entry_bytes: usize,
}

impl LogSize {
    /// The tracker for what `persisted` holds.
    pub(crate) fn from_persisted(persisted: &Persisted) -> Self {
        let mut t = LogSize {
            first: persisted.first_index(),
            ..LogSize::default()
        };
        t.append(&persisted.entries);
        t
    }

    /// Total size: hard state plus entries.
    pub(crate) fn bytes(&self) -> usize {
        HARD_STATE_BYTES + self.entry_bytes
    }

    /// Bytes of the entries with index `<= index` (what a snapshot at `index` frees).
    pub(crate) fn bytes_through(&self, index: Index) -> usize {
        let n = (index + 1).saturating_sub(self.first) as usize;
        self.entries
            .iter()
            .take(n)
            .map(|&(_, size)| size as usize)
            .sum()
    }

    fn append(&mut self, entries: &[Entry]) {
        for e in entries {
            let size = ENTRY_HEADER_BYTES + e.payload.len();
            self.entries
                .push_back((e.term, u32::try_from(size).unwrap_or(u32::MAX)));
            self.entry_bytes += size;
        }
    }

    fn truncate(&mut self, keep: usize) {
        while self.entries.len() > keep {
            if let Some((_, size)) = self.entries.pop_back() {
                self.entry_bytes -= size as usize;
            }
        }
    }

    /// Follows one persistence action (other actions are ignored).
    pub(crate) fn observe(&mut self, action: &Action) {
        match action {
            Action::AppendLog(entries) => self.append(entries),
            Action::TruncateLog { from } => {
                let keep = from.saturating_sub(self.first) as usize;
                self.truncate(keep);
            }
            Action::SaveSnapshot(snap) => {
                let idx = snap.meta.index;
                let holds = idx >= self.first
                    && self
                        .entries
                        .get((idx - self.first) as usize)
                        .is_some_and(|&(t, _)| t == snap.meta.term);
                if holds {
                    for _ in 0..=(idx - self.first) {
                        if let Some((_, size)) = self.entries.pop_front() {
                            self.entry_bytes -= size as usize;
                        }
                    }
                    self.first = idx + 1;
                } else if idx >= self.first {
                    // A snapshot the log does not hold (installed from a leader). One at
                    // or below the stored snapshot's index changes nothing, as in
                    // `Persisted::apply` and `RaftLog::compact_to`.
                    self.truncate(0);
                    self.first = idx + 1;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use stepwise_raft::{Payload, Snapshot, SnapshotMeta};

    use super::*;

    fn entry(index: Index, term: Term, len: usize) -> Entry {
        Entry {
            term,
            index,
            payload: Payload::Command(Bytes::from(vec![0; len])),
        }
    }

    fn snap(index: Index, term: Term) -> Action {
        Action::SaveSnapshot(Snapshot {
            meta: SnapshotMeta { index, term },
            data: Bytes::new(),
        })
    }

    #[test]
    fn agrees_with_persisted_through_appends_truncations_and_snapshots() {
        let actions = vec![
            Action::AppendLog(vec![entry(1, 1, 10), entry(2, 1, 0), entry(3, 1, 7)]),
            Action::TruncateLog { from: 3 },
            Action::AppendLog(vec![entry(3, 2, 100), entry(4, 2, 5)]),
            snap(2, 1),
            Action::AppendLog(vec![entry(5, 2, 1)]),
            // A snapshot the log does not hold (installed from a leader): clears the log.
            snap(9, 3),
            Action::AppendLog(vec![entry(10, 3, 3), entry(11, 3, 4)]),
            Action::TruncateLog { from: 11 },
            // At and below the stored snapshot's index: ignored.
            snap(9, 3),
            snap(4, 2),
        ];
        let mut p = Persisted::default();
        let mut t = LogSize::from_persisted(&p);
        for a in &actions {
            p.apply(a);
            t.observe(a);
            assert_eq!(t.bytes(), p.raft_state_size(), "after {a:?}");
            assert_eq!(t, LogSize::from_persisted(&p), "after {a:?}");
            let first = p.first_index();
            for upto in first.saturating_sub(1)..first + p.entries.len() as u64 + 1 {
                let want: usize = p
                    .entries
                    .iter()
                    .filter(|e| e.index <= upto)
                    .map(|e| 17 + e.payload.len())
                    .sum();
                assert_eq!(t.bytes_through(upto), want, "through {upto} after {a:?}");
            }
        }
    }
}
