//! The 2020-2024 kvraft labs (Lab 3A/3B, or 4A/4B in 2024; LAB-SCENARIOS.md 6.3): Get,
//! Put and Append without versions, clients de-duplicating retried Appends through
//! sessions, on the replicated service. Test names carry the 2024 suffixes.

use stepwise_kv::Op;
use stepwise_sim::{Harness, MS, NodeId, SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{KvTester, Program, ProgramTester, Report};
use crate::kvraft::{Generic, crash, partitions, randomkeys, replicated, snapshots, unreliable};
use crate::programs::{AppendClient, check_clnt_appends, one_key_appends};

/// electionTimeout of the legacy tester.
const ELECTION_TIMEOUT: u64 = SEC;

/// The legacy GenericTest: 3 iterations; clients run 5 s (the partitioner from 1 s to
/// 5 s); heal; crash and restart all; then every client's appends must be in its key once
/// and in order; Raft state <= 8x maxraftstate, or no snapshot at all with -1.
fn generic_test(g: Generic, seed: u64) {
    let mut t = replicated(g.nservers, g.nclients + 1, g.reliable, g.maxraftstate, seed);
    let ck = t.clerk(0);
    for _ in 0..3 {
        let clerks: Vec<NodeId> = (1..=g.nclients).map(|k| t.clerk(k)).collect();
        let programs: Vec<(NodeId, Box<dyn Program<Report>>)> = clerks
            .iter()
            .enumerate()
            .map(|(cli, &c)| {
                let nkeys = g.randomkeys.then_some(g.nclients as u64);
                let p: Box<dyn Program<Report>> =
                    Box::new(AppendClient::new(cli as u64, cli.to_string(), nkeys, false));
                (c, p)
            })
            .collect();
        t.run_programs(programs);
        if g.partitions {
            // Allow the clients to perform some operations without interruption.
            t.sleep(SEC);
            t.run_until_partitioning(|_| false, 4 * SEC);
        } else {
            t.sleep(5 * SEC);
        }
        for &c in &clerks {
            t.sim.input(c, crate::harness::ClientInput::Stop);
        }
        if g.partitions {
            // Reconnect; a request submitted in a minority returns once that server learns
            // of a new term.
            t.sim.connect_all();
            t.sleep(ELECTION_TIMEOUT);
        }
        if g.crash {
            t.shutdown_all();
            t.sleep(ELECTION_TIMEOUT);
            t.start_all();
        }
        // Wait for the clients.
        let reports = t.stop_programs(&clerks, 120 * SEC);
        for (cli, r) in reports.iter().enumerate() {
            let (v, _) = t.get(ck, &cli.to_string());
            if !g.randomkeys
                && let Err(e) = check_clnt_appends(cli as u64, &v, r.ops)
            {
                t.fail(&e);
            }
        }
        match g.maxraftstate {
            Some(max) => {
                let sz = t.log_size();
                if sz > 8 * max {
                    t.fail(&format!("logs were not trimmed ({sz} > 8*{max})"));
                }
            }
            None => {
                let ssz = t.snapshot_size();
                if ssz > 0 {
                    t.fail(&format!("snapshot too large ({ssz}), should not be used"));
                }
            }
        }
    }
    t.check_legacy();
}

macro_rules! generic {
    ($($(#[$doc:meta])* $name:ident: $g:expr;)*) => {$(
        $(#[$doc])*
        #[test]
        fn $name() {
            sim_seeds!(LAB_SEEDS, |seed| generic_test($g, seed));
        }
    )*};
}

generic! {
    /// TestBasic4A (2024): 1 client, 5 servers.
    basic_4a_2024: Generic::new(1, 5);
    /// TestConcurrent4A (2024): 5 clients.
    concurrent_4a_2024: Generic::new(5, 5);
    /// TestUnreliable4A (2024): 5 clients, unreliable network.
    unreliable_4a_2024: unreliable(Generic::new(5, 5));
    /// TestManyPartitionsOneClient4A (2024).
    many_partitions_one_client_4a_2024: partitions(Generic::new(1, 5));
    /// TestManyPartitionsManyClients4A (2024).
    many_partitions_many_clients_4a_2024: partitions(Generic::new(5, 5));
    /// TestPersistOneClient4A (2024).
    persist_one_client_4a_2024: crash(Generic::new(1, 5));
    /// TestPersistConcurrent4A (2024).
    persist_concurrent_4a_2024: crash(Generic::new(5, 5));
    /// TestPersistConcurrentUnreliable4A (2024).
    persist_concurrent_unreliable_4a_2024: unreliable(crash(Generic::new(5, 5)));
    /// TestPersistPartition4A (2024).
    persist_partition_4a_2024: partitions(crash(Generic::new(5, 5)));
    /// TestPersistPartitionUnreliable4A (2024).
    persist_partition_unreliable_4a_2024: unreliable(partitions(crash(Generic::new(5, 5))));
    /// TestPersistPartitionUnreliableLinearizable4A (2024): 15 clients, 7 servers, random
    /// keys.
    persist_partition_unreliable_linearizable_4a_2024:
        randomkeys(unreliable(partitions(crash(Generic::new(15, 7)))));
    /// TestSnapshotRecover4B (2024).
    snapshot_recover_4b_2024: snapshots(crash(Generic::new(1, 5)));
    /// TestSnapshotRecoverManyClients4B (2024): 20 clients.
    snapshot_recover_many_clients_4b_2024: snapshots(crash(Generic::new(20, 5)));
    /// TestSnapshotUnreliable4B (2024).
    snapshot_unreliable_4b_2024: snapshots(unreliable(Generic::new(5, 5)));
    /// TestSnapshotUnreliableRecover4B (2024).
    snapshot_unreliable_recover_4b_2024: snapshots(crash(unreliable(Generic::new(5, 5))));
    /// TestSnapshotUnreliableRecoverConcurrentPartition4B (2024).
    snapshot_unreliable_recover_concurrent_partition_4b_2024:
        snapshots(partitions(crash(unreliable(Generic::new(5, 5)))));
    /// TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4B (2024): 15 clients,
    /// 7 servers, random keys.
    snapshot_unreliable_recover_concurrent_partition_linearizable_4b_2024:
        randomkeys(snapshots(partitions(crash(unreliable(Generic::new(15, 7))))));
}

/// The legacy speed test: 1000 sequential Appends within 33.3 s, all present in order.
fn speed(maxraftstate: Option<usize>, seed: u64) {
    let mut t = replicated(3, 1, true, maxraftstate, seed);
    let ck = t.clerk(0);
    t.get(ck, "x");
    const NOPS: u64 = 1000;
    let start = t.sim.now();
    for i in 0..NOPS {
        t.op(ck, Op::append("x", format!("x 0 {i} y")))
            .expect("Append");
    }
    let dur = t.sim.now() - start;
    let (v, _) = t.get(ck, "x");
    if let Err(e) = check_clnt_appends(0, &v, NOPS) {
        t.fail(&e);
    }
    assert!(
        dur <= NOPS * 100 * MS / 3,
        "operations completed too slowly: {} ms",
        dur / MS
    );
    t.check_legacy();
}

/// TestSpeed4A (2024).
#[test]
fn speed_4a_2024() {
    sim_seeds!(LAB_SEEDS, |seed| speed(None, seed));
}

/// TestSpeed4B (2024): with maxraftstate 1000.
#[test]
fn speed_4b_2024() {
    sim_seeds!(LAB_SEEDS, |seed| speed(Some(1000), seed));
}

/// TestUnreliableOneKey4A (2024): 3 servers, unreliable; 5 clients append 10 elements
/// each to "k"; all present, once, in per-client order.
///
/// The lab checks only the final value here. We also check the history for
/// linearizability, and for that the Appends return the old value: with plain Appends
/// and a single final Get the check must try every interleaving of 50 appends (Porcupine
/// times out and passes), while old values pin each Append's position.
#[test]
fn unreliable_one_key_4a_2024() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let (nclient, upto) = (5, 10);
        let mut t = replicated(3, nclient + 1, false, None, seed);
        one_key_appends(&mut t, nclient, upto);
    });
}

