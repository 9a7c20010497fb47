//! Throughput and latency of the replicated KV service in one process.
//!
//! Three [`Replica`]s (Raft + the KV state machine) and N [`Clerk`]s exchange messages
//! through in-memory queues (Rust values, no serialization) and persist to in-memory
//! storage ([`Persisted::apply`]). Every clerk keeps one operation outstanding; keys are 16
//! bytes (10,000 distinct), values 128 bytes. The leader hands the client requests that
//! arrived since its last turn to [`replica::Input::Requests`], so their writes share one
//! log entry (group commit); Gets are served through ReadIndex and do not go through the
//! log. Snapshots are on (`max_raft_state` 64 MiB). Every write is replicated, persisted,
//! committed and applied on all three replicas, with sessions.
//!
//! Two drivers run every row (`threads` column):
//!
//! * `1`: everything on one thread, in rounds (this file);
//! * `2`: the leader on one thread, the followers on another, batches pipelined between
//!   them (`pipelined.rs`);
//! * `4` (only with `KV_BENCH_THREADS=4` or `all`): a thread per replica plus one for the
//!   clerks (`threaded.rs`).
//!
//! ```text
//! cargo bench -p stepwise-kv --bench kv                   # the full table, both drivers
//! KV_BENCH_SECS=1 cargo bench -p stepwise-kv --bench kv   # shorter runs
//! KV_BENCH_THREADS=2 cargo bench -p stepwise-kv --bench kv # one driver (1, 2, 4, all)
//! ```
//!
//! Output: one line per (clients, mix, driver) with operations per second (wall time), per
//! CPU-second (the one-thread driver: its thread; the others: the whole process, spinning
//! included), and the p50/p99/p99.9 latency of one operation as a clerk sees it (start to
//! result).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stepwise_kv::clerk::{self, Clerk, ClerkConfig};
use stepwise_kv::replica::{self, Replica};
use stepwise_kv::{KvError, Op, Reply, Request, RsmConfig};
use stepwise_raft::{Config, Message, NodeId, Persisted};

mod pipelined;
mod threaded;

const SERVERS: u64 = 3;
/// Clerk addresses start here (server ids are 0..3).
const CLIENT_BASE: u64 = 1000;
const KEYS: usize = 10_000;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 128;
/// Snapshot threshold: `KV_BENCH_MAX_RAFT_STATE` bytes, default 64 MiB.
fn max_raft_state() -> usize {
    std::env::var("KV_BENCH_MAX_RAFT_STATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64 << 20)
}

/// Wall time per tick, as the Raft defaults assume.
const TICK: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, Debug)]
enum Mix {
    /// 90% Puts, 10% Gets.
    PutHeavy,
    /// 10% Puts, 90% Gets.
    GetHeavy,
}

/// A tiny xorshift for the workload (the cores take their seeds from the config).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The operations the clerks run: uniform keys, the mix's share of Puts.
pub(crate) struct Workload {
    keys: Vec<&'static [u8]>,
    values: Vec<&'static [u8]>,
    rng: Rng,
    mix: Mix,
}

impl Workload {
    pub(crate) fn new(mix: Mix) -> Workload {
        // The workload's keys and values are static, so handing one to a clerk costs no
        // reference counting (`Bytes::from_static`: not even a call through the vtable):
        // the generator should not show up in the profile.
        let keys = (0..KEYS)
            .map(|i| format!("key-{i:012}").leak().as_bytes())
            .inspect(|k| assert_eq!(k.len(), KEY_LEN))
            .collect();
        let values = (0..16u8)
            .map(|i| &*vec![b'a' + i; VALUE_LEN].leak())
            .collect();
        Workload {
            keys,
            values,
            rng: Rng(0x2545_f491_4f6c_dd1d),
            mix,
        }
    }

    /// The same workload from another seed (for a second generator).
    pub(crate) fn reseeded(mut self, seed: u64) -> Workload {
        self.rng = Rng(seed | 1);
        self
    }

