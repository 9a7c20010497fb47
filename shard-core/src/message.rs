//! What crosses the network, besides Raft's own messages.
//!
//! * Clients and shard groups speak kv-core's [`Request`](stepwise_kv::Request) /
//!   [`Reply`](stepwise_kv::Reply) (a key/value operation, its session, and the result; a
//!   group that does not serve the key's shard answers
//!   [`KvError::WrongGroup`](stepwise_kv::KvError::WrongGroup)).
//! * Administrators, shard groups and clients query and change the controller with
//!   [`CtrlRequest`] / [`CtrlReply`].
//! * Shard groups hand shards to each other with [`PeerMsg`].
//!
//! Every type is serde-serializable and avoids `skip_serializing_if`, `flatten` and
//! `untagged`, so postcard (not self-describing) works. Adapters that keep connections
//! exchange [`WIRE_VERSION`] first.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stepwise_kv::KvResult;
use stepwise_kv::rsm::{Session, Sessions};

use crate::config::{Addr, Gid};
use crate::ctrler::{CtrlOp, CtrlResult};

/// Version of the message layouts in this module.
pub const WIRE_VERSION: u8 = 1;

/// A request to a controller server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtrlRequest {
    /// The client's number for this request, echoed in the reply.
    pub id: u64,
    /// With a session a change executes at most once however often it is retried.
    /// Queries ignore it.
    pub session: Option<Session>,
    /// The operation.
    pub op: CtrlOp,
    /// Apply a change only if the latest configuration is this one
    /// ([`CtrlCommand::expect`](crate::ctrler::CtrlCommand::expect)).
    pub expect: Option<u64>,
}

/// A controller server's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtrlReply {
    /// The [`CtrlRequest::id`] answered.
    pub id: u64,
    /// The outcome.
    pub result: CtrlResult,
}

/// A shard's contents as they travel between groups: the key/value data and the
/// exactly-once table of the clients that wrote to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardData {
    /// The shard's number.
    pub shard: u32,
    /// The shard's store, in [`stepwise_kv::Kv`]'s snapshot format.
    pub kv: Bytes,
    /// Per client: the sequence number of its last write to this shard and the result.
    pub sessions: Sessions<KvResult>,
}

/// Why a server of the previous owner could not answer a [`PeerMsg`] yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The server has not reached the configuration of the request yet: ask again later.
    NotReady,
    /// The server is not its group's leader and cannot answer from its own state.
    WrongLeader {
        /// The leader it knows of.
        leader: Option<Addr>,
    },
}

/// Messages between the servers of different shard groups.
///
/// The new owner of a shard *pulls* it: its leader asks the previous owner for the shards
/// it gains in configuration `num` until it has them, installs them through its own log,
/// then asks the previous owner to delete them, until that is confirmed. Each request is
/// answered by the server it was sent to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMsg {
    /// "Send me these shards as they were when you moved to configuration `num`."
    Pull {
        /// The configuration in which the sender gains the shards.
        num: u64,
        /// The sender's group.
        gid: Gid,
        /// The shards wanted.
        shards: Vec<u32>,
    },
    /// Answer to [`PeerMsg::Pull`].
    PullReply {
        /// The configuration of the request.
        num: u64,
        /// The shards asked for, or why not.
        result: Result<Vec<ShardData>, Refusal>,
    },
    /// "I installed these shards of configuration `num`; delete your copies."
    Delete {
        /// The configuration in which the sender gained the shards.
        num: u64,
        /// The sender's group.
        gid: Gid,
        /// The shards to delete.
        shards: Vec<u32>,
    },
    /// Answer to [`PeerMsg::Delete`].
    DeleteReply {
        /// The configuration of the request.
        num: u64,
        /// The shards of the request.
        shards: Vec<u32>,
        /// `Ok` once the shards are deleted (or were never kept), else why not yet.
        result: Result<(), Refusal>,
    },
}
