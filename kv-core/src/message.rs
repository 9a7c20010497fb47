//! What clients and KV servers send each other.
//!
//! Every type is serde-serializable and avoids `skip_serializing_if`, `flatten` and
//! `untagged`, so postcard (not self-describing) works. Adapters that keep connections
//! exchange [`WIRE_VERSION`] first, so both ends agree on these layouts.

use serde::{Deserialize, Serialize};

use crate::kv::{KvResult, Op};
use crate::rsm::Session;

/// Version of the client/server message layouts in this module.
pub const WIRE_VERSION: u8 = 1;

/// A client's request to a KV server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The client's number for this operation, echoed in the reply. A retransmission
    /// carries the same id.
    pub id: u64,
    /// With a session, a write executes exactly once however often it is retried, and a
    /// retry gets the original answer. Reads ignore it.
    pub session: Option<Session>,
    /// The operation.
    pub op: Op,
}

/// A KV server's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The [`Request::id`] answered.
    pub id: u64,
    /// The outcome.
    pub result: KvResult,
}