    pub(crate) fn next_op(&mut self) -> Op {
        let r = self.rng.next();
        let key = Bytes::from_static(self.keys[(r % KEYS as u64) as usize]);
        let put = match self.mix {
            Mix::PutHeavy => !(r >> 32).is_multiple_of(10),
            Mix::GetHeavy => (r >> 32).is_multiple_of(10),
        };
        if put {
            let value = Bytes::from_static(self.values[((r >> 40) % 16) as usize]);
            Op::Put {
                key,
                value,
                version: None,
            }
        } else {
            Op::Get { key }
        }
    }
}

/// The three replicas' configurations.
pub(crate) fn replicas() -> Vec<Replica> {
    replicas_with(None, false)
}

/// The three replicas, with at most `max_append_entries` entries per AppendEntries if
/// given (the pipelined driver uses 1: see `pipelined`), and followers that serve reads
/// if `follower_reads`.
pub(crate) fn replicas_with(
    max_append_entries: Option<usize>,
    follower_reads: bool,
) -> Vec<Replica> {
    let ids: Vec<NodeId> = (0..SERVERS).collect();
    ids.iter()
        .map(|&id| {
            let mut raft = Config::new(id, ids.clone()).with_seed(id + 1);
            if let Some(n) = max_append_entries {
                raft.max_append_entries = n;
            }
            raft.follower_reads = follower_reads;
            let cfg = RsmConfig::new(raft).with_max_raft_state(Some(max_raft_state()));
            Replica::new(cfg).expect("valid config")
        })
        .collect()
}

/// `nclients` clerks that know the three replicas.
pub(crate) fn clerks(nclients: usize) -> Vec<Clerk> {
    let ids: Vec<NodeId> = (0..SERVERS).collect();
    (0..nclients)
        .map(|i| Clerk::new(ClerkConfig::new(CLIENT_BASE + i as u64, ids.clone())))
        .collect()
}

struct Bench {
    replicas: Vec<Replica>,
    disks: Vec<Persisted>,
    raft_inbox: Vec<VecDeque<(NodeId, Message)>>,
    request_inbox: Vec<Vec<(u64, Request)>>,
    reply_inbox: Vec<(usize, NodeId, Reply)>,
    clerks: Vec<Clerk>,
    started: Vec<Instant>,
    workload: Workload,
    /// Latencies of completed operations, in nanoseconds (while recording).
    latencies: Vec<u32>,
    completed: u64,
    recording: bool,
    /// With `KV_BENCH_OPS`: stop after this many operations (for instruction counting
    /// under callgrind) instead of after a time.
    stop_after: Option<u64>,
    /// Operations completed before recording started.
    warmup_done: u64,
    replica_out: Vec<replica::Action>,
    clerk_out: Vec<clerk::Action>,
}

impl Bench {
    fn new(nclients: usize, mix: Mix) -> Bench {
        Bench {
            replicas: replicas(),
            disks: vec![Persisted::default(); SERVERS as usize],
            raft_inbox: vec![VecDeque::new(); SERVERS as usize],
            request_inbox: vec![Vec::new(); SERVERS as usize],
            reply_inbox: Vec::new(),
            clerks: clerks(nclients),
            started: vec![Instant::now(); nclients],
            workload: Workload::new(mix),
            latencies: Vec::new(),
            completed: 0,
            recording: false,
            warmup_done: 0,
            stop_after: std::env::var("KV_BENCH_OPS")
                .ok()
                .and_then(|s| s.parse().ok()),
            replica_out: Vec::new(),
            clerk_out: Vec::new(),
        }
    }

    fn step_replica(&mut self, r: usize, input: replica::Input) {
        let mut out = std::mem::take(&mut self.replica_out);
        self.replicas[r].step_into(input, &mut out);
        for action in out.drain(..) {
            match action {
                replica::Action::Persist(a) => {
                    self.disks[r].apply(&a);
                }
                replica::Action::Send { to, msg } => {
                    self.raft_inbox[to as usize].push_back((r as NodeId, msg))
                }
                replica::Action::Reply { to, reply } => {
                    self.reply_inbox
                        .push(((to - CLIENT_BASE) as usize, r as NodeId, reply))
                }
                replica::Action::Halted(why) => panic!("replica halted: {why}"),
            }
        }
        self.replica_out = out;
    }

