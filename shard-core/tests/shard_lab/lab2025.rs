//! The 2025 shardkv1 tests (LAB-SCENARIOS.md 7.1-7.2): 12 shards, gid 1 owns everything
//! first, joining gids from 2 up, 60 keys written once with versioned Puts (so every
//! value is at version 1).
//!
//! The 2025 lab's controller is a library that moves shards itself and returns from a
//! join or leave once the shards moved. Here the controller is a replicated service and
//! the groups move the shards; so a join or leave "finishes" when every running group has
//! settled in the new configuration, and the tests wait for that where the lab's
//! `ChangeConfigTo` would have returned. The controller-recovery scenarios (5B/5C) become:
//! an administrator is cut off in the middle of a change; another one must see the
//! change done or not done, never half; the first one's retry applies at most once; a
//! conditional change from its stale view is refused. Every test ends with a
//! linearizability check.

use stepwise_kv::{KvOutput, Op};
use stepwise_shard::config::Gid;
use stepwise_shard::ctrler::{CtrlError, CtrlOp, CtrlOutput, Ctrler};
use stepwise_sim::{Harness, MS, NodeId, SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{Program, ProgramTester, Report, Setup, Tester, rand_string};
use crate::programs::{Putter, Reader};

const NKEYS: usize = 60;
const GID1: Gid = 1;
/// The lab's INTERGRPDELAY.
const INTER_GROUP_DELAY: u64 = 200 * MS;

/// A 2025 tester: `ngroups` groups (gids 1..), `nclients` clients, one administrator more
/// than needed for the concurrent-controller tests.
fn tester(
    seed: u64,
    ngroups: u64,
    nclients: usize,
    reliable: bool,
    max_raft_state: Option<usize>,
) -> Tester {
    Tester::new(Setup {
        nclients,
        nadmins: 5,
        reliable,
        max_raft_state,
        ..Setup::lab2025(seed, ngroups)
    })
}

struct Data {
    keys: Vec<String>,
    values: Vec<String>,
}

/// InitConfig (gid 1 owns everything) and SpreadPuts (60 keys at version 1).
fn init(t: &mut Tester, value_len: usize) -> Data {
    let num = t.join(&[GID1]);
    let c = t.query();
    if num != 1 || c.num != 1 || c.shards[0] != GID1 {
        t.fail(&format!("InitConfig: {c:?}"));
    }
    let ck = t.clients[0];
    let keys: Vec<String> = (0..NKEYS).map(|i| format!("k{i}")).collect();
    let mut values = Vec::new();
    for k in &keys {
        let v = rand_string(t.sim.rng(), value_len);
        match t.op(ck, Op::put(k.clone(), v.clone(), 0)) {
            Ok(KvOutput::Written { version: 1 }) => {}
            other => t.fail(&format!("Put({k}) at version 0: {other:?}")),
        }
        values.push(v);
    }
    Data { keys, values }
}

/// CheckGets: every key at its value, version 1.
fn check_gets(t: &mut Tester, data: &Data) {
    let ck = t.clients[0];
    // An operation left waiting by an earlier check finishes first.
    if !t.client_idle(ck) && t.wait_op(ck, 30 * SEC).is_none() {
        t.fail("an earlier operation never finished");
    }
    for (k, v) in data.keys.iter().zip(&data.values) {
        let got = t.get(ck, k);
        if got != (v.clone(), 1) {
            t.fail(&format!("Get({k}) = {got:?}, expected ({v:?}, 1)"));
        }
    }
}

/// joinGroups: join each gid, wait until the move is over, check the gid owns a shard.
fn join_groups(t: &mut Tester, gids: &[Gid]) {
    for &gid in gids {
        t.start_group(gid);
        let num = t.join(&[gid]);
        t.wait_settled(num, 10 * SEC);
        let c = t.query();
        if c.shards_of(gid).next().is_none() {
            t.fail(&format!("gid {gid} owns no shard after joining"));
        }
        t.sleep(INTER_GROUP_DELAY);
    }
}

/// leaveGroups: leave each gid, wait until its shards moved, check it owns nothing, shut
/// it down.
fn leave_groups(t: &mut Tester, gids: &[Gid]) {
    for &gid in gids {
        let num = t.leave(&[gid]);
        t.wait_settled(num, 10 * SEC);
        let c = t.query();
        if c.groups.contains_key(&gid) || c.shards_of(gid).next().is_some() {
            t.fail(&format!("gid {gid} is still a member after leaving"));
        }
        t.shutdown_group(gid);
        t.sleep(INTER_GROUP_DELAY);
    }
}

/// checkShutdownSharding: with `gid` down, a Get per key on its own client; after 2 s
/// without a completion, fewer than all must have completed (the data is sharded). The
/// group restarts and every Get then completes with the right value.
fn check_shutdown_sharding(t: &mut Tester, gid: Gid, data: &Data) {
    t.shutdown_group(gid);
    let readers: Vec<NodeId> = t.clients[1..=NKEYS].to_vec();
    for (k, &c) in data.keys.iter().zip(&readers) {
        t.start_op(c, Op::get(k.clone()));
    }
    loop {
        let before = readers.iter().filter(|&&c| t.client_idle(c)).count();
        let more = t.run_until(
            |t| readers.iter().filter(|&&c| t.client_idle(c)).count() > before,
            2 * SEC,
        );
        if !more {
            break;
        }
    }
    let done = readers.iter().filter(|&&c| t.client_idle(c)).count();
    if done == NKEYS {
        t.fail(&format!("all {NKEYS} Gets completed with gid {gid} down"));
    }
    t.start_group(gid);
    for (i, &c) in readers.iter().enumerate() {
        if t.wait_op(c, 30 * SEC).is_none() {
            t.fail(&format!(
                "Get({}) did not finish after the restart",
                data.keys[i]
            ));
        }
        let got = t.get_result(c);
        if got != (data.values[i].clone(), 1) {
            t.fail(&format!("Get({}) = {got:?}", data.keys[i]));
        }
    }
}

/// Groups 2.. are started only when they join (the lab's StartServerShardGrp).
fn stop_spare_groups(t: &mut Tester) {
    let spare: Vec<Gid> = t.groups.keys().copied().filter(|&g| g != GID1).collect();
    for g in spare {
        t.shutdown_group(g);
    }
}

#[test]
fn init_query() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, 1, 1, true, None);
        t.join(&[GID1]);
        let c = t.query();
        assert_eq!((c.num, c.shards[0]), (1, GID1));
        assert!(c.shards.iter().all(|&g| g == GID1));
        c.check_balanced().unwrap();
        t.check_ctrler();
    });
}

