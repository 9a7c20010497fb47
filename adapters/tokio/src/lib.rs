//! # stepwise-tokio: stepwise nodes on tokio over TCP
//!
//! Runs any [`Machine`](stepwise_host::Machine) (a bare Raft node, the KV server, ...)
//! as a networked node: [`start`] puts the machine on a task that turns a
//! `tokio::time::interval` into ticks and flushes each batch of inputs through a
//! [`Driver`](stepwise_host::Driver) (persistence with one sync, then messages and events
//! in order), and runs the TCP transport on other tasks.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use stepwise_host::RaftRequest;
//! use stepwise_raft::{Action, Config, Node, Payload, Persisted};
//! use stepwise_tokio::{NodeConfig, start};
//! use tokio::net::TcpListener;
//! use tokio::sync::mpsc;
//!
//! #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! async fn main() -> std::io::Result<()> {
//!     // Bind first (port 0: any free port), then tell every node where the others are.
//!     let mut listeners = Vec::new();
//!     for _ in 0..3 {
//!         listeners.push(TcpListener::bind("127.0.0.1:0").await?);
//!     }
//!     let mut peers: Vec<(u64, SocketAddr)> = Vec::new();
//!     for (id, listener) in (1..=3).zip(&listeners) {
//!         peers.push((id, listener.local_addr()?));
//!     }
//!     let (tx, mut events) = mpsc::unbounded_channel();
//!     let mut nodes = Vec::new();
//!     for (id, listener) in (1..=3).zip(listeners) {
//!         let config = NodeConfig::new(0x5eed, id, peers.clone());
//!         let node = Node::new(Config::new(id, [1, 2, 3]).with_seed(id)).unwrap();
//!         let tx = tx.clone();
//!         let sink = move |event| {
//!             let _ = tx.send((id, event));
//!         };
//!         nodes.push(start(config, listener, node, Persisted::default(), sink).await?);
//!     }
//!
//!     // Propose through the leader; every member applies the entry.
//!     let progress = async {
//!         let (mut applied, mut proposed) = (0, false);
//!         while applied < 3 {
//!             let (id, event) = events.recv().await.unwrap();
//!             match event {
//!                 Action::LeaderChanged { leader: Some(l), .. } if l == id && !proposed => {
//!                     let hello = RaftRequest::Propose("hello".into());
//!                     nodes[id as usize - 1].submit(hello).await.unwrap();
//!                     proposed = true;
//!                 }
//!                 Action::NotLeader { .. } => proposed = false, // wait for the next leader
//!                 Action::Apply(e) if e.payload == Payload::Command("hello".into()) => {
//!                     applied += 1;
//!                 }
//!                 _ => {}
//!             }
//!         }
//!     };
//!     tokio::time::timeout(Duration::from_secs(10), progress)
//!         .await
//!         .expect("the cluster makes progress");
//!     for node in nodes {
//!         node.shutdown().await.unwrap();
//!     }
//!     Ok(())
//! }
//! ```
//!
//! ## Transport
//!
//! The [`wire`] module documents the protocol: length-delimited frames (tokio-util's
//! `LengthDelimitedCodec`) of postcard-encoded data, after a versioned handshake that
//! carries a cluster id and the node id, checked both ways. Each member dials every
//! other member for its outgoing messages and accepts their connections for incoming
//! ones.
//!
//! * **Bad input** (garbage, an oversized frame, a wrong magic, version or cluster id, an
//!   unknown node id, an undecodable frame) drops that connection with a log line and a
//!   counter in [`NetStats`]; the node keeps serving. Nothing a peer sends can panic it.
//! * **Bounded memory.** Each peer has a send queue bounded in messages and bytes
//!   ([`NodeConfig::queue_messages`], [`NodeConfig::queue_bytes`]); when it is full, new
//!   messages are dropped and counted (Raft retransmits). Messages queued while a peer
//!   is unreachable are discarded. Readers wait when the node's inbox is full, which
//!   pushes back on the senders through TCP.
//! * **Reconnection** with exponential backoff ([`NodeConfig::backoff_min`] doubling to
//!   [`NodeConfig::backoff_max`]).
//! * The handshake identifies peers but does not authenticate them: use a trusted
//!   network.
//!
//! ## Storage and shutdown
//!
//! Any [`Storage`](stepwise_host::Storage): the in-memory
//! [`Persisted`](stepwise_raft::Persisted), or `stepwise_storage::RaftStorage` for a
//! node that survives crashes (open it, restore the machine from what it recovered, and
//! `start`). A storage error stops the node (fail-stop).
//!
//! [`NodeHandle::shutdown`] stops accepting, lets the node finish its batch (durable
//! writes included), then closes the connections; [`NodeHandle::shutdown_on_ctrl_c`]
//! does so on Ctrl-C. Dropping the runtime instead is a crash: whatever was synced
//! survives, and nothing is acknowledged before it is synced.
#![forbid(unsafe_code)]

mod config;
mod node;
mod peer;
mod stats;
mod transport;
pub mod wire;

pub use config::NodeConfig;
pub use node::{NodeError, NodeHandle, Stopped, Submitter, start};
pub use stats::NetStats;