fn check(t: &mut KvTester, ck: NodeId, key: &str, value: &str) {
    let (v, _) = t.get(ck, key);
    if v != value {
        t.fail(&format!("Get({key}): expected {value:?}, got {v:?}"));
    }
}

fn put(t: &mut KvTester, ck: NodeId, key: &str, value: &str) {
    t.op(ck, Op::put_any(key.to_owned(), value.to_owned()))
        .expect("Put");
}

/// TestOnePartition4A (2024, reliable): no progress in the minority for 1 s; progress in
/// the majority; completion within 3 s after the heal.
#[test]
fn one_partition_4a_2024() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = replicated(5, 4, true, None, seed);
        let (ck, ckp1, ckp2a, ckp2b) = (t.clerk(0), t.clerk(1), t.clerk(2), t.clerk(3));
        put(&mut t, ck, "1", "13");
        let leader = t.wait_leader();
        let (p1, p2) = t.make_partition(leader);
        t.partition(&p1, &p2);
        t.clerk_reaches(ckp1, &p1);
        t.clerk_reaches(ckp2a, &p2);
        t.clerk_reaches(ckp2b, &p2);
        put(&mut t, ckp1, "1", "14");
        check(&mut t, ckp1, "1", "14");
        t.start_op(ckp2a, Op::put_any("1", "15"));
        t.start_op(ckp2b, Op::get("1"));
        t.sleep(SEC);
        if t.idle(ckp2a) {
            t.fail("Put in minority completed");
        }
        if t.idle(ckp2b) {
            t.fail("Get in minority completed");
        }
        check(&mut t, ckp1, "1", "14");
        put(&mut t, ckp1, "1", "16");
        check(&mut t, ckp1, "1", "16");
        t.sim.connect_all();
        let all = t.servers();
        t.clerk_reaches(ckp2a, &all);
        t.clerk_reaches(ckp2b, &all);
        t.sleep(ELECTION_TIMEOUT);
        if t.wait_op(ckp2a, 3 * SEC).is_none() {
            t.fail("Put did not complete");
        }
        if t.wait_op(ckp2b, 3 * SEC).is_none() {
            t.fail("Get did not complete");
        }
        check(&mut t, ck, "1", "15");
        t.check_legacy();
    });
}