#[test]
fn static_one_shard_group() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, 1, 1, true, None);
        let data = init(&mut t, 20);
        check_gets(&mut t, &data);
        let leader = t.group_leader(GID1).expect("gid 1 has a leader");
        t.shutdown_server(leader);
        check_gets(&mut t, &data);
        t.check_versioned();
    });
}

#[test]
fn join_basic() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, 2, 1 + NKEYS, true, None);
        stop_spare_groups(&mut t);
        let data = init(&mut t, 20);
        let before = t.query().num;
        join_groups(&mut t, &[2]);
        let c = t.query();
        if c.num != before + 1 || !c.groups.contains_key(&2) {
            t.fail(&format!("after joining gid 2: {c:?}"));
        }
        check_shutdown_sharding(&mut t, GID1, &data);
        check_gets(&mut t, &data);
        check_shutdown_sharding(&mut t, 2, &data);
        check_gets(&mut t, &data);
        t.check_versioned();
    });
}

#[test]
fn delete_basic() {
    // TestDeleteBasic5A (maxraftstate 10,000; 60 keys of 1000 bytes): once gid 2 has its
    // shards, gid 1 no longer holds them: snap(gid1) + snap(gid2) ≤ sz + 10,000, where sz
    // is gid 1's size before the join. Checked twice: on what each group persisted (Raft
    // state + snapshot of its largest server, as the simulator's storage holds it: a group
    // snapshots as soon as it deleted shards it handed over), and on the snapshots each
    // group would take now (its whole state in memory). Gets do not go through the log
    // here (ReadIndex), so reading does not trigger new snapshots as in the lab.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, 2, 1, true, Some(10_000));
        stop_spare_groups(&mut t);
        let data = init(&mut t, 1000);
        let sz_persisted = t.group_persisted_max(GID1);
        let sz = t.group_live_snapshot(GID1);
        join_groups(&mut t, &[2]);
        for _ in 0..5 {
            check_gets(&mut t, &data);
        }
        let persisted = t.group_persisted_max(GID1) + t.group_persisted_max(2);
        if persisted > sz_persisted + 10_000 {
            t.fail(&format!(
                "persisted {persisted} > {sz_persisted} + 10000: moved shards not deleted from storage"
            ));
        }
        let after = t.group_live_snapshot(GID1) + t.group_live_snapshot(2);
        if after > sz + 10_000 {
            t.fail(&format!(
                "snapshots {after} > {sz} + 10000: moved shards not deleted"
            ));
        }
        t.check_versioned();
    });
}

