//! `shard-demo`: a sharded key/value service in one process: a 3-server shard controller,
//! several 3-server replica groups and a few clients, all sans-IO cores driven by the
//! deterministic simulator.
//!
//! Clients append to keys all the time. Groups join and leave (from a script, or typed
//! in with `--interactive`), and every shard migration prints one line as it happens.
//! At the end every client's appends are read back: each must be there exactly once.
//!
//! ```text
//! cargo run --release -p stepwise-examples --bin shard-demo
//! cargo run --release -p stepwise-examples --bin shard-demo -- --script "join 1; run 2; join 2 3; run 2; leave 1; run 3"
//! cargo run --release -p stepwise-examples --bin shard-demo -- --interactive
//! ```
//!
//! Commands (separated by `;` or newlines): `join <gid>...`, `leave <gid>...`,
//! `move <shard> <gid>`, `crash <gid>` (shut a whole group down), `restart <gid>`,
//! `run <seconds>` (let virtual time pass), `show` (the latest configuration), `quit`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use anyhow::{Context, Result, bail};
use clap::Parser;
use stepwise_kv::{KvError, KvOutput, KvResult, Op, Reply, Request, RsmConfig};
use stepwise_raft::{Action as RaftAction, Config, Message, Persisted};
use stepwise_shard::client::{self, ShardClerk, ShardClerkConfig};
use stepwise_shard::config::{Addr, Gid, ShardConfig};
use stepwise_shard::ctrler::clerk::{self as cclerk, CtrlerClerk, CtrlerClerkConfig};
use stepwise_shard::ctrler::server::{self as cserver, CtrlerServer};
use stepwise_shard::ctrler::{CtrlOp, CtrlOutput, CtrlResult};
use stepwise_shard::group::server::{self as gserver, GroupConfig, GroupEvent, GroupServer};
use stepwise_shard::message::{CtrlReply, CtrlRequest, PeerMsg};
use stepwise_sim::{Effect, MS, NetConfig, NodeId, SEC, Sim, SimConfig, Time};

/// A sharded KV service (controller, groups, clients) in the deterministic simulator.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Seed of the run: the same seed and commands replay the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of replica groups available (gids 1..=groups).
    #[arg(long, default_value_t = 4)]
    groups: u64,
    /// Number of clients appending concurrently.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Commands to run (see the module docs); the default joins and leaves groups.
    #[arg(
        long,
        default_value = "join 1; run 2; join 2; run 2; join 3 4; run 3; leave 1; run 2; \
                         leave 2 3; run 3; join 1; run 3"
    )]
    script: String,
    /// Read commands from standard input instead of `--script`.
    #[arg(long)]
    interactive: bool,
    /// Use the lab's unreliable network (10% loss, 0-26 ms delay).
    #[arg(long)]
    unreliable: bool,
}

#[derive(Clone, Debug)]
enum Msg {
    Raft(Message),
    CtrlReq(CtrlRequest),
    CtrlRep(CtrlReply),
    Req(Request),
    Rep(Reply),
    Peer(PeerMsg),
}

/// What the demo tells a process.
#[derive(Debug)]
enum Cmd {
    /// An administrator runs a controller operation.
    Admin(CtrlOp),
    /// A client starts appending.
    Start,
    /// A client stops after its current append.
    Stop,
    /// An idle client reads a key.
    Get(String),
}

#[derive(Debug)]
enum Out {
    Event(GroupEvent),
    Done {
        latency: Time,
        op: Op,
        result: KvResult,
    },
    Admin(CtrlResult),
}

/// A client that appends `x <me> <n> y` to one of 20 keys, one append at a time.
struct Appender {
    me: u64,
    clerk: ShardClerk,
    n: u64,
    running: bool,
    started: Time,
    in_flight: Option<Op>,
}

enum Proc {
    Ctrler(Box<CtrlerServer>),
    Group(Box<GroupServer>),
    Client(Box<Appender>),
    Admin(Box<CtrlerClerk>),
}

