//! The simulated network: per-message faults ([`NetConfig`]) and the lab's connectivity
//! model (a per-node `connected` flag plus a directed link matrix).

use oorandom::Rand64;

use crate::{MS, NodeId, Time};

/// Probability that a message gets a long delay when [`NetConfig::long_delays`] is on.
pub const LONG_DELAY_PROBABILITY: f64 = 0.01;
/// Upper bound (exclusive) of the extra delay added by [`NetConfig::long_delays`]: the lab's
/// `LONGDELAY` of 7 s.
pub const LONG_DELAY_MAX: Time = 7_000 * MS;
/// Probability that a message is held back when [`NetConfig::long_reordering`] is on: the
/// lab's 600/900.
pub const LONG_REORDER_PROBABILITY: f64 = 600.0 / 900.0;

/// Per-message network behaviour. All fields are public and may be changed at any time
/// with [`Sim::net_mut`](crate::Sim::net_mut); a change affects messages sent afterwards.
///
/// For every message the simulator draws, in this order: whether it is duplicated
/// (`duplicate`), then for each copy whether it is lost (`loss`) and its delay. The delay of
/// a copy is uniform in `[min_delay, max_delay]`, plus the long-reordering extra, plus the
/// long-delay extra. Independent delays reorder messages.
#[derive(Clone, Debug, PartialEq)]
pub struct NetConfig {
    /// Probability in `[0, 1]` that a copy of a message is silently lost.
    pub loss: f64,
    /// Probability in `[0, 1]` that a message is delivered twice: the second copy gets its
    /// own loss draw and its own delay.
    pub duplicate: f64,
    /// Smallest delay (microseconds).
    pub min_delay: Time,
    /// Largest delay (microseconds, inclusive). Values below `min_delay` mean `min_delay`.
    pub max_delay: Time,
    /// The lab's `LongReordering`: with probability 2/3 ([`LONG_REORDER_PROBABILITY`]) add
    /// `200 ms + rand(0..rand(0..2000)) ms` (200-2200 ms, skewed low). The lab applies this
    /// to RPC replies; here it applies to every message for which
    /// [`Node::reorderable`](crate::Node::reorderable) is true (all, by default).
    pub long_reordering: bool,
    /// The lab's `LongDelays`, adapted to messages: with probability
    /// [`LONG_DELAY_PROBABILITY`] add a uniform extra delay in `[0, 7 s)`
    /// ([`LONG_DELAY_MAX`]).
    pub long_delays: bool,
}

impl NetConfig {
    /// A reliable network: nothing lost or duplicated, delay uniform in `0..=1 ms`.
    pub fn reliable() -> Self {
        NetConfig {
            loss: 0.0,
            duplicate: 0.0,
            min_delay: 0,
            max_delay: MS,
            long_reordering: false,
            long_delays: false,
        }
    }

    /// The lab's unreliable network: 10% of messages lost, delay uniform in `0..=26 ms`.
    /// (The lab drops requests and replies with 10% each and delays only requests; with
    /// one-way messages every message gets both treatments.)
    pub fn unreliable() -> Self {
        NetConfig {
            loss: 0.1,
            max_delay: 26 * MS,
            ..NetConfig::reliable()
        }
    }

    /// Draws the number of copies of one message (1 or 2).
    pub(crate) fn copies(&self, rng: &mut Rand64) -> usize {
        if self.duplicate > 0.0 && rng.rand_float() < self.duplicate {
            2
        } else {
            1
        }
    }

    /// Draws whether one copy is lost.
    pub(crate) fn lost(&self, rng: &mut Rand64) -> bool {
        self.loss > 0.0 && rng.rand_float() < self.loss
    }

    /// Draws the delay of one copy. Long reordering applies only to `reorderable`
    /// messages (see [`Node::reorderable`](crate::Node::reorderable)); the random draws are
    /// the same either way, so runs stay comparable.
    pub(crate) fn delay(&self, rng: &mut Rand64, reorderable: bool) -> Time {
        let mut delay = uniform_inclusive(rng, self.min_delay, self.max_delay);
        if self.long_reordering && rng.rand_float() < LONG_REORDER_PROBABILITY {
            let bound = rng.rand_range(0..2000);
            let extra = if bound == 0 {
                0
            } else {
                rng.rand_range(0..bound)
            };
            if reorderable {
                delay += 200 * MS + extra * MS;
            }
        }
        if self.long_delays && rng.rand_float() < LONG_DELAY_PROBABILITY {
            delay += rng.rand_range(0..LONG_DELAY_MAX);
        }
        delay
    }
}

