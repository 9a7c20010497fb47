//! The lab's KV tester (LAB-SCENARIOS.md 2.5-2.7) on the deterministic simulator.
//!
//! Servers and clerks are all simulated nodes (ids `0..nservers` are servers, the rest
//! clerks), so the network's faults hit client traffic as in the lab. A clerk node runs a
//! sans-IO [`Clerk`] and either single operations the tester asks for ([`ClientInput::Do`])
//! or a client [`Program`] (the lab's client goroutines, as state machines). Every
//! operation is recorded with its call and return time in virtual time, and the tester
//! checks the whole history for linearizability.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use stepwise_kv::clerk::{self, Clerk, ClerkConfig};
use stepwise_kv::replica::{self, Replica};
use stepwise_kv::server::Server;
use stepwise_kv::{KvError, KvOutput, KvResult, Op, Reply, Request, RsmConfig};
use stepwise_linearizability::CheckResult;

use crate::client_program::{Driver, Step};
use crate::kv_history;
use stepwise_raft::{Action as RaftAction, Config, Message, Persisted};
use stepwise_sim::{Effect, Harness, MS, NetConfig, NodeId, SEC, Sim, SimConfig, Time};

/// What crosses the simulated network.
#[derive(Clone, Debug)]
pub enum Msg {
    /// Between replicas.
    Raft(Message),
    /// Clerk to server.
    Req(Request),
    /// Server to clerk.
    Rep(Reply),
}

/// What the servers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The kvsrv labs: one server, no Raft, no persistence.
    Single,
    /// The kvraft labs: replicas on Raft with this `maxraftstate` (`None` = -1).
    Replicated { max_raft_state: Option<usize> },
}

pub use crate::kv_history::{Record, text};

/// Counts a client program reports when it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Puts that returned OK (the lab's Nok).
    pub ok: u64,
    /// Puts that returned ErrMaybe (the lab's Nmaybe).
    pub maybe: u64,
    /// Program-specific: appends done per key, in order (legacy tests).
    pub appends: Vec<(String, String)>,
    /// Program-specific: keys only this program writes and what its acknowledged writes
    /// left there (`None`: missing).
    pub finals: Vec<(String, Option<String>)>,
    /// Operations completed.
    pub ops: u64,
}

pub use crate::client_program::{Event, Next, Program, ProgramTester};

/// Inputs to a node: a clerk's (the first three), or a replica's.
pub enum ClientInput {
    /// Run one operation (the tester calling the clerk directly).
    Do(Op),
    /// Start a client program.
    Run(Box<dyn Program<Report>>),
    /// Ask the program to stop at its next opportunity.
    Stop,
    /// To a replica: end this client's session ([`replica::Input::EndSession`]).
    EndSession(u64),
}

impl fmt::Debug for ClientInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientInput::Do(op) => write!(f, "Do({op:?})"),
            ClientInput::Run(_) => f.write_str("Run(program)"),
            ClientInput::Stop => f.write_str("Stop"),
            ClientInput::EndSession(client) => write!(f, "EndSession({client})"),
        }
    }
}

/// What nodes report to the tester.
#[derive(Debug)]
pub enum Out {
    /// A client operation finished.
    Op(Record),
    /// A client program found a violation.
    Fail(String),
    /// A client program stopped.
    Finished(Report),
    /// A replica halted.
    Halted(String),
}

/// A clerk node.
pub struct ClientNode {
    clerk: Clerk,
    driver: Driver<Report>,
    actions: Vec<clerk::Action>,
}

impl ClientNode {
    /// The operation in flight, if any.
    pub fn in_flight(&self) -> Option<&(Time, Op)> {
        self.driver.in_flight()
    }

    pub fn clerk(&self) -> &Clerk {
        &self.clerk
    }

    fn clerk_step(&mut self, now: Time, input: clerk::Input, out: &mut Vec<Effect<SimNode>>) {
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        self.clerk.step_into(input, &mut actions);
        for a in actions.drain(..) {
            match a {
                clerk::Action::Send { to, request } => out.push(Effect::Send {
                    to: to as NodeId,
                    msg: Msg::Req(request),
                }),
                clerk::Action::Done(result) => {
                    let (record, step) = self.driver.done(now, result);
                    out.push(Effect::Output(Out::Op(record)));
                    self.follow(now, step, out);
                }
            }
        }
        self.actions = actions;
    }

