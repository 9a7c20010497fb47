//! The 2025 kvraft labs (`kvraft1`, 4B and 4C; LAB-SCENARIOS.md 6.2): the versioned KV
//! service replicated on Raft, with the lab's clients, faults and thresholds.

use stepwise_kv::{KvError, Op};
use stepwise_sim::{Harness, MS, NodeId, SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{KvTester, Program, ProgramTester, Report, Service, Setup};
use crate::programs::OneClientPut;

/// NITER: iterations of the generic test.
const NITER: usize = 3;
/// kvtest.ElectionTimeout.
const ELECTION_TIMEOUT: u64 = SEC;

/// The parameters of the lab's GenericTest (also the 2020-2024 one, in `kvraft_legacy`).
#[derive(Clone, Copy, Debug)]
pub struct Generic {
    pub nclients: usize,
    pub nservers: usize,
    pub reliable: bool,
    pub crash: bool,
    pub partitions: bool,
    /// `None` is the lab's -1.
    pub maxraftstate: Option<usize>,
    pub randomkeys: bool,
}

impl Generic {
    pub const fn new(nclients: usize, nservers: usize) -> Generic {
        Generic {
            nclients,
            nservers,
            reliable: true,
            crash: false,
            partitions: false,
            maxraftstate: None,
            randomkeys: false,
        }
    }
}

pub fn replicated(
    servers: usize,
    clients: usize,
    reliable: bool,
    maxraftstate: Option<usize>,
    seed: u64,
) -> KvTester {
    KvTester::new(Setup {
        servers,
        clients,
        reliable,
        service: Service::Replicated {
            max_raft_state: maxraftstate,
        },
        sessions: true,
        seed,
    })
}

/// The lab's GenericTest (2025 kvraft_test.go).
pub fn generic_test(g: Generic, seed: u64) {
    // Clerk 0 is the tester's own `ck`; clerks 1..=nclients run the client loop.
    let mut t = replicated(g.nservers, g.nclients + 1, g.reliable, g.maxraftstate, seed);
    let ck = t.clerk(0);
    let keys: Vec<String> = if g.randomkeys {
        (0..100).map(|i| format!("k{i}")).collect()
    } else {
        vec!["k".to_owned()]
    };
    let (mut sum_ok, mut sum_maybe) = (0, 0);
    for _ in 0..NITER {
        let clerks: Vec<NodeId> = (1..=g.nclients).map(|k| t.clerk(k)).collect();
        let programs: Vec<(NodeId, Box<dyn Program<Report>>)> = clerks
            .iter()
            .map(|&c| {
                let p: Box<dyn Program<Report>> =
                    Box::new(OneClientPut::new(c as u64, keys.clone(), g.randomkeys));
                (c, p)
            })
            .collect();
        t.run_programs(programs);
        // The clients run 1 s; with partitions the partitioner starts after 1 s too.
        t.sleep(SEC);
        let reports = if g.partitions {
            t.stop_programs_partitioning(&clerks)
        } else {
            t.stop_programs(&clerks, 120 * SEC)
        };
        if !g.randomkeys {
            // CheckPutConcurrent, cumulative across iterations.
            sum_ok += reports.iter().map(|r| r.ok).sum::<u64>();
            sum_maybe += reports.iter().map(|r| r.maybe).sum::<u64>();
            t.start_op(ck, Op::get("k"));
            let done = if g.partitions {
                t.run_until_partitioning(|t| t.idle(ck), 120 * SEC)
            } else {
                t.run_until(|t| t.idle(ck), 120 * SEC)
            };
            if !done {
                t.fail("CheckPutConcurrent: Get did not finish");
            }
            let ver = match t.records.last().map(|r| r.result.clone()) {
                Some(Ok(stepwise_kv::KvOutput::Value { version, .. })) => version,
                other => t.fail(&format!("CheckPutConcurrent: Get returned {other:?}")),
            };
            let reliable = g.reliable && !g.crash && !g.partitions;
            if reliable && ver != sum_ok {
                t.fail(&format!(
                    "Wrong number of puts: server {ver} clnts {sum_ok}"
                ));
            }
            if ver > sum_ok + sum_maybe {
                t.fail(&format!(
                    "Wrong number of puts: server {ver} clnts {sum_ok}+{sum_maybe}"
                ));
            }
            // With sessions every Put executes once and reports its original answer, so
            // the count is exact even with faults (stronger than the lab's check).
            if ver != sum_ok {
                t.fail(&format!(
                    "exactly-once violated: server version {ver}, OK Puts {sum_ok}"
                ));
            }
        }
        if g.partitions {
            t.sim.connect_all();
            t.sleep(ELECTION_TIMEOUT);
        }
        if g.crash {
            t.shutdown_all();
            t.sleep(ELECTION_TIMEOUT);
            t.start_all();
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
    t.check_versioned();
}

/// The lab's GenericTestSpeed: 1000 sequential Puts must take at most 33.3 s (at least
/// three per 100 ms heartbeat interval: commits must not wait for a heartbeat).
pub fn speed_test(maxraftstate: Option<usize>, seed: u64) {
    let mut t = replicated(3, 1, true, maxraftstate, seed);
    let ck = t.clerk(0);
    // Wait for a leader.
    t.get(ck, "x");
    let start = t.sim.now();
    const NOPS: u64 = 1000;
    for i in 0..NOPS {
        let r = t.op(ck, Op::put("k", "x", i));
        if r.is_err() {
            t.fail(&format!("Put {i} returned {r:?}"));
        }
    }
    let dur = t.sim.now() - start;
    let (_, ver) = t.get(ck, "k");
    assert_eq!(ver, NOPS, "Get returned version {ver}");
    // Heartbeat interval should be ~100 ms; require at least 3 ops per.
    const LIMIT: u64 = NOPS * 100 * MS / 3;
    assert!(
        dur <= LIMIT,
        "operations completed too slowly: {} ms for {NOPS} ops (limit {} ms)",
        dur / MS,
        LIMIT / MS
    );
    if std::env::var("STEPWISE_VERBOSE").is_ok() {
        eprintln!(
            "speed: {NOPS} Puts in {} ms of virtual time ({} us/op)",
            dur / MS,
            dur / NOPS
        );
    }
    t.check_versioned();
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

pub const fn unreliable(mut g: Generic) -> Generic {
    g.reliable = false;
    g
}
pub const fn crash(mut g: Generic) -> Generic {
    g.crash = true;
    g
}
pub const fn partitions(mut g: Generic) -> Generic {
    g.partitions = true;
    g
}
pub const fn snapshots(mut g: Generic) -> Generic {
    g.maxraftstate = Some(1000);
    g
}
pub const fn randomkeys(mut g: Generic) -> Generic {
    g.randomkeys = true;
    g
}

generic! {
    /// TestBasic4B: 1 client, 5 servers, reliable.
    basic_4b: Generic::new(1, 5);
    /// TestConcurrent4B: 5 clients.
    concurrent_4b: Generic::new(5, 5);
    /// TestUnreliable4B: 5 clients, unreliable network.
    unreliable_4b: unreliable(Generic::new(5, 5));
    /// TestManyPartitionsOneClient4B: 1 client, partitions.
    many_partitions_one_client_4b: partitions(Generic::new(1, 5));
    /// TestManyPartitionsManyClients4B: 5 clients, partitions.
    many_partitions_many_clients_4b: partitions(Generic::new(5, 5));
    /// TestPersistOneClient4B: 1 client, crashes.
    persist_one_client_4b: crash(Generic::new(1, 5));
    /// TestPersistConcurrent4B: 5 clients, crashes.
    persist_concurrent_4b: crash(Generic::new(5, 5));
    /// TestPersistConcurrentUnreliable4B: 5 clients, crashes, unreliable network.
    persist_concurrent_unreliable_4b: unreliable(crash(Generic::new(5, 5)));
    /// TestPersistPartition4B: 5 clients, crashes, partitions.
    persist_partition_4b: partitions(crash(Generic::new(5, 5)));
    /// TestPersistPartitionUnreliable4B: 5 clients, crashes, partitions, unreliable.
    persist_partition_unreliable_4b: unreliable(partitions(crash(Generic::new(5, 5))));
    /// TestPersistPartitionUnreliableLinearizable4B: 15 clients, 7 servers, crashes,
    /// partitions, unreliable, random keys.
    persist_partition_unreliable_linearizable_4b:
        randomkeys(unreliable(partitions(crash(Generic::new(15, 7)))));
    /// TestSnapshotRecover4C: 1 client, crashes, maxraftstate 1000.
    snapshot_recover_4c: snapshots(crash(Generic::new(1, 5)));
    /// TestSnapshotRecoverManyClients4C: 20 clients, crashes, maxraftstate 1000.
    snapshot_recover_many_clients_4c: snapshots(crash(Generic::new(20, 5)));
    /// TestSnapshotUnreliable4C: 5 clients, unreliable, maxraftstate 1000.
    snapshot_unreliable_4c: snapshots(unreliable(Generic::new(5, 5)));
    /// TestSnapshotUnreliableRecover4C: 5 clients, unreliable, crashes, maxraftstate 1000.
    snapshot_unreliable_recover_4c: snapshots(crash(unreliable(Generic::new(5, 5))));
    /// TestSnapshotUnreliableRecoverConcurrentPartition4C: 5 clients, unreliable, crashes,
    /// partitions, maxraftstate 1000.
    snapshot_unreliable_recover_concurrent_partition_4c:
        snapshots(partitions(crash(unreliable(Generic::new(5, 5)))));
    /// TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4C: 15 clients, 7
    /// servers, unreliable, crashes, partitions, random keys, maxraftstate 1000.
    snapshot_unreliable_recover_concurrent_partition_linearizable_4c:
        randomkeys(snapshots(partitions(crash(unreliable(Generic::new(15, 7))))));
}

/// TestSpeed4B: 1000 sequential Puts, no snapshots.
#[test]
fn speed_4b() {
    sim_seeds!(LAB_SEEDS, |seed| speed_test(None, seed));
}

/// TestSpeed4C: 1000 sequential Puts with maxraftstate 1000.
#[test]
fn speed_4c() {
    sim_seeds!(LAB_SEEDS, |seed| speed_test(Some(1000), seed));
}

/// TestOnePartition4B (2025: unreliable network): a minority holding the old leader makes
/// no progress for 1 s; the majority does; after the heal the minority's pending Put
/// completes within 3 s.
#[test]
fn one_partition_4b() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = replicated(5, 4, false, None, seed);
        let (ck, ckp1, ckp2a, ckp2b) = (t.clerk(0), t.clerk(1), t.clerk(2), t.clerk(3));
        let ver0 = t.put_at_least_once(ck, "1", "13", 0);
        let leader = t.wait_leader();
        let (p1, p2) = t.make_partition(leader);
        t.partition(&p1, &p2);
        t.clerk_reaches(ckp1, &p1);
        t.clerk_reaches(ckp2a, &p2);
        t.clerk_reaches(ckp2b, &p2);
        let ver1 = t.put_at_least_once(ckp1, "1", "14", ver0);
        t.check_get(ckp1, "1", "14", ver1);
        // No progress in the minority.
        t.start_op(ckp2a, Op::put("1", "15", ver1));
        t.start_op(ckp2b, Op::get("1"));
        t.sleep(SEC);
        if t.idle(ckp2a) {
            t.fail("Put in minority completed");
        }
        if t.idle(ckp2b) {
            t.fail("Get in minority completed");
        }
        t.check_get(ckp1, "1", "14", ver1);
        let ver2 = t.put_at_least_once(ckp1, "1", "16", ver1);
        t.check_get(ckp1, "1", "16", ver2);
        // Completion after heal.
        t.sim.connect_all();
        let all = t.servers();
        t.clerk_reaches(ckp2a, &all);
        t.clerk_reaches(ckp2b, &all);
        t.sleep(ELECTION_TIMEOUT);
        let healed = t.sim.now();
        // The rest of ckp2a's PutAtLeastOnce("1", "15", ver1).
        let mut ver = ver1;
        loop {
            match t.wait_op(ckp2a, 3 * SEC) {
                None => t.fail("Put did not complete after heal"),
                Some(Ok(_)) => break,
                Some(Err(KvError::Version | KvError::Maybe)) => {
                    ver += 1;
                    t.start_op(ckp2a, Op::put("1", "15", ver));
                }
                Some(Err(e)) => t.fail(&format!("PutAtLeastOnce: {e:?}")),
            }
        }
        if t.sim.now() - healed > 3 * SEC {
            t.fail("Put did not complete within 3 s after heal");
        }
        t.check_get(ck, "1", "15", ver + 1);
        // The minority Get must finish too (the lab does not wait for it; we do).
        if t.wait_op(ckp2b, 10 * SEC).is_none() {
            t.fail("Get did not complete after heal");
        }
        t.check_versioned();
    });
}

/// TestSnapshotRPC4C: a partitioned server misses 50 Puts the majority compacted away,
/// then catches up through InstallSnapshot.
#[test]
fn snapshot_rpc_4c() {
    sim_seeds!(LAB_SEEDS, |seed| {
        const MAXRAFTSTATE: usize = 1000;
        let mut t = replicated(3, 4, true, Some(MAXRAFTSTATE), seed);
        let (ck, ck1, ck2, ck3) = (t.clerk(0), t.clerk(1), t.clerk(2), t.clerk(3));
        let ver = t.put_at_least_once(ck, "a", "A", 0);
        t.check_get(ck, "a", "A", ver);
        // A bunch of Puts into the majority partition.
        t.partition(&[0, 1], &[2]);
        t.clerk_reaches(ck1, &[0, 1]);
        for i in 0..50 {
            let k = i.to_string();
            t.put_at_least_once(ck1, &k, &k, 0);
        }
        t.sleep(ELECTION_TIMEOUT);
        let verb = t.put_at_least_once(ck1, "b", "B", 0);
        // Check that the majority's Raft logs have shrunk.
        let sz = t.log_size();
        if sz > 8 * MAXRAFTSTATE {
            t.fail(&format!("logs were not trimmed ({sz} > 8*{MAXRAFTSTATE})"));
        }
        // Now make the group that requires participation of the lagging server, so that
        // it has to catch up.
        t.partition(&[0, 2], &[1]);
        t.clerk_reaches(ck2, &[0, 2]);
        t.put_at_least_once(ck2, "c", "C", 0);
        t.put_at_least_once(ck2, "d", "D", 0);
        t.check_get(ck2, "a", "A", ver);
        t.check_get(ck2, "b", "B", verb);
        t.check_get(ck2, "1", "1", 1);
        t.check_get(ck2, "49", "49", 1);
        // Now everybody.
        t.partition(&[0, 1, 2], &[]);
        let vere = t.put_at_least_once(ck3, "e", "E", 0);
        t.check_get(ck3, "c", "C", 1);
        t.check_get(ck3, "e", "E", vere);
        t.check_get(ck3, "1", "1", 1);
        assert!(
            (0..3).any(
                |i| t.sim.node(i).and_then(|n| n.replica()).is_some_and(|r| r
                    .rsm()
                    .stats()
                    .snapshots_installed
                    > 0)
            ),
            "no server installed a snapshot"
        );
        t.check_versioned();
    });
}

/// TestSnapshotSize4C: 200 rounds of two Puts on one key with one client; the Raft state
/// stays under 8000 bytes and the snapshot under 500 bytes.
#[test]
fn snapshot_size_4c() {
    sim_seeds!(LAB_SEEDS, |seed| {
        const MAXRAFTSTATE: usize = 1000;
        const MAXSNAPSHOTSTATE: usize = 500;
        let mut t = replicated(3, 1, true, Some(MAXRAFTSTATE), seed);
        let ck = t.clerk(0);
        let mut ver = 0;
        for _ in 0..200 {
            ver = t.put_at_least_once(ck, "x", "0", ver);
            t.check_get(ck, "x", "0", ver);
            ver = t.put_at_least_once(ck, "x", "1", ver);
            t.check_get(ck, "x", "1", ver);
        }
        // Check that servers have thrown away most of their log entries.
        let sz = t.log_size();
        if sz > 8 * MAXRAFTSTATE {
            t.fail(&format!("logs were not trimmed ({sz} > 8*{MAXRAFTSTATE})"));
        }
        // Check that the snapshots are not unreasonably large.
        let ssz = t.snapshot_size();
        if ssz > MAXSNAPSHOTSTATE {
            t.fail(&format!("snapshot too large ({ssz} > {MAXSNAPSHOTSTATE})"));
        }
        assert!(ssz > 0, "no snapshot was taken");
        t.check_versioned();
    });
}

/// The lock of the 2025 lab on the replicated service (the lab runs it on the single
/// server only): 10 clients, unreliable network, for 2 s.
#[test]
fn lock_many_clients_unreliable_replicated() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = replicated(3, 10, false, Some(1000), seed);
        crate::lock::run_lock_clients(&mut t, 10);
    });
}
