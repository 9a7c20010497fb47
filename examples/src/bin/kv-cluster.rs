//! `kv-cluster`: N kv-server nodes in one process on 127.0.0.1, for trying the service
//! with redis-cli. Ctrl-C shuts every node down cleanly.
//!
//! ```text
//! cargo run --release -p stepwise-examples --bin kv-cluster
//! redis-cli -p 6381 set greeting hello
//! redis-cli -p 6383 get greeting
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use stepwise_examples::kvserver::{NodeOptions, start_node};

/// Starts N kv-server nodes in one process on 127.0.0.1 (node i listens for Raft on
/// --raft-port + i - 1 and for Redis clients on --client-port + i - 1), keeps their data
/// under `--data-dir/<id>` (restored on the next start), prints how to connect, and shuts
/// down cleanly on Ctrl-C.
#[derive(Parser, Debug)]
#[command(name = "kv-cluster", version)]
struct Args {
    /// Number of nodes.
    #[arg(long, short, default_value_t = 3)]
    nodes: u64,
    /// Node-to-node port of node 1.
    #[arg(long, default_value_t = 7001)]
    raft_port: u16,
    /// Redis client port of node 1.
    #[arg(long, default_value_t = 6381)]
    client_port: u16,
    /// Where each node keeps its data (a subdirectory per node id).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// A command not answered within this many milliseconds fails with an error.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// Do not fsync the logs (faster; a power loss may lose writes).
    #[arg(long)]
    no_sync: bool,
    /// Followers answer reads (GET, MGET, EXISTS, VGET) from their own store after asking
    /// the leader for the read index, instead of forwarding them (see `kv-server --help`).
    #[arg(long)]
    follower_reads: bool,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
    // The nodes share this process: a fresh random forwarding secret per start.
    let secret = format!(
        "{:016x}",
        std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::process::id())
    );
    let port = |base: u16, id: u64| -> anyhow::Result<u16> {
        u16::try_from(u64::from(base) + id - 1).map_err(|_| anyhow::anyhow!("port overflow"))
    };
    let mut peers = BTreeMap::new();
    let mut clients = BTreeMap::new();
    for id in 1..=args.nodes {
        peers.insert(id, addr(port(args.raft_port, id)?));
        clients.insert(id, addr(port(args.client_port, id)?));
    }
    let mut nodes = Vec::new();
    for id in 1..=args.nodes {
        let data = args.data_dir.join(id.to_string());
        let mut opts = NodeOptions::new(id, peers.clone(), clients[&id], data);
        opts.client_peers = clients.clone();
        opts.cluster_secret = secret.clone();
        opts.timeout = Duration::from_millis(args.timeout_ms);
        opts.sync = !args.no_sync;
        opts.follower_reads = args.follower_reads;
        nodes.push(start_node(opts).await?);
    }
    println!(
        "kv-cluster: {} nodes running, data under {}",
        args.nodes,
        args.data_dir.display()
    );
    for node in &nodes {
        println!(
            "  node {}: redis-cli -p {}",
            node.id(),
            node.client_addr().port()
        );
    }
    println!("Any node accepts any command. Ctrl-C to stop.");
    match tokio::signal::ctrl_c().await {
        Ok(()) => println!("Ctrl-C: shutting down"),
        Err(e) => eprintln!("cannot listen for Ctrl-C ({e}); shutting down"),
    }
    for node in nodes {
        node.shutdown().await?;
    }
    println!("kv-cluster: stopped");
    Ok(())
}
