//! The replicated-state-machine layer: any deterministic [`StateMachine`] on Raft.
//!
//! An [`Rsm`] owns a [`stepwise_raft::Node`] and a state machine. Callers submit commands
//! ([`Input::Submit`], [`Input::SubmitBatch`]) and read-only queries ([`Input::Query`]),
//! each with a tag of their choosing, and learn the outcome from an [`Action::Reply`]
//! carrying the same tag:
//!
//! * a command is answered once it is committed and applied, with the state machine's
//!   output; commands tagged with a [`Session`] execute exactly once, however often they are
//!   retried (a retry gets the original output);
//! * a query is answered from local state once Raft's ReadIndex protocol has confirmed
//!   leadership and the state has caught up with the read index (Raft thesis 6.4): reads do
//!   not go through the log, yet are never served from a stale leader. With
//!   [`Config::follower_reads`](stepwise_raft::Config::follower_reads) in
//!   [`RsmConfig::raft`] followers answer queries too: the follower asks the leader for the
//!   read index and answers once it has applied that far, so reads can be spread over
//!   every replica;
//! * a submission that cannot succeed here gets a clean [`SubmitError::NotLeader`]: this node
//!   is not the leader, or it proposed the command but a different entry was applied at that
//!   index, or it learned of a newer term before the command was applied.
//!
//! The layer snapshots on its own when the persisted Raft state grows past
//! [`RsmConfig::max_raft_state`], restores from snapshots sent by the leader
//! (InstallSnapshot) and, through [`Rsm::restore`], after a restart. A caller that just
//! shrank the state (say, deleted data it no longer owns) can snapshot at once with
//! [`Input::Compact`], so the persisted state shrinks too without waiting for the size
//! trigger.
//!
//! # Ending sessions
//!
//! The session table keeps one entry per client that ever sent a command with a
//! [`Session`], and it is replicated state (every replica, every snapshot). A service whose
//! clients come and go (a server that gives every connection its own client id) ends a
//! client's session with [`Input::EndSession`]: the leader proposes a log entry of the
//! layer's own (see the codec's format, flag `0x02`), and every replica, applying it at the
//! same log position, removes that client's entry ([`RsmStats::sessions_ended`] counts the
//! removals). On a replica that does not lead, `EndSession` is ignored (nothing proposed,
//! no reply, no error): it is best effort, and a session not ended only costs its entry.
//!
//! **Safety.** Removing a client's entry forgets which of its commands executed, so a
//! copy of one of them applied *after* the end of its session would execute again. The
//! caller must therefore end a session only when the client will never send again *and*
//! no copy of its commands can still be submitted anywhere: no retry still running (in the
//! client, in a server that retries or forwards on its behalf). Copies already submitted
//! before the `EndSession` are harmless: on one leader they are ahead of it in the log
//! (proposals keep their order), and an entry an older leader proposed that is not in the
//! log of the leader proposing `EndSession` can never commit after it (Log Matching). A
//! server that gives each connection its own client id meets this once the connection is
//! gone and every retry made for it has ended (kv-server waits out its retry deadlines).
//!
//! # The action contract
//!
//! [`Rsm::step`] returns [`Action`]s to carry out **in order**, exactly as the Raft node's
//! (see [`stepwise_raft::Action`]): every [`Action::Persist`] must be durable before any later
//! action runs, above all before a later [`Action::Send`]. The layer passes Raft's
//! persistence actions and messages through in Raft's order and adds its own
//! [`Action::Persist`] of a snapshot after the entries it covers were applied. Replies
//! need no durability of their own: a command is only answered after it committed, that is,
//! after a majority stored it.
//!
//! ```
//! use bytes::Bytes;
//! use stepwise_kv::rsm::{Action, Input, Rsm, RsmConfig, StateMachine, Submission};
//! use stepwise_raft::{Config, Persisted};
//!
//! /// A counter: the smallest useful state machine.
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     type Command = u64; // add this much
//!     type Decoded<'a> = u64;
//!     type Query = ();    // read the value
//!     type Output = u64;  // the value after the command
//!     fn apply(&mut self, add: u64) -> u64 {
//!         self.0 += add;
//!         self.0
//!     }
//!     fn query(&self, _: &()) -> u64 {
//!         self.0
//!     }
//!     fn snapshot(&self, out: &mut Vec<u8>) {
//!         out.extend_from_slice(&self.0.to_le_bytes());
//!     }
//!     fn restore(&mut self, data: &[u8]) -> Result<(), String> {
//!         self.0 = u64::from_le_bytes(data.try_into().map_err(|_| "bad counter")?);
//!         Ok(())
//!     }
//! }
//!
//! // A one-member cluster, so the example commits on its own.
//! let config = RsmConfig::new(Config::new(1, [1]));
//! // Tags are the caller's: here plain numbers.
//! let mut rsm: Rsm<Counter, u32> = Rsm::new(config, Counter::default()).unwrap();
//! let mut disk = Persisted::default();
//! let mut replies = Vec::new();
//! let mut run = |rsm: &mut Rsm<Counter, u32>, input, disk: &mut Persisted| {
//!     for action in rsm.step(input) {
//!         match action {
//!             Action::Persist(a) => { disk.apply(&a); } // durable before what follows
//!             Action::Send { .. } => {}                  // to a peer
//!             Action::Reply { tag, result } => replies.push((tag, result)),
//!             Action::LeaderChanged { .. } | Action::Halted(_) => {}
//!         }
//!     }
//! };
//! while !rsm.is_leader() {
//!     run(&mut rsm, Input::Tick, &mut disk);
//! }
//! run(&mut rsm, Input::Submit(Submission::new(1, 5)), &mut disk);
//! run(&mut rsm, Input::Query { tag: 2, query: () }, &mut disk);
//! assert_eq!(replies, [(1, Ok(5)), (2, Ok(5))]);
//!
//! // Restart is a constructor: the state comes back from what was persisted.
//! let again: Rsm<Counter, u32> =
//!     Rsm::restore(RsmConfig::new(Config::new(1, [1])), disk, Counter::default()).unwrap();
//! assert_eq!(again.raft().log().last_index(), 2); // the leader's no-op and our command
//! ```

