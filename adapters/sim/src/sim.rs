//! The simulator: event queue, node lifecycle, network delivery, counters.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;

use oorandom::Rand64;

use crate::net::{Links, NetConfig};
use crate::node::{Effect, Node};
use crate::stats::Stats;
use crate::trace::{Kind, Trace, mix64};
use crate::{MS, NodeId, Time};

/// Simulator configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Seed of the simulator's PRNG: network draws, tick phases, node seeds and whatever the
    /// harness draws through [`Sim::rng`]. Same seed (and same harness), same run.
    pub seed: u64,
    /// Every up node gets [`Node::on_tick`] once per `tick_interval` (microseconds, > 0),
    /// starting at a random per-node phase in `[0, tick_interval)` after boot or restart.
    pub tick_interval: Time,
    /// The initial network behaviour (changeable later with [`Sim::net_mut`]).
    pub net: NetConfig,
}

impl Default for SimConfig {
    /// Seed 0, 10 ms ticks, [`NetConfig::reliable`].
    fn default() -> Self {
        SimConfig {
            seed: 0,
            tick_interval: 10 * MS,
            net: NetConfig::reliable(),
        }
    }
}

impl SimConfig {
    /// The default configuration with the given seed.
    pub fn with_seed(seed: u64) -> Self {
        SimConfig {
            seed,
            ..SimConfig::default()
        }
    }
}

/// Incarnation numbers: bumped at every restart.
type Incarnation = u64;

enum Event<N: Node> {
    Tick {
        node: NodeId,
        inc: Incarnation,
    },
    Deliver {
        from: NodeId,
        from_inc: Incarnation,
        to: NodeId,
        to_inc: Incarnation,
        size: u64,
        msg: N::Msg,
    },
    Input {
        node: NodeId,
        input: N::Input,
    },
}

/// A queued event. Ordered so that `BinaryHeap` (a max-heap) pops the smallest
/// `(at, seq)` first: earliest time, then FIFO among equal times.
struct Scheduled<N: Node> {
    at: Time,
    seq: u64,
    event: Event<N>,
}

