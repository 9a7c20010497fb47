//! # stepwise-kv: a linearizable key/value service on Raft, sans-IO
//!
//! Everything here is a pure state machine: inputs in, actions out, no sockets, clocks,
//! threads or disks. Adapters (the simulator, threads, tokio) carry the actions out.
//!
//! * [`rsm`]: the generic replicated-state-machine layer. [`Rsm`] turns any deterministic
//!   [`StateMachine`] into a replicated service on a [`stepwise_raft::Node`]: submit a
//!   command and learn its output once it is committed and applied; client
//!   [`Session`]s make retried commands execute exactly once (the session table is part of
//!   the snapshot), and a client that will never send again can have its session ended
//!   (`rsm::Input::EndSession`, through the log, so the table does not grow forever);
//!   read-only queries are served linearizably through Raft's ReadIndex (one round for a
//!   whole batch), without going through the log; snapshots are taken automatically when
//!   the persisted Raft state grows past [`RsmConfig::max_raft_state`] or on demand
//!   (`rsm::Input::Compact`), and restored on restart or InstallSnapshot; a command that
//!   cannot commit here gets a clean
//!   [`SubmitError::NotLeader`](rsm::SubmitError::NotLeader). The KV service below and the
//!   sharded services are state machines plugged into this one layer.
//! * [`kv`]: the key/value state machine [`Kv`]: Get, Put (versioned as in the 2025 lab, or
//!   unconditional), Append, Delete and Incr, with a hand-written log format.
//! * [`replica`]: the replicated KV server, [`Replica`] = `Rsm<Kv>` plus client requests.
//! * [`server`]: the single-server KV service of the kvsrv labs (no Raft), same state
//!   machine and session table.
//! * [`clerk`]: the client, [`Clerk`], also sans-IO: retries on timeout or wrong leader,
//!   remembers the leader, tags writes for exactly-once execution, counts time in ticks.
//! * [`retry`]: where a client sends next and when it resends ([`retry::Retry`]): leader
//!   hints, timeouts, back-off after a full round of refusals; shared by the KV clerk and
//!   the sharded service's clerks.
//! * [`lock`]: a distributed [`Lock`] built only on the clerk's versioned Put and Get.
//! * [`message`]: the client/server wire types.
//!
//! ## Driving a cluster
//!
//! Three replicas and a clerk, with an in-memory "network" (a queue) and in-memory storage
//! ([`stepwise_raft::Persisted`]):
//!
//! ```
//! use std::collections::VecDeque;
//! use stepwise_kv::clerk::{self, Clerk, ClerkConfig};
//! use stepwise_kv::replica::{self, Replica};
//! use stepwise_kv::{KvOutput, Op, RsmConfig};
//! use stepwise_raft::{Config, Persisted};
//!
//! enum Msg {
//!     Raft { from: u64, to: u64, msg: stepwise_raft::Message },
//!     ToServer { to: u64, request: stepwise_kv::Request },
//!     ToClerk { from: u64, reply: stepwise_kv::Reply },
//! }
//! const CLERK: u64 = 100; // the clerk's address
//!
//! let ids = [0u64, 1, 2];
//! let mut replicas: Vec<Replica> = ids
//!     .iter()
//!     .map(|&id| Replica::new(RsmConfig::new(Config::new(id, ids).with_seed(id))).unwrap())
//!     .collect();
//! let mut disks = vec![Persisted::default(); 3];
//! let mut clerk = Clerk::new(ClerkConfig::new(CLERK, ids.to_vec()));
//! let mut net: VecDeque<Msg> = VecDeque::new();
//! let mut done = Vec::new();
//!
//! // Carry out a replica's actions in order: persist first, then send.
//! let carry_out = |id: u64, actions: Vec<replica::Action>, disk: &mut Persisted, net: &mut VecDeque<Msg>| {
//!     for action in actions {
//!         match action {
//!             replica::Action::Persist(a) => { disk.apply(&a); }
//!             replica::Action::Send { to, msg } => net.push_back(Msg::Raft { from: id, to, msg }),
//!             replica::Action::Reply { reply, .. } => net.push_back(Msg::ToClerk { from: id, reply }),
//!             replica::Action::Halted(reason) => panic!("{reason}"),
//!         }
//!     }
//! };
//! let clerk_out = |actions: Vec<clerk::Action>, net: &mut VecDeque<Msg>, done: &mut Vec<_>| {
//!     for action in actions {
//!         match action {
//!             clerk::Action::Send { to, request } => net.push_back(Msg::ToServer { to, request }),
//!             clerk::Action::Done(result) => done.push(result),
//!         }
//!     }
//! };
//!
//! let ops = [Op::put("k", "hello", 0), Op::append("k", " world"), Op::get("k")];
//! for op in ops {
//!     clerk_out(clerk.step(clerk::Input::Start(op)), &mut net, &mut done);
//!     let want = done.len() + 1;
//!     // One tick (10 ms in a real deployment) between rounds of message delivery.
//!     while done.len() < want {
//!         for _ in 0..net.len() {
//!             match net.pop_front().unwrap() {
//!                 Msg::Raft { from, to, msg } => {
//!                     let a = replicas[to as usize].step(replica::Input::Receive { from, msg });
//!                     carry_out(to, a, &mut disks[to as usize], &mut net);
//!                 }
//!                 Msg::ToServer { to, request } => {
//!                     let input = replica::Input::Request { from: CLERK, request };
//!                     let a = replicas[to as usize].step(input);
//!                     carry_out(to, a, &mut disks[to as usize], &mut net);
//!                 }
//!                 Msg::ToClerk { from, reply } => {
//!                     clerk_out(clerk.step(clerk::Input::Receive { from, reply }), &mut net, &mut done);
//!                 }
//!             }
//!         }
//!         for id in ids {
//!             let a = replicas[id as usize].step(replica::Input::Tick);
//!             carry_out(id, a, &mut disks[id as usize], &mut net);
//!         }
//!         clerk_out(clerk.step(clerk::Input::Tick), &mut net, &mut done);
//!     }
//! }
//! assert_eq!(done[2], Ok(KvOutput::Value { value: "hello world".into(), version: 2 }));
//! ```
//!
//! ## The action contract
//!
//! [`Rsm`] and [`Replica`] follow Raft's contract ([`stepwise_raft::Action`]): carry out
//! the actions of a step in order and finish them before the next step; a `Persist` action
//! must be durable before any later action, above all before a later `Send`. Replies need
//! no durability of their own (a command is answered only after a majority stored it).
//! Restart is a constructor: [`Rsm::restore`] / [`Replica::restore`] with the persisted
//! state; the state machine comes back from the persisted snapshot and Raft re-applies
//! the entries after it.
//!
//! ## Time
//!
//! Everything counts ticks. The Raft defaults and [`ClerkConfig::new`](clerk::ClerkConfig::new)
//! assume a 10 ms tick.
//!
//! ## Tests and measurements
//!
//! * Unit tests beside the code (layer, sessions, codec, store, clerk, lock).
//! * `tests/kv_lab`: every kvsrv, lock, rsm and kvraft scenario of the MIT 6.5840 labs
//!   (2025, plus the 2020-2024 variants) on the deterministic simulator, with the lab's
//!   parameters and thresholds in virtual time and a linearizability check of the whole
//!   history; and randomized fault schedules (200 seeds by default) checking
//!   linearizability, that no acknowledged write is lost or applied twice, and that
//!   sessions ended under faults leave the same session table on every replica.
//!   `STEPWISE_SEEDS=<n>` runs more seeds; a failing seed prints its replay command.
//! * `tests/kvsrv_memory.rs`: the single-server memory bounds, measured with a counting
//!   allocator.
//! * `tests/fuzz.rs`: arbitrary peer messages, requests and replies never panic.
//! * `benches/kv/`: throughput and latency of three replicas and N clerks, in one thread
//!   or a thread per replica (see `docs/PERFORMANCE.md` in the repository).
#![forbid(unsafe_code)]

pub mod clerk;
mod hash;
pub mod kv;
pub mod lock;
pub mod message;
pub mod replica;
pub mod retry;
pub mod rsm;
pub mod server;

pub use clerk::{Clerk, ClerkConfig};
pub use kv::{Kv, KvError, KvOutput, KvResult, Op};
pub use lock::{Lock, LockStep};
pub use message::{Reply, Request};
pub use replica::Replica;
pub use rsm::{Rsm, RsmConfig, Session, StateMachine};
pub use server::Server;
