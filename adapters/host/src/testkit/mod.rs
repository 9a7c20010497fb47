//! A tiny replicated register over Raft and a client workload, for testing runtimes
//! (feature `testkit`). Not a product: the key-value service is `stepwise-kv`.
//!
//! * [`RegisterMachine`] is a [`Machine`](crate::Machine): writes go through the Raft
//!   log, reads through ReadIndex; every applied write is also reported as an event, so a
//!   test can check that all members apply the same sequence.
//! * [`Observer`] routes every node's events: replies to waiting clients, applied writes
//!   into per-node lists with a bounded wait for convergence.
//! * [`Workload`] runs concurrent clients on threads and records a history that
//!   [`Outcome::check`] hands to the linearizability checker.
//! * [`Holder`] holds requests back until a deadline, for testing that a runtime honours
//!   [`Machine::wake_at`](crate::Machine::wake_at).

mod holder;
mod register;
mod workload;

pub use holder::Holder;
pub use register::{
    OpId, RegisterEvent, RegisterMachine, RegisterOp, RegisterReply, RegisterRequest,
};
pub use workload::{Observer, Outcome, Workload};
