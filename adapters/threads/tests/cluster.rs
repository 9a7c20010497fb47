//! Three-member register clusters on threads: linearizable histories, every member
//! applying the same writes, and a member stopped and restarted from its data directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stepwise_host::testkit::{Observer, RegisterEvent, RegisterMachine, Workload};
use stepwise_host::{Storage, testkit::RegisterRequest};
use stepwise_raft::{Config, NodeId, Persisted};
use stepwise_storage::{RaftStorage, StorageOptions};
use stepwise_threads::{Cluster, EventSink, NodeError, Options};

const CONVERGE: Duration = Duration::from_secs(10);

fn config(id: NodeId, members: &[NodeId]) -> Config {
    Config::new(id, members).with_seed(id)
}

fn sink(observer: &Arc<Observer>, id: NodeId) -> EventSink<RegisterEvent> {
    Box::new(observer.sink(id))
}

/// Checks what the workload saw and what the members applied.
fn check_outcome(
    cluster_members: &[NodeId],
    observer: &Observer,
    outcome: &stepwise_host::testkit::Outcome,
) {
    outcome.assert_sound(cluster_members, observer, CONVERGE);
}

#[test]
fn a_register_cluster_on_threads_is_linearizable() {
    let observer = Observer::new();
    let cluster = Cluster::new(3, Options::default(), |id, members| {
        let machine = RegisterMachine::new(config(id, members)).unwrap();
        (machine, Persisted::default(), sink(&observer, id))
    });
    observer.wait_leader(CONVERGE).expect("a leader is elected");
    let workload = Workload {
        clients: 4,
        ops_per_client: 60,
        ..Workload::default()
    };
    let submit = |node: NodeId, req: RegisterRequest| cluster.submit(node, req).is_ok();
    let outcome = workload.run(cluster.members(), &observer, &submit);
    check_outcome(cluster.members(), &observer, &outcome);
    assert!(!outcome.acked_writes.is_empty());
    for (id, result) in cluster.shutdown() {
        let (machine, _) = result.unwrap();
        assert_eq!(
            machine.applied(),
            observer.applied(id),
            "events and state agree"
        );
    }
}

fn open(dir: &Path) -> (RaftStorage, Persisted) {
    RaftStorage::open(dir, StorageOptions::default()).unwrap()
}

#[test]
fn a_stopped_leader_restarts_from_its_data_directory_and_nothing_acknowledged_is_lost() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dir = |id: NodeId| dirs[id as usize - 1].path();
    let observer = Observer::new();
    let cluster = Cluster::new(3, Options::default(), |id, members| {
        let (storage, persisted) = open(dir(id));
        let machine = RegisterMachine::restore(config(id, members), persisted).unwrap();
        (machine, storage, sink(&observer, id))
    });
    let members = cluster.members().to_vec();
    observer.wait_leader(CONVERGE).expect("a leader is elected");

    let workload = Workload {
        clients: 3,
        ops_per_client: 80,
        ..Workload::default()
    };
    let submit = |node: NodeId, req: RegisterRequest| cluster.submit(node, req).is_ok();
    let outcome = std::thread::scope(|s| {
        let clients = s.spawn(|| workload.run(&members, &observer, &submit));
        // Let some writes commit, then stop the leader.
        assert!(
            observer.wait_until(CONVERGE, |applied| applied.values().any(|a| a.len() >= 15)),
            "writes commit"
        );
        let victim = observer.leader().unwrap();
        let (machine, storage) = cluster.stop(victim).unwrap().unwrap();
        let applied_before = machine.applied().len();
        drop((machine, storage));
        observer.restarted(victim);
        // The others elect a new leader and keep committing without it.
        let survivors: Vec<NodeId> = members.iter().copied().filter(|&m| m != victim).collect();
        assert!(
            observer.wait_until(CONVERGE, |applied| survivors.iter().all(|s| applied
                .get(s)
                .is_some_and(|a| a.len() >= applied_before + 10))),
            "the survivors commit without the stopped leader"
        );
        let (storage, persisted) = open(dir(victim));
        assert!(
            persisted.entries.len() >= applied_before,
            "everything applied was persisted"
        );
        let machine = RegisterMachine::restore(config(victim, &members), persisted).unwrap();
        cluster.start(victim, machine, storage, sink(&observer, victim));
        clients.join().unwrap()
    });
    check_outcome(&members, &observer, &outcome);
    cluster.shutdown();
}

/// A storage whose sync fails after a number of successful ones.
struct FailingStorage {
    inner: Persisted,
    syncs_left: u32,
}

#[derive(Debug)]
struct DiskGone;

impl std::fmt::Display for DiskGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk gone")
    }
}

impl std::error::Error for DiskGone {}

impl Storage for FailingStorage {
    type Error = DiskGone;
    fn apply(&mut self, action: &stepwise_raft::Action) -> Result<bool, DiskGone> {
        Ok(self.inner.apply(action))
    }
    fn sync(&mut self) -> Result<(), DiskGone> {
        self.syncs_left = self.syncs_left.checked_sub(1).ok_or(DiskGone)?;
        Ok(())
    }
}

#[test]
fn a_storage_failure_stops_the_node_and_the_others_carry_on() {
    let observer = Observer::new();
    let cluster = Cluster::new(3, Options::default(), |id, members| {
        let machine = RegisterMachine::new(config(id, members)).unwrap();
        let storage = FailingStorage {
            inner: Persisted::default(),
            // Member 3's disk fails at its first sync (its first vote or append).
            syncs_left: if id == 3 { 0 } else { u32::MAX },
        };
        (machine, storage, sink(&observer, id))
    });
    let workload = Workload {
        clients: 2,
        ops_per_client: 20,
        read_percent: 0,
        ..Workload::default()
    };
    let submit = |node: NodeId, req: RegisterRequest| cluster.submit(node, req).is_ok();
    let outcome = workload.run(cluster.members(), &observer, &submit);
    check_outcome(&[1, 2], &observer, &outcome);
    assert!(
        observer.applied(3).is_empty(),
        "member 3 never got past a sync"
    );
    let mut results = cluster.shutdown();
    assert!(matches!(
        results.remove(&3),
        Some(Err(NodeError::Storage(_)))
    ));
    assert!(results.values().all(Result::is_ok));
}

#[test]
fn an_isolated_leader_is_replaced_and_catches_up_after_healing() {
    let observer = Observer::new();
    let cluster = Cluster::new(3, Options::default(), |id, members| {
        let machine = RegisterMachine::new(config(id, members)).unwrap();
        (machine, Persisted::default(), sink(&observer, id))
    });
    let old = observer.wait_leader(CONVERGE).expect("a leader is elected");
    cluster.network().isolate(old);
    observer
        .wait_new_leader(old, CONVERGE)
        .expect("the others elect a new leader");
    let dropped = cluster.network().dropped();
    assert!(
        dropped > 0,
        "messages to and from the isolated node are dropped"
    );

    // The majority serves without the old leader; then the old leader rejoins and
    // applies everything.
    let workload = Workload {
        clients: 2,
        ops_per_client: 30,
        ..Workload::default()
    };
    let submit = |node: NodeId, req: RegisterRequest| cluster.submit(node, req).is_ok();
    let outcome = workload.run(cluster.members(), &observer, &submit);
    cluster.network().heal(old);
    check_outcome(cluster.members(), &observer, &outcome);
    cluster.shutdown();
}
