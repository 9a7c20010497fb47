//! The entry point: [`check`] splits a history by partition and searches each part.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::history::Operation;
use crate::model::Model;
use crate::search::{Outcome, check_partition};
use crate::violation::Violation;

/// The verdict on a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// Linearizable: every partition has a legal order consistent with real time.
    Ok,
    /// Not linearizable; the violation says where.
    Illegal(Violation),
    /// The timeout expired before a verdict (the history may or may not be linearizable).
    Unknown,
}

impl CheckResult {
    /// Whether the history is linearizable.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok)
    }

    /// Whether the history is not linearizable.
    pub fn is_illegal(&self) -> bool {
        matches!(self, Self::Illegal(_))
    }

    /// The violation, if the history is not linearizable.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::Illegal(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("linearizable"),
            Self::Illegal(violation) => violation.fmt(f),
            Self::Unknown => f.write_str("unknown: the check timed out"),
        }
    }
}

/// Checks `history` for linearizability against `model`.
///
/// The operations are split by [`Model::partition`] and each partition is checked on its
/// own, in key order, with the Wing-Gong-Lowe search and memoization of (linearized set,
/// state) pairs. The first partition found illegal is reported. Pending operations (see
/// [`Operation`]) may take effect at any time after their call, or never.
///
/// `timeout` bounds the whole check; when it expires the result is
/// [`CheckResult::Unknown`]. The lab uses 1 s and treats `Unknown` as a pass. With no
/// timeout the check always finishes, but may take exponential time on histories with many
/// concurrent operations on one key.
///
/// Runs on the calling thread; a result other than `Unknown` is deterministic.
pub fn check<M, H>(model: &M, history: &H, timeout: Option<Duration>) -> CheckResult
where
    M: Model,
    H: AsRef<[Operation<M::Input, M::Output>]> + ?Sized,
{
    let ops = history.as_ref();
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut partitions: BTreeMap<M::Key, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        partitions
            .entry(model.partition(&op.input))
            .or_default()
            .push(i);
    }
    let mut local: Vec<&Operation<M::Input, M::Output>> = Vec::new();
    for (key, indices) in &partitions {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return CheckResult::Unknown;
        }
        local.clear();
        local.extend(indices.iter().map(|&i| &ops[i]));
        match check_partition(model, &local, deadline) {
            Outcome::Linearizable => {}
            Outcome::TimedOut => return CheckResult::Unknown,
            Outcome::Illegal {
                stuck,
                linearized,
                open,
            } => {
                let global = |l: u32| indices[l as usize];
                return CheckResult::Illegal(Violation::new(
                    model,
                    ops,
                    key,
                    global(stuck),
                    linearized.into_iter().map(global).collect(),
                    open.into_iter().map(global).collect(),
                ));
            }
        }
    }
    CheckResult::Ok
}
