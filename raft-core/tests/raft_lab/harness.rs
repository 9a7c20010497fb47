//! The lab's Raft tester (LAB-SCENARIOS.md 2.4), rebuilt on the deterministic simulator.
//!
//! A [`Server`] wraps a Raft [`Node`] with the lab's tiny service: it applies commands, and
//! in snapshot mode hands Raft a snapshot of everything applied every 10 entries. The
//! [`Tester`] plays the lab's tester: it checks every apply as it happens (same command at
//! the same index on every server, in order, no gaps) and offers `one`, `check_one_leader`,
//! `wait` and the other helpers with the lab's timing, in virtual time.

use std::collections::BTreeMap;

use bytes::Bytes;
use stepwise_raft::{Action, Config, Entry, Index, Input, Message, Node, Payload, Persisted, Term};
use stepwise_sim::{Effect, Harness, MS, NetConfig, NodeId, SEC, Sim, SimConfig, Time};

/// The lab's snapshot interval (snapshots at indexes 9, 19, 29, ...).
pub const SNAPSHOT_INTERVAL: u64 = 10;

/// Raft configuration for the lab tests: the defaults (10 ms ticks, 100 ms heartbeats,
/// 300-600 ms election timeouts) without the leader's no-op, since the lab expects the
/// first command at index 1.
pub fn lab_config(id: NodeId, n: usize, seed: u64) -> Config {
    let mut c = Config::new(id as u64, (0..n as u64).collect::<Vec<_>>()).with_seed(seed);
    c.leader_noop = false;
    c
}

/// What a server reports to the tester.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// An entry was applied (`None` for a leader no-op).
    Applied { index: Index, cmd: Option<Bytes> },
    /// A snapshot from the leader replaced the service state.
    Installed {
        index: Index,
        cmds: Vec<Option<Bytes>>,
    },
    /// Answer to `Start`.
    Proposed { index: Index, term: Term },
    /// Answer to `Start` on a non-leader.
    NotLeader,
    /// The service found an inconsistency.
    Error(String),
}

/// The service state kept in a snapshot: every command applied so far (index i at i-1).
fn encode_snapshot(cmds: &[Option<Bytes>]) -> Bytes {
    let v: Vec<Option<&[u8]>> = cmds.iter().map(|c| c.as_deref()).collect();
    Bytes::from(postcard::to_allocvec(&(cmds.len() as u64, v)).expect("encode snapshot"))
}

fn decode_snapshot(data: &[u8]) -> Result<Vec<Option<Bytes>>, String> {
    let (n, v): (u64, Vec<Option<Vec<u8>>>) =
        postcard::from_bytes(data).map_err(|e| format!("snapshot decode: {e}"))?;
    if n as usize != v.len() {
        return Err("snapshot doesn't match".into());
    }
    Ok(v.into_iter().map(|c| c.map(Bytes::from)).collect())
}

/// One lab server: a Raft node plus the tester's service.
pub struct Server {
    pub raft: Node,
    snapshot_mode: bool,
    /// Commands applied so far (snapshot mode only).
    cmds: Vec<Option<Bytes>>,
    /// Requests (RequestVote, AppendEntries, InstallSnapshot) delivered here, as the lab's
    /// per-server RPC count measures.
    pub requests_received: u64,
    actions: Vec<Action>,
    /// With `Config::durable_reports`: the log position to report durable at the next
    /// event, after that event's input (so acknowledgements can overtake the report, as
    /// when a real adapter steps them while its sync runs; the simulator's writes are
    /// durable at once, so a late report is always true).
    late_durable: Option<(Index, Term)>,
}

impl Server {
    fn boot(cfg: Config, durable: &Persisted, snapshot_mode: bool) -> Server {
        let raft = Node::restore(cfg, durable.clone()).expect("restore");
        let cmds = match &durable.snapshot {
            Some(s) if snapshot_mode => decode_snapshot(&s.data).expect("own snapshot"),
            _ => Vec::new(),
        };
        Server {
            raft,
            snapshot_mode,
            cmds,
            requests_received: 0,
            actions: Vec::new(),
            late_durable: None,
        }
    }