type Fx = Vec<Effect<Proc>>;

fn send(out: &mut Fx, to: Addr, msg: Msg) {
    out.push(Effect::Send {
        to: to as NodeId,
        msg,
    });
}

impl Proc {
    fn ctrler(s: &mut CtrlerServer, input: cserver::Input, out: &mut Fx) {
        for a in s.step(input) {
            match a {
                cserver::Action::Persist(p) => out.push(Effect::Write(p)),
                cserver::Action::Send { to, msg } => send(out, to, Msg::Raft(msg)),
                cserver::Action::Reply { to, reply } => send(out, to, Msg::CtrlRep(reply)),
                cserver::Action::Halted(why) => panic!("controller halted: {why}"),
            }
        }
    }

    fn group(s: &mut GroupServer, input: gserver::Input, out: &mut Fx) {
        for a in s.step(input) {
            match a {
                gserver::Action::Persist(p) => out.push(Effect::Write(p)),
                gserver::Action::Send { to, msg } => send(out, to, Msg::Raft(msg)),
                gserver::Action::Reply { to, reply } => send(out, to, Msg::Rep(reply)),
                gserver::Action::SendPeer { to, msg } => send(out, to, Msg::Peer(msg)),
                gserver::Action::SendCtrler { to, request } => send(out, to, Msg::CtrlReq(request)),
                gserver::Action::Event(e) => out.push(Effect::Output(Out::Event(e))),
                gserver::Action::Halted(why) => panic!("group server halted: {why}"),
            }
        }
    }

    fn admin(c: &mut CtrlerClerk, input: cclerk::Input, out: &mut Fx) {
        for a in c.step(input) {
            match a {
                cclerk::Action::Send { to, request } => send(out, to, Msg::CtrlReq(request)),
                cclerk::Action::Done(result) => out.push(Effect::Output(Out::Admin(result))),
            }
        }
    }
}

impl Appender {
    fn step(&mut self, now: Time, input: client::Input, out: &mut Fx) {
        for a in self.clerk.step(input) {
            match a {
                client::Action::Send { to, request } => send(out, to, Msg::Req(request)),
                client::Action::SendCtrler { to, request } => send(out, to, Msg::CtrlReq(request)),
                client::Action::Done(result) => {
                    let op = self
                        .in_flight
                        .take()
                        .expect("a result answers an operation");
                    out.push(Effect::Output(Out::Done {
                        latency: now - self.started,
                        op,
                        result,
                    }));
                    self.next(now, out);
                }
            }
        }
    }

    fn next(&mut self, now: Time, out: &mut Fx) {
        if !self.running || self.in_flight.is_some() {
            return;
        }
        let op = Op::append(
            format!("key-{}", (self.me * 7 + self.n) % 20),
            format!("x {} {} y", self.me, self.n),
        );
        self.n += 1;
        self.in_flight = Some(op.clone());
        self.started = now;
        self.step(now, client::Input::Start(op), out);
    }
}

impl stepwise_sim::Node for Proc {
    type Msg = Msg;
    type Input = Cmd;
    type Output = Out;
    type Durable = Persisted;
    type Write = RaftAction;

