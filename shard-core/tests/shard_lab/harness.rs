//! The lab's shard tester (LAB-SCENARIOS.md 7) on the deterministic simulator.
//!
//! One simulation holds everything as nodes: the controller servers (a 3-server Raft
//! cluster, plus optionally a second, independent controller for the rejection test), the
//! shard groups (3 servers each), the clients (sans-IO [`ShardClerk`]s running single
//! operations or client programs) and the administrators ([`CtrlerClerk`]s issuing Join,
//! Leave, Move and Query). The network's faults hit every kind of traffic, as in the lab.
//! Every client and administrator operation is recorded with its call and return times
//! in virtual time, for the linearizability checks.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use stepwise_kv::{KvError, KvOutput, KvResult, Op, Reply, Request, RsmConfig};
use stepwise_linearizability::{CheckResult, History, Model, Operation, check};
use stepwise_raft::{Action as RaftAction, Config, Message, Persisted};
use stepwise_shard::client::{self, ShardClerk, ShardClerkConfig};
use stepwise_shard::config::{Addr, Gid, ShardConfig};
use stepwise_shard::ctrler::clerk::{self as cclerk, CtrlerClerk, CtrlerClerkConfig};
use stepwise_shard::ctrler::server::{self as cserver, CtrlerServer};
use stepwise_shard::ctrler::{CtrlCommand, CtrlError, CtrlOp, CtrlOutput, CtrlResult, Ctrler};
use stepwise_shard::group::server::{self as gserver, GroupConfig, GroupEvent, GroupServer};
use stepwise_shard::key::key_to_shard;
use stepwise_shard::message::{CtrlReply, CtrlRequest, PeerMsg};
use stepwise_sim::{Effect, Harness, MS, NetConfig, NodeId, Rand64, SEC, Sim, SimConfig, Time};

use crate::client_program::{Driver, Step};
use crate::kv_history;

/// What crosses the simulated network.
#[derive(Clone, Debug)]
pub enum Msg {
    Raft(Message),
    CtrlReq(CtrlRequest),
    CtrlRep(CtrlReply),
    Req(Request),
    Rep(Reply),
    Peer(PeerMsg),
}

pub use crate::kv_history::{Record, text};

/// One recorded administrator operation.
#[derive(Clone, Debug)]
pub struct AdminRecord {
    pub admin: NodeId,
    pub op: CtrlOp,
    pub expect: Option<u64>,
    pub call: Time,
    pub ret: Time,
    pub result: CtrlResult,
}

/// Counts a client program reports when it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Operations completed.
    pub ops: u64,
    /// Per key, what this client appended, in order.
    pub appended: BTreeMap<String, String>,
}

pub use crate::client_program::{Event, Next, Program, ProgramTester};

/// Inputs the tester injects.
pub enum In {
    /// A client runs one operation.
    Do(Op),
    /// A client starts a program.
    Run(Box<dyn Program<Report>>),
    /// A client's program stops at its next opportunity.
    Stop,
    /// An administrator runs a controller operation (conditional on `expect`).
    Admin(CtrlOp, Option<u64>),
}

impl fmt::Debug for In {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            In::Do(op) => write!(f, "Do({op:?})"),
            In::Run(_) => f.write_str("Run(program)"),
            In::Stop => f.write_str("Stop"),
            In::Admin(op, e) => write!(f, "Admin({op:?}, {e:?})"),
        }
    }
}

/// What nodes report.
#[derive(Debug)]
pub enum Out {
    Op(Record),
    Admin(AdminRecord),
    Event(GroupEvent),
    Fail(String),
    Finished(Report),
    Halted(String),
}

pub struct CtrlerNode {
    pub server: CtrlerServer,
    buf: Vec<cserver::Action>,
}

pub struct GroupNode {
    pub server: GroupServer,
    buf: Vec<gserver::Action>,
}

pub struct ClientNode {
    pub clerk: ShardClerk,
    driver: Driver<Report>,
    buf: Vec<client::Action>,
}

pub struct AdminNode {
    me: NodeId,
    pub clerk: CtrlerClerk,
    call: Option<(Time, CtrlOp, Option<u64>)>,
    buf: Vec<cclerk::Action>,
}

pub enum SimNode {
    Ctrler(Box<CtrlerNode>),
    Group(Box<GroupNode>),
    Client(Box<ClientNode>),
    Admin(Box<AdminNode>),
}

