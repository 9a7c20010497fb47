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
    /// action was a persistence action.
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
                let holds = idx >= first
                    && self
                        .entries
                        .get((idx - first) as usize)
                        .is_some_and(|e| e.term == snap.meta.term);
                if holds {
                    self.entries.drain(..=(idx - first) as usize);
                } else if idx >= first.saturating_sub(1) {
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
