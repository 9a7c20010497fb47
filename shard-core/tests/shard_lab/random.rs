//! Randomized fault schedules over many seeds: joins, leaves and moves mixed with crashes
//! (also in the middle of a step), restarts, partitions of servers and an unreliable
//! network, under client load. At the end everything heals and the test checks:
//!
//! * the whole client history is linearizable, and final reads of every key are part of
//!   it, so no acknowledged write is lost;
//! * each appender's key holds exactly what it appended, once each (exactly-once);
//! * garbage collection: every replica holds data only for the shards its group owns in
//!   its configuration, all of them `Serving`, so each shard's data is stored by one group.
//!
//! `STEPWISE_SEEDS=<n>` explores more seeds; a failure prints the replay command.

use stepwise_shard::config::Gid;
use stepwise_shard::ctrler::CtrlOp;
use stepwise_shard::group::ShardStatus;
use stepwise_sim::{Harness, MS, NetConfig, NodeId, SEC, sim_seeds};

use crate::harness::{Program, ProgramTester, Report, Setup, SimNode, Tester};
use crate::programs::{Appender, RandomOps};

/// Seeds per `cargo test` run (each is about 25 s of virtual time).
const RANDOM_SEEDS: u64 = 20;

#[test]
fn random_schedules() {
    sim_seeds!(RANDOM_SEEDS, run);
}

fn run(seed: u64) {
    let mut t = Tester::new(Setup {
        gids: vec![1, 2, 3, 4],
        nclients: 5,
        max_raft_state: if seed.is_multiple_of(2) {
            Some(2000)
        } else {
            None
        },
        ..Setup::legacy(seed)
    });
    let gids: Vec<Gid> = t.groups.keys().copied().collect();
    let servers: Vec<NodeId> = t
        .ctrlers
        .iter()
        .chain(t.groups.values().flatten())
        .copied()
        .collect();
    t.join(&[1]);
    // Two appenders on their own keys, three clients doing random operations on shared
    // keys.
    let clients = t.clients.clone();
    let mut programs: Vec<(NodeId, Box<dyn Program<Report>>)> = Vec::new();
    for (i, &c) in clients.iter().enumerate() {
        let p: Box<dyn Program<Report>> = if i < 2 {
            Box::new(Appender::new(c as u64, vec![format!("a{i}")], 2))
        } else {
            Box::new(RandomOps::new(c as u64, 6))
        };
        programs.push((c, p));
    }
    t.run_programs(programs);

    let mut down: Vec<NodeId> = Vec::new();
    let end = t.sim.now() + 20 * SEC;
    while t.sim.now() < end {
        let pause = 100 * MS + t.sim.rng().rand_range(0..400) * MS;
        t.sleep(pause);
        let members: Vec<Gid> = t.query_admin_latest().groups.keys().copied().collect();
        let admin = t.admins[0];
        let admin_idle = t.admin_idle(admin);
        match t.sim.rng().rand_range(0..10) {
            0 | 1 => {
                // Join a group that is not a member (restarting it if needed).
                let outside: Vec<Gid> = gids
                    .iter()
                    .copied()
                    .filter(|g| !members.contains(g))
                    .collect();
                if admin_idle && let Some(&g) = pick(&mut t, &outside) {
                    let addrs = t.addrs(g);
                    t.admin_start(admin, CtrlOp::join(g, addrs), None);
                }
            }
            2 => {
                if admin_idle
                    && members.len() > 1
                    && let Some(&g) = pick(&mut t, &members)
                {
                    t.admin_start(admin, CtrlOp::leave(g), None);
                }
            }
            3 => {
                if admin_idle && let Some(&g) = pick(&mut t, &members) {
                    let shard = t.sim.rng().rand_range(0..10) as u32;
                    t.admin_start(admin, CtrlOp::Move { shard, gid: g }, None);
                }
            }
            4 | 5 => {
                // Crash a server (at most one per group or controller at a time), maybe
                // in the middle of its next step.
                let candidates: Vec<NodeId> = servers
                    .iter()
                    .copied()
                    .filter(|&s| !down.iter().any(|&d| same_cluster(&t, d, s)))
                    .collect();
                if let Some(&s) = pick(&mut t, &candidates) {
                    if t.sim.rng().rand_range(0..2) == 0 {
                        t.sim.crash_during_next_step(s);
                    } else {
                        t.shutdown_server(s);
                    }
                    down.push(s);
                }
            }
            6 => {
                if !down.is_empty() {
                    let i = t.sim.rng().rand_range(0..down.len() as u64) as usize;
                    let s = down.swap_remove(i);
                    if !t.sim.is_up(s) {
                        t.start_server(s);
                    } else {
                        t.sim.connect(s);
                    }
                }
            }
            7 => {
                // Partition the servers in two (clients keep their links).
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for &s in &servers {
                    if t.sim.rng().rand_range(0..2) == 0 {
                        a.push(s);
                    } else {
                        b.push(s);
                    }
                }
                t.sim.partition_within(&servers, &[&a, &b]);
            }
            8 => heal_links(&mut t, &down),
            _ => {
                let unreliable = t.sim.net().loss == 0.0;
                *t.sim.net_mut() = if unreliable {
                    NetConfig::unreliable()
                } else {
                    NetConfig::reliable()
                };
            }
        }
    }

    // Heal everything and let the system settle.
    *t.sim.net_mut() = NetConfig::reliable();
    for s in std::mem::take(&mut down) {
        if !t.sim.is_up(s) {
            t.sim.restart(s);
        }
    }
    t.sim.connect_all();
    if !t.run_until(|t| t.admin_idle(t.admins[0]), 60 * SEC) {
        t.fail("the administrator's last change never finished");
    }
    let latest = t.query().num;
    t.wait_settled(latest, 60 * SEC);
    let reports = t.stop_programs(&clients, 120 * SEC);
    if reports.iter().any(|r| r.ops == 0) {
        t.fail("a client made no progress");
    }

    // Exactly once: each appender's key holds what it appended, in order, once.
    let ck = clients[0];
    for (i, report) in reports.iter().take(2).enumerate() {
        let key = format!("a{i}");
        let want = report.appended.get(&key).cloned().unwrap_or_default();
        t.check_get(ck, &key, &want);
    }
    // Final reads of the shared keys, for the history.
    for k in 0..6 {
        t.get(ck, &format!("r{k}"));
    }
    check_gc(&t);
    t.check_legacy();
}

