//! The 2020-2024 shardkv tests (LAB-SCENARIOS.md 7.4), with both challenges: 3 controller
//! servers, groups 100, 101 and 102 of 3 servers each, 10 shards. The lab's keys "0".."9"
//! fell one per shard under its first-byte hash; with FNV-1a the tests use one key per
//! shard chosen the same way ([`key_per_shard`]). Every test ends with a linearizability
//! check of the whole client history.

use std::collections::BTreeMap;

use stepwise_kv::Op;
use stepwise_shard::ctrler::CtrlOp;
use stepwise_sim::{MS, NetConfig, NodeId, SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{Setup, Tester, key_per_shard, rand_string};
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