    fn start(&mut self, now: Time, op: Op, out: &mut Vec<Effect<SimNode>>) {
        self.driver.call(now, &op);
        self.clerk_step(now, clerk::Input::Start(op), out);
    }

    /// Carries out what the driver asks for.
    fn follow(&mut self, now: Time, step: Step<Report>, out: &mut Vec<Effect<SimNode>>) {
        match step {
            Step::Idle => {}
            Step::Start(op) => self.start(now, op, out),
            Step::Finished(report) => out.push(Effect::Output(Out::Finished(report))),
            Step::Failed(why) => out.push(Effect::Output(Out::Fail(why))),
        }
    }
}

/// A replica node.
pub struct ReplicaNode {
    pub replica: Replica,
    actions: Vec<replica::Action>,
}

impl ReplicaNode {
    fn run(&mut self, input: replica::Input, out: &mut Vec<Effect<SimNode>>) {
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        self.replica.step_into(input, &mut actions);
        for a in actions.drain(..) {
            match a {
                replica::Action::Persist(p) => out.push(Effect::Write(p)),
                replica::Action::Send { to, msg } => out.push(Effect::Send {
                    to: to as NodeId,
                    msg: Msg::Raft(msg),
                }),
                replica::Action::Reply { to, reply } => out.push(Effect::Send {
                    to: to as NodeId,
                    msg: Msg::Rep(reply),
                }),
                replica::Action::Halted(why) => out.push(Effect::Output(Out::Halted(why))),
            }
        }
        self.actions = actions;
    }
}

/// Every simulated node.
pub enum SimNode {
    Replica(Box<ReplicaNode>),
    Single(Box<Server>),
    Client(Box<ClientNode>),
}

impl SimNode {
    pub fn client(&self) -> Option<&ClientNode> {
        match self {
            SimNode::Client(c) => Some(c),
            _ => None,
        }
    }

    pub fn replica(&self) -> Option<&Replica> {
        match self {
            SimNode::Replica(r) => Some(&r.replica),
            _ => None,
        }
    }
}

impl stepwise_sim::Node for SimNode {
    type Msg = Msg;
    type Input = ClientInput;
    type Output = Out;
    type Durable = Persisted;
    type Write = RaftAction;

    fn on_tick(&mut self, now: Time, out: &mut Vec<Effect<Self>>) {
        match self {
            SimNode::Replica(r) => r.run(replica::Input::Tick, out),
            SimNode::Single(_) => {}
            SimNode::Client(c) => {
                let step = c.driver.tick();
                c.follow(now, step, out);
                c.clerk_step(now, clerk::Input::Tick, out);
            }
        }
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Vec<Effect<Self>>) {
        match (self, msg) {
            (SimNode::Replica(r), Msg::Raft(msg)) => r.run(
                replica::Input::Receive {
                    from: from as u64,
                    msg,
                },
                out,
            ),
            (SimNode::Replica(r), Msg::Req(request)) => r.run(
                replica::Input::Request {
                    from: from as u64,
                    request,
                },
                out,
            ),
            (SimNode::Single(s), Msg::Req(request)) => out.push(Effect::Send {
                to: from,
                msg: Msg::Rep(s.handle(request)),
            }),
            (SimNode::Client(c), Msg::Rep(reply)) => c.clerk_step(
                now,
                clerk::Input::Receive {
                    from: from as u64,
                    reply,
                },
                out,
            ),
            _ => {}
        }
    }

    fn on_input(&mut self, now: Time, input: ClientInput, out: &mut Vec<Effect<Self>>) {
        let (c, input) = match (self, input) {
            (SimNode::Replica(r), ClientInput::EndSession(client)) => {
                r.run(replica::Input::EndSession { client }, out);
                return;
            }
            (SimNode::Client(c), input) => (c, input),
            _ => return,
        };
        match input {
            ClientInput::Do(op) => c.start(now, op, out),
            ClientInput::Run(p) => {
                let step = c.driver.run(p);
                c.follow(now, step, out);
            }
            ClientInput::Stop => {
                let step = c.driver.stop();
                c.follow(now, step, out);
            }
            ClientInput::EndSession(_) => {}
        }
    }

    fn write(durable: &mut Persisted, write: RaftAction) {
        durable.apply(&write);
    }

    fn wire_size(msg: &Msg) -> usize {
        match msg {
            Msg::Raft(m) => postcard::experimental::serialized_size(m).unwrap_or(0),
            Msg::Req(r) => postcard::experimental::serialized_size(r).unwrap_or(0),
            Msg::Rep(r) => postcard::experimental::serialized_size(r).unwrap_or(0),
        }
    }

