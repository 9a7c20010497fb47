//! # stepwise-threads: stepwise nodes on std threads
//!
//! Runs any [`Machine`](stepwise_host::Machine) (a bare Raft node, the KV server, ...) on
//! its own thread, with a channel for messages and requests and a ticker for time, so a
//! whole cluster can live in one process with no async runtime.
//!
//! * [`spawn`] starts one node thread; its [`NodeHandle`] submits requests and stops it.
//!   Each thread waits for a command or the next tick, steps everything waiting, and
//!   flushes the batch through a [`Driver`](stepwise_host::Driver): persistence actions
//!   to the storage with **one** sync, then messages and events in order.
//! * A [`Transport`] carries messages; [`Network`] is an in-process one of channels.
//! * [`Cluster`] builds members `1..=n` on a `Network` and can stop and restart them.
//!
//! ```
//! use std::sync::mpsc;
//! use std::time::{Duration, Instant};
//! use stepwise_host::RaftRequest;
//! use stepwise_raft::{Action, Config, Node, Payload, Persisted};
//! use stepwise_threads::{Cluster, EventSink, Options};
//!
//! let (tx, rx) = mpsc::channel();
//! let cluster = Cluster::new(3, Options::default(), |id, members| {
//!     let node = Node::new(Config::new(id, members).with_seed(id)).unwrap();
//!     let tx = tx.clone();
//!     let events: EventSink<Action> = Box::new(move |event| {
//!         let _ = tx.send((id, event));
//!     });
//!     (node, Persisted::default(), events)
//! });
//!
//! // Wait (bounded) for a leader, propose through it, and see all three apply it.
//! let deadline = Instant::now() + Duration::from_secs(10);
//! let mut applied = 0;
//! let mut proposed = false;
//! while applied < 3 {
//!     let left = deadline.saturating_duration_since(Instant::now());
//!     let (id, event) = rx.recv_timeout(left).expect("the cluster makes progress");
//!     match event {
//!         Action::LeaderChanged { leader: Some(leader), .. } if leader == id && !proposed => {
//!             cluster.submit(leader, RaftRequest::Propose("hello".into())).unwrap();
//!             proposed = true;
//!         }
//!         // Leadership moved before the proposal arrived: wait for the next leader.
//!         Action::NotLeader { .. } => proposed = false,
//!         Action::Apply(entry) if entry.payload == Payload::Command("hello".into()) => {
//!             applied += 1;
//!         }
//!         _ => {}
//!     }
//! }
//! cluster.shutdown();
//! ```
//!
//! ## Durability
//!
//! With [`RaftStorage`](https://docs.rs/stepwise-storage) as the storage, a node's thread
//! does its own `fdatasync`s, so a slow disk slows that node only. Stopping a node
//! ([`NodeHandle::shutdown`], [`Cluster::stop`]) finishes the batch in progress and
//! returns the machine and the storage; to restart, reopen the storage and restore the
//! machine from what it recovered. A storage error stops the node (fail-stop).
#![forbid(unsafe_code)]

mod cluster;
mod network;
mod node;

pub use cluster::{Cluster, EventSink};
pub use network::{Network, Port, Transport};
pub use node::{Inbox, NodeError, NodeHandle, Options, Stopped, spawn};