    fn run(&mut self, input: Input, out: &mut Vec<Effect<Server>>) {
        self.step(input, out);
        if self.raft.config().durable_reports {
            if let Some((index, term)) = self.late_durable.take() {
                self.step(Input::LogDurable { index, term }, out);
            }
            let log = self.raft.log();
            self.late_durable = Some((log.last_index(), log.last_term()));
        }
    }

    fn step(&mut self, input: Input, out: &mut Vec<Effect<Server>>) {
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        self.raft.step_into(input, &mut actions);
        for action in actions.drain(..) {
            self.carry_out(action, out);
        }
        self.actions = actions;
    }

    fn carry_out(&mut self, action: Action, out: &mut Vec<Effect<Server>>) {
        match action {
            Action::SaveHardState(_)
            | Action::TruncateLog { .. }
            | Action::AppendLog(_)
            | Action::SaveSnapshot(_) => out.push(Effect::Write(action)),
            Action::Send { to, msg } => out.push(Effect::Send {
                to: to as NodeId,
                msg,
            }),
            Action::Apply(Entry { index, payload, .. }) => {
                let cmd = match payload {
                    Payload::Noop => None,
                    Payload::Command(b) => Some(b),
                };
                if self.snapshot_mode {
                    if index != self.cmds.len() as u64 + 1 {
                        out.push(Effect::Output(Out::Error(format!(
                            "server apply out of order: expected index {}, got {index}",
                            self.cmds.len() + 1
                        ))));
                        return;
                    }
                    self.cmds.push(cmd.clone());
                }
                out.push(Effect::Output(Out::Applied { index, cmd }));
                if self.snapshot_mode && (index + 1).is_multiple_of(SNAPSHOT_INTERVAL) {
                    let data = encode_snapshot(&self.cmds);
                    let mut more = Vec::new();
                    self.raft
                        .step_into(Input::Snapshot { index, data }, &mut more);
                    for a in more {
                        self.carry_out(a, out);
                    }
                }
            }
            Action::RestoreSnapshot(snap) => match decode_snapshot(&snap.data) {
                Ok(cmds) if cmds.len() as u64 == snap.meta.index => {
                    self.cmds = cmds.clone();
                    out.push(Effect::Output(Out::Installed {
                        index: snap.meta.index,
                        cmds,
                    }));
                }
                Ok(_) => out.push(Effect::Output(Out::Error("snapshot doesn't match".into()))),
                Err(e) => out.push(Effect::Output(Out::Error(e))),
            },
            Action::Proposed { index, term } => {
                out.push(Effect::Output(Out::Proposed { index, term }))
            }
            Action::NotLeader { .. } => out.push(Effect::Output(Out::NotLeader)),
            Action::ReadReady { .. } | Action::ReadFailed { .. } | Action::LeaderChanged { .. } => {
            }
        }
    }
}

impl stepwise_sim::Node for Server {
    type Msg = Message;
    type Input = Bytes;
    type Output = Out;
    type Durable = Persisted;
    type Write = Action;

    fn on_tick(&mut self, _now: Time, out: &mut Vec<Effect<Self>>) {
        self.run(Input::Tick, out);
    }

    fn on_message(&mut self, _now: Time, from: NodeId, msg: Message, out: &mut Vec<Effect<Self>>) {
        if matches!(
            msg,
            Message::RequestVote { .. }
                | Message::AppendEntries { .. }
                | Message::InstallSnapshot { .. }
        ) {
            self.requests_received += 1;
        }
        self.run(
            Input::Receive {
                from: from as u64,
                msg,
            },
            out,
        );
    }

    fn on_input(&mut self, _now: Time, cmd: Bytes, out: &mut Vec<Effect<Self>>) {
        self.run(Input::Propose(cmd), out);
    }

    fn write(durable: &mut Persisted, write: Action) {
        durable.apply(&write);
    }

    fn wire_size(msg: &Message) -> usize {
        postcard::experimental::serialized_size(msg).unwrap_or(0)
    }

    /// The lab's long reordering holds back RPC replies only.
    fn reorderable(msg: &Message) -> bool {
        matches!(
            msg,
            Message::VoteReply { .. } | Message::AppendReply { .. } | Message::SnapshotReply { .. }
        )
    }
}