/// TestSnapshotRPC4B (2024): the lagging server catches up through InstallSnapshot.
#[test]
fn snapshot_rpc_4b_2024() {
    sim_seeds!(LAB_SEEDS, |seed| {
        const MAXRAFTSTATE: usize = 1000;
        let mut t = replicated(3, 3, true, Some(MAXRAFTSTATE), seed);
        let (ck, ck1, ck2) = (t.clerk(0), t.clerk(1), t.clerk(2));
        put(&mut t, ck, "a", "A");
        check(&mut t, ck, "a", "A");
        t.partition(&[0, 1], &[2]);
        t.clerk_reaches(ck1, &[0, 1]);
        for i in 0..50 {
            put(&mut t, ck1, &i.to_string(), &i.to_string());
        }
        t.sleep(ELECTION_TIMEOUT);
        put(&mut t, ck1, "b", "B");
        let sz = t.log_size();
        if sz > 8 * MAXRAFTSTATE {
            t.fail(&format!("logs were not trimmed ({sz} > 8*{MAXRAFTSTATE})"));
        }
        t.partition(&[0, 2], &[1]);
        t.clerk_reaches(ck2, &[0, 2]);
        put(&mut t, ck2, "c", "C");
        put(&mut t, ck2, "d", "D");
        check(&mut t, ck2, "a", "A");
        check(&mut t, ck2, "b", "B");
        check(&mut t, ck2, "1", "1");
        check(&mut t, ck2, "49", "49");
        t.partition(&[0, 1, 2], &[]);
        put(&mut t, ck, "e", "E");
        check(&mut t, ck, "c", "C");
        check(&mut t, ck, "e", "E");
        check(&mut t, ck, "1", "1");
        t.check_legacy();
    });
}

/// TestSnapshotSize4B (2024): Raft state <= 8000 bytes, snapshot <= 500 bytes.
#[test]
fn snapshot_size_4b_2024() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = replicated(3, 1, true, Some(1000), seed);
        let ck = t.clerk(0);
        for _ in 0..200 {
            put(&mut t, ck, "x", "0");
            check(&mut t, ck, "x", "0");
            put(&mut t, ck, "x", "1");
            check(&mut t, ck, "x", "1");
        }
        let sz = t.log_size();
        if sz > 8000 {
            t.fail(&format!("logs were not trimmed ({sz} > 8000)"));
        }
        let ssz = t.snapshot_size();
        if ssz > 500 {
            t.fail(&format!("snapshot too large ({ssz} > 500)"));
        }
        t.check_legacy();
    });
}