impl<N: Node> PartialEq for Scheduled<N> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<N: Node> Eq for Scheduled<N> {}
impl<N: Node> PartialOrd for Scheduled<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<N: Node> Ord for Scheduled<N> {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// What a node is stepped with.
enum Stimulus<N: Node> {
    Tick,
    Message { from: NodeId, msg: N::Msg },
    Input(N::Input),
}

/// The factory that builds a node at boot and at every restart.
type Factory<N> = Box<dyn FnMut(NodeId, &<N as Node>::Durable, u64) -> N>;

/// A deterministic discrete-event simulation of `n` nodes of type `N` on a simulated
/// network. See the [crate docs](crate) for the model and an example.
pub struct Sim<N: Node> {
    n: usize,
    tick_interval: Time,
    net: NetConfig,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Scheduled<N>>,
    nodes: Vec<Option<N>>,
    durable: Vec<N::Durable>,
    incarnation: Vec<Incarnation>,
    crash_next: Vec<bool>,
    links: Links,
    factory: Factory<N>,
    rng: Rand64,
    effects: Vec<Effect<N>>,
    outputs: Vec<(Time, NodeId, N::Output)>,
    stats: Stats,
    trace: Trace,
    log: Option<EventLog>,
}

/// The last `keep` lines of the readable event log.
struct EventLog {
    keep: usize,
    lines: VecDeque<String>,
}

impl EventLog {
    fn push(&mut self, line: String) {
        if self.lines.len() == self.keep {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

impl<N: Node> fmt::Debug for Sim<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("n", &self.n)
            .field("now", &self.now)
            .field("queued_events", &self.queue.len())
            .field(
                "up",
                &self.nodes.iter().map(Option::is_some).collect::<Vec<_>>(),
            )
            .field("net", &self.net)
            .finish_non_exhaustive()
    }
}

impl<N: Node> Sim<N> {
    /// Boots `n` nodes (ids `0..n`) at time 0, all up and fully connected. `factory(id,
    /// durable, seed)` builds node `id`; at boot `durable` is `Default::default()`, at a
    /// restart it is the durable state written so far. `seed` is drawn from the simulator's
    /// PRNG for every (node, incarnation).
    ///
    /// # Panics
    /// If `config.tick_interval` is 0.
    pub fn new<F>(config: SimConfig, n: usize, factory: F) -> Self
    where
        F: FnMut(NodeId, &N::Durable, u64) -> N + 'static,
    {
        assert!(
            config.tick_interval > 0,
            "SimConfig::tick_interval must be > 0"
        );
        // Spread the user's seed over the PRNG's 128-bit state so that nearby seeds give
        // unrelated streams.
        let lo = mix64(config.seed ^ 0x9e37_79b9_7f4a_7c15);
        let hi = mix64(config.seed.wrapping_add(0x6a09_e667_f3bc_c909));
        let mut sim = Sim {
            n,
            tick_interval: config.tick_interval,
            net: config.net,
            now: 0,
            seq: 0,
            queue: BinaryHeap::with_capacity(4 * n + 16),
            nodes: (0..n).map(|_| None).collect(),
            durable: (0..n).map(|_| N::Durable::default()).collect(),
            incarnation: vec![0; n],
            crash_next: vec![false; n],
            links: Links::full(n),
            factory: Box::new(factory),
            rng: Rand64::new(((hi as u128) << 64) | lo as u128),
            effects: Vec::new(),
            outputs: Vec::new(),
            stats: Stats::new(n),
            trace: Trace::new(),
            log: None,
        };
        for i in 0..n {
            sim.boot(i);
        }
        sim
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True if the simulation has no nodes.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The current virtual time (microseconds since start).
    pub fn now(&self) -> Time {
        self.now
    }

    /// The tick interval from the configuration.
    pub fn tick_interval(&self) -> Time {
        self.tick_interval
    }

    /// The simulator's seeded PRNG. Harness code should draw from it (random victims,
    /// random sleeps) so that a seed replays the whole test.
    pub fn rng(&mut self) -> &mut Rand64 {
        &mut self.rng
    }

    /// The current network behaviour.
    pub fn net(&self) -> &NetConfig {
        &self.net
    }

    /// The network behaviour, to change it; affects messages sent from now on.
    pub fn net_mut(&mut self) -> &mut NetConfig {
        &mut self.net
    }

    /// A hash of every event processed and every effect carried out so far (times, kinds,
    /// nodes, peers, message sizes), plus crashes and restarts. Equal seeds and equal harness
    /// actions give equal hashes; stable across platforms and compiler versions.
    pub fn trace_hash(&self) -> u64 {
        self.trace.value()
    }

    /// Keeps a readable log of the last `last` events and effects (one line each, with the
    /// `Debug` form of messages, inputs, writes and outputs), for printing when a test
    /// fails. `0` turns the log off (the default; the log costs a `format!` per line while
    /// on). Changing the size clears the log.
    pub fn keep_event_log(&mut self, last: usize) {
        self.log = (last > 0).then(|| EventLog {
            keep: last,
            lines: VecDeque::with_capacity(last.min(1 << 16)),
        });
    }

    /// The lines of the event log, oldest first (empty while the log is off).
    pub fn event_log(&self) -> impl Iterator<Item = &str> + '_ {
        self.log
            .iter()
            .flat_map(|l| l.lines.iter().map(String::as_str))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// The outputs collected so far, oldest first, as `(time, node, output)`.
    pub fn outputs(&self) -> &[(Time, NodeId, N::Output)] {
        &self.outputs
    }

    /// Removes and returns the outputs collected so far, oldest first.
    pub fn take_outputs(&mut self) -> Vec<(Time, NodeId, N::Output)> {
        std::mem::take(&mut self.outputs)
    }

    /// Number of events waiting in the queue (including stale ticks and messages that will
    /// be dropped when they come due).
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    /// The time of the next queued event, if any.
    pub fn next_event_time(&self) -> Option<Time> {
        self.queue.peek().map(|e| e.at)
    }

    // ----- nodes -------------------------------------------------------------------------

    /// True if node `i` is running (not crashed).
    ///
    /// # Panics
    /// If `i >= len()` (as do all methods taking a node id).
    pub fn is_up(&self, i: NodeId) -> bool {
        self.nodes[i].is_some()
    }

    /// The running node `i`, or `None` while it is crashed.
    pub fn node(&self, i: NodeId) -> Option<&N> {
        self.nodes[i].as_ref()
    }

    /// The running node `i`, mutably. Effects of methods called directly on the node are
    /// not seen by the simulator; inject an input instead when effects matter.
    pub fn node_mut(&mut self, i: NodeId) -> Option<&mut N> {
        self.nodes[i].as_mut()
    }

    /// The durable state of node `i`: every write it carried out, across incarnations.
    /// Available (and unchanged) while the node is down.
    pub fn durable(&self, i: NodeId) -> &N::Durable {
        &self.durable[i]
    }

    /// Number of restarts of node `i` so far (0 for the boot incarnation).
    pub fn incarnation(&self, i: NodeId) -> u64 {
        self.incarnation[i]
    }

    /// Crashes node `i` now: its volatile state is dropped, its durable state is kept, its
    /// pending ticks and every message in flight to it or from it are dropped when they come
    /// due. Connectivity is not changed (the lab's `ShutdownServer` is
    /// `disconnect(i); crash(i)`). No-op if `i` is already down.
    pub fn crash(&mut self, i: NodeId) {
        if self.nodes[i].take().is_some() {
            self.crash_next[i] = false;
            self.stats.crashes += 1;
            self.note(Kind::Crash, i, i, 0, || "crash".to_owned());
        }
    }

    /// Starts a new incarnation of node `i` from its durable state, with a fresh seed and a
    /// fresh random tick phase. Messages sent to earlier incarnations are never delivered to
    /// it. If `i` is up it is crashed first. Connectivity is not changed (the lab's
    /// `StartServer` + `ConnectOne` is `restart(i); connect(i)`).
    pub fn restart(&mut self, i: NodeId) {
        self.crash(i);
        self.incarnation[i] += 1;
        self.stats.restarts += 1;
        let inc = self.incarnation[i];
        self.note(Kind::Restart, i, i, inc, || {
            format!("restart (incarnation {inc})")
        });
        self.boot(i);
    }

    /// Arms a crash inside node `i`'s next step (tick, message or input): of the effects
    /// that step pushes, only a random prefix (possibly none, possibly all) is carried out,
    /// then the node crashes. This models a crash between any two actions: writes and sends
    /// not yet carried out are lost. Disarmed if the node crashes or restarts first.
    pub fn crash_during_next_step(&mut self, i: NodeId) {
        if self.nodes[i].is_some() {
            self.crash_next[i] = true;
        }
    }

    fn boot(&mut self, i: NodeId) {
        let seed = self.rng.rand_u64();
        let node = (self.factory)(i, &self.durable[i], seed);
        self.nodes[i] = Some(node);
        self.crash_next[i] = false;
        let phase = self.rng.rand_range(0..self.tick_interval);
        let inc = self.incarnation[i];
        self.push(self.now + phase, Event::Tick { node: i, inc });
    }

    // ----- connectivity ------------------------------------------------------------------

    /// True if node `i` is marked connected (the lab's `connected[i]`).
    pub fn is_connected(&self, i: NodeId) -> bool {
        self.links.is_connected(i)
    }

    /// True if the directed link `from -> to` is up. A node can always reach itself.
    pub fn link(&self, from: NodeId, to: NodeId) -> bool {
        self.links.is_up(from, to)
    }

    /// Marks `i` disconnected and cuts every link to and from it (the lab's
    /// `DisconnectAll(i)`).
    pub fn disconnect(&mut self, i: NodeId) {
        self.links.disconnect(i);
    }

    /// Marks `i` connected and links it, in both directions, with every node currently
    /// marked connected (the lab's `ConnectOne(i)`); links between other nodes are not
    /// touched.
    pub fn connect(&mut self, i: NodeId) {
        self.links.connect(i);
    }

    /// `connect(i)` for every node: all marked connected, full mesh (the lab's `ConnectAll`).
    pub fn connect_all(&mut self) {
        for i in 0..self.n {
            self.links.connect(i);
        }
    }

    /// Full connectivity inside each group, none across. Nodes listed in a group are marked
    /// connected; nodes in no group are marked disconnected and cut off from everyone.
    /// (A node listed in two groups is linked with both.)
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        self.links.partition(groups);
    }

