//! The [`Model`] trait: the sequential specification a history is checked against.

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification of an object, as a deterministic state machine.
///
/// The checker searches for an order of the operations (consistent with real time) in which
/// every operation is a legal [`step`](Model::step) from the state left by the previous
/// one. States are memoized, so they must be hashable and comparable; keep them small
/// (for a key-value store, model one key and [`partition`](Model::partition) by key).
///
/// `Debug` on the associated types is used only to print violations.
///
/// A counter with increments and reads:
///
/// ```
/// use stepwise_linearizability::{CheckResult, Model, Operation, check};
///
/// #[derive(Debug)]
/// enum CounterOp { Increment, Read }
///
/// struct Counter;
///
/// impl Model for Counter {
///     type State = u64;
///     type Input = CounterOp;
///     type Output = u64; // the value read; ignored for increments
///     type Key = ();
///
///     fn init(&self) -> u64 { 0 }
///
///     fn step(&self, state: &u64, input: &CounterOp, output: Option<&u64>) -> Option<u64> {
///         match input {
///             CounterOp::Increment => Some(state + 1),
///             CounterOp::Read => match output {
///                 Some(read) if read != state => None,
///                 _ => Some(*state),
///             },
///         }
///     }
///
///     fn partition(&self, _input: &CounterOp) {}
///
///     fn is_read_only(&self, input: &CounterOp, _output: Option<&u64>) -> bool {
///         matches!(input, CounterOp::Read)
///     }
/// }
///
/// let history = [
///     Operation::complete(1, CounterOp::Increment, 0, 0, 10),
///     Operation::complete(2, CounterOp::Read, 2, 1, 4),
///     Operation::complete(2, CounterOp::Read, 5, 0, 6), // goes back: illegal
/// ];
/// assert!(check(&Counter, &history, None).is_illegal());
/// assert_eq!(check(&Counter, &history[..2], None), CheckResult::Ok);
/// ```
pub trait Model {
    /// The state of the object. Equal states must behave identically.
    type State: Clone + Eq + Hash + Debug;
    /// What a client asked for (operation kind and arguments).
    type Input: Debug;
    /// What the client got back.
    type Output: Debug;
    /// The partition an operation belongs to. Operations in different partitions must be
    /// independent (touch disjoint parts of the state), so each partition is checked on its
    /// own, starting from [`init`](Model::init). Use `()` for a model without partitions.
    /// Partitions are checked (and reported) in the order of this key.
    type Key: Ord + Clone + Debug;

    /// The initial state (of every partition).
    fn init(&self) -> Self::State;

    /// Applies one operation to `state`.
    ///
    /// Returns the new state if the operation, taking effect on `state`, could have produced
    /// `output`, and `None` if that output is impossible (the step is illegal).
    ///
    /// `output` is `None` when the client never got a reply: then any output is acceptable,
    /// and the model returns the state the operation leaves behind if it takes effect. (The
    /// checker covers "it never took effect" itself: such an operation need not be placed at
    /// all.)
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// The partition `input` belongs to.
    fn partition(&self, input: &Self::Input) -> Self::Key;

    /// Whether this operation, with this output, leaves the state unchanged in every state
    /// where it is legal: a read. Defaults to `false`, which is always correct.
    ///
    /// Returning `true` lets the checker linearize a read as soon as it is legal without
    /// trying alternatives (sound: a legal read can always be moved earlier, up to any point
    /// after its call, where it sees the same state), which prunes most of the search on
    /// read-heavy histories. Returning `true` for an operation that can change the state
    /// makes the checker wrong.
    fn is_read_only(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        let _ = (input, output);
        false
    }
}