/// A command for the tests: a u64 as 8 bytes.
pub fn cmd(x: u64) -> Bytes {
    Bytes::copy_from_slice(&x.to_le_bytes())
}

/// The lab's tester.
pub struct Tester {
    pub sim: Sim<Server>,
    pub n: usize,
    snapshot_mode: bool,
    logs: Vec<BTreeMap<Index, Option<Bytes>>>,
    last_applied: Vec<Index>,
    proposal: Vec<Option<Out>>,
    /// Highest index applied anywhere.
    pub max_index: Index,
    /// Check the safety invariants after every event.
    invariants: bool,
    events: u64,
    /// Every (term, leader) ever observed: at most one leader per term over the whole run.
    leaders_seen: BTreeMap<Term, NodeId>,
    /// Round-robin position of `one`.
    next_start: usize,
}

impl Tester {
    /// `n` servers on a reliable or unreliable network; snapshot mode as in the 3D tests.
    pub fn new(n: usize, reliable: bool, snapshot_mode: bool, seed: u64) -> Tester {
        let mut config = SimConfig::with_seed(seed);
        config.net = if reliable {
            NetConfig::reliable()
        } else {
            NetConfig::unreliable()
        };
        let mut sim = Sim::new(config, n, move |id, durable: &Persisted, seed| {
            Server::boot(lab_config(id, n, seed), durable, snapshot_mode)
        });
        if std::env::var("STEPWISE_TRACE").is_ok() {
            sim.keep_event_log(400);
        }
        Tester {
            sim,
            n,
            snapshot_mode,
            logs: vec![BTreeMap::new(); n],
            last_applied: vec![0; n],
            proposal: vec![None; n],
            max_index: 0,
            next_start: 0,
            invariants: false,
            events: 0,
            leaders_seen: BTreeMap::new(),
        }
    }

    /// Like `new` with a custom Raft configuration.
    pub fn with_config(
        n: usize,
        net: NetConfig,
        seed: u64,
        snapshot_mode: bool,
        mut make: impl FnMut(NodeId, u64) -> Config + 'static,
    ) -> Tester {
        let mut config = SimConfig::with_seed(seed);
        config.net = net;
        let sim = Sim::new(config, n, move |id, durable: &Persisted, seed| {
            Server::boot(make(id, seed), durable, snapshot_mode)
        });
        Tester {
            sim,
            n,
            snapshot_mode,
            logs: vec![BTreeMap::new(); n],
            last_applied: vec![0; n],
            proposal: vec![None; n],
            max_index: 0,
            next_start: 0,
            invariants: false,
            events: 0,
            leaders_seen: BTreeMap::new(),
        }
    }

    /// Turns on the invariant checks after every event (see [`Tester::check_invariants`]).
    pub fn check_invariants_each_event(&mut self, on: bool) {
        self.invariants = on;
    }

    /// Election safety over the whole run (one leader per term, ever), and leader
    /// completeness (a new leader holds every entry applied anywhere so far). Every 64
    /// events, also log matching between all pairs ([`Tester::check_safety`]).
    pub fn check_invariants(&mut self) {
        self.events += 1;
        for i in 0..self.n {
            let Some(s) = self.sim.node(i) else { continue };
            if !s.raft.is_leader() {
                continue;
            }
            let term = s.raft.term();
            match self.leaders_seen.get(&term) {
                Some(&j) if j == i => continue,
                Some(&j) => panic!("election safety: {i} and {j} both led term {term}"),
                None => {}
            }
            self.leaders_seen.insert(term, i);
            let log = s.raft.log();
            let from = log.first_index();
            for index in from..=self.max_index {
                let (count, cmd) = self.n_committed(index);
                if count == 0 {
                    continue;
                }
                let have = log.entry(index).map(|e| match &e.payload {
                    Payload::Noop => None,
                    Payload::Command(b) => Some(b.clone()),
                });
                assert_eq!(
                    have, cmd,
                    "leader completeness: new leader {i} of term {term} lacks committed index {index}"
                );
            }
        }
        if self.events.is_multiple_of(64) {
            self.check_safety();
        }
    }

