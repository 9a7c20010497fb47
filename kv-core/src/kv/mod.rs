//! The key/value state machine: operations, results and the [`Kv`] store.
//!
//! Keys and values are byte strings ([`Bytes`]). Every key carries a version: the number of
//! writes applied to it, 0 for a missing key. The operations cover every lab variant:
//!
//! * [`Op::Get`] returns the value and its version, or [`KvError::NoKey`]. (The 2020-2024
//!   labs read a missing key as empty: see [`KvError::NoKey`] and
//!   [`Clerk`](crate::clerk::Clerk) helpers.)
//! * [`Op::Put`] with `version: Some(v)` is the 2025 versioned Put: it applies only if the
//!   key is at version `v` (a missing key is at version 0, so `Some(0)` creates it), else
//!   it fails with [`KvError::Version`], or [`KvError::NoKey`] for a missing key and `v > 0`.
//!   With `version: None` it is the 2020-2024 unconditional Put.
//! * [`Op::Append`] appends to the value (a missing key acts as empty, so Append creates
//!   it); with `return_old` it returns the value before the append (the 2024 kvsrv).
//! * [`Op::Delete`] removes the key ([`KvOutput::Deleted`] says whether it was there); a
//!   deleted key is missing again, so its version is back to 0.
//! * [`Op::Incr`] adds to a value that holds a 64-bit signed integer in decimal (a missing
//!   key counts as 0) and returns the sum ([`KvOutput::Number`]); a value that is not
//!   such an integer fails with [`KvError::NotInteger`], a sum out of range with
//!   [`KvError::Overflow`], and the value stays as it was.
//!
//! [`Kv`] implements [`StateMachine`](crate::rsm::StateMachine) with commands = [`Op`] (Gets through the log are
//! allowed, and read-only) and queries = keys (linearizable reads without the log).

mod codec;
mod store;
mod value;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stepwise_raft::NodeId;

pub use store::Kv;

/// One key/value operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// Read a key.
    Get {
        /// The key.
        key: Bytes,
    },
    /// Write a key: conditional on its version with `Some`, unconditional with `None`.
    Put {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
        /// The version the key must be at (the 2025 lab), or `None` to overwrite.
        version: Option<u64>,
    },
    /// Append to a key's value (a missing key acts as empty).
    Append {
        /// The key.
        key: Bytes,
        /// The suffix.
        value: Bytes,
        /// Return the value before the append ([`KvOutput::Appended`]), as the 2024
        /// single-server lab does. Costs a copy of the old value in the session table.
        return_old: bool,
    },
    /// Remove a key.
    Delete {
        /// The key.
        key: Bytes,
    },
    /// Add `by` to a key's integer value (a missing key counts as 0). Like Append, not
    /// idempotent: send it with a session, so a retry cannot add twice.
    Incr {
        /// The key.
        key: Bytes,
        /// The amount (negative to decrement).
        by: i64,
    },
}

impl Op {
    /// A Get.
    pub fn get(key: impl Into<Bytes>) -> Op {
        Op::Get { key: key.into() }
    }

    /// A versioned Put (2025): applies only at `version`.
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>, version: u64) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            version: Some(version),
        }
    }

    /// An unconditional Put (2020-2024).
    pub fn put_any(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            version: None,
        }
    }

    /// An Append that returns nothing but the new version.
    pub fn append(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Op {
        Op::Append {
            key: key.into(),
            value: value.into(),
            return_old: false,
        }
    }

    /// An Append that returns the old value (2024 kvsrv).
    pub fn append_return(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Op {
        Op::Append {
            key: key.into(),
            value: value.into(),
            return_old: true,
        }
    }

    /// A Delete.
    pub fn delete(key: impl Into<Bytes>) -> Op {
        Op::Delete { key: key.into() }
    }

    /// An Incr by `by`.
    pub fn incr(key: impl Into<Bytes>, by: i64) -> Op {
        Op::Incr {
            key: key.into(),
            by,
        }
    }

    /// The same operation, borrowing its key and value (what the log decodes to).
    pub fn as_op_ref(&self) -> OpRef<'_> {
        match self {
            Op::Get { key } => OpRef::Get { key },
            Op::Put {
                key,
                value,
                version,
            } => OpRef::Put {
                key,
                value,
                version: *version,
            },
            Op::Append {
                key,
                value,
                return_old,
            } => OpRef::Append {
                key,
                value,
                return_old: *return_old,
            },
            Op::Delete { key } => OpRef::Delete { key },
            Op::Incr { key, by } => OpRef::Incr { key, by: *by },
        }
    }

    /// The key the operation touches.
    pub fn key(&self) -> &Bytes {
        match self {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Append { key, .. }
            | Op::Delete { key }
            | Op::Incr { key, .. } => key,
        }
    }

    /// Whether the operation only reads.
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Get { .. })
    }

    /// Whether the operation is a versioned (conditional) Put.
    pub fn is_versioned_put(&self) -> bool {
        matches!(
            self,
            Op::Put {
                version: Some(_),
                ..
            }
        )
    }
}

