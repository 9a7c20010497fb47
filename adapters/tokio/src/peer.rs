//! Outbound side: one bounded queue and one writer task per peer, with reconnection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use stepwise_raft::{Message, NodeId};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::stats::Counters;
use crate::transport::Shared;
use crate::wire::{Frame, HandshakeError, Hello, codec};

/// Failed dials in a row before a peer's unreachability is logged as a warning.
const UNREACHABLE_WARN_AFTER: u32 = 5;

struct PeerQueue {
    tx: mpsc::Sender<Bytes>,
    /// Bytes queued in `tx` (added when queued, subtracted when taken).
    queued: Arc<AtomicUsize>,
}

/// The sending half of the transport, used by the node's task: encodes each message
/// once and queues it for its peer's writer, never waiting.
pub(crate) struct Outbound {
    peers: BTreeMap<NodeId, PeerQueue>,
    shared: Arc<Shared>,
}

impl Outbound {
    /// Starts a writer task per configured peer in `tasks`.
    pub(crate) fn start(
        shared: &Arc<Shared>,
        cancel: &CancellationToken,
        tasks: &mut JoinSet<()>,
    ) -> Outbound {
        let mut peers = BTreeMap::new();
        for (&id, &addr) in &shared.config.peers {
            let (tx, rx) = mpsc::channel(shared.config.queue_messages.max(1));
            let queued = Arc::new(AtomicUsize::new(0));
            let writer = Writer {
                peer: id,
                addr,
                rx,
                queued: Arc::clone(&queued),
                shared: Arc::clone(shared),
                cancel: cancel.clone(),
            };
            tasks.spawn(writer.run());
            peers.insert(id, PeerQueue { tx, queued });
        }
        Outbound {
            peers,
            shared: Arc::clone(shared),
        }
    }

    /// Queues `msg` for peer `to`, or drops it (counted) if the queue is full, the
    /// message is too large, or `to` is not a peer.
    pub(crate) fn send(&self, to: NodeId, msg: Message) {
        let counters = &self.shared.counters;
        let Some(peer) = self.peers.get(&to) else {
            Counters::bump(&counters.dropped_unknown_peer);
            return;
        };
        let frame = match Frame::Raft(msg).encode() {
            Ok(frame) => frame,
            Err(e) => {
                // Raft messages are plain data; encoding them into a Vec cannot fail.
                tracing::error!(peer = to, error = %e, "cannot encode a message");
                return;
            }
        };
        let len = frame.len();
        if len > self.shared.config.max_frame {
            Counters::bump(&counters.dropped_oversized);
            tracing::warn!(
                peer = to,
                len,
                max = self.shared.config.max_frame,
                "message larger than the maximum frame size dropped"
            );
            return;
        }
        if peer.queued.load(Ordering::Relaxed) + len > self.shared.config.queue_bytes {
            Counters::bump(&counters.dropped_full);
            return;
        }
        peer.queued.fetch_add(len, Ordering::Relaxed);
        if peer.tx.try_send(frame).is_err() {
            // Full, or the writer is gone (shutting down).
            peer.queued.fetch_sub(len, Ordering::Relaxed);
            Counters::bump(&counters.dropped_full);
        }
    }
}

type Conn = Framed<TcpStream, LengthDelimitedCodec>;

#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("closed during the handshake")]
    Closed,
    #[error("timed out")]
    Timeout,
    #[error("refused handshake: {0}")]
    Handshake(#[from] HandshakeError),
}

/// Delivers one peer's queue over a connection it (re)establishes as needed.
struct Writer {
    peer: NodeId,
    addr: SocketAddr,
    rx: mpsc::Receiver<Bytes>,
    queued: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Writer {
    async fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        let mut backoff = config.backoff_min;
        let mut failures = 0u32;
        loop {
            let dial = tokio::time::timeout(config.handshake_timeout, self.dial());
            let result = tokio::select! {
                _ = self.cancel.cancelled() => return,
                r = dial => r.unwrap_or(Err(DialError::Timeout)),
            };
            match result {
                Ok(conn) => {
                    Counters::bump(&self.shared.counters.connected);
                    tracing::info!(peer = self.peer, addr = %self.addr, "connected to peer");
                    backoff = config.backoff_min;
                    failures = 0;
                    if !self.pump(conn).await {
                        return;
                    }
                }
                Err(e) => {
                    Counters::bump(&self.shared.counters.connect_failures);
                    // Peers that start or stop a moment apart refuse a few dials: not
                    // worth a warning. One that stays unreachable is.
                    if failures + 1 == UNREACHABLE_WARN_AFTER {
                        tracing::warn!(peer = self.peer, addr = %self.addr, error = %e, attempts = failures + 1, "cannot reach peer; still retrying with backoff");
                    } else {
                        tracing::debug!(peer = self.peer, addr = %self.addr, error = %e, "cannot reach peer");
                    }
                    failures = failures.saturating_add(1);
                    if !self.discard_for(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(config.backoff_max);
                }
            }
        }
    }

    /// Connects and exchanges handshakes.
    async fn dial(&self) -> Result<Conn, DialError> {
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let mut conn = Framed::new(stream, codec(self.shared.config.max_frame));
        conn.send(self.shared.me.encode()).await?;
        let reply = conn.next().await.ok_or(DialError::Closed)??;
        let hello = Hello::decode(&reply)?;
        self.shared.me.check(&hello, |_| true)?;
        if hello.node_id != self.peer {
            return Err(HandshakeError::UnexpectedNode {
                expected: self.peer,
                got: hello.node_id,
            }
            .into());
        }
        Ok(conn)
    }

    fn take(&self, frame: &Bytes) {
        self.queued.fetch_sub(frame.len(), Ordering::Relaxed);
    }

    /// Writes queued frames until the connection fails (returns `true`: reconnect) or the
    /// node stops (returns `false`).
    async fn pump(&mut self, mut conn: Conn) -> bool {
        let counters = &self.shared.counters;
        loop {
            let frame = tokio::select! {
                _ = self.cancel.cancelled() => return false,
                frame = self.rx.recv() => match frame {
                    Some(frame) => frame,
                    None => return false,
                },
                // The acceptor never writes after its handshake: anything readable is
                // the connection closing (or a broken peer).
                _ = conn.next() => {
                    tracing::info!(peer = self.peer, "peer closed the connection");
                    return true;
                }
            };
            let mut batch = 0u64;
            let write = write_batch(&mut conn, &mut self.rx, &self.queued, frame, &mut batch);
            let result = tokio::select! {
                _ = self.cancel.cancelled() => return false,
                r = tokio::time::timeout(self.shared.config.write_timeout, write) => r,
            };
            let error = match result {
                Ok(Ok(())) => {
                    counters.sent.fetch_add(batch, Ordering::Relaxed);
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "write timed out (the peer is not reading)".to_owned(),
            };
            counters
                .dropped_unreachable
                .fetch_add(batch, Ordering::Relaxed);
            tracing::info!(peer = self.peer, error, "lost the connection to peer");
            return true;
        }
    }

    /// Waits `delay` before the next attempt, dropping what is queued meanwhile (stale
    /// messages would only delay fresh ones). Returns `false` if the node stops.
    async fn discard_for(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                _ = &mut sleep => return true,
                frame = self.rx.recv() => match frame {
                    Some(frame) => {
                        self.take(&frame);
                        Counters::bump(&self.shared.counters.dropped_unreachable);
                    }
                    None => return false,
                },
            }
        }
    }
}