    /// The lab's long reordering holds back RPC replies only.
    fn reorderable(msg: &Msg) -> bool {
        match msg {
            Msg::Raft(m) => matches!(
                m,
                Message::VoteReply { .. }
                    | Message::AppendReply { .. }
                    | Message::SnapshotReply { .. }
                    | Message::ReadIndexReply { .. }
            ),
            Msg::Req(_) => false,
            Msg::Rep(_) => true,
        }
    }
}

/// How a test is set up.
#[derive(Clone, Debug)]
pub struct Setup {
    pub servers: usize,
    pub clients: usize,
    pub reliable: bool,
    pub service: Service,
    /// Clerks tag writes with sessions.
    pub sessions: bool,
    pub seed: u64,
}

/// The lab's KV tester.
pub struct KvTester {
    pub sim: Sim<SimNode>,
    pub nservers: usize,
    pub nclients: usize,
    pub records: Vec<Record>,
    finished: BTreeMap<NodeId, Report>,
}

/// Raft configuration for the KV tests: the defaults (10 ms ticks, 100 ms heartbeats,
/// 300-600 ms election timeouts, leader no-op, pre-vote, check-quorum).
pub fn raft_config(id: NodeId, n: usize, seed: u64) -> Config {
    Config::new(id as u64, (0..n as u64).collect::<Vec<_>>()).with_seed(seed)
}

impl ProgramTester<Report> for KvTester {
    fn signal(&mut self, ck: NodeId, program: Option<Box<dyn Program<Report>>>) {
        let input = match program {
            Some(p) => ClientInput::Run(p),
            None => ClientInput::Stop,
        };
        self.sim.input(ck, input);
    }

    fn reports(&self) -> &BTreeMap<NodeId, Report> {
        &self.finished
    }

    fn reports_mut(&mut self) -> &mut BTreeMap<NodeId, Report> {
        &mut self.finished
    }

    fn fail_test(&self, why: &str) -> ! {
        self.fail(why)
    }
}

impl Harness for KvTester {
    type Node = SimNode;

    fn sim_mut(&mut self) -> &mut Sim<SimNode> {
        &mut self.sim
    }

    fn absorb(&mut self) {
        self.drain();
    }
}

impl KvTester {
    pub fn new(setup: Setup) -> KvTester {
        Self::new_with(setup, |_| {})
    }

    /// Like `new`, with a change to every replica's Raft configuration.
    pub fn new_with(setup: Setup, tweak: fn(&mut Config)) -> KvTester {
        let mut config = SimConfig::with_seed(setup.seed);
        config.net = if setup.reliable {
            NetConfig::reliable()
        } else {
            NetConfig::unreliable()
        };
        let (n, service, sessions) = (setup.servers, setup.service, setup.sessions);
        // With follower reads, clerk k sends its Gets to server k mod n (followers and the
        // leader alike), so the reads spread over every replica.
        let mut probe = raft_config(0, n.max(1), 0);
        tweak(&mut probe);
        let follower_reads = probe.follower_reads && matches!(service, Service::Replicated { .. });
        let mut sim = Sim::new(
            config,
            setup.servers + setup.clients,
            move |id, durable: &Persisted, seed| {
                if id < n {
                    match service {
                        Service::Single => SimNode::Single(Box::new(Server::new())),
                        Service::Replicated { max_raft_state } => {
                            let mut raft = raft_config(id, n, seed);
                            tweak(&mut raft);
                            let cfg = RsmConfig::new(raft).with_max_raft_state(max_raft_state);
                            let replica =
                                Replica::restore(cfg, durable.clone()).expect("restore replica");
                            SimNode::Replica(Box::new(ReplicaNode {
                                replica,
                                actions: Vec::new(),
                            }))
                        }
                    }
                } else {
                    let mut cfg = ClerkConfig::new(id as u64, (0..n as u64).collect())
                        .with_sessions(sessions);
                    if follower_reads {
                        cfg.read_from = Some((id % n) as u64);
                    }
                    SimNode::Client(Box::new(ClientNode {
                        clerk: Clerk::new(cfg),
                        driver: Driver::new(id, seed),
                        actions: Vec::new(),
                    }))
                }
            },
        );
        if std::env::var("STEPWISE_TRACE").is_ok() {
            sim.keep_event_log(2000);
        }
        KvTester {
            sim,
            nservers: setup.servers,
            nclients: setup.clients,
            records: Vec::new(),
            finished: BTreeMap::new(),
        }
    }