#[test]
fn join_leave_basic() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, 2, 1 + NKEYS, true, None);
        stop_spare_groups(&mut t);
        let data = init(&mut t, 20);
        join_groups(&mut t, &[2]);
        check_shutdown_sharding(&mut t, GID1, &data);
        check_gets(&mut t, &data);
        leave_groups(&mut t, &[GID1]);
        check_gets(&mut t, &data);
        // Restart gid 1 and join it again (no delay).
        t.start_group(GID1);
        let num = t.join(&[GID1]);
        t.wait_settled(num, 10 * SEC);
        check_gets(&mut t, &data);
        check_shutdown_sharding(&mut t, 2, &data);
        t.check_versioned();
    });
}

fn many_join_leave(seed: u64, reliable: bool) {
    let mut t = tester(seed, 9, 1 + NKEYS, reliable, None);
    stop_spare_groups(&mut t);
    let data = init(&mut t, 20);
    let gids: Vec<Gid> = (2..=9).collect();
    join_groups(&mut t, &gids);
    check_shutdown_sharding(&mut t, gids[0], &data);
    check_gets(&mut t, &data);
    leave_groups(&mut t, &gids);
    check_gets(&mut t, &data);
    t.check_versioned();
}

#[test]
fn many_join_leave_reliable() {
    sim_seeds!(LAB_SEEDS, |seed| many_join_leave(seed, true));
}

#[test]
fn many_join_leave_unreliable() {
    sim_seeds!(LAB_SEEDS, |seed| many_join_leave(seed, false));
}

#[test]
fn shutdown_and_restart_every_group() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, 3, 1 + NKEYS, true, None);
        stop_spare_groups(&mut t);
        let data = init(&mut t, 20);
        join_groups(&mut t, &[2, 3]);
        check_shutdown_sharding(&mut t, 2, &data);
        for g in 1..=3 {
            t.shutdown_group(g);
        }
        for g in 1..=3 {
            t.start_group(g);
        }
        check_gets(&mut t, &data);
        t.check_versioned();
    });
}

#[test]
fn progress_shutdown() {
    // With gids 2 and 3 down, Gets on the shards of 4 and 5 complete within 2 s.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, 5, 1, true, None);
        stop_spare_groups(&mut t);
        let data = init(&mut t, 20);
        join_groups(&mut t, &[2, 3, 4, 5]);
        t.shutdown_group(2);
        t.shutdown_group(3);
        let c = t.query();
        let ck = t.clients[0];
        for (k, v) in data.keys.iter().zip(&data.values) {
            if ![4, 5].contains(&c.owner_of(k.as_bytes())) {
                continue;
            }
            t.start_op(ck, Op::get(k.clone()));
            match t.wait_op(ck, 2 * SEC) {
                Some(Ok(KvOutput::Value { value, version: 1 })) if value == v.as_bytes() => {}
                other => t.fail(&format!("Get({k}) on a live group: {other:?}")),
            }
        }
        t.check_versioned();
    });
}

