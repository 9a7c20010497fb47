//! Performance of migration and of the sharded service, in the simulator.
//!
//! * `unaffected_shards_keep_their_latency_during_migration` (run by `cargo test`): while
//!   a large shard moves back and forth between two groups, client operations on the
//!   other shards see at most twice their usual mean latency.
//! * `perf_report` (ignored; run it with
//!   `cargo test --release -p stepwise-shard --test shard_lab perf_report -- --ignored --nocapture`)
//!   prints the numbers in docs/PERFORMANCE.md: the time and bytes to move a shard
//!   of N keys, the latency of unaffected shards during migration, and throughput with 1,
//!   2 and 4 groups under the same client load.
//!
//! Virtual time counts protocol delays (ticks, round trips, the network's 0-1 ms delay)
//! but no CPU time and no bandwidth: a 1 MB message travels as fast as a 10-byte one.
//! Wall-clock figures are the cost of simulating everything on one thread.

use std::time::Instant;

use stepwise_kv::Op;
use stepwise_shard::config::Gid;
use stepwise_shard::ctrler::{CtrlOp, CtrlOutput};
use stepwise_shard::group::server::GroupEvent;
use stepwise_shard::key::key_to_shard;
use stepwise_sim::{Harness, MS, NodeId, Rand64, SEC, Time};

use crate::harness::{Event, Next, Program, ProgramTester, Report, Setup, Tester};

/// Puts and Gets on a fixed set of keys, recording nothing itself (the tester records
/// every operation with its times).
struct Load {
    keys: Vec<String>,
    n: u64,
}

impl Program<Report> for Load {
    fn next(&mut self, event: Event<'_>, stopping: bool, rng: &mut Rand64) -> Next {
        if let Event::Done(_, Err(e)) = event
            && *e != stepwise_kv::KvError::NoKey
        {
            return Next::Fail(format!("operation failed: {e:?}"));
        }
        if stopping {
            return Next::Stop;
        }
        let key = self.keys[rng.rand_range(0..self.keys.len() as u64) as usize].clone();
        self.n += 1;
        if rng.rand_range(0..2) == 0 {
            Next::Op(Op::get(key))
        } else {
            Next::Op(Op::put_any(key, format!("v{}", self.n)))
        }
    }

    fn report(&self) -> Report {
        Report {
            ops: self.n,
            ..Report::default()
        }
    }
}

/// `n` keys of shard `shard` (of 10).
fn keys_in(shard: usize, n: usize, prefix: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| key_to_shard(k.as_bytes(), 10) == shard)
        .take(n)
        .collect()
}

/// Writes `keys` with `value_len`-byte values through all clients in parallel.
fn fill(t: &mut Tester, keys: &[String], value_len: usize) {
    let clients = t.clients.clone();
    let value = "x".repeat(value_len);
    let mut next = 0;
    while next < keys.len() {
        for &c in &clients {
            if next < keys.len() && t.client_idle(c) {
                t.start_op(c, Op::put_any(keys[next].clone(), value.clone()));
                next += 1;
            }
        }
        t.run_until(|t| clients.iter().any(|&c| t.client_idle(c)), 10 * SEC);
    }
    if !t.run_until(|t| clients.iter().all(|&c| t.client_idle(c)), 10 * SEC) {
        t.fail("filling did not finish");
    }
}

/// Two groups; gid 1 owns everything, then `Move`s the big shard to gid 2 and back
/// `rounds` times while `load` clients work on keys of other shards. Returns, per move,
/// (virtual time until served, until garbage-collected, wire bytes sent by the old owner,
/// by the new owner), and the latencies (µs) of load operations outside and inside moves.
struct MoveRun {
    moves: Vec<(Time, Time, u64, u64)>,
    /// Wall-clock time to simulate each move (all nodes on one thread).
    wall: Vec<f64>,
    steady: Vec<Time>,
    moving: Vec<Time>,
}

