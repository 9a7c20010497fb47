//! `stepwise-sim`: a deterministic discrete-event simulator for stepwise's sans-IO
//! protocols (Raft, KV, shard KV, MapReduce).
//!
//! A test wraps a protocol core in a small type implementing [`Node`] and hands a factory
//! for it to [`Sim::new`]. The simulator then owns virtual time, the network, crashes and
//! restarts, and everything is driven by one seeded PRNG: **the same seed (and the same
//! harness actions) gives the same run, bit for bit**, which [`Sim::trace_hash`] checks.
//!
//! # Model
//!
//! * **Time** is virtual, in microseconds ([`Time`], [`MS`], [`SEC`]). Events sit in a
//!   priority queue ordered by `(time, sequence number)`: earliest first, FIFO among equal
//!   times. Nothing happens between events, so simulated seconds cost microseconds.
//! * **Nodes** `0..n` ([`NodeId`]). Each up node gets [`Node::on_tick`] every
//!   [`SimConfig::tick_interval`] (default 10 ms) at a random per-node phase,
//!   [`Node::on_message`] for every delivered message and [`Node::on_input`] for inputs the
//!   harness injects ([`Sim::input`], [`Sim::schedule_input`]).
//! * **Effects** ([`Effect`]) pushed during one step are carried out in order, immediately,
//!   at the current time: `Write` applies to the node's durable state through
//!   [`Node::write`], `Send` hands the message to the network, `Output` appends
//!   `(time, node, output)` to the outputs queue ([`Sim::outputs`], [`Sim::take_outputs`]).
//! * **Network** ([`NetConfig`], changeable at any time through [`Sim::net_mut`]): per
//!   message loss, duplication, a uniform random delay (which reorders messages), and the
//!   lab's long reordering and long delays. [`NetConfig::reliable`] and
//!   [`NetConfig::unreliable`] are the lab's two modes.
//! * **Connectivity** follows the lab tester (6.5840 `labrpc` + `tester1`): a per-node
//!   *connected* flag plus a directed link matrix. [`Sim::disconnect`] cuts all of a node's
//!   links; [`Sim::connect`] links a node, both ways, with every node currently marked
//!   connected (`ConnectOne`); [`Sim::partition`], [`Sim::connect_all`] and
//!   [`Sim::set_link`] complete the set, and [`Sim::connect_to`], [`Sim::disconnect_from`]
//!   and [`Sim::partition_within`] act on a subset of nodes only (servers but not clients,
//!   when clients are simulated nodes too, as the lab's clerk ends are separate). A message is delivered only if its link is up
//!   **both at send time and at delivery time**, the destination is up and is still the
//!   incarnation the message was sent to, and the sender has not crashed since (the lab
//!   never delivers a dead server's replies). A node can always send to itself.
//! * **Crashes**: [`Sim::crash`] drops a node's volatile state and keeps its durable state;
//!   [`Sim::restart`] builds a new incarnation with the factory from the durable state.
//!   [`Sim::crash_during_next_step`] crashes a node in the middle of its next step: only a
//!   random prefix of that step's effects is carried out, so a crash can fall between any
//!   two actions. Crash and restart do not touch connectivity; the lab's `ShutdownServer(i)`
//!   is `disconnect(i); crash(i)` and `StartServer(i); ConnectOne(i)` is
//!   `restart(i); connect(i)`.
//! * **Counters** ([`Stats`]) like the lab's: messages and bytes sent (at send time, even if
//!   the message is then dropped) and delivered, per node and in total, plus drop reasons.
//! * **Seeds**: harness code draws its own randomness from [`Sim::rng`].
//!   [`sim_seeds!`] runs a test over many seeds (`STEPWISE_SEEDS`, `STEPWISE_SEED`) and
//!   prints a one-line replay command for a failing seed; [`seed_from_env`] serves
//!   single-seed tests.
//! * **Harnesses**: a test harness that owns a [`Sim`] and collects the nodes' outputs
//!   implements [`Harness`] to get `run_until` and `sleep` that collect after every event.
//! * **Debugging**: [`Sim::keep_event_log`] keeps a readable log of the last events and
//!   effects (with the `Debug` form of every message, input, write and output) to print
//!   when a check fails.
//!
//! # Example
//!
//! A toy node that counts inputs durably and tells every peer; peers report what they hear.
//!
//! ```
//! use stepwise_sim::{Effect, MS, NetConfig, Node, NodeId, SEC, Sim, SimConfig, Time};
//!
//! struct Counter { me: NodeId, n: usize, count: u64 }
//!
//! impl Node for Counter {
//!     type Msg = u64;             // "my count is now ..."
//!     type Input = ();            // "count one more"
//!     type Output = (NodeId, u64); // "peer said its count is ..."
//!     type Durable = u64;         // the count survives crashes
//!     type Write = u64;           // "the count is now ..."
//!
//!     fn on_tick(&mut self, _now: Time, _out: &mut Vec<Effect<Self>>) {}
//!     fn on_message(&mut self, _now: Time, from: NodeId, msg: u64, out: &mut Vec<Effect<Self>>) {
//!         out.push(Effect::Output((from, msg)));
//!     }
//!     fn on_input(&mut self, _now: Time, _input: (), out: &mut Vec<Effect<Self>>) {
//!         self.count += 1;
//!         out.push(Effect::Write(self.count)); // durable before the sends below
//!         for to in (0..self.n).filter(|&p| p != self.me) {
//!             out.push(Effect::Send { to, msg: self.count });
//!         }
//!     }
//!     fn write(durable: &mut u64, write: u64) { *durable = write; }
//!     fn wire_size(_msg: &u64) -> usize { 8 }
//! }
//!
//! // A reliable network (delay 0..=1 ms, nothing lost); try NetConfig::unreliable() too.
//! let config = SimConfig { seed: 7, net: NetConfig::reliable(), ..SimConfig::default() };
//! let mut sim = Sim::new(config, 3, |me, durable: &u64, _seed| Counter { me, n: 3, count: *durable });
//!
//! assert!(sim.input(0, ()));
//! sim.run_for(100 * MS);
//! sim.crash(0);
//! assert!(!sim.input(0, ()));      // a crashed node takes no input
//! sim.restart(0);                  // ... and comes back with its durable count
//! assert_eq!(sim.node(0).unwrap().count, 1);
//!
//! sim.input(0, ());
//! // Wait (at most 1 s of virtual time) until some peer heard "2".
//! let heard = sim.run_until(|s| s.outputs().iter().any(|&(_, _, (_, c))| c == 2), SEC);
//! assert!(heard);
//! let stats = sim.stats();
//! assert_eq!(stats.node(0).msgs_sent, 4); // 2 peers x 2 inputs
//! assert!(stats.node(1).msgs_delivered >= 1);
//! for (time, node, (from, count)) in sim.take_outputs() {
//!     println!("{time}us: node {node} heard {count} from {from}");
//! }
//! // Same seed, same run:
//! println!("trace {:x}", sim.trace_hash());
//! ```
//!
//! # Speed
//!
//! Nodes live in a `Vec`, the link matrix is a flat `Vec<bool>`, the effects buffer is
//! reused across steps and an event costs one heap push and pop. See the ignored test
//! `speed_report` in `tests/sim/main.rs` for a measurement.
#![forbid(unsafe_code)]

mod harness;
mod net;
mod node;
mod seeds;
mod sim;
mod stats;
mod trace;

pub use harness::Harness;
pub use net::{LONG_DELAY_MAX, LONG_DELAY_PROBABILITY, LONG_REORDER_PROBABILITY, NetConfig};
pub use node::{Effect, Node};
pub use seeds::{
    Replay, SEED_START_VAR, SEED_VAR, SEEDS_VAR, Target, run_seed_range, run_seeds, seed_from_env,
    seeds_from, seeds_from_env,
};
pub use sim::{Sim, SimConfig};
pub use stats::{NodeStats, Stats};

/// The PRNG type behind [`Sim::rng`], re-exported so harness code needs no extra dependency.
pub use oorandom::Rand64;

/// A node's id: nodes of a simulation are `0..n`.
pub type NodeId = usize;
/// Virtual time in microseconds since the start of the simulation.
pub type Time = u64;
/// One millisecond of virtual time.
pub const MS: Time = 1_000;
/// One second of virtual time.
pub const SEC: Time = 1_000_000;
