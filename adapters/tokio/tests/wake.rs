//! `Machine::wake_at`: a machine that holds requests back is woken by the runtime when
//! it asks to be, with no input arriving and no tick due.

use std::time::{Duration, Instant};

use stepwise_host::testkit::Holder;
use stepwise_raft::Persisted;
use stepwise_tokio::NodeConfig;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

async fn held_requests_are_answered_by_the_wake(pipelined: bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = NodeConfig::new(7, 1, []);
    // No tick during the test: only the wake can end the hold.
    config.tick = Duration::from_secs(3600);
    config.pipelined_sync = pipelined;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let machine = Holder::new(Duration::from_millis(20));
    let node = stepwise_tokio::start(config, listener, machine, Persisted::default(), move |n| {
        let _ = tx.send(n);
    })
    .await
    .unwrap();
    let start = Instant::now();
    node.submit(1).await.unwrap();
    node.submit(2).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    assert_eq!(first, Ok(Some(1)), "woken to answer the held requests");
    assert_eq!(rx.recv().await, Some(2));
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "held for the hold time"
    );
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn held_requests_are_answered_when_the_machine_asks_to_be_woken() {
    held_requests_are_answered_by_the_wake(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn held_requests_are_answered_when_woken_with_pipelined_sync_too() {
    held_requests_are_answered_by_the_wake(true).await;
}
