//! Histories of client operations: [`Operation`], the [`History`] recorder and its
//! thread-safe form [`SharedHistory`].

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// One client operation: what was asked, what came back, and when.
///
/// Times are `u64` in any unit (nanoseconds, virtual microseconds, ...) as long as one
/// history uses one clock. The call time must be taken before the request could reach the
/// service and the return time after the reply was received.
///
/// An operation is *complete* when both `output` and `ret` are `Some`. Any other operation is
/// *pending*: it may have taken effect at any time after `call`, or never, and it is treated
/// as returning at +infinity. With `output == None` any output is accepted (the model gets
/// `None`); an operation that returned without a usable reply (a timeout) belongs here too,
/// since the request may still be in flight. A return time earlier than the call time is
/// treated as equal to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operation<I, O> {
    /// The client that issued the operation (used only in reports).
    pub client: u64,
    /// What the client asked for.
    pub input: I,
    /// When the client issued the request.
    pub call: u64,
    /// What the client got back, or `None` if it never got a reply.
    pub output: Option<O>,
    /// When the reply arrived, or `None` if it never did.
    pub ret: Option<u64>,
}

impl<I, O> Operation<I, O> {
    /// A complete operation.
    pub fn complete(client: u64, input: I, call: u64, output: O, ret: u64) -> Self {
        Self {
            client,
            input,
            call,
            output: Some(output),
            ret: Some(ret),
        }
    }

    /// An operation that never got a reply.
    pub fn pending(client: u64, input: I, call: u64) -> Self {
        Self {
            client,
            input,
            call,
            output: None,
            ret: None,
        }
    }

    /// Whether both the output and the return time are known.
    pub fn is_complete(&self) -> bool {
        self.output.is_some() && self.ret.is_some()
    }

    /// The return time the checker uses: `ret` (at least `call`) for a complete operation,
    /// `None` (+infinity) for a pending one.
    pub fn effective_return(&self) -> Option<u64> {
        match (&self.output, self.ret) {
            (Some(_), Some(ret)) => Some(ret.max(self.call)),
            _ => None,
        }
    }
}

/// Identifies an operation started with [`History::begin`] or [`SharedHistory::begin`]: its
/// index in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

/// Misuse of a history recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryError {
    /// The id was not returned by `begin` on this history.
    UnknownOp(OpId),
    /// `end` was already called for this operation.
    AlreadyEnded(OpId),
    /// The return time is earlier than the call time.
    ReturnBeforeCall {
        /// The operation.
        op: OpId,
        /// Its call time.
        call: u64,
        /// The return time given to `end`.
        ret: u64,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOp(op) => write!(f, "operation {} was never begun", op.0),
            Self::AlreadyEnded(op) => write!(f, "operation {} already ended", op.0),
            Self::ReturnBeforeCall { op, call, ret } => write!(
                f,
                "operation {} returns at {ret}, before its call at {call}",
                op.0
            ),
        }
    }
}

impl std::error::Error for HistoryError {}

/// Records operations as they happen, for [`check`](crate::check).
///
/// Call [`begin`](History::begin) just before sending a request and
/// [`end`](History::end) just after its reply arrives. Operations that are never ended stay
/// pending. For real threads use [`SharedHistory`] (or a `Mutex<History>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History<I, O> {
    ops: Vec<Operation<I, O>>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        Self { ops: Vec::new() }
    }
}

impl<I, O> History<I, O> {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `client` issued `input` at time `now`.
    pub fn begin(&mut self, client: u64, input: I, now: u64) -> OpId {
        self.ops.push(Operation::pending(client, input, now));
        OpId(self.ops.len() - 1)
    }

    /// Records that operation `op` returned `output` at time `now`.
    pub fn end(&mut self, op: OpId, output: O, now: u64) -> Result<(), HistoryError> {
        let entry = self.ops.get_mut(op.0).ok_or(HistoryError::UnknownOp(op))?;
        if entry.output.is_some() || entry.ret.is_some() {
            return Err(HistoryError::AlreadyEnded(op));
        }
        if now < entry.call {
            return Err(HistoryError::ReturnBeforeCall {
                op,
                call: entry.call,
                ret: now,
            });
        }
        entry.output = Some(output);
        entry.ret = Some(now);
        Ok(())
    }

    /// Appends an operation recorded elsewhere.
    pub fn push(&mut self, op: Operation<I, O>) -> OpId {
        self.ops.push(op);
        OpId(self.ops.len() - 1)
    }

    /// The operations, in the order they were begun.
    pub fn operations(&self) -> &[Operation<I, O>] {
        &self.ops
    }

