//! Inbound side: the accept loop and one reader task per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use stepwise_raft::NodeId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::config::NodeConfig;
use crate::node::Inbound;
use crate::stats::Counters;
use crate::wire::{Frame, HandshakeError, Hello, codec, is_frame_too_big};

/// What every transport task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: NodeConfig,
    pub(crate) me: Hello,
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn new(config: NodeConfig) -> Shared {
        Shared {
            me: Hello {
                cluster_id: config.cluster_id,
                node_id: config.id,
            },
            config,
            counters: Counters::default(),
        }
    }
}

/// Accepts connections until `cancel`, then waits for the readers to end.
pub(crate) async fn accept_loop<R: Send + 'static>(
    listener: TcpListener,
    shared: Arc<Shared>,
    inbox: mpsc::Sender<Inbound<R>>,
    cancel: CancellationToken,
) {
    let mut readers = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished readers so the set does not grow with every connection.
        while readers.try_join_next().is_some() {}
        match accepted {
            Ok((stream, addr)) => {
                Counters::bump(&shared.counters.accepted);
                let reader = Reader {
                    addr,
                    shared: Arc::clone(&shared),
                    inbox: inbox.clone(),
                    cancel: cancel.clone(),
                };
                readers.spawn(reader.run(stream));
            }
            Err(e) => {
                // Typically out of file descriptors: pause instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
    drop(listener); // stop accepting before waiting for the readers
    while readers.join_next().await.is_some() {}
}

struct Reader<R> {
    addr: SocketAddr,
    shared: Arc<Shared>,
    inbox: mpsc::Sender<Inbound<R>>,
    cancel: CancellationToken,
}

impl<R: Send + 'static> Reader<R> {
    async fn run(self, stream: TcpStream) {
        let cancel = self.cancel.clone();
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = self.serve(stream) => {}
        }
    }

    async fn serve(&self, stream: TcpStream) {
        let counters = &self.shared.counters;
        let config = &self.shared.config;
        // Nodes only ever read here; Nagle would only delay the handshake reply.
        let _ = stream.set_nodelay(true);
        let mut conn = Framed::new(stream, codec(config.max_frame));
        let first = tokio::time::timeout(config.handshake_timeout, conn.next()).await;
        let peer = match first {
            Ok(Some(Ok(frame))) => Hello::decode(&frame).and_then(|hello| {
                self.shared
                    .me
                    .check(&hello, |id| config.peers.contains_key(&id))
                    .map(|()| hello.node_id)
            }),
            Ok(Some(Err(e))) => {
                Counters::bump(&counters.bad_handshakes);
                tracing::warn!(addr = %self.addr, error = %e, "bad handshake frame; dropping connection");
                return;
            }
            Ok(None) => {
                Counters::bump(&counters.bad_handshakes);
                tracing::warn!(addr = %self.addr, "connection closed before its handshake");
                return;
            }
            Err(_) => {
                Counters::bump(&counters.bad_handshakes);
                tracing::warn!(addr = %self.addr, "handshake timed out; dropping connection");
                return;
            }
        };
        let from = match peer {
            Ok(from) => from,
            Err(e) => {
                let counter = match e {
                    HandshakeError::WrongCluster { .. } => &counters.wrong_cluster,
                    HandshakeError::UnknownNode(_) | HandshakeError::UnexpectedNode { .. } => {
                        &counters.unknown_node
                    }
                    HandshakeError::BadMagic
                    | HandshakeError::UnsupportedVersion(_)
                    | HandshakeError::Malformed => &counters.bad_handshakes,
                };
                Counters::bump(counter);
                tracing::warn!(addr = %self.addr, error = %e, "handshake refused; dropping connection");
                return;
            }
        };
        if let Err(e) = conn.send(self.shared.me.encode()).await {
            tracing::info!(addr = %self.addr, peer = from, error = %e, "connection lost during the handshake");
            return;
        }
        Counters::bump(&counters.inbound_ready);
        tracing::debug!(addr = %self.addr, peer = from, "inbound connection ready");
        self.read_messages(conn, from).await;
    }

    async fn read_messages(&self, mut conn: Framed<TcpStream, LengthDelimitedCodec>, from: NodeId) {
        let counters = &self.shared.counters;
        while let Some(frame) = conn.next().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) if is_frame_too_big(&e) => {
                    Counters::bump(&counters.oversized_frames);
                    tracing::warn!(
                        addr = %self.addr,
                        peer = from,
                        max = self.shared.config.max_frame,
                        "frame larger than the maximum; dropping connection"
                    );
                    return;
                }
                Err(e) => {
                    tracing::info!(addr = %self.addr, peer = from, error = %e, "connection lost");
                    return;
                }
            };
            match Frame::decode(&frame) {
                Ok(Frame::Raft(msg)) => {
                    Counters::bump(&counters.received);
                    if self
                        .inbox
                        .send(Inbound::Receive { from, msg })
                        .await
                        .is_err()
                    {
                        return; // the node stopped
                    }
                }
                Err(e) => {
                    Counters::bump(&counters.bad_frames);
                    tracing::warn!(
                        addr = %self.addr,
                        peer = from,
                        error = %e,
                        len = frame.len(),
                        "undecodable frame; dropping connection"
                    );
                    return;
                }
            }
        }
        tracing::debug!(addr = %self.addr, peer = from, "peer closed the connection");
    }
}
