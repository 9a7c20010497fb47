//! Moving messages between node threads: the [`Transport`] trait and an in-process
//! [`Network`] of channels.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use stepwise_raft::{Message, NodeId};

use crate::node::Inbox;

/// Where a node thread sends its messages. Must not block for long (queue, or drop:
/// Raft copes with loss).
pub trait Transport: Send + 'static {
    /// Transmits `msg` to peer `to`, best effort.
    fn send(&mut self, to: NodeId, msg: Message);
}

impl<F: FnMut(NodeId, Message) + Send + 'static> Transport for F {
    fn send(&mut self, to: NodeId, msg: Message) {
        self(to, msg)
    }
}

type Deliver = Box<dyn Fn(NodeId, Message) -> bool + Send + Sync>;

#[derive(Default)]
struct Links {
    nodes: BTreeMap<NodeId, Deliver>,
    isolated: BTreeSet<NodeId>,
}

/// An in-process network: every attached node's [`Inbox`], reachable by id. Cheap to
/// clone (shared).
///
/// Delivery never blocks: a message to an unknown, stopped or isolated node, or to a full
/// inbox, is dropped and counted.
#[derive(Clone, Default)]
pub struct Network {
    links: Arc<RwLock<Links>>,
    delivered: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("delivered", &self.delivered())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl Network {
    /// An empty network.
    pub fn new() -> Self {
        Network::default()
    }

    /// Makes node `id` reachable through `inbox` (replacing an earlier attachment, as
    /// after a restart).
    pub fn attach<R: Send + 'static>(&self, id: NodeId, inbox: Inbox<R>) {
        let deliver: Deliver = Box::new(move |from, msg| inbox.deliver(from, msg));
        self.write().nodes.insert(id, deliver);
    }

    /// Makes node `id` unreachable (its messages are dropped).
    pub fn detach(&self, id: NodeId) {
        self.write().nodes.remove(&id);
    }

    /// Cuts node `id` off: messages from it and to it are dropped until [`heal`](Self::heal).
    pub fn isolate(&self, id: NodeId) {
        self.write().isolated.insert(id);
    }

    /// Undoes [`isolate`](Self::isolate).
    pub fn heal(&self, id: NodeId) {
        self.write().isolated.remove(&id);
    }

    /// The transport for node `id`'s thread.
    pub fn port(&self, id: NodeId) -> Port {
        Port {
            id,
            net: self.clone(),
        }
    }

    /// Delivers `msg` from `from` to `to`; returns whether it reached the inbox.
    pub fn deliver(&self, from: NodeId, to: NodeId, msg: Message) -> bool {
        let ok = {
            let links = self.links.read().unwrap_or_else(PoisonError::into_inner);
            !links.isolated.contains(&from)
                && !links.isolated.contains(&to)
                && links
                    .nodes
                    .get(&to)
                    .is_some_and(|deliver| deliver(from, msg))
        };
        let counter = if ok { &self.delivered } else { &self.dropped };
        counter.fetch_add(1, Ordering::Relaxed);
        ok
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Links> {
        // Every update is one insert or remove: a panicking holder leaves it consistent.
        self.links.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Node `id`'s [`Transport`] on a [`Network`]: sends as `id`.
#[derive(Clone, Debug)]
pub struct Port {
    id: NodeId,
    net: Network,
}

impl Transport for Port {
    fn send(&mut self, to: NodeId, msg: Message) {
        self.net.deliver(self.id, to, msg);
    }
}
