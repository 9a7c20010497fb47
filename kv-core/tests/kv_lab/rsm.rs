//! The 2025 rsm lab (`kvraft1/rsm`, 4A; LAB-SCENARIOS.md 6.1): the replicated-state-
//! machine layer with the lab's counter (Inc returns the new value, Null changes nothing,
//! Dec must never execute), driven directly by the tester as the lab's `Submit` calls.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stepwise_kv::rsm::{self, Rsm, RsmConfig, StateMachine, Submission, SubmitError};
use stepwise_raft::{Action as RaftAction, Message, Persisted};
use stepwise_sim::{Effect, Harness, MS, NetConfig, NodeId, SEC, Sim, SimConfig, Time, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::raft_config;

/// NSRV.
const NSRV: usize = 3;
/// NSEC: how long a submission is retried.
const NSEC: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Cmd {
    Inc,
    Null,
    Dec,
}

/// The lab's test state machine.
#[derive(Debug, Default)]
struct Counter {
    n: u64,
    /// Decs executed (the lab treats executing one as fatal).
    decs: u64,
}

impl StateMachine for Counter {
    type Command = Cmd;
    type Decoded<'a> = Cmd;
    type Query = ();
    type Output = u64;

    fn apply(&mut self, cmd: Cmd) -> u64 {
        match cmd {
            Cmd::Inc => self.n += 1,
            Cmd::Null => {}
            Cmd::Dec => self.decs += 1,
        }
        self.n
    }
    fn query(&self, _: &()) -> u64 {
        self.n
    }
    fn snapshot(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.n.to_le_bytes());
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.n = u64::from_le_bytes(data.try_into().map_err(|_| "bad counter snapshot")?);
        Ok(())
    }
}

/// One server: the layer with the counter.
struct RsmServer {
    rsm: Rsm<Counter, u64>,
    actions: Vec<rsm::Action<u64, u64>>,
}

#[derive(Debug)]
struct Submit {
    tag: u64,
    cmd: Cmd,
}

impl stepwise_sim::Node for RsmServer {
    type Msg = Message;
    type Input = Submit;
    type Output = (u64, Result<u64, SubmitError>);
    type Durable = Persisted;
    type Write = RaftAction;

    fn on_tick(&mut self, _now: Time, out: &mut Vec<Effect<Self>>) {
        self.run(rsm::Input::Tick, out);
    }
    fn on_message(&mut self, _now: Time, from: NodeId, msg: Message, out: &mut Vec<Effect<Self>>) {
        self.run(
            rsm::Input::Receive {
                from: from as u64,
                msg,
            },
            out,
        );
    }
    fn on_input(&mut self, _now: Time, s: Submit, out: &mut Vec<Effect<Self>>) {
        self.run(rsm::Input::Submit(Submission::new(s.tag, s.cmd)), out);
    }
    fn write(durable: &mut Persisted, write: RaftAction) {
        durable.apply(&write);
    }
    fn wire_size(msg: &Message) -> usize {
        postcard::experimental::serialized_size(msg).unwrap_or(0)
    }
}

impl RsmServer {
    fn run(&mut self, input: rsm::Input<Cmd, (), u64>, out: &mut Vec<Effect<Self>>) {
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        self.rsm.step_into(input, &mut actions);
        for a in actions.drain(..) {
            match a {
                rsm::Action::Persist(p) => out.push(Effect::Write(p)),
                rsm::Action::Send { to, msg } => out.push(Effect::Send {
                    to: to as NodeId,
                    msg,
                }),
                rsm::Action::Reply { tag, result } => out.push(Effect::Output((tag, result))),
                rsm::Action::LeaderChanged { .. } => {}
                rsm::Action::Halted(why) => panic!("halted: {why}"),
            }
        }
        self.actions = actions;
    }
}

/// A submission in progress: where it was submitted and when.
struct Outstanding {
    server: NodeId,
    at: Time,
}

/// The rsm tester.
struct RsmTester {
    sim: Sim<RsmServer>,
    next_tag: u64,
    outstanding: BTreeMap<u64, Outstanding>,
    /// Finished submissions: tag -> (result, time).
    results: BTreeMap<u64, (Result<u64, SubmitError>, Time)>,
    leader: NodeId,
}

impl Harness for RsmTester {
    type Node = RsmServer;

    fn sim_mut(&mut self) -> &mut Sim<RsmServer> {
        &mut self.sim
    }

    fn absorb(&mut self) {
        self.drain();
    }
}

impl RsmTester {
    fn new(max_raft_state: Option<usize>, seed: u64) -> RsmTester {
        let mut config = SimConfig::with_seed(seed);
        config.net = NetConfig::reliable();
        let sim = Sim::new(config, NSRV, move |id, durable: &Persisted, seed| {
            let cfg =
                RsmConfig::new(raft_config(id, NSRV, seed)).with_max_raft_state(max_raft_state);
            RsmServer {
                rsm: Rsm::restore(cfg, durable.clone(), Counter::default()).expect("restore"),
                actions: Vec::new(),
            }
        });
        RsmTester {
            sim,
            next_tag: 0,
            outstanding: BTreeMap::new(),
            results: BTreeMap::new(),
            leader: 0,
        }
    }