    /// Node id of clerk `k` (0-based).
    pub fn clerk(&self, k: usize) -> NodeId {
        assert!(k < self.nclients, "clerk {k} was not allocated");
        self.nservers + k
    }

    pub fn servers(&self) -> Vec<NodeId> {
        (0..self.nservers).collect()
    }

    fn drain(&mut self) {
        if self.sim.outputs().is_empty() {
            return;
        }
        for (_, node, out) in self.sim.take_outputs() {
            match out {
                Out::Op(r) => self.records.push(r),
                Out::Fail(why) => self.fail(&why),
                Out::Finished(report) => {
                    self.finished.insert(node, report);
                }
                Out::Halted(why) => self.fail(&format!("replica {node} halted: {why}")),
            }
        }
    }

    /// Panics with the event log (if kept) and a dump of the servers.
    pub fn fail(&self, why: &str) -> ! {
        for line in self.sim.event_log() {
            eprintln!("{line}");
        }
        panic!("{why}\n{}", self.dump());
    }

    pub fn dump(&self) -> String {
        let mut s = format!("at {} ms\n", self.sim.now() / MS);
        for i in 0..self.nservers {
            match self.sim.node(i).and_then(SimNode::replica) {
                None if self.sim.is_up(i) => {}
                None => s += &format!("server {i}: down\n"),
                Some(r) => {
                    let raft = r.rsm().raft();
                    s += &format!(
                        "server {i}: connected={} term={} role={:?} leader={:?} commit={} applied={} last={} snap={} pending={} reads={} stats={:?}\n",
                        self.sim.is_connected(i),
                        raft.term(),
                        raft.role(),
                        raft.leader(),
                        raft.commit_index(),
                        r.rsm().applied_index(),
                        raft.log().last_index(),
                        raft.log().snapshot_meta().index,
                        r.rsm().pending_submissions(),
                        r.rsm().pending_queries(),
                        r.rsm().stats(),
                    );
                }
            }
        }
        for k in 0..self.nclients {
            let id = self.clerk(k);
            if let Some(c) = self.sim.node(id).and_then(SimNode::client) {
                s += &format!(
                    "clerk {id}: in flight {:?} leader hint {} stats {:?}\n",
                    c.in_flight(),
                    c.clerk().leader_hint(),
                    c.clerk().stats()
                );
            }
        }
        s
    }

    /// Starts `op` on clerk node `ck` (which must be idle); [`KvTester::wait_op`] waits
    /// for it.
    pub fn start_op(&mut self, ck: NodeId, op: Op) {
        self.sim.input(ck, ClientInput::Do(op));
        self.drain();
    }

    /// Whether clerk `ck` has no operation in flight.
    pub fn idle(&self, ck: NodeId) -> bool {
        self.sim
            .node(ck)
            .and_then(SimNode::client)
            .is_some_and(|c| c.in_flight().is_none())
    }

    /// Waits (at most `limit`) for clerk `ck`'s operation; its result, or None on timeout.
    pub fn wait_op(&mut self, ck: NodeId, limit: Time) -> Option<KvResult> {
        if !self.run_until(|t| t.idle(ck), limit) {
            return None;
        }
        let r = self.records.iter().rev().find(|r| r.client == ck);
        Some(r.expect("the clerk finished an operation").result.clone())
    }

    /// Runs one operation on clerk `ck` to completion (the lab's synchronous call; the
    /// lab's per-test limit of 120 s bounds it).
    pub fn op(&mut self, ck: NodeId, op: Op) -> KvResult {
        self.start_op(ck, op.clone());
        match self.wait_op(ck, 120 * SEC) {
            Some(r) => r,
            None => self.fail(&format!("clerk {ck}: {op:?} did not finish within 120 s")),
        }
    }

    /// `Get` returning (value, version); a missing key is ("", 0).
    pub fn get(&mut self, ck: NodeId, key: &str) -> (String, u64) {
        match self.op(ck, Op::get(key.to_owned())) {
            Ok(KvOutput::Value { value, version }) => (text(&value), version),
            Err(KvError::NoKey) => (String::new(), 0),
            other => self.fail(&format!("Get({key}) returned {other:?}")),
        }
    }