    /// The lab's internal `connect(i, to)`: marks `i` connected and links it, in both
    /// directions, with every node of `to` that is currently marked connected. Use it to
    /// reconnect a server to its peers only, leaving e.g. clients' links alone.
    pub fn connect_to(&mut self, i: NodeId, to: &[NodeId]) {
        self.links.connect_to(i, to);
    }

    /// The lab's internal `disconnect(i, from)`: marks `i` disconnected and cuts the links
    /// between `i` and every node of `from`, in both directions; other links of `i` stay.
    pub fn disconnect_from(&mut self, i: NodeId, from: &[NodeId]) {
        self.links.disconnect_from(i, from);
    }

    /// [`Sim::partition`] restricted to `members`: links between two members follow the
    /// groups (members in no group are cut off from all members and marked disconnected);
    /// links between a member and a non-member, and non-members' flags, are not touched.
    /// This is the lab's server partition when clients are nodes too: partition the
    /// servers, keep the clients' links.
    pub fn partition_within(&mut self, members: &[NodeId], groups: &[&[NodeId]]) {
        self.links.partition_within(members, groups);
    }

    /// Sets the one directed link `from -> to`; the connected flags are not changed.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, up: bool) {
        self.links.set(from, to, up);
    }

    // ----- driving -----------------------------------------------------------------------

