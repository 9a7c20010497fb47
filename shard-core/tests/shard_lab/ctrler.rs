//! The 2020-2024 shard controller tests (LAB-SCENARIOS.md 7.3) on a 3-server replicated
//! controller, plus controller recovery and fencing. Every test ends with a
//! linearizability check of all administrator operations against one copy of the
//! controller.

use std::collections::{BTreeMap, BTreeSet};

use stepwise_shard::config::{Gid, ShardConfig};
use stepwise_shard::ctrler::{CtrlError, CtrlOp, CtrlOutput};
use stepwise_sim::{Harness, NodeId, SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{Setup, Tester};

fn tester(seed: u64, max_raft_state: Option<usize>) -> Tester {
    Tester::new(Setup {
        gids: vec![],
        nclients: 0,
        nadmins: 10,
        max_raft_state,
        ..Setup::legacy(seed)
    })
}

/// Fake server names for a group (controller tests start no group servers).
fn servers(gid: Gid) -> Vec<u64> {
    vec![gid * 10 + 1, gid * 10 + 2, gid * 10 + 3]
}

/// The lab's check(groups): exactly these groups, every shard on one of them, balanced.
fn check(t: &Tester, c: &ShardConfig, groups: &[Gid]) {
    let want: BTreeSet<Gid> = groups.iter().copied().collect();
    let got: BTreeSet<Gid> = c.groups.keys().copied().collect();
    if got != want {
        t.fail(&format!("groups {got:?}, expected {want:?}"));
    }
    if let Err(e) = c.check_balanced() {
        t.fail(&e);
    }
}

fn join(t: &mut Tester, gids: &[Gid]) -> u64 {
    let groups = gids.iter().map(|&g| (g, servers(g))).collect();
    match t.admin(CtrlOp::Join { groups }) {
        Ok(CtrlOutput::Changed { num }) => num,
        other => t.fail(&format!("Join({gids:?}): {other:?}")),
    }
}

fn leave(t: &mut Tester, gids: &[Gid]) -> u64 {
    match t.admin(CtrlOp::Leave {
        gids: gids.to_vec(),
    }) {
        Ok(CtrlOutput::Changed { num }) => num,
        other => t.fail(&format!("Leave({gids:?}): {other:?}")),
    }
}

/// Runs one script of operations per administrator, all administrators concurrently.
fn run_scripts(t: &mut Tester, scripts: Vec<(NodeId, Vec<CtrlOp>)>) {
    let mut scripts: BTreeMap<NodeId, std::vec::IntoIter<CtrlOp>> = scripts
        .into_iter()
        .map(|(a, s)| (a, s.into_iter()))
        .collect();
    let deadline = t.sim.now() + 60 * SEC;
    loop {
        let idle: Vec<NodeId> = scripts
            .keys()
            .copied()
            .filter(|&a| t.admin_idle(a))
            .collect();
        for a in idle {
            match scripts.get_mut(&a).and_then(Iterator::next) {
                Some(op) => t.admin_start(a, op, None),
                None => {
                    scripts.remove(&a);
                }
            }
        }
        if scripts.is_empty() {
            break;
        }
        if t.sim.now() > deadline {
            t.fail("concurrent administrators did not finish within 60 s");
        }
        let busy: Vec<NodeId> = scripts.keys().copied().collect();
        t.run_until(|t| busy.iter().any(|&a| t.admin_idle(a)), 60 * SEC);
    }
    for r in &t.admin_records {
        if let Err(e) = &r.result {
            t.fail(&format!("admin {}: {:?} failed: {e:?}", r.admin, r.op));
        }
    }
}

/// After a change, shards of groups that neither joined nor left must not move.
fn check_minimal(t: &Tester, before: &ShardConfig, after: &ShardConfig, changed: &[Gid]) {
    for s in 0..before.nshards() {
        let (a, b) = (before.shards[s], after.shards[s]);
        if a != b && !changed.contains(&a) && !changed.contains(&b) {
            t.fail(&format!("shard {s} moved from {a} to {b} needlessly"));
        }
    }
}

#[test]
fn ctrler_basic() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, None);
        let c = t.query();
        check(&t, &c, &[]);

        // Basic leave/join; server lists are kept.
        let mut history = vec![t.query()];
        join(&mut t, &[1]);
        history.push(t.query());
        check(&t, &history[1], &[1]);
        join(&mut t, &[2]);
        history.push(t.query());
        check(&t, &history[2], &[1, 2]);
        assert_eq!(history[2].servers(1), servers(1));
        assert_eq!(history[2].servers(2), servers(2));
        leave(&mut t, &[1]);
        history.push(t.query());
        check(&t, &history[3], &[2]);
        leave(&mut t, &[2]);
        history.push(t.query());
        check(&t, &history[4], &[]);

        // Historical queries, with each server down in turn.
        for s in t.ctrlers.clone() {
            t.shutdown_server(s);
            for c in &history {
                let got = t.query_num(Some(c.num));
                if got != *c {
                    t.fail(&format!("Query({}) = {got:?}, expected {c:?}", c.num));
                }
            }
            t.start_server(s);
        }
        assert_eq!(t.query_num(Some(0)), ShardConfig::initial(10));

        // Move.
        join(&mut t, &[503]);
        join(&mut t, &[504]);
        for shard in 0..10u32 {
            let gid = if shard < 5 { 503 } else { 504 };
            let before = t.query().num;
            match t.admin(CtrlOp::Move { shard, gid }) {
                Ok(CtrlOutput::Changed { num }) if num == before + 1 => {}
                other => t.fail(&format!("Move({shard}, {gid}): {other:?}")),
            }
        }
        let c = t.query();
        assert_eq!(c.shards, [503, 503, 503, 503, 503, 504, 504, 504, 504, 504]);
        leave(&mut t, &[503]);
        leave(&mut t, &[504]);

        // Concurrent leave/join: 10 administrators.
        let admins = t.admins.clone();
        let scripts = admins
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let gid = 100 + 10 * i as Gid;
                let ops = vec![
                    CtrlOp::join(gid + 1000, servers(gid + 1000)),
                    CtrlOp::join(gid, servers(gid)),
                    CtrlOp::leave(gid + 1000),
                ];
                (a, ops)
            })
            .collect();
        run_scripts(&mut t, scripts);
        let gids: Vec<Gid> = (0..10).map(|i| 100 + 10 * i).collect();
        let c = t.query();
        check(&t, &c, &gids);

        // Minimal transfers after joins, then after leaves.
        let c1 = t.query();
        let new: Vec<Gid> = (11..16).collect();
        for &g in &new {
            join(&mut t, &[g]);
        }
        let c2 = t.query();
        check_minimal(&t, &c1, &c2, &new);
        for &g in &new {
            leave(&mut t, &[g]);
        }
        let c3 = t.query();
        check_minimal(&t, &c2, &c3, &new);
        check(&t, &c3, &gids);

        t.check_ctrler();
    });
}