#[test]
fn progress_join() {
    // Gid 7 joins and leaves again and again; Gets on shards that stay put, on the groups
    // that hand shards to 7, keep completing: at least 100 in 4 s.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, 7, 1, true, None);
        stop_spare_groups(&mut t);
        let data = init(&mut t, 20);
        join_groups(&mut t, &[2, 3, 4, 5]);
        let before = t.query();
        // What a join of 7 would do (the controller is deterministic).
        let mut scratch = Ctrler::new(12);
        for g in [1, 2, 3, 4, 5] {
            scratch
                .apply_command(stepwise_shard::ctrler::CtrlCommand {
                    op: CtrlOp::join(g, t.addrs(g)),
                    expect: None,
                })
                .unwrap();
        }
        assert_eq!(scratch.latest().shards, before.shards);
        let mut with7 = scratch.clone();
        with7
            .apply_command(stepwise_shard::ctrler::CtrlCommand {
                op: CtrlOp::join(7, t.addrs(7)),
                expect: None,
            })
            .unwrap();
        let after = with7.latest().clone();
        let givers: Vec<Gid> = (0..12)
            .filter(|&s| before.shards[s] != after.shards[s])
            .map(|s| before.shards[s])
            .collect();
        let keys: Vec<String> = data
            .keys
            .iter()
            .filter(|k| {
                let s = before.shard_of(k.as_bytes());
                before.shards[s] == after.shards[s] && givers.contains(&before.shards[s])
            })
            .cloned()
            .collect();
        assert!(!keys.is_empty(), "some stable shards on giving groups");
        t.start_group(7);
        let reader = t.clients[0];
        t.run_programs(vec![(
            reader,
            Box::new(Reader::new(keys)) as Box<dyn Program<Report>>,
        )]);
        let admin = t.admins[0];
        let end = t.sim.now() + 4 * SEC;
        let mut joined = false;
        while t.sim.now() < end {
            if t.admin_idle(admin) {
                let op = if joined {
                    CtrlOp::leave(7)
                } else {
                    CtrlOp::join(7, t.addrs(7))
                };
                joined = !joined;
                t.admin_start(admin, op, None);
            }
            let left = end - t.sim.now();
            t.run_until(|t| t.admin_idle(admin), left.min(100 * MS));
        }
        let reports = t.stop_programs(&[reader], 4 * SEC);
        if reports[0].ops < 100 {
            t.fail(&format!("only {} Gets in 4 s during churn", reports[0].ops));
        }
        t.check_versioned();
        t.check_ctrler();
    });
}

fn concurrent_clerks(seed: u64, nclients: usize, reliable: bool) {
    let mut t = tester(seed, 9, nclients, reliable, None);
    stop_spare_groups(&mut t);
    t.join(&[GID1]);
    let clients = t.clients.clone();
    let programs = clients
        .iter()
        .map(|&c| {
            (
                c,
                Box::new(Putter::new(c as u64, "k0".into())) as Box<dyn Program<Report>>,
            )
        })
        .collect();
    t.run_programs(programs);
    let gids: Vec<Gid> = (2..=9).collect();
    let end = t.sim.now() + 20 * SEC;
    join_groups(&mut t, &gids);
    leave_groups(&mut t, &gids);
    if t.sim.now() < end {
        let left = end - t.sim.now();
        t.sleep(left);
    }
    let reports = t.stop_programs(&clients, 120 * SEC);
    if reports.iter().any(|r| r.ops == 0) {
        t.fail("a client made no progress");
    }
    t.check_versioned();
}

#[test]
fn one_concurrent_clerk_reliable() {
    sim_seeds!(LAB_SEEDS, |seed| concurrent_clerks(seed, 1, true));
}

#[test]
fn many_concurrent_clerks_reliable() {
    sim_seeds!(LAB_SEEDS, |seed| concurrent_clerks(seed, 10, true));
}

#[test]
fn one_concurrent_clerk_unreliable() {
    sim_seeds!(LAB_SEEDS, |seed| concurrent_clerks(seed, 1, false));
}

#[test]
fn many_concurrent_clerks_unreliable() {
    sim_seeds!(LAB_SEEDS, |seed| concurrent_clerks(seed, 10, false));
}