    /// Processes the outputs produced so far, checking every apply.
    fn drain(&mut self) {
        if self.invariants {
            self.check_invariants();
        }
        if self.sim.outputs().is_empty() {
            return;
        }
        for (_, i, out) in self.sim.take_outputs() {
            match out {
                Out::Applied { index, cmd } => self.check_apply(i, index, cmd),
                Out::Installed { index, cmds } => {
                    for (k, c) in cmds.into_iter().enumerate() {
                        self.check_apply_value(i, k as Index + 1, &c);
                        self.logs[i].insert(k as Index + 1, c);
                    }
                    self.last_applied[i] = index;
                }
                Out::Error(e) => panic!("server {i}: {e}"),
                p @ (Out::Proposed { .. } | Out::NotLeader) => self.proposal[i] = Some(p),
            }
        }
    }

    fn check_apply_value(&self, i: NodeId, index: Index, cmd: &Option<Bytes>) {
        for (j, log) in self.logs.iter().enumerate() {
            if let Some(old) = log.get(&index) {
                assert_eq!(
                    old, cmd,
                    "commit index={index} server={i} {cmd:?} != server={j} {old:?}"
                );
            }
        }
    }

    fn check_apply(&mut self, i: NodeId, index: Index, cmd: Option<Bytes>) {
        self.check_apply_value(i, index, &cmd);
        if self.snapshot_mode {
            assert_eq!(
                index,
                self.last_applied[i] + 1,
                "server {i} apply out of order, expected index {}, got {index}",
                self.last_applied[i] + 1
            );
        } else if index > 1 {
            assert!(
                self.logs[i].contains_key(&(index - 1)),
                "server {i} apply out of order {index}"
            );
        }
        self.logs[i].insert(index, cmd);
        self.last_applied[i] = index;
        self.max_index = self.max_index.max(index);
    }