    fn on_tick(&mut self, now: Time, out: &mut Fx) {
        match self {
            Proc::Ctrler(s) => Proc::ctrler(s, cserver::Input::Tick, out),
            Proc::Group(s) => Proc::group(s, gserver::Input::Tick, out),
            Proc::Client(c) => {
                c.step(now, client::Input::Tick, out);
                c.next(now, out);
            }
            Proc::Admin(c) => Proc::admin(c, cclerk::Input::Tick, out),
        }
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Fx) {
        let from = from as Addr;
        match (self, msg) {
            (Proc::Ctrler(s), Msg::Raft(msg)) => {
                Proc::ctrler(s, cserver::Input::Receive { from, msg }, out)
            }
            (Proc::Ctrler(s), Msg::CtrlReq(request)) => {
                Proc::ctrler(s, cserver::Input::Request { from, request }, out)
            }
            (Proc::Group(s), Msg::Raft(msg)) => {
                Proc::group(s, gserver::Input::Receive { from, msg }, out)
            }
            (Proc::Group(s), Msg::Req(request)) => {
                Proc::group(s, gserver::Input::Request { from, request }, out)
            }
            (Proc::Group(s), Msg::Peer(msg)) => {
                Proc::group(s, gserver::Input::Peer { from, msg }, out)
            }
            (Proc::Group(s), Msg::CtrlRep(reply)) => {
                Proc::group(s, gserver::Input::Ctrler { from, reply }, out)
            }
            (Proc::Client(c), Msg::Rep(reply)) => {
                c.step(now, client::Input::Receive { from, reply }, out)
            }
            (Proc::Client(c), Msg::CtrlRep(reply)) => {
                c.step(now, client::Input::Ctrler { from, reply }, out)
            }
            (Proc::Admin(c), Msg::CtrlRep(reply)) => {
                Proc::admin(c, cclerk::Input::Receive { from, reply }, out)
            }
            _ => {}
        }
    }

    fn on_input(&mut self, now: Time, input: Cmd, out: &mut Fx) {
        match (self, input) {
            (Proc::Admin(c), Cmd::Admin(op)) => {
                Proc::admin(c, cclerk::Input::Start { op, expect: None }, out)
            }
            (Proc::Client(c), Cmd::Start) => {
                c.running = true;
                c.next(now, out);
            }
            (Proc::Client(c), Cmd::Stop) => c.running = false,
            (Proc::Client(c), Cmd::Get(key)) if c.in_flight.is_none() => {
                let op = Op::get(key);
                c.in_flight = Some(op.clone());
                c.started = now;
                c.step(now, client::Input::Start(op), out);
            }
            _ => {}
        }
    }

    fn write(durable: &mut Persisted, write: RaftAction) {
        durable.apply(&write);
    }

    fn wire_size(msg: &Msg) -> usize {
        match msg {
            Msg::Raft(m) => postcard::experimental::serialized_size(m),
            Msg::CtrlReq(m) => postcard::experimental::serialized_size(m),
            Msg::CtrlRep(m) => postcard::experimental::serialized_size(m),
            Msg::Req(m) => postcard::experimental::serialized_size(m),
            Msg::Rep(m) => postcard::experimental::serialized_size(m),
            Msg::Peer(m) => postcard::experimental::serialized_size(m),
        }
        .unwrap_or(0)
    }
}

/// The demo's world: node layout and what it has seen.
struct Demo {
    sim: Sim<Proc>,
    groups: BTreeMap<Gid, Vec<NodeId>>,
    clients: Vec<NodeId>,
    admin: NodeId,
    /// Migrations already printed (every replica reports each one).
    printed: BTreeSet<(Gid, u64, u32, bool)>,
    /// What each client appended, per key, in order.
    appended: BTreeMap<String, Vec<String>>,
    ops: u64,
    latency_sum: Time,
    last_admin: Option<CtrlResult>,
    last_read: Option<String>,
}

fn secs(t: Time) -> String {
    format!("{:>7.2}s", t as f64 / SEC as f64)
}