impl SimNode {
    pub fn group(&self) -> Option<&GroupServer> {
        match self {
            SimNode::Group(g) => Some(&g.server),
            _ => None,
        }
    }
    pub fn ctrler(&self) -> Option<&CtrlerServer> {
        match self {
            SimNode::Ctrler(c) => Some(&c.server),
            _ => None,
        }
    }
    pub fn client(&self) -> Option<&ClientNode> {
        match self {
            SimNode::Client(c) => Some(c),
            _ => None,
        }
    }
    pub fn admin(&self) -> Option<&AdminNode> {
        match self {
            SimNode::Admin(a) => Some(a),
            _ => None,
        }
    }
}

type Fx = Vec<Effect<SimNode>>;

impl CtrlerNode {
    fn run(&mut self, input: cserver::Input, out: &mut Fx) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.server.step_into(input, &mut buf);
        for a in buf.drain(..) {
            out.push(match a {
                cserver::Action::Persist(p) => Effect::Write(p),
                cserver::Action::Send { to, msg } => Effect::Send {
                    to: to as NodeId,
                    msg: Msg::Raft(msg),
                },
                cserver::Action::Reply { to, reply } => Effect::Send {
                    to: to as NodeId,
                    msg: Msg::CtrlRep(reply),
                },
                cserver::Action::Halted(why) => Effect::Output(Out::Halted(why)),
            });
        }
        self.buf = buf;
    }
}

impl GroupNode {
    fn run(&mut self, input: gserver::Input, out: &mut Fx) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.server.step_into(input, &mut buf);
        for a in buf.drain(..) {
            out.push(match a {
                gserver::Action::Persist(p) => Effect::Write(p),
                gserver::Action::Send { to, msg } => Effect::Send {
                    to: to as NodeId,
                    msg: Msg::Raft(msg),
                },
                gserver::Action::Reply { to, reply } => Effect::Send {
                    to: to as NodeId,
                    msg: Msg::Rep(reply),
                },
                gserver::Action::SendPeer { to, msg } => Effect::Send {
                    to: to as NodeId,
                    msg: Msg::Peer(msg),
                },
                gserver::Action::SendCtrler { to, request } => Effect::Send {
                    to: to as NodeId,
                    msg: Msg::CtrlReq(request),
                },
                gserver::Action::Event(e) => Effect::Output(Out::Event(e)),
                gserver::Action::Halted(why) => Effect::Output(Out::Halted(why)),
            });
        }
        self.buf = buf;
    }
}

impl ClientNode {
    pub fn in_flight(&self) -> Option<&(Time, Op)> {
        self.driver.in_flight()
    }

    fn clerk_step(&mut self, now: Time, input: client::Input, out: &mut Fx) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.clerk.step_into(input, &mut buf);
        for a in buf.drain(..) {
            match a {
                client::Action::Send { to, request } => out.push(Effect::Send {
                    to: to as NodeId,
                    msg: Msg::Req(request),
                }),
                client::Action::SendCtrler { to, request } => out.push(Effect::Send {
                    to: to as NodeId,
                    msg: Msg::CtrlReq(request),
                }),
                client::Action::Done(result) => {
                    let (record, step) = self.driver.done(now, result);
                    out.push(Effect::Output(Out::Op(record)));
                    self.follow(now, step, out);
                }
            }
        }
        self.buf = buf;
    }

    fn start(&mut self, now: Time, op: Op, out: &mut Fx) {
        self.driver.call(now, &op);
        self.clerk_step(now, client::Input::Start(op), out);
    }

    /// Carries out what the driver asks for.
    fn follow(&mut self, now: Time, step: Step<Report>, out: &mut Fx) {
        match step {
            Step::Idle => {}
            Step::Start(op) => self.start(now, op, out),
            Step::Finished(report) => out.push(Effect::Output(Out::Finished(report))),
            Step::Failed(why) => out.push(Effect::Output(Out::Fail(why))),
        }
    }
}

impl AdminNode {
    fn clerk_step(&mut self, now: Time, input: cclerk::Input, out: &mut Fx) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.clerk.step_into(input, &mut buf);
        for a in buf.drain(..) {
            match a {
                cclerk::Action::Send { to, request } => out.push(Effect::Send {
                    to: to as NodeId,
                    msg: Msg::CtrlReq(request),
                }),
                cclerk::Action::Done(result) => {
                    let (call, op, expect) = self.call.take().expect("a result answers a call");
                    out.push(Effect::Output(Out::Admin(AdminRecord {
                        admin: self.me,
                        op,
                        expect,
                        call,
                        ret: now,
                        result,
                    })));
                }
            }
        }
        self.buf = buf;
    }
}