fn move_run(seed: u64, nkeys: usize, value_len: usize, rounds: usize, load: usize) -> MoveRun {
    let mut t = Tester::new(Setup {
        gids: vec![1, 2],
        nclients: 4 + load,
        ..Setup::legacy(seed)
    });
    let num = t.join(&[1]);
    t.wait_settled(num, 10 * SEC);
    let big = 0usize;
    let keys = keys_in(big, nkeys, "big");
    fill(&mut t, &keys, value_len);
    // Gid 2 joins; shard 0 stays on gid 1 (the balancer keeps the lowest shards).
    let num = t.join(&[2]);
    t.wait_settled(num, 10 * SEC);
    assert_eq!(t.query().shards[big], 1);
    // Load on keys of every other shard.
    let load_keys: Vec<String> = (1..10).flat_map(|s| keys_in(s, 4, "load")).collect();
    let loaders: Vec<NodeId> = t.clients[4..].to_vec();
    let programs = loaders
        .iter()
        .map(|&c| {
            let p: Box<dyn Program<Report>> = Box::new(Load {
                keys: load_keys.clone(),
                n: 0,
            });
            (c, p)
        })
        .collect();
    t.run_programs(programs);
    let mut windows = Vec::new();
    let mut moves = Vec::new();
    let mut walls = Vec::new();
    let mut owner: Gid = 1;
    for _ in 0..rounds {
        t.sleep(SEC);
        let to = 3 - owner;
        let before = t.sim.stats();
        let t0 = t.sim.now();
        let wall0 = Instant::now();
        let events = t.events.len();
        match t.admin(CtrlOp::Move {
            shard: big as u32,
            gid: to,
        }) {
            Ok(CtrlOutput::Changed { .. }) => {}
            other => t.fail(&format!("move: {other:?}")),
        }
        let served = |t: &Tester, gid: Gid, want_in: bool| {
            t.events[events..].iter().find_map(|(time, node, e)| {
                let of = t.groups[&gid].contains(node);
                let hit = match e {
                    GroupEvent::ShardIn { shard, .. } => want_in && *shard == big as u32,
                    GroupEvent::ShardOut { shard, .. } => !want_in && *shard == big as u32,
                    GroupEvent::Config { .. } => false,
                };
                (of && hit).then_some(*time)
            })
        };
        if !t.run_until(|t| served(t, owner, false).is_some(), 30 * SEC) {
            t.fail("the move did not finish");
        }
        walls.push(wall0.elapsed().as_secs_f64());
        let t_in = served(&t, to, true).expect("installed before deleted");
        let t_gc = served(&t, owner, false).expect("checked");
        let after = t.sim.stats();
        let bytes = |gid: Gid| -> u64 {
            t.groups[&gid]
                .iter()
                .map(|&s| after.nodes[s].since(&before.nodes[s]).bytes_sent)
                .sum()
        };
        moves.push((t_in - t0, t_gc - t0, bytes(owner), bytes(to)));
        windows.push((t0, t_gc));
        owner = to;
    }
    t.sleep(SEC);
    t.stop_programs(&loaders, 30 * SEC);
    let mut run = MoveRun {
        moves,
        wall: walls,
        steady: Vec::new(),
        moving: Vec::new(),
    };
    let start = windows.first().map_or(0, |w| w.0) - SEC;
    for r in &t.records {
        if !loaders.contains(&r.client) || r.call < start {
            continue;
        }
        let latency = r.ret - r.call;
        if windows.iter().any(|&(a, b)| r.ret >= a && r.call <= b) {
            run.moving.push(latency);
        } else {
            run.steady.push(latency);
        }
    }
    t.check_legacy();
    run
}

fn mean(v: &[Time]) -> f64 {
    v.iter().sum::<Time>() as f64 / v.len().max(1) as f64
}

fn percentile(v: &[Time], p: f64) -> Time {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(0)
}