pub(crate) mod codec;
mod log_size;
mod session;
mod waiting;

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use stepwise_raft::{
    Action as RaftAction, Config, ConfigError, Entry, Index, Input as RaftInput, Message, Node,
    NodeId, Payload, Persisted, Snapshot, Term,
};

pub use codec::{DecodeError, postcard_decode, postcard_encode};
pub use session::{Executed, Seen, Session, SessionEntry, Sessions};

use codec::{
    EntryReader, Frame, PostcardEntry, decode_snapshot, encode_end_session, encode_entry,
    encode_snapshot,
};
use log_size::LogSize;
use waiting::Waiting;

/// A deterministic state machine to replicate.
///
/// Every replica applies the same commands in the same order, so `apply` must depend only
/// on the state and the command: no clocks, no randomness, no iteration over hash maps with
/// random seeds. Outputs are kept in the session table for retries and travel in snapshots,
/// hence `Serialize`.
///
/// Commands are written to the log by [`StateMachine::encode_command`] and read back as
/// [`StateMachine::Decoded`] by [`StateMachine::decode_command`], which may borrow from the
/// entry, so a machine can apply without allocating copies it does not keep. The default
/// codec is postcard (serde), and most machines simply use
/// `type Decoded<'a> = Self::Command;`; a machine on a hot path (the KV store) overrides
/// both methods with a hand-written format.
pub trait StateMachine {
    /// A command that changes the state. Goes through the Raft log.
    type Command: Serialize;
    /// A command as read back from the log, possibly borrowing from the entry's bytes.
    /// `Deserialize` (postcard) is the default [`StateMachine::decode_command`] and how
    /// entries of the older format 1 are read back (see the codec's docs).
    type Decoded<'a>: Deserialize<'a>;
    /// A read-only query, answered from local state after a ReadIndex round.
    type Query;
    /// What a command or a query returns.
    type Output: Clone + Serialize + DeserializeOwned;

    /// Applies one committed command.
    fn apply(&mut self, command: Self::Decoded<'_>) -> Self::Output;

    /// Answers a read-only query.
    fn query(&self, query: &Self::Query) -> Self::Output;

    /// Appends a serialized form of the whole state to `out`.
    fn snapshot(&self, out: &mut Vec<u8>);

    /// Replaces the whole state with one written by [`StateMachine::snapshot`]. On error
    /// the state may be left in any condition; the layer stops using it.
    fn restore(&mut self, data: &[u8]) -> Result<(), String>;

    /// Appends the bytes of one command to `out` (the layer frames them with their
    /// length and session). Default: postcard.
    fn encode_command(command: &Self::Command, out: &mut Vec<u8>) {
        codec::postcard_encode(command, out);
    }

    /// Reads a command back from exactly the bytes [`StateMachine::encode_command`] wrote.
    /// An error skips that command on every replica (counted in
    /// [`RsmStats::bad_entries`]). Default: postcard.
    fn decode_command(data: &[u8]) -> Result<Self::Decoded<'_>, DecodeError> {
        codec::postcard_decode(data)
    }

    /// The command exactly as [`StateMachine::decode_command`] would read it back from
    /// what [`StateMachine::encode_command`] writes, made without the round trip; `None`
    /// (the default) to always decode. With it the leader applies the commands it proposed
    /// from memory instead of decoding its own entries. Replicas that decode must end in
    /// the same state, so only a machine whose codec round-trips every command exactly
    /// should provide it (the KV store does, and tests its codec for it).
    fn view_command(command: &Self::Command) -> Option<Self::Decoded<'_>> {
        let _ = command;
        None
    }
}