    /// Random duration in `[lo, hi)` from the simulation's seeded stream.
    pub fn rand_range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.sim.rng().rand_range(0..hi - lo)
    }

    pub fn rand_u64(&mut self) -> u64 {
        self.sim.rng().rand_u64()
    }

    fn live(&self, i: NodeId) -> bool {
        self.sim.is_up(i) && self.sim.is_connected(i)
    }

    /// (term, is_leader) of server i, if it is up.
    pub fn state(&self, i: NodeId) -> Option<(Term, bool)> {
        self.sim
            .node(i)
            .map(|s| (s.raft.term(), s.raft.is_leader()))
    }

    /// The lab's checkOneLeader: up to 10 rounds of 450-549 ms; never two leaders in a term.
    pub fn check_one_leader(&mut self) -> NodeId {
        for _ in 0..10 {
            let ms = self.rand_range(450, 550);
            self.sleep(ms * MS);
            let mut leaders: BTreeMap<Term, Vec<NodeId>> = BTreeMap::new();
            for i in 0..self.n {
                if self.live(i)
                    && let Some((term, true)) = self.state(i)
                {
                    leaders.entry(term).or_default().push(i);
                }
            }
            for (term, ls) in &leaders {
                assert!(ls.len() <= 1, "term {term} has {} (>1) leaders", ls.len());
            }
            if let Some((_, ls)) = leaders.iter().next_back() {
                return ls[0];
            }
        }
        panic!("expected one leader, got none");
    }

    /// The lab's checkTerms: all connected servers agree on the term.
    pub fn check_terms(&self) -> Term {
        let mut term = None;
        for i in 0..self.n {
            if self.live(i) {
                let (t, _) = self.state(i).expect("live server is up");
                match term {
                    None => term = Some(t),
                    Some(t0) => assert_eq!(t0, t, "servers disagree on term"),
                }
            }
        }
        term.unwrap_or(0)
    }

    /// The lab's checkNoLeader: no connected server claims leadership.
    pub fn check_no_leader(&self) {
        for i in 0..self.n {
            if self.live(i) {
                assert!(
                    !self.state(i).expect("up").1,
                    "expected no leader among connected servers, but {i} claims to be leader"
                );
            }
        }
    }

    /// How many servers applied `index`, and the command there.
    pub fn n_committed(&self, index: Index) -> (usize, Option<Option<Bytes>>) {
        let mut count = 0;
        let mut cmd = None;
        for log in &self.logs {
            if let Some(c) = log.get(&index) {
                if let Some(prev) = &cmd {
                    assert_eq!(prev, c, "committed values do not match: index {index}");
                }
                count += 1;
                cmd = Some(c.clone());
            }
        }
        (count, cmd)
    }

    /// Whether some server applied command `c` (at any index).
    pub fn committed_anywhere(&self, c: &Bytes) -> bool {
        self.logs
            .iter()
            .any(|log| log.values().any(|v| v.as_ref() == Some(c)))
    }

    /// The lab's `Start` on server i: Some((index, term)) if it is the leader.
    pub fn start(&mut self, i: NodeId, c: Bytes) -> Option<(Index, Term)> {
        if !self.sim.is_up(i) {
            return None;
        }
        self.drain();
        self.proposal[i] = None;
        self.sim.input(i, c);
        self.drain();
        match self.proposal[i].take() {
            Some(Out::Proposed { index, term }) => Some((index, term)),
            _ => None,
        }
    }

    /// The lab's `one(cmd, expectedServers, retry)`: returns the index it committed at.
    pub fn one(&mut self, c: Bytes, expected: usize, retry: bool) -> Index {
        let t0 = self.sim.now();
        while self.sim.now() < t0 + 10 * SEC {
            let mut index = None;
            for _ in 0..self.n {
                let s = self.next_start;
                self.next_start = (self.next_start + 1) % self.n;
                if self.sim.is_connected(s)
                    && let Some((i, _)) = self.start(s, c.clone())
                {
                    index = Some(i);
                    break;
                }
            }
            if let Some(index) = index {
                let want = Some(Some(c.clone()));
                let ok = self.run_until(
                    |t| {
                        let (nd, cmd1) = t.n_committed(index);
                        nd > 0 && nd >= expected && cmd1 == want
                    },
                    2 * SEC,
                );
                if ok {
                    return index;
                }
                assert!(retry, "one({c:?}) failed to reach agreement");
            } else {
                self.sleep(50 * MS);
            }
        }
        if std::env::var("STEPWISE_TRACE").is_ok() {
            for line in self.sim.event_log() {
                eprintln!("{line}");
            }
        }
        panic!(
            "one({c:?}) failed to reach agreement within 10 s\n{}",
            self.dump()
        );
    }

    /// The lab's `wait(index, n, startTerm)`: None if a term moved past `start_term`.
    pub fn wait(&mut self, index: Index, n: usize, start_term: Option<Term>) -> Option<Bytes> {
        let mut to = 10 * MS;
        for _ in 0..30 {
            let (nd, _) = self.n_committed(index);
            if nd >= n {
                break;
            }
            self.sleep(to);
            if to < SEC {
                to *= 2;
            }
            if let Some(st) = start_term {
                for i in 0..self.n {
                    if let Some((t, _)) = self.state(i)
                        && t > st
                    {
                        return None;
                    }
                }
            }
        }
        let (nd, cmd) = self.n_committed(index);
        assert!(nd >= n, "only {nd} decided for index {index}; wanted {n}");
        cmd.flatten()
    }

    /// One line per server describing its Raft state (for failure messages).
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for i in 0..self.n {
            match self.sim.node(i) {
                None => s += &format!("server {i}: down\n"),
                Some(srv) => {
                    let r = &srv.raft;
                    s += &format!(
                        "server {i}: connected={} term={} role={:?} leader={:?} commit={} applied={} last={} (term {}) snap={} matches={:?} stats={:?}\n",
                        self.sim.is_connected(i),
                        r.term(),
                        r.role(),
                        r.leader(),
                        r.commit_index(),
                        r.applied_index(),
                        r.log().last_index(),
                        r.log().last_term(),
                        r.log().snapshot_meta().index,
                        r.match_indexes(),
                        r.stats(),
                    )
                }
            }
        }
        s
    }

    /// Cuts server i off the network (it keeps running).
    pub fn disconnect(&mut self, i: NodeId) {
        self.sim.disconnect(i);
    }

    /// Reconnects server i with every connected server.
    pub fn connect(&mut self, i: NodeId) {
        self.sim.connect(i);
    }

    /// The lab's crash: disconnect, then kill; persisted state is kept.
    pub fn crash(&mut self, i: NodeId) {
        self.drain();
        self.sim.disconnect(i);
        if self.sim.is_up(i) {
            self.sim.crash(i);
        }
    }

    /// The lab's (2025) restart: a new instance from the persisted state, then ConnectAll.
    pub fn restart(&mut self, i: NodeId) {
        self.restart_only(i);
        self.sim.connect_all();
    }

    /// A new instance of server i from its persisted state; connectivity is unchanged.
    pub fn restart_only(&mut self, i: NodeId) {
        self.drain();
        if self.sim.is_up(i) {
            self.sim.crash(i);
        }
        self.sim.restart(i);
        self.last_applied[i] = 0;
        if self.snapshot_mode
            && let Some(s) = &self.sim.durable(i).snapshot
        {
            let cmds = decode_snapshot(&s.data).expect("persisted snapshot decodes");
            let index = s.meta.index;
            for (k, c) in cmds.into_iter().enumerate() {
                self.check_apply_value(i, k as Index + 1, &c);
                self.logs[i].insert(k as Index + 1, c);
            }
            self.last_applied[i] = index;
        }
    }

    /// Sum of requests delivered to live servers (the lab's RPC count).
    pub fn rpc_total(&self) -> u64 {
        (0..self.n)
            .filter_map(|i| self.sim.node(i))
            .map(|s| s.requests_received)
            .sum()
    }

    /// Total bytes sent on the network so far.
    pub fn bytes_total(&self) -> u64 {
        self.sim.stats().total.bytes_sent
    }

    /// The largest persisted Raft state (hard state and log, encoded) over the servers.
    pub fn max_raft_state(&self) -> usize {
        (0..self.n)
            .map(|i| {
                let d = self.sim.durable(i);
                postcard::experimental::serialized_size(&d.hard_state).unwrap_or(0)
                    + d.entries
                        .iter()
                        .map(|e| postcard::experimental::serialized_size(e).unwrap_or(0))
                        .sum::<usize>()
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether server i is the leader (and up).
    pub fn is_leader(&self, i: NodeId) -> bool {
        self.state(i).is_some_and(|(_, l)| l)
    }

    /// Checks the Raft safety properties across all up servers at this instant:
    /// election safety (one leader per term) and log matching (same index and term implies
    /// same entry and same prefix), and that committed prefixes agree.
    pub fn check_safety(&self) {
        let mut leaders: BTreeMap<Term, NodeId> = BTreeMap::new();
        let nodes: Vec<(NodeId, &Node)> = (0..self.n)
            .filter_map(|i| self.sim.node(i).map(|s| (i, &s.raft)))
            .collect();
        for (i, r) in &nodes {
            if r.is_leader()
                && let Some(j) = leaders.insert(r.term(), *i)
            {
                panic!("election safety: {i} and {j} both lead term {}", r.term());
            }
        }
        for (a, (i, ra)) in nodes.iter().enumerate() {
            for (j, rb) in &nodes[a + 1..] {
                let (la, lb) = (ra.log(), rb.log());
                let lo = la.first_index().max(lb.first_index());
                let hi = la.last_index().min(lb.last_index());
                // Log matching: find the highest common index with equal terms; everything
                // at or below it must be identical.
                let mut k = hi;
                while k >= lo && la.term_at(k) != lb.term_at(k) {
                    k -= 1;
                }
                let mut m = lo;
                while m <= k {
                    assert_eq!(
                        la.entry(m),
                        lb.entry(m),
                        "log matching violated between {i} and {j} at index {m}"
                    );
                    m += 1;
                }
                let c = ra.commit_index().min(rb.commit_index());
                let mut m = lo;
                while m <= c.min(hi) {
                    assert_eq!(
                        la.entry(m),
                        lb.entry(m),
                        "committed entries differ between {i} and {j} at index {m}"
                    );
                    m += 1;
                }
            }
        }
    }
}

/// `sleep` and `run_until` (checked after every event) come from the simulator's
/// [`Harness`]: every apply is checked as it happens ([`Tester::drain`]).
impl Harness for Tester {
    type Node = Server;

    fn sim_mut(&mut self) -> &mut Sim<Server> {
        &mut self.sim
    }

    fn absorb(&mut self) {
        self.drain();
    }
}