#[test]
fn ctrler_minimal_again() {
    // 2024 TestMinimalAgain: a join moves only shards to the new group, a leave only the
    // leaving group's shards, at most NShards/3 + 1 = 4 each.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, None);
        join(&mut t, &[1]);
        join(&mut t, &[2]);
        let c1 = t.query();
        join(&mut t, &[3]);
        let c2 = t.query();
        check_minimal(&t, &c1, &c2, &[3]);
        let moved = (0..10).filter(|&s| c1.shards[s] != c2.shards[s]).count();
        assert!(moved <= 4, "{moved} shards moved on join");
        leave(&mut t, &[1]);
        let c3 = t.query();
        check_minimal(&t, &c2, &c3, &[1]);
        let moved = (0..10).filter(|&s| c2.shards[s] != c3.shards[s]).count();
        assert!(moved <= 4, "{moved} shards moved on leave");
        t.check_ctrler();
    });
}

#[test]
fn ctrler_multi() {
    // TestMulti: multi-group joins and leaves, concurrently, and the same configuration
    // on every replica after the leader goes down.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(1000));
        join(&mut t, &[1, 2]);
        let c = t.query();
        check(&t, &c, &[1, 2]);
        assert_eq!(c.servers(1), servers(1));
        join(&mut t, &[3]);
        leave(&mut t, &[1, 3]);
        let c = t.query();
        check(&t, &c, &[2]);
        assert_eq!(c.servers(2), servers(2));
        leave(&mut t, &[2]);

        let admins = t.admins.clone();
        let scripts = admins
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let gid = 1000 + i as Gid;
                let groups = [gid, gid + 1000, gid + 2000]
                    .into_iter()
                    .map(|g| (g, servers(g)))
                    .collect();
                let ops = vec![
                    CtrlOp::Join { groups },
                    CtrlOp::Leave {
                        gids: vec![gid + 1000, gid + 2000],
                    },
                ];
                (a, ops)
            })
            .collect();
        run_scripts(&mut t, scripts);
        let gids: Vec<Gid> = (1000..1010).collect();
        let c1 = t.query();
        check(&t, &c1, &gids);

        // Minimal transfers after a multi-join and a multi-leave.
        let new: Vec<Gid> = (11..16).collect();
        join(&mut t, &new);
        let c2 = t.query();
        check_minimal(&t, &c1, &c2, &new);
        leave(&mut t, &new);
        let c3 = t.query();
        check_minimal(&t, &c2, &c3, &new);

        // Same configuration on the replicas after the leader is shut down.
        let leader = t.ctrler_leader().expect("a controller leader");
        t.shutdown_server(leader);
        let again = t.query();
        assert_eq!(again, c3);
        for s in t.ctrlers.clone() {
            if let Some(c) = t.sim.node(s).and_then(|n| n.ctrler()) {
                assert_eq!(c.ctrler().latest(), &c3, "replica {s}");
            }
        }
        t.check_ctrler();
    });
}