impl stepwise_sim::Node for SimNode {
    type Msg = Msg;
    type Input = In;
    type Output = Out;
    type Durable = Persisted;
    type Write = RaftAction;

    fn on_tick(&mut self, now: Time, out: &mut Fx) {
        match self {
            SimNode::Ctrler(c) => c.run(cserver::Input::Tick, out),
            SimNode::Group(g) => g.run(gserver::Input::Tick, out),
            SimNode::Client(c) => {
                let step = c.driver.tick();
                c.follow(now, step, out);
                c.clerk_step(now, client::Input::Tick, out);
            }
            SimNode::Admin(a) => a.clerk_step(now, cclerk::Input::Tick, out),
        }
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Fx) {
        let from_addr = from as Addr;
        match (self, msg) {
            (SimNode::Ctrler(c), Msg::Raft(msg)) => c.run(
                cserver::Input::Receive {
                    from: from_addr,
                    msg,
                },
                out,
            ),
            (SimNode::Ctrler(c), Msg::CtrlReq(request)) => c.run(
                cserver::Input::Request {
                    from: from_addr,
                    request,
                },
                out,
            ),
            (SimNode::Group(g), Msg::Raft(msg)) => g.run(
                gserver::Input::Receive {
                    from: from_addr,
                    msg,
                },
                out,
            ),
            (SimNode::Group(g), Msg::Req(request)) => g.run(
                gserver::Input::Request {
                    from: from_addr,
                    request,
                },
                out,
            ),
            (SimNode::Group(g), Msg::Peer(msg)) => g.run(
                gserver::Input::Peer {
                    from: from_addr,
                    msg,
                },
                out,
            ),
            (SimNode::Group(g), Msg::CtrlRep(reply)) => g.run(
                gserver::Input::Ctrler {
                    from: from_addr,
                    reply,
                },
                out,
            ),
            (SimNode::Client(c), Msg::Rep(reply)) => c.clerk_step(
                now,
                client::Input::Receive {
                    from: from_addr,
                    reply,
                },
                out,
            ),
            (SimNode::Client(c), Msg::CtrlRep(reply)) => c.clerk_step(
                now,
                client::Input::Ctrler {
                    from: from_addr,
                    reply,
                },
                out,
            ),
            (SimNode::Admin(a), Msg::CtrlRep(reply)) => a.clerk_step(
                now,
                cclerk::Input::Receive {
                    from: from_addr,
                    reply,
                },
                out,
            ),
            _ => {}
        }
    }

    fn on_input(&mut self, now: Time, input: In, out: &mut Fx) {
        match (self, input) {
            (SimNode::Client(c), In::Do(op)) => c.start(now, op, out),
            (SimNode::Client(c), In::Run(p)) => {
                let step = c.driver.run(p);
                c.follow(now, step, out);
            }
            (SimNode::Client(c), In::Stop) => {
                let step = c.driver.stop();
                c.follow(now, step, out);
            }
            (SimNode::Admin(a), In::Admin(op, expect)) => {
                assert!(
                    a.call.is_none(),
                    "one operation at a time per administrator"
                );
                a.call = Some((now, op.clone(), expect));
                a.clerk_step(now, cclerk::Input::Start { op, expect }, out);
            }
            (_, input) => panic!("input {input:?} for the wrong kind of node"),
        }
    }

    fn write(durable: &mut Persisted, write: RaftAction) {
        durable.apply(&write);
    }

    fn wire_size(msg: &Msg) -> usize {
        let size = match msg {
            Msg::Raft(m) => postcard::experimental::serialized_size(m),
            Msg::CtrlReq(m) => postcard::experimental::serialized_size(m),
            Msg::CtrlRep(m) => postcard::experimental::serialized_size(m),
            Msg::Req(m) => postcard::experimental::serialized_size(m),
            Msg::Rep(m) => postcard::experimental::serialized_size(m),
            Msg::Peer(m) => postcard::experimental::serialized_size(m),
        };
        size.unwrap_or(0)
    }

    /// The lab's long reordering holds back RPC replies only.
    fn reorderable(msg: &Msg) -> bool {
        match msg {
            Msg::Raft(m) => matches!(
                m,
                Message::VoteReply { .. }
                    | Message::AppendReply { .. }
                    | Message::SnapshotReply { .. }
            ),
            Msg::CtrlRep(_) | Msg::Rep(_) => true,
            Msg::Peer(p) => matches!(p, PeerMsg::PullReply { .. } | PeerMsg::DeleteReply { .. }),
            Msg::CtrlReq(_) | Msg::Req(_) => false,
        }
    }
}

