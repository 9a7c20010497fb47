//! The 2020-2024 shardkv tests (LAB-SCENARIOS.md 7.4), with both challenges: 3 controller
//! servers, groups 100, 101 and 102 of 3 servers each, 10 shards. The lab's keys "0".."9"
//! fell one per shard under its first-byte hash; with FNV-1a the tests use one key per
//! shard chosen the same way ([`key_per_shard`]). Every test ends with a linearizability
//! check of the whole client history.

use std::collections::BTreeMap;

use stepwise_kv::Op;
use stepwise_shard::ctrler::CtrlOp;
use stepwise_sim::{Harness, MS, NetConfig, NodeId, SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{ProgramTester, Setup, Tester, key_per_shard, rand_string};
use crate::programs::{Appender, RandomOps};

fn tester(seed: u64, max_raft_state: Option<usize>, reliable: bool, nclients: usize) -> Tester {
    Tester::new(Setup {
        max_raft_state,
        reliable,
        nclients,
        ..Setup::legacy(seed)
    })
}

/// The keys and values the tester tracks (the lab's ka/va), with check + Append.
struct Tracked {
    keys: Vec<String>,
    values: Vec<String>,
}

impl Tracked {
    /// Puts a random value to `n` keys (n ≤ 10: one per shard; more: prefixed).
    fn put_all(t: &mut Tester, ck: NodeId, n: usize, len: usize) -> Tracked {
        let mut keys = key_per_shard(10, "k");
        let mut i = 0;
        while keys.len() < n {
            keys.push(format!("x{i}"));
            i += 1;
        }
        keys.truncate(n);
        let mut values = Vec::new();
        for k in &keys {
            let v = rand_string(t.sim.rng(), len);
            t.put(ck, k, &v);
            values.push(v);
        }
        Tracked { keys, values }
    }

    fn check(&self, t: &mut Tester, ck: NodeId) {
        for (k, v) in self.keys.iter().zip(&self.values) {
            t.check_get(ck, k, v);
        }
    }

    /// The lab's "check + Append" round.
    fn check_append(&mut self, t: &mut Tester, ck: NodeId, len: usize) {
        for i in 0..self.keys.len() {
            t.check_get(ck, &self.keys[i], &self.values[i]);
            let x = rand_string(t.sim.rng(), len);
            t.append(ck, &self.keys[i], &x);
            self.values[i].push_str(&x);
        }
    }
}

#[test]
fn static_shards() {
    // TestStaticShards: with group 101 down, exactly the 5 keys of group 100's shards
    // can be read.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, None, true, 11);
        let ck = t.clients[0];
        t.join(&[100]);
        let num = t.join(&[101]);
        let tracked = Tracked::put_all(&mut t, ck, 10, 20);
        tracked.check(&mut t, ck);
        t.wait_settled(num, 10 * SEC);
        t.shutdown_group(101);
        t.check_logs();
        // A fresh client per key.
        let fresh: Vec<NodeId> = t.clients[1..].to_vec();
        let done = gets_until_quiet(&mut t, &fresh, &tracked);
        if done != 5 {
            t.fail(&format!(
                "expected 5 completions with one group down, got {done}"
            ));
        }
        t.start_group(101);
        for (i, k) in tracked.keys.clone().iter().enumerate() {
            let c = t.clients[1 + i];
            if t.wait_op(c, 30 * SEC).is_none() {
                t.fail(&format!("Get({k}) did not finish after the restart"));
            }
        }
        tracked.check(&mut t, ck);
        t.check_legacy();
    });
}

