//! The [`Machine`] trait: what a runtime needs from a sans-IO node, and its impl for a bare
//! Raft [`Node`].

use bytes::Bytes;
use stepwise_raft::{Action, Index, Input, Message, Node, NodeId, Term};

/// What a runtime feeds a [`Machine`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostInput<R> {
    /// One unit of logical time passed (the runtime's tick, 10 ms by default).
    Tick,
    /// A Raft message arrived from a peer. The runtime vouches for `from`.
    Receive {
        /// The sender, as the transport authenticated it.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// A local client submitted a request.
    Request(R),
}

/// What a runtime must do for a [`Machine`], in order (see [`Driver`](crate::Driver) for
/// how order and durability are kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostAction<E> {
    /// Make this Raft persistence action durable ([`Action::SaveHardState`],
    /// [`Action::TruncateLog`], [`Action::AppendLog`] or [`Action::SaveSnapshot`]) before
    /// any later action is carried out. Any other action here is ignored and counted in
    /// [`DriverStats::ignored`](crate::DriverStats::ignored).
    Persist(Action),
    /// Send a Raft message to a peer (best effort; Raft copes with loss).
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// Hand this event to the local clients (applied commands, replies, ...).
    Event(E),
}

/// A sans-IO node a runtime can host: one entry point, actions pushed into a buffer.
///
/// Implemented here for a bare Raft [`Node`]; services that own a Raft node (the KV
/// server, a shard group) implement it by passing Raft's persistence actions and messages
/// through and turning the rest into their own events.
///
/// The machine must never block, sleep or do I/O in `step`: the runtime calls it on the
/// thread (or task) that also drives the network.
pub trait Machine: Send + 'static {
    /// What local clients submit (a proposal, a key-value operation, ...).
    type Request: Send + 'static;
    /// What local clients get back (applied entries, replies, ...).
    type Event: Send + 'static;

    /// Feeds one input and appends the actions to carry out, in order, to `out`.
    fn step(&mut self, input: HostInput<Self::Request>, out: &mut Vec<HostAction<Self::Event>>);

    /// Called once after the last input of a batch, before the batch is flushed. A
    /// machine that holds requests back in [`step`](Machine::step) to handle them
    /// together (for example all client requests of the batch as one log entry) steps
    /// them here. The default does nothing.
    fn end_batch(&mut self, out: &mut Vec<HostAction<Self::Event>>) {
        let _ = out;
    }

    /// For [`Driver::flush_pipelined`](crate::Driver::flush_pipelined): `Some(i)` lets
    /// `event` go out as soon as this node's log is durable through index `i`, ahead of
    /// actions still waiting for a sync (a reply that reveals only applied state needs
    /// exactly the applied entries durable). `None`, the default, keeps it in order:
    /// it waits until everything persisted before it is durable.
    fn event_index(&self, event: &Self::Event) -> Option<Index> {
        let _ = event;
        None
    }

    /// For a runtime that can overlap syncs with stepping
    /// ([`Driver::flush_pipelined`](crate::Driver::flush_pipelined)): whether to do so
    /// now. The default, `true`, always overlaps. A Raft service may answer "while
    /// leading": the leader gains most (it steps acknowledgements and new requests while
    /// its own copy syncs), while a follower's acknowledgement waits for its own sync
    /// either way, so overlapping only costs it a thread hand-off per sync.
    fn overlap_sync(&self) -> bool {
        true
    }

    /// Whether the machine takes durability reports ([`log_durable`](Machine::log_durable);
    /// Raft's [`Config::durable_reports`](stepwise_raft::Config::durable_reports)). Then
    /// its leader counts its own log toward a commit only as far as reported, so the
    /// [`Driver`](crate::Driver) steps acknowledgements at once even while a sync runs.
    /// Default `false`.
    fn takes_durable_reports(&self) -> bool {
        false
    }

    /// Everything persisted so far is durable, and the log's last appended entry is
    /// `index` with `term` (Raft's `Input::LogDurable`). Called by the
    /// [`Driver`](crate::Driver) after each sync that covered appended entries, if
    /// [`takes_durable_reports`](Machine::takes_durable_reports). Default: nothing.
    fn log_durable(&mut self, index: Index, term: Term, out: &mut Vec<HostAction<Self::Event>>) {
        let _ = (index, term, out);
    }

    /// For a machine that holds requests back for a moment in
    /// [`end_batch`](Machine::end_batch) to gather more of them into one proposal: the
    /// instant by which the runtime must end a batch again even if no input arrives
    /// (it then runs an empty batch: `end_batch` and a flush). `None`, the default: the
    /// machine waits for nothing but inputs and ticks. Asked after every batch.
    fn wake_at(&self) -> Option<std::time::Instant> {
        None
    }
}

