//! The node-to-node wire protocol.
//!
//! A connection carries messages **one way**, from the node that dialled to the node that
//! accepted (each pair of members has one connection per direction). Everything on it is
//! a frame: a 4-byte big-endian length, then that many bytes (tokio-util's
//! `LengthDelimitedCodec`); a frame longer than the receiver's maximum drops the
//! connection.
//!
//! 1. The dialler sends a [`Hello`]: the 8-byte [`MAGIC`], the protocol version (a
//!    postcard varint, [`PROTOCOL_VERSION`]), then for version 1 the cluster id and its
//!    node id (postcard varints).
//! 2. The acceptor checks magic, version, cluster id and that the node id is another
//!    member. If anything is wrong it logs, counts and closes without answering.
//!    Otherwise it answers with its own `Hello`, which the dialler checks the same way
//!    (and that it is the member it meant to reach).
//! 3. Then the dialler sends [`Frame`]s, each a postcard-encoded enum; the acceptor never
//!    writes again. An undecodable frame drops the connection.
//!
//! The handshake identifies, it does not authenticate: run the cluster on a trusted
//! network (or under TLS) if peers could lie about their id.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stepwise_raft::{Message, NodeId};
use tokio_util::codec::{LengthDelimitedCodec, LengthDelimitedCodecError};

/// The first 8 bytes of every connection.
pub const MAGIC: [u8; 8] = *b"stepwise";

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// A handshake: who is speaking, in which cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The cluster both ends must belong to.
    pub cluster_id: u64,
    /// The sender's node id.
    pub node_id: NodeId,
}

/// Version-independent head of a [`Hello`]: read first, so later versions can change the
/// rest.
#[derive(Serialize, Deserialize)]
struct HelloHead {
    magic: [u8; 8],
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct HelloV1 {
    cluster_id: u64,
    node_id: NodeId,
}

/// Why a handshake was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The frame does not start with [`MAGIC`] (not a stepwise peer).
    #[error("bad magic (not a stepwise peer)")]
    BadMagic,
    /// A protocol version this crate does not speak.
    #[error("unsupported protocol version {0} (this node speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u32),
    /// The frame is too short or too long for its version.
    #[error("malformed handshake")]
    Malformed,
    /// The peer belongs to another cluster.
    #[error("peer is in cluster {got:#x}, this node in {expected:#x}")]
    WrongCluster {
        /// This node's cluster id.
        expected: u64,
        /// The peer's.
        got: u64,
    },
    /// The peer's node id is not another member of the cluster.
    #[error("node {0} is not a peer of this node")]
    UnknownNode(NodeId),
    /// The dialled address answered with another member's id.
    #[error("dialled node {expected} but node {got} answered")]
    UnexpectedNode {
        /// The member that was dialled.
        expected: NodeId,
        /// The member that answered.
        got: NodeId,
    },
}

impl Hello {
    /// Encodes this handshake as a frame body.
    pub fn encode(&self) -> Bytes {
        let head = HelloHead {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
        };
        let body = HelloV1 {
            cluster_id: self.cluster_id,
            node_id: self.node_id,
        };
        // Encoding plain integers and arrays into a Vec cannot fail.
        let bytes = postcard::to_allocvec(&(head, body)).expect("encoding a handshake");
        Bytes::from(bytes)
    }

    /// Decodes a handshake frame body.
    pub fn decode(frame: &[u8]) -> Result<Hello, HandshakeError> {
        if frame.len() < MAGIC.len() || frame[..MAGIC.len()] != MAGIC {
            return Err(HandshakeError::BadMagic);
        }
        let (head, rest) =
            postcard::take_from_bytes::<HelloHead>(frame).map_err(|_| HandshakeError::Malformed)?;
        if head.version != PROTOCOL_VERSION {
            return Err(HandshakeError::UnsupportedVersion(head.version));
        }
        match postcard::take_from_bytes::<HelloV1>(rest) {
            Ok((v1, [])) => Ok(Hello {
                cluster_id: v1.cluster_id,
                node_id: v1.node_id,
            }),
            _ => Err(HandshakeError::Malformed),
        }
    }

