//! Counters of the TCP transport, readable while the node runs.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// A snapshot of the transport's counters (totals since the node started).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct NetStats {
            $( $(#[$doc])* pub $name: u64, )*
        }

        /// The live counters, shared by the transport's tasks.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $( pub(crate) $name: AtomicU64, )*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> NetStats {
                NetStats { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }
    };
}

counters! {
    /// Inbound connections accepted.
    accepted,
    /// Inbound connections whose handshake succeeded.
    inbound_ready,
    /// Inbound handshakes refused for bad magic, unsupported version, malformed or
    /// oversized hello, or timeout.
    bad_handshakes,
    /// Inbound handshakes refused because the peer is in another cluster.
    wrong_cluster,
    /// Inbound handshakes refused because the peer's id is not another member.
    unknown_node,
    /// Connections dropped because a frame after the handshake did not decode.
    bad_frames,
    /// Connections dropped because an inbound frame exceeded the maximum frame size.
    oversized_frames,
    /// Messages received and handed to the node.
    received,
    /// Outbound connections established (handshake done).
    connected,
    /// Outbound connection attempts that failed (refused, timed out, bad handshake).
    connect_failures,
    /// Messages written to peers.
    sent,
    /// Messages dropped because the peer's send queue was full (count or bytes).
    dropped_full,
    /// Messages dropped because the peer was unreachable when they were queued or sent.
    dropped_unreachable,
    /// Messages dropped because they encode to more than the maximum frame size.
    dropped_oversized,
    /// Messages to an id that is not a configured peer, dropped.
    dropped_unknown_peer,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
