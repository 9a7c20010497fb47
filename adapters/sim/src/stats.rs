//! Message and event counters, modelled on the lab's (see [`Stats`]).

use crate::NodeId;

/// Message counters of one node (or the sum over all nodes in [`Stats::total`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Messages this node sent, counted when the `Send` effect is carried out, whether or
    /// not the message is then lost, cut off or dropped (the lab counts requests at send
    /// time).
    pub msgs_sent: u64,
    /// Wire bytes ([`Node::wire_size`](crate::Node::wire_size)) of `msgs_sent`.
    pub bytes_sent: u64,
    /// Messages delivered to this node (`on_message` called). A duplicated message counts
    /// once per delivered copy. This is the lab's per-server RPC count.
    pub msgs_delivered: u64,
    /// Wire bytes of `msgs_delivered`.
    pub bytes_delivered: u64,
}

impl NodeStats {
    /// Field-wise `self - before` (saturating).
    pub fn since(&self, before: &NodeStats) -> NodeStats {
        NodeStats {
            msgs_sent: self.msgs_sent.saturating_sub(before.msgs_sent),
            bytes_sent: self.bytes_sent.saturating_sub(before.bytes_sent),
            msgs_delivered: self.msgs_delivered.saturating_sub(before.msgs_delivered),
            bytes_delivered: self.bytes_delivered.saturating_sub(before.bytes_delivered),
        }
    }
}

/// A snapshot of the simulator's counters ([`Sim::stats`](crate::Sim::stats)). Take one
/// before and one after a phase of a test and compare them with [`Stats::since`].
///
/// Every message copy that is not delivered is counted in exactly one of `msgs_lost`,
/// `msgs_cut` and `msgs_dead`, so once the network is quiet
/// `total.msgs_sent + msgs_duplicated == total.msgs_delivered + msgs_lost + msgs_cut + msgs_dead`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Per-node counters, indexed by node id: sent *by* the node, delivered *to* it.
    pub nodes: Vec<NodeStats>,
    /// The sum of `nodes`.
    pub total: NodeStats,
    /// Message copies dropped by the [`NetConfig::loss`](crate::NetConfig::loss) draw.
    pub msgs_lost: u64,
    /// Extra copies created by the [`NetConfig::duplicate`](crate::NetConfig::duplicate) draw.
    pub msgs_duplicated: u64,
    /// Message copies dropped because the link was down at send or at delivery time.
    pub msgs_cut: u64,
    /// Message copies dropped because the destination was down (or had restarted since the
    /// send), or the sender had crashed before delivery.
    pub msgs_dead: u64,
    /// Scheduled inputs dropped because their node was down when they came due.
    pub inputs_dropped: u64,
    /// Ticks delivered to nodes.
    pub ticks: u64,
    /// Events taken off the queue (including stale ones that did nothing).
    pub events: u64,
    /// Crashes (by [`Sim::crash`](crate::Sim::crash) or
    /// [`Sim::crash_during_next_step`](crate::Sim::crash_during_next_step)).
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
}

impl Stats {
    pub(crate) fn new(n: usize) -> Self {
        Stats {
            nodes: vec![NodeStats::default(); n],
            ..Stats::default()
        }
    }

    /// The counters of node `i`.
    ///
    /// # Panics
    /// If `i` is not a node of the simulation.
    pub fn node(&self, i: NodeId) -> &NodeStats {
        &self.nodes[i]
    }

    /// Field-wise `self - before` (saturating): what happened between two snapshots.
    pub fn since(&self, before: &Stats) -> Stats {
        let empty = NodeStats::default();
        Stats {
            nodes: self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, s)| s.since(before.nodes.get(i).unwrap_or(&empty)))
                .collect(),
            total: self.total.since(&before.total),
            msgs_lost: self.msgs_lost.saturating_sub(before.msgs_lost),
            msgs_duplicated: self.msgs_duplicated.saturating_sub(before.msgs_duplicated),
            msgs_cut: self.msgs_cut.saturating_sub(before.msgs_cut),
            msgs_dead: self.msgs_dead.saturating_sub(before.msgs_dead),
            inputs_dropped: self.inputs_dropped.saturating_sub(before.inputs_dropped),
            ticks: self.ticks.saturating_sub(before.ticks),
            events: self.events.saturating_sub(before.events),
            crashes: self.crashes.saturating_sub(before.crashes),
            restarts: self.restarts.saturating_sub(before.restarts),
        }
    }

    pub(crate) fn sent(&mut self, i: NodeId, bytes: u64) {
        let s = &mut self.nodes[i];
        s.msgs_sent += 1;
        s.bytes_sent += bytes;
        self.total.msgs_sent += 1;
        self.total.bytes_sent += bytes;
    }

    pub(crate) fn delivered(&mut self, i: NodeId, bytes: u64) {
        let s = &mut self.nodes[i];
        s.msgs_delivered += 1;
        s.bytes_delivered += bytes;
        self.total.msgs_delivered += 1;
        self.total.bytes_delivered += bytes;
    }
}