/// Writes `first` and whatever else is queued, then flushes. `batch` counts the frames
/// taken from the queue (all lost if this fails).
async fn write_batch(
    conn: &mut Conn,
    rx: &mut mpsc::Receiver<Bytes>,
    queued: &AtomicUsize,
    first: Bytes,
    batch: &mut u64,
) -> std::io::Result<()> {
    let mut next = Some(first);
    while let Some(frame) = next {
        queued.fetch_sub(frame.len(), Ordering::Relaxed);
        *batch += 1;
        conn.feed(frame).await?;
        next = rx.try_recv().ok();
    }
    SinkExt::<Bytes>::flush(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;
    use crate::wire::Hello;
    use stepwise_raft::{Entry, Payload};

    fn big_append(bytes: usize) -> Message {
        Message::AppendEntries {
            term: 1,
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry {
                term: 1,
                index: 1,
                payload: Payload::Command(vec![7u8; bytes].into()),
            }],
            commit: 0,
            seq: 0,
        }
    }

    /// A peer that completes the handshake and then never reads: the writer blocks on a
    /// full socket, and the queue must stay within its byte budget, dropping the rest.
    #[tokio::test]
    async fn a_peer_that_stops_reading_cannot_exhaust_memory() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stalled = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut conn = Framed::new(stream, codec(1 << 30));
            let _hello = conn.next().await;
            conn.send(
                Hello {
                    cluster_id: 9,
                    node_id: 2,
                }
                .encode(),
            )
            .await
            .unwrap();
            std::future::pending::<()>().await; // hold the connection, read nothing
            drop(conn);
        });
        let mut config = NodeConfig::new(9, 1, [(2, addr)]);
        config.queue_bytes = 4 << 20;
        config.write_timeout = Duration::from_millis(300);
        let shared = Arc::new(Shared::new(config));
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let outbound = Outbound::start(&shared, &cancel, &mut tasks);
        let queued = Arc::clone(&outbound.peers[&2].queued);

        // 400 messages of 256 KiB: 100 MiB, far more than the queue and the socket
        // buffers hold.
        let total = 400u64;
        for _ in 0..total {
            outbound.send(2, big_append(256 << 10));
            assert!(
                queued.load(Ordering::Relaxed) <= 4 << 20,
                "over the byte budget"
            );
            tokio::task::yield_now().await; // let the writer run
        }
        let stats = shared.counters.snapshot();
        assert!(stats.dropped_full > 0, "{stats:?}");
        assert!(
            stats.sent < total,
            "the stalled peer cannot take everything"
        );
        outbound.send(3, big_append(1));
        assert_eq!(shared.counters.snapshot().dropped_unknown_peer, 1);
        // The stalled write times out: the batch in it is counted lost.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while shared.counters.snapshot().dropped_unreachable == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no write timeout");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        cancel.cancel();
        while tasks.join_next().await.is_some() {}
        stalled.abort();
    }

    #[tokio::test]
    async fn a_message_over_the_frame_limit_is_dropped_before_queueing() {
        let mut config = NodeConfig::new(9, 1, [(2, "127.0.0.1:9".parse().unwrap())]);
        config.max_frame = 1024;
        let shared = Arc::new(Shared::new(config));
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let outbound = Outbound::start(&shared, &cancel, &mut tasks);
        outbound.send(2, big_append(2048));
        assert_eq!(shared.counters.snapshot().dropped_oversized, 1);
        assert_eq!(outbound.peers[&2].queued.load(Ordering::Relaxed), 0);
        cancel.cancel();
        while tasks.join_next().await.is_some() {}
    }
}