    /// Delivers `input` to node `i` now, carrying out its effects. Returns false (and does
    /// nothing) if `i` is down.
    pub fn input(&mut self, i: NodeId, input: N::Input) -> bool {
        if self.nodes[i].is_none() {
            return false;
        }
        self.note(Kind::Input, i, i, 0, || format!("input {input:?}"));
        self.step_node(i, Stimulus::Input(input));
        true
    }

    /// Queues `input` for node `i` at absolute time `at` (or now, if `at` is in the past).
    /// If the node is down when it comes due, the input is dropped and counted in
    /// [`Stats::inputs_dropped`].
    pub fn schedule_input(&mut self, at: Time, i: NodeId, input: N::Input) {
        assert!(i < self.n, "schedule_input: node {i} out of range");
        let at = at.max(self.now);
        self.push(at, Event::Input { node: i, input });
    }

    /// Processes the next event, advancing the clock to its time. Returns false if the
    /// queue is empty.
    pub fn step(&mut self) -> bool {
        let Some(Scheduled { at, event, .. }) = self.queue.pop() else {
            return false;
        };
        debug_assert!(at >= self.now, "the queue never holds events in the past");
        self.now = at;
        self.stats.events += 1;
        match event {
            Event::Tick { node, inc } => {
                if self.nodes[node].is_some() && self.incarnation[node] == inc {
                    self.push(at + self.tick_interval, Event::Tick { node, inc });
                    self.stats.ticks += 1;
                    self.note(Kind::Tick, node, node, 0, || "tick".to_owned());
                    self.step_node(node, Stimulus::Tick);
                }
            }
            Event::Deliver {
                from,
                from_inc,
                to,
                to_inc,
                size,
                msg,
            } => {
                let alive = self.nodes[to].is_some()
                    && self.incarnation[to] == to_inc
                    && self.nodes[from].is_some()
                    && self.incarnation[from] == from_inc;
                if !alive {
                    self.stats.msgs_dead += 1;
                    self.note(Kind::Dead, to, from, size, || {
                        format!("dropped (sender or receiver down) from n{from}: {msg:?}")
                    });
                } else if !self.links.is_up(from, to) {
                    self.stats.msgs_cut += 1;
                    self.note(Kind::Cut, to, from, size, || {
                        format!("dropped (link down) from n{from}: {msg:?}")
                    });
                } else {
                    self.stats.delivered(to, size);
                    self.note(Kind::Deliver, to, from, size, || {
                        format!("recv from n{from}: {msg:?}")
                    });
                    self.step_node(to, Stimulus::Message { from, msg });
                }
            }
            Event::Input { node, input } => {
                if self.nodes[node].is_some() {
                    self.note(Kind::Input, node, node, 0, || format!("input {input:?}"));
                    self.step_node(node, Stimulus::Input(input));
                } else {
                    self.stats.inputs_dropped += 1;
                    self.note(Kind::InputDropped, node, node, 0, || {
                        format!("input dropped (node down): {input:?}")
                    });
                }
            }
        }
        true
    }

    /// Processes every event due within `d` from now, then sets the clock to `now + d`.
    pub fn run_for(&mut self, d: Time) {
        let deadline = self.now.saturating_add(d);
        while self.queue.peek().is_some_and(|e| e.at <= deadline) {
            self.step();
        }
        self.now = deadline;
    }

    /// Runs until `pred(self)` holds, checking it before the first event and after every
    /// event. Returns true as soon as it holds (the clock stays at that event's time);
    /// returns false once no event is due within `limit` from the start, with the clock set
    /// to the deadline.
    pub fn run_until<P>(&mut self, mut pred: P, limit: Time) -> bool
    where
        P: FnMut(&mut Self) -> bool,
    {
        let deadline = self.now.saturating_add(limit);
        if pred(self) {
            return true;
        }
        while self.queue.peek().is_some_and(|e| e.at <= deadline) {
            self.step();
            if pred(self) {
                return true;
            }
        }
        self.now = deadline;
        false
    }