/// Whether every key of `gid`'s shards in the latest configuration can be read within
/// `limit` each.
fn serves_keys_of(t: &mut Tester, gid: Gid, data: &Data, limit: u64) -> bool {
    let c = t.query();
    let ck = t.clients[0];
    for (k, v) in data.keys.iter().zip(&data.values) {
        if c.owner_of(k.as_bytes()) != gid {
            continue;
        }
        if !t.client_idle(ck) && t.wait_op(ck, limit).is_none() {
            return false;
        }
        t.start_op(ck, Op::get(k.clone()));
        match t.wait_op(ck, limit) {
            None => return false,
            Some(Ok(KvOutput::Value { value, version: 1 })) if value == v.as_bytes() => {}
            Some(other) => t.fail(&format!("Get({k}) = {other:?}")),
        }
    }
    true
}

#[test]
fn join_leave_5b() {
    // TestJoinLeave5B: a join cannot complete while the group holding the shards is down,
    // and completes within 2 s once it is back; the same for a leave whose receiving group
    // is down.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, 2, 1, true, None);
        stop_spare_groups(&mut t);
        let data = init(&mut t, 20);
        let num0 = t.query().num;
        t.shutdown_group(GID1);
        t.start_group(2);
        let num = t.join(&[2]);
        if num != num0 + 1 {
            t.fail(&format!(
                "join made configuration {num}, expected {}",
                num0 + 1
            ));
        }
        if serves_keys_of(&mut t, 2, &data, 2 * SEC) {
            t.fail("gid 2 served shards whose owner was down");
        }
        t.start_group(GID1);
        if !t.run_until(|t| t.groups_settled(num), 2 * SEC) {
            t.fail("the join did not finish within 2 s of gid 1's restart");
        }
        check_gets(&mut t, &data);
        t.shutdown_group(2);
        let num = t.leave(&[GID1]);
        if t.run_until(|t| t.groups_settled(num), 2 * SEC) {
            t.fail("the leave finished while the receiving group was down");
        }
        t.start_group(2);
        if !t.run_until(|t| t.groups_settled(num), 2 * SEC) {
            t.fail("the leave did not finish within 2 s of gid 2's restart");
        }
        check_gets(&mut t, &data);
        t.check_versioned();
    });
}

/// partitionCtrler, adapted: administrator A joins and leaves new groups in a loop; the
/// group `gid` is shut down so that moves get stuck; A is cut off from the controller in
/// the middle of an operation; B must see a newer configuration and A's last change
/// either done or not, never half. When A is reconnected, its retried change applies at
/// most once (same configuration number), and a change conditional on its stale view is
/// refused.
fn partition_ctrler(t: &mut Tester, gid: Gid, leases: bool) {
    let (a, b) = (t.admins[0], t.admins[1]);
    let num = t.query().num;
    let pool: Vec<Gid> = (2..=4).collect();
    let start = t.sim.now();
    let stop_at = start + SEC + t.sim.rng().rand_range(0..400) * MS;
    let mut k = 0usize;
    let mut last: Option<CtrlOp> = None;
    let mut shut = false;
    let cut_at = stop_at + SEC;
    // A's loop (the lab's joinGroups / leaveGroups: change, wait until the shards moved,
    // pause), interleaved with the tester's schedule in 20 ms slices.
    enum Phase {
        Idle,
        Op,
        Settle(u64),
        Pause(u64),
    }
    let mut phase = Phase::Idle;
    while t.sim.now() < cut_at {
        if !shut && t.sim.now() >= stop_at {
            t.shutdown_group(gid);
            shut = true;
        }
        phase = match phase {
            Phase::Idle => {
                let ngid = pool[k / 2 % pool.len()];
                let op = if k.is_multiple_of(2) {
                    t.start_group(ngid);
                    CtrlOp::join(ngid, t.addrs(ngid))
                } else {
                    CtrlOp::leave(ngid)
                };
                k += 1;
                last = Some(op.clone());
                t.admin_start(a, op, None);
                Phase::Op
            }
            Phase::Op if t.admin_idle(a) => match t.admin_records.last().map(|r| &r.result) {
                Some(Ok(CtrlOutput::Changed { num })) => Phase::Settle(*num),
                other => t.fail(&format!("A's {last:?}: {other:?}")),
            },
            Phase::Settle(num) if t.groups_settled(num) => {
                Phase::Pause(t.sim.now() + INTER_GROUP_DELAY)
            }
            Phase::Pause(until) if t.sim.now() >= until => Phase::Idle,
            p => p,
        };
        let left = cut_at - t.sim.now();
        t.sleep(left.min(20 * MS));
    }
    // Cut A off (its operation may be in flight).
    for &c in &t.ctrlers.clone() {
        t.sim.set_link(a, c, false);
        t.sim.set_link(c, a, false);
    }
    if leases {
        t.sleep(SEC);
    }
    t.start_group(gid);
    let c = match t.admin_on(b, CtrlOp::latest()) {
        Ok(CtrlOutput::Config(c)) => c,
        other => t.fail(&format!("B's query: {other:?}")),
    };
    if c.num <= num {
        t.fail(&format!(
            "B sees configuration {}, not newer than {num}",
            c.num
        ));
    }
    // A's last change is either in B's view or not; after reconnecting, A's retry
    // returns the original outcome without making another configuration.
    let a_busy = !t.admin_idle(a);
    t.sim.connect_all();
    if a_busy {
        match t.admin_wait(a, 30 * SEC) {
            Some(Ok(CtrlOutput::Changed { num })) if num <= t.query().num => {}
            // Leaving a gid an earlier retry already removed cannot happen: sessions.
            other => t.fail(&format!("A's retried {last:?}: {other:?}")),
        }
    }
    let latest = t.query();
    // A, still believing configuration `c.num - 1` or older is current, is fenced off.
    t.admin_start(a, CtrlOp::leave(GID1), Some(num));
    match t.admin_wait(a, 10 * SEC) {
        Some(Err(CtrlError::ConfigChanged { .. })) => {}
        other => t.fail(&format!("A's stale conditional change: {other:?}")),
    }
    // Clean up: the pool's groups leave again.
    for g in pool {
        if latest.groups.contains_key(&g) {
            t.leave(&[g]);
        }
    }
    let num = t.query().num;
    t.wait_settled(num, 20 * SEC);
}