/// Starts a Get per key on its own client, waits until 2 s pass without a completion,
/// and returns how many completed, after checking every completed value.
fn gets_until_quiet(t: &mut Tester, clients: &[NodeId], tracked: &Tracked) -> usize {
    for (k, &c) in tracked.keys.iter().zip(clients) {
        t.start_op(c, Op::get(k.clone()));
    }
    loop {
        let before = clients.iter().filter(|&&c| t.client_idle(c)).count();
        let more = t.run_until(
            |t| clients.iter().filter(|&&c| t.client_idle(c)).count() > before,
            2 * SEC,
        );
        if !more {
            break;
        }
    }
    let mut done = 0;
    for (i, &c) in clients.iter().enumerate() {
        if !t.client_idle(c) {
            continue;
        }
        done += 1;
        let (got, _) = t.get_result(c);
        if got != tracked.values[i] {
            t.fail(&format!(
                "Get({}) = {got:?}, expected {:?}",
                tracked.keys[i], tracked.values[i]
            ));
        }
    }
    done
}

#[test]
fn rejection_by_a_group_that_does_not_own_the_shard() {
    // 2024 TestRejection5A: a second, independent controller says group 100 owns every
    // shard. Its clients' Gets reach group 100, which must refuse the 5 shards it does not
    // own in its own configuration: exactly 5 complete, with the right values.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(Setup {
            nclients: 11,
            second_ctrl: 1,
            clients_of_second: 10,
            ..Setup::legacy(seed)
        });
        let ck = t.clients[0];
        t.join(&[100]);
        let num = t.join(&[101]);
        let tracked = Tracked::put_all(&mut t, ck, 10, 20);
        t.wait_settled(num, 10 * SEC);
        let sa = t.second_admin.expect("a second controller");
        let addrs = t.addrs(100);
        if t.admin_on(sa, CtrlOp::join(100, addrs)).is_err() {
            t.fail("join on the second controller failed");
        }
        let rogue: Vec<NodeId> = t.clients[1..].to_vec();
        let done = gets_until_quiet(&mut t, &rogue, &tracked);
        if done != 5 {
            t.fail(&format!(
                "{done} Gets completed through the wrong controller, expected 5"
            ));
        }
        t.check_legacy();
    });
}

#[test]
fn join_leave() {
    // TestJoinLeave: data follows its shards through a join and a leave; the old group
    // can then be shut down.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, None, true, 1);
        let ck = t.clients[0];
        t.join(&[100]);
        let mut tracked = Tracked::put_all(&mut t, ck, 10, 5);
        tracked.check(&mut t, ck);
        t.join(&[101]);
        tracked.check_append(&mut t, ck, 5);
        t.leave(&[100]);
        tracked.check_append(&mut t, ck, 5);
        t.sleep(SEC);
        t.check_logs();
        t.shutdown_group(100);
        tracked.check(&mut t, ck);
        t.check_legacy();
    });
}

#[test]
fn snapshots() {
    // TestSnapshot (maxraftstate 1000): 30 keys through joins and leaves, then every group
    // restarts from its snapshots.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(1000), true, 1);
        let ck = t.clients[0];
        t.join(&[100]);
        let mut tracked = Tracked::put_all(&mut t, ck, 30, 20);
        tracked.check(&mut t, ck);
        t.join(&[101]);
        t.join(&[102]);
        t.leave(&[100]);
        tracked.check_append(&mut t, ck, 20);
        t.leave(&[101]);
        t.join(&[100]);
        tracked.check_append(&mut t, ck, 20);
        t.sleep(SEC);
        tracked.check(&mut t, ck);
        t.sleep(SEC);
        t.check_logs();
        for g in [100, 101, 102] {
            t.shutdown_group(g);
        }
        for g in [100, 101, 102] {
            t.start_group(g);
        }
        tracked.check(&mut t, ck);
        t.check_legacy();
    });
}