/// An [`Op`] as decoded from the Raft log, borrowing the key and value from the entry
/// (same bytes as `Op`, so the store copies only what it keeps).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum OpRef<'a> {
    /// [`Op::Get`].
    Get {
        /// The key.
        key: &'a [u8],
    },
    /// [`Op::Put`].
    Put {
        /// The key.
        key: &'a [u8],
        /// The new value.
        value: &'a [u8],
        /// The version the key must be at, or `None` to overwrite.
        version: Option<u64>,
    },
    /// [`Op::Append`].
    Append {
        /// The key.
        key: &'a [u8],
        /// The suffix.
        value: &'a [u8],
        /// Return the value before the append.
        return_old: bool,
    },
    /// [`Op::Delete`].
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// [`Op::Incr`].
    Incr {
        /// The key.
        key: &'a [u8],
        /// The amount.
        by: i64,
    },
}

/// What a successful operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOutput {
    /// A Get: the value and its version.
    Value {
        /// The value.
        value: Bytes,
        /// Its version (number of writes applied to the key).
        version: u64,
    },
    /// A Put, or an Append without `return_old`, was applied; the key is now at `version`.
    Written {
        /// The key's version after the write.
        version: u64,
    },
    /// An Append with `return_old` was applied.
    Appended {
        /// The value before the append (empty for a missing key).
        old: Bytes,
        /// The key's version after the write.
        version: u64,
    },
    /// A Delete was applied.
    Deleted {
        /// Whether the key was there.
        existed: bool,
    },
    /// An Incr was applied: the key now holds `value`.
    Number {
        /// The value after the increment.
        value: i64,
        /// The key's version after the write.
        version: u64,
    },
}

/// Why an operation did not succeed. Expected outcomes, not failures of the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvError {
    /// Get of a missing key, or a versioned Put with a version above 0 on a missing key.
    /// (A missing key's value is empty and its version 0.)
    NoKey,
    /// A versioned Put whose version did not match; nothing changed.
    Version,
    /// From the [`Clerk`](crate::clerk::Clerk) only: a versioned Put without a session
    /// was retransmitted and then refused, so one of its copies may or may not have been
    /// applied (the 2025 lab's `ErrMaybe`).
    Maybe,
    /// The server is not the leader, or lost leadership before the operation was applied.
    WrongLeader {
        /// The leader the server knows of.
        leader: Option<NodeId>,
    },
    /// The key belongs to a shard this group does not serve (sharded services).
    WrongGroup,
    /// A retry of a command older than the client's latest: nobody waits for its answer.
    Stale,
    /// From the [`Clerk`](crate::clerk::Clerk) only: the operation's deadline passed without
    /// a definite answer; it may or may not have been applied.
    Timeout,
    /// An Incr on a value that is not a 64-bit signed integer in decimal; nothing changed.
    NotInteger,
    /// An Incr whose result would not fit in 64 signed bits; nothing changed.
    Overflow,
}

/// The result of one operation.
pub type KvResult = Result<KvOutput, KvError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_ref_decodes_the_bytes_of_op() {
        let ops = [
            Op::get("k"),
            Op::put("key", "value", 7),
            Op::put_any("", ""),
            Op::append("a", "b"),
            Op::append_return("a", vec![0u8, 255, 3]),
            Op::delete("d"),
            Op::incr("i", -3),
        ];
        for op in ops {
            let bytes = postcard::to_allocvec(&op).unwrap();
            let back: OpRef<'_> = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, op.as_op_ref());
        }
    }
}
