//! # stepwise-shard: a sharded key/value service with live migration, sans-IO
//!
//! Keys are split into shards ([`key::key_to_shard`]: FNV-1a 64-bit of the key's bytes,
//! modulo the number of shards, 10 by default). A **shard controller** decides which
//! replica group serves each shard; **replica groups** serve their shards and hand shards
//! to each other when the controller's configuration changes; **clients** route every
//! operation to the group serving its key. Every part is a pure state machine (inputs in,
//! actions out), built on the one replicated-state-machine layer of kv-core
//! ([`stepwise_kv::rsm`]) over stepwise Raft; adapters carry the actions out.
//!
//! * [`ctrler`]: the controller. [`ctrler::Ctrler`] is the state machine (numbered
//!   configurations; Join, Leave, Move, Query, and Since for catching up);
//!   [`balance`] spreads shards evenly (counts differ by at most one) with the fewest moves,
//!   deterministically. [`ctrler::server::CtrlerServer`] replicates it (changes through
//!   the log with exactly-once sessions, reads through ReadIndex, so a partitioned or
//!   deposed replica is fenced off; configurations survive restarts, in order); a change
//!   may be conditional on the latest configuration number, which fences off a stale
//!   administrator. [`ctrler::clerk::CtrlerClerk`] is its client.
//! * [`group`]: a replica group. [`group::ShardGroup`] is the state machine: per shard a
//!   status (`Serving`, `Pulling`, `Gcing`, `BePulling`), a store and the exactly-once table
//!   of the clients that wrote to it. [`group::server::GroupServer`] replicates it; its
//!   leader learns configurations in order, one at a time, through its own log, pulls the
//!   shards it gains from their previous owners ([`message::PeerMsg`]), serves each shard
//!   as soon as it arrives while unaffected shards keep serving throughout, and has the
//!   previous owner delete its copy (garbage collection).
//! * [`client::ShardClerk`]: the client: routes by key, caches the configuration, refreshes
//!   it on `WrongGroup`, retries with the same session so a write executes exactly once,
//!   also when its shard moves between retries.
//! * [`message`]: the wire types (clients speak kv-core's [`Request`](stepwise_kv::Request)
//!   and [`Reply`](stepwise_kv::Reply)).
//!
//! ## Driving it
//!
//! One controller server, one group server and a client, each a one-member Raft cluster,
//! with an in-memory "network" (a queue) and in-memory disks ([`stepwise_raft::Persisted`]):
//!
//! ```
//! use std::collections::VecDeque;
//! use stepwise_kv::{KvOutput, Op, RsmConfig};
//! use stepwise_raft::{Config, Persisted};
//! use stepwise_shard::client::{self, ShardClerk, ShardClerkConfig};
//! use stepwise_shard::ctrler::server::{self as cserver, CtrlerServer};
//! use stepwise_shard::ctrler::CtrlOp;
//! use stepwise_shard::group::server::{self as gserver, GroupConfig, GroupServer};
//! use stepwise_shard::message::CtrlRequest;
//!
//! // Addresses: controller 1, group server 2 (gid 7), client 3.
//! let rsm = |id| RsmConfig::new(Config::new(id, [id]));
//! let mut ctrler = CtrlerServer::new(rsm(1), 10).unwrap();
//! let mut group = GroupServer::new(GroupConfig::new(7, rsm(2), vec![1])).unwrap();
//! let mut clerk = ShardClerk::new(ShardClerkConfig::new(3, vec![1]));
//! let (mut disk1, mut disk2) = (Persisted::default(), Persisted::default());
//!
//! enum Net {
//!     ToCtrler { from: u64, input: cserver::Input },
//!     ToGroup(gserver::Input),
//!     ToClerk(client::Input),
//! }
//! let mut net: VecDeque<Net> = VecDeque::new();
//! let mut done = Vec::new();
//!
//! // Once the controller leads, join group 7 (an administrator's request from address 9).
//! while !ctrler.is_leader() {
//!     for a in ctrler.step(cserver::Input::Tick) {
//!         if let cserver::Action::Persist(p) = a { disk1.apply(&p); }
//!     }
//! }
//! let join = CtrlRequest { id: 1, session: None, op: CtrlOp::join(7, vec![2]), expect: None };
//! net.push_back(Net::ToCtrler { from: 9, input: cserver::Input::Request { from: 9, request: join } });
//! for op in [Op::put_any("k", "v"), Op::append("k", "w"), Op::get("k")] {
//!     for a in clerk.step(client::Input::Start(op)) {
//!         if let client::Action::SendCtrler { request, .. } = a {
//!             net.push_back(Net::ToCtrler { from: 3, input: cserver::Input::Request { from: 3, request } });
//!         }
//!     }
//!     let want = done.len() + 1;
//!     while done.len() < want {
//!         // One tick (10 ms in a real deployment) for everyone, then deliver everything.
//!         net.push_back(Net::ToCtrler { from: 0, input: cserver::Input::Tick });
//!         net.push_back(Net::ToGroup(gserver::Input::Tick));
//!         net.push_back(Net::ToClerk(client::Input::Tick));
//!         while let Some(m) = net.pop_front() {
//!             match m {
//!                 Net::ToCtrler { input, .. } => {
//!                     for a in ctrler.step(input) {
//!                         match a {
//!                             cserver::Action::Persist(p) => { disk1.apply(&p); }
//!                             cserver::Action::Reply { to: 2, reply } => net.push_back(
//!                                 Net::ToGroup(gserver::Input::Ctrler { from: 1, reply })),
//!                             cserver::Action::Reply { to: 3, reply } => net.push_back(
//!                                 Net::ToClerk(client::Input::Ctrler { from: 1, reply })),
//!                             _ => {} // Raft messages (no peers here), the admin's reply
//!                         }
//!                     }
//!                 }
//!                 Net::ToGroup(input) => {
//!                     for a in group.step(input) {
//!                         match a {
//!                             gserver::Action::Persist(p) => { disk2.apply(&p); }
//!                             gserver::Action::SendCtrler { request, .. } => net.push_back(
//!                                 Net::ToCtrler { from: 2, input: cserver::Input::Request { from: 2, request } }),
//!                             gserver::Action::Reply { reply, .. } => net.push_back(
//!                                 Net::ToClerk(client::Input::Receive { from: 2, reply })),
//!                             _ => {} // Raft messages, other groups, events
//!                         }
//!                     }
//!                 }
//!                 Net::ToClerk(input) => {
//!                     for a in clerk.step(input) {
//!                         match a {
//!                             client::Action::Send { request, .. } => net.push_back(
//!                                 Net::ToGroup(gserver::Input::Request { from: 3, request })),
//!                             client::Action::SendCtrler { request, .. } => net.push_back(
//!                                 Net::ToCtrler { from: 3, input: cserver::Input::Request { from: 3, request } }),
//!                             client::Action::Done(result) => done.push(result),
//!                         }
//!                     }
//!                 }
//!             }
//!         }
//!     }
//! }
//! assert_eq!(done[2], Ok(KvOutput::Value { value: "vw".into(), version: 2 }));
//! assert_eq!(group.group().config().num, 1);
//! ```
//!
//! ## The action contract
//!
//! Every server follows the [`Rsm`](stepwise_kv::Rsm)'s (and Raft's) contract: carry out
//! the actions of a step in order and finish them before the next step; a `Persist` action
//! is durable before any later action. Messages to clients, other groups and the
//! controller need no durability of their own. Restart is a constructor
//! (`CtrlerServer::restore`, `GroupServer::restore`) with the persisted state.
//!
//! ## Time
//!
//! Everything counts ticks; the defaults assume a 10 ms tick (groups poll the controller
//! every 100 ms, requests are resent after 100 ms without an answer).
//!
//! ## Status
//!
//! Done: everything above, with the lab's controller and shardkv scenarios (2020-2024
//! with both challenges, and the 2025 shardkv1 ones adapted to a replicated controller),
//! randomized fault schedules, all in the simulator with linearizability checks
//! (`tests/shard_lab`). A group that deleted shards it handed over snapshots at once
//! (when snapshots are on), so its persisted state shrinks with its memory. Not done: a
//! network adapter (the `shard-demo` example runs everything in the simulator).
#![forbid(unsafe_code)]

pub mod balance;
pub mod client;
pub mod config;
pub mod ctrler;
pub mod group;
pub mod key;
pub mod message;
pub mod retry;

pub use client::{ShardClerk, ShardClerkConfig};
pub use config::{Addr, Gid, ShardConfig};
pub use ctrler::Ctrler;
pub use ctrler::clerk::CtrlerClerk;
pub use ctrler::server::CtrlerServer;
pub use group::ShardGroup;
pub use group::server::{GroupConfig, GroupServer};
