//! # stepwise-raft: Raft as a pure state machine
//!
//! This crate implements the Raft consensus algorithm (the extended paper's Figure 2, log
//! compaction from section 7, plus pre-vote, check-quorum and ReadIndex, on the leader and
//! forwarded from followers, from Ongaro's thesis) as a **sans-IO** state machine. A [`Node`] never touches a socket, a disk, a
//! clock or a thread: you feed it [`Input`]s and carry out the [`Action`]s it returns.
//!
//! ```
//! use stepwise_raft::{Action, Config, Input, Node, Persisted};
//!
//! // A one-member cluster elects itself, so this example can commit on its own.
//! let mut node = Node::new(Config::new(1, [1]).with_seed(7)).unwrap();
//! let mut disk = Persisted::default();
//! let mut applied = Vec::new();
//! let mut run = |node: &mut Node, input: Input, disk: &mut Persisted, applied: &mut Vec<_>| {
//!     for action in node.step(input) {
//!         if disk.apply(&action) {
//!             continue; // persisted (a real adapter fsyncs before the next Send)
//!         }
//!         match action {
//!             Action::Send { to, msg } => { /* transmit msg to peer `to` */ }
//!             Action::Apply(entry) => applied.push(entry),
//!             _ => {}
//!         }
//!     }
//! };
//! // Ticks drive timeouts: after an election timeout the node campaigns and wins.
//! for _ in 0..100 {
//!     run(&mut node, Input::Tick, &mut disk, &mut applied);
//! }
//! assert!(node.is_leader());
//! run(&mut node, Input::Propose("hello".into()), &mut disk, &mut applied);
//! assert!(applied.iter().any(|e| e.index == 2)); // index 1 is the leader's no-op
//!
//! // After a crash, rebuild from what was persisted.
//! let restored = Node::restore(Config::new(1, [1]), disk.clone()).unwrap();
//! assert_eq!(restored.log().last_index(), 2);
//! ```
//!
//! ## The driving loop
//!
//! * Call `step(Input::Tick)` at a steady cadence. Timeouts are counted in ticks
//!   ([`Config`]); the defaults assume a 10 ms tick.
//! * Call `step(Input::Receive { from, msg })` for every message from a peer. The
//!   transport must tell the truth about `from`; messages from non-members are dropped.
//! * The service proposes with [`Input::Propose`], reads linearizably with
//!   [`Input::ReadIndex`], and hands over snapshots with [`Input::Snapshot`]. With
//!   [`Config::follower_reads`] a follower's `ReadIndex` asks the leader for the index to
//!   wait for (one message per read context), so followers can serve reads too.
//!
//! ## The action contract
//!
//! Carry out the actions of one step **in order**, and finish them before those of the
//! next step. Persistence actions ([`Action::SaveHardState`], [`Action::TruncateLog`],
//! [`Action::AppendLog`], [`Action::SaveSnapshot`]) must be durable before any later action
//! runs, above all before any later [`Action::Send`]: a vote or an acknowledgement must
//! never leave the node before the state it vouches for is on disk. An adapter may batch
//! several steps and sync once, provided the sync happens before the first `Send` of the
//! batch that follows a persistence action (group commit). [`Persisted::apply`] is the
//! reference semantics of the persistence actions.
//!
//! One relaxation is opt-in. With [`Config::durable_reports`] the adapter tells the node
//! how far its log is durable with [`Input::LogDurable`] after each sync, and may go on
//! stepping inputs, peers' acknowledgements included, while a sync runs: the leader then
//! counts its own log toward a commit only up to the last report, so an entry commits
//! once a majority holds it durably, with or without the leader (Raft thesis 10.2.1).
//! Messages still wait for the persistence actions before them, as above.
//!
//! ## Restart
//!
//! Restart is a constructor: [`Node::restore`] with the [`Persisted`] state. The service
//! restores its own state from the persisted snapshot; Raft then applies the entries after
//! it again as they are committed (`Apply` is exactly once per index per node lifetime).
//!
//! ## Failure kinds
//!
//! Expected outcomes (not the leader, stale terms, duplicated or reordered messages) are
//! actions or silent no-ops. Misconfiguration is a [`ConfigError`]. Nothing a peer sends
//! can panic the node: malformed or contradictory messages are dropped and counted in
//! [`Stats`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod action;
mod config;
pub mod log;
mod message;
mod node;
mod persist;
pub mod progress;
pub mod quorum;

pub use action::{Action, Input};
pub use config::{Config, ConfigError};
pub use message::{
    AppendResult, Entry, HardState, Index, Message, NodeId, Payload, Snapshot, SnapshotMeta, Term,
};
pub use node::{Node, Role, Stats};
pub use persist::Persisted;