/// Every replica holds data only for shards its group owns in its configuration, all
/// `Serving`.
fn check_gc(t: &Tester) {
    for members in t.groups.values() {
        for &s in members {
            let Some(g) = t.sim.node(s).and_then(SimNode::group) else {
                continue;
            };
            let st = g.group();
            for (shard, status) in st.statuses() {
                let owner = st.config().owner(shard as usize);
                if owner != st.gid() || status != ShardStatus::Serving {
                    t.fail(&format!(
                        "server {s} of gid {} holds shard {shard} ({status:?}) owned by {owner}",
                        st.gid()
                    ));
                }
            }
        }
    }
}

/// Reconnects every server except those shut down.
fn heal_links(t: &mut Tester, down: &[NodeId]) {
    t.sim.connect_all();
    for &s in down {
        if !t.sim.is_up(s) {
            t.sim.disconnect(s);
        }
    }
}

fn pick<'a, T>(t: &mut Tester, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        return None;
    }
    let i = t.sim.rng().rand_range(0..items.len() as u64) as usize;
    items.get(i)
}

/// Whether two servers belong to the same cluster (the controller, or one group).
fn same_cluster(t: &Tester, a: NodeId, b: NodeId) -> bool {
    let ctrl = |x| t.ctrlers.contains(&x);
    if ctrl(a) || ctrl(b) {
        return ctrl(a) && ctrl(b);
    }
    t.groups.values().any(|m| m.contains(&a) && m.contains(&b))
}

impl Tester {
    /// The controller's latest configuration as the first administrator last heard it
    /// (without waiting: the schedule must not block on a controller that is down).
    fn query_admin_latest(&mut self) -> stepwise_shard::config::ShardConfig {
        // The controller state of any up replica: the schedule only needs a guess.
        let latest = self
            .ctrlers
            .iter()
            .filter_map(|&c| self.sim.node(c).and_then(SimNode::ctrler))
            .map(|c| c.ctrler().latest().clone())
            .max_by_key(|c| c.num);
        latest.unwrap_or_else(|| stepwise_shard::config::ShardConfig::initial(10))
    }
}
