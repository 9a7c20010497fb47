//! Bad input on the wire: each kind drops its connection (counted, logged) and the node
//! keeps serving.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{CLUSTER_ID, CONVERGE, TcpCluster, check_outcome};
use stepwise_host::testkit::{RegisterRequest, Workload};
use stepwise_raft::NodeId;
use stepwise_tokio::NetStats;
use stepwise_tokio::wire::{Hello, MAGIC};

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn hello(cluster_id: u64, node_id: NodeId) -> Vec<u8> {
    frame(
        &Hello {
            cluster_id,
            node_id,
        }
        .encode(),
    )
}

/// Sends `bytes` and reads until the node closes the connection; returns what it sent
/// back. Fails if the connection is still open after a few seconds.
fn send_and_expect_close(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // The node may close before reading everything: a failed write is fine.
    let _ = stream.write_all(bytes);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut received = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(
                    Instant::now() < deadline,
                    "the node kept the connection open after {bytes:02x?}"
                );
            }
            // Reset: the node closed with our bytes unread.
            Err(_) => return received,
        }
    }
}

/// Waits (bounded) until `done` holds for node `id`'s counters.
fn wait_stats(cluster: &TcpCluster, id: NodeId, done: impl Fn(&NetStats) -> bool) -> NetStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = cluster.net_stats(id);
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::yield_now();
    }
}

#[test]
fn bad_input_drops_the_connection_and_the_node_keeps_serving() {
    let cluster = TcpCluster::start(3);
    cluster
        .observer
        .wait_leader(CONVERGE)
        .expect("a leader is elected");
    let target = 1;
    let addr = cluster.addrs[&target];
    let before = cluster.net_stats(target);
    let valid_hello_reply = hello(CLUSTER_ID, target);

    // Garbage: an HTTP request. Its first 4 bytes read as a 1.2 GB frame length.
    assert!(send_and_expect_close(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_empty());
    // A small frame without the magic.
    assert!(send_and_expect_close(addr, &frame(b"hello there")).is_empty());
    // The right magic, an unsupported version.
    let mut v2 = MAGIC.to_vec();
    v2.extend_from_slice(&[2, 1, 2]);
    assert!(send_and_expect_close(addr, &frame(&v2)).is_empty());
    // A connection that never says anything (handshake timeout, 500 ms in these tests).
    assert!(send_and_expect_close(addr, &[]).is_empty());
    // Another cluster.
    assert!(send_and_expect_close(addr, &hello(CLUSTER_ID + 1, 2)).is_empty());
    // A node id that is not a member, and the node's own id.
    assert!(send_and_expect_close(addr, &hello(CLUSTER_ID, 99)).is_empty());
    assert!(send_and_expect_close(addr, &hello(CLUSTER_ID, target)).is_empty());
    // A good handshake, then a frame header announcing 4 GiB.
    let mut oversized = hello(CLUSTER_ID, 2);
    oversized.extend_from_slice(&u32::MAX.to_be_bytes());
    oversized.extend_from_slice(&[0; 64]);
    assert_eq!(send_and_expect_close(addr, &oversized), valid_hello_reply);
    // A good handshake, then a frame that is not a message.
    let mut garbage = hello(CLUSTER_ID, 2);
    garbage.extend_from_slice(&frame(&[0xff; 9]));
    assert_eq!(send_and_expect_close(addr, &garbage), valid_hello_reply);

    let expect = |s: &NetStats| {
        (
            s.bad_handshakes - before.bad_handshakes,
            s.wrong_cluster - before.wrong_cluster,
            s.unknown_node - before.unknown_node,
            s.oversized_frames - before.oversized_frames,
            s.bad_frames - before.bad_frames,
        )
    };
    let stats = wait_stats(&cluster, target, |s| expect(s) == (4, 1, 2, 1, 1));
    assert_eq!(
        expect(&stats),
        (4, 1, 2, 1, 1),
        "bad handshakes, wrong cluster, unknown node, oversized, bad frames"
    );

    // The node still serves: a workload completes, linearizable, with every member
    // (the target included) applying every acknowledged write.
    let workload = Workload {
        clients: 2,
        ops_per_client: 30,
        ..Workload::default()
    };
    let submit = |node: NodeId, req: RegisterRequest| cluster.submit(node, req);
    let outcome = workload.run(&cluster.members, &cluster.observer, &submit);
    check_outcome(&cluster.members, &cluster.observer, &outcome);
    assert!(!outcome.acked_writes.is_empty());
}

#[test]
fn a_peer_answering_with_the_wrong_identity_is_not_used() {
    // Member 2's address is held by an impostor that answers every handshake as
    // member 3; member 1 must refuse it and keep retrying (counted), never sending to it.
    let impostor = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let impostor_addr = impostor.local_addr().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (answered_tx, answered) = std::sync::mpsc::channel();
    let impostor_thread = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut conn, _) = impostor.accept().unwrap();
            let _ = conn.write_all(&hello(CLUSTER_ID, 3));
            let mut sink = Vec::new();
            let _ = conn.read_to_end(&mut sink); // until member 1 hangs up
            answered_tx.send(sink.len()).unwrap();
        }
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peers = [
        (1, listener.local_addr().unwrap()),
        (2, impostor_addr),
        (3, "127.0.0.1:9".parse().unwrap()), // nobody listens on the discard port
    ];
    let mut config = stepwise_tokio::NodeConfig::new(CLUSTER_ID, 1, peers);
    config.backoff_min = Duration::from_millis(10);
    let machine =
        stepwise_host::testkit::RegisterMachine::new(common::raft_config(1, &[1, 2, 3])).unwrap();
    runtime.block_on(async {
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let node = stepwise_tokio::start(
            config,
            listener,
            machine,
            stepwise_raft::Persisted::default(),
            |_| {},
        )
        .await
        .unwrap();
        // Member 1 dials the impostor twice (a retry after the refusal) and sends it
        // nothing but its handshake.
        for _ in 0..2 {
            let answered =
                tokio::task::block_in_place(|| answered.recv_timeout(Duration::from_secs(5)));
            let hello_len = hello(CLUSTER_ID, 1).len();
            assert_eq!(
                answered,
                Ok(hello_len),
                "only a handshake reached the impostor"
            );
        }
        let stats = node.net_stats();
        assert!(stats.connect_failures >= 2, "{stats:?}");
        assert_eq!(stats.connected, 0, "no peer is reachable as itself");
        assert_eq!(stats.sent, 0);
        node.shutdown().await.unwrap();
    });
    impostor_thread.join().unwrap();
}
