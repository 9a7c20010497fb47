//! openraft's `benchmarks/minimal` workload, rewritten against the openraft crate from
//! crates.io so it can run next to stepwise's `raft_bench` on the same machine:
//!
//! * a cluster of `--nodes` (default 3) openraft nodes in one process, each with an in-memory
//!   log store and an empty state machine (`store.rs`), connected by direct calls on each
//!   other's `Raft` handle, without serialization (`network.rs`);
//! * the nodes run on a multi-threaded tokio runtime with `--server-workers` threads (16, the
//!   benchmark's default), the clients on a second multi-threaded runtime with
//!   `--client-workers` threads (1);
//! * N client tasks each call `client_write` with an empty request in a loop, one outstanding
//!   write at a time, `ops / N` times; throughput is the total over the time until every
//!   client got its last response;
//! * openraft `Config` as in the benchmark: election timeout 200-2000 ms,
//!   `max_payload_entries` 1024, `purge_batch_size` 1024, everything else default
//!   (heartbeat 50 ms, snapshot every 5000 logs, keep 1000 logs after a snapshot).
//!
//! Each client count gets a fresh cluster and fresh runtimes. Besides throughput it prints
//! the p50/p99 latency of one `client_write`, measured by the clients (two clock reads per
//! write, which upstream does not do).
//!
//! ```text
//! cargo run --release --target-dir /tmp/openraft-target -- [--clients 1,64,256,4096] [--ops 2000000]
//!     [--nodes 3] [--server-workers 16] [--client-workers 1] [--snapshot-every 5000]
//! ```

mod network;
mod store;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use network::BenchRaft;
use network::Router;
use openraft::Config;
use openraft::Raft;
use openraft::SnapshotPolicy;
use store::LogStore;
use store::Request;
use store::StateMachine;
use tokio::runtime::Builder;
use tokio::runtime::Runtime;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    clients: Vec<u64>,
    ops: u64,
    nodes: u64,
    server_workers: usize,
    client_workers: usize,
    snapshot_every: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        clients: vec![1, 64, 256, 4096],
        ops: 2_000_000,
        nodes: 3,
        server_workers: 16,
        client_workers: 1,
        snapshot_every: 5000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        let num = |what: &str| -> u64 {
            v.parse()
                .unwrap_or_else(|_| panic!("{what} takes a number, got {v:?}"))
        };
        match flag.as_str() {
            "--clients" | "-c" => {
                a.clients = v
                    .split(',')
                    .map(|x| x.parse().expect("--clients N[,N..]"))
                    .collect()
            }
            "--ops" | "-n" => a.ops = num("--ops"),
            "--nodes" | "-m" => a.nodes = num("--nodes"),
            "--server-workers" => a.server_workers = num("--server-workers") as usize,
            "--client-workers" => a.client_workers = num("--client-workers") as usize,
            "--snapshot-every" => a.snapshot_every = num("--snapshot-every"),
            _ => panic!(
                "unknown argument {flag}; use --clients 1,64 --ops N --nodes 3 --server-workers 16 \
                 --client-workers 1 --snapshot-every 5000"
            ),
        }
    }
    assert!(
        a.clients.iter().all(|&c| c > 0),
        "--clients must be positive"
    );
    a
}

fn runtime(name: &str, workers: usize) -> Result<Runtime, Error> {
    Ok(Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .thread_name(name)
        .thread_stack_size(3 * 1024 * 1024)
        .build()?)
}

/// Starts `nodes` nodes, makes node 0 leader of all of them, and waits until every node
/// applied the leader's first entry.
async fn start_cluster(nodes: u64, snapshot_every: u64) -> Result<(Router, BenchRaft), Error> {
    let config = Config {
        election_timeout_min: 200,
        election_timeout_max: 2000,
        purge_batch_size: 1024,
        max_payload_entries: 1024,
        snapshot_policy: if snapshot_every == 0 {
            SnapshotPolicy::Never
        } else {
            SnapshotPolicy::LogsSinceLast(snapshot_every)
        },
        ..Default::default()
    };
    let config = Arc::new(config.validate()?);
    let router = Router::default();
    let members: BTreeSet<u64> = (0..nodes).collect();
    for &id in &members {
        let raft = Raft::new(
            id,
            config.clone(),
            router.clone(),
            Arc::new(LogStore::default()),
            Arc::new(StateMachine::default()),
        )
        .await?;
        router.table.lock().unwrap().insert(id, raft);
    }
    let rafts: Vec<BenchRaft> = router.table.lock().unwrap().values().cloned().collect();
    rafts[0].initialize(members).await?;
    // Index 0 is the initial membership, index 1 the new leader's blank entry.
    for r in &rafts {
        r.wait(Some(Duration::from_secs(10)))
            .applied_index(Some(1), "cluster up")
            .await?;
    }
    Ok((router, rafts[0].clone()))
}

struct RunResult {
    ops: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

fn run(a: &Args, clients: u64) -> Result<RunResult, Error> {
    let server_rt = runtime("bench-server", a.server_workers)?;
    let client_rt = runtime("bench-client", a.client_workers)?;
    let (router, leader) = server_rt.block_on(start_cluster(a.nodes, a.snapshot_every))?;

    let per_client = a.ops / clients;
    let (elapsed, mut latencies) = client_rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let leader = leader.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per_client as usize);
                    for _ in 0..per_client {
                        let t0 = Instant::now();
                        leader
                            .client_write(Request {})
                            .await
                            .expect("client_write on a stable leader");
                        lat.push(t0.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32);
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::with_capacity(a.ops as usize);
        for t in tasks {
            all.extend(t.await.expect("client task"));
        }
        (start.elapsed(), all)
    });

    // Stop the nodes, then break the router <-> raft reference cycle.
    let rafts: Vec<BenchRaft> = router.table.lock().unwrap().values().cloned().collect();
    server_rt.block_on(async {
        for r in &rafts {
            let _ = r.shutdown().await;
        }
    });
    router.table.lock().unwrap().clear();
    drop((rafts, leader));
    client_rt.shutdown_timeout(Duration::from_secs(5));
    server_rt.shutdown_timeout(Duration::from_secs(5));

    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        Duration::from_nanos(latencies.get(i).copied().map_or(0, u64::from))
    };
    Ok(RunResult {
        ops: latencies.len() as u64,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    })
}

fn main() -> Result<(), Error> {
    let a = parse_args();
    println!(
        "nodes={} ops={} (openraft {}, in-memory store, in-process network, tokio: {} server / {} client workers, snapshot every {})",
        a.nodes,
        a.ops,
        openraft_version(),
        a.server_workers,
        a.client_workers,
        a.snapshot_every
    );
    println!(
        "{:>8} {:>14} {:>10} {:>10}",
        "clients", "ops/s", "p50", "p99"
    );
    for &n in &a.clients {
        let r = run(&a, n)?;
        println!(
            "{:>8} {:>14.0} {:>10.1?} {:>10.1?}",
            n,
            r.ops as f64 / r.elapsed.as_secs_f64(),
            r.p50,
            r.p99
        );
    }
    Ok(())
}

/// The openraft version this binary was built against (pinned in Cargo.toml).
fn openraft_version() -> &'static str {
    "0.10.0-alpha.37"
}