/// A request to a bare Raft [`Node`]: the service inputs of [`Input`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaftRequest {
    /// [`Input::Propose`].
    Propose(Bytes),
    /// [`Input::ReadIndex`].
    ReadIndex {
        /// Opaque tag echoed in the answer.
        ctx: u64,
    },
    /// [`Input::Snapshot`].
    Snapshot {
        /// The last applied index the snapshot includes.
        index: Index,
        /// The service's serialized state.
        data: Bytes,
    },
}

impl From<RaftRequest> for Input {
    fn from(req: RaftRequest) -> Input {
        match req {
            RaftRequest::Propose(data) => Input::Propose(data),
            RaftRequest::ReadIndex { ctx } => Input::ReadIndex { ctx },
            RaftRequest::Snapshot { index, data } => Input::Snapshot { index, data },
        }
    }
}

impl<R: Into<Input>> From<HostInput<R>> for Input {
    fn from(input: HostInput<R>) -> Input {
        match input {
            HostInput::Tick => Input::Tick,
            HostInput::Receive { from, msg } => Input::Receive { from, msg },
            HostInput::Request(req) => req.into(),
        }
    }
}

/// Passes a Raft action through to the runtime: persistence actions become
/// [`HostAction::Persist`] and `Send` becomes [`HostAction::Send`]; anything else
/// (`Apply`, `Proposed`, `ReadReady`, ...) is given back (`Err`) for the service to
/// handle. A service that owns a Raft node calls this on each of the node's actions.
pub fn pass_through<E>(action: Action) -> Result<HostAction<E>, Action> {
    match action {
        Action::SaveHardState(_)
        | Action::TruncateLog { .. }
        | Action::AppendLog(_)
        | Action::SaveSnapshot(_) => Ok(HostAction::Persist(action)),
        Action::Send { to, msg } => Ok(HostAction::Send { to, msg }),
        other => Err(other),
    }
}

/// A bare Raft node: clients submit [`RaftRequest`]s and get the non-persistence,
/// non-`Send` [`Action`]s (`Apply`, `Proposed`, `NotLeader`, `ReadReady`, `ReadFailed`,
/// `RestoreSnapshot`, `LeaderChanged`) as events.
///
/// Each step that produces actions allocates one `Vec` for them (an idle tick does not).
impl Machine for Node {
    type Request = RaftRequest;
    type Event = Action;

    fn step(&mut self, input: HostInput<RaftRequest>, out: &mut Vec<HostAction<Action>>) {
        self.step_raft(input.into(), out);
    }

    fn takes_durable_reports(&self) -> bool {
        self.config().durable_reports
    }

    fn log_durable(&mut self, index: Index, term: Term, out: &mut Vec<HostAction<Action>>) {
        self.step_raft(Input::LogDurable { index, term }, out);
    }
}

/// Steps a bare Raft node and sorts its actions (see [`pass_through`]).
trait StepRaft {
    fn step_raft(&mut self, input: Input, out: &mut Vec<HostAction<Action>>);
}

impl StepRaft for Node {
    fn step_raft(&mut self, input: Input, out: &mut Vec<HostAction<Action>>) {
        out.extend(
            Node::step(self, input)
                .into_iter()
                .map(|a| pass_through(a).unwrap_or_else(HostAction::Event)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_raft::Config;

    #[test]
    fn raft_actions_are_sorted_by_kind() {
        let mut node = Node::new(Config::new(1, [1]).with_seed(3)).unwrap();
        let mut out = Vec::new();
        let mut ticks = 0;
        while !node.is_leader() {
            Machine::step(&mut node, HostInput::Tick, &mut out);
            ticks += 1;
            assert!(ticks < 1000, "a one-member cluster elects itself");
        }
        out.clear();
        Machine::step(
            &mut node,
            HostInput::Request(RaftRequest::Propose(Bytes::from_static(b"x"))),
            &mut out,
        );
        assert!(
            out.iter()
                .any(|a| matches!(a, HostAction::Persist(Action::AppendLog(_))))
        );
        assert!(
            out.iter()
                .any(|a| matches!(a, HostAction::Event(Action::Proposed { index: 2, .. })))
        );
        assert!(
            out.iter()
                .all(|a| !matches!(a, HostAction::Event(Action::AppendLog(_))))
        );
    }

    #[test]
    fn pass_through_routes_each_kind() {
        let send = Action::Send {
            to: 2,
            msg: Message::VoteReply {
                term: 1,
                granted: true,
                pre_vote: false,
            },
        };
        assert!(matches!(
            pass_through::<()>(send),
            Ok(HostAction::Send { to: 2, .. })
        ));
        assert!(matches!(
            pass_through::<()>(Action::TruncateLog { from: 3 }),
            Ok(HostAction::Persist(_))
        ));
        assert_eq!(
            pass_through::<()>(Action::NotLeader { leader: None }),
            Err(Action::NotLeader { leader: None })
        );
    }
}