/// How a test is set up.
#[derive(Clone, Debug)]
pub struct Setup {
    pub seed: u64,
    pub nshards: usize,
    /// Controller servers.
    pub nctrl: usize,
    /// Servers of a second, independent controller (0: none); the last
    /// `clients_of_second` clients use it.
    pub second_ctrl: usize,
    pub clients_of_second: usize,
    /// The groups' gids (3 servers each).
    pub gids: Vec<Gid>,
    pub group_size: usize,
    pub nclients: usize,
    pub nadmins: usize,
    pub reliable: bool,
    pub max_raft_state: Option<usize>,
}

impl Setup {
    /// The 2020-2024 lab: NShards 10, 3 controllers, groups 100, 101, 102.
    pub fn legacy(seed: u64) -> Setup {
        Setup {
            seed,
            nshards: 10,
            nctrl: 3,
            second_ctrl: 0,
            clients_of_second: 0,
            gids: vec![100, 101, 102],
            group_size: 3,
            nclients: 1,
            nadmins: 1,
            reliable: true,
            max_raft_state: None,
        }
    }

    /// The 2025 lab: NShards 12, gid 1 and joining gids from 2 up.
    pub fn lab2025(seed: u64, ngroups: u64) -> Setup {
        Setup {
            nshards: 12,
            gids: (1..=ngroups).collect(),
            ..Setup::legacy(seed)
        }
    }
}

/// The shard tester.
pub struct Tester {
    pub sim: Sim<SimNode>,
    pub setup: Setup,
    pub ctrlers: Vec<NodeId>,
    pub groups: BTreeMap<Gid, Vec<NodeId>>,
    pub clients: Vec<NodeId>,
    pub admins: Vec<NodeId>,
    /// The administrator of the second controller, if there is one.
    pub second_admin: Option<NodeId>,
    pub records: Vec<Record>,
    pub admin_records: Vec<AdminRecord>,
    pub events: Vec<(Time, NodeId, GroupEvent)>,
    finished: BTreeMap<NodeId, Report>,
}

/// Raft configuration for every cluster: the defaults with the given members.
fn raft_config(id: NodeId, members: &[NodeId], seed: u64) -> Config {
    let members: Vec<u64> = members.iter().map(|&m| m as u64).collect();
    Config::new(id as u64, members).with_seed(seed)
}

enum Role {
    Ctrler { members: Vec<NodeId> },
    Group { gid: Gid, members: Vec<NodeId> },
    Client { ctrlers: Vec<NodeId> },
    Admin { ctrlers: Vec<NodeId> },
}