    /// Takes the operations out.
    pub fn into_operations(self) -> Vec<Operation<I, O>> {
        self.ops
    }

    /// Number of operations recorded.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl<I, O> AsRef<[Operation<I, O>]> for History<I, O> {
    fn as_ref(&self) -> &[Operation<I, O>] {
        &self.ops
    }
}

impl<I, O> From<Vec<Operation<I, O>>> for History<I, O> {
    fn from(ops: Vec<Operation<I, O>>) -> Self {
        Self { ops }
    }
}

impl<I, O> FromIterator<Operation<I, O>> for History<I, O> {
    fn from_iter<T: IntoIterator<Item = Operation<I, O>>>(iter: T) -> Self {
        Self {
            ops: iter.into_iter().collect(),
        }
    }
}

/// A [`History`] that many threads record into, timestamped with a monotonic clock.
///
/// Times are nanoseconds since the `SharedHistory` was created, read while holding the lock,
/// so a call recorded after another operation's return always gets a later-or-equal time.
/// Share it with `Arc` or a scoped-thread borrow.
#[derive(Debug)]
pub struct SharedHistory<I, O> {
    inner: Mutex<History<I, O>>,
    origin: Instant,
}

impl<I, O> Default for SharedHistory<I, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I, O> SharedHistory<I, O> {
    /// An empty history whose clock starts now.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(History::new()),
            origin: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History<I, O>> {
        // A thread that panicked while recording leaves the history consistent (every
        // mutation is a single push or field store), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `client` issues `input` now. Call it just before sending the request.
    pub fn begin(&self, client: u64, input: I) -> OpId {
        let mut history = self.lock();
        let now = self.now();
        history.begin(client, input, now)
    }

    /// Records that `op` returned `output` now. Call it just after the reply arrives.
    pub fn end(&self, op: OpId, output: O) -> Result<(), HistoryError> {
        let mut history = self.lock();
        let now = self.now();
        history.end(op, output, now)
    }

    /// A copy of the operations recorded so far.
    pub fn snapshot(&self) -> History<I, O>
    where
        I: Clone,
        O: Clone,
    {
        self.lock().clone()
    }

    /// The recorded history.
    pub fn into_history(self) -> History<I, O> {
        self.inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_end_records_times_and_output() {
        let mut h: History<&str, u32> = History::new();
        let a = h.begin(1, "a", 10);
        let b = h.begin(2, "b", 11);
        assert_eq!(h.end(a, 7, 12), Ok(()));
        assert_eq!(h.operations()[0], Operation::complete(1, "a", 10, 7, 12));
        assert_eq!(h.operations()[1], Operation::pending(2, "b", 11));
        assert!(!h.operations()[1].is_complete());
        assert_eq!(h.end(a, 8, 13), Err(HistoryError::AlreadyEnded(a)));
        assert_eq!(h.end(OpId(9), 8, 13), Err(HistoryError::UnknownOp(OpId(9))));
        assert_eq!(
            h.end(b, 8, 5),
            Err(HistoryError::ReturnBeforeCall {
                op: b,
                call: 11,
                ret: 5
            })
        );
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn effective_return_treats_partial_replies_as_pending() {
        let mut op: Operation<(), u8> = Operation::complete(0, (), 10, 1, 5);
        assert_eq!(op.effective_return(), Some(10));
        op.ret = None;
        assert_eq!(op.effective_return(), None);
        op.ret = Some(20);
        op.output = None;
        assert_eq!(op.effective_return(), None);
    }

    #[test]
    fn shared_history_orders_calls_after_returns_across_threads() {
        let shared: SharedHistory<u64, u64> = SharedHistory::new();
        std::thread::scope(|s| {
            for client in 0..4 {
                let shared = &shared;
                s.spawn(move || {
                    for i in 0..50 {
                        let id = shared.begin(client, i);
                        shared.end(id, i).expect("fresh id");
                    }
                });
            }
        });
        let history = shared.into_history();
        assert_eq!(history.len(), 200);
        // Times are read under the lock, so call times follow the order of `begin`s
        // across threads, and each client's next call is not before its last return.
        let calls: Vec<u64> = history.operations().iter().map(|o| o.call).collect();
        assert!(calls.is_sorted(), "call times out of begin order");
        for client in 0..4 {
            let mut last = 0;
            for op in history.operations().iter().filter(|o| o.client == client) {
                assert!(op.call >= last);
                last = op.ret.expect("ended");
                assert!(last >= op.call);
            }
        }
    }
}
