//! Throughput of a 3-member register cluster over TCP on 127.0.0.1, with durable storage
//! (one `fdatasync` per batch) in temporary directories.
//!
//! ```text
//! cargo run --release -p stepwise-tokio --example tcp_bench -- [clients] [writes per client] [nosync]
//! ```
//!
//! Prints writes per second and, per member, how many persistence actions shared each
//! sync (group commit at work).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stepwise_host::testkit::{Observer, RegisterMachine, RegisterRequest, Workload};
use stepwise_raft::{Config, NodeId};
use stepwise_storage::{RaftStorage, StorageOptions};
use stepwise_tokio::{NodeConfig, start};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let clients: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(16);
    let per_client: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let sync = !args.iter().any(|a| a == "nosync");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let members: Vec<NodeId> = vec![1, 2, 3];
    let listeners: Vec<std::net::TcpListener> = members
        .iter()
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let peers: Vec<(NodeId, SocketAddr)> = members
        .iter()
        .zip(&listeners)
        .map(|(id, l)| (*id, l.local_addr().unwrap()))
        .collect();
    let dirs: Vec<tempfile::TempDir> = members
        .iter()
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let observer = Observer::new();
    let mut nodes = Vec::new();
    for ((&id, listener), dir) in members.iter().zip(listeners).zip(&dirs) {
        let (storage, persisted) =
            RaftStorage::open(dir.path(), StorageOptions::default().with_sync(sync)).unwrap();
        let machine =
            RegisterMachine::restore(Config::new(id, members.clone()).with_seed(id), persisted)
                .unwrap();
        let config = NodeConfig::new(0xbe7c, id, peers.clone());
        let sink = observer.sink(id);
        let node = runtime.block_on(async {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            start(config, listener, machine, storage, sink)
                .await
                .unwrap()
        });
        nodes.push(node);
    }
    observer
        .wait_leader(Duration::from_secs(10))
        .expect("a leader is elected");
    let submitters: Vec<_> = nodes.iter().map(|n| n.submitter()).collect();
    let submit = |node: NodeId, req: RegisterRequest| {
        submitters[node as usize - 1].blocking_submit(req).is_ok()
    };
    let workload = Workload {
        clients,
        ops_per_client: per_client,
        read_percent: 0,
        op_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(120),
        ..Workload::default()
    };
    let started = Instant::now();
    let outcome = workload.run(&members, &observer, &submit);
    let elapsed = started.elapsed();
    println!(
        "{clients} clients, {} acknowledged writes in {:.2} s: {:.0} writes/s (fsync {})",
        outcome.acked_writes.len(),
        elapsed.as_secs_f64(),
        outcome.acked_writes.len() as f64 / elapsed.as_secs_f64(),
        if sync { "on" } else { "off" },
    );
    for node in &nodes {
        let s = node.stats();
        println!(
            "node {}: {} inputs in {} batches, {} persistence actions in {} syncs ({:.1} per sync)",
            node.id(),
            s.inputs,
            s.batches,
            s.persisted,
            s.syncs,
            s.persisted as f64 / s.syncs.max(1) as f64
        );
    }
    runtime.block_on(async {
        for node in nodes {
            node.shutdown().await.unwrap();
        }
    });
}