impl Demo {
    fn new(args: &Args) -> Demo {
        let nctrl = 3usize;
        let mut roles: Vec<(u8, Gid, Vec<NodeId>)> = Vec::new(); // (kind, gid, members)
        let ctrlers: Vec<NodeId> = (0..nctrl).collect();
        for _ in &ctrlers {
            roles.push((0, 0, ctrlers.clone()));
        }
        let mut groups = BTreeMap::new();
        for gid in 1..=args.groups {
            let members: Vec<NodeId> = (roles.len()..roles.len() + 3).collect();
            for _ in &members {
                roles.push((1, gid, members.clone()));
            }
            groups.insert(gid, members);
        }
        let clients: Vec<NodeId> = (roles.len()..roles.len() + args.clients).collect();
        for _ in &clients {
            roles.push((2, 0, Vec::new()));
        }
        let admin = roles.len();
        roles.push((3, 0, Vec::new()));
        let mut config = SimConfig::with_seed(args.seed);
        config.net = if args.unreliable {
            NetConfig::unreliable()
        } else {
            NetConfig::reliable()
        };
        let ctrl_addrs: Vec<Addr> = ctrlers.iter().map(|&c| c as Addr).collect();
        let sim = Sim::new(config, roles.len(), move |id, durable: &Persisted, seed| {
            let (kind, gid, members) = &roles[id];
            let raft = || {
                let members: Vec<u64> = members.iter().map(|&m| m as u64).collect();
                RsmConfig::new(Config::new(id as u64, members).with_seed(seed))
                    .with_max_raft_state(Some(64 * 1024))
            };
            match kind {
                0 => Proc::Ctrler(Box::new(
                    CtrlerServer::restore(raft(), durable.clone(), 10).expect("controller"),
                )),
                1 => Proc::Group(Box::new(
                    GroupServer::restore(
                        GroupConfig::new(*gid, raft(), ctrl_addrs.clone()),
                        durable.clone(),
                    )
                    .expect("group server"),
                )),
                2 => Proc::Client(Box::new(Appender {
                    me: id as u64,
                    clerk: ShardClerk::new(ShardClerkConfig::new(id as u64, ctrl_addrs.clone())),
                    n: 0,
                    running: false,
                    started: 0,
                    in_flight: None,
                })),
                _ => Proc::Admin(Box::new(CtrlerClerk::new(CtrlerClerkConfig::new(
                    id as u64,
                    ctrl_addrs.clone(),
                )))),
            }
        });
        Demo {
            sim,
            groups,
            clients,
            admin,
            printed: BTreeSet::new(),
            appended: BTreeMap::new(),
            ops: 0,
            latency_sum: 0,
            last_admin: None,
            last_read: None,
        }
    }

    /// Runs `d` of virtual time, printing migrations and client progress.
    fn run(&mut self, d: Time) {
        let end = self.sim.now() + d;
        while self.sim.now() < end {
            let slice = (end - self.sim.now()).min(500 * MS);
            self.sim.run_for(slice);
            self.drain();
            if self.ops > 0 {
                println!(
                    "{}   clients: {} appends, mean latency {:.1} ms",
                    secs(self.sim.now()),
                    self.ops,
                    self.latency_sum as f64 / self.ops as f64 / MS as f64
                );
            }
            self.ops = 0;
            self.latency_sum = 0;
        }
    }

    fn drain(&mut self) {
        for (t, node, out) in self.sim.take_outputs() {
            match out {
                Out::Event(GroupEvent::ShardIn {
                    num,
                    shard,
                    from,
                    keys,
                    bytes,
                }) => {
                    let gid = self.gid_of(node);
                    if self.printed.insert((gid, num, shard, true)) {
                        println!(
                            "{} migrate: shard {shard} gid {from} -> gid {gid} ({keys} keys, {bytes} bytes), configuration {num}",
                            secs(t)
                        );
                    }
                }
                Out::Event(GroupEvent::ShardOut { num, shard, to }) => {
                    let gid = self.gid_of(node);
                    if self.printed.insert((gid, num, shard, false)) {
                        println!(
                            "{} gc:      gid {gid} deleted its copy of shard {shard} (now on gid {to})",
                            secs(t)
                        );
                    }
                }
                Out::Event(GroupEvent::Config { .. }) => {}
                Out::Done {
                    latency,
                    op,
                    result,
                } => {
                    if let (Op::Get { .. }, result) = (&op, &result) {
                        self.last_read = Some(match result {
                            Ok(KvOutput::Value { value, .. }) => {
                                String::from_utf8_lossy(value).into_owned()
                            }
                            Err(KvError::NoKey) => String::new(),
                            other => format!("<{other:?}>"),
                        });
                    }
                    if let (Op::Append { key, value, .. }, Ok(_)) = (&op, &result) {
                        self.appended
                            .entry(String::from_utf8_lossy(key).into_owned())
                            .or_default()
                            .push(String::from_utf8_lossy(value).into_owned());
                        self.ops += 1;
                        self.latency_sum += latency;
                    }
                }
                Out::Admin(result) => self.last_admin = Some(result),
            }
        }
    }

