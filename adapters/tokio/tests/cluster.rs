//! Three-member register clusters over TCP on 127.0.0.1: linearizable histories, every
//! member applying the same writes, a graceful shutdown that keeps every acknowledged
//! write on disk, and a killed leader restarting from its data directory.

mod common;

use common::{CONVERGE, TcpCluster, check_outcome, open};
use stepwise_host::testkit::{OpId, RegisterRequest, Workload};
use stepwise_raft::{NodeId, Payload, Persisted};

/// The write ids in a persisted log (each command starts with its id, little-endian).
fn logged_writes(persisted: &Persisted) -> Vec<OpId> {
    persisted
        .entries
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Command(data) => Some(u64::from_le_bytes(data[..8].try_into().unwrap())),
            Payload::Noop => None,
        })
        .collect()
}

#[test]
fn a_register_cluster_over_tcp_is_linearizable_and_survives_a_graceful_shutdown() {
    linearizable_and_durable_after_a_graceful_shutdown(false);
}

#[test]
fn with_pipelined_sync_too() {
    linearizable_and_durable_after_a_graceful_shutdown(true);
}

#[test]
fn with_syncs_in_place_too() {
    // Without the pipelined sync every sync is a blocking one, so all of them run in
    // place (on the node task's worker thread).
    let cluster = TcpCluster::start_configured(3, false, true);
    linearizable_and_durable_on(cluster);
}

fn linearizable_and_durable_after_a_graceful_shutdown(pipelined: bool) {
    linearizable_and_durable_on(TcpCluster::start_with(3, pipelined));
}

fn linearizable_and_durable_on(cluster: TcpCluster) {
    cluster
        .observer
        .wait_leader(CONVERGE)
        .expect("a leader is elected");
    let workload = Workload {
        clients: 4,
        ops_per_client: 60,
        ..Workload::default()
    };
    let submit = |node: NodeId, req: RegisterRequest| cluster.submit(node, req);
    let outcome = workload.run(&cluster.members, &cluster.observer, &submit);
    check_outcome(&cluster.members, &cluster.observer, &outcome);
    assert!(!outcome.acked_writes.is_empty());

    for &id in &cluster.members {
        let stats = cluster.net_stats(id);
        assert!(stats.sent > 0 && stats.received > 0, "{stats:?}");
        assert_eq!(
            (
                stats.bad_handshakes,
                stats.wrong_cluster,
                stats.unknown_node,
                stats.bad_frames,
                stats.oversized_frames
            ),
            (0, 0, 0, 0, 0),
            "healthy peers produce no bad input: {stats:?}"
        );
    }

    // Graceful shutdown: the node stops listening, and its disk holds every acknowledged
    // write (all members have applied them, and apply follows persist).
    for &id in &cluster.members {
        let (machine, storage) = cluster.shutdown(id);
        assert_eq!(machine.applied(), cluster.observer.applied(id));
        drop(storage);
        assert!(
            std::net::TcpStream::connect(cluster.addrs[&id]).is_err(),
            "a stopped node does not accept connections"
        );
        let (_, persisted) = open(cluster.dir(id));
        let logged = logged_writes(&persisted);
        for acked in &outcome.acked_writes {
            assert!(logged.contains(acked), "write {acked:#x} lost on node {id}");
        }
    }
}

#[test]
fn a_killed_leader_restarts_from_its_data_directory_and_nothing_acknowledged_is_lost() {
    killed_leader_restarts(false);
}

#[test]
fn a_killed_leader_restarts_with_pipelined_sync_too() {
    killed_leader_restarts(true);
}

fn killed_leader_restarts(pipelined: bool) {
    let cluster = TcpCluster::start_with(3, pipelined);
    let observer = &cluster.observer;
    observer.wait_leader(CONVERGE).expect("a leader is elected");
    let workload = Workload {
        clients: 3,
        ops_per_client: 80,
        ..Workload::default()
    };
    let submit = |node: NodeId, req: RegisterRequest| cluster.submit(node, req);
    let outcome = std::thread::scope(|s| {
        let clients = s.spawn(|| workload.run(&cluster.members, observer, &submit));
        assert!(
            observer.wait_until(CONVERGE, |applied| applied.values().any(|a| a.len() >= 15)),
            "writes commit"
        );
        let victim = observer.leader().unwrap();
        let applied_before = observer.applied(victim).len();
        cluster.kill(victim);
        let survivors: Vec<NodeId> = cluster
            .members
            .iter()
            .copied()
            .filter(|&m| m != victim)
            .collect();
        assert!(
            observer.wait_until(CONVERGE, |applied| survivors.iter().all(|s| applied
                .get(s)
                .is_some_and(|a| a.len() >= applied_before + 10))),
            "the survivors commit without the killed leader"
        );
        cluster.restart(victim);
        clients.join().unwrap()
    });
    check_outcome(&cluster.members, observer, &outcome);
    // The restarted member reconnected to both others, and they to it.
    let reconnects: u64 = cluster
        .members
        .iter()
        .map(|&id| cluster.net_stats(id).connected)
        .sum();
    assert!(reconnects >= 6, "connections: {reconnects}");
}

#[test]
fn every_member_can_be_killed_and_restarted_in_turn() {
    let cluster = TcpCluster::start(3);
    let observer = &cluster.observer;
    observer.wait_leader(CONVERGE).expect("a leader is elected");
    let submit = |node: NodeId, req: RegisterRequest| cluster.submit(node, req);
    let mut acked = Vec::new();
    for (round, &victim) in cluster.members.iter().enumerate() {
        let workload = Workload {
            clients: 2,
            ops_per_client: 30,
            read_percent: 20,
            first_client: 10 * round as u64,
            ..Workload::default()
        };
        let outcome = workload.run(&cluster.members, observer, &submit);
        check_outcome(&cluster.members, observer, &outcome);
        acked.extend(outcome.acked_writes);
        cluster.kill(victim);
        cluster.restart(victim);
        // After the restart the member re-applies its log: everything acknowledged so
        // far, across all rounds, is there once more.
        observer
            .wait_converged(&cluster.members, &acked, CONVERGE)
            .unwrap();
    }
}
