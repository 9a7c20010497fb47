//! [`NodeConfig`]: identity, peers and the transport's limits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use stepwise_raft::NodeId;

/// How a node runs on tokio. Build with [`NodeConfig::new`], then adjust the public
/// fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeConfig {
    /// Identifies the cluster; peers with another id are refused. Pick a random one per
    /// cluster so two clusters on one network cannot mix.
    pub cluster_id: u64,
    /// This node's id.
    pub id: NodeId,
    /// The other members and where they listen. An entry for `id` itself is ignored.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Wall time per tick. Default 10 ms, what the Raft defaults assume.
    pub tick: Duration,
    /// Largest frame sent or accepted, in bytes. Default 64 MiB. A larger inbound frame
    /// drops the connection; a larger outbound message is dropped (keep Raft's
    /// `max_append_bytes` and snapshots below it).
    pub max_frame: usize,
    /// Messages queued per peer before new ones are dropped. Default 1024.
    pub queue_messages: usize,
    /// Encoded bytes queued per peer before new messages are dropped. Default 64 MiB.
    pub queue_bytes: usize,
    /// First reconnection delay; doubles after each failure. Default 50 ms.
    pub backoff_min: Duration,
    /// Longest reconnection delay. Default 2 s.
    pub backoff_max: Duration,
    /// Time allowed to connect and exchange handshakes. Default 5 s.
    pub handshake_timeout: Duration,
    /// Writing one batch to a peer (everything queued for it, at most `queue_bytes`)
    /// must finish within this time; otherwise the peer is taken to have stopped
    /// reading, the connection is dropped and re-established. Default 10 s.
    pub write_timeout: Duration,
    /// Inputs (messages and requests) queued for the node before readers wait. Default
    /// 4096.
    pub inbox_capacity: usize,
    /// At most this many inputs are stepped before one flush (group commit). Default 256.
    pub max_batch: usize,
    /// Wait for the disk off the node's task ([`Driver::flush_pipelined`]): the node
    /// goes on stepping (new requests, messages) while a sync is in flight, at most one
    /// sync is in flight, and every message and event still leaves only after what was
    /// persisted before it is durable. Default `false` (the task blocks for each sync).
    ///
    /// [`Driver::flush_pipelined`]: stepwise_host::Driver::flush_pipelined
    pub pipelined_sync: bool,
    /// With `pipelined_sync`: at least this long between the starts of two syncs (the
    /// `fdatasync` waits on the blocking pool). A leader whose machine takes durability
    /// reports ([`Machine::takes_durable_reports`]) commits from its followers' durable
    /// copies without its own, so spacing its syncs frees the disk for theirs. Default
    /// zero.
    ///
    /// [`Machine::takes_durable_reports`]: stepwise_host::Machine::takes_durable_reports
    pub min_sync_interval: Duration,
    /// Run a blocking sync (every sync without `pipelined_sync`; with it, the syncs of a
    /// machine that does not overlap them now, [`Machine::overlap_sync`], such as a Raft
    /// follower) right on the node task's worker thread. Other tasks on that worker wait
    /// for the sync; in exchange no thread hand-off happens per sync
    /// (`tokio::task::block_in_place` hands the worker to another thread and back). Good
    /// for a follower, whose acknowledgement waits for its sync anyway. Default `false`.
    ///
    /// [`Machine::overlap_sync`]: stepwise_host::Machine::overlap_sync
    pub sync_in_place: bool,
}

impl NodeConfig {
    /// A configuration with the defaults described on each field.
    pub fn new(
        cluster_id: u64,
        id: NodeId,
        peers: impl IntoIterator<Item = (NodeId, SocketAddr)>,
    ) -> Self {
        NodeConfig {
            cluster_id,
            id,
            peers: peers.into_iter().filter(|(p, _)| *p != id).collect(),
            tick: Duration::from_millis(10),
            max_frame: 64 << 20,
            queue_messages: 1024,
            queue_bytes: 64 << 20,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            inbox_capacity: 4096,
            max_batch: 256,
            pipelined_sync: false,
            sync_in_place: false,
            min_sync_interval: Duration::ZERO,
        }
    }
}
