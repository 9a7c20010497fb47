//! The node's inputs and actions: the whole contract between the core and its adapter.

use bytes::Bytes;

use crate::message::{Entry, HardState, Index, Message, NodeId, Snapshot, Term};

/// Everything that can happen to a node. Fed to [`Node::step`](crate::Node::step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One unit of logical time passed. Election and heartbeat timeouts count ticks.
    Tick,
    /// A message arrived from a peer.
    Receive {
        /// The sender, as the transport authenticated it.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// The service proposes a command. Answered by [`Action::Proposed`] or
    /// [`Action::NotLeader`] in the same step.
    Propose(Bytes),
    /// The service proposes several commands at once: they are appended as consecutive
    /// entries with one persistence action and one round of sends. Answered by one
    /// [`Action::Proposed`] (or [`Action::NotLeader`]) per command, in order. Adapters use it
    /// to batch the requests that arrived since their last step.
    ProposeBatch(Vec<Bytes>),
    /// The service asks to read linearizably. `ctx` is the service's tag for the request.
    /// Answered later by [`Action::ReadReady`] or [`Action::ReadFailed`] (Raft thesis 6.4,
    /// "ReadIndex"). Needs `Config::leader_noop`.
    ReadIndex {
        /// Opaque tag echoed in the answer.
        ctx: u64,
    },
    /// The service has applied everything through `index` and hands Raft a snapshot of its
    /// state at that point, so Raft can discard the log prefix (section 7). A snapshot at or
    /// below the current snapshot, or above the last applied index, is ignored.
    Snapshot {
        /// The last applied index the snapshot includes.
        index: Index,
        /// The service's serialized state.
        data: Bytes,
    },
    /// With [`Config::durable_reports`](crate::Config::durable_reports): every persistence
    /// action carried out so far is durable, and the log's entry at `index` has `term` (the
    /// last entry the adapter appended). The leader counts its own log toward a commit up
    /// to here. A report about entries since overwritten (the term differs) is ignored; so
    /// is every report without `durable_reports`.
    LogDurable {
        /// The last durable log index.
        index: Index,
        /// The term of the entry at `index`.
        term: Term,
    },
}

/// What the adapter must do, in order.
///
/// **Order is the contract.** The adapter carries out the actions of a step in the order
/// given, and finishes them before the actions of the next step. A persistence action
/// (`SaveHardState`, `TruncateLog`, `AppendLog`, `SaveSnapshot`) must be durable before any
/// later action is carried out; in particular before any later `Send`. Batching several
/// steps and syncing once before the first `Send` that follows is allowed (group commit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Durably store the term and vote, replacing the previous ones.
    SaveHardState(HardState),
    /// Durably remove every log entry with index `>= from`.
    TruncateLog {
        /// The first index to remove.
        from: Index,
    },
    /// Durably append these consecutive entries after the current last entry.
    AppendLog(Vec<Entry>),
    /// Durably store this snapshot, replacing the previous one, and discard the log entries
    /// it covers: every entry with index `<= snapshot.meta.index`, or every entry if the log
    /// does not hold `snapshot.meta.index` with `snapshot.meta.term`. The whole action is
    /// atomic from Raft's point of view (a crash may leave the log un-compacted if recovery
    /// then applies the same rule).
    SaveSnapshot(Snapshot),
    /// Send a message to a peer. Delivery is best-effort; Raft copes with loss.
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// Apply this committed entry to the service. Entries come in index order, each index
    /// exactly once per node lifetime (after a restart, application resumes after the
    /// snapshot the service restored from).
    Apply(Entry),
    /// Replace the service's state with this snapshot (received from the leader). Entries
    /// applied later follow `snapshot.meta.index`.
    RestoreSnapshot(Snapshot),
    /// The proposal was appended at `index` in `term`. It may still be lost if leadership
    /// changes before it commits: the service learns the outcome from `Apply` at `index`
    /// (the same entry has `term`) or from a [`Action::LeaderChanged`].
    Proposed {
        /// Where the entry was appended.
        index: Index,
        /// The leader's term.
        term: Term,
    },
    /// The proposal was refused: this node is not the leader.
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<NodeId>,
    },
    /// A read may be served once the service has applied through `index`.
    ReadReady {
        /// The tag from [`Input::ReadIndex`].
        ctx: u64,
        /// The commit index at the time leadership was confirmed.
        index: Index,
    },
    /// The read cannot be served here (not the leader, or leadership lost meanwhile).
    ReadFailed {
        /// The tag from [`Input::ReadIndex`].
        ctx: u64,
        /// The leader this node knows of, if any.
        leader: Option<NodeId>,
    },
    /// The term or the known leader changed. Proposals from an earlier term that have not
    /// been applied may never commit; the service should fail them once applied entries show
    /// other terms at their indexes, or right away if this node is no longer leader.
    LeaderChanged {
        /// The current term.
        term: Term,
        /// The leader of that term, if known.
        leader: Option<NodeId>,
    },
}
