//! A register cluster over TCP on 127.0.0.1 for the integration tests: each member on its
//! own tokio runtime (so dropping the runtime kills it like a crashed process) with its
//! own data directory.

#![allow(dead_code)] // each test file uses part of this

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use stepwise_host::testkit::{Observer, RegisterMachine, RegisterRequest};
use stepwise_raft::{Config, NodeId, Persisted};
use stepwise_storage::{RaftStorage, StorageOptions};
use stepwise_tokio::{NetStats, NodeConfig, NodeHandle, Submitter, start};
use tokio::runtime::Runtime;

pub const CLUSTER_ID: u64 = 0x5713_9a1e;
pub const CONVERGE: Duration = Duration::from_secs(10);

struct Running {
    handle: NodeHandle<RegisterMachine, RaftStorage>,
    runtime: Runtime,
}

pub struct TcpCluster {
    pub members: Vec<NodeId>,
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    pub observer: Arc<Observer>,
    dirs: BTreeMap<NodeId, tempfile::TempDir>,
    running: Mutex<BTreeMap<NodeId, Running>>,
    submitters: RwLock<BTreeMap<NodeId, Submitter<RegisterRequest>>>,
    pipelined: bool,
    sync_in_place: bool,
}

pub fn raft_config(id: NodeId, members: &[NodeId]) -> Config {
    Config::new(id, members).with_seed(id)
}

pub fn open(dir: &Path) -> (RaftStorage, Persisted) {
    RaftStorage::open(dir, StorageOptions::default()).unwrap()
}

impl TcpCluster {
    /// Members `1..=n`, each listening on a free port of 127.0.0.1.
    pub fn start(n: u64) -> TcpCluster {
        Self::start_with(n, false)
    }

    /// As [`start`](Self::start), with [`NodeConfig::pipelined_sync`] set to `pipelined`.
    pub fn start_with(n: u64, pipelined: bool) -> TcpCluster {
        Self::start_configured(n, pipelined, false)
    }

    /// As [`start_with`](Self::start_with), and [`NodeConfig::sync_in_place`] set to
    /// `sync_in_place`.
    pub fn start_configured(n: u64, pipelined: bool, sync_in_place: bool) -> TcpCluster {
        let members: Vec<NodeId> = (1..=n).collect();
        let mut listeners = BTreeMap::new();
        for &id in &members {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listeners.insert(id, listener);
        }
        let addrs = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap()))
            .collect();
        let cluster = TcpCluster {
            members: members.clone(),
            addrs,
            observer: Observer::new(),
            dirs: members
                .iter()
                .map(|&id| (id, tempfile::tempdir().unwrap()))
                .collect(),
            running: Mutex::new(BTreeMap::new()),
            submitters: RwLock::new(BTreeMap::new()),
            pipelined,
            sync_in_place,
        };
        for (id, listener) in listeners {
            cluster.launch(id, listener);
        }
        cluster
    }

    pub fn dir(&self, id: NodeId) -> &Path {
        self.dirs[&id].path()
    }

    pub fn node_config(&self, id: NodeId) -> NodeConfig {
        let mut config = NodeConfig::new(CLUSTER_ID, id, self.addrs.clone());
        config.handshake_timeout = Duration::from_millis(500);
        config.pipelined_sync = self.pipelined;
        config.sync_in_place = self.sync_in_place;
        config
    }

    fn launch(&self, id: NodeId, listener: std::net::TcpListener) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("node-{id}"))
            .enable_all()
            .build()
            .unwrap();
        let (storage, persisted) = open(self.dir(id));
        let machine = RegisterMachine::restore(raft_config(id, &self.members), persisted).unwrap();
        let config = self.node_config(id);
        let sink = self.observer.sink(id);
        let handle = runtime.block_on(async {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            start(config, listener, machine, storage, sink)
                .await
                .unwrap()
        });
        self.submitters
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, handle.submitter());
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Running { handle, runtime });
    }

    fn take(&self, id: NodeId) -> Running {
        self.submitters
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
            .expect("the node is running")
    }

    /// Kills member `id` like a crashed process: its runtime is dropped, every task with
    /// it, without a graceful shutdown.
    pub fn kill(&self, id: NodeId) {
        let Running { handle, runtime } = self.take(id);
        drop(runtime); // waits for a flush in progress (block_in_place) to return
        drop(handle);
        self.observer.restarted(id);
    }

    /// Restarts member `id` from its data directory, on the same address.
    pub fn restart(&self, id: NodeId) {
        let listener = std::net::TcpListener::bind(self.addrs[&id]).unwrap();
        self.launch(id, listener);
    }

    /// Stops member `id` gracefully and returns what it left behind.
    pub fn shutdown(&self, id: NodeId) -> (RegisterMachine, RaftStorage) {
        let Running { handle, runtime } = self.take(id);
        runtime.block_on(handle.shutdown()).unwrap()
    }

    /// Submits to member `id`; `false` if it is not running.
    pub fn submit(&self, id: NodeId, req: RegisterRequest) -> bool {
        let submitter = self
            .submitters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        submitter.is_some_and(|s| s.blocking_submit(req).is_ok())
    }

    pub fn net_stats(&self, id: NodeId) -> NetStats {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)[&id]
            .handle
            .net_stats()
    }

    pub fn running(&self) -> Vec<NodeId> {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }
}

impl Drop for TcpCluster {
    fn drop(&mut self) {
        for id in self.running() {
            self.kill(id);
        }
    }
}

/// Checks the workload's history and that the members applied the same writes,
/// acknowledged ones included, each once.
pub fn check_outcome(
    members: &[NodeId],
    observer: &Observer,
    outcome: &stepwise_host::testkit::Outcome,
) {
    outcome.assert_sound(members, observer, CONVERGE);
}