    // ----- internals ---------------------------------------------------------------------

    /// Folds one record into the trace hash and, if the event log is on, logs it.
    fn note(
        &mut self,
        kind: Kind,
        node: NodeId,
        peer: NodeId,
        size: u64,
        detail: impl FnOnce() -> String,
    ) {
        self.trace.record(self.now, kind, node, peer, size);
        if let Some(log) = &mut self.log {
            log.push(format!("{:>12}us n{node}: {}", self.now, detail()));
        }
    }

    fn push(&mut self, at: Time, event: Event<N>) {
        let seq = self.seq;
        self.seq += 1;
        self.queue.push(Scheduled { at, seq, event });
    }

    /// Steps node `i` (which must be up) and carries out its effects in order.
    fn step_node(&mut self, i: NodeId, stimulus: Stimulus<N>) {
        let mut out = std::mem::take(&mut self.effects);
        out.clear();
        let now = self.now;
        let Some(node) = self.nodes[i].as_mut() else {
            // Callers check that the node is up; nothing to do otherwise.
            self.effects = out;
            return;
        };
        match stimulus {
            Stimulus::Tick => node.on_tick(now, &mut out),
            Stimulus::Message { from, msg } => node.on_message(now, from, msg, &mut out),
            Stimulus::Input(input) => node.on_input(now, input, &mut out),
        }
        let crash = std::mem::replace(&mut self.crash_next[i], false);
        let keep = if crash {
            self.rng.rand_range(0..out.len() as u64 + 1) as usize
        } else {
            out.len()
        };
        for effect in out.drain(..).take(keep) {
            self.apply(i, effect);
        }
        self.effects = out;
        if crash {
            self.crash(i);
        }
    }

    fn apply(&mut self, i: NodeId, effect: Effect<N>) {
        let now = self.now;
        match effect {
            Effect::Write(w) => {
                self.note(Kind::Write, i, i, 0, || format!("write {w:?}"));
                N::write(&mut self.durable[i], w);
            }
            Effect::Output(o) => {
                let index = self.outputs.len() as u64;
                self.note(Kind::Output, i, i, index, || format!("output {o:?}"));
                self.outputs.push((now, i, o));
            }
            Effect::Send { to, msg } => self.send(i, to, msg),
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: N::Msg) {
        // A node addressing a node that does not exist is a bug in the node (or its
        // wrapper), not a network condition: fail loudly.
        assert!(
            to < self.n,
            "node {from} sent a message to node {to}, but the simulation has {} nodes",
            self.n
        );
        let size = N::wire_size(&msg) as u64;
        self.stats.sent(from, size);
        self.note(Kind::Send, from, to, size, || {
            format!("send to n{to}: {msg:?}")
        });
        if !self.links.is_up(from, to) {
            self.stats.msgs_cut += 1;
            self.note(Kind::Cut, from, to, size, || {
                "  cut at send (link down)".to_owned()
            });
            return;
        }
        if self.nodes[to].is_none() {
            self.stats.msgs_dead += 1;
            self.note(Kind::Dead, from, to, size, || {
                "  dropped (receiver down)".to_owned()
            });
            return;
        }
        let from_inc = self.incarnation[from];
        let to_inc = self.incarnation[to];
        let copies = self.net.copies(&mut self.rng);
        if copies == 2 {
            self.stats.msgs_duplicated += 1;
            self.note(Kind::Duplicate, from, to, size, || {
                "  duplicated".to_owned()
            });
            self.send_copy(from, from_inc, to, to_inc, size, msg.clone());
        }
        self.send_copy(from, from_inc, to, to_inc, size, msg);
    }

    fn send_copy(
        &mut self,
        from: NodeId,
        from_inc: Incarnation,
        to: NodeId,
        to_inc: Incarnation,
        size: u64,
        msg: N::Msg,
    ) {
        if self.net.lost(&mut self.rng) {
            self.stats.msgs_lost += 1;
            self.note(Kind::Lost, from, to, size, || "  lost".to_owned());
            return;
        }
        let delay = self.net.delay(&mut self.rng, N::reorderable(&msg));
        self.push(
            self.now + delay,
            Event::Deliver {
                from,
                from_inc,
                to,
                to_inc,
                size,
                msg,
            },
        );
    }
}