    fn drain(&mut self) {
        for (t, _, (tag, result)) in self.sim.take_outputs() {
            if self.outstanding.remove(&tag).is_some() {
                self.results.insert(tag, (result, t));
            }
        }
        // Submissions to a crashed server return (the lab's Kill closes applyCh).
        let now = self.sim.now();
        let dead: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, o)| !self.sim.is_up(o.server))
            .map(|(&t, _)| t)
            .collect();
        for tag in dead {
            self.outstanding.remove(&tag);
            let err = Err(SubmitError::NotLeader { leader: None });
            self.results.insert(tag, (err, now));
        }
        for s in 0..NSRV {
            if let Some(n) = self.sim.node(s) {
                assert_eq!(n.rsm.state().decs, 0, "server {s} executed a Dec");
            }
        }
    }

    /// Starts a Submit on server `s`; returns its tag.
    fn submit(&mut self, s: NodeId, cmd: Cmd) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.outstanding.insert(
            tag,
            Outstanding {
                server: s,
                at: self.sim.now(),
            },
        );
        if !self.sim.input(s, Submit { tag, cmd }) {
            self.drain();
        }
        tag
    }

    /// The lab's onePartition: for up to 10 s, Submit to the servers (of `p`, or all
    /// connected ones) starting from the last leader, until one returns OK.
    fn one_partition(&mut self, p: Option<&[NodeId]>, cmd: Cmd) -> Option<u64> {
        let t0 = self.sim.now();
        while self.sim.now() - t0 < NSEC * SEC {
            for k in 0..NSRV {
                let s = (self.leader + k) % NSRV;
                if !self.sim.is_connected(s) || p.is_some_and(|p| !p.contains(&s)) {
                    continue;
                }
                let tag = self.submit(s, cmd);
                // Submit blocks until its outcome is known.
                self.run_until(|t| t.results.contains_key(&tag), 120 * SEC);
                if let Some((Ok(v), _)) = self.results.get(&tag) {
                    self.leader = s;
                    return Some(*v);
                }
            }
            self.sleep(50 * MS);
        }
        None
    }

    fn inc(&mut self) -> u64 {
        match self.one_partition(None, Cmd::Inc) {
            Some(v) => v,
            None => panic!("Inc did not succeed within {NSEC} s"),
        }
    }

    fn counters(&self) -> Vec<Option<u64>> {
        (0..NSRV)
            .map(|s| self.sim.node(s).map(|n| n.rsm.state().n))
            .collect()
    }

    /// The lab's checkCounter: up to 30 polls with back-off until `n` servers have `v`.
    fn check_counter(&mut self, v: u64, n: usize) {
        let mut to = 10 * MS;
        for _ in 0..30 {
            if self.counters().iter().filter(|&&c| c == Some(v)).count() >= n {
                return;
            }
            self.sleep(to);
            if to < SEC {
                to *= 2;
            }
        }
        panic!(
            "too few servers ({n} wanted) reached counter {v}: {:?}",
            self.counters()
        );
    }

    fn crash_all(&mut self) {
        for s in 0..NSRV {
            self.sim.disconnect(s);
            self.sim.crash(s);
        }
        self.drain();
    }

    fn restart_all(&mut self) {
        for s in 0..NSRV {
            self.sim.restart(s);
        }
        self.sim.connect_all();
    }

    fn max_raft_state(&self) -> usize {
        (0..NSRV)
            .map(|s| self.sim.durable(s).raft_state_size())
            .max()
            .unwrap_or(0)
    }
}

/// TestBasic4A: 10 sequential Incs, each answered with the new value and applied on all
/// three servers.
#[test]
fn basic_4a() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = RsmTester::new(None, seed);
        for i in 0..10 {
            assert_eq!(t.inc(), i + 1);
            t.check_counter(i + 1, NSRV);
        }
    });
}

/// TestConcurrent4A: 50 concurrent Incs.
#[test]
fn concurrent_4a() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = RsmTester::new(None, seed);
        let leader =
            |t: &RsmTester| (0..NSRV).find(|&s| t.sim.node(s).is_some_and(|n| n.rsm.is_leader()));
        assert!(t.run_until(|t| leader(t).is_some(), 10 * SEC), "no leader");
        t.leader = leader(&t).expect("checked");
        // 50 concurrent clients: each submits to the leader; any refused one retries
        // with onePartition.
        let tags: Vec<u64> = (0..50).map(|_| t.submit(t.leader, Cmd::Inc)).collect();
        assert!(t.run_until(|t| tags.iter().all(|g| t.results.contains_key(g)), 10 * SEC));
        let refused: Vec<u64> = tags
            .iter()
            .copied()
            .filter(|g| t.results[g].0.is_err())
            .collect();
        for _ in refused {
            t.inc();
        }
        t.check_counter(50, NSRV);
    });
}

