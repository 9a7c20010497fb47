//! [`Cluster`]: a whole cluster of node threads in one process.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use stepwise_host::{Machine, Storage};
use stepwise_raft::NodeId;

use crate::network::Network;
use crate::node::{Inbox, NodeError, NodeHandle, Options, Stopped, spawn};

/// A boxed event sink for one node (runs on the node's thread; must not block for long).
pub type EventSink<E> = Box<dyn FnMut(E) + Send>;

/// Members `1..=n` of one cluster, each on its own thread, wired by a [`Network`].
///
/// Every method takes `&self`, so client threads can submit while another thread stops
/// and restarts members.
pub struct Cluster<M: Machine, S> {
    members: Vec<NodeId>,
    options: Options,
    net: Network,
    handles: Mutex<BTreeMap<NodeId, NodeHandle<M, S>>>,
    inboxes: RwLock<BTreeMap<NodeId, Inbox<M::Request>>>,
}

impl<M: Machine, S> std::fmt::Debug for Cluster<M, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("members", &self.members)
            .field("net", &self.net)
            .finish()
    }
}

impl<M, S> Cluster<M, S>
where
    M: Machine,
    S: Storage + Send + 'static,
{
    /// Starts members `1..=n`. `make(id, members)` builds each member's machine, storage
    /// and event sink.
    pub fn new(
        n: usize,
        options: Options,
        mut make: impl FnMut(NodeId, &[NodeId]) -> (M, S, EventSink<M::Event>),
    ) -> Self {
        let members: Vec<NodeId> = (1..=n as NodeId).collect();
        let cluster = Cluster {
            members,
            options,
            net: Network::new(),
            handles: Mutex::new(BTreeMap::new()),
            inboxes: RwLock::new(BTreeMap::new()),
        };
        for &id in &cluster.members {
            let (machine, storage, events) = make(id, &cluster.members);
            cluster.start(id, machine, storage, events);
        }
        cluster
    }

    /// The member ids.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// The network (to isolate members, or read its counters).
    pub fn network(&self) -> &Network {
        &self.net
    }

    fn handles(&self) -> MutexGuard<'_, BTreeMap<NodeId, NodeHandle<M, S>>> {
        // Every update is one insert or remove: a panicking holder leaves it consistent.
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts (or restarts) member `id`, replacing a stopped one. A running member with
    /// the same id is stopped first.
    pub fn start(&self, id: NodeId, machine: M, storage: S, events: EventSink<M::Event>) {
        let _ = self.stop(id);
        let handle = spawn(
            id,
            machine,
            storage,
            self.net.port(id),
            events,
            self.options.clone(),
        );
        self.net.attach(id, handle.inbox());
        self.inboxes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, handle.inbox());
        self.handles().insert(id, handle);
    }

    /// Stops member `id` (see [`NodeHandle::shutdown`]) and returns its machine and
    /// storage, or `None` if it is not running.
    pub fn stop(&self, id: NodeId) -> Option<Result<(M, S), NodeError>> {
        self.net.detach(id);
        self.inboxes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        let handle = self.handles().remove(&id)?;
        Some(handle.shutdown())
    }

    /// Submits a request to member `id`, waiting while its inbox is full.
    pub fn submit(&self, id: NodeId, request: M::Request) -> Result<(), Stopped> {
        let inbox = self
            .inboxes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
            .ok_or(Stopped)?;
        inbox.submit(request)
    }

    /// Runs `f` on member `id`'s handle, if it is running.
    pub fn with_node<T>(&self, id: NodeId, f: impl FnOnce(&NodeHandle<M, S>) -> T) -> Option<T> {
        self.handles().get(&id).map(f)
    }

    /// Stops every member and returns what each left behind.
    pub fn shutdown(self) -> BTreeMap<NodeId, Result<(M, S), NodeError>> {
        self.members
            .iter()
            .filter_map(|&id| Some((id, self.stop(id)?)))
            .collect()
    }
}