fn recover(seed: u64, rounds: usize, reliable: bool, leases: bool, clients: bool) {
    let mut t = tester(seed, 4, 5, reliable, None);
    stop_spare_groups(&mut t);
    let data = init(&mut t, 20);
    let writers: Vec<NodeId> = if clients {
        t.clients[1..].to_vec()
    } else {
        Vec::new()
    };
    let programs = writers
        .iter()
        .map(|&c| {
            (
                c,
                Box::new(Putter::new(c as u64, "k0".into())) as Box<dyn Program<Report>>,
            )
        })
        .collect();
    t.run_programs(programs);
    let end = t.sim.now() + 60 * SEC;
    for _ in 0..rounds {
        partition_ctrler(&mut t, GID1, leases);
    }
    if clients && t.sim.now() < end {
        let left = end - t.sim.now();
        t.sleep(left);
    }
    let reports = t.stop_programs(&writers, 120 * SEC);
    if reports.iter().any(|r| r.ops == 0) {
        t.fail("a client made no progress");
    }
    if !clients {
        check_gets(&mut t, &data);
    }
    t.check_versioned();
    t.check_ctrler();
}

#[test]
fn recover_ctrler_5b() {
    sim_seeds!(LAB_SEEDS, |seed| recover(seed, 5, true, false, false));
}

#[test]
fn partition_recovery_reliable_no_clerk_5c() {
    sim_seeds!(LAB_SEEDS, |seed| recover(seed, 5, true, true, false));
}

#[test]
fn partition_recovery_unreliable_no_clerk_5c() {
    sim_seeds!(LAB_SEEDS, |seed| recover(seed, 3, false, true, false));
}

#[test]
fn partition_recovery_reliable_clerks_5c() {
    sim_seeds!(LAB_SEEDS, |seed| recover(seed, 5, true, true, true));
}

#[test]
fn partition_recovery_unreliable_clerks_5c() {
    sim_seeds!(LAB_SEEDS, |seed| recover(seed, 3, false, true, true));
}