/// Configuration of an [`Rsm`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsmConfig {
    /// The Raft node's configuration. `leader_noop` must be on (ReadIndex needs it).
    pub raft: Config,
    /// Snapshot once the persisted Raft state (hard state and log, measured as
    /// [`Persisted::raft_state_size`]) reaches this many bytes; `None` never snapshots
    /// (the lab's `maxraftstate = -1`).
    pub max_raft_state: Option<usize>,
}

impl RsmConfig {
    /// A configuration that never snapshots.
    pub fn new(raft: Config) -> Self {
        RsmConfig {
            raft,
            max_raft_state: None,
        }
    }

    /// Sets [`RsmConfig::max_raft_state`] (builder style).
    pub fn with_max_raft_state(mut self, bytes: Option<usize>) -> Self {
        self.max_raft_state = bytes;
        self
    }
}

/// Why an [`Rsm`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RsmError {
    /// The Raft configuration or persisted Raft state was refused.
    #[error(transparent)]
    Raft(#[from] ConfigError),
    /// `leader_noop` is off, so linearizable reads could never be served.
    #[error("the Raft configuration must have leader_noop on (ReadIndex needs it)")]
    NoLeaderNoop,
    /// The persisted snapshot does not decode.
    #[error("persisted snapshot: {0}")]
    Snapshot(#[from] DecodeError),
    /// The state machine refused the persisted snapshot.
    #[error("state machine refused the persisted snapshot: {0}")]
    Restore(String),
}

/// Why a submission or query did not produce an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum SubmitError {
    /// Not executed here: this node is not the leader, or lost leadership before the
    /// command was applied (it may still commit later under another leader, so retry with
    /// the same session to learn its outcome). `leader` is a hint.
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<NodeId>,
    },
    /// The session's sequence number is older than the client's last executed command:
    /// the client has moved on and the original answer is gone.
    Stale,
}

/// One command to replicate, with the caller's tag and an optional session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission<C, T> {
    /// Echoed in the [`Action::Reply`].
    pub tag: T,
    /// With a session the command executes at most once across retries.
    pub session: Option<Session>,
    /// The command.
    pub command: C,
}

impl<C, T> Submission<C, T> {
    /// A submission without a session.
    pub fn new(tag: T, command: C) -> Self {
        Submission {
            tag,
            session: None,
            command,
        }
    }

    /// A submission with a session.
    pub fn with_session(tag: T, session: Session, command: C) -> Self {
        Submission {
            tag,
            session: Some(session),
            command,
        }
    }
}

/// Everything that can happen to an [`Rsm`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<C, Q, T> {
    /// One unit of logical time (the Raft node's tick).
    Tick,
    /// A Raft message from a peer.
    Receive {
        /// The sender, as the transport authenticated it.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// Replicate one command.
    Submit(Submission<C, T>),
    /// Replicate several commands in one log entry (one Raft round for all of them).
    /// Each gets its own reply.
    SubmitBatch(Vec<Submission<C, T>>),
    /// Answer a read-only query linearizably.
    Query {
        /// Echoed in the reply.
        tag: T,
        /// The query.
        query: Q,
    },
    /// Answer several read-only queries linearizably with one ReadIndex round for all of
    /// them (what an adapter does with the reads that arrived since its last step). Each
    /// gets its own reply.
    QueryBatch(Vec<(T, Q)>),
    /// End a client's session: on the leader, propose a log entry that removes `client`'s
    /// entry from the session table on every replica when applied; elsewhere (or after a
    /// halt) do nothing. No reply. Only once the client can never retry: see "Ending
    /// sessions" in the [module docs](self).
    EndSession {
        /// The client whose session ends.
        client: u64,
    },
    /// Snapshot now: if entries were applied after the log's snapshot index (and the layer
    /// has not halted), encode a snapshot at the applied index and hand it to Raft, which
    /// persists it ([`Action::Persist`] of a `SaveSnapshot`) and compacts its log; else do
    /// nothing. Independent of [`RsmConfig::max_raft_state`]. Local: no reply, no message.
    Compact,
    /// The adapter's report that its log is durable through `index` (whose entry has
    /// `term`), passed to Raft as [`stepwise_raft::Input::LogDurable`]; only meaningful
    /// with [`Config::durable_reports`](stepwise_raft::Config::durable_reports).
    LogDurable {
        /// The last durable log index.
        index: Index,
        /// The term of the entry at `index`.
        term: Term,
    },
}