impl Default for NetConfig {
    /// [`NetConfig::reliable`].
    fn default() -> Self {
        NetConfig::reliable()
    }
}

/// Uniform in `[lo, hi]`; `lo` when `hi <= lo`.
pub(crate) fn uniform_inclusive(rng: &mut Rand64, lo: Time, hi: Time) -> Time {
    if hi <= lo {
        lo
    } else if hi - lo == u64::MAX {
        rng.rand_u64()
    } else {
        rng.rand_range(lo..hi + 1)
    }
}

/// The lab's connectivity: a `connected` flag per node and a flat directed link matrix
/// (`up[from * n + to]`). A node can always reach itself.
#[derive(Clone, Debug)]
pub(crate) struct Links {
    n: usize,
    connected: Vec<bool>,
    up: Vec<bool>,
}

impl Links {
    /// `n` nodes, all connected, full mesh.
    pub(crate) fn full(n: usize) -> Self {
        Links {
            n,
            connected: vec![true; n],
            up: vec![true; n * n],
        }
    }

    pub(crate) fn is_up(&self, from: NodeId, to: NodeId) -> bool {
        from == to || self.up[from * self.n + to]
    }

    pub(crate) fn set(&mut self, from: NodeId, to: NodeId, up: bool) {
        assert!(from < self.n && to < self.n, "node out of range");
        self.up[from * self.n + to] = up;
    }

    pub(crate) fn is_connected(&self, i: NodeId) -> bool {
        self.connected[i]
    }

    /// The lab's `disconnect(i, from)`: clears `i`'s flag and cuts the links between `i`
    /// and every node of `from`, both ways.
    pub(crate) fn disconnect_from(&mut self, i: NodeId, from: &[NodeId]) {
        self.connected[i] = false;
        for &j in from {
            self.set(i, j, false);
            self.set(j, i, false);
        }
    }

    /// Cuts every link to and from `i` and clears its flag.
    pub(crate) fn disconnect(&mut self, i: NodeId) {
        self.connected[i] = false;
        for j in 0..self.n {
            self.set(i, j, false);
            self.set(j, i, false);
        }
    }

    /// The lab's `connect(i, to)`: sets `i`'s flag and links it, both ways, with every node
    /// of `to` whose flag is set.
    pub(crate) fn connect_to(&mut self, i: NodeId, to: &[NodeId]) {
        self.connected[i] = true;
        for &j in to {
            if self.connected[j] {
                self.set(i, j, true);
                self.set(j, i, true);
            }
        }
    }

    /// Sets `i`'s flag and links it, both ways, with every node whose flag is set.
    pub(crate) fn connect(&mut self, i: NodeId) {
        self.connected[i] = true;
        for j in 0..self.n {
            if self.connected[j] {
                self.set(i, j, true);
                self.set(j, i, true);
            }
        }
    }

    /// Full connectivity inside each group, none across; nodes in no group are cut off and
    /// unflagged, nodes in a group are flagged.
    pub(crate) fn partition(&mut self, groups: &[&[NodeId]]) {
        self.up.fill(false);
        self.connected.fill(false);
        self.link_groups(groups);
    }

    /// Like `partition`, but only for links between two nodes of `members` and for the
    /// flags of `members`; links with other nodes are untouched.
    pub(crate) fn partition_within(&mut self, members: &[NodeId], groups: &[&[NodeId]]) {
        for &a in members {
            self.connected[a] = false;
            for &b in members {
                self.set(a, b, false);
            }
        }
        self.link_groups(groups);
    }

    fn link_groups(&mut self, groups: &[&[NodeId]]) {
        for group in groups {
            for &a in group.iter() {
                self.connected[a] = true;
                for &b in group.iter() {
                    self.set(a, b, true);
                }
            }
        }
    }
}