    fn step_clerk(&mut self, c: usize, input: clerk::Input) {
        let mut out = std::mem::take(&mut self.clerk_out);
        self.clerks[c].step_into(input, &mut out);
        // (Order within one clerk's step does not matter here.)
        while let Some(action) = out.pop() {
            match action {
                clerk::Action::Send { to, request } => {
                    self.request_inbox[to as usize].push((CLIENT_BASE + c as u64, request))
                }
                clerk::Action::Done(result) => {
                    assert!(
                        result.is_ok() || result == Err(KvError::NoKey),
                        "{result:?}"
                    );
                    // One clock read per operation: its end is the next one's start.
                    let now = Instant::now();
                    if self.recording {
                        let ns = (now - self.started[c]).as_nanos();
                        self.latencies.push(u32::try_from(ns).unwrap_or(u32::MAX));
                        self.completed += 1;
                    } else {
                        self.warmup_done += 1;
                    }
                    self.started[c] = now;
                    let op = self.workload.next_op();
                    self.clerks[c].step_into(clerk::Input::Start(op), &mut out);
                }
            }
        }
        out.clear();
        self.clerk_out = out;
    }

    fn tick(&mut self) {
        for r in 0..self.replicas.len() {
            self.step_replica(r, replica::Input::Tick);
        }
        for c in 0..self.clerks.len() {
            self.step_clerk(c, clerk::Input::Tick);
        }
    }

    /// One round: every replica handles its queued Raft messages and its client requests
    /// (as one batch), then every clerk with a reply handles it.
    fn round(&mut self) {
        for r in 0..self.replicas.len() {
            while let Some((from, msg)) = self.raft_inbox[r].pop_front() {
                self.step_replica(r, replica::Input::Receive { from, msg });
            }
            if !self.request_inbox[r].is_empty() {
                // A fresh batch with room for as many as this one (the replica keeps it).
                let room = self.request_inbox[r].len();
                let requests =
                    std::mem::replace(&mut self.request_inbox[r], Vec::with_capacity(room));
                self.step_replica(r, replica::Input::Requests(requests));
            }
        }
        let mut replies = std::mem::take(&mut self.reply_inbox);
        for (c, from, reply) in replies.drain(..) {
            self.step_clerk(c, clerk::Input::Receive { from, reply });
        }
        self.reply_inbox = replies;
    }

    /// Returns (ops per wall second, ops per CPU second, latencies).
    fn run(&mut self, warmup: Duration, measure: Duration) -> (f64, Option<f64>, Vec<u32>) {
        // Elect a leader.
        while !self.replicas.iter().any(Replica::is_leader) {
            self.tick();
            self.round();
        }
        for c in 0..self.clerks.len() {
            self.started[c] = Instant::now();
            let op = self.workload.next_op();
            self.step_clerk(c, clerk::Input::Start(op));
        }
        let start = Instant::now();
        let mut next_tick = start + TICK;
        let mut rounds: u64 = 0;
        let mut measuring_since = None;
        let mut cpu0 = None;
        loop {
            self.round();
            let now = Instant::now();
            rounds += 1;
            // Under KV_BENCH_OPS (instruction counting, where wall time is distorted) a
            // tick is every 50 rounds instead of every 10 ms.
            let due = match self.stop_after {
                Some(_) => rounds.is_multiple_of(50),
                None => now >= next_tick,
            };
            if due {
                self.tick();
                next_tick += TICK;
            }
            if let Some(n) = self.stop_after
                && self.completed >= n
            {
                let t0 = measuring_since.unwrap_or(start);
                let secs = (now - t0).as_secs_f64();
                return (
                    self.completed as f64 / secs,
                    None,
                    std::mem::take(&mut self.latencies),
                );
            }
            let warm = match self.stop_after {
                // Count-based: warm up with a tenth of the operations.
                Some(n) => self.warmup_done >= n / 10,
                None => now - start >= warmup,
            };
            match measuring_since {
                None if warm => {
                    self.recording = true;
                    // Room for every latency of the run up front (no regrowth inside).
                    let expected = self
                        .stop_after
                        .unwrap_or(4_000_000 * measure.as_secs().max(1));
                    self.latencies
                        .reserve(usize::try_from(expected).unwrap_or(0));
                    measuring_since = Some(now);
                    cpu0 = thread_cpu_secs();
                }
                Some(t0) if self.stop_after.is_none() && now - t0 >= measure => {
                    let secs = (now - t0).as_secs_f64();
                    let n = self.completed as f64;
                    let cpu = cpu0.zip(thread_cpu_secs()).map(|(a, b)| n / (b - a));
                    return (n / secs, cpu, std::mem::take(&mut self.latencies));
                }
                _ => {}
            }
        }
    }
}

