//! What a leader knows about each follower's log, and how it paces replication to it.

use std::collections::VecDeque;

use crate::message::{Index, NodeId};

/// How the leader is currently sending to one follower (after etcd-raft's progress states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The leader does not yet know where the follower's log matches. One `AppendEntries`
    /// at a time; `sent` is true while it waits for the answer (retried on heartbeat).
    Probe {
        /// Whether a probe is outstanding.
        sent: bool,
    },
    /// The follower's log matches through `match_index`; entries stream optimistically,
    /// up to `max_inflight` requests in flight.
    Replicate,
    /// The follower needs the snapshot at `index` (its next entry was compacted away).
    Snapshot {
        /// The snapshot index that was sent.
        index: Index,
    },
}

/// The leader's view of one follower.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The follower.
    pub id: NodeId,
    /// Highest index known to match the leader's log.
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    /// Sending mode.
    pub mode: Mode,
    /// Last index and send time (in ticks) of each `AppendEntries` in flight (Replicate
    /// mode), oldest first.
    pub inflight: VecDeque<(Index, u64)>,
    /// Highest round number the follower has answered (for ReadIndex).
    pub ack_seq: u64,
    /// Whether the follower answered anything since the last quorum check.
    pub active: bool,
    /// `match_index` at the previous heartbeat, to detect a stalled stream.
    pub match_at_heartbeat: Index,
    /// Heartbeats since the snapshot was sent, to retry a lost one.
    pub snapshot_wait: u32,
}

impl Progress {
    /// A follower about which nothing is known yet; probing starts at `next_index`.
    pub fn new(id: NodeId, next_index: Index) -> Self {
        Progress {
            id,
            match_index: 0,
            next_index,
            mode: Mode::Probe { sent: false },
            inflight: VecDeque::new(),
            ack_seq: 0,
            active: true,
            match_at_heartbeat: 0,
            snapshot_wait: 0,
        }
    }

    /// Starts probing again from `next_index`, forgetting in-flight requests.
    pub fn become_probe(&mut self, next_index: Index) {
        self.mode = Mode::Probe { sent: false };
        self.next_index = next_index.max(self.match_index + 1);
        self.inflight.clear();
    }

    /// Switches to streaming after a successful answer.
    pub fn become_replicate(&mut self) {
        self.mode = Mode::Replicate;
        self.next_index = self.next_index.max(self.match_index + 1);
        self.inflight.clear();
    }

    /// Records that the follower matches through `index`. Returns whether it advanced.
    pub fn record_match(&mut self, index: Index) -> bool {
        while self
            .inflight
            .front()
            .is_some_and(|&(last, _)| last <= index)
        {
            self.inflight.pop_front();
        }
        if index > self.match_index {
            self.match_index = index;
            self.next_index = self.next_index.max(index + 1);
            true
        } else {
            false
        }
    }

    /// Whether another request with entries may be sent now.
    pub fn can_send(&self, max_inflight: usize) -> bool {
        match self.mode {
            Mode::Probe { sent } => !sent,
            Mode::Replicate => self.inflight.len() < max_inflight,
            Mode::Snapshot { .. } => false,
        }
    }
}