#[test]
fn unaffected_shards_keep_their_latency_during_migration() {
    // A 1000-key shard (100 KB) moves 4 times; 4 clients work on the other 9 shards.
    let run = move_run(stepwise_sim::seed_from_env(1), 1000, 100, 4, 4);
    assert!(
        run.moving.len() >= 20,
        "{} operations overlapped a move",
        run.moving.len()
    );
    let (steady, moving) = (mean(&run.steady), mean(&run.moving));
    assert!(
        moving <= 2.0 * steady,
        "mean latency {moving:.0} µs during moves vs {steady:.0} µs otherwise"
    );
}

#[test]
#[ignore = "prints performance numbers; run in release mode"]
fn perf_report() {
    println!("\n== Migration: one shard of N keys (100-byte values) moved between two groups");
    println!(
        "N      | served after | deleted after | bytes old owner | bytes new owner | simulation wall time"
    );
    for nkeys in [100, 1000, 10_000, 100_000] {
        let run = move_run(1, nkeys, 100, 4, 0);
        let wall = run.wall.iter().sum::<f64>() * 1000.0 / run.wall.len() as f64;
        let n = run.moves.len() as f64;
        let avg = |f: fn(&(Time, Time, u64, u64)) -> f64| run.moves.iter().map(f).sum::<f64>() / n;
        println!(
            "{nkeys:<6} | {:>9.1} ms | {:>10.1} ms | {:>15.0} | {:>15.0} | {wall:.1} ms per move",
            avg(|m| m.0 as f64 / MS as f64),
            avg(|m| m.1 as f64 / MS as f64),
            avg(|m| m.2 as f64),
            avg(|m| m.3 as f64),
        );
    }

    println!("\n== Latency of unaffected shards while a 10,000-key shard moves (8 clients)");
    let run = move_run(2, 10_000, 100, 6, 8);
    for (name, v) in [("steady", &run.steady), ("during moves", &run.moving)] {
        println!(
            "{name:<13}: {:>6} ops, mean {:>6.2} ms, p50 {:>6.2} ms, p99 {:>6.2} ms",
            v.len(),
            mean(v) / 1000.0,
            percentile(v, 0.5) as f64 / 1000.0,
            percentile(v, 0.99) as f64 / 1000.0
        );
    }

    println!("\n== Throughput, 32 closed-loop clients (Put/Get 50/50 on 200 keys), 10 s virtual");
    for groups in [1u64, 2, 4] {
        let mut t = Tester::new(Setup {
            gids: (1..=groups).collect(),
            nclients: 32,
            ..Setup::legacy(3)
        });
        let gids: Vec<Gid> = (1..=groups).collect();
        let num = t.join(&gids);
        t.wait_settled(num, 10 * SEC);
        let keys: Vec<String> = (0..200).map(|i| format!("key{i}")).collect();
        let clients = t.clients.clone();
        let programs = clients
            .iter()
            .map(|&c| {
                let p: Box<dyn Program<Report>> = Box::new(Load {
                    keys: keys.clone(),
                    n: 0,
                });
                (c, p)
            })
            .collect();
        t.run_programs(programs);
        t.sleep(SEC); // warm up
        let from = t.records.len();
        let wall = Instant::now();
        let v0 = t.sim.now();
        t.sleep(10 * SEC);
        let wall = wall.elapsed().as_secs_f64();
        let ops = t.records.len() - from;
        let virt = (t.sim.now() - v0) as f64 / SEC as f64;
        let lat: Vec<Time> = t.records[from..].iter().map(|r| r.ret - r.call).collect();
        println!(
            "{groups} group(s): {:>7.0} ops/s virtual, mean latency {:.2} ms; simulation {:>7.0} ops per wall second ({:.2} s)",
            ops as f64 / virt,
            mean(&lat) / 1000.0,
            ops as f64 / wall,
            wall
        );
        t.stop_programs(&clients, 30 * SEC);
    }
}