    /// The lab's CheckGet: the Get must return exactly this value and version.
    pub fn check_get(&mut self, ck: NodeId, key: &str, value: &str, version: u64) {
        let got = self.get(ck, key);
        if got != (value.to_owned(), version) {
            self.fail(&format!(
                "Get({key}) = {got:?}, expected ({value:?}, {version})"
            ));
        }
    }

    /// The lab's PutAtLeastOnce: retry through ErrMaybe/ErrVersion; returns the new version.
    pub fn put_at_least_once(&mut self, ck: NodeId, key: &str, value: &str, mut ver: u64) -> u64 {
        loop {
            match self.op(ck, Op::put(key.to_owned(), value.to_owned(), ver)) {
                Ok(_) => return ver + 1,
                Err(KvError::Maybe | KvError::Version) => ver += 1,
                Err(e) => self.fail(&format!("PutAtLeastOnce({key}) failed: {e:?}")),
            }
        }
    }

    /// Signals "done" to clerk `ck`'s program without waiting; [`KvTester::take_report`]
    /// picks up its report once it stopped.
    pub fn stop_program(&mut self, ck: NodeId) {
        self.sim.input(ck, ClientInput::Stop);
        self.drain();
    }

    /// The report of clerk `ck`'s program, if it stopped (taken once).
    pub fn take_report(&mut self, ck: NodeId) -> Option<Report> {
        self.finished.remove(&ck)
    }

    /// Asks every up replica to end `client`'s session (the leader proposes it, the
    /// others ignore it).
    pub fn end_session(&mut self, client: u64) {
        for i in 0..self.nservers {
            self.sim.input(i, ClientInput::EndSession(client));
        }
        self.drain();
    }

    /// The lab's SpawnClientsAndWait: run programs for `d`, then signal done and wait.
    pub fn spawn_clients_and_wait(
        &mut self,
        programs: Vec<(NodeId, Box<dyn Program<Report>>)>,
        d: Time,
    ) -> Vec<Report> {
        let clerks: Vec<NodeId> = programs.iter().map(|(c, _)| *c).collect();
        self.run_programs(programs);
        self.sleep(d);
        self.stop_programs(&clerks, 120 * SEC)
    }

    // ----- servers ------------------------------------------------------------------------

    /// The lab's ShutdownServer: disconnect, then kill; persisted state is kept.
    pub fn shutdown_server(&mut self, i: NodeId) {
        self.sim.disconnect(i);
        self.sim.crash(i);
    }

    /// The lab's StartServer + ConnectOne.
    pub fn start_server(&mut self, i: NodeId) {
        self.sim.restart(i);
        self.sim.connect(i);
    }

    /// The lab's group Shutdown: every server.
    pub fn shutdown_all(&mut self) {
        for i in 0..self.nservers {
            self.shutdown_server(i);
        }
    }

    /// Restarts every server and connects everything (the lab's StartServers + ConnectAll).
    pub fn start_all(&mut self) {
        for i in 0..self.nservers {
            self.sim.restart(i);
        }
        self.sim.connect_all();
    }