/// What the adapter must do, in order (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<O, T> {
    /// A Raft persistence action ([`stepwise_raft::Action::SaveHardState`], `TruncateLog`,
    /// `AppendLog` or `SaveSnapshot`; never another kind): make it durable before carrying
    /// out any later action. [`Persisted::apply`] is the reference semantics.
    Persist(RaftAction),
    /// Send a Raft message to a peer (best effort).
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// The outcome of the submission or query with this tag.
    Reply {
        /// The caller's tag.
        tag: T,
        /// The output, or why there is none.
        result: Result<O, SubmitError>,
    },
    /// The term or the known leader changed (informational: routing hints).
    LeaderChanged {
        /// The current term.
        term: Term,
        /// The leader of that term, if known.
        leader: Option<NodeId>,
    },
    /// The layer stopped: a snapshot from the leader could not be restored, so this replica
    /// cannot follow the log any more. Every later input is refused with
    /// [`SubmitError::NotLeader`]. Restarting from the persisted state reports the cause
    /// through [`Rsm::restore`].
    Halted(String),
}

/// Counters of unusual events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RsmStats {
    /// Committed entries (or commands inside them) that did not decode; skipped
    /// deterministically on every replica.
    pub bad_entries: u64,
    /// Snapshots taken by this replica.
    pub snapshots_taken: u64,
    /// Snapshots installed from the leader.
    pub snapshots_installed: u64,
    /// Commands skipped because their session showed them already executed.
    pub duplicates: u64,
    /// Sessions ended ([`Input::EndSession`] applied to a client that had an entry).
    pub sessions_ended: u64,
}

/// Queries answered together (one ReadIndex round), with their tags.
type Queries<T, Q> = SmallVec<[(T, Q); 1]>;

/// A proposal waiting to be applied: the entry's position and the tags of its commands,
/// and the commands themselves when the machine can apply them without decoding
/// ([`StateMachine::view_command`]).
struct Pending<C, T> {
    index: Index,
    term: Term,
    tags: SmallVec<[Option<T>; 1]>,
    commands: Option<Commands<C>>,
}

/// The commands of one proposal, with their sessions, in entry order.
type Commands<C> = SmallVec<[(Option<Session>, C); 1]>;

/// A replicated state machine. See the [module docs](self).
pub struct Rsm<S: StateMachine, T = u64> {
    raft: Node,
    sm: S,
    sessions: Sessions<S::Output>,
    max_raft_state: Option<usize>,
    log_size: LogSize,
    /// Highest index applied to `sm` (or covered by the snapshot it was restored from).
    applied: Index,
    /// Proposals of the current term waiting for their entry, by increasing index.
    pending: VecDeque<Pending<S::Command, T>>,
    /// The tags of the proposal being handed to Raft in this step.
    proposing: SmallVec<[Option<T>; 1]>,
    /// Its commands, if kept for applying them without decoding.
    proposing_commands: Option<Commands<S::Command>>,
    /// Queries waiting for ReadIndex confirmation, by ReadIndex context.
    reads: Waiting<Queries<T, S::Query>>,
    /// Confirmed queries waiting for `applied` to reach their read index, by index.
    ready_reads: VecDeque<(Index, T, S::Query)>,
    halted: Option<String>,
    stats: RsmStats,
    /// Reused buffer for the Raft node's actions.
    raft_out: Vec<RaftAction>,
    /// Capacity to reserve for the next entry (the largest entry so far, rounded up).
    entry_size_hint: usize,
}

