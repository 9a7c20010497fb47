//! The [`Node`] trait every simulated process implements, and the [`Effect`]s it emits.

use std::fmt;

use crate::{NodeId, Time};

/// A sans-IO process the simulator can run.
///
/// Protocol cores do not implement this trait themselves: test code wraps a core in a thin
/// adapter that translates the core's actions into [`Effect`]s. The simulator calls exactly
/// one of the `on_*` methods per step and then carries out the pushed effects, in order,
/// before anything else happens (see [`Effect`]).
///
/// Every method receives `now`, the virtual time in microseconds, so wrappers can timestamp
/// what they report; cores themselves should only see ticks.
pub trait Node: Sized {
    /// What crosses the network between nodes.
    type Msg: Clone + fmt::Debug;
    /// Requests the harness injects with [`Sim::input`](crate::Sim::input) or
    /// [`Sim::schedule_input`](crate::Sim::schedule_input).
    type Input: fmt::Debug;
    /// Observable events for the harness (applied commands, client replies, ...), collected
    /// by the simulator with their time and node (see [`Sim::take_outputs`](crate::Sim::take_outputs)).
    type Output: fmt::Debug;
    /// What survives a crash. A node boots from `Default::default()` and restarts from the
    /// state built by applying every [`Effect::Write`] it carried out so far.
    type Durable: Clone + Default + fmt::Debug;
    /// One durable write, applied with [`Node::write`].
    type Write: fmt::Debug;

    /// A periodic tick (every [`SimConfig::tick_interval`](crate::SimConfig::tick_interval)).
    fn on_tick(&mut self, now: Time, out: &mut Vec<Effect<Self>>);

    /// A message from `from` arrived.
    fn on_message(&mut self, now: Time, from: NodeId, msg: Self::Msg, out: &mut Vec<Effect<Self>>);

    /// The harness injected `input`.
    fn on_input(&mut self, now: Time, input: Self::Input, out: &mut Vec<Effect<Self>>);

    /// Applies one durable write to the durable state. Called by the simulator, in effect
    /// order, for every [`Effect::Write`] that is carried out.
    fn write(durable: &mut Self::Durable, write: Self::Write);

    /// Bytes this message would take on the wire (feeds the byte counters in [`Stats`](crate::Stats)).
    fn wire_size(msg: &Self::Msg) -> usize;

    /// Whether [`NetConfig::long_reordering`](crate::NetConfig::long_reordering) may hold
    /// this message back. The lab holds back only RPC replies; a node type whose messages
    /// are requests and replies can say which are replies to get the lab's behaviour.
    /// Default: every message.
    fn reorderable(_msg: &Self::Msg) -> bool {
        true
    }
}

/// One thing a node asks the simulator to do. Effects are carried out in the order they
/// were pushed, immediately, at the current virtual time; an effect is complete before the
/// next one starts (so a `Write` pushed before a `Send` is durable before the message
/// leaves).
pub enum Effect<N: Node> {
    /// Hand `msg` to the network for delivery to node `to` (which may be the sender itself).
    /// `to` must be a node of the simulation (`< n`); anything else is a bug in the node or
    /// its wrapper and makes the simulator panic.
    Send {
        /// Destination node.
        to: NodeId,
        /// The message.
        msg: N::Msg,
    },
    /// Apply this write to the node's durable state with [`Node::write`].
    Write(N::Write),
    /// Append this output to the simulator's outputs queue as `(now, node, output)`.
    Output(N::Output),
}

impl<N: Node> fmt::Debug for Effect<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Send { to, msg } => f
                .debug_struct("Send")
                .field("to", to)
                .field("msg", msg)
                .finish(),
            Effect::Write(w) => f.debug_tuple("Write").field(w).finish(),
            Effect::Output(o) => f.debug_tuple("Output").field(o).finish(),
        }
    }
}

impl<N: Node> Clone for Effect<N>
where
    N::Write: Clone,
    N::Output: Clone,
{
    fn clone(&self) -> Self {
        match self {
            Effect::Send { to, msg } => Effect::Send {
                to: *to,
                msg: msg.clone(),
            },
            Effect::Write(w) => Effect::Write(w.clone()),
            Effect::Output(o) => Effect::Output(o.clone()),
        }
    }
}

impl<N: Node> PartialEq for Effect<N>
where
    N::Msg: PartialEq,
    N::Write: PartialEq,
    N::Output: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Effect::Send { to: a, msg: m }, Effect::Send { to: b, msg: n }) => a == b && m == n,
            (Effect::Write(a), Effect::Write(b)) => a == b,
            (Effect::Output(a), Effect::Output(b)) => a == b,
            _ => false,
        }
    }
}

impl<N: Node> Eq for Effect<N>
where
    N::Msg: Eq,
    N::Write: Eq,
    N::Output: Eq,
{
}