    /// Partitions the servers (clerks keep their links).
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        let servers = self.servers();
        self.sim.partition_within(&servers, &[a, b]);
    }

    /// Links clerk `ck` with exactly the servers in `to` (the lab's MakeClientTo).
    pub fn clerk_reaches(&mut self, ck: NodeId, to: &[NodeId]) {
        for s in 0..self.nservers {
            let up = to.contains(&s);
            self.sim.set_link(ck, s, up);
            self.sim.set_link(s, ck, up);
        }
    }

    /// The current leader among up and connected servers, if exactly one claims it
    /// in the highest term.
    pub fn leader(&self) -> Option<NodeId> {
        (0..self.nservers)
            .filter_map(|i| {
                let r = self.sim.node(i)?.replica()?;
                (self.sim.is_connected(i) && r.is_leader()).then(|| (r.rsm().raft().term(), i))
            })
            .max()
            .map(|(_, i)| i)
    }

    /// Waits (at most 10 s) for a leader.
    pub fn wait_leader(&mut self) -> NodeId {
        if !self.run_until(|t| t.leader().is_some(), 10 * SEC) {
            self.fail("no leader within 10 s");
        }
        self.leader().expect("checked")
    }

    /// The lab's MakePartition(leader): p1 gets n/2+1 servers without the leader, p2 the
    /// rest with the leader last.
    pub fn make_partition(&self, leader: NodeId) -> (Vec<NodeId>, Vec<NodeId>) {
        let n = self.nservers;
        let others: Vec<NodeId> = (0..n).filter(|&i| i != leader).collect();
        let p1 = others[..n / 2 + 1].to_vec();
        let mut p2 = others[n / 2 + 1..].to_vec();
        p2.push(leader);
        (p1, p2)
    }

    /// Largest persisted Raft state over the servers (the lab's LogSize).
    pub fn log_size(&self) -> usize {
        (0..self.nservers)
            .map(|i| self.sim.durable(i).raft_state_size())
            .max()
            .unwrap_or(0)
    }

    /// Largest persisted snapshot over the servers (the lab's SnapshotSize).
    pub fn snapshot_size(&self) -> usize {
        (0..self.nservers)
            .map(|i| self.sim.durable(i).snapshot_size())
            .max()
            .unwrap_or(0)
    }

    /// The lab's partitioner step: every server at random on side 0 or 1.
    pub fn random_partition(&mut self) {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for i in 0..self.nservers {
            if self.sim.rng().rand_range(0..2) == 0 {
                a.push(i);
            } else {
                b.push(i);
            }
        }
        self.partition(&a, &b);
    }

    /// Runs until `pred` holds (or `limit` passes) while the lab's partitioner
    /// repartitions the servers every 1 s + rand(0..200 ms).
    pub fn run_until_partitioning(
        &mut self,
        mut pred: impl FnMut(&KvTester) -> bool,
        limit: Time,
    ) -> bool {
        let end = self.sim.now() + limit;
        while self.sim.now() < end {
            self.random_partition();
            let pause = SEC + self.sim.rng().rand_range(0..200) * MS;
            let pause = pause.min(end - self.sim.now());
            if self.run_until(&mut pred, pause) {
                return true;
            }
        }
        false
    }

    /// Signals "done" to the clerks and waits until their programs finished, with the
    /// partitioner running (the lab starts it as the clients are told to stop).
    pub fn stop_programs_partitioning(&mut self, clerks: &[NodeId]) -> Vec<Report> {
        for &ck in clerks {
            self.sim.input(ck, ClientInput::Stop);
        }
        self.drain();
        let ok = self.run_until_partitioning(
            |t| clerks.iter().all(|ck| t.finished.contains_key(ck)),
            120 * SEC,
        );
        if !ok {
            self.fail("client programs did not finish after the done signal");
        }
        clerks
            .iter()
            .map(|ck| self.finished.remove(ck).expect("finished"))
            .collect()
    }

    // ----- checks -------------------------------------------------------------------------

    /// Operations still in flight (never answered), as (client, op, call).
    fn in_flight(&self) -> Vec<(NodeId, Op, Time)> {
        (self.nservers..self.nservers + self.nclients)
            .filter_map(|ck| {
                let c = self.sim.node(ck)?.client()?;
                c.in_flight().map(|(call, op)| (ck, op.clone(), *call))
            })
            .collect()
    }

    /// Checks the history of versioned operations (2025 model) for linearizability.
    pub fn check_versioned(&self) {
        self.check_versioned_where(|_| true);
    }

    /// [`KvTester::check_versioned`] over the operations `pick` selects (whole keys).
    pub fn check_versioned_where(&self, pick: impl Fn(&Op) -> bool) {
        self.verdict(kv_history::check_versioned(
            self.records.iter().filter(|r| pick(&r.op)),
            self.in_flight().into_iter().filter(|o| pick(&o.1)),
            Duration::from_secs(60),
        ));
    }

    /// Checks the history of Get/Put/Append operations (2020-2024 model).
    pub fn check_legacy(&self) {
        self.check_legacy_where(|_| true);
    }

    /// [`KvTester::check_legacy`] over the operations `pick` selects (whole keys).
    pub fn check_legacy_where(&self, pick: impl Fn(&Op) -> bool) {
        self.verdict(kv_history::check_legacy(
            self.records.iter().filter(|r| pick(&r.op)),
            self.in_flight().into_iter().filter(|o| pick(&o.1)),
            Duration::from_secs(60),
        ));
    }

    fn verdict(&self, result: CheckResult) {
        if std::env::var("STEPWISE_VERBOSE").is_ok() {
            eprintln!(
                "{} operations in {} ms of virtual time; {:?}",
                self.records.len(),
                self.sim.now() / MS,
                self.sim.stats().total
            );
        }
        if let Some(failure) = kv_history::verdict_failure(result, self.records.len()) {
            self.fail(&failure);
        }
    }
}