#[test]
fn miss_change() {
    // TestMissChange (maxraftstate 1000): one server of each group misses several
    // configuration changes, then catches up (from snapshots).
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(1000), true, 1);
        let ck = t.clients[0];
        let server = |t: &Tester, g, i: usize| t.groups[&g][i];
        t.join(&[100]);
        let mut tracked = Tracked::put_all(&mut t, ck, 10, 20);
        tracked.check(&mut t, ck);
        t.join(&[101]);
        for g in [100, 101, 102] {
            let s = server(&t, g, 0);
            t.shutdown_server(s);
        }
        t.join(&[102]);
        t.leave(&[101]);
        t.leave(&[100]);
        tracked.check_append(&mut t, ck, 20);
        t.join(&[101]);
        tracked.check_append(&mut t, ck, 20);
        for g in [100, 101, 102] {
            let s = server(&t, g, 0);
            t.start_server(s);
        }
        tracked.check_append(&mut t, ck, 20);
        t.sleep(2 * SEC);
        for g in [100, 101, 102] {
            let s = server(&t, g, 1);
            t.shutdown_server(s);
        }
        t.join(&[100]);
        t.leave(&[102]);
        tracked.check_append(&mut t, ck, 20);
        for g in [100, 101, 102] {
            let s = server(&t, g, 1);
            t.start_server(s);
        }
        tracked.check(&mut t, ck);
        t.check_legacy();
    });
}

/// Starts one appender per key on clients 1.., each appending to its own key every
/// `period` ticks; returns the clients.
fn start_appenders(t: &mut Tester, tracked: &Tracked, period: u32) -> Vec<NodeId> {
    let clients: Vec<NodeId> = t.clients[1..=tracked.keys.len()].to_vec();
    let programs = clients
        .iter()
        .zip(&tracked.keys)
        .map(|(&c, k)| {
            let p: Box<dyn crate::harness::Program<crate::harness::Report>> =
                Box::new(Appender::new(c as u64, vec![k.clone()], period));
            (c, p)
        })
        .collect();
    t.run_programs(programs);
    clients
}

/// Stops the appenders and checks that every key holds its initial value followed by
/// everything its appender appended.
fn stop_and_check_appenders(t: &mut Tester, clients: &[NodeId], tracked: &Tracked) {
    let reports = t.stop_programs(clients, 120 * SEC);
    let ck = t.clients[0];
    for (i, report) in reports.iter().enumerate() {
        let key = &tracked.keys[i];
        let appended = report.appended.get(key).cloned().unwrap_or_default();
        if report.ops == 0 {
            t.fail(&format!("appender {i} made no progress"));
        }
        let want = format!("{}{appended}", tracked.values[i]);
        t.check_get(ck, key, &want);
    }
}

#[test]
fn concurrent1() {
    // TestConcurrent1 (maxraftstate 100): 10 clients append every 10 ms while groups
    // join and leave and every group is shut down and restarted.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(100), true, 11);
        let ck = t.clients[0];
        t.join(&[100]);
        let tracked = Tracked::put_all(&mut t, ck, 10, 5);
        let appenders = start_appenders(&mut t, &tracked, 1);
        t.sleep(10 * MS);
        t.join(&[101]);
        t.join(&[102]);
        t.leave(&[100]);
        t.shutdown_group(100);
        t.sleep(100 * MS);
        t.shutdown_group(101);
        t.sleep(100 * MS);
        t.shutdown_group(102);
        t.leave(&[102]);
        t.sleep(100 * MS);
        for g in [100, 101, 102] {
            t.start_group(g);
        }
        t.sleep(100 * MS);
        t.join(&[100]);
        t.leave(&[101]);
        t.sleep(500 * MS);
        t.join(&[101]);
        t.sleep(SEC);
        stop_and_check_appenders(&mut t, &appenders, &tracked);
        t.check_legacy();
    });
}

#[test]
fn concurrent2() {
    // TestConcurrent2 (no snapshots): 10 clients append every 50 ms through joins and
    // leaves with 3 s pauses, and two groups restart.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, None, true, 11);
        let ck = t.clients[0];
        t.join(&[101]);
        t.join(&[100]);
        t.join(&[102]);
        let tracked = Tracked::put_all(&mut t, ck, 10, 1);
        let appenders = start_appenders(&mut t, &tracked, 5);
        t.leave(&[100]);
        t.leave(&[102]);
        t.sleep(3 * SEC);
        t.join(&[100]);
        t.join(&[102]);
        t.leave(&[101]);
        t.sleep(3 * SEC);
        t.join(&[101]);
        t.leave(&[100]);
        t.leave(&[102]);
        t.sleep(3 * SEC);
        t.shutdown_group(101);
        t.shutdown_group(102);
        t.sleep(SEC);
        t.start_group(101);
        t.start_group(102);
        t.sleep(2 * SEC);
        stop_and_check_appenders(&mut t, &appenders, &tracked);
        t.check_legacy();
    });
}

