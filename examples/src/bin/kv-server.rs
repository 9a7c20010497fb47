//! `kv-server`: one member of a replicated, linearizable key/value cluster that speaks
//! the Redis protocol (RESP2). See `kv-server --help` and the `stepwise_examples::kvserver`
//! module docs for the commands and their semantics.
//!
//! ```text
//! kv-server --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
//!     --client 127.0.0.1:6381 --data ./data/1 \
//!     --client-peers 1=127.0.0.1:6381,2=127.0.0.1:6382,3=127.0.0.1:6383
//! redis-cli -p 6381 set k v
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use stepwise_examples::kvserver::{NodeOptions, parse_members, start_node};

/// One Raft node of a linearizable key/value service that speaks RESP (the Redis
/// protocol): redis-cli, redis-benchmark and Redis client libraries work against it.
///
/// Commands: GET, SET, APPEND, DEL, EXISTS, INCR, MGET, PING, ECHO, QUIT, SELECT 0,
/// stubs of COMMAND, INFO, CLIENT and CONFIG, and two custom commands on versioned
/// keys: `VGET key` -> [value or nil, version] and `VPUT key value version` (writes only
/// if the key is at `version`; returns the new version or `-VERSION version mismatch`).
/// An empty value reads as a missing key (DEL writes the empty value).
///
/// Any node accepts any command: a follower forwards to the leader (needs
/// --client-peers). A command that cannot reach a quorum fails after --timeout-ms with
/// `-CLUSTERDOWN ...` (it may or may not have taken effect).
#[derive(Parser, Debug)]
#[command(name = "kv-server", version)]
struct Args {
    /// This node's id (a member of --peers).
    #[arg(long)]
    id: u64,
    /// Every member with its node-to-node address, this node included:
    /// `1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003`.
    #[arg(long, value_parser = parse_members)]
    peers: BTreeMap<u64, SocketAddr>,
    /// Where Redis clients connect, e.g. `127.0.0.1:6381`.
    #[arg(long)]
    client: SocketAddr,
    /// The node's durable directory: empty or missing means a new member, otherwise the
    /// node restores from it.
    #[arg(long)]
    data: PathBuf,
    /// Every member's client address (same ids as --peers), so a follower can forward
    /// commands to the leader. Without it, a follower answers `-CLUSTERDOWN` for
    /// commands it cannot run itself.
    #[arg(long, value_parser = parse_members)]
    client_peers: Option<BTreeMap<u64, SocketAddr>>,
    /// A command not answered within this many milliseconds fails with an error.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// Longest key in bytes.
    #[arg(long, default_value_t = 64 << 10)]
    max_key: usize,
    /// Longest value (any bulk argument) in bytes; longer closes the connection.
    #[arg(long, default_value_t = 1 << 20)]
    max_value: usize,
    /// Most client connections at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Take a snapshot when the Raft state passes this many bytes.
    #[arg(long, default_value_t = 8 << 20)]
    max_raft_state: usize,
    /// Do not fsync the log (tests and benchmarks only: a power loss may lose writes;
    /// a killed process does not).
    #[arg(long)]
    no_sync: bool,
    /// Do not overlap the leader's fsync with stepping. By default the leader syncs on the
    /// blocking pool, keeps stepping, and commits from its followers' durable copies
    /// meanwhile (Raft thesis 10.2.1); this flag makes it wait for each sync instead.
    #[arg(long)]
    no_pipelined_sync: bool,
    /// Do not hold writes while the leader's replication round is in flight (by default
    /// they wait for it and leave together as one log entry).
    #[arg(long)]
    no_round_batching: bool,
    /// With round batching: how long (microseconds) the leader may wait after a round for
    /// the clients it just answered to send their next writes, so they share the next
    /// round instead of splitting into two alternating groups. 0 turns it off. The
    /// writes go as soon as as many as the last round carried have arrived.
    #[arg(long, default_value_t = 1000)]
    batch_linger_us: u64,
    /// MiB of log space allocated ahead of the write-ahead log (Linux `fallocate`), so a
    /// sync need not also commit a new file size. 0 turns it off.
    #[arg(long, default_value_t = 8)]
    wal_preallocate_mib: u64,
    /// Tokio worker threads. One (the default) avoids waking a second worker for every
    /// message: fastest on the 2-core machine of docs/PERFORMANCE.md; each `fsync` still
    /// runs off the worker (`block_in_place`).
    #[arg(long, default_value_t = 1)]
    worker_threads: usize,
    /// Most log entries in one AppendEntries. 1 sends every batch at once (pipelined);
    /// more lets Raft hold a partial batch back while one is in flight.
    #[arg(long, default_value_t = 1)]
    max_append_entries: usize,
    /// Least time between two syncs of the leader, in microseconds (with the pipelined
    /// sync: the followers' durable copies commit without the leader's).
    #[arg(long, default_value_t = 0)]
    leader_sync_interval_us: u64,
    /// A secret all members share, carried by operations a follower forwards to the
    /// leader, so clients cannot send such operations themselves (and forge other
    /// clients' sessions). Without it the token is derived from --peers, which only keeps
    /// out clients that do not know the member list: set it when clients are untrusted.
    #[arg(long, default_value = "")]
    cluster_secret: String,
    /// A follower serves reads (GET, MGET, EXISTS, VGET) itself instead of forwarding them to
    /// the leader: it asks the leader for the read index (one small message per batch of
    /// reads) and answers from its own store once it has applied that far (Raft thesis
    /// 6.4). Still linearizable; takes the reads' work off the leader.
    #[arg(long)]
    follower_reads: bool,
}

impl Args {
    fn into_options(self) -> NodeOptions {
        let mut opts = NodeOptions::new(self.id, self.peers, self.client, self.data);
        opts.client_peers = self.client_peers.unwrap_or_default();
        opts.timeout = Duration::from_millis(self.timeout_ms);
        opts.max_key = self.max_key;
        opts.max_value = self.max_value;
        opts.max_connections = self.max_connections;
        opts.max_raft_state = self.max_raft_state;
        opts.sync = !self.no_sync;
        opts.pipelined_sync = !self.no_pipelined_sync;
        opts.round_batching = !self.no_round_batching;
        opts.batch_linger = Duration::from_micros(self.batch_linger_us);
        opts.wal_preallocate = self.wal_preallocate_mib << 20;
        opts.max_append_entries = self.max_append_entries.max(1);
        opts.min_sync_interval = Duration::from_micros(self.leader_sync_interval_us);
        opts.cluster_secret = self.cluster_secret;
        opts.follower_reads = self.follower_reads;
        opts
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let threads = args.worker_threads.max(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(run(args.into_options()))
}

async fn run(opts: NodeOptions) -> anyhow::Result<()> {
    let node = start_node(opts).await?;
    println!(
        "kv-server node {} ready: redis-cli -p {}",
        node.id(),
        node.client_addr().port()
    );
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!("Ctrl-C: shutting down"),
        Err(e) => tracing::error!(error = %e, "cannot listen for Ctrl-C; shutting down"),
    }
    node.shutdown().await
}