    /// Checks a peer's handshake against this node's: same cluster, and a node id in
    /// `is_peer`.
    pub fn check(
        &self,
        peer: &Hello,
        is_peer: impl FnOnce(NodeId) -> bool,
    ) -> Result<(), HandshakeError> {
        if peer.cluster_id != self.cluster_id {
            return Err(HandshakeError::WrongCluster {
                expected: self.cluster_id,
                got: peer.cluster_id,
            });
        }
        if peer.node_id == self.node_id || !is_peer(peer.node_id) {
            return Err(HandshakeError::UnknownNode(peer.node_id));
        }
        Ok(())
    }
}

/// What follows the handshake: one frame per message. Versioned by the handshake; the
/// enum tag leaves room for other kinds of frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// A Raft message from the dialler.
    Raft(Message),
}

impl Frame {
    /// Encodes the frame body.
    pub fn encode(&self) -> Result<Bytes, postcard::Error> {
        postcard::to_allocvec(self).map(Bytes::from)
    }

    /// Decodes a frame body. Trailing bytes are an error.
    pub fn decode(body: &[u8]) -> Result<Frame, postcard::Error> {
        match postcard::take_from_bytes(body)? {
            (frame, []) => Ok(frame),
            _ => Err(postcard::Error::DeserializeBadEncoding),
        }
    }
}

/// The framing codec: 4-byte big-endian length prefix, frames of at most `max_frame`
/// bytes.
pub fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(max_frame)
        .new_codec()
}

/// Whether a codec error means "frame longer than the maximum".
pub fn is_frame_too_big(err: &std::io::Error) -> bool {
    err.get_ref()
        .is_some_and(|e| e.is::<LengthDelimitedCodecError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips() {
        let hello = Hello {
            cluster_id: 0xdead_beef,
            node_id: 3,
        };
        let bytes = hello.encode();
        assert_eq!(&bytes[..8], b"stepwise");
        assert_eq!(bytes[8], 1, "version 1 right after the magic");
        assert_eq!(Hello::decode(&bytes), Ok(hello));
    }

    #[test]
    fn bad_handshakes_are_refused() {
        assert_eq!(Hello::decode(b""), Err(HandshakeError::BadMagic));
        assert_eq!(
            Hello::decode(b"GET / HTTP/1.1\r\n"),
            Err(HandshakeError::BadMagic)
        );
        assert_eq!(
            Hello::decode(b"stepwise\x02\x01\x01"),
            Err(HandshakeError::UnsupportedVersion(2))
        );
        assert_eq!(
            Hello::decode(b"stepwise\x01\x01"),
            Err(HandshakeError::Malformed)
        );
        let mut long = Hello {
            cluster_id: 1,
            node_id: 2,
        }
        .encode()
        .to_vec();
        long.push(0);
        assert_eq!(Hello::decode(&long), Err(HandshakeError::Malformed));
    }

    #[test]
    fn peers_are_checked() {
        let me = Hello {
            cluster_id: 7,
            node_id: 1,
        };
        let peer = |cluster_id, node_id| Hello {
            cluster_id,
            node_id,
        };
        let members = |n| [2, 3].contains(&n);
        assert_eq!(me.check(&peer(7, 2), members), Ok(()));
        assert_eq!(
            me.check(&peer(8, 2), members),
            Err(HandshakeError::WrongCluster {
                expected: 7,
                got: 8
            })
        );
        assert_eq!(
            me.check(&peer(7, 9), members),
            Err(HandshakeError::UnknownNode(9))
        );
        assert_eq!(
            me.check(&peer(7, 1), |_| true),
            Err(HandshakeError::UnknownNode(1))
        );
    }

    #[test]
    fn frames_round_trip_and_garbage_is_an_error() {
        let frame = Frame::Raft(Message::VoteReply {
            term: 4,
            granted: true,
            pre_vote: false,
        });
        assert_eq!(Frame::decode(&frame.encode().unwrap()).unwrap(), frame);
        assert!(Frame::decode(&[0xff; 5]).is_err());
        assert!(Frame::decode(&[]).is_err());
        let mut trailing = frame.encode().unwrap().to_vec();
        trailing.push(0);
        assert!(Frame::decode(&trailing).is_err());
    }
}
