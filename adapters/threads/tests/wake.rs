//! `Machine::wake_at`: a machine that holds requests back is woken by the node thread
//! when it asks to be, with no input arriving and no tick due.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use stepwise_host::testkit::Holder;
use stepwise_raft::{Message, NodeId, Persisted};
use stepwise_threads::{Options, spawn};

#[test]
fn held_requests_are_answered_when_the_machine_asks_to_be_woken() {
    let (tx, rx) = mpsc::channel();
    // No tick during the test: only the wake can end the hold.
    let options = Options::default().with_tick(Duration::from_secs(3600));
    let node = spawn(
        1,
        Holder::new(Duration::from_millis(20)),
        Persisted::default(),
        |_: NodeId, _: Message| {},
        move |n| {
            let _ = tx.send(n);
        },
        options,
    );
    let start = Instant::now();
    node.submit(1).unwrap();
    node.submit(2).unwrap();
    let first = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(first, Ok(1), "woken to answer the held requests");
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(2));
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "held for the hold time"
    );
    node.shutdown().unwrap();
}