/// CPU time this thread has run, in seconds (Linux: /proc/thread-self/schedstat), so the
/// rate can be reported per CPU-second too, which other processes on a shared machine do
/// not distort.
pub(crate) fn thread_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn main() {
    let secs: f64 = std::env::var("KV_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    // `cargo test --benches` runs this binary too: keep that quick.
    let quick = std::env::args().any(|a| a == "--test");
    let (warmup, measure) = if quick {
        (Duration::from_millis(20), Duration::from_millis(50))
    } else {
        (
            Duration::from_secs_f64(secs / 3.0),
            Duration::from_secs_f64(secs),
        )
    };
    println!(
        "# threads: 1 = one-thread driver; 2 = pipelined two-thread driver (leader | followers; \
         ops/cpu-s over both threads, spinning included); 4 = thread per replica"
    );
    println!(
        "{:>8} {:>9} {:>8} {:>12} {:>14} {:>10} {:>10} {:>10}",
        "clients", "mix", "threads", "ops/s", "ops/cpu-s", "p50 us", "p99 us", "p99.9 us"
    );
    // KV_BENCH_ONLY=<clients>:<put|get> runs one configuration (for profiling);
    // KV_BENCH_THREADS picks the drivers, a comma-separated list of 1 (one thread), 2 (the
    // pipelined two-thread driver) and 4 (thread per replica); "all" runs all three. By
    // default every row runs with 1 and 2.
    let only = std::env::var("KV_BENCH_ONLY").ok();
    let threads = std::env::var("KV_BENCH_THREADS").unwrap_or_else(|_| "1,2".to_owned());
    let drivers: Vec<usize> = if threads == "all" {
        vec![1, 2, 4]
    } else {
        threads
            .split(',')
            .filter_map(|t| t.trim().parse().ok())
            .collect()
    };
    let counting = std::env::var("KV_BENCH_OPS").is_ok();
    for clients in [1usize, 64, 256] {
        for mix in [Mix::PutHeavy, Mix::GetHeavy] {
            let name = match mix {
                Mix::PutHeavy => "put",
                Mix::GetHeavy => "get",
            };
            if only
                .as_ref()
                .is_some_and(|o| *o != format!("{clients}:{name}"))
            {
                continue;
            }
            for nthreads in [1, 2, 4] {
                if !drivers.contains(&nthreads) || (counting && nthreads == 4) {
                    continue;
                }
                let (rate, cpu_rate, mut lat) = if nthreads == 2 {
                    let stop_after = std::env::var("KV_BENCH_OPS")
                        .ok()
                        .and_then(|s| s.parse().ok());
                    let (rate, cpu, lat, ops) =
                        pipelined::run(clients, mix, warmup, measure, stop_after);
                    if stop_after.is_some() {
                        eprintln!("ops in run: {ops}");
                    }
                    (rate, cpu, lat)
                } else if nthreads == 1 {
                    let mut bench = Bench::new(clients, mix);
                    let result = bench.run(warmup, measure);
                    if bench.stop_after.is_some() {
                        // For callgrind with `--toggle-collect='kv::Bench::round'`: the
                        // instructions counted cover this many operations.
                        eprintln!("ops in run: {}", bench.warmup_done + bench.completed);
                    }
                    result
                } else {
                    threaded::run(clients, mix, warmup, measure)
                };
                lat.sort_unstable();
                let cpu_rate = cpu_rate.map_or("n/a".to_owned(), |r| format!("{r:.0}"));
                println!(
                    "{clients:>8} {:>9} {nthreads:>8} {:>12.0} {cpu_rate:>14} {:>10.1} {:>10.1} {:>10.1}",
                    match mix {
                        Mix::PutHeavy => "put-heavy",
                        Mix::GetHeavy => "get-heavy",
                    },
                    rate,
                    percentile(&lat, 0.5),
                    percentile(&lat, 0.99),
                    percentile(&lat, 0.999),
                );
            }
        }
    }
}