#[test]
fn ctrler_recovers_configurations_and_fences_a_stale_leader() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(1000));
        for g in 1..=6 {
            join(&mut t, &[g]);
        }
        leave(&mut t, &[2]);
        let configs: Vec<ShardConfig> = (0..=7).map(|n| t.query_num(Some(n))).collect();

        // Every controller server crashes and restarts: nothing is lost or reordered.
        for s in t.ctrlers.clone() {
            t.shutdown_server(s);
        }
        for s in t.ctrlers.clone() {
            t.start_server(s);
        }
        for c in &configs {
            assert_eq!(&t.query_num(Some(c.num)), c);
        }

        // The leader is cut off with one administrator; it cannot answer or change.
        let leader = t.ctrler_leader().expect("a controller leader");
        let (a, b) = (t.admins[0], t.admins[1]);
        let others: Vec<NodeId> = t.ctrlers.iter().copied().filter(|&s| s != leader).collect();
        for &s in &others {
            t.sim.set_link(a, s, false);
            t.sim.set_link(s, a, false);
        }
        for &s in &others {
            t.sim.set_link(leader, s, false);
            t.sim.set_link(s, leader, false);
        }
        t.admin_start(a, CtrlOp::latest(), None);
        if t.admin_wait(a, 2 * SEC).is_some() {
            t.fail("a partitioned controller answered a query");
        }
        // The majority moves on.
        match t.admin_on(b, CtrlOp::join(7, servers(7))) {
            Ok(CtrlOutput::Changed { num: 8 }) => {}
            other => t.fail(&format!("join on the majority: {other:?}")),
        }
        // Heal: the stale administrator's query sees configuration 8, and its change
        // conditional on configuration 7 is refused.
        t.sim.connect_all();
        match t.admin_wait(a, 10 * SEC) {
            Some(Ok(CtrlOutput::Config(c))) if c.num == 8 => {}
            other => t.fail(&format!("query after healing: {other:?}")),
        }
        t.admin_start(a, CtrlOp::leave(1), Some(7));
        match t.admin_wait(a, 10 * SEC) {
            Some(Err(CtrlError::ConfigChanged { latest: 8 })) => {}
            other => t.fail(&format!("stale conditional leave: {other:?}")),
        }
        assert_eq!(t.query().num, 8);
        t.check_ctrler();
    });
}
