//! What a node persists, and an in-memory store that carries out persistence actions.
//!
//! [`Persisted`] is both what [`Node::restore`](crate::Node::restore) takes after a crash and
//! a reference implementation of the persistence half of the action contract: the simulator,
//! the benchmarks and tests use it as their storage, and durable adapters must behave the same.

use crate::action::Action;
use crate::log::RaftLog;
use crate::message::{Entry, HardState, Snapshot};

/// A node's durable state: hard state, latest snapshot and the log after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persisted {
    /// Term and vote.
    pub hard_state: HardState,
    /// The latest snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot, consecutive.
    pub entries: Vec<Entry>,
}

impl Persisted {
    /// Carries out a persistence action; other actions are ignored. Returns whether the
    /// action was a persistence action. A `SaveSnapshot` keeps the entries after the
    /// snapshot if the log holds its last entry (same index and term), else discards them
    /// all; one at or before the stored snapshot's index changes nothing (as in
    /// [`RaftLog::compact_to`]).
    pub fn apply(&mut self, action: &Action) -> bool {
        match action {
            Action::SaveHardState(hs) => self.hard_state = *hs,
            Action::TruncateLog { from } => {
                let first = self.first_index();
                let keep = from.saturating_sub(first) as usize;
                self.entries.truncate(keep);
            }
            Action::AppendLog(entries) => self.entries.extend(entries.iter().cloned()),
            Action::SaveSnapshot(snap) => {
                let first = self.first_index();
                let idx = snap.meta.index;
                // A snapshot at or before the stored one's index covers nothing new: ignored,
                // as `RaftLog::compact_to` ignores it (the core never emits one).
                if idx < first {
                    return true;
                }
                let holds = self
                    .entries
                    .get((idx - first) as usize)
                    .is_some_and(|e| e.term == snap.meta.term);
                if holds {
                    self.entries.drain(..=(idx - first) as usize);
                } else {
                    self.entries.clear();
                }
                self.snapshot = Some(snap.clone());
            }
            _ => return false,
        }
        true
    }

    /// Like [`Persisted::apply`], but takes the action by value so appended entries are
    /// moved, not cloned. Returns the action back if it is not a persistence action.
    pub fn apply_owned(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::AppendLog(entries) => {
                if self.entries.is_empty() {
                    self.entries = entries;
                } else {
                    self.entries.extend(entries);
                }
                None
            }
            other => {
                if self.apply(&other) {
                    None
                } else {
                    Some(other)
                }
            }
        }
    }

    /// Index of the first entry in `entries` (one past the snapshot).
    pub fn first_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.meta.index) + 1
    }

    /// The in-memory log this state describes, or `None` if the entries are not consecutive.
    pub fn log(&self) -> Option<RaftLog> {
        let meta = self.snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
        RaftLog::from_parts(meta, self.entries.clone())
    }

    /// Approximate persisted size of the Raft state (hard state and log, not the snapshot),
    /// as the lab's `RaftStateSize()` measures it: 8 bytes per number plus payloads.
    pub fn raft_state_size(&self) -> usize {
        24 + self
            .entries
            .iter()
            .map(|e| 17 + e.payload.len())
            .sum::<usize>()
    }

    /// Size of the stored snapshot's data.
    pub fn snapshot_size(&self) -> usize {
        self.snapshot.as_ref().map_or(0, |s| s.data.len())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::message::{Payload, SnapshotMeta};

    fn entries(from: u64, terms: &[u64]) -> Vec<Entry> {
        (from..)
            .zip(terms)
            .map(|(index, &term)| Entry {
                term,
                index,
                payload: Payload::Command(Bytes::from(vec![index as u8; 4])),
            })
            .collect()
    }

    fn save(index: u64, term: u64, data: &'static [u8]) -> Action {
        Action::SaveSnapshot(Snapshot {
            meta: SnapshotMeta { index, term },
            data: Bytes::from_static(data),
        })
    }

    /// Applies `action` to `p` and the matching compaction to the log `p` describes, and
    /// checks both still agree.
    fn apply_both(p: &mut Persisted, action: &Action) {
        let mut log = p.log().expect("consecutive");
        assert!(p.apply(action));
        if let Action::SaveSnapshot(snap) = action {
            log.compact_to(snap.meta);
        }
        assert_eq!(p.log(), Some(log), "after {action:?}");
    }

    #[test]
    fn a_snapshot_at_the_stored_index_changes_nothing_as_in_compact_to() {
        let mut p = Persisted::default();
        assert!(p.apply(&Action::AppendLog(entries(1, &[1, 1, 2, 2]))));
        apply_both(&mut p, &save(2, 1, b"first"));
        assert_eq!(p.entries, entries(3, &[2, 2]));
        let before = p.clone();
        // Same index (with the right term or a wrong one), and an older index.
        apply_both(&mut p, &save(2, 1, b"again"));
        apply_both(&mut p, &save(2, 7, b"other"));
        apply_both(&mut p, &save(1, 1, b"older"));
        assert_eq!(p, before);
        // Without a stored snapshot, index 0 is the stored position.
        let mut fresh = Persisted::default();
        assert!(fresh.apply(&Action::AppendLog(entries(1, &[1]))));
        let before = fresh.clone();
        apply_both(&mut fresh, &save(0, 0, b"zero"));
        assert_eq!(fresh, before);
    }

    #[test]
    fn a_snapshot_keeps_the_entries_after_it_only_if_the_log_holds_its_last_entry() {
        let mut p = Persisted::default();
        assert!(p.apply(&Action::AppendLog(entries(1, &[1, 1, 2, 2]))));
        apply_both(&mut p, &save(3, 2, b"held"));
        assert_eq!(p.entries, entries(4, &[2]));
        // A term the log does not hold at that index: every entry goes.
        apply_both(&mut p, &save(4, 3, b"installed"));
        assert!(p.entries.is_empty());
        assert_eq!(p.first_index(), 5);
        // Past the end of the log: likewise.
        assert!(p.apply(&Action::AppendLog(entries(5, &[3]))));
        apply_both(&mut p, &save(9, 4, b"far"));
        assert!(p.entries.is_empty());
        assert_eq!(p.snapshot_size(), 3);
    }
}