#[test]
fn concurrent3() {
    // TestConcurrent3 (maxraftstate 300): for 12 s, join, leave and restart all groups
    // at random moments while 10 clients append.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(300), true, 11);
        let ck = t.clients[0];
        t.join(&[100]);
        let tracked = Tracked::put_all(&mut t, ck, 10, 1);
        let appenders = start_appenders(&mut t, &tracked, 1);
        let end = t.sim.now() + 12 * SEC;
        while t.sim.now() < end {
            t.join(&[102]);
            t.join(&[101]);
            let pause = t.sim.rng().rand_range(0..900) * MS;
            t.sleep(pause);
            for g in [100, 101, 102] {
                t.shutdown_group(g);
            }
            for g in [100, 101, 102] {
                t.start_group(g);
            }
            let pause = t.sim.rng().rand_range(0..900) * MS;
            t.sleep(pause);
            t.leave(&[101]);
            t.leave(&[102]);
            let pause = t.sim.rng().rand_range(0..900) * MS;
            t.sleep(pause);
        }
        t.sleep(2 * SEC);
        stop_and_check_appenders(&mut t, &appenders, &tracked);
        t.check_legacy();
    });
}

#[test]
fn unreliable1() {
    // TestUnreliable1 (maxraftstate 100, unreliable network): check + Append through
    // joins and leaves.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(100), false, 1);
        let ck = t.clients[0];
        t.join(&[100]);
        let mut tracked = Tracked::put_all(&mut t, ck, 10, 5);
        t.join(&[101]);
        t.join(&[102]);
        t.leave(&[100]);
        for _ in 0..2 {
            tracked.check_append(&mut t, ck, 5);
        }
        t.join(&[100]);
        t.leave(&[101]);
        for _ in 0..2 {
            tracked.check_append(&mut t, ck, 5);
        }
        t.check_legacy();
    });
}

#[test]
fn unreliable2() {
    // TestUnreliable2 (maxraftstate 100, unreliable): 10 concurrent appenders during
    // joins and leaves; then the network turns reliable and everything is checked.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(100), false, 11);
        let ck = t.clients[0];
        t.join(&[100]);
        let tracked = Tracked::put_all(&mut t, ck, 10, 5);
        let appenders = start_appenders(&mut t, &tracked, 0);
        t.sleep(150 * MS);
        t.join(&[101]);
        t.sleep(500 * MS);
        t.join(&[102]);
        t.sleep(500 * MS);
        t.leave(&[100]);
        t.sleep(500 * MS);
        t.leave(&[101]);
        t.sleep(500 * MS);
        t.join(&[101]);
        t.join(&[100]);
        t.sleep(2 * SEC);
        *t.sim.net_mut() = NetConfig::reliable();
        stop_and_check_appenders(&mut t, &appenders, &tracked);
        t.check_legacy();
    });
}

#[test]
fn unreliable3() {
    // TestUnreliable3 (maxraftstate 100, unreliable): random Get, Put and Append on 10
    // keys by 10 clients during joins and leaves; the history must be linearizable.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(100), false, 10);
        t.join(&[100]);
        let clients = t.clients.clone();
        let programs = clients
            .iter()
            .map(|&c| {
                let p: Box<dyn crate::harness::Program<crate::harness::Report>> =
                    Box::new(RandomOps::new(c as u64, 10));
                (c, p)
            })
            .collect();
        t.run_programs(programs);
        t.sleep(150 * MS);
        t.join(&[101]);
        t.sleep(500 * MS);
        t.join(&[102]);
        t.sleep(500 * MS);
        t.leave(&[100]);
        t.sleep(500 * MS);
        t.leave(&[101]);
        t.sleep(500 * MS);
        t.join(&[101]);
        t.join(&[100]);
        t.sleep(2 * SEC);
        let reports = t.stop_programs(&clients, 120 * SEC);
        if reports.iter().any(|r| r.ops == 0) {
            t.fail("a client made no progress");
        }
        t.check_legacy();
    });
}