fn concurrent_ctrlers(seed: u64, reliable: bool) {
    // TestConcurrentReliable5C / TestAcquireLockConcurrentUnreliable5C: 4 administrators
    // for 2 s, each joining a group and leaving it again if the join succeeded.
    let mut t = tester(seed, 5, 1, reliable, None);
    stop_spare_groups(&mut t);
    let data = init(&mut t, 20);
    let admins: Vec<NodeId> = t.admins[..4].to_vec();
    let end = t.sim.now() + 2 * SEC;
    let mut joined = [false; 4];
    for g in 2..=5 {
        t.start_group(g);
    }
    // Each administrator: change, pause 200 ms (the lab's INTERGRPDELAY), change back.
    let mut ready_at = [0u64; 4];
    let mut waiting = [false; 4];
    while t.sim.now() < end {
        for (i, &a) in admins.iter().enumerate() {
            if waiting[i] && t.admin_idle(a) {
                waiting[i] = false;
                ready_at[i] = t.sim.now() + INTER_GROUP_DELAY;
            }
            if !waiting[i] && t.sim.now() >= ready_at[i] {
                let gid = 2 + i as Gid;
                let op = if joined[i] {
                    CtrlOp::leave(gid)
                } else {
                    CtrlOp::join(gid, t.addrs(gid))
                };
                joined[i] = !joined[i];
                waiting[i] = true;
                t.admin_start(a, op, None);
            }
        }
        t.sleep(10 * MS);
    }
    for &a in &admins {
        if t.admin_wait(a, 30 * SEC).is_none() {
            t.fail("an administrator did not finish");
        }
    }
    let num = t.query().num;
    t.wait_settled(num, 20 * SEC);
    check_gets(&mut t, &data);
    t.check_versioned();
    t.check_ctrler();
}

#[test]
fn concurrent_ctrlers_reliable_5c() {
    sim_seeds!(LAB_SEEDS, |seed| concurrent_ctrlers(seed, true));
}

#[test]
fn concurrent_ctrlers_unreliable_5c() {
    sim_seeds!(LAB_SEEDS, |seed| concurrent_ctrlers(seed, false));
}

#[test]
fn partition_controller_join_5c() {
    // TestPartitionControllerJoin5C: A joins a new gid whose group is down; A is cut off
    // after the join committed but before it heard back; B sees the gid as a member; the
    // group comes back and the shards move; A's retry returns the same configuration
    // number (no second join); A's change from its stale view is refused.
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = tester(seed, 2, 1, true, None);
        stop_spare_groups(&mut t);
        let data = init(&mut t, 20);
        let (a, b) = (t.admins[0], t.admins[1]);
        let before = t.query().num;
        let addrs = t.addrs(2);
        t.admin_start(a, CtrlOp::join(2, addrs), None);
        // Cut A off as soon as the join is in the controller's log.
        let ctrlers = t.ctrlers.clone();
        let committed = t.run_until(
            |t| {
                ctrlers.iter().any(|&c| {
                    t.sim
                        .node(c)
                        .and_then(|n| n.ctrler())
                        .is_some_and(|s| s.ctrler().latest().num > before)
                })
            },
            10 * SEC,
        );
        assert!(committed, "the join reached the controller");
        for &c in &ctrlers {
            t.sim.set_link(a, c, false);
            t.sim.set_link(c, a, false);
        }
        t.sleep(SEC);
        t.start_group(2);
        let c = match t.admin_on(b, CtrlOp::latest()) {
            Ok(CtrlOutput::Config(c)) => c,
            other => t.fail(&format!("B's query: {other:?}")),
        };
        if !c.groups.contains_key(&2) || c.num != before + 1 {
            t.fail(&format!("B does not see the join: {c:?}"));
        }
        t.sim.connect_all();
        match t.admin_wait(a, 10 * SEC) {
            Some(Ok(CtrlOutput::Changed { num })) if num == before + 1 => {}
            other => t.fail(&format!("A's join returned {other:?}")),
        }
        t.admin_start(a, CtrlOp::leave(2), Some(before));
        match t.admin_wait(a, 10 * SEC) {
            Some(Err(CtrlError::ConfigChanged { latest })) if latest == before + 1 => {}
            other => t.fail(&format!("A's stale leave: {other:?}")),
        }
        t.sleep(SEC);
        t.wait_settled(before + 1, 10 * SEC);
        check_gets(&mut t, &data);
        t.check_versioned();
        t.check_ctrler();
    });
}