impl ProgramTester<Report> for Tester {
    fn signal(&mut self, ck: NodeId, program: Option<Box<dyn Program<Report>>>) {
        let input = match program {
            Some(p) => In::Run(p),
            None => In::Stop,
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

impl Harness for Tester {
    type Node = SimNode;

    fn sim_mut(&mut self) -> &mut Sim<SimNode> {
        &mut self.sim
    }

    fn absorb(&mut self) {
        self.drain();
    }
}

impl Tester {
    pub fn new(setup: Setup) -> Tester {
        let mut config = SimConfig::with_seed(setup.seed);
        config.net = if setup.reliable {
            NetConfig::reliable()
        } else {
            NetConfig::unreliable()
        };
        let mut roles = Vec::new();
        let ctrlers: Vec<NodeId> = (0..setup.nctrl).collect();
        for _ in &ctrlers {
            roles.push(Role::Ctrler {
                members: ctrlers.clone(),
            });
        }
        let second: Vec<NodeId> = (roles.len()..roles.len() + setup.second_ctrl).collect();
        for _ in &second {
            roles.push(Role::Ctrler {
                members: second.clone(),
            });
        }
        let mut groups = BTreeMap::new();
        for &gid in &setup.gids {
            let members: Vec<NodeId> = (roles.len()..roles.len() + setup.group_size).collect();
            for _ in &members {
                roles.push(Role::Group {
                    gid,
                    members: members.clone(),
                });
            }
            groups.insert(gid, members);
        }
        let mut clients = Vec::new();
        for k in 0..setup.nclients {
            let of_second = k + setup.clients_of_second >= setup.nclients;
            clients.push(roles.len());
            roles.push(Role::Client {
                ctrlers: if of_second {
                    second.clone()
                } else {
                    ctrlers.clone()
                },
            });
        }
        let admins: Vec<NodeId> = (roles.len()..roles.len() + setup.nadmins).collect();
        for _ in &admins {
            roles.push(Role::Admin {
                ctrlers: ctrlers.clone(),
            });
        }
        let second_admin = (setup.second_ctrl > 0).then(|| {
            roles.push(Role::Admin {
                ctrlers: second.clone(),
            });
            roles.len() - 1
        });
        let n = roles.len();
        let (nshards, max_raft_state) = (setup.nshards, setup.max_raft_state);
        let ctrl_addrs: Vec<Addr> = ctrlers.iter().map(|&c| c as Addr).collect();
        let sim = Sim::new(
            config,
            n,
            move |id, durable: &Persisted, seed| match &roles[id] {
                Role::Ctrler { members } => {
                    let cfg = RsmConfig::new(raft_config(id, members, seed))
                        .with_max_raft_state(max_raft_state);
                    SimNode::Ctrler(Box::new(CtrlerNode {
                        server: CtrlerServer::restore(cfg, durable.clone(), nshards)
                            .expect("restore controller"),
                        buf: Vec::new(),
                    }))
                }
                Role::Group { gid, members } => {
                    let rsm = RsmConfig::new(raft_config(id, members, seed))
                        .with_max_raft_state(max_raft_state);
                    let mut cfg = GroupConfig::new(*gid, rsm, ctrl_addrs.clone());
                    cfg.nshards = nshards;
                    SimNode::Group(Box::new(GroupNode {
                        server: GroupServer::restore(cfg, durable.clone())
                            .expect("restore group server"),
                        buf: Vec::new(),
                    }))
                }
                Role::Client { ctrlers } => {
                    let cfg = ShardClerkConfig::new(
                        id as u64,
                        ctrlers.iter().map(|&c| c as Addr).collect(),
                    );
                    SimNode::Client(Box::new(ClientNode {
                        clerk: ShardClerk::new(cfg),
                        driver: Driver::new(id, seed),
                        buf: Vec::new(),
                    }))
                }
                Role::Admin { ctrlers } => {
                    let cfg = CtrlerClerkConfig::new(
                        id as u64,
                        ctrlers.iter().map(|&c| c as Addr).collect(),
                    );
                    SimNode::Admin(Box::new(AdminNode {
                        me: id,
                        clerk: CtrlerClerk::new(cfg),
                        call: None,
                        buf: Vec::new(),
                    }))
                }
            },
        );
        let mut t = Tester {
            sim,
            setup,
            ctrlers,
            groups,
            clients,
            admins,
            second_admin,
            records: Vec::new(),
            admin_records: Vec::new(),
            events: Vec::new(),
            finished: BTreeMap::new(),
        };
        if std::env::var("STEPWISE_TRACE").is_ok() {
            t.sim.keep_event_log(3000);
        }
        t
    }

    // ----- running ------------------------------------------------------------------------

    fn drain(&mut self) {
        if self.sim.outputs().is_empty() {
            return;
        }
        for (time, node, out) in self.sim.take_outputs() {
            match out {
                Out::Op(r) => self.records.push(r),
                Out::Admin(r) => self.admin_records.push(r),
                Out::Event(e) => self.events.push((time, node, e)),
                Out::Fail(why) => self.fail(&why),
                Out::Finished(report) => {
                    self.finished.insert(node, report);
                }
                Out::Halted(why) => self.fail(&format!("server {node} halted: {why}")),
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
        for &c in &self.ctrlers {
            if let Some(cs) = self.sim.node(c).and_then(SimNode::ctrler) {
                s += &format!(
                    "ctrler {c}: leader={} latest={}\n",
                    cs.is_leader(),
                    cs.ctrler().latest().num
                );
            } else {
                s += &format!("ctrler {c}: down\n");
            }
        }
        for (gid, members) in &self.groups {
            for &m in members {
                match self.sim.node(m).and_then(SimNode::group) {
                    None => s += &format!("gid {gid} server {m}: down\n"),
                    Some(g) => {
                        let st = g.group();
                        s += &format!(
                            "gid {gid} server {m}: connected={} leader={} num={} shards={:?} stats={:?}\n",
                            self.sim.is_connected(m),
                            g.is_leader(),
                            st.config().num,
                            st.statuses().collect::<Vec<_>>(),
                            g.stats(),
                        );
                    }
                }
            }
        }
        for &c in &self.clients {
            if let Some(cl) = self.sim.node(c).and_then(SimNode::client) {
                s += &format!(
                    "client {c}: in flight {:?} config {:?} stats {:?}\n",
                    cl.in_flight(),
                    cl.clerk.shard_config().map(|c| c.num),
                    cl.clerk.stats()
                );
            }
        }
        s
    }

    // ----- administrators ------------------------------------------------------------------

    pub fn admin_idle(&self, a: NodeId) -> bool {
        self.sim
            .node(a)
            .and_then(SimNode::admin)
            .is_some_and(|n| n.call.is_none())
    }

    /// Starts a controller operation on administrator `a`.
    pub fn admin_start(&mut self, a: NodeId, op: CtrlOp, expect: Option<u64>) {
        self.sim.input(a, In::Admin(op, expect));
        self.drain();
    }

    /// Waits for administrator `a`'s operation (at most `limit`).
    pub fn admin_wait(&mut self, a: NodeId, limit: Time) -> Option<CtrlResult> {
        if !self.run_until(|t| t.admin_idle(a), limit) {
            return None;
        }
        let r = self.admin_records.iter().rev().find(|r| r.admin == a);
        Some(r.expect("the administrator finished").result.clone())
    }

    /// Runs one controller operation on administrator `a` to completion.
    pub fn admin_on(&mut self, a: NodeId, op: CtrlOp) -> CtrlResult {
        self.admin_start(a, op.clone(), None);
        match self.admin_wait(a, 60 * SEC) {
            Some(r) => r,
            None => self.fail(&format!("admin {a}: {op:?} did not finish within 60 s")),
        }
    }

    /// Runs one controller operation on the first administrator.
    pub fn admin(&mut self, op: CtrlOp) -> CtrlResult {
        let a = self.admins[0];
        self.admin_on(a, op)
    }

    /// The latest configuration (the lab's Query(-1)).
    pub fn query(&mut self) -> ShardConfig {
        self.query_num(None)
    }

    pub fn query_num(&mut self, num: Option<u64>) -> ShardConfig {
        match self.admin(CtrlOp::Query { num }) {
            Ok(CtrlOutput::Config(c)) => c,
            other => self.fail(&format!("Query({num:?}) returned {other:?}")),
        }
    }

    /// The servers of `gid`, as addresses.
    pub fn addrs(&self, gid: Gid) -> Vec<Addr> {
        self.groups[&gid].iter().map(|&s| s as Addr).collect()
    }

    /// Joins groups (all at once) and returns the new configuration number.
    pub fn join(&mut self, gids: &[Gid]) -> u64 {
        let groups = gids.iter().map(|&g| (g, self.addrs(g))).collect();
        match self.admin(CtrlOp::Join { groups }) {
            Ok(CtrlOutput::Changed { num }) => num,
            other => self.fail(&format!("Join({gids:?}) returned {other:?}")),
        }
    }

    pub fn leave(&mut self, gids: &[Gid]) -> u64 {
        match self.admin(CtrlOp::Leave {
            gids: gids.to_vec(),
        }) {
            Ok(CtrlOutput::Changed { num }) => num,
            other => self.fail(&format!("Leave({gids:?}) returned {other:?}")),
        }
    }

    // ----- clients ------------------------------------------------------------------------

    pub fn client_idle(&self, ck: NodeId) -> bool {
        self.sim
            .node(ck)
            .and_then(SimNode::client)
            .is_some_and(|c| c.in_flight().is_none())
    }

    pub fn start_op(&mut self, ck: NodeId, op: Op) {
        self.sim.input(ck, In::Do(op));
        self.drain();
    }

    /// Waits (at most `limit`) for client `ck`'s operation; its result, or None.
    pub fn wait_op(&mut self, ck: NodeId, limit: Time) -> Option<KvResult> {
        if !self.run_until(|t| t.client_idle(ck), limit) {
            return None;
        }
        let r = self.records.iter().rev().find(|r| r.client == ck);
        Some(r.expect("the client finished an operation").result.clone())
    }

    /// Runs one operation on client `ck` to completion (the lab's 120 s test limit).
    pub fn op(&mut self, ck: NodeId, op: Op) -> KvResult {
        self.start_op(ck, op.clone());
        match self.wait_op(ck, 120 * SEC) {
            Some(r) => r,
            None => self.fail(&format!("client {ck}: {op:?} did not finish within 120 s")),
        }
    }

    /// The last finished Get of client `ck`, as text ("" for a missing key).
    pub fn get_result(&self, ck: NodeId) -> (String, u64) {
        let r = self.records.iter().rev().find(|r| r.client == ck);
        match r.map(|r| &r.result) {
            Some(Ok(KvOutput::Value { value, version })) => (text(value), *version),
            Some(Err(KvError::NoKey)) => (String::new(), 0),
            other => self.fail(&format!("client {ck}: last Get returned {other:?}")),
        }
    }

    /// Get as text; a missing key reads "" (version 0).
    pub fn get(&mut self, ck: NodeId, key: &str) -> (String, u64) {
        match self.op(ck, Op::get(key.to_owned())) {
            Ok(KvOutput::Value { value, version }) => (text(&value), version),
            Err(KvError::NoKey) => (String::new(), 0),
            other => self.fail(&format!("Get({key}) returned {other:?}")),
        }
    }

    pub fn check_get(&mut self, ck: NodeId, key: &str, want: &str) {
        let (got, _) = self.get(ck, key);
        if got != want {
            let at = got
                .bytes()
                .zip(want.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            let show = |s: &str| {
                s.get(at.saturating_sub(20)..)
                    .unwrap_or("")
                    .chars()
                    .take(60)
                    .collect::<String>()
            };
            self.fail(&format!(
                "Get({key}): {} bytes, expected {}; they differ from byte {at}: got ...{:?}, expected ...{:?}",
                got.len(),
                want.len(),
                show(&got),
                show(want),
            ));
        }
    }

    pub fn put(&mut self, ck: NodeId, key: &str, value: &str) {
        if let Err(e) = self.op(ck, Op::put_any(key.to_owned(), value.to_owned())) {
            self.fail(&format!("Put({key}) failed: {e:?}"));
        }
    }

    pub fn append(&mut self, ck: NodeId, key: &str, value: &str) {
        if let Err(e) = self.op(ck, Op::append(key.to_owned(), value.to_owned())) {
            self.fail(&format!("Append({key}) failed: {e:?}"));
        }
    }

    // ----- servers ------------------------------------------------------------------------

    pub fn shutdown_server(&mut self, i: NodeId) {
        self.sim.disconnect(i);
        self.sim.crash(i);
    }

    pub fn start_server(&mut self, i: NodeId) {
        self.sim.restart(i);
        self.sim.connect(i);
    }

    pub fn shutdown_group(&mut self, gid: Gid) {
        for s in self.groups[&gid].clone() {
            self.shutdown_server(s);
        }
    }

    pub fn start_group(&mut self, gid: Gid) {
        for s in self.groups[&gid].clone() {
            if !self.sim.is_up(s) {
                self.start_server(s);
            }
        }
    }

    /// The first up controller server that believes it leads, if any.
    pub fn ctrler_leader(&self) -> Option<NodeId> {
        self.ctrlers.iter().copied().find(|&s| {
            self.sim
                .node(s)
                .and_then(SimNode::ctrler)
                .is_some_and(|c| c.is_leader())
        })
    }

    /// The leader of `gid` among up servers, if any.
    pub fn group_leader(&self, gid: Gid) -> Option<NodeId> {
        self.groups[&gid]
            .iter()
            .copied()
            .filter(|&s| self.sim.is_connected(s))
            .filter_map(|s| {
                let g = self.sim.node(s)?.group()?;
                g.is_leader().then(|| (g.rsm().raft().term(), s))
            })
            .max()
            .map(|(_, s)| s)
    }

    /// The lab's checklogs: every group server's Raft state ≤ 8 × maxraftstate.
    pub fn check_logs(&self) {
        let Some(max) = self.setup.max_raft_state else {
            for members in self.groups.values() {
                for &s in members {
                    if self.sim.durable(s).snapshot_size() > 0 {
                        self.fail(&format!("server {s} snapshotted with maxraftstate -1"));
                    }
                }
            }
            return;
        };
        for members in self.groups.values() {
            for &s in members {
                let size = self.sim.durable(s).raft_state_size();
                if size > 8 * max {
                    self.fail(&format!(
                        "server {s}: raft state {size} > 8 × maxraftstate {max}"
                    ));
                }
            }
        }
    }

    /// Persisted bytes (Raft state + snapshot) of one group, summed over its servers.
    pub fn group_persisted(&self, gid: Gid) -> usize {
        self.groups[&gid]
            .iter()
            .map(|&s| {
                let d = self.sim.durable(s);
                d.raft_state_size() + d.snapshot_size()
            })
            .sum()
    }

    /// Largest persisted state (Raft state + snapshot, as the simulator's storage holds
    /// it) of one server of `gid`: the lab's per-group snapshot size, plus the log.
    pub fn group_persisted_max(&self, gid: Gid) -> usize {
        self.groups[&gid]
            .iter()
            .map(|&s| {
                let d = self.sim.durable(s);
                d.raft_state_size() + d.snapshot_size()
            })
            .max()
            .unwrap_or(0)
    }

    /// Largest snapshot a server of `gid` would take now (the state it holds).
    pub fn group_live_snapshot(&self, gid: Gid) -> usize {
        self.groups[&gid]
            .iter()
            .filter_map(|&s| {
                self.sim
                    .node(s)?
                    .group()
                    .map(|g| g.rsm().encode_snapshot().len())
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether every up group server is stable in configuration `num` or later.
    pub fn groups_settled(&self, num: u64) -> bool {
        self.groups.values().flatten().all(|&s| {
            self.sim
                .node(s)
                .and_then(SimNode::group)
                .is_none_or(|g| g.group().config().num >= num && g.group().is_stable())
        })
    }

    /// Waits until every up group server is stable in configuration `num` or later.
    pub fn wait_settled(&mut self, num: u64, limit: Time) {
        if !self.run_until(|t| t.groups_settled(num), limit) {
            self.fail(&format!("groups did not settle in configuration {num}"));
        }
    }

    // ----- checks -------------------------------------------------------------------------

    fn in_flight(&self) -> Vec<(NodeId, Op, Time)> {
        self.clients
            .iter()
            .filter_map(|&ck| {
                let c = self.sim.node(ck)?.client()?;
                c.in_flight().map(|(call, op)| (ck, op.clone(), *call))
            })
            .collect()
    }

    /// Checks the history of Get/Put/Append operations (2020-2024 model).
    pub fn check_legacy(&self) {
        self.verdict(kv_history::check_legacy(
            &self.records,
            self.in_flight(),
            Duration::from_secs(30),
        ));
    }

    /// Checks the history of versioned operations (2025 model).
    pub fn check_versioned(&self) {
        self.verdict(kv_history::check_versioned(
            &self.records,
            self.in_flight(),
            Duration::from_secs(30),
        ));
    }

    /// Checks the administrators' history against one copy of the controller.
    pub fn check_ctrler(&self) {
        let mut h: History<CtrlCommand, CtrlResult> = History::new();
        for r in &self.admin_records {
            let input = CtrlCommand {
                op: r.op.clone(),
                expect: r.expect,
            };
            h.push(match &r.result {
                Err(CtrlError::Timeout) => Operation::pending(r.admin as u64, input, r.call),
                out => Operation::complete(r.admin as u64, input, r.call, out.clone(), r.ret),
            });
        }
        for &a in &self.admins {
            let call = self
                .sim
                .node(a)
                .and_then(SimNode::admin)
                .and_then(|n| n.call.clone());
            if let Some((call, op, expect)) = call {
                h.push(Operation::pending(
                    a as u64,
                    CtrlCommand { op, expect },
                    call,
                ));
            }
        }
        let model = CtrlerModel(self.setup.nshards);
        self.verdict(check(&model, &h, Some(Duration::from_secs(30))));
    }

    fn verdict(&self, result: CheckResult) {
        // The lab treats a checker timeout as a pass; we do not: make histories small
        // enough to decide.
        if let Some(failure) = kv_history::verdict_failure(result, self.records.len()) {
            self.fail(&failure);
        }
    }
}

/// The controller as a sequential specification: one copy of the state machine.
pub struct CtrlerModel(pub usize);

impl Model for CtrlerModel {
    type State = Ctrler;
    type Input = CtrlCommand;
    type Output = CtrlResult;
    type Key = ();

    fn init(&self) -> Ctrler {
        Ctrler::new(self.0)
    }

    fn step(
        &self,
        state: &Ctrler,
        input: &CtrlCommand,
        output: Option<&CtrlResult>,
    ) -> Option<Ctrler> {
        let mut next = state.clone();
        let got = next.apply_command(input.clone());
        match output {
            Some(out) if *out != got => None,
            _ => Some(next),
        }
    }

    fn partition(&self, _input: &CtrlCommand) {}

    fn is_read_only(&self, input: &CtrlCommand, _output: Option<&CtrlResult>) -> bool {
        input.op.is_read()
    }
}

/// For each shard, the first key `"{prefix}{i}"` that falls in it: one key per shard, as
/// the 2020-2024 lab's keys "0".."9" were with its first-byte hash.
pub fn key_per_shard(nshards: usize, prefix: &str) -> Vec<String> {
    (0..nshards)
        .map(|s| {
            (0..)
                .map(|i| format!("{prefix}{i}"))
                .find(|k| key_to_shard(k.as_bytes(), nshards) == s)
                .expect("some key falls in every shard")
        })
        .collect()
}

/// A random printable string of `n` characters.
pub fn rand_string(rng: &mut Rand64, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'a' + rng.rand_range(0..26) as u8))
        .collect()
}