#[test]
fn challenge1_delete() {
    // TestChallenge1Delete (maxraftstate 1: a snapshot after every entry): after shards
    // moved around twice, the groups together store each key about once per replica:
    // Σ (raft state + snapshot) over all servers ≤ 3 × (27×1000 + 2×3×1000 + 6000).
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(1), true, 1);
        let ck = t.clients[0];
        t.join(&[100]);
        let tracked = Tracked::put_all(&mut t, ck, 30, 1000);
        let check3 = |t: &mut Tester| {
            for i in 0..3 {
                t.check_get(ck, &tracked.keys[i], &tracked.values[i]);
            }
        };
        for _ in 0..2 {
            t.join(&[101]);
            t.leave(&[100]);
            t.join(&[102]);
            t.sleep(3 * SEC);
            check3(&mut t);
            t.leave(&[101]);
            t.join(&[100]);
            t.leave(&[102]);
            t.sleep(3 * SEC);
            check3(&mut t);
        }
        t.join(&[101]);
        t.join(&[102]);
        t.sleep(SEC);
        check3(&mut t);
        t.sleep(SEC);
        check3(&mut t);
        t.sleep(SEC);
        let total: usize = [100, 101, 102].iter().map(|&g| t.group_persisted(g)).sum();
        let expected = 3 * ((27 * 1000) + 2 * 3 * 1000 + 6000);
        if total > expected {
            t.fail(&format!(
                "persisted {total} bytes, expected at most {expected}"
            ));
        }
        t.check_legacy();
    });
}

#[test]
fn challenge2_unaffected() {
    // TestChallenge2Unaffected (unreliable): group 101 keeps serving the shards it
    // already had while the shards of the dead group 100 can never arrive.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(100), false, 1);
        let ck = t.clients[0];
        t.join(&[100]);
        let keys = key_per_shard(10, "k");
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for k in &keys {
            t.put(ck, k, "100");
            values.insert(k.clone(), "100".into());
        }
        t.join(&[101]);
        let c = t.query();
        let owned: Vec<String> = keys
            .iter()
            .filter(|k| c.owner_of(k.as_bytes()) == 101)
            .cloned()
            .collect();
        t.sleep(SEC);
        for k in &owned {
            t.put(ck, k, "101");
            values.insert(k.clone(), "101".into());
        }
        t.shutdown_group(100);
        t.leave(&[100]);
        t.sleep(SEC);
        for k in &owned {
            let v = values[k].clone();
            t.check_get(ck, k, &v);
            t.put(ck, k, &format!("{v}-1"));
            t.check_get(ck, k, &format!("{v}-1"));
        }
        t.check_legacy();
    });
}

#[test]
fn challenge2_partial() {
    // TestChallenge2Partial (unreliable): shards moving from 102 to 101 are served as soon
    // as they arrive, although the shards of the dead group 100 never do.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, Some(100), false, 1);
        let ck = t.clients[0];
        t.join(&[100, 101, 102]);
        t.sleep(SEC);
        let keys = key_per_shard(10, "k");
        for k in &keys {
            t.put(ck, k, "100");
        }
        let c = t.query();
        let owned: Vec<String> = keys
            .iter()
            .filter(|k| c.owner_of(k.as_bytes()) == 102)
            .cloned()
            .collect();
        t.shutdown_group(100);
        t.leave(&[100, 102]);
        t.sleep(SEC);
        for k in &owned {
            t.check_get(ck, k, "100");
            t.put(ck, k, "100-2");
            t.check_get(ck, k, "100-2");
        }
        t.check_legacy();
    });
}