/// TestLeaderFailure4A: Inc; disconnect the leader; Inc; reconnect.
#[test]
fn leader_failure_4a() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = RsmTester::new(None, seed);
        let r0 = t.inc();
        t.check_counter(r0, NSRV);
        let l = t.leader;
        t.sim.disconnect(l);
        let r1 = t.inc();
        assert_eq!(r1, r0 + 1);
        t.check_counter(r1, NSRV - 1);
        t.sim.connect(l);
        t.check_counter(r1, NSRV);
    });
}

/// TestLeaderPartition4A: the leader is isolated alone; 100 Dec submissions on it must
/// not return within 1 s, never return OK and never execute; the majority commits an Inc;
/// after the heal every Dec returns (non-OK) within 1 s and all counters agree.
#[test]
fn leader_partition_4a() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = RsmTester::new(None, seed);
        t.inc();
        let leader = t.leader;
        let p1: Vec<NodeId> = (0..NSRV).filter(|&s| s != leader).collect();
        t.sim.partition(&[&p1[..], &[leader][..]]);
        let decs: Vec<u64> = (0..100).map(|_| t.submit(leader, Cmd::Dec)).collect();
        t.sleep(10 * MS);
        let v = t
            .one_partition(Some(&p1), Cmd::Inc)
            .expect("Inc in the majority");
        // (one_partition took some time; the Decs started before it.)
        let started = t.outstanding.get(&decs[0]).map(|o| o.at);
        let until = started.expect("Decs still outstanding") + SEC;
        if t.sim.now() < until {
            t.sleep(until - t.sim.now());
        }
        for g in &decs {
            assert!(
                !t.results.contains_key(g),
                "a Dec returned within 1 s: {:?}",
                t.results[g]
            );
        }
        t.sim.connect_all();
        let healed = t.sim.now();
        assert!(
            t.run_until(|t| decs.iter().all(|g| t.results.contains_key(g)), SEC),
            "Decs did not return within 1 s of the heal"
        );
        for g in &decs {
            let (r, at) = &t.results[g];
            assert!(r.is_err(), "a Dec returned OK");
            assert!(*at - healed <= SEC);
        }
        t.check_counter(v, NSRV);
    });
}

/// TestRestartReplay4A: 100 Incs; crash all; 1 s; restart all; the next Inc returns 101.
#[test]
fn restart_replay_4a() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = RsmTester::new(None, seed);
        for i in 0..100 {
            assert_eq!(t.inc(), i + 1);
        }
        t.crash_all();
        t.sleep(SEC);
        t.restart_all();
        assert_eq!(t.inc(), 101);
        t.sleep(SEC);
        t.check_counter(101, NSRV);
    });
}

/// 100 concurrent Nulls, then every server crashes 20 ms later: every Submit returns
/// within NSEC+1 s (a crashed server's pending Submits return, as the lab's Kill does).
fn shutdown_nulls(t: &mut RsmTester) {
    let nulls: Vec<u64> = (0..100).map(|_| t.submit(t.leader, Cmd::Null)).collect();
    t.sleep(20 * MS);
    t.crash_all();
    let t0 = t.sim.now();
    assert!(
        t.run_until(
            |t| nulls.iter().all(|g| t.results.contains_key(g)),
            (NSEC + 1) * SEC
        ),
        "submits did not return within {} s",
        NSEC + 1
    );
    assert!(t.sim.now() - t0 <= (NSEC + 1) * SEC);
}

/// TestShutdown4A.
#[test]
fn shutdown_4a() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = RsmTester::new(None, seed);
        t.inc();
        shutdown_nulls(&mut t);
        // And the state survives: Nulls changed nothing.
        t.restart_all();
        assert_eq!(t.inc(), 2);
    });
}

/// TestRestartSubmit4A: 100 Incs; restart; Inc = 101; 100 Nulls interrupted by a crash of
/// all servers; restart; the final Inc reaches all three.
#[test]
fn restart_submit_4a() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = RsmTester::new(None, seed);
        for i in 0..100 {
            assert_eq!(t.inc(), i + 1);
        }
        t.crash_all();
        t.restart_all();
        assert_eq!(t.inc(), 101);
        t.sleep(SEC);
        shutdown_nulls(&mut t);
        t.restart_all();
        let r = t.inc();
        assert_eq!(r, 102);
        t.check_counter(r, NSRV);
    });
}

/// TestSnapshot4C: maxraftstate 1000; after 100 Incs the Raft state is at most 2x that;
/// after a crash and restart of all servers the next Inc returns 101 everywhere.
#[test]
fn snapshot_4c() {
    sim_seeds!(LAB_SEEDS, |seed| {
        const MAXRAFTSTATE: usize = 1000;
        let mut t = RsmTester::new(Some(MAXRAFTSTATE), seed);
        for i in 0..100 {
            assert_eq!(t.inc(), i + 1);
        }
        let sz = t.max_raft_state();
        assert!(
            sz <= 2 * MAXRAFTSTATE,
            "raft state size {sz} > 2 * {MAXRAFTSTATE}"
        );
        t.crash_all();
        t.restart_all();
        assert_eq!(t.inc(), 101);
        t.check_counter(101, NSRV);
    });
}
