//! Client histories of the KV service for the linearizability checker, shared by the
//! simulator testers of kv-core (`tests/kv_lab`) and shard-core (`tests/shard_lab`, which
//! includes this file by path: both record the same [`Op`]s and [`KvResult`]s).
//!
//! A recorded operation becomes a complete operation of the model when the client got a
//! usable answer, and a pending one (it may or may not have taken effect) otherwise; so
//! do operations still in flight when the check runs.

use std::time::Duration;

use bytes::Bytes;
use stepwise_kv::{KvError, KvOutput, KvResult, Op};
use stepwise_linearizability::models::{
    Kv as LegacyModel, KvErr, KvInput, VersionedInput, VersionedKv, VersionedOutput,
};
use stepwise_linearizability::{CheckResult, History, Operation, check};
use stepwise_sim::{NodeId, Time};

/// One recorded client operation.
#[derive(Clone, Debug)]
pub struct Record {
    pub client: NodeId,
    pub op: Op,
    pub call: Time,
    pub ret: Time,
    pub result: KvResult,
}

/// Checks versioned operations (the 2025 model): `records` answered, `in_flight` as
/// (client, operation, call time) never answered.
pub fn check_versioned<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    in_flight: impl IntoIterator<Item = (NodeId, Op, Time)>,
    timeout: Duration,
) -> CheckResult {
    let mut h: History<VersionedInput<String, String>, VersionedOutput<String>> = History::new();
    for r in records {
        let input = versioned_input(&r.op);
        h.push(match versioned_output(&r.op, &r.result) {
            Some(out) => Operation::complete(r.client as u64, input, r.call, out, r.ret),
            None => Operation::pending(r.client as u64, input, r.call),
        });
    }
    for (ck, op, call) in in_flight {
        h.push(Operation::pending(ck as u64, versioned_input(&op), call));
    }
    check(&VersionedKv::new(), &h, Some(timeout))
}

/// Checks Get/Put/Append operations (the 2020-2024 model), like [`check_versioned`].
pub fn check_legacy<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    in_flight: impl IntoIterator<Item = (NodeId, Op, Time)>,
    timeout: Duration,
) -> CheckResult {
    let mut h: History<KvInput<String, String>, String> = History::new();
    for r in records {
        let input = legacy_input(&r.op);
        h.push(match legacy_output(&r.op, &r.result) {
            Some(out) => Operation::complete(r.client as u64, input, r.call, out, r.ret),
            None => Operation::pending(r.client as u64, input, r.call),
        });
    }
    for (ck, op, call) in in_flight {
        h.push(Operation::pending(ck as u64, legacy_input(&op), call));
    }
    check(&LegacyModel::new(), &h, Some(timeout))
}

/// A checker's verdict as a failure message (`None` when linearizable). A checker timeout
/// fails too (the lab treats it as a pass; we do not: histories must be small enough to
/// decide).
pub fn verdict_failure(result: CheckResult, operations: usize) -> Option<String> {
    match result {
        CheckResult::Ok => None,
        CheckResult::Illegal(v) => Some(format!("history is not linearizable: {v}")),
        CheckResult::Unknown => Some(format!(
            "linearizability check timed out on {operations} operations"
        )),
    }
}

/// Bytes as text (the tests use ASCII).
pub fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn versioned_input(op: &Op) -> VersionedInput<String, String> {
    match op {
        Op::Get { key } => VersionedInput::Get { key: text(key) },
        Op::Put {
            key,
            value,
            version,
        } => VersionedInput::Put {
            key: text(key),
            value: text(value),
            version: version.expect("versioned tests only use versioned Puts"),
        },
        Op::Append { .. } | Op::Delete { .. } | Op::Incr { .. } => {
            panic!("versioned tests use only Get and versioned Put")
        }
    }
}

/// The model's view of a result; `None` when the client got no usable answer.
fn versioned_output(op: &Op, result: &KvResult) -> Option<VersionedOutput<String>> {
    let err = match result {
        Ok(KvOutput::Value { value, version }) => {
            return Some(VersionedOutput::get(text(value), *version));
        }
        Ok(_) => KvErr::Ok,
        // A Get of a missing key reads "" (version 0); a versioned Put on a missing key
        // with a version above 0 is a version mismatch (a missing key is at version 0).
        Err(KvError::NoKey) if op.is_read() => {
            return Some(VersionedOutput {
                value: String::new(),
                version: 0,
                err: KvErr::NoKey,
            });
        }
        Err(KvError::NoKey | KvError::Version) => KvErr::Version,
        Err(KvError::Maybe) => KvErr::Maybe,
        Err(_) => return None,
    };
    Some(VersionedOutput::put(err))
}

fn legacy_input(op: &Op) -> KvInput<String, String> {
    match op {
        Op::Get { key } => KvInput::Get { key: text(key) },
        Op::Put { key, value, .. } => KvInput::Put {
            key: text(key),
            value: text(value),
        },
        Op::Append {
            key,
            value,
            return_old: false,
        } => KvInput::Append {
            key: text(key),
            value: text(value),
        },
        Op::Append {
            key,
            value,
            return_old: true,
        } => KvInput::AppendReturn {
            key: text(key),
            value: text(value),
        },
        Op::Delete { key } => KvInput::Delete { key: text(key) },
        Op::Incr { key, by } => KvInput::Incr {
            key: text(key),
            by: *by,
        },
    }
}

/// The model's view of a result; `None` when the client got no usable answer. Delete
/// and Incr answer as Redis does: `"1"`/`"0"` for whether a key was deleted, the sum in
/// decimal, and an Incr that failed on its value (not an integer, or out of range) as `""`.
fn legacy_output(op: &Op, result: &KvResult) -> Option<String> {
    match result {
        Ok(KvOutput::Value { value, .. }) => Some(text(value)),
        Ok(KvOutput::Appended { old, .. }) => Some(text(old)),
        Ok(KvOutput::Written { .. }) => Some(String::new()),
        Ok(KvOutput::Deleted { existed }) => Some(u8::from(*existed).to_string()),
        Ok(KvOutput::Number { value, .. }) => Some(value.to_string()),
        Err(KvError::NoKey) if op.is_read() => Some(String::new()),
        Err(KvError::NotInteger | KvError::Overflow) if matches!(op, Op::Incr { .. }) => {
            Some(String::new())
        }
        Err(_) => None,
    }
}
