//! Wire and persisted types: log entries, hard state, snapshots and the messages peers exchange.
//!
//! Every type here is `serde`-serializable. The encoding is chosen by the adapter (the project
//! uses postcard); none of these types uses `skip_serializing_if`, `flatten` or `untagged`, so
//! non-self-describing formats work.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Identifies a member of the cluster. Any `u64` except that each member's is unique.
pub type NodeId = u64;
/// A Raft term (election epoch). Starts at 0; the first election makes it 1.
pub type Term = u64;
/// A log index. The first entry has index 1; index 0 means "before the log".
pub type Index = u64;

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// The empty entry a new leader appends to commit entries of earlier terms
    /// (Raft paper section 8). Services skip it when applying.
    Noop,
    /// An opaque command proposed by the service.
    Command(Bytes),
}

impl Payload {
    /// Bytes the payload carries (0 for a no-op), used for batch-size limits.
    pub fn len(&self) -> usize {
        match self {
            Payload::Noop => 0,
            Payload::Command(b) => b.len(),
        }
    }

    /// True when the payload carries no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log (1-based).
    pub index: Index,
    /// What the entry carries.
    pub payload: Payload,
}

/// The state Raft must persist before answering (Figure 2: `currentTerm`, `votedFor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// Whom this node voted for in `term`, if anyone.
    pub vote: Option<NodeId>,
}

/// The position a snapshot covers: the last log entry it includes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot includes.
    pub index: Index,
    /// Term of that entry.
    pub term: Term,
}

/// A service snapshot: the service's state after applying every entry up to `meta.index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last entry the snapshot covers.
    pub meta: SnapshotMeta,
    /// The service's serialized state; opaque to Raft.
    pub data: Bytes,
}

/// How a follower answered an `AppendEntries`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log matches the leader's through `match_index`.
    Success {
        /// The last index known to match the leader's log.
        match_index: Index,
    },
    /// The entry at `rejected` did not match. The hint lets the leader skip a whole
    /// conflicting term at once ("fast backup", Raft paper section 5.3).
    Conflict {
        /// The `prev_index` of the rejected request.
        rejected: Index,
        /// The follower's term at `rejected`, or `None` if its log is shorter than that.
        hint_term: Option<Term>,
        /// With `hint_term`: the first index the follower holds with that term.
        /// Without: the follower's last index + 1.
        hint_index: Index,
    },
}

/// A message between two members. Each carries the sender's term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A candidate asks for a vote (Figure 2, RequestVote).
    RequestVote {
        /// The candidate's term.
        term: Term,
        /// Index of the candidate's last log entry.
        last_index: Index,
        /// Term of the candidate's last log entry.
        last_term: Term,
        /// A pre-vote (thesis 9.6): asks whether the voter *would* vote in `term` without
        /// anyone changing term, so a partitioned node cannot disrupt a working leader.
        pre_vote: bool,
    },
    /// The answer to `RequestVote`.
    VoteReply {
        /// The voter's term.
        term: Term,
        /// Whether the vote was granted.
        granted: bool,
        /// Answers a pre-vote. A granted pre-vote carries the requested term.
        pre_vote: bool,
    },
    /// The leader replicates entries (or sends a heartbeat when `entries` is empty).
    AppendEntries {
        /// The leader's term.
        term: Term,
        /// Index of the entry just before `entries`.
        prev_index: Index,
        /// Term of that entry.
        prev_term: Term,
        /// Entries to append; consecutive, starting at `prev_index + 1`.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: Index,
        /// The leader's round number, echoed in the reply (confirms leadership for reads).
        seq: u64,
    },
    /// The answer to `AppendEntries`.
    AppendReply {
        /// The follower's term.
        term: Term,
        /// What happened.
        result: AppendResult,
        /// The `seq` of the request being answered.
        seq: u64,
    },
    /// The leader sends its snapshot to a follower that is behind its log (section 7).
    InstallSnapshot {
        /// The leader's term.
        term: Term,
        /// The snapshot.
        snapshot: Snapshot,
        /// The leader's round number, echoed in the reply.
        seq: u64,
    },
    /// The answer to `InstallSnapshot`.
    SnapshotReply {
        /// The follower's term.
        term: Term,
        /// The follower's log now matches the leader's through this index.
        match_index: Index,
        /// The `seq` of the request being answered.
        seq: u64,
    },
    /// A follower asks the leader for a read index on its service's behalf (Raft thesis
    /// 6.4, reads served by followers; sent only with
    /// [`Config::follower_reads`](crate::Config::follower_reads)).
    ReadIndex {
        /// The follower's term.
        term: Term,
        /// The follower's tag for the read, echoed in the reply.
        ctx: u64,
    },
    /// The answer to `ReadIndex`.
    ReadIndexReply {
        /// The answering node's term.
        term: Term,
        /// The `ctx` of the request being answered.
        ctx: u64,
        /// The read index once a quorum round confirmed the leadership (the follower serves
        /// the read after applying through it), or `None`: the node cannot serve it (not
        /// the leader, or leadership lost meanwhile).
        index: Option<Index>,
    },
}

impl Message {
    /// The sender's term.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::VoteReply { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendReply { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::SnapshotReply { term, .. }
            | Message::ReadIndex { term, .. }
            | Message::ReadIndexReply { term, .. } => *term,
        }
    }
}
