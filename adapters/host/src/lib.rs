//! # stepwise-host: running a sans-IO machine for real
//!
//! The protocol crates do nothing by themselves. This crate holds the one contract every
//! runtime (`stepwise-threads`, `stepwise-tokio`) uses to run them, so the rules of the
//! action contract are written once:
//!
//! * [`Machine`]: a sans-IO node with one entry point. It takes a [`HostInput`] (a tick,
//!   a Raft message from a peer, a local client's request) and pushes [`HostAction`]s:
//!   persist a Raft action, send a message, hand an event to the clients. Implemented
//!   here for a bare Raft [`Node`](stepwise_raft::Node); services that own a Raft node
//!   implement it by passing Raft's persistence actions and messages through.
//! * [`Storage`]: where persistence actions go. Implemented for the in-memory
//!   [`Persisted`](stepwise_raft::Persisted) and the on-disk
//!   [`RaftStorage`](stepwise_storage::RaftStorage).
//! * [`Driver`]: owns a machine and its storage, steps a batch of inputs and then
//!   [`flush`](Driver::flush)es it: all persistence actions of the batch, **one** sync,
//!   then the sends and events in order, through an [`Outlet`] the runtime provides.
//!
//! A runtime is then a loop: wait for input (or the next tick), step everything that is
//! waiting, flush.
//!
//! ```
//! use stepwise_host::{Driver, HostInput, Outlet, RaftRequest};
//! use stepwise_raft::{Action, Config, Message, Node, NodeId, Persisted};
//!
//! /// Where a runtime would put messages on the wire and events in a channel.
//! #[derive(Default)]
//! struct Collect {
//!     sent: Vec<(NodeId, Message)>,
//!     events: Vec<Action>,
//! }
//! impl Outlet<Action> for Collect {
//!     fn send(&mut self, to: NodeId, msg: Message) {
//!         self.sent.push((to, msg));
//!     }
//!     fn event(&mut self, event: Action) {
//!         self.events.push(event);
//!     }
//! }
//!
//! let node = Node::new(Config::new(1, [1]).with_seed(7)).unwrap();
//! let mut driver = Driver::new(node, Persisted::default());
//! let mut out = Collect::default();
//! // A runtime ticks every 10 ms; a one-member cluster soon elects itself.
//! while !driver.machine().is_leader() {
//!     driver.step(HostInput::Tick);
//!     driver.flush(&mut out).unwrap();
//! }
//! // Two requests in one batch: their log appends share one storage sync.
//! let syncs = driver.stats().syncs;
//! driver.step(HostInput::Request(RaftRequest::Propose("a".into())));
//! driver.step(HostInput::Request(RaftRequest::Propose("b".into())));
//! driver.flush(&mut out).unwrap();
//! assert_eq!(driver.stats().syncs, syncs + 1);
//! let applied: Vec<_> = out.events.iter().filter_map(|e| match e {
//!     Action::Apply(entry) => Some(entry.index),
//!     _ => None,
//! }).collect();
//! assert_eq!(applied, [1, 2, 3]); // the leader's no-op, "a", "b"
//! ```
//!
//! ## What a runtime must do
//!
//! * Tick at a steady cadence (the Raft defaults assume 10 ms).
//! * Tell the truth about `from` in [`HostInput::Receive`] (authenticate peers).
//! * Flush before waiting for more input, and never carry out actions any other way
//!   (the driver keeps "durable before anything later runs").
//! * Stop the node when a flush fails (the batch was dropped, the storage may be
//!   poisoned); restart it from the storage.
//!
//! The feature `testkit` adds the `testkit` module: a replicated register on Raft and a client
//! workload whose history goes to the linearizability checker, used by the runtimes'
//! tests.
#![forbid(unsafe_code)]

mod driver;
mod machine;
mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use driver::{Driver, DriverStats, Outlet};
pub use machine::{HostAction, HostInput, Machine, RaftRequest, pass_through};
pub use storage::{Storage, SyncJob};