    fn gid_of(&self, node: NodeId) -> Gid {
        self.groups
            .iter()
            .find(|(_, m)| m.contains(&node))
            .map_or(0, |(&g, _)| g)
    }

    /// Runs one administrator operation to completion (at most 30 s of virtual time).
    fn admin(&mut self, op: CtrlOp) -> Result<CtrlOutput> {
        self.last_admin = None;
        self.sim.input(self.admin, Cmd::Admin(op.clone()));
        let end = self.sim.now() + 30 * SEC;
        while self.last_admin.is_none() && self.sim.now() < end {
            self.sim.run_for(MS);
            self.drain();
        }
        match self.last_admin.take() {
            Some(Ok(out)) => Ok(out),
            Some(Err(e)) => bail!("{op:?}: {e}"),
            None => bail!("{op:?}: no answer from the controller"),
        }
    }

    fn latest(&mut self) -> Result<ShardConfig> {
        match self.admin(CtrlOp::latest())? {
            CtrlOutput::Config(c) => Ok(c),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    fn show(&mut self) -> Result<()> {
        let c = self.latest()?;
        let mut line = format!("{} configuration {}:", secs(self.sim.now()), c.num);
        for gid in c.groups.keys() {
            let shards: Vec<String> = c.shards_of(*gid).map(|s| s.to_string()).collect();
            line += &format!("  gid {gid} [{}]", shards.join(" "));
        }
        if c.groups.is_empty() {
            line += "  no groups";
        }
        println!("{line}");
        Ok(())
    }

    fn addrs(&self, gid: Gid) -> Result<Vec<Addr>> {
        let members = self
            .groups
            .get(&gid)
            .with_context(|| format!("there is no group {gid} (see --groups)"))?;
        Ok(members.iter().map(|&m| m as Addr).collect())
    }

    /// Carries out one command; returns false on `quit`.
    fn command(&mut self, line: &str) -> Result<bool> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let nums = |from: usize| -> Result<Vec<u64>> {
            words[from..]
                .iter()
                .map(|w| w.parse().with_context(|| format!("{w:?} is not a number")))
                .collect()
        };
        match words.first().copied() {
            None => {}
            Some("quit" | "exit") => return Ok(false),
            Some("run") => {
                let s: f64 = words
                    .get(1)
                    .unwrap_or(&"1")
                    .parse()
                    .context("run <seconds>")?;
                self.run((s * SEC as f64) as Time);
            }
            Some("show") => self.show()?,
            Some("join") => {
                let mut groups = BTreeMap::new();
                for gid in nums(1)? {
                    groups.insert(gid, self.addrs(gid)?);
                }
                println!(
                    "{} admin:   join {:?}",
                    secs(self.sim.now()),
                    groups.keys().collect::<Vec<_>>()
                );
                self.admin(CtrlOp::Join { groups })?;
                self.show()?;
            }
            Some("leave") => {
                let gids = nums(1)?;
                println!("{} admin:   leave {gids:?}", secs(self.sim.now()));
                self.admin(CtrlOp::Leave { gids })?;
                self.show()?;
            }
            Some("move") => {
                let n = nums(1)?;
                let [shard, gid] = n[..] else {
                    bail!("move <shard> <gid>");
                };
                println!(
                    "{} admin:   move shard {shard} to gid {gid}",
                    secs(self.sim.now())
                );
                self.admin(CtrlOp::Move {
                    shard: u32::try_from(shard).context("shard")?,
                    gid,
                })?;
                self.show()?;
            }
            Some("crash") => {
                for gid in nums(1)? {
                    for s in self.groups.get(&gid).cloned().unwrap_or_default() {
                        self.sim.disconnect(s);
                        self.sim.crash(s);
                    }
                    println!(
                        "{} fault:   gid {gid} shut down (disks kept)",
                        secs(self.sim.now())
                    );
                }
            }
            Some("restart") => {
                for gid in nums(1)? {
                    for s in self.groups.get(&gid).cloned().unwrap_or_default() {
                        if !self.sim.is_up(s) {
                            self.sim.restart(s);
                            self.sim.connect(s);
                        }
                    }
                    println!(
                        "{} heal:    gid {gid} restarted from its disks",
                        secs(self.sim.now())
                    );
                }
            }
            Some(other) => bail!("unknown command {other:?}"),
        }
        Ok(true)
    }

    /// Stops the clients, restarts every group, reads every key back and checks that
    /// each append is there exactly once, in order.
    fn verify(&mut self) -> Result<()> {
        for c in self.clients.clone() {
            self.sim.input(c, Cmd::Stop);
        }
        for members in self.groups.values() {
            for &s in members {
                if !self.sim.is_up(s) {
                    self.sim.restart(s);
                    self.sim.connect(s);
                }
            }
        }
        self.run(2 * SEC);
        self.ops = 0;
        let reader = self.clients.first().copied().context("no clients")?;
        let keys: Vec<String> = self.appended.keys().cloned().collect();
        let mut checked = 0;
        for key in keys {
            let got = self.read(reader, &key)?;
            // Every acknowledged append is there exactly once, and nothing else is.
            let parts = &self.appended[&key];
            for part in parts {
                let n = got.matches(part.as_str()).count();
                if n != 1 {
                    bail!("key {key}: append {part:?} appears {n} times");
                }
            }
            let len: usize = parts.iter().map(String::len).sum();
            if got.len() != len {
                bail!(
                    "key {key}: {} bytes, but the appends add up to {len}",
                    got.len()
                );
            }
            checked += parts.len();
        }
        println!(
            "{} verified: {checked} acknowledged appends, each present exactly once",
            secs(self.sim.now())
        );
        Ok(())
    }

    /// Reads `key` through client `reader` (at most 30 s of virtual time).
    fn read(&mut self, reader: NodeId, key: &str) -> Result<String> {
        self.last_read = None;
        self.sim.input(reader, Cmd::Get(key.to_owned()));
        let end = self.sim.now() + 30 * SEC;
        while self.last_read.is_none() && self.sim.now() < end {
            self.sim.run_for(MS);
            self.drain();
        }
        self.last_read
            .take()
            .with_context(|| format!("Get({key}) did not finish"))
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(1..=20).contains(&args.groups) || !(1..=50).contains(&args.clients) {
        bail!("--groups must be 1..=20 and --clients 1..=50");
    }
    let mut demo = Demo::new(&args);
    println!(
        "shard-demo: 3 controller servers, {} groups of 3 (gids 1..={}), {} clients, 10 shards, seed {}",
        args.groups, args.groups, args.clients, args.seed
    );
    for c in demo.clients.clone() {
        demo.sim.input(c, Cmd::Start);
    }
    if args.interactive {
        println!(
            "commands: join <gid>.. | leave <gid>.. | move <shard> <gid> | crash <gid> | restart <gid> | run <s> | show | quit"
        );
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            match demo.command(&line) {
                Ok(true) => demo.run(SEC / 2),
                Ok(false) => break,
                Err(e) => println!("error: {e:#}"),
            }
        }
    } else {
        for cmd in args.script.split([';', '\n']) {
            println!("> {}", cmd.trim());
            if !demo.command(cmd)? {
                break;
            }
        }
    }
    demo.verify()
}
