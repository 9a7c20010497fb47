//! Randomized fault schedules: crashes (also in the middle of a step), restarts,
//! disconnections, partitions, message loss, duplication, delay and reordering, with
//! versioned readers/writers on shared keys, and appenders and counters (Incr, Delete,
//! Gets and the odd Put of a non-integer, on a key of their own and on one shared key).
//! Every run ends with the faults healed and checks:
//!
//! * linearizability of the whole history (versioned keys with the 2025 model, the other
//!   keys with the 2020-2024 model extended with Delete and Incr);
//! * no acknowledged write lost, none applied twice: every versioned key's final version
//!   equals the number of Puts acknowledged OK on it, every appended key holds exactly
//!   the acknowledged appends, in order, and every counter's own key holds what its
//!   acknowledged operations left (the counters also check each answer as it comes).

use std::collections::BTreeMap;

use stepwise_kv::{KvError, KvOutput, Op};
use stepwise_sim::{Harness, MS, NodeId, SEC, sim_seeds};

use crate::harness::{KvTester, Program, Report, Service, Setup, text};
use crate::programs::{Appender, Counter, RandomVersioned};

/// Seeds per CI run (the issue asks for at least 200; `STEPWISE_SEEDS` for more).
const RANDOM_SEEDS: u64 = 200;
/// Shared versioned keys.
const VKEYS: u64 = 3;

fn is_versioned_key(op: &Op) -> bool {
    op.key().starts_with(b"r")
}

fn schedule(seed: u64) {
    // The shape of the run comes from the seed, through a throw-away tester's PRNG.
    let mut pick = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut draw = |n: u64| {
        pick ^= pick << 13;
        pick ^= pick >> 7;
        pick ^= pick << 17;
        pick % n
    };
    let nservers = [3, 5][draw(2) as usize];
    let nversioned = 2 + draw(3) as usize;
    // Writers on keys of their own: each an appender or a counter.
    let nwriters = 1 + draw(3) as usize;
    let counters: Vec<bool> = (0..nwriters).map(|_| draw(2) == 0).collect();
    let max_raft_state = [None, Some(600), Some(2000)][draw(3) as usize];
    let small_windows = draw(2) == 0;
    let setup = Setup {
        servers: nservers,
        clients: 1 + nversioned + nwriters,
        reliable: true,
        service: Service::Replicated { max_raft_state },
        sessions: true,
        seed,
    };
    let mut t = if small_windows {
        KvTester::new_with(setup, |c| {
            // Small batches and windows so pipelining, probing and snapshots all happen.
            c.max_append_entries = 4;
            c.max_inflight = 3;
        })
    } else {
        KvTester::new(setup)
    };
    {
        let net = t.sim.net_mut();
        net.loss = [0.0, 0.05, 0.1, 0.2][draw(4) as usize];
        net.duplicate = [0.0, 0.05, 0.1][draw(3) as usize];
        net.max_delay = [MS, 10 * MS, 30 * MS][draw(3) as usize];
        net.long_reordering = draw(8) == 0;
    }
    let ck = t.clerk(0);
    let mut programs: Vec<(NodeId, Box<dyn Program<Report>>)> = Vec::new();
    for k in 0..nversioned {
        let c = t.clerk(1 + k);
        programs.push((c, Box::new(RandomVersioned::new(c as u64, VKEYS))));
    }
    for (k, &counter) in counters.iter().enumerate() {
        let c = t.clerk(1 + nversioned + k);
        if counter {
            programs.push((c, Box::new(Counter::new(c as u64))));
        } else {
            programs.push((c, Box::new(Appender::new(c as u64))));
        }
    }
    let clerks: Vec<NodeId> = programs.iter().map(|(c, _)| *c).collect();
    t.run_programs(programs);

    // Faults for 10 virtual seconds.
    let end = t.sim.now() + 10 * SEC;
    while t.sim.now() < end {
        let pause = (100 + t.sim.rng().rand_range(0..500)) * MS;
        t.sleep(pause);
        let i = t.sim.rng().rand_range(0..nservers as u64) as NodeId;
        match t.sim.rng().rand_range(0..10) {
            0 => t.shutdown_server(i),
            1 => {
                if t.sim.is_up(i) {
                    t.sim.crash_during_next_step(i);
                }
            }
            2 | 3 => {
                if !t.sim.is_up(i) {
                    t.start_server(i);
                }
            }
            4 => t.sim.disconnect(i),
            5 => t.sim.connect(i),
            6 | 7 => t.random_partition(),
            _ => t.sim.connect_all(),
        }
    }

    // Heal and let the clients finish.
    *t.sim.net_mut() = stepwise_sim::NetConfig::reliable();
    for i in 0..nservers {
        if !t.sim.is_up(i) {
            t.sim.restart(i);
        }
    }
    t.sim.connect_all();
    let reports = t.stop_programs(&clerks, 60 * SEC);

    // No acknowledged write lost, none applied twice.
    let mut ok_puts: BTreeMap<String, u64> = BTreeMap::new();
    for r in &t.records {
        if let (Op::Put { key, .. }, Ok(KvOutput::Written { .. })) = (&r.op, &r.result) {
            *ok_puts.entry(text(key)).or_default() += 1;
        }
    }
    for k in 0..VKEYS {
        let key = format!("r{k}");
        let (_, version) = t.get(ck, &key);
        let acked = ok_puts.get(&key).copied().unwrap_or(0);
        if version != acked {
            t.fail(&format!(
                "key {key}: version {version} but {acked} Puts were acknowledged"
            ));
        }
    }
    for (k, report) in reports.iter().enumerate().skip(nversioned) {
        for (key, expected) in &report.finals {
            let (v, version) = t.get(ck, key);
            if (v.as_str(), version == 0)
                != (expected.as_deref().unwrap_or_default(), expected.is_none())
            {
                t.fail(&format!(
                    "key {key}: holds {v:?} (version {version}), acknowledged operations left {expected:?}"
                ));
            }
        }
        if counters[k - nversioned] {
            continue;
        }
        let key = format!("a{}", clerks[k]);
        let expected: String = report.appends.iter().map(|(_, v)| v.as_str()).collect();
        let (v, _) = t.get(ck, &key);
        if v != expected {
            t.fail(&format!(
                "key {key}: holds {v:?}, acknowledged appends are {expected:?}"
            ));
        }
    }
    if std::env::var("STEPWISE_VERBOSE").is_ok() {
        let installed: u64 = (0..nservers)
            .filter_map(|i| {
                t.sim
                    .node(i)?
                    .replica()
                    .map(|r| r.rsm().stats().snapshots_installed)
            })
            .sum();
        let incr_errors = t
            .records
            .iter()
            .filter(|r| matches!(r.result, Err(KvError::NotInteger | KvError::Overflow)))
            .count();
        let deleted = t
            .records
            .iter()
            .filter(|r| matches!(r.result, Ok(KvOutput::Deleted { existed: true })))
            .count();
        eprintln!(
            "seed {seed}: {nservers} servers, snapshots {max_raft_state:?} (installed {installed}), {} ops ({deleted} deleted a key, {incr_errors} Incr errors), acked puts {ok_puts:?}, {:?}",
            t.records.len(),
            t.sim.stats().crashes
        );
    }
    t.check_versioned_where(is_versioned_key);
    t.check_legacy_where(|op| !is_versioned_key(op));
}

/// Randomized fault schedules over many seeds.
#[test]
fn random_fault_schedules() {
    sim_seeds!(RANDOM_SEEDS, schedule);
}