impl<S, T> fmt::Debug for Rsm<S, T>
where
    S: StateMachine,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rsm")
            .field("raft", &self.raft)
            .field("applied", &self.applied)
            .field("sessions", &self.sessions.len())
            .field("pending", &self.pending.len())
            .field("reads", &self.pending_queries())
            .field("halted", &self.halted)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<S: StateMachine, T> Rsm<S, T> {
    /// A brand-new replica with an empty log; `sm` is the initial state.
    pub fn new(config: RsmConfig, sm: S) -> Result<Self, RsmError> {
        Self::restore(config, Persisted::default(), sm)
    }

    /// Rebuilds a replica after a restart from what it persisted. The state machine and
    /// the session table come back from the persisted snapshot (if any, else `sm` is the
    /// initial state); entries after it are applied again as Raft re-learns that they are
    /// committed.
    pub fn restore(config: RsmConfig, persisted: Persisted, mut sm: S) -> Result<Self, RsmError> {
        if !config.raft.leader_noop {
            return Err(RsmError::NoLeaderNoop);
        }
        let mut sessions = Sessions::new();
        let mut applied = 0;
        if let Some(snap) = &persisted.snapshot {
            let (s, state) = decode_snapshot(&snap.data)?;
            sm.restore(state).map_err(RsmError::Restore)?;
            sessions = s;
            applied = snap.meta.index;
        }
        let log_size = LogSize::from_persisted(&persisted);
        let raft = Node::restore(config.raft, persisted)?;
        Ok(Rsm {
            raft,
            sm,
            sessions,
            max_raft_state: config.max_raft_state,
            log_size,
            applied,
            pending: VecDeque::new(),
            proposing: SmallVec::new(),
            proposing_commands: None,
            reads: Waiting::default(),
            ready_reads: VecDeque::new(),
            halted: None,
            stats: RsmStats::default(),
            raft_out: Vec::new(),
            entry_size_hint: 64,
        })
    }

    // ----- accessors -----------------------------------------------------------------

    /// The Raft node (read-only: drive it through [`Rsm::step`]).
    pub fn raft(&self) -> &Node {
        &self.raft
    }

    /// The state machine (read-only).
    pub fn state(&self) -> &S {
        &self.sm
    }

    /// The session table.
    pub fn sessions(&self) -> &Sessions<S::Output> {
        &self.sessions
    }

    /// Whether this replica leads the current term.
    pub fn is_leader(&self) -> bool {
        self.raft.is_leader()
    }

    /// The leader this replica knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.leader()
    }

    /// The highest log index applied to the state machine.
    pub fn applied_index(&self) -> Index {
        self.applied
    }

    /// The persisted Raft state's size as the snapshot trigger measures it.
    pub fn raft_state_size(&self) -> usize {
        self.log_size.bytes()
    }

    /// Counters of unusual events.
    pub fn stats(&self) -> RsmStats {
        self.stats
    }

    /// Why the layer halted, if it did (see [`Action::Halted`]).
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    /// Number of submissions proposed here and still waiting for their entry.
    pub fn pending_submissions(&self) -> usize {
        self.pending.iter().map(|p| p.tags.len()).sum()
    }

    /// Number of queries waiting for a ReadIndex round or for the state to catch up.
    pub fn pending_queries(&self) -> usize {
        // A batch waits under one ReadIndex context: count its queries, not the batch.
        self.reads.iter().map(SmallVec::len).sum::<usize>() + self.ready_reads.len()
    }

    /// A snapshot of the current state (session table and state machine), as the layer
    /// would hand to Raft.
    pub fn encode_snapshot(&self) -> Bytes {
        encode_snapshot(&self.sessions, |buf| self.sm.snapshot(buf))
    }

    // ----- stepping ------------------------------------------------------------------

    /// Feeds one input and returns the actions to carry out, in order.
    pub fn step(&mut self, input: Input<S::Command, S::Query, T>) -> Vec<Action<S::Output, T>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Like [`Rsm::step`], but appends the actions to `out`.
    pub fn step_into(
        &mut self,
        input: Input<S::Command, S::Query, T>,
        out: &mut Vec<Action<S::Output, T>>,
    ) {
        if self.halted.is_some() {
            self.refuse(input, out);
            return;
        }
        match input {
            Input::Tick => self.raft_step(RaftInput::Tick, out),
            Input::LogDurable { index, term } => {
                self.raft_step(RaftInput::LogDurable { index, term }, out)
            }
            Input::Receive { from, msg } => self.raft_step(RaftInput::Receive { from, msg }, out),
            Input::Submit(sub) => self.submit(std::iter::once(sub), 1, out),
            Input::SubmitBatch(subs) => {
                let n = subs.len();
                self.submit(subs.into_iter(), n, out);
            }
            Input::Query { tag, query } => {
                let ctx = self.reads.push(smallvec::smallvec![(tag, query)]);
                self.raft_step(RaftInput::ReadIndex { ctx }, out);
            }
            Input::QueryBatch(queries) => {
                if !queries.is_empty() {
                    let ctx = self.reads.push(SmallVec::from_vec(queries));
                    self.raft_step(RaftInput::ReadIndex { ctx }, out);
                }
            }
            Input::EndSession { client } => {
                if self.raft.is_leader() {
                    let mut buf = Vec::with_capacity(16);
                    encode_end_session(client, &mut buf);
                    // No tags: nobody waits for a reply.
                    self.proposing.clear();
                    self.raft_step(RaftInput::Propose(Bytes::from(buf)), out);
                }
            }
            Input::Compact => {
                if self.applied > self.raft.log().snapshot_meta().index {
                    self.snapshot_now(out);
                }
            }
        }
        self.maybe_snapshot(out);
    }

    /// Answers every submission and query of `input` with `NotLeader` (after a halt).
    fn refuse(
        &mut self,
        input: Input<S::Command, S::Query, T>,
        out: &mut Vec<Action<S::Output, T>>,
    ) {
        let err = Err(SubmitError::NotLeader { leader: None });
        match input {
            Input::Tick
            | Input::Receive { .. }
            | Input::EndSession { .. }
            | Input::Compact
            | Input::LogDurable { .. } => {}
            Input::Submit(sub) => out.push(Action::Reply {
                tag: sub.tag,
                result: err,
            }),
            Input::SubmitBatch(subs) => {
                for sub in subs {
                    out.push(Action::Reply {
                        tag: sub.tag,
                        result: err.clone(),
                    });
                }
            }
            Input::Query { tag, .. } => out.push(Action::Reply { tag, result: err }),
            Input::QueryBatch(queries) => {
                for (tag, _) in queries {
                    out.push(Action::Reply {
                        tag,
                        result: err.clone(),
                    });
                }
            }
        }
    }

    /// Proposes the submissions that are not already known to be executed, as one entry.
    fn submit(
        &mut self,
        subs: impl Iterator<Item = Submission<S::Command, T>>,
        hint: usize,
        out: &mut Vec<Action<S::Output, T>>,
    ) {
        if !self.raft.is_leader() {
            // Refuse at once without encoding anything.
            let leader = self.raft.leader();
            for sub in subs {
                let result = match sub.session.map(|s| self.sessions.check(s)) {
                    Some(Seen::Done(o)) => Ok(o.clone()),
                    Some(Seen::Stale) => Err(SubmitError::Stale),
                    _ => Err(SubmitError::NotLeader { leader }),
                };
                out.push(Action::Reply {
                    tag: sub.tag,
                    result,
                });
            }
            return;
        }
        // Room for the whole batch up front (no regrowth while collecting it).
        let mut commands: Commands<S::Command> = SmallVec::with_capacity(hint);
        self.proposing.clear();
        self.proposing.reserve(hint);
        for sub in subs {
            if let Some(s) = sub.session {
                match self.sessions.check(s) {
                    Seen::New => {}
                    Seen::Done(o) => {
                        // Executed already (a retry): the original answer, no new entry.
                        self.stats.duplicates += 1;
                        out.push(Action::Reply {
                            tag: sub.tag,
                            result: Ok(o.clone()),
                        });
                        continue;
                    }
                    Seen::Stale => {
                        out.push(Action::Reply {
                            tag: sub.tag,
                            result: Err(SubmitError::Stale),
                        });
                        continue;
                    }
                }
            }
            commands.push((sub.session, sub.command));
            self.proposing.push(Some(sub.tag));
        }
        if commands.is_empty() {
            return;
        }
        let mut buf = Vec::with_capacity(self.entry_size_hint);
        encode_entry(
            commands.len(),
            commands.iter().map(|(s, c)| (*s, c)),
            &mut buf,
            |c, out| S::encode_command(c, out),
        );
        // Grow the hint to the largest entry seen (capped), so batches rarely reallocate.
        self.entry_size_hint = self
            .entry_size_hint
            .max(buf.len().next_power_of_two())
            .min(1 << 20);
        let data = Bytes::from(buf);
        // Kept to apply from memory once committed, if the machine can.
        let viewable = S::view_command(&commands[0].1).is_some();
        self.proposing_commands = viewable.then_some(commands);
        self.raft_step(RaftInput::Propose(data), out);
        // Raft answers a proposal in the same step (Proposed or NotLeader); nothing is left.
        debug_assert!(self.proposing.is_empty());
    }

    /// Steps the Raft node and translates its actions.
    fn raft_step(&mut self, input: RaftInput, out: &mut Vec<Action<S::Output, T>>) {
        let mut actions = std::mem::take(&mut self.raft_out);
        actions.clear();
        self.raft.step_into(input, &mut actions);
        for action in actions.drain(..) {
            self.translate(action, out);
        }
        self.raft_out = actions;
    }

    fn translate(&mut self, action: RaftAction, out: &mut Vec<Action<S::Output, T>>) {
        match action {
            RaftAction::SaveHardState(_)
            | RaftAction::TruncateLog { .. }
            | RaftAction::AppendLog(_)
            | RaftAction::SaveSnapshot(_) => {
                self.log_size.observe(&action);
                out.push(Action::Persist(action));
            }
            RaftAction::Send { to, msg } => out.push(Action::Send { to, msg }),
            RaftAction::Apply(entry) => self.apply_entry(entry, out),
            RaftAction::RestoreSnapshot(snapshot) => self.install(snapshot, out),
            RaftAction::Proposed { index, term } => {
                let tags = std::mem::take(&mut self.proposing);
                let commands = self.proposing_commands.take();
                if tags.is_empty() {
                    return;
                }
                // Invariant: all pending proposals are of the current term (older ones are
                // failed when the term changes) and Raft appends at increasing indexes.
                debug_assert!(self.pending.back().is_none_or(|p| p.index < index));
                self.pending.push_back(Pending {
                    index,
                    term,
                    tags,
                    commands,
                });
            }
            RaftAction::NotLeader { leader } => {
                self.proposing_commands = None;
                for tag in std::mem::take(&mut self.proposing).into_iter().flatten() {
                    out.push(Action::Reply {
                        tag,
                        result: Err(SubmitError::NotLeader { leader }),
                    });
                }
            }
            RaftAction::ReadReady { ctx, index } => {
                let Some(queries) = self.reads.take(ctx) else {
                    return;
                };
                if index <= self.applied {
                    for (tag, query) in queries {
                        let result = Ok(self.sm.query(&query));
                        out.push(Action::Reply { tag, result });
                    }
                } else {
                    let at = self.ready_reads.partition_point(|r| r.0 <= index);
                    // Usually at the end: read indexes rarely go backwards.
                    for (k, (tag, query)) in queries.into_iter().enumerate() {
                        self.ready_reads.insert(at + k, (index, tag, query));
                    }
                }
            }
            RaftAction::ReadFailed { ctx, leader } => {
                for (tag, _) in self.reads.take(ctx).into_iter().flatten() {
                    out.push(Action::Reply {
                        tag,
                        result: Err(SubmitError::NotLeader { leader }),
                    });
                }
            }
            RaftAction::LeaderChanged { term, leader } => {
                // A proposal of an older term may never commit: fail it so the client
                // retries (its session keeps a retry from executing twice). A leader that
                // steps down within its term keeps its proposals: nothing else can be
                // appended in that term, so they stay pending until a newer term shows up
                // or their entries are applied.
                while self.pending.front().is_some_and(|p| p.term < term) {
                    let p = self.pending.pop_front().expect("checked above");
                    fail_tags(p.tags, leader, out);
                }
                out.push(Action::LeaderChanged { term, leader });
            }
        }
    }

    /// Applies one committed entry and answers the proposals it settles.
    fn apply_entry(&mut self, entry: Entry, out: &mut Vec<Action<S::Output, T>>) {
        let Entry {
            index,
            term,
            payload,
        } = entry;
        self.applied = index;
        // Proposals at lower indexes were overwritten by entries we already applied (cannot
        // happen while indexes are applied in order, kept for robustness).
        let leader = self.raft.leader();
        while self.pending.front().is_some_and(|p| p.index < index) {
            let p = self.pending.pop_front().expect("checked above");
            fail_tags(p.tags, leader, out);
        }
        let mut mine = match self.pending.front() {
            Some(p) if p.index == index => {
                let p = self.pending.pop_front().expect("checked above");
                if p.term == term {
                    Some((p.tags, p.commands))
                } else {
                    // A different entry won this index: ours is lost.
                    fail_tags(p.tags, leader, out);
                    None
                }
            }
            _ => None,
        };
        match (&mut mine, payload) {
            // Our own proposal (same index and term: the same entry, by Log Matching),
            // its commands still in memory: applied from there, not decoded again.
            (Some((tags, Some(commands))), _) => {
                for (k, (session, command)) in commands.iter().enumerate() {
                    let view = S::view_command(command)
                        .expect("kept only for machines that view their commands");
                    self.apply_command(*session, view, Some(&mut tags[..]), k, out);
                }
            }
            (_, Payload::Command(data)) => {
                let tags = mine.as_mut().map(|(tags, _)| &mut tags[..]);
                self.apply_commands(&data, tags, out);
            }
            (_, Payload::Noop) => {}
        }
        let mine = mine.map(|(tags, _)| tags);
        if let Some(tags) = mine {
            // Commands of a malformed entry: never executed.
            fail_tags(tags, leader, out);
        }
        self.serve_ready_reads(out);
    }

    fn apply_commands(
        &mut self,
        data: &[u8],
        mut tags: Option<&mut [Option<T>]>,
        out: &mut Vec<Action<S::Output, T>>,
    ) {
        if let Some(old) = PostcardEntry::open(data) {
            self.apply_postcard_entry(old, tags, out);
            return;
        }
        let mut reader = match EntryReader::open(data) {
            Ok(r) => r,
            Err(_) => {
                self.stats.bad_entries += 1;
                return;
            }
        };
        let mut k = 0;
        while let Some(next) = reader.next() {
            let (session, bytes) = match next {
                Ok(Frame::Command(session, bytes)) => (session, bytes),
                Ok(Frame::EndSession { client }) => {
                    k += 1;
                    if self.sessions.remove(client) {
                        self.stats.sessions_ended += 1;
                    }
                    continue;
                }
                Err(_) => {
                    // Broken framing: the rest of the entry is unreadable (counted once,
                    // not again as trailing bytes).
                    self.stats.bad_entries += 1;
                    return;
                }
            };
            let k_now = k;
            k += 1;
            let command = match S::decode_command(bytes) {
                Ok(command) => command,
                Err(_) => {
                    // Skipped on every replica alike; its submitter learns it failed.
                    self.stats.bad_entries += 1;
                    continue;
                }
            };
            self.apply_command(session, command, tags.as_deref_mut(), k_now, out);
        }
        if reader.has_trailing_bytes() {
            self.stats.bad_entries += 1;
        }
    }

    /// Applies an entry of the older format 1 (see the codec's docs) as it was applied
    /// then: a malformed command ends the entry, trailing bytes are counted.
    fn apply_postcard_entry(
        &mut self,
        entry: Result<PostcardEntry<'_>, DecodeError>,
        mut tags: Option<&mut [Option<T>]>,
        out: &mut Vec<Action<S::Output, T>>,
    ) {
        let Ok(mut reader) = entry else {
            self.stats.bad_entries += 1;
            return;
        };
        let mut k = 0;
        while let Some(next) = reader.next::<S::Decoded<'_>>() {
            let Ok(envelope) = next else {
                self.stats.bad_entries += 1;
                return;
            };
            self.apply_command(
                envelope.session,
                envelope.command,
                tags.as_deref_mut(),
                k,
                out,
            );
            k += 1;
        }
        if reader.has_trailing_bytes() {
            self.stats.bad_entries += 1;
        }
    }

    /// Applies one decoded command (once per session) and answers its tag, the `k`th of
    /// the entry's proposal if this replica proposed it.
    fn apply_command(
        &mut self,
        session: Option<Session>,
        command: S::Decoded<'_>,
        tags: Option<&mut [Option<T>]>,
        k: usize,
        out: &mut Vec<Action<S::Output, T>>,
    ) {
        let result = match session {
            None => Ok(self.sm.apply(command)),
            // One session-table lookup for check and record.
            Some(s) => match self.sessions.execute_once(s, || self.sm.apply(command)) {
                Executed::New(output) => Ok(output),
                Executed::Duplicate(output) => {
                    self.stats.duplicates += 1;
                    Ok(output)
                }
                Executed::Stale => {
                    self.stats.duplicates += 1;
                    Err(SubmitError::Stale)
                }
            },
        };
        if let Some(tag) = tags.and_then(|t| t.get_mut(k)).and_then(Option::take) {
            out.push(Action::Reply { tag, result });
        }
    }

    /// Serves confirmed queries whose read index has been applied.
    fn serve_ready_reads(&mut self, out: &mut Vec<Action<S::Output, T>>) {
        while self
            .ready_reads
            .front()
            .is_some_and(|r| r.0 <= self.applied)
        {
            let (_, tag, query) = self.ready_reads.pop_front().expect("checked above");
            let result = Ok(self.sm.query(&query));
            out.push(Action::Reply { tag, result });
        }
    }

    /// Replaces the state with a snapshot from the leader.
    fn install(&mut self, snapshot: Snapshot, out: &mut Vec<Action<S::Output, T>>) {
        let restored = decode_snapshot::<S::Output>(&snapshot.data)
            .map_err(|e| e.to_string())
            .and_then(|(sessions, state)| {
                self.sm.restore(state)?;
                Ok(sessions)
            });
        match restored {
            Ok(sessions) => {
                self.sessions = sessions;
                self.applied = snapshot.meta.index;
                self.stats.snapshots_installed += 1;
                // Our proposals at covered indexes: their outcome is inside the snapshot,
                // unknown to us; the client's retry learns it from the session table.
                let leader = self.raft.leader();
                while self
                    .pending
                    .front()
                    .is_some_and(|p| p.index <= self.applied)
                {
                    let p = self.pending.pop_front().expect("checked above");
                    fail_tags(p.tags, leader, out);
                }
                self.serve_ready_reads(out);
            }
            Err(reason) => {
                // Raft has already adopted the snapshot: this replica cannot follow the log
                // any more. Stop rather than diverge.
                let reason = format!("snapshot at index {}: {reason}", snapshot.meta.index);
                for p in std::mem::take(&mut self.pending) {
                    fail_tags(p.tags, None, out);
                }
                for (tag, _) in self.reads.drain().flatten().collect::<Vec<_>>() {
                    out.push(Action::Reply {
                        tag,
                        result: Err(SubmitError::NotLeader { leader: None }),
                    });
                }
                for (_, tag, _) in std::mem::take(&mut self.ready_reads) {
                    out.push(Action::Reply {
                        tag,
                        result: Err(SubmitError::NotLeader { leader: None }),
                    });
                }
                self.halted = Some(reason.clone());
                out.push(Action::Halted(reason));
            }
        }
    }

    /// Snapshots when the persisted Raft state reached the configured size.
    fn maybe_snapshot(&mut self, out: &mut Vec<Action<S::Output, T>>) {
        let Some(max) = self.max_raft_state else {
            return;
        };
        if self.halted.is_some()
            || self.log_size.bytes() < max
            || self.applied <= self.raft.log().snapshot_meta().index
            // Only when the snapshot frees a good part of the log: entries not applied yet
            // cannot be compacted, and snapshotting at every newly applied entry while they
            // fill the log would re-encode the whole state each time.
            || self.log_size.bytes_through(self.applied) < max / 2
        {
            return;
        }
        self.snapshot_now(out);
    }

    /// Snapshots at `applied` (which must be past the log's snapshot index).
    fn snapshot_now(&mut self, out: &mut Vec<Action<S::Output, T>>) {
        let data = self.encode_snapshot();
        self.stats.snapshots_taken += 1;
        let index = self.applied;
        self.raft_step(RaftInput::Snapshot { index, data }, out);
    }
}

fn fail_tags<O, T>(
    tags: SmallVec<[Option<T>; 1]>,
    leader: Option<NodeId>,
    out: &mut Vec<Action<O, T>>,
) {
    for tag in tags.into_iter().flatten() {
        out.push(Action::Reply {
            tag,
            result: Err(SubmitError::NotLeader { leader }),
        });
    }
}

#[cfg(test)]
mod tests;
